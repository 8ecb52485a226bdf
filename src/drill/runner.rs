//! Runs one drill: plan → restore → ready → verify → teardown, and returns its report. Teardown runs on
//! every path once a restore has begun, and every drill that reached the restore phase returns a report;
//! the runner writes nothing itself (the fleet hands the report to the store and the reporters).

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::Cancel;
use super::error::{DrillError, RestoreError};
use super::events::{Event, EventSink};
use super::judge::{self, Judgement};
use super::phase::{Stop, bounded, unwinding};
use super::record::{self, Facts, ProviderFacts};
use super::restore::registry::{self, Built};
use super::restore::{
    BackupUsed, BucketRestore, DataVerdict, Endpoint, RestoreProvider, Restored, RestoredBucket, Teardown,
    TeardownStatus,
};
use super::source;
use super::target::{ResolvedTarget, Window, select};
use super::verify::{self, CheckResult, CheckStatus, canary};
use crate::aws::{AwsSettings, CallCounter, Calls};
use crate::config::{CheckSpec, DrillSpec, SecretRef, TargetSpec};
use crate::pg;
use crate::report::model::{self, FileRef, Phase, PhaseStatus, Report};

/// How this run differs from the drill file.
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    pub(crate) target: Option<TargetSpec>,
    pub(crate) trigger: String,
    pub(crate) aws: AwsSettings,
    pub(crate) participants: Vec<String>,
    /// The schedule occurrence this run is for, when a scheduler started it.
    pub(crate) scheduled_for: Option<chrono::DateTime<Utc>>,
    /// When a restore made by hand began (`existing-postgres`), over the drill file's key.
    pub(crate) restore_started_at: Option<chrono::DateTime<Utc>>,
    /// The project a person already restored (`supabase-new-project`, `--restored-project`): not waited for.
    pub(crate) restored_project: Option<String>,
}

impl RunOptions {
    /// A run as the drill file says, started by `trigger` (`manual`, `schedule`, `demo`, `ci`, ...).
    pub(crate) fn new(trigger: &str, aws: &AwsSettings) -> RunOptions {
        RunOptions {
            target: None,
            trigger: trigger.into(),
            aws: aws.clone(),
            participants: vec![],
            scheduled_for: None,
            restore_started_at: None,
            restored_project: None,
        }
    }
}

/// Runs `spec`. `Err` means the drill could not run (nothing was restored, no report); otherwise the
/// report, whatever the verdict.
#[tracing::instrument(skip_all, fields(drill = %spec.name, run = tracing::field::Empty))]
pub(crate) async fn run(
    spec: &DrillSpec,
    opts: &RunOptions,
    events: EventSink,
    cancel: Cancel,
) -> Result<Report, DrillError> {
    let run_id = new_run_id();
    tracing::Span::current().record("run", run_id.as_str());
    let mut ctx = RunCtx::new(spec, opts, events.clone(), cancel, run_id.clone())?;
    // Credentials and residency of every bucket restore are checked before anything is created.
    for (i, b) in spec.also_restore.iter().enumerate() {
        let ids = (spec.name.as_str(), run_id.as_str(), also_index(spec, i));
        let bucket = BucketRestore::connect(b, &opts.aws, ids, events.clone(), scratch_lifetime(spec));
        ctx.buckets.push(bucket.await?);
    }
    let Built { mut provider, aws } = registry::build(spec, opts, &run_id, events).await?;
    // The source login reuses an AWS drill's config (its region, the checked credentials).
    ctx.aws = aws;
    // Boxed: the run's state machine is large.
    Box::pin(ctx.run(provider.as_mut())).await
}

/// The scratch-bucket number of `also-restore[i]` (0 is a primary `aws-s3-bucket` restore's).
pub(crate) fn also_index(spec: &DrillSpec, i: usize) -> usize {
    i + spec.restore.buckets(&[]).count()
}

