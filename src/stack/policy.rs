//! Policy rules with stable ids, each mapped to SOC 2 criteria and to the equivalent Checkov check and AWS
//! Config rule, evaluated on the stack file (`stack check`). A rule either passes, fails with the resource
//! and the reason, or does not apply (the stack declares no such resource).

use serde::Serialize;

use crate::config::{AlarmKind, Purpose, ShieldMode, StackSpec};
use crate::stack::model::ResourceKind;

/// One rule of the policy.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Rule {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) soc2: &'static [&'static str],
    pub(crate) checkov: &'static str,
    pub(crate) aws_config: &'static str,
}

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "STK-REGION",
        title: "every resource is in a residency region",
        soc2: &["C1.1", "CC6.1"],
        checkov: "—",
        aws_config: "— (no stock rule)",
    },
    Rule {
        id: "STK-KMS-ROTATION",
        title: "customer-managed KMS keys rotate yearly",
        soc2: &["CC6.1"],
        checkov: "CKV_AWS_7",
        aws_config: "cmk-backing-key-rotation-enabled",
    },
    Rule {
        id: "STK-RDS-ENCRYPTED",
        title: "RDS storage encrypted with a customer-managed key",
        soc2: &["CC6.1", "C1.1"],
        checkov: "CKV_AWS_16",
        aws_config: "rds-storage-encrypted",
    },
    Rule {
        id: "STK-RDS-MULTI-AZ",
        title: "RDS is Multi-AZ",
        soc2: &["A1.2"],
        checkov: "CKV_AWS_157",
        aws_config: "rds-multi-az-support",
    },
    Rule {
        id: "STK-RDS-BACKUP-RETENTION",
        title: "RDS keeps automated backups (PITR) at least 7 days",
        soc2: &["A1.2"],
        checkov: "CKV_AWS_133",
        aws_config: "db-instance-backup-enabled",
    },
    Rule {
        id: "STK-RDS-PRIVATE",
        title: "RDS is not publicly accessible",
        soc2: &["CC6.6"],
        checkov: "CKV_AWS_17",
        aws_config: "rds-instance-public-access-check",
    },
    Rule {
        id: "STK-RDS-FORCE-SSL",
        title: "RDS forces TLS (rds.force_ssl = 1)",
        soc2: &["CC6.7"],
        checkov: "CKV2_AWS_69",
        aws_config: "—",
    },
    Rule {
        id: "STK-RDS-DELETION-PROTECTION",
        title: "RDS has deletion protection",
        soc2: &["A1.2"],
        checkov: "CKV_AWS_293",
        aws_config: "rds-instance-deletion-protection-enabled",
    },
    Rule {
        id: "STK-RDS-IAM-AUTH",
        title: "RDS accepts IAM database authentication",
        soc2: &["CC6.1"],
        checkov: "CKV_AWS_161",
        aws_config: "rds-instance-iam-authentication-enabled",
    },
    Rule {
        id: "STK-BACKUP-PLAN",
        title: "AWS Backup has a daily rule and a continuous (PITR) rule, each kept ≥ 35 days, and selects by tag",
        soc2: &["A1.2", "A1.3"],
        checkov: "—",
        aws_config: "backup-plan-min-frequency-and-min-retention-check",
    },
    Rule {
        id: "STK-BACKUP-SELECTS-DB",
        title: "the backup selection selects the stack's database (its tag is on the instance)",
        soc2: &["A1.2"],
        checkov: "—",
        aws_config: "rds-resources-protected-by-backup-plan",
    },
    Rule {
        id: "STK-BACKUP-VAULT-ENCRYPTED",
        title: "the backup vault is encrypted with a customer-managed key",
        soc2: &["CC6.1"],
        checkov: "CKV_AWS_166",
        aws_config: "backup-recovery-point-encrypted",
    },
    Rule {
        id: "STK-S3-VERSIONING",
        title: "S3 buckets keep every version of their objects",
        soc2: &["A1.2"],
        checkov: "CKV_AWS_21",
        aws_config: "s3-bucket-versioning-enabled",
    },
    Rule {
        id: "STK-S3-ENCRYPTED",
        title: "S3 buckets encrypt by default with a customer-managed KMS key",
        soc2: &["CC6.1", "C1.1"],
        checkov: "CKV_AWS_145",
        aws_config: "s3-default-encryption-kms",
    },
    Rule {
        id: "STK-S3-PUBLIC-ACCESS",
        title: "S3 Block Public Access is on (all four settings)",
        soc2: &["CC6.1", "CC6.6"],
        checkov: "CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, CKV_AWS_56",
        aws_config: "s3-bucket-level-public-access-prohibited",
    },
    Rule {
        id: "STK-S3-RETENTION",
        title: "noncurrent S3 versions are kept at least as long as the backup window (so a restore to any point                 in it finds the objects its rows name)",
        soc2: &["A1.2", "A1.3"],
        checkov: "CKV2_AWS_61",
        aws_config: "s3-version-lifecycle-policy-check",
    },
    Rule {
        id: "STK-S3-ACCESS-LOGS",
        title: "S3 server access logging is on",
        soc2: &["CC7.2"],
        checkov: "CKV_AWS_18",
        aws_config: "s3-bucket-logging-enabled",
    },
    Rule {
        id: "STK-S3-BACKUP",
        title: "the backup selection selects each bucket (its tag is on the bucket)",
        soc2: &["A1.2"],
        checkov: "—",
        aws_config: "s3-resources-protected-by-backup-plan",
    },
    Rule {
        id: "STK-ALARMS",
        title: "the required alarms exist (auth-denial spike, provider failure rate, indexing failures, ledger mismatch, drill freshness)",
        soc2: &["CC7.2", "A1.2"],
        checkov: "—",
        aws_config: "—",
    },
    Rule {
        id: "STK-ALARM-ACTIONS",
        title: "every alarm notifies the stack's SNS topic",
        soc2: &["CC7.2", "CC7.3"],
        checkov: "CKV_AWS_319",
        aws_config: "cloudwatch-alarm-action-check",
    },
    Rule {
        id: "STK-ALARM-METRICS",
        title: "every alarm watches a metric something produces (a metric filter of the stack, AWS, or stackdrill)",
        soc2: &["CC7.2"],
        checkov: "—",
        aws_config: "—",
    },
    Rule {
        id: "STK-DRILL-FRESHNESS",
        title: "the drill-freshness alarm treats missing data as breaching",
        soc2: &["A1.3"],
        checkov: "—",
        aws_config: "—",
    },
    Rule {
        id: "STK-SNS-ENCRYPTED",
        title: "the alert topic is encrypted with a customer-managed key",
        soc2: &["CC6.1"],
        checkov: "CKV_AWS_26",
        aws_config: "sns-encrypted-kms",
    },
    Rule {
        id: "STK-LOGS-ENCRYPTED",
        title: "log groups are encrypted with a customer-managed key and have a retention",
        soc2: &["CC6.1", "CC7.2"],
        checkov: "CKV_AWS_158, CKV_AWS_338",
        aws_config: "cloudwatch-log-group-encrypted",
    },
    Rule {
        id: "STK-APP-HEALTH",
        title: "Beanstalk reports enhanced health and runs ≥ 2 instances across ≥ 2 AZs",
        soc2: &["A1.2", "CC7.2"],
        checkov: "CKV_AWS_312",
        aws_config: "beanstalk-enhanced-health-reporting-enabled",
    },
    Rule {
        id: "STK-APP-MANAGED-UPDATES",
        title: "Beanstalk managed platform updates are on",
        soc2: &["CC7.1"],
        checkov: "CKV_AWS_340",
        aws_config: "elastic-beanstalk-managed-updates-enabled",
    },
    Rule {
        id: "STK-APP-TLS",
        title: "the load balancer listens on HTTPS with a TLS 1.2+ policy",
        soc2: &["CC6.7"],
        checkov: "CKV_AWS_103",
        aws_config: "elb-tls-https-listeners-only",
    },
    Rule {
        id: "STK-SHIELD",
        title: "Shield: Standard always; Advanced on the load balancer when required",
        soc2: &["A1.2", "CC6.6"],
        checkov: "—",
        aws_config: "shield-advanced-enabled-autorenew",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    Pass,
    Fail,
    NotApplicable,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    pub(crate) rule: &'static str,
    pub(crate) status: Status,
    pub(crate) resource: String,
    pub(crate) message: String,
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, rule: &'static str, ok: bool, resource: impl Into<String>, pass: &str, fail: String) {
        let (status, message) = if ok { (Status::Pass, pass.to_string()) } else { (Status::Fail, fail) };
        self.0.push(Finding { rule, status, resource: resource.into(), message });
    }

    fn absent(&mut self, rule: &'static str, what: &str) {
        self.0.push(Finding {
            rule,
            status: Status::NotApplicable,
            resource: String::new(),
            message: format!("the stack declares no {what}"),
        });
    }
}

