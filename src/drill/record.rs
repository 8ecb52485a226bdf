//! The report a run leaves: engine facts converted into the signed v1 model (`report/model.rs`). Nothing
//! here decides anything; the verdict comes from `judge.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::judge::{Judgement, Measures};
use super::restore::{BackupUsed, Teardown};
use super::target::{Recovery, ResolvedTarget, Window};
use super::verify::CheckResult;
use crate::config::DrillSpec;
use crate::report::model::{self, FileRef, Report};

impl From<BackupUsed> for model::Backup {
    fn from(b: BackupUsed) -> Self {
        let BackupUsed { id, location, started_at, finished_at } = b;
        model::Backup { id, location, started_at, finished_at }
    }
}

impl From<CheckResult> for model::Check {
    fn from(c: CheckResult) -> Self {
        let CheckResult { name, kind, status, detail, seconds, newest, heartbeat } = c;
        // A heartbeat check records its recovery point where a freshness check records its newest row.
        let newest = newest.or(heartbeat.map(|h| h.at));
        model::Check { name, kind, status, detail, seconds, newest, query: None, expect: None }
    }
}

impl From<super::inert::InertFindings> for model::Inert {
    fn from(f: super::inert::InertFindings) -> Self {
        let super::inert::InertFindings { cron_jobs, cron_jobs_deactivated, pg_net_queued, foreign_servers, notes } = f;
        model::Inert {
            cron_jobs: cron_jobs
                .into_iter()
                .map(|j| model::InertCronJob {
                    jobid: j.jobid,
                    schedule: j.schedule,
                    was_active: j.was_active,
                    heartbeat: j.heartbeat,
                })
                .collect(),
            cron_jobs_deactivated,
            pg_net_queued,
            foreign_servers,
            notes,
        }
    }
}

impl From<Teardown> for model::TeardownRecord {
    fn from(t: Teardown) -> Self {
        let Teardown { status, at, detail } = t;
        model::TeardownRecord { status, at, detail }
    }
}

/// What the provider says about itself and the scratch, for the report's `source`.
pub(super) struct ProviderFacts {
    pub(super) name: &'static str,
    pub(super) details: Vec<(&'static str, String)>,
    pub(super) neutralised: Vec<String>,
    /// What the restore worked around, and what to do about it: deviations in the report.
    pub(super) findings: Vec<(String, String)>,
    /// How the data was reached, when not by WAL replay to the target.
    pub(super) recovery: Option<String>,
    pub(super) scratch: Option<String>,
}

/// Everything a finished run knows, in engine types.
pub(super) struct Facts {
    pub(super) run_id: String,
    pub(super) started_at: DateTime<Utc>,
    pub(super) trigger: String,
    pub(super) scheduled_for: Option<DateTime<Utc>>,
    pub(super) participants: Vec<String>,
    pub(super) runbook: Option<FileRef>,
    pub(super) provider: ProviderFacts,
    pub(super) connections: Vec<model::Connection>,
    pub(super) window: Window,
    pub(super) target: ResolvedTarget,
    pub(super) also_restored: Vec<model::AlsoRestored>,
    pub(super) backup: BackupUsed,
    pub(super) measures: Measures,
    pub(super) newest_commit: Option<DateTime<Utc>>,
    pub(super) phases: Vec<model::Phase>,
    pub(super) checks: Vec<CheckResult>,
    /// What `inert.rs` found and switched off in the restored database.
    pub(super) inert: Option<super::inert::InertFindings>,
    pub(super) teardown: Teardown,
    pub(super) judgement: Judgement,
}

/// A check as the report records it: a `sql` check with its query and expectation.
fn check_record(spec: &DrillSpec, c: CheckResult) -> model::Check {
    let sql = spec.verify.iter().find_map(|s| match s {
        crate::config::CheckSpec::Sql(q) if c.kind == "sql" && q.name == c.name => Some(q),
        _ => None,
    });
    let mut m = model::Check::from(c);
    if let Some(q) = sql {
        m.query = Some(q.query.clone());
        m.expect = Some(q.expect.describe());
    }
    m
}

/// The v1 report of a run, deviations included; unsigned and unchained until a store writes it.
pub(super) fn report(spec: &DrillSpec, f: Facts) -> Report {
    let now = Utc::now();
    let m = f.measures;
    let mut report = Report {
        schema: model::SCHEMA.into(),
        id: f.run_id,
        drill: spec.name.clone(),
        description: spec.description.clone(),
        result: f.judgement.verdict,
        reason: f.judgement.reason,
        hint: f.judgement.hint,
        interrupted: f.judgement.interrupted,
        started_at: f.started_at,
        finished_at: now,
        tool: model::Tool { name: "stackdrill".into(), version: env!("CARGO_PKG_VERSION").into() },
        operator: operator(),
        trigger: f.trigger,
        scheduled_for: f.scheduled_for,
        next_scheduled: spec.schedule.as_ref().and_then(|s| crate::cadence::next_after(s, now)),
        drill_file: FileRef::of(&spec.file).unwrap_or(FileRef {
            path: spec.file.display().to_string(),
            sha256: None,
            git_commit: None,
            git_dirty: false,
        }),
        connections: f.connections,
        neutralised: f.provider.neutralised,
        inert: f.inert.filter(|i| !i.is_empty()).map(Into::into),
        source: model::Source {
            provider: f.provider.name.into(),
            details: f.provider.details.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
            backup: Some(f.backup.into()),
            scratch: f.provider.scratch,
        },
        target: target_record(&f.target, &f.window, f.provider.recovery),
        also_restored: f.also_restored,
        objectives: model::Objectives {
            rto_seconds: spec.objectives.rto.as_secs_f64(),
            rpo_seconds: spec.objectives.rpo.as_secs_f64(),
        },
        measured: model::Measured {
            rto_seconds: m.rto,
            rpo_seconds: m.rpo,
            rpo_basis: m.rpo_basis,
            newest_commit: f.newest_commit,
            rto_met: m.rto_met,
            rpo_met: m.rpo_met,
            recovery_point: m.recovery_point.map(|(at, _)| at),
            recovery_point_reference: m.recovery_point.map(|(_, reference)| reference),
        },
        phases: f.phases,
        checks: f.checks.into_iter().map(|c| check_record(spec, c)).collect(),
        teardown: f.teardown.into(),
        runbook: f.runbook,
        controls: spec.controls.clone(),
        participants: f.participants,
        deviations: vec![],
        previous_sha256: None,
        signing: None,
    };
    report.deviations = model::deviations(&report);
    let findings = f.provider.findings.into_iter().map(|(what, remediation)| model::Deviation { what, remediation });
    report.deviations.extend(findings);
    report
}

fn target_record(target: &ResolvedTarget, window: &Window, recovery: Option<String>) -> model::Target {
    model::Target {
        time: Some(target.time),
        selection: target.selection.clone(),
        seed: target.seed,
        recovery: recovery.unwrap_or_else(|| match target.recovery {
            Recovery::Time(_) => "recovery_target_time, promote at the target".into(),
            Recovery::End => "replay to the end of the archived WAL, then promote".into(),
        }),
        window: Some(model::WindowRecord { earliest: window.earliest, latest: window.latest }),
    }
}

/// `user@host` of whoever ran the drill.
fn operator() -> String {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "unknown".into());
    let host = nix::unistd::gethostname().ok().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{user}@{host}")
}
