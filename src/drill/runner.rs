//! Runs one drill: plan → restore → ready → verify → teardown → report. Teardown runs on every path
//! once a restore has begun, and every drill that reached the restore phase leaves a report.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Cancel;
use super::error::{DrillError, RestoreError};
use super::events::{Event, EventSink};
use super::restore::{
    AwsAuroraCluster, AwsBackup, AwsRdsInstance, BackupUsed, Endpoint, LocalPostgres, RestoreProvider, Teardown,
};
use super::source;
use super::target::{Recovery, ResolvedTarget, Window, select};
use super::verify::{self, CheckResult, CheckStatus, canary};
use crate::aws::{AwsSettings, CallCounter, Calls};
use crate::config::{CheckSpec, DrillSpec, RestoreSpec, SecretRef, TargetSpec};
use crate::pg;
use crate::report::model::{self, FileRef, Phase, Report, Verdict};

/// How this run differs from the drill file, and where its report goes.
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    pub(crate) target: Option<TargetSpec>,
    pub(crate) reports_dir: PathBuf,
    pub(crate) trigger: String,
    pub(crate) aws: AwsSettings,
    /// Signs each report (and its DSSE envelope) when set.
    pub(crate) signer: Option<std::sync::Arc<crate::report::Signer>>,
    pub(crate) participants: Vec<String>,
    /// How long an `s3://` store locks each object (Object Lock, compliance mode).
    pub(crate) retain: std::time::Duration,
    /// The schedule occurrence this run is for, when a scheduler started it.
    pub(crate) scheduled_for: Option<chrono::DateTime<Utc>>,
}

/// A finished drill: its report and where it was written.
pub(crate) struct Outcome {
    pub(crate) report: Report,
    pub(crate) written: Result<crate::report::Written, String>,
}

/// Runs `spec`. `Err` means the drill could not run (nothing was restored, no report); otherwise the
/// outcome carries the report whatever the verdict.
pub(crate) async fn run(
    spec: &DrillSpec,
    opts: &RunOptions,
    events: EventSink,
    cancel: Cancel,
) -> Result<Outcome, DrillError> {
    let run_id = new_run_id();
    let mut ctx = RunCtx::new(spec, opts, events.clone(), cancel, run_id.clone())?;
    let default_db = spec.source.as_ref().map(|s| s.dbname.as_str());
    let t = &spec.timeouts;
    let Some(scratch) = spec.restore.aws_scratch() else {
        let RestoreSpec::LocalPostgres(lp) = &spec.restore else { unreachable!("every other provider is on AWS") };
        let mut provider = LocalPostgres::new(lp, &spec.name, &run_id, default_db, events, t)?;
        return ctx.run(&mut provider).await;
    };
    let lifetime = t.plan + t.restore + t.ready + t.verify + t.teardown;
    let aws = Aws::connect(&opts.aws, scratch.region.as_deref()).await?;
    let info = aws.run_info(scratch, &spec.name, &run_id, default_db, events, lifetime)?;
    // Drill metrics go through the same config (the drill's region, the checked credentials).
    ctx.aws = Some(aws.config.clone());
    match &spec.restore {
        RestoreSpec::AwsRdsInstance(r) => ctx.run(&mut AwsRdsInstance::new(r, aws.rds(), info)).await,
        RestoreSpec::AwsAuroraCluster(r) => ctx.run(&mut AwsAuroraCluster::new(r, aws.rds(), info)).await,
        RestoreSpec::AwsBackup(r) => ctx.run(&mut AwsBackup::new(r, aws.backup(), aws.rds(), info, t.teardown)).await,
        RestoreSpec::LocalPostgres(_) => unreachable!("local drills returned above"),
    }
}

/// The SDK config of one AWS drill, with one call counter shared by its clients.
pub(crate) struct Aws {
    pub(crate) config: aws_types::SdkConfig,
    pub(crate) region: String,
    pub(crate) calls: CallCounter,
}

