//! One local PostgreSQL cluster: a directory holding `data/`, `server.log` and the unix socket.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bin::PgBin;
use super::error::PgError;
use super::user::{RunAs, run};

/// Unix socket paths are limited to 107 bytes; the socket file name adds `/.s.PGSQL.NNNNN`.
const MAX_SOCKET_DIR: usize = 90;

#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    /// Holds `data/`, `server.log` and the socket; owned by the server's OS user, mode 0700.
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
}

/// How a stop went, for the teardown record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    NotRunning,
    Fast,
    Immediate,
    Killed,
}

impl StopMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StopMode::NotRunning => "not running",
            StopMode::Fast => "fast shutdown",
            StopMode::Immediate => "immediate shutdown",
            StopMode::Killed => "killed",
        }
    }
}

impl Cluster {
    pub(crate) fn new(dir: PathBuf, port: u16) -> Result<Cluster, PgError> {
        if dir.as_os_str().len() > MAX_SOCKET_DIR {
            return Err(PgError::Other(format!(
                "`{}` is too long for a unix socket directory ({} bytes, at most {MAX_SOCKET_DIR}); choose a shorter path",
                dir.display(),
                dir.as_os_str().len()
            )));
        }
        Ok(Cluster { dir, port })
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// `initdb` with trust authentication over the cluster's private socket only.
    pub(crate) async fn initdb(&self, bin: &PgBin, as_user: &RunAs, superuser: &str) -> Result<(), PgError> {
        as_user.check_reachable(&self.dir)?;
        as_user.make_private_dir(&self.dir)?;
        let mut cmd = as_user.command(&bin.path("initdb"));
        cmd.arg("-D")
            .arg(self.data())
            .args(["-U", superuser, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"])
            .arg("--no-sync");
        run(cmd, "initdb").await.map(|_| ())
    }

    /// Appends settings to `postgresql.auto.conf` as the server's OS user (a symlink there is refused);
    /// later lines win, so this overrides what the cluster had.
    pub(crate) fn apply_settings(&self, as_user: &RunAs, settings: &[(&str, String)]) -> Result<(), PgError> {
        let path = self.data().join("postgresql.auto.conf");
        let mut text = String::from("\n# set by stackdrill\n");
        for (k, v) in settings {
            text.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        as_user.append_file(&path, text.as_bytes())
    }

    /// Settings every cluster stackdrill starts gets: its port, its private socket, loopback only.
    pub(crate) fn base_settings(&self, listen: &str) -> Vec<(&'static str, String)> {
        vec![
            ("port", self.port.to_string()),
            ("unix_socket_directories", self.dir.display().to_string()),
            ("unix_socket_permissions", "0700".into()),
            ("listen_addresses", listen.into()),
        ]
    }

    /// `pg_ctl start` without waiting; callers poll for readiness with their own deadline.
    pub(crate) async fn start(&self, bin: &PgBin, as_user: &RunAs) -> Result<(), PgError> {
        let mut cmd = as_user.command(&bin.path("pg_ctl"));
        cmd.arg("start").arg("-W").arg("-D").arg(self.data()).arg("-l").arg(self.log());
        run(cmd, "pg_ctl start").await.map(|_| ())
    }

    /// The postmaster's pid while it runs. `postmaster.pid` and `data/` itself are the server's OS user's
    /// to replace, so the pid is believed only for a live process whose own working directory (a postmaster
    /// runs in its data directory) is the very directory `data` names — opened without following a link
    /// (`O_NOFOLLOW | O_DIRECTORY`), compared by device and inode: never a pid someone wrote there, nor a
    /// process whose directory a planted `data` symlink points at.
    pub(crate) fn postmaster_pid(&self) -> Option<i32> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let nofollow_dir = |p: &Path| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                .open(p)
        };
        // The cluster directory and `data` in it, neither a link.
        nofollow_dir(&self.dir).ok()?;
        let data = nofollow_dir(&self.data()).ok()?.metadata().ok()?;
        let text =
            crate::userfile::read_text(&self.data().join("postmaster.pid"), 4096, crate::userfile::Links::Refuse)
                .ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        if pid <= 1 {
            return None;
        }
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        // stat(2) of the magic link is the process's working directory itself, wherever it lives.
        let cwd = std::fs::metadata(format!("/proc/{pid}/cwd")).ok()?;
        (alive && cwd.dev() == data.dev() && cwd.ino() == data.ino()).then_some(pid)
    }

    pub(crate) fn is_running(&self) -> bool {
        self.postmaster_pid().is_some()
    }

    /// Stops the server: fast shutdown, then immediate, then SIGKILL, within `deadline` overall.
    pub(crate) async fn stop(&self, bin: &PgBin, as_user: &RunAs, deadline: Duration) -> Result<StopMode, PgError> {
        let Some(pid) = self.postmaster_pid() else { return Ok(StopMode::NotRunning) };
        let start = Instant::now();
        let step = (deadline / 2).max(Duration::from_secs(1));
        for (mode, name) in [(StopMode::Fast, "fast"), (StopMode::Immediate, "immediate")] {
            let left = deadline.saturating_sub(start.elapsed()).min(step).max(Duration::from_secs(1));
            let mut cmd = as_user.command(&bin.path("pg_ctl"));
            cmd.arg("stop").arg("-D").arg(self.data()).args(["-m", name, "-t"]).arg(left.as_secs().to_string());
            let res = tokio::time::timeout(left + Duration::from_secs(2), run(cmd, "pg_ctl stop")).await;
            if matches!(res, Ok(Ok(_))) || !self.is_running() {
                return Ok(mode);
            }
            tracing::warn!(cluster = %self.dir.display(), mode = name, "stop did not finish, escalating");
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        for _ in 0..50 {
            if !self.is_running() {
                return Ok(StopMode::Killed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(PgError::Other(format!("postmaster {pid} of `{}` survived SIGKILL", self.dir.display())))
    }

    /// Connects as `user` to `postgres` once the server accepts connections; fails early, with the end of
    /// its log, if the server exits.
    pub(crate) async fn wait_connect(&self, user: &str, deadline: Duration) -> Result<tokio_postgres::Client, PgError> {
        let config = self.client_config(user, "postgres");
        let start = Instant::now();
        loop {
            match connect(&config).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    let exited = start.elapsed() > Duration::from_secs(3) && !self.is_running();
                    if exited || start.elapsed() > deadline {
                        let log = self.log_tail(5).join(" | ");
                        return Err(PgError::Other(format!("the server did not start: {e}; server log: {log}")));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Client settings for the private socket.
    pub(crate) fn client_config(&self, user: &str, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host_path(&self.dir)
            .port(self.port)
            .user(user)
            .dbname(dbname)
            .application_name("stackdrill")
            .connect_timeout(Duration::from_secs(5));
        c
    }

    /// The last `n` lines of the server log, for diagnosing a failed start or recovery.
    pub(crate) fn log_tail(&self, n: usize) -> Vec<String> {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (the unix socket lives in the cluster dir).
pub(crate) fn free_port() -> Result<u16, PgError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(PgError::io("cannot bind", "127.0.0.1:0"))?;
    Ok(l.local_addr().map_err(PgError::io("cannot read", "127.0.0.1:0"))?.port())
}

/// Connects once, spawning the connection task.
pub(crate) async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection closed");
        }
    });
    Ok(client)
}

/// Removes a directory tree that stackdrill created; missing is fine. A process that is still exiting
/// may create a file while the tree goes (ENOTEMPTY), so that is retried for a few seconds; a final
/// failure names what is left.
pub(crate) fn remove_tree(path: &Path) -> Result<(), PgError> {
    let mut attempt = 0;
    loop {
        match std::fs::remove_dir_all(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 25 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => {
                let left: Vec<String> = std::fs::read_dir(path)
                    .map(|rd| rd.flatten().take(5).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                    .unwrap_or_default();
                let context = if left.is_empty() { "cannot remove" } else { "cannot remove (entries remain)" };
                tracing::warn!(path = %path.display(), left = ?left, "scratch directory still has entries");
                return Err(PgError::Io { context, path: path.to_path_buf(), source: e });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pid in `postmaster.pid` is not believed, and `stop` finds nothing running and leaves the
    /// bystander alive (then ends it).
    async fn stop_signals_nothing(cluster: &Cluster, mut bystander: std::process::Child) {
        assert_eq!(cluster.postmaster_pid(), None);
        crate::cli::settings::init_process();
        let bin = PgBin::find().expect("the PostgreSQL server binaries");
        let as_user = RunAs::resolve("postgres").expect("the postgres OS user");
        let mode = cluster.stop(&bin, &as_user, Duration::from_secs(2)).await.unwrap();
        assert_eq!(mode, StopMode::NotRunning);
        assert!(bystander.try_wait().unwrap().is_none(), "the bystander was signalled");
        bystander.kill().unwrap();
        let _ = bystander.wait();
    }

    /// `postmaster.pid` is the OS user's to write: a pid in it that is not this data directory's
    /// postmaster is never believed, so `stop` signals nothing.
    #[tokio::test]
    async fn a_forged_postmaster_pid_is_never_signalled() {
        let dir = tempfile::Builder::new().prefix("sd-pid-").tempdir_in("/tmp").unwrap();
        let cluster = Cluster::new(dir.path().to_path_buf(), 1).unwrap();
        std::fs::create_dir_all(cluster.data()).unwrap();
        let bystander = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(
            cluster.data().join("postmaster.pid"),
            format!("{}\n{}\n", bystander.id(), cluster.data().display()),
        )
        .unwrap();
        stop_signals_nothing(&cluster, bystander).await;
    }

    /// The OS user replaces `data/` with a symlink to the working directory of another process and writes
    /// that process's pid into `postmaster.pid` there: the old check (canonicalise `data`, compare with
    /// `/proc/<pid>/cwd`) believed it, and `stop` SIGKILLed the bystander. The link is never followed now.
    #[tokio::test]
    async fn a_symlinked_data_directory_never_gets_a_bystander_signalled() {
        let dir = tempfile::Builder::new().prefix("sd-pid-").tempdir_in("/tmp").unwrap();
        let cluster = Cluster::new(dir.path().to_path_buf(), 1).unwrap();
        let elsewhere = tempfile::Builder::new().prefix("sd-by-").tempdir_in("/tmp").unwrap();
        let bystander = std::process::Command::new("sleep").arg("30").current_dir(elsewhere.path()).spawn().unwrap();
        std::fs::write(elsewhere.path().join("postmaster.pid"), format!("{}\n{}\n", bystander.id(), "/x")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), cluster.data()).unwrap();
        stop_signals_nothing(&cluster, bystander).await;

        // The check still believes a real process whose working directory is the real `data`.
        std::fs::remove_file(cluster.data()).unwrap();
        std::fs::create_dir(cluster.data()).unwrap();
        let mut inside = std::process::Command::new("sleep").arg("30").current_dir(cluster.data()).spawn().unwrap();
        std::fs::write(cluster.data().join("postmaster.pid"), format!("{}\n", inside.id())).unwrap();
        assert_eq!(cluster.postmaster_pid(), Some(inside.id() as i32));
        inside.kill().unwrap();
        let _ = inside.wait();
    }
}
