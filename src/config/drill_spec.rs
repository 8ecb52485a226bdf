//! The resolved drill definition: what the engine runs. `drill.rs` builds it from the file.

use std::path::PathBuf;
use std::time::Duration;

use super::target::TargetSpec;
use super::tls::TlsSpec;

/// A validated drill definition.
#[derive(Debug, Clone)]
pub(crate) struct DrillSpec {
    pub(crate) name: String,
    pub(crate) file: PathBuf,
    pub(crate) description: Option<String>,
    pub(crate) restore: RestoreSpec,
    /// Object stores restored to the database's instant beside it (`also-restore`).
    pub(crate) also_restore: Vec<BucketRestoreSpec>,
    pub(crate) source: Option<SourceSpec>,
    pub(crate) target: TargetSpec,
    pub(crate) objectives: Objectives,
    pub(crate) verify: Vec<CheckSpec>,
    pub(crate) runbook: Option<PathBuf>,
    pub(crate) controls: Vec<String>,
    pub(crate) schedule: Option<ScheduleSpec>,
    pub(crate) metrics: MetricsSpec,
    pub(crate) timeouts: Timeouts,
    /// A demo drill (`demo: true`): its runs are `demo` runs whoever starts them, so they never count as
    /// evidence nor feed a forecast.
    pub(crate) demo: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum RestoreSpec {
    LocalPostgres(LocalPostgresSpec),
    AwsRdsInstance(super::aws_restore::RdsInstanceSpec),
    AwsAuroraCluster(super::aws_restore::AuroraClusterSpec),
    AwsBackup(super::aws_restore::AwsBackupSpec),
    PgDump(super::logical::PgDumpSpec),
    ExistingPostgres(super::logical::ExistingPostgresSpec),
    SupabaseBranch(super::logical::SupabaseBranchSpec),
    /// A bucket alone, restored to the target into a scratch bucket (no database).
    AwsS3Bucket(BucketRestoreSpec),
    /// A Supabase project's PITR restored to a new project from the dashboard.
    SupabaseNewProject(super::logical::SupabaseNewProjectSpec),
}

impl RestoreSpec {
    /// Every bucket the drill restores: the primary one of an `aws-s3-bucket` restore, then `also`.
    pub(crate) fn buckets<'a>(&'a self, also: &'a [BucketRestoreSpec]) -> impl Iterator<Item = &'a BucketRestoreSpec> {
        let primary = match self {
            RestoreSpec::AwsS3Bucket(b) => Some(b),
            _ => None,
        };
        primary.into_iter().chain(also)
    }

    /// The provider block's name as written.
    pub(crate) fn provider(&self) -> &'static str {
        match self {
            RestoreSpec::LocalPostgres(_) => "local-postgres",
            RestoreSpec::AwsRdsInstance(_) => "aws-rds-instance",
            RestoreSpec::AwsAuroraCluster(_) => "aws-aurora-cluster",
            RestoreSpec::AwsBackup(_) => "aws-backup",
            RestoreSpec::PgDump(_) => "pg-dump",
            RestoreSpec::ExistingPostgres(_) => "existing-postgres",
            RestoreSpec::SupabaseBranch(_) => "supabase-branch",
            RestoreSpec::AwsS3Bucket(_) => "aws-s3-bucket",
            RestoreSpec::SupabaseNewProject(_) => "supabase-new-project",
        }
    }

