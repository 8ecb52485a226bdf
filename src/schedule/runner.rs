//! The local scheduler (`schedule run`): re-reads the drill files each minute, starts each drill when its
//! occurrence is due (the catch-up policy decides about missed ones), runs them through the fleet, records
//! each end in the state directory, and on a stop lets the running drills tear down and report.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use super::daemon::{self, CatchUp, Decision, State};
use crate::config::{DrillSpec, load_drill};
use crate::drill::fleet::{Ended, Finished, Fleet, Job, Reporter};
use crate::drill::{Cancel, DrillError, RunOptions};
use crate::report::Verdict;

/// How the scheduler runs, resolved from flags.
pub(crate) struct Settings {
    /// Re-read every minute: an edited schedule applies without a restart.
    pub(crate) files: Vec<PathBuf>,
    pub(crate) jitter: Duration,
    pub(crate) catch_up: CatchUp,
    pub(crate) grace: chrono::Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) aws: crate::aws::AwsSettings,
    /// Unix milliseconds of the loop's last round (what `--metrics-listen` reports as the heartbeat).
    pub(crate) heartbeat_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// The scheduled drills among `files`, and a line per file that does not load.
pub(crate) fn scheduled(files: &[PathBuf]) -> (Vec<DrillSpec>, Vec<String>) {
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
pub(crate) fn span(d: chrono::Duration) -> String {
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

/// The scheduler's loop state.
struct Loop {
    s: Settings,
    specs: Vec<DrillSpec>,
    started: DateTime<Utc>,
    /// Drill → the occurrence its running run is for.
    running: HashMap<String, DateTime<Utc>>,
    last_problems: Vec<String>,
}

/// Runs until `cancel`; then starts nothing new and waits for the running drills.
#[tracing::instrument(skip_all)]
pub(crate) async fn run(s: Settings, specs: Vec<DrillSpec>, mut fleet: Fleet, cancel: Cancel) {
    tracing::info!(
        drills = specs.len(),
        catch_up = ?s.catch_up,
        jitter = %humantime::format_duration(s.jitter),
        "scheduler started: {} drill(s): {}",
        specs.len(),
        specs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    let mut l = Loop { s, specs, started: Utc::now(), running: HashMap::new(), last_problems: vec![] };
    let mut next_heartbeat = tokio::time::Instant::now();
    loop {
        l.s.heartbeat_at.store(Utc::now().timestamp_millis(), std::sync::atomic::Ordering::Relaxed);
        l.reload();
        l.start_due(&mut fleet, Utc::now());
        let next = l.next_due();
        if tokio::time::Instant::now() >= next_heartbeat {
            l.heartbeat(next.as_ref());
            next_heartbeat = tokio::time::Instant::now() + l.s.heartbeat;
        }
        // Sleep until the next occurrence, the next heartbeat, a run ending, or a stop; at most a minute,
        // so edited files are picked up.
        let mut wait = Duration::from_secs(60).min(next_heartbeat - tokio::time::Instant::now());
        if let Some((t, _)) = next {
            wait = wait.min((t - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(10));
        }
        let ended = tokio::select! {
            _ = cancel.cancelled() => break,
            Some(f) = fleet.join(), if !fleet.is_empty() => Some(f),
            _ = tokio::time::sleep(wait) => None,
        };
        if let Some(f) = ended {
            fleet.tell(&f).await;
            l.running.remove(f.drill());
        }
    }
    tracing::warn!(
        running = l.running.len(),
        "stopping: no new runs; {} running drill(s) tear down and write their reports",
        l.running.len()
    );
    while fleet.next().await.is_some() {}
    fleet.finish();
    tracing::info!("scheduler stopped");
}

impl Loop {
    /// Re-reads the drill files; a broken file keeps its last good version and is reported once.
    fn reload(&mut self) {
        let (fresh, problems) = scheduled(&self.s.files);
        if problems != self.last_problems {
            for p in &problems {
                tracing::error!("{p} (keeping the last good version of the file)");
            }
            self.last_problems = problems;
        }
        for f in fresh {
            match self.specs.iter_mut().find(|x| x.file == f.file) {
                Some(old) => *old = f,
                None => self.specs.push(f),
            }
        }
    }

    /// Starts every drill whose occurrence is due and records what the catch-up policy skipped.
    fn start_due(&mut self, fleet: &mut Fleet, now: DateTime<Utc>) {
        for (index, spec) in self.specs.iter().enumerate() {
            let Some(sched) = &spec.schedule else { continue };
            if self.running.contains_key(&spec.name) {
                continue;
            }
            let state = State::read(&spec.name);
            match daemon::decide(sched, state.as_ref(), self.started, now, self.s.grace, self.s.catch_up) {
                Decision::Wait => {}
                Decision::Skip { latest, missed } => {
                    tracing::warn!(
                        drill = %spec.name,
                        missed,
                        "{}: {missed} occurrence(s) up to {latest} missed while no scheduler ran; catch-up policy \
                         `skip`: next run at {}",
                        spec.name,
                        crate::cadence::next_after(sched, now).map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into())
                    );
                    record(&State {
                        drill: spec.name.clone(),
                        occurrence: latest,
                        started_at: None,
                        finished_at: Some(now),
                        result: Some(format!("skipped: {missed} missed occurrence(s), catch-up policy skip")),
                        report: None,
                    });
                }
                Decision::Run { occurrence, missed } => {
                    if missed > 0 || now - occurrence > self.s.grace {
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
                    self.running.insert(spec.name.clone(), occurrence);
                    let opts =
                        RunOptions { scheduled_for: Some(occurrence), ..RunOptions::new("schedule", &self.s.aws) };
                    let delay = self.s.jitter.mul_f64(rand::random::<f64>());
                    fleet.start(Job { index, spec: spec.clone(), opts, delay });
                }
            }
        }
    }

    /// The next occurrence of a drill not running now: what the heartbeat reports and the sleep waits for.
    fn next_due(&self) -> Option<(DateTime<Utc>, String)> {
        self.specs
            .iter()
            .filter(|d| !self.running.contains_key(&d.name))
            .filter_map(|d| {
                let at = daemon::next_due(d.schedule.as_ref()?, State::read(&d.name).as_ref(), self.started)?;
                Some((at, d.name.clone()))
            })
            .min()
    }

    fn heartbeat(&self, next: Option<&(DateTime<Utc>, String)>) {
        let running = &self.running;
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
    }
}

fn record(st: &State) {
    if let Err(e) = st.write() {
        tracing::error!(drill = %st.drill, "cannot record the schedule state: {e}");
    }
}

/// Records each scheduled run's end in the state directory and logs its verdict line.
pub(crate) struct StateLog;

impl Reporter for StateLog {
    fn finished<'a>(&'a self, f: &'a Finished) -> BoxFuture<'a, ()> {
        record(&ended_state(f));
        Box::pin(async {})
    }
}

/// The state record of a scheduled run that ended, its log lines written.
fn ended_state(f: &Finished) -> State {
    let name = f.drill();
    let occurrence = f.scheduled_for.unwrap_or_else(Utc::now);
    let mut st = State {
        drill: name.to_string(),
        occurrence,
        started_at: None,
        finished_at: Some(Utc::now()),
        result: None,
        report: None,
    };
    match &f.ended {
        Ended::Ran { report: r, written } => {
            st.started_at = Some(r.started_at);
            st.result = Some(r.result.as_str().to_string());
            st.report = Some(r.id.clone());
            let line = crate::ui::summary(r, written.as_ref().ok());
            match r.result {
                Verdict::Passed => tracing::info!(drill = %name, result = "passed", "{line}"),
                _ => tracing::error!(drill = %name, result = r.result.as_str(), "{line}"),
            }
            if let Err(e) = written {
                tracing::error!(drill = %name, "the report could not be written: {e}");
            }
        }
        // Another run of the drill holds its lock (another scheduler, a manual `drill run`).
        Ended::CouldNotRun(DrillError::AlreadyRunning(e)) => {
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
    st
}
