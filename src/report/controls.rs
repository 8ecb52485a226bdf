//! What the store evidences per control and per runbook: the controls matrix (`report controls`: per
//! control, every run that evidences it — result, RTO, RPO, signature, chain, sign-off — and every scheduled
//! period without a passed run) and the `runbook check` findings.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::period::{Outcome, Period};
use super::trust::{Role, SigState};
use super::view::{Row, Store, json_time};
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
    for r in store.reports().filter(|r| !r.is_demo() && in_period(r.started_at())) {
        let Some(d) = r.report() else { continue };
        let met = |v: Option<f64>, met: bool| match (v, met) {
            (None, _) => "not measured".to_string(),
            (Some(v), true) => format!("{} met", crate::config::human_seconds(v)),
            (Some(v), false) => format!("{} MISSED", crate::config::human_seconds(v)),
        };
        let run = |r: &Row| ControlRun {
            drill: r.entry.drill.clone(),
            id: r.entry.id.clone(),
            started_at: Some(json_time(d.started_at)),
            result: d.result.as_str().into(),
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
    // A period between two scheduled occurrences without a passed run is a missed cadence, from the
    // drill's first report until now (within `period`, when one is given): the occurrences of the period
    // figures that closed without a pass.
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
    by_control.into_values().collect()
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
                r.drill,
                r.id,
                r.started_at.as_deref().unwrap_or("-"),
                r.result,
                r.rto,
                r.rpo,
                r.signature,
                r.chain,
                r.sign_off.as_deref().unwrap_or("—")
            );
        }
        for m in &c.missed {
            let _ = writeln!(
                o,
                "| {} | — | {} → {} | **missed cadence** | | | | | |",
                m.drill,
                m.from.format("%Y-%m-%d %H:%M"),
                m.to.format("%Y-%m-%d %H:%M")
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
                    None => format!(
                        "no passed run in `{}`; scheduled every {}",
                        store_name,
                        humantime::format_duration(gap.to_std().unwrap_or_default())
                    ),
                    Some(t) => format!(
                        "last passed {t}; scheduled every {}",
                        humantime::format_duration(gap.to_std().unwrap_or_default())
                    ),
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
}
