//! Runs PostgreSQL programs as an unprivileged OS user when stackdrill itself runs as root.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::error::PgError;

/// Who PostgreSQL processes run as.
#[derive(Debug, Clone)]
pub(crate) struct RunAs {
    /// `Some` when stackdrill is root and drops to this user for every PostgreSQL program.
    drop_to: Option<(String, u32, u32)>,
}

impl RunAs {
    /// As root: the named user (which must exist); otherwise the current user.
    pub(crate) fn resolve(os_user: &str) -> Result<RunAs, PgError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(RunAs { drop_to: None });
        }
        let user = nix::unistd::User::from_name(os_user)
            .ok()
            .flatten()
            .ok_or_else(|| PgError::UserMissing { user: os_user.to_string() })?;
        if user.uid.is_root() {
            return Err(PgError::Other(format!("os-user `{os_user}` is root; PostgreSQL refuses to run as root")));
        }
        Ok(RunAs { drop_to: Some((os_user.to_string(), user.uid.as_raw(), user.gid.as_raw())) })
    }

    /// The current user, whoever that is (tests that work in their own temporary directories).
    #[cfg(test)]
    pub(crate) fn current() -> RunAs {
        RunAs { drop_to: None }
    }

    pub(crate) fn name(&self) -> String {
        match &self.drop_to {
            Some((n, ..)) => n.clone(),
            None => nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| "current user".into()),
        }
    }

    /// A command for `program` that runs as this user, in its own process group (a Ctrl-C aimed at
    /// stackdrill must not stop a server before stackdrill tears it down in order), from `/`, with a
    /// cleared environment: PostgreSQL (and every archive or recovery command it runs) never sees the
    /// source password's variable, a signing key or AWS credentials.
    pub(crate) fn command(&self, program: &Path) -> Command {
        #[expect(clippy::disallowed_methods, reason = "a child gets PATH and nothing else (documented)")]
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let mut cmd = Command::new(program);
        cmd.current_dir("/")
            .process_group(0)
            .stdin(Stdio::null())
            .env_clear()
            .env("PATH", path)
            .env("TZ", "UTC")
            .env("PGTZ", "UTC")
            .env("LC_ALL", "C")
            .env("LANG", "C");
        if let Some((name, uid, gid)) = &self.drop_to {
            cmd.uid(*uid).gid(*gid).env("USER", name).env("HOME", "/");
        }
        cmd
    }

    /// Gives `path` to this user (a no-op unless stackdrill is root).
    pub(crate) fn chown(&self, path: &Path) -> Result<(), PgError> {
        if let Some((_, uid, gid)) = &self.drop_to {
            std::os::unix::fs::lchown(path, Some(*uid), Some(*gid)).map_err(PgError::io("cannot chown", path))?;
        }
        Ok(())
    }

    /// Creates `dir` (and parents) owned by this user with mode 0700; refuses a symlink in its place.
    pub(crate) fn make_private_dir(&self, dir: &Path) -> Result<(), PgError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(PgError::io("cannot create", parent))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(dir).map_err(PgError::io("cannot read", dir))?;
                if !meta.is_dir() {
                    return Err(PgError::Other(format!(
                        "`{}` exists and is not a directory; refusing it",
                        dir.display()
                    )));
                }
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(PgError::io("cannot chmod", dir))?;
            }
            Err(e) => return Err(PgError::io("cannot create", dir)(e)),
        }
        self.chown(dir)
    }

    /// Runs `f` on this thread with this user's filesystem identity (setfsuid/setfsgid) when stackdrill is
    /// root: whatever `f` creates is the user's, and a symlink the user planted cannot lead a write
    /// anywhere the user could not write itself. `f` must not await (the identity is per thread).
    pub(crate) fn as_fs_user<T>(&self, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
        use nix::unistd::{Gid, Uid, setfsgid, setfsuid};
        let Some((_, uid, gid)) = &self.drop_to else { return f() };
        struct Restore;
        impl Drop for Restore {
            fn drop(&mut self) {
                setfsuid(Uid::from_raw(0));
                setfsgid(Gid::from_raw(0));
            }
        }
        let _restore = Restore;
        setfsgid(Gid::from_raw(*gid));
        setfsuid(Uid::from_raw(*uid));
        // setfsuid reports the previous value, not failure: ask again to learn whether it took.
        if setfsuid(Uid::from_raw(*uid)).as_raw() != *uid {
            return Err(std::io::Error::other("cannot take the OS user's filesystem identity (setfsuid)"));
        }
        f()
    }

    /// Creates `path` (which must not exist: a planted symlink or file is refused) with `bytes` and
    /// `mode`, as this user.
    pub(crate) fn create_file(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), PgError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        self.as_fs_user(|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(path)?;
            f.write_all(bytes)
        })
        .map_err(PgError::io("refused to create", path))
    }

    /// Appends `bytes` to the existing regular file `path` as this user; a symlink is refused.
    pub(crate) fn append_file(&self, path: &Path, bytes: &[u8]) -> Result<(), PgError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        self.as_fs_user(|| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(path)?;
            f.write_all(bytes)
        })
        .map_err(PgError::io("refused to append to", path))
    }

    /// Fails unless every ancestor of `path` is searchable by this user (so initdb and the server can reach it).
    pub(crate) fn check_reachable(&self, path: &Path) -> Result<(), PgError> {
        let Some((name, uid, gid)) = &self.drop_to else { return Ok(()) };
        let mut cur = path.parent();
        while let Some(dir) = cur {
            if let Ok(meta) = std::fs::metadata(dir) {
                let mode = meta.mode();
                let ok = if meta.uid() == *uid {
                    mode & 0o100 != 0
                } else if meta.gid() == *gid {
                    mode & 0o010 != 0
                } else {
                    mode & 0o001 != 0
                };
                if !ok {
                    return Err(PgError::Unreachable { user: name.clone(), path: dir.to_path_buf() });
                }
            }
            cur = dir.parent();
        }
        Ok(())
    }
}

