//! The drill file (`drills/*.yaml`): strict raw structs as written, then a resolved [`DrillSpec`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::drill_spec::*;
use super::error::{ConfigError, Problems};
use super::parse::{duration, duration_or_zero, parse_with, read_file};
use super::target::{TargetSpec, parse_target_time};
use super::tls::TlsSpec;

// ---------------------------------------------------------------- raw, as written

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDrill {
    name: Option<String>,
    description: Option<String>,
    restore: RawRestore,
    #[serde(default)]
    also_restore: Vec<super::bucket::RawAlsoRestore>,
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
    /// `demo: true`: a demo drill (its source is a throwaway), wherever and however it runs.
    demo: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum RawRestore {
    LocalPostgres(RawLocalPostgres),
    AwsRdsInstance(super::aws_restore::RawRdsInstance),
    AwsAuroraCluster(super::aws_restore::RawAuroraCluster),
    AwsBackup(super::aws_restore::RawAwsBackup),
    PgDump(super::logical::RawPgDump),
    ExistingPostgres(super::logical::RawExistingPostgres),
    SupabaseBranch(super::logical::RawSupabaseBranch),
    AwsS3Bucket(super::bucket::RawS3Bucket),
    SupabaseNewProject(super::logical::RawSupabaseNewProject),
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
    /// Workers that copy and verify the base backup and fetch WAL ahead of replay (`copy-jobs`, its old
    /// name, still reads).
    #[serde(alias = "copy-jobs")]
    parallel: Option<usize>,
    allow_preload: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSource {
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
    Heartbeat(RawHeartbeat),
    Amcheck(RawAmcheck),
    Schema(RawSchema),
    ObjectReferences(Box<super::object_refs::RawObjectRefs>),
    Objects(super::bucket::RawObjects),
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

/// `heartbeat: {}` or `heartbeat: { max-lag: 10s }`: the table is always `stackdrill.heartbeat`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHeartbeat {
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

// ---------------------------------------------------------------- loading

/// Reads and validates one drill file; every problem found is returned.
pub(crate) fn load_drill(path: &Path) -> Result<DrillSpec, Vec<ConfigError>> {
    parse_drill(&read_file(path)?, path)
}

/// The problems of a drill file's `text`, each as `line:column key: message` (tests).
#[cfg(test)]
pub(crate) fn problem_lines(text: &str) -> Vec<String> {
    match parse_drill(text, Path::new("d.yaml")) {
        Ok(_) => vec![],
        Err(errs) => errs
            .iter()
            .map(|e| format!("{}:{} {}: {}", e.line.unwrap_or(0), e.column.unwrap_or(0), e.key, e.message))
            .collect(),
    }
}

/// Parses drill text; `path` names the file in errors and gives the default drill name.
pub(crate) fn parse_drill(text: &str, path: &Path) -> Result<DrillSpec, Vec<ConfigError>> {
    parse_with(text, path, resolve)
}

/// A restore testing plan's instance is AWS Backup's: stackdrill sets no password on it, so it logs in as the
/// source's user with the source's password (the copy carries the source's roles); an IAM token is signed
/// for the source's host.
fn check_restore_testing_login(p: &mut Problems<'_>, restore: &RestoreSpec, source: Option<&SourceSpec>) {
    let RestoreSpec::AwsBackup(b) = restore else { return };
    if b.restore_testing_plan.is_none() {
        return;
    }
    match source {
        None => p.push(
            "restore.aws-backup.restore-testing-plan",
            "logs in to the plan's restored instance with the drill's `source` user and password: add `source`",
        ),
        Some(s) if s.password == SecretRef::IamAuth => p.push(
            "source.iam-auth",
            "a restore testing plan's instance is reached with the source's password: an IAM token is for the \
             source's host",
        ),
        Some(_) => {}
    }
}

/// An RPO objective that no run could measure would fail every run after a full restore: an AWS restore
/// shows no replay time (the instance restarts after recovery), so only a heartbeat or freshness check measures it; a
/// database restored by hand needs `restored-to` or a freshness check. A heartbeat check measures it for
/// every provider, so it is accepted in place of a freshness check.
fn check_rpo_measurable(p: &mut Problems<'_>, restore: &RestoreSpec, checks: &[CheckSpec]) {
    if checks.iter().any(|c| matches!(c, CheckSpec::Freshness(_) | CheckSpec::Heartbeat(_))) {
        return;
    }
    let why = match restore {
        RestoreSpec::AwsRdsInstance(_) | RestoreSpec::AwsAuroraCluster(_) | RestoreSpec::AwsBackup(_) => {
            "an AWS restore shows no replay time, so only a heartbeat or freshness check can measure the RPO"
        }
        RestoreSpec::ExistingPostgres(e) if e.restored_to.is_none() => {
            "a database restored by hand has no replay time: give `restored-to` or add a heartbeat or freshness check"
        }
        _ => return,
    };
    p.push(
        "objectives.rpo",
        format!(
            "{why}; without one every run fails \"RPO not measured\": add `- heartbeat: {{}}` (after `stackdrill \
             heartbeat install`) or `- freshness: {{ table: T, column: C }}` on an append-only table"
        ),
    );
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
    let fixed = match restore {
        RestoreSpec::PgDump(_) => Some("a logical dump holds its own moment"),
        RestoreSpec::SupabaseBranch(_) => Some("a branch copies the project's state when it is created"),
        RestoreSpec::ExistingPostgres(_) => Some("a database restored by hand holds the moment it was restored to"),
        _ => None,
    };
    if let Some(why) = fixed {
        for (i, c) in checks.iter().enumerate() {
            if matches!(c, CheckSpec::Canary(_)) {
                p.push(
                    format!("verify[{i}].canary"),
                    format!("{why}: nothing written during the drill can be in it; use a freshness check instead"),
                );
            }
        }
    }
    if let (RestoreSpec::SupabaseBranch(_), TargetSpec::At(_) | TargetSpec::Random { .. } | TargetSpec::Ago(_)) =
        (restore, target)
    {
        p.push(
            "target",
            "a Supabase branch copies the project as it is now, not as it was at a chosen time: use `target: latest` \
             (Supabase's point-in-time restore works in place on the live project, which a drill never does)",
        );
    }
    if let (RestoreSpec::ExistingPostgres(_), TargetSpec::Random { .. } | TargetSpec::Ago(_)) = (restore, target) {
        p.push(
            "target",
            "a database restored by hand stands where it was restored to: use `latest` (and `restored-to` for its \
             moment)",
        );
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
            RawCheck::Sql(raw) => {
                let spec = sql_check(p, i, raw, &mut sql_names);
                checks.push(CheckSpec::Sql(spec));
            }
            RawCheck::Checksum(raw) => checks.push(CheckSpec::Checksum(checksum_check(p, i, raw, has_source))),
            RawCheck::RowCount(raw) => checks.push(CheckSpec::RowCount(row_count_check(p, i, raw, has_source))),
            RawCheck::Freshness(RawFreshness { table, column, max_lag }) => {
                let k = format!("verify[{i}].freshness");
                check_table(p, &format!("{k}.table"), &table);
                check_column(p, &format!("{k}.column"), &column);
                let max_lag = max_lag.map(|m| duration_or_zero(p, &format!("{k}.max-lag"), &m));
                checks.push(CheckSpec::Freshness(FreshnessSpec { table, column, max_lag }));
            }
            RawCheck::Heartbeat(RawHeartbeat { max_lag }) => {
                let k = format!("verify[{i}].heartbeat");
                if checks.iter().any(|c| matches!(c, CheckSpec::Heartbeat(_))) {
                    p.push(k.clone(), "one heartbeat check is enough: there is one heartbeat table");
                }
                let max_lag = max_lag.map(|m| duration_or_zero(p, &format!("{k}.max-lag"), &m));
                checks.push(CheckSpec::Heartbeat(HeartbeatSpec { max_lag }));
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
            RawCheck::ObjectReferences(raw) => {
                checks.push(CheckSpec::ObjectRefs(super::object_refs::object_refs_check(p, i, *raw)));
            }
            RawCheck::Objects(raw) => checks.push(CheckSpec::Objects(super::bucket::objects_check(p, i, raw))),
        }
    }
    checks
}

/// `verify[i].sql`: a named query (names unique) and what its result must be.
fn sql_check(
    p: &mut Problems<'_>,
    i: usize,
    RawSql { name, query, expect }: RawSql,
    sql_names: &mut std::collections::HashSet<String>,
) -> SqlSpec {
    let key = format!("verify[{i}].sql");
    if name.trim().is_empty() {
        p.push(format!("{key}.name"), "must not be empty");
    } else if !sql_names.insert(name.clone()) {
        p.push(format!("{key}.name"), format!("another sql check is already named `{name}`"));
    }
    if query.trim().is_empty() {
        p.push(format!("{key}.query"), "must not be empty");
    } else if let Err(why) = super::sql_text::single_statement(&query) {
        p.push(format!("{key}.query"), why);
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
    SqlSpec { name, query, expect: Expect { equals, min, max, regex, rows } }
}

/// `verify[i].checksum`: a table compared with the live source, bucketed by key.
fn checksum_check(
    p: &mut Problems<'_>,
    i: usize,
    RawChecksum { table, key, until_column, settle, max_keys, buckets }: RawChecksum,
    has_source: bool,
) -> ChecksumSpec {
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
    ChecksumSpec { table, key: key.0, until_column, settle, max_keys: max_keys.unwrap_or(10), buckets }
}

/// `verify[i].row-count`: compared with the source (within a tolerance) or within bounds.
fn row_count_check(
    p: &mut Problems<'_>,
    i: usize,
    RawRowCount { table, until_column, compare, tolerance, min, max }: RawRowCount,
    has_source: bool,
) -> RowCountSpec {
    let k = format!("verify[{i}].row-count");
    check_table(p, &format!("{k}.table"), &table);
    if let Some(c) = &until_column {
        check_column(p, &format!("{k}.until-column"), c);
    }
    let compare_source = match compare.as_deref() {
        None => false,
        Some("source") => true,
        Some(other) => {
            p.push(format!("{k}.compare"), format!("unknown comparison `{other}`: the only one is `source`"));
            false
        }
    };
    if compare_source {
        need_source(p, &k, has_source, "with `compare: source` counts the live source");
    } else if min.is_none() && max.is_none() {
        p.push(k.clone(), "needs `compare: source`, or `min` and/or `max`");
    }
    let tolerance = row_tolerance(p, &k, tolerance.as_deref());
    RowCountSpec { table, until_column, compare_source, tolerance, min, max }
}

/// A row-count tolerance: rows (`5`) or a percentage (`0.5%`); none is zero rows.
fn row_tolerance(p: &mut Problems<'_>, k: &str, tolerance: Option<&str>) -> Tolerance {
    match tolerance.map(str::trim) {
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
                p.push(format!("{k}.tolerance"), format!("`{t}` is neither a row count nor a percentage like `0.5%`"));
                Tolerance::Rows(0)
            }),
        },
    }
}

/// Resolves the `source` block (or another connection block written like it, at `key`): credentials from
/// exactly one place, TLS, session bounds.
pub(super) fn source_spec(p: &mut Problems<'_>, key: &str, s: RawSource, rds_source: bool) -> SourceSpec {
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
            p.push(format!("{key}.password-secret"), "must name a Secrets Manager secret (its name or ARN)");
        }
        given.push(("password-secret", SecretRef::Secret(n)));
    }
    if iam_auth {
        given.push(("iam-auth", SecretRef::IamAuth));
    }
    if given.len() > 1 {
        let names: Vec<&str> = given.iter().map(|(k, _)| *k).collect();
        p.push(format!("{key}.{}", names[1]), format!("give one way to log in, not {}", names.join(" and ")));
    }
    let password = given.into_iter().next().map_or(SecretRef::None, |(_, s)| s);
    if from_instance && !rds_source {
        p.push(
            format!("{key}.from-instance"),
            "only an aws-rds-instance or aws-aurora-cluster restore names a source instance to read it from",
        );
    }
    for (k, h) in [("host", host.as_deref()), ("read-from.host", read_from.as_ref().map(|r| r.host.as_str()))] {
        if let Some(h) = h
            && (h.is_empty() || h.chars().any(|c| c.is_whitespace() || "/?#@\\'\"".contains(c)))
        {
            p.push(format!("{key}.{k}"), format!("`{h}` is not a host name or address"));
        }
    }
    if host.is_none() && !from_instance {
        p.push(format!("{key}.host"), "missing: give `host` (or `from-instance: true` for an RDS/Aurora source)");
    }
    let named_elsewhere = from_instance || matches!(password, SecretRef::Secret(_));
    if user.is_none() && !named_elsewhere {
        p.push(format!("{key}.user"), "missing: give `user` (a managed secret or `from-instance` can name it instead)");
    }
    if iam_auth && user.is_none() {
        p.push(format!("{key}.iam-auth"), "IAM authentication needs `user` (the database user granted rds_iam)");
    }
    let tls = super::tls::source_tls_spec(p, key, sslmode.as_deref(), ca_bundle);
    if tls == TlsSpec::Require && iam_auth {
        p.push(
            format!("{key}.sslmode"),
            "an IAM token is sent as a cleartext password, so the server must prove who it is: \
             use verify-full with `ca-bundle` (e.g. the RDS global bundle)",
        );
    }
    if tls == TlsSpec::Disable && (iam_auth || matches!(password, SecretRef::Secret(_))) {
        p.push(format!("{key}.sslmode"), "a managed credential is never sent in cleartext: use require or verify-full");
    }
    let read_from = read_from.map(|RawReadFrom { host, port }| (host, port.unwrap_or(5432)));
    let statement_timeout =
        statement_timeout.map(|t| duration(p, &format!("{key}.statement-timeout"), &t, Duration::from_secs(60)));
    let lock_timeout = lock_timeout
        .map(|t| duration(p, &format!("{key}.lock-timeout"), &t, Duration::from_secs(2)))
        .unwrap_or(Duration::from_secs(2));
    SourceSpec { host, port, user, dbname, password, tls, from_instance, read_from, statement_timeout, lock_timeout }
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
        also_restore,
        source,
        target,
        objectives,
        verify,
        runbook,
        controls,
        schedule,
        metrics,
        timeouts,
        demo,
    } = raw;
    let name = drill_name(p, name, path);
    let restore = resolve_restore(p, restore);
    let rds_source = matches!(restore, RestoreSpec::AwsRdsInstance(_) | RestoreSpec::AwsAuroraCluster(_));
    let source = source.map(|s| source_spec(p, "source", s, rds_source));
    let target = resolve_target(p, target);
    let RawObjectives { rto, rpo } = objectives;
    let objectives = Objectives {
        rto: duration(p, "objectives.rto", &rto, Duration::from_secs(1)),
        rpo: duration(p, "objectives.rpo", &rpo, Duration::from_secs(1)),
    };
    check_restore_testing_login(p, &restore, source.as_ref());
    let mut checks = resolve_checks(p, verify, source.is_some());
    let also_restore = super::bucket::also_restore(p, also_restore);
    super::bucket::link_checks(p, &restore, &also_restore, &mut checks);
    super::bucket::bucket_only(p, &restore, source.is_some(), &checks);
    check_controls(p, &controls);
    check_copy_on_write(p, &restore, &target, &checks);
    check_rpo_measurable(p, &restore, &checks);
    let mut spec = DrillSpec {
        name,
        file: path.to_path_buf(),
        description,
        restore,
        also_restore,
        source,
        target,
        objectives,
        verify: checks,
        runbook: runbook.map(PathBuf::from),
        controls,
        schedule: schedule.and_then(|s| resolve_schedule(p, s)),
        metrics: metrics
            .map(|RawMetrics { cloudwatch }| MetricsSpec {
                cloudwatch_namespace: cloudwatch
                    .map(|RawCloudwatch { namespace }| namespace.unwrap_or_else(|| "Stackdrill".into())),
            })
            .unwrap_or_default(),
        timeouts: resolve_timeouts(p, timeouts),
        demo: demo.unwrap_or(false),
    };
    // Relative paths are the project's (the directory above the file holding `drills/` or `.git`), wherever
    // the command runs; outside a project they stay relative to the working directory.
    if let Some(root) = path.parent().and_then(super::locate::project_root) {
        rebase(&mut spec, &root);
    }
    spec
}

