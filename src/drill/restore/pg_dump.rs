//! `pg-dump`: restore a logical backup (pg_dump custom, directory, tar or plain SQL, or pg_dumpall output,
//! plain or gzip) from a path or an `s3://` prefix into a fresh scratch cluster on this machine.
//!
//! Window: [oldest dump, newest dump]. The target picks the newest dump taken at or before it; the data
//! then stands at the dump's time (checks against the source cut there, RPO = target − dump time). The
//! scratch is made like `local-postgres`'s (own 0700 directory, socket only, nothing archived, no
//! replication worker, no preloaded library) and removed on every path.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

use super::{BackupUsed, Endpoint, RestoreProvider, Teardown, TeardownStatus};
use crate::config::{DumpLocation, PgDumpSpec, Timeouts};
use crate::drill::error::{DrillError, RestoreError, fmt_time};
use crate::drill::events::EventSink;
use crate::drill::target::{Recovery, ResolvedTarget, Window};
use crate::pg::dump::{self, DumpFormat, Inspected, Needs, StartedOn};
use crate::pg::{self, Cluster, PgBin, RunAs};

/// The most a dump's `.json` sidecar may hold (a few hundred bytes in practice).
const SIDECAR_MAX: u64 = 1024 * 1024;

/// One dump found at the location, and when it was taken.
#[derive(Debug, Clone)]
struct Dump {
    /// The file name or S3 key.
    name: String,
    at: DumpAt,
    inspected: Inspected,
    taken_at: DateTime<Utc>,
    /// Where the time came from (`sidecar`, `archive header`, ...), for the report.
    taken_from: String,
    /// The digest the sidecar promises, checked before the restore.
    sidecar_sha256: Option<String>,
}

#[derive(Debug, Clone)]
enum DumpAt {
    Local(PathBuf),
    S3 { bucket: String, key: String, size: u64 },
}

impl Dump {
    fn location(&self) -> String {
        match &self.at {
            DumpAt::Local(p) => p.display().to_string(),
            DumpAt::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        }
    }
}

/// `<dump>.json` beside a dump: `{"taken_at": RFC 3339, "sha256": hex}` (both optional).
#[derive(serde::Deserialize)]
struct Sidecar {
    taken_at: Option<DateTime<Utc>>,
    sha256: Option<String>,
}

pub(crate) struct PgDump {
    spec: PgDumpSpec,
    drill: String,
    run: String,
    /// The source's database name, the default for the database the checks read.
    source_db: Option<String>,
    bin: PgBin,
    as_user: RunAs,
    events: EventSink,
    lifetime: Duration,
    teardown_deadline: Duration,
    s3: Option<aws_sdk_s3::Client>,
    dumps: Vec<Dump>,
    chosen: Option<Dump>,
    cluster: Option<Cluster>,
    database: String,
    facts: Vec<(&'static str, String)>,
    neutralised: Vec<String>,
    findings: Vec<(String, String)>,
}

impl PgDump {
    pub(crate) fn new(
        spec: &PgDumpSpec,
        drill: &str,
        run: &str,
        source_db: Option<&str>,
        events: EventSink,
        t: &Timeouts,
        lifetime: Duration,
    ) -> Result<PgDump, DrillError> {
        let mut spec = spec.clone();
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        spec.scratch_root = abs(&spec.scratch_root);
        if let DumpLocation::Path(p) = &spec.dumps {
            spec.dumps = DumpLocation::Path(abs(p));
        }
        Ok(PgDump {
            bin: PgBin::find()?,
            as_user: RunAs::resolve(&spec.os_user)?,
            spec,
            drill: drill.into(),
            run: run.into(),
            source_db: source_db.map(str::to_string),
            events,
            lifetime,
            teardown_deadline: t.teardown,
            s3: None,
            dumps: Vec::new(),
            chosen: None,
            cluster: None,
            database: String::new(),
            facts: Vec::new(),
            neutralised: Vec::new(),
            findings: Vec::new(),
        })
    }

    /// The client an `s3://` location is read with.
    pub(crate) fn with_s3(mut self, s3: Option<aws_sdk_s3::Client>) -> PgDump {
        self.s3 = s3;
        self
    }

    fn progress(&self, msg: impl Into<String>) {
        self.events.progress(&self.drill, "restore", msg);
    }

