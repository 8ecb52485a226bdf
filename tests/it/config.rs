//! Broken drill files: each gives exit 2 and a message naming file, line, column and key path.

use super::harness::{Scratch, stackdrill, text};

const RESTORE: &str = "restore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n";

fn validate(name: &str, body: &str) -> (i32, String) {
    let dir = Scratch::new();
    let file = dir.path().join(name);
    std::fs::write(&file, body).unwrap();
    let out = stackdrill().current_dir(dir.path()).args(["drill", "validate", name]).output().unwrap();
    (out.status.code().unwrap_or(-1), text(&out.stderr))
}

#[test]
fn broken_files_name_file_line_column_and_key() {
    let cases: &[(&str, String, &[&str])] = &[
        (
            "malformed.yaml",
            "name: x\ndescription: \"unterminated\nrestore: {}\n".into(),
            &["error: malformed.yaml:4:1: `description` found unexpected end of stream"],
        ),
        (
            "unknown.yaml",
            format!("{RESTORE}objectivs: {{ rto: 1m, rpo: 1m }}\n"),
            &[
                "error: unknown.yaml:3:1: `objectivs` unknown field `objectivs`, expected one of",
                "(did you mean `objectives`?)",
            ],
        ),
        (
            "wrongtype.yaml",
            format!(
                "{RESTORE}objectives: {{ rto: 1m, rpo: 1m }}\nverify:\n  - sql: {{ name: a, query: select 1, expect: {{ rows: many }} }}\n"
            ),
            &["error: wrongtype.yaml:5:54: `verify[0].sql.expect.rows` invalid type: string \"many\", expected u64"],
        ),
        (
            "duration.yaml",
            format!("{RESTORE}objectives:\n  rto: 30\n  rpo: 5 parsecs\n"),
            &[
                "error: duration.yaml:4:8: `objectives.rto` invalid duration `30`: add a unit, e.g. `30s` or `30m`",
                "error: duration.yaml:5:8: `objectives.rpo` invalid duration `5 parsecs`: unknown time unit \"parsecs\"",
            ],
        ),
        (
            "kind.yaml",
            format!("{RESTORE}objectives: {{ rto: 1m, rpo: 1m }}\nverify:\n  - chekcsum: {{ table: t }}\n"),
            &[
                "error: kind.yaml:5:5: `verify[0].chekcsum` unknown variant `chekcsum`, expected one of `canary`, `sql`, `checksum`, `row-count`, `freshness`, `heartbeat`, `amcheck`, `schema`, `object-references`, `objects` (did you mean `checksum`?)",
            ],
        ),
        (
            "provider.yaml",
            "restore:\n  local-postgress: { base-backups: b }\nobjectives: { rto: 1m, rpo: 1m }\n".into(),
            &[
                "error: provider.yaml:2:3: `restore.local-postgress` unknown variant `local-postgress`, expected one of `local-postgres`, `aws-rds-instance`, `aws-aurora-cluster`, `aws-backup`, `pg-dump`, `existing-postgres`, `supabase-branch`, `aws-s3-bucket`, `supabase-new-project` (did you mean `local-postgres`?)",
            ],
        ),
        (
            "bucket.yaml",
            "restore:\n  aws-s3-bucket: { bucket: files }\nobjectives: { rto: 1m, rpo: 1m }\nverify:\n  - amcheck: {}\n".into(),
            &["error: bucket.yaml:5:14: `verify[0].amcheck` checks a restored database, and a bucket restore has none"],
        ),
        ("missing.yaml", RESTORE.to_string(), &["missing.yaml:", "missing field `objectives`"]),
    ];
    for (name, body, expected) in cases {
        let (code, stderr) = validate(name, body);
        assert_eq!(code, 2, "{name}: exit code; stderr:\n{stderr}");
        for e in *expected {
            assert!(stderr.contains(e), "{name}: expected `{e}` in:\n{stderr}");
        }
    }
}

