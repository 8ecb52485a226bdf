//! Test harness: temp directories PostgreSQL's OS user can reach, a kept demo source per test, and
//! checks that nothing (process, scratch directory) is left behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

pub fn stackdrill() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("stackdrill").expect("binary");
    c.env_remove("STACKDRILL_REPORTS").env("NO_COLOR", "1");
    c
}

/// Takes every AWS credential source away from `cmd` (environment, files, instance metadata), so the SDK's
/// chain finds nothing on any machine.
pub fn without_aws_credentials(cmd: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ROLE_ARN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
}

pub fn bin_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("stackdrill")
}

/// How a watched run ended: its exit code, whether it died by a signal (which), and its stderr.
pub struct Watched {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stderr: String,
}

/// Runs `stackdrill` with `cmd`'s arguments and environment (stdout discarded, stderr read line by line) and
/// sends `signal` the first time `when(line)` says so. `when` may also act on its own (release a fault).
pub fn watch(
    mut cmd: std::process::Command,
    signal: nix::sys::signal::Signal,
    mut when: impl FnMut(&str) -> bool,
) -> Watched {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let mut child =
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().expect("start stackdrill");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (mut stderr, mut sent) = (String::new(), false);
    for line in BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok) {
        if !sent && when(&line) {
            let _ = nix::sys::signal::kill(pid, signal);
            sent = true;
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    Watched { code: status.code(), signal: status.signal(), stderr }
}

/// A `std::process::Command` for the stackdrill binary.
pub fn command() -> std::process::Command {
    let mut c = std::process::Command::new(bin_path());
    c.env_remove("STACKDRILL_REPORTS").env("NO_COLOR", "1");
    c
}

/// A temporary directory under /tmp, searchable by the `postgres` user, removed on drop.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new().prefix("sdit-").tempdir_in("/tmp").expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A demo source left running by `stackdrill demo --keep`, stopped on drop.
pub struct Demo {
    /// The temporary directory the demo, its reports and any test state live in, for as long as the demo.
    pub root: Scratch,
    pub dir: PathBuf,
    pub reports: PathBuf,
    pub drill: PathBuf,
    pub port: u16,
}

impl Demo {
    /// Runs `stackdrill demo --keep` into a fresh directory; asserts the demo drill passed. Without the
    /// PostgreSQL server binaries that fails, printing stackdrill's own error with how to install them.
    pub fn start() -> Demo {
        Demo::start_with(&["--no-posture"])
    }

    /// [`Demo::start`] with these extra `demo` arguments (none: the demo also records its source's backup
    /// posture, a second ledger entry after its report).
    pub fn start_with(extra: &[&str]) -> Demo {
        let root = Scratch::new();
        let dir = root.path().join("demo");
        let reports = root.path().join("reports");
        // Its own state directory: a demo takes the demo drill's lock there (tests run demos side by side).
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", root.path().join("state"))
            .args(["demo", "--keep", "--dir"])
            .arg(&dir)
            .arg("--reports")
            .arg(&reports)
            .args(extra)
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap();
        let mut demo = Demo { drill: dir.join("local-demo.yaml"), port: 0, root, dir, reports };
        assert!(out.status.success(), "demo failed: {}\n{}", text(&out.stdout), text(&out.stderr));
        let yaml = std::fs::read_to_string(&demo.drill).unwrap();
        demo.port = yaml
            .lines()
            .find_map(|l| l.trim().strip_prefix("port: "))
            .and_then(|p| p.parse().ok())
            .expect("port in the demo drill file");
        demo
    }

    /// Rewrites the kept drill file without `demo: true`: its runs then count as evidence and feed forecasts
    /// (the demo's own first report stays a demo run), for tests about evidence rather than the demo.
    pub fn not_a_demo(&self) {
        let body = std::fs::read_to_string(&self.drill).unwrap();
        assert!(body.contains("\ndemo: true\n"), "{body}");
        std::fs::write(&self.drill, body.replace("\ndemo: true\n", "\n")).unwrap();
    }

    /// A superuser client on the source's private socket.
    pub async fn admin(&self, db: &str) -> tokio_postgres::Client {
        let mut c = tokio_postgres::Config::new();
        c.host_path(self.dir.join("source")).port(self.port).user("postgres").dbname(db);
        let (client, conn) = c.connect(tokio_postgres::NoTls).await.expect("connect to the demo source");
        tokio::spawn(conn);
        client
    }

    /// Makes the source answer TLS on 127.0.0.1 for the `postgres` role by scram-sha-256 (as RDS does; the
    /// password is the one the drill sets, see `Moto::play_master_password`), and refuse it without TLS:
    /// the stand-in for an RDS scratch reached through a tunnel (moto runs no database).
    /// Returns the CA bundle that signed the server certificate, whose names are `localhost` and those of
    /// moto's RDS instance endpoints.
    pub async fn serve_tls_as_scratch(&self) -> PathBuf {
        use std::os::unix::fs::MetadataExt;
        let data = self.dir.join("source/data");
        let (key, crt) = (data.join("server.key"), data.join("server.crt"));
        let ca = self.dir.join("ca.crt");
        make_ca(&self.dir, "ca");
        let csr = self.dir.join("server.csr");
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            path(&key),
            "-out",
            path(&csr),
        ]);
        let ext = self.dir.join("san.ext");
        std::fs::write(&ext, "subjectAltName=DNS:localhost,DNS:*.aaaaaaaaaa.ap-southeast-1.rds.amazonaws.com\n")
            .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&ca),
            "-CAkey",
            path(&self.dir.join("ca.key")),
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            path(&crt),
            "-extfile",
            path(&ext),
        ]);
        let meta = std::fs::metadata(&data).unwrap();
        for f in [&key, &crt] {
            std::os::unix::fs::chown(f, Some(meta.uid()), Some(meta.gid())).unwrap();
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let hba = data.join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!(
                "hostssl all postgres 127.0.0.1/32 scram-sha-256\nhostnossl all postgres 127.0.0.1/32 reject\n{old}"
            ),
        )
        .unwrap();
        let admin = self.admin("postgres").await;
        admin.batch_execute("alter system set ssl = on").await.unwrap();
        admin.batch_execute("select pg_reload_conf()").await.unwrap();
        std::thread::sleep(Duration::from_millis(500));
        ca
    }

    /// This demo's state directory (locks, keys): tests run side by side, each drill run locks its name.
    pub fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    pub fn run_drill(&self, extra: &[&str]) -> Output {
        stackdrill()
            .env("STACKDRILL_STATE_DIR", self.state())
            .args(["drill", "run"])
            .arg(&self.drill)
            .arg("--reports")
            .arg(&self.reports)
            .args(extra)
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap()
    }

    /// Every report written so far, oldest first.
    pub fn reports(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.reports)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .filter(|p| !p.to_string_lossy().ends_with(".dsse.json"))
                    .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("posture-")))
                    .collect()
            })
            .unwrap_or_default();
        // In the order the store chained them (its ledger): two runs can end in the same second, and file names
        // within a second sort by their random run id. Files the ledger does not name come last, by name.
        let ledger = std::fs::read_to_string(self.reports.join("ledger.jsonl")).unwrap_or_default();
        let seq: std::collections::HashMap<String, u64> = ledger
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|e| Some((e["file"].as_str()?.to_string(), e["seq"].as_u64()?)))
            .collect();
        files.sort_by_key(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            (seq.get(&name).copied().unwrap_or(u64::MAX), name)
        });
        files.iter().map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap()).collect()
    }

    pub fn last_report(&self) -> serde_json::Value {
        self.reports().pop().expect("a report")
    }

    pub fn archive(&self) -> PathBuf {
        self.dir.join("wal-archive")
    }

    /// The WAL segment files in the archive, sorted.
    pub fn archive_segments(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.archive())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 24)
            .collect();
        v.sort();
        v
    }

    pub fn backups(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> =
            std::fs::read_dir(self.dir.join("base-backups")).unwrap().flatten().map(|e| e.path()).collect();
        v.sort();
        v
    }

    /// Asserts that no scratch directory and no scratch server remain.
    pub fn assert_no_scratch_left(&self) {
        let left: Vec<_> = std::fs::read_dir(self.dir.join("scratch"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "scratch left behind: {left:?}");
        let procs = processes_mentioning(&self.dir.join("scratch"));
        assert!(procs.is_empty(), "scratch processes left running: {procs:?}");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        stop_cluster(&self.dir.join("source/data"));
        if !std::thread::panicking() {
            let procs = processes_mentioning(&self.dir);
            assert!(procs.is_empty(), "processes left running: {procs:?}");
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl").args(args).output().expect("openssl (install the openssl package)");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out.stderr));
}

/// A throwaway certificate authority: `<dir>/<name>.crt` and `<name>.key`.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (crt, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let subj = format!("/CN=stackdrill test {name}");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &subj,
        "-keyout",
        path(&key),
        "-out",
        path(&crt),
    ]);
    crt
}

