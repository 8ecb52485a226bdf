//! Base backups in a directory: taking them (`pg_basebackup`, plain format with a manifest),
//! listing them with their times, copying them with their manifest checked in the same read, and
//! checking their WAL with `pg_verifybackup`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bin::PgBin;
use super::cluster::Cluster;
use super::error::PgError;
use super::user::{RunAs, run};
use super::wal::Segment;

const SIDECAR: &str = "stackdrill-backup.json";

/// One base backup and when it became usable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BaseBackup {
    pub(crate) id: String,
    #[serde(skip)]
    pub(crate) path: PathBuf,
    pub(crate) started_at: DateTime<Utc>,
    /// Recovery to a time before this cannot reach consistency.
    pub(crate) finished_at: DateTime<Utc>,
    /// The first WAL segment the backup needs.
    pub(crate) start_wal: String,
    pub(crate) timeline: u32,
}

impl BaseBackup {
    pub(crate) fn start_segment(&self, seg_size: u64) -> Option<Segment> {
        Segment::parse(&self.start_wal, seg_size)
    }
}

/// Lists complete base backups (those with a `backup_manifest`), oldest first.
pub(crate) fn list(dir: &Path) -> Result<Vec<BaseBackup>, PgError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(PgError::io("cannot read the base backup directory", dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".partial") || !path.join("backup_manifest").is_file() {
            continue;
        }
        match describe(&path, &name) {
            Ok(b) => out.push(b),
            Err(e) => tracing::warn!(backup = %path.display(), error = %e, "skipping an unreadable base backup"),
        }
    }
    out.sort_by_key(|b| b.finished_at);
    Ok(out)
}

fn describe(path: &Path, name: &str) -> Result<BaseBackup, PgError> {
    let sidecar = path.join(SIDECAR);
    if let Ok(text) = crate::userfile::read_text(&sidecar, 1024 * 1024, crate::userfile::Links::Follow) {
        let mut b: BaseBackup = serde_json::from_str(&text)
            .map_err(|e| PgError::Other(format!("`{}` is not valid: {e}", sidecar.display())))?;
        b.path = path.to_path_buf();
        return Ok(b);
    }
    // A backup stackdrill did not take: times from backup_label and the manifest's mtime.
    let label_path = path.join("backup_label");
    let label = crate::userfile::read_text(&label_path, 1024 * 1024, crate::userfile::Links::Follow)
        .map_err(|e| PgError::Other(e.to_string()))?;
    let field = |k: &str| label.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
    let start_wal = field("START WAL LOCATION:")
        .and_then(|v| v.split("(file ").nth(1))
        .map(|v| v.trim_end_matches(')').to_string())
        .ok_or_else(|| PgError::Other(format!("`{}` has no START WAL LOCATION", label_path.display())))?;
    let started_at = field("START TIME:")
        .and_then(|v| NaiveDateTime::parse_from_str(v.trim_end_matches(" UTC"), "%Y-%m-%d %H:%M:%S").ok())
        .map(|n| n.and_utc())
        .ok_or_else(|| PgError::Other(format!("`{}` has no START TIME in UTC", label_path.display())))?;
    let timeline = field("START TIMELINE:").and_then(|v| v.parse().ok()).unwrap_or(1);
    let manifest = path.join("backup_manifest");
    let finished_at: DateTime<Utc> =
        std::fs::metadata(&manifest).and_then(|m| m.modified()).map_err(PgError::io("cannot stat", &manifest))?.into();
    Ok(BaseBackup { id: name.to_string(), path: path.to_path_buf(), started_at, finished_at, start_wal, timeline })
}

/// Takes a base backup of `cluster` into `dir/<id>` over the cluster's private socket.
pub(crate) async fn take(
    bin: &PgBin,
    as_user: &RunAs,
    cluster: &Cluster,
    superuser: &str,
    dir: &Path,
) -> Result<BaseBackup, PgError> {
    as_user.make_private_dir(dir)?;
    let started_at = Utc::now();
    let id = started_at.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let partial = dir.join(format!("{id}.partial"));
    let mut cmd = as_user.command(&bin.path("pg_basebackup"));
    cmd.arg("-D").arg(&partial).arg("-h").arg(&cluster.dir).arg("-p").arg(cluster.port.to_string()).args([
        "-U",
        superuser,
        "-Fp",
        "-Xstream",
        "-cfast",
        "--no-password",
    ]);
    run(cmd, "pg_basebackup").await?;
    let finished_at = Utc::now();
    let mut b = describe(&partial, &id)?;
    b.finished_at = finished_at;
    b.started_at = started_at;
    let text = serde_json::to_string_pretty(&b).map_err(|e| PgError::Other(e.to_string()))?;
    let sidecar = partial.join(SIDECAR);
    std::fs::write(&sidecar, text).map_err(PgError::io("cannot write", &sidecar))?;
    let final_path = dir.join(&id);
    std::fs::rename(&partial, &final_path).map_err(PgError::io("cannot rename", &partial))?;
    b.path = final_path;
    Ok(b)
}

