//! Drill cadence from `schedule:` (a cron, AWS `cron(...)` or `rate(...)` in an IANA time zone): the
//! occurrences in a period and the cadence that makes a drill overdue; the local scheduler (`schedule run`);
//! EventBridge Scheduler deployment (`schedule deploy`).

mod cadence;
pub(crate) mod daemon;
pub(crate) mod deploy;
mod expr;
pub(crate) mod runner;

pub(crate) use cadence::{cadence, last_at_or_before, next_after, occurrences, overdue};
pub(crate) use expr::Expr;
