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
use crate::report::{Report, ReportStore, Signer, StoreError, Verdict, Written};

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
    Ran { report: Box<Report>, written: Result<Written, StoreError> },
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
async fn store(shared: &Shared, report: &mut Report) -> Result<Written, StoreError> {
    let s = &shared.settings;
    shared.events.emit(Event::PhaseStarted { drill: report.drill.clone(), phase: "report" });
    let clock = Instant::now();
    let written = s.store.write(report, s.signer.as_deref(), &s.aws).await;
    let (status, detail) = match &written {
        Ok(w) => (PhaseStatus::Passed, Some(w.json.display().to_string())),
        Err(e) => {
            if let Some(hint) = e.hint() {
                tracing::info!(drill = %report.drill, hint = %hint, "what to do about the report phase's error");
            }
            (PhaseStatus::Error, Some(e.to_string()))
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records what it hears; panics on the plan phase of the drill named `panic_on` (a bug in one drill's
    /// task, outside any phase).
    #[derive(Default)]
    struct Recorder {
        panic_on: Option<&'static str>,
        finished: Mutex<Vec<String>>,
        done: Mutex<Option<Stats>>,
    }

    impl Reporter for Recorder {
        fn event(&self, e: &Event) {
            if let (Event::PhaseStarted { drill, phase: "plan" }, Some(p)) = (e, self.panic_on)
                && drill == p
            {
                panic!("reporter bug on {drill}");
            }
        }
        fn finished<'a>(&'a self, f: &'a Finished) -> BoxFuture<'a, ()> {
            let what = match &f.ended {
                Ended::Ran { .. } => "ran".to_string(),
                Ended::CouldNotRun(e) => format!("could not run: {e}"),
                Ended::NotStarted => "not started".to_string(),
            };
            self.finished.lock().unwrap().push(format!("{}: {what}", f.drill()));
            Box::pin(async {})
        }
        fn done(&self, stats: &Stats) {
            *self.done.lock().unwrap() = Some(*stats);
        }
    }

    /// A local drill whose backups directory is empty: its plan finds nothing recoverable.
    fn spec(name: &str, dir: &std::path::Path) -> DrillSpec {
        for sub in ["b", "w", "s"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = dir.display();
        let yaml = format!(
            "name: {name}\nrestore:\n  local-postgres: {{ base-backups: {d}/b, wal-archive: {d}/w, scratch-root: {d}/s }}\n\
             objectives: {{ rto: 1h, rpo: 5m }}\nverify:\n  - amcheck: {{}}\n"
        );
        crate::config::parse_drill(&yaml, std::path::Path::new("drills/x.yaml")).expect("a valid drill")
    }

    fn fleet(reporter: Arc<Recorder>, cancel: Cancel, dir: &std::path::Path) -> Fleet {
        let settings = Settings {
            store: ReportStore::Dir(dir.join("reports")),
            signer: None,
            aws: AwsSettings::default(),
            concurrency: 2,
            if_running: IfRunning::Parallel,
            cancel,
        };
        Fleet::new(settings, vec![reporter])
    }

    fn job(index: usize, spec: DrillSpec, delay: Duration) -> Job {
        Job { index, spec, opts: RunOptions::new("test", &AwsSettings::default()), delay }
    }

    #[tokio::test]
    async fn a_drill_task_that_panics_is_could_not_run_and_the_others_finish() {
        crate::cli::settings::init_process();
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder { panic_on: Some("bad"), ..Recorder::default() });
        let (_tx, cancel) = Cancel::new();
        let jobs =
            vec![job(0, spec("bad", dir.path()), Duration::ZERO), job(1, spec("good", dir.path()), Duration::ZERO)];
        let (finished, stats) = fleet(rec.clone(), cancel, dir.path()).run(jobs).await;
        assert_eq!(finished.iter().map(|f| f.index).collect::<Vec<_>>(), [0, 1], "in index order");
        match &finished[0].ended {
            Ended::CouldNotRun(DrillError::Panicked(m)) => assert!(m.contains("reporter bug on bad"), "{m}"),
            _ => panic!("the panicking drill is could-not-run"),
        }
        match &finished[1].ended {
            Ended::CouldNotRun(DrillError::Panicked(m)) => panic!("the other drill panicked too: {m}"),
            Ended::CouldNotRun(e) => assert!(e.to_string().contains("recoverable"), "the other ran its plan: {e}"),
            _ => panic!("nothing is recoverable for the other drill"),
        }
        assert_eq!(stats, Stats { could_not_run: 2, ..Stats::default() });
        assert_eq!(rec.finished.lock().unwrap().len(), 2, "every reporter hears every drill once");
        assert_eq!(*rec.done.lock().unwrap(), Some(stats));
    }

    #[tokio::test]
    async fn a_stop_before_a_delayed_start_means_not_started() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let (tx, cancel) = Cancel::new();
        let mut f = fleet(rec.clone(), cancel, dir.path());
        f.start(job(0, spec("later", dir.path()), Duration::from_secs(3600)));
        tx.send(true).unwrap();
        let done = f.next().await.expect("one drill");
        assert!(matches!(done.ended, Ended::NotStarted));
        assert!(f.next().await.is_none());
        assert_eq!(f.finish(), Stats { not_started: 1, ..Stats::default() });
        assert_eq!(rec.finished.lock().unwrap().as_slice(), ["later: not started"]);
    }
}
