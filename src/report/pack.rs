//! The evidence pack (`report export`): a self-contained folder an auditor opens offline and checks
//! without stackdrill. Layout:
//!
//! ```text
//! index.html                 the period: controls, drills, every scheduled occurrence, trends, sign-offs,
//!                            each store's backup-posture calendar (one cell per day)
//! VERIFY.md                  openssl and securesystemslib commands for one report and the whole chain
//! MANIFEST.json              every other file with its sha256, and the signer's public key
//! MANIFEST.json.sig          the detached signature over MANIFEST.json
//! MANIFEST.dsse.json         a DSSE envelope over an in-toto statement naming MANIFEST.json
//! keys/<name>.pub            the trusted public keys that signed what the pack holds
//! reports/ledger.jsonl       the ledger slice: every entry from the period's first to its last, verbatim
//! reports/ledger.before.jsonl  the entry just before the slice (the link the slice starts from), if any
//! reports/<report>.*         each entry's JSON, Markdown, HTML, signature and envelope, verbatim
//! ```
//!
//! The slice holds every entry between its ends (other drills' too): the chain cannot be proven with a
//! gap. `--drill` narrows what the index shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::chain::{self, Entry, EntryKind, LEDGER};
use super::period::{DrillFigures, Period};
use super::trust::{SigState, Trust, trusted_file_text};
use super::view::Store;
use super::{Signer, sign};
use crate::config::DrillSpec;

pub(crate) const MANIFEST: &str = "MANIFEST.json";
pub(crate) const SCHEMA: &str = "stackdrill.evidence-pack/v1";
const BEFORE: &str = "ledger.before.jsonl";

/// A DSSE envelope and the files its statement names, checked with securesystemslib: the README shows
/// the same script (a test keeps them equal).
pub(crate) const VERIFY_DSSE_PY: &str = r#"import hashlib, json, pathlib, sys
from cryptography.hazmat.primitives import serialization as s
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
envelope, pem = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
public = s.load_pem_public_key(pem.read_bytes())
try:
    raw = public.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)  # Ed25519
except ValueError:
    raw = public.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)  # KMS P-256
key = SSlibKey.from_crypto(public, keyid=hashlib.sha256(raw).hexdigest())
env = Envelope.from_dict(json.loads(envelope.read_text()))
env.verify([key], 1)  # raises VerificationError unless this key signed the statement
statement = json.loads(env.payload)
for subject in statement["subject"]:
    assert "/" not in subject["name"], subject["name"]
    data = (envelope.parent / subject["name"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == subject["digest"]["sha256"], subject["name"] + " was modified"
print("verified:", ", ".join(x["name"] for x in statement["subject"]))
"#;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileDigest {
    pub(crate) path: String,
    pub(crate) sha256: String,
    pub(crate) bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) schema: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) store: String,
    pub(crate) since: DateTime<Utc>,
    pub(crate) until: DateTime<Utc>,
    pub(crate) drills: Vec<String>,
    /// Ledger sequence numbers of the slice's first and last entries.
    pub(crate) entries: (u64, u64),
    /// The chain's head where the pack ends: its last entry's sequence number and sha256. The next pack
    /// must continue from it (`report verify --pack NEW --previous THIS`): the store's newest entries
    /// deleted between two exports is a gap it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) head: Option<Head>,
    pub(crate) files: Vec<FileDigest>,
    pub(crate) signing: Option<super::model::SigningRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) sha256: String,
}

/// What to export.
pub(crate) struct Request<'a> {
    pub(crate) store_dir: &'a Path,
    pub(crate) store_name: String,
    pub(crate) store: &'a Store,
    pub(crate) trust: &'a Trust,
    pub(crate) specs: &'a [DrillSpec],
    pub(crate) period: Period,
    pub(crate) drills: Vec<String>,
    pub(crate) now: DateTime<Utc>,
}

pub(crate) struct Exported {
    pub(crate) files: usize,
    pub(crate) reports: usize,
    pub(crate) entries: (u64, u64),
}

