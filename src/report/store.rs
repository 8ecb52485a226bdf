//! Writes reports into a directory: temp file, fsync, rename, so a crash never leaves half a report.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::model::Report;
use super::{Signer, chain, markdown};

#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub(crate) json: PathBuf,
    pub(crate) markdown: PathBuf,
    pub(crate) html: PathBuf,
}

/// Where reports go, resolved once from `--reports` (a directory or `s3://bucket/prefix`).
#[derive(Debug, Clone)]
pub(crate) enum ReportStore {
    Dir(PathBuf),
    /// An S3 store; each object is locked for `retain` (Object Lock, compliance mode).
    S3 {
        url: String,
        retain: std::time::Duration,
    },
}

impl ReportStore {
    pub(crate) fn new(location: &Path, retain: std::time::Duration) -> ReportStore {
        if super::s3::is_url(location) {
            ReportStore::S3 { url: location.display().to_string(), retain }
        } else {
            ReportStore::Dir(location.to_path_buf())
        }
    }

    /// Signs (with `signer`), chains and writes `report`, which gains its `previous_sha256` and `signing`.
    pub(crate) async fn write(
        &self,
        report: &mut Report,
        signer: Option<&Signer>,
        aws: &crate::aws::AwsSettings,
    ) -> Result<Written, StoreError> {
        match self {
            ReportStore::Dir(dir) => write(dir, report, signer).map_err(StoreError::dir("report", dir)),
            ReportStore::S3 { url, retain } => match super::s3::S3Store::connect(url, aws, *retain).await {
                Ok(store) => store.write_report(report, signer).await,
                Err(e) => Err(e),
            }
            .map_err(StoreError::s3("report", url)),
        }
    }

    /// Signs, chains and writes a backup-posture record; returns where it went.
    pub(crate) async fn write_posture(
        &self,
        record: &mut super::posture::Record,
        signer: Option<&Signer>,
        aws: &crate::aws::AwsSettings,
    ) -> Result<String, StoreError> {
        match self {
            ReportStore::Dir(dir) => write_posture(dir, record, signer)
                .map(|p| p.display().to_string())
                .map_err(StoreError::dir("posture record", dir)),
            ReportStore::S3 { url, retain } => match super::s3::S3Store::connect(url, aws, *retain).await {
                Ok(store) => store.write_posture(record, signer).await,
                Err(e) => Err(e),
            }
            .map_err(StoreError::s3("posture record", url)),
        }
    }
}

/// Why a report or a posture record was not written: the directory store's I/O, or the S3 store (whose
/// error keeps its AWS kind).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("cannot write the {what} into `{}`: {source}", dir.display())]
    Dir { what: &'static str, dir: PathBuf, source: std::io::Error },
    #[error("cannot write the {what} into `{url}`: {source}")]
    S3 { what: &'static str, url: String, source: super::s3::S3Error },
}

impl StoreError {
    fn dir(what: &'static str, dir: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let dir = dir.to_path_buf();
        move |source| StoreError::Dir { what, dir, source }
    }

    fn s3(what: &'static str, url: &str) -> impl FnOnce(super::s3::S3Error) -> Self {
        let url = url.to_string();
        move |source| StoreError::S3 { what, url, source }
    }

    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            StoreError::Dir { .. } => None,
            StoreError::S3 { source, .. } => source.hint(),
        }
    }
}

/// A report rendered for the store: its renderings and signature files, then the JSON record, and the
/// ledger entry that chains it (its `seq` is set when it is appended).
pub(crate) struct Rendered {
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) json: (String, Vec<u8>),
    pub(crate) entry: chain::Entry,
}