    /// When a dump was taken: its sidecar, else the time pg_dump wrote into it, else its file name.
    fn taken_at(
        &self,
        name: &str,
        i: &Inspected,
        sidecar: Option<&Sidecar>,
    ) -> Result<(DateTime<Utc>, String), DumpError> {
        if let Some(t) = sidecar.and_then(|s| s.taken_at) {
            return Ok((t, "sidecar".into()));
        }
        let tz = self.spec.header_timezone;
        let wall = |w: chrono::NaiveDateTime| tz.from_local_datetime(&w).earliest().map(|t| t.with_timezone(&Utc));
        if let Some(t) = i.header.as_ref().and_then(|h| wall(h.created)) {
            return Ok((t, format!("archive header ({tz})")));
        }
        match i.started_on {
            Some(StartedOn::Utc(t)) => return Ok((t, "`-- Started on` line".into())),
            Some(StartedOn::Local(w)) => {
                if let Some(t) = wall(w) {
                    return Ok((t, format!("`-- Started on` line ({tz})")));
                }
            }
            None => {}
        }
        if let Some(t) = dump::time_in_name(name) {
            return Ok((t, "file name (UTC)".into()));
        }
        Err(DumpError::NoTime { name: name.to_string() })
    }

    fn list_local(&self, root: &Path) -> Result<Vec<Dump>, DrillError> {
        let no_window = |m: String| DrillError::NoWindow(m);
        let candidates: Vec<PathBuf> = if root.is_file() || root.join("toc.dat").is_file() {
            vec![root.to_path_buf()]
        } else {
            let rd = std::fs::read_dir(root)
                .map_err(|e| no_window(format!("cannot read the dumps directory `{}`: {e}", root.display())))?;
            let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            v
        };
        let mut out = Vec::new();
        for path in candidates {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.ends_with(".json") {
                continue;
            }
            let inspected = match dump::inspect(&path) {
                Ok(Some(i)) => i,
                Ok(None) => {
                    tracing::debug!(path = %path.display(), "not a pg_dump or pg_dumpall output; skipped");
                    continue;
                }
                Err(e) => return Err(no_window(format!("cannot read `{}`: {e}", path.display()))),
            };
            let sidecar_path = PathBuf::from(format!("{}.json", path.display()));
            let sidecar = match crate::userfile::read(&sidecar_path, SIDECAR_MAX, crate::userfile::Links::Follow) {
                Ok(b) => {
                    Some(parse_sidecar(&sidecar_path.display().to_string(), &b).map_err(|e| no_window(e.to_string()))?)
                }
                Err(crate::userfile::UserFileError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    None
                }
                Err(e) => return Err(no_window(e.to_string())),
            };
            let (taken_at, taken_from) =
                self.taken_at(&name, &inspected, sidecar.as_ref()).map_err(|e| no_window(e.to_string()))?;
            out.push(Dump {
                name,
                at: DumpAt::Local(path),
                inspected,
                taken_at,
                taken_from,
                sidecar_sha256: sidecar.and_then(|s| s.sha256),
            });
        }
        Ok(out)
    }

