//! `canary`: random-token rows written on the source around the target time. The restore must hold
//! the row from just before the target byte-exact and must not hold the row from just after it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;

use super::{CheckError, CheckResult, CheckStatus, Context, db_error};
use crate::config::{CanarySpec, CheckSpec};

/// The two canary rows of this run. Tokens are secrets: never logged, never reported.
pub(crate) struct Written {
    pub(crate) run: String,
    pub(crate) before: String,
    pub(crate) after: String,
    /// Between the two commits; the restore target.
    pub(crate) target: DateTime<Utc>,
}

impl std::fmt::Debug for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Written").field("run", &self.run).field("target", &self.target).finish_non_exhaustive()
    }
}

fn token() -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

async fn ensure_table(source: &tokio_postgres::Client, table: &str) -> Result<(), CheckError> {
    // `table` is validated as a plain identifier when the drill file is loaded.
    source
        .batch_execute(&format!(
            "create table if not exists {table} (id bigserial primary key, run text not null, position text not null, \
             token text not null, written_at timestamptz not null default clock_timestamp())"
        ))
        .await
        .map_err(CheckError::from)
}

/// Writes the "before" row, takes the server's clock as the target, then writes the "after" row.
pub(crate) async fn write(
    source: &tokio_postgres::Client,
    spec: &CanarySpec,
    run: &str,
) -> Result<Written, CheckError> {
    ensure_table(source, &spec.table).await?;
    let insert = format!("insert into {} (run, position, token) values ($1, $2, $3)", spec.table);
    let (before, after) = (token(), token());
    source.execute(&insert, &[&run, &"before", &before]).await?;
    // Margins keep the target strictly between the two commit timestamps despite clock granularity.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let row = source.query_one("select clock_timestamp()", &[]).await?;
    let target: DateTime<Utc> = row.get(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    source.execute(&insert, &[&run, &"after", &after]).await?;
    Ok(Written { run: run.to_string(), before, after, target })
}

pub(super) async fn verify(spec: &CheckSpec, c: &CanarySpec, ctx: &Context<'_>) -> CheckResult {
    let (before, after, how) = match ctx.canary {
        Some(w) => (Some(w.before.clone()), Some(w.after.clone()), "this run's canaries"),
        None => match bracket_from_history(ctx, c).await {
            Ok((None, None)) => {
                return CheckResult::new(
                    spec,
                    CheckStatus::Skipped,
                    "no canary rows on the source bracket the target (drills with target `latest` write them)",
                );
            }
            Ok((b, a)) => (b, a, "canaries written by earlier drills"),
            Err(e) => {
                return CheckResult::new(spec, CheckStatus::Error, format!("cannot read canaries on the source: {e}"));
            }
        },
    };
    let query = format!("select token from {} where token = any($1)", c.table);
    let wanted: Vec<String> = before.iter().chain(after.iter()).cloned().collect();
    let rows = match ctx.restore.query(&query, &[&wanted]).await {
        Ok(r) => r,
        Err(e) => {
            return CheckResult::new(
                spec,
                CheckStatus::Failed,
                format!("cannot read `{}` in the restore: {}", c.table, db_error(&e)),
            );
        }
    };
    let present: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let has = |t: &Option<String>| t.as_ref().is_some_and(|t| present.iter().any(|p| p.as_bytes() == t.as_bytes()));
    let mut problems = Vec::new();
    if before.is_some() && !has(&before) {
        problems.push("the row committed just before the target is missing (the restore stopped early or lost data)");
    }
    if after.is_some() && has(&after) {
        problems.push("the row committed just after the target is present (the restore went past the target)");
    }
    if problems.is_empty() {
        let mut parts = Vec::new();
        if before.is_some() {
            parts.push("the row before the target is present byte-exact");
        }
        if after.is_some() {
            parts.push("the row after the target is absent");
        }
        CheckResult::new(spec, CheckStatus::Passed, format!("{} ({how})", parts.join("; ")))
    } else {
        CheckResult::new(spec, CheckStatus::Failed, problems.join("; "))
    }
}

/// For targets in the past: the newest canary written a second before the target and the oldest a second after.
async fn bracket_from_history(
    ctx: &Context<'_>,
    c: &CanarySpec,
) -> Result<(Option<String>, Option<String>), CheckError> {
    let Some(source) = ctx.source else { return Ok((None, None)) };
    let exists = source.query_one("select to_regclass($1) is not null", &[&c.table]).await?;
    if !exists.get::<_, bool>(0) {
        return Ok((None, None));
    }
    let margin = chrono::Duration::seconds(1);
    let (lo, hi) = (ctx.target - margin, ctx.target + margin);
    let before = source
        .query_opt(
            &format!("select token from {} where written_at <= $1 order by written_at desc limit 1", c.table),
            &[&lo],
        )
        .await?
        .map(|r| r.get::<_, String>(0));
    let after = source
        .query_opt(&format!("select token from {} where written_at >= $1 order by written_at limit 1", c.table), &[&hi])
        .await?
        .map(|r| r.get::<_, String>(0));
    Ok((before, after))
}
