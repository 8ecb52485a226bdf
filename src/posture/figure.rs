//! Figures measured against objectives: an age or lag against a maximum, a count against a maximum,
//! a retention against a minimum; a figure without an objective is recorded as observed.

use std::time::Duration;

use crate::config::human_seconds;
use crate::report::posture::{Figure, Status};

/// `name` is `secs` old (or behind), against at most `max`.
pub(crate) fn at_most(name: &str, secs: f64, max: Option<Duration>, detail: Option<String>) -> Figure {
    let status = match max {
        None => Status::Observed,
        Some(m) if secs <= m.as_secs_f64() => Status::Met,
        Some(_) => Status::NotMet,
    };
    Figure {
        name: name.into(),
        value: human_seconds(secs.max(0.0)),
        number: Some(secs),
        objective: max.map(|m| format!("≤ {}", humantime::format_duration(m))),
        status,
        detail,
    }
}

/// `name` counts `n`, against at most `max`.
pub(crate) fn count_at_most(
    name: &str,
    n: u64,
    unit: (&str, &str),
    max: Option<u64>,
    detail: Option<String>,
) -> Figure {
    let status = match max {
        None => Status::Observed,
        Some(m) if n <= m => Status::Met,
        Some(_) => Status::NotMet,
    };
    Figure {
        name: name.into(),
        value: crate::config::count(n, unit.0, unit.1),
        number: Some(n as f64),
        objective: max.map(|m| format!("≤ {m}")),
        status,
        detail,
    }
}

/// `name` covers `secs` back, against at least `min`.
pub(crate) fn at_least(name: &str, secs: f64, min: Option<Duration>, detail: Option<String>) -> Figure {
    let status = match min {
        None => Status::Observed,
        Some(m) if secs >= m.as_secs_f64() => Status::Met,
        Some(_) => Status::NotMet,
    };
    Figure {
        name: name.into(),
        value: human_seconds(secs.max(0.0)),
        number: Some(secs),
        objective: min.map(|m| format!("≥ {}", humantime::format_duration(m))),
        status,
        detail,
    }
}

/// A figure the reader could not read: never met; `why` says what failed.
pub(crate) fn unread(name: &str, objective: Option<String>, why: String) -> Figure {
    Figure {
        name: name.into(),
        value: "unknown".into(),
        number: None,
        objective,
        status: Status::CouldNotRead,
        detail: Some(why),
    }
}

/// A yes/no figure: `ok` meets the objective `objective`.
pub(crate) fn state(name: &str, value: &str, objective: &str, ok: bool, detail: Option<String>) -> Figure {
    Figure {
        name: name.into(),
        value: value.into(),
        number: Some(if ok { 1.0 } else { 0.0 }),
        objective: Some(objective.into()),
        status: if ok { Status::Met } else { Status::NotMet },
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_meets_its_objective_only_within_it() {
        let h = |n: u64| Some(Duration::from_secs(n * 3600));
        assert_eq!(at_most("backup-age", 25.0 * 3600.0, h(26), None).status, Status::Met);
        assert_eq!(at_most("backup-age", 30.0 * 3600.0, h(26), None).status, Status::NotMet);
        assert_eq!(at_most("backup-age", 30.0 * 3600.0, None, None).status, Status::Observed);
        assert_eq!(at_least("retention", 3.0 * 3600.0, h(24), None).status, Status::NotMet);
        assert_eq!(count_at_most("wal-backlog", 3, ("segment", "segments"), Some(2), None).status, Status::NotMet);
        assert_eq!(unread("archiving", None, "x".into()).status, Status::CouldNotRead);
    }
}
