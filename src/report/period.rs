//! What the store evidences over a period (SOC 2 Type II asks how controls operated over one): per drill,
//! every scheduled occurrence in the period as passed, failed, missed or still open, the share of
//! occurrences with a passed run, median and worst RTO and RPO, and objective misses. `report controls
//! --since/--until` prints it; the evidence pack's index is built from it.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::view::{Row, Store};
use crate::config::DrillSpec;

/// `[since, until)`.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Period {
    pub(crate) since: DateTime<Utc>,
    pub(crate) until: DateTime<Utc>,
}

impl Period {
    pub(crate) fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.since && t < self.until
    }
}

/// A `--since`/`--until` value that is neither a date nor an RFC 3339 time.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is neither a date (2026-11-01) nor an RFC 3339 time (2026-11-01T00:00:00Z)")]
pub(crate) struct BadBound(String);

/// A `--since`/`--until` value: a date (`2026-11-01`, UTC; as `--until` the whole day is included) or an
/// RFC 3339 time.
pub(crate) fn parse_bound(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, BadBound> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_utc());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| BadBound(s.to_string()))?;
    let d = if end_of_day { d.succ_opt().unwrap_or(d) } else { d };
    Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// How one scheduled occurrence went: judged by the runs started between it and the next occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    Passed,
    Failed,
    Missed,
    /// The window is still open and has no passed run yet.
    Open,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Missed => "missed",
            Outcome::Open => "open",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Occurrence {
    pub(crate) at: DateTime<Utc>,
    /// The next occurrence: the run for this one starts before it.
    pub(crate) until: DateTime<Utc>,
    pub(crate) outcome: Outcome,
    /// The run that decided it (the passed one, else the last failed one).
    pub(crate) report: Option<String>,
}

/// Median and worst of a measure over the period's runs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Spread {
    pub(crate) median: Option<f64>,
    pub(crate) worst: Option<f64>,
    /// Runs whose measured figure missed the objective.
    pub(crate) misses: usize,
    /// Runs without the figure (interrupted, or stopped before it could be measured): not misses, as the
    /// controls matrix says "not measured" for them.
    pub(crate) not_measured: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DrillFigures {
    pub(crate) drill: String,
    pub(crate) controls: Vec<String>,
    pub(crate) runs: usize,
    pub(crate) passed_runs: usize,
    pub(crate) scheduled: usize,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) missed: usize,
    pub(crate) open: usize,
    /// Of the decided occurrences (not open), the share with a passed run.
    pub(crate) share_passed: Option<f64>,
    pub(crate) rto: Spread,
    pub(crate) rpo: Spread,
    pub(crate) objectives: Option<(f64, f64)>,
    pub(crate) occurrences: Vec<Occurrence>,
}

fn spread(values: &[(Option<f64>, bool)]) -> Spread {
    let mut v: Vec<f64> = values.iter().filter_map(|(v, _)| *v).collect();
    v.sort_by(f64::total_cmp);
    let median = match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    };
    Spread {
        median,
        worst: v.last().copied(),
        misses: values.iter().filter(|(v, met)| v.is_some() && !met).count(),
        not_measured: values.iter().filter(|(v, _)| v.is_none()).count(),
    }
}

/// The scheduled occurrences of `spec` in `period` and how each went, as of `now`.
pub(crate) fn occurrences(spec: &DrillSpec, runs: &[&Row], period: Period, now: DateTime<Utc>) -> Vec<Occurrence> {
    let Some(sched) = &spec.schedule else { return vec![] };
    let mut at = crate::cadence::occurrences(sched, period.since - Duration::seconds(1), period.until, 100_000);
    at.retain(|t| period.contains(*t));
    at.iter()
        .map(|&t| {
            let until = crate::cadence::occurrences(sched, t, t + Duration::days(3660), 1)
                .first()
                .copied()
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let inside: Vec<&&Row> =
                runs.iter().filter(|r| r.started_at().is_some_and(|s| s >= t && s < until)).collect();
            let pass = inside.iter().find(|r| r.passed());
            let (outcome, report) = match (pass, inside.last()) {
                (Some(p), _) => (Outcome::Passed, Some(p.entry.id.clone())),
                (None, _) if until > now => (Outcome::Open, inside.last().map(|r| r.entry.id.clone())),
                (None, Some(f)) => (Outcome::Failed, Some(f.entry.id.clone())),
                (None, None) => (Outcome::Missed, None),
            };
            Occurrence { at: t, until, outcome, report }
        })
        .collect()
}

