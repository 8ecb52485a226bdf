//! The provider trait every restore provider implements, and what they hand back: the backup used, the
//! scratch endpoint, the teardown record.

use chrono::{DateTime, Utc};

use super::TeardownStatus;
use crate::drill::error::{DrillError, RestoreError};
use crate::drill::target::{ResolvedTarget, Window};

/// How long the plan phase may take: the drill file's `timeouts.plan`, else the provider's default.
pub(crate) fn plan_timeout(spec: &crate::config::DrillSpec) -> std::time::Duration {
    spec.timeouts.plan.unwrap_or_else(|| super::registry::kind(&spec.restore).plan_timeout())
}

/// What a restore hands the checks: engine-neutral, so the runner and the checks never ask which provider
/// made it.
///
/// This is the seam for another engine: PostgreSQL is the one database engine today (`Postgres`, reached
/// through an [`Endpoint`] and checked by `verify/`'s SQL checks). A MySQL restore on RDS, or the queue's
/// DynamoDB tables, would add a variant here carrying how to reach it, and its own arm in
/// `runner::verify_or_skip` where the checks that understand it run; the providers that make it return
/// that variant from `wait_ready`. A bucket restored alone is the other kind of restore there is.
pub(crate) enum Restored {
    /// A PostgreSQL database accepting queries as a primary.
    Postgres(Box<Endpoint>),
    /// A bucket restored alone (`aws-s3-bucket`): no database, its checks read the bucket.
    Bucket(super::RestoredBucket),
}

/// How to reach a restored PostgreSQL database (`Restored::Postgres`).
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: crate::config::TlsSpec,
    /// The name the server certificate must carry when it is not the host connected to (a tunnel).
    pub(crate) server_name: Option<String>,
    /// Where the credential came from, for the report; `None`: the provider's fresh password, or trust
    /// over a private socket.
    pub(crate) credential: Option<&'static str>,
    /// Where it is, without any secret.
    pub(crate) display: String,
}

impl Endpoint {
    /// How the drill's connection to this scratch is protected, for the report.
    pub(crate) async fn record(&self, client: &tokio_postgres::Client) -> crate::report::model::Connection {
        let socket = self.config.get_hosts().iter().all(|h| !matches!(h, tokio_postgres::config::Host::Tcp(_)));
        let mut record = crate::drill::source::connection_record(
            client,
            "scratch",
            self.display.clone(),
            &self.tls,
            self.credential.unwrap_or(if socket {
                "local trust (private socket)"
            } else {
                "fresh password (in memory only)"
            }),
        )
        .await;
        if socket {
            record.transport = "unix-socket".into();
        }
        record
    }
}

/// The backup a restore starts from, for the report.
#[derive(Debug, Clone)]
pub(crate) struct BackupUsed {
    pub(crate) id: String,
    pub(crate) location: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
}

/// What teardown did.
#[derive(Debug, Clone)]
pub(crate) struct Teardown {
    pub(crate) status: TeardownStatus,
    pub(crate) at: DateTime<Utc>,
    pub(crate) detail: String,
}

impl Teardown {
    /// Two teardown steps as one record: failed if either failed, done if either did something.
    pub(crate) fn and(self, next: Teardown) -> Teardown {
        use TeardownStatus::*;
        let status = match (self.status, next.status) {
            (Failed, _) | (_, Failed) => Failed,
            (Done, _) | (_, Done) => Done,
            _ => NothingToDo,
        };
        Teardown { status, at: next.at, detail: format!("{}; {}", self.detail, next.detail) }
    }

    /// The record of a guarded delete: `Ok(true)` deleted (`done` says what), `Ok(false)` nothing was
    /// there (`absent` says what), `Err` why it failed.
    pub(crate) fn from_delete(r: Result<bool, impl std::fmt::Display>, done: String, absent: String) -> Teardown {
        let (status, detail) = match r {
            Ok(true) => (TeardownStatus::Done, done),
            Ok(false) => (TeardownStatus::NothingToDo, absent),
            Err(e) => (TeardownStatus::Failed, e.to_string()),
        };
        Teardown { status, at: Utc::now(), detail }
    }
}

