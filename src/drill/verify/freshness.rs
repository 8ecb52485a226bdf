//! `freshness`: the newest timestamp in the restore is within the RPO of the target, and not after it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::session::quote;
use super::{CheckResult, CheckStatus, Context, db_error};
use crate::config::{CheckSpec, FreshnessSpec, human_seconds};

/// Clock skew between a row's timestamp and its commit: newer values than this past the target fail.
const SKEW: Duration = Duration::from_secs(1);

pub(super) async fn verify(spec: &CheckSpec, s: &FreshnessSpec, ctx: &Context<'_>) -> CheckResult {
    let q = format!("select max(t.{})::timestamptz from {} t", quote(&s.column), quote(&s.table));
    let newest: Option<DateTime<Utc>> = match ctx.restore.query_one(q.as_str(), &[]).await {
        Ok(r) => r.get(0),
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, db_error(&e)),
    };
    let Some(newest) = newest else {
        return CheckResult::new(spec, CheckStatus::Failed, format!("`{}` has no rows in the restore", s.table));
    };
    let max_lag = s.max_lag.unwrap_or(ctx.rpo);
    let newest_text = newest.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // With a source, a quiet database is not a stale restore: the restore must hold the source's newest row
    // at or before the target (give or take the clock skew), however long ago that was.
    if let Some(source) = ctx.source
        && newest <= ctx.target + chrono::TimeDelta::from_std(SKEW).unwrap_or_default()
    {
        let q = format!(
            "select max(t.{c})::timestamptz from {t} t where t.{c} <= $1",
            c = quote(&s.column),
            t = quote(&s.table)
        );
        match source.query_one(q.as_str(), &[&ctx.target]).await {
            Ok(row) => {
                let source_newest: Option<DateTime<Utc>> = row.get(0);
                if let Some(src) = source_newest
                    && (src - newest).to_std().unwrap_or_default() <= SKEW
                {
                    let mut r = CheckResult::new(
                        spec,
                        CheckStatus::Passed,
                        format!(
                            "newest {} {newest_text} is the source's newest at or before the target (nothing newer \
                             was written before it)",
                            s.column
                        ),
                    );
                    r.newest = Some(newest);
                    return r;
                }
            }
            Err(e) => return CheckResult::new(spec, CheckStatus::Error, format!("on the source: {}", db_error(&e))),
        }
    }
    let lag = (ctx.target - newest).to_std();
    let mut r = match lag {
        Err(_) if (newest - ctx.target).to_std().unwrap_or_default() > SKEW => CheckResult::new(
            spec,
            CheckStatus::Failed,
            format!("newest {} {newest_text} is after the target: the restore went past it", s.column),
        ),
        Err(_) => {
            CheckResult::new(spec, CheckStatus::Passed, format!("newest {} {newest_text}, at the target", s.column))
        }
        Ok(lag) if lag > max_lag => CheckResult::new(
            spec,
            CheckStatus::Failed,
            format!(
                "newest {} {newest_text} is {} before the target, more than {}",
                s.column,
                distinct_seconds(lag, max_lag),
                human_seconds(max_lag.as_secs_f64())
            ),
        ),
        Ok(lag) => CheckResult::new(
            spec,
            CheckStatus::Passed,
            format!("newest {} {newest_text}, {} before the target", s.column, human_seconds(lag.as_secs_f64())),
        ),
    };
    r.newest = Some(newest);
    r
}

/// `lag` for a message that says it exceeds `limit`: as people read durations, unless that rounds to the
/// same text as the limit (60.4 s and 60 s are both "1m 00s"), then in seconds with a decimal.
fn distinct_seconds(lag: Duration, limit: Duration) -> String {
    let text = human_seconds(lag.as_secs_f64());
    if text == human_seconds(limit.as_secs_f64()) { format!("{:.1}s", lag.as_secs_f64()) } else { text }
}
