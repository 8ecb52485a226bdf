//! The backup-posture record (`stackdrill.backup-posture/v1`): what `backups check` read of each data store
//! on one run — every figure, its objective, met or not — signed and chained into the same store as drill
//! reports (a ledger entry of kind `posture`), verified by `report verify` like the rest.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::chain;
use super::model::SigningRecord;
use super::sign::Signer;
use super::store::Rendered;

pub(crate) const SCHEMA: &str = "stackdrill.backup-posture/v1";

/// The ledger's `drill` field of every posture entry (a posture record belongs to no drill).
pub(crate) const LEDGER_NAME: &str = "backups";

/// One figure's standing against its objective.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    Met,
    NotMet,
    /// The reader could not read it: never met.
    CouldNotRead,
    /// The figure has no meaning for this store (a local cluster's encryption).
    NotApplicable,
    /// Read and recorded, with no objective to meet.
    Observed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::NotMet => "NOT MET",
            Status::CouldNotRead => "COULD NOT READ",
            Status::NotApplicable => "not applicable",
            Status::Observed => "observed",
        }
    }
}

/// A store's (and a run's) outcome: met only when every figure with an objective was read and met.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    Met,
    NotMet,
    CouldNotRead,
}

impl Outcome {
    /// The ledger's `result` of a posture entry.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::NotMet => "not-met",
            Outcome::CouldNotRead => "could-not-read",
        }
    }

    /// The outcome of these figures: any unread is `CouldNotRead`, else any missed is `NotMet`. No figure
    /// at all is `CouldNotRead`: nothing read is never met.
    pub(crate) fn of(figures: &[Figure]) -> Outcome {
        if figures.is_empty() || figures.iter().any(|f| f.status == Status::CouldNotRead) {
            Outcome::CouldNotRead
        } else if figures.iter().any(|f| f.status == Status::NotMet) {
            Outcome::NotMet
        } else {
            Outcome::Met
        }
    }
}

/// One figure read from a store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Figure {
    /// `backup-age`, `archiving`, `wal-backlog`, `pitr-lag`, `encryption`, ...
    pub(crate) name: String,
    /// As people read it: `3h 05m`, `failing`, `2 segments`.
    pub(crate) value: String,
    /// The figure as a number (seconds for an age or lag, a count for a backlog), for gauges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) number: Option<f64>,
    /// The objective as people read it (`≤ 26h`), when one applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) objective: Option<String>,
    pub(crate) status: Status,
    /// What explains the figure (the last failure's time and WAL file, the backup's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// What one store's reader found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct StorePosture {
    pub(crate) name: String,
    /// The store's kind as `backups.yaml` names it (`local-postgres`, ...).
    pub(crate) kind: String,
    pub(crate) result: Outcome,
    pub(crate) figures: Vec<Figure>,
}

impl StorePosture {
    /// The figures that were not met or not read, as `name (value)`: what a not-met cell names.
    pub(crate) fn failing(&self) -> Vec<String> {
        self.figures
            .iter()
            .filter(|f| matches!(f.status, Status::NotMet | Status::CouldNotRead))
            .map(|f| format!("{} {}", f.name, f.value))
            .collect()
    }
}

/// The signed record of one `backups check` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) schema: String,
    pub(crate) id: String,
    /// Always [`LEDGER_NAME`]: the ledger's `drill` field, checked by `report verify`.
    pub(crate) drill: String,
    pub(crate) result: Outcome,
    pub(crate) checked_at: DateTime<Utc>,
    pub(crate) stores: Vec<StorePosture>,
    pub(crate) previous_sha256: Option<String>,
    pub(crate) signing: Option<SigningRecord>,
}

impl Record {
    /// A record of `stores` read at `checked_at` (not yet chained or signed).
    pub(crate) fn new(stores: Vec<StorePosture>, checked_at: DateTime<Utc>) -> Record {
        let result = stores.iter().map(|s| s.result).max().unwrap_or(Outcome::CouldNotRead);
        let id = format!("posture-{}-{:08x}", checked_at.format("%Y%m%dT%H%M%SZ"), rand::random::<u32>());
        Record {
            schema: SCHEMA.into(),
            id,
            drill: LEDGER_NAME.into(),
            result,
            checked_at,
            stores,
            previous_sha256: None,
            signing: None,
        }
    }
}

