//! Schedules: `schedule deploy` against the emulator (create, no-op, update, delete, never touching what is not
//! stackdrill's); the local scheduler with real drills (catch-up policies, two schedulers and one drill,
//! SIGTERM in the middle of a drill); `schedule list` and the fleet scorecard.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::harness::{Demo, Scratch, bin_path, stackdrill, text};
use super::moto::Moto;

const DEPLOY: &str = "group: drills\n\
role-arn: arn:aws:iam::123456789012:role/stackdrill-scheduler\n\
ecs:\n  cluster: arn:aws:ecs:ap-southeast-1:123456789012:cluster/drills\n  \
task-definition: arn:aws:ecs:ap-southeast-1:123456789012:task-definition/stackdrill-drill:3\n  \
subnets: [subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002]\n  security-groups: [sg-0d1a2b3c4d5e6f709]\n\
retry: { attempts: 2, max-age: 1h }\n\
args: [--reports, \"s3://evidence/prod\"]\n";

/// A working directory with the repository's two RDS drills and a deploy file.
fn deploy_dir() -> Scratch {
    let dir = Scratch::new();
    std::fs::create_dir_all(dir.path().join("drills")).unwrap();
    for d in ["prod-db-pitr", "prod-aurora-pitr"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("drills/{d}.yaml")),
            dir.path().join(format!("drills/{d}.yaml")),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("schedule.yaml"), DEPLOY).unwrap();
    dir
}

