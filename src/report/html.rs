//! One self-contained HTML file per report (no external assets), for a reader who is not an engineer:
//! the verdict first, then objectives against what was measured, a timeline of the phases, the checks,
//! what was restored, teardown, the runbook, the controls, who signed it, and this drill's RTO trend.

use std::fmt::Write;
use std::path::Path;

use super::model::{Report, Verdict};
use crate::config::human_seconds;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// One earlier run of a drill: when, the RTO measured, and the result.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub(crate) at: chrono::DateTime<chrono::Utc>,
    pub(crate) rto: Option<f64>,
    pub(crate) result: String,
}

/// The last `n` runs of `drill` in the store (from the ledger), oldest first.
pub(crate) fn trend(dir: &Path, drill: &str, n: usize) -> Vec<Point> {
    super::view::last_reports(dir, drill, n)
        .into_iter()
        .map(|r| Point { at: r.started_at, rto: r.measured.rto_seconds, result: r.result.as_str().into() })
        .collect()
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#1b1f24}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #d0d7de}\
.banner{padding:1em 1.2em;border-radius:8px;color:#fff;font-size:1.25em;font-weight:600}\
.passed{background:#1a7f37}.failed{background:#cf222e}.error{background:#9a6700}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #d0d7de;padding:.35em .6em;text-align:left;vertical-align:top}\
th{background:#f6f8fa}.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}code{font-size:.9em}\
.muted{color:#57606a;font-size:.9em}";

fn secs(v: Option<f64>) -> String {
    v.map(human_seconds).unwrap_or_else(|| "not measured".into())
}

fn status_class(s: &str) -> &'static str {
    match s {
        "passed" | "done" | "nothing-to-do" | "met" => "ok",
        "skipped" => "muted",
        _ => "bad",
    }
}

/// The phases as bars on a time axis (inline SVG).
fn timeline(r: &Report) -> String {
    let total = r
        .phases
        .iter()
        .map(|p| (p.started_at - r.started_at).num_milliseconds() as f64 / 1000.0 + p.seconds)
        .fold(0.0, f64::max)
        .max(0.001);
    let (w, row) = (900.0, 22.0);
    let h = row * r.phases.len() as f64 + 24.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"phase timeline\">"
    );
    for (i, p) in r.phases.iter().enumerate() {
        let start = (p.started_at - r.started_at).num_milliseconds() as f64 / 1000.0;
        let x = 160.0 + start / total * (w - 170.0);
        let bw = (p.seconds / total * (w - 170.0)).max(2.0);
        let y = i as f64 * row + 4.0;
        let color = match p.status.as_str() {
            "passed" => "#2da44e",
            "skipped" => "#8c959f",
            _ => "#cf222e",
        };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text><rect x=\"{x:.1}\" y=\"{y}\" width=\"{bw:.1}\" height=\"{}\" fill=\"{color}\"><title>{}: {} ({})</title></rect>",
            y + 14.0,
            esc(&p.name),
            row - 6.0,
            esc(&p.name),
            esc(&human_seconds(p.seconds)),
            esc(p.status.as_str())
        );
    }
    let _ = write!(
        s,
        "<text x=\"160\" y=\"{}\" font-size=\"12\" fill=\"#57606a\">0 s</text><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#57606a\" text-anchor=\"end\">{}</text></svg>",
        h - 4.0,
        w - 10.0,
        h - 4.0,
        esc(&human_seconds(total))
    );
    s
}

/// RTO of the drill's recent runs as an inline SVG line with dots (red for runs that did not pass).
pub(crate) fn sparkline_svg(points: &[Point]) -> String {
    let rtos: Vec<f64> = points.iter().filter_map(|p| p.rto).collect();
    if rtos.len() < 2 {
        return "<p class=\"muted\">Not enough earlier runs for a trend yet.</p>".into();
    }
    let max = rtos.iter().copied().fold(0.0, f64::max).max(0.001);
    let (w, h) = (600.0, 80.0);
    let step = w / (points.len().max(2) - 1) as f64;
    let mut path = String::new();
    let mut dots = String::new();
    for (i, p) in points.iter().enumerate() {
        let Some(rto) = p.rto else { continue };
        let (x, y) = (i as f64 * step, h - 6.0 - rto / max * (h - 12.0));
        let _ = write!(path, "{}{x:.1},{y:.1} ", if path.is_empty() { "M" } else { "L" });
        let fill = if p.result == "passed" { "#2da44e" } else { "#cf222e" };
        let _ = write!(
            dots,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{fill}\"><title>{}: {} ({})</title></circle>",
            p.at.format("%Y-%m-%d %H:%M UTC"),
            esc(&human_seconds(rto)),
            esc(&p.result)
        );
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"-5 0 {} {h}\" role=\"img\" aria-label=\"RTO trend\"><path d=\"{path}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\"/>{dots}</svg><p class=\"muted\">RTO of the last {} runs; highest {}.</p>",
        w + 10.0,
        points.len(),
        esc(&human_seconds(max))
    )
}

pub(crate) fn render(r: &Report, trend: &[Point]) -> String {
    let mut o = String::new();
    head(&mut o, r);
    objectives(&mut o, r);
    let _ = writeln!(o, "<h2>Timeline</h2>{}", timeline(r));
    checks(&mut o, r);
    restored(&mut o, r);
    teardown_and_deviations(&mut o, r);
    procedure(&mut o, r);
    integrity(&mut o, r);
    let _ = writeln!(o, "<h2>RTO trend</h2>{}", sparkline_svg(trend));
    let _ = writeln!(
        o,
        "<p class=\"muted\">{} {} · {} → {}</p></body></html>",
        esc(&r.tool.name),
        esc(&r.tool.version),
        r.started_at,
        r.finished_at
    );
    o
}

/// The page head, the verdict banner, the reason and the description.
fn head(o: &mut String, r: &Report) {
    let (class, verdict) = match r.result {
        Verdict::Passed => ("passed", "PASSED — the backup was restored to the target and verified"),
        Verdict::Failed => ("failed", "FAILED — the restore was not verified"),
        Verdict::Error => ("error", "ERROR — the drill did not complete"),
    };
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width\"/>\
         <title>Restore drill {} — {}</title><style>{STYLE}</style></head><body>",
        esc(&r.drill),
        r.result.as_str()
    );
    let _ = writeln!(
        o,
        "<h1>Restore drill <code>{}</code></h1>\n<div class=\"banner {class}\" id=\"verdict\">{verdict}</div>",
        esc(&r.drill)
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(o, "<p><strong>Reason:</strong> {}</p>", esc(reason));
    }
    if let Some(d) = &r.description {
        let _ = writeln!(o, "<p>{}</p>", esc(d));
    }
    if r.trigger == "demo" {
        o.push_str("<p class=\"bad\"><strong>Demo run</strong> against stackdrill's own throwaway source: evidence of nothing; <code>report controls</code> leaves it out.</p>\n");
    }
}

/// RTO and RPO against their objectives.
fn objectives(o: &mut String, r: &Report) {
    let met = |ok: bool, measured: Option<f64>| match (measured, ok) {
        (None, _) => "<span class=\"bad\">not measured</span>",
        (Some(_), true) => "<span class=\"ok\">met</span>",
        (Some(_), false) => "<span class=\"bad\">missed</span>",
    };
    let _ = writeln!(
        o,
        "<h2>Objectives</h2><table><tr><th></th><th>objective</th><th>measured</th><th></th></tr>\
         <tr><td>RTO (time to restore)</td><td>{}</td><td>{}</td><td>{}</td></tr>\
         <tr><td>RPO (data that could be lost)</td><td>{}</td><td>{}</td><td>{}</td></tr></table>\
         <p class=\"muted\">RPO basis: {}</p>",
        esc(&human_seconds(r.objectives.rto_seconds)),
        esc(&secs(r.measured.rto_seconds)),
        met(r.measured.rto_met, r.measured.rto_seconds),
        esc(&human_seconds(r.objectives.rpo_seconds)),
        esc(&secs(r.measured.rpo_seconds)),
        met(r.measured.rpo_met, r.measured.rpo_seconds),
        esc(&r.measured.rpo_basis)
    );
}

/// Each check and how it ended.
fn checks(o: &mut String, r: &Report) {
    let _ = write!(o, "<h2>Checks</h2><table><tr><th>check</th><th>kind</th><th>result</th><th>detail</th></tr>");
    for c in &r.checks {
        let s = c.status.as_str();
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{s}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.kind),
            status_class(s),
            esc(&c.detail)
        );
    }
    o.push_str("</table>\n");
}

