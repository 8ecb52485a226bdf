//! Local PostgreSQL management: binaries, the OS user, clusters, base backups and the WAL archive.

mod backup;
mod bin;
mod cluster;
pub(crate) mod dump;
mod error;
mod tls;
mod user;
mod wal;

pub(crate) use backup::{
    BaseBackup, CopyError, CopyPlan, Manifest, copy_verified, list as list_backups, take as take_backup, verify_wal,
};
pub(crate) use bin::{PgBin, set_dir as set_bin_dir};
pub(crate) use cluster::{Cluster, connect, free_port, remove_tree};
pub(crate) use error::PgError;
pub(crate) use tls::{CHANNEL_BINDING_HINT, Canceller, connect_tls, is_channel_binding_refused, is_tls_refused};
pub(crate) use user::{RunAs, run};
pub(crate) use wal::{Archive, FETCH_LOG, Segment, fetch_wait, prefetching_restore_script, recovery_times};
