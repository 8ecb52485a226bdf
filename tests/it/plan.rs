//! `drill plan` on real PostgreSQL: the demo drill is ready (source over verified TLS, a canary that could
//! write, window, target, backup, scratch, forecast) and nothing was created or written; a forecast past
//! the RTO, an unreachable source and a file with problems each give their exit code; Markdown for a PR.

use std::path::Path;

use super::harness::{Demo, stackdrill, text, without_aws_credentials};

fn plan(demo: &Demo, drill: &Path, extra: &[&str]) -> std::process::Output {
    without_aws_credentials(&mut stackdrill())
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "plan"])
        .arg(drill)
        .arg("--reports")
        .arg(&demo.reports)
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_drill_is_ready_and_planning_creates_and_writes_nothing() {
    let demo = Demo::start();
    // Demo runs forecast nothing: with only the demo's own run in the store there is no forecast...
    let out = plan(&demo, &demo.drill, &[]);
    assert!(text(&out.stdout).contains("no RTO forecast: no past run"), "{}", text(&out.stdout));
    // ...and a run of the same drill that is not a demo (the file without `demo: true`) gives one.
    let real = demo.root.path().join("real.yaml");
    let body = std::fs::read_to_string(&demo.drill).unwrap();
    assert!(body.contains("\ndemo: true\n"), "{body}");
    std::fs::write(&real, body.replace("\ndemo: true\n", "\n")).unwrap();
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(&real)
        .arg("--reports")
        .arg(&demo.reports)
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(demo.last_report()["trigger"], "manual");
    let admin = demo.admin("app").await;
    let before: i64 = admin.query_one("select count(*) from stackdrill_canary", &[]).await.unwrap().get(0);
    let reports_before = demo.reports().len();

    let out = plan(&demo, &demo.drill, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.starts_with("local-demo  READY"), "{stdout}");
    for expected in [
        "ok    source      app@127.0.0.1",
        "server certificate and host name verified (sslmode verify-full)",
        "ok    canary      the source user may insert into `stackdrill_canary`",
        "ok    window      recoverable ",
        "ok    target      latest: a run writes two canary rows",
        "ok    backup      ",
        "ok    scratch     sd-local-demo-",
        "ok    forecast    RTO ",
    ] {
        assert!(stdout.contains(expected), "expected `{expected}` in:\n{stdout}");
    }
    // Nothing created, nothing written: no scratch, no canary row, no report.
    demo.assert_no_scratch_left();
    let after: i64 = admin.query_one("select count(*) from stackdrill_canary", &[]).await.unwrap().get(0);
    assert_eq!(before, after, "planning wrote canary rows");
    assert_eq!(demo.reports().len(), reports_before);

    // JSON for tools, Markdown for a pull request.
    let out = plan(&demo, &demo.drill, &["--output", "json"]);
    let plans: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plans[0]["schema"], "stackdrill.plan/v1");
    assert_eq!(plans[0]["verdict"], "ready");
    assert!(plans[0]["forecast"]["seconds"].as_f64().unwrap() > 0.0, "{plans}");
    let out = plan(&demo, &demo.drill, &["--format", "markdown"]);
    let md = text(&out.stdout);
    assert!(md.contains("### ✅ `local-demo` — ready") && md.contains("| ✅ | forecast | RTO "), "{md}");

    // The same drill with an RTO its past runs say it cannot meet: would fail, exit 1.
    let tight = demo.root.path().join("tight.yaml");
    let body = std::fs::read_to_string(&demo.drill).unwrap().replace("rto: 10m", "rto: 1ms");
    std::fs::write(&tight, body).unwrap();
    let out = plan(&demo, &tight, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  forecast    RTO ") && stdout.contains("against the objective 0.0"), "{stdout}");
    assert!(stdout.contains("hint: the restore is forecast to miss its RTO"), "{stdout}");

    // An unreachable source: would fail, the rest still planned.
    let unreachable = demo.root.path().join("unreachable.yaml");
    let body = std::fs::read_to_string(&demo.drill).unwrap().replace(&format!("port: {}", demo.port), "port: 1");
    std::fs::write(&unreachable, body).unwrap();
    let out = plan(&demo, &unreachable, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  source      cannot connect to the source") && stdout.contains("ok    backup"),
        "{stdout}"
    );

    // A file with problems, and an AWS drill without credentials: could not plan, exit 2.
    let broken = demo.root.path().join("broken.yaml");
    std::fs::write(&broken, "restore: { aws-rds-instance: { source-instance: prod-db, subnet-group: g, security-groups: [sg-1] } }\nobjectives: { rto: 1h, rpo: 5m }\n").unwrap();
    let out = plan(&demo, &broken, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("COULD NOT PLAN") && stdout.contains("`objectives.rpo` an AWS restore shows no replay time"),
        "{stdout}"
    );
    let aws = Path::new(env!("CARGO_MANIFEST_DIR")).join("drills/prod-db-pitr.yaml");
    let out = plan(&demo, &aws, &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("prod-db-pitr  COULD NOT PLAN") && stdout.contains("no AWS credentials"), "{stdout}");
}
