//! `supabase-branch` against a stand-in of the Management API (`tests/supabase_standin.py`, answering as
//! the published OpenAPI document specifies) whose branch database is the demo's real PostgreSQL: a branch
//! with data is created, verified over verified TLS and deleted; residency, rate limits, a branch that never
//! becomes healthy, and the cleanup sweep; the in-place restore endpoints are never called.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::harness::{Demo, stackdrill, text};

const REF: &str = "abcdefghijklmnopqrst";
const TOKEN: &str = "sbp_test_token_0123456789";

struct StandIn {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
}

impl StandIn {
    /// A stand-in whose branch database is the demo's source (`demo`), or nothing reachable (`None`).
    fn start(dir: &Path, demo: Option<&Demo>, name: &str, extra: &[&str]) -> StandIn {
        let log = dir.join(format!("{name}.jsonl"));
        let (port, pass) = demo.map_or((1, dir.join("none")), |d| (d.port, d.dir.join("source.password")));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/supabase_standin.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .args(["--token", TOKEN, "--ref", REF, "--db-user", "app", "--db-port", &port.to_string()])
            .arg("--db-pass-file")
            .arg(pass)
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (apt-get install python3)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("the stand-in's port");
        StandIn { child, port, log }
    }

    /// Every request so far: method, path, status, time, body.
    fn calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn called(&self, method: &str, path_part: &str) -> Vec<serde_json::Value> {
        self.calls()
            .into_iter()
            .filter(|c| c["method"] == method && c["path"].as_str().unwrap().contains(path_part))
            .collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever a test did, no drill may reach anything but the six endpoints.
        for c in self.calls() {
            let path = c["path"].as_str().unwrap();
            assert!(!path.contains("restore") && c["status"] != 500, "a call the client must never make: {c}");
        }
    }
}

fn drill(dir: &Path, name: &str, port: u16, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\nrestore:\n  supabase-branch:\n    project-ref: {REF}\n    api-url: http://127.0.0.1:{port}\n    \
             database: app\n    sslmode: verify-full\n    ca-bundle: {ca}\n{extra}target: latest\n\
             objectives: {{ rto: 10m, rpo: 1h }}\nverify:\n  - row-count: {{ table: accounts, min: 1 }}\n  - sql:\n      \
             name: ledger balances to zero\n      query: select sum(amount) from credit_transactions\n      \
             expect: {{ min: 0, max: 0 }}\n",
            ca = dir.join("demo/ca.crt").display()
        ),
    )
    .unwrap();
    path
}

fn run(demo: &Demo, drill: &Path, token: Option<&str>) -> (std::process::Output, Option<serde_json::Value>) {
    let before = demo.reports().len();
    let mut cmd = stackdrill();
    cmd.env("STACKDRILL_STATE_DIR", demo.state()).env_remove("SUPABASE_ACCESS_TOKEN");
    if let Some(t) = token {
        cmd.env("SUPABASE_ACCESS_TOKEN", t);
    }
    let out = cmd
        .args(["drill", "run"])
        .arg(drill)
        .arg("--reports")
        .arg(&demo.reports)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let reports = demo.reports();
    let newest = reports.iter().max_by_key(|r| r["started_at"].as_str().unwrap_or_default().to_string()).cloned();
    (out, newest.filter(|_| reports.len() > before))
}

