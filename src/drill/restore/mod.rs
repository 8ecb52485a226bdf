//! Restore providers: one trait (`provider.rs`), one module each.

mod aws_aurora;
mod aws_backup;
mod aws_rds;
pub(crate) mod aws_scratch;
mod local_postgres;
mod provider;

pub(crate) use crate::report::model::TeardownStatus;
pub(crate) use aws_aurora::AwsAuroraCluster;
pub(crate) use aws_backup::AwsBackup;
pub(crate) use aws_rds::AwsRdsInstance;
pub(crate) use local_postgres::LocalPostgres;
pub(crate) use provider::{BackupUsed, Endpoint, RestoreProvider, Teardown, plan_timeout};