pub(crate) fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Evaluates every rule on the declared stack.
pub(crate) fn check(s: &StackSpec) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    f.add(
        "STK-REGION",
        s.residency.contains(&s.region),
        format!("stack {}", s.name),
        &format!("region {} is within the residency", s.region),
        format!("region {} is outside the residency {}", s.region, s.residency.join(", ")),
    );
    if s.keys.is_empty() {
        f.absent("STK-KMS-ROTATION", "KMS keys");
    }
    for (role, k) in &s.keys {
        f.add("STK-KMS-ROTATION", k.rotation, &k.alias, "rotation on", format!("key `{role}` has rotation off"));
    }
    check_database(&mut f, s);
    check_backup(&mut f, s);
    check_buckets(&mut f, s);

    check_alerts(&mut f, s);
    check_app(&mut f, s);
    let shield_ok = s.shield != ShieldMode::Off || s.app.is_none();
    f.add(
        "STK-SHIELD",
        shield_ok,
        format!("stack {}", s.name),
        match s.shield {
            ShieldMode::Required => "Shield Advanced required on the load balancer",
            ShieldMode::Auto => "Shield Standard (automatic); Advanced when the account subscribes",
            ShieldMode::Off => "no internet-facing load balancer",
        },
        "Shield Advanced is off for an internet-facing load balancer; use auto or required".into(),
    );
    f.0
}