/// Stops a cluster by signalling its postmaster (SIGINT = fast shutdown) and waiting for it to exit.
pub fn stop_cluster(data: &Path) {
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else { return };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else { return };
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let start = Instant::now();
    while nix::sys::signal::kill(pid, None).is_ok() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes whose command line mentions `path` (postmasters carry `-D <data dir>`).
pub fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if !e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) {
                out.push(cmd);
            }
        }
    }
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The first column of the first row `sql` returns, as text (simple query protocol).
pub async fn scalar(c: &tokio_postgres::Client, sql: &str) -> String {
    let rows = c.simple_query(sql).await.unwrap();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Ends the current WAL segment with a commit in it and waits until the archiver has it.
pub async fn switch_and_archive(c: &tokio_postgres::Client) {
    c.batch_execute("create table if not exists wal_marker (at timestamptz); insert into wal_marker values (now())")
        .await
        .unwrap();
    let seg = scalar(c, "select pg_walfile_name(pg_switch_wal())").await;
    let t0 = Instant::now();
    while scalar(c, "select coalesce(last_archived_wal, '') from pg_stat_archiver").await < seg {
        assert!(t0.elapsed() < Duration::from_secs(60), "segment {seg} was never archived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The directory of the PostgreSQL server programs, found as stackdrill finds them.
pub fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("STACKDRILL_PG_BIN") {
        return dir.into();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("the PostgreSQL server (apt-get install postgresql)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop().expect("pg_ctl under /usr/lib/postgresql/*/bin")
}

/// Runs a PostgreSQL program as the `postgres` OS user (the clusters' owner).
pub fn as_postgres(program: &str, args: &[&str]) {
    let out = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(pg_bin().join(program))
        .args(args)
        .output()
        .expect("runuser");
    assert!(out.status.success(), "{program} {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
}
