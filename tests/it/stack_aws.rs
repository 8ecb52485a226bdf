//! Stacks against the AWS emulator: apply to an empty account, converge, update in place, refuse data loss,
//! find drift, never touch an untagged lookalike, refuse a stale plan, one apply at a time.
//!
//! The stack is `stacks/production.yaml` on moto's network, without the two parts moto cannot serve: the
//! Elastic Beanstalk environment (no DescribeConfigurationSettings/UpdateEnvironment) with the Shield
//! protection of its load balancer, and the backup selection (no CreateBackupSelection). Those are covered
//! with aws-smithy-mocks in src/stack/resources/tests.rs.

use std::path::PathBuf;
use std::process::Output;

use super::harness::{Scratch, stackdrill, text};
use super::moto::Moto;

pub(crate) struct Env {
    pub(crate) moto: Moto,
    dir: Scratch,
    pub(crate) file: PathBuf,
}

impl Env {
    pub(crate) fn new() -> Env {
        let moto = Moto::start();
        // The account's log archive bucket exists beforehand (the stack's bucket logs to it), open to the
        // logging service as S3 requires.
        let ids = moto.python(
            "import boto3\n\
             s3 = boto3.client('s3')\n\
             s3.create_bucket(Bucket='acme-log-archive', CreateBucketConfiguration={'LocationConstraint': 'ap-southeast-1'})\n\
             s3.put_bucket_policy(Bucket='acme-log-archive', Policy='{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": {\"Service\": \"logging.s3.amazonaws.com\"}, \"Action\": \"s3:PutObject\", \"Resource\": \"arn:aws:s3:::acme-log-archive/*\"}]}')\n\
             ec2 = boto3.client('ec2')\n\
             vpc = ec2.create_vpc(CidrBlock='10.7.0.0/16')['Vpc']['VpcId']\n\
             s = [ec2.create_subnet(VpcId=vpc, CidrBlock=f'10.7.{i}.0/24', AvailabilityZone=f'ap-southeast-1{z}')['Subnet']['SubnetId'] for i, z in enumerate('abc')]\n\
             print(','.join([vpc] + s))",
        );
        let ids: Vec<&str> = ids.split(',').collect();
        let prod = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/stacks/production.yaml")).unwrap();
        let mut body = prod[..prod.find("\napp:").expect("production.yaml has app:")].to_string();
        body = body.replace("vpc-0a1b2c3d4e5f60718", ids[0]);
        for (i, id) in ids[1..].iter().enumerate() {
            body = body.replace(&format!("subnet-0a1b2c3d4e5f6000{}", i + 1), id);
        }
        let start = body.find("  selection:\n").expect("a selection");
        let end = body[start..].find("\n\n").map(|e| start + e).unwrap_or(body.len());
        body.replace_range(start..end, "");
        let dir = Scratch::new();
        let file = dir.path().join("production.yaml");
        std::fs::write(&file, body).unwrap();
        Env { moto, dir, file }
    }

    /// Runs stackdrill against the emulator. An apply waives STK-BACKUP-PLAN, STK-BACKUP-SELECTS-DB and
    /// STK-S3-BACKUP, the rules this stack fails on purpose (its backup selection is cut: moto has no
    /// CreateBackupSelection).
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let mut cmd = stackdrill();
        self.moto.env(&mut cmd);
        cmd.env("STACKDRILL_STATE_DIR", self.dir.path().join("state")).args(args);
        if args.starts_with(&["stack", "apply"]) {
            cmd.args(["--skip-policy", "STK-BACKUP-PLAN,STK-BACKUP-SELECTS-DB,STK-S3-BACKUP"]);
        }
        cmd.output().unwrap()
    }

