//! A real PostgreSQL cluster for verifier tests: database `src` plays the live source, `rst` the restore.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::pg::{self, Cluster, PgBin, RunAs};

pub(crate) struct TestDb {
    _dir: tempfile::TempDir,
    pub(crate) cluster: Cluster,
    pub(crate) bin: PgBin,
    pub(crate) user: RunAs,
    pub(crate) src: tokio_postgres::Client,
    pub(crate) rst: tokio_postgres::Client,
}

impl TestDb {
    /// Fails (never skips) when the server binaries are missing, saying how to install them.
    pub(crate) async fn start() -> TestDb {
        crate::cli::settings::init_process();
        let bin = PgBin::find().unwrap_or_else(|e| {
            panic!("verifier tests need the PostgreSQL server binaries: {e}; {}", e.hint().unwrap_or_default())
        });
        let user = RunAs::resolve("postgres").expect("the postgres OS user (PostgreSQL refuses to run as root)");
        let dir = tempfile::Builder::new().prefix("sdv-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let cluster = Cluster::new(dir.path().join("c"), pg::free_port().unwrap()).unwrap();
        cluster.initdb(&bin, &user, "postgres").await.unwrap();
        cluster.apply_settings(&user, &cluster.base_settings("")).unwrap();
        cluster.start(&bin, &user).await.unwrap();
        let admin = connect(&cluster, "postgres").await;
        admin.batch_execute("create database src").await.unwrap();
        admin.batch_execute("create database rst").await.unwrap();
        let src = connect(&cluster, "src").await;
        let rst = connect(&cluster, "rst").await;
        TestDb { _dir: dir, cluster, bin, user, src, rst }
    }

    /// Runs `sql` in both databases.
    pub(crate) async fn both(&self, sql: &str) {
        self.src.batch_execute(sql).await.unwrap();
        self.rst.batch_execute(sql).await.unwrap();
    }

    /// The tests' AWS settings: none (no check here reads AWS).
    pub(crate) fn ctx(&self, target: DateTime<Utc>) -> super::Context<'_> {
        super::Context {
            restore: &self.rst,
            reader: &self.rst,
            source: Some(&self.src),
            canary: None,
            target,
            rpo: Duration::from_secs(60),
            target_time: target,
            latest: false,
            cancellers: &[],
            aws: &NO_AWS,
            restored: &[],
        }
    }

    /// Restarts the server (e.g. after writing to its files) and reconnects.
    pub(crate) async fn restart(&mut self) {
        self.cluster.stop(&self.bin, &self.user, Duration::from_secs(30)).await.unwrap();
        self.cluster.start(&self.bin, &self.user).await.unwrap();
        self.src = connect(&self.cluster, "src").await;
        self.rst = connect(&self.cluster, "rst").await;
    }
}

async fn connect(cluster: &Cluster, db: &str) -> tokio_postgres::Client {
    let config = cluster.client_config("postgres", db);
    for _ in 0..300 {
        if let Ok(c) = pg::connect(&config).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to the test cluster");
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // SIGINT is a fast shutdown; wait for the postmaster to go so no process outlives the test.
        if let Some(pid) = self.cluster.postmaster_pid() {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            for _ in 0..300 {
                if nix::sys::signal::kill(pid, None).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

static NO_AWS: crate::aws::AwsSettings = crate::aws::AwsSettings { region: None, profile: None, endpoint_url: None };
