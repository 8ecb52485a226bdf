//! Finds the PostgreSQL server binaries: `STACKDRILL_PG_BIN`, then `pg_config --bindir`, then `PATH`.

use std::path::{Path, PathBuf};

use super::error::PgError;

const REQUIRED: [&str; 6] = ["postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_verifybackup", "pg_waldump"];

/// A directory holding the server binaries, with their version.
#[derive(Debug, Clone)]
pub(crate) struct PgBin {
    pub(crate) dir: PathBuf,
    pub(crate) version: String,
}

static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets the one directory to take the server binaries from, once, from the settings.
pub(crate) fn set_dir(dir: PathBuf) {
    let _ = DIR.set(dir);
}

impl PgBin {
    pub(crate) fn path(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }

    /// Locates the binaries; the directory the settings set (`STACKDRILL_PG_BIN`), when set, is the only
    /// place looked at.
    pub(crate) fn find() -> Result<PgBin, PgError> {
        if let Some(dir) = DIR.get() {
            return Self::at(Path::new(&dir)).map_err(|missing| PgError::BinariesMissing {
                detail: format!("STACKDRILL_PG_BIN={} lacks {missing}", Path::new(&dir).display()),
            });
        }
        let mut tried = Vec::new();
        if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output()
            && out.status.success()
        {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            match Self::at(&dir) {
                Ok(b) => return Ok(b),
                Err(m) => tried.push(format!("pg_config --bindir gave {} which lacks {m}", dir.display())),
            }
        }
        #[expect(clippy::disallowed_methods, reason = "the server binaries are looked up on PATH (documented)")]
        let path = std::env::var_os("PATH");
        if let Some(path) = path {
            for dir in std::env::split_paths(&path) {
                if dir.join("pg_ctl").is_file()
                    && let Ok(b) = Self::at(&dir)
                {
                    return Ok(b);
                }
            }
        }
        tried.push("no pg_ctl with initdb and postgres on PATH".into());
        // Distribution layouts that keep the server off PATH: Debian/Ubuntu, then RHEL/Fedora (PGDG).
        for pattern in ["/usr/lib/postgresql", "/usr/pgsql-"] {
            if let Some(b) = newest_versioned(pattern) {
                return Ok(b);
            }
        }
        tried.push("nothing under /usr/lib/postgresql/*/bin or /usr/pgsql-*/bin".into());
        Err(PgError::BinariesMissing { detail: tried.join("; ") })
    }
}

/// The highest-versioned `<prefix>/<N>/bin` (Debian) or `<prefix><N>/bin` (PGDG) holding the binaries.
fn newest_versioned(prefix: &str) -> Option<PgBin> {
    let (parent, stem) = match prefix.strip_suffix('-') {
        Some(p) => {
            (Path::new(p).parent()?.to_path_buf(), Path::new(prefix).file_name()?.to_string_lossy().into_owned())
        }
        None => (PathBuf::from(prefix), String::new()),
    };
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(&parent)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix(&stem)?.split('.').next()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    found.sort();
    found.into_iter().rev().find_map(|(_, dir)| PgBin::at(&dir).ok())
}

impl PgBin {
    fn at(dir: &Path) -> Result<PgBin, String> {
        let missing: Vec<&str> = REQUIRED.iter().copied().filter(|p| !dir.join(p).is_file()).collect();
        if !missing.is_empty() {
            return Err(missing.join(", "));
        }
        let out = std::process::Command::new(dir.join("postgres"))
            .arg("--version")
            .output()
            .map_err(|e| format!("postgres --version: {e}"))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(PgBin { dir: dir.to_path_buf(), version })
    }
}
