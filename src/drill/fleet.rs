//! A fleet of drill runs: concurrency, one run per drill at a time (`--if-running`), cancellation, panic
//! isolation, the report store, and typed events to the reporters. `drill run`, `schedule run` and `demo`
//! are its callers; each only resolves settings and picks reporters.
//!
//! A drill task that panics outside its phases (the phases catch their own panics and still tear down)
//! ends as `could not run`; the other drills carry on to their teardown and reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::events::{Event, EventSink};
use super::{Cancel, DrillError, RunOptions};
use crate::aws::AwsSettings;
use crate::config::DrillSpec;
use crate::report::model::PhaseStatus;
use crate::report::{Report, ReportStore, Signer, Verdict, Written};

/// When a run of the same drill is in progress (here or in another process on this machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfRunning {
    /// This run does not start (`could not run`, `DrillError::AlreadyRunning`).
    Refuse,
    /// This run waits for the other to end.
    Wait,
    /// A second scratch restore runs alongside.
    Parallel,
}

/// What the fleet needs besides the drills: where reports go and how runs are admitted.
pub(crate) struct Settings {
    pub(crate) store: ReportStore,
    /// Signs each report (and its DSSE envelope) when set.
    pub(crate) signer: Option<Arc<Signer>>,
    /// For the store (an `s3://` store) and the reporters that call AWS.
    pub(crate) aws: AwsSettings,
    pub(crate) concurrency: usize,
    pub(crate) if_running: IfRunning,
    pub(crate) cancel: Cancel,
}

/// One drill to run.
pub(crate) struct Job {
    /// Orders the results (the position on the command line).
    pub(crate) index: usize,
    pub(crate) spec: DrillSpec,
    pub(crate) opts: RunOptions,
    /// Wait this long before asking for a slot (the scheduler's jitter); a stop meanwhile means not started.
    pub(crate) delay: Duration,
}

/// How one drill ended.
pub(crate) enum Ended {
    /// It ran: its report (whatever the verdict) and where the store put it, or why it could not.
    Ran { report: Box<Report>, written: Result<Written, String> },
    /// Nothing was restored and there is no report (bad input, a refused region, another run holding
    /// the drill's lock, a bug).
    CouldNotRun(DrillError),
    /// The fleet was stopped before the run began.
    NotStarted,
}

/// A drill that ended, as the reporters hear it.
pub(crate) struct Finished {
    pub(crate) index: usize,
    pub(crate) spec: Arc<DrillSpec>,
    /// The schedule occurrence the run was for.
    pub(crate) scheduled_for: Option<DateTime<Utc>>,
    pub(crate) ended: Ended,
}

impl Finished {
    pub(crate) fn drill(&self) -> &str {
        &self.spec.name
    }
}

/// Counts over a fleet run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) error: usize,
    pub(crate) could_not_run: usize,
    pub(crate) not_started: usize,
    /// Reports the store could not take (counted in their verdict too).
    pub(crate) not_written: usize,
}

impl Stats {
    fn count(&mut self, e: &Ended) {
        match e {
            Ended::Ran { report, written } => {
                match report.result {
                    Verdict::Passed => self.passed += 1,
                    Verdict::Failed => self.failed += 1,
                    Verdict::Error => self.error += 1,
                }
                self.not_written += usize::from(written.is_err());
            }
            Ended::CouldNotRun(_) => self.could_not_run += 1,
            Ended::NotStarted => self.not_started += 1,
        }
    }
}

/// A consumer of what the fleet does: progress on a terminal, log lines, the scorecard, JSON output,
/// metrics, the scheduler's state. Every method has a default that ignores the call.
pub(crate) trait Reporter: Send + Sync {
    /// A progress event of a running drill (phases, checks).
    fn event(&self, _e: &Event) {}
    /// A drill ended; called once per drill, in the order they end, after the store has the report.
    fn finished<'a>(&'a self, _f: &'a Finished) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// Every drill the fleet started has ended.
    fn done(&self, _stats: &Stats) {}
}

struct Shared {
    settings: Settings,
    events: EventSink,
    permits: Semaphore,
}

/// What a task runs, kept by the fleet.
struct Started {
    index: usize,
    spec: Arc<DrillSpec>,
    scheduled_for: Option<DateTime<Utc>>,
}

/// Runs drills and tells the reporters. Start jobs with [`Fleet::start`] and collect them with
/// [`Fleet::next`] (the scheduler), or hand over a list with [`Fleet::run`].
pub(crate) struct Fleet {
    shared: Arc<Shared>,
    reporters: Vec<Arc<dyn Reporter>>,
    set: JoinSet<Finished>,
    /// What each task is, so a panicked task still names its drill.
    tasks: HashMap<tokio::task::Id, Started>,
    stats: Stats,
}

impl Fleet {
    pub(crate) fn new(settings: Settings, reporters: Vec<Arc<dyn Reporter>>) -> Fleet {
        let fan_out = reporters.clone();
        let events = EventSink::new(move |e| fan_out.iter().for_each(|r| r.event(&e)));
        let permits = Semaphore::new(settings.concurrency.max(1));
        Fleet {
            shared: Arc::new(Shared { settings, events, permits }),
            reporters,
            set: JoinSet::new(),
            tasks: HashMap::new(),
            stats: Stats::default(),
        }
    }

