//! What a drill's end looks like to people: the verdict line, the fleet scorecard, and the reporter that
//! prints them (or the reports as JSON) once the fleet is done.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use super::Printer;
use crate::config::human_seconds;
use crate::drill::events::{Event, EventSink};
use crate::drill::fleet::{Ended, Finished, Reporter, Stats};
use crate::report::model::CheckStatus;
use crate::report::{Report, Written};

/// The verdict of one drill for stdout: one line, then its reason, its report and how it was signed.
pub(crate) fn summary(r: &Report, written: Option<&Written>) -> String {
    let m = &r.measured;
    let fmt = |v: Option<f64>| v.map(human_seconds).unwrap_or_else(|| "-".into());
    let passed = r.checks.iter().filter(|c| c.status == CheckStatus::Passed).count();
    let mut s = format!(
        "{}: {}  RTO {} (objective {}{})  RPO {} (objective {}{})  checks {passed}/{} passed",
        r.drill,
        r.result.as_str().to_uppercase(),
        fmt(m.rto_seconds),
        human_seconds(r.objectives.rto_seconds),
        if m.rto_met { ", met" } else { ", missed" },
        fmt(m.rpo_seconds),
        human_seconds(r.objectives.rpo_seconds),
        if m.rpo_met { ", met" } else { ", missed" },
        r.checks.len()
    );
    if let Some(reason) = &r.reason {
        s.push_str(&format!("\n  reason: {reason}"));
    }
    for a in &r.also_restored {
        let count = a.objects.map(|n| format!(", {n} objects")).unwrap_or_default();
        let rto = a.rto_seconds.map(|t| format!(" in {}", human_seconds(t))).unwrap_or_default();
        s.push_str(&format!("\n  also restored: {} {}{count}{rto}", a.name, a.status.as_str()));
    }
    if let Some(w) = written {
        s.push_str(&format!("\n  report: {} (also {})", w.markdown.display(), w.html.display()));
        match &r.signing {
            Some(k) => s.push_str(&format!(
                "\n  signed: {} key {}, chained after {}",
                k.algorithm,
                k.fingerprint,
                r.previous_sha256
                    .as_deref()
                    .map(crate::report::chain::short_hash)
                    .unwrap_or("nothing (first in the store)")
            )),
            None => s.push_str("\n  unsigned: create a key with `stackdrill keys generate` to sign reports"),
        }
    }
    s
}

/// One scorecard row: drill, result, restore time (restore + ready phases), RTO, RPO, report (or error).
fn scorecard_row(r: &Report, report: Result<String, &dyn std::fmt::Display>) -> [String; 6] {
    let m = &r.measured;
    let restore = r.restore_seconds();
    let objective = |v: Option<f64>, met: bool, obj: f64| match v {
        None => format!("- (objective {})", human_seconds(obj)),
        Some(v) => format!("{} {} ({})", if met { "met" } else { "MISSED" }, human_seconds(v), human_seconds(obj)),
    };
    [
        r.drill.clone(),
        r.result.as_str().to_uppercase(),
        if restore > 0.0 { human_seconds(restore) } else { "-".into() },
        objective(m.rto_seconds, m.rto_met, r.objectives.rto_seconds),
        objective(m.rpo_seconds, m.rpo_met, r.objectives.rpo_seconds),
        report.unwrap_or_else(|e| format!("NOT WRITTEN: {e}")),
    ]
}

/// The scorecard after a fleet run: one aligned row per drill, then the totals.
fn scorecard(rows: &[[String; 6]], stats: &Stats) -> String {
    let head = ["DRILL", "RESULT", "RESTORE", "RTO (objective)", "RPO (objective)", "REPORT"];
    let body: Vec<Vec<String>> = rows.iter().map(|r| r.to_vec()).collect();
    format!(
        "\n{}\n{} drill(s): {} passed, {} failed, {} error, {} could not run",
        super::table(&head, &body),
        rows.len(),
        stats.passed,
        stats.failed,
        stats.error,
        stats.could_not_run + stats.not_started
    )
}

/// What one drill leaves for the summary, kept until the fleet is done.
struct Row {
    index: usize,
    /// Lines for stderr, before the verdict.
    errors: Vec<String>,
    verdict: Option<String>,
    /// The verdict word in the verdict line (`PASSED`, `FAILED`), coloured on a terminal.
    word: String,
    card: [String; 6],
    /// What `--output json` lists: the report, or why the drill could not run.
    json: serde_json::Value,
}

/// A drill without a report, as `--output json` lists it beside the reports.
fn could_not_run(drill: &str, error: &str, hint: Option<String>) -> serde_json::Value {
    serde_json::json!({
        "schema": "stackdrill.could-not-run/v1",
        "drill": drill,
        "result": "could-not-run",
        "error": error,
        "hint": hint,
    })
}