fn deploy(moto: &Moto, dir: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = stackdrill();
    moto.env(&mut cmd);
    let out = cmd.current_dir(dir).args(["schedule", "deploy"]).args(extra).output().unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// name → (expression, timezone, description, input) of every schedule in the group, by boto3.
fn schedules(moto: &Moto, group: &str) -> serde_json::Value {
    let out = moto.python(&format!(
        "import boto3, json\n\
         s = boto3.client('scheduler')\n\
         out = {{}}\n\
         for x in s.list_schedules(GroupName='{group}')['Schedules']:\n\
         \x20   g = s.get_schedule(GroupName='{group}', Name=x['Name'])\n\
         \x20   out[x['Name']] = [g['ScheduleExpression'], g['ScheduleExpressionTimezone'], g.get('Description'), g['Target'].get('Input'), g['Target'].get('EcsParameters', {{}}).get('TaskDefinitionArn')]\n\
         print(json.dumps(out))"
    ));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn deploy_creates_then_is_a_no_op_then_updates_and_deletes_only_its_own() {
    let moto = Moto::start();
    let dir = deploy_dir();

    let (code, out, err) = deploy(&moto, dir.path(), &["--dry-run"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("dry run: 2 to create, 0 to update, 0 to delete, 0 unchanged"), "{out}");
    let groups = moto.python(
        "import boto3\nprint([g['Name'] for g in boto3.client('scheduler').list_schedule_groups()['ScheduleGroups']])",
    );
    assert!(!groups.contains("'drills'"), "a dry run created the group: {groups}");

    let (code, out, err) = deploy(&moto, dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("+ create drills/prod-db-pitr  cron(0 3 1 * ? *) Asia/Singapore  done"), "{out}");
    let live = schedules(&moto, "drills");
    assert_eq!(live["prod-db-pitr"][0], "cron(0 3 1 * ? *)");
    assert_eq!(live["prod-aurora-pitr"][0], "cron(0 4 ? * 2 *)", "Monday is 2 in AWS cron");
    assert_eq!(live["prod-db-pitr"][1], "Asia/Singapore");
    assert!(live["prod-db-pitr"][4].as_str().unwrap().ends_with("task-definition/stackdrill-drill:3"));
    let input: serde_json::Value = serde_json::from_str(live["prod-db-pitr"][3].as_str().unwrap()).unwrap();
    assert_eq!(
        input["containerOverrides"][0]["command"],
        serde_json::json!(["drill", "run", "prod-db-pitr", "--trigger", "schedule", "--reports", "s3://evidence/prod"])
    );
    let tags = moto.python(
        "import boto3\ns = boto3.client('scheduler')\n\
         arn = s.get_schedule_group(Name='drills')['Arn']\nprint(s.list_tags_for_resource(ResourceArn=arn)['Tags'])",
    );
    assert!(tags.contains("'stackdrill:managed', 'Value': 'true'"), "{tags}");

    // Idempotent: nothing to do, nothing sent.
    let (code, out, err) = deploy(&moto, dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("0 to create, 0 to update, 0 to delete, 2 unchanged"), "{out}");

    // A hand-made schedule in the group is left alone; one without the group is never looked at.
    moto.python(
        "import boto3\nboto3.client('scheduler').create_schedule(GroupName='drills', Name='by-hand', \
         ScheduleExpression='rate(1 day)', FlexibleTimeWindow={'Mode': 'OFF'}, \
         Target={'Arn': 'arn:aws:sqs:ap-southeast-1:123456789012:q', 'RoleArn': 'arn:aws:iam::123456789012:role/r'})",
    );
    // One drill moves to a rate, the other loses its drill file.
    let f = dir.path().join("drills/prod-db-pitr.yaml");
    let body = std::fs::read_to_string(&f).unwrap();
    let line = body.lines().find(|l| l.starts_with("schedule:")).unwrap().to_string();
    std::fs::write(&f, body.replace(&line, "schedule: { cron: \"rate(12 hours)\", timezone: Asia/Singapore }"))
        .unwrap();
    std::fs::remove_file(dir.path().join("drills/prod-aurora-pitr.yaml")).unwrap();
    let (code, out, err) = deploy(&moto, dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("~ update drills/prod-db-pitr  rate(12 hours) Asia/Singapore  done"), "{out}");
    assert!(out.contains("expression: \"cron(0 3 1 * ? *)\" -> \"rate(12 hours)\""), "{out}");
    assert!(out.contains("- delete drills/prod-aurora-pitr"), "{out}");
    assert!(out.contains("1 to update, 1 to delete, 0 unchanged"), "{out}");
    let live = schedules(&moto, "drills");
    assert_eq!(live["prod-db-pitr"][0], "rate(12 hours)");
    assert!(live.get("prod-aurora-pitr").is_none(), "{live}");
    assert!(live.get("by-hand").is_some(), "a schedule stackdrill did not create was deleted: {live}");
    let (_, out, _) = deploy(&moto, dir.path(), &[]);
    assert!(out.contains("0 to create, 0 to update, 0 to delete, 1 unchanged"), "{out}");
}

#[test]
fn deploy_refuses_a_group_or_schedule_it_does_not_own() {
    let moto = Moto::start();
    let dir = deploy_dir();
    moto.python("import boto3\nboto3.client('scheduler').create_schedule_group(Name='drills')");
    let (code, out, err) = deploy(&moto, dir.path(), &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("schedule group `drills` exists but is not stackdrill's"), "{err}");
    assert!(schedules(&moto, "drills").as_object().unwrap().is_empty(), "nothing may be created");

    // A stackdrill group holding a same-named schedule someone made by hand: refused, not overwritten.
    std::fs::write(dir.path().join("schedule.yaml"), DEPLOY.replace("group: drills", "group: drills2")).unwrap();
    moto.python(
        "import boto3\ns = boto3.client('scheduler')\n\
         s.create_schedule_group(Name='drills2', Tags=[{'Key': 'stackdrill:managed', 'Value': 'true'}])\n\
         s.create_schedule(GroupName='drills2', Name='prod-db-pitr', ScheduleExpression='rate(1 day)', \
         FlexibleTimeWindow={'Mode': 'OFF'}, Target={'Arn': 'arn:aws:sqs:ap-southeast-1:123456789012:q', \
         'RoleArn': 'arn:aws:iam::123456789012:role/r'})",
    );
    let (code, out, err) = deploy(&moto, dir.path(), &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("! refused drills2/prod-db-pitr"), "{out}");
    assert_eq!(schedules(&moto, "drills2")["prod-db-pitr"][0], "rate(1 day)", "the hand-made schedule was changed");

    // A bad deploy file names file, line, column and key.
    std::fs::write(dir.path().join("schedule.yaml"), DEPLOY.replace("subnet-0a1b2c3d4e5f60002", "sub-2")).unwrap();
    let (code, _, err) = deploy(&moto, dir.path(), &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("schedule.yaml:6:39:") && err.contains("`ecs.subnets[1]`"), "{err}");
}

/// The demo drill, scheduled hourly, with its schedule state saying it last ran `hours_ago` hours before the
/// latest occurrence (as if no scheduler had run since).
fn scheduled_demo(demo: &Demo, hours_ago: i64) -> PathBuf {
    let body = std::fs::read_to_string(&demo.drill).unwrap();
    // Not a demo drill: a scheduled run of one would be a `demo` run, and this is about the scheduler's.
    let body: String = body
        .lines()
        .filter(|l| !l.starts_with("schedule:") && !l.starts_with("demo:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = demo.root.path().join("hourly.yaml");
    std::fs::write(&file, format!("{body}schedule: {{ cron: \"0 * * * *\", timezone: Asia/Singapore }}\n")).unwrap();
    let now = chrono::Utc::now();
    let hour = now - chrono::Duration::seconds(now.timestamp() % 3600);
    let state = demo.state().join("schedule");
    std::fs::create_dir_all(&state).unwrap();
    let at = (hour - chrono::Duration::hours(hours_ago)).to_rfc3339();
    std::fs::write(
        state.join("local-demo.json"),
        format!(
            r#"{{"drill":"local-demo","occurrence":"{at}","started_at":"{at}","finished_at":"{at}","result":"passed","report":null}}"#
        ),
    )
    .unwrap();
    file
}

fn scheduler(demo: &Demo, file: &Path, extra: &[&str]) -> Child {
    std::process::Command::new(bin_path())
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["schedule", "run"])
        .arg(file)
        .arg("--reports")
        .arg(&demo.reports)
        .args(["--jitter", "0s", "--grace", "1s", "--heartbeat", "1s"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stderr until a line contains `until`, then sends `signal`; returns everything read and
/// the exit code.
fn read_until_then(mut child: Child, until: &str, signal: nix::sys::signal::Signal) -> (Option<i32>, String) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let started = Instant::now();
    let mut sent = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) {
        seen.push_str(&line);
        seen.push('\n');
        if !sent && line.contains(until) {
            nix::sys::signal::kill(pid, signal).unwrap();
            sent = true;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "scheduler did not finish:\n{seen}");
    }
    assert!(sent, "never saw `{until}`:\n{seen}");
    (child.wait().unwrap().code(), seen)
}

#[test]
fn after_downtime_run_once_runs_the_drill_once_and_skip_waits_for_the_next_occurrence() {
    let demo = Demo::start();
    let before = demo.reports().len();
    let file = scheduled_demo(&demo, 3);

    let child = scheduler(&demo, &file, &["--catch-up", "skip"]);
    let (code, log) = read_until_then(child, "heartbeat", nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("3 occurrence(s) up to") && log.contains("catch-up policy `skip`"), "{log}");
    assert_eq!(demo.reports().len(), before, "skip must not run the drill:\n{log}");

    let file = scheduled_demo(&demo, 3);
    let child = scheduler(&demo, &file, &["--catch-up", "run-once"]);
    let (code, log) = read_until_then(child, "local-demo: PASSED", nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("2 earlier occurrence(s) missed"), "{log}");
    let reports = demo.reports();
    assert_eq!(reports.len(), before + 1, "run-once runs exactly once:\n{log}");
    let r = reports.last().unwrap();
    assert_eq!(r["trigger"], "schedule");
    assert_eq!(r["result"], "passed");
    let scheduled = chrono::DateTime::parse_from_rfc3339(r["scheduled_for"].as_str().unwrap()).unwrap();
    assert_eq!(scheduled.timestamp() % 3600, 0, "the run is for the latest hourly occurrence: {scheduled}");
    assert!(r["next_scheduled"].is_string(), "{r}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo.state().join("schedule/local-demo.json")).unwrap()).unwrap();
    assert_eq!(state["result"], "passed");
    assert_eq!(state["report"], r["id"]);
    demo.assert_no_scratch_left();
}

#[test]
fn two_schedulers_one_drill_never_overlap_and_sigterm_mid_drill_tears_down_and_reports() {
    use nix::sys::signal::{Signal, kill};
    let demo = Demo::start();
    let before = demo.reports().len();
    let file = scheduled_demo(&demo, 2);
    let mut children = [scheduler(&demo, &file, &[]), scheduler(&demo, &file, &[])];
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, c) in children.iter_mut().enumerate() {
        let (tx, stderr) = (tx.clone(), c.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send((i, line));
            }
        });
    }
    drop(tx);
    let pid = |c: &Child| nix::unistd::Pid::from_raw(c.id() as i32);
    let mut logs = [String::new(), String::new()];
    let (mut runner, mut refused) = (None, None);
    let started = Instant::now();
    // Both want the missed occurrence; the drill lock lets one run, the other reports the overlap. Then
    // SIGTERM both while the restored scratch starts up.
    while runner.is_none() || refused.is_none() {
        let Ok((i, line)) = rx.recv_timeout(Duration::from_secs(60)) else { break };
        logs[i].push_str(&line);
        logs[i].push('\n');
        if line.contains("[local-demo] ready: started") {
            runner = Some(i);
        }
        if line.contains("skipped the occurrence") && line.contains("already running") {
            refused = Some(i);
        }
        assert!(started.elapsed() < Duration::from_secs(180), "{logs:?}");
    }
    for c in &children {
        kill(pid(c), Signal::SIGTERM).unwrap();
    }
    while let Ok((i, line)) = rx.recv_timeout(Duration::from_secs(120)) {
        logs[i].push_str(&line);
        logs[i].push('\n');
    }
    let codes: Vec<Option<i32>> = children.iter_mut().map(|c| c.wait().unwrap().code()).collect();
    let (Some(runner), Some(refused)) = (runner, refused) else {
        panic!("one run and one refusal expected: {logs:#?}")
    };
    assert_ne!(runner, refused, "{logs:#?}");
    assert_eq!(codes, [Some(0), Some(0)], "{logs:#?}");
    let log = &logs[runner];
    assert!(log.contains("stopping: no new runs; 1 running drill(s) tear down and write their reports"), "{log}");
    let reports = demo.reports();
    assert_eq!(reports.len(), before + 1, "one run, one report:\n{log}");
    let r = reports.last().unwrap();
    assert_eq!(r["result"], "error", "{r}");
    assert!(r["reason"].as_str().unwrap().starts_with("interrupted by the operator"), "{r}");
    assert_eq!(r["trigger"], "schedule");
    assert_eq!(r["teardown"]["status"], "done", "{r}");
    demo.assert_no_scratch_left();
}

#[test]
fn several_drills_run_with_bounded_concurrency_then_one_scorecard_and_schedule_list_shows_them() {
    let demo = Demo::start();
    // A second drill of the same data whose invariant cannot hold: it fails, the fleet exits 1.
    let body = std::fs::read_to_string(&demo.drill).unwrap();
    let strict = demo.root.path().join("strict.yaml");
    std::fs::write(
        &strict,
        body.replace("name: local-demo", "name: local-demo-strict").replace(
            "      expect: { min: 1 }",
            "      expect: { min: 1 }\n  - sql:\n      name: a billion accounts\n      query: select count(*) from accounts\n      expect: { min: 1000000000 }",
        ),
    )
    .unwrap();
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(&demo.drill)
        .arg(&strict)
        .args(["--concurrency", "2", "--reports"])
        .arg(&demo.reports)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let card = &stdout[stdout.find("DRILL  ").expect("a scorecard")..];
    let row =
        |name: &str| card.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{card}"));
    assert!(row("local-demo").contains("PASSED") && row("local-demo").contains("met "), "{card}");
    assert!(row("local-demo-strict").contains("FAILED"), "{card}");
    assert!(row("local-demo-strict").contains(".md"), "the report is named: {card}");
    assert!(card.contains("2 drill(s): 1 passed, 1 failed, 0 error, 0 could not run"), "{card}");

    let out = stackdrill()
        .args(["schedule", "list"])
        .arg(&demo.drill)
        .arg(&strict)
        .args(["--output", "json", "--reports"])
        .arg(&demo.reports)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |n: &str| rows.as_array().unwrap().iter().find(|r| r["drill"] == n).unwrap().clone();
    assert_eq!(find("local-demo")["status"], "ok");
    assert_eq!(find("local-demo")["aws_expression"], "cron(0 3 * * ? *)");
    assert_eq!(find("local-demo")["next"].as_array().unwrap().len(), 3);
    // Never passed: overdue since its first occurrence is behind it... or not yet due; never `ok`.
    assert_ne!(find("local-demo-strict")["status"], "ok");
    assert_eq!(find("local-demo-strict")["last_run"]["result"], "failed");

    // `drill run --due` (the CI cron): the hourly drill has never run, so it is due; the strict one ran after its
    // latest (daily) occurrence, so it is not. Right after, nothing is due.
    let cwd = demo.root.path().join("repo");
    std::fs::create_dir_all(cwd.join("drills")).unwrap();
    let hourly = std::fs::read_to_string(scheduled_demo(&demo, 0)).unwrap();
    std::fs::write(cwd.join("drills/hourly.yaml"), hourly.replace("name: local-demo", "name: hourly")).unwrap();
    std::fs::copy(&strict, cwd.join("drills/strict.yaml")).unwrap();
    let due = || {
        stackdrill()
            .current_dir(&cwd)
            .env("STACKDRILL_STATE_DIR", demo.state())
            .args(["drill", "run", "--due", "--reports"])
            .arg(&demo.reports)
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap()
    };
    let out = due();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).contains("due: hourly\n"), "only the hourly drill is due: {}", text(&out.stderr));
    let out = due();
    assert!(out.status.success() && text(&out.stdout).contains("no drill is due"), "{}", text(&out.stdout));
}

fn promtool() -> &'static str {
    let ok = std::process::Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "promtool is missing: install it with `apt-get install prometheus` (scripts/install-test-deps does)");
    "promtool"
}

