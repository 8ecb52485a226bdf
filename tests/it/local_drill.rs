//! The local-postgres drill against real PostgreSQL clusters: the happy path, and each fault the
//! foundation promises to handle (bad window, missing WAL, corrupt backup, signals, missing binaries).

use std::time::Duration;

use super::harness::{Demo, Scratch, stackdrill, text};

/// Writes `rows` rows of ~200 bytes on the source, then switches WAL so it is archived.
async fn generate_wal(demo: &Demo, rows: u32) {
    let c = demo.admin("app").await;
    c.batch_execute(&format!(
        "create table if not exists bulk (id bigint, pad text);
         insert into bulk select g, repeat(md5(g::text), 6) from generate_series(1, {rows}) g;"
    ))
    .await
    .unwrap();
    c.batch_execute("select pg_switch_wal()").await.unwrap();
}

#[test]
fn demo_drill_passes_and_writes_a_complete_report() {
    let demo = Demo::start();
    let r = demo.last_report();
    assert_eq!(r["schema"], "stackdrill.report/v1");
    assert_eq!(r["result"], "passed", "{r:#}");
    assert_eq!(r["drill"], "local-demo");
    assert_eq!(r["trigger"], "demo");
    for key in [
        "id",
        "started_at",
        "finished_at",
        "tool",
        "operator",
        "source",
        "target",
        "objectives",
        "measured",
        "phases",
        "checks",
        "teardown",
        "runbook",
        "controls",
    ] {
        assert!(!r[key].is_null(), "missing `{key}` in {r:#}");
    }
    let phases: Vec<&str> = r["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["plan", "restore", "ready", "verify", "teardown"]);
    assert!(r["phases"].as_array().unwrap().iter().all(|p| p["status"] == "passed"), "{r:#}");
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 14);
    let kinds: std::collections::BTreeSet<&str> = checks.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["amcheck", "canary", "checksum", "freshness", "object-references", "row-count", "schema", "sql"]
    );
    // The demo's files are in its object store, as the rows describe them.
    let objects = checks.iter().find(|c| c["kind"] == "object-references").unwrap();
    assert!(
        objects["detail"]
            .as_str()
            .unwrap()
            .starts_with("10000 rows against 10000 objects; checksums of 100 sampled rows (seed ")
            && objects["detail"].as_str().unwrap().contains("every object is there with its size"),
        "{objects}"
    );
    assert!(checks.iter().all(|c| c["status"] == "passed"), "{checks:#?}");
    let canary = checks.iter().find(|c| c["kind"] == "canary").unwrap();
    assert!(canary["detail"].as_str().unwrap().contains("present byte-exact"));
    let m = &r["measured"];
    assert!(m["rto_met"].as_bool().unwrap() && m["rpo_met"].as_bool().unwrap());
    let rpo = m["rpo_seconds"].as_f64().unwrap();
    assert!((0.0..5.0).contains(&rpo), "rpo {rpo}");
    assert!(m["rto_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(r["teardown"]["status"], "done");
    assert_eq!(r["runbook"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(r["target"]["recovery"], "recovery_target_time, promote at the target");
    // The Markdown twin exists and opens with the verdict.
    let md = std::fs::read_dir(&demo.reports)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "md"))
        .unwrap();
    let md = std::fs::read_to_string(md.path()).unwrap();
    assert!(md.starts_with("# Restore drill `local-demo`: PASSED"), "{md}");
    // No secret reaches the report: the source password is in the demo's password file.
    let password = std::fs::read_to_string(demo.dir.join("source.password")).unwrap();
    assert!(!serde_json::to_string(&r).unwrap().contains(password.trim()) && !md.contains(password.trim()));
    demo.assert_no_scratch_left();

    // Running it again against the kept source works, and a seeded random target is recorded.
    let out = demo.run_drill(&["--target", "random:7"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let r = demo.last_report();
    assert_eq!(r["target"]["seed"], 7);
    assert!(r["target"]["selection"].as_str().unwrap().contains("seed 7"));
    demo.assert_no_scratch_left();

    // `demo` again on the same directory starts over (stopping the kept source first) and passes;
    // without --keep it leaves no server running. JSON logs are one object per line on stderr.
    let again = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["--log-format", "json", "-v", "demo", "--output", "json", "--dir"])
        .arg(&demo.dir)
        .arg("--reports")
        .arg(&demo.reports)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("a JSON report on stdout");
    assert_eq!(report["result"], "passed");
    let logs: Vec<serde_json::Value> =
        text(&again.stderr).lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(logs.iter().any(|l| l["level"] == "INFO"), "{}", text(&again.stderr));
    assert!(super::harness::processes_mentioning(&demo.dir).is_empty());
}

#[test]
fn target_outside_the_window_is_refused_before_any_restore() {
    let demo = Demo::start();
    let before = demo.reports().len();
    let out = demo.run_drill(&["--target", "2020-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("target 2020-01-01T00:00:00.000Z is outside the recoverable window 20"), "{stderr}");
    assert!(!stderr.contains("restore: started"), "{stderr}");
    assert_eq!(demo.reports().len(), before, "no report for a drill that could not run");
    demo.assert_no_scratch_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_wal_segment_fails_the_drill_and_names_the_segment() {
    let demo = Demo::start();
    generate_wal(&demo, 20_000).await;
    generate_wal(&demo, 20_000).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let segs = demo.archive_segments();
    assert!(segs.len() >= 4, "{segs:?}");
    let victim = segs[segs.len() - 2].clone();
    std::fs::remove_file(demo.archive().join(&victim)).unwrap();

    let out = demo.run_drill(&[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let r = demo.last_report();
    assert_eq!(r["result"], "failed");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("WAL segment {victim} is missing from the archive")), "{reason}");
    assert!(r["checks"].as_array().unwrap().iter().all(|c| c["status"] == "skipped"));
    assert!(text(&out.stdout).contains(&victim));
    demo.assert_no_scratch_left();
}

#[test]
fn a_corrupted_base_backup_fails_verification_and_names_the_file() {
    let demo = Demo::start();
    let backup = demo.backups().pop().unwrap();
    let victim = backup.join("PG_VERSION");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes.extend_from_slice(b"corrupted\n");
    std::fs::write(&victim, bytes).unwrap();

    let out = demo.run_drill(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r = demo.last_report();
    assert_eq!(r["result"], "failed");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("failed verification") && reason.contains("\"PG_VERSION\""), "{reason}");
    // The backup is verified before anything is copied, so no scratch ever existed.
    assert_eq!(r["teardown"]["status"], "nothing-to-do");
    demo.assert_no_scratch_left();
}

/// The one-pass copy still refuses what `pg_verifybackup` refuses, named as it names it: a byte changed in
/// place (same size: found by its checksum while copying, the scratch then torn down), a file the manifest
/// lists removed, a file it does not list added (both found before any scratch exists).
#[test]
fn a_changed_missing_or_extra_file_fails_verification_named_as_pg_verifybackup_names_it() {
    let demo = Demo::start();
    let backup = demo.backups().pop().unwrap();
    let reason = |demo: &Demo| {
        let out = demo.run_drill(&[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let r = demo.last_report();
        assert_eq!(r["result"], "failed");
        demo.assert_no_scratch_left();
        (r["reason"].as_str().unwrap().to_string(), r["teardown"]["status"].as_str().unwrap().to_string())
    };

    let victim = backup.join("PG_VERSION");
    let original = std::fs::read(&victim).unwrap();
    let mut changed = original.clone();
    changed[0] ^= 0x01;
    std::fs::write(&victim, &changed).unwrap();
    let (why, teardown) = reason(&demo);
    assert!(why.contains("failed verification: checksum mismatch for file \"PG_VERSION\""), "{why}");
    assert_eq!(teardown, "done", "the scratch the copy began in is removed by teardown");
    std::fs::write(&victim, &original).unwrap();

    let listed = backup.join("global/pg_control");
    let kept = std::fs::read(&listed).unwrap();
    std::fs::remove_file(&listed).unwrap();
    let extra = backup.join("base/planted");
    std::fs::write(&extra, b"not in the manifest").unwrap();
    let (why, teardown) = reason(&demo);
    assert!(why.contains("\"base/planted\" is present on disk but not in the manifest"), "{why}");
    assert!(why.contains("\"global/pg_control\" is present in the manifest but not on disk"), "{why}");
    assert_eq!(teardown, "nothing-to-do");
    std::fs::write(&listed, &kept).unwrap();
    std::fs::remove_file(&extra).unwrap();

    // Mended, the same backup restores again.
    assert!(demo.run_drill(&[]).status.success());
}

/// A passing drill records where the restore's time went: the verified copy, the WAL check, and recovery
/// split into start-up, replay and promotion, with the WAL segments served ahead of replay.
#[test]
fn the_report_records_copy_wal_replay_and_promotion_times() {
    let demo = Demo::start();
    let r = demo.last_report();
    assert_eq!(r["result"], "passed", "{r:#}");
    let d = &r["source"]["details"];
    let secs = |k: &str| d[k].as_str().unwrap_or_else(|| panic!("no `{k}` in {d:#}")).parse::<f64>().unwrap();
    for k in ["copy_verify_seconds", "wal_check_seconds", "startup_seconds", "replay_seconds", "promotion_seconds"] {
        assert!(secs(k) >= 0.0, "{k}");
    }
    assert!(secs("copy_verify_seconds") > 0.0 && secs("recovery_seconds") > 0.0, "{d:#}");
    assert_eq!(d["checksums"], "CRC32C", "{d:#}");
    assert!(d["wal_segments_fetched"].as_str().unwrap().parse::<u32>().unwrap() >= 1, "{d:#}");
    let cores = std::thread::available_parallelism().unwrap().get().min(64);
    assert_eq!(d["parallel"], cores.to_string());
}

/// Starts `drill run`, sends `signal` when a stderr line contains `when`, returns (exit code, stderr).
fn interrupt_at(demo: &Demo, when: &str, signal: nix::sys::signal::Signal) -> (Option<i32>, String) {
    let mut cmd = super::harness::command();
    cmd.env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(&demo.drill)
        .arg("--reports")
        .arg(&demo.reports);
    let w = super::harness::watch(cmd, signal, |line| line.contains(when));
    assert!(w.stderr.lines().any(|l| l.contains(when)), "never saw `{when}`:\n{}", w.stderr);
    (w.code, w.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_wal_replay_tears_down_and_reports_an_interrupted_drill() {
    let demo = Demo::start();
    // Enough WAL that replay takes seconds, so the signal lands while recovery runs.
    generate_wal(&demo, 1_500_000).await;
    let (code, stderr) = interrupt_at(&demo, "[local-demo] ready: started", nix::sys::signal::Signal::SIGINT);
    assert_eq!(code, Some(2), "{stderr}");
    let r = demo.last_report();
    assert_eq!(r["result"], "error");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("interrupted by the operator (a stop signal) during the ready phase"), "{reason}");
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["teardown"]["status"], "done", "{r:#}");
    // Checks that could not run say why: the operator stopped the drill, not a failed restore.
    let checks = r["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["detail"] == "the operator interrupted the drill"), "{checks:?}");
    let html = std::fs::read_dir(&demo.reports)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .max()
        .unwrap();
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("INTERRUPTED — the operator stopped the drill before it finished"), "{html}");
    demo.assert_no_scratch_left();
}

#[test]
fn sigterm_at_restore_start_tears_down_and_reports() {
    let demo = Demo::start();
    let (code, stderr) = interrupt_at(&demo, "[local-demo] restore: started", nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(2), "{stderr}");
    let r = demo.last_report();
    assert_eq!(r["result"], "error");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.starts_with("interrupted by the operator (a stop signal) during the re"), "{reason}");
    assert!(r["checks"].as_array().unwrap().iter().all(|c| c["status"] == "skipped"));
    demo.assert_no_scratch_left();
}

#[test]
fn missing_server_binaries_exit_2_with_how_to_install() {
    let dir = Scratch::new();
    let out = stackdrill()
        .env("STACKDRILL_PG_BIN", "/nonexistent/pg/bin")
        .env("STACKDRILL_STATE_DIR", dir.path())
        .args(["demo", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "error: the PostgreSQL server binaries were not found (STACKDRILL_PG_BIN=/nonexistent/pg/bin lacks postgres"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_sweeps_what_a_killed_run_left_and_nothing_else() {
    let demo = Demo::start();
    generate_wal(&demo, 1_000_000).await;
    let before = demo.reports().len();
    // A crash: SIGKILL while the scratch replays WAL. The scratch server survives its parent.
    let (_, stderr) = interrupt_at(&demo, "[local-demo] ready: started", nix::sys::signal::Signal::SIGKILL);
    let scratch: Vec<_> = std::fs::read_dir(demo.dir.join("scratch")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(scratch.len(), 1, "{stderr}");
    assert!(scratch[0].join("stackdrill-scratch.json").is_file());
    // Not ours: a directory without a marker is never touched.
    let foreign = demo.dir.join("scratch/not-stackdrill");
    std::fs::create_dir(&foreign).unwrap();
    // An interrupted drill leaves no report and no half-written file.
    assert_eq!(demo.reports().len(), before);
    assert!(
        std::fs::read_dir(&demo.reports).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().contains(".tmp"))
    );

    let dry = stackdrill().args(["drill", "cleanup", "--dry-run"]).arg(&demo.drill).output().unwrap();
    assert!(dry.status.success());
    assert!(text(&dry.stdout).contains("would remove"), "{}", text(&dry.stdout));
    assert!(scratch[0].exists());

    let out = stackdrill().args(["drill", "cleanup", "--output", "json"]).arg(&demo.drill).output().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let swept: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(swept.as_array().unwrap().len(), 1, "{swept:#}");
    assert_eq!(swept[0]["action"], "removed");
    assert!(foreign.is_dir(), "a directory without a scratch marker was removed");
    std::fs::remove_dir(&foreign).unwrap();
    demo.assert_no_scratch_left();
}

#[test]
fn a_second_run_of_the_same_drill_refuses_or_waits_never_overlaps() {
    let demo = Demo::start();
    let state = demo.state();
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(super::harness::bin_path());
        cmd.args(["drill", "run"])
            .arg(&demo.drill)
            .arg("--reports")
            .arg(&demo.reports)
            .args(extra)
            .env("STACKDRILL_STATE_DIR", &state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let lock = state.join("locks/drill-local-demo.lock");
    // The file names its last holder and outlives it (the demo's setup took this lock too): wait for the
    // first run's own pid, not any pid.
    let first = run(&[]).spawn().unwrap();
    let mine = format!("pid {} ", first.id());
    let held = || std::fs::read_to_string(&lock).unwrap_or_default().contains(&mine);
    let started = std::time::Instant::now();
    while !held() {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the first run never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = run(&[]).output().unwrap();
    assert_eq!(second.status.code(), Some(2), "{}", text(&second.stderr));
    assert!(
        text(&second.stderr).contains("a run of drill `local-demo` is already running (pid"),
        "{}",
        text(&second.stderr)
    );
    let third = run(&["--if-running", "wait"]).spawn().unwrap();
    let first = first.wait_with_output().unwrap();
    let third = third.wait_with_output().unwrap();
    assert!(first.status.success() && third.status.success(), "{}{}", text(&first.stderr), text(&third.stderr));
    // The waiting run restored after the first had finished: their scratch lifetimes do not overlap.
    let reports = demo.reports();
    let (a, b) = (&reports[reports.len() - 2], &reports[reports.len() - 1]);
    let t = |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(t(&b["started_at"]) >= t(&a["teardown"]["at"]), "{a}\n{b}");
    demo.assert_no_scratch_left();
}

/// `drill run --junit`: a passing drill, a failing one and one that could not run, in one JUnit XML
/// document that validates against Jenkins' junit-10.xsd (scripts/moto-venv fetches it): each drill a
/// suite with its report in the properties, each check, objective and the teardown a test case.
#[test]
fn junit_xml_names_every_check_objective_and_drill_and_validates_against_the_schema() {
    let demo = Demo::start();
    let text_of = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    let failing = demo.dir.join("failing.yaml");
    std::fs::write(
        &failing,
        text_of(&demo.drill)
            .replace("name: local-demo", "name: local-demo-failing")
            .replace("expect: { min: 1 }", "expect: { min: 1000000 }"),
    )
    .unwrap();
    let refused = demo.dir.join("refused.yaml");
    std::fs::write(
        &refused,
        text_of(&demo.drill)
            .replace("name: local-demo", "name: local-demo-refused")
            .replace("target: latest", "target: { at: \"2001-01-01T00:00:00Z\" }"),
    )
    .unwrap();
    let junit = demo.root.path().join("ci/junit.xml");
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(&demo.drill)
        .arg(&failing)
        .arg(&refused)
        .arg("--reports")
        .arg(&demo.reports)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let xml = text_of(&junit);
    let schema = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/junit-10.xsd");
    assert!(schema.is_file(), "the JUnit schema is missing: run scripts/moto-venv (scripts/test does)");
    let check = std::process::Command::new(super::moto::venv().join("python"))
        .args(["-c", "import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2]); print('valid')"])
        .arg(&schema)
        .arg(&junit)
        .output()
        .unwrap();
    assert!(check.status.success(), "not valid JUnit XML: {}\n{xml}", text(&check.stderr));
    // Three suites in the order given; 14 checks, 2 objectives and the teardown per drill that ran.
    let suites: Vec<&str> = xml.split("<testsuite ").skip(1).collect();
    assert_eq!(suites.len(), 3, "{xml}");
    assert!(suites[0].starts_with("name=\"local-demo\" tests=\"17\" failures=\"0\" errors=\"0\""), "{xml}");
    assert!(suites[1].starts_with("name=\"local-demo-failing\" tests=\"17\" failures=\"1\""), "{xml}");
    assert!(
        suites[1].contains("name=\"accounts are present (sql)\"") && suites[1].contains("<failure message="),
        "{xml}"
    );
    assert!(suites[2].starts_with("name=\"local-demo-refused\" tests=\"1\" failures=\"0\" errors=\"1\""), "{xml}");
    let report = suites[0].split("<property name=\"report\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    assert!(std::path::Path::new(report).is_file(), "the report property names the report: {report}");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"stackdrill\" tests=\"35\" failures=\"1\" errors=\"1\""), "{xml}");

    // The same runs read back from the store (`report junit`, for drills that ran in an ECS task): the
    // demo's own run, then the two of this test, each a valid suite.
    let stored = demo.root.path().join("ci/stored.xml");
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["report", "junit", "--drill", "local-demo-failing", "--out"])
        .arg(&stored)
        .arg("--reports")
        .arg(&demo.reports)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("wrote 1 drill run to"), "{}", text(&out.stdout));
    let check = std::process::Command::new(super::moto::venv().join("python"))
        .args(["-c", "import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2]); print('valid')"])
        .arg(&schema)
        .arg(&stored)
        .output()
        .unwrap();
    let stored_xml = text_of(&stored);
    assert!(check.status.success(), "not valid JUnit XML: {}\n{stored_xml}", text(&check.stderr));
    // Named by its run and stamped with the run's start, not the export's time.
    let failing_run =
        demo.reports().into_iter().find(|r| r["drill"] == "local-demo-failing").expect("the failing run's report");
    let (id, started) = (failing_run["id"].as_str().unwrap(), failing_run["started_at"].as_str().unwrap());
    assert!(
        stored_xml.contains(&format!("<testsuite name=\"local-demo-failing run {id}\" tests=\"17\" failures=\"1\"")),
        "{stored_xml}"
    );
    assert!(stored_xml.contains(&format!("timestamp=\"{}\" id=\"{id}\"", &started[..19])), "{stored_xml}");
    assert!(
        stored_xml.contains("<property name=\"report\" value=\"") && !stored_xml.contains("local-demo\" tests"),
        "{stored_xml}"
    );

    // `--output json` lists the drill that could not run beside the reports, saying why.
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run", "--output", "json"])
        .arg(&refused)
        .arg("--reports")
        .arg(&demo.reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["schema"], "stackdrill.could-not-run/v1", "{listed}");
    assert_eq!(listed[0]["drill"], "local-demo-refused");
    assert!(listed[0]["error"].as_str().unwrap().contains("2001"), "{listed}");
}

/// A demo holds the demo drill's lock from before its setup (which resets its directory) to its end: a
/// second demo, or a run of the kept demo drill, is refused while one runs, and the running one still
/// passes. The drill file `demo --keep` leaves is marked `demo: true`, so its runs are demo runs however
/// they start (evidence of nothing, no forecast), `report list` and `report history` show the trigger, and
/// `demo --stop` stops the kept source.
#[test]
fn demos_lock_each_other_out_and_a_kept_demo_drill_stays_a_demo() {
    let demo = Demo::start();
    let out = demo.run_drill(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = demo.last_report();
    assert_eq!(r["trigger"], "demo", "a run of the kept demo drill counted as {}", r["trigger"]);
    let out = stackdrill().args(["report", "list", "--reports"]).arg(&demo.reports).output().unwrap();
    let list = text(&out.stdout);
    assert!(list.lines().next().unwrap().contains(" trigger "), "{list}");
    let rows: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows.iter().all(|l| l.contains(" demo ")), "{list}");
    let out = stackdrill().args(["report", "history", "--reports"]).arg(&demo.reports).output().unwrap();
    let history = text(&out.stdout);
    assert_eq!(history.lines().filter(|l| l.contains(" passed  demo ")).count(), 2, "{history}");

    // A second demo starts (another directory, the same machine state) and takes the lock...
    let other = demo.root.path().join("other");
    let first = super::harness::command()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["demo", "--dir"])
        .arg(&other)
        .arg("--reports")
        .arg(demo.root.path().join("other-reports"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = demo.state().join("locks/drill-local-demo.lock");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).unwrap_or_default().starts_with(&format!("pid {} ", first.id())) {
        assert!(started.elapsed() < Duration::from_secs(30), "the demo never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ...so a third demo is refused before it touches anything, and so is a run of the kept demo drill.
    let third = demo.root.path().join("third");
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["demo", "--dir"])
        .arg(&third)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a run of drill `local-demo` (a demo) is already running"), "{stderr}");
    assert!(stderr.contains("stackdrill demo --stop"), "{stderr}");
    assert!(!third.exists(), "the refused demo created its directory");
    let out = demo.run_drill(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("already running"), "{}", text(&out.stderr));
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "the first demo was disturbed: {}", text(&out.stderr));

    // `demo --stop` stops the kept source and removes its directory.
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["demo", "--stop", "--dir"])
        .arg(&demo.dir)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("stopped the demo source"), "{}", text(&out.stdout));
    assert!(!demo.dir.exists());
    assert!(super::harness::processes_mentioning(&demo.dir).is_empty());
}