/// The RDS database's rules: encryption, Multi-AZ, retention, privacy, TLS, deletion protection, IAM auth.
fn check_database(f: &mut Findings, s: &StackSpec) {
    match &s.database {
        None => {
            for r in [
                "STK-RDS-ENCRYPTED",
                "STK-RDS-MULTI-AZ",
                "STK-RDS-BACKUP-RETENTION",
                "STK-RDS-PRIVATE",
                "STK-RDS-FORCE-SSL",
                "STK-RDS-DELETION-PROTECTION",
                "STK-RDS-IAM-AUTH",
            ] {
                f.absent(r, "RDS database");
            }
        }
        Some(d) => {
            let id = format!("rds {}", d.identifier);
            f.add(
                "STK-RDS-ENCRYPTED",
                s.keys.contains_key(&d.key),
                &id,
                &format!("encrypted with the `{}` key", d.key),
                "no customer-managed key".into(),
            );
            f.add("STK-RDS-MULTI-AZ", d.multi_az, &id, "Multi-AZ", "single-AZ".into());
            f.add(
                "STK-RDS-BACKUP-RETENTION",
                d.backup_retention_days >= 7,
                &id,
                &format!("automated backups kept {} days", d.backup_retention_days),
                format!("automated backups kept {} days (< 7)", d.backup_retention_days),
            );
            f.add(
                "STK-RDS-PRIVATE",
                !d.publicly_accessible,
                &id,
                "not publicly accessible",
                "publicly accessible".into(),
            );
            let ssl = d.parameters.get("rds.force_ssl").map(String::as_str);
            f.add(
                "STK-RDS-FORCE-SSL",
                ssl == Some("1"),
                &id,
                "rds.force_ssl = 1",
                format!("rds.force_ssl is {}", ssl.unwrap_or("unset")),
            );
            f.add(
                "STK-RDS-DELETION-PROTECTION",
                d.deletion_protection,
                &id,
                "deletion protection on",
                "deletion protection off".into(),
            );
            f.add("STK-RDS-IAM-AUTH", d.iam_auth, &id, "IAM authentication on", "IAM authentication off".into());
        }
    }
}