impl Aws {
    /// Loads the config (the drill's `region` over `--region`) and checks credentials up front.
    pub(crate) async fn connect(settings: &AwsSettings, region: Option<&str>) -> Result<Aws, DrillError> {
        let mut settings = settings.clone();
        if let Some(r) = region {
            settings.region = Some(r.to_string());
        }
        let config = crate::aws::load(&settings).await;
        crate::aws::check_credentials(&config).await?;
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| crate::aws::DEFAULT_REGION.into());
        Ok(Aws { config, region, calls: CallCounter::default() })
    }

    fn run_info(
        &self,
        scratch: &crate::config::AwsScratchSpec,
        drill: &str,
        run: &str,
        default_db: Option<&str>,
        events: EventSink,
        lifetime: Duration,
    ) -> Result<super::restore::rds::RunInfo, DrillError> {
        use super::restore::rds;
        // A region outside the drill's residency is refused before anything else happens.
        rds::check_residency(&self.region, scratch)?;
        Ok(rds::RunInfo {
            calls: self.calls.clone(),
            region: self.region.clone(),
            drill: drill.to_string(),
            run: run.to_string(),
            database: rds::database(scratch, default_db),
            events,
            expires_at: Utc::now() + lifetime.max(scratch.expires_after),
        })
    }

    pub(crate) fn rds(&self) -> aws_sdk_rds::Client {
        let conf = aws_sdk_rds::config::Builder::from(&self.config).interceptor(self.calls.clone()).build();
        aws_sdk_rds::Client::from_conf(conf)
    }

    pub(crate) fn backup(&self) -> aws_sdk_backup::Client {
        let conf = aws_sdk_backup::config::Builder::from(&self.config).interceptor(self.calls.clone()).build();
        aws_sdk_backup::Client::from_conf(conf)
    }
}

struct RunCtx<'a> {
    spec: &'a DrillSpec,
    opts: &'a RunOptions,
    events: EventSink,
    cancel: Cancel,
    run_id: String,
    runbook: Option<FileRef>,
    phases: Vec<Phase>,
    /// How each database connection was protected, in the order made.
    connections: Vec<model::Connection>,
    /// The provider's AWS call counter, and its reading when the last phase ended.
    calls: Option<CallCounter>,
    calls_mark: Calls,
    /// The AWS drill's SDK config, reused for its metrics; local drills load one only to publish.
    aws: Option<aws_types::SdkConfig>,
}

/// The verdict so far, and the first reason it is not `passed`.
struct Judgement {
    verdict: Verdict,
    reason: Option<String>,
}

impl Judgement {
    /// Records a failure; `error` outranks `failed`, and the first reason given is kept.
    fn fail(&mut self, v: Verdict, why: String) {
        self.reason.get_or_insert(why);
        if self.verdict == Verdict::Passed || v == Verdict::Error {
            self.verdict = v;
        }
    }
}

/// Runs `fut` until it finishes, `timeout` passes, or a signal cancels the run.
async fn bounded<T, E>(
    cancel: &Cancel,
    timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Stop<E>> {
    tokio::select! {
        r = tokio::time::timeout(timeout, fut) => match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Stop::Failed(e)),
            Err(_) => Err(Stop::TimedOut(timeout)),
        },
        _ = cancel.cancelled() => Err(Stop::Interrupted),
    }
}

/// How a phase ended when it did not return a value.
enum Stop<E> {
    Interrupted,
    TimedOut(Duration),
    Failed(E),
}

/// The source sessions the verify phase uses: the one the read-only checks read, and all to cancel.
struct Sessions<'s> {
    reader: Option<&'s source::Session>,
    all: Vec<&'s source::Session>,
}

struct Planned {
    /// The primary (canary writes) and, with `read-from`, the replica the heavy checks read.
    source: Option<(source::Session, Option<source::Session>)>,
    canary: Option<canary::Written>,
    window: Window,
    target: ResolvedTarget,
    backup: BackupUsed,
}