/// How long a run's scratch may live: every phase's deadline (the ownership tags and cleanup use it).
pub(crate) fn scratch_lifetime(spec: &DrillSpec) -> Duration {
    let t = &spec.timeouts;
    super::restore::plan_timeout(spec) + t.restore + t.ready + t.verify + t.teardown
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

    /// The config of an AWS database provider's drill (the scratch block's region), and its run's facts:
    /// credentials checked, residency enforced.
    pub(crate) async fn for_scratch(
        ctx: &registry::BuildCtx<'_>,
        scratch: &crate::config::AwsScratchSpec,
    ) -> Result<(Aws, super::restore::aws_scratch::RunInfo), DrillError> {
        let aws = Aws::connect(&ctx.opts.aws, scratch.region.as_deref()).await?;
        let info =
            aws.run_info(scratch, &ctx.spec.name, ctx.run_id, ctx.default_db(), ctx.events.clone(), ctx.lifetime)?;
        Ok((aws, info))
    }

    fn run_info(
        &self,
        scratch: &crate::config::AwsScratchSpec,
        drill: &str,
        run: &str,
        default_db: Option<&str>,
        events: EventSink,
        lifetime: Duration,
    ) -> Result<super::restore::aws_scratch::RunInfo, DrillError> {
        use super::restore::aws_scratch;
        // A region outside the drill's residency is refused before anything else happens.
        aws_scratch::check_residency(&self.region, &scratch.residency, "the drill's")?;
        Ok(aws_scratch::RunInfo {
            calls: self.calls.clone(),
            region: self.region.clone(),
            drill: drill.to_string(),
            run: run.to_string(),
            database: aws_scratch::database(scratch, default_db),
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
    /// The AWS drill's SDK config, reused to log in to the source; local drills load one only when asked.
    aws: Option<aws_types::SdkConfig>,
    /// The buckets restored beside the database (`also-restore`), connected, nothing created yet.
    buckets: Vec<BucketRestore>,
}

/// The source sessions the verify phase uses: the one the read-only checks read, and all to cancel.
struct Sessions<'s> {
    reader: Option<&'s source::Session>,
    all: Vec<&'s source::Session>,
}

/// What the checks reach besides the restored database.
struct Reach<'r> {
    sessions: &'r Sessions<'r>,
    canary: Option<&'r canary::Written>,
    /// Where checks against the source cut: the instant the restored data stands at.
    cut: DateTime<Utc>,
    /// The resolved target, and whether it is `latest` (the heartbeat check's RPO basis).
    target_time: DateTime<Utc>,
    latest: bool,
    restored: &'r [RestoredBucket],
}

/// What the plan phase settled.
struct Planned {
    /// The primary (canary writes) and, with `read-from`, the replica the heavy checks read.
    source: Option<(source::Session, Option<source::Session>)>,
    canary: Option<canary::Written>,
    window: Window,
    target: ResolvedTarget,
    backup: BackupUsed,
}

/// What the verify phase found.
struct Verified {
    /// The newest commit replayed into the restore (`pg_last_xact_replay_timestamp`).
    newest_commit: Option<DateTime<Utc>>,
    checks: Vec<CheckResult>,
    /// What was made inert in the restored copy before the checks (`inert.rs`).
    inert: Option<super::inert::InertFindings>,
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
            buckets: Vec::new(),
        })
    }
}

/// Runs `spec` with a provider built by the caller (tests inject mocked AWS clients this way; they are in
/// the slow tier).
#[cfg(all(test, feature = "slow-tests"))]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "slow-tier test code")]
pub(crate) async fn run_with(
    spec: &DrillSpec,
    opts: &RunOptions,
    run_id: &str,
    provider: &mut dyn RestoreProvider,
) -> Result<Report, DrillError> {
    let (_tx, cancel) = Cancel::new();
    let ctx = RunCtx::new(spec, opts, EventSink::new(|_| {}), cancel, run_id.to_string())?;
    ctx.run(provider).await
}