/// Runs a prepared command to completion, returning stdout; a failure carries the tail of stderr.
pub(crate) async fn run(mut cmd: Command, program: &str) -> Result<String, PgError> {
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| PgError::Spawn { program: program.to_string(), source })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(4)..].join("; ");
    Err(PgError::Command { program: program.to_string(), status: out.status.to_string(), stderr: tail })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, RunAs, std::path::PathBuf, std::path::PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::Builder::new().prefix("sd-user-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let as_user = RunAs::resolve("postgres").expect("the postgres OS user (scripts/install-test-deps makes it)");
        let dir = root.path().join("scratch");
        as_user.make_private_dir(&dir).unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, "original\n").unwrap();
        (root, as_user, dir, victim)
    }

    #[test]
    fn a_symlink_planted_in_the_scratch_cannot_redirect_a_write() {
        let (_root, as_user, dir, victim) = setup();
        for name in ["recovery.signal", "postgresql.auto.conf", "stackdrill-scratch.json"] {
            std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
        }
        let e = as_user.create_file(&dir.join("recovery.signal"), b"", 0o600).unwrap_err().to_string();
        assert!(e.contains("refused to create") && e.contains("recovery.signal"), "{e}");
        let e = as_user.append_file(&dir.join("postgresql.auto.conf"), b"archive_command = 'x'\n").unwrap_err();
        assert!(e.to_string().contains("refused to append"), "{e}");
        let marker = crate::drill::guard::ScratchMarker {
            scratch: true,
            drill: "d".into(),
            run: "r".into(),
            pid: 1,
            created_at: chrono::Utc::now(),
            expires_at: chrono::Utc::now(),
        };
        assert!(crate::drill::guard::write(&dir, &marker, &as_user).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original\n", "the symlink's target was written");
        // A directory in the scratch's place is refused too.
        std::fs::remove_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(victim.parent().unwrap(), &dir).unwrap();
        assert!(as_user.make_private_dir(&dir).unwrap_err().to_string().contains("not a directory"));
    }

    #[test]
    fn as_root_writes_happen_with_the_os_users_rights_only() {
        use std::os::unix::fs::MetadataExt;
        let (root, as_user, dir, _victim) = setup();
        as_user.create_file(&dir.join("ok"), b"x", 0o600).unwrap();
        if nix::unistd::geteuid().is_root() {
            let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
            assert_eq!(std::fs::metadata(dir.join("ok")).unwrap().uid(), pg.uid.as_raw());
            // The temp root is root's (0755): the OS user may not create there, so neither may this.
            let e = as_user.create_file(&root.path().join("not-theirs"), b"x", 0o600).unwrap_err().to_string();
            assert!(e.contains("Permission denied"), "{e}");
            // ...and this thread is root again afterwards.
            std::fs::write(root.path().join("mine"), "x").unwrap();
        }
    }

    #[test]
    fn child_processes_start_from_a_cleared_environment() {
        let as_user = RunAs::resolve("postgres").expect("the postgres OS user");
        let cmd = as_user.command(Path::new("/usr/bin/env"));
        let out = cmd.into_std().output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = text.lines().filter_map(|l| l.split('=').next()).collect();
        let allowed = ["PATH", "TZ", "PGTZ", "LC_ALL", "LANG", "USER", "HOME"];
        assert!(names.iter().all(|n| allowed.contains(n)), "{names:?}");
        // This test process has more than that (cargo sets CARGO_*), none of which reached the child.
        #[expect(clippy::disallowed_methods, reason = "the test compares the child's environment with its own")]
        let ours: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        assert!(ours.iter().any(|k| !allowed.contains(&k.as_str())));
    }
}
