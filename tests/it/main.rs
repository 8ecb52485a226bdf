//! All integration tests, in one binary so the crate links once.
//!
//! Two tiers. The fast tier (config, plan and IAM output, reports, policy, the CLI's words) needs only the
//! binary: a bare `cargo test` runs it. The slow tier starts real PostgreSQL clusters, the moto emulator, the
//! Supabase stand-in or the linters in `.venv/`; it is compiled in by `--features slow-tests`, which the
//! README's test command (`scripts/test`) passes, so that command still runs every test.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    reason = "tests print their measurements and read the test machine's environment"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "the harness's helpers are test code too: a test fails by panicking"
)]

mod config;
// The fast modules use part of the harness; the slow ones the rest.
#[cfg_attr(not(feature = "slow-tests"), allow(dead_code))]
mod harness;
mod output;
mod posture;
mod stack;

#[cfg(feature = "slow-tests")]
mod aws_drill;
#[cfg(feature = "slow-tests")]
mod evidence;
#[cfg(feature = "slow-tests")]
mod heartbeat;
#[cfg(feature = "slow-tests")]
mod iam_lint;
#[cfg(feature = "slow-tests")]
mod local_drill;
#[cfg(feature = "slow-tests")]
mod logical;
#[cfg(feature = "slow-tests")]
mod moto;
#[cfg(feature = "slow-tests")]
mod objects;
#[cfg(feature = "slow-tests")]
mod plan;
#[cfg(feature = "slow-tests")]
mod posture_aws;
#[cfg(feature = "slow-tests")]
mod production_safety;
#[cfg(feature = "slow-tests")]
mod proxy;
#[cfg(feature = "slow-tests")]
mod reliability;
#[cfg(feature = "slow-tests")]
mod schedule;
#[cfg(feature = "slow-tests")]
mod stack_aws;
#[cfg(feature = "slow-tests")]
mod supabase;
