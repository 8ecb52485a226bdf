//! What reaches people and CI: exit codes when stdout closes early, terminal-safe text, colour.

use super::harness::{Scratch, command, text};

const GOOD: &str = "restore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                    objectives: { rto: 1m, rpo: 1m }\n";

/// Runs stackdrill in `dir` with `args`, its stdout a pipe whose reading end is already closed (as
/// `stackdrill … | (exec 0<&-; true)` or `| head -1` once head has gone); returns the exit code and stderr.
fn with_closed_stdout(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    let out = command()
        .current_dir(dir)
        .args(args)
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run stackdrill");
    (out.status.code(), text(&out.stderr))
}

/// A closed pipe on stdout must not turn a failure into exit 0: the command ends with the code it would have
/// had, quietly (no panic, no `Broken pipe` error).
#[test]
fn a_closed_stdout_keeps_the_failure_exit_code() {
    let dir = Scratch::new();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "restore: {}\nobjectivs: 1\n").unwrap();
    // Text: `ok good.yaml` goes to the closed stdout first, the errors to stderr.
    let (code, stderr) = with_closed_stdout(dir.path(), &["drill", "validate", "good.yaml", "bad.yaml"]);
    assert_eq!(code, Some(2), "a file with problems exits 2 even with stdout closed; stderr:\n{stderr}");
    assert!(stderr.contains("bad.yaml"), "the problems are still on stderr:\n{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.to_lowercase().contains("broken pipe"), "{stderr}");
    // JSON: the whole answer goes to the closed stdout.
    let (code, stderr) = with_closed_stdout(dir.path(), &["drill", "validate", "--output", "json", "bad.yaml"]);
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    // And a success stays a success.
    let (code, stderr) = with_closed_stdout(dir.path(), &["drill", "validate", "good.yaml"]);
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
}

