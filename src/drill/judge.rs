//! The verdict: checks, objectives and teardown judged into `passed`, `failed` or `error` with the first
//! reason, and the RPO measured from the best evidence the restore gave.

use chrono::{DateTime, Utc};

use super::restore::Teardown;
use super::verify::{CheckResult, HeartbeatPoint};
use crate::config::Objectives;
use crate::report::model::{TeardownStatus, Verdict};

/// The verdict so far, and the first reason it is not `passed`.
pub(super) struct Judgement {
    pub(super) verdict: Verdict,
    pub(super) reason: Option<String>,
    /// A phase was stopped by the operator (SIGINT/SIGTERM).
    pub(super) interrupted: bool,
    /// What to do about the error that gave the reason (its `RestoreError::hint`), for the CLI.
    pub(super) hint: Option<String>,
}

impl Judgement {
    pub(super) fn passed() -> Self {
        Judgement { verdict: Verdict::Passed, reason: None, interrupted: false, hint: None }
    }

    /// Records how a phase stopped early.
    pub(super) fn stopped(&mut self, phase: &str, stop: super::phase::Stop<super::error::RestoreError>) {
        self.interrupted |= matches!(stop, super::phase::Stop::Interrupted);
        let hint = match &stop {
            super::phase::Stop::Failed(e) => e.hint(),
            _ => None,
        };
        if self.reason.is_none() {
            self.hint = hint;
        }
        let (v, why) = super::phase::stop_reason(phase, stop);
        self.fail(v, why);
    }

    /// Records a failure; `error` outranks `failed`, and the first reason given is kept.
    pub(super) fn fail(&mut self, v: Verdict, why: String) {
        self.reason.get_or_insert(why);
        if self.verdict == Verdict::Passed || v == Verdict::Error {
            self.verdict = v;
        }
    }
}

/// Each bucket restored beside the database is held to the RTO objective too: in a recovery the stores
/// come back side by side, and the service is back when the slower one is.
pub(super) fn judge_buckets(outcome: &mut Judgement, buckets: &[crate::report::model::AlsoRestored], o: &Objectives) {
    let objective = o.rto.as_secs_f64();
    for b in buckets {
        if let Some(rto) = b.rto_seconds.filter(|r| *r > objective) {
            outcome.fail(
                Verdict::Failed,
                format!(
                    "bucket restore `{}` took {}, over the RTO objective {}",
                    b.name,
                    crate::config::human_seconds(rto),
                    crate::config::human_seconds(objective)
                ),
            );
        }
    }
}

/// The first check that failed or could not run, as a reason.
pub(super) fn first_bad_check(checks: &[CheckResult]) -> Option<String> {
    checks.iter().find(|c| c.status.is_bad()).map(check_reason)
}

fn check_reason(c: &CheckResult) -> String {
    format!("check `{}` {}: {}", c.name, c.status.as_str(), c.detail)
}

/// What was measured against the objectives.
pub(super) struct Measures {
    pub(super) rto: Option<f64>,
    pub(super) rpo: Option<f64>,
    pub(super) rpo_basis: String,
    pub(super) rto_met: bool,
    pub(super) rpo_met: bool,
    /// The newest heartbeat in the restore, and what its RPO is measured from.
    pub(super) recovery_point: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The RPO: the recovery point a heartbeat check found (the data the restore really holds), measured from
/// the target (for `latest`, from the source's newest heartbeat); else the target minus the newest commit
/// replayed; else minus the newest row a freshness check found; else (nothing replayed after a local base
/// backup) minus the backup's start, as an upper bound.
/// What the provider knows of the restored data's moment when no replay is visible.
pub(super) struct Floor<'a> {
    pub(super) at: DateTime<Utc>,
    pub(super) basis: &'a str,
    /// The data stands exactly there (a dump's snapshot), not merely no later than there.
    pub(super) exact: bool,
}

/// The RPO a heartbeat check measured, and its basis.
fn heartbeat_rpo(h: Option<HeartbeatPoint>, target: DateTime<Utc>) -> (Option<f64>, String) {
    let Some(h) = h else { return (None, "not measured".into()) };
    let from = if h.latest && h.reference != target {
        "from the source's newest heartbeat when the drill planned"
    } else {
        "from the target"
    };
    (Some(h.rpo_seconds()), format!("the newest heartbeat in the restore (the recovery point it reached), {from}"))
}

