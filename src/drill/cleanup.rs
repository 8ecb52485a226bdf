//! `drill cleanup`: sweeps scratch environments left behind by crashed runs. Only directories whose
//! scratch marker says stackdrill created them, and whose run is gone or expired, are touched.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::guard;
use crate::config::{DrillSpec, RestoreSpec};
use crate::pg::{Cluster, PgBin, RunAs, remove_tree};

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Swept {
    pub(crate) path: PathBuf,
    pub(crate) drill: String,
    pub(crate) run: String,
    /// `removed`, `would remove`, `kept (run alive)` or `failed: ...`.
    pub(crate) action: String,
}

pub(crate) async fn sweep(drills: &[DrillSpec], dry_run: bool) -> Vec<Swept> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in drills {
        let RestoreSpec::LocalPostgres(lp) = &d.restore;
        let root = std::path::absolute(&lp.scratch_root).unwrap_or_else(|_| lp.scratch_root.clone());
        if !seen.insert(root.clone()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&root) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(marker) = guard::read(&path) else { continue };
            if !marker.scratch {
                continue;
            }
            let expired = marker.expires_at < Utc::now();
            let orphan = guard::creator_gone(&marker);
            let action = if !(expired || orphan) {
                "kept (its run is still alive)".to_string()
            } else if dry_run {
                "would remove".to_string()
            } else {
                match remove(&path, &lp.os_user).await {
                    Ok(()) => "removed".to_string(),
                    Err(e) => format!("failed: {e}"),
                }
            };
            out.push(Swept { path, drill: marker.drill, run: marker.run, action });
        }
    }
    out
}

async fn remove(path: &std::path::Path, os_user: &str) -> Result<(), String> {
    let cluster = Cluster { dir: path.to_path_buf(), port: 0 };
    if cluster.is_running() {
        let bin = PgBin::find().map_err(|e| e.to_string())?;
        let as_user = RunAs::resolve(os_user).map_err(|e| e.to_string())?;
        cluster.stop(&bin, &as_user, Duration::from_secs(60)).await.map_err(|e| e.to_string())?;
    }
    remove_tree(path).map_err(|e| e.to_string())
}