/// The longest a restore may reach back: the database's PITR window or the backup plan's longest retention.
fn backup_window_days(s: &StackSpec) -> i64 {
    let db = s.database.as_ref().map(|d| i64::from(d.backup_retention_days)).unwrap_or(0);
    let plan = s.backup.as_ref().and_then(|b| b.rules.iter().map(|r| i64::from(r.retention_days)).max()).unwrap_or(0);
    db.max(plan)
}

/// The buckets' rules: versions kept long enough, encryption, no public access, access logs, backed up.
fn check_buckets(f: &mut Findings, s: &StackSpec) {
    const IDS: [&str; 6] = [
        "STK-S3-VERSIONING",
        "STK-S3-ENCRYPTED",
        "STK-S3-PUBLIC-ACCESS",
        "STK-S3-RETENTION",
        "STK-S3-ACCESS-LOGS",
        "STK-S3-BACKUP",
    ];
    if s.buckets.is_empty() {
        for r in IDS {
            f.absent(r, "S3 bucket");
        }
        return;
    }
    let window = backup_window_days(s);
    let selection = s.backup.as_ref().and_then(|b| b.selection.as_ref());
    for b in &s.buckets {
        let id = format!("s3 {}", b.name);
        f.add(
            "STK-S3-VERSIONING",
            b.versioning,
            &id,
            "versioning on",
            "versioning off: an overwrite or delete loses the object".into(),
        );
        let key = b.key.as_ref().filter(|k| s.keys.contains_key(*k));
        f.add(
            "STK-S3-ENCRYPTED",
            key.is_some(),
            &id,
            &format!("SSE-KMS with the `{}` key", key.map(String::as_str).unwrap_or_default()),
            "no customer-managed key (`kms-key`): objects are encrypted with SSE-S3 only".into(),
        );
        f.add(
            "STK-S3-PUBLIC-ACCESS",
            b.block_public_access,
            &id,
            "Block Public Access on",
            "Block Public Access off".into(),
        );
        let kept = b.noncurrent_retention_days.map(i64::from);
        f.add(
            "STK-S3-RETENTION",
            b.versioning && kept.is_none_or(|d| d >= window),
            &id,
            &match kept {
                Some(d) => format!("noncurrent versions kept {d} days (backup window {window} days)"),
                None => "noncurrent versions kept until deleted".into(),
            },
            match (b.versioning, kept) {
                (false, _) => "no versions are kept (versioning off)".into(),
                (true, d) => format!(
                    "noncurrent versions kept {} days, less than the backup window of {window} days: a restore to its start would find objects gone",
                    d.unwrap_or(0)
                ),
            },
        );
        f.add(
            "STK-S3-ACCESS-LOGS",
            b.access_logs.is_some(),
            &id,
            &b.access_logs.as_ref().map(|(t, p)| format!("access logs to s3://{t}/{p}")).unwrap_or_default(),
            "no server access logging (`access-logs`)".into(),
        );
        f.add(
            "STK-S3-BACKUP",
            b.backup && selection.is_some(),
            &id,
            &selection.map(|sel| format!("carries {}={}", sel.tag.0, sel.tag.1)).unwrap_or_default(),
            if selection.is_none() {
                "the stack has no backup selection".into()
            } else {
                "`backup: false`: not selected".into()
            },
        );
    }
}