/// `promtool check metrics` on `text`: its verdict and whatever it complained about.
fn promtool_check_metrics(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", text_of(&out.stdout), text_of(&out.stderr)))
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `GET /metrics` on `port`: the status line and the body.
fn get_metrics(port: u16) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// Prometheus: `drill run --metrics-file` writes, and `schedule run --metrics-listen` serves, OpenMetrics
/// text that `promtool check metrics` accepts without a lint, with per-drill series and the scheduler's
/// heartbeat; the alert-rule example passes `promtool check rules`.
#[test]
fn metrics_file_and_endpoint_pass_promtool_and_the_alert_rules_check() {
    let demo = Demo::start();
    let metrics = demo.root.path().join("textfile/stackdrill.prom");
    // A run of the drill that is not a demo (metrics leave demo runs out): the file without `demo: true`.
    let real = demo.root.path().join("real.yaml");
    std::fs::write(&real, std::fs::read_to_string(&demo.drill).unwrap().replace("\ndemo: true\n", "\n")).unwrap();
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(&real)
        .arg("--reports")
        .arg(&demo.reports)
        .args(["--metrics-file", metrics.to_str().unwrap()])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text_of(&out.stderr));
    let text = std::fs::read_to_string(&metrics).unwrap();
    for line in [
        "stackdrill_drill_last_passed{drill=\"local-demo\"} 1.0",
        "stackdrill_drill_checks{drill=\"local-demo\",status=\"passed\"} 14.0",
        "stackdrill_drill_overdue{drill=\"local-demo\"} 0.0",
        "stackdrill_store_verified 1.0",
    ] {
        assert!(text.contains(line), "`{line}` not in:\n{text}");
    }
    let (ok, said) = promtool_check_metrics(&text);
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{text}");

    let file = scheduled_demo(&demo, 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = scheduler(&demo, &file, &["--metrics-listen", &format!("127.0.0.1:{port}")]);
    let started = Instant::now();
    let body = loop {
        if let Some((status, body)) = get_metrics(port)
            && body.contains("stackdrill_scheduler_heartbeat_timestamp_seconds ")
        {
            assert!(status.contains("200"), "{status}");
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the scheduler never served /metrics");
        std::thread::sleep(Duration::from_millis(200));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(body.contains("stackdrill_drill_last_passed{drill=\"local-demo\"} 1.0"), "{body}");
    let (ok, said) = promtool_check_metrics(&body);
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{body}");

    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/prometheus/alerts.yml");
    let out = std::process::Command::new(promtool()).args(["check", "rules"]).arg(&rules).output().unwrap();
    assert!(out.status.success(), "{}{}", text_of(&out.stdout), text_of(&out.stderr));
    assert!(text_of(&out.stdout).contains("SUCCESS: 8 rules found"), "{}", text_of(&out.stdout));
}
