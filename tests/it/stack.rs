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
    assert!(stdout.contains("stack `production` (the file): 44 passed, 0 failed"), "{stdout}");
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
         buckets:\n  - {{ name: lax-files, versioning: false, block-public-access: false, backup: false }}\n\
         \x20 - {{ name: lax-files-2, kms-key: data, noncurrent-retention-days: 3, access-logs: {{ bucket: lax-logs }} }}\n\
         app:\n  solution-stack: s\n  instance-type: t3.small\n  min-instances: 1\n  max-instances: 2\n  health: basic\n\
         \x20 managed-updates: false\n  instance-profile: ec2-role\n  https: {{ certificate-arn: \"arn:aws:acm:us-east-1:1:certificate/x\", ssl-policy: ELBSecurityPolicy-2016-08 }}\n\
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
        "STK-S3-VERSIONING",
        "STK-S3-ENCRYPTED",
        "STK-S3-PUBLIC-ACCESS",
        "STK-S3-RETENTION",
        "STK-S3-ACCESS-LOGS",
        "STK-S3-BACKUP",
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
    // The second bucket passes what the first fails, but keeps old versions 3 days of a 7-day window.
    let bucket_rows = |resource: &str| -> Vec<(String, String)> {
        rows.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["resource"] == resource)
            .map(|r| (r["rule"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string()))
            .collect()
    };
    assert_eq!(bucket_rows("s3 lax-files").iter().filter(|(_, st)| st == "fail").count(), 6, "{rows:#}");
    let second: Vec<String> =
        bucket_rows("s3 lax-files-2").into_iter().filter(|(_, st)| st == "fail").map(|(r, _)| r).collect();
    assert_eq!(second, vec!["STK-S3-RETENTION".to_string()]);
    let retention = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "STK-S3-RETENTION" && r["resource"] == "s3 lax-files-2")
        .unwrap();
    assert!(
        retention["message"]
            .as_str()
            .unwrap()
            .contains("noncurrent versions kept 3 days, less than the backup window of 7 days"),
        "{retention}"
    );
    assert_eq!(retention["checkov"], "CKV2_AWS_61");
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
         \x20   - {{ name: c, expression: \"100 * e / MAX([n, 1])\", metrics: {{ e: {{ namespace: N, name: E }}, n: {{ namespace: N, name: C }} }}, threshold: 5 }}\n\
         database: {{ engine-version: \"15\", instance-class: m6g, allocated-storage: 20, master-username: a, kms-key: data, multi-azz: true }}\n"
    );
    let file = write(&dir, "broken.yaml", &body);
    let out = stackdrill().args(["stack", "validate"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("broken.yaml:14:114: `database.multi-azz` unknown field `multi-azz`")
            && stderr.contains("(did you mean `multi-az`?)"),
        "{stderr}"
    );
    // The unknown key does not hide the file's other problems: they are named in the same run.
    assert!(stderr.contains("`alerts.alarms[1].purpose` unknown purpose `vibes`"), "{stderr}");
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
        "`alerts.alarms[2].expression` `MAX([...1...])` puts a number in an array of time series",
    ] {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
}

/// The `run:` script of the step named `step` in a workflow file.
fn workflow_step(file: &str, step: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/.github/workflows/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let v: serde_json::Value = serde_norway::from_str(&text).unwrap();
    let steps =
        v["jobs"].as_object().unwrap().values().flat_map(|j| j["steps"].as_array().cloned().unwrap_or_default());
    steps
        .into_iter()
        .find(|s| s["name"] == step)
        .and_then(|s| s["run"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no step `{step}` with a run script in {file}"))
}

/// The stack-plan workflow's own command line: a stack file that does not parse (or no credentials) is an
/// error, exit 1, and fails the job; only 0 (no changes) and 2 (changes) pass it.
#[test]
fn a_broken_stack_fails_the_plan_workflow_and_detailed_exitcode_is_1_for_every_error() {
    let dir = Scratch::new();
    std::fs::create_dir(dir.path().join("stacks")).unwrap();
    write(&dir, "stacks/broken.yaml", "name: broken\nregion: [not, a, region\n");
    let script = workflow_step("stack-plan.yml", "Plan")
        .replace("./target/release/stackdrill", super::harness::bin_path().to_str().unwrap());
    let summary = dir.path().join("summary.md");
    let out = std::process::Command::new("bash")
        .arg("-ec")
        .arg(&script)
        .current_dir(dir.path())
        .env("STACK", "broken")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the job must fail: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("broken.yaml:2"), "{}", text(&out.stderr));

    // Missing credentials are an error too, never "changes".
    let out = stackdrill()
        .args(["stack", "plan", "production", "--detailed-exitcode"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", write(&dir, "empty-config", ""))
        .env("AWS_SHARED_CREDENTIALS_FILE", write(&dir, "empty-credentials", ""))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // What was tried fits on one line, then the hint: no SDK structures.
    assert!(stderr.lines().count() <= 5, "{stderr}");
    assert!(
        stderr.contains("no AWS credentials found (tried Environment") && stderr.contains("hint: provide credentials")
    );
    assert!(!stderr.contains("ProviderError") && !stderr.contains("CredentialsNotLoaded"), "{stderr}");
}

#[test]
fn apply_runs_the_policy_first_and_a_waiver_must_name_real_rules() {
    let dir = Scratch::new();
    let prod = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/stacks/production.yaml")).unwrap();
    let lax = write(&dir, "lax.yaml", &prod.replace("multi-az: true", "multi-az: false"));
    let no_aws = |cmd: &mut assert_cmd::Command| {
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("STACKDRILL_STATE_DIR", dir.path().join("state"));
    };
    let mut cmd = stackdrill();
    no_aws(&mut cmd);
    let out = cmd.args(["stack", "apply"]).arg(&lax).arg("--auto-approve").output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refusing to apply: the stack fails policy: STK-RDS-MULTI-AZ"), "{stderr}");

    let mut cmd = stackdrill();
    no_aws(&mut cmd);
    let out = cmd
        .args(["stack", "apply"])
        .arg(&lax)
        .args(["--auto-approve", "--skip-policy", "NO-SUCH-RULE"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`NO-SUCH-RULE`, which is not a policy rule"), "{}", text(&out.stderr));

    // Waived by id: the waiver is said, and the apply goes on (to the credentials it does not have here).
    let mut cmd = stackdrill();
    no_aws(&mut cmd);
    let out = cmd
        .args(["stack", "apply"])
        .arg(&lax)
        .args(["--auto-approve", "--skip-policy", "STK-RDS-MULTI-AZ"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("policy rule STK-RDS-MULTI-AZ waived by --skip-policy"), "{stderr}");
    assert!(stderr.contains("no AWS credentials found"), "{stderr}");
}

#[test]
fn a_file_nested_ten_thousand_levels_deep_is_an_error_not_a_crash() {
    let dir = Scratch::new();
    let deep: String =
        (0..10_000).map(|i| format!("{}a:\n", " ".repeat(i))).collect::<String>() + &" ".repeat(10_000) + "a: 1\n";
    let flow = format!("name: x\nrestore: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    for (kind, body) in [("drill", &deep), ("stack", &deep), ("drill", &flow), ("stack", &flow)] {
        let file = write(&dir, "deep.yaml", body);
        let out = stackdrill().args([kind, "validate"]).arg(&file).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{kind}: {stderr}");
        assert!(stderr.contains("deep.yaml:"), "{stderr}");
        // Block and flow nesting alike are caught by the depth pre-scan, before any parser.
        assert!(stderr.contains("nested more than 64 levels deep"), "{stderr}");
    }
}

/// Drills run where the databases are: the drills workflow starts the schedules' ECS task (private subnets
/// of the stack's network, no public IP) instead of running drills on a hosted runner, waits for it to stop,
/// and passes only when its container exited 0. The step's own script runs here against a stand-in `aws`.
#[test]
fn the_drills_workflow_runs_drills_inside_the_vpc() {
    let script = workflow_step("drills.yml", "Run drills in the VPC (ECS task)");
    assert!(script.contains("schedule task-input") && script.contains("aws ecs run-task --cli-input-json"), "{script}");
    assert!(!script.contains("stackdrill drill run"), "drills must not run on the hosted runner: {script}");

    let dir = Scratch::new();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/schedule.yaml"), dir.path().join("schedule.yaml")).unwrap();
    let fake = dir.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    write(
        &dir,
        "bin/aws",
        "#!/bin/bash\necho \"$*\" >> \"$AWS_LOG\"\ncase \"$*\" in\n\
         *run-task*) printf 'arn:aws:ecs:ap-southeast-1:1:task/drills/t1\\tarn:aws:ecs:ap-southeast-1:1:cluster/drills\\n' ;;\n\
         *lastStatus*) echo STOPPED ;;\n*exitCode*) echo \"$FAKE_EXIT\" ;;\nesac\n",
    );
    std::fs::set_permissions(fake.join("aws"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = script.replace("./target/release/stackdrill", super::harness::bin_path().to_str().unwrap());
    let run = |exit: &str| {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .env("PATH", format!("{}:{}", fake.display(), std::env::var("PATH").unwrap()))
            .env("AWS_LOG", dir.path().join("aws.log"))
            .env("FAKE_EXIT", exit)
            .env("DRILLS", "")
            .env("EVENT", "schedule")
            .env("TRIGGER", "schedule")
            .env("GITHUB_OUTPUT", dir.path().join("out"))
            .output()
            .unwrap()
    };
    let out = run("0");
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("the drill task exited 0"));
    let out = run("1");
    assert_ne!(out.status.code(), Some(0), "a failed drill task must fail the job");

    // What ran: the RunTask input the step made.
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("task.json")).unwrap()).unwrap();
    let command: Vec<&str> = input["overrides"]["containerOverrides"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&command[..7], ["drill", "run", "--due", "--concurrency", "2", "--trigger", "schedule"]);
    let net = &input["networkConfiguration"]["awsvpcConfiguration"];
    assert_eq!(net["assignPublicIp"], "DISABLED");
    let stack = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/stacks/production.yaml")).unwrap();
    let stack: serde_json::Value = serde_norway::from_str(&stack).unwrap();
    let stack_subnets = stack["network"]["subnets"].as_array().unwrap();
    for s in net["subnets"].as_array().unwrap() {
        assert!(stack_subnets.contains(s), "task subnet {s} is not in the stack's network {stack_subnets:?}");
    }
    let log = std::fs::read_to_string(dir.path().join("aws.log")).unwrap();
    assert!(log.contains("ecs run-task --cli-input-json file://task.json"), "{log}");
}

/// The committed example policies are what `iam policy` prints today (scripts/iam-examples makes them).
#[test]
fn the_example_iam_policies_are_current() {
    let dir = Scratch::new();
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/iam-examples"))
        .env("STACKDRILL", super::harness::bin_path())
        .env("OUT", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let committed = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/iam"));
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    names.sort();
    assert_eq!(names.len(), 7, "{names:?}");
    for name in names {
        let fresh = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let kept = std::fs::read_to_string(committed.join(&name)).unwrap_or_default();
        assert_eq!(kept, fresh, "examples/iam/{} is stale: run `bash scripts/iam-examples`", name.to_string_lossy());
    }
}

/// `drill cleanup` in the repository after a demo, on a laptop without AWS credentials: drills/ holds AWS drills,
/// whose sweep is skipped with a note (exit 0); `--aws` makes the missing credentials an error.
#[test]
fn cleanup_without_aws_credentials_skips_the_aws_sweep_unless_asked_for() {
    let dir = Scratch::new();
    let empty = write(&dir, "empty", "");
    let run = |extra: &[&str]| {
        stackdrill()
            .args(["drill", "cleanup", "--reports"])
            .arg(dir.path().join("reports"))
            .args(extra)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", &empty)
            .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("STACKDRILL_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("skipped: no AWS credentials (`--aws` makes that an error)"), "{stdout}");
    let out = run(&["--aws"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("failed: no AWS credentials found"), "{}", text(&out.stdout));
}