#[test]
fn a_branch_with_data_is_created_verified_over_tls_and_deleted() {
    let demo = Demo::start();
    // The first request is answered 429 with X-RateLimit-Reset: 1 (and no Retry-After).
    let beat = heartbeats(&demo, 60, 1);
    let api = StandIn::start(demo.root.path(), Some(&demo), "api", &["--rate-limit", "1"]);
    let path = drill(demo.root.path(), "supa", api.port, "");
    let body = std::fs::read_to_string(&path).unwrap() + "  - heartbeat: {}\n";
    std::fs::write(&path, body).unwrap();
    let (out, report) = run(&demo, &path, Some(TOKEN));
    let report = report.expect("a report");
    assert!(out.status.success(), "{}\n{}\n{report}", text(&out.stdout), text(&out.stderr));
    assert_eq!(report["result"], "passed");
    let calls = api.calls();
    assert_eq!(calls[0]["status"], 429);
    let waited = calls[1]["t"].as_f64().unwrap() - calls[0]["t"].as_f64().unwrap();
    assert!(waited >= 0.95, "X-RateLimit-Reset: 1 was not honoured (retried after {waited:.2}s)");
    let created = api.called("POST", "/branches");
    assert_eq!(created.len(), 1);
    let body = &created[0]["body"];
    assert_eq!(body["with_data"], true);
    assert_eq!(body["persistent"], false);
    assert_eq!(body["region"], "ap-southeast-1", "the region is sent");
    let name = body["branch_name"].as_str().unwrap();
    assert!(name.starts_with("sd-supa-") && name.len() == "sd-supa-".len() + 8, "{name}");
    assert!(api.called("GET", "/v1/branches/").len() >= 3, "polled until healthy");
    // Addressed by its project_ref (20 lowercase letters), not the deprecated uuid.
    for c in api.called("GET", "/v1/branches/").into_iter().chain(api.called("DELETE", "/v1/branches/")) {
        let r = c["path"].as_str().unwrap().trim_start_matches("/v1/branches/");
        assert!(r.len() == 20 && r.bytes().all(|b| b.is_ascii_lowercase()), "{c}");
    }
    assert!(!api.called("GET", "/actions").is_empty(), "the action runs' clone step was read");
    assert_eq!(api.called("GET", "/config/database/pooler").len(), 1, "the session pooler was asked for");
    assert_eq!(api.called("DELETE", "/v1/branches/").len(), 1);
    assert_eq!(report["teardown"]["status"], "done");
    assert!(report["teardown"]["detail"].as_str().unwrap().contains(name));
    let details = &report["source"]["details"];
    assert_eq!(details["region"], "ap-southeast-1");
    assert_eq!(details["pitr_enabled"], "true");
    // The branch's RPO is the heartbeat's measurement, not an assumption.
    let measured = &report["measured"];
    let point = measured["recovery_point"].as_str().map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc());
    assert_eq!(point, Some(beat), "{measured}");
    let rpo = measured["rpo_seconds"].as_f64().unwrap();
    let expected = (report_target(&report) - beat).num_milliseconds() as f64 / 1000.0;
    assert!((rpo - expected).abs() < 0.01 && rpo > 0.0, "RPO {rpo} vs T - heartbeat {expected}: {measured}");
    assert!(measured["rpo_basis"].as_str().unwrap().contains("heartbeat"), "{measured}");
    assert_eq!(details["branch_region"], "ap-southeast-1");
    assert!(details["connected_via"].as_str().unwrap().starts_with("session pooler 127.0.0.1:"), "{details}");
    let gate = &report["checks"][0];
    assert_eq!((gate["name"].as_str(), gate["status"].as_str()), (Some("backup-health"), Some("passed")), "{gate}");
    let scratch = report["connections"].as_array().unwrap().iter().find(|c| c["role"] == "scratch").unwrap().clone();
    assert!(scratch["hostname_verified"] == true, "{scratch}");
    assert!(scratch["credential"].as_str().unwrap().contains("Management API"), "{scratch}");
    // The token reached neither the report nor the output.
    for t in [report.to_string(), text(&out.stdout), text(&out.stderr)] {
        assert!(!t.contains(TOKEN));
    }

    // No token: could not run, and the hint names the variable.
    let (out, report) = run(&demo, &path, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(report.is_none());
    assert!(text(&out.stderr).contains("SUPABASE_ACCESS_TOKEN"), "{}", text(&out.stderr));
    // A token the API refuses: could not run (401), nothing created.
    let posts = api.called("POST", "/branches").len();
    let (out, _) = run(&demo, &path, Some("wrong"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    assert_eq!(api.called("POST", "/branches").len(), posts);
}

#[test]
fn another_region_is_refused_and_a_branch_that_never_gets_healthy_is_deleted() {
    let demo = Demo::start();
    let us = StandIn::start(demo.root.path(), Some(&demo), "us", &["--region", "us-east-1"]);
    let (out, report) = run(&demo, &drill(demo.root.path(), "supa-us", us.port, ""), Some(TOKEN));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(report.is_none());
    assert!(text(&out.stderr).contains("outside the drill's residency"), "{}", text(&out.stderr));
    assert!(us.called("POST", "/branches").is_empty(), "a branch was created in a refused region");

    let stuck = StandIn::start(demo.root.path(), Some(&demo), "stuck", &["--healthy-after", "-1"]);
    let (out, report) =
        run(&demo, &drill(demo.root.path(), "supa-stuck", stuck.port, "    wait-healthy: 3s\n"), Some(TOKEN));
    let report = report.expect("a report");
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(report["result"], "error", "{report}");
    assert!(report["reason"].as_str().unwrap().contains("did not become healthy within 3s"), "{}", report["reason"]);
    assert_eq!(stuck.called("DELETE", "/v1/branches/").len(), 1, "the stuck branch was not deleted");
    assert_eq!(report["teardown"]["status"], "done");

    // A target other than latest is refused by validate, with the reason.
    let at = drill(demo.root.path(), "supa-at", stuck.port, "").to_string_lossy().into_owned();
    let body = std::fs::read_to_string(&at).unwrap().replace("target: latest", "target: { at: 2026-11-30T00:00:00Z }");
    std::fs::write(&at, body).unwrap();
    let out = stackdrill().args(["drill", "validate", &at]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("copies the project as it is now"), "{}", text(&out.stderr));
}

/// The backup-health gate: a newest backup 30 h old fails the drill, and so does PITR switched off; each
/// failure is the `backup-health` check, naming the field.
#[test]
fn the_backup_health_gate_fails_an_old_backup_and_pitr_off_naming_which() {
    let demo = Demo::start();
    for (name, extra, field) in [
        ("old", &["--backup-age-hours", "30"][..], "backups[].inserted_at"),
        ("nopitr", &["--pitr", "false", "--walg", "false"][..], "pitr_enabled"),
    ] {
        let api = StandIn::start(demo.root.path(), Some(&demo), name, extra);
        let (out, report) = run(&demo, &drill(demo.root.path(), &format!("supa-{name}"), api.port, ""), Some(TOKEN));
        let report = report.expect("a report");
        assert_ne!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert_eq!(report["result"], "failed", "{name}: {report}");
        let gate = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "backup-health").unwrap().clone();
        assert_eq!(gate["status"], "failed", "{gate}");
        assert!(gate["detail"].as_str().unwrap().starts_with(&format!("{field}: ")), "{name}: {gate}");
        let reason = report["reason"].as_str().unwrap();
        assert!(reason.contains("backup-health") && reason.contains(field), "{name}: {reason}");
        if name == "old" {
            assert!(gate["detail"].as_str().unwrap().contains("30.0 h old"), "{gate}");
            assert!(!gate["detail"].as_str().unwrap().contains("pitr_enabled"), "{gate}");
        }
        // The other checks still ran (the branch was restored and verified), and it was deleted.
        assert_eq!(api.called("DELETE", "/v1/branches/").len(), 1);
    }
}

/// The branch drill against the API as documented: a branch created without data fails the drill;
/// ACTIVE_UNHEALTHY and INACTIVE end the wait at once (wait-healthy is 10 minutes); a dead clone step fails;
/// a branch in another region than asked fails. Every branch is deleted.
#[test]
fn the_branch_drill_fails_what_the_api_says_is_wrong() {
    let demo = Demo::start();
    for (name, extra, says) in [
        ("nodata", &["--without-data"][..], "with_data: false"),
        ("unhealthy", &["--final-status", "ACTIVE_UNHEALTHY", "--healthy-after", "1"][..], "went to ACTIVE_UNHEALTHY"),
        ("inactive", &["--final-status", "INACTIVE", "--healthy-after", "1"][..], "went to INACTIVE"),
        ("deadclone", &["--clone-status", "DEAD", "--healthy-after", "1"][..], "`clone` step is DEAD"),
        ("elsewhere", &["--branch-region", "us-east-1"][..], "is in `us-east-1`, not `ap-southeast-1`"),
    ] {
        let api = StandIn::start(demo.root.path(), Some(&demo), name, extra);
        let path = drill(demo.root.path(), &format!("supa-{name}"), api.port, "    wait-healthy: 10m\n");
        let started = std::time::Instant::now();
        let (out, report) = run(&demo, &path, Some(TOKEN));
        let report = report.expect("a report");
        assert_ne!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert_eq!(report["result"], "failed", "{name}: {report}");
        assert!(report["reason"].as_str().unwrap().contains(says), "{name}: {}", report["reason"]);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name}: the wait did not end at once: {:?}",
            started.elapsed()
        );
        assert_eq!(api.called("DELETE", "/v1/branches/").len(), 1, "{name}: the branch was not deleted");
        assert_eq!(report["teardown"]["status"], "done", "{name}");
    }
}