impl RunCtx<'_> {
    /// The run, step by step: plan (no report if it fails), restore and ready, verify, tell the provider,
    /// teardown (always, once a restore began), then judge and record.
    async fn run(mut self, provider: &mut dyn RestoreProvider) -> Result<Report, DrillError> {
        let started_at = Utc::now();
        self.calls = provider.calls().cloned();
        self.calls_mark = self.calls.as_ref().map(CallCounter::snapshot).unwrap_or_default();
        let mut buckets = std::mem::take(&mut self.buckets);
        let Planned { source, canary: written, window, target, backup } =
            self.plan_phase(provider, &mut buckets).await?;
        let (source, replica) = source.map_or((None, None), |(p, r)| (Some(p), r));
        self.connections.extend(source.iter().chain(replica.iter()).map(|s| s.record.clone()));
        // The heavy read-only checks read the replica when there is one; the canary was written to the primary.
        let sessions =
            Sessions { reader: replica.as_ref().or(source.as_ref()), all: source.iter().chain(&replica).collect() };

        let mut outcome = Judgement::passed();
        let (restored_copy, rto) = self.restore_phases(provider, &target, &mut outcome).await;
        // The one engine-neutral match: a database the checks connect to, or a bucket restored alone.
        let (endpoint, primary_bucket) = match restored_copy {
            Some(Restored::Postgres(ep)) => (Some(*ep), None),
            Some(Restored::Bucket(b)) => (None, Some(b)),
            None => (None, None),
        };
        let rto = rto.map(|clock| provider.rto_seconds(Utc::now()).unwrap_or(clock));
        // Restored: a database that accepts queries, or (a bucket restored alone) the restore phase passed.
        let restored = rto.is_some();
        self.also_restore_phase(&mut buckets, restored, &mut outcome).await;
        let restored_buckets: Vec<RestoredBucket> =
            primary_bucket.into_iter().chain(buckets.iter().filter_map(BucketRestore::restored)).collect();
        // Checks against the source cut where the restored data stands: the target, or a dump's time.
        let cut = provider.data_as_of().unwrap_or(target.time);
        let latest = matches!(self.opts.target.as_ref().unwrap_or(&self.spec.target), TargetSpec::Latest);
        let reach = Reach {
            sessions: &sessions,
            canary: written.as_ref(),
            cut,
            target_time: target.time,
            latest,
            restored: &restored_buckets,
        };
        let mut verified = self.verify_or_skip(endpoint.as_ref(), restored, &reach, &mut outcome).await;
        verified.checks.splice(0..0, provider.gate_checks());
        // Nothing more is asked of the source: close its sessions before the teardown.
        drop(sessions);
        drop((source, replica));
        if restored {
            tell_provider(provider, &self.spec.name, &verified.checks, &outcome).await;
        }
        let (teardown, also_restored) = self.teardown_phase(provider, &mut buckets).await;

        let spec = self.spec;
        let measures = judge::measure(
            &spec.objectives,
            restored,
            rto,
            target.time,
            verified.newest_commit,
            &verified.checks,
            provider.rpo_floor().map(|(at, basis)| judge::Floor { at, basis, exact: provider.data_as_of().is_some() }),
        );
        judge::judge(&mut outcome, &verified.checks, &measures, &spec.objectives, restored, &teardown);
        judge::judge_buckets(&mut outcome, &also_restored, &spec.objectives);
        let facts = Facts {
            run_id: self.run_id,
            started_at,
            // A demo drill is a demo wherever it runs (`drill run` of the file `demo --keep` left, a schedule).
            trigger: if spec.demo { "demo".to_string() } else { self.opts.trigger.clone() },
            scheduled_for: self.opts.scheduled_for,
            participants: self.opts.participants.clone(),
            runbook: self.runbook,
            provider: ProviderFacts {
                name: provider.name(),
                details: provider.describe(),
                neutralised: provider.neutralised(),
                findings: provider.findings(),
                recovery: provider.recovery(),
                scratch: endpoint.map(|e| e.display),
            },
            connections: self.connections,
            window,
            target,
            also_restored,
            backup,
            measures,
            newest_commit: verified.newest_commit,
            phases: self.phases,
            checks: verified.checks,
            inert: verified.inert,
            teardown,
            judgement: outcome,
        };
        Ok(record::report(spec, facts))
    }

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
        let res = bounded(&self.cancel, timeout, fut).instrument(phase_span(name)).await;
        let (status, detail) = phase_end(&res);
        self.finish_phase(name, started_at, clock, status, detail);
        res
    }

    fn finish_phase(
        &mut self,
        name: &'static str,
        started_at: DateTime<Utc>,
        clock: Instant,
        status: PhaseStatus,
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
        self.phases.push(Phase { name: name.into(), started_at, seconds, status, detail, api_calls });
    }

    fn skip_phase(&mut self, name: &'static str, why: &str) {
        self.finish_phase(name, Utc::now(), Instant::now(), PhaseStatus::Skipped, Some(why.to_string()));
    }

    /// The plan phase is recorded like the others, but its failure means "could not run": no report.
    async fn plan_phase(
        &mut self,
        provider: &mut dyn RestoreProvider,
        buckets: &mut [BucketRestore],
    ) -> Result<Planned, DrillError> {
        let (started, clock) = self.start_phase("plan");
        let planned = bounded(&self.cancel, super::restore::plan_timeout(self.spec), self.plan(provider, buckets))
            .await
            .map_err(|stop| match stop {
                Stop::Interrupted => DrillError::Interrupted,
                Stop::TimedOut(d) => DrillError::PlanTimeout(humantime::format_duration(d).to_string()),
                Stop::Failed(e) => e,
                Stop::Panicked(what) => DrillError::Panicked(what),
            });
        let (status, detail) = match &planned {
            Ok(p) => (
                PhaseStatus::Passed,
                Some(format!("target {} from backup {}", super::error::fmt_time(&p.target.time), p.backup.id)),
            ),
            Err(e) => (PhaseStatus::Error, Some(e.to_string())),
        };
        self.finish_phase("plan", started, clock, status, detail);
        planned
    }

    async fn connect_source(&self) -> Result<Option<(source::Session, Option<source::Session>)>, DrillError> {
        connect_source(self.spec, self.opts, self.aws.as_ref(), &self.run_id).await
    }

    /// Source login, the canary (with a `latest` target), the recoverable window, the target, the backup;
    /// then every bucket restore must reach the instant the database will stand at.
    async fn plan(
        &self,
        provider: &mut dyn RestoreProvider,
        buckets: &mut [BucketRestore],
    ) -> Result<Planned, DrillError> {
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
                .map_err(|e| DrillError::Source { endpoint: src.record.endpoint.clone(), detail: e.to_string() })?;
            self.events.progress(&spec.name, "plan", "waiting until the target is recoverable (WAL archived)");
            provider.wait_recoverable(w.target, &src.client).await?;
            written = Some(w);
        }
        let window = provider.window().await?;
        let target = select(&target_spec, &window, Utc::now(), written.as_ref().map(|w| w.target))?;
        let backup = provider.plan(&target)?;
        let instant = provider.data_as_of().unwrap_or(target.time);
        for b in buckets.iter_mut() {
            b.plan(instant).await?;
        }
        Ok(Planned { source, canary: written, window, target, backup })
    }

    /// The restore and ready phases: the scratch endpoint when both passed, and the RTO (restore start
    /// until the scratch accepts queries as a primary; for a bucket restored alone, until the restore
    /// phase ends — there is no endpoint then, and the RTO says it passed).
    async fn restore_phases(
        &mut self,
        provider: &mut dyn RestoreProvider,
        target: &ResolvedTarget,
        outcome: &mut Judgement,
    ) -> (Option<Restored>, Option<f64>) {
        let t = self.spec.timeouts;
        let clock = Instant::now();
        if let Err(stop) = self.phase("restore", t.restore, provider.restore(target)).await {
            outcome.stopped("restore", stop);
            let why =
                if outcome.interrupted { "the operator interrupted the drill" } else { "the restore did not complete" };
            self.skip_phase("ready", why);
            return (None, None);
        }
        if !provider.has_ready_phase() {
            self.skip_phase("ready", "a bucket restore has no database to wait for");
            let rto = clock.elapsed().as_secs_f64();
            // Nothing to wait for: the provider hands over what its restore phase brought back.
            return match provider.wait_ready().await {
                Ok(restored) => (Some(restored), Some(rto)),
                Err(e) => {
                    outcome.stopped("restore", Stop::Failed(e));
                    (None, None)
                }
            };
        }
        match self.phase("ready", t.ready, provider.wait_ready()).await {
            Ok(ep) => (Some(ep), Some(clock.elapsed().as_secs_f64())),
            Err(stop) => {
                outcome.stopped("ready", stop);
                (None, None)
            }
        }
    }

    /// The verify phase when there is a restore, else its skip; either way every configured check is in
    /// the result, marked skipped when it could not run.
    async fn verify_or_skip(
        &mut self,
        endpoint: Option<&Endpoint>,
        restored: bool,
        reach: &Reach<'_>,
        outcome: &mut Judgement,
    ) -> Verified {
        let mut verified = match endpoint {
            Some(ep) => self.verify_phase(ep, reach, outcome).await,
            None if restored => self.verify_buckets_phase(reach, outcome).await,
            None => {
                self.skip_phase("verify", "no restored database to verify");
                Verified { newest_commit: None, checks: Vec::new(), inert: None }
            }
        };
        for c in &self.spec.verify {
            if !verified.checks.iter().any(|r| r.name == c.name() && r.kind == c.kind()) {
                let why = match (outcome.interrupted, restored) {
                    (true, _) => "the operator interrupted the drill",
                    (false, true) => "the verify phase did not reach it",
                    (false, false) => "the restore did not complete",
                };
                verified.checks.push(CheckResult::new(c, CheckStatus::Skipped, why));
            }
        }
        verified
    }

    /// The verify phase: connects to the restore (named and recorded), runs the checks with the sessions'
    /// cancellers, and cancels what may still run on the source when the phase ends early.
    async fn verify_phase(&mut self, ep: &Endpoint, reach: &Reach<'_>, outcome: &mut Judgement) -> Verified {
        let spec = self.spec;
        let sessions = reach.sessions;
        let scratch_record = std::sync::Mutex::new(None);
        let verify_fut = async {
            let restore = connect_restore(ep, &self.run_id).await?;
            *scratch_record.lock().unwrap_or_else(|p| p.into_inner()) = Some(ep.record(&restore).await);
            // Before any check: the copy's pg_cron jobs (its heartbeat among them) stop; a copy that cannot be
            // made inert is not verified.
            let inert = super::inert::make_inert(&restore).await.map_err(|e| {
                RestoreError::Error(match e.hint() {
                    Some(h) => format!("{e} ({h})"),
                    None => e.to_string(),
                })
            })?;
            let newest_commit: Option<DateTime<Utc>> = restore
                .query_one("select pg_last_xact_replay_timestamp()", &[])
                .await
                .map_err(|e| RestoreError::Error(verify::db_error(&e)))?
                .get(0);
            let mut cancellers = vec![pg::Canceller::new(&restore, &ep.tls, ep.server_name.as_deref())];
            cancellers.extend(sessions.reader.map(|s| s.canceller.clone()));
            // `sql` checks run as a non-superuser, read-only role when our own session could do anything.
            // Without it they do not run: an error each, never a query in the superuser's session.
            let reader = if spec.verify.iter().any(|c| matches!(c, CheckSpec::Sql(_))) {
                verify::reader::open(&restore, ep, &self.run_id).await
            } else {
                Ok(None)
            };
            if let Ok(Some(r)) = &reader {
                tracing::info!(role = %r.role, "sql checks run as a read-only role in the restore");
                cancellers.push(r.canceller.clone());
            }
            let ctx = verify::Context {
                restore: &restore,
                reader: match &reader {
                    Ok(Some(r)) => &r.client,
                    _ => &restore,
                },
                source: sessions.reader.map(|s| &s.client),
                canary: reach.canary,
                target: reach.cut,
                rpo: spec.objectives.rpo,
                target_time: reach.target_time,
                latest: reach.latest,
                cancellers: &cancellers,
                aws: &self.opts.aws,
                restored: reach.restored,
            };
            let mut checks = Vec::new();
            for c in &spec.verify {
                let r = match (c, &reader) {
                    (CheckSpec::Sql(_), Err(e)) => CheckResult::new(c, CheckStatus::Error, e.to_string()),
                    _ => verify::run_check(c, &ctx, spec.timeouts.check).await,
                };
                self.events.emit(Event::CheckFinished { drill: spec.name.clone(), check: r.clone() });
                checks.push(r);
            }
            Ok::<_, RestoreError>(Verified { newest_commit, checks, inert: Some(inert) })
        };
        let (started_at, clock) = self.start_phase("verify");
        let res = bounded(&self.cancel, spec.timeouts.verify, verify_fut).instrument(phase_span("verify")).await;
        let (status, detail) = phase_end(&res);
        self.finish_phase("verify", started_at, clock, status, detail);
        self.connections.extend(scratch_record.into_inner().unwrap_or_else(|p| p.into_inner()));
        match res {
            Ok(done) => done,
            Err(stop) => {
                // The verify future is gone, but a query it started may still run on the source.
                for s in &sessions.all {
                    s.canceller.cancel().await;
                }
                outcome.stopped("verify", stop);
                Verified { newest_commit: None, checks: Vec::new(), inert: None }
            }
        }
    }

    /// The verify phase of a bucket restored alone: its `objects` checks, no database.
    async fn verify_buckets_phase(&mut self, reach: &Reach<'_>, outcome: &mut Judgement) -> Verified {
        let spec = self.spec;
        let events = self.events.clone();
        let fut = async {
            let mut checks = Vec::new();
            for c in &spec.verify {
                let r = verify::run_bucket_check(c, reach.restored, spec.timeouts.check).await;
                events.emit(Event::CheckFinished { drill: spec.name.clone(), check: r.clone() });
                checks.push(r);
            }
            Ok::<_, RestoreError>(Verified { newest_commit: None, checks, inert: None })
        };
        match self.phase("verify", spec.timeouts.verify, fut).await {
            Ok(done) => done,
            Err(stop) => {
                outcome.stopped("verify", stop);
                Verified { newest_commit: None, checks: Vec::new(), inert: None }
            }
        }
    }

    /// Teardown: not cancellable, bounded by its own deadline (the provider escalates within it); a panic
    /// in it is a failed teardown, never a lost record.
    /// The buckets of `also-restore` go after the database, each guarded by its own tags; the report records
    /// each one's teardown beside its restore.
    async fn teardown_phase(
        &mut self,
        provider: &mut dyn RestoreProvider,
        buckets: &mut [BucketRestore],
    ) -> (Teardown, Vec<model::AlsoRestored>) {
        let (started, clock) = self.start_phase("teardown");
        let deadline = self.spec.timeouts.teardown + Duration::from_secs(30);
        let failed = |detail: String| Teardown { status: TeardownStatus::Failed, at: Utc::now(), detail };
        let work = async {
            let mut td = provider.teardown().await;
            let mut records = Vec::new();
            for b in buckets.iter_mut() {
                let one = b.remove_scratch().await;
                records.push(b.record(one.clone()));
                td = td.and(one);
            }
            (td, records)
        };
        let (td, records) =
            match tokio::time::timeout(deadline, unwinding(work)).instrument(phase_span("teardown")).await {
                Ok(Ok(done)) => done,
                Ok(Err(what)) => {
                    (failed(format!("teardown panicked (a bug): {what}; run `stackdrill drill cleanup`")), Vec::new())
                }
                Err(_) => (failed("teardown did not finish in time".into()), Vec::new()),
            };
        // A teardown cut short leaves its buckets' records: each says its teardown failed.
        let records = if records.len() == buckets.len() {
            records
        } else {
            buckets.iter().map(|b| b.record(failed(format!("`{}`: {}", b.name(), td.detail)))).collect()
        };
        let status = if td.status == TeardownStatus::Failed { PhaseStatus::Failed } else { PhaseStatus::Passed };
        self.finish_phase("teardown", started, clock, status, Some(td.detail.clone()));
        (td, records)
    }

    /// Every bucket of `also-restore`, restored in parallel to the database's instant once the database is
    /// up; a bucket that cannot be restored fails the drill, and the checks still run on what came back.
    async fn also_restore_phase(&mut self, buckets: &mut [BucketRestore], db_restored: bool, outcome: &mut Judgement) {
        if buckets.is_empty() {
            return;
        }
        if !db_restored {
            self.skip_phase("also-restore", "the database restore did not complete");
            return;
        }
        let work = async {
            // Collected first: a lazy iterator of futures held across the await would not be `Send`.
            let restores: Vec<_> = buckets.iter_mut().map(restore_bucket).collect();
            futures_util::future::join_all(restores).await.into_iter().collect::<Result<Vec<()>, _>>()
        };
        if let Err(stop) = self.phase("also-restore", self.spec.timeouts.restore, work).await {
            outcome.stopped("also-restore", stop);
        }
    }
}

