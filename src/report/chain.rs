//! The hash chain: `ledger.jsonl` in the report store lists every report (and sign-off) in order with its
//! sha256 and the sha256 of the entry before it; each report also records `previous_sha256` inside its
//! signed bytes. Deleting, editing, inserting or reordering an entry breaks a link that `report verify`
//! names. Appends hold an exclusive lock on the store, so two drills finishing at once cannot fork it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::trust::{SigState, Trust};

pub(crate) const LEDGER: &str = "ledger.jsonl";
pub(crate) const LOSS_SCHEMA: &str = "stackdrill.loss/v1";

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EntryKind {
    Report,
    SignOff,
    /// A signed record that an earlier entry's document was lost (`report record-loss`).
    Loss,
    /// A backup-posture record (`backups check`, `stackdrill.backup-posture/v1`).
    Posture,
}

impl EntryKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EntryKind::Report => "report",
            EntryKind::SignOff => "sign-off",
            EntryKind::Loss => "loss",
            EntryKind::Posture => "posture",
        }
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) kind: EntryKind,
    pub(crate) id: String,
    pub(crate) drill: String,
    /// The report's result, or the sign-off's decision.
    pub(crate) result: String,
    pub(crate) file: String,
    pub(crate) sha256: String,
    pub(crate) previous: Option<String>,
    pub(crate) at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_id: Option<String>,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The first `n` characters of `s`, or all of it when shorter: every shortened hash, key id or
/// fingerprint goes through here, so a value someone edited in a ledger or a plan (too short, not hex,
/// multi-byte) never panics.
pub(crate) fn prefix(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// A hash as people read it: its first 12 characters.
pub(crate) fn short_hash(s: &str) -> &str {
    prefix(s, 12)
}

/// The store's append lock, held while an entry is written.
pub(crate) struct Appending {
    _lock: File,
    dir: PathBuf,
    pub(crate) last: Option<Entry>,
}

pub(crate) fn begin(dir: &Path) -> std::io::Result<Appending> {
    std::fs::create_dir_all(dir)?;
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(".ledger.lock"))?;
    lock.lock()?;
    // A line without its newline is an append a crash cut short: it never committed, so it goes.
    let ledger = dir.join(LEDGER);
    if let Ok(bytes) = std::fs::read(&ledger)
        && bytes.last().is_some_and(|b| *b != b'\n')
    {
        let keep = bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        let f = OpenOptions::new().write(true).open(&ledger)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
        tracing::warn!("{}: removed a ledger line an interrupted append left incomplete", ledger.display());
    }
    let last = read(dir)?.into_iter().rev().find_map(Result::ok);
    Ok(Appending { _lock: lock, dir: dir.to_path_buf(), last })
}

impl Appending {
    pub(crate) fn previous(&self) -> Option<String> {
        self.last.as_ref().map(|e| e.sha256.clone())
    }

    /// Appends the entry for `file` (already written) and fsyncs the ledger.
    pub(crate) fn append(&mut self, mut e: Entry) -> std::io::Result<Entry> {
        e.seq = self.last.as_ref().map(|l| l.seq + 1).unwrap_or(1);
        debug_assert_eq!(e.previous, self.previous(), "rendered against the chain's head");
        e.previous = self.previous();
        let mut line = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = OpenOptions::new().create(true).append(true).open(self.dir.join(LEDGER))?;
        f.write_all(&line)?;
        f.sync_all()?;
        self.last = Some(e.clone());
        Ok(e)
    }
}

/// What is wrong with a ledger line, an entry's document or its signature: each a broken link that
/// `report verify` names (its text is the problem's `what`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChainError {
    #[error("{LEDGER} line {line}: {source}")]
    BadLine { line: usize, source: serde_json::Error },
    #[error(
        "`{0}` is still pending: a write was interrupted after its ledger line; `stackdrill drill cleanup` completes it"
    )]
    Pending(String),
    #[error("`{0}` is missing: the report was deleted")]
    Deleted(String),
    #[error("the document records its signer, but its signature `{0}.sig` is missing: it was removed")]
    SignatureRemoved(String),
    #[error("signed, but the document records no public key")]
    NoPublicKey,
    #[error("the key id the document records is not its public key's")]
    KeyIdMismatch,
    #[error("signed, but its DSSE envelope `{0}` is missing: the statement covering its renderings was removed")]
    EnvelopeRemoved(String),
    #[error("bad signature: {0}")]
    BadSignature(#[from] super::sign::BadSignature),
    #[error("`{0}` is not covered by the signed statement: a rendering without its subject")]
    NotCovered(String),
    #[error("the signed statement names `{0}`, which is not a file of the store")]
    NotAStoreFile(String),
    #[error("`{0}` was modified: its sha256 is not the one signed")]
    RenderingModified(String),
    #[error("`{0}` is missing: the signed statement covers it")]
    RenderingMissing(String),
}