/// Links `record` to `previous`, records the signer, and renders the JSON record with (when signing) its
/// detached signature and DSSE envelope, and the ledger entry that chains it.
pub(crate) fn render(
    record: &mut Record,
    previous: Option<String>,
    signer: Option<&Signer>,
) -> std::io::Result<Rendered> {
    use base64::Engine;
    record.previous_sha256 = previous;
    record.signing = signer.map(Signer::record);
    let name = format!("{}.json", record.id);
    let mut body = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    body.push(b'\n');
    let mut files = Vec::new();
    if let Some(s) = signer {
        let sig = base64::engine::general_purpose::STANDARD.encode(s.sign(&body).map_err(std::io::Error::other)?);
        let predicate = serde_json::json!({
            "id": record.id, "result": record.result.as_str(), "checked_at": record.checked_at,
            "previous_sha256": record.previous_sha256,
        });
        let env = s.envelope(&[(name.as_str(), body.as_slice())], predicate).map_err(std::io::Error::other)?;
        files.push((format!("{name}.sig"), format!("{sig}\n").into_bytes()));
        files.push((chain::dsse_name(&name), serde_json::to_vec_pretty(&env).map_err(std::io::Error::other)?));
    }
    let entry = chain::Entry {
        seq: 0,
        kind: chain::EntryKind::Posture,
        id: record.id.clone(),
        drill: record.drill.clone(),
        result: record.result.as_str().into(),
        file: name.clone(),
        sha256: chain::sha256_hex(&body),
        previous: record.previous_sha256.clone(),
        at: record.checked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        key_id: signer.map(|s| s.key_id.clone()),
    };
    Ok(Rendered { files, json: (name, body), entry })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chain::{self, EntryKind};
    use crate::report::trust::Trust;

    fn figure(name: &str, status: Status) -> Figure {
        Figure {
            name: name.into(),
            value: "1h 00m".into(),
            number: Some(3600.0),
            objective: None,
            status,
            detail: None,
        }
    }

    fn record(status: Status, at: DateTime<Utc>) -> Record {
        let figures = vec![figure("backup-age", status), figure("encryption", Status::NotApplicable)];
        let store =
            StorePosture { name: "db".into(), kind: "local-postgres".into(), result: Outcome::of(&figures), figures };
        Record::new(vec![store], at)
    }

    #[test]
    fn an_outcome_is_met_only_when_every_figure_was_read_and_met() {
        assert_eq!(Outcome::of(&[figure("a", Status::Met), figure("b", Status::NotApplicable)]), Outcome::Met);
        assert_eq!(Outcome::of(&[figure("a", Status::Met), figure("b", Status::NotMet)]), Outcome::NotMet);
        assert_eq!(
            Outcome::of(&[figure("a", Status::NotMet), figure("b", Status::CouldNotRead)]),
            Outcome::CouldNotRead
        );
        assert_eq!(Outcome::of(&[]), Outcome::CouldNotRead, "nothing read is never met");
    }

    /// A posture record is signed and chained between drill reports; `report verify` verifies it, and an
    /// edited one (its result turned to met) is a broken link naming the entry.
    #[test]
    fn a_posture_record_is_chained_signed_verified_and_an_edit_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k/signing.key");
        let (public, _) = crate::report::sign::generate(&key).unwrap();
        let signer = Signer::configured(crate::report::sign::KeySource::File(key)).unwrap().unwrap();
        let mut trust = Trust { explicit: true, ..Trust::default() };
        trust.add_file(&public).unwrap();
        let d = tmp.path().join("store");
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T04:00:00Z").unwrap().to_utc();
        let mut r = record(Status::NotMet, at);
        let path = crate::report::store::write_posture(&d, &mut r, Some(&signer)).unwrap();
        let mut r2 = record(Status::Met, at + chrono::Duration::days(1));
        crate::report::store::write_posture(&d, &mut r2, Some(&signer)).unwrap();
        let entries: Vec<_> = chain::read(&d).unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].kind, entries[0].result.as_str()), (EntryKind::Posture, "not-met"));
        assert_eq!(r2.previous_sha256.as_deref(), Some(entries[0].sha256.as_str()));
        let v = chain::verify(&d, &trust).unwrap();
        assert!(v.ok(), "{:?}", v.problems);
        assert_eq!(v.signed, 2);
        // The store's reader types it.
        let store = crate::report::view::Store::read_with(&d, v).unwrap();
        let read: Vec<&Record> = store.postures().map(|(_, r)| r).collect();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].stores[0].failing(), vec!["backup-age 1h 00m".to_string()]);
        // An edit of the document: the day reads met, and verify names the entry.
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replacen("\"not-met\"", "\"met\"", 2);
        assert_ne!(text, edited);
        std::fs::write(&path, edited).unwrap();
        let v = chain::verify(&d, &trust).unwrap();
        let p = v.problems.first().expect("the edit is found");
        assert!(p.at.starts_with("entry 1 (posture ") && p.what.contains("was modified"), "{p:?}");
    }
}