/// Per drill (each drill file, then drills only the store knows), its figures over `period` as of `now`.
/// Demo runs count for nothing.
pub(crate) fn figures(store: &Store, specs: &[DrillSpec], period: Period, now: DateTime<Utc>) -> Vec<DrillFigures> {
    let mut names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    for r in store.reports() {
        if !names.contains(&r.entry.drill) && !r.is_demo() {
            names.push(r.entry.drill.clone());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let spec = specs.iter().find(|s| s.name == name);
            let runs: Vec<&Row> = store
                .history(&name)
                .filter(|r| !r.is_demo() && r.started_at().is_some_and(|t| period.contains(t)))
                .collect();
            let occ = spec.map(|s| occurrences(s, &runs, period, now)).unwrap_or_default();
            let count = |o: Outcome| occ.iter().filter(|x| x.outcome == o).count();
            let (passed, failed, missed, open) =
                (count(Outcome::Passed), count(Outcome::Failed), count(Outcome::Missed), count(Outcome::Open));
            let decided = passed + failed + missed;
            let reports: Vec<&crate::report::Report> = runs.iter().filter_map(|r| r.report()).collect();
            let controls = match spec {
                Some(s) => s.controls.clone(),
                None => reports.last().map(|r| r.controls.iter().map(|c| c.to_string()).collect()).unwrap_or_default(),
            };
            DrillFigures {
                drill: name.clone(),
                controls,
                runs: runs.len(),
                passed_runs: runs.iter().filter(|r| r.passed()).count(),
                scheduled: occ.len(),
                passed,
                failed,
                missed,
                open,
                share_passed: (decided > 0).then(|| passed as f64 / decided as f64),
                rto: spread(&reports.iter().map(|r| (r.measured.rto_seconds, r.measured.rto_met)).collect::<Vec<_>>()),
                rpo: spread(&reports.iter().map(|r| (r.measured.rpo_seconds, r.measured.rpo_met)).collect::<Vec<_>>()),
                objectives: reports.last().map(|r| (r.objectives.rto_seconds, r.objectives.rpo_seconds)),
                occurrences: occ,
            }
        })
        .filter(|f| f.runs > 0 || f.scheduled > 0)
        .collect()
}