/// `--color always` colours the `error:` of a problem even off a terminal; `never`, `NO_COLOR` (under
/// `auto`) and a pipe (under `auto`) leave it plain.
#[test]
fn colour_follows_the_flag_and_no_color() {
    let dir = Scratch::new();
    std::fs::write(dir.path().join("bad.yaml"), "restore: {}\nobjectivs: 1\n").unwrap();
    let run = |flags: &[&str], no_color: bool| {
        let mut c = command();
        if !no_color {
            c.env_remove("NO_COLOR");
        }
        let out = c.current_dir(dir.path()).args(flags).args(["drill", "validate", "bad.yaml"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        text(&out.stderr)
    };
    let always = run(&["--color", "always"], true);
    assert!(always.contains("\u{1b}[1;31merror:\u{1b}[0m"), "{always:?}");
    for (flags, no_color) in [(&["--color", "never"][..], false), (&[][..], true), (&[][..], false)] {
        let plain = run(flags, no_color);
        assert!(!plain.contains('\u{1b}') && plain.contains("error:"), "{flags:?} NO_COLOR={no_color}: {plain:?}");
    }
}

/// A failure before anything was printed still answers `--output json` with JSON on stdout.
#[test]
fn an_unknown_drill_with_output_json_prints_a_json_error() {
    let dir = Scratch::new();
    std::fs::create_dir_all(dir.path().join("drills")).unwrap();
    std::fs::write(dir.path().join("drills/orders.yaml"), GOOD).unwrap();
    let out = command().current_dir(dir.path()).args(["drill", "run", "ordres", "--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["schema"], "stackdrill.error/v1");
    assert!(v["error"].as_str().unwrap().contains("no drill named `ordres`"), "{v}");
    assert!(v["hint"].as_str().unwrap().contains("did you mean `orders`?"), "{v}");
    assert_eq!(v["exit_code"], 2);
}

/// `stack plan` of a misspelt stack names the stacks there are.
#[test]
fn an_unknown_stack_names_the_known_ones() {
    let out = super::harness::stackdrill()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["stack", "plan", "prodution"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("hint: did you mean `production`? known stacks: production"), "{stderr}");
}

/// `--strict` never prints `ok` for a file it then reports errors for.
#[test]
fn strict_validate_says_ok_only_for_files_without_errors() {
    let dir = Scratch::new();
    let body = "restore:\n  local-postgres: { base-backups: /nonexistent/b, wal-archive: w, scratch-root: s }\n\
                objectives: { rto: 1m, rpo: 1m }\n";
    std::fs::write(dir.path().join("missing.yaml"), body).unwrap();
    let out =
        command().current_dir(dir.path()).args(["drill", "validate", "--strict", "missing.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("ok"), "stdout: {}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("error:") && text(&out.stderr).contains("/nonexistent/b"),
        "{}",
        text(&out.stderr)
    );
    // Without --strict the same file is ok, with a warning.
    let out = command().current_dir(dir.path()).args(["drill", "validate", "missing.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("ok    missing.yaml"), "{}", text(&out.stdout));
}

/// A drill on a pseudo-terminal that reports no columns (`script` without a terminal of its own, as CI
/// runners give): every phase's end stays as its own line (the plan's target and backup with it), the
/// verdict starts a line of its own (stderr and stdout do not run together), and on a terminal the verdict
/// is coloured.
#[cfg(feature = "slow-tests")]
#[test]
fn on_a_zero_column_pty_every_phase_line_stays_and_the_verdict_is_its_own_coloured_line() {
    let demo = super::harness::Demo::start();
    let cmd = format!(
        "{} drill run {} --reports {}",
        super::harness::bin_path().display(),
        demo.drill.display(),
        demo.reports.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("CI")
        .env_remove("STACKDRILL_REPORTS")
        .env("STACKDRILL_STATE_DIR", demo.state())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script(1)");
    let tty = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{tty}");
    let lines: Vec<&str> = tty.split(['\r', '\n']).filter(|l| !l.is_empty()).collect();
    for phase in ["plan", "restore", "ready", "verify", "teardown"] {
        let want = format!("[local-demo] {phase}: passed in ");
        assert!(lines.iter().any(|l| l.contains(&want)), "no `{want}` line in:\n{tty}");
    }
    let plan = lines.iter().find(|l| l.contains("[local-demo] plan: passed in ")).unwrap();
    assert!(plan.contains("target"), "the plan's line keeps its target and backup: {plan}");
    let verdict = lines.iter().find(|l| l.contains("PASSED")).expect("a verdict line");
    assert!(verdict.starts_with("local-demo: \u{1b}[32mPASSED\u{1b}[0m  RTO "), "{verdict:?}\n{tty}");
}

/// A FIFO given as `--key` (to `report verify`, of a store or a pack) or to `keys trust` is refused at once
/// with an error that names it, never a verification hung on a reader: key files are read as user files (a
/// regular file of bounded size, opened without blocking).
#[test]
fn a_fifo_as_key_file_is_refused_at_once() {
    let dir = Scratch::new();
    let fifo = dir.path().join("key.pub");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let runs: [Vec<std::ffi::OsString>; 3] = [
        vec![
            "report".into(),
            "verify".into(),
            "--reports".into(),
            reports.clone().into(),
            "--key".into(),
            fifo.clone().into(),
        ],
        vec![
            "report".into(),
            "verify".into(),
            "--pack".into(),
            reports.clone().into(),
            "--key".into(),
            fifo.clone().into(),
        ],
        vec!["keys".into(), "trust".into(), fifo.clone().into()],
    ];
    for args in runs {
        let started = std::time::Instant::now();
        let out = super::harness::stackdrill()
            .env("STACKDRILL_STATE_DIR", dir.path())
            .args(&args)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{args:?} took {:?}", started.elapsed());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("key.pub") && stderr.contains("is a FIFO, not a regular file"), "{args:?}: {stderr}");
    }
}