/// What was restored (provider, backup, target), the connections, what made the copy inert.
fn restored(o: &mut String, r: &Report) {
    let _ = write!(o, "<h2>What was restored</h2><table>");
    let _ = write!(o, "<tr><th>provider</th><td>{}</td></tr>", esc(&r.source.provider));
    for (k, v) in &r.source.details {
        let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    if let Some(b) = &r.source.backup {
        let _ = write!(
            o,
            "<tr><th>backup</th><td><code>{}</code> at {} (taken {} – {})</td></tr>",
            esc(&b.id),
            esc(&b.location),
            b.started_at,
            b.finished_at
        );
    }
    let target = r.target.time.map(|t| t.to_rfc3339()).unwrap_or_else(|| "latest".into());
    let _ = writeln!(
        o,
        "<tr><th>target</th><td>{} ({}; {})</td></tr></table>",
        esc(&target),
        esc(&r.target.selection),
        esc(&r.target.recovery)
    );
    if !r.connections.is_empty() {
        o.push_str("<h2>Connections</h2><table><tr><th>role</th><th>endpoint</th><th>protection</th></tr>");
        for c in &r.connections {
            let _ = write!(
                o,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&c.role),
                esc(&c.endpoint),
                esc(&c.protection())
            );
        }
        o.push_str("</table>\n");
    }
    if !r.neutralised.is_empty() {
        o.push_str("<p>The restored copy was made inert before anything connected to it:</p><ul>");
        for n in &r.neutralised {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul>\n");
    }
}

/// The teardown, and every deviation with its remediation.
fn teardown_and_deviations(o: &mut String, r: &Report) {
    let _ = writeln!(
        o,
        "<h2>Teardown</h2><p class=\"{}\">{} at {}</p><p>{}</p>",
        status_class(r.teardown.status.as_str()),
        esc(r.teardown.status.as_str()),
        r.teardown.at,
        esc(&r.teardown.detail)
    );
    if !r.deviations.is_empty() {
        o.push_str("<h2>Deviations</h2><table><tr><th>what</th><th>remediation</th></tr>");
        for d in &r.deviations {
            let _ = write!(o, "<tr><td>{}</td><td>{}</td></tr>", esc(&d.what), esc(&d.remediation));
        }
        o.push_str("</table>\n");
    }
}

/// The runbook, the drill file, who ran it and when, the controls.
fn procedure(o: &mut String, r: &Report) {
    o.push_str("<h2>Procedure and people</h2><table>");
    match &r.runbook {
        Some(rb) => {
            let _ = write!(
                o,
                "<tr><th>runbook followed</th><td><code>{}</code> sha256 <code>{}</code></td></tr>",
                esc(&rb.path),
                esc(rb.sha256.as_deref().unwrap_or("-"))
            );
        }
        None => o.push_str("<tr><th>runbook followed</th><td class=\"bad\">none cited</td></tr>"),
    }
    let commit = r
        .drill_file
        .git_commit
        .as_deref()
        .map(|c| {
            format!(
                " at commit <code>{}</code>{}",
                esc(c),
                if r.drill_file.git_dirty { " (with uncommitted changes)" } else { "" }
            )
        })
        .unwrap_or_default();
    let _ = write!(o, "<tr><th>drill file</th><td><code>{}</code>{commit}</td></tr>", esc(&r.drill_file.path));
    let _ = write!(
        o,
        "<tr><th>operator</th><td>{}</td></tr><tr><th>trigger</th><td>{}</td></tr>",
        esc(&r.operator),
        esc(&r.trigger)
    );
    if let Some(at) = &r.scheduled_for {
        let _ = write!(o, "<tr><th>scheduled for</th><td>{} UTC</td></tr>", at.format("%Y-%m-%d %H:%M:%S"));
    }
    if let Some(at) = &r.next_scheduled {
        let _ = write!(o, "<tr><th>next scheduled</th><td>{} UTC</td></tr>", at.format("%Y-%m-%d %H:%M:%S"));
    }
    if !r.participants.is_empty() {
        let _ = write!(o, "<tr><th>participants</th><td>{}</td></tr>", esc(&r.participants.join(", ")));
    }
    let _ = writeln!(o, "<tr><th>controls</th><td>{}</td></tr></table>", esc(&r.controls.join(", ")));
}

/// How the report is signed and chained.
fn integrity(o: &mut String, r: &Report) {
    o.push_str("<h2>Integrity</h2><table>");
    match &r.signing {
        Some(s) => {
            let _ = write!(
                o,
                "<tr><th>signed by</th><td>{} key <code>{}</code></td></tr>",
                esc(&s.algorithm),
                esc(&s.fingerprint)
            );
        }
        None => o.push_str("<tr><th>signed by</th><td class=\"bad\">not signed</td></tr>"),
    }
    let _ = writeln!(
        o,
        "<tr><th>previous report</th><td><code>{}</code></td></tr><tr><th>report id</th><td><code>{}</code></td></tr></table>\
         <p class=\"muted\">Check with <code>stackdrill report verify</code>: it detects an edited, deleted, inserted or reordered report.</p>",
        esc(r.previous_sha256.as_deref().unwrap_or("none: the first report in this store")),
        esc(&r.id)
    );
}