    /// Lists the prefix; reads each dump's first 64 KiB (one ranged GET) and its sidecar, if listed.
    async fn list_s3(&self, bucket: &str, prefix: &str) -> Result<Vec<Dump>, DrillError> {
        let s3 = self.s3.as_ref().ok_or_else(|| DrillError::NoWindow("no S3 client for an s3:// location".into()))?;
        let fail = |op: &str, e: String| DrillError::NoWindow(format!("s3:{op} on s3://{bucket}/{prefix}: {e}"));
        let mut objects = Vec::new();
        let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fail("ListBucket", crate::aws::classify("s3:ListBucket", &e).to_string()))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    objects.push((k.to_string(), o.size().unwrap_or(0).max(0) as u64));
                }
            }
        }
        let keys: BTreeSet<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
        let mut out = Vec::new();
        for (key, size) in &objects {
            if key.ends_with(".json") || key.ends_with('/') {
                continue;
            }
            let head = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .range("bytes=0-65535")
                .send()
                .await
                .map_err(|e| fail("GetObject", crate::aws::classify("s3:GetObject", &e).to_string()))?;
            let head = head.body.collect().await.map_err(|e| fail("GetObject", e.to_string()))?.into_bytes();
            let Some(inspected) = dump::inspect_bytes(&head) else { continue };
            let sidecar_key = format!("{key}.json");
            let sidecar = if keys.contains(sidecar_key.as_str()) {
                let o = s3
                    .get_object()
                    .bucket(bucket)
                    .key(&sidecar_key)
                    .send()
                    .await
                    .map_err(|e| fail("GetObject", crate::aws::classify("s3:GetObject", &e).to_string()))?;
                let b = o.body.collect().await.map_err(|e| fail("GetObject", e.to_string()))?.into_bytes();
                Some(
                    parse_sidecar(&format!("s3://{bucket}/{sidecar_key}"), &b)
                        .map_err(|e| DrillError::NoWindow(e.to_string()))?,
                )
            } else {
                None
            };
            let name = key.rsplit('/').next().unwrap_or(key).to_string();
            let (taken_at, taken_from) =
                self.taken_at(&name, &inspected, sidecar.as_ref()).map_err(|e| DrillError::NoWindow(e.to_string()))?;
            out.push(Dump {
                name,
                at: DumpAt::S3 { bucket: bucket.into(), key: key.clone(), size: *size },
                inspected,
                taken_at,
                taken_from,
                sidecar_sha256: sidecar.and_then(|s| s.sha256),
            });
        }
        Ok(out)
    }

    /// Makes the scratch directory with its ownership marker, and the cluster object for it.
    fn make_scratch(&mut self) -> Result<Cluster, RestoreError> {
        let cluster =
            super::make_scratch_dir(&self.spec.scratch_root, &self.drill, &self.run, self.lifetime, &self.as_user)?;
        self.cluster = Some(cluster.clone());
        Ok(cluster)
    }

    /// The dump as a local file the server's OS user can read: the file itself, or an S3 object downloaded
    /// into the scratch directory. Its sha256 goes to the report and is checked against a sidecar's.
    async fn fetch(&mut self, d: &Dump, cluster: &Cluster) -> Result<PathBuf, RestoreError> {
        let (path, digest) = match &d.at {
            DumpAt::Local(p) => {
                let p = p.clone();
                let digest = if p.is_dir() {
                    None
                } else {
                    let path = p.clone();
                    let hashed = tokio::task::spawn_blocking(move || sha256_file(&path))
                        .await
                        .map_err(|e| RestoreError::Error(e.to_string()))?;
                    Some(hashed.map_err(|e| RestoreError::Error(format!("cannot read `{}`: {e}", p.display())))?)
                };
                (p, digest)
            }
            DumpAt::S3 { bucket, key, size } => {
                let s3 = self.s3.clone().ok_or_else(|| RestoreError::Error("no S3 client".into()))?;
                self.progress(format!("downloading s3://{bucket}/{key} ({})", super::local_postgres::bytes(*size)));
                let path = cluster.dir.join("dump");
                let digest = download(&s3, bucket, key, &path).await?;
                self.as_user.chown(&path)?;
                (path, Some(digest))
            }
        };
        if let Some(h) = &digest {
            self.facts.push(("dump_sha256", h.clone()));
        }
        if let (Some(want), Some(got)) = (&d.sidecar_sha256, &digest)
            && !want.eq_ignore_ascii_case(got)
        {
            return Err(RestoreError::Failed(format!(
                "dump `{}` has sha256 {got}, but its sidecar says {want}: the file changed after it was written",
                d.name
            )));
        }
        // pg_restore runs as the server's OS user and opens the file itself.
        let readable = self.as_user.as_fs_user(|| std::fs::metadata(&path).and_then(|_| read_probe(&path)));
        if let Err(e) = readable {
            return Err(RestoreError::Error(format!(
                "OS user `{}` cannot read `{}` ({e}); make the dump readable by it",
                self.as_user.name(),
                path.display()
            )));
        }
        Ok(path)
    }

    /// What the dump's SQL needs: from pg_restore's schema script for an archive, from the text for SQL.
    async fn needs(&self, d: &Dump, path: &Path) -> Result<Needs, RestoreError> {
        if d.inspected.format.is_archive() {
            let mut cmd = self.as_user.command(&self.bin.path("pg_restore"));
            cmd.args(["--schema-only", "-f", "-"]).arg(path);
            let script = pg::run(cmd, "pg_restore")
                .await
                .map_err(|e| RestoreError::Failed(format!("the dump cannot be read: {e}")))?;
            return dump::scan(script.as_bytes())
                .map_err(|e| RestoreError::Error(format!("cannot read pg_restore's output: {e}")));
        }
        let (path, gzip) = (path.to_path_buf(), d.inspected.gzip);
        tokio::task::spawn_blocking(move || dump::scan(sql_reader(&path, gzip)?))
            .await
            .map_err(|e| RestoreError::Error(e.to_string()))?
            .map_err(|e| RestoreError::Failed(format!("the dump cannot be read: {e}")))
    }

    /// Creates (NOLOGIN) or names the roles the dump uses but does not create; returns the scratch's roles
    /// before that (the `CREATE ROLE`s of a pg_dumpall for these are left out).
    async fn settle_roles(
        &mut self,
        needs: &Needs,
        admin: &tokio_postgres::Client,
    ) -> Result<BTreeSet<String>, RestoreError> {
        let existing = names(admin, "select rolname from pg_roles").await?;
        let missing = needs.missing_roles(&existing);
        if missing.is_empty() {
            return Ok(existing);
        }
        if !self.spec.create_missing_roles {
            return Err(RestoreError::Failed(format!(
                "the dump needs {} it does not create: {}; create them before restoring or set \
                 `create-missing-roles: true` (they are then created NOLOGIN)",
                if missing.len() == 1 { "a role" } else { "roles" },
                missing.join(", ")
            )));
        }
        for r in &missing {
            admin
                .batch_execute(&format!("create role {} nologin", quote_ident(r)))
                .await
                .map_err(|e| RestoreError::Error(format!("cannot create role `{r}`: {e}")))?;
        }
        self.neutralised
            .push(format!("roles the dump uses but does not create were created NOLOGIN: {}", missing.join(", ")));
        Ok(existing)
    }

    /// Extensions the dump creates that this server does not have: skipped, each a finding.
    async fn missing_extensions(
        &mut self,
        needs: &Needs,
        admin: &tokio_postgres::Client,
    ) -> Result<BTreeSet<String>, RestoreError> {
        let available = names(admin, "select name from pg_available_extensions").await?;
        let missing: BTreeSet<String> = needs.extensions.difference(&available).cloned().collect();
        for e in &missing {
            self.findings.push((
                format!("extension `{e}` is not installed on this machine: its CREATE EXTENSION was skipped"),
                format!(
                    "install the `{e}` extension's package where drills run; until then, objects that depend on it \
                     are not restored and the drill fails if any is needed"
                ),
            ));
        }
        Ok(missing)
    }

    async fn load_archive(&self, path: &Path, cluster: &Cluster, skip: &BTreeSet<String>) -> Result<(), RestoreError> {
        let format = self.chosen.as_ref().map(|d| d.inspected.format);
        let mut cmd = self.as_user.command(&self.bin.path("pg_restore"));
        cmd.arg("--exit-on-error")
            .args(["-h", &cluster.dir.display().to_string(), "-p", &cluster.port.to_string()])
            .args(["-U", &self.spec.user, "-d", &self.database]);
        // tar cannot be read in parallel.
        let jobs = if format == Some(DumpFormat::Tar) { 1 } else { self.spec.jobs };
        cmd.args(["-j", &jobs.to_string()]);
        if !skip.is_empty() {
            let mut list = self.as_user.command(&self.bin.path("pg_restore"));
            list.arg("-l").arg(path);
            let toc = pg::run(list, "pg_restore -l")
                .await
                .map_err(|e| RestoreError::Failed(format!("the dump cannot be read: {e}")))?;
            let kept = skip_extensions_in_toc(&toc, skip);
            let list_path = cluster.dir.join("restore.list");
            self.as_user.create_file(&list_path, kept.as_bytes(), 0o600)?;
            cmd.arg("-L").arg(&list_path);
        }
        cmd.arg(path);
        pg::run(cmd, "pg_restore").await.map_err(|e| match e {
            pg::PgError::Command { stderr, .. } => RestoreError::Failed(format!("pg_restore failed: {stderr}")),
            other => RestoreError::Error(other.to_string()),
        })?;
        Ok(())
    }

    /// Runs SQL text through psql (stop on the first error), leaving out what cannot be run here:
    /// extensions not installed and `CREATE ROLE` of a role that exists (pg_dumpall's superuser).
    async fn load_sql(
        &self,
        path: &Path,
        gzip: bool,
        cluster: &Cluster,
        db: &str,
        skip_ext: BTreeSet<String>,
        existing_roles: BTreeSet<String>,
    ) -> Result<(), RestoreError> {
        let mut cmd = self.as_user.command(&self.bin.path("psql")).into_std();
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .args(["-h", &cluster.dir.display().to_string(), "-p", &cluster.port.to_string()])
            .args(["-U", &self.spec.user, "-d", db])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let path = path.to_path_buf();
        let out = tokio::task::spawn_blocking(move || -> Result<(bool, String), DumpError> {
            let mut child = cmd.spawn().map_err(DumpError::Spawn)?;
            let mut stderr = child.stderr.take().ok_or(DumpError::NotPiped("psql's stderr was not piped"))?;
            let errors = std::thread::spawn(move || {
                let mut s = String::new();
                let _ = stderr.read_to_string(&mut s);
                s
            });
            let mut stdin =
                std::io::BufWriter::new(child.stdin.take().ok_or(DumpError::NotPiped("psql's stdin was not piped"))?);
            let fed = sql_reader(&path, gzip).and_then(|r| {
                dump::for_each_sql_line(r, |line, data| {
                    let skip = !data && skipped_statement(line, &skip_ext, &existing_roles);
                    if skip {
                        stdin.write_all(b"-- skipped by stackdrill: ")?;
                    }
                    stdin.write_all(line.as_bytes())?;
                    stdin.write_all(b"\n")
                })?;
                stdin.flush()
            });
            drop(stdin);
            let status = child.wait().map_err(DumpError::Wait)?;
            let errors = errors.join().unwrap_or_default();
            // A broken pipe means psql stopped early: its own message says why.
            if let Err(e) = fed
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(DumpError::Read(e));
            }
            Ok((status.success(), errors))
        })
        .await
        .map_err(|e| RestoreError::Error(e.to_string()))?
        .map_err(|e| RestoreError::Failed(e.to_string()))?;
        match out {
            (true, _) => Ok(()),
            (false, errors) => {
                let lines: Vec<&str> = errors.lines().filter(|l| l.contains("ERROR") || l.contains("FATAL")).collect();
                let quoted =
                    if lines.is_empty() { errors.lines().last().unwrap_or("").to_string() } else { lines.join("; ") };
                Err(RestoreError::Failed(format!("psql stopped at the first error: {}", quoted.trim())))
            }
        }
    }
}