/// Every ledger line, parsed (a bad line is an `Err` naming its number).
pub(crate) fn read(dir: &Path) -> std::io::Result<Vec<Result<Entry, ChainError>>> {
    let text = match std::fs::read_to_string(dir.join(LEDGER)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|source| ChainError::BadLine { line: i + 1, source }))
        .collect())
}

/// What `report verify` found wrong, in chain order; the first is the first broken link.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Problem {
    /// The ledger entry's sequence number, when the problem is with an entry.
    pub(crate) seq: Option<u64>,
    pub(crate) at: String,
    pub(crate) what: String,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Verified {
    pub(crate) entries: usize,
    /// Entries whose signature holds (by a trusted key or not).
    pub(crate) signed: usize,
    pub(crate) problems: Vec<Problem>,
    /// Entries whose signature holds for a key nobody trusts, in chain order: not ok, not broken.
    pub(crate) unverified: Vec<Problem>,
    /// Each entry's signature state by sequence number, as every reader shows it.
    pub(crate) states: std::collections::BTreeMap<u64, SigState>,
    /// Entries whose document a later loss record, signed by a trusted operator key, says was lost: named,
    /// not broken links.
    pub(crate) lost: Vec<Problem>,
    /// Each lost entry's loss record (lost entry → record), for the losses that stand.
    #[serde(skip)]
    pub(crate) lost_by: std::collections::BTreeMap<u64, u64>,
    /// The bytes of each document read (by file name), so a reader parses what was verified without
    /// reading it again.
    #[serde(skip)]
    pub(crate) documents: std::collections::HashMap<String, Vec<u8>>,
}

impl Verified {
    /// Nothing broken and nothing signed by an untrusted key.
    pub(crate) fn ok(&self) -> bool {
        self.problems.is_empty() && self.unverified.is_empty()
    }

    /// Adds what was found outside the chain (an S3 store's object versions and locks), after the chain's
    /// own problems; an entry named there is broken.
    pub(crate) fn add(&mut self, found: Vec<Problem>) {
        for seq in found.iter().filter_map(|p| p.seq) {
            self.states.insert(seq, SigState::Broken);
        }
        self.problems.extend(found);
    }
}

/// The ledger entry a store file belongs to: a ledger object (`ledger/00000003.json`), an entry's document,
/// or one of its renderings, signature or envelope.
pub(crate) fn entry_of(entries: &[Entry], name: &str) -> Option<u64> {
    if let Some(n) = name.strip_prefix("ledger/").and_then(|n| n.strip_suffix(".json")) {
        return n.parse().ok();
    }
    entries
        .iter()
        .find(|e| {
            let stem = e.file.trim_end_matches(".json");
            name == e.file || name.strip_prefix(stem).is_some_and(|rest| rest.starts_with('.'))
        })
        .map(|e| e.seq)
}

/// What an unsigned entry no trusted operator's signed report after it vouches for is found to be.
pub(crate) const UNCOVERED: &str = "no signed entry after it vouches for it";

/// [`verify_with`], unsigned entries after signed ones not allowed.
#[cfg(test)]
pub(crate) fn verify(dir: &Path, trust: &Trust) -> std::io::Result<Verified> {
    verify_with(dir, trust, false)
}

/// Walks the chain: links, file digests, the `previous_sha256` inside each report, the ledger's fields
/// against the documents, signatures and whether `trust` trusts their keys, and files the ledger does not
/// list. `allow_unsigned` accepts an unsigned entry after signed ones (a store whose signing was switched
/// off on purpose); otherwise that entry is a broken link: written without the key, or inserted.
pub(crate) fn verify_with(dir: &Path, trust: &Trust, allow_unsigned: bool) -> std::io::Result<Verified> {
    verify_from(dir, trust, allow_unsigned, None)
}

/// [`verify_with`] of a ledger slice (an evidence pack's) whose first entry follows `anchor`: the entry
/// before the slice, whose document the slice does not hold.
pub(crate) fn verify_from(
    dir: &Path,
    trust: &Trust,
    allow_unsigned: bool,
    anchor: Option<&Entry>,
) -> std::io::Result<Verified> {
    let base = anchor.map_or(0, |a| a.seq);
    let mut walk = Walk {
        dir,
        trust,
        allow_unsigned,
        v: Verified::default(),
        prev: anchor.map(|a| a.sha256.clone()),
        listed: std::collections::HashSet::new(),
        uncovered: Vec::new(),
        problems: Vec::new(),
        taken: Vec::new(),
    };
    let entries = read(dir)?;
    let losses = losses(dir, &entries);
    for (i, e) in entries.into_iter().enumerate() {
        let expected = base + i as u64 + 1;
        match e {
            Ok(e) => walk.entry(e, expected, &losses),
            Err(msg) => {
                walk.problem(None, format!("{LEDGER} entry {expected}"), msg.to_string());
                walk.prev = None;
            }
        }
    }
    Ok(walk.finish())
}

