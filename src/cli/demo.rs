//! `stackdrill demo`: set up a real local source with WAL archiving, run `local-demo` against it while a
//! workload writes, print the verdict and the report, and stop the source unless `--keep`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::drill::{cancel_on_signals, exit_code};
use super::{Failure, exit_codes};
use crate::config::load_drill;
use crate::demo::{self, DemoError};
use crate::drill::RunOptions;
use crate::drill::events::Event;
use crate::drill::fleet::{self, Ended, Fleet, Job, Reporter};
use crate::report::ReportStore;
use crate::report::model::PhaseStatus;
use crate::ui::{Printer, Progress, progress_sink, summary};

pub(crate) struct DemoSettings {
    pub(crate) dir: PathBuf,
    pub(crate) scale: u32,
    pub(crate) keep: bool,
    /// Record the demo source's backup posture after the drill.
    pub(crate) posture: bool,
    pub(crate) reports: PathBuf,
    pub(crate) quiet: bool,
    pub(crate) aws: crate::aws::AwsSettings,
    pub(crate) signer: Option<std::sync::Arc<crate::report::Signer>>,
    pub(crate) retain: std::time::Duration,
}

fn demo_failure(e: DemoError) -> Failure {
    let hint = match &e {
        DemoError::Pg(p) => p.hint(),
        DemoError::NotOurs(_) => Some("pass another `--dir`".into()),
        DemoError::Setup { .. } => None,
    };
    Failure::could_not_run(e, hint)
}

/// The demo's fleet of one: metrics and progress as reporters; the verdict is printed by `demo` itself.
fn fleet_for(s: &DemoSettings, printer: Printer, cancel: crate::drill::Cancel) -> Fleet {
    let reporters: Vec<std::sync::Arc<dyn Reporter>> = vec![
        std::sync::Arc::new(crate::drill::metrics::CloudWatch { aws: s.aws.clone() }),
        std::sync::Arc::new(Progress(progress_sink(s.quiet || printer.is_json()))),
    ];
    let settings = fleet::Settings {
        store: ReportStore::new(&s.reports, s.retain),
        signer: s.signer.clone(),
        aws: s.aws.clone(),
        concurrency: 1,
        // The demo holds the drill's lock itself, from before its setup (see `lock_demo`).
        if_running: fleet::IfRunning::Parallel,
        cancel,
    };
    Fleet::new(settings, reporters)
}

/// The lock `drill run` takes for the demo drill: held by a demo from before its setup (which resets the
/// demo directory) to its end, and by any `drill run` of the demo drill file, so two demos — or a demo and a
/// run against a kept source — never destroy each other.
fn lock_demo() -> Result<crate::lock::Lock, Failure> {
    crate::lock::acquire("drill", DEMO_DRILL, &format!("a run of drill `{DEMO_DRILL}` (a demo)"), false).map_err(|e| {
        Failure::could_not_run(
            anyhow!("{e}"),
            Some("wait for it to end; a source kept with `demo --keep` stops with `stackdrill demo --stop`".into()),
        )
    })
}

/// The demo drill's name (drills/local-demo.yaml).
const DEMO_DRILL: &str = "local-demo";

/// `demo --stop`: stops what `demo --keep` left running in `dir` and removes the directory (it refuses a
/// directory that is not a demo's).
pub(super) async fn stop(dir: &std::path::Path, printer: Printer) -> Result<u8, Failure> {
    let dir = std::path::absolute(dir).map_err(|e| Failure::could_not_run(anyhow!("--dir: {e}"), None))?;
    let _lock = lock_demo()?;
    if !dir.exists() {
        printer.line(format!("no demo in {}: nothing to stop", dir.display()));
        return Ok(exit_codes::OK);
    }
    let bin = crate::pg::PgBin::find().map_err(|e| demo_failure(e.into()))?;
    let user = crate::pg::RunAs::resolve("postgres").map_err(|e| demo_failure(e.into()))?;
    demo::reset(&dir, &bin, &user).await.map_err(demo_failure)?;
    printer.line(format!("stopped the demo source in {} and removed the directory", dir.display()));
    Ok(exit_codes::OK)
}