/// A statement psql must not run here, by its first line.
fn skipped_statement(line: &str, skip_ext: &BTreeSet<String>, existing_roles: &BTreeSet<String>) -> bool {
    let upper = line.to_ascii_uppercase();
    let named = |rest: &str| {
        let name = rest.trim_start_matches("IF NOT EXISTS ").split([' ', ';']).next().unwrap_or("");
        name.trim_matches('"').to_string()
    };
    if let Some(rest) = upper.strip_prefix("CREATE EXTENSION ") {
        let start = line.len() - rest.len();
        return skip_ext.contains(&named(&line[start..]));
    }
    if let Some(rest) = upper.strip_prefix("COMMENT ON EXTENSION ") {
        let start = line.len() - rest.len();
        return skip_ext.contains(&named(&line[start..]));
    }
    if let Some(rest) = upper.strip_prefix("CREATE ROLE ")
        && rest.trim_end().ends_with(';')
        && !rest.contains(' ')
    {
        let start = line.len() - rest.len();
        return existing_roles.contains(&named(&line[start..]));
    }
    false
}

/// `pg_restore -l` output with the entries of skipped extensions (and their comments) commented out.
fn skip_extensions_in_toc(toc: &str, skip: &BTreeSet<String>) -> String {
    let mut out = String::new();
    for line in toc.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        // `12; 3079 16385 EXTENSION - pg_graphql` / `4015; 0 0 COMMENT - EXTENSION pg_graphql`
        let skipped =
            !line.starts_with(';') && words.last().is_some_and(|n| skip.contains(*n)) && (words.contains(&"EXTENSION"));
        if skipped {
            out.push(';');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn parse_sidecar(name: &str, bytes: &[u8]) -> Result<Sidecar, DumpError> {
    serde_json::from_slice(bytes).map_err(|source| DumpError::Sidecar { name: name.to_string(), source })
}

/// What went wrong reading a dump's time or sidecar, or feeding a plain dump to psql.
#[derive(Debug, thiserror::Error)]
enum DumpError {
    #[error(
        "cannot tell when `{name}` was taken: it has no archive header or `-- Started on` line (pg_dump --verbose \
         writes one) and no time in its name; add a sidecar `{name}.json` with {{\"taken_at\": \"RFC 3339 time\"}}"
    )]
    NoTime { name: String },
    #[error(
        "sidecar `{name}` is not {{\"taken_at\": RFC 3339, \"sha256\": hex}}: {source} (line {}, column {})",
        .source.line(),
        .source.column()
    )]
    Sidecar { name: String, source: serde_json::Error },
    #[error("could not run psql: {0}")]
    Spawn(std::io::Error),
    #[error("{0}")]
    NotPiped(&'static str),
    #[error(transparent)]
    Wait(std::io::Error),
    #[error("cannot read the dump: {0}")]
    Read(std::io::Error),
}

