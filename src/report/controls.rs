//! What the store evidences per control and per runbook: the controls matrix (`report controls`: per
//! control, every run that evidences it — result, RTO, RPO, signature, chain, sign-off — and every scheduled
//! period without a passed run) and the `runbook check` findings.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::markdown::{cell, code};
use super::period::{Outcome, Period};
use super::trust::{Role, SigState};
use super::view::{Row, Store};
use crate::config::DrillSpec;

#[derive(Serialize)]
pub(crate) struct ControlRun {
    pub(crate) drill: String,
    pub(crate) id: String,
    pub(crate) started_at: Option<String>,
    pub(crate) result: String,
    pub(crate) rto: String,
    pub(crate) rpo: String,
    pub(crate) signature: String,
    pub(crate) chain: String,
    pub(crate) sign_off: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct Missed {
    pub(crate) drill: String,
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: DateTime<Utc>,
}

#[derive(Serialize)]
pub(crate) struct Control {
    pub(crate) control: String,
    pub(crate) runs: Vec<ControlRun>,
    pub(crate) missed: Vec<Missed>,
}

/// Who a sign-off is from, as its signature proves it.
fn sign_off_label(decision: &str, reviewer: &str, state: &SigState) -> String {
    let signed = match state {
        SigState::Verified { key, role: Role::Reviewer, .. } => format!("signed by reviewer key `{key}`"),
        SigState::Verified { key, role, .. } => {
            format!("signed with {} key `{key}`, not a reviewer's", role.as_str())
        }
        SigState::Unverified { .. } => "UNVERIFIED: signed by an untrusted key".into(),
        SigState::Unsigned => "unsigned".into(),
        SigState::Broken => "BROKEN".into(),
    };
    format!("{decision} by {reviewer} ({signed})")
}

/// The matrix from the verified store (each entry's signature state as `report verify` found it) and the
/// drill files (their schedules and controls), as of `now`.
/// With `period`, only its runs and the missed cadences that start in it.
pub(crate) fn matrix(store: &Store, specs: &[DrillSpec], now: DateTime<Utc>, period: Option<Period>) -> Vec<Control> {
    let in_period = |t: Option<DateTime<Utc>>| period.is_none_or(|p| t.is_some_and(|t| p.contains(t)));
    let sign_offs: BTreeMap<String, String> = store
        .sign_offs()
        .map(|(r, s)| (s.report_id.clone(), sign_off_label(&r.entry.result, &s.reviewer, &store.state(r.entry.seq))))
        .collect();
    let mut by_control: BTreeMap<String, Control> = BTreeMap::new();
    // Demo runs restore stackdrill's own throwaway source: they evidence no control.
    for r in store.reports().filter(|r| !r.is_demo()) {
        let Some(d) = r.report() else {
            // A lost report never vanishes from the matrix: its ledger result stands (a lost failed run is
            // a failed run), under the controls its drill file names.
            lost_run(store, specs, r, period, &sign_offs, &mut by_control);
            continue;
        };
        if !in_period(r.started_at()) {
            continue;
        }
        let state = store.state(r.entry.seq);
        // A run whose signature or link does not hold is not evidence of a pass, whatever it says.
        let result = match state {
            SigState::Broken | SigState::Unverified { .. } => format!("UNVERIFIED (says {})", d.result.as_str()),
            _ => d.result.as_str().into(),
        };
        let met = |v: Option<f64>, met: bool| match (v, met) {
            (None, _) => "not measured".to_string(),
            (Some(v), true) => format!("{} met", crate::config::human_seconds(v)),
            (Some(v), false) => format!("{} MISSED", crate::config::human_seconds(v)),
        };
        let run = |r: &Row| ControlRun {
            drill: r.entry.drill.clone(),
            id: r.entry.id.clone(),
            started_at: Some(super::html::when(d.started_at)),
            result: result.clone(),
            rto: met(d.measured.rto_seconds, d.measured.rto_met),
            rpo: met(d.measured.rpo_seconds, d.measured.rpo_met),
            signature: store.state(r.entry.seq).label(),
            chain: if store.state(r.entry.seq) == SigState::Broken { "BROKEN".into() } else { "ok".into() },
            sign_off: sign_offs.get(&r.entry.id).cloned(),
        };
        for c in &d.controls {
            by_control
                .entry(c.to_string())
                .or_insert_with(|| Control { control: c.to_string(), runs: vec![], missed: vec![] })
                .runs
                .push(run(r));
        }
    }
    missed_cadences(store, specs, now, period, &mut by_control);
    by_control.into_values().collect()
}

/// A lost report's run in the matrix: its ledger result, under the controls its drill file names, recorded
/// by its loss record (nothing when the loss does not stand, or the run is outside `period`).
fn lost_run(
    store: &Store,
    specs: &[DrillSpec],
    r: &Row,
    period: Option<Period>,
    sign_offs: &BTreeMap<String, String>,
    by_control: &mut BTreeMap<String, Control>,
) {
    let Some(record) = store.lost_record(r.entry.seq) else { return };
    let at = chrono::DateTime::parse_from_rfc3339(&r.entry.at).ok().map(|t| t.with_timezone(&Utc));
    if period.is_some_and(|p| !at.is_some_and(|t| p.contains(t))) {
        return;
    }
    let by = match store.state(record) {
        SigState::Verified { key, .. } => format!("`{key}`"),
        _ => "an unverified key".into(),
    };
    let controls: Vec<String> = specs
        .iter()
        .find(|s| s.name == r.entry.drill)
        .map(|s| s.controls.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| vec!["(control unknown: report lost)".into()]);
    for c in controls {
        by_control.entry(c.clone()).or_insert_with(|| Control { control: c, runs: vec![], missed: vec![] }).runs.push(
            ControlRun {
                drill: r.entry.drill.clone(),
                id: r.entry.id.clone(),
                started_at: at.map(super::html::when),
                result: format!("{} — report lost, recorded by {by} (entry {record})", r.entry.result),
                rto: "-".into(),
                rpo: "-".into(),
                signature: "lost".into(),
                chain: "ok (lost)".into(),
                sign_off: sign_offs.get(&r.entry.id).cloned(),
            },
        );
    }
}

/// A period between two scheduled occurrences without a passed run is a missed cadence, from the drill's
/// first report until now (within `period`, when one is given): the occurrences of the period figures that
/// closed without a pass.
fn missed_cadences(
    store: &Store,
    specs: &[DrillSpec],
    now: DateTime<Utc>,
    period: Option<Period>,
    by_control: &mut BTreeMap<String, Control>,
) {
    for s in specs {
        if s.schedule.is_none() {
            continue;
        }
        let runs: Vec<&Row> = store.history(&s.name).filter(|r| !r.is_demo()).collect();
        let Some(first) = runs.iter().filter_map(|r| r.started_at()).min() else { continue };
        let after_first = Period { since: first + chrono::Duration::nanoseconds(1), until: now };
        let window = period.map_or(after_first, |p| Period {
            since: after_first.since.max(p.since),
            until: after_first.until.min(p.until),
        });
        let missed: Vec<Missed> = super::period::occurrences(s, &runs, window, now)
            .into_iter()
            .filter(|o| matches!(o.outcome, Outcome::Failed | Outcome::Missed))
            .map(|o| Missed { drill: s.name.clone(), from: o.at, to: o.until })
            .collect();
        for c in &s.controls {
            let entry = by_control.entry(c.clone()).or_insert_with(|| Control {
                control: c.clone(),
                runs: vec![],
                missed: vec![],
            });
            entry.missed.extend(missed.iter().map(|m| Missed { drill: m.drill.clone(), from: m.from, to: m.to }));
        }
    }
}

/// The controls matrix as Markdown: one table per control, its runs then its missed cadences.
/// The matrix as Markdown. `anchored` when the store has an anchor outside itself (S3 Object Lock); a
/// local store says it has none: its newest entries could be deleted, ledger lines and all, without a trace.
pub(crate) fn markdown(store: &str, controls: &[Control], intact: bool, anchored: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Controls matrix\n\nFrom `{}`; chain: {}.\n",
        store,
        if intact { "intact" } else { "BROKEN (run `stackdrill report verify`)" }
    );
    if !anchored {
        let _ = writeln!(
            o,
            "Anchor: none. This store is local: its newest entries could be deleted, ledger lines and all, \
             leaving a shorter chain that is still intact. In production the S3 Object Lock store is the anchor; \
             otherwise check each evidence pack against the one before it (`stackdrill report verify --pack NEW \
             --previous OLD --key …`).\n"
        );
    }
    for c in controls {
        let _ = writeln!(
            o,
            "## {}\n\n| drill | run | started | result | RTO | RPO | signature | chain | sign-off |\n|---|---|---|---|---|---|---|---|---|",
            c.control
        );
        for r in &c.runs {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |",
                cell(&r.drill),
                code(&r.id),
                cell(r.started_at.as_deref().unwrap_or("-")),
                cell(&r.result),
                cell(&r.rto),
                cell(&r.rpo),
                cell(&r.signature),
                cell(&r.chain),
                cell(r.sign_off.as_deref().unwrap_or("—"))
            );
        }
        for m in &c.missed {
            let _ = writeln!(
                o,
                "| {} | — | {} → {} | **missed cadence** | | | | | |",
                cell(&m.drill),
                super::html::when(m.from),
                super::html::when(m.to)
            );
        }
        o.push('\n');
    }
    o
}

