//! `backups check`: the backup-posture record, its exit codes, and what `report verify` makes of it. The
//! fast tests need only the binary; the local PostgreSQL ones (behind `slow-tests`) a kept demo source.

use std::path::Path;

use crate::harness::{Scratch, stackdrill, text};

/// A backups.yaml with one local-postgres store.
fn backups_yaml(dir: &Path, socket: &Path, port: u16, base_backups: &Path, objectives: &str) -> std::path::PathBuf {
    let file = dir.join("backups.yaml");
    std::fs::write(
        &file,
        format!(
            "stores:\n  - name: app-db\n    source:\n      local-postgres:\n        socket-dir: {}\n        port: {port}\n        \
             base-backups: {}\n    objectives: {objectives}\n",
            socket.display(),
            base_backups.display()
        ),
    )
    .unwrap();
    file
}

/// A bad backups.yaml is named file:line:column:key and nothing is checked or written (exit 2).
#[test]
fn a_bad_backups_file_is_named_by_line_and_key_and_nothing_is_written() {
    let tmp = Scratch::new();
    let file = backups_yaml(tmp.path(), Path::new("/run/x"), 5432, Path::new("/srv/bb"), "{ max-backup-age: soon }");
    let reports = tmp.path().join("reports");
    let out =
        stackdrill().args(["backups", "check", "--file"]).arg(&file).arg("--reports").arg(&reports).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("backups.yaml:8:35") && err.contains("stores[0].objectives.max-backup-age"), "{err}");
    assert!(!reports.join("ledger.jsonl").exists(), "nothing is written for a bad file");
    // An unknown --store is refused the same way.
    let file = backups_yaml(tmp.path(), Path::new("/run/x"), 5432, Path::new("/srv/bb"), "{}");
    let out = stackdrill()
        .args(["backups", "check", "--store", "nope", "--file"])
        .arg(&file)
        .arg("--reports")
        .arg(&reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--store `nope`") && text(&out.stderr).contains("app-db"),
        "{}",
        text(&out.stderr)
    );
}

/// A store that cannot be read is `could not read` (exit 2), never met; its record is still written and
/// chained, naming what failed.
#[test]
fn an_unreadable_store_is_could_not_read_and_recorded() {
    let tmp = Scratch::new();
    let file = backups_yaml(tmp.path(), &tmp.path().join("no-socket"), 5999, &tmp.path().join("no-backups"), "{}");
    let reports = tmp.path().join("reports");
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", tmp.path().join("state"))
        .args(["backups", "check", "--output", "json", "--file"])
        .arg(&file)
        .arg("--reports")
        .arg(&reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}{}", text(&out.stdout), text(&out.stderr));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["schema"], "stackdrill.backup-posture/v1");
    assert_eq!(record["result"], "could-not-read");
    let figures = record["stores"][0]["figures"].as_array().unwrap();
    let archiving = figures.iter().find(|f| f["name"] == "archiving").unwrap();
    assert_eq!(archiving["status"], "could-not-read");
    assert!(archiving["detail"].as_str().unwrap().contains("cannot connect to PostgreSQL"), "{archiving}");
    let ledger = std::fs::read_to_string(reports.join("ledger.jsonl")).unwrap();
    assert!(ledger.contains("\"kind\":\"posture\"") && ledger.contains("\"result\":\"could-not-read\""), "{ledger}");
}

