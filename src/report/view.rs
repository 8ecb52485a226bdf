//! Reading a report store: every ledger entry with its document, typed (`Report`, a sign-off), the chain's
//! verification beside them, and the queries the commands share — a drill's runs, its last run, its last
//! pass — with one definition of a run's time (its report's `started_at`) and of a pass (the verified
//! report's `result`). Commands never read a report as loose JSON.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::chain::{self, Entry, EntryKind};
use super::model::{Report, Verdict};
use super::trust::SigState;

/// The parts of a sign-off document (`stackdrill.sign-off/v1`) the readers use.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SignOff {
    pub(crate) report_id: String,
    pub(crate) reviewer: String,
}

/// A ledger entry's document, when it could be read and parsed.
#[derive(Debug, Clone)]
pub(crate) enum Doc {
    Report(Box<Report>),
    SignOff(SignOff),
    Posture(Box<super::posture::Record>),
    /// Missing, unreadable, or not the document its entry says.
    Unreadable,
}

/// One ledger entry and its document.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) entry: Entry,
    pub(crate) doc: Doc,
}

impl Row {
    pub(crate) fn report(&self) -> Option<&Report> {
        match &self.doc {
            Doc::Report(r) => Some(r),
            _ => None,
        }
    }

    /// The backup-posture record, when this entry is one.
    pub(crate) fn posture(&self) -> Option<&super::posture::Record> {
        match &self.doc {
            Doc::Posture(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn is_report(&self) -> bool {
        self.entry.kind == EntryKind::Report
    }

    /// The run passed: its report says so (`report verify` proves the ledger says the same).
    pub(crate) fn passed(&self) -> bool {
        self.report().is_some_and(|r| r.result == Verdict::Passed)
    }

    /// A `stackdrill demo` run: a throwaway source, evidence of nothing.
    pub(crate) fn is_demo(&self) -> bool {
        self.report().is_some_and(|r| r.trigger == "demo")
    }

    /// When the run started, from its report: the one time every reader compares with the schedule.
    pub(crate) fn started_at(&self) -> Option<DateTime<Utc>> {
        self.report().map(|r| r.started_at)
    }
}

/// The reports of the last `n` runs of `drill` in `dir`, oldest first, reading only those `n` documents:
/// the trend every new report's HTML draws, on the write path, whatever the store's size.
pub(crate) fn last_reports(dir: &Path, drill: &str, n: usize) -> Vec<Report> {
    let runs: Vec<Entry> = chain::read(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.kind == EntryKind::Report && e.drill == drill)
        .collect();
    runs[runs.len().saturating_sub(n)..]
        .iter()
        .filter_map(|e| serde_json::from_slice(&std::fs::read(dir.join(&e.file)).ok()?).ok())
        .collect()
}

/// A time as the report JSON writes it (serde's form for `DateTime<Utc>`).
pub(crate) fn json_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A store's entries in ledger order (lines that do not parse are left out; `report verify` names them).
pub(crate) struct Store {
    rows: Vec<Row>,
    /// What `report verify` finds in this store (with the same trusted keys).
    verified: chain::Verified,
}

impl Store {
    /// Reads the ledger in `dir` and each entry's document, beside what verifying it found.
    pub(crate) fn read_with(dir: &Path, mut verified: chain::Verified) -> std::io::Result<Store> {
        let mut documents = std::mem::take(&mut verified.documents);
        let mut store = Store::read(dir, &mut documents)?;
        // A lost entry's file, if any is there, is not its document.
        for row in store.rows.iter_mut().filter(|r| verified.lost.iter().any(|l| l.seq == Some(r.entry.seq))) {
            row.doc = Doc::Unreadable;
        }
        Ok(Store { verified, ..store })
    }

    /// Reads the ledger in `dir` and each entry's document (from `documents` when verification already
    /// read it).
    fn read(dir: &Path, documents: &mut std::collections::HashMap<String, Vec<u8>>) -> std::io::Result<Store> {
        let rows = chain::read(dir)?
            .into_iter()
            .filter_map(Result::ok)
            .map(|entry| {
                let bytes = documents.remove(&entry.file).or_else(|| std::fs::read(dir.join(&entry.file)).ok());
                let doc = match (entry.kind, bytes) {
                    (_, None) => Doc::Unreadable,
                    (EntryKind::Report, Some(b)) => {
                        serde_json::from_slice(&b).map(|r| Doc::Report(Box::new(r))).unwrap_or(Doc::Unreadable)
                    }
                    (EntryKind::SignOff, Some(b)) => {
                        serde_json::from_slice(&b).map(Doc::SignOff).unwrap_or(Doc::Unreadable)
                    }
                    (EntryKind::Loss, Some(_)) => Doc::Unreadable,
                    (EntryKind::Posture, Some(b)) => {
                        serde_json::from_slice(&b).map(|r| Doc::Posture(Box::new(r))).unwrap_or(Doc::Unreadable)
                    }
                };
                Row { entry, doc }
            })
            .collect();
        Ok(Store { rows, verified: chain::Verified::default() })
    }

    /// The first broken link, when the chain does not verify.
    pub(crate) fn broken(&self) -> Option<&chain::Problem> {
        self.verified.problems.first()
    }

    /// The loss record (its sequence number) of an entry whose document was lost, when the loss stands.
    pub(crate) fn lost_record(&self, seq: u64) -> Option<u64> {
        self.verified.lost_by.get(&seq).copied()
    }

    /// An entry's signature state, exactly as `report verify` determined it.
    pub(crate) fn state(&self, seq: u64) -> SigState {
        self.verified.states.get(&seq).cloned().unwrap_or(SigState::Broken)
    }

    /// A warning for readers when the chain is broken, or reports are signed by keys nobody trusts: what
    /// they show comes from an unverified store.
    pub(crate) fn warning(&self) -> Option<String> {
        if let Some(p) = self.broken() {
            return Some(format!(
                "warning: the report chain is broken at {}: {}; what follows reads an unverified store (run \
                 `stackdrill report verify`)",
                p.at, p.what
            ));
        }
        self.verified.unverified.first().map(|p| {
            format!(
                "warning: {} entr{} signed by keys that are not trusted (first: {}, {}); trust a key by putting \
                 its .pub in {} (or pass --key)",
                self.verified.unverified.len(),
                if self.verified.unverified.len() == 1 { "y is" } else { "ies are" },
                p.at,
                p.what,
                super::trust::trusted_dir().display()
            )
        })
    }

    /// A store of these rows (tests build one without a directory).
    #[cfg(test)]
    pub(crate) fn from_rows(rows: Vec<Row>) -> Store {
        // A row with a key id counts as signed by a trusted key of that name (a reviewer's for a sign-off).
        let state = |e: &Entry| match &e.key_id {
            None => SigState::Unsigned,
            Some(k) => SigState::Verified {
                key: k.clone(),
                role: if e.kind == EntryKind::SignOff {
                    super::trust::Role::Reviewer
                } else {
                    super::trust::Role::Operator
                },
                fingerprint: super::sign::fingerprint(k),
            },
        };
        let states = rows.iter().map(|r| (r.entry.seq, state(&r.entry))).collect();
        Store { rows, verified: chain::Verified { states, ..chain::Verified::default() } }
    }

    /// Marks an entry broken, as `report verify` would (tests).
    #[cfg(test)]
    pub(crate) fn mark_broken(&mut self, seq: u64) {
        self.verified.states.insert(seq, SigState::Broken);
    }

    pub(crate) fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Every report entry, oldest first.
    pub(crate) fn reports(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.is_report())
    }

    /// The report entries of `drill`, oldest first.
    pub(crate) fn history<'a>(&'a self, drill: &'a str) -> impl Iterator<Item = &'a Row> + 'a {
        self.reports().filter(move |r| r.entry.drill == drill)
    }

    /// The latest-started run of `drill` (whatever its result).
    pub(crate) fn last_run<'a>(&'a self, drill: &'a str) -> Option<&'a Row> {
        self.history(drill).filter(|r| r.started_at().is_some()).max_by_key(|r| r.started_at())
    }

    /// The latest-started passed run of `drill`.
    pub(crate) fn last_pass<'a>(&'a self, drill: &'a str) -> Option<&'a Row> {
        self.history(drill).filter(|r| r.passed()).max_by_key(|r| r.started_at())
    }

    /// Each backup-posture record, oldest first, with its row.
    pub(crate) fn postures(&self) -> impl Iterator<Item = (&Row, &super::posture::Record)> {
        self.rows.iter().filter_map(|r| match &r.doc {
            _ if r.entry.kind == EntryKind::Posture => r.posture().map(|p| (r, p)),
            _ => None,
        })
    }

    /// Each sign-off and the report id it decides on.
    pub(crate) fn sign_offs(&self) -> impl Iterator<Item = (&Row, &SignOff)> {
        self.rows.iter().filter_map(|r| match &r.doc {
            Doc::SignOff(s) if r.entry.kind == EntryKind::SignOff => Some((r, s)),
            _ => None,
        })
    }
}
