//! Advisory locks on `<state>/locks/<kind>-<name>.lock`: one `stack apply` per stack, one run per drill.
//! The kernel drops a lock when its process dies, so a crash never leaves anything locked; the file
//! names the holder for the error message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;

pub(crate) struct Lock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("{what} is already running ({holder})")]
    Held { what: String, holder: String },
    #[error("cannot lock `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Takes the lock for `kind`/`name`; with `wait`, blocks until the holder lets go, else refuses at once.
/// `what` names the activity for the error (`a stack apply of \`production\``).
pub(crate) fn acquire(kind: &str, name: &str, what: &str, wait: bool) -> Result<Lock, LockError> {
    let dir = crate::config::state_dir().join("locks");
    let path = dir.join(format!("{kind}-{name}.lock"));
    let io = |source| LockError::Io { path: path.display().to_string(), source };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    if wait {
        file.lock().map_err(io)?;
    } else {
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
                return Err(LockError::Held { what: what.to_string(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    file.set_len(0).map_err(io)?;
    let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    writeln!(file, "pid {} on {host} since {}", std::process::id(), chrono::Utc::now().to_rfc3339()).map_err(io)?;
    Ok(Lock { _file: file })
}
