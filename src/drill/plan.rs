//! `drill plan`: everything a run would settle before restoring, without creating anything or writing to
//! the source — the file, credentials and who they are, the source over TLS in a bounded read-only session
//! (and whether a canary could write), the recoverable window, the target and the backup a run would pick,
//! the scratch it would make, objectives against the provider's floor, and the RTO forecast.

use chrono::Utc;
use serde::Serialize;

use super::error::DrillError;
use super::events::EventSink;
use super::forecast::{Forecast, forecast};
use super::restore::registry::{self, Built};
use super::restore::{BucketRestore, RestoreProvider};
use super::runner::{RunOptions, connect_source};
use super::target::select;
use crate::config::{CheckSpec, DrillSpec, TargetSpec, human_seconds};
use crate::report::model::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    Ok,
    Warn,
    Fail,
}

/// One thing the plan looked at.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Item {
    pub(crate) status: Status,
    pub(crate) topic: &'static str,
    pub(crate) what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plan {
    pub(crate) schema: &'static str,
    pub(crate) drill: String,
    pub(crate) file: String,
    /// `ready`, `would-fail` or `could-not-plan`.
    pub(crate) verdict: &'static str,
    pub(crate) items: Vec<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) forecast: Option<Forecast>,
}

impl Plan {
    /// 0 ready, 1 would fail (a problem, or the forecast misses the RTO), 2 could not plan.
    pub(crate) fn exit_code(&self) -> u8 {
        match self.verdict {
            "ready" => 0,
            "would-fail" => 1,
            _ => 2,
        }
    }

    fn settle(mut self, could_not: Option<(String, Option<String>)>) -> Plan {
        if let Some((what, hint)) = could_not {
            self.items.push(Item { status: Status::Fail, topic: "plan", what, hint });
            self.verdict = "could-not-plan";
        } else if self.items.iter().any(|i| i.status == Status::Fail) {
            self.verdict = "would-fail";
        } else {
            self.verdict = "ready";
        }
        self
    }
}

impl Plan {
    /// The plan of a file that does not load: its problems, and nothing else could be looked at.
    pub(crate) fn invalid(file: &std::path::Path, problems: Vec<String>) -> Plan {
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let items = problems
            .into_iter()
            .map(|what| Item {
                status: Status::Fail,
                topic: "file",
                what,
                hint: Some("`stackdrill drill validate` lists every problem".into()),
            })
            .collect();
        Plan { verdict: "could-not-plan", ..Plan::new(stem, file.display().to_string(), items, None) }
    }

    /// A plan not yet settled (`settle` gives its verdict).
    fn new(drill: String, file: String, items: Vec<Item>, forecast: Option<Forecast>) -> Plan {
        Plan { schema: "stackdrill.plan/v1", drill, file, verdict: "", items, forecast }
    }

    /// A plan of `spec` with `items`, settled.
    fn of(spec: &DrillSpec, items: Vec<Item>, forecast: Option<Forecast>, could_not: Option<DrillError>) -> Plan {
        let could_not = could_not.map(|e| (e.to_string(), e.hint()));
        Plan::new(spec.name.clone(), spec.file.display().to_string(), items, forecast).settle(could_not)
    }
}

/// The past runs the forecast is fitted on: this drill's, and every run of a drill with the same provider.
pub(crate) struct History<'a> {
    pub(crate) own: Vec<&'a Report>,
    pub(crate) same_provider: Vec<&'a Report>,
}

struct Planner<'a> {
    spec: &'a DrillSpec,
    opts: &'a RunOptions,
    run_id: String,
    history: History<'a>,
    items: Vec<Item>,
}

impl Planner<'_> {
    fn item(&mut self, status: Status, topic: &'static str, what: String, hint: Option<&str>) {
        self.items.push(Item { status, topic, what, hint: hint.map(str::to_string) });
    }
}

impl Planner<'_> {
    /// The plan with a built provider.
    async fn with(mut self, provider: &mut dyn RestoreProvider, aws: Option<aws_types::SdkConfig>) -> Plan {
        // A step that fails ends the plan, keeping what the steps before it found.
        let (forecast, could_not) = match self.steps(provider, aws).await {
            Ok(f) => (f, None),
            Err(e) => (None, Some(e)),
        };
        Plan::of(self.spec, self.items, forecast, could_not)
    }
}