/// One walk along the chain ([`verify_from`]): what it has found so far.
struct Walk<'a> {
    dir: &'a Path,
    trust: &'a Trust,
    allow_unsigned: bool,
    v: Verified,
    /// The sha256 of the entry before the next one.
    prev: Option<String>,
    listed: std::collections::HashSet<String>,
    /// Unsigned entries since the last signed one (sequence number, where).
    uncovered: Vec<(u64, String)>,
    problems: Vec<Problem>,
    /// Losses taken on the word of their record: (lost entry, its record, where), checked once the
    /// record's signature is known.
    taken: Vec<(u64, u64, String)>,
}

impl Walk<'_> {
    fn problem(&mut self, seq: Option<u64>, at: String, what: String) {
        self.problems.push(Problem { seq, at, what });
    }

    /// One ledger entry, the `expected`-th: its links, its document (or its loss record), its signature.
    fn entry(&mut self, e: Entry, expected: u64, losses: &std::collections::HashMap<u64, (u64, String)>) {
        let at = format!("entry {expected} ({} `{}`, {})", e.kind, e.id, e.file);
        self.listed.insert(e.file.clone());
        self.links(&e, expected, &at);
        if let Some((record, reason)) = losses.get(&e.seq)
            && !matches!(document(self.dir, &e), Ok((_, _, ref found)) if found.is_empty())
        {
            self.v.lost.push(Problem {
                seq: Some(e.seq),
                at: at.clone(),
                what: format!("lost, as entry {record} records: {reason}"),
            });
            self.taken.push((e.seq, *record, at));
            return;
        }
        let (bytes, doc) = match document(self.dir, &e) {
            Ok((bytes, doc, found)) => {
                for what in found {
                    self.problem(Some(e.seq), at.clone(), what);
                }
                (bytes, doc)
            }
            Err(why) => {
                self.problem(Some(e.seq), at, why.to_string());
                return;
            }
        };
        let state = self.signature(&e, &at, &bytes, &doc);
        self.v.states.insert(e.seq, state);
        self.v.documents.insert(e.file, bytes);
    }

    /// The entry's sequence number and its link to the entry before it.
    fn links(&mut self, e: &Entry, expected: u64, at: &str) {
        if e.seq != expected {
            self.problem(
                Some(e.seq),
                at.to_string(),
                format!("sequence number {} where {expected} was expected: an entry was removed or reordered", e.seq),
            );
        }
        if e.previous != self.prev {
            let what = format!(
                "links to {} but the entry before it has sha256 {}: an entry was deleted, inserted or reordered",
                short(e.previous.as_deref()),
                short(self.prev.as_deref())
            );
            self.problem(Some(e.seq), at.to_string(), what);
        }
        self.prev = Some(e.sha256.clone());
    }

    /// The entry's signature state, counting what it signs and what it leaves uncovered.
    fn signature(&mut self, e: &Entry, at: &str, bytes: &[u8], doc: &serde_json::Value) -> SigState {
        match signature(self.dir, &e.file, bytes, doc, self.trust) {
            Ok(SigState::Unsigned) if self.v.signed > 0 && !self.allow_unsigned => {
                let what = unsigned_after(self.v.signed);
                self.problem(Some(e.seq), at.to_string(), what);
                SigState::Broken
            }
            Ok(SigState::Unsigned) => {
                self.uncovered.push((e.seq, at.to_string()));
                SigState::Unsigned
            }
            Ok(SigState::Unverified { fingerprint }) => {
                self.v.signed += 1;
                let what = format!("signed by {fingerprint}, a key that is not trusted");
                self.v.unverified.push(Problem { seq: Some(e.seq), at: at.to_string(), what });
                SigState::Unverified { fingerprint }
            }
            Ok(s) => {
                if let SigState::Verified { role, .. } = &s {
                    self.v.signed += 1;
                    // A trusted operator's signed report covers its `previous_sha256`, and so every entry
                    // before it. A reviewer's signature (a sign-off) vouches for its decision only: a reviewer
                    // key never turns a stripped, rewritten history into a signed one.
                    if *role == super::trust::Role::Operator && matches!(e.kind, EntryKind::Report | EntryKind::Posture)
                    {
                        self.uncovered.clear();
                    }
                }
                s
            }
            Err(why) => {
                self.problem(Some(e.seq), at.to_string(), why.to_string());
                SigState::Broken
            }
        }
    }

    /// What only the whole chain shows: losses whose record does not stand, unsigned entries nothing
    /// vouches for, files the ledger does not list.
    fn finish(mut self) -> Verified {
        // A loss stands only on a record signed by a trusted operator key.
        for (lost, record, at) in std::mem::take(&mut self.taken) {
            if matches!(self.v.states.get(&record), Some(SigState::Verified { role: super::trust::Role::Operator, .. }))
            {
                self.v.lost_by.insert(lost, record);
            } else {
                self.problem(
                    Some(lost),
                    at,
                    format!(
                        "its document is gone, and entry {record}, which records it as lost, is not signed by a trusted operator key"
                    ),
                );
            }
        }
        // Unsigned entries that no trusted signature after them vouches for, where the chain must be signed:
        // a signed store whose signatures were all stripped (and an entry rewritten) stops here.
        if let Some(why) = self.trust.requires_signatures().filter(|_| !self.allow_unsigned) {
            for (seq, at) in std::mem::take(&mut self.uncovered) {
                self.problem(
                    Some(seq),
                    at,
                    format!(
                        "not signed, and {UNCOVERED}, though {why}: its signature was \
                         stripped, or it was written without the key (--allow-unsigned accepts it)"
                    ),
                );
            }
        }
        // Reports and sign-offs in the store that the ledger does not list.
        for f in unlisted(self.dir, &self.listed) {
            self.problem(None, format!("`{f}`"), "is not in the ledger: inserted, or written outside the chain".into());
        }
        let mut v = self.v;
        for seq in self.problems.iter().filter_map(|p| p.seq) {
            v.states.insert(seq, SigState::Broken);
        }
        v.problems = self.problems;
        v.entries = self.listed.len();
        v
    }
}