    /// The events sink the reporters listen on (for steps before the drills, like the demo's setup).
    pub(crate) fn events(&self) -> EventSink {
        self.shared.events.clone()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Starts `job` in its own task.
    pub(crate) fn start(&mut self, job: Job) {
        let spec = Arc::new(job.spec);
        let meta = Started { index: job.index, spec: spec.clone(), scheduled_for: job.opts.scheduled_for };
        let shared = self.shared.clone();
        let handle = self.set.spawn(async move {
            let ended = run_job(&shared, &spec, &job.opts, job.delay).await;
            Finished { index: job.index, spec, scheduled_for: job.opts.scheduled_for, ended }
        });
        self.tasks.insert(handle.id(), meta);
    }

    /// The next drill to end, once every reporter has heard it; `None` when none is running.
    pub(crate) async fn next(&mut self) -> Option<Finished> {
        let finished = self.join().await?;
        self.tell(&finished).await;
        Some(finished)
    }

    /// The next drill to end, before the reporters hear it (cancel-safe, for a `select!`; pass what it
    /// returns to [`Fleet::tell`]).
    pub(crate) async fn join(&mut self) -> Option<Finished> {
        Some(match self.set.join_next_with_id().await? {
            Ok((id, f)) => {
                self.tasks.remove(&id);
                f
            }
            Err(e) => {
                let Started { index, spec, scheduled_for } = self.tasks.remove(&e.id())?;
                let what = if e.is_panic() {
                    super::phase::panic_text(e.into_panic())
                } else {
                    "the task was cancelled".into()
                };
                tracing::error!(drill = %spec.name, "a drill task panicked (a bug): {what}");
                Finished { index, spec, scheduled_for, ended: Ended::CouldNotRun(DrillError::Panicked(what)) }
            }
        })
    }

    /// Counts `finished` and tells every reporter, in order.
    pub(crate) async fn tell(&mut self, finished: &Finished) {
        self.stats.count(&finished.ended);
        for r in &self.reporters {
            r.finished(finished).await;
        }
    }

    /// Tells the reporters the fleet is done; returns the counts.
    pub(crate) fn finish(self) -> Stats {
        for r in &self.reporters {
            r.done(&self.stats);
        }
        self.stats
    }

    /// Runs `jobs` to the end; the results in `index` order, and the counts.
    pub(crate) async fn run(mut self, jobs: Vec<Job>) -> (Vec<Finished>, Stats) {
        for j in jobs {
            self.start(j);
        }
        let mut all = Vec::new();
        while let Some(f) = self.next().await {
            all.push(f);
        }
        all.sort_by_key(|f| f.index);
        (all, self.finish())
    }
}

/// One drill: its delay and slot (both give way to a stop), its lock, the run, then the store.
#[tracing::instrument(skip_all, fields(drill = %spec.name))]
async fn run_job(shared: &Shared, spec: &DrillSpec, opts: &RunOptions, delay: Duration) -> Ended {
    let cancel = &shared.settings.cancel;
    if !delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => return Ended::NotStarted,
        }
    }
    let _permit = tokio::select! {
        p = shared.permits.acquire() => p,
        _ = cancel.cancelled() => return Ended::NotStarted,
    };
    // One run per drill at a time unless asked: never two scratch restores of one drill by accident.
    let _lock = match lock(&spec.name, shared.settings.if_running).await {
        Ok(l) => l,
        Err(e) => return Ended::CouldNotRun(e),
    };
    if opts.scheduled_for.is_some() {
        tracing::info!(drill = %spec.name, "{}: starting the run for {}", spec.name, opts.scheduled_for.map(|t| t.to_rfc3339()).unwrap_or_default());
    }
    match super::run(spec, opts, shared.events.clone(), cancel.clone()).await {
        Ok(mut report) => {
            let written = store(shared, &mut report).await;
            Ended::Ran { report: Box::new(report), written }
        }
        Err(e) => Ended::CouldNotRun(e),
    }
}

async fn lock(drill: &str, mode: IfRunning) -> Result<Option<crate::lock::Lock>, DrillError> {
    if mode == IfRunning::Parallel {
        return Ok(None);
    }
    let (name, wait) = (drill.to_string(), mode == IfRunning::Wait);
    let what = format!("a run of drill `{name}`");
    tokio::task::spawn_blocking(move || crate::lock::acquire("drill", &name, &what, wait))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map(Some)
        .map_err(DrillError::AlreadyRunning)
}

/// The `report` phase: the store signs, chains and writes the report.
async fn store(shared: &Shared, report: &mut Report) -> Result<Written, String> {
    let s = &shared.settings;
    shared.events.emit(Event::PhaseStarted { drill: report.drill.clone(), phase: "report" });
    let clock = Instant::now();
    let written = s.store.write(report, s.signer.as_deref(), &s.aws).await;
    let (status, detail) = match &written {
        Ok(w) => (PhaseStatus::Passed, Some(w.json.display().to_string())),
        Err(e) => (PhaseStatus::Error, Some(e.clone())),
    };
    shared.events.emit(Event::PhaseFinished {
        drill: report.drill.clone(),
        phase: "report",
        status,
        seconds: clock.elapsed().as_secs_f64(),
        detail,
    });
    written
}