/// Writes an unsigned, chained store of posture records of `app-db`, one a day from 2026-03-01 for 30 days:
/// not met on the days in `not_met`, none on the days in `missing`. Returns the store.
pub fn thirty_days(dir: &Path, not_met: &[i64], missing: &[i64]) -> std::path::PathBuf {
    use sha2::Digest;
    let store = dir.join("reports");
    std::fs::create_dir_all(&store).unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T04:00:00Z").unwrap().to_utc();
    let (mut ledger, mut previous, mut seq) = (String::new(), serde_json::Value::Null, 0);
    for day in (0..30).filter(|d| !missing.contains(d)) {
        seq += 1;
        let at = start + chrono::Duration::days(day);
        let met = !not_met.contains(&day);
        let result = if met { "met" } else { "not-met" };
        let id = format!("posture-{}-0000000{seq}", at.format("%Y%m%dT%H%M%SZ"));
        let figure = if met {
            serde_json::json!({ "name": "archiving", "value": "alive", "status": "met" })
        } else {
            serde_json::json!({ "name": "archiving", "value": "failing since 2026-03-05T03:00:00Z", "status": "not-met" })
        };
        let doc = serde_json::json!({
            "schema": "stackdrill.backup-posture/v1", "id": id, "drill": "backups", "result": result,
            "checked_at": at, "stores": [{ "name": "app-db", "kind": "local-postgres", "result": result,
            "figures": [figure] }], "previous_sha256": previous, "signing": null,
        });
        let mut body = serde_json::to_vec_pretty(&doc).unwrap();
        body.push(b'\n');
        let sha = hex::encode(sha2::Sha256::digest(&body));
        let file = format!("{id}.json");
        std::fs::write(store.join(&file), &body).unwrap();
        let entry = serde_json::json!({
            "seq": seq, "kind": "posture", "id": id, "drill": "backups", "result": result, "file": file,
            "sha256": sha, "previous": previous, "at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        ledger.push_str(&format!("{entry}\n"));
        previous = serde_json::Value::String(sha);
    }
    std::fs::write(store.join("ledger.jsonl"), ledger).unwrap();
    store
}

/// Thirty days of records, two not met and one missing: `report controls --since --until` shows the control
/// with 27 days met of 29 observed, 30 in period, each day's cell, and the same figures in JSON.
#[test]
fn thirty_days_show_27_met_2_not_met_1_not_observed_in_report_controls() {
    let tmp = Scratch::new();
    let reports = thirty_days(tmp.path(), &[4, 20], &[10]);
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", tmp.path().join("state"))
        .current_dir(tmp.path())
        .args(["report", "verify", "--reports"])
        .arg(&reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let controls = |format: &str| {
        stackdrill()
            .env("STACKDRILL_STATE_DIR", tmp.path().join("state"))
            .current_dir(tmp.path())
            .args([
                "report",
                "controls",
                "--since",
                "2026-03-01",
                "--until",
                "2026-03-30",
                "--format",
                format,
                "--reports",
            ])
            .arg(&reports)
            .output()
            .unwrap()
    };
    let out = controls("md");
    let md = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{md}{}", text(&out.stderr));
    assert!(
        md.contains("## daily encrypted backups with point-in-time recovery (SOC 2 A1.2, ISO 27001 A.8.13)"),
        "{md}"
    );
    assert!(
        md.contains(
            "### app-db (local-postgres): 27 days met / 29 observed / 30 in period (2 not met, 1 not observed)"
        ),
        "{md}"
    );
    assert!(md.contains("| 2026-03-05 | **NOT MET**: archiving failing since 2026-03-05T03:00:00Z |"), "{md}");
    assert!(md.contains("| 2026-03-11 | not observed | — |"), "{md}");
    let out = controls("json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &doc["backup_posture"]["stores"][0];
    let n = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(
        (n("days_met"), n("days_not_met"), n("days_not_observed"), n("days_observed"), n("days_in_period")),
        (27, 2, 1, 29, 30)
    );
}

/// The same thirty days in the evidence pack: `index.html` has the store's calendar, one cell per day with
/// its state, the same figures, and each day not met with what failed.
#[test]
fn the_evidence_pack_has_a_day_by_day_posture_calendar_per_store() {
    let tmp = Scratch::new();
    let reports = thirty_days(tmp.path(), &[4, 20], &[10]);
    let state = tmp.path().join("state");
    let key = tmp.path().join("keys/signing.key");
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", tmp.path().join("key-state")) // not trusted by the unsigned store
        .args(["keys", "generate", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pack = tmp.path().join("pack");
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", &state)
        .current_dir(tmp.path())
        .args(["report", "export", "--since", "2026-03-01", "--until", "2026-03-30", "--signing-key"])
        .arg(&key)
        .arg("--out")
        .arg(&pack)
        .arg("--reports")
        .arg(&reports)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let html = std::fs::read_to_string(pack.join("index.html")).unwrap();
    assert!(
        html.contains("daily encrypted backups with point-in-time recovery (SOC 2 A1.2, ISO 27001 A.8.13)"),
        "{html}"
    );
    assert!(html.contains("27 days met / 29 observed / 30 in period (2 not met, 1 not observed)"), "{html}");
    let cells = |class: &str| html.matches(&format!("<td class=\"{class}\" data-date=")).count();
    assert_eq!((cells("met"), cells("not-met"), cells("not-observed")), (27, 2, 1));
    assert!(html.contains("<td class=\"not-observed\" data-date=\"2026-03-11\""), "{html}");
    assert!(html.contains("<li>2026-03-05: archiving failing since 2026-03-05T03:00:00Z</li>"), "{html}");
}

#[cfg(feature = "slow-tests")]
mod local {
    use std::time::{Duration, Instant};

    use super::backups_yaml;
    use crate::harness::{Demo, scalar, stackdrill, text};

    fn check(demo: &Demo, file: &std::path::Path, key: &std::path::Path) -> std::process::Output {
        stackdrill()
            .env("STACKDRILL_STATE_DIR", demo.state())
            .current_dir(demo.root.path())
            .args(["backups", "check", "--metrics-file"])
            .arg(demo.root.path().join("metrics.prom"))
            .arg("--file")
            .arg(file)
            .arg("--reports")
            .arg(&demo.reports)
            .arg("--signing-key")
            .arg(key)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap()
    }

    /// The demo's source meets its objectives; once its `archive_command` fails, the next check fails on
    /// archiving, naming the time of the last failure. Both records are signed and chained after the demo's
    /// report, `report verify` verifies them, and an edited one is named.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopping_archiving_fails_the_next_check_naming_the_last_failure() {
        let demo = Demo::start_with(&[]);
        // The demo recorded its source's posture after its report: met, and the matrix shows the control.
        let ledger = std::fs::read_to_string(demo.reports.join("ledger.jsonl")).unwrap();
        let kinds: Vec<serde_json::Value> = ledger.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(kinds.len(), 2, "{ledger}");
        assert_eq!(
            (kinds[1]["kind"].as_str(), kinds[1]["result"].as_str()),
            (Some("posture"), Some("met")),
            "{ledger}"
        );
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", demo.state())
            .current_dir(demo.root.path())
            .args(["report", "controls", "--reports"])
            .arg(&demo.reports)
            .output()
            .unwrap();
        let md = text(&out.stdout);
        assert!(md.contains("### local-demo (local-postgres): 1 day met / 1 observed / 1 in period"), "{md}");
        let key = demo.root.path().join("keys/signing.key");
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", demo.state())
            .args(["keys", "generate", "--out"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let file = backups_yaml(
            demo.root.path(),
            &demo.dir.join("source"),
            demo.port,
            &demo.dir.join("base-backups"),
            "{ max-backup-age: 26h, max-pitr-lag: 10m }",
        );
        let out = check(&demo, &file, &key);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains("MET app-db (local-postgres)") && stdout.contains("archiving    alive"), "{stdout}");
        assert!(stdout.contains("encryption   not applicable"), "{stdout}");

        // Archiving stops: every attempt fails from now on.
        let admin = demo.admin("postgres").await;
        admin.batch_execute("alter system set archive_command = 'false'").await.unwrap();
        admin.batch_execute("select pg_reload_conf()").await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        admin
            .batch_execute(
                "create table if not exists wal_marker (at timestamptz); insert into wal_marker values (now())",
            )
            .await
            .unwrap();
        admin.batch_execute("select pg_switch_wal()").await.unwrap();
        let failed_at = "select coalesce(to_char(last_failed_time at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') \
                         from pg_stat_archiver";
        let t0 = Instant::now();
        let before = loop {
            let t = scalar(&admin, failed_at).await;
            if !t.is_empty() {
                break t;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "the archiver never failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let out = check(&demo, &file, &key);
        let after = scalar(&admin, failed_at).await;
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains("NOT MET app-db (local-postgres)"), "{stdout}");
        let line = stdout.lines().find(|l| l.contains("archiving")).unwrap();
        let named = line.split("failing since ").nth(1).map(|r| &r[..20]).unwrap_or_else(|| panic!("{line}"));
        assert!(before.as_str() <= named && named <= after.as_str(), "{named} not in {before}..{after}: {line}");
        assert!(line.contains(&format!("last failure at {named}")) && line.contains("NOT MET"), "{line}");
        assert!(stdout.contains("NOT MET: posture record"), "{stdout}");
        // The gauges say so, and promtool accepts them.
        let prom = std::fs::read_to_string(demo.root.path().join("metrics.prom")).unwrap();
        assert!(prom.contains("stackdrill_backup_posture_met{store=\"app-db\"} 0.0"), "{prom}");
        assert!(prom.contains("stackdrill_backup_pitr_lag_seconds{store=\"app-db\"}"), "{prom}");
        assert!(prom.contains("stackdrill_backup_age_seconds{store=\"app-db\"}"), "{prom}");
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (apt-get install prometheus)");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), prom.as_bytes()).unwrap();
        let lint = child.wait_with_output().unwrap();
        assert!(lint.status.success(), "{}{}\n{prom}", text(&lint.stdout), text(&lint.stderr));

        // Both records verify, signed, after the demo's report.
        let reports = demo.reports.to_str().unwrap();
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", demo.state())
            .args(["report", "verify", "--reports", reports])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
        assert!(text(&out.stdout).contains("ok: 4 entries"), "{}", text(&out.stdout));
        // The failed day edited into a met one is found.
        let ledger = std::fs::read_to_string(demo.reports.join("ledger.jsonl")).unwrap();
        let last: serde_json::Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
        assert_eq!((last["kind"].as_str(), last["result"].as_str()), (Some("posture"), Some("not-met")));
        let path = demo.reports.join(last["file"].as_str().unwrap());
        let body = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, body.replace("\"not-met\"", "\"met\"")).unwrap();
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", demo.state())
            .args(["report", "verify", "--reports", reports])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
        assert!(
            text(&out.stdout).contains("entry 4 (posture ") && text(&out.stdout).contains("was modified"),
            "{}",
            text(&out.stdout)
        );
    }
}

/// Against the Supabase stand-in (`tests/supabase_standin.py`): PITR off fails on `pitr`; a window whose
/// latest point is 20 minutes old fails a 10-minute objective on `pitr-lag`; the token comes from the
/// environment variable `token-env` names, and never reaches the record.
#[cfg(feature = "slow-tests")]
#[test]
fn supabase_pitr_off_and_a_20_minute_old_latest_point_fail_naming_the_figure() {
    use std::io::BufRead;
    const TOKEN: &str = "sbp_test_token_0123456789";
    const REF: &str = "abcdefghijklmnopqrst";
    let tmp = Scratch::new();
    let run = |name: &str, extra: &[&str]| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/supabase_standin.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .args(["--token", TOKEN, "--ref", REF, "--db-port", "1", "--log"])
            .arg(tmp.path().join(format!("{name}.jsonl")))
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("the stand-in's port");
        let file = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(
            &file,
            format!(
                "stores:\n  - name: sb-{name}\n    source:\n      supabase: {{ project-ref: {REF}, token-env: SB_TOKEN, \
                 api-url: \"http://127.0.0.1:{port}\" }}\n    objectives: {{ max-backup-age: 26h, max-pitr-lag: 10m }}\n"
            ),
        )
        .unwrap();
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", tmp.path().join("state"))
            .env("SB_TOKEN", TOKEN)
            .args(["backups", "check", "--output", "json", "--file"])
            .arg(&file)
            .arg("--reports")
            .arg(tmp.path().join("reports"))
            .output()
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        out
    };
    let figure = |out: &std::process::Output, name: &str| -> serde_json::Value {
        let record: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
        record["stores"][0]["figures"].as_array().unwrap().iter().find(|f| f["name"] == name).cloned().unwrap()
    };
    let out = run("healthy", &[]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!text(&out.stdout).contains(TOKEN));
    let out = run("pitr-off", &["--pitr", "false"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    let pitr = figure(&out, "pitr");
    assert_eq!((pitr["status"].as_str(), pitr["value"].as_str()), (Some("not-met"), Some("off")), "{pitr}");
    let out = run("lagging", &["--pitr-lag-seconds", "1200"]);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    let lag = figure(&out, "pitr-lag");
    assert_eq!(lag["status"], "not-met", "{lag}");
    assert!(lag["value"].as_str().unwrap().starts_with("20m"), "{lag}");
    assert_eq!(figure(&out, "pitr")["status"], "met");
    let ledger = std::fs::read_to_string(tmp.path().join("reports/ledger.jsonl")).unwrap();
    assert!(!ledger.contains(TOKEN) && ledger.lines().count() == 3, "{ledger}");
}
