//! Running drills on their cadence: the local scheduler (`schedule run`) and EventBridge Scheduler
//! deployment (`schedule deploy`). The cadence itself (expressions, occurrences, overdue) is the leaf
//! module `crate::cadence`, which config, report and drill use without importing the scheduler.

pub(crate) mod daemon;
pub(crate) mod deploy;
pub(crate) mod runner;
