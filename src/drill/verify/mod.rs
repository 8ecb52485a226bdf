//! Verifiers: each proves one thing about the restored data and reports passed, failed, skipped or error.

mod amcheck;
pub(crate) mod canary;
mod check;
mod checksum;
mod error;
mod freshness;
mod heartbeat;
mod object_refs;
mod objects;
pub(crate) mod reader;
mod row_count;
mod schema;
mod session;
mod sql;
// The slow test tier (`--features slow-tests`): these start real PostgreSQL clusters.
#[cfg(all(test, feature = "slow-tests"))]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "slow-tier test code")]
pub(crate) mod testdb;
#[cfg(all(test, feature = "slow-tests"))]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "slow-tier test code")]
mod tests;

pub(crate) use crate::report::model::CheckStatus;
pub(crate) use check::{CheckResult, Context, HeartbeatPoint, db_error, run_bucket_check, run_check};
pub(crate) use error::CheckError;
pub(crate) use heartbeat::TABLE as HEARTBEAT_TABLE;
