//! The control "daily encrypted backups with point-in-time recovery" (SOC 2 A1.2, ISO 27001 A.8.13) from
//! the store's backup-posture records: per store, one cell per UTC day of the period — met, not met (naming
//! the figure), or not observed (no record that day) — and the period figures (days met / observed / in
//! period). `report controls` and the evidence pack's index both show it.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::markdown::{cell, code};
use super::period::Period;
use super::posture::Outcome;
use super::trust::SigState;
use super::view::Store;

pub(crate) const CONTROL: &str = "daily encrypted backups with point-in-time recovery";
pub(crate) const FRAMEWORKS: &str = "SOC 2 A1.2, ISO 27001 A.8.13";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DayState {
    Met,
    NotMet,
    /// No posture record of the store that day.
    NotObserved,
}

impl DayState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DayState::Met => "met",
            DayState::NotMet => "NOT MET",
            DayState::NotObserved => "not observed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Day {
    pub(crate) date: NaiveDate,
    pub(crate) state: DayState,
    /// What a not-met day failed on (each figure and its value, or why the record is not evidence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
    /// The record that decided the day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) record: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct StoreDays {
    pub(crate) store: String,
    pub(crate) kind: String,
    pub(crate) days: Vec<Day>,
    pub(crate) days_met: usize,
    pub(crate) days_not_met: usize,
    pub(crate) days_not_observed: usize,
    pub(crate) days_observed: usize,
    pub(crate) days_in_period: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PostureControl {
    pub(crate) control: String,
    pub(crate) frameworks: String,
    pub(crate) since: NaiveDate,
    pub(crate) until: NaiveDate,
    pub(crate) stores: Vec<StoreDays>,
}

/// The UTC days `period` touches, no later than `now`'s day.
fn days(period: Period, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let first = period.since.date_naive();
    // `until` is exclusive: a period ending at midnight does not touch the day that starts there.
    let last = (period.until - Duration::nanoseconds(1)).date_naive().min(now.date_naive());
    first.iter_days().take_while(|d| *d <= last).collect()
}

/// What one record says of one store on its day: met, or not met and why.
type Seen = (DayState, Option<String>, String);

/// The control over `period` (default: from the first posture record to `now`), or `None` when the store
/// holds no posture record at all. A day with several records is met only when every one of them is; a
/// record whose signature or link does not hold is never evidence of a met day.
pub(crate) fn calendar(store: &Store, period: Option<Period>, now: DateTime<Utc>) -> Option<PostureControl> {
    let records: Vec<_> = store.postures().collect();
    let first = records.iter().map(|(_, r)| r.checked_at).min()?;
    // Without a start (`--until` alone), the period starts at the first record.
    let period = match period {
        Some(p) if p.since == DateTime::<Utc>::MIN_UTC => Period { since: first.min(p.until), ..p },
        Some(p) => p,
        None => Period { since: first, until: now },
    };
    let mut seen: BTreeMap<String, (String, BTreeMap<NaiveDate, Seen>)> = BTreeMap::new();
    for (row, r) in &records {
        let verified = !matches!(store.state(row.entry.seq), SigState::Broken | SigState::Unverified { .. });
        for s in &r.stores {
            let entry = seen.entry(s.name.clone()).or_insert_with(|| (s.kind.clone(), BTreeMap::new()));
            if !period.contains(r.checked_at) {
                continue;
            }
            let (state, detail) = match (verified, s.result) {
                (false, result) => (DayState::NotMet, Some(format!("UNVERIFIED record (says {})", result.as_str()))),
                (true, Outcome::Met) => (DayState::Met, None),
                (true, _) => (DayState::NotMet, Some(s.failing().join("; "))),
            };
            let day = r.checked_at.date_naive();
            let keep = entry.1.get(&day).is_none_or(|(prev, ..)| *prev == DayState::Met);
            if keep {
                entry.1.insert(day, (state, detail, r.id.clone()));
            }
        }
    }
    let all = days(period, now);
    let stores = seen
        .into_iter()
        .map(|(store, (kind, by_day))| {
            let days: Vec<Day> = all
                .iter()
                .map(|d| match by_day.get(d) {
                    Some((state, detail, id)) => {
                        Day { date: *d, state: *state, detail: detail.clone(), record: Some(id.clone()) }
                    }
                    None => Day { date: *d, state: DayState::NotObserved, detail: None, record: None },
                })
                .collect();
            let count = |s: DayState| days.iter().filter(|d| d.state == s).count();
            let (met, not_met, not_observed) =
                (count(DayState::Met), count(DayState::NotMet), count(DayState::NotObserved));
            StoreDays {
                store,
                kind,
                days_in_period: days.len(),
                days,
                days_met: met,
                days_not_met: not_met,
                days_not_observed: not_observed,
                days_observed: met + not_met,
            }
        })
        .collect();
    Some(PostureControl {
        control: CONTROL.into(),
        frameworks: FRAMEWORKS.into(),
        since: all.first().copied().unwrap_or(period.since.date_naive()),
        until: all.last().copied().unwrap_or(period.since.date_naive()),
        stores,
    })
}