/// The figures as a Markdown table, one row per drill.
pub(crate) fn markdown(period: Period, drills: &[DrillFigures]) -> String {
    use std::fmt::Write;
    let secs = |v: Option<f64>| v.map(crate::config::human_seconds).unwrap_or_else(|| "-".into());
    let mut o = format!(
        "## Period {} → {}\n\n| drill | scheduled | passed | failed | missed | open | share passed | RTO median | RTO worst | RPO median | RPO worst | objective misses (RTO / RPO) | not measured (RTO / RPO) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        period.since.format("%Y-%m-%d %H:%M:%SZ"),
        period.until.format("%Y-%m-%d %H:%M:%SZ")
    );
    for d in drills {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} |",
            d.drill,
            d.scheduled,
            d.passed,
            d.failed,
            d.missed,
            d.open,
            d.share_passed.map(|s| format!("{:.1}%", s * 100.0)).unwrap_or_else(|| "-".into()),
            secs(d.rto.median),
            secs(d.rto.worst),
            secs(d.rpo.median),
            secs(d.rpo.worst),
            d.rto.misses,
            d.rpo.misses,
            d.rto.not_measured,
            d.rpo.not_measured
        );
    }
    if drills.is_empty() {
        o.push_str("\n(no runs and no scheduled occurrences in the period)\n");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::chain::{Entry, EntryKind};
    use crate::report::view::{Doc, Row};

    fn run(seq: u64, day: u32, hour: u32, passed: bool, rto: f64) -> Row {
        let mut r = crate::report::golden_tests::fixed();
        r.id = format!("run{seq:03}");
        r.drill = "orders-pitr".into();
        r.trigger = "schedule".into();
        r.started_at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, day, hour, 0, 5).single().unwrap();
        r.result = if passed { crate::report::Verdict::Passed } else { crate::report::Verdict::Failed };
        r.measured.rto_seconds = Some(rto);
        r.measured.rto_met = rto <= r.objectives.rto_seconds;
        let entry = Entry {
            seq,
            kind: EntryKind::Report,
            id: r.id.clone(),
            drill: r.drill.clone(),
            result: r.result.as_str().into(),
            file: format!("{seq}.json"),
            sha256: "0".repeat(64),
            previous: None,
            at: "2026-11-01T00:00:00Z".into(),
            key_id: None,
        };
        Row { entry, doc: Doc::Report(Box::new(r)) }
    }

    /// 30 daily occurrences: 27 passed (one after a failed retry), 2 failed, 1 missed; the figures say so,
    /// and the RTO spread and misses come from the period's runs only.
    #[test]
    fn thirty_daily_drills_with_two_failed_and_one_missed_give_27_2_1() {
        let mut rows = Vec::new();
        let mut seq = 0;
        for day in 1..=30 {
            if day == 17 {
                continue; // missed
            }
            seq += 1;
            let failed = day == 5 || day == 22;
            rows.push(run(seq, day, 3, !failed && day != 9, 60.0 + f64::from(day)));
            if day == 9 {
                // a failed first try, then a pass inside the same window
                seq += 1;
                rows.push(run(seq, day, 9, true, 4000.0));
            }
        }
        // Outside the period: never counted.
        seq += 1;
        rows.push(run(seq, 1, 1, false, 9.0));
        let store = Store::from_rows(rows);
        let drill = "name: orders-pitr\nrestore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                     objectives: { rto: 1h, rpo: 5m }\nverify:\n  - amcheck: {}\ncontrols: [SOC2-A1.3]\n\
                     schedule: { cron: \"0 3 * * *\", timezone: UTC }\n";
        let spec = crate::config::parse_drill(drill, std::path::Path::new("drills/orders-pitr.yaml")).unwrap();
        let period = Period {
            since: parse_bound("2026-11-01T03:00:00Z", false).unwrap(),
            until: parse_bound("2026-11-30", true).unwrap(),
        };
        let now = parse_bound("2026-12-05", false).unwrap();
        let f = figures(&store, &[spec], period, now);
        assert_eq!(f.len(), 1);
        let d = &f[0];
        assert_eq!((d.scheduled, d.passed, d.failed, d.missed, d.open), (30, 27, 2, 1, 0));
        assert_eq!(d.runs, 30);
        assert!((d.share_passed.unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(d.rto.worst, Some(4000.0));
        assert_eq!(d.rto.misses, 1, "the one run over the 1h objective");
        assert_eq!(d.rto.not_measured, 0);
        assert_eq!(d.controls, ["SOC2-A1.3"]);
        let missed: Vec<_> = d.occurrences.iter().filter(|o| o.outcome == Outcome::Missed).collect();
        assert_eq!(missed[0].at.format("%d").to_string(), "17");
        let md = markdown(period, &f);
        assert!(md.contains("| orders-pitr | 30 | 27 | 2 | 1 | 0 | 90.0% |"), "{md}");

        // A drill without a drill file: its runs count, no occurrences.
        let unscheduled = figures(&store, &[], period, now);
        assert_eq!((unscheduled[0].scheduled, unscheduled[0].runs), (0, 30));
    }

    #[test]
    fn bounds_are_dates_or_times_and_a_bad_one_is_named() {
        assert_eq!(parse_bound("2026-11-30", true).unwrap().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(parse_bound("2026-11-30", false).unwrap().to_rfc3339(), "2026-11-30T00:00:00+00:00");
        assert_eq!(parse_bound("2026-11-30T08:00:00+08:00", true).unwrap().to_rfc3339(), "2026-11-30T00:00:00+00:00");
        assert!(parse_bound("30/11/2026", false).unwrap_err().to_string().contains("`30/11/2026`"));
    }

    /// An interrupted run has no RTO: the matrix says "not measured", and the period figures count it as
    /// not measured, not as an objective miss.
    #[test]
    fn an_interrupted_run_is_not_measured_not_a_miss() {
        let mut interrupted = run(2, 2, 3, false, 0.0);
        if let Doc::Report(r) = &mut interrupted.doc {
            r.interrupted = true;
            r.result = crate::report::Verdict::Error;
            r.measured.rto_seconds = None;
            r.measured.rto_met = false;
            r.measured.rpo_seconds = None;
            r.measured.rpo_met = false;
        }
        let store = Store::from_rows(vec![run(1, 1, 3, true, 60.0), interrupted]);
        let period = Period {
            since: parse_bound("2026-11-01", false).unwrap(),
            until: parse_bound("2026-11-30", true).unwrap(),
        };
        let f = figures(&store, &[], period, parse_bound("2026-12-05", false).unwrap());
        let d = &f[0];
        assert_eq!((d.rto.misses, d.rto.not_measured), (0, 1), "{:?}", d.rto);
        assert_eq!((d.rpo.misses, d.rpo.not_measured), (0, 1), "{:?}", d.rpo);
        assert!(markdown(period, &f).contains("| 0 / 0 | 1 / 1 |"), "{}", markdown(period, &f));
    }
}