impl<'a> RunCtx<'a> {
    fn new(
        spec: &'a DrillSpec,
        opts: &'a RunOptions,
        events: EventSink,
        cancel: Cancel,
        run_id: String,
    ) -> Result<Self, DrillError> {
        let runbook = match &spec.runbook {
            Some(p) => Some(
                FileRef::of(p)
                    .map_err(|e| DrillError::Runbook { path: p.display().to_string(), detail: e.to_string() })?,
            ),
            None => None,
        };
        Ok(RunCtx {
            spec,
            opts,
            events,
            cancel,
            run_id,
            runbook,
            phases: Vec::new(),
            connections: Vec::new(),
            calls: None,
            calls_mark: Calls::new(),
            aws: None,
        })
    }
}

/// Runs `spec` with a provider built by the caller (tests inject mocked AWS clients this way).
#[cfg(test)]
pub(crate) async fn run_with<P: RestoreProvider>(
    spec: &DrillSpec,
    opts: &RunOptions,
    run_id: &str,
    provider: &mut P,
) -> Result<Outcome, DrillError> {
    let (_tx, cancel) = Cancel::new();
    let ctx = RunCtx::new(spec, opts, EventSink::new(|_| {}), cancel, run_id.to_string())?;
    ctx.run(provider).await
}