/// `pg_verifybackup --skip-checksums`: the manifest's own checksum, the files listed against those present
/// (names and sizes: metadata only, no data file is read), and the WAL the backup needs parsed with
/// `pg_waldump` — what `pg_verifybackup` checks besides the file checksums, which [`copy_verified`] checks
/// while it copies. The error names what is wrong, as `pg_verifybackup` says it.
pub(crate) async fn verify_wal(bin: &PgBin, as_user: &RunAs, backup: &Path) -> Result<(), PgError> {
    let mut cmd = as_user.command(&bin.path("pg_verifybackup"));
    cmd.arg("--quiet").arg("--skip-checksums").args(["--ignore", SIDECAR]).arg(backup);
    run(cmd, "pg_verifybackup").await.map(|_| ())
}

/// Paths `pg_verifybackup` leaves out of its checks (PostgreSQL 15's defaults), and stackdrill's sidecar.
const IGNORED: [&str; 6] =
    ["backup_manifest", "pg_wal", "postgresql.auto.conf", "recovery.signal", "standby.signal", SIDECAR];

/// As `pg_verifybackup` matches its ignore list: the path itself or anything under it.
fn ignored(rel: &str) -> bool {
    IGNORED.iter().any(|i| rel == *i || rel.strip_prefix(i).is_some_and(|r| r.starts_with('/')))
}

/// A checksum algorithm a backup manifest names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Crc32c,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Option<Algorithm>> {
        Some(Some(match name.to_ascii_uppercase().as_str() {
            "NONE" => return Some(None),
            "CRC32C" => Algorithm::Crc32c,
            "SHA224" => Algorithm::Sha224,
            "SHA256" => Algorithm::Sha256,
            "SHA384" => Algorithm::Sha384,
            "SHA512" => Algorithm::Sha512,
            _ => return None,
        }))
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Sha224 => "SHA224",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha384 => "SHA384",
            Algorithm::Sha512 => "SHA512",
        }
    }

    fn hasher(self) -> Hasher {
        use sha2::Digest;
        match self {
            Algorithm::Crc32c => Hasher::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi)),
            Algorithm::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

enum Hasher {
    Crc(crc_fast::Digest),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Crc(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The bytes the manifest writes in hex: PostgreSQL stores the CRC-32C as the `uint32` in memory,
    /// little-endian on every platform it builds manifests on that we run (x86-64, arm64).
    fn finish(self) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hasher::Crc(h) => {
                let crc = u32::try_from(h.finalize()).unwrap_or(u32::MAX);
                crc.to_le_bytes().to_vec()
            }
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// A checksum as the manifest gives it: the algorithm and the expected bytes.
type Sum = Option<(Algorithm, Vec<u8>)>;

/// One file a manifest lists.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub(crate) size: u64,
    pub(crate) checksum: Sum,
}

/// A base backup's `backup_manifest`: the files it lists (path relative to the backup, as the manifest
/// spells it), their sizes and checksums.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    pub(crate) files: HashMap<String, Listed>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "PostgreSQL-Backup-Manifest-Version")]
    version: u32,
    #[serde(rename = "Files")]
    files: Vec<RawFile>,
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Encoded-Path")]
    encoded_path: Option<String>,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "Checksum-Algorithm")]
    algorithm: Option<String>,
    #[serde(rename = "Checksum")]
    checksum: Option<String>,
}