/// Links `report` to `previous`, records the signer, and renders Markdown, HTML (with `trend`), the
/// detached signature and DSSE envelope (when signing), and the JSON record named `<stem>.json`.
pub(crate) fn render(
    report: &mut Report,
    previous: Option<String>,
    signer: Option<&Signer>,
    trend: &[super::html::Point],
    stem: &str,
) -> std::io::Result<Rendered> {
    use base64::Engine;
    report.previous_sha256 = previous;
    report.signing = signer.map(Signer::record);
    let name = format!("{stem}.json");
    let mut body = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    body.push(b'\n');
    let mut files = vec![
        (format!("{stem}.md"), markdown::render(report).into_bytes()),
        (format!("{stem}.html"), super::html::render(report, trend).into_bytes()),
    ];
    if let Some(s) = signer {
        let sig = base64::engine::general_purpose::STANDARD.encode(s.sign(&body).map_err(std::io::Error::other)?);
        let predicate = serde_json::json!({
            "id": report.id, "drill": report.drill, "result": report.result.as_str(),
            "started_at": report.started_at, "previous_sha256": report.previous_sha256,
        });
        // One statement covers the record and both renderings: an edited HTML or Markdown file is found.
        let mut subjects: Vec<(&str, &[u8])> = vec![(name.as_str(), body.as_slice())];
        subjects.extend(files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
        let env = s.envelope(&subjects, predicate).map_err(std::io::Error::other)?;
        let env = serde_json::to_vec_pretty(&env).map_err(std::io::Error::other)?;
        files.push((format!("{name}.sig"), format!("{sig}\n").into_bytes()));
        files.push((chain::dsse_name(&name), env));
    }
    let entry = chain::Entry {
        seq: 0,
        kind: chain::EntryKind::Report,
        id: report.id.clone(),
        drill: report.drill.clone(),
        result: report.result.as_str().into(),
        file: name.clone(),
        sha256: chain::sha256_hex(&body),
        previous: report.previous_sha256.clone(),
        at: report.finished_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        key_id: signer.map(|s| s.key_id.clone()),
    };
    Ok(Rendered { files, json: (name, body), entry })
}

/// `<started>-<drill>`, the name every file of a report shares.
pub(crate) fn stem(report: &Report) -> String {
    format!("{}-{}", report.started_at.format("%Y%m%dT%H%M%SZ"), report.drill)
}

/// Writes the report into the store's hash chain: under the store's lock, links it to the entry before
/// it and commits its files (see [`commit`]).
///
/// A chain that is BROKEN under the keys this machine trusts (as `report verify` would find it) is never
/// chained onto: a new signed entry would vouch for a forged history. The report is then written outside
/// the chain, into `unchained/` (see [`UNCHAINED`]), and the error names the first broken link.
pub(crate) fn write(dir: &Path, report: &mut Report, signer: Option<&Signer>) -> std::io::Result<Written> {
    let mut chain = chain::begin(dir)?;
    recover_locked(dir, &chain)?;
    if let Some(broken) = broken(dir, signer)? {
        let kept = write_unchained(dir, report, signer)?;
        return Err(std::io::Error::other(format!(
            "the report chain is broken ({broken}), so this report was not chained onto it; it was written \
             outside the chain, to `{}`\n  hint: run `stackdrill report verify --reports {}` and restore the \
             store from a good copy before the next drill",
            kept.display(),
            dir.display()
        )));
    }
    let mut stem = stem(report);
    if dir.join(format!("{stem}.json")).exists() {
        stem = format!("{stem}-{}", report.id);
    }
    let trend = super::html::trend(dir, &report.drill, 20);
    let r = render(report, chain.previous(), signer, &trend, &stem)?;
    let head = (r.entry.sha256.clone(), chain.previous());
    commit(dir, &mut chain, r)?;
    if signer.is_some()
        && let Some(e) = chain::read(dir)?.into_iter().flatten().rfind(|e| e.sha256 == head.0)
    {
        remember_signed(dir, &e)?;
    }
    Ok(Written {
        json: dir.join(format!("{stem}.json")),
        markdown: dir.join(format!("{stem}.md")),
        html: dir.join(format!("{stem}.html")),
    })
}

/// The subdirectory of a store that holds reports written while its chain was broken: kept, never chained.
pub(crate) const UNCHAINED: &str = "unchained";

/// The first broken link of the chain in `dir`, verified with the keys this machine trusts (as `report
/// verify` does), or `None` when it is intact or empty. An unsigned write accepts unsigned entries after
/// signed ones (a store whose signing was switched off). A signed write accepts a leading run of unsigned
/// entries that its own signature will vouch for only while this machine has never signed into the store
/// (the store is being taken under signing); once it has, the entry it last signed must still be there,
/// signed: a store whose signatures were stripped and its history rewritten is broken.
pub(crate) fn broken(dir: &Path, signer: Option<&Signer>) -> std::io::Result<Option<String>> {
    if !dir.join(chain::LEDGER).exists() {
        return Ok(None);
    }
    let trust = super::trust::Trust::load_dir(&super::trust::trusted_dir()).map_err(std::io::Error::other)?;
    let v = chain::verify_with(dir, &trust, signer.is_none())?;
    let last = last_signed(dir);
    let adopting = signer.is_some() && last.is_none();
    if let Some(p) = v.problems.iter().find(|p| !(adopting && p.what.contains(chain::UNCOVERED))) {
        return Ok(Some(format!("the first broken link is {}: {}", p.at, p.what)));
    }
    if let Some((seq, sha)) = &last {
        let kept = chain::read(dir)?.into_iter().flatten().any(|e| e.seq == *seq && &e.sha256 == sha)
            && matches!(v.states.get(seq), Some(super::trust::SigState::Verified { .. }));
        if !kept {
            return Ok(Some(format!(
                "entry {seq}, which this machine signed last (sha256 {}), is gone, edited or no longer signed",
                chain::prefix(sha, 12)
            )));
        }
    }
    Ok(None)
}

/// `<state dir>/signed-heads/<sha256 of the store's path>`: the entry this machine last signed into it.
fn signed_head_file(dir: &Path) -> PathBuf {
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    crate::config::state_dir().join("signed-heads").join(chain::sha256_hex(path.as_os_str().as_encoded_bytes()))
}

fn last_signed(dir: &Path) -> Option<(u64, String)> {
    let text = std::fs::read_to_string(signed_head_file(dir)).ok()?;
    let (seq, sha) = text.trim().split_once(' ')?;
    Some((seq.parse().ok()?, sha.to_string()))
}

fn remember_signed(dir: &Path, e: &chain::Entry) -> std::io::Result<()> {
    // Unit tests write thousands of throwaway stores: they leave no state behind (the it tests cover this).
    if cfg!(test) {
        return Ok(());
    }
    let f = signed_head_file(dir);
    if let Some(parent) = f.parent() {
        std::fs::create_dir_all(parent)?;
    }
    atomic_write(&f, format!("{} {}\n", e.seq, e.sha256).as_bytes())
}

/// Writes `report` (unlinked, signed when `signer`) into `<dir>/unchained/`; returns its JSON record's path.
fn write_unchained(dir: &Path, report: &mut Report, signer: Option<&Signer>) -> std::io::Result<PathBuf> {
    let out = dir.join(UNCHAINED);
    std::fs::create_dir_all(&out)?;
    let stem = format!("{}-{}", stem(report), report.id);
    let r = render(report, None, signer, &[], &stem)?;
    for (name, bytes) in r.files.iter().chain(std::iter::once(&r.json)) {
        atomic_write(&out.join(name), bytes)?;
    }
    Ok(out.join(&r.json.0))
}

/// The hidden name a file has until its ledger line is written.
fn pending(name: &str) -> String {
    format!("{PENDING}{name}")
}
const PENDING: &str = ".pending-";

/// Commits a rendered entry: every file (renderings, signature, DSSE, then the JSON record) is written under
/// a hidden pending name (temp file, fsync, rename), then the ledger line — the commit point — then each is
/// renamed into place. A crash before the ledger line leaves only hidden pending files (rolled back by the
/// next write or `drill cleanup`); after it, the pending files are rolled forward. Either no entry or a
/// complete one, never a half-written file.
fn commit(dir: &Path, chain: &mut chain::Appending, r: Rendered) -> std::io::Result<()> {
    let all: Vec<&(String, Vec<u8>)> = r.files.iter().chain(std::iter::once(&r.json)).collect();
    // Create-only: a file of the store is never replaced (checked before the commit point, and again as
    // each is linked into place).
    if let Some((name, _)) = all.iter().find(|(name, _)| dir.join(name).exists()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("`{name}` already exists in the store: an entry's file is never overwritten"),
        ));
    }
    for (name, bytes) in &all {
        atomic_write(&dir.join(pending(name)), bytes)?;
    }
    crate::crash::point("report:before-ledger");
    chain.append(r.entry)?;
    crate::crash::point("report:after-ledger");
    for (name, _) in &all {
        std::fs::hard_link(dir.join(pending(name)), dir.join(name))?;
        std::fs::remove_file(dir.join(pending(name)))?;
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Finishes or undoes what an interrupted write left in a directory store: pending files of an entry the
/// ledger lists are renamed into place; others are removed. Returns what it did, one line each.
pub(crate) fn recover(dir: &Path) -> std::io::Result<Vec<String>> {
    if !dir.join(chain::LEDGER).exists() && !has_pending(dir) {
        return Ok(vec![]);
    }
    let chain = chain::begin(dir)?;
    recover_locked(dir, &chain)
}

fn has_pending(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(PENDING) || (n.starts_with('.') && n.contains(".tmp-"))
            })
        })
        .unwrap_or(false)
}

