//! One check: its result, what it can reach, and running it within its deadline.

use std::time::{Duration, Instant};

use crate::config::CheckSpec;

use crate::report::model::CheckStatus;

/// How one check ended, in the engine (the report has its own `model::Check`).
#[derive(Debug, Clone)]
pub(crate) struct CheckResult {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) status: CheckStatus,
    /// One line, never containing row contents or secrets.
    pub(crate) detail: String,
    pub(crate) seconds: f64,
    /// The newest timestamp a `freshness` check found: the RPO basis when replay times are unavailable.
    pub(crate) newest: Option<chrono::DateTime<chrono::Utc>>,
    /// What a `heartbeat` check measured: the RPO basis that outranks every other.
    pub(crate) heartbeat: Option<HeartbeatPoint>,
}

/// The recovery point a `heartbeat` check found, and what the RPO is measured from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HeartbeatPoint {
    /// The newest heartbeat row in the restore.
    pub(crate) at: chrono::DateTime<chrono::Utc>,
    /// The target, or (target `latest`) the source's newest heartbeat when the drill planned.
    pub(crate) reference: chrono::DateTime<chrono::Utc>,
    /// The target was `latest`: a recovery point after the reference lost nothing.
    pub(crate) latest: bool,
}

impl HeartbeatPoint {
    /// The RPO in seconds: the reference minus the recovery point (never below 0 for `latest`).
    pub(crate) fn rpo_seconds(&self) -> f64 {
        let s = (self.reference - self.at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        if self.latest { s.max(0.0) } else { s }
    }
}

impl CheckResult {
    pub(crate) fn new(spec: &CheckSpec, status: CheckStatus, detail: impl Into<String>) -> Self {
        CheckResult {
            name: spec.name(),
            kind: spec.kind().into(),
            status,
            detail: detail.into(),
            seconds: 0.0,
            newest: None,
            heartbeat: None,
        }
    }
}

/// What the checks can reach.
pub(crate) struct Context<'a> {
    pub(crate) restore: &'a tokio_postgres::Client,
    /// The session `sql` checks run in: the read-only role's login where the drill's own session to the
    /// restore is a superuser (see `reader.rs`), else the same session as `restore`.
    pub(crate) reader: &'a tokio_postgres::Client,
    pub(crate) source: Option<&'a tokio_postgres::Client>,
    pub(crate) canary: Option<&'a super::canary::Written>,
    pub(crate) target: chrono::DateTime<chrono::Utc>,
    /// The drill's RPO objective (the default freshness bound).
    pub(crate) rpo: Duration,
    /// The resolved target's time (`target` above is where source reads cut, a dump's moment for one).
    pub(crate) target_time: chrono::DateTime<chrono::Utc>,
    /// The target is `latest`: the heartbeat's RPO is measured from the source's newest heartbeat.
    pub(crate) latest: bool,
    /// Cancel the sessions' running queries when a check gives up, so nothing keeps running (and holding
    /// a snapshot and locks) on the source after its check has ended.
    pub(crate) cancellers: &'a [crate::pg::Canceller],
    /// Credentials and endpoint for checks that read AWS (an `object-references` bucket).
    pub(crate) aws: &'a crate::aws::AwsSettings,
    /// Buckets restored beside the database (`also-restore`), by name.
    pub(crate) restored: &'a [crate::drill::restore::RestoredBucket],
}

/// Runs one check under its timeout; a check that could not run never reports passed.
#[tracing::instrument(skip_all, fields(check = %spec.name()))]
pub(crate) async fn run_check(spec: &CheckSpec, ctx: &Context<'_>, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let fut = async {
        match spec {
            CheckSpec::Canary(c) => super::canary::verify(spec, c, ctx).await,
            CheckSpec::Sql(s) => super::sql::verify(spec, s, ctx.reader).await,
            CheckSpec::Checksum(c) => super::checksum::verify(spec, c, ctx).await,
            CheckSpec::RowCount(c) => super::row_count::verify(spec, c, ctx).await,
            CheckSpec::Freshness(c) => super::freshness::verify(spec, c, ctx).await,
            CheckSpec::Heartbeat(c) => super::heartbeat::verify(spec, c, ctx).await,
            CheckSpec::Amcheck(c) => super::amcheck::verify(spec, c, ctx).await,
            CheckSpec::Schema(c) => super::schema::verify(spec, c, ctx).await,
            CheckSpec::ObjectRefs(c) => super::object_refs::verify(spec, c, ctx).await,
            CheckSpec::Objects(c) => super::objects::verify(spec, c, ctx).await,
        }
    };
    let mut result = match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => {
            for c in ctx.cancellers {
                c.cancel().await;
            }
            // The check's snapshot transaction never reached its rollback: end it, so the next check
            // starts a clean transaction instead of failing in an aborted one.
            for c in ctx.source.into_iter().chain([ctx.restore, ctx.reader]) {
                let _ = tokio::time::timeout(Duration::from_secs(5), c.batch_execute("rollback")).await;
            }
            CheckResult::new(
                spec,
                CheckStatus::Error,
                format!("did not finish within {}; its queries were cancelled", humantime::format_duration(timeout)),
            )
        }
    };
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// Runs one check of a bucket restored alone: `objects` against the restored buckets (validation allows no
/// other check there).
pub(crate) async fn run_bucket_check(
    spec: &CheckSpec,
    restored: &[crate::drill::restore::RestoredBucket],
    timeout: Duration,
) -> CheckResult {
    let started = Instant::now();
    let mut result = match spec {
        CheckSpec::Objects(o) => {
            match tokio::time::timeout(timeout, super::objects::verify_bucket(spec, o, restored)).await {
                Ok(r) => r,
                Err(_) => CheckResult::new(
                    spec,
                    CheckStatus::Error,
                    format!("did not finish within {}", humantime::format_duration(timeout)),
                ),
            }
        }
        _ => CheckResult::new(spec, CheckStatus::Error, "checks a restored database, and a bucket restore has none"),
    };
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// A seeded uniform sample of at most `size` items of a stream (reservoir sampling, algorithm R): every item
/// offered is equally likely to be kept; an item is built only when it is kept.
pub(super) struct Reservoir<T> {
    seen: u64,
    pub(super) items: Vec<T>,
}

// By hand: derived, it would ask `T: Default`.
impl<T> Default for Reservoir<T> {
    fn default() -> Self {
        Reservoir { seen: 0, items: Vec::new() }
    }
}

impl<T> Reservoir<T> {
    pub(super) fn offer(&mut self, size: usize, make: impl FnOnce() -> T, rng: &mut rand::rngs::StdRng) {
        use rand::Rng;
        self.seen += 1;
        if self.items.len() < size {
            self.items.push(make());
        } else {
            let j = rng.gen_range(0..self.seen) as usize;
            if j < size {
                self.items[j] = make();
            }
        }
    }
}

/// A database error as one line, without the query text.
pub(crate) fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}