/// The files and directories `spec` names that do not exist on this machine, each located in its file (a
/// scratch root is created by the run, so it is not among them).
pub(crate) fn missing_files(spec: &DrillSpec) -> Vec<ConfigError> {
    fn ca(t: &TlsSpec) -> Option<&Path> {
        match t {
            TlsSpec::VerifyCa(p) | TlsSpec::VerifyFull(p) => Some(p),
            _ => None,
        }
    }
    let restore = format!("restore.{}", spec.restore.provider());
    let restore_tls = match &spec.restore {
        RestoreSpec::ExistingPostgres(e) => Some((format!("{restore}.connection"), &e.connection.tls)),
        RestoreSpec::SupabaseBranch(sb) => Some((restore.clone(), &sb.tls)),
        RestoreSpec::SupabaseNewProject(np) => Some((restore.clone(), &np.tls)),
        other => other.aws_scratch().map(|a| (restore.clone(), &a.tls)),
    };
    let mut named: Vec<(String, &Path)> = Vec::new();
    let source_tls = spec.source.as_ref().map(|s| ("source".to_string(), &s.tls));
    for (key, t) in source_tls.into_iter().chain(restore_tls) {
        if let Some(p) = ca(t) {
            named.push((format!("{key}.ca-bundle"), p));
        }
    }
    if let Some(r) = &spec.runbook {
        named.push(("runbook".into(), r));
    }
    if let Some(SecretRef::File(p)) = spec.source.as_ref().map(|s| &s.password) {
        named.push(("source.password-file".into(), p));
    }
    match &spec.restore {
        RestoreSpec::LocalPostgres(lp) => {
            named.push((format!("{restore}.base-backups"), &lp.base_backups));
            named.push((format!("{restore}.wal-archive"), &lp.wal_archive));
        }
        RestoreSpec::PgDump(pd) => {
            if let super::logical::DumpLocation::Path(p) = &pd.dumps {
                named.push((format!("{restore}.dumps"), p));
            }
        }
        RestoreSpec::ExistingPostgres(e) => {
            if let SecretRef::File(p) = &e.connection.password {
                named.push((format!("{restore}.connection.password-file"), p));
            }
        }
        _ => {}
    }
    for (i, c) in spec.verify.iter().enumerate() {
        if let CheckSpec::ObjectRefs(o) = c
            && let ObjectStoreSpec::Dir(d) = &o.store
        {
            named.push((format!("verify[{i}].object-references.dir"), d));
        }
    }
    let text = std::fs::read_to_string(&spec.file).unwrap_or_default();
    let locations = super::locate::Locations::index(&text);
    named
        .into_iter()
        .filter(|(_, p)| !p.exists())
        .map(|(key, p)| {
            let (line, column) = locations.find(&key).map_or((None, None), |(l, c)| (Some(l), Some(c)));
            ConfigError {
                file: spec.file.clone(),
                line,
                column,
                message: format!("`{}` does not exist on this machine", p.display()),
                key,
                hint: None,
            }
        })
        .collect()
}