/// The loss records in the ledger: lost entry → (its record's sequence number, the reason). A record
/// counts only for an earlier entry whose ledger sha256 it names.
fn losses(dir: &Path, entries: &[Result<Entry, ChainError>]) -> std::collections::HashMap<u64, (u64, String)> {
    let all: Vec<&Entry> = entries.iter().filter_map(|e| e.as_ref().ok()).collect();
    let mut out = std::collections::HashMap::new();
    for r in all.iter().filter(|e| e.kind == EntryKind::Loss) {
        let Some(doc) =
            std::fs::read(dir.join(&r.file)).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        let (Some(seq), Some(sha)) = (doc["lost_seq"].as_u64(), doc["lost_sha256"].as_str()) else { continue };
        if seq < r.seq && all.iter().any(|e| e.seq == seq && e.sha256 == sha) {
            out.insert(seq, (r.seq, doc["reason"].as_str().unwrap_or_default().to_string()));
        }
    }
    out
}

/// An entry's document, read and checked against the entry: its bytes, its JSON, and each way it
/// disagrees (digest, inner link, ledger fields); `Err` when it cannot be read.
fn document(dir: &Path, e: &Entry) -> Result<(Vec<u8>, serde_json::Value, Vec<String>), ChainError> {
    let bytes = match std::fs::read(dir.join(&e.file)) {
        Ok(b) => b,
        Err(_) if dir.join(format!(".pending-{}", e.file)).exists() => return Err(ChainError::Pending(e.file.clone())),
        Err(_) => return Err(ChainError::Deleted(e.file.clone())),
    };
    let mut found = Vec::new();
    if sha256_hex(&bytes) != e.sha256 {
        found.push(format!("`{}` was modified: its sha256 is not the one recorded", e.file));
    }
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if doc["previous_sha256"].as_str().map(str::to_string) != e.previous {
        found.push("the previous_sha256 inside the report differs from the ledger's link".into());
    }
    found.extend(ledger_mismatch(e, &doc));
    Ok((bytes, doc, found))
}

/// Why an unsigned entry after `signed` signed ones is a broken link.
fn unsigned_after(signed: usize) -> String {
    format!(
        "not signed, though {signed} entr{} before it {}: written without the key, or inserted (--allow-unsigned \
         accepts it)",
        if signed == 1 { "y" } else { "ies" },
        if signed == 1 { "is" } else { "are" }
    )
}

/// The first ledger field that disagrees with the document its entry points at (whose bytes the chain
/// proves): the readers take `result`, `drill`, `at` and `key_id` from the ledger, so an edited ledger line
/// would otherwise pass as a different verdict, drill, time or signer.
fn ledger_mismatch(e: &Entry, doc: &serde_json::Value) -> Option<String> {
    let (schema, result_key, time_key) = match e.kind {
        EntryKind::Report => ("stackdrill.report/v1", "result", "finished_at"),
        EntryKind::SignOff => ("stackdrill.sign-off/v1", "decision", "at"),
        EntryKind::Loss => (LOSS_SCHEMA, "result", "at"),
        EntryKind::Posture => (super::posture::SCHEMA, "result", "checked_at"),
    };
    let text = |k: &str| doc[k].as_str().map(str::to_string);
    if text("schema").as_deref() != Some(schema) {
        return Some(format!("the ledger says {} but the file is not a `{schema}` document", e.kind));
    }
    let time = text(time_key)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let key_id = doc["signing"]["key_id"].as_str().map(str::to_string);
    let fields = [
        ("id", Some(e.id.clone()), text("id")),
        ("drill", Some(e.drill.clone()), text("drill")),
        ("result", Some(e.result.clone()), text(result_key)),
        ("at", Some(e.at.clone()), time),
        ("key_id", e.key_id.clone(), key_id),
    ];
    fields.into_iter().find(|(_, ledger, file)| ledger != file).map(|(field, ledger, file)| {
        let show = |v: Option<String>| v.map(|v| format!("`{v}`")).unwrap_or_else(|| "none".into());
        format!(
            "the ledger's `{field}` is {} but the {} it points at says {}: the ledger line was edited",
            show(ledger),
            match e.kind {
                EntryKind::Report => "report",
                EntryKind::SignOff => "sign-off",
                EntryKind::Loss => "loss record",
                EntryKind::Posture => "posture record",
            },
            show(file)
        )
    })
}

