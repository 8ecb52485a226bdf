//! `schedule list | run | deploy`: the drills' cadence, kept on one machine by a local scheduler, or handed to
//! EventBridge Scheduler for a fleet.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::args::{ScheduleRunArgs, StoreArgs};
use super::{Failure, exit_codes};
use crate::drill::fleet::{self, Fleet, Reporter};
use crate::report::ReportStore;
use crate::schedule::runner::{self, scheduled, span};
use crate::ui::{Printer, Progress};

/// The drill files named (names or paths), or every file in `drills/`.
fn drill_files(names: &[String]) -> Result<Vec<PathBuf>, Failure> {
    if names.is_empty() {
        super::drill::yaml_files("drills")
    } else {
        names.iter().map(|n| super::drill::resolve_drill(n)).collect()
    }
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
        crate::ui::diag!("error: {b}");
    }
    let view = super::report::open(store, aws).await?;
    let store = super::report::store(&view)?;
    let now = Utc::now();
    let mut rows = Vec::new();
    for s in &specs {
        let Some(sched) = &s.schedule else { continue };
        let last_run = store.last_run(&s.name).and_then(|r| {
            let report = r.report()?;
            Some(LastRun { id: report.id.clone(), result: report.result.as_str().into(), at: report.started_at })
        });
        let last_passed_at = store.last_pass(&s.name).and_then(|r| r.started_at());
        let mut next = Vec::new();
        let mut t = now;
        while next.len() < count {
            let Some(n) = crate::cadence::next_after(sched, t) else { break };
            next.push(n);
            t = n;
        }
        let (aws_expression, aws_expression_error) = match sched.expr.to_aws() {
            Ok(e) => (Some(e), None),
            Err(e) => (None, Some(e)),
        };
        let status = match (last_run.is_some(), crate::cadence::overdue(sched, last_passed_at, now)) {
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
            cadence_seconds: crate::cadence::cadence(sched, now).map(|d| d.num_seconds()),
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

pub(super) async fn run(s: DaemonSettings) -> Result<u8, Failure> {
    let a = &s.args;
    let files = drill_files(&a.drills)?;
    let (specs, bad) = scheduled(&files);
    for b in &bad {
        crate::ui::diag!("error: {b}");
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
    let cancel = super::drill::cancel_on_signals();
    let reporters: Vec<Arc<dyn Reporter>> = vec![
        Arc::new(crate::drill::metrics::CloudWatch { aws: s.aws.clone() }),
        Arc::new(Progress(crate::ui::log_sink(s.quiet))),
        Arc::new(runner::StateLog),
    ];
    let fleet = Fleet::new(
        fleet::Settings {
            store: ReportStore::new(&s.reports, a.report.retain),
            signer: s.signer.clone(),
            aws: s.aws.clone(),
            concurrency: a.concurrency as usize,
            // Another run of the drill (another scheduler, a manual `drill run`) means this occurrence is skipped.
            if_running: fleet::IfRunning::Refuse,
            cancel: cancel.clone(),
        },
        reporters,
    );
    let heartbeat = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(chrono::Utc::now().timestamp_millis()));
    if let Some(addr) = &a.metrics_listen {
        let source = super::metrics::Source {
            reports: s.reports.clone(),
            retain: a.report.retain,
            aws: s.aws.clone(),
            files: files.clone(),
            heartbeat: heartbeat.clone(),
            served: Default::default(),
        };
        super::metrics::listen(addr, source).await?;
    }
    let settings = runner::Settings {
        heartbeat_at: heartbeat,
        files,
        jitter: a.jitter,
        catch_up: a.catch_up.into(),
        grace: chrono::Duration::from_std(a.grace).unwrap_or(chrono::Duration::minutes(5)),
        heartbeat: a.heartbeat,
        aws: s.aws.clone(),
    };
    runner::run(settings, specs, fleet, cancel).await;
    Ok(exit_codes::OK)
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
            crate::ui::diag!("error: {e}");
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
            crate::ui::diag!("error: {b}");
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
