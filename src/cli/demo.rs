//! `stackdrill demo`: set up a real local source with WAL archiving, run `local-demo` against it while a
//! workload writes, print the verdict and the report, and stop the source unless `--keep`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::anyhow;

use super::drill::{cancel_on_signals, exit_code, summary};
use super::{Failure, exit_codes};
use crate::config::load_drill;
use crate::demo::{self, DemoError};
use crate::drill::events::Event;
use crate::drill::{self as engine, RunOptions};
use crate::ui::{Printer, progress_sink};

pub(crate) struct DemoSettings {
    pub(crate) dir: PathBuf,
    pub(crate) scale: u32,
    pub(crate) keep: bool,
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

pub(super) async fn demo(s: DemoSettings, printer: Printer) -> Result<u8, Failure> {
    let dir = std::path::absolute(&s.dir).map_err(|e| Failure::could_not_run(anyhow!("--dir: {e}"), None))?;
    let events = progress_sink(s.quiet || printer.is_json());
    let cancel = cancel_on_signals();
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
        status: "passed",
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
        let opts = RunOptions {
            target: None,
            reports_dir: s.reports.clone(),
            trigger: "demo".into(),
            aws: s.aws.clone(),
            signer: s.signer.clone(),
            participants: vec![],
            retain: s.retain,
            scheduled_for: None,
        };
        let outcome = engine::run(&spec, &opts, events.clone(), cancel.clone()).await;
        let _ = stop.send(true);
        let transfers = workload.await.unwrap_or(0);
        tracing::info!(transfers, "demo workload stopped");
        Ok::<_, Failure>((path, outcome?))
    }
    .await;

    if !s.keep
        && let Err(e) = source.stop().await
    {
        eprintln!("warning: cannot stop the demo source: {e}");
    }
    let (path, outcome) = result?;
    let code = exit_code(outcome.report.result);
    if printer.is_json() {
        printer.json(&outcome.report);
    } else {
        printer.line(summary(&outcome.report, outcome.written.as_ref().ok()));
        if s.keep {
            printer.line(format!(
                "the demo source is still running on 127.0.0.1:{}; run the drill again with `stackdrill drill run {}`",
                source.cluster.port,
                path.display()
            ));
        }
    }
    if let Err(e) = &outcome.written {
        eprintln!("error: {e}");
        return Ok(exit_codes::COULD_NOT_RUN);
    }
    Ok(code)
}