/// A reader over the SQL text of a plain dump, inflating gzip.
fn sql_reader(path: &Path, gzip: bool) -> std::io::Result<Box<dyn BufRead + Send>> {
    let f = std::fs::File::open(path)?;
    Ok(if gzip {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(BufReader::new(f))))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, f))
    })
}

fn read_probe(path: &Path) -> std::io::Result<()> {
    if path.is_dir() { std::fs::read_dir(path).map(|_| ()) } else { std::fs::File::open(path).map(|_| ()) }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Streams an object to `path`, hashing as it goes.
async fn download(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, path: &Path) -> Result<String, RestoreError> {
    use tokio::io::AsyncWriteExt;
    let fail = |e: String| RestoreError::Error(format!("cannot download s3://{bucket}/{key}: {e}"));
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| fail(crate::aws::classify("s3:GetObject", &e).to_string()))?;
    let mut body = out.body;
    let mut file =
        tokio::fs::OpenOptions::new().write(true).create_new(true).open(path).await.map_err(|e| fail(e.to_string()))?;
    let mut h = Sha256::new();
    while let Some(chunk) = body.try_next().await.map_err(|e| fail(e.to_string()))? {
        h.update(&chunk);
        file.write_all(&chunk).await.map_err(|e| fail(e.to_string()))?;
    }
    file.flush().await.map_err(|e| fail(e.to_string()))?;
    Ok(hex::encode(h.finalize()))
}