/// The alerts block's rules: the five required alarms, their actions and metrics, the drill-freshness alarm,
/// the topic's and log groups' encryption.
fn check_alerts(f: &mut Findings, s: &StackSpec) {
    let cmk = |role: &Option<String>| role.as_ref().is_some_and(|r| s.keys.contains_key(r));
    match &s.alerts {
        None => {
            for r in [
                "STK-ALARMS",
                "STK-ALARM-ACTIONS",
                "STK-ALARM-METRICS",
                "STK-DRILL-FRESHNESS",
                "STK-SNS-ENCRYPTED",
                "STK-LOGS-ENCRYPTED",
            ] {
                f.absent(r, "alerts block");
            }
        }
        Some(a) => {
            check_alarms(f, a);
            f.add(
                "STK-SNS-ENCRYPTED",
                cmk(&a.topic_key),
                format!("topic {}", a.topic),
                "encrypted with a customer-managed key",
                "not encrypted with a customer-managed key".into(),
            );
            if a.log_groups.is_empty() {
                f.absent("STK-LOGS-ENCRYPTED", "log groups");
            }
            for g in &a.log_groups {
                let ok = cmk(&g.key) && g.retention_days.is_some();
                let why = match (cmk(&g.key), g.retention_days) {
                    (false, None) => "no customer-managed key and no retention",
                    (false, _) => "no customer-managed key",
                    _ => "no retention (kept forever)",
                };
                f.add(
                    "STK-LOGS-ENCRYPTED",
                    ok,
                    format!("log group {}", g.name),
                    "encrypted, retention set",
                    why.into(),
                );
            }
        }
    }
}

/// The alarm rules: the five required purposes, actions, metrics something produces, drill freshness.
fn check_alarms(f: &mut Findings, a: &crate::config::AlertsSpec) {
    let required = [
        Purpose::AuthDenialSpike,
        Purpose::ProviderFailureRate,
        Purpose::IndexingFailures,
        Purpose::LedgerMismatch,
        Purpose::DrillFreshness,
    ];
    let missing: Vec<&str> =
        required.iter().filter(|p| !a.alarms.iter().any(|x| x.purpose == **p)).map(|p| p.as_str()).collect();
    f.add(
        "STK-ALARMS",
        missing.is_empty(),
        format!("topic {}", a.topic),
        "all five required alarms are declared",
        format!("no alarm with purpose {}", missing.join(", ")),
    );
    // stackdrill sets every alarm's actions (alarm and OK) to the stack topic, so in the file this
    // holds by construction; `--live` is what can find an alarm whose actions were changed.
    for al in &a.alarms {
        f.add("STK-ALARM-ACTIONS", true, format!("alarm {}", al.name), &format!("notifies {}", a.topic), String::new());
    }
    // An alarm on a metric nothing produces never fires.
    for al in &a.alarms {
        let namespaces: Vec<&str> = match &al.kind {
            AlarmKind::Metric(m) | AlarmKind::AnomalyBand { metric: m, .. } => vec![m.namespace.as_str()],
            AlarmKind::Expression { metrics, .. } => metrics.values().map(|m| m.namespace.as_str()).collect(),
        };
        let fed = namespaces.iter().all(|ns| {
            *ns == "Stackdrill" || ns.starts_with("AWS/") || a.metric_filters.iter().any(|mf| mf.namespace == *ns)
        });
        f.add(
            "STK-ALARM-METRICS",
            fed,
            format!("alarm {}", al.name),
            "its metric is produced",
            format!("its namespace {} is fed by no metric filter of this stack", namespaces.join(", ")),
        );
    }
    match a.alarms.iter().find(|x| x.purpose == Purpose::DrillFreshness) {
        Some(al) => f.add(
            "STK-DRILL-FRESHNESS",
            al.missing_data == "breaching",
            format!("alarm {}", al.name),
            "missing data is breaching",
            format!("missing data is {}", al.missing_data),
        ),
        None => f.absent("STK-DRILL-FRESHNESS", "drill-freshness alarm"),
    }
}