impl RunCtx<'_> {
    /// Announces a phase; the returned clock goes to `finish_phase`.
    fn start_phase(&self, name: &'static str) -> (DateTime<Utc>, Instant) {
        self.events.emit(Event::PhaseStarted { drill: self.spec.name.clone(), phase: name });
        (Utc::now(), Instant::now())
    }

    async fn phase<T, E>(
        &mut self,
        name: &'static str,
        timeout: Duration,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Stop<E>>
    where
        E: std::fmt::Display,
    {
        let (started_at, clock) = self.start_phase(name);
        let res = bounded(&self.cancel, timeout, fut).await;
        let (status, detail) = match &res {
            Ok(_) => ("passed", None),
            Err(Stop::Interrupted) => ("error", Some("interrupted".to_string())),
            Err(Stop::TimedOut(d)) => {
                ("failed", Some(format!("did not finish within {}", humantime::format_duration(*d))))
            }
            Err(Stop::Failed(e)) => ("failed", Some(e.to_string())),
        };
        self.finish_phase(name, started_at, clock, status, detail);
        res
    }

    fn finish_phase(
        &mut self,
        name: &'static str,
        started_at: DateTime<Utc>,
        clock: Instant,
        status: &'static str,
        detail: Option<String>,
    ) {
        let seconds = clock.elapsed().as_secs_f64();
        let api_calls = match &self.calls {
            Some(c) => {
                let since = c.since(&self.calls_mark);
                self.calls_mark = c.snapshot();
                since
            }
            None => Calls::new(),
        };
        self.events.emit(Event::PhaseFinished {
            drill: self.spec.name.clone(),
            phase: name,
            status,
            seconds,
            detail: detail.clone(),
        });
        self.phases.push(Phase { name: name.into(), started_at, seconds, status: status.into(), detail, api_calls });
    }

    fn skip_phase(&mut self, name: &'static str, why: &str) {
        self.finish_phase(name, Utc::now(), Instant::now(), "skipped", Some(why.to_string()));
    }

    /// Logs in to the source (credentials, TLS, session bounds), and to its replica when `read-from`
    /// names one; `None` without a `source` block.
    async fn connect_source(&self) -> Result<Option<(source::Session, Option<source::Session>)>, DrillError> {
        let Some(s) = &self.spec.source else { return Ok(None) };
        let needs_aws = s.from_instance || matches!(s.password, SecretRef::Secret(_) | SecretRef::IamAuth);
        let loaded;
        let aws = match (&self.aws, needs_aws) {
            (Some(c), _) => Some(c),
            (None, true) => {
                loaded = crate::aws::load(&self.opts.aws).await;
                crate::aws::check_credentials(&loaded).await?;
                Some(&loaded)
            }
            (None, false) => None,
        };
        let login = source::login(s, &self.spec.restore, aws).await?;
        let bounds = source::Bounds::of(s, self.spec.timeouts.check);
        let primary = login.connect(&self.run_id, "source", bounds).await?;
        let replica = match &s.read_from {
            Some(at) => Some(login.at(at).connect(&self.run_id, "source-replica", bounds).await?),
            None => None,
        };
        Ok(Some((primary, replica)))
    }

    async fn plan<P: RestoreProvider>(&self, provider: &mut P) -> Result<Planned, DrillError> {
        let spec = self.spec;
        let source = self.connect_source().await?;
        let target_spec = self.opts.target.clone().unwrap_or_else(|| spec.target.clone());
        let canary_spec = spec.verify.iter().find_map(|c| match c {
            CheckSpec::Canary(c) => Some(c),
            _ => None,
        });
        let mut written = None;
        if let (Some(c), Some((src, _)), TargetSpec::Latest) = (canary_spec, source.as_ref(), &target_spec) {
            self.events.progress(&spec.name, "plan", "writing canary rows on the source around the target");
            let w = canary::write(&src.client, c, &self.run_id)
                .await
                .map_err(|detail| DrillError::Source { endpoint: src.record.endpoint.clone(), detail })?;
            self.events.progress(&spec.name, "plan", "waiting until the target is recoverable (WAL archived)");
            provider.wait_recoverable(w.target, &src.client).await?;
            written = Some(w);
        }
        let window = provider.window().await?;
        let target = select(&target_spec, &window, Utc::now(), written.as_ref().map(|w| w.target))?;
        let backup = provider.plan(&target)?;
        Ok(Planned { source, canary: written, window, target, backup })
    }

    /// The verify phase: connects to the restore (named and recorded), runs the checks with the sessions'
    /// cancellers, turns a panicking verifier into this phase's error, and cancels what may still run on
    /// the source when the phase ends early. Returns the newest replayed commit and the check results.
    async fn verify_phase(
        &mut self,
        ep: &Endpoint,
        sessions: &Sessions<'_>,
        written: Option<&canary::Written>,
        target: DateTime<Utc>,
        outcome: &mut Judgement,
    ) -> (Option<DateTime<Utc>>, Vec<CheckResult>) {
        let spec = self.spec;
        let t = spec.timeouts;
        let reader = sessions.reader;
        let events = self.events.clone();
        let drill = spec.name.clone();
        let scratch_record = std::sync::Mutex::new(None);
        let run_id = self.run_id.clone();
        let verify_fut = async {
            let mut config = ep.config.clone();
            config.application_name(source::application_name(&run_id));
            let restore = pg::connect_tls(&config, &ep.tls, ep.server_name.as_deref())
                .await
                .map_err(|e| format!("cannot connect to the restore: {e}"))?;
            *scratch_record.lock().expect("not poisoned") = Some(ep.record(&restore).await);
            let newest: Option<DateTime<Utc>> = restore
                .query_one("select pg_last_xact_replay_timestamp()", &[])
                .await
                .map_err(|e| verify::db_error(&e))?
                .get(0);
            let mut cancellers = vec![pg::Canceller::new(&restore, &ep.tls, ep.server_name.as_deref())];
            cancellers.extend(reader.map(|s| s.canceller.clone()));
            let ctx = verify::Context {
                restore: &restore,
                source: reader.map(|s| &s.client),
                canary: written,
                target,
                rpo: spec.objectives.rpo,
                cancellers: &cancellers,
            };
            let mut out = Vec::new();
            for c in &spec.verify {
                let r = verify::run_check(c, &ctx, t.check).await;
                events.emit(Event::CheckFinished { drill: drill.clone(), check: r.clone() });
                out.push(r);
            }
            Ok::<_, String>((newest, out))
        };
        // A verifier that panics must not skip teardown: the panic becomes this phase's error.
        let verify_fut = async {
            use futures_util::FutureExt;
            match std::panic::AssertUnwindSafe(verify_fut).catch_unwind().await {
                Ok(r) => r,
                Err(p) => {
                    let what = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(format!("a verifier panicked: {what}"))
                }
            }
        };
        let verified = self.phase("verify", t.verify, verify_fut).await;
        self.connections.extend(scratch_record.into_inner().expect("not poisoned"));
        match verified {
            Ok(done) => done,
            Err(stop) => {
                // The verify future is gone, but a query it started may still run on the source.
                for s in &sessions.all {
                    s.canceller.cancel().await;
                }
                let (v, why) = stop_reason("verify", stop);
                outcome.fail(v, why);
                (None, Vec::new())
            }
        }
    }

    async fn run<P: RestoreProvider>(mut self, provider: &mut P) -> Result<Outcome, DrillError> {
        let started_at = Utc::now();
        let spec = self.spec;
        self.calls = provider.calls().cloned();
        self.calls_mark = self.calls.as_ref().map(CallCounter::snapshot).unwrap_or_default();
        // The plan phase is recorded like the others, but its failure means "could not run": no report.
        let (plan_started, clock) = self.start_phase("plan");
        let planned = bounded(&self.cancel, spec.timeouts.plan, self.plan(provider)).await.map_err(|stop| match stop {
            Stop::Interrupted => DrillError::Interrupted,
            Stop::TimedOut(d) => DrillError::PlanTimeout(humantime::format_duration(d).to_string()),
            Stop::Failed(e) => e,
        });
        let (status, detail) = match &planned {
            Ok(p) => (
                "passed",
                Some(format!("target {} from backup {}", super::error::fmt_time(&p.target.time), p.backup.id)),
            ),
            Err(e) => ("error", Some(e.to_string())),
        };
        self.finish_phase("plan", plan_started, clock, status, detail);
        let planned = planned?;
        let Planned { source, canary: written, window, target, backup } = planned;
        let (source, replica) = source.map_or((None, None), |(p, r)| (Some(p), r));
        self.connections.extend(source.iter().chain(replica.iter()).map(|s| s.record.clone()));
        // The heavy read-only checks read the replica when there is one; the canary was written to the primary.
        let reader = replica.as_ref().or(source.as_ref());

        let mut outcome = Judgement { verdict: Verdict::Passed, reason: None };

        let t = spec.timeouts;
        let restore_clock = Instant::now();
        let restored = self.phase("restore", t.restore, provider.restore(&target)).await;
        let endpoint: Option<Endpoint> = match restored {
            Ok(()) => match self.phase("ready", t.ready, provider.wait_ready()).await {
                Ok(ep) => Some(ep),
                Err(stop) => {
                    let (v, why) = stop_reason("ready", stop);
                    outcome.fail(v, why);
                    None
                }
            },
            Err(stop) => {
                let (v, why) = stop_reason("restore", stop);
                outcome.fail(v, why);
                self.skip_phase("ready", "the restore did not complete");
                None
            }
        };
        let rto = endpoint.as_ref().map(|_| restore_clock.elapsed().as_secs_f64());

        let (newest_commit, mut checks) = match &endpoint {
            Some(ep) => {
                let sessions = Sessions { reader, all: source.iter().chain(replica.iter()).collect() };
                self.verify_phase(ep, &sessions, written.as_ref(), target.time, &mut outcome).await
            }
            None => {
                self.skip_phase("verify", "no restored database to verify");
                (None, Vec::new())
            }
        };
        // Every configured check appears in the report, even when it could not run.
        for c in &spec.verify {
            if !checks.iter().any(|r: &CheckResult| r.name == c.name() && r.kind == c.kind()) {
                let why = if endpoint.is_some() { "the verify phase did not reach it" } else { "the restore failed" };
                checks.push(CheckResult::new(c, CheckStatus::Skipped, why));
            }
        }

        // Nothing more is asked of the source: close its session before the teardown.
        drop((source, replica));

        // The provider hears the verdict on the data while the scratch still exists (AWS Backup records it).
        if endpoint.is_some() {
            let failed = checks.iter().find(|c| matches!(c.status, CheckStatus::Failed | CheckStatus::Error));
            let verdict = match (failed, &outcome.reason) {
                (Some(c), _) => Err(format!("check `{}` {}: {}", c.name, c.status.as_str(), c.detail)),
                (None, Some(r)) => Err(r.clone()),
                (None, None) => Ok(()),
            };
            if let Err(e) = provider.validated(verdict).await {
                tracing::warn!(drill = %spec.name, error = %e, "could not record the validation result with the provider");
            }
        }

        // Teardown: not cancellable, bounded by its own deadline (the provider escalates within it).
        let (teardown_started, clock) = self.start_phase("teardown");
        let td = match tokio::time::timeout(t.teardown + Duration::from_secs(30), provider.teardown()).await {
            Ok(td) => td,
            Err(_) => Teardown { status: "failed", at: Utc::now(), detail: "teardown did not finish in time".into() },
        };
        let td_status = if td.status == "failed" { "failed" } else { "passed" };
        self.finish_phase("teardown", teardown_started, clock, td_status, Some(td.detail.clone()));

        for c in &checks {
            if matches!(c.status, CheckStatus::Failed | CheckStatus::Error) {
                outcome.fail(Verdict::Failed, format!("check `{}` {}: {}", c.name, c.status.as_str(), c.detail));
            }
        }
        let secs = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        // Newest commit: the last replayed transaction; else the newest row a freshness check found; else
        // (nothing replayed after a local base backup) T minus the backup's start bounds the RPO.
        let newest_row = checks.iter().filter_map(|c| c.newest).max();
        let (rpo, rpo_basis) = match (newest_commit, newest_row, provider.rpo_floor(), &endpoint) {
            (_, _, _, None) => (None, "not measured: no restored database".to_string()),
            (Some(n), _, _, _) => (Some(secs(target.time - n)), "the newest commit replayed into the restore".into()),
            (None, Some(n), _, _) => (Some(secs(target.time - n)), "the newest row a freshness check found".into()),
            (None, None, Some(floor), _) => (
                Some(secs(target.time - floor)),
                "upper bound: no transaction was replayed after the base backup, so the target minus the backup's start"
                    .into(),
            ),
            (None, None, None, _) => {
                (None, "not measured: no replay time is visible; add a freshness check on an append-only table".into())
            }
        };
        let obj = spec.objectives;
        let rto_met = rto.is_some_and(|v| v <= obj.rto.as_secs_f64());
        let rpo_met = rpo.is_some_and(|v| v >= 0.0 && v <= obj.rpo.as_secs_f64());
        if endpoint.is_some() {
            if !rto_met {
                outcome.fail(
                    Verdict::Failed,
                    format!("RTO objective missed: {:.1}s > {}s", rto.unwrap_or(f64::NAN), obj.rto.as_secs()),
                );
            }
            if !rpo_met {
                let why = match rpo {
                    Some(v) if v < 0.0 => format!("the restore holds a commit {:.3}s after the target", -v),
                    Some(v) => format!("RPO objective missed: {v:.1}s > {}s", obj.rpo.as_secs()),
                    None => "RPO not measured".into(),
                };
                outcome.fail(Verdict::Failed, why);
            }
        }
        if td.status == "failed" {
            outcome.fail(Verdict::Error, format!("teardown failed: {}", td.detail));
        }

        let report = Report {
            schema: model::SCHEMA.into(),
            id: self.run_id.clone(),
            drill: spec.name.clone(),
            description: spec.description.clone(),
            result: outcome.verdict,
            reason: outcome.reason,
            started_at,
            finished_at: Utc::now(),
            tool: model::Tool { name: "stackdrill".into(), version: env!("CARGO_PKG_VERSION").into() },
            operator: operator(),
            trigger: self.opts.trigger.clone(),
            scheduled_for: self.opts.scheduled_for,
            next_scheduled: spec.schedule.as_ref().and_then(|s| crate::schedule::next_after(s, Utc::now())),
            drill_file: FileRef::of(&spec.file).unwrap_or(FileRef {
                path: spec.file.display().to_string(),
                sha256: None,
                git_commit: None,
                git_dirty: false,
            }),
            connections: std::mem::take(&mut self.connections),
            neutralised: provider.neutralised(),
            source: model::Source {
                provider: provider.name().into(),
                details: provider.describe().into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
                backup: Some(backup),
                scratch: endpoint.as_ref().map(|e| e.display.clone()),
            },
            target: model::Target {
                time: Some(target.time),
                selection: target.selection.clone(),
                seed: target.seed,
                recovery: match target.recovery {
                    Recovery::Time(_) => "recovery_target_time, promote at the target".into(),
                    Recovery::End => "replay to the end of the archived WAL, then promote".into(),
                },
                window: Some(model::WindowRecord { earliest: window.earliest, latest: window.latest }),
            },
            objectives: model::Objectives { rto_seconds: obj.rto.as_secs_f64(), rpo_seconds: obj.rpo.as_secs_f64() },
            measured: model::Measured {
                rto_seconds: rto,
                rpo_seconds: rpo,
                rpo_basis,
                newest_commit,
                rto_met,
                rpo_met,
            },
            phases: std::mem::take(&mut self.phases),
            checks,
            teardown: model::TeardownRecord { status: td.status.into(), at: td.at, detail: td.detail },
            runbook: self.runbook.clone(),
            controls: spec.controls.clone(),
            participants: self.opts.participants.clone(),
            deviations: vec![],
            previous_sha256: None,
            signing: None,
        };
        let mut report = report;
        report.deviations = model::deviations(&report);
        let (_, clock) = self.start_phase("report");
        let written = if crate::report::s3::is_url(&self.opts.reports_dir) {
            let url = self.opts.reports_dir.display().to_string();
            match crate::report::s3::S3Store::connect(&url, &self.opts.aws, self.opts.retain).await {
                Ok(store) => store.write_report(&mut report, self.opts.signer.as_deref()).await,
                Err(e) => Err(e),
            }
            .map_err(|e| format!("cannot write the report into `{url}`: {e}"))
        } else {
            crate::report::write(&self.opts.reports_dir, &mut report, self.opts.signer.as_deref())
                .map_err(|e| format!("cannot write the report into `{}`: {e}", self.opts.reports_dir.display()))
        };
        let (status, detail) = match &written {
            Ok(w) => ("passed", Some(w.json.display().to_string())),
            Err(e) => ("error", Some(e.clone())),
        };
        self.events.emit(Event::PhaseFinished {
            drill: spec.name.clone(),
            phase: "report",
            status,
            seconds: clock.elapsed().as_secs_f64(),
            detail,
        });
        if let Some(ns) = &spec.metrics.cloudwatch_namespace {
            match super::metrics::publish(&self.opts.aws, self.aws.as_ref(), ns, &report).await {
                Ok(n) => tracing::info!(drill = %spec.name, namespace = %ns, metrics = n, "published drill metrics"),
                Err(e) => {
                    tracing::warn!(drill = %spec.name, namespace = %ns, error = %e, "could not publish drill metrics (the drill result stands)")
                }
            }
        }
        Ok(Outcome { report, written })
    }
}

fn stop_reason(phase: &str, stop: Stop<impl Into<RestoreOrText>>) -> (Verdict, String) {
    match stop {
        Stop::Interrupted => {
            (Verdict::Error, format!("interrupted by a signal during the {phase} phase; the scratch was torn down"))
        }
        Stop::TimedOut(d) => {
            (Verdict::Failed, format!("the {phase} phase did not finish within {}", humantime::format_duration(d)))
        }
        Stop::Failed(e) => match e.into() {
            RestoreOrText::Restore(RestoreError::Failed(m)) => (Verdict::Failed, m),
            RestoreOrText::Restore(RestoreError::Error(m)) => (Verdict::Error, m),
            RestoreOrText::Text(m) => (Verdict::Error, m),
        },
    }
}

enum RestoreOrText {
    Restore(RestoreError),
    Text(String),
}

impl From<RestoreError> for RestoreOrText {
    fn from(e: RestoreError) -> Self {
        RestoreOrText::Restore(e)
    }
}

impl From<String> for RestoreOrText {
    fn from(e: String) -> Self {
        RestoreOrText::Text(e)
    }
}

fn new_run_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn operator() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "unknown".into());
    let host = nix::unistd::gethostname().ok().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{user}@{host}")
}
