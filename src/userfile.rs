//! Reading a file a user names (a password file, a CA bundle, a dump's sidecar, a marker in a directory the
//! PostgreSQL OS user owns): a regular file of bounded size, opened without blocking — a FIFO, a device such
//! as `/dev/zero`, or a directory is refused at once instead of hanging the drill past its deadline or
//! reading until memory runs out — and, where the OS user could have planted a link, without following one.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The most a password or key file may hold.
pub(crate) const SECRET_MAX: u64 = 64 * 1024;
/// The most a CA bundle may hold (the RDS global bundle is ~160 KiB).
pub(crate) const CA_BUNDLE_MAX: u64 = 4 * 1024 * 1024;

/// Whether a symbolic link at the path itself is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// The operator named the file (a password file, a CA bundle): a link they made is theirs.
    Follow,
    /// The file lies where the PostgreSQL OS user can write: a link there is refused (`O_NOFOLLOW`).
    Refuse,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UserFileError {
    #[error("cannot read `{}`: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{}` is a symbolic link, which is not followed here", path.display())]
    Link { path: PathBuf },
    #[error("`{}` is {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("`{}` is larger than {limit} bytes, more than such a file ever holds", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
}

/// What is wrong, without the path (for an error that names the file already).
pub(crate) fn reason(e: &UserFileError) -> String {
    match e {
        UserFileError::Io { source, .. } => source.to_string(),
        UserFileError::Link { .. } => "it is a symbolic link, which is not followed here".into(),
        UserFileError::NotRegular { kind, .. } => format!("it is {kind}, not a regular file"),
        UserFileError::TooLarge { limit, .. } => format!("it is larger than {limit} bytes"),
    }
}

/// Reads `path` whole, refusing anything but a regular file of at most `limit` bytes. Blocking only on
/// the disk itself: call it through [`read_async`] from the async runtime.
pub(crate) fn read(path: &Path, limit: u64, links: Links) -> Result<Vec<u8>, UserFileError> {
    let io = |source: std::io::Error| UserFileError::Io { path: path.to_path_buf(), source };
    let mut flags = nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC | nix::libc::O_NOCTTY;
    if links == Links::Refuse {
        flags |= nix::libc::O_NOFOLLOW;
    }
    let file = match std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if links == Links::Refuse && e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(UserFileError::Link { path: path.to_path_buf() });
        }
        Err(e) => return Err(io(e)),
    };
    // Judged by what was opened (fstat), not by the name: the name may change under us.
    let meta = file.metadata().map_err(io)?;
    let t = meta.file_type();
    if !t.is_file() {
        let kind = if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_dir() {
            "a directory"
        } else {
            "not a file"
        };
        return Err(UserFileError::NotRegular { path: path.to_path_buf(), kind });
    }
    if meta.len() > limit {
        return Err(UserFileError::TooLarge { path: path.to_path_buf(), limit });
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // A file that grows while it is read stops at the limit all the same.
    file.take(limit + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(UserFileError::TooLarge { path: path.to_path_buf(), limit });
    }
    Ok(buf)
}

/// [`read`] as text (UTF-8).
pub(crate) fn read_text(path: &Path, limit: u64, links: Links) -> Result<String, UserFileError> {
    let bytes = read(path, limit, links)?;
    String::from_utf8(bytes).map_err(|_| UserFileError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

/// [`read_text`] off the async runtime (a slow disk or network mount never stalls the drill's other tasks
/// or its signal handling).
pub(crate) async fn read_text_async(path: &Path, limit: u64, links: Links) -> Result<String, UserFileError> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_text(&owned, limit, links)).await.unwrap_or_else(|e| {
        Err(UserFileError::Io { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn fifos_devices_directories_links_and_large_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = Instant::now();
        let e = read(&fifo, SECRET_MAX, Links::Follow).unwrap_err();
        assert!(e.to_string().contains("is a FIFO, not a regular file"), "{e}");
        let e = read(Path::new("/dev/zero"), SECRET_MAX, Links::Follow).unwrap_err();
        assert!(e.to_string().contains("is a character device"), "{e}");
        let e = read(dir.path(), SECRET_MAX, Links::Follow).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; SECRET_MAX as usize + 1]).unwrap();
        let e = read(&big, SECRET_MAX, Links::Follow).unwrap_err();
        assert!(matches!(e, UserFileError::TooLarge { .. }), "{e}");

        let ok = dir.path().join("pw");
        std::fs::write(&ok, "secret\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        assert_eq!(read_text(&link, SECRET_MAX, Links::Follow).unwrap(), "secret\n");
        let e = read(&link, SECRET_MAX, Links::Refuse).unwrap_err();
        assert!(matches!(e, UserFileError::Link { .. }), "{e}");
        assert_eq!(read_text(&ok, SECRET_MAX, Links::Refuse).unwrap(), "secret\n");
    }
}