pub(super) fn measure(
    objectives: &Objectives,
    restored: bool,
    rto: Option<f64>,
    target: DateTime<Utc>,
    newest_commit: Option<DateTime<Utc>>,
    checks: &[CheckResult],
    floor: Option<Floor<'_>>,
) -> Measures {
    let secs = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
    // A backup that fixes the data's moment (a dump) states it exactly: it outranks the newest row seen.
    let (floor, exact) = match floor {
        Some(Floor { at, basis, exact }) => (Some((at, basis)), exact),
        None => (None, false),
    };
    let newest_row = checks.iter().filter_map(|c| c.newest).max().filter(|_| !exact);
    let heartbeat = checks.iter().find_map(|c| c.heartbeat).filter(|_| restored);
    let (rpo, rpo_basis) = match (newest_commit, newest_row, floor, restored) {
        (_, _, _, false) => (None, "not measured: no restored database".to_string()),
        _ if heartbeat.is_some() => heartbeat_rpo(heartbeat, target),
        (Some(n), _, _, _) => (Some(secs(target - n)), "the newest commit replayed into the restore".into()),
        (None, Some(n), _, _) => (Some(secs(target - n)), "the newest row a freshness check found".into()),
        // An exact moment after the target (a branch created after planning copies the live state) lost
        // nothing before the target.
        (None, None, Some((floor, basis)), _) if exact => (Some(secs(target - floor).max(0.0)), basis.to_string()),
        (None, None, Some((floor, basis)), _) => (Some(secs(target - floor)), basis.to_string()),
        (None, None, None, _) => {
            (None, "not measured: no replay time is visible; add a heartbeat check (`stackdrill heartbeat install`) or a freshness check on an append-only table".into())
        }
    };
    let rto_met = rto.is_some_and(|v| v <= objectives.rto.as_secs_f64());
    let rpo_met = rpo.is_some_and(|v| v >= 0.0 && v <= objectives.rpo.as_secs_f64());
    Measures { rto, rpo, rpo_basis, rto_met, rpo_met, recovery_point: heartbeat.map(|h| (h.at, h.reference)) }
}

/// Judges what the phases left: every bad check, a missed objective (when something was restored), and a
/// failed teardown, which outranks the rest as an `error`.
pub(super) fn judge(
    outcome: &mut Judgement,
    checks: &[CheckResult],
    m: &Measures,
    objectives: &Objectives,
    restored: bool,
    td: &Teardown,
) {
    for c in checks.iter().filter(|c| c.status.is_bad()) {
        outcome.fail(Verdict::Failed, check_reason(c));
    }
    if restored {
        if !m.rto_met {
            outcome.fail(
                Verdict::Failed,
                format!("RTO objective missed: {:.1}s > {}s", m.rto.unwrap_or(f64::NAN), objectives.rto.as_secs()),
            );
        }
        if !m.rpo_met {
            let why = match m.rpo {
                Some(v) if v < 0.0 => format!("the restore holds a commit {:.3}s after the target", -v),
                Some(v) => format!("RPO objective missed: {v:.1}s > {}s", objectives.rpo.as_secs()),
                None => "RPO not measured".into(),
            };
            outcome.fail(Verdict::Failed, why);
        }
    }
    if td.status == TeardownStatus::Failed {
        outcome.fail(Verdict::Error, format!("teardown failed: {}", td.detail));
    }
}

#[cfg(test)]
mod bucket_tests {
    use crate::report::model::{AlsoRestored, PhaseStatus, TeardownRecord, TeardownStatus, Verdict};