/// What `drill validate` warns about in a drill that loads: a source written as `sslmode: require` (the
/// server's identity is not checked; a password goes only through SCRAM with channel binding).
pub(crate) fn advice(spec: &DrillSpec) -> Vec<ConfigError> {
    let mut sources: Vec<(String, &TlsSpec)> = Vec::new();
    if let Some(s) = &spec.source {
        sources.push(("source.sslmode".into(), &s.tls));
    }
    if let RestoreSpec::ExistingPostgres(e) = &spec.restore {
        sources.push(("restore.existing-postgres.connection.sslmode".into(), &e.connection.tls));
    }
    let text = std::fs::read_to_string(&spec.file).unwrap_or_default();
    let locations = super::locate::Locations::index(&text);
    sources
        .into_iter()
        .filter(|(_, t)| **t == TlsSpec::Require)
        .map(|(key, _)| {
            let (line, column) = locations.find(&key).map_or((None, None), |(l, c)| (Some(l), Some(c)));
            ConfigError {
                file: spec.file.clone(),
                line,
                column,
                message: "require does not check who the server is: stackdrill logs in only through SCRAM with \
                          channel binding, and refuses a server that asks for a cleartext or MD5 password"
                    .into(),
                key,
                hint: Some("give `ca-bundle` (sslmode verify-full) so the server proves who it is".into()),
            }
        })
        .collect()
}