impl Manifest {
    /// Parses `backup_manifest` text; the error reads as `pg_verifybackup`'s would ("could not parse backup
    /// manifest: ...").
    pub(crate) fn parse(text: &str) -> Result<Manifest, String> {
        let bad = |m: String| format!("could not parse backup manifest: {m}");
        let raw: RawManifest = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if raw.version != 1 {
            return Err(bad("unexpected manifest version".into()));
        }
        let mut files = HashMap::with_capacity(raw.files.len());
        for f in raw.files {
            let path = match (f.path, f.encoded_path) {
                (Some(p), None) => p,
                (None, Some(hexed)) => {
                    let bytes = hex::decode(&hexed).map_err(|_| bad("could not decode file name".into()))?;
                    OsString::from_vec(bytes).to_string_lossy().into_owned()
                }
                _ => return Err(bad("both path name and encoded path name".into())),
            };
            let checksum = match (f.algorithm.as_deref(), f.checksum) {
                (None | Some("NONE"), _) => None,
                (Some(a), Some(c)) => {
                    let alg =
                        Algorithm::parse(a).ok_or_else(|| bad(format!("unrecognized checksum algorithm: \"{a}\"")))?;
                    let bytes =
                        hex::decode(&c).map_err(|_| bad(format!("invalid checksum for file \"{path}\": \"{c}\"")))?;
                    alg.map(|alg| (alg, bytes))
                }
                (Some(_), None) => return Err(bad("checksum without algorithm".into())),
            };
            if files.insert(path.clone(), Listed { size: f.size, checksum }).is_some() {
                return Err(bad(format!("duplicate path name in backup manifest: \"{path}\"")));
            }
        }
        Ok(Manifest { files })
    }

    /// Reads `<backup>/backup_manifest` as the server's OS user.
    pub(crate) fn read(as_user: &RunAs, backup: &Path) -> Result<Manifest, String> {
        let path = backup.join("backup_manifest");
        let text = as_user
            .as_fs_user(|| std::fs::read_to_string(&path))
            .map_err(|e| format!("could not open file \"{}\": {e}", path.display()))?;
        Manifest::parse(&text)
    }

    /// The checksum algorithms the manifest uses, for the record ("CRC32C", or "none").
    pub(crate) fn algorithms(&self) -> String {
        let mut names: Vec<&str> =
            self.files.values().map(|f| f.checksum.as_ref().map_or("none", |(a, _)| a.name())).collect();
        names.sort_unstable();
        names.dedup();
        names.join(", ")
    }
}

/// Why a verified copy stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    /// The backup does not match its manifest: each problem as `pg_verifybackup` words it.
    #[error("{}", summarise(.0))]
    Mismatch(Vec<String>),
    #[error("{0}")]
    Io(String),
    #[error("interrupted")]
    Interrupted,
}

/// Up to ten problems, then how many more.
fn summarise(problems: &[String]) -> String {
    let mut text = problems.iter().take(10).cloned().collect::<Vec<_>>().join("; ");
    if problems.len() > 10 {
        text.push_str(&format!("; and {} more", problems.len() - 10));
    }
    text
}

/// What a verified copy will do, from the backup's tree and its manifest, checked before anything is
/// written: every file listed is present with its size, nothing unlisted is present (metadata only).
#[derive(Debug)]
pub(crate) struct CopyPlan {
    from: PathBuf,
    dirs: Vec<PathBuf>,
    /// Relative path, size, and the checksum to verify while copying (none for the paths pg_verifybackup
    /// ignores, and for files the manifest lists without one). Largest first.
    files: Vec<(PathBuf, u64, Sum)>,
    pub(crate) bytes: u64,
}

impl CopyPlan {
    /// Walks `from` (no symlinks: tablespaces are not supported) and compares it with `manifest`.
    pub(crate) fn new(from: &Path, manifest: &Manifest) -> Result<CopyPlan, CopyError> {
        let io = |p: &Path, e: std::io::Error| CopyError::Io(format!("{}: {e}", p.display()));
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        let mut unlisted = Vec::new();
        let mut sizes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let src = from.join(&rel);
            for entry in std::fs::read_dir(&src).map_err(|e| io(&src, e))? {
                let entry = entry.map_err(|e| io(&src, e))?;
                let child = rel.join(entry.file_name());
                let name = child.to_string_lossy().into_owned();
                if name == SIDECAR || name == "backup_manifest" {
                    continue;
                }
                let ft = entry.file_type().map_err(|e| io(&entry.path(), e))?;
                if ft.is_symlink() {
                    return Err(CopyError::Io(format!(
                        "`{}` is a symlink (tablespaces are not supported by local-postgres)",
                        entry.path().display()
                    )));
                }
                if ft.is_dir() {
                    dirs.push(child.clone());
                    stack.push(child);
                    continue;
                }
                let size = entry.metadata().map_err(|e| io(&entry.path(), e))?.len();
                if ignored(&name) {
                    files.push((child, size, None));
                    continue;
                }
                let Some(listed) = manifest.files.get(&name) else {
                    unlisted.push(format!("\"{name}\" is present on disk but not in the manifest"));
                    continue;
                };
                seen.insert(name.clone());
                if listed.size != size {
                    sizes.push(format!("\"{name}\" has size {size} on disk but size {} in the manifest", listed.size));
                    continue;
                }
                files.push((child, size, listed.checksum.clone()));
            }
        }
        let mut missing: Vec<String> = manifest
            .files
            .keys()
            .filter(|p| !seen.contains(*p) && !ignored(p))
            .map(|p| format!("\"{p}\" is present in the manifest but not on disk"))
            .collect();
        unlisted.sort();
        sizes.sort();
        missing.sort();
        let problems: Vec<String> = unlisted.into_iter().chain(sizes).chain(missing).collect();
        if !problems.is_empty() {
            return Err(CopyError::Mismatch(problems));
        }
        dirs.sort();
        files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let bytes = files.iter().map(|f| f.1).sum();
        Ok(CopyPlan { from: from.to_path_buf(), dirs, files, bytes })
    }
}

