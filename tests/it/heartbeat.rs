//! The heartbeat on real PostgreSQL 15 (no pg_cron: `stackdrill heartbeat run` writes the rows): a local PITR
//! drill to a random T measures the recovery point it reached, within one heartbeat of T; a restore whose WAL
//! stops 30 s short reports an RPO of about 30 s and fails a 10 s objective. A fake pg_cron job table on the
//! source comes back in the copy and is deactivated before the checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::harness::{Demo, command, scalar, stackdrill, switch_and_archive, text};

/// The demo's drill as `heartbeat-pitr`: its restore and source, objectives RTO 10m / RPO 10s, one heartbeat
/// check.
fn heartbeat_drill(demo: &Demo) -> PathBuf {
    let body = std::fs::read_to_string(&demo.drill).unwrap();
    let head = body.split("\nverify:").next().unwrap();
    assert!(head.contains("\nobjectives: { rto: 10m, rpo: 1m }"), "{head}");
    let head = head
        .replace("name: local-demo", "name: heartbeat-pitr")
        .replace("\nobjectives: { rto: 10m, rpo: 1m }", "\nobjectives: { rto: 10m, rpo: 10s }");
    let path = demo.dir.join("heartbeat-pitr.yaml");
    std::fs::write(&path, format!("{head}\nverify:\n  - heartbeat: {{}}\n")).unwrap();
    path
}

