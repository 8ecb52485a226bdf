//! A schedule's occurrences, its cadence, and when a drill is overdue.

use chrono::{DateTime, Utc};

use super::Schedule as ScheduleSpec;

/// The first occurrence strictly after `t`.
pub(crate) fn next_after(s: &ScheduleSpec, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.expr.next_after(&s.timezone, t)
}

/// Every occurrence in `(from, to]`, at most `cap`.
pub(crate) fn occurrences(s: &ScheduleSpec, from: DateTime<Utc>, to: DateTime<Utc>, cap: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while out.len() < cap {
        match next_after(s, t) {
            Some(n) if n <= to => {
                out.push(n);
                t = n;
            }
            _ => break,
        }
    }
    out
}

/// The latest occurrence at or before `now`, looking back at most `horizon` occurrences of cadence.
pub(crate) fn last_at_or_before(s: &ScheduleSpec, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let gap = cadence(s, now)?;
    let from = now - gap * 2;
    occurrences(s, from, now, 10_000).last().copied()
}

/// The gap between the next two occurrences after `t`: how often the drill should run.
pub(crate) fn cadence(s: &ScheduleSpec, t: DateTime<Utc>) -> Option<chrono::Duration> {
    if let Some(r) = s.expr.rate() {
        return Some(r);
    }
    let a = next_after(s, t)?;
    let b = next_after(s, a)?;
    Some(b - a)
}

/// Overdue: no passed run since the occurrence before the latest one at or before `now` (one cadence of
/// grace). `None` when the schedule has no occurrence to judge by.
pub(crate) fn overdue(s: &ScheduleSpec, last_pass: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<bool> {
    let due = last_at_or_before(s, now)?;
    let gap = cadence(s, now)?;
    Some(last_pass.is_none_or(|t| t < due - gap))
}
