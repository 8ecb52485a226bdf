//! The local scheduler's memory and decisions: per drill, the last occurrence it started and how that run
//! ended (`<state dir>/schedule/<drill>.json`), and what to do now — wait, run, or skip what was missed while
//! nothing was running (the catch-up policy).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ScheduleSpec;

/// What to do about occurrences missed while no scheduler was running (or whose run was interrupted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CatchUp {
    /// Run once for everything missed, then keep the cadence.
    RunOnce,
    /// Forget what was missed; wait for the next occurrence.
    Skip,
}

/// One drill's record in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct State {
    pub(crate) drill: String,
    /// The occurrence most recently acted on (run, or skipped by the catch-up policy).
    pub(crate) occurrence: DateTime<Utc>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// `passed`, `failed`, `error`, `skipped: …`; `None` while running — or when the run was interrupted.
    pub(crate) result: Option<String>,
    pub(crate) report: Option<String>,
}

impl State {
    fn path(drill: &str) -> std::path::PathBuf {
        crate::config::state_dir().join("schedule").join(format!("{drill}.json"))
    }

    pub(crate) fn read(drill: &str) -> Option<State> {
        let text = std::fs::read_to_string(Self::path(drill)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Written to a temporary file and renamed into place: a crash leaves the old record or the new one.
    pub(crate) fn write(&self) -> std::io::Result<()> {
        let path = Self::path(&self.drill);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::report::atomic_write(&path, &bytes)
    }

    /// Started and never recorded an end: the process running it died.
    pub(crate) fn interrupted(&self) -> bool {
        self.result.is_none()
    }
}

#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    /// Nothing due.
    Wait,
    /// Run for `occurrence`; `missed` earlier occurrences were not run.
    Run { occurrence: DateTime<Utc>, missed: usize },
    /// The catch-up policy drops `missed` occurrences up to and including `latest`.
    Skip { latest: DateTime<Utc>, missed: usize },
}

/// What the scheduler does for one drill at `now`. Without a record, it counts from `started` (when this
/// scheduler began): nothing before it was missed. An occurrence older than `grace` was missed (the machine
/// was down, or the run was interrupted) and the catch-up policy decides.
pub(crate) fn decide(
    sched: &ScheduleSpec,
    state: Option<&State>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: chrono::Duration,
    catch_up: CatchUp,
) -> Decision {
    let since = match state {
        // An interrupted run's occurrence is due again.
        Some(s) if s.interrupted() => s.occurrence - chrono::Duration::seconds(1),
        Some(s) => s.occurrence,
        None => started,
    };
    let due = crate::cadence::occurrences(sched, since, now, 100_000);
    let Some(&latest) = due.last() else { return Decision::Wait };
    let earlier = due.len() - 1;
    if now - latest <= grace {
        return Decision::Run { occurrence: latest, missed: earlier };
    }
    match catch_up {
        CatchUp::RunOnce => Decision::Run { occurrence: latest, missed: earlier },
        CatchUp::Skip => Decision::Skip { latest, missed: due.len() },
    }
}

/// When `decide` next has something to do for this drill: its next occurrence after the record.
pub(crate) fn next_due(sched: &ScheduleSpec, state: Option<&State>, started: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let since = state.map(|s| s.occurrence).unwrap_or(started);
    crate::cadence::next_after(sched, since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hourly() -> ScheduleSpec {
        ScheduleSpec {
            cron: "0 * * * *".into(),
            expr: crate::cadence::Expr::parse("0 * * * *").unwrap(),
            timezone: chrono_tz::Asia::Singapore,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn state(occ: &str, result: Option<&str>) -> State {
        State {
            drill: "d".into(),
            occurrence: at(occ),
            started_at: Some(at(occ)),
            finished_at: result.map(|_| at(occ)),
            result: result.map(str::to_string),
            report: None,
        }
    }

    #[test]
    fn on_time_runs_and_a_fresh_scheduler_misses_nothing_before_it_started() {
        let g = chrono::Duration::minutes(5);
        let s = hourly();
        let started = at("2026-11-29T01:30:00Z");
        assert_eq!(decide(&s, None, started, at("2026-11-29T01:59:00Z"), g, CatchUp::Skip), Decision::Wait);
        assert_eq!(
            decide(&s, None, started, at("2026-11-29T02:00:01Z"), g, CatchUp::Skip),
            Decision::Run { occurrence: at("2026-11-29T02:00:00Z"), missed: 0 }
        );
        let done = state("2026-11-29T02:00:00Z", Some("passed"));
        assert_eq!(decide(&s, Some(&done), started, at("2026-11-29T02:30:00Z"), g, CatchUp::Skip), Decision::Wait);
        assert_eq!(next_due(&s, Some(&done), started), Some(at("2026-11-29T03:00:00Z")));
    }

    #[test]
    fn after_downtime_run_once_runs_the_latest_once_and_skip_runs_nothing() {
        let g = chrono::Duration::minutes(5);
        let s = hourly();
        let last = state("2026-11-29T02:00:00Z", Some("passed"));
        let now = at("2026-11-29T05:20:00Z"); // 03:00, 04:00 and 05:00 were missed
        assert_eq!(
            decide(&s, Some(&last), now, now, g, CatchUp::RunOnce),
            Decision::Run { occurrence: at("2026-11-29T05:00:00Z"), missed: 2 }
        );
        assert_eq!(
            decide(&s, Some(&last), now, now, g, CatchUp::Skip),
            Decision::Skip { latest: at("2026-11-29T05:00:00Z"), missed: 3 }
        );
        // Back up in time for the latest occurrence: it runs under either policy.
        let now = at("2026-11-29T05:01:00Z");
        assert_eq!(
            decide(&s, Some(&last), now, now, g, CatchUp::Skip),
            Decision::Run { occurrence: at("2026-11-29T05:00:00Z"), missed: 2 }
        );
    }

    #[test]
    fn an_interrupted_run_is_due_again_under_the_catch_up_policy() {
        let g = chrono::Duration::minutes(5);
        let s = hourly();
        let crashed = state("2026-11-29T02:00:00Z", None);
        let now = at("2026-11-29T02:40:00Z");
        assert_eq!(
            decide(&s, Some(&crashed), now, now, g, CatchUp::RunOnce),
            Decision::Run { occurrence: at("2026-11-29T02:00:00Z"), missed: 0 }
        );
        assert_eq!(
            decide(&s, Some(&crashed), now, now, g, CatchUp::Skip),
            Decision::Skip { latest: at("2026-11-29T02:00:00Z"), missed: 1 }
        );
    }
}
