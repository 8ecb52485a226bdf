//! Drill cadence from `schedule:` (cron in an IANA time zone): the occurrences in a period, and the
//! cadence (the gap between consecutive occurrences) that makes a drill overdue.

use chrono::{DateTime, Utc};

use crate::config::ScheduleSpec;

/// The first occurrence strictly after `t`.
pub(crate) fn next_after(s: &ScheduleSpec, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let cron = croner::Cron::new(&s.cron).parse().ok()?;
    cron.find_next_occurrence(&t.with_timezone(&s.timezone), false).ok().map(|d| d.with_timezone(&Utc))
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
    let a = next_after(s, t)?;
    let b = next_after(s, a)?;
    Some(b - a)
}