/// One bucket restore, its errors naming it.
async fn restore_bucket(b: &mut BucketRestore) -> Result<(), super::error::RestoreError> {
    let res = b.bring_back().await;
    res.map_err(|e| RestoreError::Bucket { name: b.name().to_string(), source: Box::new(e) })
}

/// The span a phase's work runs in: its log lines carry `phase` beside the run's `drill` and `run`.
fn phase_span(name: &'static str) -> tracing::Span {
    tracing::info_span!("phase", phase = name)
}

/// The phase status and detail a phase's result stands for.
fn phase_end<T, E: std::fmt::Display>(res: &Result<T, Stop<E>>) -> (PhaseStatus, Option<String>) {
    match res {
        Ok(_) => (PhaseStatus::Passed, None),
        Err(Stop::Interrupted) => (PhaseStatus::Error, Some("interrupted".to_string())),
        Err(Stop::TimedOut(d)) => {
            (PhaseStatus::Failed, Some(format!("did not finish within {}", humantime::format_duration(*d))))
        }
        Err(Stop::Failed(e)) => (PhaseStatus::Failed, Some(e.to_string())),
        Err(Stop::Panicked(what)) => (PhaseStatus::Error, Some(format!("panicked: {what}"))),
    }
}

/// Connects to the restored database, named after the run.
async fn connect_restore(ep: &Endpoint, run_id: &str) -> Result<tokio_postgres::Client, RestoreError> {
    let mut config = ep.config.clone();
    config.application_name(source::application_name(run_id));
    pg::connect_tls(&config, &ep.tls, ep.server_name.as_deref()).await.map_err(RestoreError::Unreachable)
}

