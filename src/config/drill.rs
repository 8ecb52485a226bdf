//! The drill file (`drills/*.yaml`): strict raw structs as written, then a resolved [`DrillSpec`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::duration::parse_duration;
use super::error::{ConfigError, Problems, from_serde};
use super::locate::Locations;
use super::target::{TargetSpec, parse_target_time};
use super::tls::TlsSpec;

// ---------------------------------------------------------------- raw, as written

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDrill {
    name: Option<String>,
    description: Option<String>,
    restore: RawRestore,
    source: Option<RawSource>,
    target: Option<RawTarget>,
    objectives: RawObjectives,
    #[serde(default)]
    verify: Vec<RawCheck>,
    runbook: Option<String>,
    #[serde(default)]
    controls: Vec<String>,
    schedule: Option<RawSchedule>,
    metrics: Option<RawMetrics>,
    timeouts: Option<RawTimeouts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum RawRestore {
    LocalPostgres(RawLocalPostgres),
    AwsRdsInstance(super::aws_restore::RawRdsInstance),
    AwsAuroraCluster(super::aws_restore::RawAuroraCluster),
    AwsBackup(super::aws_restore::RawAwsBackup),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLocalPostgres {
    base_backups: String,
    wal_archive: String,
    scratch_root: String,
    os_user: Option<String>,
    database: Option<String>,
    user: Option<String>,
    copy_jobs: Option<usize>,
    allow_preload: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSource {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    dbname: String,
    password_env: Option<String>,
    password_file: Option<String>,
    password_secret: Option<String>,
    iam_auth: Option<bool>,
    from_instance: Option<bool>,
    sslmode: Option<String>,
    ca_bundle: Option<String>,
    read_from: Option<RawReadFrom>,
    statement_timeout: Option<String>,
    lock_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawReadFrom {
    host: String,
    port: Option<u16>,
}

/// `latest`, `random`, `{ at: TIME }`, `{ ago: DURATION }`, `{ random: { seed: N } }`.
enum RawTarget {
    Word(String),
    At(String),
    Ago(String),
    Random(RawRandom),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRandom {
    seed: Option<u64>,
}

impl<'de> Deserialize<'de> for RawTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawTarget;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`latest`, `random`, `{ at: TIME }`, `{ ago: DURATION }` or `{ random: { seed: N } }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawTarget, E> {
                Ok(RawTarget::Word(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawTarget, A::Error> {
                let key: String = map.next_key()?.ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let value = match key.as_str() {
                    "at" => RawTarget::At(map.next_value()?),
                    "ago" => RawTarget::Ago(map.next_value()?),
                    "random" => RawTarget::Random(map.next_value()?),
                    other => {
                        return Err(serde::de::Error::unknown_field(other, &["at", "ago", "random"]));
                    }
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(serde::de::Error::custom("a target has exactly one of `at`, `ago`, `random`"));
                }
                Ok(value)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawObjectives {
    rto: String,
    rpo: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum RawCheck {
    Canary(RawCanary),
    Sql(RawSql),
    Checksum(RawChecksum),
    RowCount(RawRowCount),
    Freshness(RawFreshness),
    Amcheck(RawAmcheck),
    Schema(RawSchema),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawChecksum {
    table: String,
    key: RawKey,
    until_column: Option<String>,
    settle: Option<String>,
    max_keys: Option<usize>,
    buckets: Option<u32>,
}

/// `key: id` or `key: [tenant_id, id]`.
struct RawKey(Vec<String>);

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a column name or a list of column names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawKey, E> {
                Ok(RawKey(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawKey, A::Error> {
                let mut cols = Vec::new();
                while let Some(c) = seq.next_element::<String>()? {
                    cols.push(c);
                }
                Ok(RawKey(cols))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRowCount {
    table: String,
    until_column: Option<String>,
    compare: Option<String>,
    tolerance: Option<String>,
    min: Option<u64>,
    max: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFreshness {
    table: String,
    column: String,
    max_lag: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAmcheck {
    heapallindexed: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSchema {
    tables: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCanary {
    table: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSql {
    name: String,
    query: String,
    expect: RawExpect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawExpect {
    equals: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
    regex: Option<String>,
    rows: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSchedule {
    #[serde(alias = "expression")]
    cron: String,
    timezone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMetrics {
    cloudwatch: Option<RawCloudwatch>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCloudwatch {
    namespace: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTimeouts {
    plan: Option<String>,
    restore: Option<String>,
    ready: Option<String>,
    verify: Option<String>,
    check: Option<String>,
    teardown: Option<String>,
}

// ---------------------------------------------------------------- resolved

/// A validated drill definition.
#[derive(Debug, Clone)]
pub(crate) struct DrillSpec {
    pub(crate) name: String,
    pub(crate) file: PathBuf,
    pub(crate) description: Option<String>,
    pub(crate) restore: RestoreSpec,
    pub(crate) source: Option<SourceSpec>,
    pub(crate) target: TargetSpec,
    pub(crate) objectives: Objectives,
    pub(crate) verify: Vec<CheckSpec>,
    pub(crate) runbook: Option<PathBuf>,
    pub(crate) controls: Vec<String>,
    pub(crate) schedule: Option<ScheduleSpec>,
    pub(crate) metrics: MetricsSpec,
    pub(crate) timeouts: Timeouts,
}

#[derive(Debug, Clone)]
pub(crate) enum RestoreSpec {
    LocalPostgres(LocalPostgresSpec),
    AwsRdsInstance(super::aws_restore::RdsInstanceSpec),
    AwsAuroraCluster(super::aws_restore::AuroraClusterSpec),
    AwsBackup(super::aws_restore::AwsBackupSpec),
}

impl RestoreSpec {
    /// The provider block's name as written.
    pub(crate) fn provider(&self) -> &'static str {
        match self {
            RestoreSpec::LocalPostgres(_) => "local-postgres",
            RestoreSpec::AwsRdsInstance(_) => "aws-rds-instance",
            RestoreSpec::AwsAuroraCluster(_) => "aws-aurora-cluster",
            RestoreSpec::AwsBackup(_) => "aws-backup",
        }
    }

    /// The scratch settings of an AWS provider; `None` for a local restore.
    pub(crate) fn aws_scratch(&self) -> Option<&super::aws_restore::AwsScratchSpec> {
        match self {
            RestoreSpec::LocalPostgres(_) => None,
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
    pub(crate) copy_jobs: usize,
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
    Amcheck(AmcheckSpec),
    Schema(SchemaSpec),
}

impl CheckSpec {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Canary(_) => "canary",
            CheckSpec::Sql(_) => "sql",
            CheckSpec::Checksum(_) => "checksum",
            CheckSpec::RowCount(_) => "row-count",
            CheckSpec::Freshness(_) => "freshness",
            CheckSpec::Amcheck(_) => "amcheck",
            CheckSpec::Schema(_) => "schema",
        }
    }

    pub(crate) fn name(&self) -> String {
        match self {
            CheckSpec::Canary(_) => "canary".into(),
            CheckSpec::Sql(s) => s.name.clone(),
            CheckSpec::Checksum(c) => format!("checksum {}", c.table),
            CheckSpec::RowCount(c) => format!("row-count {}", c.table),
            CheckSpec::Freshness(c) => format!("freshness {}.{}", c.table, c.column),
            CheckSpec::Amcheck(_) => "amcheck".into(),
            CheckSpec::Schema(_) => "schema".into(),
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

#[derive(Debug, Clone)]
pub(crate) struct AmcheckSpec {
    pub(crate) heapallindexed: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct SchemaSpec {
    /// Only these tables; all user tables of the source when absent.
    pub(crate) tables: Option<Vec<String>>,
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

#[derive(Debug, Clone)]
pub(crate) struct ScheduleSpec {
    /// As written in the drill file.
    pub(crate) cron: String,
    pub(crate) expr: crate::schedule::Expr,
    pub(crate) timezone: chrono_tz::Tz,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct MetricsSpec {
    pub(crate) cloudwatch_namespace: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) plan: Duration,
    pub(crate) restore: Duration,
    pub(crate) ready: Duration,
    pub(crate) verify: Duration,
    pub(crate) check: Duration,
    pub(crate) teardown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            plan: Duration::from_secs(5 * 60),
            restore: Duration::from_secs(2 * 3600),
            ready: Duration::from_secs(2 * 3600),
            verify: Duration::from_secs(3600),
            check: Duration::from_secs(15 * 60),
            teardown: Duration::from_secs(10 * 60),
        }
    }
}

// ---------------------------------------------------------------- loading

/// Reads and validates one drill file; every problem found is returned.
pub(crate) fn load_drill(path: &Path) -> Result<DrillSpec, Vec<ConfigError>> {
    parse_drill(&read_file(path)?, path)
}

/// Parses drill text; `path` names the file in errors and gives the default drill name.
pub(crate) fn parse_drill(text: &str, path: &Path) -> Result<DrillSpec, Vec<ConfigError>> {
    parse_with(text, path, resolve)
}

/// A configuration file's text, or the error that names it.
pub(super) fn read_file(path: &Path) -> Result<String, Vec<ConfigError>> {
    std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
            hint: None,
        }]
    })
}

/// Deserialises `text` strictly into `R`, then resolves it, collecting every problem (sorted by place).
pub(super) fn parse_with<R: serde::de::DeserializeOwned, T>(
    text: &str,
    path: &Path,
    resolve: impl FnOnce(R, &Path, &mut Problems<'_>) -> T,
) -> Result<T, Vec<ConfigError>> {
    // Before any recursive parser sees it: thousands of nested levels would exhaust the stack.
    if let Some((line, column)) = super::locate::too_deep(text) {
        return Err(vec![ConfigError {
            file: path.to_path_buf(),
            line: Some(line),
            column: Some(column),
            key: String::new(),
            message: format!(
                "nested more than {} levels deep; no stackdrill file needs that",
                super::locate::MAX_DEPTH
            ),
            hint: None,
        }]);
    }
    let locations = Locations::index(text);
    let raw: R = deserialize(text).map_err(|e| vec![from_serde(path, &locations, e)])?;
    let mut problems = Problems::new(path, &locations);
    let spec = resolve(raw, path, &mut problems);
    if problems.errors.is_empty() {
        return Ok(spec);
    }
    let mut errors = problems.errors;
    errors.sort_by_key(|e| (e.line, e.column));
    Err(errors)
}

/// Strict deserialisation with the key path of the first error. Providers and checks are written as
/// single-key maps (`restore: { local-postgres: {..} }`), which serde_norway takes via `singleton_map_recursive`.
fn deserialize<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, serde_path_to_error::Error<serde_norway::Error>> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_norway::Deserializer::from_str(text);
    let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
    serde_norway::with::singleton_map_recursive::deserialize(tracked)
        .map_err(|e| serde_path_to_error::Error::new(track.path(), e))
}

/// RestoreDBClusterToPointInTime takes no RestoreToTime with RestoreType copy-on-write: a clone is of the
/// latest restorable time, which a canary's bracketing target or a past target cannot be.
fn check_copy_on_write(p: &mut Problems<'_>, restore: &RestoreSpec, target: &TargetSpec, checks: &[CheckSpec]) {
    if let RestoreSpec::AwsAuroraCluster(a) = &restore
        && a.copy_on_write
    {
        let key = "restore.aws-aurora-cluster.copy-on-write";
        if !matches!(target, TargetSpec::Latest) {
            p.push(key, "a copy-on-write clone restores only to the latest restorable time: use `target: latest`");
        } else if checks.iter().any(|c| matches!(c, CheckSpec::Canary(_))) {
            p.push(key, "a copy-on-write clone restores only to the latest restorable time, past the canary's target: drop the canary check or use a full copy");
        }
    }
}

/// The `verify` list: each check resolved, every problem pushed; `has_source` says whether checks that read
/// the live source can.
fn resolve_checks(p: &mut Problems<'_>, verify: Vec<RawCheck>, has_source: bool) -> Vec<CheckSpec> {
    let mut checks = Vec::new();
    let mut sql_names = std::collections::HashSet::new();
    for (i, check) in verify.into_iter().enumerate() {
        match check {
            RawCheck::Canary(RawCanary { table }) => {
                if !has_source {
                    p.push(
                        format!("verify[{i}].canary"),
                        "the canary check writes to the live source: add a `source` connection",
                    );
                }
                let table = table.unwrap_or_else(|| "stackdrill_canary".into());
                if !is_identifier(&table) {
                    p.push(format!("verify[{i}].canary.table"), "must be a plain SQL identifier (a-z, 0-9, _)");
                }
                checks.push(CheckSpec::Canary(CanarySpec { table }));
            }
            RawCheck::Sql(RawSql { name, query, expect }) => {
                let key = format!("verify[{i}].sql");
                if name.trim().is_empty() {
                    p.push(format!("{key}.name"), "must not be empty");
                } else if !sql_names.insert(name.clone()) {
                    p.push(format!("{key}.name"), format!("another sql check is already named `{name}`"));
                }
                if query.trim().is_empty() {
                    p.push(format!("{key}.query"), "must not be empty");
                }
                let RawExpect { equals, min, max, regex, rows } = expect;
                if equals.is_none() && min.is_none() && max.is_none() && regex.is_none() && rows.is_none() {
                    p.push(format!("{key}.expect"), "needs at least one of equals, min, max, regex, rows");
                }
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    p.push(format!("{key}.expect.min"), format!("min {lo} is greater than max {hi}"));
                }
                let regex = regex.and_then(|r| match regex::Regex::new(&r) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        p.push(format!("{key}.expect.regex"), format!("invalid regex: {e}"));
                        None
                    }
                });
                checks.push(CheckSpec::Sql(SqlSpec { name, query, expect: Expect { equals, min, max, regex, rows } }));
            }
            RawCheck::Checksum(RawChecksum { table, key, until_column, settle, max_keys, buckets }) => {
                let k = format!("verify[{i}].checksum");
                need_source(p, &k, has_source, "compares the restore with the live source");
                check_table(p, &format!("{k}.table"), &table);
                if key.0.is_empty() {
                    p.push(format!("{k}.key"), "needs at least one key column");
                }
                for (j, c) in key.0.iter().enumerate() {
                    check_column(p, &format!("{k}.key[{j}]"), c);
                }
                if let Some(c) = &until_column {
                    check_column(p, &format!("{k}.until-column"), c);
                }
                let settle = settle.map_or(Duration::from_secs(1), |s| duration_or_zero(p, &format!("{k}.settle"), &s));
                let buckets = buckets.unwrap_or(256);
                if !(2..=4096).contains(&buckets) {
                    p.push(format!("{k}.buckets"), "must be between 2 and 4096");
                }
                checks.push(CheckSpec::Checksum(ChecksumSpec {
                    table,
                    key: key.0,
                    until_column,
                    settle,
                    max_keys: max_keys.unwrap_or(10),
                    buckets,
                }));
            }
            RawCheck::RowCount(RawRowCount { table, until_column, compare, tolerance, min, max }) => {
                let k = format!("verify[{i}].row-count");
                check_table(p, &format!("{k}.table"), &table);
                if let Some(c) = &until_column {
                    check_column(p, &format!("{k}.until-column"), c);
                }
                let compare_source = match compare.as_deref() {
                    None => false,
                    Some("source") => true,
                    Some(other) => {
                        p.push(
                            format!("{k}.compare"),
                            format!("unknown comparison `{other}`: the only one is `source`"),
                        );
                        false
                    }
                };
                if compare_source {
                    need_source(p, &k, has_source, "with `compare: source` counts the live source");
                } else if min.is_none() && max.is_none() {
                    p.push(k.clone(), "needs `compare: source`, or `min` and/or `max`");
                }
                let tolerance = match tolerance.as_deref().map(str::trim) {
                    None => Tolerance::Rows(0),
                    Some(t) => match t.strip_suffix('%') {
                        Some(pct) => match pct.trim().parse::<f64>() {
                            Ok(v) if (0.0..=100.0).contains(&v) => Tolerance::Percent(v),
                            _ => {
                                p.push(format!("{k}.tolerance"), format!("invalid percentage `{t}`"));
                                Tolerance::Rows(0)
                            }
                        },
                        None => t.parse().map(Tolerance::Rows).unwrap_or_else(|_| {
                            p.push(
                                format!("{k}.tolerance"),
                                format!("`{t}` is neither a row count nor a percentage like `0.5%`"),
                            );
                            Tolerance::Rows(0)
                        }),
                    },
                };
                checks.push(CheckSpec::RowCount(RowCountSpec {
                    table,
                    until_column,
                    compare_source,
                    tolerance,
                    min,
                    max,
                }));
            }
            RawCheck::Freshness(RawFreshness { table, column, max_lag }) => {
                let k = format!("verify[{i}].freshness");
                check_table(p, &format!("{k}.table"), &table);
                check_column(p, &format!("{k}.column"), &column);
                let max_lag = max_lag.map(|m| duration_or_zero(p, &format!("{k}.max-lag"), &m));
                checks.push(CheckSpec::Freshness(FreshnessSpec { table, column, max_lag }));
            }
            RawCheck::Amcheck(RawAmcheck { heapallindexed }) => {
                checks.push(CheckSpec::Amcheck(AmcheckSpec { heapallindexed: heapallindexed.unwrap_or(true) }));
            }
            RawCheck::Schema(RawSchema { tables }) => {
                let k = format!("verify[{i}].schema");
                if let Some(ts) = &tables {
                    for (j, t) in ts.iter().enumerate() {
                        check_table(p, &format!("{k}.tables[{j}]"), t);
                    }
                } else {
                    need_source(p, &k, has_source, "without `tables` compares with the live source");
                }
                checks.push(CheckSpec::Schema(SchemaSpec { tables }));
            }
        }
    }
    checks
}

/// Resolves the `source` block: credentials from exactly one place, TLS, session bounds.
fn source_spec(p: &mut Problems<'_>, s: RawSource, restore: &RestoreSpec) -> SourceSpec {
    let RawSource {
        host,
        port,
        user,
        dbname,
        password_env,
        password_file,
        password_secret,
        iam_auth,
        from_instance,
        sslmode,
        ca_bundle,
        read_from,
        statement_timeout,
        lock_timeout,
    } = s;
    let iam_auth = iam_auth.unwrap_or(false);
    let from_instance = from_instance.unwrap_or(false);
    let mut given: Vec<(&str, SecretRef)> = Vec::new();
    if let Some(e) = password_env {
        given.push(("password-env", SecretRef::Env(e)));
    }
    if let Some(f) = password_file {
        given.push(("password-file", SecretRef::File(f.into())));
    }
    if let Some(n) = password_secret {
        if n.trim().is_empty() {
            p.push("source.password-secret", "must name a Secrets Manager secret (its name or ARN)");
        }
        given.push(("password-secret", SecretRef::Secret(n)));
    }
    if iam_auth {
        given.push(("iam-auth", SecretRef::IamAuth));
    }
    if given.len() > 1 {
        let names: Vec<&str> = given.iter().map(|(k, _)| *k).collect();
        p.push(format!("source.{}", names[1]), format!("give one way to log in, not {}", names.join(" and ")));
    }
    let password = given.into_iter().next().map_or(SecretRef::None, |(_, s)| s);
    let rds_source = matches!(restore, RestoreSpec::AwsRdsInstance(_) | RestoreSpec::AwsAuroraCluster(_));
    if from_instance && !rds_source {
        p.push(
            "source.from-instance",
            "only an aws-rds-instance or aws-aurora-cluster restore names a source instance to read it from",
        );
    }
    for (key, h) in
        [("source.host", host.as_deref()), ("source.read-from.host", read_from.as_ref().map(|r| r.host.as_str()))]
    {
        if let Some(h) = h
            && (h.is_empty() || h.chars().any(|c| c.is_whitespace() || "/?#@\\'\"".contains(c)))
        {
            p.push(key, format!("`{h}` is not a host name or address"));
        }
    }
    if host.is_none() && !from_instance {
        p.push("source.host", "missing: give `host` (or `from-instance: true` for an RDS/Aurora source)");
    }
    let named_elsewhere = from_instance || matches!(password, SecretRef::Secret(_));
    if user.is_none() && !named_elsewhere {
        p.push("source.user", "missing: give `user` (a managed secret or `from-instance` can name it instead)");
    }
    if iam_auth && user.is_none() {
        p.push("source.iam-auth", "IAM authentication needs `user` (the database user granted rds_iam)");
    }
    let tls = super::tls::tls_spec(p, "source", sslmode.as_deref(), ca_bundle);
    if tls == TlsSpec::Disable && (iam_auth || matches!(password, SecretRef::Secret(_))) {
        p.push("source.sslmode", "a managed credential is never sent in cleartext: use require or verify-full");
    }
    let read_from = read_from.map(|RawReadFrom { host, port }| (host, port.unwrap_or(5432)));
    let statement_timeout =
        statement_timeout.map(|t| duration(p, "source.statement-timeout", &t, Duration::from_secs(60)));
    let lock_timeout = lock_timeout
        .map(|t| duration(p, "source.lock-timeout", &t, Duration::from_secs(2)))
        .unwrap_or(Duration::from_secs(2));
    SourceSpec { host, port, user, dbname, password, tls, from_instance, read_from, statement_timeout, lock_timeout }
}

pub(super) fn duration(p: &mut Problems<'_>, key: &str, text: &str, fallback: Duration) -> Duration {
    match parse_duration(text) {
        Ok(d) if d.is_zero() => {
            p.push(key, "must be longer than zero");
            fallback
        }
        Ok(d) => d,
        Err(e) => {
            p.push(key, e);
            fallback
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn resolve(raw: RawDrill, path: &Path, p: &mut Problems<'_>) -> DrillSpec {
    // Destructured so that a new field does not compile until it is validated here.
    let RawDrill {
        name,
        description,
        restore,
        source,
        target,
        objectives,
        verify,
        runbook,
        controls,
        schedule,
        metrics,
        timeouts,
    } = raw;

    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("drill").to_string();
    let name_key = if name.is_some() { "name" } else { "" };
    let name = name.unwrap_or(stem);
    if !valid_name(&name) {
        p.push(
            name_key,
            format!("drill name `{name}` must be 1-40 characters of a-z, 0-9 and `-` (it names scratch resources)"),
        );
    }

    let restore = match restore {
        RawRestore::LocalPostgres(lp) => {
            let RawLocalPostgres {
                base_backups,
                wal_archive,
                scratch_root,
                os_user,
                database,
                user,
                copy_jobs,
                allow_preload,
            } = lp;
            for (k, v) in
                [("base-backups", &base_backups), ("wal-archive", &wal_archive), ("scratch-root", &scratch_root)]
            {
                if v.trim().is_empty() {
                    p.push(format!("restore.local-postgres.{k}"), "must name a directory");
                }
            }
            let copy_jobs = copy_jobs.unwrap_or(4);
            if !(1..=64).contains(&copy_jobs) {
                p.push("restore.local-postgres.copy-jobs", "must be between 1 and 64");
            }
            RestoreSpec::LocalPostgres(LocalPostgresSpec {
                base_backups: base_backups.into(),
                wal_archive: wal_archive.into(),
                scratch_root: scratch_root.into(),
                os_user: os_user.unwrap_or_else(|| "postgres".into()),
                database,
                user: user.unwrap_or_else(|| "postgres".into()),
                copy_jobs,
                allow_preload: allow_preload.unwrap_or_else(super::aws_restore::default_allow_preload),
            })
        }
        RawRestore::AwsRdsInstance(r) => RestoreSpec::AwsRdsInstance(super::aws_restore::rds_instance(r, p)),
        RawRestore::AwsAuroraCluster(r) => RestoreSpec::AwsAuroraCluster(super::aws_restore::aurora_cluster(r, p)),
        RawRestore::AwsBackup(r) => RestoreSpec::AwsBackup(super::aws_restore::aws_backup(r, p)),
    };

    let source = source.map(|s| source_spec(p, s, &restore));

    let target = match target {
        None => TargetSpec::Latest,
        Some(RawTarget::Word(w)) => match w.as_str() {
            "latest" => TargetSpec::Latest,
            "random" => TargetSpec::Random { seed: None },
            other => {
                p.push(
                    "target",
                    format!("unknown target `{other}`: use latest, random, {{ at: TIME }} or {{ ago: DURATION }}"),
                );
                TargetSpec::Latest
            }
        },
        Some(RawTarget::At(t)) => match parse_target_time(&t) {
            Ok(at) => TargetSpec::At(at),
            Err(e) => {
                p.push("target.at", e);
                TargetSpec::Latest
            }
        },
        Some(RawTarget::Ago(a)) => TargetSpec::Ago(duration(p, "target.ago", &a, Duration::from_secs(1))),
        Some(RawTarget::Random(RawRandom { seed })) => TargetSpec::Random { seed },
    };

    let RawObjectives { rto, rpo } = objectives;
    let objectives = Objectives {
        rto: duration(p, "objectives.rto", &rto, Duration::from_secs(1)),
        rpo: duration(p, "objectives.rpo", &rpo, Duration::from_secs(1)),
    };

    let checks = resolve_checks(p, verify, source.is_some());

    for (i, c) in controls.iter().enumerate() {
        let ok = c.split_once('-').is_some_and(|(fw, id)| {
            !fw.is_empty()
                && fw.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit())
                && !id.is_empty()
                && id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-')
        });
        if !ok {
            p.push(format!("controls[{i}]"), format!("`{c}` is not a control id like SOC2-A1.2 or ISO27001-A.8.13"));
        }
    }

    check_copy_on_write(p, &restore, &target, &checks);

    let schedule = schedule.and_then(|RawSchedule { cron, timezone }| {
        let tz = match timezone.as_deref().unwrap_or("UTC").parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                p.push("schedule.timezone", format!("unknown IANA time zone `{}`", timezone.unwrap_or_default()));
                None
            }
        };
        let expr = match crate::schedule::Expr::parse(&cron) {
            Ok(x) => x,
            Err(e) => {
                p.push("schedule.cron", e);
                return None;
            }
        };
        tz.map(|timezone| ScheduleSpec { cron, expr, timezone })
    });

    let metrics = metrics
        .map(|RawMetrics { cloudwatch }| MetricsSpec {
            cloudwatch_namespace: cloudwatch
                .map(|RawCloudwatch { namespace }| namespace.unwrap_or_else(|| "Stackdrill".into())),
        })
        .unwrap_or_default();

    let mut t = Timeouts::default();
    if !matches!(restore, RestoreSpec::LocalPostgres(_)) {
        // RDS's LatestRestorableTime trails commits by up to ~5 minutes, and a canary's target must
        // become restorable during the plan phase.
        t.plan = Duration::from_secs(20 * 60);
    }
    if let Some(RawTimeouts { plan, restore, ready, verify, check, teardown }) = timeouts {
        for (k, v, slot) in [
            ("plan", plan, &mut t.plan),
            ("restore", restore, &mut t.restore),
            ("ready", ready, &mut t.ready),
            ("verify", verify, &mut t.verify),
            ("check", check, &mut t.check),
            ("teardown", teardown, &mut t.teardown),
        ] {
            if let Some(v) = v {
                *slot = duration(p, &format!("timeouts.{k}"), &v, *slot);
            }
        }
    }

    DrillSpec {
        name,
        file: path.to_path_buf(),
        description,
        restore,
        source,
        target,
        objectives,
        verify: checks,
        runbook: runbook.map(PathBuf::from),
        controls,
        schedule,
        metrics,
        timeouts: t,
    }
}

fn need_source(p: &mut Problems<'_>, key: &str, has_source: bool, why: &str) {
    if !has_source {
        p.push(key, format!("this check {why}: add a `source` connection"));
    }
}

fn check_table(p: &mut Problems<'_>, key: &str, table: &str) {
    if !is_table_name(table) {
        p.push(key, format!("`{table}` is not a table name like `ledger` or `billing.ledger` (a-z, 0-9, _)"));
    }
}

fn check_column(p: &mut Problems<'_>, key: &str, column: &str) {
    if !is_identifier(column) {
        p.push(key, format!("`{column}` is not a plain column name (a-z, 0-9, _)"));
    }
}

/// A duration that may be zero (margins, lags).
fn duration_or_zero(p: &mut Problems<'_>, key: &str, text: &str) -> Duration {
    if text.trim() == "0" {
        return Duration::ZERO;
    }
    parse_duration(text).unwrap_or_else(|e| {
        p.push(key, e);
        Duration::ZERO
    })
}

/// `table` or `schema.table`, each part a plain identifier (so it can go into SQL unquoted).
pub(crate) fn is_table_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    (1..=2).contains(&parts.len()) && parts.iter().all(|p| is_identifier(p))
}

pub(crate) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