/// Makes every relative path in `spec` a path under `root`.
fn rebase(spec: &mut DrillSpec, root: &Path) {
    let at = |p: &mut PathBuf| {
        if p.is_relative() && !p.as_os_str().is_empty() {
            *p = root.join(&*p);
        }
    };
    let tls = |t: &mut TlsSpec| {
        if let TlsSpec::VerifyCa(p) | TlsSpec::VerifyFull(p) = t
            && p.is_relative()
        {
            *p = root.join(&*p);
        }
    };
    if let Some(r) = &mut spec.runbook {
        at(r);
    }
    let secret = |s: &mut SecretRef| {
        if let SecretRef::File(p) = s {
            at(p);
        }
    };
    if let Some(src) = &mut spec.source {
        secret(&mut src.password);
        tls(&mut src.tls);
    }
    match &mut spec.restore {
        RestoreSpec::LocalPostgres(lp) => {
            at(&mut lp.base_backups);
            at(&mut lp.wal_archive);
            at(&mut lp.scratch_root);
        }
        RestoreSpec::PgDump(pd) => {
            if let super::logical::DumpLocation::Path(p) = &mut pd.dumps {
                at(p);
            }
            at(&mut pd.scratch_root);
        }
        RestoreSpec::ExistingPostgres(e) => {
            secret(&mut e.connection.password);
            tls(&mut e.connection.tls);
        }
        RestoreSpec::SupabaseBranch(sb) => tls(&mut sb.tls),
        RestoreSpec::SupabaseNewProject(np) => tls(&mut np.tls),
        RestoreSpec::AwsRdsInstance(r) => tls(&mut r.scratch.tls),
        RestoreSpec::AwsAuroraCluster(r) => tls(&mut r.scratch.tls),
        RestoreSpec::AwsBackup(r) => tls(&mut r.scratch.tls),
        RestoreSpec::AwsS3Bucket(_) => {}
    }
    for c in &mut spec.verify {
        if let CheckSpec::ObjectRefs(o) = c
            && let ObjectStoreSpec::Dir(d) = &mut o.store
        {
            at(d);
        }
    }
}

