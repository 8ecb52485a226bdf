//! Stack files: validation with located errors, the declared resources, and the policy rules.

use super::harness::{Scratch, stackdrill, text};

fn write(dir: &Scratch, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn the_production_stack_validates_and_keeps_every_rule() {
    let out = stackdrill().args(["stack", "validate", "--output", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prod = v.as_array().unwrap().iter().find(|e| e["stack"] == "production").expect("production");
    let resources = prod["resources"].as_array().unwrap();
    let pos = |kind: &str, name: &str| {
        resources.iter().position(|r| r["kind"] == kind && r["name"] == name).unwrap_or_else(|| panic!("{kind}/{name}"))
    };
    // Dependencies come first: keys before what they encrypt, the topic before the alarms, the vault before the plan.
    assert!(pos("kms-key", "alias/production-alerts") < pos("sns-topic", "production-alerts"));
    assert!(pos("sns-topic", "production-alerts") < pos("alarm", "production-ledger-mismatch"));
    assert!(pos("kms-key", "alias/production-data") < pos("rds-instance", "production-db"));
    assert!(pos("backup-vault", "production-vault") < pos("backup-plan", "production-plan"));
    let db = &resources[pos("rds-instance", "production-db")];
    assert_eq!(db["props"]["multi-az"], true);
    assert_eq!(db["props"]["kms-key"], "alias/production-data");

    let out = stackdrill().args(["stack", "check", "production"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("stack `production` (the file): 36 passed, 0 failed"), "{stdout}");
}

const COMPLIANT_HEAD: &str = "name: lax\nregion: us-east-1\nresidency: [ap-southeast-1]\n\
    network: { vpc: vpc-1, subnets: [subnet-1] }\n";

#[test]
fn a_lax_stack_fails_the_rules_it_breaks_and_names_them() {
    let dir = Scratch::new();
    let body = format!(
        "{COMPLIANT_HEAD}kms:\n  keys:\n    data: {{ rotation: false }}\n\
         alerts:\n  topic: {{}}\n  log-groups: [{{ name: /lax/app }}]\n  alarms:\n\
         \x20   - {{ name: a, purpose: drill-freshness, metric: {{ namespace: Stackdrill, name: DrillSucceeded, period: 1d }}, threshold: 1, comparison: \"<\" }}\n\
         database:\n  engine-version: \"15\"\n  instance-class: db.t4g.micro\n  allocated-storage: 20\n  master-username: a\n\
         \x20 kms-key: data\n  multi-az: false\n  backup-retention-days: 3\n  deletion-protection: false\n\
         \x20 publicly-accessible: true\n  iam-auth: false\n\
         backup:\n  vault: {{ kms-key: data }}\n  plan: {{ rules: [{{ name: d, schedule: \"cron(0 1 * * ? *)\", retention-days: 7 }}] }}\n\
         \x20 selection: {{ iam-role-arn: \"arn:aws:iam::1:role/b\", tag: {{ key: b, value: x }} }}\n\
         app:\n  solution-stack: s\n  instance-type: t3.small\n  min-instances: 1\n  max-instances: 2\n  health: basic\n\
         \x20 managed-updates: false\n  https: {{ certificate-arn: \"arn:aws:acm:us-east-1:1:certificate/x\", ssl-policy: ELBSecurityPolicy-2016-08 }}\n\
         shield: {{ advanced: \"off\" }}\n"
    );
    let file = write(&dir, "lax.yaml", &body);
    let out = stackdrill().args(["stack", "check"]).arg(&file).args(["--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: std::collections::BTreeSet<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect();
    let want = [
        "STK-REGION",
        "STK-KMS-ROTATION",
        "STK-RDS-MULTI-AZ",
        "STK-RDS-BACKUP-RETENTION",
        "STK-RDS-PRIVATE",
        "STK-RDS-FORCE-SSL",
        "STK-RDS-DELETION-PROTECTION",
        "STK-RDS-IAM-AUTH",
        "STK-BACKUP-PLAN",
        "STK-ALARMS",
        "STK-DRILL-FRESHNESS",
        "STK-SNS-ENCRYPTED",
        "STK-LOGS-ENCRYPTED",
        "STK-APP-HEALTH",
        "STK-APP-MANAGED-UPDATES",
        "STK-APP-TLS",
        "STK-SHIELD",
    ];
    let want: std::collections::BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(failed, want);
    // Each finding carries its SOC 2 criteria and the equivalent Checkov / AWS Config rules.
    let multi_az = rows.as_array().unwrap().iter().find(|r| r["rule"] == "STK-RDS-MULTI-AZ").unwrap();
    assert_eq!(multi_az["checkov"], "CKV_AWS_157");
    assert_eq!(multi_az["aws_config"], "rds-multi-az-support");
    assert_eq!(multi_az["soc2"][0], "A1.2");
    assert_eq!(multi_az["resource"], "rds lax-db");
    let alarms = rows.as_array().unwrap().iter().find(|r| r["rule"] == "STK-ALARMS").unwrap();
    assert!(alarms["message"].as_str().unwrap().contains("auth-denial-spike, provider-failure-rate"), "{alarms}");
}

#[test]
fn broken_stack_files_name_file_line_column_and_key() {
    let dir = Scratch::new();
    let body = format!(
        "{COMPLIANT_HEAD}kms:\n  keys:\n    data: {{}}\n\
         alerts:\n  topic: {{ kms-key: alert }}\n  alarms:\n\
         \x20   - {{ name: a, metric: {{ namespace: N, name: M, period: 5m }}, threshold: 1, periods: 300 }}\n\
         \x20   - {{ name: b, threshold: 1, purpose: vibes }}\n\
         database: {{ engine-version: \"15\", instance-class: m6g, allocated-storage: 20, master-username: a, kms-key: data, multi-azz: true }}\n"
    );
    let file = write(&dir, "broken.yaml", &body);
    let out = stackdrill().args(["stack", "validate"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("broken.yaml:13:114: `database.multi-azz` unknown field `multi-azz`")
            && stderr.contains("(did you mean `multi-az`?)"),
        "{stderr}"
    );
    // With the unknown key fixed, every remaining problem is reported at once.
    let file = write(&dir, "broken.yaml", &body.replace("multi-azz", "multi-az"));
    let out = stackdrill().args(["stack", "validate"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for e in [
        "`alerts.topic.kms-key` no KMS key `alert` under kms.keys (known: data)",
        "`alerts.alarms[0].periods` 300 periods of 300s look back 90000s; CloudWatch allows at most 86400s",
        "`alerts.alarms[1]` needs exactly one of `metric`, `anomaly-band`, or `expression` with `metrics`",
        "`alerts.alarms[1].purpose` unknown purpose `vibes`",
        "`database.instance-class` `m6g` is not an instance class",
    ] {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
}
