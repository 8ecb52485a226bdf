//! Base backups in a directory: taking them (`pg_basebackup`, plain format with a manifest),
//! listing them with their times, and checking them with `pg_verifybackup`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bin::PgBin;
use super::cluster::Cluster;
use super::error::PgError;
use super::user::{RunAs, run};
use super::wal::Segment;

const SIDECAR: &str = "stackdrill-backup.json";

/// One base backup and when it became usable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BaseBackup {
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) path: PathBuf,
    pub(crate) started_at: DateTime<Utc>,
    /// Recovery to a time before this cannot reach consistency.
    pub(crate) finished_at: DateTime<Utc>,
    /// The first WAL segment the backup needs.
    pub(crate) start_wal: String,
    pub(crate) timeline: u32,
}

impl BaseBackup {
    pub(crate) fn start_segment(&self, seg_size: u64) -> Option<Segment> {
        Segment::parse(&self.start_wal, seg_size)
    }
}

/// Lists complete base backups (those with a `backup_manifest`), oldest first.
pub(crate) fn list(dir: &Path) -> Result<Vec<BaseBackup>, PgError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(PgError::io("cannot read the base backup directory", dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".partial") || !path.join("backup_manifest").is_file() {
            continue;
        }
        match describe(&path, &name) {
            Ok(b) => out.push(b),
            Err(e) => tracing::warn!(backup = %path.display(), error = %e, "skipping an unreadable base backup"),
        }
    }
    out.sort_by_key(|b| b.finished_at);
    Ok(out)
}

fn describe(path: &Path, name: &str) -> Result<BaseBackup, PgError> {
    let sidecar = path.join(SIDECAR);
    if let Ok(text) = crate::userfile::read_text(&sidecar, 1024 * 1024, crate::userfile::Links::Follow) {
        let mut b: BaseBackup = serde_json::from_str(&text)
            .map_err(|e| PgError::Other(format!("`{}` is not valid: {e}", sidecar.display())))?;
        b.path = path.to_path_buf();
        return Ok(b);
    }
    // A backup stackdrill did not take: times from backup_label and the manifest's mtime.
    let label_path = path.join("backup_label");
    let label = crate::userfile::read_text(&label_path, 1024 * 1024, crate::userfile::Links::Follow)
        .map_err(|e| PgError::Other(e.to_string()))?;
    let field = |k: &str| label.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
    let start_wal = field("START WAL LOCATION:")
        .and_then(|v| v.split("(file ").nth(1))
        .map(|v| v.trim_end_matches(')').to_string())
        .ok_or_else(|| PgError::Other(format!("`{}` has no START WAL LOCATION", label_path.display())))?;
    let started_at = field("START TIME:")
        .and_then(|v| NaiveDateTime::parse_from_str(v.trim_end_matches(" UTC"), "%Y-%m-%d %H:%M:%S").ok())
        .map(|n| n.and_utc())
        .ok_or_else(|| PgError::Other(format!("`{}` has no START TIME in UTC", label_path.display())))?;
    let timeline = field("START TIMELINE:").and_then(|v| v.parse().ok()).unwrap_or(1);
    let manifest = path.join("backup_manifest");
    let finished_at: DateTime<Utc> =
        std::fs::metadata(&manifest).and_then(|m| m.modified()).map_err(PgError::io("cannot stat", &manifest))?.into();
    Ok(BaseBackup { id: name.to_string(), path: path.to_path_buf(), started_at, finished_at, start_wal, timeline })
}

/// Takes a base backup of `cluster` into `dir/<id>` over the cluster's private socket.
pub(crate) async fn take(
    bin: &PgBin,
    as_user: &RunAs,
    cluster: &Cluster,
    superuser: &str,
    dir: &Path,
) -> Result<BaseBackup, PgError> {
    as_user.make_private_dir(dir)?;
    let started_at = Utc::now();
    let id = started_at.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let partial = dir.join(format!("{id}.partial"));
    let mut cmd = as_user.command(&bin.path("pg_basebackup"));
    cmd.arg("-D").arg(&partial).arg("-h").arg(&cluster.dir).arg("-p").arg(cluster.port.to_string()).args([
        "-U",
        superuser,
        "-Fp",
        "-Xstream",
        "-cfast",
        "--no-password",
    ]);
    run(cmd, "pg_basebackup").await?;
    let finished_at = Utc::now();
    let mut b = describe(&partial, &id)?;
    b.finished_at = finished_at;
    b.started_at = started_at;
    let text = serde_json::to_string_pretty(&b).map_err(|e| PgError::Other(e.to_string()))?;
    let sidecar = partial.join(SIDECAR);
    std::fs::write(&sidecar, text).map_err(PgError::io("cannot write", &sidecar))?;
    let final_path = dir.join(&id);
    std::fs::rename(&partial, &final_path).map_err(PgError::io("cannot rename", &partial))?;
    b.path = final_path;
    Ok(b)
}

/// `pg_verifybackup` (files against the manifest, and the WAL the backup needs); the error names what is wrong.
pub(crate) async fn verify(bin: &PgBin, as_user: &RunAs, backup: &Path) -> Result<(), PgError> {
    let mut cmd = as_user.command(&bin.path("pg_verifybackup"));
    cmd.arg("--quiet").args(["--ignore", SIDECAR]).arg(backup);
    run(cmd, "pg_verifybackup").await.map(|_| ())
}
