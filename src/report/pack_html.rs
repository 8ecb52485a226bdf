//! The evidence pack's `index.html`: one self-contained page (no external assets; every link is a file of
//! the pack) with the period, each control and its drills, every scheduled occurrence as passed / failed /
//! missed / open, RTO and RPO charts per drill against the objective, sign-offs, and deviations with their
//! remediation.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::html::{ChartPoint, esc};
use super::model::SigningRecord;
use super::period::{DrillFigures, Period};
use super::view::{Row, Store};
use crate::config::human_seconds;

pub(crate) struct Index<'a> {
    pub(crate) store: &'a str,
    pub(crate) store_rows: &'a Store,
    pub(crate) period: Period,
    pub(crate) figures: &'a [DrillFigures],
    pub(crate) entries: (u64, u64),
    pub(crate) before: Option<String>,
    pub(crate) keys: &'a [String],
    pub(crate) signer: SigningRecord,
    pub(crate) created_at: DateTime<Utc>,
    /// The backup-posture control over the period, when the store holds posture records.
    pub(crate) posture: Option<&'a super::posture_calendar::PostureControl>,
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#1b1f24}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de}h3{font-size:1.05em}\
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.3em .55em;text-align:left;vertical-align:top}\
th{background:#f6f8fa}.passed{color:#1a7f37;font-weight:600}.failed,.missed{color:#cf222e;font-weight:600}\
.open{color:#57606a}.muted{color:#57606a;font-size:.9em}code{font-size:.9em}\
table.cal{width:auto}table.cal td{width:2.6em;height:2.2em;text-align:center;font-size:.8em}\
td.met{background:#dafbe1}td.not-met{background:#ffebe9;font-weight:600}td.not-observed{background:#eaeef2;color:#57606a}";

use super::html::when as time;

fn secs(v: Option<f64>) -> String {
    v.map(human_seconds).unwrap_or_else(|| "—".into())
}

/// The pack-relative link to a report's HTML.
fn report_link(store: &Store, id: &str) -> Option<String> {
    store
        .reports()
        .find(|r| r.entry.id == id)
        .map(|r| format!("reports/{}.html", r.entry.file.trim_end_matches(".json")))
}

pub(crate) fn index(ix: &Index) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width\"/>\
         <title>Evidence pack — restore drills {} → {}</title><style>{STYLE}</style></head><body>",
        ix.period.since.format("%Y-%m-%d"),
        ix.period.until.format("%Y-%m-%d")
    );
    summary(&mut o, ix);
    controls(&mut o, ix);
    if let Some(c) = ix.posture {
        posture(&mut o, c);
    }
    for f in ix.figures {
        drill(&mut o, ix, f);
    }
    sign_offs(&mut o, ix);
    deviations(&mut o, ix);
    let _ = writeln!(
        o,
        "<p class=\"muted\">Made by stackdrill {} at {}.</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        time(ix.created_at)
    );
    o
}

fn summary(o: &mut String, ix: &Index) {
    let _ = writeln!(
        o,
        "<h1>Evidence pack: restore drills</h1>\n<table>\
         <tr><th>period</th><td id=\"period\">{} → {}</td></tr>\
         <tr><th>report store</th><td><code>{}</code></td></tr>\
         <tr><th>ledger entries</th><td>{} to {} (<a href=\"reports/ledger.jsonl\">the ledger slice</a>); {}</td></tr>\
         <tr><th>pack signed by</th><td>{} key <code>{}</code> (<a href=\"MANIFEST.json\">manifest</a>)</td></tr>\
         <tr><th>public keys</th><td>{}</td></tr>\
         <tr><th>how to check it</th><td><a href=\"VERIFY.md\">VERIFY.md</a>: openssl and securesystemslib commands, or <code>stackdrill report verify --pack</code></td></tr></table>",
        time(ix.period.since),
        time(ix.period.until),
        esc(ix.store),
        ix.entries.0,
        ix.entries.1,
        match &ix.before {
            Some(h) => format!(
                "the first links to the entry before the period, sha256 <code>{}</code>",
                esc(super::chain::short_hash(h))
            ),
            None => "the first is the store's first entry".into(),
        },
        esc(&ix.signer.algorithm),
        esc(&ix.signer.fingerprint),
        ix.keys.iter().map(|k| format!("<a href=\"keys/{0}.pub\">{0}</a>", esc(k))).collect::<Vec<_>>().join(", ")
    );
}

/// The backup-posture control: per store its period figures, a calendar (a row per week, Monday first;
/// each day's cell met, not met or not observed, its title naming what failed), then each day not met.
fn posture(o: &mut String, c: &super::posture_calendar::PostureControl) {
    use super::posture_calendar::DayState;
    use chrono::Datelike;
    let _ = writeln!(
        o,
        "<h2 id=\"backup-posture\">{} ({})</h2><p class=\"muted\">From the signed backup-posture records \
         (<code>stackdrill backups check</code>), one cell per day (UTC), {} to {}.</p>",
        esc(&c.control),
        esc(&c.frameworks),
        c.since,
        c.until
    );
    for s in &c.stores {
        let _ = writeln!(
            o,
            "<h3 id=\"posture-{0}\">{0} ({1})</h3><p class=\"figures\">{2}</p>",
            esc(&s.store),
            esc(&s.kind),
            esc(&super::posture_calendar::figures(s))
        );
        o.push_str("<table class=\"cal\"><tr><th>Mon</th><th>Tue</th><th>Wed</th><th>Thu</th><th>Fri</th><th>Sat</th><th>Sun</th></tr><tr>");
        let lead = s.days.first().map_or(0, |d| d.date.weekday().num_days_from_monday());
        for _ in 0..lead {
            o.push_str("<td></td>");
        }
        for d in &s.days {
            if d.date.weekday().num_days_from_monday() == 0 && d.date != s.days[0].date {
                o.push_str("</tr><tr>");
            }
            let (class, mark) = match d.state {
                DayState::Met => ("met", "✓"),
                DayState::NotMet => ("not-met", "✗"),
                DayState::NotObserved => ("not-observed", "·"),
            };
            let title = match &d.detail {
                Some(why) => format!("{}: {} — {}", d.date, d.state.as_str(), why),
                None => format!("{}: {}", d.date, d.state.as_str()),
            };
            let _ = write!(
                o,
                "<td class=\"{class}\" data-date=\"{}\" title=\"{}\">{}<br/>{mark}</td>",
                d.date,
                esc(&title),
                d.date.day()
            );
        }
        o.push_str("</tr></table>\n");
        let failed: Vec<String> = s
            .days
            .iter()
            .filter(|d| d.state == DayState::NotMet)
            .map(|d| format!("<li>{}: {}</li>", d.date, esc(d.detail.as_deref().unwrap_or("not met"))))
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(o, "<p>Days not met:</p><ul>{}</ul>", failed.join(""));
        }
    }
}