fn recover_locked(dir: &Path, _held: &chain::Appending) -> std::io::Result<Vec<String>> {
    let mut done = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(done) };
    let names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    // A temporary file of `atomic_write` that a crash left: every writer holds the lock while it has one.
    for n in names.iter().filter(|n| n.starts_with('.') && n.contains(".tmp-")) {
        std::fs::remove_file(dir.join(n))?;
        done.push(format!("removed `{n}` (a temporary file an interrupted write left)"));
    }
    if !names.iter().any(|n| n.starts_with(PENDING)) {
        return Ok(done);
    }
    // The stems the ledger has committed: every file of an entry shares its JSON record's stem.
    let stems: std::collections::HashSet<String> =
        chain::read(dir)?.into_iter().flatten().map(|e| e.file.trim_end_matches(".json").to_string()).collect();
    for n in names.iter().filter(|n| n.starts_with(PENDING)) {
        let name = &n[PENDING.len()..];
        let committed = stems.iter().any(|s| {
            name.strip_prefix(s.as_str()).is_some_and(|rest| rest.starts_with('.') && !rest[1..].contains('-'))
        });
        if committed && dir.join(name).exists() {
            // Linked into place before the interruption; only the pending name was left.
            std::fs::remove_file(dir.join(n))?;
            done.push(format!("completed `{name}` (its ledger entry was written before the interruption)"));
        } else if committed {
            std::fs::hard_link(dir.join(n), dir.join(name))?;
            std::fs::remove_file(dir.join(n))?;
            done.push(format!("completed `{name}` (its ledger entry was written before the interruption)"));
        } else {
            std::fs::remove_file(dir.join(n))?;
            done.push(format!("removed `{n}` (an interrupted write never reached the ledger)"));
        }
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(done)
}

