//! One apply per stack at a time: an advisory lock on `<state>/locks/stack-<name>.lock`. The kernel drops
//! it when the process dies, so a crash never leaves the stack locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;

pub(crate) struct StackLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("another `stack apply` of `{stack}` is running ({holder}); wait for it to finish")]
    Held { stack: String, holder: String },
    #[error("cannot lock `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
}

pub(crate) fn acquire(stack: &str) -> Result<StackLock, LockError> {
    let dir = crate::config::state_dir().join("locks");
    let path = dir.join(format!("stack-{stack}.lock"));
    let io = |source| LockError::Io { path: path.display().to_string(), source };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default().trim().to_string();
            return Err(LockError::Held { stack: stack.to_string(), holder });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    writeln!(file, "pid {} on {host} since {}", std::process::id(), chrono::Utc::now().to_rfc3339()).map_err(io)?;
    Ok(StackLock { _file: file })
}