/// The figures as one line: `27 days met / 29 observed / 30 in period (2 not met, 1 not observed)`.
pub(crate) fn figures(s: &StoreDays) -> String {
    format!(
        "{} met / {} observed / {} in period ({} not met, {} not observed)",
        crate::config::count(s.days_met as u64, "day", "days"),
        s.days_observed,
        s.days_in_period,
        s.days_not_met,
        s.days_not_observed
    )
}

/// The control as Markdown: per store its figures, then one row per day.
pub(crate) fn markdown(c: &PostureControl) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## {} ({})\n\nFrom the backup-posture records (`stackdrill backups check`), one cell per day (UTC), {} to {}.\n",
        c.control, c.frameworks, c.since, c.until
    );
    for s in &c.stores {
        let _ = writeln!(
            o,
            "### {} ({}): {}\n\n| day | posture | record |\n|---|---|---|",
            cell(&s.store),
            cell(&s.kind),
            figures(s)
        );
        for d in &s.days {
            let state = match (&d.state, &d.detail) {
                (DayState::NotMet, Some(why)) => format!("**NOT MET**: {}", cell(why)),
                (DayState::NotMet, None) => "**NOT MET**".into(),
                (state, _) => state.as_str().into(),
            };
            let record = d.record.as_deref().map(|r| format!("`{}`", code(r))).unwrap_or_else(|| "—".into());
            let _ = writeln!(o, "| {} | {state} | {record} |", d.date);
        }
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chain::{Entry, EntryKind};
    use crate::report::posture::{Figure, Record, Status, StorePosture};
    use crate::report::view::{Doc, Row};

    pub(crate) fn record(at: DateTime<Utc>, met: bool) -> Record {
        let figures = vec![Figure {
            name: "archiving".into(),
            value: if met { "alive".into() } else { "failing since 2026-03-05T04:00:00Z".into() },
            number: None,
            objective: Some("archive_mode on".into()),
            status: if met { Status::Met } else { Status::NotMet },
            detail: None,
        }];
        let store = StorePosture {
            name: "app-db".into(),
            kind: "local-postgres".into(),
            result: crate::report::posture::Outcome::of(&figures),
            figures,
        };
        Record::new(vec![store], at)
    }

    fn row(seq: u64, r: Record) -> Row {
        let entry = Entry {
            seq,
            kind: EntryKind::Posture,
            id: r.id.clone(),
            drill: "backups".into(),
            result: r.result.as_str().into(),
            file: format!("{}.json", r.id),
            sha256: "0".repeat(64),
            previous: None,
            at: r.checked_at.to_rfc3339(),
            key_id: None,
        };
        Row { entry, doc: Doc::Posture(Box::new(r)) }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// Thirty days, two not met, one without a record: 27 met / 29 observed / 30 in period, and each cell
    /// says what it is; a second met record on a not-met day does not turn it met.
    #[test]
    fn thirty_days_with_two_not_met_and_one_missing_are_27_2_1() {
        let start = at("2026-03-01T04:00:00Z");
        let mut rows = Vec::new();
        for day in 0..30 {
            if day == 10 {
                continue;
            }
            let t = start + Duration::days(day);
            rows.push(row(rows.len() as u64 + 1, record(t, !(day == 4 || day == 20))));
            if day == 4 {
                rows.push(row(rows.len() as u64 + 1, record(t + Duration::hours(6), true)));
            }
        }
        let store = Store::from_rows(rows);
        let period = Period { since: at("2026-03-01T00:00:00Z"), until: at("2026-03-31T00:00:00Z") };
        let c = calendar(&store, Some(period), at("2026-06-01T00:00:00Z")).unwrap();
        let s = &c.stores[0];
        assert_eq!(
            (s.days_met, s.days_not_met, s.days_not_observed, s.days_observed, s.days_in_period),
            (27, 2, 1, 29, 30)
        );
        assert_eq!(s.days[10].state, DayState::NotObserved);
        assert_eq!(s.days[4].state, DayState::NotMet);
        assert!(s.days[4].detail.as_deref().unwrap().contains("archiving failing since"), "{:?}", s.days[4]);
        let md = markdown(&c);
        assert!(md.contains("27 days met / 29 observed / 30 in period (2 not met, 1 not observed)"), "{md}");
        assert!(md.contains("| 2026-03-11 | not observed | — |"), "{md}");
        assert!(md.contains("| 2026-03-05 | **NOT MET**: archiving failing since"), "{md}");
    }

    /// A record whose signature does not hold is never a met day.
    #[test]
    fn an_unverified_record_is_not_a_met_day() {
        let mut r = row(1, record(at("2026-03-01T04:00:00Z"), true));
        r.entry.key_id = None;
        let mut store = Store::from_rows(vec![r]);
        store.mark_broken(1);
        let c = calendar(&store, None, at("2026-03-01T05:00:00Z")).unwrap();
        assert_eq!(c.stores[0].days[0].state, DayState::NotMet);
        assert!(c.stores[0].days[0].detail.as_deref().unwrap().starts_with("UNVERIFIED"));
    }
}