    pub(crate) fn stack(&self, sub: &str, extra: &[&str]) -> Output {
        let mut args = vec!["stack", sub, self.file.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn plan_json(&self) -> serde_json::Value {
        let out = self.stack("plan", &["--format", "json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
    }

    fn edit(&self, from: &str, to: &str) {
        let body = std::fs::read_to_string(&self.file).unwrap();
        assert!(body.contains(from), "the stack file has no `{from}`");
        std::fs::write(&self.file, body.replacen(from, to, 1)).unwrap();
    }

    fn apply(&self) {
        let out = self.stack("apply", &["--auto-approve"]);
        assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    }

    fn py(&self, code: &str) -> String {
        self.moto.python(&format!("import boto3\n{code}"))
    }
}

fn acting(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] != "no-op" && s["action"] != "skip")
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_string(),
                format!("{}.{}", s["kind"].as_str().unwrap(), s["name"].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn apply_to_an_empty_account_converges_and_tags_everything() {
    let env = Env::new();
    let out = env.stack("plan", &["--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "changes pending: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("26 to add, 0 to change"), "{}", text(&out.stdout));
    let before = env.moto.mark();
    env.apply();
    // Every RDS, SNS and CloudWatch call the apply made is in the policy `iam policy --stack` gives.
    let policy = env.run(&["iam", "policy", "--stack", env.file.to_str().unwrap()]);
    let policy = text(&policy.stdout);
    let sent = env.moto.query_actions_since(before);
    assert!(sent.contains(&"rds:CreateDBInstance".to_string()), "{sent:?}");
    let missing: Vec<&String> = sent.iter().filter(|a| !policy.contains(&format!("\"{a}\""))).collect();
    assert!(missing.is_empty(), "stack apply called {missing:?}, which `iam policy --stack` does not grant");

    // A second plan has nothing to do; drift agrees; the live policy holds.
    let out = env.stack("plan", &["--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("0 to add, 0 to change, 0 to replace, 0 to destroy, 26 unchanged"));
    assert_eq!(env.stack("drift", &[]).status.code(), Some(0));
    let out = env.stack("check", &["--live"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("(live state)"), "{}", text(&out.stdout));

    // Every created resource carries the ownership tags; the tagging API finds them all.
    let tagged = env.py(
        "t = boto3.client('resourcegroupstaggingapi')\n\
         r = t.get_resources(TagFilters=[{'Key': 'stackdrill:stack', 'Values': ['production']}])['ResourceTagMappingList']\n\
         print(' '.join(sorted(x['ResourceARN'].split(':')[2] for x in r)))",
    );
    // 1 vault, 6 alarms, 5 keys, 3 log groups, the instance and its first automated snapshot (tags are copied
    // to snapshots), the files bucket, the topic: all that moto's tagging API indexes.
    assert_eq!(
        tagged,
        "backup cloudwatch cloudwatch cloudwatch cloudwatch cloudwatch cloudwatch kms kms kms kms kms logs logs logs rds rds s3 sns"
    );
    // The files bucket as the file declares it.
    let bucket = env.py(
        "s3 = boto3.client('s3')\n\
         b = 'acme-prod-files'\n\
         enc = s3.get_bucket_encryption(Bucket=b)['ServerSideEncryptionConfiguration']['Rules'][0]['ApplyServerSideEncryptionByDefault']\n\
         life = s3.get_bucket_lifecycle_configuration(Bucket=b)['Rules'][0]\n\
         tags = {t['Key']: t['Value'] for t in s3.get_bucket_tagging(Bucket=b)['TagSet']}\n\
         print(s3.get_bucket_versioning(Bucket=b)['Status'], enc['SSEAlgorithm'], enc['KMSMasterKeyID'].startswith('arn:aws:kms:'), \
         all(s3.get_public_access_block(Bucket=b)['PublicAccessBlockConfiguration'].values()), \
         life['NoncurrentVersionExpiration']['NoncurrentDays'], s3.get_bucket_logging(Bucket=b)['LoggingEnabled']['TargetBucket'], \
         tags.get('backup'), tags['stackdrill:stack'])",
    );
    // (No backup tag: the selection it names is cut from this stack.)
    assert_eq!(bucket, "Enabled aws:kms True True 35 acme-log-archive None production");
    let db = env.py(
        "d = boto3.client('rds').describe_db_instances(DBInstanceIdentifier='production-db')['DBInstances'][0]\n\
         print(d['MultiAZ'], d['StorageEncrypted'], d['PubliclyAccessible'], d['DeletionProtection'], d['BackupRetentionPeriod'])",
    );
    assert_eq!(db, "True True False True 14");
    // The master password stays with RDS (Secrets Manager): none was ever sent.
    let create = &env.moto.calls("CreateDBInstance")[0];
    assert_eq!(super::moto::param(create, "ManageMasterUserPassword"), Some("true"));
    assert!(super::moto::param(create, "MasterUserPassword").is_none());
}

#[test]
fn a_threshold_is_one_in_place_update_and_a_new_database_key_is_a_refused_replacement() {
    let env = Env::new();
    env.apply();
    env.edit("      threshold: 50\n", "      threshold: 75\n");
    let plan = env.plan_json();
    assert_eq!(acting(&plan), vec![("update".into(), "alarm.production-auth-denial-spike".into())]);
    let step = plan["steps"].as_array().unwrap().iter().find(|s| s["action"] == "update").unwrap();
    assert_eq!(step["changes"].as_array().unwrap().len(), 1);
    assert_eq!(step["changes"][0]["property"], "threshold");
    assert_eq!(step["changes"][0]["after"], 75.0);
    env.apply();
    let t = env.py("print(boto3.client('cloudwatch').describe_alarms(AlarmNames=['production-auth-denial-spike'])['MetricAlarms'][0]['Threshold'])");
    assert_eq!(t, "75.0");

    env.edit("  kms-key: data\n", "  kms-key: backups\n");
    let plan = env.plan_json();
    assert_eq!(acting(&plan), vec![("replace".into(), "rds-instance.production-db".into())]);
    let step = plan["steps"].as_array().unwrap().iter().find(|s| s["action"] == "replace").unwrap();
    assert_eq!(step["data_loss"], true);
    assert!(step["reason"].as_str().unwrap().contains("one key for its whole life"));
    let before = env.moto.calls("DeleteDBInstance").len();
    let out = env.stack("apply", &["--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--allow-data-loss"), "{}", text(&out.stderr));
    assert_eq!(env.moto.calls("DeleteDBInstance").len(), before, "nothing was deleted");

    let out = env.stack("apply", &["--auto-approve", "--allow-data-loss"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let snap = env.py(
        "print(len(boto3.client('rds').describe_db_snapshots(DBInstanceIdentifier='production-db', SnapshotType='manual')['DBSnapshots']))",
    );
    assert_eq!(snap, "1", "a final snapshot was kept");
    assert_eq!(env.stack("plan", &["--detailed-exitcode"]).status.code(), Some(0));
}

#[test]
fn drift_behind_stackdrills_back_is_found_and_a_stale_saved_plan_refused() {
    let env = Env::new();
    env.apply();
    let saved = env.dir.path().join("plan.json");
    let out = env.stack("plan", &["--out", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(saved.is_file());

    env.py("boto3.client('logs').put_retention_policy(logGroupName='/production/app', retentionInDays=7)");
    // Someone opens the files bucket to the public and stops keeping versions.
    env.py("s3 = boto3.client('s3')\n\
         s3.delete_public_access_block(Bucket='acme-prod-files')\n\
         s3.put_bucket_versioning(Bucket='acme-prod-files', VersioningConfiguration={'Status': 'Suspended'})");
    let out = env.stack("drift", &[]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("log-group./production/app") && stdout.contains("retention-days = 7 -> 365"), "{stdout}");
    assert!(stdout.contains("s3-bucket.acme-prod-files"), "{stdout}");
    assert!(
        stdout.contains("block-public-access = false -> true") && stdout.contains("versioning = false -> true"),
        "{stdout}"
    );

    let out = env.run(&["stack", "apply", "--plan", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("stale plan: live state changed"), "{}", text(&out.stderr));
    let r = env.py("print(boto3.client('logs').describe_log_groups(logGroupNamePrefix='/production/app')['logGroups'][0]['retentionInDays'])");
    assert_eq!(r, "7", "a refused plan changes nothing");

    // A fresh saved plan applies and converges.
    env.stack("plan", &["--out", saved.to_str().unwrap()]);
    let out = env.run(&["stack", "apply", "--plan", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.stack("drift", &[]).status.code(), Some(0));
    let bucket = env.py(
        "s3 = boto3.client('s3')\n\
         print(s3.get_bucket_versioning(Bucket='acme-prod-files')['Status'], all(s3.get_public_access_block(Bucket='acme-prod-files')['PublicAccessBlockConfiguration'].values()))",
    );
    assert_eq!(bucket, "Enabled True", "apply put the bucket back as declared");
}

#[test]
fn an_untagged_lookalike_is_a_conflict_never_touched_until_imported() {
    let env = Env::new();
    env.py("boto3.client('cloudwatch').put_metric_alarm(AlarmName='production-ledger-mismatch', MetricName='X', \
         Namespace='Theirs', Statistic='Sum', Period=60, EvaluationPeriods=1, Threshold=99, \
         ComparisonOperator='GreaterThanThreshold')");
    let out = env.stack("plan", &["--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("alarm.production-ledger-mismatch is in conflict"), "{}", text(&out.stdout));
    let out = env.stack("apply", &["--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("refusing to apply: alarm.production-ledger-mismatch"), "{}", text(&out.stderr));
    // (boto3 speaks JSON to CloudWatch, so the recorder's Query calls are stackdrill's alone.)
    assert!(env.moto.calls("PutMetricAlarm").is_empty(), "stackdrill changed no alarm");
    assert!(env.moto.calls("CreateKey").is_empty(), "a refused apply starts nothing");

    let out = env.stack("import", &["alarm/production-ledger-mismatch", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = env.plan_json();
    let step = plan["steps"].as_array().unwrap().iter().find(|s| s["name"] == "production-ledger-mismatch").unwrap();
    assert_eq!(step["action"], "update", "adopted, then brought in line with the file");
}

#[test]
fn a_resource_dropped_from_the_file_is_deleted_and_one_apply_runs_at_a_time() {
    let env = Env::new();
    env.apply();
    let body = std::fs::read_to_string(&env.file).unwrap();
    let start = body.find("    - name: production-indexing-failures").unwrap();
    let end = start + body[start..].find("    - name: production-ledger-mismatch").unwrap();
    std::fs::write(&env.file, format!("{}{}", &body[..start], &body[end..])).unwrap();
    let plan = env.plan_json();
    assert_eq!(acting(&plan), vec![("delete".into(), "alarm.production-indexing-failures".into())]);
    // Without that alarm the stack fails the alarm policy: apply refuses unless the rule is waived by id.
    let out = env.stack("apply", &["--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("fails policy: STK-ALARMS"), "{}", text(&out.stderr));
    let waived = ["--auto-approve", "--skip-policy", "STK-ALARMS"];

    // Another apply holds the stack's lock: this one refuses and changes nothing.
    let lock_dir = env.dir.path().join("state/locks");
    std::fs::create_dir_all(&lock_dir).unwrap();
    let held = std::fs::File::create(lock_dir.join("stack-production.lock")).unwrap();
    held.lock().unwrap();
    let out = env.stack("apply", &waived);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("a `stack apply` of `production` is already running"), "{}", text(&out.stderr));
    drop(held);

    let out = env.stack("apply", &waived);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("policy rule STK-ALARMS waived by --skip-policy"), "{}", text(&out.stderr));
    let n = env.py("print(len(boto3.client('cloudwatch').describe_alarms(AlarmNames=['production-indexing-failures'])['MetricAlarms']))");
    assert_eq!(n, "0");
    assert_eq!(env.stack("plan", &["--detailed-exitcode"]).status.code(), Some(0));
}

#[test]
fn a_partial_failure_says_what_was_applied_and_a_rerun_converges() {
    let env = Env::new();
    // The backup vault is denied: everything before it lands, what needs it is not attempted.
    env.moto.proxy.deny(Some("/backup-vaults/production-vault"));
    let out = env.stack("apply", &["--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(
        stdout.contains("create backup-vault.production-vault: FAILED: access denied for `backup:CreateBackupVault`"),
        "{stdout}"
    );
    assert!(stdout.contains("create backup-plan.production-plan: not attempted"), "{stdout}");
    let keys = env.py("print(len(boto3.client('kms').list_aliases()['Aliases']))");
    assert!(keys.parse::<u32>().unwrap() >= 4, "the keys (level 0) were applied");

    env.moto.proxy.deny(None);
    let plan = env.plan_json();
    let pending: Vec<String> = acting(&plan).into_iter().map(|(_, a)| a).collect();
    assert!(pending.contains(&"backup-vault.production-vault".to_string()), "{pending:?}");
    assert!(!pending.iter().any(|a| a.starts_with("kms-key.")), "applied steps are not redone: {pending:?}");
    env.apply();
    assert_eq!(env.stack("plan", &["--detailed-exitcode"]).status.code(), Some(0));
}

/// Lowering how long backups are kept destroys data (RDS drops the automated backups past the new
/// retention at once; AWS Backup expires recovery points sooner): refused without --allow-data-loss.
#[test]
fn lowering_backup_retention_is_data_loss_and_refused_without_the_flag() {
    let env = Env::new();
    env.apply();
    env.edit("backup-retention-days: 14", "backup-retention-days: 7");
    // (A backup plan's lowered retention is refused the same way: moto cannot update a plan, so the
    // planner's unit test covers it.)
    let out = env.stack("plan", &[]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("lowers backup retention from 14 to 7 days") && stdout.contains("DATA LOSS"), "{stdout}");
    let out = env.stack("apply", &["--auto-approve"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("would destroy data") && stderr.contains("update rds-instance.production-db"), "{stderr}");
    let kept = env.py("print(boto3.client('rds').describe_db_instances(DBInstanceIdentifier='production-db')['DBInstances'][0]['BackupRetentionPeriod'])");
    assert_eq!(kept, "14", "nothing was applied");
    let out = env.stack("apply", &["--auto-approve", "--allow-data-loss"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.stack("plan", &["--detailed-exitcode"]).status.code(), Some(0));
}

/// RDS applies minor upgrades on its own (auto minor version upgrade): 15.8 declared, 15.10 live is in
/// sync, and apply never asks for 15.8 again (RDS refuses a downgrade). A live version below the
/// declared one is still a change.
#[test]
fn a_minor_version_rds_applied_is_not_drift() {
    let env = Env::new();
    env.apply();
    env.py("boto3.client('rds').modify_db_instance(DBInstanceIdentifier='production-db', EngineVersion='15.10', ApplyImmediately=True)");
    let out = env.stack("plan", &["--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(env.stack("drift", &[]).status.code(), Some(0));
    env.py("boto3.client('rds').modify_db_instance(DBInstanceIdentifier='production-db', EngineVersion='15.4', ApplyImmediately=True)");
    let out = env.stack("plan", &["--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("engine = \"postgres 15.4\" -> \"postgres 15.8\""), "{}", text(&out.stdout));
}

/// CloudWatch Logs refuses a log group's key unless the key policy lets its regional principal use it
/// (with the log-group encryption context), and alarms cannot publish to a KMS-encrypted topic unless
/// cloudwatch.amazonaws.com may use the topic's key (the CloudWatch Logs and CloudWatch guides): each key
/// gets the policy its uses need, planned and drift-checked.
#[test]
fn keys_let_the_services_that_use_them_use_them() {
    let env = Env::new();
    env.apply();
    let policy = |alias: &str| {
        env.py(&format!(
            "import json\nkms = boto3.client('kms')\n\
             k = kms.describe_key(KeyId='{alias}')['KeyMetadata']['KeyId']\n\
             print(json.dumps(json.loads(kms.get_key_policy(KeyId=k, PolicyName='default')['Policy'])))"
        ))
    };
    let logs: serde_json::Value = serde_json::from_str(&policy("alias/production-logs")).unwrap();
    let st = logs["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Principal"]["Service"] == "logs.ap-southeast-1.amazonaws.com")
        .cloned();
    let st = st.unwrap_or_else(|| panic!("no logs principal in {logs:#}"));
    assert_eq!(
        st["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"],
        "arn:aws:logs:ap-southeast-1:123456789012:log-group:*"
    );
    assert!(
        logs["Statement"].to_string().contains("arn:aws:iam::123456789012:root"),
        "the account keeps administering it"
    );
    let alerts = policy("alias/production-alerts");
    assert!(alerts.contains("cloudwatch.amazonaws.com") && alerts.contains("kms:GenerateDataKey*"), "{alerts}");
    assert!(!policy("alias/production-data").contains("logs."), "the data key's policy is left as it was");
    assert_eq!(env.stack("plan", &["--detailed-exitcode"]).status.code(), Some(0));

    // Someone resets the logs key's policy: drift, and apply puts it back.
    env.py(
        "import json\nkms = boto3.client('kms')\n\
         k = kms.describe_key(KeyId='alias/production-logs')['KeyMetadata']['KeyId']\n\
         kms.put_key_policy(KeyId=k, PolicyName='default', Policy=json.dumps({'Version': '2012-10-17', 'Statement': \
         [{'Effect': 'Allow', 'Principal': {'AWS': 'arn:aws:iam::123456789012:root'}, 'Action': 'kms:*', 'Resource': '*'}]}))",
    );
    let out = env.stack("drift", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains("service-principals"), "{}", text(&out.stdout));
    env.apply();
    assert!(policy("alias/production-logs").contains("logs.ap-southeast-1.amazonaws.com"));
    assert_eq!(env.stack("plan", &["--detailed-exitcode"]).status.code(), Some(0));
}