/// The detached signature and DSSE envelope of `file` checked with the public key the document records,
/// and whether `trust` trusts that key: `Err` names what is wrong (a bad signature, a missing signature or
/// envelope, a rendering the signed statement does not cover). Whether an unsigned entry may stand is the
/// chain's question ([`verify_from`]).
pub(crate) fn signature(
    dir: &Path,
    file: &str,
    bytes: &[u8],
    doc: &serde_json::Value,
    trust: &Trust,
) -> Result<SigState, ChainError> {
    use base64::Engine;
    let Ok(sig) = std::fs::read_to_string(dir.join(format!("{file}.sig"))) else {
        if !doc["signing"].is_null() {
            return Err(ChainError::SignatureRemoved(file.to_string()));
        }
        return Ok(SigState::Unsigned);
    };
    let public = doc["signing"]["public_key"]
        .as_str()
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
        .ok_or(ChainError::NoPublicKey)?;
    let key_id = super::sign::key_id(&public);
    if doc["signing"]["key_id"].as_str() != Some(key_id.as_str()) {
        return Err(ChainError::KeyIdMismatch);
    }
    // A trusted key checks with its own bytes; an untrusted one with what the document records.
    let trusted = trust.find(&key_id);
    // The envelope's statement is what covers the renderings: a signed entry without it is a broken link,
    // never an entry whose renderings go unchecked.
    let envelope =
        std::fs::read_to_string(dir.join(dsse_name(file))).map_err(|_| ChainError::EnvelopeRemoved(dsse_name(file)))?;
    let renderings =
        super::sign::verify_files(trusted.map_or(&public[..], |k| &k.public), bytes, &sig, Some(&envelope))?;
    signed_renderings(dir, &renderings)?;
    // And every rendering of the entry in the store is one the statement covers.
    let stem = file.trim_end_matches(".json");
    for ext in ["md", "html"] {
        let name = format!("{stem}.{ext}");
        if dir.join(&name).exists() && !renderings.iter().any(|(n, _)| *n == name) {
            return Err(ChainError::NotCovered(name));
        }
    }
    let fingerprint = super::sign::fingerprint(&key_id);
    Ok(match trusted {
        Some(k) => SigState::Verified { key: k.name.clone(), role: k.role, fingerprint },
        None => SigState::Unverified { fingerprint },
    })
}

/// Each rendering the signed statement covers (name, sha256) is in `dir` with that digest.
fn signed_renderings(dir: &Path, renderings: &[(String, String)]) -> Result<(), ChainError> {
    for (name, digest) in renderings {
        // The names come from a verified statement; still, only plain file names in the store are read.
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(ChainError::NotAStoreFile(name.clone()));
        }
        match std::fs::read(dir.join(name)) {
            Ok(b) if sha256_hex(&b) == *digest => {}
            Ok(_) => return Err(ChainError::RenderingModified(name.clone())),
            Err(_) => return Err(ChainError::RenderingMissing(name.clone())),
        }
    }
    Ok(())
}

/// Reports and sign-offs in `dir` that the ledger does not list, sorted.
fn unlisted(dir: &Path, listed: &std::collections::HashSet<String>) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else { return vec![] };
    let mut unlisted: Vec<String> = rd
        .filter_map(Result::ok)
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json") && !f.ends_with(".dsse.json") && !f.starts_with('.') && !listed.contains(f))
        .collect();
    unlisted.sort();
    unlisted
}

pub(crate) fn dsse_name(file: &str) -> String {
    format!("{}.dsse.json", file.trim_end_matches(".json"))
}

