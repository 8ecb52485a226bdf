//! The demo's source: a real cluster with WAL archiving and TLS, the app role and schema, a base backup.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;

use crate::pg::{self, Cluster, PgBin, PgError, RunAs};

const MARKER: &str = ".stackdrill-demo";
pub(super) const DEFAULT_PORT: u16 = 54329;
pub(crate) const TEMPLATE: &str = include_str!("../../drills/local-demo.yaml");
pub(super) const RUNBOOK: &str = include_str!("../../runbooks/database-pitr-restore.md");

#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("`{}` exists and was not made by `stackdrill demo`; refusing to touch it", .0.display())]
    NotOurs(PathBuf),
    #[error("{context}: {detail}")]
    Setup { context: &'static str, detail: String },
}

impl DemoError {
    fn setup(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> DemoError {
        move |e| DemoError::Setup { context, detail: crate::drill::verify::db_error(&e) }
    }
}

pub(crate) struct Source {
    pub(crate) dir: PathBuf,
    pub(crate) cluster: Cluster,
    bin: PgBin,
    as_user: RunAs,
    password: String,
    /// The CA bundle that signed the source's certificate.
    pub(super) ca: PathBuf,
}

impl Source {
    /// A client config for the application role over TCP with its password.
    pub(super) fn app_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1").port(self.cluster.port).user("app").dbname("app").password(&self.password);
        c
    }

    pub(crate) async fn stop(&self) -> Result<(), PgError> {
        self.cluster.stop(&self.bin, &self.as_user, Duration::from_secs(60)).await.map(|_| ())
    }
}

/// Stops what an earlier demo left in `dir` and removes it; refuses a directory that is not a demo's.
pub(crate) async fn reset(dir: &Path, bin: &PgBin, as_user: &RunAs) -> Result<(), DemoError> {
    if !dir.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
    if !dir.join(MARKER).is_file() && !empty {
        return Err(DemoError::NotOurs(dir.to_path_buf()));
    }
    let mut clusters = vec![dir.join("source")];
    if let Ok(rd) = std::fs::read_dir(dir.join("scratch")) {
        clusters.extend(rd.flatten().map(|e| e.path()));
    }
    for c in clusters {
        let cluster = Cluster { dir: c, port: 0 };
        if cluster.is_running() {
            cluster.stop(bin, as_user, Duration::from_secs(60)).await?;
        }
    }
    pg::remove_tree(dir)?;
    Ok(())
}