/// Writes `bytes` to `path` via a temporary sibling, fsyncs it, renames it, and fsyncs the directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// A reviewer's decision on a report, rendered as a new chained (and, with a key, signed) entry linked to
/// `previous`: the report itself is never edited.
pub(crate) fn render_sign_off(
    report: &chain::Entry,
    reviewer: &str,
    decision: &str,
    note: Option<String>,
    previous: Option<String>,
    signer: Option<&Signer>,
) -> std::io::Result<Rendered> {
    use base64::Engine;
    let now = chrono::Utc::now();
    // The head it links to makes the name unique: two sign-offs in one second link to different entries.
    let id = format!(
        "{}-signoff-{}-{}",
        report.id,
        now.format("%Y%m%dT%H%M%SZ"),
        chain::prefix(previous.as_deref().unwrap_or("start"), 8)
    );
    let doc = serde_json::json!({
        "schema": "stackdrill.sign-off/v1",
        "id": id,
        "report_id": report.id,
        "report_file": report.file,
        "report_sha256": report.sha256,
        "drill": report.drill,
        "reviewer": reviewer,
        "decision": decision,
        "note": note,
        "at": now,
        "previous_sha256": previous,
        "signing": signer.map(Signer::record),
    });
    let name = format!("{id}.json");
    let mut body = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
    body.push(b'\n');
    let mut files = Vec::new();
    if let Some(s) = signer {
        let sig = base64::engine::general_purpose::STANDARD.encode(s.sign(&body).map_err(std::io::Error::other)?);
        files.push((format!("{name}.sig"), format!("{sig}\n").into_bytes()));
        let env = s
            .envelope(
                &[(name.as_str(), body.as_slice())],
                serde_json::json!({ "sign_off": id, "report": report.id, "decision": decision }),
            )
            .map_err(std::io::Error::other)?;
        files.push((chain::dsse_name(&name), serde_json::to_vec_pretty(&env).map_err(std::io::Error::other)?));
    }
    let entry = chain::Entry {
        seq: 0,
        kind: chain::EntryKind::SignOff,
        id,
        drill: report.drill.clone(),
        result: decision.into(),
        file: name.clone(),
        sha256: chain::sha256_hex(&body),
        previous,
        at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        key_id: signer.map(|s| s.key_id.clone()),
    };
    Ok(Rendered { files, json: (name, body), entry })
}

/// Appends a sign-off to a directory store.
pub(crate) fn write_sign_off(
    dir: &Path,
    report: &chain::Entry,
    reviewer: &str,
    decision: &str,
    note: Option<String>,
    signer: Option<&Signer>,
) -> std::io::Result<PathBuf> {
    let mut chain = chain::begin(dir)?;
    recover_locked(dir, &chain)?;
    if let Some(broken) = broken(dir, None)? {
        return Err(std::io::Error::other(format!(
            "the report chain is broken ({broken}): a sign-off is never chained onto it (run `stackdrill report \
             verify`)"
        )));
    }
    let r = render_sign_off(report, reviewer, decision, note, chain.previous(), signer)?;
    let path = dir.join(&r.json.0);
    commit(dir, &mut chain, r)?;
    Ok(path)
}