/// Why a pack cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PackError {
    #[error("the report chain is broken at {at}: {what}; a pack of it would prove nothing")]
    Broken { at: String, what: String },
    #[error("`{0}` is not empty: the pack goes into a new directory")]
    NotEmpty(String),
    #[error("no report or sign-off in the period {since} → {until}")]
    EmptyPeriod { since: DateTime<Utc>, until: DateTime<Utc> },
    #[error("cannot read the ledger: {0}")]
    Ledger(std::io::Error),
    #[error(transparent)]
    Chain(#[from] chain::ChainError),
    #[error("cannot read `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot create `{path}`: {source}")]
    Create { path: String, source: std::io::Error },
    #[error("cannot write `{path}`: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot pack `{path}`: {source}")]
    Tar { path: String, source: std::io::Error },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Sign(#[from] sign::SignError),
    #[error("`{dir}` is not an evidence pack: cannot read its {MANIFEST}: {source}")]
    NotAPack { dir: String, source: std::io::Error },
    #[error("{MANIFEST} is not JSON: {0}")]
    ManifestNotJson(serde_json::Error),
    #[error("{MANIFEST} is not a `{SCHEMA}` manifest: {0}")]
    NotAManifest(serde_json::Error),
    #[error("reports/{BEFORE}: {0}")]
    Before(serde_json::Error),
}

impl PackError {
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            PackError::Broken { .. } => Some("`stackdrill report verify` names every broken link"),
            PackError::NotEmpty(_) => Some("name a new directory with --out"),
            PackError::EmptyPeriod { .. } => Some("widen --since/--until"),
            _ => None,
        }
    }
}

/// Where a pack does not continue the chain from the previous pack's head: entries deleted from the
/// store's end between the two exports, and the chain written again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Discontinuity {
    #[error(
        "its entry {seq} has sha256 {sha256}, but the previous pack ended at entry {previous} with sha256 \
         {previous_sha256}: the store's entries from there on were deleted and written again"
    )]
    Rewritten { seq: u64, sha256: String, previous: u64, previous_sha256: String },
    #[error(
        "its entry {seq} does not link to the entry the previous pack ended at (entry {previous}, sha256 \
         {previous_sha256}): the store's entries from there on were deleted and written again"
    )]
    Unlinked { seq: u64, previous: u64, previous_sha256: String },
    #[error(
        "a gap: the previous pack ended at entry {previous}, and this one starts at entry {first}; entries {} to {} \
         are in neither, so nothing shows this pack continues from it (export a period that starts where the \
         previous one ended)", .previous + 1, .first - 1
    )]
    Gap { previous: u64, first: u64 },
    #[error(
        "it ends at entry {last} and the previous pack ended at entry {previous}: the store lost its newest \
         entries between the two exports"
    )]
    Truncated { last: u64, previous: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The raw ledger lines and their entries, index-aligned.
fn ledger_lines(dir: &Path) -> Result<Vec<(String, Entry)>, PackError> {
    let text = std::fs::read_to_string(dir.join(LEDGER)).map_err(PackError::Ledger)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|e| (l.to_string(), e))
                .map_err(|source| chain::ChainError::BadLine { line: i + 1, source }.into())
        })
        .collect()
}

/// When an entry happened, as the period reads it: a report's start, a sign-off's time.
fn entry_time(store: &Store, e: &Entry) -> Option<DateTime<Utc>> {
    match e.kind {
        EntryKind::Report => store.rows().iter().find(|r| r.entry.seq == e.seq).and_then(|r| r.started_at()),
        EntryKind::SignOff | EntryKind::Loss | EntryKind::Posture => {
            DateTime::parse_from_rfc3339(&e.at).ok().map(|t| t.to_utc())
        }
    }
}

/// The files of an entry that exist in `dir`: its document, signature, envelope and renderings.
fn entry_files(dir: &Path, e: &Entry) -> Vec<String> {
    let stem = e.file.trim_end_matches(".json");
    [e.file.clone(), format!("{}.sig", e.file), chain::dsse_name(&e.file), format!("{stem}.md"), format!("{stem}.html")]
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), PackError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|source| PackError::Create { path: d.display().to_string(), source })?;
    }
    std::fs::write(path, bytes).map_err(|source| PackError::Write { path: path.display().to_string(), source })
}