#[derive(Serialize)]
pub(crate) struct RunbookFinding {
    pub(crate) drill: String,
    pub(crate) runbook: Option<String>,
    pub(crate) problem: String,
}

/// What `runbook check` finds: a drill that cites no runbook or a missing one, a scheduled drill with no
/// pass within its cadence (in `store`, named `store_name`), a drill file that does not load (`bad`).
pub(crate) fn runbook_findings(
    store: &Store,
    store_name: &str,
    specs: &[DrillSpec],
    bad: &[String],
    now: DateTime<Utc>,
) -> Vec<RunbookFinding> {
    let mut findings = Vec::new();
    for s in specs {
        let runbook = s.runbook.as_ref().map(|p| p.display().to_string());
        match &s.runbook {
            None => findings.push(RunbookFinding {
                drill: s.name.clone(),
                runbook: None,
                problem: "cites no runbook".into(),
            }),
            Some(p) if !p.is_file() => findings.push(RunbookFinding {
                drill: s.name.clone(),
                runbook: runbook.clone(),
                problem: format!("cites `{}`, which does not exist", p.display()),
            }),
            Some(_) => {}
        }
        let Some(sched) = &s.schedule else { continue };
        let gap = crate::cadence::cadence(sched, now).unwrap_or_default();
        let last_pass: Option<DateTime<Utc>> =
            store.history(&s.name).filter(|r| r.passed() && !r.is_demo()).filter_map(Row::started_at).max();
        let overdue = crate::cadence::overdue(sched, last_pass, now).unwrap_or(false);
        if overdue {
            findings.push(RunbookFinding {
                drill: s.name.clone(),
                runbook,
                problem: match last_pass {
                    None => format!("no passed run in `{}`; scheduled {}", store_name, every(gap)),
                    Some(t) => format!("last passed {}; scheduled {}", super::html::when(t), every(gap)),
                },
            });
        }
    }
    for b in bad {
        findings.push(RunbookFinding {
            drill: "-".into(),
            runbook: None,
            problem: format!("drill file does not load: {b}"),
        });
    }
    findings
}