#[test]
fn cleanup_deletes_only_expired_branches_this_drill_created() {
    let dir = super::harness::Scratch::new();
    let api = StandIn::start(
        dir.path(),
        None,
        "sweep",
        &[
            "--branch",
            "sd-supa-deadbeef,30,false",
            "--branch",
            "sd-supa-0badf00d,0.1,false",
            "--branch",
            "sd-supa-cafebabe,30,true",
            "--branch",
            "sd-supa-staging-deadbeef,30,false",
            "--branch",
            "feature-login,30,false",
        ],
    );
    let path = drill(dir.path(), "supa", api.port, "");
    let sweep = |dry: bool| {
        let mut cmd = stackdrill();
        cmd.env("SUPABASE_ACCESS_TOKEN", TOKEN).args(["drill", "cleanup", "--output", "json"]).arg(&path);
        if dry {
            cmd.arg("--dry-run");
        }
        let out = cmd.output().unwrap();
        let swept: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out, swept)
    };
    let (out, swept) = sweep(true);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(api.called("DELETE", "/").is_empty(), "a dry run deleted");
    let (out, swept_now) = sweep(false);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let action = |s: &serde_json::Value, branch: &str| {
        s.as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"].as_str().unwrap().contains(branch))
            .map(|e| e["action"].clone())
    };
    assert_eq!(action(&swept, "sd-supa-deadbeef ").unwrap(), "would remove", "{swept}");
    assert_eq!(action(&swept_now, "sd-supa-deadbeef ").unwrap(), "removed", "{swept_now}");
    assert_eq!(action(&swept_now, "sd-supa-0badf00d").unwrap(), "kept (not expired yet)");
    assert!(action(&swept_now, "sd-supa-cafebabe").unwrap().as_str().unwrap().starts_with("refused"));
    assert!(action(&swept_now, "sd-supa-staging").is_none() && action(&swept_now, "feature-login").is_none());
    let deletes = api.called("DELETE", "/v1/branches/");
    assert_eq!(deletes.len(), 1, "{deletes:?}");

    // Without a token the sweep is skipped with a note, and the local part still succeeds.
    let out = stackdrill().env_remove("SUPABASE_ACCESS_TOKEN").args(["drill", "cleanup"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("skipped: no Supabase access token"), "{}", text(&out.stdout));
}