/// `drill run`'s output: per drill (in command-line order) its errors on stderr and its verdict on
/// stdout, then the scorecard when there was more than one; with `--output json`, an array of the reports
/// and, for each drill that could not run, a `stackdrill.could-not-run/v1` record saying why.
pub(crate) struct Summary {
    printer: Printer,
    rows: Mutex<Vec<Row>>,
}

impl Summary {
    pub(crate) fn new(printer: Printer) -> Arc<Summary> {
        Arc::new(Summary { printer, rows: Mutex::new(Vec::new()) })
    }
}

fn row(f: &Finished) -> Row {
    let name = f.drill();
    let none = |why: String| [name.to_string(), "COULD NOT RUN".into(), "-".into(), "-".into(), "-".into(), why];
    match &f.ended {
        Ended::Ran { report, written } => {
            let md = written.as_ref().map(|w| w.markdown.display().to_string());
            let mut errors = match written {
                Ok(_) => vec![],
                Err(e) => vec![format!("error: [{name}] {e}")],
            };
            // A drill that ended in an error says what to do about it (a denied action, an unreachable scratch).
            if report.result == crate::report::Verdict::Error
                && let Some(h) = &report.hint
            {
                errors.push(format!("  hint: [{name}] {h}"));
            }
            Row {
                index: f.index,
                errors,
                verdict: Some(summary(report, written.as_ref().ok())),
                word: report.result.as_str().to_uppercase(),
                card: scorecard_row(report, md.map_err(|e| e as &dyn std::fmt::Display)),
                json: serde_json::to_value(&**report).unwrap_or_default(),
            }
        }
        Ended::CouldNotRun(e) => {
            let mut errors = vec![format!("error: drill `{name}` could not run: {e}")];
            errors.extend(e.hint().map(|h| format!("  hint: {h}")));
            let json = could_not_run(name, &e.to_string(), e.hint());
            Row { index: f.index, errors, verdict: None, word: String::new(), card: none(e.to_string()), json }
        }
        Ended::NotStarted => {
            let why = "stopped before it started".to_string();
            let errors = vec![format!("error: drill `{name}` could not run: {why}")];
            let json = could_not_run(name, &why, None);
            Row { index: f.index, errors, verdict: None, word: String::new(), card: none(why), json }
        }
    }
}

impl Reporter for Summary {
    fn finished<'a>(&'a self, f: &'a Finished) -> BoxFuture<'a, ()> {
        let r = row(f);
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).push(r);
        Box::pin(async {})
    }

    fn done(&self, stats: &Stats) {
        let mut rows = std::mem::take(&mut *self.rows.lock().unwrap_or_else(|p| p.into_inner()));
        rows.sort_by_key(|r| r.index);
        let json = self.printer.is_json();
        for r in &rows {
            for e in &r.errors {
                crate::ui::diag!("{e}");
            }
            if let (Some(v), false) = (&r.verdict, json) {
                self.printer.line_marked(v, &r.word);
            }
        }
        if json {
            let listed: Vec<&serde_json::Value> = rows.iter().map(|r| &r.json).collect();
            self.printer.json(&listed);
        } else if rows.len() > 1 {
            let cards: Vec<[String; 6]> = rows.into_iter().map(|r| r.card).collect();
            self.printer.line(scorecard(&cards, stats));
        }
    }
}

/// Drill progress as the events come: spinners on a terminal, plain lines otherwise, log records for
/// the scheduler (see `progress.rs`).
pub(crate) struct Progress(pub(crate) EventSink);

impl Reporter for Progress {
    fn event(&self, e: &Event) {
        self.0.emit(e.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Verdict;

    fn written() -> Written {
        Written { json: "reports/r.json".into(), markdown: "reports/r.md".into(), html: "reports/r.html".into() }
    }

    /// The verdict lines people and CI logs read, pinned (failed and signed; passed and unsigned).
    #[test]
    fn verdict_lines_snapshot() {
        let failed = crate::report::golden_tests::fixed();
        let mut passed = failed.clone();
        passed.result = Verdict::Passed;
        passed.reason = None;
        passed.signing = None;
        let text = format!(
            "{}\n{}\n{}",
            summary(&failed, Some(&written())),
            summary(&passed, Some(&written())),
            summary(&passed, None)
        );
        insta::assert_snapshot!("verdict_lines", text);
    }

    /// The fleet scorecard, pinned: a failed drill, a passed one whose report was not written, one that could
    /// not run.
    #[test]
    fn scorecard_snapshot() {
        let failed = crate::report::golden_tests::fixed();
        let mut passed = failed.clone();
        passed.drill = "billing".into();
        passed.result = Verdict::Passed;
        let not_written = "disk full".to_string();
        let rows = [
            scorecard_row(&failed, Ok("reports/r.md".into())),
            scorecard_row(&passed, Err(&not_written)),
            [
                "ledger".into(),
                "COULD NOT RUN".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "no drill named `ledger`".into(),
            ],
        ];
        let stats = Stats { passed: 1, failed: 1, could_not_run: 1, ..Stats::default() };
        insta::assert_snapshot!("scorecard", scorecard(&rows, &stats));
    }
}
