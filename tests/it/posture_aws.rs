//! `backups check` against the AWS emulator: the stack `stack apply` makes (stacks/production.yaml on moto,
//! see stack_aws.rs) is read by the `rds-instance` and `s3-bucket` readers; an unencrypted instance and the
//! bucket with versioning suspended each fail, naming the store and the figure; every RDS call the check
//! made is in `iam policy --backups`. (moto has no ListRecoveryPointsByResource or backup jobs: the
//! `aws-backup` reader is tested with aws-smithy-mocks in src/posture/aws_tests.rs.)

use std::path::Path;

use super::harness::text;
use super::stack_aws::Env;

fn backups_yaml(dir: &Path, db: &str) -> std::path::PathBuf {
    let file = dir.join("backups.yaml");
    std::fs::write(
        &file,
        format!(
            "stores:\n  - name: prod-db\n    source: {{ rds-instance: {{ id: {db} }} }}\n    \
             objectives: {{ min-retention: 7d, max-pitr-lag: 1h }}\n  \
             - name: prod-files\n    source: {{ s3-bucket: {{ bucket: acme-prod-files }} }}\n    \
             objectives: {{ min-retention: 30d }}\n"
        ),
    )
    .unwrap();
    file
}

fn check(env: &Env, file: &Path, reports: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = env.run(&[
        "backups",
        "check",
        "--output",
        "json",
        "--file",
        file.to_str().unwrap(),
        "--reports",
        reports.to_str().unwrap(),
    ]);
    let record = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)));
    (out.status.code(), record, text(&out.stderr))
}

fn figure<'a>(record: &'a serde_json::Value, store: &str, name: &str) -> &'a serde_json::Value {
    let s = record["stores"].as_array().unwrap().iter().find(|s| s["name"] == store).unwrap();
    s["figures"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name}: {s:#}"))
}

#[test]
fn a_stack_applied_by_stack_apply_passes_and_each_lapse_fails_naming_store_and_figure() {
    let env = Env::new();
    let out = env.stack("apply", &["--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let tmp = super::harness::Scratch::new();
    let reports = tmp.path().join("reports");
    let file = backups_yaml(tmp.path(), "production-db");

    let before = env.moto.mark();
    let (code, record, stderr) = check(&env, &file, &reports);
    assert_eq!(code, Some(0), "{record:#}\n{stderr}");
    assert_eq!(record["result"], "met");
    assert!(figure(&record, "prod-db", "encryption")["value"].as_str().unwrap().starts_with("kms "), "{record:#}");
    assert_eq!(figure(&record, "prod-files", "versioning")["value"], "Enabled");
    for (store, name) in [
        ("prod-db", "backup-age"),
        ("prod-db", "pitr-lag"),
        ("prod-db", "retention"),
        ("prod-files", "noncurrent-retention"),
    ] {
        let f = figure(&record, store, name);
        assert_eq!(f["status"], "met", "{store} {name}: {f:#}");
    }
    assert_eq!(figure(&record, "prod-files", "noncurrent-retention")["number"], 35.0 * 86_400.0, "{record:#}");
    // Every RDS call the check made is in the policy `iam policy --backups` gives.
    let sent = env.moto.query_actions_since(before);
    assert!(sent.contains(&"rds:DescribeDBInstances".to_string()), "{sent:?}");
    let policy = env.run(&["iam", "policy", "--backups", "--file", file.to_str().unwrap()]);
    assert!(policy.status.success(), "{}", text(&policy.stderr));
    let policy = text(&policy.stdout);
    let missing: Vec<&String> = sent.iter().filter(|a| !policy.contains(&format!("\"{a}\""))).collect();
    assert!(missing.is_empty(), "the check called {missing:?}, which `iam policy --backups` does not grant");

    // An unencrypted instance, and the bucket's versioning suspended.
    env.moto.python(
        "import boto3\n\
         boto3.client('rds').create_db_instance(DBInstanceIdentifier='plain-db', Engine='postgres', \
         DBInstanceClass='db.t3.micro', AllocatedStorage=20, MasterUsername='app', MasterUserPassword='x' * 16, \
         StorageEncrypted=False, BackupRetentionPeriod=14, DeletionProtection=True)\n\
         boto3.client('s3').put_bucket_versioning(Bucket='acme-prod-files', VersioningConfiguration={'Status': 'Suspended'})",
    );
    let file = backups_yaml(tmp.path(), "plain-db");
    let (code, record, stderr) = check(&env, &file, &reports);
    assert_eq!(code, Some(1), "{record:#}\n{stderr}");
    assert_eq!(record["result"], "not-met");
    let enc = figure(&record, "prod-db", "encryption");
    assert_eq!((&enc["status"], &enc["value"]), (&"not-met".into(), &"unencrypted".into()), "{record:#}");
    let v = figure(&record, "prod-files", "versioning");
    assert_eq!((&v["status"], &v["value"]), (&"not-met".into(), &"Suspended".into()), "{record:#}");
    // The terminal names the store and the figure.
    let human =
        env.run(&["backups", "check", "--file", file.to_str().unwrap(), "--reports", reports.to_str().unwrap()]);
    let said = text(&human.stdout) + &text(&human.stderr);
    assert!(said.contains("prod-db") && said.contains("encryption"), "{said}");
    assert!(said.contains("prod-files") && said.contains("versioning"), "{said}");
}