/// A scratch is reached at `sslmode require` when no `ca-bundle` is given, where the certificate proves
/// nothing: the one-run branch password goes only through SCRAM with channel binding. A TLS impostor in
/// place of the branch database that asks for a cleartext password is refused before the password is sent,
/// at once (no minute of retries), and the error says why.
#[test]
fn a_tls_impostor_in_place_of_the_scratch_never_receives_its_password() {
    let dir = super::harness::Scratch::new();
    let (port, asked, received) = super::production_safety::tls_impostor();
    let pass = dir.path().join("branch.password");
    std::fs::write(&pass, "hunter2-branch-password\n").unwrap();
    let port = port.to_string();
    let extra = ["--db-port", port.as_str(), "--db-pass-file", pass.to_str().unwrap()];
    let api = StandIn::start(dir.path(), None, "impostor", &extra);
    let drill = dir.path().join("supa-impostor.yaml");
    std::fs::write(
        &drill,
        format!(
            "name: supa-impostor\nrestore:\n  supabase-branch:\n    project-ref: {REF}\n    api-url: http://127.0.0.1:{}\n    \
             database: app\ntarget: latest\nobjectives: {{ rto: 10m, rpo: 1h }}\n\
             verify:\n  - row-count: {{ table: accounts, min: 1 }}\n",
            api.port
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", dir.path())
        .env("SUPABASE_ACCESS_TOKEN", TOKEN)
        .args(["drill", "run"])
        .arg(&drill)
        .arg("--reports")
        .arg(dir.path().join("reports"))
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(received.lock().unwrap().is_empty(), "the impostor received {:?}", received.lock().unwrap());
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the impostor was never asked to log in");
    assert!(started.elapsed() < Duration::from_secs(45), "took {:?}: retried a refusal", started.elapsed());
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("channel binding"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
    // The branch was still deleted.
    assert_eq!(api.called("DELETE", "/v1/branches/").len(), 1);
}

/// Heartbeat rows in the demo's `app` database, one a second from `from_s` to `to_s` seconds ago (what
/// `stackdrill heartbeat install` leaves on a source), readable by the drill's login. Returns the newest.
fn heartbeats(demo: &Demo, from_s: i64, to_s: i64) -> chrono::DateTime<chrono::Utc> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let admin = demo.admin("app").await;
        admin
            .batch_execute(&format!(
                "create schema if not exists stackdrill; \
                 create table if not exists stackdrill.heartbeat (at timestamptz primary key); \
                 grant usage on schema stackdrill to app; grant select on stackdrill.heartbeat to app; \
                 insert into stackdrill.heartbeat select date_trunc('second', now()) - make_interval(secs => g) \
                   from generate_series({to_s}, {from_s}) g on conflict do nothing"
            ))
            .await
            .unwrap();
        admin.query_one("select max(at) from stackdrill.heartbeat", &[]).await.unwrap().get(0)
    })
}

