//! The only place that parses YAML: drill files, with errors that name file, line, column and key.

mod drill;
mod duration;
mod error;
mod locate;
mod target;

pub(crate) use drill::{
    CanarySpec, CheckSpec, DrillSpec, LocalPostgresSpec, RestoreSpec, SecretRef, SourceSpec, SqlSpec, load_drill,
};
pub(crate) use duration::human_seconds;
pub(crate) use error::ConfigError;
pub(crate) use target::{TargetSpec, parse_target_flag};
