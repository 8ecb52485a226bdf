//! The only place that parses YAML: drill, stack, schedule (deploy) and stack-bucket files into typed
//! specs, with errors that name file, line, column and key (`parse.rs` is what every file kind shares).

mod aws_restore;
mod backups;
mod bucket;
mod deploy;
mod drill;
mod drill_spec;
mod duration;
mod error;
#[cfg(test)]
mod fuzz;
mod locate;
mod logical;
mod object_refs;
mod parse;
mod sql_text;
mod stack;
mod stack_bucket;
mod target;
mod tls;

#[cfg(test)]
pub(crate) use aws_restore::is_db_identifier;
pub(crate) use aws_restore::{AuroraClusterSpec, AwsBackupSpec, AwsScratchSpec, PointKind, RdsInstanceSpec};
#[cfg(test)]
pub(crate) use backups::parse_backups;
pub(crate) use backups::{
    AwsBackupPostureSpec, AwsPostureSpec, BackupStoreSpec, BackupsSpec, Encryption, LocalPostureSpec,
    PostureObjectives, PostureSource, SupabasePostureSpec, load_backups,
};
#[cfg(test)]
pub(crate) use bucket::is_bucket_name;
pub(crate) use deploy::{DeploySpec, load_deploy};
#[cfg(test)]
pub(crate) use drill::parse_drill;
pub(crate) use drill::{advice, load_drill, missing_files};
pub(crate) use drill_spec::{
    AmcheckSpec, AsOf, BucketRestoreSpec, BucketSource, CanarySpec, CheckSpec, ChecksumAlgorithm, ChecksumSpec,
    DrillSpec, FreshnessSpec, HeartbeatSpec, LocalPostgresSpec, ObjectRefsSpec, ObjectStoreSpec, Objectives,
    ObjectsSpec, RestoreSpec, RowCountSpec, ScheduleSpec, SchemaSpec, SecretRef, SourceSpec, SqlSpec, Timeouts,
    Tolerance,
};
pub(crate) use duration::{count, human_seconds};
pub(crate) use error::ConfigError;
pub(crate) use locate::{project_dir, set_state_dir, state_dir};
pub(crate) use logical::{
    DumpLocation, ExistingPostgresSpec, PgDumpSpec, SupabaseBranchSpec, SupabaseConnect, SupabaseNewProjectSpec,
};
pub(crate) use sql_text::single_statement;
pub(crate) use stack::{
    AlarmKind, AlarmMetric, AlertsSpec, AppSpec, BackupSpec, DatabaseSpec, Purpose, ShieldMode, StackSpec, load_stack,
};
pub(crate) use target::{TargetSpec, parse_target_flag, parse_target_time};
pub(crate) use tls::TlsSpec;