/// A `supabase-new-project` drill file against the stand-in at `port`.
fn new_project_drill(dir: &Path, name: &str, port: u16, target: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\nrestore:\n  supabase-new-project:\n    project-ref: {REF}\n    api-url: http://127.0.0.1:{port}\n    \
             database: app\n    sslmode: verify-full\n    ca-bundle: {ca}\n    password-env: RESTORED_PGPASSWORD\n    \
             wait-restored: 2m\n    wait-healthy: 2m\ntarget: {target}\n\
             objectives: {{ rto: 10m, rpo: 1h }}\nverify:\n  - row-count: {{ table: accounts, min: 1 }}\n  - sql:\n      \
             name: ledger balances to zero\n      query: select sum(amount) from credit_transactions\n      \
             expect: {{ min: 0, max: 0 }}\n  - freshness: {{ table: credit_transactions, column: created_at }}\n  \
             - heartbeat: {{}}\n",
            ca = dir.join("demo/ca.crt").display()
        ),
    )
    .unwrap();
    path
}

/// The report's target time.
fn report_target(report: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    let t = report["measured"]["recovery_point_reference"]
        .as_str()
        .or(report["target"]["time"].as_str())
        .unwrap_or_else(|| panic!("no reference or target time in {report}"));
    chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc()
}