/// Creates and starts the source, loads data sized by `scale`, and takes a base backup.
pub(crate) async fn prepare(dir: &Path, scale: u32, progress: &dyn Fn(&str)) -> Result<Source, DemoError> {
    use std::os::unix::fs::PermissionsExt;
    let bin = PgBin::find()?;
    let as_user = RunAs::resolve("postgres")?;
    reset(dir, &bin, &as_user).await?;
    std::fs::create_dir_all(dir).map_err(PgError::io("cannot create", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(PgError::io("cannot chmod", dir))?;
    std::fs::write(dir.join(MARKER), "created by stackdrill demo\n").map_err(PgError::io("cannot write", dir))?;

    let archive = dir.join("wal-archive");
    as_user.check_reachable(&archive)?;
    as_user.make_private_dir(&archive)?;
    let cluster = Cluster::new(dir.join("source"), DEFAULT_PORT)?;
    progress(&format!("initdb {} ({})", cluster.data().display(), bin.version));
    cluster.initdb(&bin, &as_user, "postgres").await?;
    let a = archive.display().to_string();
    let ca = make_certificates(dir, &cluster, &as_user)?;
    cluster.apply_settings(
        &as_user,
        &[
            ("ssl", "on".to_string()),
            ("wal_level", "replica".to_string()),
            ("archive_mode", "on".into()),
            ("archive_command", format!("test ! -f \"{a}/%f\" && cp \"%p\" \"{a}/%f\"")),
            ("archive_timeout", "30s".into()),
            ("max_wal_senders", "4".into()),
            ("password_encryption", "scram-sha-256".into()),
        ],
    )?;
    let (cluster, admin) = start_on_free_port(dir, &bin, &as_user).await?;
    let password = load_app(&cluster, &admin, scale, &dir.join("objects"), progress).await?;
    progress("taking a base backup (pg_basebackup, plain format with manifest)");
    let backup = pg::take_backup(&bin, &as_user, &cluster, "postgres", &dir.join("base-backups")).await?;
    progress(&format!("base backup {} done", backup.id));
    let pw_file = dir.join("source.password");
    write_private(&pw_file, password.as_bytes())?;
    Ok(Source { dir: dir.to_path_buf(), cluster, bin, as_user, password, ca })
}

/// Each file's body, from its path: the demo stores what its `files` rows describe (size and sha256).
const OBJECT_BODY: &str = "repeat('stackdrill demo file ' || path || E'\\n', 1 + length(path) % 16)";

/// Writes every `files` row's object into `dir` (the object store the demo drill's `object-references`
/// check lists), its bytes computed by the database as the row's size and sha256 were.
async fn write_objects(app: &tokio_postgres::Client, dir: &Path) -> Result<(), DemoError> {
    let rows = app
        .query(&format!("select path, {OBJECT_BODY} from files"), &[])
        .await
        .map_err(DemoError::setup("reading the files to store"))?;
    for r in rows {
        let path = dir.join(r.get::<_, String>(0));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(PgError::io("cannot create", parent))?;
        }
        std::fs::write(&path, r.get::<_, String>(1)).map_err(PgError::io("cannot write", &path))?;
    }
    Ok(())
}

/// Starts the source on the default port, or a free one when another process holds it (or takes it
/// between the check and the server's bind); the admin connection with it.
async fn start_on_free_port(
    dir: &Path,
    bin: &PgBin,
    as_user: &RunAs,
) -> Result<(Cluster, tokio_postgres::Client), DemoError> {
    // Another process may take a free port between the check and the bind: retry on a new one.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = if attempt == 1 && std::net::TcpListener::bind(("127.0.0.1", DEFAULT_PORT)).is_ok() {
            DEFAULT_PORT
        } else {
            pg::free_port()?
        };
        let cluster = Cluster::new(dir.join("source"), port)?;
        cluster.apply_settings(as_user, &cluster.base_settings("127.0.0.1"))?;
        cluster.start(bin, as_user).await?;
        let connected = cluster.wait_connect("postgres", Duration::from_secs(60)).await;
        match connected
            .map_err(|e| DemoError::Setup { context: "the demo source did not start", detail: e.to_string() })
        {
            Ok(c) => return Ok((cluster, c)),
            // Another process took the port between the check and the server's bind (or listen).
            Err(e)
                if attempt < 5
                    && cluster.log_tail(20).iter().any(|l| {
                        l.contains("could not bind")
                            || l.contains("could not listen")
                            || l.contains("Address already in use")
                    }) =>
            {
                tracing::info!(port, error = %e, "port taken, retrying the demo source on another port");
            }
            Err(e) => return Err(e),
        }
    }
}