#[test]
fn validate_reports_every_problem_not_just_the_first() {
    let body = format!(
        "{RESTORE}objectives: {{ rto: 1m, rpo: soon }}\nverify:\n  - canary: {{}}\ncontrols: [soc2]\n\
         schedule: {{ cron: '61 * * * *', timezone: Mars/Olympus }}\ntarget: {{ at: yesterday }}\n"
    );
    let (code, stderr) = validate("multi.yaml", &body);
    assert_eq!(code, 2);
    for e in [
        "multi.yaml:3:29: `objectives.rpo` invalid duration `soon`",
        "multi.yaml:5:13: `verify[0].canary` the canary check writes to the live source: add a `source` connection",
        "multi.yaml:6:12: `controls[0]` `soc2` is not a control id",
        "multi.yaml:7:19: `schedule.cron` invalid cron `61 * * * *`",
        "multi.yaml:7:43: `schedule.timezone` unknown IANA time zone `Mars/Olympus`",
        "multi.yaml:8:15: `target.at` invalid time `yesterday`",
        "error: 6 problem(s) in 1 file(s)",
    ] {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
}

#[test]
fn bad_drill_file_starts_nothing_on_run() {
    let dir = Scratch::new();
    std::fs::write(dir.path().join("bad.yaml"), format!("{RESTORE}objectives: {{ rto: 1m, rpo: 1x }}\n")).unwrap();
    let out = stackdrill().current_dir(dir.path()).args(["drill", "run", "bad.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.yaml:3:29: `objectives.rpo` invalid duration `1x`"), "{stderr}");
    assert!(stderr.contains("nothing was started"), "{stderr}");
    // Nothing was created: no scratch root, no reports.
    assert!(!dir.path().join("s").exists() && !dir.path().join("reports").exists());
}

#[test]
fn the_repository_drills_validate() {
    let out = stackdrill().args(["drill", "validate"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for d in ["local-demo", "prod-db-pitr", "prod-aurora-pitr", "prod-db-backup-vault"] {
        assert!(stdout.contains(&format!("ok    drills/{d}.yaml (drill `{d}`)")), "{stdout}");
    }
}

#[test]
fn unknown_drill_names_say_where_they_looked() {
    let out = stackdrill().args(["drill", "run", "no-such-drill"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no drill named `no-such-drill` (looked for `drills/no-such-drill.yaml`)"), "{stderr}");
    assert!(stderr.contains("hint: known drills: local-demo"), "{stderr}");
}

#[test]
fn bad_target_flag_is_refused() {
    let out = stackdrill().args(["drill", "run", "local-demo", "--target", "yesterday"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--target: invalid target `yesterday`"));
}

#[test]
fn list_shows_the_repository_drills_as_json() {
    let out = stackdrill().args(["drill", "list", "--output", "json"]).output().unwrap();
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let demo = rows.as_array().unwrap().iter().find(|r| r["name"] == "local-demo").expect("local-demo listed");
    assert_eq!(demo["provider"], "local-postgres");
    assert_eq!(demo["target"], "latest");
    assert_eq!(demo["schedule"], "0 3 * * * (Asia/Singapore)");
    assert_eq!(demo["checks"], 14);
}

#[test]
fn completions_are_generated() {
    let out = stackdrill().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("stackdrill__subcmd__drill__subcmd__run"));
}

#[test]
fn data_checks_are_validated_together() {
    let body = format!(
        "{RESTORE}objectives: {{ rto: 1m, rpo: 1m }}\nverify:\n\
         \x20 - checksum: {{ table: \"Ledger\", key: [], until-column: created_at, buckets: 1 }}\n\
         \x20 - row-count: {{ table: accounts }}\n\
         \x20 - row-count: {{ table: accounts, min: 1, tolerance: lots }}\n\
         \x20 - freshness: {{ table: ledger, column: created_at, max-lag: soon }}\n\
         \x20 - schema: {{}}\n"
    );
    let (code, stderr) = validate("checks.yaml", &body);
    assert_eq!(code, 2);
    for e in [
        "checks.yaml:5:15: `verify[0].checksum` this check compares the restore with the live source: add a `source` connection",
        "checks.yaml:5:24: `verify[0].checksum.table` `Ledger` is not a table name",
        "checks.yaml:5:39: `verify[0].checksum.key` needs at least one key column",
        "checks.yaml:5:78: `verify[0].checksum.buckets` must be between 2 and 4096",
        "checks.yaml:6:16: `verify[1].row-count` needs `compare: source`, or `min` and/or `max`",
        "checks.yaml:7:54: `verify[2].row-count.tolerance` `lots` is neither a row count nor a percentage like `0.5%`",
        "checks.yaml:8:62: `verify[3].freshness.max-lag` invalid duration `soon`",
        "checks.yaml:9:13: `verify[4].schema` this check without `tables` compares with the live source",
        "error: 8 problem(s) in 1 file(s)",
    ] {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
}

#[test]
fn aws_restore_blocks_are_validated_together() {
    let body = "restore:\n  aws-rds-instance:\n    source-instance: 1prod\n    security-groups: [default]\n\
                \x20   instance-class: t4g.medium\n    region: us-east-1\n    sslmode: verify-full\n    expires-after: 1m\n\
                objectives: { rto: 1h, rpo: 5m }\n";
    let (code, stderr) = validate("aws.yaml", body);
    assert_eq!(code, 2);
    for e in [
        "aws.yaml:3:20: `restore.aws-rds-instance` needs `subnet-group`",
        "aws.yaml:3:22: `restore.aws-rds-instance.source-instance` `1prod` is not an RDS identifier",
        "aws.yaml:4:23: `restore.aws-rds-instance.security-groups[0]` `default` is not a security group id",
        "aws.yaml:5:21: `restore.aws-rds-instance.instance-class` `t4g.medium` is not an instance class",
        "aws.yaml:6:13: `restore.aws-rds-instance.region` `us-east-1` is outside the allowed residency ap-southeast-1",
        "aws.yaml:7:14: `restore.aws-rds-instance.sslmode` verify-full needs `ca-bundle`",
        "aws.yaml:8:20: `restore.aws-rds-instance.expires-after` must be at least 10m",
        "aws.yaml:9:29: `objectives.rpo` an AWS restore shows no replay time, so only a heartbeat or freshness check can measure the RPO",
        "error: 8 problem(s) in 1 file(s)",
    ] {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
    let body = "restore:\n  aws-backup: { vault: v, resource-arn: prod-db, iam-role-arn: arn:aws:iam::1:role/r, \
                subnet-group: g, security-groups: [sg-1], kind: weekly, sslmode: disable }\nobjectives: { rto: 1h, rpo: 5m }\n";
    let (code, stderr) = validate("backup.yaml", body);
    assert_eq!(code, 2);
    for e in [
        "`restore.aws-backup.resource-arn` must be the ARN of the protected RDS database",
        "`restore.aws-backup.kind` unknown kind `weekly`: use continuous, snapshot or any",
        "`restore.aws-backup.sslmode` `disable` is only allowed with `connect`",
    ] {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
    // RestoreDBClusterToPointInTime takes no RestoreToTime with RestoreType copy-on-write.
    let aurora = |target: &str, verify: &str| {
        format!(
            "restore:\n  aws-aurora-cluster: {{ source-cluster: prod, subnet-group: g, security-groups: [sg-1], copy-on-write: true }}\n\
             source: {{ host: db, user: u, dbname: app, password-env: PW }}\ntarget: {target}\nobjectives: {{ rto: 1h, rpo: 5m }}\n{verify}"
        )
    };
    let (code, stderr) = validate("cow.yaml", &aurora("{ ago: 1h }", ""));
    assert_eq!(code, 2);
    assert!(stderr.contains("`restore.aws-aurora-cluster.copy-on-write` a copy-on-write clone restores only to the latest restorable time: use `target: latest`"), "{stderr}");
    let (code, stderr) = validate("cow.yaml", &aurora("latest", "verify: [ { canary: {} } ]\n"));
    assert_eq!(code, 2);
    assert!(stderr.contains("drop the canary check or use a full copy"), "{stderr}");
    let (code, stderr) =
        validate("cow.yaml", &aurora("latest", "verify: [ { freshness: { table: t, column: c } } ]\n"));
    assert_eq!(code, 0, "{stderr}");
    // A host that could not be one (it would also break the IAM token's signed URL) is refused in the file.
    let body = "restore: { aws-rds-instance: { source-instance: prod, subnet-group: g, security-groups: [sg-1] } }\n\
                source: { host: \"db host/x\", user: u, dbname: app, iam-auth: true }\nobjectives: { rto: 1h, rpo: 5m }\n";
    let (code, stderr) = validate("host.yaml", body);
    assert_eq!(code, 2);
    assert!(stderr.contains("`source.host` `db host/x` is not a host name or address"), "{stderr}");
}

#[test]
fn a_project_is_found_from_a_subdirectory_and_validate_names_missing_files() {
    let dir = Scratch::new();
    let root = dir.path();
    for d in ["drills", "runbooks", "backups/base", "src/deep"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("runbooks/restore.md"), "# Restore\n").unwrap();
    // Relative paths are the project's: written from the root, whatever directory the command runs in.
    std::fs::write(
        root.join("drills/orders.yaml"),
        "restore:\n  local-postgres: { base-backups: backups/base, wal-archive: backups/wal, scratch-root: scratch }\n\
         source: { host: db, user: u, dbname: app, password-file: secrets/pw, ca-bundle: certs/ca.pem }\n\
         objectives: { rto: 1h, rpo: 5m }\nrunbook: runbooks/restore.md\n",
    )
    .unwrap();
    let deep = root.join("src/deep");
    let out = stackdrill().current_dir(&deep).args(["drill", "validate", "orders"]).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("drills/orders.yaml (drill `orders`)"), "{stdout}");
    // The runbook and the base-backup directory exist under the project: not named. The rest are, located.
    for (key, at, path) in [
        ("restore.local-postgres.wal-archive", "2:62", "backups/wal"),
        ("source.password-file", "3:58", "secrets/pw"),
        ("source.ca-bundle", "3:81", "certs/ca.pem"),
    ] {
        let want = format!("orders.yaml:{at}: `{key}` `{}` does not exist on this machine", root.join(path).display());
        assert!(
            stderr.contains(&format!("warning: {}", root.join("drills").display())) && stderr.contains(&want),
            "expected `{want}` in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("runbook") && !stderr.contains("backups/base`"), "{stderr}");
    let out = stackdrill().current_dir(&deep).args(["drill", "validate", "--strict"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("error: 3 problem(s) in 1 file(s)"), "{}", text(&out.stderr));
    // State is the project's too: a key made from a subdirectory lands in the project's .stackdrill/.
    let out =
        stackdrill().current_dir(&deep).env_remove("STACKDRILL_STATE_DIR").args(["keys", "generate"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(root.join(".stackdrill/keys/signing.key").is_file(), "{}", text(&out.stdout));
    assert!(!deep.join(".stackdrill").exists());
}

#[test]
fn aws_sdk_warnings_are_silent_by_default_and_one_line_each_unless_asked_for_detail() {
    let dir = Scratch::new();
    let drill = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("drills/prod-db-pitr.yaml");
    let run = |extra: &[&str]| {
        let out = stackdrill()
            .current_dir(dir.path())
            // An instance metadata endpoint that refuses at once: the SDK's region and credential chains warn.
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_EC2_METADATA_DISABLED")
            .args(extra)
            .args(["drill", "cleanup", "--dry-run"])
            .arg(&drill)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        text(&out.stderr)
    };
    // The default level leaves out the SDK's instance-metadata chatter (stackdrill names a missing
    // credential itself); `-v` shows it, one line each.
    let quiet = run(&[]);
    assert!(!quiet.contains("IMDS"), "instance-metadata warnings at the default level: {quiet}");
    let brief = run(&["-v"]);
    let warnings: Vec<&str> = brief.lines().filter(|l| l.contains("WARN")).collect();
    assert!(warnings.iter().any(|w| w.contains("IMDS")), "-v shows the SDK's warnings: {brief}");
    for w in &warnings {
        assert!(!w.contains("{ ") && !w.contains("Some(") && w.len() < 400, "a Debug dump at the default level: {w}");
    }
    let unique: std::collections::HashSet<&&str> = warnings.iter().collect();
    assert_eq!(unique.len(), warnings.len(), "the same warning twice: {warnings:#?}");
    let detail = run(&["-vv"]);
    assert!(detail.contains("{ "), "-vv keeps the SDK's detail: {detail}");
}

/// Deep flow nesting (`[[[…`) is refused by the depth guard, with its place, in well under a second: the
/// guard is a linear pre-scan of the raw text that does not give up where the text stops parsing (the old
/// guard did, and the YAML scanner then took quadratic time: 25 s for 100k levels).
#[test]
fn a_hundred_thousand_open_brackets_are_a_depth_error_at_once() {
    let dir = Scratch::new();
    for (name, body) in [
        ("open.yaml", format!("name: x\nrestore: {}\n", "[".repeat(100_000))),
        ("braces.yaml", format!("name: x\nrestore: {}\n", "{a: ".repeat(100_000))),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, body).unwrap();
        let started = std::time::Instant::now();
        let out = stackdrill().args(["drill", "validate"]).arg(&file).output().unwrap();
        let elapsed = started.elapsed();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{name}:2:")) && stderr.contains("nested more than 64 levels deep"),
            "{stderr}"
        );
        assert!(elapsed < std::time::Duration::from_secs(1), "{name} took {elapsed:?}");
    }
}

/// `restore-testing-plan` (issue 29 item 13): the plan restores on its own, so the keys of an on-demand
/// restore are refused beside it, each at its place; a plan name AWS Backup could not have is refused; a
/// restore without a plan still needs its vault; and a plan with the isolation keys validates.
#[test]
fn a_restore_testing_plan_excludes_the_on_demand_restore_keys() {
    let body = "restore:\n  aws-backup:\n    restore-testing-plan: nightly-rds\n    vault: prod-vault\n    \
                kind: snapshot\n    subnet-group: g\n    security-groups: [sg-1]\n\
                objectives: { rto: 1h, rpo: 5m }\nverify: [ { freshness: { table: t, column: c } } ]\n";
    let (code, stderr) = validate("plan.yaml", body);
    assert_eq!(code, 2, "{stderr}");
    for e in [
        "plan.yaml:3:27: `restore.aws-backup.restore-testing-plan` `nightly-rds` is not a restore testing plan name",
        "plan.yaml:4:12: `restore.aws-backup.vault` is for an on-demand restore; with `restore-testing-plan`",
        "plan.yaml:5:11: `restore.aws-backup.kind` is for an on-demand restore",
        "plan.yaml:3:27: `restore.aws-backup.restore-testing-plan` needs `resource-arn`",
        "error: 5 problem(s) in 1 file(s)",
    ] {
        assert!(stderr.contains(e), "expected `{e}` in:\n{stderr}");
    }
    let body = "restore:\n  aws-backup: { resource-arn: arn:aws:rds:ap-southeast-1:1:db:prod, \
                iam-role-arn: arn:aws:iam::1:role/r, subnet-group: g, security-groups: [sg-1] }\n\
                objectives: { rto: 1h, rpo: 5m }\nverify: [ { freshness: { table: t, column: c } } ]\n";
    let (code, stderr) = validate("ondemand.yaml", body);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`restore.aws-backup` needs `vault` (or `restore-testing-plan` to validate a plan's restores)"),
        "{stderr}"
    );
    // The plan's instance is logged in to with the source's user and password: no source, or IAM
    // authentication (a token for the source's host), is refused.
    let plan = |source: &str| {
        format!(
            "restore:\n  aws-backup: {{ restore-testing-plan: nightly_rds, resource-arn: arn:aws:rds:ap-southeast-1:1:db:prod }}\n\
             objectives: {{ rto: 1h, rpo: 5m }}\nverify: [ {{ freshness: {{ table: t, column: c }} }} ]\n{source}"
        )
    };
    let (code, stderr) = validate("plan.yaml", &plan(""));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("plan.yaml:2:39: `restore.aws-backup.restore-testing-plan` logs in to the plan's restored instance with the drill's `source` user and password"),
        "{stderr}"
    );
    let (code, stderr) = validate("plan.yaml", &plan("source: { host: db, user: u, dbname: app, iam-auth: true }\n"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`source.iam-auth` a restore testing plan's instance is reached with the source's password"),
        "{stderr}"
    );
    let (code, stderr) = validate("plan.yaml", &plan("source: { host: db, user: u, dbname: app, password-env: PW }\n"));
    assert_eq!(code, 0, "{stderr}");
}
