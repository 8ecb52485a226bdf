//! The command layer: clap structs, settings resolution, and one module per command.

mod args;
mod demo;
mod dispatch;
mod drill;
pub(crate) mod exit_codes;
mod heartbeat;
mod iam;
mod metrics;
mod report;
mod schedule;
#[allow(clippy::disallowed_methods, reason = "the settings layer is where the environment is read")]
pub(crate) mod settings;
mod stack;

pub(crate) use args::Cli;
pub(crate) use dispatch::{Failure, error_json, init, run, signer, wants_json};