/// Writes the pack into `out` (which must not exist or be empty), signed by `signer`.
pub(crate) fn export(req: &Request, out: &Path, signer: &Signer) -> Result<Exported, PackError> {
    if let Some(p) = req.store.broken() {
        return Err(PackError::Broken { at: p.at.clone(), what: p.what.clone() });
    }
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(PackError::NotEmpty(out.display().to_string()));
    }
    let lines = ledger_lines(req.store_dir)?;
    let inside: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| entry_time(req.store, e).is_some_and(|t| req.period.contains(t)))
        .map(|(i, _)| i)
        .collect();
    let (Some(&lo), Some(&hi)) = (inside.first(), inside.last()) else {
        return Err(PackError::EmptyPeriod { since: req.period.since, until: req.period.until });
    };
    let mut reports = 0;
    let mut slice = String::new();
    for (line, e) in &lines[lo..=hi] {
        slice.push_str(line);
        slice.push('\n');
        reports += usize::from(e.kind == EntryKind::Report);
        for f in entry_files(req.store_dir, e) {
            let bytes =
                std::fs::read(req.store_dir.join(&f)).map_err(|source| PackError::Read { path: f.clone(), source })?;
            write(&out.join("reports").join(&f), &bytes)?;
        }
    }
    write(&out.join("reports").join(LEDGER), slice.as_bytes())?;
    if lo > 0 {
        write(&out.join("reports").join(BEFORE), format!("{}\n", lines[lo - 1].0).as_bytes())?;
    }
    let (keys, signer_name) = export_keys(req, out, &lines[lo..=hi], signer)?;
    let key_names: Vec<String> = keys.iter().map(|(n, _)| n.clone()).collect();
    let figures = super::period::figures(req.store, req.specs, req.period, req.now);
    let figures: Vec<DrillFigures> =
        figures.into_iter().filter(|f| req.drills.is_empty() || req.drills.contains(&f.drill)).collect();
    let entries = (lines[lo].1.seq, lines[hi].1.seq);
    let index = super::pack_html::index(&super::pack_html::Index {
        store: &req.store_name,
        store_rows: req.store,
        period: req.period,
        figures: &figures,
        entries,
        before: (lo > 0).then(|| lines[lo - 1].1.sha256.clone()),
        keys: &key_names,
        signer: signer.record(),
        created_at: req.now,
        posture: super::posture_calendar::calendar(req.store, Some(req.period), req.now).as_ref(),
    });
    write(&out.join("index.html"), index.as_bytes())?;
    // The sample report is a signed one, named with the key that signed it.
    let signed_report = lines[lo..=hi].iter().find_map(|(_, e)| match req.store.state(e.seq) {
        SigState::Verified { key, .. } if e.kind == EntryKind::Report && keys.iter().any(|(n, _)| *n == key) => {
            Some((e.file.clone(), key))
        }
        _ => None,
    });
    let vk = VerifyKeys {
        keys: &keys,
        signer: &signer_name,
        report: signed_report.as_ref().map(|(f, k)| (f.as_str(), k.as_str())),
    };
    write(&out.join("VERIFY.md"), verify_md(&vk, lo > 0).as_bytes())?;
    write(&out.join("verify_dsse.py"), VERIFY_DSSE_PY.as_bytes())?;
    let head = Head { seq: lines[hi].1.seq, sha256: lines[hi].1.sha256.clone() };
    let files = sign_manifest(req, out, signer, entries, head)?;
    Ok(Exported { files, reports, entries })
}

