//! `schedule list | run | deploy`: the drills' cadence, kept on one machine by a local scheduler, or handed to
//! EventBridge Scheduler for a fleet.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::args::{ScheduleRunArgs, StoreArgs};
use super::{Failure, exit_codes};
use crate::config::{DrillSpec, load_drill};
use crate::drill::RunOptions;
use crate::schedule::daemon::{self, Decision, State};
use crate::ui::Printer;

/// The drill files named (names or paths), or every file in `drills/`.
fn drill_files(names: &[String]) -> Result<Vec<PathBuf>, Failure> {
    if names.is_empty() {
        super::drill::yaml_files("drills")
    } else {
        names.iter().map(|n| super::drill::resolve_drill(n)).collect()
    }
}

/// The scheduled drills among `files`, and a line per file that does not load.
fn scheduled(files: &[PathBuf]) -> (Vec<DrillSpec>, Vec<String>) {
    let mut specs = Vec::new();
    let mut bad = Vec::new();
    for f in files {
        match load_drill(f) {
            Ok(s) if s.schedule.is_some() => specs.push(s),
            Ok(_) => {}
            Err(errs) => bad.extend(errs.iter().map(|e| e.to_string())),
        }
    }
    (specs, bad)
}

/// A span in its two largest units: `6d 19h`, `17h 22m`, `4m 10s`, `12s`.
fn span(d: chrono::Duration) -> String {
    let s = d.num_seconds().unsigned_abs();
    let parts = [(s / 86_400, "d"), (s / 3600 % 24, "h"), (s / 60 % 60, "m"), (s % 60, "s")];
    let first = parts.iter().position(|(v, _)| *v > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .take(2)
        .filter(|(v, _)| *v > 0 || first == 3)
        .map(|(v, u)| format!("{v}{u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Serialize)]
struct ListRow {
    drill: String,
    file: String,
    expression: String,
    timezone: String,
    /// The same schedule as EventBridge Scheduler takes it, or why it cannot.
    aws_expression: Option<String>,
    aws_expression_error: Option<String>,
    next: Vec<DateTime<Utc>>,
    cadence_seconds: Option<i64>,
    last_run: Option<LastRun>,
    last_passed_at: Option<DateTime<Utc>>,
    /// `ok`, `overdue` (no pass within the cadence), `never-run`.
    status: &'static str,
}

#[derive(Serialize)]
struct LastRun {
    id: String,
    result: String,
    at: DateTime<Utc>,
}

pub(super) async fn list(
    names: &[String],
    count: usize,
    store: &StoreArgs,
    aws: &crate::aws::AwsSettings,
    printer: Printer,
) -> Result<u8, Failure> {
    let (specs, bad) = scheduled(&drill_files(names)?);
    for b in &bad {
        eprintln!("error: {b}");
    }
    let view = super::report::open(store, aws).await?;
    let entries: Vec<crate::report::chain::Entry> = crate::report::chain::read(&view.dir)
        .map_err(|e| Failure::could_not_run(anyhow!("cannot read `{}`: {e}", view.dir.display()), None))?
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.kind == "report")
        .collect();
    let now = Utc::now();
    let mut rows = Vec::new();
    for s in &specs {
        let Some(sched) = &s.schedule else { continue };
        let mine: Vec<_> = entries.iter().filter(|e| e.drill == s.name).collect();
        let last_run =
            mine.last().and_then(|e| Some(LastRun { id: e.id.clone(), result: e.result.clone(), at: e.at_utc()? }));
        let last_passed_at = mine.iter().rev().filter(|e| e.result == "passed").find_map(|e| e.at_utc());
        let mut next = Vec::new();
        let mut t = now;
        while next.len() < count {
            let Some(n) = crate::schedule::next_after(sched, t) else { break };
            next.push(n);
            t = n;
        }
        let (aws_expression, aws_expression_error) = match sched.expr.to_aws() {
            Ok(e) => (Some(e), None),
            Err(e) => (None, Some(e)),
        };
        let status = match (last_run.is_some(), crate::schedule::overdue(sched, last_passed_at, now)) {
            (false, _) => "never-run",
            (true, Some(true)) => "overdue",
            _ => "ok",
        };
        rows.push(ListRow {
            drill: s.name.clone(),
            file: s.file.display().to_string(),
            expression: sched.cron.clone(),
            timezone: sched.timezone.to_string(),
            aws_expression,
            aws_expression_error,
            next,
            cadence_seconds: crate::schedule::cadence(sched, now).map(|d| d.num_seconds()),
            last_run,
            last_passed_at,
            status,
        });
    }
    if printer.is_json() {
        printer.json(&rows);
    } else if rows.is_empty() {
        printer.line("no drill has a `schedule:`");
    } else {
        let mut body = Vec::new();
        for r in &rows {
            let tz: chrono_tz::Tz = r.timezone.parse().unwrap_or(chrono_tz::UTC);
            let local = |n: &DateTime<Utc>| n.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
            let next = r
                .next
                .first()
                .map(|n| format!("{} (in {})", local(n), span(*n - now)))
                .unwrap_or_else(|| "never".into());
            let last = r
                .last_run
                .as_ref()
                .map(|l| format!("{} {} ago", l.result, span(now - l.at)))
                .unwrap_or_else(|| "-".into());
            let status = match r.status {
                "overdue" => format!(
                    "OVERDUE: no pass within {}",
                    r.cadence_seconds.map(|c| span(chrono::Duration::seconds(c))).unwrap_or_default()
                ),
                s => s.to_string(),
            };
            body.push(vec![r.drill.clone(), format!("{} ({})", r.expression, r.timezone), next, last, status]);
            for n in r.next.iter().skip(1) {
                body.push(vec![String::new(), String::new(), local(n), String::new(), String::new()]);
            }
        }
        printer.line(crate::ui::table(&["DRILL", "SCHEDULE", "NEXT", "LAST RUN", "STATUS"], &body));
    }
    Ok(if bad.is_empty() { exit_codes::OK } else { exit_codes::COULD_NOT_RUN })
}

pub(crate) struct DaemonSettings {
    pub(crate) args: ScheduleRunArgs,
    pub(crate) reports: PathBuf,
    pub(crate) signer: Option<Arc<crate::report::Signer>>,
    pub(crate) aws: crate::aws::AwsSettings,
    pub(crate) quiet: bool,
}

/// How a scheduled run ended, for the state record and the log.
enum Ended {
    Ran(Box<crate::drill::runner::Outcome>),
    /// Another run of the drill holds its lock (another scheduler, a manual `drill run`).
    Overlap(String),
    /// The scheduler was stopped before the run started.
    NotStarted,
    CouldNotRun(String),
}

pub(super) async fn run(s: DaemonSettings) -> Result<u8, Failure> {
    let a = &s.args;
    let files = drill_files(&a.drills)?;
    let (specs, bad) = scheduled(&files);
    for b in &bad {
        eprintln!("error: {b}");
    }
    if !bad.is_empty() {
        return Err(Failure::could_not_run(
            anyhow!("{} problem(s) in drill files; the scheduler did not start", bad.len()),
            None,
        ));
    }
    if specs.is_empty() {
        return Err(Failure::could_not_run(
            anyhow!("no drill to schedule: none of {} file(s) has a `schedule:`", files.len()),
            Some("add `schedule: { cron: \"0 3 * * *\", timezone: Asia/Singapore }` to a drill file".into()),
        ));
    }
    let grace = chrono::Duration::from_std(a.grace).unwrap_or(chrono::Duration::minutes(5));
    let started = Utc::now();
    let cancel = super::drill::cancel_on_signals();
    let events = crate::ui::log_sink(s.quiet);
    let permits = Arc::new(tokio::sync::Semaphore::new(a.concurrency as usize));
    let mut set: tokio::task::JoinSet<(String, DateTime<Utc>, Ended)> = tokio::task::JoinSet::new();
    let mut running: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut specs = specs;
    let mut last_problems: Vec<String> = vec![];
    let mut next_heartbeat = tokio::time::Instant::now();
    tracing::info!(
        drills = specs.len(),
        catch_up = ?a.catch_up,
        jitter = %humantime::format_duration(a.jitter),
        concurrency = a.concurrency,
        "scheduler started: {} drill(s): {}",
        specs.len(),
        specs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    loop {
        // Re-read the drill files: an edited schedule applies without a restart; a broken file keeps its
        // last good version and is reported once.
        let (fresh, problems) = scheduled(&files);
        if problems != last_problems {
            for p in &problems {
                tracing::error!("{p} (keeping the last good version of the file)");
            }
            last_problems = problems;
        }
        for f in fresh {
            match specs.iter_mut().find(|x| x.file == f.file) {
                Some(old) => *old = f,
                None => specs.push(f),
            }
        }

        let now = Utc::now();
        for spec in &specs {
            let Some(sched) = &spec.schedule else { continue };
            if running.contains_key(&spec.name) {
                continue;
            }
            let state = State::read(&spec.name);
            match daemon::decide(sched, state.as_ref(), started, now, grace, a.catch_up) {
                Decision::Wait => {}
                Decision::Skip { latest, missed } => {
                    tracing::warn!(
                        drill = %spec.name,
                        missed,
                        "{}: {missed} occurrence(s) up to {latest} missed while no scheduler ran; catch-up policy \
                         `skip`: next run at {}",
                        spec.name,
                        crate::schedule::next_after(sched, now).map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into())
                    );
                    let st = State {
                        drill: spec.name.clone(),
                        occurrence: latest,
                        started_at: None,
                        finished_at: Some(now),
                        result: Some(format!("skipped: {missed} missed occurrence(s), catch-up policy skip")),
                        report: None,
                    };
                    record(&st);
                }
                Decision::Run { occurrence, missed } => {
                    if missed > 0 || now - occurrence > grace {
                        tracing::warn!(
                            drill = %spec.name,
                            missed,
                            "{}: running once for the occurrence at {occurrence} ({} late); {missed} earlier \
                             occurrence(s) missed",
                            spec.name,
                            span(now - occurrence)
                        );
                    }
                    record(&State {
                        drill: spec.name.clone(),
                        occurrence,
                        started_at: Some(now),
                        finished_at: None,
                        result: None,
                        report: None,
                    });
                    running.insert(spec.name.clone(), occurrence);
                    let opts = RunOptions {
                        target: None,
                        reports_dir: s.reports.clone(),
                        trigger: "schedule".into(),
                        aws: s.aws.clone(),
                        signer: s.signer.clone(),
                        participants: vec![],
                        retain: a.report.retain,
                        scheduled_for: Some(occurrence),
                    };
                    let jitter = a.jitter.mul_f64(rand::random::<f64>());
                    let (spec, events, cancel, permits) =
                        (spec.clone(), events.clone(), cancel.clone(), permits.clone());
                    set.spawn(async move {
                        let name = spec.name.clone();
                        let ended = run_one(spec, opts, jitter, events, cancel, permits).await;
                        (name, occurrence, ended)
                    });
                }
            }
        }

        // The next occurrence of a drill not running now: what the heartbeat reports and the sleep waits for.
        let next = specs
            .iter()
            .filter(|d| !running.contains_key(&d.name))
            .filter_map(|d| {
                Some((daemon::next_due(d.schedule.as_ref()?, State::read(&d.name).as_ref(), started)?, &d.name))
            })
            .min();
        if tokio::time::Instant::now() >= next_heartbeat {
            tracing::info!(
                running = running.len(),
                "heartbeat: {} running{}; next: {}",
                running.len(),
                if running.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", running.keys().cloned().collect::<Vec<_>>().join(", "))
                },
                next.map(|(t, d)| format!("{d} at {}", t.to_rfc3339())).unwrap_or_else(|| "none".into())
            );
            next_heartbeat = tokio::time::Instant::now() + a.heartbeat;
        }

        // Sleep until the next occurrence, the next heartbeat, a run ending, or a stop; at most a minute,
        // so edited files are picked up.
        let mut wait = std::time::Duration::from_secs(60).min(next_heartbeat - tokio::time::Instant::now());
        if let Some((t, _)) = next {
            wait = wait.min((t - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(10));
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(joined) = set.join_next(), if !set.is_empty() => finish(joined, &mut running),
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::warn!(
        running = running.len(),
        "stopping: no new runs; {} running drill(s) tear down and write their reports",
        running.len()
    );
    while let Some(joined) = set.join_next().await {
        finish(joined, &mut running);
    }
    tracing::info!("scheduler stopped");
    Ok(exit_codes::OK)
}

fn record(st: &State) {
    if let Err(e) = st.write() {
        tracing::error!(drill = %st.drill, "cannot record the schedule state: {e}");
    }
}

async fn run_one(
    spec: DrillSpec,
    opts: RunOptions,
    jitter: std::time::Duration,
    events: crate::drill::events::EventSink,
    cancel: crate::drill::Cancel,
    permits: Arc<tokio::sync::Semaphore>,
) -> Ended {
    tokio::select! {
        _ = tokio::time::sleep(jitter) => {}
        _ = cancel.cancelled() => return Ended::NotStarted,
    }
    let _permit = tokio::select! {
        p = permits.acquire_owned() => p,
        _ = cancel.cancelled() => return Ended::NotStarted,
    };
    let name = spec.name.clone();
    let what = format!("a run of drill `{name}`");
    let lock = tokio::task::spawn_blocking(move || crate::lock::acquire("drill", &name, &what, false)).await;
    let _lock = match lock {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => return Ended::Overlap(e.to_string()),
        Err(e) => return Ended::CouldNotRun(e.to_string()),
    };
    tracing::info!(drill = %spec.name, "{}: starting the run for {}", spec.name, opts.scheduled_for.map(|t| t.to_rfc3339()).unwrap_or_default());
    match crate::drill::run(&spec, &opts, events, cancel).await {
        Ok(o) => Ended::Ran(Box::new(o)),
        Err(e) => Ended::CouldNotRun(e.to_string()),
    }
}

fn finish(
    joined: Result<(String, DateTime<Utc>, Ended), tokio::task::JoinError>,
    running: &mut HashMap<String, DateTime<Utc>>,
) {
    let (name, occurrence, ended) = match joined {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("a scheduled run panicked: {e}");
            return;
        }
    };
    running.remove(&name);
    let mut st = State {
        drill: name.clone(),
        occurrence,
        started_at: None,
        finished_at: Some(Utc::now()),
        result: None,
        report: None,
    };
    match ended {
        Ended::Ran(o) => {
            let r = &o.report;
            st.started_at = Some(r.started_at);
            st.result = Some(r.result.as_str().to_string());
            st.report = Some(r.id.clone());
            let line = super::drill::summary(r, o.written.as_ref().ok());
            match r.result {
                crate::report::Verdict::Passed => tracing::info!(drill = %name, result = "passed", "{line}"),
                _ => tracing::error!(drill = %name, result = r.result.as_str(), "{line}"),
            }
            if let Err(e) = &o.written {
                tracing::error!(drill = %name, "the report could not be written: {e}");
            }
        }
        Ended::Overlap(e) => {
            tracing::warn!(drill = %name, "{name}: skipped the occurrence at {occurrence}: {e}");
            st.result = Some(format!("skipped: {e}"));
        }
        Ended::NotStarted => {
            // Left without a result: the next start's catch-up policy decides about it.
            tracing::warn!(drill = %name, "{name}: the run for {occurrence} was not started before the stop");
            st.finished_at = None;
        }
        Ended::CouldNotRun(e) => {
            tracing::error!(drill = %name, "{name}: could not run: {e}");
            st.result = Some(format!("error: {e}"));
        }
    }
    record(&st);
}

/// `schedule task-input`: the RunTask input for `drill run <run_args>` in the schedules' task and network.
pub(super) fn task_input(config: &std::path::Path, run_args: &[String], printer: Printer) -> Result<u8, Failure> {
    let cfg = load_deploy_file(config)?;
    printer.json(&crate::schedule::deploy::run_task_input(&cfg, run_args));
    Ok(exit_codes::OK)
}

fn load_deploy_file(config: &std::path::Path) -> Result<crate::config::DeploySpec, Failure> {
    crate::config::load_deploy(config).map_err(|errs| {
        for e in &errs {
            eprintln!("error: {e}");
        }
        Failure::could_not_run(
            anyhow!("{} problem(s) in `{}`; nothing was changed", errs.len(), config.display()),
            None,
        )
    })
}

pub(super) async fn deploy(
    config: &std::path::Path,
    dry_run: bool,
    aws: &crate::aws::AwsSettings,
    printer: Printer,
) -> Result<u8, Failure> {
    use crate::schedule::deploy::{Deployer, desired};
    let cfg = load_deploy_file(config)?;
    let (specs, bad) = scheduled(&super::drill::yaml_files("drills")?);
    if !bad.is_empty() {
        for b in &bad {
            eprintln!("error: {b}");
        }
        return Err(Failure::could_not_run(
            anyhow!("{} problem(s) in drill files; nothing was changed", bad.len()),
            None,
        ));
    }
    for name in &cfg.drills {
        if !specs.iter().any(|s| &s.name == name) {
            return Err(Failure::could_not_run(
                anyhow!(
                    "`{}` lists drill `{name}`, which has no `schedule:` in drills/ (or does not exist)",
                    config.display()
                ),
                None,
            ));
        }
    }
    let want = desired(&specs, &cfg, Utc::now()).map_err(|e| Failure::could_not_run(e, None))?;
    // The schedules live where the cluster is, unless --region says otherwise.
    let region = aws.region.clone().or_else(|| cfg.cluster.split(':').nth(3).map(str::to_string));
    let sdk = crate::aws::load(&crate::aws::AwsSettings { region, ..aws.clone() }).await;
    crate::aws::check_credentials(&sdk).await.map_err(|e| {
        let hint = e.hint();
        Failure::could_not_run(e, hint)
    })?;
    let d = Deployer::new(&sdk);
    let changes = d.deploy(&cfg, &want, dry_run).await.map_err(|e| {
        let hint = e.hint();
        Failure::could_not_run(e, hint)
    })?;
    let count = |a: &str| changes.iter().filter(|c| c.action == a).count();
    let failed: Vec<_> = changes.iter().filter(|c| c.error.is_some()).collect();
    if printer.is_json() {
        printer.json(&changes);
    } else {
        let sign = |a: &str| match a {
            "create" => "+",
            "update" => "~",
            "delete" => "-",
            "refused" => "!",
            _ => "=",
        };
        for c in &changes {
            let expr = match (&c.expression, &c.timezone) {
                (Some(e), Some(t)) => format!("  {e} {t}"),
                _ => String::new(),
            };
            let state = match (&c.error, c.done) {
                (Some(e), _) => format!("  FAILED: {e}"),
                (None, true) => "  done".into(),
                _ => String::new(),
            };
            printer.line(format!("{} {} {}/{}{expr}{state}", sign(c.action), c.action, cfg.group, c.schedule));
            for d in &c.details {
                printer.line(format!("      {d}"));
            }
        }
        printer.line(format!(
            "{}{} to create, {} to update, {} to delete, {} unchanged, {} refused ({} API calls)",
            if dry_run { "dry run: " } else { "" },
            count("create"),
            count("update"),
            count("delete"),
            count("unchanged"),
            count("refused"),
            d.calls.snapshot().values().sum::<u64>()
        ));
    }
    if !failed.is_empty() || count("refused") > 0 {
        return Ok(exit_codes::NOT_VERIFIED);
    }
    Ok(exit_codes::OK)
}