fn controls(o: &mut String, ix: &Index) {
    let mut by: std::collections::BTreeMap<&str, Vec<&DrillFigures>> = std::collections::BTreeMap::new();
    for f in ix.figures {
        for c in &f.controls {
            by.entry(c.as_str()).or_default().push(f);
        }
    }
    o.push_str("<h2>Controls</h2><table><tr><th>control</th><th>drills (occurrences passed / scheduled)</th></tr>");
    for (c, fs) in &by {
        let drills: Vec<String> = fs
            .iter()
            .map(|f| format!("<a href=\"#drill-{0}\">{0}</a> ({1} / {2})", esc(&f.drill), f.passed, f.scheduled))
            .collect();
        let _ = write!(o, "<tr><td>{}</td><td>{}</td></tr>", esc(c), drills.join(", "));
    }
    if by.is_empty() {
        o.push_str("<tr><td colspan=\"2\" class=\"muted\">no drill in the pack names a control</td></tr>");
    }
    o.push_str("</table>\n");
}

/// Objective misses, and the runs without the figure beside them (not counted as misses).
fn misses(s: &super::period::Spread) -> String {
    match s.not_measured {
        0 => s.misses.to_string(),
        n => format!("{} ({n} not measured)", s.misses),
    }
}

fn drill(o: &mut String, ix: &Index, f: &DrillFigures) {
    let objective = |i: usize| f.objectives.map(|o| if i == 0 { o.0 } else { o.1 });
    let _ = writeln!(
        o,
        "<h2 id=\"drill-{0}\">Drill <code>{0}</code></h2><table class=\"figures\"><tr><th>scheduled</th><th>passed</th><th>failed</th><th>missed</th><th>open</th><th>share passed</th><th>runs (passed)</th></tr>\
         <tr><td>{1}</td><td class=\"passed\">{2}</td><td class=\"failed\">{3}</td><td class=\"missed\">{4}</td><td>{5}</td><td>{6}</td><td>{7} ({8})</td></tr></table>\
         <table><tr><th></th><th>median</th><th>worst</th><th>objective</th><th>misses</th></tr>\
         <tr><th>RTO</th><td>{9}</td><td>{10}</td><td>{11}</td><td>{12}</td></tr><tr><th>RPO</th><td>{13}</td><td>{14}</td><td>{15}</td><td>{16}</td></tr></table>",
        esc(&f.drill),
        f.scheduled,
        f.passed,
        f.failed,
        f.missed,
        f.open,
        f.share_passed.map(|s| format!("{:.1}%", s * 100.0)).unwrap_or_else(|| "—".into()),
        f.runs,
        f.passed_runs,
        secs(f.rto.median),
        secs(f.rto.worst),
        secs(objective(0)),
        misses(&f.rto),
        secs(f.rpo.median),
        secs(f.rpo.worst),
        secs(objective(1)),
        misses(&f.rpo)
    );
    let runs: Vec<&Row> = ix
        .store_rows
        .history(&f.drill)
        .filter(|r| !r.is_demo() && r.started_at().is_some_and(|t| ix.period.contains(t)))
        .collect();
    let series = |pick: fn(&crate::report::Report) -> Option<f64>| -> Vec<(DateTime<Utc>, f64, bool)> {
        runs.iter().filter_map(|r| Some((r.started_at()?, pick(r.report()?)?, r.passed()))).collect()
    };
    let _ = writeln!(
        o,
        "<h3>RTO per run</h3>{}<h3>RPO per run</h3>{}",
        chart("RTO", &series(|r| r.measured.rto_seconds), objective(0)),
        chart("RPO", &series(|r| r.measured.rpo_seconds), objective(1))
    );
    if !f.occurrences.is_empty() {
        o.push_str("<h3>Scheduled occurrences</h3><table class=\"occurrences\"><tr><th>scheduled for</th><th>run due before</th><th>outcome</th><th>report</th></tr>");
        for oc in &f.occurrences {
            let link = oc.report.as_deref().and_then(|id| Some((id, report_link(ix.store_rows, id)?)));
            let _ = write!(
                o,
                "<tr class=\"occurrence\" data-outcome=\"{0}\"><td>{1}</td><td>{2}</td><td class=\"{0}\">{0}</td><td>{3}</td></tr>",
                oc.outcome.as_str(),
                time(oc.at),
                time(oc.until),
                link.map(|(id, href)| format!("<a href=\"{}\">{}</a>", esc(&href), esc(id)))
                    .unwrap_or_else(|| "—".into())
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("<h3>Runs</h3><table><tr><th>started</th><th>result</th><th>RTO</th><th>RPO</th><th>signature</th><th>report</th></tr>");
    for r in &runs {
        let Some(d) = r.report() else { continue };
        let href = format!("reports/{}.html", r.entry.file.trim_end_matches(".json"));
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a></td></tr>",
            time(d.started_at),
            if r.passed() { "passed" } else { "failed" },
            d.result.as_str(),
            secs(d.measured.rto_seconds),
            secs(d.measured.rpo_seconds),
            esc(&ix.store_rows.state(r.entry.seq).label()),
            esc(&href),
            esc(&d.id)
        );
    }
    o.push_str("</table>\n");
}

/// A figure per run in the period, scaled to the runs, against the objective.
fn chart(what: &str, points: &[(DateTime<Utc>, f64, bool)], objective: Option<f64>) -> String {
    let points: Vec<ChartPoint> =
        points.iter().map(|&(at, value, passed)| ChartPoint { at, value, passed, current: false }).collect();
    super::html::chart(what, &points, objective)
}

fn sign_offs(o: &mut String, ix: &Index) {
    let in_pack: Vec<(&Row, &super::view::SignOff)> =
        ix.store_rows.sign_offs().filter(|(r, _)| (ix.entries.0..=ix.entries.1).contains(&r.entry.seq)).collect();
    o.push_str("<h2>Sign-offs</h2><table><tr><th>report</th><th>decision</th><th>reviewer</th><th>signature</th><th>at</th></tr>");
    for (r, s) in &in_pack {
        let link = report_link(ix.store_rows, &s.report_id).unwrap_or_default();
        let _ = write!(
            o,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&link),
            esc(&s.report_id),
            esc(&r.entry.result),
            esc(&s.reviewer),
            esc(&ix.store_rows.state(r.entry.seq).label()),
            esc(&r.entry.at)
        );
    }
    if in_pack.is_empty() {
        o.push_str("<tr><td colspan=\"5\" class=\"muted\">no sign-off in the period</td></tr>");
    }
    o.push_str("</table>\n");
}

fn deviations(o: &mut String, ix: &Index) {
    o.push_str("<h2>Deviations and remediation</h2><table><tr><th>run</th><th>deviation</th><th>remediation</th></tr>");
    let mut any = false;
    for f in ix.figures {
        for r in ix.store_rows.history(&f.drill).filter(|r| r.started_at().is_some_and(|t| ix.period.contains(t))) {
            let Some(d) = r.report() else { continue };
            for dev in &d.deviations {
                any = true;
                let _ = write!(
                    o,
                    "<tr><td><a href=\"reports/{}.html\">{}</a> ({})</td><td>{}</td><td>{}</td></tr>",
                    esc(r.entry.file.trim_end_matches(".json")),
                    esc(&d.drill),
                    time(d.started_at),
                    esc(&dev.what),
                    esc(&dev.remediation)
                );
            }
        }
    }
    if !any {
        o.push_str("<tr><td colspan=\"3\" class=\"muted\">no deviation recorded in the period</td></tr>");
    }
    o.push_str("</table>\n");
}