fn run(demo: &Demo, drill: &Path, reports: &Path, target: &str) -> (std::process::Output, serde_json::Value) {
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(drill)
        .arg("--reports")
        .arg(reports)
        .args(["--target", target])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(reports)
        .unwrap_or_else(|e| {
            panic!("no reports in {}: {e}\n{}\n{}", reports.display(), text(&out.stdout), text(&out.stderr))
        })
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().ends_with(".dsse.json"))
        .collect();
    files.sort();
    let last = files.pop().unwrap_or_else(|| panic!("no report: {}\n{}", text(&out.stdout), text(&out.stderr)));
    (out, serde_json::from_str(&std::fs::read_to_string(last).unwrap()).unwrap())
}

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().to_utc()
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().unwrap() as f64 / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_measures_a_pitr_drills_recovery_point_and_a_restore_that_stopped_short() {
    let demo = Demo::start();
    let drill = heartbeat_drill(&demo);
    let admin = demo.admin("app").await;
    // A pg_cron job table as the extension makes it (the local PostgreSQL has no pg_cron): it is replayed
    // into the copy with the rest, and must be inactive there before the checks.
    admin
        .batch_execute(
            "create schema cron;
             create table cron.job (jobid bigint primary key, schedule text, command text, active bool);
             insert into cron.job values (1, '*/5 * * * *', 'delete from sessions', true),
               (2, '1 seconds', 'insert into stackdrill.heartbeat (at) values (clock_timestamp())', true);",
        )
        .await
        .unwrap();

    let install = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["heartbeat", "install"])
        .arg(&drill)
        .output()
        .unwrap();
    assert!(install.status.success(), "{}\n{}", text(&install.stdout), text(&install.stderr));
    let said = text(&install.stdout);
    assert!(said.contains("stackdrill.heartbeat exists") && said.contains("no pg_cron in this database"), "{said}");
    // Idempotent.
    let again = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["heartbeat", "install"])
        .arg(&drill)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));

    let mut writer = command()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["heartbeat", "run"])
        .arg(&drill)
        .args(["--every", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let writer_pid = nix::unistd::Pid::from_raw(writer.id() as i32);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = time(&serde_json::Value::String(
        scalar(&admin, "select to_json(min(at)) #>> '{}' from stackdrill.heartbeat").await,
    ));
    tokio::time::sleep(Duration::from_secs(12)).await;
    switch_and_archive(&admin).await;

    // 1. A PITR drill to a random T, at least 3 s after the first heartbeat and 2 s before the archive ends.
    let jitter_ms = i64::from(std::process::id() % 997) * 7 + chrono::Utc::now().timestamp_subsec_millis() as i64;
    let t = first + chrono::TimeDelta::seconds(3) + chrono::TimeDelta::milliseconds(jitter_ms % 7000);
    let target = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (out, r) = run(&demo, &drill, &demo.root.path().join("reports-at-t"), &target);
    assert_eq!(r["result"], "passed", "{r:#}\n{}", text(&out.stderr));
    let m = &r["measured"];
    let reached = time(&m["recovery_point"]);
    let rpo = m["rpo_seconds"].as_f64().unwrap();
    let lag = secs(t - reached);
    println!("target {target}: recovery point {reached}, {lag:.3}s before it; RPO {rpo:.3}s");
    // One heartbeat a second: the newest row at or before T is at most one interval (plus its commit) behind.
    assert!((0.0..=1.05).contains(&lag), "recovery point {reached} is {lag:.3}s from the target {t}");
    assert!((rpo - lag).abs() < 0.001, "RPO {rpo} is not the target minus the recovery point {lag}");
    assert!(m["rpo_basis"].as_str().unwrap().contains("newest heartbeat"), "{m:#}");
    assert_eq!(time(&m["recovery_point_reference"]), t);
    let check = r["checks"].as_array().unwrap().iter().find(|c| c["kind"] == "heartbeat").unwrap();
    assert_eq!(check["status"], "passed", "{check:#}");
    // The copy's cron jobs, the heartbeat's among them, were switched off before the checks.
    let inert = &r["inert"];
    assert_eq!(inert["cron_jobs_deactivated"], 2, "{r:#}");
    assert_eq!(inert["cron_jobs"][1]["heartbeat"], true, "{inert:#}");
    let source_active = scalar(&admin, "select count(*) from cron.job where active").await;
    assert_eq!(source_active, "2", "the source's jobs are untouched");

    // 2. The WAL stops at a cut: what was archived until then, nothing after (archiving "succeeds" without
    // keeping anything). 30 s later, a `latest` drill replays to the cut.
    switch_and_archive(&admin).await;
    admin.batch_execute("alter system set archive_command = 'true'").await.unwrap();
    admin.batch_execute("select pg_reload_conf()").await.unwrap();
    let cut = time(&serde_json::Value::String(
        scalar(&admin, "select to_json(max(at)) #>> '{}' from stackdrill.heartbeat").await,
    ));
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (out, r) = run(&demo, &drill, &demo.root.path().join("reports-short"), "latest");
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(r["result"], "failed", "{r:#}");
    let m = &r["measured"];
    let rpo = m["rpo_seconds"].as_f64().unwrap();
    let reached = time(&m["recovery_point"]);
    println!("WAL cut at {cut}: recovery point {reached}, RPO {rpo:.3}s");
    // Rows written while the archiver caught up and the setting reloaded are past the cut: lost, as they should be.
    assert!((0.0..=2.5).contains(&secs(cut - reached)), "recovery point {reached}, WAL cut at {cut}");
    assert!((29.0..=40.0).contains(&rpo), "RPO {rpo}s, expected about 30 s");
    assert_eq!(m["rpo_met"], false);
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("check `heartbeat` failed: recovery point") && reason.contains("more than 10.0s"),
        "{reason}"
    );
    let reference = time(&m["recovery_point_reference"]);
    assert!(
        reference > cut + chrono::TimeDelta::seconds(29),
        "the source's newest heartbeat {reference} is the reference"
    );

    // The writer stops cleanly on SIGTERM.
    nix::sys::signal::kill(writer_pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = writer.wait().unwrap();
    assert!(status.success(), "heartbeat run ended {status:?}");
    let status_out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["heartbeat", "status", "--output", "json"])
        .arg(&drill)
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&status_out.stdout).unwrap();
    assert_eq!(st["table"], true, "{st:#}");
    assert!(st["rows"].as_i64().unwrap() >= 40, "{st:#}");
    let removed = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["heartbeat", "remove"])
        .arg(&drill)
        .output()
        .unwrap();
    assert!(text(&removed.stdout).contains("stackdrill.heartbeat dropped"), "{}", text(&removed.stdout));
    demo.assert_no_scratch_left();
}