/// The Elastic Beanstalk environment's rules: health, managed updates, TLS policy.
fn check_app(f: &mut Findings, s: &StackSpec) {
    match &s.app {
        None => {
            for r in ["STK-APP-HEALTH", "STK-APP-MANAGED-UPDATES", "STK-APP-TLS"] {
                f.absent(r, "Elastic Beanstalk environment");
            }
        }
        Some(app) => {
            let env = format!("beanstalk {}", app.environment);
            let ok = app.enhanced_health && app.min_instances >= 2 && s.subnets.len() >= 2;
            f.add(
                "STK-APP-HEALTH",
                ok,
                &env,
                "enhanced health, ≥ 2 instances over ≥ 2 subnets",
                format!(
                    "health {}, min {} instances, {} subnet(s)",
                    if app.enhanced_health { "enhanced" } else { "basic" },
                    app.min_instances,
                    s.subnets.len()
                ),
            );
            f.add(
                "STK-APP-MANAGED-UPDATES",
                app.managed_updates,
                &env,
                "managed updates on",
                "managed updates off".into(),
            );
            let modern = app.ssl_policy.contains("TLS13")
                || app.ssl_policy.contains("TLS-1-2")
                || app.ssl_policy.contains("TLS12");
            f.add(
                "STK-APP-TLS",
                modern,
                &env,
                &format!("HTTPS with {}", app.ssl_policy),
                format!("policy {} allows TLS below 1.2", app.ssl_policy),
            );
        }
    }
}

/// The backup rules on the file: the plan's rules, that its selection selects the database, the vault's key.
fn check_backup(f: &mut Findings, s: &StackSpec) {
    match &s.backup {
        None => {
            f.absent("STK-BACKUP-PLAN", "backup plan");
            f.absent("STK-BACKUP-SELECTS-DB", "backup plan");
            f.absent("STK-BACKUP-VAULT-ENCRYPTED", "backup vault");
        }
        Some(b) => {
            let daily = b.rules.iter().any(|r| r.schedule.is_some() && r.retention_days >= 35);
            let continuous = b.rules.iter().any(|r| r.continuous && r.retention_days >= 35);
            let mut missing = Vec::new();
            if !daily {
                missing.push("a scheduled rule kept ≥ 35 days");
            }
            if !continuous {
                missing.push("a continuous (PITR) rule kept ≥ 35 days");
            }
            if b.selection.is_none() {
                missing.push("a selection of what to back up");
            }
            f.add(
                "STK-BACKUP-PLAN",
                missing.is_empty(),
                format!("backup plan {}", b.plan),
                "daily and continuous rules, 35 days, a tag selection",
                format!("missing {}", missing.join(" and ")),
            );
            match (&b.selection, &s.database) {
                (Some(sel), Some(d)) => f.add(
                    "STK-BACKUP-SELECTS-DB",
                    true,
                    format!("backup selection {}", sel.name),
                    &format!(
                        "selects {} by its tag {}={} (stackdrill tags the instance)",
                        d.identifier, sel.tag.0, sel.tag.1
                    ),
                    String::new(),
                ),
                (None, Some(d)) => f.add(
                    "STK-BACKUP-SELECTS-DB",
                    false,
                    format!("backup plan {}", b.plan),
                    "",
                    format!("no selection: the plan backs up nothing, not even {}", d.identifier),
                ),
                (_, None) => f.absent("STK-BACKUP-SELECTS-DB", "RDS database"),
            }
            f.add(
                "STK-BACKUP-VAULT-ENCRYPTED",
                s.keys.contains_key(&b.vault_key),
                format!("backup vault {}", b.vault),
                &format!("encrypted with the `{}` key", b.vault_key),
                "no customer-managed key".into(),
            );
        }
    }
}