/// `name`, else the file's stem; it names scratch resources, so it must be short and plain.
fn drill_name(p: &mut Problems<'_>, name: Option<String>, path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("drill").to_string();
    let name_key = if name.is_some() { "name" } else { "" };
    let name = name.unwrap_or(stem);
    if !valid_name(&name) {
        p.push(
            name_key,
            format!("drill name `{name}` must be 1-40 characters of a-z, 0-9 and `-` (it names scratch resources)"),
        );
    }
    name
}

/// The `restore` block: one provider.
fn resolve_restore(p: &mut Problems<'_>, restore: RawRestore) -> RestoreSpec {
    match restore {
        RawRestore::LocalPostgres(lp) => RestoreSpec::LocalPostgres(local_postgres(p, lp)),
        RawRestore::AwsRdsInstance(r) => RestoreSpec::AwsRdsInstance(super::aws_restore::rds_instance(r, p)),
        RawRestore::AwsAuroraCluster(r) => RestoreSpec::AwsAuroraCluster(super::aws_restore::aurora_cluster(r, p)),
        RawRestore::AwsBackup(r) => RestoreSpec::AwsBackup(super::aws_restore::aws_backup(r, p)),
        RawRestore::PgDump(r) => RestoreSpec::PgDump(super::logical::pg_dump(p, r)),
        RawRestore::ExistingPostgres(r) => RestoreSpec::ExistingPostgres(super::logical::existing_postgres(p, r)),
        RawRestore::SupabaseBranch(r) => RestoreSpec::SupabaseBranch(super::logical::supabase_branch(p, r)),
        RawRestore::AwsS3Bucket(r) => RestoreSpec::AwsS3Bucket(super::bucket::s3_bucket(p, "restore.aws-s3-bucket", r)),
        RawRestore::SupabaseNewProject(r) => {
            RestoreSpec::SupabaseNewProject(super::logical::supabase_new_project(p, r))
        }
    }
}

