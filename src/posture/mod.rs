//! The daily backup-posture check (`backups check`): one reader per store kind (`reader.rs` dispatches),
//! each turning what it reads into figures measured against the store's objectives (`figure.rs`).

mod aws;
mod figure;
mod local_postgres;
pub(crate) mod metrics;
mod reader;
mod supabase;

pub(crate) use reader::check;