/// Copies the planned backup under `to` (dirs 0700, files 0600) as the server's OS user with `jobs`
/// threads, each file read once: written to the copy and checksummed as the manifest says in the same
/// pass. The files are the user's from the start, and nothing the user planted in `to` can redirect a
/// write. Every checksum mismatch is reported, named as `pg_verifybackup` names it.
pub(crate) fn copy_verified(
    plan: &CopyPlan,
    to: &Path,
    jobs: usize,
    as_user: &RunAs,
    stop: &AtomicBool,
    done: &AtomicU64,
) -> Result<(), CopyError> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    for rel in std::iter::once(&PathBuf::new()).chain(&plan.dirs) {
        let dst = to.join(rel);
        as_user
            .as_fs_user(|| match std::fs::DirBuilder::new().mode(0o700).create(&dst) {
                Err(e) if rel.as_os_str().is_empty() && e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                r => r,
            })
            .map_err(|e| CopyError::Io(format!("{}: {e}", dst.display())))?;
    }
    // Returns Ok(false) when the bytes do not match the manifest's checksum.
    let copy_one = |rel: &Path, size: u64, sum: &Sum, buf: &mut Vec<u8>| -> std::io::Result<bool> {
        let mut input = std::fs::File::open(plan.from.join(rel))?;
        let mut output = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(to.join(rel))?;
        let mut hasher = sum.as_ref().map(|(a, _)| a.hasher());
        let mut total = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(true);
            }
            let n = match input.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = &buf[..n];
            if let Some(h) = hasher.as_mut() {
                h.update(chunk);
            }
            output.write_all(chunk)?;
            total += n as u64;
            done.fetch_add(n as u64, Ordering::Relaxed);
        }
        if total != size {
            return Err(std::io::Error::other(format!(
                "read {total} of {size} (the file changed while it was copied)"
            )));
        }
        Ok(match (hasher, sum) {
            (Some(h), Some((_, want))) => h.finish() == *want,
            _ => true,
        })
    };
    let next = AtomicUsize::new(0);
    let failure = Mutex::new(None::<String>);
    let mismatched = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                let mut buf = vec![0u8; 1024 * 1024];
                let res = as_user.as_fs_user(|| {
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((rel, size, sum)) = plan.files.get(i) else { return Ok(()) };
                        let ok = copy_one(rel, *size, sum, &mut buf).map_err(|e| {
                            std::io::Error::other(format!("could not read file \"{}\": {e}", rel.display()))
                        })?;
                        if !ok {
                            let mut m = mismatched.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            m.push(format!("checksum mismatch for file \"{}\"", rel.display()));
                        }
                    }
                });
                if let Err(e) = res {
                    let mut f = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    f.get_or_insert(e.to_string());
                    stop.store(true, Ordering::Relaxed);
                }
            });
        }
    });
    let mut mismatched = mismatched.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !mismatched.is_empty() {
        mismatched.sort();
        return Err(CopyError::Mismatch(mismatched));
    }
    if let Some(e) = failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(CopyError::Io(e));
    }
    if stop.load(Ordering::Relaxed) {
        return Err(CopyError::Interrupted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{ "PostgreSQL-Backup-Manifest-Version": 1,
"Files": [
{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-12-06 07:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "CRC" },
{ "Path": "base/1/112", "Size": 5, "Last-Modified": "2026-12-06 07:00:00 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "SHA" },
{ "Encoded-Path": "676c6f62616c5f7067", "Size": 0, "Last-Modified": "2026-12-06 07:00:00 GMT" },
{ "Path": "postgresql.auto.conf", "Size": 88, "Last-Modified": "2026-12-06 07:00:00 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "00000000" }
],
"WAL-Ranges": [ { "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" } ],
"Manifest-Checksum": "x" }"#;

    /// A backup tree as the manifest above lists it; CRC-32C of "15\n" as PostgreSQL writes it.
    fn fixture() -> (tempfile::TempDir, Manifest) {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        std::fs::create_dir_all(b.join("base/1")).unwrap();
        std::fs::create_dir_all(b.join("pg_wal")).unwrap();
        std::fs::write(b.join("PG_VERSION"), "15\n").unwrap();
        std::fs::write(b.join("base/1/112"), "hello").unwrap();
        std::fs::write(b.join("global_pg"), "").unwrap();
        std::fs::write(b.join("postgresql.auto.conf"), "whatever the operator appended\n").unwrap();
        std::fs::write(b.join("pg_wal/000000010000000000000002"), "wal").unwrap();
        std::fs::write(b.join(SIDECAR), "{}").unwrap();
        let crc = hex::encode(crc_fast::crc32_iscsi(b"15\n").to_le_bytes());
        let sha = hex::encode(sha2::Sha256::digest(b"hello"));
        let text = MANIFEST.replace("\"CRC\"", &format!("\"{crc}\"")).replace("\"SHA\"", &format!("\"{sha}\""));
        std::fs::write(b.join("backup_manifest"), &text).unwrap();
        (dir, Manifest::parse(&text).unwrap())
    }

    fn copy(from: &Path, manifest: &Manifest) -> Result<tempfile::TempDir, CopyError> {
        let plan = CopyPlan::new(from, manifest)?;
        let to = tempfile::tempdir().unwrap();
        let done = AtomicU64::new(0);
        copy_verified(&plan, &to.path().join("data"), 2, &RunAs::current(), &AtomicBool::new(false), &done)?;
        assert_eq!(done.load(Ordering::Relaxed), plan.bytes);
        Ok(to)
    }

    #[test]
    fn a_matching_backup_is_copied_whole_and_decoded_paths_match() {
        let (dir, manifest) = fixture();
        assert_eq!(manifest.algorithms(), "CRC32C, SHA256, none");
        let to = copy(dir.path(), &manifest).unwrap();
        let data = to.path().join("data");
        assert_eq!(std::fs::read_to_string(data.join("base/1/112")).unwrap(), "hello");
        assert_eq!(std::fs::read_to_string(data.join("pg_wal/000000010000000000000002")).unwrap(), "wal");
        assert!(data.join("postgresql.auto.conf").is_file() && data.join("global_pg").is_file());
        assert!(!data.join(SIDECAR).exists() && !data.join("backup_manifest").exists());
    }

    #[test]
    fn each_mismatch_is_named_as_pg_verifybackup_names_it() {
        // A byte changed in place (same size): found while copying, by its checksum.
        let (dir, manifest) = fixture();
        std::fs::write(dir.path().join("PG_VERSION"), "16\n").unwrap();
        std::fs::write(dir.path().join("base/1/112"), "jello").unwrap();
        let e = copy(dir.path(), &manifest).unwrap_err().to_string();
        assert_eq!(e, "checksum mismatch for file \"PG_VERSION\"; checksum mismatch for file \"base/1/112\"");
        // A byte appended, a file removed, a file added: found before anything is written.
        let (dir, manifest) = fixture();
        std::fs::write(dir.path().join("PG_VERSION"), "15\ncorrupted\n").unwrap();
        std::fs::remove_file(dir.path().join("base/1/112")).unwrap();
        std::fs::write(dir.path().join("base/1/999"), "new").unwrap();
        let e = CopyPlan::new(dir.path(), &manifest).unwrap_err().to_string();
        assert_eq!(
            e,
            "\"base/1/999\" is present on disk but not in the manifest; \"PG_VERSION\" has size 13 on disk but \
             size 3 in the manifest; \"base/1/112\" is present in the manifest but not on disk"
        );
        // What pg_verifybackup ignores is copied unchecked.
        let (dir, manifest) = fixture();
        std::fs::write(dir.path().join("pg_wal/000000010000000000000003"), "more").unwrap();
        assert!(copy(dir.path(), &manifest).is_ok());
    }

    #[test]
    fn a_broken_manifest_is_refused() {
        assert!(Manifest::parse("{").unwrap_err().starts_with("could not parse backup manifest: "));
        let dup = r#"{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [{"Path": "a", "Size": 1}, {"Path": "a", "Size": 1}]}"#;
        assert_eq!(
            Manifest::parse(dup).unwrap_err(),
            "could not parse backup manifest: duplicate path name in backup manifest: \"a\""
        );
        let alg = r#"{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [{"Path": "a", "Size": 1, "Checksum-Algorithm": "MD5", "Checksum": "00"}]}"#;
        assert!(Manifest::parse(alg).unwrap_err().contains("unrecognized checksum algorithm: \"MD5\""));
    }
}