/// The `app` role (a random password; only its SCRAM verifier reaches the server) and database, the product
/// schema and its data at `scale`; returns the password.
async fn load_app(
    cluster: &Cluster,
    admin: &tokio_postgres::Client,
    scale: u32,
    objects: &Path,
    progress: &dyn Fn(&str),
) -> Result<String, DemoError> {
    let mut pw = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut pw);
    let password = hex::encode(pw);
    // Only the SCRAM verifier reaches the server: the password is never in a statement or a log line.
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    // One statement at a time: CREATE DATABASE cannot run inside the implicit transaction of a batch.
    for stmt in [format!("create role app login password '{verifier}'"), "create database app owner app".to_string()] {
        admin.batch_execute(&stmt).await.map_err(DemoError::setup("creating the app role and database"))?;
    }
    // Function privileges live in each database's catalog: grant inside `app`, where the drill connects.
    let app_admin =
        pg::connect(&cluster.client_config("postgres", "app")).await.map_err(DemoError::setup("connecting to app"))?;
    app_admin
        .batch_execute("grant execute on function pg_switch_wal() to app")
        .await
        .map_err(DemoError::setup("granting pg_switch_wal"))?;
    let app = pg::connect(&cluster.client_config("app", "app")).await.map_err(DemoError::setup("connecting as app"))?;
    progress(&format!("loading the product schema at scale {scale}"));
    app.batch_execute(SCHEMA).await.map_err(DemoError::setup("creating the schema"))?;
    let s = i64::from(scale.max(1));
    app.batch_execute(&format!(
        "insert into accounts (email) select 'user' || g || '@example.com' from generate_series(1, {a}) g;
         insert into workspaces (account_id, name) select 1 + (g % {a}), 'workspace ' || g from generate_series(1, {w}) g;
         insert into files (workspace_id, path, bytes, sha256)
           select 1 + (g % {w}), path, octet_length({OBJECT_BODY}), encode(sha256(convert_to({OBJECT_BODY}, 'UTF8')), 'hex')
           from generate_series(1, {f}) g, lateral (select 'docs/' || g || '.pdf' as path) p;
         insert into credit_transactions (transfer_id, account_id, amount, kind, idempotency_key)
           select t.id, case when side = 1 then 1 + (g % {a}) else 1 + ((g * 31) % {a}) end,
                  case when side = 1 then -1 else 1 end * ((g % 5000) + 1) / 100.0, 'transfer', gen_random_uuid()
           from generate_series(1, {t}) g, generate_series(1, 2) side, lateral (select md5(g::text)::uuid as id) t;
         analyze;",
        a = 1000 * s,
        w = 2000 * s,
        f = 10_000 * s,
        t = 50_000 * s,
    ))
    .await
    .map_err(DemoError::setup("loading data"))?;
    write_objects(&app, objects).await?;
    Ok(password)
}

/// A throwaway CA (`<dir>/ca.crt`) and a server certificate for `localhost` and 127.0.0.1 in the data
/// directory, and a `pg_hba.conf` that refuses TCP without TLS: the demo drill reaches its source as a
/// production drill should (sslmode verify-full).
fn make_certificates(dir: &Path, cluster: &Cluster, as_user: &RunAs) -> Result<PathBuf, DemoError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let fail = |e: rcgen::Error| DemoError::Setup { context: "making the demo certificates", detail: e.to_string() };
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "stackdrill demo CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(fail)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).map_err(fail)?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).map_err(fail)?;
    let data = cluster.data();
    as_user.create_file(&data.join("server.crt"), cert.pem().as_bytes(), 0o644)?;
    as_user.create_file(&data.join("server.key"), key.serialize_pem().as_bytes(), 0o600)?;
    let hba = data.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).map_err(PgError::io("cannot read", &hba))?;
    let text = format!("hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n{old}");
    std::fs::remove_file(&hba).map_err(PgError::io("cannot replace", &hba))?;
    as_user.create_file(&hba, text.as_bytes(), 0o600)?;
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, ca_cert.pem()).map_err(PgError::io("cannot write", &ca))?;
    Ok(ca)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PgError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(PgError::io("cannot write", path))?;
    f.write_all(bytes).map_err(PgError::io("cannot write", path))
}

const SCHEMA: &str = "
create table accounts (
  id bigint generated always as identity primary key,
  email text not null unique,
  created_at timestamptz not null default clock_timestamp()
);
create table workspaces (
  id bigint generated always as identity primary key,
  account_id bigint not null references accounts,
  name text not null,
  created_at timestamptz not null default clock_timestamp()
);
create table files (
  id bigint generated always as identity primary key,
  workspace_id bigint not null references workspaces,
  path text not null,
  bytes bigint not null,
  sha256 text not null,
  created_at timestamptz not null default clock_timestamp()
);
-- The billing ledger: append-only, double-entry (each transfer is two rows that sum to zero).
create table credit_transactions (
  id bigint generated always as identity primary key,
  transfer_id uuid not null,
  account_id bigint not null references accounts,
  amount numeric(18,4) not null,
  kind text not null,
  idempotency_key uuid not null unique,
  created_at timestamptz not null default clock_timestamp()
);
create index on credit_transactions (transfer_id);
create index on credit_transactions (created_at);
create function credit_transactions_append_only() returns trigger language plpgsql as $$
begin raise exception 'credit_transactions is append-only'; end $$;
create trigger credit_transactions_append_only before update or delete on credit_transactions
  for each statement execute function credit_transactions_append_only();
";