    /// The scratch settings of an AWS provider; `None` for a local restore.
    pub(crate) fn aws_scratch(&self) -> Option<&super::aws_restore::AwsScratchSpec> {
        match self {
            RestoreSpec::LocalPostgres(_)
            | RestoreSpec::PgDump(_)
            | RestoreSpec::ExistingPostgres(_)
            | RestoreSpec::SupabaseBranch(_)
            | RestoreSpec::SupabaseNewProject(_)
            | RestoreSpec::AwsS3Bucket(_) => None,
            RestoreSpec::AwsRdsInstance(r) => Some(&r.scratch),
            RestoreSpec::AwsAuroraCluster(r) => Some(&r.scratch),
            RestoreSpec::AwsBackup(r) => Some(&r.scratch),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LocalPostgresSpec {
    pub(crate) base_backups: PathBuf,
    pub(crate) wal_archive: PathBuf,
    pub(crate) scratch_root: PathBuf,
    /// The OS user PostgreSQL runs as when stackdrill runs as root.
    pub(crate) os_user: String,
    /// Database the verifiers connect to in the restore.
    pub(crate) database: Option<String>,
    /// Role the verifiers connect as in the restore (trust over the scratch's private socket).
    pub(crate) user: String,
    /// Workers for the one-pass verified copy of the base backup and for fetching WAL ahead of replay.
    pub(crate) parallel: usize,
    /// `shared_preload_libraries` the restored copy may keep; anything else (pg_cron, ...) is not loaded.
    pub(crate) allow_preload: Vec<String>,
}

/// The live source: where it is, how to prove who it is, and how to log in. Every session to it is
/// bounded (`statement_timeout`, `lock_timeout`) and named with the run id.
#[derive(Debug, Clone)]
pub(crate) struct SourceSpec {
    /// `None` only with `from-instance: true` (read from the source instance at run time).
    pub(crate) host: Option<String>,
    pub(crate) port: Option<u16>,
    /// `None` when the managed secret or the source instance names the user.
    pub(crate) user: Option<String>,
    pub(crate) dbname: String,
    pub(crate) password: SecretRef,
    pub(crate) tls: TlsSpec,
    /// Endpoint, port and managed master secret come from the RDS/Aurora source of the restore block.
    pub(crate) from_instance: bool,
    /// A replica for the heavy read-only checks; the canary still writes to the primary.
    pub(crate) read_from: Option<(String, u16)>,
    /// Caps every source statement; default: the drill's per-check timeout.
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) lock_timeout: Duration,
}

/// Where a secret comes from; the value itself is read at run time and never stored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef {
    None,
    Env(String),
    File(PathBuf),
    /// A Secrets Manager name or ARN: a JSON secret with `username`/`password` (as RDS-managed master
    /// secrets are) or a plain string.
    Secret(String),
    /// An RDS IAM authentication token, signed with the drill's AWS credentials.
    IamAuth,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Objectives {
    pub(crate) rto: Duration,
    pub(crate) rpo: Duration,
}

#[derive(Debug, Clone)]
pub(crate) enum CheckSpec {
    Canary(CanarySpec),
    Sql(SqlSpec),
    Checksum(ChecksumSpec),
    RowCount(RowCountSpec),
    Freshness(FreshnessSpec),
    Heartbeat(HeartbeatSpec),
    Amcheck(AmcheckSpec),
    Schema(SchemaSpec),
    ObjectRefs(ObjectRefsSpec),
    Objects(ObjectsSpec),
}

impl CheckSpec {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Canary(_) => "canary",
            CheckSpec::Sql(_) => "sql",
            CheckSpec::Checksum(_) => "checksum",
            CheckSpec::RowCount(_) => "row-count",
            CheckSpec::Freshness(_) => "freshness",
            CheckSpec::Heartbeat(_) => "heartbeat",
            CheckSpec::Amcheck(_) => "amcheck",
            CheckSpec::Schema(_) => "schema",
            CheckSpec::ObjectRefs(_) => "object-references",
            CheckSpec::Objects(_) => "objects",
        }
    }