impl Planner<'_> {
    /// Each step in the order a run takes them; the first that cannot go on ends the plan.
    async fn steps(
        &mut self,
        provider: &mut dyn RestoreProvider,
        aws: Option<aws_types::SdkConfig>,
    ) -> Result<Option<Forecast>, DrillError> {
        if let Some(aws) = &aws {
            self.credentials(aws).await;
        }
        self.source(aws.as_ref()).await;
        let instant = self.window_target_backup(provider).await?;
        self.buckets(instant).await?;
        let region = aws.as_ref().and_then(|a| a.region()).map(|r| r.to_string());
        let scratch = scratch_text(self.spec, &self.run_id, region.as_deref());
        self.item(Status::Ok, "scratch", scratch, None);
        if let Some(step) = provider.operator_step(instant) {
            self.item(Status::Ok, "dashboard step", step, None);
        }
        self.objective_floor();
        Ok(self.forecast(provider.restored_bytes()))
    }

    /// Who the AWS credentials are, and where.
    async fn credentials(&mut self, aws: &aws_types::SdkConfig) {
        let who = crate::aws::caller_identity(aws).await.unwrap_or_else(|e| format!("unknown ({e})"));
        let region = aws.region().map(|r| r.to_string()).unwrap_or_default();
        self.item(Status::Ok, "credentials", format!("AWS credentials of {who} in {region}"), None);
    }

    /// The source (and its replica) as a run logs in to them, and whether a canary could write; a source that
    /// cannot be reached is a problem, not the end of the plan.
    async fn source(&mut self, aws: Option<&aws_types::SdkConfig>) {
        let (primary, replica) = match connect_source(self.spec, self.opts, aws, &self.run_id).await {
            Ok(Some(sessions)) => sessions,
            Ok(None) => return,
            Err(e) => {
                let hint = e.hint();
                return self.item(Status::Fail, "source", e.to_string(), hint.as_deref());
            }
        };
        for (role, s) in std::iter::once(("", &primary)).chain(replica.iter().map(|r| ("replica ", r))) {
            self.item(Status::Ok, "source", format!("{role}{}: {}", s.record.endpoint, s.record.protection()), None);
        }
        let canary = self.spec.verify.iter().find_map(|c| match c {
            CheckSpec::Canary(c) => Some(c.table.clone()),
            _ => None,
        });
        if let Some(table) = canary {
            let (ok, why) = canary_writable(&primary.client, &table).await;
            let hint = "grant the source user INSERT on the canary table (or CREATE on its schema), on the primary";
            self.item(if ok { Status::Ok } else { Status::Fail }, "canary", why, (!ok).then_some(hint));
        }
    }

    /// Each `also-restore` bucket: reachable, in its residency, able to reach `instant` (read-only calls).
    async fn buckets(&mut self, instant: chrono::DateTime<Utc>) -> Result<(), DrillError> {
        let spec = self.spec;
        for (i, b) in spec.also_restore.iter().enumerate() {
            let ids = (spec.name.as_str(), self.run_id.as_str(), super::runner::also_index(spec, i));
            let lifetime = super::runner::scratch_lifetime(spec);
            let mut r = BucketRestore::connect(b, &self.opts.aws, ids, EventSink::new(|_| {}), lifetime).await?;
            r.plan(instant).await?;
            self.item(Status::Ok, "also-restore", r.plan_text(), None);
        }
        Ok(())
    }

    /// The recoverable window, the target a run would pick in it, and the backup it would restore; the
    /// instant the restored data would stand at.
    async fn window_target_backup(
        &mut self,
        provider: &mut dyn RestoreProvider,
    ) -> Result<chrono::DateTime<Utc>, DrillError> {
        let spec = self.spec;
        let window = provider.window().await?;
        let fmt = |t: &chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let span = format!("recoverable {} .. {}", fmt(&window.earliest), fmt(&window.latest));
        self.item(Status::Ok, "window", span, None);
        let target_spec = self.opts.target.clone().unwrap_or_else(|| spec.target.clone());
        let canary = spec.verify.iter().any(|c| matches!(c, CheckSpec::Canary(_)));
        let target = select(&target_spec, &window, Utc::now(), None)?;
        let how = if canary && matches!(target_spec, TargetSpec::Latest) {
            "latest: a run writes two canary rows and restores to the moment between them".to_string()
        } else {
            format!("{} → {}", target.selection, fmt(&target.time))
        };
        self.item(Status::Ok, "target", how, None);
        let backup = provider.plan(&target)?;
        self.item(Status::Ok, "backup", format!("{} ({})", backup.id, backup.location), None);
        Ok(provider.data_as_of().unwrap_or(target.time))
    }

    /// An RTO objective below the least the provider takes cannot be met.
    fn objective_floor(&mut self) {
        let spec = self.spec;
        let objective = spec.objectives.rto.as_secs_f64();
        let Some((floor, why)) = registry::kind(&spec.restore).rto_floor().filter(|(f, _)| (objective as u64) < *f)
        else {
            return;
        };
        let what = format!(
            "RTO objective {} is below what {} takes at the least (~{}: {why})",
            human_seconds(objective),
            spec.restore.provider(),
            human_seconds(floor as f64)
        );
        let hint = "raise the objective with the service owner, or restore with a faster provider";
        self.item(Status::Fail, "objectives", what, Some(hint));
    }

    /// The RTO forecast at `bytes` from the history, as an item: a miss fails, an interval past it warns.
    fn forecast(&mut self, bytes: Option<u64>) -> Option<Forecast> {
        let objective = self.spec.objectives.rto.as_secs_f64();
        let Some(f) = forecast(&self.history.own, &self.history.same_provider, bytes, objective) else {
            let what = "no RTO forecast: no past run of this drill or its provider".to_string();
            self.item(Status::Warn, "forecast", what, None);
            return None;
        };
        let status = match (f.misses(), f.at_risk()) {
            (true, _) => Status::Fail,
            (false, true) => Status::Warn,
            _ => Status::Ok,
        };
        let what = format!(
            "RTO {} (interval {} .. {}) against the objective {}: {}",
            human_seconds(f.seconds),
            human_seconds(f.low),
            human_seconds(f.high),
            human_seconds(f.objective),
            f.basis
        );
        let hint = "the restore is forecast to miss its RTO: plan capacity, a faster restore path, or a new objective";
        self.item(status, "forecast", what, f.misses().then_some(hint));
        Some(f)
    }
}