/// The provider hears the verdict on the data while the scratch still exists (AWS Backup records it).
async fn tell_provider(provider: &mut dyn RestoreProvider, drill: &str, checks: &[CheckResult], outcome: &Judgement) {
    let verdict = match (judge::first_bad_check(checks), &outcome.reason) {
        (Some(why), _) => DataVerdict::NotVerified(why),
        (None, Some(r)) => DataVerdict::NotVerified(r.clone()),
        (None, None) => DataVerdict::Verified,
    };
    if let Err(e) = provider.validated(&verdict).await {
        tracing::warn!(drill = %drill, error = %e, "could not record the validation result with the provider");
    }
}

/// Logs in to the source (credentials, TLS, session bounds), and to its replica when `read-from` names one;
/// `None` without a `source` block. `aws` is the drill's config when it has one; else one is loaded only
/// when the login needs it.
pub(crate) async fn connect_source(
    spec: &DrillSpec,
    opts: &RunOptions,
    aws: Option<&aws_types::SdkConfig>,
    run_id: &str,
) -> Result<Option<(source::Session, Option<source::Session>)>, DrillError> {
    let Some(s) = &spec.source else { return Ok(None) };
    let needs_aws = s.from_instance || matches!(s.password, SecretRef::Secret(_) | SecretRef::IamAuth);
    let loaded;
    let aws = match (aws, needs_aws) {
        (Some(c), _) => Some(c),
        (None, true) => {
            loaded = crate::aws::load(&opts.aws).await;
            crate::aws::check_credentials(&loaded).await?;
            Some(&loaded)
        }
        (None, false) => None,
    };
    let login = source::login(s, &spec.restore, aws).await?;
    let bounds = source::Bounds::of(s, spec.timeouts.check);
    let primary = login.connect(run_id, "source", bounds).await?;
    let replica = match &s.read_from {
        Some(at) => Some(login.at(at).connect(run_id, "source-replica", bounds).await?),
        None => None,
    };
    Ok(Some((primary, replica)))
}

pub(crate) fn new_run_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}