fn local_postgres(p: &mut Problems<'_>, lp: RawLocalPostgres) -> LocalPostgresSpec {
    let RawLocalPostgres { base_backups, wal_archive, scratch_root, os_user, database, user, parallel, allow_preload } =
        lp;
    for (k, v) in [("base-backups", &base_backups), ("wal-archive", &wal_archive), ("scratch-root", &scratch_root)] {
        if v.trim().is_empty() {
            p.push(format!("restore.local-postgres.{k}"), "must name a directory");
        }
    }
    // The default: one worker per core (the copy is bound by the disk or by checksumming, both of which scale
    // with the cores up to the disk's rate).
    let parallel = parallel.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(64)));
    if !(1..=64).contains(&parallel) {
        p.push("restore.local-postgres.parallel", "must be between 1 and 64");
    }
    LocalPostgresSpec {
        base_backups: base_backups.into(),
        wal_archive: wal_archive.into(),
        scratch_root: scratch_root.into(),
        os_user: os_user.unwrap_or_else(|| "postgres".into()),
        database,
        user: user.unwrap_or_else(|| "postgres".into()),
        parallel,
        allow_preload: allow_preload.unwrap_or_else(super::aws_restore::default_allow_preload),
    }
}

/// `target`: latest (the default), random, `{ at: TIME }`, `{ ago: DURATION }`, `{ random: { seed } }`.
fn resolve_target(p: &mut Problems<'_>, target: Option<RawTarget>) -> TargetSpec {
    match target {
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
    }
}

