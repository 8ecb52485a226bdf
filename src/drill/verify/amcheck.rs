//! `amcheck`: heap and B-tree consistency of every user relation in the restore (the amcheck extension,
//! installed into the scratch database, which is thrown away afterwards). Corrupt relations are named.

use super::{CheckResult, CheckStatus, Context, db_error};
use crate::config::{AmcheckSpec, CheckSpec};

const USER_RELATIONS: &str = "select c.oid::regclass::text, c.relkind::text from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_index i on i.indexrelid = c.oid
    left join pg_am a on a.oid = c.relam
    where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%'
      and c.relpersistence <> 't'
      and (c.relkind in ('r', 'm') or (c.relkind = 'i' and a.amname = 'btree' and i.indisvalid and i.indisready))
    order by c.relkind desc, 1";

pub(super) async fn verify(spec: &CheckSpec, s: &AmcheckSpec, ctx: &Context<'_>) -> CheckResult {
    let c = ctx.restore;
    // Installed already (a database stackdrill reads but does not own, in read-only sessions): nothing to write.
    let installed = c.query_opt("select 1 from pg_extension where extname = 'amcheck'", &[]).await;
    let installed = matches!(installed, Ok(Some(_)));
    if !installed && let Err(e) = c.batch_execute("create extension if not exists amcheck").await {
        return CheckResult::new(
            spec,
            CheckStatus::Error,
            format!("cannot install amcheck in the restore: {}", db_error(&e)),
        );
    }
    let rels = match c.query(USER_RELATIONS, &[]).await {
        Ok(r) => r,
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, db_error(&e)),
    };
    let (mut heaps, mut indexes, mut corrupt) = (0, 0, Vec::new());
    for r in &rels {
        let (name, kind): (String, String) = (r.get(0), r.get(1));
        let res = if kind == "i" {
            indexes += 1;
            c.query("select bt_index_check($1::text::regclass, $2::bool)", &[&name, &s.heapallindexed])
                .await
                .map(|_| None)
        } else {
            heaps += 1;
            c.query_one("select count(*), min(msg) from verify_heapam($1::text::regclass)", &[&name])
                .await
                .map(|row| (row.get::<_, i64>(0) > 0).then(|| row.get::<_, Option<String>>(1).unwrap_or_default()))
        };
        match res {
            Ok(None) => {}
            Ok(Some(msg)) => corrupt.push(format!("{name} ({msg})")),
            // Class XX (data_corrupted, index_corrupted) is amcheck's verdict; anything else means it could not check.
            Err(e) if e.code().is_some_and(|c| c.code().starts_with("XX")) => {
                corrupt.push(format!("{name} ({})", db_error(&e)));
            }
            Err(e) => {
                return CheckResult::new(spec, CheckStatus::Error, format!("cannot check {name}: {}", db_error(&e)));
            }
        }
    }
    if corrupt.is_empty() {
        CheckResult::new(
            spec,
            CheckStatus::Passed,
            format!("{heaps} tables and {indexes} B-tree indexes are consistent"),
        )
    } else {
        CheckResult::new(spec, CheckStatus::Failed, format!("corrupt: {}", corrupt.join("; ")))
    }
}