    #[test]
    fn a_bucket_restore_slower_than_the_rto_objective_fails_the_drill() {
        let bucket = |rto: f64| AlsoRestored {
            name: "files".into(),
            provider: "aws-s3-bucket".into(),
            source: "s3://files/".into(),
            from: "versions".into(),
            window: None,
            restored_to: None,
            scratch: None,
            encryption: None,
            objects: Some(1),
            bytes: Some(1),
            rto_seconds: Some(rto),
            status: PhaseStatus::Passed,
            detail: None,
            teardown: TeardownRecord { status: TeardownStatus::Done, at: chrono::Utc::now(), detail: String::new() },
        };
        let objectives = crate::config::Objectives {
            rto: std::time::Duration::from_secs(600),
            rpo: std::time::Duration::from_secs(60),
        };
        let mut ok = super::Judgement::passed();
        super::judge_buckets(&mut ok, &[bucket(599.0)], &objectives);
        assert_eq!(ok.verdict, Verdict::Passed);
        let mut slow = super::Judgement::passed();
        super::judge_buckets(&mut slow, &[bucket(601.0)], &objectives);
        assert_eq!(slow.verdict, Verdict::Failed);
        assert_eq!(slow.reason.as_deref(), Some("bucket restore `files` took 10m 01s, over the RTO objective 10m 00s"));
    }
}

#[cfg(test)]
mod heartbeat_tests {
    use chrono::{DateTime, TimeDelta, Utc};

    use crate::config::{CheckSpec, HeartbeatSpec, Objectives};
    use crate::drill::verify::{CheckResult, CheckStatus, HeartbeatPoint};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc() + TimeDelta::seconds(s)
    }

    fn with(point: HeartbeatPoint) -> Vec<CheckResult> {
        let spec = CheckSpec::Heartbeat(HeartbeatSpec { max_lag: None });
        let mut r = CheckResult::new(&spec, CheckStatus::Passed, "");
        r.heartbeat = Some(point);
        vec![r]
    }

    /// The heartbeat outranks the newest commit replayed: it is the data the restore really holds.
    #[test]
    fn the_heartbeat_is_the_rpo_basis_and_the_objective_fails_past_it() {
        let o = Objectives { rto: std::time::Duration::from_secs(600), rpo: std::time::Duration::from_secs(10) };
        let checks = with(HeartbeatPoint { at: t(70), reference: t(100), latest: false });
        let m = super::measure(&o, true, Some(1.0), t(100), Some(t(99)), &checks, None);
        assert_eq!(m.rpo, Some(30.0));
        assert!(!m.rpo_met);
        assert_eq!(m.recovery_point, Some((t(70), t(100))));
        assert_eq!(m.rpo_basis, "the newest heartbeat in the restore (the recovery point it reached), from the target");
        // `latest`: from the source's newest heartbeat; one after it lost nothing.
        let checks = with(HeartbeatPoint { at: t(101), reference: t(95), latest: true });
        let m = super::measure(&o, true, Some(1.0), t(100), None, &checks, None);
        assert_eq!(m.rpo, Some(0.0));
        assert!(m.rpo_met);
        assert!(m.rpo_basis.ends_with("from the source's newest heartbeat when the drill planned"), "{}", m.rpo_basis);
        // Nothing restored: nothing measured, whatever a check said.
        let m = super::measure(&o, false, None, t(100), None, &checks, None);
        assert_eq!((m.rpo, m.recovery_point), (None, None));
    }
}

#[cfg(test)]
mod hint_tests {
    use super::Judgement;
    use crate::drill::error::RestoreError;
    use crate::drill::phase::Stop;
    use crate::report::model::Verdict;

    /// The hint of the error that gave the reason reaches the judgement (and so the CLI's summary); a later
    /// stop's hint does not replace it, and a stop without an error has none.
    #[test]
    fn the_first_stopped_phase_gives_the_hint() {
        let mut o = Judgement::passed();
        o.stopped("verify", Stop::Failed(RestoreError::Unreachable("connection refused".into())));
        assert_eq!(o.verdict, Verdict::Error);
        assert_eq!(o.reason.as_deref(), Some("cannot connect to the restore: connection refused"));
        let first = o.hint.clone();
        assert!(first.as_deref().is_some_and(|h| h.contains("reachable")), "{first:?}");
        o.stopped("also-restore", Stop::Failed(RestoreError::Error("x".into())));
        assert_eq!(o.hint, first);
        let mut o = Judgement::passed();
        o.stopped("restore", Stop::<RestoreError>::TimedOut(std::time::Duration::from_secs(1)));
        assert_eq!(o.hint, None);
    }
}
