//! The resources a stack declares, in dependency order, each with the properties stackdrill will manage
//! and the names it will create them under. `stack plan` compares these with live state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{AlarmKind, AlarmMetric, ShieldMode, StackSpec};
use crate::config::{AlertsSpec, AppSpec, BackupSpec, DatabaseSpec};

/// Every kind of AWS resource a stack manages. Matches over it are exhaustive, so a new kind does not
/// compile until create, update, delete, tags and import handle it; its serde name is the one plans, the
/// live state and `kind/name` addresses use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ResourceKind {
    KmsKey,
    SnsTopic,
    LogGroup,
    MetricFilter,
    Alarm,
    DbParameterGroup,
    DbSubnetGroup,
    RdsInstance,
    BackupVault,
    BackupPlan,
    BackupSelection,
    S3Bucket,
    BeanstalkApplication,
    BeanstalkEnvironment,
    ShieldProtection,
}

impl ResourceKind {
    /// Every kind, in the order the model declares them (keys first: the others name them).
    pub(crate) const ALL: [ResourceKind; 15] = [
        ResourceKind::KmsKey,
        ResourceKind::SnsTopic,
        ResourceKind::LogGroup,
        ResourceKind::MetricFilter,
        ResourceKind::Alarm,
        ResourceKind::DbParameterGroup,
        ResourceKind::DbSubnetGroup,
        ResourceKind::RdsInstance,
        ResourceKind::BackupVault,
        ResourceKind::BackupPlan,
        ResourceKind::BackupSelection,
        ResourceKind::S3Bucket,
        ResourceKind::BeanstalkApplication,
        ResourceKind::BeanstalkEnvironment,
        ResourceKind::ShieldProtection,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResourceKind::KmsKey => "kms-key",
            ResourceKind::SnsTopic => "sns-topic",
            ResourceKind::LogGroup => "log-group",
            ResourceKind::MetricFilter => "metric-filter",
            ResourceKind::Alarm => "alarm",
            ResourceKind::DbParameterGroup => "db-parameter-group",
            ResourceKind::DbSubnetGroup => "db-subnet-group",
            ResourceKind::RdsInstance => "rds-instance",
            ResourceKind::BackupVault => "backup-vault",
            ResourceKind::BackupPlan => "backup-plan",
            ResourceKind::BackupSelection => "backup-selection",
            ResourceKind::S3Bucket => "s3-bucket",
            ResourceKind::BeanstalkApplication => "beanstalk-application",
            ResourceKind::BeanstalkEnvironment => "beanstalk-environment",
            ResourceKind::ShieldProtection => "shield-protection",
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Resource {
    pub(crate) kind: ResourceKind,
    pub(crate) name: String,
    pub(crate) props: BTreeMap<&'static str, Value>,
    /// `kind/name` of the resources this one needs first.
    pub(crate) depends_on: Vec<String>,
}

impl Resource {
    pub(crate) fn new(kind: ResourceKind, name: impl Into<String>) -> Self {
        Resource { kind, name: name.into(), props: BTreeMap::new(), depends_on: Vec::new() }
    }

    pub(crate) fn prop(mut self, k: &'static str, v: impl Serialize) -> Self {
        self.props.insert(k, json!(v));
        self
    }

    /// `kind/name`, as `depends_on` and the live state name it.
    pub(crate) fn address(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    fn after(mut self, kind: ResourceKind, name: &str) -> Self {
        self.depends_on.push(format!("{kind}/{name}"));
        self
    }
}

/// The AWS services a key's policy must let use it, by what the stack encrypts with it: CloudWatch Logs
/// for log groups (it encrypts with the key itself, and refuses a key its principal cannot use), and
/// CloudWatch for the alert topic (alarms publish to it, which needs the topic's key).
fn key_services(s: &StackSpec, role: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(a) = &s.alerts {
        if a.log_groups.iter().any(|g| g.key.as_deref() == Some(role)) {
            out.push(format!("logs.{}.amazonaws.com", s.region));
        }
        if a.topic_key.as_deref() == Some(role) {
            out.push("cloudwatch.amazonaws.com".to_string());
        }
    }
    out.sort();
    out
}

/// Every resource of the stack, dependencies before dependents. Tags (`stackdrill:managed`,
/// `stackdrill:stack`) go on each when it is created.
pub(crate) fn desired(s: &StackSpec) -> Vec<Resource> {
    let mut out = Vec::new();
    keys(s, &mut out);
    if let Some(a) = &s.alerts {
        alerts(s, a, &mut out);
    }
    if let Some(d) = &s.database {
        database(s, d, &mut out);
    }
    if let Some(b) = &s.backup {
        backup(s, b, &mut out);
    }
    buckets(s, &mut out);
    if let Some(app) = &s.app {
        beanstalk(s, app, &mut out);
    }
    out
}

/// The alias of the stack's key for `role` (empty when the file names none: validation reported it).
fn alias(s: &StackSpec, role: &str) -> String {
    s.keys.get(role).map(|k| k.alias.clone()).unwrap_or_default()
}

/// The KMS keys, each with the services its policy lets use it.
fn keys(s: &StackSpec, out: &mut Vec<Resource>) {
    for (role, k) in &s.keys {
        out.push(
            Resource::new(ResourceKind::KmsKey, &k.alias)
                .prop("description", &k.description)
                .prop("rotation", k.rotation)
                .prop("service-principals", key_services(s, role)),
        );
    }
}

/// The alerts: the topic, log groups, metric filters and alarms.
fn alerts(s: &StackSpec, a: &AlertsSpec, out: &mut Vec<Resource>) {
    let alias = |role: &str| alias(s, role);
    let mut subs: Vec<[&String; 2]> = a.subscriptions.iter().map(|(p, e)| [p, e]).collect();
    subs.sort_by_key(|s| serde_json::to_string(s).unwrap_or_default());
    let mut topic = Resource::new(ResourceKind::SnsTopic, &a.topic).prop("subscriptions", subs);
    if let Some(k) = &a.topic_key {
        topic = topic.prop("kms-key", alias(k)).after(ResourceKind::KmsKey, &alias(k));
    }
    out.push(topic);
    for g in &a.log_groups {
        let mut r = Resource::new(ResourceKind::LogGroup, &g.name)
            .prop("retention-days", g.retention_days)
            .prop("kms-key", g.key.as_ref().map(|k| alias(k)));
        if let Some(k) = &g.key {
            r = r.after(ResourceKind::KmsKey, &alias(k));
        }
        out.push(r);
    }
    for f in &a.metric_filters {
        out.push(
            Resource::new(ResourceKind::MetricFilter, &f.name)
                .prop("log-group", &f.log_group)
                .prop("pattern", &f.pattern)
                .prop("metric", format!("{}/{}", f.namespace, f.metric))
                .prop("value", &f.value)
                .prop("default", f.default)
                .prop("dimensions", &f.dimensions)
                .after(ResourceKind::LogGroup, &f.log_group),
        );
    }
    for al in &a.alarms {
        let metric = |m: &AlarmMetric| {
            json!({
                "namespace": m.namespace, "name": m.name, "statistic": m.statistic,
                "period": m.period.as_secs(), "dimensions": m.dimensions,
            })
        };
        let what = match &al.kind {
            AlarmKind::Metric(m) => json!({ "metric": metric(m) }),
            AlarmKind::AnomalyBand { metric: m, width } => {
                json!({ "anomaly-band": { "metric": metric(m), "width": width } })
            }
            AlarmKind::Expression { expression, metrics } => json!({
                "expression": expression,
                "metrics": metrics.iter().map(|(id, m)| (id.clone(), metric(m))).collect::<BTreeMap<_, _>>(),
            }),
        };
        out.push(
            Resource::new(ResourceKind::Alarm, &al.name)
                .prop("description", &al.description)
                .prop("watches", what)
                .prop("threshold", al.threshold)
                .prop("comparison", &al.comparison)
                .prop("evaluation", format!("{} of {}", al.datapoints, al.periods))
                .prop("missing-data", &al.missing_data)
                .prop("actions", [&a.topic])
                .after(ResourceKind::SnsTopic, &a.topic),
        );
    }
}

/// The database: its parameter group, subnet group and instance.
fn database(s: &StackSpec, d: &DatabaseSpec, out: &mut Vec<Resource>) {
    let alias = |role: &str| alias(s, role);
    let major = d.engine_version.split('.').next().unwrap_or_default();
    out.push(
        Resource::new(ResourceKind::DbParameterGroup, &d.parameter_group)
            .prop("family", format!("postgres{major}"))
            .prop("parameters", &d.parameters),
    );
    out.push(
        Resource::new(ResourceKind::DbSubnetGroup, &d.subnet_group)
            .prop("subnets", sorted(&s.subnets))
            .prop("vpc", &s.vpc),
    );
    out.push(
        Resource::new(ResourceKind::RdsInstance, &d.identifier)
            .prop("engine", format!("postgres {}", d.engine_version))
            .prop("instance-class", &d.instance_class)
            .prop("allocated-storage", d.allocated_storage)
            .prop("master-username", &d.master_username)
            .prop("database", &d.database)
            .prop("kms-key", alias(&d.key))
            .prop("multi-az", d.multi_az)
            .prop("backup-retention-days", d.backup_retention_days)
            .prop("deletion-protection", d.deletion_protection)
            .prop("publicly-accessible", d.publicly_accessible)
            .prop("iam-auth", d.iam_auth)
            .prop("parameter-group", &d.parameter_group)
            .prop("subnet-group", &d.subnet_group)
            // The backup selection selects by tag: the database carries it, or nothing is backed up.
            .prop(
                "backup-tag",
                s.backup.as_ref().and_then(|b| b.selection.as_ref()).map(|sel| format!("{}={}", sel.tag.0, sel.tag.1)),
            )
            .after(ResourceKind::KmsKey, &alias(&d.key))
            .after(ResourceKind::DbParameterGroup, &d.parameter_group)
            .after(ResourceKind::DbSubnetGroup, &d.subnet_group),
    );
}

/// AWS Backup: the vault, the plan and the selection.
fn backup(s: &StackSpec, b: &BackupSpec, out: &mut Vec<Resource>) {
    let alias = |role: &str| alias(s, role);
    out.push(
        Resource::new(ResourceKind::BackupVault, &b.vault)
            .prop("kms-key", alias(&b.vault_key))
            .after(ResourceKind::KmsKey, &alias(&b.vault_key)),
    );
    let rules: Vec<Value> = b
        .rules
        .iter()
        .map(|r| json!({ "name": r.name, "schedule": r.schedule, "continuous": r.continuous, "retention-days": r.retention_days }))
        .collect();
    out.push(
        Resource::new(ResourceKind::BackupPlan, &b.plan)
            .prop("vault", &b.vault)
            .prop("rules", rules)
            .after(ResourceKind::BackupVault, &b.vault),
    );
    if let Some(sel) = &b.selection {
        out.push(
            Resource::new(ResourceKind::BackupSelection, &sel.name)
                .prop("plan", &b.plan)
                .prop("iam-role-arn", &sel.iam_role_arn)
                .prop("tag", format!("{}={}", sel.tag.0, sel.tag.1))
                .after(ResourceKind::BackupPlan, &b.plan),
        );
    }
}

/// The S3 buckets: versioning, default encryption, Block Public Access, how long noncurrent versions stay,
/// access logging, and the backup selection's tag.
fn buckets(s: &StackSpec, out: &mut Vec<Resource>) {
    let selection = s.backup.as_ref().and_then(|b| b.selection.as_ref());
    for b in &s.buckets {
        let mut r = Resource::new(ResourceKind::S3Bucket, &b.name)
            .prop("versioning", b.versioning)
            .prop("kms-key", b.key.as_ref().map(|k| alias(s, k)))
            .prop("block-public-access", b.block_public_access)
            .prop("noncurrent-retention-days", b.noncurrent_retention_days)
            .prop("access-logs", b.access_logs.as_ref().map(|(bucket, prefix)| format!("{bucket}/{prefix}")))
            .prop("backup-tag", selection.filter(|_| b.backup).map(|sel| format!("{}={}", sel.tag.0, sel.tag.1)));
        if let Some(k) = &b.key {
            r = r.after(ResourceKind::KmsKey, &alias(s, k));
        }
        if let Some((logs, _)) = &b.access_logs
            && s.buckets.iter().any(|o| &o.name == logs)
        {
            r = r.after(ResourceKind::S3Bucket, logs);
        }
        out.push(r);
    }
}

/// Elastic Beanstalk: the application, the environment, and Shield on its load balancer.
fn beanstalk(s: &StackSpec, app: &AppSpec, out: &mut Vec<Resource>) {
    out.push(Resource::new(ResourceKind::BeanstalkApplication, &app.application));
    out.push(
        Resource::new(ResourceKind::BeanstalkEnvironment, &app.environment)
            .prop("application", &app.application)
            .prop("solution-stack", &app.solution_stack)
            .prop("instance-type", &app.instance_type)
            .prop("instances", format!("{}..{}", app.min_instances, app.max_instances))
            .prop("subnets", sorted(&s.subnets))
            .prop("vpc", &s.vpc)
            .prop("health", if app.enhanced_health { "enhanced" } else { "basic" })
            .prop("managed-updates", app.managed_updates)
            .prop("instance-profile", &app.instance_profile)
            .prop("service-role", &app.service_role)
            .prop("https", json!({ "certificate-arn": app.certificate_arn, "ssl-policy": app.ssl_policy }))
            .after(ResourceKind::BeanstalkApplication, &app.application),
    );
    if s.shield != ShieldMode::Off {
        out.push(
            Resource::new(ResourceKind::ShieldProtection, format!("{}-lb", app.environment))
                .prop("environment", &app.environment)
                .prop("mode", if s.shield == ShieldMode::Required { "required" } else { "when subscribed" })
                .after(ResourceKind::BeanstalkEnvironment, &app.environment),
        );
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    /// The resources the repository's production stack declares, in order, with every property: pinned.
    #[test]
    fn desired_resources_of_the_production_stack_snapshot() {
        let spec = crate::config::load_stack(std::path::Path::new("stacks/production.yaml")).expect("it loads");
        let json = serde_json::to_string_pretty(&super::desired(&spec)).expect("serialises");
        insta::assert_snapshot!("production_desired", json);
    }

    /// A kind's JSON name is the one `kind/name` addresses and saved plans use, for every kind, and a
    /// mistyped kind in a saved plan is an error that names it, not a panic in the code that changes AWS.
    #[test]
    fn every_kind_round_trips_and_a_mistyped_kind_is_refused() {
        use super::ResourceKind;
        for k in ResourceKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
            assert_eq!(serde_json::from_value::<ResourceKind>(serde_json::json!(k.as_str())).unwrap(), k);
        }
        // In declaration order, each once: `live::read` names its batches in this order.
        assert!(ResourceKind::ALL.windows(2).all(|w| w[0] < w[1]), "{:?}", ResourceKind::ALL);
        let e = serde_json::from_str::<ResourceKind>("\"kms-keyy\"").unwrap_err().to_string();
        assert!(e.contains("unknown variant `kms-keyy`") && e.contains("kms-key"), "{e}");
    }
}