/// Evaluates the rules on live state: what AWS has for each declared resource, not what the file says.
/// A declared resource that does not exist fails the rules that concern it.
pub(crate) fn check_live(
    s: &StackSpec,
    desired: &[crate::stack::model::Resource],
    live: &crate::stack::live::LiveState,
    region: &str,
) -> Vec<Finding> {
    use serde_json::Value;
    let mut f = Findings(Vec::new());
    f.add(
        "STK-REGION",
        s.residency.iter().any(|r| r == region),
        format!("stack {}", s.name),
        &format!("live region {region} is within the residency"),
        format!("live region {region} is outside the residency {}", s.residency.join(", ")),
    );
    let get = |kind: ResourceKind| desired.iter().filter(move |r| r.kind == kind).map(|r| (r, live.get(r)));
    let prop = live_prop;
    for (r, l) in get(ResourceKind::KmsKey) {
        let ok = prop(l, "rotation") == Value::Bool(true);
        let fail = if l.is_none() { missing(r) } else { "rotation is off".into() };
        f.add("STK-KMS-ROTATION", ok, &r.name, "rotation on", fail);
    }
    for (r, l) in get(ResourceKind::RdsInstance) {
        live_database(&mut f, r, l, live);
    }
    for (r, l) in get(ResourceKind::BackupVault) {
        let ok = prop(l, "kms-key").as_str().is_some_and(|k| k.starts_with("alias/") && !k.starts_with("alias/aws/"));
        let fail = if l.is_none() { missing(r) } else { format!("key {}", prop(l, "kms-key")) };
        f.add("STK-BACKUP-VAULT-ENCRYPTED", ok, &r.name, "customer-managed key", fail);
    }
    // The selection selects by tag: the live database must carry it, or the plan backs up nothing.
    for (r, l) in get(ResourceKind::RdsInstance) {
        let Some(want) = r.props.get("backup-tag").and_then(Value::as_str) else { continue };
        let have = prop(l, "backup-tag");
        let fail = if l.is_none() { missing(r) } else { format!("lacks the selection's tag {want}") };
        f.add("STK-BACKUP-SELECTS-DB", have.as_str() == Some(want), &r.name, &format!("tagged {want}"), fail);
    }
    for (r, l) in get(ResourceKind::BackupPlan) {
        let rules = prop(l, "rules");
        let rules = rules.as_array().cloned().unwrap_or_default();
        let kept = |x: &Value| x["retention-days"].as_i64().unwrap_or(0) >= 35;
        let ok = rules.iter().any(|x| !x["schedule"].is_null() && kept(x))
            && rules.iter().any(|x| x["continuous"] == Value::Bool(true) && kept(x));
        let fail = if l.is_none() { missing(r) } else { "lacks a daily or a continuous rule kept ≥ 35 days".into() };
        f.add("STK-BACKUP-PLAN", ok, &r.name, "daily and continuous rules, 35 days", fail);
    }
    let topic = s.alerts.as_ref().map(|a| a.topic.clone()).unwrap_or_default();
    for (r, l) in get(ResourceKind::Alarm) {
        f.add("STK-ALARMS", l.is_some(), &r.name, "exists", missing(r));
        let acts = prop(l, "actions");
        let ok = acts.as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(&topic)));
        f.add("STK-ALARM-ACTIONS", ok, &r.name, "notifies the alert topic", format!("actions {acts}"));
    }
    for (r, l) in get(ResourceKind::SnsTopic) {
        let ok = !prop(l, "kms-key").is_null();
        let fail = if l.is_none() { missing(r) } else { "not encrypted".into() };
        f.add("STK-SNS-ENCRYPTED", ok, &r.name, "KMS-encrypted", fail);
    }
    for (r, l) in get(ResourceKind::LogGroup) {
        let ok = !prop(l, "kms-key").is_null() && !prop(l, "retention-days").is_null();
        let fail = if l.is_none() { missing(r) } else { "needs a KMS key and a retention period".into() };
        f.add("STK-LOGS-ENCRYPTED", ok, &r.name, "KMS-encrypted with retention", fail);
    }
    for (r, l) in get(ResourceKind::S3Bucket) {
        live_bucket(&mut f, r, l, backup_window_days(s));
    }
    for (r, l) in get(ResourceKind::BeanstalkEnvironment) {
        let subnets = prop(l, "subnets").as_array().map(Vec::len).unwrap_or(0);
        let ok = prop(l, "health") == Value::String("enhanced".into()) && subnets >= 2;
        let fail = if l.is_none() { missing(r) } else { format!("health {}, {subnets} subnet(s)", prop(l, "health")) };
        f.add("STK-APP-HEALTH", ok, &r.name, "enhanced health across ≥ 2 AZs", fail);
    }
    f.0
}

