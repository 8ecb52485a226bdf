//! Writes reports into a directory: temp file, fsync, rename, so a crash never leaves half a report.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::markdown;
use super::model::Report;

#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) json: PathBuf,
    pub(crate) markdown: PathBuf,
}

/// Where reports go: `--reports`, else `STACKDRILL_REPORTS`, else `reports/` under the working directory.
pub(crate) fn resolve_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("STACKDRILL_REPORTS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("reports"))
}

pub(crate) fn write(dir: &Path, report: &Report) -> std::io::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let stamp = report.started_at.format("%Y%m%dT%H%M%SZ");
    let mut stem = format!("{stamp}-{}", report.drill);
    if dir.join(format!("{stem}.json")).exists() {
        stem = format!("{stem}-{}", report.id);
    }
    let json = dir.join(format!("{stem}.json"));
    let md = dir.join(format!("{stem}.md"));
    let mut body = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    body.push(b'\n');
    atomic_write(&md, markdown::render(report).as_bytes())?;
    // The JSON is the record; it lands last so that its presence means the drill's evidence is complete.
    atomic_write(&json, &body)?;
    Ok(Written { json, markdown: md })
}

/// Writes `bytes` to `path` via a temporary sibling, fsyncs it, renames it, and fsyncs the directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