async fn names(admin: &tokio_postgres::Client, sql: &str) -> Result<BTreeSet<String>, RestoreError> {
    let rows = admin.query(sql, &[]).await.map_err(|e| RestoreError::Error(format!("the scratch: {e}")))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[async_trait::async_trait]
impl RestoreProvider for PgDump {
    fn name(&self) -> &'static str {
        "pg-dump"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("dumps", self.spec.dumps.to_string()),
            ("server_version", self.bin.version.clone()),
            ("os_user", self.as_user.name()),
        ];
        if let Some(d) = &self.chosen {
            v.push((
                "dump_format",
                format!("{}{}", d.inspected.format.as_str(), if d.inspected.gzip { " (gzip)" } else { "" }),
            ));
            v.push(("dump_taken_from", d.taken_from.clone()));
            let from = d
                .inspected
                .header
                .as_ref()
                .map(|h| h.server_version.clone())
                .or(d.inspected.plain_server_version.clone());
            if let Some(v2) = from {
                v.push(("dumped_from_version", v2));
            }
            v.push(("dumps_available", self.dumps.len().to_string()));
        }
        if let Some(b) = self.restored_bytes() {
            v.push((crate::drill::forecast::RESTORED_BYTES, b.to_string()));
        }
        v.extend(self.facts.iter().cloned());
        v
    }

    async fn window(&mut self) -> Result<Window, DrillError> {
        let mut dumps = match &self.spec.dumps {
            DumpLocation::Path(p) => self.list_local(p)?,
            DumpLocation::S3 { bucket, prefix } => self.list_s3(bucket, prefix).await?,
        };
        dumps.sort_by_key(|d| d.taken_at);
        let (Some(first), Some(last)) = (dumps.first(), dumps.last()) else {
            return Err(DrillError::NoWindow(format!("no pg_dump or pg_dumpall output in `{}`", self.spec.dumps)));
        };
        let window = Window { earliest: first.taken_at, latest: last.taken_at };
        self.dumps = dumps;
        Ok(window)
    }

    async fn wait_recoverable(
        &mut self,
        _t: DateTime<Utc>,
        _source: &tokio_postgres::Client,
    ) -> Result<(), DrillError> {
        // `drill validate` refuses a canary with a dump: nothing written now is in a dump taken earlier.
        Err(DrillError::NoWindow("a logical dump cannot hold a canary written during the drill".into()))
    }

    fn plan(&mut self, target: &ResolvedTarget) -> Result<BackupUsed, DrillError> {
        let chosen = match target.recovery {
            Recovery::End => self.dumps.last(),
            Recovery::Time(t) => self.dumps.iter().rev().find(|d| d.taken_at <= t),
        }
        .cloned()
        .ok_or_else(|| DrillError::NoWindow(format!("no dump was taken before {}", fmt_time(&target.time))))?;
        let used = BackupUsed {
            id: chosen.name.clone(),
            location: chosen.location(),
            started_at: chosen.taken_at,
            finished_at: chosen.taken_at,
        };
        self.chosen = Some(chosen);
        Ok(used)
    }

    async fn restore(&mut self, _target: &ResolvedTarget) -> Result<(), RestoreError> {
        let d = self.chosen.clone().ok_or_else(|| RestoreError::Error("restore before plan".into()))?;
        let cluster = self.make_scratch()?;
        let path = self.fetch(&d, &cluster).await?;
        let needs = self.needs(&d, &path).await?;
        if let Some((line, text)) = &needs.foreign_meta {
            return Err(RestoreError::Failed(format!(
                "refused: line {line} of the dump is the psql command `{text}`, which pg_dump never writes \
                 (psql would run it on this machine)"
            )));
        }
        if let Some(v) =
            d.inspected.header.as_ref().map(|h| &h.server_version).or(d.inspected.plain_server_version.as_ref())
            && major(v) > major(&self.bin.version)
        {
            return Err(RestoreError::Failed(format!(
                "the dump comes from PostgreSQL {v}, newer than this machine's {}: install a server of at least \
                 that major version (or point STACKDRILL_PG_BIN at one)",
                self.bin.version
            )));
        }

        self.progress("creating the scratch cluster (initdb)");
        cluster.initdb(&self.bin, &self.as_user, &self.spec.user).await?;
        let mut settings = cluster.base_settings("");
        let short: String = self.run.chars().take(8).collect();
        settings.extend([
            ("cluster_name", format!("stackdrill-scratch-{short}")),
            ("logging_collector", "off".into()),
            ("archive_mode", "off".into()),
            ("max_logical_replication_workers", "0".into()),
            ("shared_preload_libraries", String::new()),
        ]);
        cluster.apply_settings(&self.as_user, &settings)?;
        cluster.start(&self.bin, &self.as_user).await?;
        self.neutralised.extend([
            "a fresh cluster: archive_mode off, no restore or archive command, listen_addresses empty (socket only)"
                .to_string(),
            "max_logical_replication_workers = 0: no restored subscription connects to its publisher".to_string(),
            "shared_preload_libraries empty: no job scheduler (pg_cron, ...) runs".to_string(),
        ]);

        let admin = cluster.wait_connect(&self.spec.user, Duration::from_secs(60)).await?;
        let roles = self.settle_roles(&needs, &admin).await?;
        let skip = self.missing_extensions(&needs, &admin).await?;
        let header_db = d.inspected.header.as_ref().map(|h| h.dbname.clone()).filter(|n| !n.is_empty());
        self.database =
            self.spec.database.clone().or(self.source_db.clone()).or(header_db).unwrap_or_else(|| "postgres".into());
        // A dump that switches databases (pg_dumpall, pg_dump --create) makes its own; run it from `postgres`.
        let own_db = !d.inspected.format.is_archive() && needs.connects;
        if !own_db {
            let exists = admin
                .query_opt("select 1 from pg_database where datname = $1", &[&self.database])
                .await
                .map_err(|e| RestoreError::Error(e.to_string()))?
                .is_some();
            if !exists {
                admin
                    .batch_execute(&format!("create database {} template template0", quote_ident(&self.database)))
                    .await
                    .map_err(|e| RestoreError::Error(format!("cannot create database `{}`: {e}", self.database)))?;
            }
        }
        drop(admin);

        let started = std::time::Instant::now();
        if d.inspected.format.is_archive() {
            self.progress(format!("pg_restore -j {} of {} into `{}`", self.spec.jobs, d.name, self.database));
            self.load_archive(&path, &cluster, &skip).await?;
        } else {
            let db = if own_db { "postgres".to_string() } else { self.database.clone() };
            self.progress(format!("psql of {} into `{db}`", d.name));
            self.load_sql(&path, d.inspected.gzip, &cluster, &db, skip, roles).await?;
        }
        self.facts.push(("load_seconds", format!("{:.1}", started.elapsed().as_secs_f64())));
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.wait_endpoint().await.map(|ep| super::Restored::Postgres(Box::new(ep)))
    }

    fn neutralised(&self) -> Vec<String> {
        self.neutralised.clone()
    }

    fn findings(&self) -> Vec<(String, String)> {
        self.findings.clone()
    }

    fn data_as_of(&self) -> Option<DateTime<Utc>> {
        self.chosen.as_ref().map(|d| d.taken_at)
    }

    fn restored_bytes(&self) -> Option<u64> {
        match &self.chosen.as_ref()?.at {
            DumpAt::S3 { size, .. } => Some(*size),
            DumpAt::Local(p) if p.is_dir() => {
                Some(std::fs::read_dir(p).ok()?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            }
            DumpAt::Local(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    fn rpo_floor(&self) -> Option<(DateTime<Utc>, &'static str)> {
        self.chosen.as_ref().map(|d| (d.taken_at, "the dump's time: a logical dump holds the data as of its start"))
    }

    fn recovery(&self) -> Option<String> {
        Some("logical restore of the newest dump taken at or before the target".into())
    }

    async fn teardown(&mut self) -> Teardown {
        let Some(cluster) = self.cluster.take() else {
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: "no scratch was created".into(),
            };
        };
        super::remove_scratch_cluster(
            &cluster,
            &self.bin,
            &self.as_user,
            &self.drill,
            &self.run,
            self.teardown_deadline,
        )
        .await
    }
}

impl PgDump {
    /// Waits until the restored database accepts queries as a primary: how to reach it.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        let cluster = self.cluster.clone().ok_or_else(|| RestoreError::Error("no scratch".into()))?;
        let config = cluster.client_config(&self.spec.user, &self.database);
        let client = pg::connect(&config).await.map_err(|e| {
            RestoreError::Failed(format!("the restored database `{}` does not accept connections: {e}", self.database))
        })?;
        // Restored subscriptions are created disabled by pg_dump; make sure none is enabled.
        let subs = client
            .query("select subname from pg_subscription where subenabled", &[])
            .await
            .map_err(|e| RestoreError::Error(e.to_string()))?;
        for row in subs {
            let name: String = row.get(0);
            let q = quote_ident(&name);
            client
                .batch_execute(&format!(
                    "alter subscription {q} disable; alter subscription {q} set (slot_name = none)"
                ))
                .await
                .map_err(|e| RestoreError::Error(format!("cannot disable subscription `{name}`: {e}")))?;
            self.neutralised.push(format!("subscription `{name}` disabled and detached from its slot"));
        }
        let outbound = super::outbound::neutralise_cluster(&cluster, &self.spec.user).await?;
        self.neutralised.extend(outbound);
        Ok(Endpoint {
            config,
            tls: crate::config::TlsSpec::Disable,
            server_name: None,
            credential: None,
            display: format!("{}/.s.PGSQL.{} (database {})", cluster.dir.display(), cluster.port, self.database),
        })
    }
}

/// `15.8` → 15, `9.6.24` → 9 (close enough: 9.x dumps restore into any newer server).
fn major(version: &str) -> u32 {
    version.split(|c: char| !c.is_ascii_digit()).find(|s| !s.is_empty()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[async_trait::async_trait]
impl super::registry::ProviderKind for PgDumpSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let s3 = match &self.dumps {
            DumpLocation::S3 { .. } => {
                let mut settings = ctx.opts.aws.clone();
                settings.region = self.region.clone().or(settings.region);
                Some(crate::aws::s3_client(&settings).await)
            }
            DumpLocation::Path(_) => None,
        };
        let (spec, t) = (ctx.spec, &ctx.spec.timeouts);
        let provider =
            PgDump::new(self, &spec.name, ctx.run_id, ctx.default_db(), ctx.events.clone(), t, ctx.lifetime)?;
        Ok(super::registry::Built::alone(provider.with_s3(s3)))
    }

    fn iam(&self, needs: &mut dyn super::registry::IamNeeds, _: &str) {
        if let DumpLocation::S3 { bucket, prefix } = &self.dumps {
            needs.allow("DumpsList", &["s3:ListBucket"], &[format!("arn:aws:s3:::{bucket}")], None);
            needs.allow("DumpsRead", &["s3:GetObject"], &[format!("arn:aws:s3:::{bucket}/{prefix}*")], None);
        }
    }

    fn local_scratch(&self) -> Option<(&std::path::Path, &str)> {
        Some((&self.scratch_root, &self.os_user))
    }

    fn scratch_text(&self, name: &str, _: &crate::config::DrillSpec, _: &str, _: Option<&str>) -> String {
        format!("{name} under {} (a fresh cluster, socket only)", self.scratch_root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_left_out_of_a_plain_restore() {
        let ext: BTreeSet<String> = ["pg_graphql".to_string()].into();
        let roles: BTreeSet<String> = ["postgres".to_string()].into();
        assert!(skipped_statement("CREATE EXTENSION IF NOT EXISTS pg_graphql WITH SCHEMA graphql;", &ext, &roles));
        assert!(skipped_statement("COMMENT ON EXTENSION pg_graphql IS 'x';", &ext, &roles));
        assert!(!skipped_statement("CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;", &ext, &roles));
        assert!(skipped_statement("CREATE ROLE postgres;", &ext, &roles));
        assert!(!skipped_statement("CREATE ROLE anon;", &ext, &roles));
        assert!(!skipped_statement("ALTER ROLE postgres WITH SUPERUSER;", &ext, &roles));
        let toc = ";\n; Archive created at x\n12; 3079 16385 EXTENSION - pg_graphql \n4015; 0 0 COMMENT - EXTENSION pg_graphql \n13; 3079 1 EXTENSION - pgcrypto \n";
        let kept = skip_extensions_in_toc(toc, &ext);
        assert!(kept.contains(";12; 3079 16385 EXTENSION - pg_graphql"));
        assert!(kept.contains(";4015; 0 0 COMMENT - EXTENSION pg_graphql"));
        assert!(kept.contains("\n13; 3079 1 EXTENSION - pgcrypto"));
        assert_eq!(major("15.8 (Debian 15.8-0+deb12u1)"), 15);
        assert_eq!(major("9.6.24"), 9);
    }
}
