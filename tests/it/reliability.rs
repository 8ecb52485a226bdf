//! Crash safety, AWS faults, deadlines and secrets, with figures: `kill -9` in every phase of a local drill and
//! of an RDS drill, then `drill cleanup` leaves nothing and the report chain verifies; drills against an API
//! that throttles, fails, stalls and drops connections at a set rate; a hung API call against the phase
//! deadline; a whole drill searched byte by byte for its password and a canary token.
//!
//! Each test prints its table (`cargo test --test it reliability:: -- --nocapture`, or bench/reliability.sh).

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::harness::{Demo, Scratch, command, stackdrill, text, watch};
use super::moto::Moto;

/// `stackdrill <args>` with `env`, SIGKILLed when a stderr line contains `at` (if given). Returns whether it
/// died by SIGKILL (sent, or raised by a crash point) and its stderr.
fn run_and_kill(args: &[&str], env: &[(&str, &str)], at: Option<&str>) -> (bool, String) {
    let mut cmd = command();
    cmd.args(args).envs(env.iter().copied());
    let w = watch(cmd, Signal::SIGKILL, |line| at.is_some_and(|a| line.contains(a)));
    (w.signal == Some(9), w.stderr)
}

fn ledger_len(reports: &Path) -> usize {
    std::fs::read_to_string(reports.join("ledger.jsonl")).map(|t| t.lines().count()).unwrap_or(0)
}

