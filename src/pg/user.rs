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
    /// stackdrill must not stop a server before stackdrill tears it down in order), from `/`.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir("/")
            .process_group(0)
            .stdin(Stdio::null())
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE");
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

    /// Creates `dir` (and parents) owned by this user with mode 0700.
    pub(crate) fn make_private_dir(&self, dir: &Path) -> Result<(), PgError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(PgError::io("cannot create", dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(PgError::io("cannot chmod", dir))?;
        self.chown(dir)
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