    pub(crate) fn name(&self) -> String {
        match self {
            CheckSpec::Canary(_) => "canary".into(),
            CheckSpec::Sql(s) => s.name.clone(),
            CheckSpec::Checksum(c) => format!("checksum {}", c.table),
            CheckSpec::RowCount(c) => format!("row-count {}", c.table),
            CheckSpec::Freshness(c) => format!("freshness {}.{}", c.table, c.column),
            CheckSpec::Heartbeat(_) => "heartbeat".into(),
            CheckSpec::Amcheck(_) => "amcheck".into(),
            CheckSpec::Schema(_) => "schema".into(),
            CheckSpec::ObjectRefs(o) => o.name.clone().unwrap_or_else(|| format!("object-references {}", o.table)),
            CheckSpec::Objects(o) => format!("objects {}", o.restore),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ChecksumSpec {
    pub(crate) table: String,
    pub(crate) key: Vec<String>,
    pub(crate) until_column: Option<String>,
    /// Rows written within this span of the target are not compared: their transactions may have
    /// committed on either side of it.
    pub(crate) settle: Duration,
    pub(crate) max_keys: usize,
    pub(crate) buckets: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tolerance {
    Rows(u64),
    Percent(f64),
}

#[derive(Debug, Clone)]
pub(crate) struct RowCountSpec {
    pub(crate) table: String,
    pub(crate) until_column: Option<String>,
    pub(crate) compare_source: bool,
    pub(crate) tolerance: Tolerance,
    pub(crate) min: Option<u64>,
    pub(crate) max: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct FreshnessSpec {
    pub(crate) table: String,
    pub(crate) column: String,
    /// Default: the drill's RPO objective.
    pub(crate) max_lag: Option<Duration>,
}

/// `heartbeat`: the newest row of `stackdrill.heartbeat` in the restore is the recovery point it reached.
#[derive(Debug, Clone)]
pub(crate) struct HeartbeatSpec {
    /// How far the recovery point may lag the target. Default: the drill's RPO objective.
    pub(crate) max_lag: Option<Duration>,
}

#[derive(Debug, Clone)]
pub(crate) struct AmcheckSpec {
    pub(crate) heapallindexed: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct SchemaSpec {
    /// Only these tables; all user tables of the source when absent.
    pub(crate) tables: Option<Vec<String>>,
}

/// Rows of a restored table against the objects they name.
#[derive(Debug, Clone)]
pub(crate) struct ObjectRefsSpec {
    pub(crate) name: Option<String>,
    pub(crate) table: String,
    /// The column holding each row's object key (after `prefix`).
    pub(crate) key_column: String,
    pub(crate) size_column: Option<String>,
    pub(crate) checksum_column: Option<String>,
    pub(crate) algorithm: ChecksumAlgorithm,
    /// An SQL condition on the table (`where`).
    pub(crate) filter: Option<String>,
    /// Put before each key: the object's key is `prefix` + the column's value.
    pub(crate) prefix: String,
    /// How many rows' objects are read in full and their checksums compared.
    pub(crate) sample: usize,
    /// The sample's seed (recorded in the result); random when absent.
    pub(crate) seed: Option<u64>,
    /// Objects without a row fail the check (else they are reported).
    pub(crate) orphans_fail: bool,
    pub(crate) store: ObjectStoreSpec,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ChecksumAlgorithm {
    Sha256,
    Md5,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AsOf {
    /// The version of each object current at the drill's target time (a versioned bucket).
    Target,
    Now,
}

#[derive(Debug, Clone)]
pub(crate) enum ObjectStoreSpec {
    /// A bucket: `prefix` scopes the listing (default: the check's `prefix`).
    S3 { bucket: String, prefix: Option<String>, as_of: AsOf },
    /// A directory: object keys are paths under it.
    Dir(std::path::PathBuf),
    /// The scratch bucket an `also-restore` entry (by name) brought back to the drill's instant.
    Restored(String),
}

/// An S3 bucket (or a prefix of it) restored to the drill's instant into a scratch bucket.
#[derive(Debug, Clone)]
pub(crate) struct BucketRestoreSpec {
    /// How checks name this restore (`restore: NAME`, `restored: NAME`): `name`, else the bucket.
    pub(crate) name: String,
    pub(crate) bucket: String,
    /// Only keys under it are restored (empty: the whole bucket).
    pub(crate) prefix: String,
    pub(crate) from: BucketSource,
    /// The scratch bucket's region; the source bucket's when absent. Must be within `residency`.
    pub(crate) region: Option<String>,
    pub(crate) residency: Vec<String>,
    /// Copies in flight at once.
    pub(crate) parallel: usize,
    /// The scratch bucket's KMS key; the source bucket's default encryption when absent.
    pub(crate) kms_key: Option<String>,
    /// How long a scratch bucket may outlive its run before `drill cleanup` removes it.
    pub(crate) expires_after: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BucketSource {
    /// The version of every key current at the instant, copied server-side (a versioned bucket).
    Versions,
    /// An S3 recovery point of AWS Backup, restored by a restore job into a new bucket: `recovery_point`,
    /// else the one that reaches the instant (among `vault`'s when given).
    AwsBackup { vault: Option<String>, recovery_point: Option<String>, iam_role_arn: String },
}

/// `objects`: the restored bucket against the source's listing at the instant.
#[derive(Debug, Clone)]
pub(crate) struct ObjectsSpec {
    /// The `also-restore` entry compared.
    pub(crate) restore: String,
    /// How many objects are read in full from both buckets and their SHA-256 compared.
    pub(crate) sample: usize,
    pub(crate) seed: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct CanarySpec {
    pub(crate) table: String,
}

#[derive(Debug, Clone)]
pub(crate) struct SqlSpec {
    pub(crate) name: String,
    pub(crate) query: String,
    pub(crate) expect: Expect,
}

#[derive(Debug, Clone)]
pub(crate) struct Expect {
    pub(crate) equals: Option<String>,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) regex: Option<regex::Regex>,
    pub(crate) rows: Option<u64>,
}

impl Expect {
    /// The expectation as people read it: `equals 3`, `at least 1`, `matches ^ok$`, `2 rows`, joined.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.equals {
            parts.push(format!("equals {v}"));
        }
        match (self.min, self.max) {
            (Some(a), Some(b)) => parts.push(format!("between {a} and {b}")),
            (Some(a), None) => parts.push(format!("at least {a}")),
            (None, Some(b)) => parts.push(format!("at most {b}")),
            (None, None) => {}
        }
        if let Some(r) = &self.regex {
            parts.push(format!("matches {}", r.as_str()));
        }
        if let Some(n) = self.rows {
            parts.push(format!("{n} row{}", if n == 1 { "" } else { "s" }));
        }
        if parts.is_empty() { "any result".into() } else { parts.join(", ") }
    }
}

/// The `schedule:` block lives in the leaf `crate::cadence`, so report and drill read cadences without
/// the scheduler.
pub(crate) use crate::cadence::Schedule as ScheduleSpec;

#[derive(Debug, Clone, Default)]
pub(crate) struct MetricsSpec {
    pub(crate) cloudwatch_namespace: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// `None`: the provider's default (`drill::restore::plan_timeout`), which knows how slow its backups
    /// become restorable.
    pub(crate) plan: Option<Duration>,
    pub(crate) restore: Duration,
    pub(crate) ready: Duration,
    pub(crate) verify: Duration,
    pub(crate) check: Duration,
    pub(crate) teardown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            plan: None,
            restore: Duration::from_secs(2 * 3600),
            ready: Duration::from_secs(2 * 3600),
            verify: Duration::from_secs(3600),
            check: Duration::from_secs(15 * 60),
            teardown: Duration::from_secs(10 * 60),
        }
    }
}