/// What the run would create: never created here.
fn scratch_text(spec: &DrillSpec, run_id: &str, region: Option<&str>) -> String {
    let short: String = run_id.chars().take(8).collect();
    let name = format!("sd-{}-{short}", spec.name);
    registry::kind(&spec.restore).scratch_text(&name, spec, run_id, region)
}

/// Whether the source user could write the canary: INSERT on the table, or CREATE on the schema when the
/// table is not there yet; and the session is on a primary. Reads only.
async fn canary_writable(client: &tokio_postgres::Client, table: &str) -> (bool, String) {
    let q = "select pg_is_in_recovery(), to_regclass($1) is not null, \
             case when to_regclass($1) is not null then has_table_privilege(to_regclass($1), 'INSERT') \
                  else has_schema_privilege(current_schema(), 'CREATE') end";
    match client.query_one(q, &[&table]).await {
        Ok(row) => {
            let (standby, exists, can): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
            match (standby, exists, can) {
                (true, _, _) => (false, "the canary needs a writable source, and this one is a standby".into()),
                (false, true, true) => (true, format!("the source user may insert into `{table}`")),
                (false, false, true) => (true, format!("the source user may create `{table}` in its schema")),
                (false, true, false) => (false, format!("the source user may not insert into `{table}`")),
                (false, false, false) => {
                    (false, format!("`{table}` does not exist and the source user may not create it"))
                }
            }
        }
        Err(e) => (false, format!("cannot tell whether the canary could write: {}", super::verify::db_error(&e))),
    }
}

/// Plans `spec`: `Ok` always — a drill that could not be planned says so in its verdict.
pub(crate) async fn plan(spec: &DrillSpec, opts: &RunOptions, history: History<'_>) -> Plan {
    let run_id = super::runner::new_run_id();
    let file = Item {
        status: Status::Ok,
        topic: "file",
        what: format!(
            "valid: {} with {}, objectives RTO {} and RPO {}",
            spec.restore.provider(),
            crate::config::count(spec.verify.len() as u64, "check", "checks"),
            human_seconds(spec.objectives.rto.as_secs_f64()),
            human_seconds(spec.objectives.rpo.as_secs_f64())
        ),
        hint: None,
    };
    let planner = Planner { spec, opts, run_id: run_id.clone(), history, items: vec![file.clone()] };
    // Building the provider (credentials, residency) can end the plan before any step runs.
    match registry::build(spec, opts, &run_id, EventSink::new(|_| {})).await {
        Ok(Built { mut provider, aws }) => Box::pin(planner.with(provider.as_mut(), aws)).await,
        Err(e) => Plan::of(spec, vec![file], None, Some(e)),
    }
}
