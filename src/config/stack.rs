//! The stack file (`stacks/*.yaml`): the production stack as declared — KMS keys, the alert topic, log
//! groups, metric filters and alarms, the RDS database, AWS Backup, Elastic Beanstalk and Shield — strict raw
//! structs as written, then a resolved [`StackSpec`] whose resource names derive from the stack name.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, Problems};
use super::parse::{duration, parse_with, read_file};

// ---------------------------------------------------------------- raw, as written

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStack {
    name: Option<String>,
    region: String,
    residency: Vec<String>,
    network: RawNetwork,
    kms: Option<RawKms>,
    alerts: Option<RawAlerts>,
    database: Option<RawDatabase>,
    backup: Option<RawBackup>,
    #[serde(default)]
    buckets: Vec<super::stack_bucket::RawBucket>,
    app: Option<RawApp>,
    shield: Option<RawShield>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNetwork {
    vpc: String,
    subnets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKms {
    keys: BTreeMap<String, RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKey {
    description: Option<String>,
    rotation: Option<bool>,
    alias: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAlerts {
    topic: RawTopic,
    #[serde(default)]
    log_groups: Vec<RawLogGroup>,
    #[serde(default)]
    metric_filters: Vec<RawMetricFilter>,
    #[serde(default)]
    alarms: Vec<RawAlarm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTopic {
    name: Option<String>,
    kms_key: Option<String>,
    #[serde(default)]
    subscriptions: Vec<RawSubscription>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSubscription {
    protocol: String,
    endpoint: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLogGroup {
    name: String,
    retention_days: Option<u32>,
    kms_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawMetricFilter {
    name: String,
    log_group: String,
    pattern: String,
    metric: RawFilterMetric,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFilterMetric {
    namespace: String,
    name: String,
    value: Option<String>,
    default: Option<f64>,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAlarm {
    name: String,
    purpose: Option<String>,
    description: Option<String>,
    metric: Option<RawAlarmMetric>,
    anomaly_band: Option<RawAnomaly>,
    expression: Option<String>,
    #[serde(default)]
    metrics: BTreeMap<String, RawAlarmMetric>,
    threshold: Option<f64>,
    comparison: Option<String>,
    periods: Option<u32>,
    datapoints: Option<u32>,
    missing_data: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAlarmMetric {
    namespace: String,
    name: String,
    statistic: Option<String>,
    period: Option<String>,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAnomaly {
    metric: RawAlarmMetric,
    width: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDatabase {
    identifier: Option<String>,
    engine_version: String,
    instance_class: String,
    allocated_storage: u32,
    master_username: String,
    database: Option<String>,
    kms_key: String,
    multi_az: Option<bool>,
    backup_retention_days: Option<u32>,
    deletion_protection: Option<bool>,
    publicly_accessible: Option<bool>,
    iam_auth: Option<bool>,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBackup {
    vault: RawVault,
    plan: RawPlan,
    selection: Option<RawSelection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawVault {
    name: Option<String>,
    kms_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlan {
    name: Option<String>,
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRule {
    name: String,
    schedule: Option<String>,
    continuous: Option<bool>,
    retention_days: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSelection {
    name: Option<String>,
    iam_role_arn: String,
    tag: RawTag,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawApp {
    application: Option<String>,
    environment: Option<String>,
    solution_stack: String,
    instance_type: String,
    min_instances: u32,
    max_instances: u32,
    health: Option<String>,
    managed_updates: Option<bool>,
    instance_profile: String,
    service_role: Option<String>,
    https: RawHttps,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHttps {
    certificate_arn: String,
    ssl_policy: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawShield {
    advanced: Option<String>,
}

// ---------------------------------------------------------------- resolved

/// A validated stack definition; every resource name is final (derived from the stack name unless given).
#[derive(Debug, Clone)]
pub(crate) struct StackSpec {
    pub(crate) name: String,
    pub(crate) region: String,
    pub(crate) residency: Vec<String>,
    pub(crate) vpc: String,
    pub(crate) subnets: Vec<String>,
    /// By role (`data`, `backups`, `logs`, `alerts`).
    pub(crate) keys: BTreeMap<String, KeySpec>,
    pub(crate) alerts: Option<AlertsSpec>,
    pub(crate) database: Option<DatabaseSpec>,
    pub(crate) backup: Option<BackupSpec>,
    pub(crate) buckets: Vec<super::stack_bucket::BucketSpec>,
    pub(crate) app: Option<AppSpec>,
    pub(crate) shield: ShieldMode,
}

#[derive(Debug, Clone)]
pub(crate) struct KeySpec {
    pub(crate) description: String,
    pub(crate) rotation: bool,
    pub(crate) alias: String,
}

#[derive(Debug, Clone)]
pub(crate) struct AlertsSpec {
    pub(crate) topic: String,
    /// Key role encrypting the topic.
    pub(crate) topic_key: Option<String>,
    pub(crate) subscriptions: Vec<(String, String)>,
    pub(crate) log_groups: Vec<LogGroupSpec>,
    pub(crate) metric_filters: Vec<MetricFilterSpec>,
    pub(crate) alarms: Vec<AlarmSpec>,
}

#[derive(Debug, Clone)]
pub(crate) struct LogGroupSpec {
    pub(crate) name: String,
    pub(crate) retention_days: Option<u32>,
    pub(crate) key: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct MetricFilterSpec {
    pub(crate) name: String,
    pub(crate) log_group: String,
    pub(crate) pattern: String,
    pub(crate) namespace: String,
    pub(crate) metric: String,
    pub(crate) value: String,
    pub(crate) default: Option<f64>,
    pub(crate) dimensions: BTreeMap<String, String>,
}

/// What an alarm is for; policy requires one alarm per required purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Purpose {
    AuthDenialSpike,
    AuthDenialAnomaly,
    ProviderFailureRate,
    IndexingFailures,
    LedgerMismatch,
    DrillFreshness,
    Other,
}

impl Purpose {
    pub(crate) const ALL: [(&'static str, Purpose); 7] = [
        ("auth-denial-spike", Purpose::AuthDenialSpike),
        ("auth-denial-anomaly", Purpose::AuthDenialAnomaly),
        ("provider-failure-rate", Purpose::ProviderFailureRate),
        ("indexing-failures", Purpose::IndexingFailures),
        ("ledger-mismatch", Purpose::LedgerMismatch),
        ("drill-freshness", Purpose::DrillFreshness),
        ("other", Purpose::Other),
    ];

    pub(crate) fn as_str(self) -> &'static str {
        Purpose::ALL.iter().find(|(_, p)| *p == self).map(|(s, _)| *s).unwrap_or("other")
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AlarmSpec {
    pub(crate) name: String,
    pub(crate) purpose: Purpose,
    pub(crate) description: Option<String>,
    pub(crate) kind: AlarmKind,
    pub(crate) threshold: Option<f64>,
    /// CloudWatch's ComparisonOperator name.
    pub(crate) comparison: String,
    pub(crate) periods: u32,
    pub(crate) datapoints: u32,
    pub(crate) missing_data: String,
}

#[derive(Debug, Clone)]
pub(crate) enum AlarmKind {
    Metric(AlarmMetric),
    AnomalyBand { metric: AlarmMetric, width: f64 },
    Expression { expression: String, metrics: BTreeMap<String, AlarmMetric> },
}

#[derive(Debug, Clone)]
pub(crate) struct AlarmMetric {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) statistic: String,
    pub(crate) period: Duration,
    pub(crate) dimensions: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub(crate) struct DatabaseSpec {
    pub(crate) identifier: String,
    pub(crate) engine_version: String,
    pub(crate) instance_class: String,
    pub(crate) allocated_storage: u32,
    pub(crate) master_username: String,
    pub(crate) database: Option<String>,
    pub(crate) key: String,
    pub(crate) multi_az: bool,
    pub(crate) backup_retention_days: u32,
    pub(crate) deletion_protection: bool,
    pub(crate) publicly_accessible: bool,
    pub(crate) iam_auth: bool,
    pub(crate) parameters: BTreeMap<String, String>,
    pub(crate) subnet_group: String,
    pub(crate) parameter_group: String,
}

#[derive(Debug, Clone)]
pub(crate) struct BackupSpec {
    pub(crate) vault: String,
    pub(crate) vault_key: String,
    pub(crate) plan: String,
    pub(crate) rules: Vec<RuleSpec>,
    /// What the plan backs up, by tag. Optional in the file; policy requires it.
    pub(crate) selection: Option<SelectionSpec>,
}

#[derive(Debug, Clone)]
pub(crate) struct SelectionSpec {
    pub(crate) name: String,
    pub(crate) iam_role_arn: String,
    pub(crate) tag: (String, String),
}

#[derive(Debug, Clone)]
pub(crate) struct RuleSpec {
    pub(crate) name: String,
    pub(crate) schedule: Option<String>,
    pub(crate) continuous: bool,
    pub(crate) retention_days: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct AppSpec {
    pub(crate) application: String,
    pub(crate) environment: String,
    pub(crate) solution_stack: String,
    pub(crate) instance_type: String,
    pub(crate) min_instances: u32,
    pub(crate) max_instances: u32,
    pub(crate) enhanced_health: bool,
    pub(crate) managed_updates: bool,
    /// The EC2 instance profile the environment's instances run with (Beanstalk requires one).
    pub(crate) instance_profile: String,
    /// The service role enhanced health and managed updates act through.
    pub(crate) service_role: Option<String>,
    pub(crate) certificate_arn: String,
    pub(crate) ssl_policy: String,
}

/// `auto`: protect the load balancer with Shield Advanced when the account subscribes, else record that
/// only Shield Standard (automatic) applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShieldMode {
    Auto,
    Required,
    Off,
}

// ---------------------------------------------------------------- loading

/// Reads and validates one stack file; every problem found is returned.
pub(crate) fn load_stack(path: &Path) -> Result<StackSpec, Vec<ConfigError>> {
    parse_with(&read_file(path)?, path, resolve)
}

#[cfg(test)]
pub(crate) fn parse_stack(text: &str, path: &Path) -> Result<StackSpec, Vec<ConfigError>> {
    parse_with(text, path, resolve)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn resolve(raw: RawStack, path: &Path, p: &mut Problems<'_>) -> StackSpec {
    let RawStack { name, region, residency, network, kms, alerts, database, backup, buckets, app, shield } = raw;
    let name = stack_name(p, name, path);
    if residency.is_empty() {
        p.push("residency", "must list at least one region");
    }
    // The residency check itself is policy (STK-REGION), so a non-compliant file still loads for `check`.
    let RawNetwork { vpc, subnets } = network;
    check_network(p, &vpc, &subnets);
    let keys = resolve_keys(p, kms, &name);
    let key_ref = |p: &mut Problems<'_>, key: &str, role: &str| {
        if !keys.contains_key(role) {
            let known: Vec<&str> = keys.keys().map(String::as_str).collect();
            p.push(key, format!("no KMS key `{role}` under kms.keys (known: {})", known.join(", ")));
        }
    };
    let alerts = alerts.map(|a| resolve_alerts(a, &name, p, &key_ref));
    let database = database.map(|d| resolve_database(d, &name, p, &key_ref));
    let backup = backup.map(|b| resolve_backup(b, &name, p, &key_ref));
    let buckets = super::stack_bucket::buckets(p, buckets, &key_ref);
    let app = app.map(|a| resolve_app(a, &name, p));
    let shield = resolve_shield(p, shield);
    StackSpec { name, region, residency, vpc, subnets, keys, alerts, database, backup, buckets, app, shield }
}

/// `name`, else the file's stem.
fn stack_name(p: &mut Problems<'_>, name: Option<String>, path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("stack").to_string();
    let name_key = if name.is_some() { "name" } else { "" };
    let name = name.unwrap_or(stem);
    if !valid_name(&name) {
        p.push(
            name_key,
            format!("stack name `{name}` must be 1-32 characters of a-z, 0-9 and `-`, starting with a letter"),
        );
    }
    name
}

/// `network`: a VPC id and subnet ids.
fn check_network(p: &mut Problems<'_>, vpc: &str, subnets: &[String]) {
    if !vpc.starts_with("vpc-") {
        p.push("network.vpc", format!("`{vpc}` is not a VPC id (vpc-…)"));
    }
    for (i, s) in subnets.iter().enumerate() {
        if !s.starts_with("subnet-") {
            p.push(format!("network.subnets[{i}]"), format!("`{s}` is not a subnet id (subnet-…)"));
        }
    }
}

/// `kms.keys`: each role's key, alias and rotation.
fn resolve_keys(p: &mut Problems<'_>, kms: Option<RawKms>, name: &str) -> BTreeMap<String, KeySpec> {
    let mut keys = BTreeMap::new();
    if let Some(RawKms { keys: raw_keys }) = kms {
        for (role, RawKey { description, rotation, alias }) in raw_keys {
            if !role.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                p.push(format!("kms.keys.{role}"), "key roles are lowercase words, e.g. data, backups, logs, alerts");
            }
            let alias = alias.unwrap_or_else(|| format!("alias/{name}-{role}"));
            if !alias.starts_with("alias/") || alias.starts_with("alias/aws/") {
                p.push(
                    format!("kms.keys.{role}.alias"),
                    format!("`{alias}` must start with alias/ (and not alias/aws/)"),
                );
            }
            let description = description.unwrap_or_else(|| format!("{name} {role} key (stackdrill)"));
            keys.insert(role, KeySpec { description, rotation: rotation.unwrap_or(true), alias });
        }
    }
    keys
}

/// `database`: the RDS instance.
fn resolve_database(
    d: RawDatabase,
    name: &str,
    p: &mut Problems<'_>,
    key_ref: &dyn Fn(&mut Problems<'_>, &str, &str),
) -> DatabaseSpec {
    let RawDatabase {
        identifier,
        engine_version,
        instance_class,
        allocated_storage,
        master_username,
        database,
        kms_key,
        multi_az,
        backup_retention_days,
        deletion_protection,
        publicly_accessible,
        iam_auth,
        parameters,
    } = d;
    key_ref(p, "database.kms-key", &kms_key);
    let identifier = identifier.unwrap_or_else(|| format!("{name}-db"));
    if !super::aws_restore::is_db_identifier(&identifier) {
        p.push("database.identifier", format!("`{identifier}` is not an RDS identifier"));
    }
    if !instance_class.starts_with("db.") {
        p.push("database.instance-class", format!("`{instance_class}` is not an instance class like db.m6g.large"));
    }
    if !(20..=65536).contains(&allocated_storage) {
        p.push("database.allocated-storage", "must be between 20 and 65536 (GiB)");
    }
    let backup_retention_days = backup_retention_days.unwrap_or(7);
    if backup_retention_days > 35 {
        p.push("database.backup-retention-days", "RDS keeps automated backups at most 35 days");
    }
    DatabaseSpec {
        subnet_group: format!("{identifier}-subnets"),
        parameter_group: format!("{identifier}-params"),
        identifier,
        engine_version,
        instance_class,
        allocated_storage,
        master_username,
        database,
        key: kms_key,
        multi_az: multi_az.unwrap_or(true),
        backup_retention_days,
        deletion_protection: deletion_protection.unwrap_or(true),
        publicly_accessible: publicly_accessible.unwrap_or(false),
        iam_auth: iam_auth.unwrap_or(true),
        parameters,
    }
}

/// `backup`: the AWS Backup vault, plan and selection.
fn resolve_backup(
    RawBackup { vault, plan, selection }: RawBackup,
    name: &str,
    p: &mut Problems<'_>,
    key_ref: &dyn Fn(&mut Problems<'_>, &str, &str),
) -> BackupSpec {
    let RawVault { name: vault_name, kms_key } = vault;
    key_ref(p, "backup.vault.kms-key", &kms_key);
    let RawPlan { name: plan_name, rules } = plan;
    if rules.is_empty() {
        p.push("backup.plan.rules", "needs at least one rule");
    }
    let rules = rules
        .into_iter()
        .enumerate()
        .map(|(i, RawRule { name: rule, schedule, continuous, retention_days })| {
            let continuous = continuous.unwrap_or(false);
            if let Some(s) = &schedule {
                let parsed = crate::cadence::Expr::parse(s);
                if !(s.trim_start().starts_with("cron(") && parsed.is_ok()) {
                    let why = parsed.err().unwrap_or_else(|| "AWS Backup takes a cron(...) expression".into());
                    p.push(
                        format!("backup.plan.rules[{i}].schedule"),
                        format!("`{s}` is not an AWS cron() expression: {why}"),
                    );
                }
            }
            if schedule.is_none() && !continuous {
                p.push(format!("backup.plan.rules[{i}]"), "needs `schedule` or `continuous: true`");
            }
            if continuous && retention_days > 35 {
                p.push(format!("backup.plan.rules[{i}].retention-days"), "continuous backups keep at most 35 days");
            }
            RuleSpec { name: rule, schedule, continuous, retention_days }
        })
        .collect();
    let selection = selection.map(|RawSelection { name: sel_name, iam_role_arn, tag: RawTag { key, value } }| {
        if !iam_role_arn.starts_with("arn:") {
            p.push("backup.selection.iam-role-arn", "must be an IAM role ARN");
        }
        SelectionSpec { name: sel_name.unwrap_or_else(|| format!("{name}-selection")), iam_role_arn, tag: (key, value) }
    });
    BackupSpec {
        vault: vault_name.unwrap_or_else(|| format!("{name}-vault")),
        vault_key: kms_key,
        plan: plan_name.unwrap_or_else(|| format!("{name}-plan")),
        rules,
        selection,
    }
}

/// `app`: the Elastic Beanstalk environment.
fn resolve_app(a: RawApp, name: &str, p: &mut Problems<'_>) -> AppSpec {
    let RawApp {
        application,
        environment,
        solution_stack,
        instance_type,
        min_instances,
        max_instances,
        health,
        managed_updates,
        instance_profile,
        service_role,
        https: RawHttps { certificate_arn, ssl_policy },
    } = a;
    if instance_profile.trim().is_empty() {
        p.push("app.instance-profile", "must name the EC2 instance profile (or its ARN) the instances run with");
    }
    if min_instances > max_instances {
        p.push("app.min-instances", format!("{min_instances} is more than max-instances {max_instances}"));
    }
    let enhanced_health = match health.as_deref().unwrap_or("enhanced") {
        "enhanced" => true,
        "basic" => false,
        other => {
            p.push("app.health", format!("unknown health reporting `{other}`: use enhanced or basic"));
            true
        }
    };
    if !certificate_arn.starts_with("arn:") {
        p.push("app.https.certificate-arn", "must be an ACM certificate ARN");
    }
    let managed_updates = managed_updates.unwrap_or(true);
    if service_role.is_none() && (enhanced_health || managed_updates) {
        p.push(
            "app",
            "enhanced health and managed updates act through a service role: give `service-role` \
             (e.g. aws-elasticbeanstalk-service-role)",
        );
    }
    AppSpec {
        application: application.unwrap_or_else(|| name.to_string()),
        environment: environment.unwrap_or_else(|| format!("{name}-web")),
        solution_stack,
        instance_type,
        min_instances,
        max_instances,
        enhanced_health,
        managed_updates,
        instance_profile,
        service_role,
        certificate_arn,
        ssl_policy,
    }
}

/// `shield.advanced`: auto (the default), required or off.
fn resolve_shield(p: &mut Problems<'_>, shield: Option<RawShield>) -> ShieldMode {
    match shield.and_then(|RawShield { advanced }| advanced).as_deref().unwrap_or("auto") {
        "auto" => ShieldMode::Auto,
        "required" => ShieldMode::Required,
        "off" => ShieldMode::Off,
        other => {
            p.push("shield.advanced", format!("unknown mode `{other}`: use auto, required or off"));
            ShieldMode::Auto
        }
    }
}

const COMPARISONS: [(&str, &str); 6] = [
    (">=", "GreaterThanOrEqualToThreshold"),
    (">", "GreaterThanThreshold"),
    ("<=", "LessThanOrEqualToThreshold"),
    ("<", "LessThanThreshold"),
    ("outside-band", "LessThanLowerOrGreaterThanUpperThreshold"),
    ("above-band", "GreaterThanUpperThreshold"),
];

fn resolve_alerts(
    a: RawAlerts,
    stack: &str,
    p: &mut Problems<'_>,
    key_ref: &dyn Fn(&mut Problems<'_>, &str, &str),
) -> AlertsSpec {
    let RawAlerts { topic, log_groups, metric_filters, alarms } = a;
    let RawTopic { name: topic_name, kms_key, subscriptions } = topic;
    if let Some(k) = &kms_key {
        key_ref(p, "alerts.topic.kms-key", k);
    }
    let subscriptions = subscriptions
        .into_iter()
        .enumerate()
        .map(|(i, RawSubscription { protocol, endpoint })| {
            if !["email", "https", "sqs", "lambda", "sms"].contains(&protocol.as_str()) {
                p.push(format!("alerts.topic.subscriptions[{i}].protocol"), format!("unknown protocol `{protocol}`"));
            }
            (protocol, endpoint)
        })
        .collect();
    let log_groups = resolve_log_groups(p, log_groups, key_ref);
    let metric_filters = resolve_metric_filters(p, metric_filters, &log_groups);
    let mut names = std::collections::HashSet::new();
    let alarms = alarms.into_iter().enumerate().map(|(i, raw)| resolve_alarm(p, i, raw, &mut names)).collect();
    AlertsSpec {
        topic: topic_name.unwrap_or_else(|| format!("{stack}-alerts")),
        topic_key: kms_key,
        subscriptions,
        log_groups,
        metric_filters,
        alarms,
    }
}

/// `alerts.log-groups`: each group's retention (one CloudWatch Logs allows) and key.
fn resolve_log_groups(
    p: &mut Problems<'_>,
    log_groups: Vec<RawLogGroup>,
    key_ref: &dyn Fn(&mut Problems<'_>, &str, &str),
) -> Vec<LogGroupSpec> {
    log_groups
        .into_iter()
        .enumerate()
        .map(|(i, RawLogGroup { name, retention_days, kms_key })| {
            if let Some(k) = &kms_key {
                key_ref(p, &format!("alerts.log-groups[{i}].kms-key"), k);
            }
            const ALLOWED: [u32; 22] = [
                1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
            ];
            if let Some(r) = retention_days
                && !ALLOWED.contains(&r)
            {
                p.push(
                    format!("alerts.log-groups[{i}].retention-days"),
                    format!("{r} is not a CloudWatch Logs retention"),
                );
            }
            LogGroupSpec { name, retention_days, key: kms_key }
        })
        .collect()
}

/// `alerts.metric-filters`: each on a log group of this stack.
fn resolve_metric_filters(
    p: &mut Problems<'_>,
    metric_filters: Vec<RawMetricFilter>,
    log_groups: &[LogGroupSpec],
) -> Vec<MetricFilterSpec> {
    metric_filters
        .into_iter()
        .enumerate()
        .map(|(i, RawMetricFilter { name, log_group, pattern, metric })| {
            if !log_groups.iter().any(|g| g.name == log_group) {
                p.push(
                    format!("alerts.metric-filters[{i}].log-group"),
                    format!("no log group `{log_group}` in this stack"),
                );
            }
            if pattern.trim().is_empty() {
                p.push(format!("alerts.metric-filters[{i}].pattern"), "must not be empty");
            }
            let RawFilterMetric { namespace, name: metric, value, default, dimensions } = metric;
            if default.is_some() && !dimensions.is_empty() {
                p.push(
                    format!("alerts.metric-filters[{i}].metric.default"),
                    "CloudWatch does not allow a default value on a filter with dimensions",
                );
            }
            MetricFilterSpec {
                name,
                log_group,
                pattern,
                namespace,
                metric,
                value: value.unwrap_or_else(|| "1".into()),
                default,
                dimensions,
            }
        })
        .collect()
}

/// `alerts.alarms[i]`: a unique name, a purpose, one kind, a comparison, periods CloudWatch can evaluate.
fn resolve_alarm(
    p: &mut Problems<'_>,
    i: usize,
    raw: RawAlarm,
    names: &mut std::collections::HashSet<String>,
) -> AlarmSpec {
    let k = format!("alerts.alarms[{i}]");
    let RawAlarm {
        name,
        purpose,
        description,
        metric,
        anomaly_band,
        expression,
        metrics,
        threshold,
        comparison,
        periods,
        datapoints,
        missing_data,
    } = raw;
    if !names.insert(name.clone()) {
        p.push(format!("{k}.name"), format!("another alarm is already named `{name}`"));
    }
    let purpose = match purpose.as_deref() {
        None => Purpose::Other,
        Some(s) => Purpose::ALL.iter().find(|(n, _)| *n == s).map(|(_, p)| *p).unwrap_or_else(|| {
            let known: Vec<&str> = Purpose::ALL.iter().map(|(n, _)| *n).collect();
            p.push(format!("{k}.purpose"), format!("unknown purpose `{s}`: one of {}", known.join(", ")));
            Purpose::Other
        }),
    };
    let kind = alarm_kind(p, &k, metric, anomaly_band, expression, metrics);
    let is_band = matches!(kind, AlarmKind::AnomalyBand { .. });
    if !is_band && threshold.is_none() {
        p.push(k.clone(), "needs `threshold`");
    }
    let comparison = comparison.unwrap_or_else(|| if is_band { "above-band" } else { ">=" }.into());
    let comparison = match COMPARISONS.iter().find(|(s, _)| *s == comparison) {
        Some((s, op)) => {
            if is_band != s.ends_with("band") {
                p.push(format!("{k}.comparison"), "anomaly bands compare with above-band or outside-band only");
            }
            op.to_string()
        }
        None => {
            p.push(
                format!("{k}.comparison"),
                format!("unknown comparison `{comparison}`: >=, >, <=, <, above-band, outside-band"),
            );
            String::new()
        }
    };
    let periods = periods.unwrap_or(1);
    let datapoints = datapoints.unwrap_or(periods);
    if datapoints > periods || periods == 0 {
        p.push(format!("{k}.datapoints"), format!("{datapoints} of {periods} periods is not possible"));
    }
    // CloudWatch evaluates at most 7 days back, and at most 1 day for periods under an hour.
    let longest = match &kind {
        AlarmKind::Metric(m) | AlarmKind::AnomalyBand { metric: m, .. } => m.period,
        AlarmKind::Expression { metrics, .. } => metrics.values().map(|m| m.period).max().unwrap_or_default(),
    };
    let window = longest.as_secs() * u64::from(periods);
    let limit = if longest.as_secs() < 3600 { 86_400 } else { 604_800 };
    if window > limit {
        p.push(
            format!("{k}.periods"),
            format!(
                "{periods} periods of {}s look back {window}s; CloudWatch allows at most {limit}s",
                longest.as_secs()
            ),
        );
    }
    let missing_data = missing_data.unwrap_or_else(|| "notBreaching".into());
    if !["breaching", "notBreaching", "ignore", "missing"].contains(&missing_data.as_str()) {
        p.push(format!("{k}.missing-data"), format!("unknown treatment `{missing_data}`"));
    }
    AlarmSpec { name, purpose, description, kind, threshold, comparison, periods, datapoints, missing_data }
}

/// An alarm's kind: one metric, an anomaly band on one metric, or metric math over named metrics.
fn alarm_kind(
    p: &mut Problems<'_>,
    k: &str,
    metric: Option<RawAlarmMetric>,
    anomaly_band: Option<RawAnomaly>,
    expression: Option<String>,
    metrics: BTreeMap<String, RawAlarmMetric>,
) -> AlarmKind {
    match (metric, anomaly_band, expression) {
        (Some(m), None, None) if metrics.is_empty() => AlarmKind::Metric(alarm_metric(p, format!("{k}.metric"), m)),
        (None, Some(RawAnomaly { metric, width }), None) if metrics.is_empty() => AlarmKind::AnomalyBand {
            metric: alarm_metric(p, format!("{k}.anomaly-band.metric"), metric),
            width: width.unwrap_or(2.0),
        },
        (None, None, Some(expression)) if !metrics.is_empty() => {
            let metrics = metrics
                .into_iter()
                .map(|(id, m)| {
                    if !id.starts_with(|c: char| c.is_ascii_lowercase())
                        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        p.push(format!("{k}.metrics.{id}"), "metric ids start with a lowercase letter");
                    }
                    let m = alarm_metric(p, format!("{k}.metrics.{id}"), m);
                    (id, m)
                })
                .collect();
            if let Some(why) = metric_math_problem(&expression) {
                p.push(format!("{k}.expression"), why);
            }
            AlarmKind::Expression { expression, metrics }
        }
        _ => {
            p.push(k, "needs exactly one of `metric`, `anomaly-band`, or `expression` with `metrics`");
            AlarmKind::Expression { expression: String::new(), metrics: BTreeMap::new() }
        }
    }
}

fn alarm_metric(p: &mut Problems<'_>, key: String, m: RawAlarmMetric) -> AlarmMetric {
    let RawAlarmMetric { namespace, name, statistic, period, dimensions } = m;
    let statistic = statistic.unwrap_or_else(|| "Sum".into());
    if !["Sum", "Average", "Maximum", "Minimum", "SampleCount"].contains(&statistic.as_str()) {
        p.push(format!("{key}.statistic"), format!("unknown statistic `{statistic}`"));
    }
    let period = period
        .map_or(Duration::from_secs(300), |t| duration(p, &format!("{key}.period"), &t, Duration::from_secs(300)));
    if period.as_secs() < 10 || (period.as_secs() >= 60 && period.as_secs() % 60 != 0) {
        p.push(format!("{key}.period"), "must be 10s, 30s or a multiple of 1m");
    }
    AlarmMetric { namespace, name, statistic, period, dimensions }
}

/// Metric math that CloudWatch's documentation does not give: an array function over a plain number
/// (`MAX([calls, 1])`: arrays hold time series). Guarding a division is `IF(calls > 0, ..., 0)`.
fn metric_math_problem(expression: &str) -> Option<String> {
    #[expect(clippy::expect_used, reason = "a constant pattern: every stack test that loads a file compiles it")]
    let re = regex::Regex::new(r"(?i)\b(MAX|MIN|SUM|AVG)\s*\(\s*\[([^\]]*)\]").expect("a valid pattern");
    re.captures_iter(expression).find_map(|c| {
        let scalar = c[2].split(',').map(str::trim).find(|t| t.parse::<f64>().is_ok())?;
        Some(format!(
            "`{}([...{scalar}...])` puts a number in an array of time series, which CloudWatch metric math does not \
             take; guard a division with IF, e.g. `IF(calls > 0, 100 * errors / calls, 0)`",
            &c[1]
        ))
    })
}