/// `controls`: ids like SOC2-A1.2 or ISO27001-A.8.13.
fn check_controls(p: &mut Problems<'_>, controls: &[String]) {
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
}

/// `schedule`: an expression in an IANA time zone (UTC by default).
fn resolve_schedule(p: &mut Problems<'_>, RawSchedule { cron, timezone }: RawSchedule) -> Option<ScheduleSpec> {
    let tz = match timezone.as_deref().unwrap_or("UTC").parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            p.push("schedule.timezone", format!("unknown IANA time zone `{}`", timezone.unwrap_or_default()));
            None
        }
    };
    let expr = match crate::cadence::Expr::parse(&cron) {
        Ok(x) => x,
        Err(e) => {
            p.push("schedule.cron", e);
            return None;
        }
    };
    tz.map(|timezone| ScheduleSpec { cron, expr, timezone })
}

/// `timeouts`: each phase's deadline over the defaults; the plan phase's default is the provider's.
fn resolve_timeouts(p: &mut Problems<'_>, timeouts: Option<RawTimeouts>) -> Timeouts {
    let mut t = Timeouts::default();
    let Some(RawTimeouts { plan, restore, ready, verify, check, teardown }) = timeouts else { return t };
    if let Some(v) = plan {
        t.plan = Some(duration(p, "timeouts.plan", &v, Duration::from_secs(1)));
    }
    for (k, v, slot) in [
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
    t
}

fn need_source(p: &mut Problems<'_>, key: &str, has_source: bool, why: &str) {
    if !has_source {
        p.push(key, format!("this check {why}: add a `source` connection"));
    }
}

pub(super) fn check_table(p: &mut Problems<'_>, key: &str, table: &str) {
    if !is_table_name(table) {
        p.push(key, format!("`{table}` is not a table name like `ledger` or `billing.ledger` (a-z, 0-9, _)"));
    }
}

pub(super) fn check_column(p: &mut Problems<'_>, key: &str, column: &str) {
    if !is_identifier(column) {
        p.push(key, format!("`{column}` is not a plain column name (a-z, 0-9, _)"));
    }
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

#[cfg(test)]
mod heartbeat_tests {
    const AWS: &str = "restore: { aws-rds-instance: { source-instance: prod-db, subnet-group: g, security-groups: [sg-1] } }\n\
                       objectives: { rto: 1h, rpo: 5m }\n";

    /// `drill validate` accepts a heartbeat check where it demands a freshness check (the RPO is measurable).
    #[test]
    fn a_heartbeat_check_measures_the_rpo_where_a_freshness_check_is_demanded() {
        let none = super::problem_lines(&format!("{AWS}verify: [ {{ schema: {{ tables: [t] }} }} ]\n"));
        assert!(none.iter().any(|l| l.contains("objectives.rpo:") && l.contains("- heartbeat: {}")), "{none:?}");
        assert!(super::problem_lines(&format!("{AWS}verify: [ {{ heartbeat: {{}} }} ]\n")).is_empty());
        let spec = super::parse_drill(
            &format!("{AWS}verify: [ {{ heartbeat: {{ max-lag: 10s }} }} ]\n"),
            std::path::Path::new("h.yaml"),
        )
        .unwrap();
        let [super::CheckSpec::Heartbeat(h)] = spec.verify.as_slice() else { panic!("{:?}", spec.verify) };
        assert_eq!(h.max_lag, Some(std::time::Duration::from_secs(10)));
        assert_eq!((spec.verify[0].kind(), spec.verify[0].name().as_str()), ("heartbeat", "heartbeat"));
        let bad = super::problem_lines(&format!(
            "{AWS}verify: [ {{ heartbeat: {{ max-lag: soon }} }}, {{ heartbeat: {{}} }} ]\n"
        ));
        assert!(bad.iter().any(|l| l.contains("verify[0].heartbeat.max-lag: invalid duration `soon`")), "{bad:?}");
        assert!(bad.iter().any(|l| l.contains("verify[1].heartbeat: one heartbeat check is enough")), "{bad:?}");
        let unknown = super::problem_lines(&format!("{AWS}verify: [ {{ heartbeat: {{ table: x }} }} ]\n"));
        assert!(unknown.iter().any(|l| l.contains("unknown field `table`")), "{unknown:?}");
    }
}

#[cfg(test)]
mod local_postgres_tests {
    const HEAD: &str = "restore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s";
    const TAIL: &str = " }\nobjectives: { rto: 1m, rpo: 1m }\n";

    fn spec(extra: &str) -> Result<super::LocalPostgresSpec, Vec<String>> {
        let text = format!("{HEAD}{extra}{TAIL}");
        match super::parse_drill(&text, std::path::Path::new("d.yaml")) {
            Ok(d) => match d.restore {
                super::RestoreSpec::LocalPostgres(lp) => Ok(lp),
                _ => panic!("not local-postgres"),
            },
            Err(_) => Err(super::problem_lines(&text)),
        }
    }

    #[test]
    fn parallel_defaults_to_the_core_count_and_is_bounded_with_its_location() {
        let cores = std::thread::available_parallelism().unwrap().get().min(64);
        assert_eq!(spec("").unwrap().parallel, cores);
        assert_eq!(spec(", parallel: 3").unwrap().parallel, 3);
        // The old name still reads.
        assert_eq!(spec(", copy-jobs: 5").unwrap().parallel, 5);
        let errs = spec(", parallel: 0").unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("2:") && e.contains("restore.local-postgres.parallel: must be between 1 and 64")), "{errs:?}");
        let errs = spec(", parallel: 65").unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("restore.local-postgres.parallel: must be between 1 and 64")),
            "{errs:?}"
        );
    }
}