fn short(h: Option<&str>) -> String {
    match h {
        None => "nothing (the start)".into(),
        Some(h) => short_hash(h).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::report::{Report, Signer, sign};

    fn report(i: usize) -> Report {
        let at =
            chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap() + chrono::Duration::hours(i as i64);
        serde_json::from_value(serde_json::json!({
            "schema": "stackdrill.report/v1", "id": format!("{i:012x}"), "drill": if i.is_multiple_of(2) { "a" } else { "b" },
            "description": null, "result": if i % 5 == 3 { "failed" } else { "passed" }, "reason": null,
            "started_at": at, "finished_at": at, "tool": { "name": "stackdrill", "version": "0" },
            "operator": "test", "trigger": "test", "drill_file": { "path": "d.yaml", "sha256": null },
            "source": { "provider": "local-postgres", "details": {}, "backup": null, "scratch": null },
            "target": { "time": null, "selection": "latest", "seed": null, "recovery": "end", "window": null },
            "objectives": { "rto_seconds": 600, "rpo_seconds": 60 },
            "measured": { "rto_seconds": 1.0 + i as f64, "rpo_seconds": 0.5, "rpo_basis": "replay",
                          "newest_commit": null, "rto_met": true, "rpo_met": true },
            "phases": [], "checks": [],
            "teardown": { "status": "done", "at": at, "detail": "removed" },
            "runbook": null, "controls": ["SOC2-A1.2"],
        }))
        .unwrap()
    }

    fn store(dir: &Path, n: usize, signer: Option<&Signer>) -> Vec<Entry> {
        for i in 0..n {
            crate::report::store::write(dir, &mut report(i), signer).unwrap();
        }
        read(dir).unwrap().into_iter().map(Result::unwrap).collect()
    }

    /// A new key, and a trust that pins it (as `--key` does).
    fn key(dir: &Path) -> (Signer, Trust) {
        let path = dir.join("k/signing.key");
        let (public, _) = sign::generate(&path).unwrap();
        let signer = Signer::configured(crate::report::sign::KeySource::File(path.clone())).unwrap().unwrap();
        let mut trust = Trust { explicit: true, ..Trust::default() };
        trust.add_file(&public).unwrap();
        (signer, trust)
    }

    fn first_problem(dir: &Path, trust: &Trust) -> String {
        let v = verify(dir, trust).unwrap();
        assert!(!v.problems.is_empty(), "tampering went unnoticed");
        format!("{}: {}", v.problems[0].at, v.problems[0].what)
    }

    #[test]
    fn shortened_hashes_never_panic_on_edited_values() {
        assert_eq!(short_hash("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash("abc"), "abc");
        assert_eq!(short_hash(""), "");
        assert_eq!(short_hash("ééééééééééééééé"), "éééééééééééé");
        assert_eq!(crate::report::sign::fingerprint("ab"), "SHA256:ab");
        assert_eq!(prefix(&crate::report::sign::fingerprint("ab"), 18), "SHA256:ab");
    }
    #[test]
    fn each_kind_of_tampering_is_named_at_its_first_broken_link() {
        let tmp = tempfile::tempdir().unwrap();
        let (signer, public) = key(tmp.path());
        let fresh = |name: &str| {
            let d = tmp.path().join(name);
            let entries = store(&d, 5, Some(&signer));
            (d, entries)
        };

        let (d, e) = fresh("intact");
        let v = verify(&d, &public).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!((v.entries, v.signed), (5, 5));

        // An edited report (a failure turned into a pass).
        let (d, e2) = fresh("modified");
        let f = d.join(&e2[3].file);
        let text = std::fs::read_to_string(&f).unwrap().replacen("\"failed\"", "\"passed\"", 1);
        std::fs::write(&f, text).unwrap();
        let p = first_problem(&d, &public);
        assert!(p.starts_with("entry 4 ") && p.contains("was modified"), "{p}");

        // A deleted report and its ledger line (the inconvenient failed drill).
        let (d, e3) = fresh("deleted");
        std::fs::remove_file(d.join(&e3[3].file)).unwrap();
        let ledger = std::fs::read_to_string(d.join(LEDGER)).unwrap();
        let kept: Vec<&str> = ledger.lines().filter(|l| !l.contains(&e3[3].file)).collect();
        std::fs::write(d.join(LEDGER), kept.join("\n") + "\n").unwrap();
        let p = first_problem(&d, &public);
        assert!(p.starts_with("entry 4 ") && p.contains("removed or reordered"), "{p}");
        let all: Vec<String> = verify(&d, &Trust::default()).unwrap().problems.iter().map(|p| p.what.clone()).collect();
        assert!(all.iter().any(|w| w.contains("deleted, inserted or reordered")), "the broken link too: {all:?}");

        // Two entries swapped.
        let (d, _) = fresh("reordered");
        let mut lines: Vec<String> =
            std::fs::read_to_string(d.join(LEDGER)).unwrap().lines().map(String::from).collect();
        lines.swap(1, 2);
        std::fs::write(d.join(LEDGER), lines.join("\n") + "\n").unwrap();
        let p = first_problem(&d, &public);
        assert!(p.starts_with("entry 2 "), "{p}");

        // A report slipped in that the chain does not list.
        let (d, _) = fresh("inserted");
        std::fs::copy(d.join(&e[0].file), d.join("20260101T000000Z-a-forged.json")).unwrap();
        let p = first_problem(&d, &public);
        assert!(p.contains("forged") && p.contains("not in the ledger"), "{p}");

        // A re-signed edit with another key: the pinned key refuses it.
        let (d, e6) = fresh("resigned");
        let (other, _) = key(&tmp.path().join("other"));
        let f = d.join(&e6[1].file);
        let bytes = std::fs::read(&f).unwrap();
        use base64::Engine;
        std::fs::write(
            d.join(format!("{}.sig", e6[1].file)),
            base64::engine::general_purpose::STANDARD.encode(other.sign(&bytes).unwrap()),
        )
        .unwrap();
        let p = first_problem(&d, &public);
        assert!(p.starts_with("entry 2 ") && p.contains("bad signature"), "{p}");

        // A report signed, soundly, by a key nobody trusts: unverified, not ok, and not a broken link.
        let d = tmp.path().join("foreign");
        store(&d, 2, Some(&signer));
        crate::report::store::write(&d, &mut report(2), Some(&other)).unwrap();
        let v = verify(&d, &public).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert!(!v.ok());
        assert_eq!(v.unverified.len(), 1);
        assert!(v.unverified[0].at.starts_with("entry 3 ") && v.unverified[0].what.contains("not trusted"));
        assert!(matches!(v.states[&3], SigState::Unverified { .. }), "{:?}", v.states);
        assert!(matches!(&v.states[&1], SigState::Verified { key, .. } if key == "signing"), "{:?}", v.states);
        // Trusting nothing, no signature is verified, however sound.
        let v = verify(&d, &Trust::default()).unwrap();
        assert_eq!(v.unverified.len(), 3);
    }

    /// Every ledger field a reader takes is checked against the document the chain proves: editing the
    /// ledger's `result` (a failed drill turned into a pass), `drill`, `id`, `at` or `key_id` is named.
    #[test]
    fn an_edited_ledger_field_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let (signer, public) = key(tmp.path());
        let edits: [(&str, &str, &str); 5] = [
            ("result", "\"result\":\"failed\"", "\"result\":\"passed\""),
            ("drill", "\"drill\":\"b\"", "\"drill\":\"a\""),
            ("id", "\"id\":\"000000000003\"", "\"id\":\"000000000099\""),
            ("at", "\"at\":\"2026-01-01T03:00:00Z\"", "\"at\":\"2026-01-02T03:00:00Z\""),
            ("key_id", "\"key_id\":\"", "\"key_id\":\"0"),
        ];
        for (field, from, to) in edits {
            let d = tmp.path().join(field);
            store(&d, 5, Some(&signer));
            let ledger = std::fs::read_to_string(d.join(LEDGER)).unwrap();
            let mut lines: Vec<String> = ledger.lines().map(String::from).collect();
            assert!(lines[3].contains(from), "{field}: {}", lines[3]);
            lines[3] = lines[3].replacen(from, to, 1);
            std::fs::write(d.join(LEDGER), lines.join("\n") + "\n").unwrap();
            let p = first_problem(&d, &public);
            assert!(p.starts_with("entry 4 ") && p.contains(&format!("ledger's `{field}`")), "{field}: {p}");
        }
    }

    /// In a signed store, an unsigned later entry is a broken link unless unsigned entries are allowed.
    #[test]
    fn an_unsigned_entry_after_signed_ones_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let (signer, _) = key(tmp.path());
        let d = tmp.path().join("store");
        store(&d, 2, Some(&signer));
        crate::report::store::write(&d, &mut report(2), None).unwrap();
        let p = first_problem(&d, &Trust::default());
        assert!(p.starts_with("entry 3 ") && p.contains("not signed, though 2 entries before it are"), "{p}");
        assert!(verify_with(&d, &Trust::default(), true).unwrap().problems.is_empty());
    }

    /// Where the chain must be signed (an operator key trusted, or keys pinned), unsigned entries stand only
    /// when a trusted signature after them vouches for them: a leading unsigned run does; a store of
    /// unsigned entries (every signature stripped) does not; `--allow-unsigned` accepts it.
    #[test]
    fn unsigned_entries_stand_only_when_a_signed_entry_after_them_vouches_for_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (signer, pinned) = key(tmp.path());
        let operator = Trust { explicit: false, ..pinned.clone() };
        let d = tmp.path().join("leading");
        crate::report::store::write(&d, &mut report(0), None).unwrap();
        crate::report::store::write(&d, &mut report(1), Some(&signer)).unwrap();
        for trust in [&pinned, &operator] {
            let v = verify(&d, trust).unwrap();
            assert!(v.ok(), "{:?}", v.problems);
            assert_eq!(v.states[&1], SigState::Unsigned);
        }
        let d = tmp.path().join("unsigned");
        store(&d, 3, None);
        assert!(verify(&d, &Trust::default()).unwrap().ok(), "no key trusted: an unsigned store");
        for (trust, why) in
            [(&pinned, "--key / --trust-kms-key require"), (&operator, "the operator key `signing` is trusted")]
        {
            let p = first_problem(&d, trust);
            assert!(
                p.starts_with("entry 1 ") && p.contains("no signed entry after it vouches for it") && p.contains(why),
                "{p}"
            );
            assert_eq!(verify(&d, trust).unwrap().problems.len(), 3);
        }
        assert!(verify_with(&d, &operator, true).unwrap().problems.is_empty());
        // A signed entry whose envelope was deleted is a broken link, not an entry whose renderings go unchecked.
        let d = tmp.path().join("no-envelope");
        let entries = store(&d, 2, Some(&signer));
        std::fs::remove_file(d.join(dsse_name(&entries[1].file))).unwrap();
        let p = first_problem(&d, &pinned);
        assert!(p.starts_with("entry 2 ") && p.contains("DSSE envelope") && p.contains("is missing"), "{p}");
        // And one whose signature was deleted while its document records its signer.
        let d = tmp.path().join("no-sig");
        let entries = store(&d, 2, Some(&signer));
        std::fs::remove_file(d.join(format!("{}.sig", entries[1].file))).unwrap();
        let p = first_problem(&d, &Trust::default());
        assert!(p.starts_with("entry 2 ") && p.contains("records its signer"), "{p}");
    }

    /// Only a trusted operator's signed report vouches for the unsigned entries before it: a reviewer's
    /// signed sign-off after a stripped, rewritten history does not make it verify.
    #[test]
    fn a_reviewer_signature_never_vouches_for_earlier_unsigned_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let (operator, pinned) = key(tmp.path());
        let path = tmp.path().join("k/reviewer.key");
        let (public, _) = sign::generate(&path).unwrap();
        let reviewer = Signer::configured(crate::report::sign::KeySource::File(path)).unwrap().unwrap();
        let mut trust = Trust { explicit: false, ..pinned };
        let text = std::fs::read_to_string(&public).unwrap();
        let public = sign::parse_public_pem(&text).unwrap();
        trust.add("reviewer", super::super::trust::Role::Reviewer, public, "test".into());
        let d = tmp.path().join("store");
        let entries = store(&d, 2, None);
        crate::report::store::write_sign_off(&d, &entries[1], "reviewer", "approved", None, Some(&reviewer)).unwrap();
        let v = verify(&d, &trust).unwrap();
        assert!(
            v.problems.iter().any(|p| p.seq == Some(1) && p.what.contains("no signed entry after it vouches for it")),
            "a reviewer's sign-off vouched for unsigned reports: {:?}",
            v.problems
        );
        // An operator's signed report after them does.
        let d = tmp.path().join("operator");
        store(&d, 2, None);
        crate::report::store::write(&d, &mut report(2), Some(&operator)).unwrap();
        assert!(verify(&d, &trust).unwrap().ok());
    }

    /// The signed statement covers the Markdown and HTML renderings: editing or deleting either is named.
    #[test]
    fn an_edited_or_missing_rendering_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let (signer, public) = key(tmp.path());
        for (ext, action) in [("html", "edit"), ("md", "edit"), ("html", "delete")] {
            let d = tmp.path().join(format!("{ext}-{action}"));
            let entries = store(&d, 3, Some(&signer));
            let file = d.join(entries[1].file.replace(".json", &format!(".{ext}")));
            if action == "edit" {
                let text = std::fs::read_to_string(&file).unwrap().replacen("PASSED", "PASSED (and fine)", 1);
                std::fs::write(&file, text).unwrap();
            } else {
                std::fs::remove_file(&file).unwrap();
            }
            let p = first_problem(&d, &public);
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(p.starts_with("entry 2 ") && p.contains(&format!("`{name}`")), "{ext} {action}: {p}");
            assert!(p.contains(if action == "edit" { "was modified" } else { "is missing" }), "{p}");
        }
    }

    // The slow tier: a thousand signatures take seconds in an unoptimised build.
    #[cfg(feature = "slow-tests")]
    #[test]
    fn a_chain_of_1000_signed_reports_verifies_in_well_under_a_second() {
        let tmp = tempfile::tempdir().unwrap();
        let (signer, public) = key(tmp.path());
        let d = tmp.path().join("store");
        store(&d, 1000, Some(&signer));
        let started = std::time::Instant::now();
        let v = verify(&d, &public).unwrap();
        let took = started.elapsed();
        assert!(v.problems.is_empty());
        assert_eq!((v.entries, v.signed), (1000, 1000));
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    }

    #[test]
    fn concurrent_writers_never_fork_the_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().to_path_buf();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let d = d.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        crate::report::store::write(&d, &mut report(t * 100 + i), None).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let v = verify(&d, &Trust::default()).unwrap();
        assert!(v.problems.is_empty(), "{:?}", v.problems.first());
        assert_eq!(v.entries, 80);
    }
}
