//! The only place that parses YAML: drill files, with errors that name file, line, column and key.

mod drill;
mod duration;
mod error;
mod locate;
mod target;

pub(crate) use drill::{
    CanarySpec, CheckSpec, DrillSpec, Expect, LocalPostgresSpec, Objectives, RestoreSpec, SecretRef, SourceSpec,
    SqlSpec, Timeouts, is_identifier, load_drill, parse_drill,
};
pub(crate) use duration::{human_seconds, parse_duration};
pub(crate) use error::ConfigError;
pub(crate) use target::{TargetSpec, parse_target_flag};