/// The trusted public keys that signed an entry of the slice, and the pack's signer: `keys/<name>.pub`.
/// Returns each key's name with whether it is Ed25519, and the signer's name.
fn export_keys(
    req: &Request,
    out: &Path,
    slice: &[(String, Entry)],
    signer: &Signer,
) -> Result<(Vec<(String, bool)>, String), PackError> {
    let mut names = BTreeMap::new();
    for (_, e) in slice {
        if let SigState::Verified { key, .. } = req.store.state(e.seq)
            && let Some(k) = req.trust.keys.iter().find(|k| k.name == key)
        {
            names.insert(k.name.clone(), (trusted_file_text(&k.public, k.role), k.public.len() == 32));
        }
    }
    let signer_name = req.trust.find(&signer.key_id).map(|k| k.name.clone()).unwrap_or_else(|| "pack-signer".into());
    names
        .entry(signer_name.clone())
        .or_insert_with(|| (sign::public_pem(signer.public()), signer.algorithm() == sign::ED25519));
    for (name, (text, _)) in &names {
        write(&out.join("keys").join(format!("{name}.pub")), text.as_bytes())?;
    }
    Ok((names.into_iter().map(|(n, (_, ed))| (n, ed)).collect(), signer_name))
}

/// Every file under `dir` (relative, `/`-separated, sorted).
fn walk(dir: &Path) -> Result<Vec<String>, PackError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let rd = std::fs::read_dir(dir.join(&rel))
            .map_err(|source| PackError::Read { path: dir.display().to_string(), source })?;
        for d in rd.filter_map(Result::ok) {
            let p = rel.join(d.file_name());
            if d.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The manifest's own files, which it cannot list.
fn is_manifest_file(f: &str) -> bool {
    f == MANIFEST || f == "MANIFEST.json.sig" || f == "MANIFEST.dsse.json"
}

fn sign_manifest(
    req: &Request,
    out: &Path,
    signer: &Signer,
    entries: (u64, u64),
    head: Head,
) -> Result<usize, PackError> {
    let mut files = Vec::new();
    for f in walk(out)? {
        let bytes = std::fs::read(out.join(&f)).map_err(|source| PackError::Read { path: f.clone(), source })?;
        files.push(FileDigest { path: f, sha256: chain::sha256_hex(&bytes), bytes: bytes.len() as u64 });
    }
    let manifest = Manifest {
        schema: SCHEMA.into(),
        created_at: req.now,
        store: req.store_name.clone(),
        since: req.period.since,
        until: req.period.until,
        drills: req.drills.clone(),
        entries,
        head: Some(head),
        files,
        signing: Some(signer.record()),
    };
    let mut body = serde_json::to_vec_pretty(&manifest)?;
    body.push(b'\n');
    use base64::Engine;
    let sig = signer.sign(&body)?;
    let envelope = signer
        .envelope(&[(MANIFEST, &body)], serde_json::json!({ "evidence_pack": req.store_name, "entries": entries }))?;
    write(&out.join(MANIFEST), &body)?;
    write(
        &out.join("MANIFEST.json.sig"),
        format!("{}\n", base64::engine::general_purpose::STANDARD.encode(sig)).as_bytes(),
    )?;
    write(&out.join("MANIFEST.dsse.json"), &serde_json::to_vec_pretty(&envelope)?)?;
    Ok(manifest.files.len())
}

/// What `report verify --pack` found: the manifest's signature state, file problems, and the chain slice.
pub(crate) struct PackVerified {
    pub(crate) manifest: Manifest,
    pub(crate) signature: SigState,
    pub(crate) chain: chain::Verified,
}

impl PackVerified {
    pub(crate) fn ok(&self) -> bool {
        self.chain.ok() && matches!(self.signature, SigState::Verified { .. })
    }
}

/// Verifies a pack offline: the manifest's signature (by a trusted key), every file against it (none
/// missing, modified or added), and the ledger slice as `report verify` checks a store, starting from the
/// entry before it.
pub(crate) fn verify(dir: &Path, trust: &Trust) -> Result<PackVerified, PackError> {
    let bytes = std::fs::read(dir.join(MANIFEST))
        .map_err(|source| PackError::NotAPack { dir: dir.display().to_string(), source })?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(PackError::ManifestNotJson)?;
    let manifest: Manifest = serde_json::from_value(doc.clone()).map_err(PackError::NotAManifest)?;
    let mut problems = Vec::new();
    let mut problem = |at: String, what: String| problems.push(chain::Problem { seq: None, at, what });
    // The manifest's signature carries no renderings; an unsigned manifest is never trusted.
    let signature = match chain::signature(dir, MANIFEST, &bytes, &doc, trust) {
        Ok(SigState::Unsigned) => {
            problem(format!("`{MANIFEST}`"), "is not signed".into());
            SigState::Unsigned
        }
        Ok(s) => s,
        Err(why) => {
            problem(format!("`{MANIFEST}`"), why.to_string());
            SigState::Broken
        }
    };
    let listed: std::collections::HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for f in &manifest.files {
        let at = format!("`{}`", f.path);
        if f.path.split('/').any(|c| c.is_empty() || c == "..") {
            problem(at, "is not a path inside the pack".into());
            continue;
        }
        match std::fs::read(dir.join(&f.path)) {
            Ok(b) if chain::sha256_hex(&b) == f.sha256 => {}
            Ok(_) => problem(at, "was modified: its sha256 is not the one the manifest lists".into()),
            Err(_) => problem(at, "is missing: the manifest lists it".into()),
        }
    }
    for f in walk(dir)? {
        if !is_manifest_file(&f) && !listed.contains(f.as_str()) {
            problem(format!("`{f}`"), "is not in the manifest: added after the pack was made".into());
        }
    }
    let reports = dir.join("reports");
    let anchor = match std::fs::read_to_string(reports.join(BEFORE)) {
        Ok(t) => Some(serde_json::from_str::<Entry>(t.trim()).map_err(PackError::Before)?),
        Err(_) => None,
    };
    let mut chain = chain::verify_from(&reports, trust, false, anchor.as_ref())?;
    let first = chain::read(&reports)?.into_iter().find_map(Result::ok);
    if first.as_ref().map(|e| e.seq) != Some(manifest.entries.0) {
        problem(
            "the ledger slice".into(),
            format!("does not start at entry {} as the manifest says", manifest.entries.0),
        );
    }
    let last = chain::read(&reports)?.into_iter().flatten().last();
    if let Some(h) = &manifest.head
        && last.as_ref().is_none_or(|l| l.seq != h.seq || l.sha256 != h.sha256)
    {
        problem("the ledger slice".into(), format!("does not end at entry {} as the manifest's head says", h.seq));
    }
    // The pack's own problems first: a file edited after export is the first thing to name.
    problems.append(&mut chain.problems);
    chain.problems = problems;
    Ok(PackVerified { manifest, signature, chain })
}

/// Whether the pack in `dir` (verified) continues the chain from `previous`, the head the pack before it
/// ended at: it holds that entry with that sha256, or starts right after it. `Err` names the gap or the
/// rewrite: entries deleted from the store's end between the two exports, and the chain written again.
pub(crate) fn continues_from(dir: &Path, previous: &Head) -> Result<(), Discontinuity> {
    let reports = dir.join("reports");
    let mut entries: Vec<Entry> = chain::read(&reports)?.into_iter().flatten().collect();
    // The entry before the slice is only named (the pack does not hold its document): it stands for the
    // previous pack's head when it is that head, and never for an entry between the two packs, which would
    // then be in neither (a failed run left out by `--since`).
    if let Ok(t) = std::fs::read_to_string(reports.join(BEFORE))
        && let Ok(before) = serde_json::from_str::<Entry>(t.trim())
        && before.seq == previous.seq
    {
        entries.insert(0, before);
    }
    let first = entries.first().map(|e| e.seq).unwrap_or(0);
    if let Some(e) = entries.iter().find(|e| e.seq == previous.seq) {
        if e.sha256 == previous.sha256 {
            return Ok(());
        }
        return Err(Discontinuity::Rewritten {
            seq: e.seq,
            sha256: chain::short_hash(&e.sha256).to_string(),
            previous: previous.seq,
            previous_sha256: chain::short_hash(&previous.sha256).to_string(),
        });
    }
    if let Some(e) = entries.iter().find(|e| e.seq == previous.seq + 1) {
        if e.previous.as_deref() == Some(previous.sha256.as_str()) {
            return Ok(());
        }
        return Err(Discontinuity::Unlinked {
            seq: e.seq,
            previous: previous.seq,
            previous_sha256: chain::short_hash(&previous.sha256).to_string(),
        });
    }
    if first > previous.seq {
        return Err(Discontinuity::Gap { previous: previous.seq, first });
    }
    Err(Discontinuity::Truncated { last: entries.last().map(|e| e.seq).unwrap_or(0), previous: previous.seq })
}

/// A pack's head: the manifest's, or (a pack made before manifests recorded it) its ledger's last entry.
pub(crate) fn head(dir: &Path, manifest: &Manifest) -> Option<Head> {
    manifest.head.clone().or_else(|| {
        let last = chain::read(&dir.join("reports")).ok()?.into_iter().flatten().last()?;
        Some(Head { seq: last.seq, sha256: last.sha256 })
    })
}

/// What VERIFY.md names: every public key in `keys/` (name, whether Ed25519), the pack signer's, and a
/// signed report of the slice with its key's name.
pub(crate) struct VerifyKeys<'a> {
    pub(crate) keys: &'a [(String, bool)],
    pub(crate) signer: &'a str,
    pub(crate) report: Option<(&'a str, &'a str)>,
}