/// A cadence as people say it, rounded to its largest unit: `every day`, `every 2 weeks`, `every 3 months`
/// (a quarter of whole calendar months is 89–92 days), `every 90 days` when no month count fits.
pub(crate) fn every(gap: chrono::Duration) -> String {
    let secs = gap.num_seconds().max(1) as f64;
    let (day, hour, minute) = (86400.0, 3600.0, 60.0);
    let n = |v: f64, one: &str, many: &str| match v.round() as u64 {
        1 => format!("every {one}"),
        n => format!("every {n} {many}"),
    };
    let days = secs / day;
    let months = (days / 30.436_875).round();
    if days >= 27.5 && months >= 1.0 && (days - months * 30.436_875).abs() <= 1.6 * months.max(1.0) {
        if months % 12.0 == 0.0 { n(months / 12.0, "year", "years") } else { n(months, "month", "months") }
    } else if days >= 6.5 && ((days / 7.0) - (days / 7.0).round()).abs() < 0.05 {
        n(days / 7.0, "week", "weeks")
    } else if secs >= day * 0.98 {
        n(days, "day", "days")
    } else if secs >= hour * 0.98 {
        n(secs / hour, "hour", "hours")
    } else if secs >= minute {
        n(secs / minute, "minute", "minutes")
    } else {
        n(secs, "second", "seconds")
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::report::chain::{Entry, EntryKind};
    use crate::report::view::{Doc, SignOff};

    fn entry(seq: u64, kind: EntryKind, result: &str) -> Entry {
        Entry {
            seq,
            kind,
            id: if kind == EntryKind::Report { "0123456789ab".into() } else { "s1".into() },
            drill: "orders-pitr".into(),
            result: result.into(),
            file: format!("{seq}.json"),
            sha256: "0".repeat(64),
            previous: None,
            at: "2026-11-30T03:01:00Z".into(),
            key_id: Some("k1".into()),
        }
    }

    /// `report controls` as an auditor reads it, pinned: a failed, signed, signed-off run and the daily
    /// periods after it without a pass.
    #[test]
    fn controls_matrix_snapshot() {
        let report = Row {
            entry: entry(1, EntryKind::Report, "failed"),
            doc: Doc::Report(Box::new(crate::report::golden_tests::fixed())),
        };
        let sign_off = SignOff { report_id: "0123456789ab".into(), reviewer: "auditor@example".into() };
        let signed = Row { entry: entry(2, EntryKind::SignOff, "approved"), doc: Doc::SignOff(sign_off) };
        let store = Store::from_rows(vec![report, signed]);
        let drill = "name: orders-pitr\nrestore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                     objectives: { rto: 1h, rpo: 5m }\nverify:\n  - amcheck: {}\ncontrols: [SOC2-A1.3]\n\
                     schedule: { cron: \"0 3 * * *\", timezone: UTC }\n";
        let spec = crate::config::parse_drill(drill, std::path::Path::new("drills/orders-pitr.yaml")).expect("valid");
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).single().expect("a time");
        let matrix = matrix(&store, &[spec], now, None);
        insta::assert_snapshot!("controls_markdown", markdown("reports", &matrix, true, true));
        assert!(markdown("reports", &matrix, true, false).contains("Anchor: none. This store is local"));
    }

    /// Demo runs evidence no control: a demo pass neither appears in the matrix nor fills a cadence.
    #[test]
    fn demo_runs_never_count() {
        let mut demo = crate::report::golden_tests::fixed();
        demo.trigger = "demo".into();
        demo.result = crate::report::Verdict::Passed;
        demo.id = "dddddddddddd".into();
        let row = Row { entry: entry(1, EntryKind::Report, "passed"), doc: Doc::Report(Box::new(demo)) };
        let store = Store::from_rows(vec![row]);
        let m = matrix(&store, &[], Utc::now(), None);
        assert!(m.is_empty(), "a demo run is in the matrix: {}", markdown("r", &m, true, true));
    }

    /// Cadences in words, as `runbook check` prints them (not `2months 29days 2h 52m 48s`).
    #[test]
    fn cadences_are_said_in_round_units() {
        let d = |s: i64| chrono::Duration::seconds(s);
        assert_eq!(every(d(2 * 2_629_746 + 29 * 86400 + 2 * 3600 + 52 * 60 + 48)), "every 3 months");
        assert_eq!(every(d(90 * 86400)), "every 3 months");
        assert_eq!(every(d(86400)), "every day");
        assert_eq!(every(d(7 * 86400)), "every week");
        assert_eq!(every(d(14 * 86400)), "every 2 weeks");
        assert_eq!(every(d(3 * 86400)), "every 3 days");
        assert_eq!(every(d(45 * 86400)), "every 45 days");
        assert_eq!(every(d(365 * 86400)), "every year");
        assert_eq!(every(d(31 * 86400)), "every month");
        assert_eq!(every(d(6 * 3600)), "every 6 hours");
        assert_eq!(every(d(15 * 60)), "every 15 minutes");
    }

    /// Every time in the matrix reads as the reports and every other view write it.
    #[test]
    fn matrix_times_read_as_every_other_view() {
        let report = Row {
            entry: entry(1, EntryKind::Report, "failed"),
            doc: Doc::Report(Box::new(crate::report::golden_tests::fixed())),
        };
        let m = matrix(&Store::from_rows(vec![report]), &[], Utc::now(), None);
        assert_eq!(m[0].runs[0].started_at.as_deref(), Some("2026-11-30 03:00:00 UTC"));
    }
}