/// A place backups can be restored from into an isolated scratch copy. A provider is built by its
/// `registry::ProviderKind` (one line in `registry::kind`) and described to the report through these methods.
#[async_trait::async_trait]
pub(crate) trait RestoreProvider: Send {
    /// The provider's name as written in drill files (`local-postgres`).
    fn name(&self) -> &'static str;
    /// Facts about the source for the report: key, value.
    fn describe(&self) -> Vec<(&'static str, String)>;
    async fn window(&mut self) -> Result<Window, DrillError>;
    /// Waits until a commit after `t` is recoverable, so a restore to `t` can stop exactly there.
    async fn wait_recoverable(&mut self, t: DateTime<Utc>, source: &tokio_postgres::Client) -> Result<(), DrillError>;
    /// Picks the backup to restore from; fails when none precedes the target.
    fn plan(&mut self, target: &ResolvedTarget) -> Result<BackupUsed, DrillError>;
    /// Creates the scratch environment and starts recovery to the target.
    async fn restore(&mut self, target: &ResolvedTarget) -> Result<(), RestoreError>;
    /// Waits until the restored copy can be checked (a database accepting queries as a primary) and says
    /// how to reach it.
    async fn wait_ready(&mut self) -> Result<Restored, RestoreError>;
    /// Whether the copy needs a ready phase (`wait_ready` waits for something); a bucket restored alone is
    /// there once the restore phase ends, and `wait_ready` then only hands it over.
    fn has_ready_phase(&self) -> bool {
        true
    }
    /// What was switched off in the restored copy so it could not act (archive and recovery commands,
    /// replication, job schedulers), for the report.
    fn neutralised(&self) -> Vec<String> {
        Vec::new()
    }
    /// Hears the verdict before teardown (AWS Backup records it against the restore job). `Err` is a
    /// warning, never a failed drill.
    async fn validated(&mut self, verdict: &DataVerdict) -> Result<(), crate::aws::AwsError> {
        let _ = verdict;
        Ok(())
    }
    /// What a person must do for the restore to `t` (a dashboard step), when the provider cannot do it itself:
    /// printed by the run and shown by `drill plan`.
    fn operator_step(&self, t: DateTime<Utc>) -> Option<String> {
        let _ = t;
        None
    }
    /// Checks the provider judged itself before restoring (a Supabase project's backup health): recorded
    /// first among the checks, and a failed one fails the drill like any other.
    fn gate_checks(&self) -> Vec<crate::drill::verify::CheckResult> {
        Vec::new()
    }
    /// Removes everything the restore created; safe to call on every path, and more than once.
    async fn teardown(&mut self) -> Teardown;
    /// The API call counter of a provider that calls AWS, for per-phase call counts in the report.
    fn calls(&self) -> Option<&crate::aws::CallCounter> {
        None
    }
    /// When nothing replayed can be timed, the newest commit is at least this old (the base backup's
    /// start for a local restore), and why: T minus it bounds the RPO from above.
    fn rpo_floor(&self) -> Option<(DateTime<Utc>, &'static str)> {
        None
    }
    /// The moment the restored data stands at when the backup, not the target, fixes it (a logical
    /// dump's time): checks against the source cut there instead of at the target.
    fn data_as_of(&self) -> Option<DateTime<Utc>> {
        None
    }
    /// How the restore reached its data, for the report, when it is not WAL replay to the target.
    fn recovery(&self) -> Option<String> {
        None
    }
    /// Problems the restore worked around (an extension not installed here): what, and what to do.
    fn findings(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The bytes the chosen backup brings back (known after `plan`), for the RTO forecast; recorded in the
    /// report as `restored_bytes`.
    fn restored_bytes(&self) -> Option<u64> {
        None
    }
    /// The RTO when the provider knows better than the drill's clock (a restore someone made by hand
    /// started before the drill): seconds until `ready_at`.
    fn rto_seconds(&self, ready_at: DateTime<Utc>) -> Option<f64> {
        let _ = ready_at;
        None
    }
}

/// The verdict on the restored data a provider hears before teardown (`RestoreProvider::validated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataVerdict {
    /// Every check passed.
    Verified,
    /// Why the data was not verified: the first bad check, or the drill's reason.
    NotVerified(String),
}
