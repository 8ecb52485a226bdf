//! The resources a stack declares, in dependency order, each with the properties stackdrill will manage
//! and the names it will create them under. `stack plan` compares these with live state.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{AlarmKind, AlarmMetric, ShieldMode, StackSpec};
use crate::config::{AlertsSpec, AppSpec, BackupSpec, DatabaseSpec};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Resource {
    /// `kms-key`, `sns-topic`, `log-group`, `metric-filter`, `alarm`, `db-parameter-group`, `db-subnet-group`,
    /// `rds-instance`, `backup-vault`, `backup-plan`, `backup-selection`, `s3-bucket`, `beanstalk-application`,
    /// `beanstalk-environment`, `shield-protection`.
    pub(crate) kind: &'static str,
    pub(crate) name: String,
    pub(crate) props: BTreeMap<&'static str, Value>,
    /// `kind/name` of the resources this one needs first.
    pub(crate) depends_on: Vec<String>,
}

impl Resource {
    pub(crate) fn new(kind: &'static str, name: impl Into<String>) -> Self {
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

    fn after(mut self, kind: &str, name: &str) -> Self {
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
            Resource::new("kms-key", &k.alias)
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
    let mut topic = Resource::new("sns-topic", &a.topic).prop("subscriptions", subs);
    if let Some(k) = &a.topic_key {
        topic = topic.prop("kms-key", alias(k)).after("kms-key", &alias(k));
    }
    out.push(topic);
    for g in &a.log_groups {
        let mut r = Resource::new("log-group", &g.name)
            .prop("retention-days", g.retention_days)
            .prop("kms-key", g.key.as_ref().map(|k| alias(k)));
        if let Some(k) = &g.key {
            r = r.after("kms-key", &alias(k));
        }
        out.push(r);
    }
    for f in &a.metric_filters {
        out.push(
            Resource::new("metric-filter", &f.name)
                .prop("log-group", &f.log_group)
                .prop("pattern", &f.pattern)
                .prop("metric", format!("{}/{}", f.namespace, f.metric))
                .prop("value", &f.value)
                .prop("default", f.default)
                .prop("dimensions", &f.dimensions)
                .after("log-group", &f.log_group),
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
            Resource::new("alarm", &al.name)
                .prop("description", &al.description)
                .prop("watches", what)
                .prop("threshold", al.threshold)
                .prop("comparison", &al.comparison)
                .prop("evaluation", format!("{} of {}", al.datapoints, al.periods))
                .prop("missing-data", &al.missing_data)
                .prop("actions", [&a.topic])
                .after("sns-topic", &a.topic),
        );
    }
}

/// The database: its parameter group, subnet group and instance.
fn database(s: &StackSpec, d: &DatabaseSpec, out: &mut Vec<Resource>) {
    let alias = |role: &str| alias(s, role);
    let major = d.engine_version.split('.').next().unwrap_or_default();
    out.push(
        Resource::new("db-parameter-group", &d.parameter_group)
            .prop("family", format!("postgres{major}"))
            .prop("parameters", &d.parameters),
    );
    out.push(Resource::new("db-subnet-group", &d.subnet_group).prop("subnets", sorted(&s.subnets)).prop("vpc", &s.vpc));
    out.push(
        Resource::new("rds-instance", &d.identifier)
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
            .after("kms-key", &alias(&d.key))
            .after("db-parameter-group", &d.parameter_group)
            .after("db-subnet-group", &d.subnet_group),
    );
}

/// AWS Backup: the vault, the plan and the selection.
fn backup(s: &StackSpec, b: &BackupSpec, out: &mut Vec<Resource>) {
    let alias = |role: &str| alias(s, role);
    out.push(
        Resource::new("backup-vault", &b.vault)
            .prop("kms-key", alias(&b.vault_key))
            .after("kms-key", &alias(&b.vault_key)),
    );
    let rules: Vec<Value> = b
        .rules
        .iter()
        .map(|r| json!({ "name": r.name, "schedule": r.schedule, "continuous": r.continuous, "retention-days": r.retention_days }))
        .collect();
    out.push(
        Resource::new("backup-plan", &b.plan)
            .prop("vault", &b.vault)
            .prop("rules", rules)
            .after("backup-vault", &b.vault),
    );
    if let Some(sel) = &b.selection {
        out.push(
            Resource::new("backup-selection", &sel.name)
                .prop("plan", &b.plan)
                .prop("iam-role-arn", &sel.iam_role_arn)
                .prop("tag", format!("{}={}", sel.tag.0, sel.tag.1))
                .after("backup-plan", &b.plan),
        );
    }
}

/// The S3 buckets: versioning, default encryption, Block Public Access, how long noncurrent versions stay,
/// access logging, and the backup selection's tag.
fn buckets(s: &StackSpec, out: &mut Vec<Resource>) {
    let selection = s.backup.as_ref().and_then(|b| b.selection.as_ref());
    for b in &s.buckets {
        let mut r = Resource::new("s3-bucket", &b.name)
            .prop("versioning", b.versioning)
            .prop("kms-key", b.key.as_ref().map(|k| alias(s, k)))
            .prop("block-public-access", b.block_public_access)
            .prop("noncurrent-retention-days", b.noncurrent_retention_days)
            .prop("access-logs", b.access_logs.as_ref().map(|(bucket, prefix)| format!("{bucket}/{prefix}")))
            .prop("backup-tag", selection.filter(|_| b.backup).map(|sel| format!("{}={}", sel.tag.0, sel.tag.1)));
        if let Some(k) = &b.key {
            r = r.after("kms-key", &alias(s, k));
        }
        if let Some((logs, _)) = &b.access_logs
            && s.buckets.iter().any(|o| &o.name == logs)
        {
            r = r.after("s3-bucket", logs);
        }
        out.push(r);
    }
}

/// Elastic Beanstalk: the application, the environment, and Shield on its load balancer.
fn beanstalk(s: &StackSpec, app: &AppSpec, out: &mut Vec<Resource>) {
    out.push(Resource::new("beanstalk-application", &app.application));
    out.push(
        Resource::new("beanstalk-environment", &app.environment)
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
            .after("beanstalk-application", &app.application),
    );
    if s.shield != ShieldMode::Off {
        out.push(
            Resource::new("shield-protection", format!("{}-lb", app.environment))
                .prop("environment", &app.environment)
                .prop("mode", if s.shield == ShieldMode::Required { "required" } else { "when subscribed" })
                .after("beanstalk-environment", &app.environment),
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
}
