//! `heartbeat`: the newest row of `stackdrill.heartbeat` in the restore is the recovery point the restore
//! really reached. The RPO is the target minus it; for target `latest`, the source's newest heartbeat when the
//! drill planned minus it. A read on the restored database, so it works for every provider.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{CheckError, CheckResult, CheckStatus, Context, HeartbeatPoint, db_error};
use crate::config::{CheckSpec, HeartbeatSpec, human_seconds};

/// The table `stackdrill heartbeat install` creates on the source.
pub(crate) const TABLE: &str = "stackdrill.heartbeat";

/// Clock skew between a heartbeat's timestamp and its commit: newer rows than this past the target fail.
const SKEW: Duration = Duration::from_secs(1);

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(super) async fn verify(spec: &CheckSpec, s: &HeartbeatSpec, ctx: &Context<'_>) -> CheckResult {
    let q = format!("select to_regclass('{TABLE}') is not null");
    match ctx.restore.query_one(q.as_str(), &[]).await {
        Ok(r) if r.get::<_, bool>(0) => {}
        Ok(_) => {
            return CheckResult::new(
                spec,
                CheckStatus::Failed,
                format!(
                    "the restore has no `{TABLE}` table: run `stackdrill heartbeat install` on the source before the \
                     backups this drill restores"
                ),
            );
        }
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, db_error(&e)),
    }
    let (reference, from) = match reference(ctx).await {
        Ok(r) => r,
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, format!("on the source: {e}")),
    };
    let max_lag = s.max_lag.unwrap_or(ctx.rpo);
    // For `latest`, a writer that stopped long ago would make an old row both the reference and the restored
    // point: an RPO of 0 that measured nothing.
    if ctx.latest && (ctx.target_time - reference).to_std().unwrap_or_default() > max_lag {
        return CheckResult::new(
            spec,
            CheckStatus::Failed,
            format!(
                "the source's newest heartbeat {} is more than {} older than the drill's start: the heartbeat writer \
                 is not running, so the recovery point cannot be measured",
                text(reference),
                human_seconds(max_lag.as_secs_f64())
            ),
        );
    }
    // For `latest`, rows newer than the reference are not counted: the copy's own pg_cron job writes rows as
    // soon as it is up (before it is made inert), and a row dated in the future would read as "no loss".
    let (q, cap) = if ctx.latest {
        (format!("select max(at) from {TABLE} where at <= $1"), Some(reference + SKEW))
    } else {
        (format!("select max(at) from {TABLE}"), None)
    };
    let rows = match &cap {
        Some(c) => ctx.restore.query_one(q.as_str(), &[c]).await,
        None => ctx.restore.query_one(q.as_str(), &[]).await,
    };
    let newest: Option<DateTime<Utc>> = match rows {
        Ok(r) => r.get(0),
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, db_error(&e)),
    };
    let Some(newest) = newest else {
        return CheckResult::new(
            spec,
            CheckStatus::Failed,
            format!("`{TABLE}` has no rows in the restore: no heartbeat writer ran before the restored point"),
        );
    };
    let point = HeartbeatPoint { at: newest, reference, latest: ctx.latest };
    let rpo = point.rpo_seconds();
    let mut r = if !ctx.latest && (newest - reference).to_std().unwrap_or_default() > SKEW {
        CheckResult::new(
            spec,
            CheckStatus::Failed,
            format!("recovery point {} (newest heartbeat) is after the target: the restore went past it", text(newest)),
        )
    } else if rpo > max_lag.as_secs_f64() {
        CheckResult::new(
            spec,
            CheckStatus::Failed,
            format!(
                "recovery point {} (newest heartbeat) is {rpo:.1}s before {from}, more than {}",
                text(newest),
                human_seconds(max_lag.as_secs_f64())
            ),
        )
    } else {
        CheckResult::new(
            spec,
            CheckStatus::Passed,
            format!("recovery point {} (newest heartbeat), {:.1}s before {from}", text(newest), rpo.max(0.0)),
        )
    };
    r.heartbeat = Some(point);
    r
}

/// What the RPO is measured from: the target; for `latest`, the source's newest heartbeat at or before the
/// moment the drill planned (the target's time), when the drill reads the source and it has one.
async fn reference(ctx: &Context<'_>) -> Result<(DateTime<Utc>, String), CheckError> {
    let at_target = (ctx.target_time, format!("the target {}", text(ctx.target_time)));
    let (true, Some(source)) = (ctx.latest, ctx.source) else { return Ok(at_target) };
    let q = format!("select max(at) from {TABLE} where at <= $1");
    // A source without the table (installed since, or removed) measures from the target.
    let exists = format!("select to_regclass('{TABLE}') is not null");
    let present: bool = source.query_one(exists.as_str(), &[]).await?.get(0);
    if !present {
        return Ok(at_target);
    }
    let newest: Option<DateTime<Utc>> = source.query_one(q.as_str(), &[&ctx.target_time]).await?.get(0);
    Ok(match newest {
        Some(n) => (n, format!("the source's newest heartbeat {} when the drill planned", text(n))),
        None => at_target,
    })
}