/// POSTs `body` to the stand-in's dashboard (what a person does in the browser).
fn dashboard(port: u16, body: &serde_json::Value) -> String {
    use std::io::{Read, Write};
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /_dashboard/pitr-to-new-project HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// Runs a `supabase-new-project` drill; a thread plays the person: when the run prints the dashboard step,
/// it "restores" in the stand-in's dashboard with exactly the T and the name the step gives (`act` false:
/// it does nothing). Returns the output's stderr, the newest report and the step printed.
fn run_new_project(
    demo: &Demo,
    drill: &Path,
    port: u16,
    act: bool,
    extra: &[&str],
) -> (std::process::ExitStatus, String, Option<serde_json::Value>, Option<(String, String)>) {
    let before = demo.reports().len();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stackdrill"))
        .env("STACKDRILL_STATE_DIR", demo.state())
        .env("SUPABASE_ACCESS_TOKEN", TOKEN)
        .env("RESTORED_PGPASSWORD", std::fs::read_to_string(demo.dir.join("source.password")).unwrap().trim())
        .env("NO_COLOR", "1")
        .env_remove("STACKDRILL_REPORTS")
        .args(["drill", "run"])
        .arg(drill)
        .arg("--reports")
        .arg(&demo.reports)
        .args(["--participant", "alice@example.com"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut step = None;
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if step.is_none() && line.contains("DASHBOARD STEP") {
                let between = |a: &str, b: &str| {
                    let i = line.find(a)? + a.len();
                    Some(line[i..i + line[i..].find(b)?].to_string())
                };
                if let (Some(t), Some(name)) =
                    (between("restore to ", " (UTC)"), between("name the new project `", "`"))
                {
                    if act {
                        let answer = dashboard(port, &serde_json::json!({ "name": name, "target": t }));
                        assert!(answer.starts_with("HTTP/1.0 201") || answer.starts_with("HTTP/1.1 201"), "{answer}");
                    }
                    step = Some((t, name));
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        (all, step)
    });
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let (stderr, step) = reader.join().unwrap();
    let reports = demo.reports();
    let newest = reports.iter().max_by_key(|r| r["started_at"].as_str().unwrap_or_default().to_string()).cloned();
    (status, format!("{stdout}\n{stderr}"), newest.filter(|_| reports.len() > before), step)
}

/// `supabase-new-project` end to end against the stand-in: the window read, T inside it, the one
/// dashboard step printed with T and the name, the project appearing (the stand-in's dashboard creates
/// it), healthy, checked at T, RTO from the ask, deleted through the guard; a restore put in another
/// region is refused (and deleted: it is this run's); a project given with --restored-project that is not
/// this run's is never deleted; `drill plan` shows the dashboard step.
#[test]
fn a_new_project_restored_at_t_from_the_dashboard_is_verified_and_deleted_behind_the_guard() {
    let demo = Demo::start();
    // The demo's workload wrote until it stopped: T (5 s ago) must come after its last row, as the stand-in's
    // "restored" database is the demo's, which holds the state at T only when nothing was written since.
    std::thread::sleep(Duration::from_secs(8));
    // The heartbeat, every second until 7 s ago: T (5 s ago) finds its newest row ~2 s before it.
    let beat = heartbeats(&demo, 120, 7);
    // Production's pg_cron jobs, as a restored copy carries them (pg_cron's `cron.job`, the drill's login may
    // update it): they must be inactive before the first check.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cron_active = |rt: &tokio::runtime::Runtime| -> i64 {
        rt.block_on(async {
            let admin = demo.admin("app").await;
            admin.query_one("select count(*) from cron.job where active", &[]).await.unwrap().get(0)
        })
    };
    rt.block_on(async {
        demo.admin("app")
            .await
            .batch_execute(
                "create schema cron; create table cron.job (jobid bigint primary key, schedule text, command text, active bool);
                 insert into cron.job values (1, '*/5 * * * *', 'delete from sessions where expires_at < now()', true),
                   (2, '0 3 * * *', 'select net.http_post(''https://hooks.example/x'')', true);
                 grant usage on schema cron to app; grant select, update on cron.job to app;",
            )
            .await
            .unwrap();
    });
    assert_eq!(cron_active(&rt), 2);
    let api = StandIn::start(demo.root.path(), Some(&demo), "np", &["--pitr-lag-seconds", "1"]);
    let path = new_project_drill(demo.root.path(), "supa-np", api.port, "{ ago: 5s }");

    // drill plan: the dashboard step, without creating anything.
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .env("SUPABASE_ACCESS_TOKEN", TOKEN)
        .args(["drill", "plan"])
        .arg(&path)
        .output()
        .unwrap();
    let plan = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{plan}");
    assert!(plan.contains("Restore to a new project") && plan.contains("name the new project `sd-supa-np-"), "{plan}");
    assert!(api.called("POST", "/_dashboard").is_empty() && api.called("DELETE", "/").is_empty());

    let started = chrono::Utc::now();
    let (status, output, report, step) = run_new_project(&demo, &path, api.port, true, &[]);
    let report = report.unwrap_or_else(|| panic!("a report\n{output}"));
    assert!(status.success(), "{output}\n{report}");
    assert_eq!(report["result"], "passed", "{report}");
    let (t, name) = step.expect("the dashboard step was printed");
    let t = chrono::DateTime::parse_from_rfc3339(&t).unwrap().to_utc();
    assert!(t > started - chrono::TimeDelta::seconds(30) && t <= chrono::Utc::now(), "T {t} inside the window");
    assert_eq!(t.timestamp_subsec_nanos(), 0, "T is to the second, as the dashboard takes it");
    assert!(name.starts_with("sd-supa-np-") && name.len() == "sd-supa-np-".len() + 8, "{name}");
    let details = &report["source"]["details"];
    assert!(details["pitr_window"].as_str().unwrap().contains(" .. "), "{details}");
    assert_eq!(details["target"].as_str().unwrap(), t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    assert!(details["restored_project"].as_str().unwrap().contains(&name), "{details}");
    assert!(details["restored_project_created_at"].is_string(), "{details}");
    assert!(details["asked_at"].is_string(), "{details}");
    assert_eq!(report["participants"][0], "alice@example.com");
    let gate = &report["checks"][0];
    assert_eq!((gate["name"].as_str(), gate["status"].as_str()), (Some("backup-health"), Some("passed")), "{gate}");
    // The project was found among the organisation's projects and deleted, by its ref, once.
    assert!(!api.called("GET", "/v1/projects").is_empty());
    let deletes: Vec<_> =
        api.called("DELETE", "/v1/projects/").into_iter().map(|c| c["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(!deletes[0].contains(REF), "the source was deleted");
    assert_eq!(report["teardown"]["status"], "done", "{report}");
    assert!(report["teardown"]["detail"].as_str().unwrap().contains(&name));
    let rto = report["measured"]["rto_seconds"].as_f64().unwrap_or(-1.0);
    assert!(rto > 0.0 && rto < 120.0, "RTO from the ask: {rto}");
    // The recovery point the copy really reached is the newest heartbeat in it; the RPO is T minus it.
    let measured = &report["measured"];
    let point = chrono::DateTime::parse_from_rfc3339(measured["recovery_point"].as_str().unwrap()).unwrap().to_utc();
    assert_eq!(point, beat, "{measured}");
    let rpo = measured["rpo_seconds"].as_f64().unwrap();
    let expected = (report_target(&report) - beat).num_milliseconds() as f64 / 1000.0;
    assert!(
        (rpo - expected).abs() < 0.01 && rpo > 0.0 && rpo < 10.0,
        "RPO {rpo} vs T - heartbeat {expected}: {measured}"
    );
    // The copy was made inert before the first check: both jobs found and deactivated.
    assert_eq!(report["inert"]["cron_jobs_deactivated"], 2, "{report}");
    assert_eq!(cron_active(&rt), 0);

    // The dashboard put the new project in another region: refused, and (being this run's) deleted.
    let us = StandIn::start(
        demo.root.path(),
        Some(&demo),
        "np-us",
        &["--pitr-lag-seconds", "1", "--restore-region", "us-east-1"],
    );
    let path = new_project_drill(demo.root.path(), "supa-np-us", us.port, "{ ago: 5s }");
    let (status, output, report, _) = run_new_project(&demo, &path, us.port, true, &[]);
    let report = report.unwrap_or_else(|| panic!("a report\n{output}"));
    assert!(!status.success());
    assert_eq!(report["result"], "failed", "{report}");
    assert!(report["reason"].as_str().unwrap().contains("outside the drill's residency"), "{}", report["reason"]);
    assert_eq!(us.called("DELETE", "/v1/projects/").len(), 1);

    // --restored-project naming a project that is not a restore this drill asked for (another name, created a
    // day ago): refused before any check, never deleted; the teardown says what to delete.
    let other = "zyxwvutsrqponmlkjihg";
    let old = StandIn::start(
        demo.root.path(),
        Some(&demo),
        "np-old",
        &["--pitr-lag-seconds", "1", "--project", &format!("restored-by-hand,{other},24")],
    );
    let path = new_project_drill(demo.root.path(), "supa-np-old", old.port, "{ ago: 5s }");
    let (_, output, report, step) = run_new_project(&demo, &path, old.port, false, &["--restored-project", other]);
    let report = report.unwrap_or_else(|| panic!("a report\n{output}"));
    assert!(step.is_none(), "asked for a dashboard step with --restored-project");
    assert!(old.called("DELETE", "/").is_empty(), "a project not this run's was deleted");
    assert_eq!(report["teardown"]["status"], "failed", "{report}");
    let detail = report["teardown"]["detail"].as_str().unwrap();
    assert!(detail.starts_with("not deleted: ") && detail.contains(other), "{detail}");
    assert_ne!(report["result"], "passed", "{report}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not one a run of drill supa-np-old asked for"), "{reason}");
}