/// The bucket rules on the live bucket.
fn live_bucket(f: &mut Findings, r: &crate::stack::model::Resource, l: Option<&crate::stack::live::Live>, window: i64) {
    use serde_json::Value;
    let prop = live_prop;
    let what = format!("s3 {}", r.name);
    let fail = |m: String| if l.is_none() { missing(r) } else { m };
    let versioned = prop(l, "versioning") == Value::Bool(true);
    f.add("STK-S3-VERSIONING", versioned, &what, "versioning on", fail("versioning is not enabled".into()));
    let key = prop(l, "kms-key");
    let cmk = key.as_str().is_some_and(|k| k.starts_with("alias/") && !k.starts_with("alias/aws/"));
    f.add(
        "STK-S3-ENCRYPTED",
        cmk,
        &what,
        "SSE-KMS with a customer-managed key",
        fail(format!("default encryption {key}")),
    );
    let open = prop(l, "block-public-access") != Value::Bool(true);
    f.add("STK-S3-PUBLIC-ACCESS", !open, &what, "Block Public Access on", fail("Block Public Access is off".into()));
    let kept = prop(l, "noncurrent-retention-days").as_i64();
    f.add(
        "STK-S3-RETENTION",
        versioned && kept.is_none_or(|d| d >= window),
        &what,
        "noncurrent versions kept through the backup window",
        fail(format!("noncurrent versions kept {} days (backup window {window})", kept.unwrap_or(0))),
    );
    let logs = prop(l, "access-logs");
    f.add("STK-S3-ACCESS-LOGS", !logs.is_null(), &what, "access logging on", fail("access logging is off".into()));
    if let Some(want) = r.props.get("backup-tag").and_then(Value::as_str) {
        let have = prop(l, "backup-tag");
        let msg = fail(format!("lacks the selection's tag {want}"));
        f.add("STK-S3-BACKUP", have.as_str() == Some(want), &what, &format!("tagged {want}"), msg);
    }
}

/// A live property, `null` when the resource or the property is absent.
fn live_prop(l: Option<&crate::stack::live::Live>, k: &str) -> serde_json::Value {
    l.and_then(|l| l.props.get(k)).cloned().unwrap_or(serde_json::Value::Null)
}

fn missing(r: &crate::stack::model::Resource) -> String {
    format!("{} {} does not exist", r.kind, r.name)
}

/// The database rules on the live instance and its live parameter group.
fn live_database(
    f: &mut Findings,
    r: &crate::stack::model::Resource,
    l: Option<&crate::stack::live::Live>,
    live: &crate::stack::live::LiveState,
) {
    use serde_json::Value;
    let prop = live_prop;
    let what = format!("rds {}", r.name);
    let fail = |m: &str| if l.is_none() { missing(r) } else { m.to_string() };
    let key = prop(l, "kms-key");
    let cmk = key.as_str().is_some_and(|k| k.starts_with("alias/") && k != "alias/aws/rds");
    f.add(
        "STK-RDS-ENCRYPTED",
        cmk,
        &what,
        "encrypted with a customer-managed key",
        fail(&format!("storage key {key}")),
    );
    f.add("STK-RDS-MULTI-AZ", prop(l, "multi-az") == Value::Bool(true), &what, "Multi-AZ", fail("single-AZ"));
    let days = prop(l, "backup-retention-days").as_i64().unwrap_or(0);
    f.add("STK-RDS-BACKUP-RETENTION", days >= 7, &what, "retention ≥ 7 days", fail(&format!("retention {days} days")));
    f.add(
        "STK-RDS-PRIVATE",
        prop(l, "publicly-accessible") == Value::Bool(false),
        &what,
        "not public",
        fail("publicly accessible"),
    );
    f.add(
        "STK-RDS-DELETION-PROTECTION",
        prop(l, "deletion-protection") == Value::Bool(true),
        &what,
        "deletion protection on",
        fail("deletion protection off"),
    );
    f.add("STK-RDS-IAM-AUTH", prop(l, "iam-auth") == Value::Bool(true), &what, "IAM auth on", fail("IAM auth off"));
    let pg = live.found.get(&format!("db-parameter-group/{}", prop(l, "parameter-group").as_str().unwrap_or_default()));
    let ssl = pg.and_then(|p| p.props.get("parameters")).and_then(|p| p.get("rds.force_ssl")).and_then(Value::as_str);
    f.add(
        "STK-RDS-FORCE-SSL",
        ssl == Some("1"),
        &what,
        "rds.force_ssl = 1",
        fail("rds.force_ssl is not 1 in its parameter group"),
    );
}
