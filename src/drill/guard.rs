//! Ownership markers on scratch environments: nothing is removed unless its marker says it is ours.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub(crate) const MARKER: &str = "stackdrill-scratch.json";

/// Written into every scratch directory before anything else goes in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScratchMarker {
    pub(crate) scratch: bool,
    pub(crate) drill: String,
    pub(crate) run: String,
    pub(crate) pid: u32,
    pub(crate) created_at: DateTime<Utc>,
    /// After this, `drill cleanup` may remove it even if its run looks alive.
    pub(crate) expires_at: DateTime<Utc>,
}

/// Writes the marker into a fresh scratch directory as `as_user` (its owner), refusing anything already
/// in its place.
pub(crate) fn write(dir: &Path, marker: &ScratchMarker, as_user: &crate::pg::RunAs) -> Result<(), MarkerError> {
    let text = serde_json::to_string_pretty(marker)?;
    Ok(as_user.create_file(&dir.join(MARKER), text.as_bytes(), 0o644)?)
}

/// Why the scratch marker could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MarkerError {
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    /// Creating the file as the server's OS user failed (or something already stood in its place).
    #[error(transparent)]
    Write(#[from] crate::pg::PgError),
}

pub(crate) fn read(dir: &Path) -> Option<ScratchMarker> {
    // The directory is the PostgreSQL OS user's: a link or a FIFO planted as the marker is not read.
    let text = crate::userfile::read_text(&dir.join(MARKER), 64 * 1024, crate::userfile::Links::Refuse).ok()?;
    serde_json::from_str(&text).ok()
}

/// True when `dir` carries the scratch marker of exactly this run.
pub(crate) fn owned_by_run(dir: &Path, drill: &str, run: &str) -> bool {
    read(dir).is_some_and(|m| m.scratch && m.drill == drill && m.run == run)
}

/// True when the process that created the scratch no longer exists.
pub(crate) fn creator_gone(marker: &ScratchMarker) -> bool {
    let pid = nix::unistd::Pid::from_raw(marker.pid as i32);
    nix::sys::signal::kill(pid, None).is_err()
}