/// `report verify` of `reports`, trusting the keys of the state directory `state` (where `keys generate` put
/// the drills' key).
fn verify(reports: &Path, state: &Path) -> (bool, String) {
    // A drill killed before its first report leaves no store at all, which `report verify` refuses (exit 2,
    // nothing to verify); the chain of an empty store is what is checked then.
    std::fs::create_dir_all(reports).unwrap();
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", state)
        .args(["report", "verify", "--reports"])
        .arg(reports)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

/// The kill points: a SIGKILL when a phase starts, and the two crash points inside the report commit.
const POINTS: [(&str, &str); 8] = [
    ("phase", "plan"),
    ("phase", "restore"),
    ("phase", "ready"),
    ("phase", "verify"),
    ("phase", "teardown"),
    ("phase", "report"),
    ("crash", "report:before-ledger"),
    ("crash", "report:after-ledger"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_every_phase_of_a_local_drill_then_cleanup_leaves_nothing_and_the_chain_verifies() {
    let demo = Demo::start();
    let state = demo.state();
    let keys = stackdrill().env("STACKDRILL_STATE_DIR", &state).args(["keys", "generate"]).output().unwrap();
    assert!(keys.status.success(), "{}", text(&keys.stderr));
    // A signed run first: with an operator key trusted, the demo's unsigned run stands only with a signed
    // entry after it vouching for it.
    let out = demo.run_drill(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let admin = demo.admin("app").await;
    let count = || async {
        let row =
            admin.query_one("select count(*), coalesce(sum(amount), 0)::text from credit_transactions", &[]).await;
        let row = row.expect("the source answers");
        (row.get::<_, i64>(0), row.get::<_, String>(1))
    };
    let source_before = count().await;
    let drill = demo.drill.to_str().unwrap().to_string();
    let reports = demo.reports.to_str().unwrap().to_string();
    let mut table =
        vec!["point                      killed  entries  cleanup                          verify".to_string()];
    for (how, point) in POINTS {
        let before = ledger_len(&demo.reports);
        let at = format!("[local-demo] {point}: started");
        let state_dir = state.to_str().unwrap();
        let run = ["drill", "run", drill.as_str(), "--reports", reports.as_str()];
        let (killed, log) = if how == "phase" {
            run_and_kill(&run, &[("STACKDRILL_STATE_DIR", state_dir)], Some(&at))
        } else {
            run_and_kill(&run, &[("STACKDRILL_STATE_DIR", state_dir), ("STACKDRILL_CRASHPOINT", point)], None)
        };
        assert!(killed, "{point}: the run was not killed:\n{log}");
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", &state)
            .args(["drill", "cleanup", "--output", "json", &drill, "--reports", &reports])
            .output()
            .unwrap();
        assert!(out.status.success(), "{point}: cleanup failed: {}{}", text(&out.stdout), text(&out.stderr));
        let swept: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut counted = std::collections::BTreeMap::new();
        for s in swept.as_array().unwrap() {
            let what =
                format!("{} {}", s["kind"].as_str().unwrap(), s["action"].as_str().unwrap().split(' ').next().unwrap());
            *counted.entry(what).or_insert(0) += 1;
        }
        let swept: Vec<String> = counted.into_iter().map(|(w, n)| format!("{n} {w}")).collect();
        demo.assert_no_scratch_left();
        let leftovers: Vec<String> = std::fs::read_dir(&demo.reports)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".pending-") || n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{point}: half-written files remain: {leftovers:?}");
        let (ok, why) = verify(&demo.reports, &state);
        assert!(ok, "{point}: the chain does not verify after cleanup:\n{why}");
        let after = ledger_len(&demo.reports);
        assert!(after == before || after == before + 1, "{point}: {before} -> {after} entries");
        if point == "report:after-ledger" {
            assert_eq!(after, before + 1, "the entry was committed before the crash; cleanup completes it");
        }
        if point == "report:before-ledger" {
            assert_eq!(after, before, "nothing was committed before the crash");
        }
        assert_eq!(count().await, source_before, "{point}: the source changed");
        table.push(format!(
            "{:<26} {:<7} {:<8} {:<32} {}",
            format!("{how} {point}"),
            "yes",
            format!("+{}", after - before),
            if swept.is_empty() { "nothing to do".to_string() } else { swept.join(", ") },
            "ok"
        ));
    }
    println!("\nkill -9 of a local drill, then `drill cleanup` and `report verify`:\n{}", table.join("\n"));
    // And a drill still runs cleanly afterwards.
    let out = demo.run_drill(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(verify(&demo.reports, &state).0);
}

/// An RDS drill against the emulator, with the demo source standing in for the scratch (TLS, via `connect`).
struct RdsBench {
    /// The stand-in scratch database; it lives as long as the bench.
    _demo: Demo,
    moto: Moto,
    rds: aws_sdk_rds::Client,
    tmp: Scratch,
    drill: std::path::PathBuf,
}

impl RdsBench {
    async fn new(extra: &str) -> RdsBench {
        use super::aws_drill::{drill_file, rds_block, rds_fixture};
        let (demo, moto, rds) = rds_fixture().await;
        let tmp = Scratch::new();
        let drill = drill_file(tmp.path(), "prod-db-pitr", &rds_block("prod-db", demo.port), &demo, extra);
        RdsBench { _demo: demo, moto, rds, tmp, drill }
    }

    fn reports(&self) -> std::path::PathBuf {
        self.tmp.path().join("reports")
    }

    /// `stackdrill <args>` against the emulator; killed at `at` when given.
    fn run(&self, args: &[&str], at: Option<&str>) -> (bool, Option<i32>, String) {
        self.run_with(args, &[], &mut |line| at.is_some_and(|a| line.contains(a)))
    }

    /// `stackdrill <args>` against the emulator with `env` added; `kill(line)` is asked about each stderr line.
    /// Returns whether it died by SIGKILL, its exit code and its stderr.
    fn run_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        kill: &mut dyn FnMut(&str) -> bool,
    ) -> (bool, Option<i32>, String) {
        let mut cmd = command();
        cmd.args(args).envs(self.moto.env_pairs()).envs(env.iter().copied());
        let w = watch(cmd, Signal::SIGKILL, kill);
        (w.signal == Some(9), w.code, w.stderr)
    }

    fn drill_args(&self) -> Vec<String> {
        vec![
            "drill".into(),
            "run".into(),
            self.drill.display().to_string(),
            "--reports".into(),
            self.reports().display().to_string(),
        ]
    }

    /// The scratch instances (tagged `stackdrill:scratch`) that exist now.
    async fn scratch(&self) -> Vec<String> {
        let all = self.rds.describe_db_instances().send().await.unwrap();
        all.db_instances()
            .iter()
            .filter(|i| i.tag_list().iter().any(|t| t.key() == Some("stackdrill:scratch")))
            .map(|i| i.db_instance_identifier().unwrap().to_string())
            .collect()
    }

    /// As if the scratch's expiry had passed: what a crashed run leaves is swept only then.
    async fn expire_scratch(&self) {
        let all = self.rds.describe_db_instances().send().await.unwrap();
        for i in
            all.db_instances().iter().filter(|i| i.tag_list().iter().any(|t| t.key() == Some("stackdrill:scratch")))
        {
            self.rds
                .add_tags_to_resource()
                .resource_name(i.db_instance_arn().unwrap())
                .tags(
                    aws_sdk_rds::types::Tag::builder()
                        .key("stackdrill:expires-at")
                        .value("2026-01-01T00:00:00Z")
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    }

    async fn production_untouched(&self) {
        let d = self.rds.describe_db_instances().db_instance_identifier("prod-db").send().await.unwrap();
        let p = &d.db_instances()[0];
        assert_eq!(p.db_instance_status(), Some("available"));
        assert_eq!((p.deletion_protection(), p.multi_az()), (Some(true), Some(true)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_every_phase_of_an_rds_drill_then_cleanup_removes_the_scratch_and_the_chain_verifies() {
    let b = RdsBench::new("").await;
    let reports = b.reports();
    let args = b.drill_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut table =
        vec!["point                      killed  scratch left  entries  scratch cleanup        verify".to_string()];
    for (how, point) in POINTS {
        let before = ledger_len(&reports);
        let (killed, _, log) = if how == "phase" {
            b.run(&args, Some(&format!("[prod-db-pitr] {point}: started")))
        } else {
            b.run_with(&args, &[("STACKDRILL_CRASHPOINT", point)], &mut |_| false)
        };
        assert!(killed, "{point}: not killed:\n{log}");
        let left = b.scratch().await;
        // A crashed run's scratch is kept until its expiry (it might be another machine's live run) ...
        let cleanup = |b: &RdsBench| {
            b.run(
                &["drill", "cleanup", "--aws", b.drill.to_str().unwrap(), "--reports", reports.to_str().unwrap()],
                None,
            )
        };
        if !left.is_empty() {
            let (_, code, log) = cleanup(&b);
            assert_eq!(code, Some(0), "{log}");
            assert_eq!(b.scratch().await, left, "{point}: an unexpired scratch was deleted");
            b.expire_scratch().await;
        }
        // ... then swept.
        let (_, code, log) = cleanup(&b);
        assert_eq!(code, Some(0), "{point}: cleanup failed:\n{log}");
        assert!(b.scratch().await.is_empty(), "{point}: scratch left after cleanup");
        b.production_untouched().await;
        let (ok, why) = verify(&reports, &reports.with_file_name("state"));
        assert!(ok, "{point}: {why}");
        let after = ledger_len(&reports);
        assert!(after == before || after == before + 1, "{point}: {before} -> {after}");
        table.push(format!(
            "{:<26} {:<7} {:<13} {:<8} {:<22} ok",
            format!("{how} {point}"),
            "yes",
            left.len(),
            format!("+{}", after - before),
            if left.is_empty() { "nothing to do".to_string() } else { format!("removed {} (expired)", left.len()) }
        ));
    }
    println!("\nkill -9 of an RDS drill (moto), then `drill cleanup --aws` and `report verify`:\n{}", table.join("\n"));
}

/// Drills and `stack apply` against an API that fails at a set rate. Every drill run finishes (passed,
/// failed or error) with a report and leaves no scratch; an apply that failed converges when re-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_under_injected_aws_faults_finish_with_a_report_and_leak_nothing() {
    let runs: usize = std::env::var("STACKDRILL_FAULT_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let rates: Vec<f64> = std::env::var("STACKDRILL_FAULT_RATES")
        .ok()
        .map(|v| v.split(',').filter_map(|r| r.parse().ok()).collect())
        .unwrap_or_else(|| vec![0.1, 0.3]);
    let b = RdsBench::new("").await;
    let reports = b.reports();
    let args = b.drill_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut table =
        vec!["fault rate  runs  passed  failed  error  reports  leaked  s/run  faults injected (per kind)".to_string()];
    for (ri, rate) in rates.iter().enumerate() {
        let (mut passed, mut failed, mut error, mut leaked, mut written) = (0, 0, 0, 0, 0);
        let clock = Instant::now();
        let injected_before = b.moto.proxy.injected();
        for i in 0..runs {
            let before = ledger_len(&reports);
            let scratch_before = b.scratch().await.len();
            b.moto.proxy.faults(*rate, (ri * 1000 + i + 1) as u64);
            let started = Instant::now();
            let (killed, code, log) = b.run(&args, None);
            b.moto.proxy.faults(0.0, 0);
            assert!(!killed && started.elapsed() < Duration::from_secs(600), "{log}");
            match code {
                Some(0) => passed += 1,
                Some(1) => failed += 1,
                _ => error += 1,
            }
            if ledger_len(&reports) == before + 1 {
                written += 1;
            }
            let left = b.scratch().await.len() - scratch_before;
            if left > 0 {
                let teardown: Vec<&str> =
                    log.lines().filter(|l| l.contains("teardown") || l.contains("error")).collect();
                println!("rate {rate} run {i}: {left} scratch left after exit {code:?}:\n{}", teardown.join("\n"));
            }
            leaked += left;
            b.production_untouched().await;
        }
        let after = b.moto.proxy.injected();
        let kinds: Vec<String> = after
            .iter()
            .map(|(k, v)| (k, v - injected_before.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        table.push(format!(
            "{:<11} {:<5} {:<7} {:<7} {:<6} {:<8} {:<7} {:<6.1} {}",
            format!("{:.0}%", rate * 100.0),
            runs,
            passed,
            failed,
            error,
            written,
            leaked,
            clock.elapsed().as_secs_f64() / runs as f64,
            kinds.join(", ")
        ));
        assert_eq!(written, runs, "every run, passed or not, writes its report (rate {rate})");
        assert_eq!(leaked, 0, "a scratch instance leaked at fault rate {rate}");
    }
    assert!(verify(&reports, &reports.with_file_name("state")).0);
    println!("\nRDS drills against moto through the fault-injecting proxy:\n{}", table.join("\n"));
}

#[test]
fn stack_apply_under_injected_faults_fails_cleanly_or_applies_and_a_rerun_converges() {
    let env = super::stack_aws::Env::new();
    env.moto.proxy.faults(0.2, 7);
    let first = env.stack("apply", &["--auto-approve"]);
    env.moto.proxy.faults(0.0, 0);
    let injected = env.moto.proxy.injected();
    assert!(injected.values().sum::<u64>() > 0, "no fault was injected");
    let first_code = first.status.code();
    assert!(matches!(first_code, Some(0 | 1)), "{}{}", text(&first.stdout), text(&first.stderr));
    let second = env.stack("apply", &["--auto-approve"]);
    assert_eq!(second.status.code(), Some(0), "{}{}", text(&second.stdout), text(&second.stderr));
    let plan = env.stack("plan", &["--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "not converged:\n{}", text(&plan.stdout));
    // Nothing leaked: every key the stack created is behind one of its aliases (a CreateKey retried after a
    // dropped answer must not leave an orphan key).
    let keys = env.moto.python(
        "import boto3\nk = boto3.client('kms')\n\
         ours = [x['KeyId'] for x in k.list_keys()['Keys'] if any(t['TagKey'] == 'stackdrill:stack' for t in k.list_resource_tags(KeyId=x['KeyId']).get('Tags', []))]\n\
         aliased = {a['TargetKeyId'] for a in k.list_aliases()['Aliases'] if 'TargetKeyId' in a}\n\
         print(len(ours), len([x for x in ours if x not in aliased]))",
    );
    let (created, orphans) = keys.split_once(' ').unwrap();
    println!(
        "\nstack apply at 20% faults ({injected:?}): first apply exit {first_code:?}, re-run exit 0, plan: no changes; \
         KMS keys tagged for the stack {created}, without an alias (leaked) {orphans}"
    );
    assert_eq!(orphans, "0", "a KMS key leaked");
}

/// A restore whose status never comes back, and one whose answer was lost after RDS acted on it: each drill
/// ends at the phase deadline, tears down what exists and reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_aws_call_never_holds_the_drill_past_its_deadline() {
    let b = RdsBench::new("timeouts: { restore: 20s, ready: 20s, teardown: 2m }\n").await;
    let args = b.drill_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for (what, needle, forward) in [
        // The status polls of the scratch (the SDK sends Action, Version, then the identifier).
        (
            "status polls hang",
            "Action=DescribeDBInstances&Version=2014-10-31&DBInstanceIdentifier=sd-prod-db-pitr",
            false,
        ),
        ("restore call's answer lost", "Action=RestoreDBInstanceToPointInTime", true),
    ] {
        let before = ledger_len(&b.reports());
        b.moto.proxy.hang(Some(needle), forward);
        let started = Instant::now();
        let mut restore_ended = None;
        // The hang ends when teardown starts (teardown describes the scratch too).
        let (_, code, log) = b.run_with(&args, &[], &mut |line| {
            if line.contains("[prod-db-pitr] teardown: started") {
                restore_ended = Some(started.elapsed());
                b.moto.proxy.hang(None, false);
            }
            false
        });
        let took = started.elapsed();
        b.moto.proxy.hang(None, false);
        let restore_ended = restore_ended.unwrap_or_else(|| panic!("{what}: no teardown:\n{log}"));
        assert_eq!(ledger_len(&b.reports()), before + 1, "{what}: no report");
        let report = last_report(&b.reports());
        let reason = report["reason"].as_str().unwrap_or_default().to_string();
        println!(
            "\n{what} (restore and ready deadlines 20 s): teardown began after {:.1} s, the run ended after {:.1} s, exit {code:?}; \
             report {} — {reason}; teardown {}",
            restore_ended.as_secs_f64(),
            took.as_secs_f64(),
            report["result"],
            report["teardown"]["status"]
        );
        assert!(restore_ended < Duration::from_secs(20 + 20), "{what}: held the drill {restore_ended:?}:\n{log}");
        assert!(b.scratch().await.is_empty(), "{what}: teardown left the scratch");
        // A restore that did not finish within its deadline did not prove the backup: not verified (exit 1).
        assert_eq!(code, Some(1), "{log}");
        assert_eq!(report["result"], "failed");
        assert!(reason.contains("did not finish within 20s"), "{reason}");
        assert_eq!(report["teardown"]["status"], "done", "{what}: the scratch RDS created must be deleted");
    }
}

/// The newest report in a store (by the ledger).
fn last_report(reports: &Path) -> serde_json::Value {
    let ledger = std::fs::read_to_string(reports.join("ledger.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
    serde_json::from_str(&std::fs::read_to_string(reports.join(last["file"].as_str().unwrap())).unwrap()).unwrap()
}
/// Every byte a file tree holds, with the paths of files that contain `needle`.
fn files_containing(root: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

/// The argv of every process on the machine that mentions `needle`.
fn argv_containing(needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            hits.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_drill_never_writes_its_password_or_a_canary_token_anywhere() {
    let demo = Demo::start();
    let state = demo.state();
    let keys = stackdrill().env("STACKDRILL_STATE_DIR", &state).args(["keys", "generate"]).output().unwrap();
    assert!(keys.status.success());
    let password = "Pw-7c1f0e9a-RECOGNISABLE-pass";
    let token = "CANARY-TOKEN-5d2b88e1";
    let admin = demo.admin("app").await;
    admin.batch_execute(&format!("alter role app password '{password}'")).await.unwrap();
    std::fs::write(demo.dir.join("source.password"), password).unwrap();
    // A row that exists after the target: the checksum names its key (missing from the restore), never its
    // contents.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let target = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(Duration::from_secs(1)).await;
    admin.batch_execute(&format!("insert into accounts (email) values ('{token}@example.com')")).await.unwrap();
    // Archive the WAL holding it, so the target is inside the recoverable window.
    let archived = std::fs::read_dir(demo.archive()).unwrap().count();
    admin.batch_execute("select pg_switch_wal()").await.unwrap();
    let waited = Instant::now();
    while std::fs::read_dir(demo.archive()).unwrap().count() == archived {
        assert!(waited.elapsed() < Duration::from_secs(30), "the segment was not archived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Watch every process's argv while the drill runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, pw) = (stop.clone(), password.to_string());
    let watcher = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            seen.extend(argv_containing(&pw));
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    });
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", &state)
        .args(["-vv", "--log-format", "json", "drill", "run"])
        .arg(&demo.drill)
        .args(["--target", &target, "--output", "json", "--reports"])
        .arg(&demo.reports)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let in_argv = watcher.join().unwrap();
    let report = demo.last_report();
    assert_eq!(out.status.code(), Some(1), "the token row is missing from the restore: {}", text(&out.stderr));
    let accounts = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "checksum accounts").unwrap();
    assert_eq!(accounts["status"], "failed", "{accounts:#}");

    let mut hits = Vec::new();
    for (what, needle) in [("password", password), ("canary token", token)] {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(format!("{what} in {stream}"));
            }
        }
        for root in [&demo.reports, &state, &demo.dir.join("scratch")] {
            hits.extend(files_containing(root, needle.as_bytes()).into_iter().map(|f| format!("{what} in {f}")));
        }
    }
    assert!(in_argv.is_empty(), "the password reached a command line: {in_argv:?}");
    assert!(hits.is_empty(), "{hits:#?}");
    // What was scanned, and the modes: reports are world-readable records, the key is private.
    use std::os::unix::fs::PermissionsExt;
    let mut scanned = (0usize, 0u64);
    for e in std::fs::read_dir(&demo.reports).unwrap().flatten() {
        let m = e.metadata().unwrap();
        scanned = (scanned.0 + 1, scanned.1 + m.len());
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && m.is_file() {
            assert_eq!(m.permissions().mode() & 0o777, 0o644, "{name}");
        }
    }
    let key = std::fs::metadata(state.join("keys/signing.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    println!(
        "\nsecret scan: {} bytes of stdout/stderr (-vv, JSON logs) and {} report files ({} bytes) plus the state \
         directory: 0 hits for the password and the canary token; 0 command lines with the password",
        out.stdout.len() + out.stderr.len(),
        scanned.0,
        scanned.1
    );
}