/// The openssl command that checks `file`'s detached signature (`file.sig`, base64) with `key`.
fn openssl_check(file: &str, key: &str, ed25519: bool) -> String {
    if ed25519 {
        format!("openssl pkeyutl -verify -pubin -rawin -inkey {key} -in {file} -sigfile <(base64 -d {file}.sig)")
    } else {
        format!("openssl dgst -sha256 -verify {key} -signature <(base64 -d {file}.sig) {file}")
    }
}

/// VERIFY.md: how to check the pack with stackdrill, and without it (openssl, Python's hashlib and
/// securesystemslib). Every command is in a ```sh block run from the pack's folder, and each block's exit
/// status is its verdict (a test runs them as written).
fn verify_md(k: &VerifyKeys, anchored: bool) -> String {
    let ed25519 = |name: &str| k.keys.iter().find(|(n, _)| n == name).is_none_or(|(_, ed)| *ed);
    let key_flags: Vec<String> = k.keys.iter().map(|(n, _)| format!("--key keys/{n}.pub")).collect();
    let fingerprints: Vec<String> = k.keys.iter().map(|(n, _)| format!("`keys/{n}.pub`")).collect();
    let report_step = match k.report {
        Some((report, key)) => format!(
            "3. One report: its detached signature, then its DSSE envelope and the three files it covers with \
             securesystemslib, the in-toto project's DSSE implementation (`pip install securesystemslib==1.6.0 \
             cryptography`); it is signed by `keys/{key}.pub`:\n\n```sh\n{} && python3 verify_dsse.py reports/{}.dsse.json keys/{key}.pub\n```\n\n",
            openssl_check(&format!("reports/{report}"), &format!("keys/{key}.pub"), ed25519(key)),
            report.trim_end_matches(".json"),
        ),
        None => "3. No report in this pack is signed: steps 4 and 5 are all there is to check.\n\n".into(),
    };
    format!(
        "# Verifying this evidence pack\n\n\
         Trust comes from outside the pack. Check first that the fingerprint of each key in `keys/` ({}) is \
         one the company gave you out of band (`openssl pkey -pubin -in keys/<name>.pub -outform DER | tail -c \
         32 | sha256sum` gives an Ed25519 key's id); the pack was signed by `keys/{signer}.pub`. Every command \
         below runs from this folder; each block ends with a non-zero exit status when something does not \
         verify.\n\n\
         ## With stackdrill\n\n```sh\nstackdrill report verify --pack . {}\n```\n\n\
         It trusts exactly the keys given (never keys found in the pack or the working directory) and checks \
         the manifest's signature, every file against the manifest, and the ledger slice: each entry's \
         sha256, link, signature, envelope, renderings and fields{}. Unsigned entries before the first signed \
         one are covered by its signature (it signs the sha256 of the entry before it, which links to the one \
         before that); an unsigned entry no signed entry follows is a broken link.\n\n\
         What a pack cannot show on its own: entries removed from the end of the store before it was exported. \
         Its manifest records the last entry it holds (`entries`); `stackdrill report verify --pack . --previous \
         <the pack before it> --key …` checks that this pack continues from where the previous one ended. In \
         production the store's S3 Object Lock is the anchor (a deleted or overwritten object is named by \
         `report verify`); a local store has none.\n\n\
         ## Without stackdrill\n\n\
         1. The manifest is signed (bash):\n\n```sh\n{}\n```\n\n\
         2. Every file is the one the manifest lists:\n\n```sh\npython3 -c 'import hashlib, json; m = json.load(open(\"MANIFEST.json\")); bad = [f[\"path\"] for f in m[\"files\"] if hashlib.sha256(open(f[\"path\"], \"rb\").read()).hexdigest() != f[\"sha256\"]]; print(bad or \"all files match\"); raise SystemExit(1 if bad else 0)'\n```\n\n\
         {report_step}\
         4. The whole chain: every entry's document has the sha256 the ledger records and links to the entry \
         before it:\n\n```sh\ncd reports && python3 - <<'EOF'\nimport hashlib, json\n\
         lines = [json.loads(l) for l in open(\"ledger.jsonl\") if l.strip()]\n\
         try:\n    prev = json.loads(open(\"ledger.before.jsonl\").read())[\"sha256\"]\nexcept FileNotFoundError:\n    prev = None\n\
         for e in lines:\n    assert e[\"previous\"] == prev, f\"entry {{e['seq']}} does not link to the entry before it\"\n\
         \x20   assert hashlib.sha256(open(e[\"file\"], \"rb\").read()).hexdigest() == e[\"sha256\"], e[\"file\"] + \" was modified\"\n\
         \x20   prev = e[\"sha256\"]\nprint(f\"{{len(lines)}} entries, chain intact\")\nEOF\n```\n\n\
         5. Every signature in the chain is by one of the keys in `keys/` (whose fingerprints you checked):\n\n\
         ```sh\ncd reports\nbad=0\nfor s in *.json.sig; do\n  [ -e \"$s\" ] || continue\n  ok=\n  for k in ../keys/*.pub; do\n\
         \x20   if openssl pkeyutl -verify -pubin -rawin -inkey \"$k\" -in \"${{s%.sig}}\" -sigfile <(base64 -d \"$s\") >/dev/null 2>&1 \\\n\
         \x20     || openssl dgst -sha256 -verify \"$k\" -signature <(base64 -d \"$s\") \"${{s%.sig}}\" >/dev/null 2>&1; then ok=1; break; fi\n\
         \x20 done\n  [ -n \"$ok\" ] || {{ echo \"BAD SIGNATURE: ${{s%.sig}}\"; bad=1; }}\ndone\n\
         [ \"$bad\" = 0 ] && echo \"every signature verifies with a key in keys/\"\n```\n",
        fingerprints.join(", "),
        key_flags.join(" "),
        if anchored { ", starting from the entry before the period (`reports/ledger.before.jsonl`)" } else { "" },
        openssl_check("MANIFEST.json", &format!("keys/{}.pub", k.signer), ed25519(k.signer)),
        signer = k.signer,
    )
}

/// Packs `dir` into `tar_gz` (one top-level folder named after `dir`).
pub(crate) fn tar(dir: &Path, tar_gz: &Path) -> Result<(), PackError> {
    let f = std::fs::File::create(tar_gz)
        .map_err(|source| PackError::Create { path: tar_gz.display().to_string(), source })?;
    let mut t = tar::Builder::new(flate2::write::GzEncoder::new(f, flate2::Compression::default()));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "evidence".into());
    t.append_dir_all(&name, dir).map_err(|source| PackError::Tar { path: dir.display().to_string(), source })?;
    let gz = t.into_inner()?;
    Ok(gz.finish()?.sync_all()?)
}

#[cfg(test)]
mod tests;