pub(super) async fn demo(s: DemoSettings, printer: Printer) -> Result<u8, Failure> {
    let dir = std::path::absolute(&s.dir).map_err(|e| Failure::could_not_run(anyhow!("--dir: {e}"), None))?;
    let _lock = lock_demo()?;
    let cancel = cancel_on_signals();
    let fleet = fleet_for(&s, printer, cancel.clone());
    let events = fleet.events();
    let name = "local-demo".to_string();
    events.emit(Event::PhaseStarted { drill: name.clone(), phase: "setup" });
    let clock = Instant::now();
    let progress_events = events.clone();
    let progress = move |m: &str| progress_events.progress("local-demo", "setup", m);
    let source = tokio::select! {
        r = demo::prepare(&dir, s.scale, &progress) => r,
        _ = cancel.cancelled() => Err(DemoError::Setup { context: "interrupted", detail: "a signal arrived during setup".into() }),
    };
    let source = match source {
        Ok(src) => src,
        Err(e) => {
            // Leave nothing running behind a failed setup.
            if let (Ok(bin), Ok(user)) = (crate::pg::PgBin::find(), crate::pg::RunAs::resolve("postgres")) {
                let _ = demo::reset(&dir, &bin, &user).await;
            }
            return Err(demo_failure(e));
        }
    };
    events.emit(Event::PhaseFinished {
        drill: name.clone(),
        phase: "setup",
        status: PhaseStatus::Passed,
        seconds: clock.elapsed().as_secs_f64(),
        detail: Some(format!("source on 127.0.0.1:{} with WAL archiving", source.cluster.port)),
    });

    let result = async {
        let path = demo::write_drill_file(&source).map_err(|e| Failure::could_not_run(e, None))?;
        let spec = load_drill(&path).map_err(|errs| {
            Failure::could_not_run(
                anyhow!("{}", errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
                None,
            )
        })?;
        let (stop, workload) = demo::start_workload(&source);
        let opts = RunOptions::new("demo", &s.aws);
        let (mut finished, _) = fleet.run(vec![Job { index: 0, spec, opts, delay: Duration::ZERO }]).await;
        let _ = stop.send(true);
        let transfers = workload.await.unwrap_or(0);
        tracing::info!(transfers, "demo workload stopped");
        match finished.pop().map(|f| f.ended) {
            Some(Ended::Ran { report, written }) => Ok((path, report, written)),
            Some(Ended::CouldNotRun(e)) => Err(e.into()),
            Some(Ended::NotStarted) | None => {
                Err(Failure::could_not_run(anyhow!("the demo drill was stopped before it started"), None))
            }
        }
    }
    .await;
    // While the source still runs: its backup posture, recorded beside the drill's report.
    let posture = match &result {
        Ok(_) if s.posture => Some(record_posture(&s, &source).await),
        _ => None,
    };

    if !s.keep
        && let Err(e) = source.stop().await
    {
        crate::ui::diag!("warning: cannot stop the demo source: {e}");
    }
    let (path, report, written) = result?;
    let code = exit_code(report.result);
    if printer.is_json() {
        printer.json(&report);
    } else {
        printer.line_marked(summary(&report, written.as_ref().ok()), &report.result.as_str().to_uppercase());
        match &posture {
            Some(Ok(r)) => printer.line(format!(
                "backup posture of the demo source: {} (record {}; `stackdrill report controls` shows the control \
                 daily encrypted backups with point-in-time recovery)",
                r.result.as_str(),
                r.id
            )),
            Some(Err(e)) => crate::ui::diag!("warning: the demo's backup posture was not recorded: {e}"),
            None => {}
        }
        if s.keep {
            printer.line(format!(
                "the demo source is still running on 127.0.0.1:{}; run the drill again with `stackdrill drill run {}` \
                 (its runs are demo runs: evidence of nothing); stop it with `stackdrill demo --stop{}`",
                source.cluster.port,
                path.display(),
                if s.dir == std::path::Path::new(".stackdrill/demo") {
                    String::new()
                } else {
                    format!(" --dir {}", s.dir.display())
                }
            ));
        }
    }
    if let Err(e) = &written {
        crate::ui::diag!("error: {e}");
        return Ok(exit_codes::COULD_NOT_RUN);
    }
    Ok(code)
}

/// The demo source as a `backups.yaml` store would declare it: its socket, its base backups, a daily
/// backup and a 10-minute point-in-time recovery lag as objectives.
fn demo_store(source: &demo::Source) -> crate::config::BackupsSpec {
    use crate::config::{BackupStoreSpec, BackupsSpec, LocalPostureSpec, PostureObjectives, PostureSource};
    BackupsSpec {
        stores: vec![BackupStoreSpec {
            name: DEMO_DRILL.into(),
            source: PostureSource::LocalPostgres(LocalPostureSpec {
                socket_dir: source.cluster.dir.clone(),
                port: source.cluster.port,
                user: "postgres".into(),
                database: "postgres".into(),
                base_backups: source.dir.join("base-backups"),
                wal_archive: Some(source.dir.join("wal-archive")),
            }),
            objectives: PostureObjectives {
                max_backup_age: Duration::from_secs(26 * 3600),
                max_pitr_lag: Some(Duration::from_secs(600)),
                min_retention: None,
                max_wal_backlog: None,
                encryption: None,
            },
        }],
    }
}

/// Reads the demo source's backup posture and appends its record to the demo's report store.
async fn record_posture(s: &DemoSettings, source: &demo::Source) -> Result<crate::report::posture::Record, String> {
    let now = chrono::Utc::now();
    let stores = crate::posture::check(&demo_store(source), &[], now, &s.aws).await;
    let mut record = crate::report::posture::Record::new(stores, now);
    ReportStore::new(&s.reports, s.retain)
        .write_posture(&mut record, s.signer.as_deref(), &s.aws)
        .await
        .map_err(|e| e.to_string())?;
    Ok(record)
}
