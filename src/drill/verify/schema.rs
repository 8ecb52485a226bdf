//! `schema`: the restore has the source's tables, columns (type, nullability) and indexes, or at least
//! the listed tables when there is nothing to compare with.

use std::collections::BTreeSet;

use super::session::with_snapshot;
use super::{CheckError, CheckResult, CheckStatus, Context};
use crate::config::{CheckSpec, SchemaSpec};

const OBJECTS: &str = "
  select 'table ' || n.nspname || '.' || c.relname, n.nspname || '.' || c.relname from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
  union all
  select 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || case when a.attnotnull then ' not null' else '' end, n.nspname || '.' || c.relname
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p')
      and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
  union all
  select 'index ' || schemaname || '.' || indexname || ': ' || indexdef, schemaname || '.' || tablename from pg_indexes
    where schemaname not in ('pg_catalog', 'information_schema') and schemaname not like 'pg\\_%'";

async fn objects(c: &tokio_postgres::Client, tables: Option<&[String]>) -> Result<BTreeSet<String>, CheckError> {
    let rows = c.query(OBJECTS, &[]).await?;
    // stackdrill's own tables (the canary) come and go with drills; they are not the application's schema.
    let ours = |t: &str| t.rsplit('.').next().is_some_and(|name| name.starts_with("stackdrill_"));
    let wanted = |t: &str| {
        !ours(t)
            && tables.is_none_or(|ts| ts.iter().any(|w| w == t || (!w.contains('.') && t == format!("public.{w}"))))
    };
    Ok(rows.iter().filter(|r| wanted(r.get::<_, &str>(1))).map(|r| r.get::<_, String>(0)).collect())
}

fn sample(set: &[&String]) -> String {
    let shown: Vec<&str> = set.iter().take(5).map(|s| s.as_str()).collect();
    let more = if set.len() > 5 { format!(" and {} more", set.len() - 5) } else { String::new() };
    format!("{}{more}", shown.join("; "))
}

pub(super) async fn verify(spec: &CheckSpec, s: &SchemaSpec, ctx: &Context<'_>) -> CheckResult {
    let tables = s.tables.as_deref();
    let Some(source) = ctx.source else {
        // Nothing to compare with: the listed tables must exist.
        let restored = match objects(ctx.restore, tables).await {
            Ok(o) => o,
            Err(e) => return CheckResult::new(spec, CheckStatus::Error, e.to_string()),
        };
        let missing: Vec<&String> = tables
            .unwrap_or_default()
            .iter()
            .filter(|t| {
                let q = if t.contains('.') { format!("table {t}") } else { format!("table public.{t}") };
                !restored.contains(&q)
            })
            .collect();
        return if missing.is_empty() {
            CheckResult::new(
                spec,
                CheckStatus::Passed,
                format!("{} listed tables present", tables.map_or(0, <[_]>::len)),
            )
        } else {
            CheckResult::new(spec, CheckStatus::Failed, format!("missing tables: {}", sample(&missing)))
        };
    };
    let both = with_snapshot(&[source, ctx.restore], async {
        Ok::<_, CheckError>((objects(source, tables).await?, objects(ctx.restore, tables).await?))
    })
    .await;
    let (src, rst) = match both {
        Ok(v) => v,
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, e.to_string()),
    };
    let missing: Vec<&String> = src.difference(&rst).collect();
    let extra: Vec<&String> = rst.difference(&src).collect();
    if missing.is_empty() && extra.is_empty() {
        let count = |p: &str| src.iter().filter(|o| o.starts_with(p)).count();
        return CheckResult::new(
            spec,
            CheckStatus::Passed,
            format!(
                "{} tables, {} columns, {} indexes match the source",
                count("table "),
                count("column "),
                count("index ")
            ),
        );
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing from the restore: {}", sample(&missing)));
    }
    if !extra.is_empty() {
        problems.push(format!("not in the source: {}", sample(&extra)));
    }
    CheckResult::new(spec, CheckStatus::Failed, problems.join("; "))
}
