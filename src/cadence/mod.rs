//! A drill's cadence, a leaf every other module may use: the `schedule:` expression (a cron, AWS
//! `cron(...)` or `rate(...)`), the schedule it makes with its IANA time zone, its occurrences in a period
//! and when a drill is overdue. It imports nothing of the crate, so config, report, drill and the scheduler
//! (`crate::schedule`) all depend on it without depending on each other.

mod expr;
mod occurrences;

pub(crate) use expr::Expr;
pub(crate) use occurrences::{cadence, last_at_or_before, next_after, occurrences, overdue};

/// A drill's `schedule:` block, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    /// As written in the drill file.
    pub(crate) cron: String,
    pub(crate) expr: Expr,
    pub(crate) timezone: chrono_tz::Tz,
}