/// A signed record that `lost`'s document was lost, rendered as a new chained entry linked to `previous`:
/// the ledger is never edited, and `report verify` names the entry as lost, by this record.
pub(crate) fn render_loss(
    lost: &chain::Entry,
    reason: &str,
    previous: Option<String>,
    signer: &Signer,
) -> std::io::Result<Rendered> {
    use base64::Engine;
    let now = chrono::Utc::now();
    let id = format!(
        "loss-{:08}-{}-{}",
        lost.seq,
        now.format("%Y%m%dT%H%M%SZ"),
        chain::prefix(previous.as_deref().unwrap_or("start"), 8)
    );
    let doc = serde_json::json!({
        "schema": chain::LOSS_SCHEMA,
        "id": id,
        "drill": lost.drill,
        "result": "lost",
        "lost_seq": lost.seq,
        "lost_kind": lost.kind,
        "lost_id": lost.id,
        "lost_file": lost.file,
        "lost_sha256": lost.sha256,
        "reason": reason,
        "at": now,
        "previous_sha256": previous,
        "signing": signer.record(),
    });
    let name = format!("{id}.json");
    let mut body = serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?;
    body.push(b'\n');
    let sig = base64::engine::general_purpose::STANDARD.encode(signer.sign(&body).map_err(std::io::Error::other)?);
    let env = signer
        .envelope(&[(name.as_str(), body.as_slice())], serde_json::json!({ "loss": id, "lost_seq": lost.seq }))
        .map_err(std::io::Error::other)?;
    let files = vec![
        (format!("{name}.sig"), format!("{sig}\n").into_bytes()),
        (chain::dsse_name(&name), serde_json::to_vec_pretty(&env).map_err(std::io::Error::other)?),
    ];
    let entry = chain::Entry {
        seq: 0,
        kind: chain::EntryKind::Loss,
        id,
        drill: lost.drill.clone(),
        result: "lost".into(),
        file: name.clone(),
        sha256: chain::sha256_hex(&body),
        previous,
        at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        key_id: Some(signer.key_id.clone()),
    };
    Ok(Rendered { files, json: (name, body), entry })
}

/// Appends a loss record for `lost` to a directory store.
pub(crate) fn write_loss(dir: &Path, lost: &chain::Entry, reason: &str, signer: &Signer) -> std::io::Result<PathBuf> {
    let mut chain = chain::begin(dir)?;
    recover_locked(dir, &chain)?;
    let r = render_loss(lost, reason, chain.previous(), signer)?;
    let path = dir.join(&r.json.0);
    commit(dir, &mut chain, r)?;
    Ok(path)
}

/// Appends a backup-posture record to a directory store, signed with `signer`, under the same rules as a
/// report: never chained onto a broken chain. Returns the record's path.
pub(crate) fn write_posture(
    dir: &Path,
    record: &mut super::posture::Record,
    signer: Option<&Signer>,
) -> std::io::Result<PathBuf> {
    let mut chain = chain::begin(dir)?;
    recover_locked(dir, &chain)?;
    if let Some(broken) = broken(dir, signer)? {
        return Err(std::io::Error::other(format!(
            "the report chain is broken ({broken}): a posture record is never chained onto it\n  hint: run \
             `stackdrill report verify --reports {}` and restore the store from a good copy",
            dir.display()
        )));
    }
    let r = super::posture::render(record, chain.previous(), signer)?;
    let path = dir.join(&r.json.0);
    let sha = r.entry.sha256.clone();
    commit(dir, &mut chain, r)?;
    if signer.is_some()
        && let Some(e) = chain::read(dir)?.into_iter().flatten().rfind(|e| e.sha256 == sha)
    {
        remember_signed(dir, &e)?;
    }
    Ok(path)
}

#[cfg(test)]
mod store_error_tests {
    use super::*;

    /// A store that cannot be written is a typed error naming the store, with the I/O cause kept (the fleet
    /// copies its text into the report phase's detail; it used to be a bare `String`).
    #[tokio::test]
    async fn a_store_that_cannot_be_written_is_a_typed_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let mut report = crate::report::golden_tests::fixed();
        let e = ReportStore::Dir(file.clone())
            .write(&mut report, None, &crate::aws::AwsSettings::default())
            .await
            .expect_err("a file is not a report directory");
        assert!(matches!(&e, StoreError::Dir { what: "report", .. }), "{e:?}");
        assert!(e.to_string().starts_with(&format!("cannot write the report into `{}`: ", file.display())), "{e}");
        assert_eq!(e.hint(), None);
    }
}
