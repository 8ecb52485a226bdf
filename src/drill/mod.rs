//! The drill engine: restore a backup to a point in time into scratch, verify it, tear it down, report.

mod cancel;
pub(crate) mod cleanup;
mod error;
pub(crate) mod events;
pub(crate) mod fleet;
pub(crate) mod forecast;
pub(crate) mod guard;
pub(crate) mod heartbeat;
pub(crate) mod inert;
mod judge;
pub(crate) mod metrics;
mod phase;
pub(crate) mod plan;
mod record;
pub(crate) mod restore;
pub(crate) mod runner;
pub(crate) mod source;
mod target;
pub(crate) mod verify;

pub(crate) use cancel::Cancel;
pub(crate) use error::DrillError;
pub(crate) use runner::{RunOptions, run};
