//! One self-contained HTML file per report (no external assets), for a reader who is not an engineer:
//! the verdict first, then objectives against what was measured, a timeline of the phases, the checks,
//! what was restored, teardown, the runbook, the controls, who signed it, and this drill's RTO trend.

use std::fmt::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::model::{Report, Verdict};
use crate::config::human_seconds;

/// Escapes text for HTML element content and attribute values; controls and bidi overrides are shown as
/// escapes ([`super::visible::visible`]), so a value cannot reorder or hide the text around it.
pub(crate) fn esc(s: &str) -> String {
    super::visible::visible(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// One earlier run of a drill: when, the RTO measured, and the result.
#[derive(Debug, Clone)]
pub(crate) struct Point {
    pub(crate) at: chrono::DateTime<chrono::Utc>,
    pub(crate) rto: Option<f64>,
    pub(crate) rpo: Option<f64>,
    pub(crate) result: Verdict,
}

/// The last `n` runs of `drill` in the store (from the ledger), oldest first.
pub(crate) fn trend(dir: &Path, drill: &str, n: usize) -> Vec<Point> {
    super::view::last_reports(dir, drill, n)
        .into_iter()
        .map(|r| Point { at: r.started_at, rto: r.measured.rto_seconds, rpo: r.measured.rpo_seconds, result: r.result })
        .collect()
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#1b1f24}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #d0d7de}h3{font-size:1em}\
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

/// The phases as bars on a time axis (inline SVG), each labelled with its duration, and the RTO as a
/// marker: restore start plus the measured RTO (and the objective, when it falls within the run).
fn timeline(r: &Report) -> String {
    let offset = |t: DateTime<Utc>| (t - r.started_at).num_milliseconds() as f64 / 1000.0;
    let restore_at = r.phases.iter().find(|p| p.name == "restore").map(|p| offset(p.started_at));
    // The scale reaches the RTO marker, even where a phase's recorded duration falls short of it.
    let rto_at = restore_at.zip(r.measured.rto_seconds).map(|(start, rto)| start + rto);
    let total = r.phases.iter().map(|p| offset(p.started_at) + p.seconds).chain(rto_at).fold(0.0, f64::max).max(0.001);
    let (w, row, left) = (900.0, 22.0, 230.0);
    let h = row * r.phases.len() as f64 + 40.0;
    let x = |secs: f64| left + secs / total * (w - left - 10.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"phase timeline\">"
    );
    for (i, p) in r.phases.iter().enumerate() {
        let bw = (p.seconds / total * (w - left - 10.0)).max(2.0);
        let y = i as f64 * row + 18.0;
        let color = match p.status.as_str() {
            "passed" => "#2da44e",
            "skipped" => "#8c959f",
            _ => "#cf222e",
        };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{} · {}</text><rect x=\"{:.1}\" y=\"{y}\" width=\"{bw:.1}\" height=\"{}\" fill=\"{color}\"><title>{}: {} ({}), from {}</title></rect>",
            y + 14.0,
            esc(&p.name),
            esc(&human_seconds(p.seconds)),
            x(offset(p.started_at)),
            row - 6.0,
            esc(&p.name),
            esc(&human_seconds(p.seconds)),
            esc(p.status.as_str()),
            when(p.started_at)
        );
    }
    let mut marker = |secs: f64, text: String, color: &str| {
        let mx = x(secs);
        let _ = write!(
            s,
            "<line x1=\"{mx:.1}\" y1=\"14\" x2=\"{mx:.1}\" y2=\"{}\" stroke=\"{color}\" stroke-dasharray=\"4 3\"/><text x=\"{mx:.1}\" y=\"11\" font-size=\"11\" text-anchor=\"end\" fill=\"{color}\">{}</text>",
            h - 20.0,
            esc(&text)
        );
    };
    if let (Some(start), Some(rto)) = (restore_at, r.measured.rto_seconds) {
        marker(start + rto, format!("RTO {}", human_seconds(rto)), "#0969da");
    }
    let objective_inside = restore_at.is_some_and(|start| start + r.objectives.rto_seconds <= total);
    if let (true, Some(start)) = (objective_inside, restore_at) {
        marker(
            start + r.objectives.rto_seconds,
            format!("objective {}", human_seconds(r.objectives.rto_seconds)),
            "#cf222e",
        );
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{}\" font-size=\"12\" fill=\"#57606a\">0 s ({})</text><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#57606a\" text-anchor=\"end\">{}</text></svg>",
        h - 4.0,
        r.started_at.format("%H:%M:%S"),
        w - 10.0,
        h - 4.0,
        esc(&human_seconds(total))
    );
    if !objective_inside {
        let _ = write!(
            s,
            "<p class=\"muted\">The RTO objective ({}) lies beyond the end of this run's timeline.</p>",
            esc(&human_seconds(r.objectives.rto_seconds))
        );
    }
    s
}

/// One point of a chart: a run's time, its figure, whether it passed, and whether it is the run the page
/// is about (drawn larger, ringed).
pub(crate) struct ChartPoint {
    pub(crate) at: DateTime<Utc>,
    pub(crate) value: f64,
    pub(crate) passed: bool,
    pub(crate) current: bool,
}

/// A round step for a seconds axis, so that `max` takes at most five steps: 1-2-5 below a minute, then
/// minutes, hours and days people count in.
fn tick_step(max: f64) -> f64 {
    const STEPS: [f64; 24] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0, 86400.0, 172800.0, 604800.0, 2592000.0,
    ];
    STEPS.into_iter().find(|s| max / s <= 5.0).unwrap_or_else(|| (max / 5.0).ceil())
}

/// A tick label: `5s`, `2.5s`, `10m`, `1h 30m`, `2d`.
fn tick_label(secs: f64) -> String {
    let whole = secs.round() as u64;
    if secs < 60.0 {
        if (secs - secs.round()).abs() < 1e-9 { format!("{whole}s") } else { format!("{secs:.1}s") }
    } else if whole < 3600 {
        if whole.is_multiple_of(60) { format!("{}m", whole / 60) } else { format!("{}m {}s", whole / 60, whole % 60) }
    } else if whole < 86400 {
        if whole.is_multiple_of(3600) {
            format!("{}h", whole / 3600)
        } else {
            format!("{}h {}m", whole / 3600, whole % 3600 / 60)
        }
    } else {
        format!("{}d", whole / 86400)
    }
}

/// The value axis of a chart: its top and its step, scaled to the data; the objective joins the scale when
/// it is no more than twice the data's top, else it is drawn off-scale (an arrow at the top, labelled).
fn value_axis(data_max: f64, objective: Option<f64>) -> (f64, f64, bool) {
    let fit = |max: f64| {
        let step = tick_step(max.max(0.1));
        (step * (max.max(0.1) / step).ceil().max(1.0), step)
    };
    let (top, step) = fit(data_max * 1.05);
    match objective {
        Some(obj) if obj <= top => (top, step, true),
        Some(obj) if obj <= 2.0 * top => {
            let (top, step) = fit(obj * 1.05);
            (top, step, true)
        }
        Some(_) => (top, step, false),
        None => (top, step, true),
    }
}

/// A figure per run against the time the runs span (round ticks of seconds on the y axis, scaled to the
/// figures), with the objective as a dashed, labelled line — or, when it is far above every run, as a
/// labelled arrow at the top: green dots for passed runs, red for the others.
pub(crate) fn chart(what: &str, points: &[ChartPoint], objective: Option<f64>) -> String {
    if points.is_empty() {
        return format!("<p class=\"muted\">No {what} measured.</p>");
    }
    let (w, h, left, bottom, top) = (720.0, 200.0, 70.0, 28.0, 16.0);
    let data_max = points.iter().map(|p| p.value).fold(0.0, f64::max);
    let (max, step, objective_on_scale) = value_axis(data_max, objective);
    // The time axis spans the runs, padded so that a single run (or runs minutes apart) sits inside it.
    let (first, last) = points.iter().fold((points[0].at, points[0].at), |(a, b), p| (a.min(p.at), b.max(p.at)));
    let pad = ((last - first).num_seconds() / 20).max(60);
    let (from, to) = (first - chrono::Duration::seconds(pad), last + chrono::Duration::seconds(pad));
    let span = (to - from).num_seconds().max(1) as f64;
    let x = |t: DateTime<Utc>| left + (t - from).num_seconds().max(0) as f64 / span * (w - left - 20.0);
    let y = |v: f64| top + (1.0 - v / max) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{what} per run\" class=\"chart\">\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0}\" stroke=\"#57606a\"/><line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#57606a\"/>",
        h - bottom,
        w - 10.0
    );
    let ticks = (max / step).round() as usize;
    for i in 0..=ticks {
        let v = step * i as f64;
        let _ = write!(
            s,
            "<line x1=\"{0}\" y1=\"{1:.1}\" x2=\"{left}\" y2=\"{1:.1}\" stroke=\"#57606a\"/><text x=\"{2}\" y=\"{3:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#57606a\">{4}</text>",
            left - 4.0,
            y(v),
            left - 6.0,
            y(v) + 4.0,
            esc(&tick_label(v))
        );
    }
    let format = if (to - from).num_hours() < 48 { "%Y-%m-%d %H:%M" } else { "%Y-%m-%d" };
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{0}\" font-size=\"11\" fill=\"#57606a\">{1}</text><text x=\"{2}\" y=\"{0}\" font-size=\"11\" text-anchor=\"end\" fill=\"#57606a\">{3}</text>",
        h - 8.0,
        from.format(format),
        w - 10.0,
        to.format(format)
    );
    match objective {
        Some(obj) if objective_on_scale => {
            let _ = write!(
                s,
                "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"6 4\"/><text x=\"{1}\" y=\"{2:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#cf222e\">objective {3}</text>",
                y(obj),
                w - 10.0,
                y(obj) - 4.0,
                esc(&human_seconds(obj))
            );
        }
        Some(obj) => {
            let _ = write!(
                s,
                "<text x=\"{0}\" y=\"12\" font-size=\"11\" text-anchor=\"end\" fill=\"#cf222e\">↑ objective {1} (above this scale)</text>",
                w - 10.0,
                esc(&human_seconds(obj))
            );
        }
        None => {}
    }
    let path: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", x(p.at), y(p.value))).collect();
    let _ =
        write!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\"/>", path.join(" "));
    for p in points {
        let ring = if p.current { " stroke=\"#1b1f24\" stroke-width=\"2\"" } else { "" };
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{}\"{ring}><title>{}{}: {} {}</title></circle>",
            x(p.at),
            y(p.value),
            if p.current { 6.0 } else { 3.5 },
            if p.passed { "#2da44e" } else { "#cf222e" },
            if p.current { "this run, " } else { "" },
            when(p.at),
            what,
            esc(&human_seconds(p.value))
        );
    }
    s.push_str("</svg>");
    s
}

/// The RTO and RPO of this drill's earlier runs and this one, against the objectives.
fn trends(o: &mut String, r: &Report, trend: &[Point]) {
    let series = |pick: fn(&Point) -> Option<f64>, now: Option<f64>| -> Vec<ChartPoint> {
        let earlier = trend.iter().filter(|p| p.at < r.started_at).filter_map(|p| {
            Some(ChartPoint { at: p.at, value: pick(p)?, passed: p.result == Verdict::Passed, current: false })
        });
        let current =
            now.map(|v| ChartPoint { at: r.started_at, value: v, passed: r.result == Verdict::Passed, current: true });
        earlier.chain(current).collect()
    };
    let rto = series(|p| p.rto, r.measured.rto_seconds);
    let rpo = series(|p| p.rpo, r.measured.rpo_seconds);
    let _ = writeln!(
        o,
        "<h2>RTO and RPO trend</h2><p class=\"muted\">This run (ringed) and the drill's previous {} runs; the dashed \
         line is the objective.</p><h3>RTO (time to restore)</h3>{}<h3>RPO (data that could be lost)</h3>{}",
        trend.iter().filter(|p| p.at < r.started_at).count(),
        chart("RTO", &rto, Some(r.objectives.rto_seconds)),
        chart("RPO", &rpo, Some(r.objectives.rpo_seconds))
    );
}

/// One time format for every time a reader sees: to the second, in UTC.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A key as people read it: the known ones by name, the rest with `-`/`_` as spaces.
pub(crate) fn label(key: &str) -> String {
    let known = [
        ("base_backups", "base backups"),
        ("wal_archive", "WAL archive"),
        ("server_version", "PostgreSQL server"),
        ("os_user", "runs as OS user"),
        ("source-instance", "source DB instance"),
        ("source-cluster", "source DB cluster"),
        ("scratch-instance", "scratch DB instance"),
        ("scratch-cluster", "scratch DB cluster"),
        ("resource-arn", "protected resource"),
        ("recovery-point", "recovery point"),
        ("restore-job", "AWS Backup restore job"),
        ("publicly-accessible", "publicly accessible"),
        ("row-count", "row count"),
        ("amcheck", "index and heap integrity (amcheck)"),
        ("sql", "SQL query"),
        ("local-postgres", "local PostgreSQL (base backup + WAL archive)"),
        ("aws-rds-instance", "Amazon RDS point-in-time restore"),
        ("aws-aurora-cluster", "Aurora point-in-time restore"),
        ("aws-backup", "AWS Backup recovery point"),
    ];
    known.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()).unwrap_or_else(|| key.replace(['-', '_'], " "))
}

fn trigger_label(trigger: &str) -> String {
    match trigger {
        "manual" => "run by hand".into(),
        "schedule" | "scheduled" => "the schedule".into(),
        "demo" => "stackdrill demo".into(),
        other => label(other),
    }
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
    trends(&mut o, r, trend);
    let _ = writeln!(
        o,
        "<p class=\"muted\">{} {} · {} → {}</p></body></html>",
        esc(&r.tool.name),
        esc(&r.tool.version),
        when(r.started_at),
        when(r.finished_at)
    );
    o
}

/// The page head, the verdict banner, the reason and the description.
fn head(o: &mut String, r: &Report) {
    let (class, verdict) = match r.result {
        Verdict::Passed => ("passed", "PASSED — the backup was restored to the target and verified"),
        _ if r.interrupted => {
            ("error", "INTERRUPTED — the operator stopped the drill before it finished; the scratch was torn down")
        }
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
    summary(o, r);
    if r.trigger == "demo" {
        o.push_str("<p class=\"bad\"><strong>Demo run</strong> against stackdrill's own throwaway source: evidence of nothing; <code>report controls</code> leaves it out.</p>\n");
    }
}

/// When, who and what, at the top: the times to the second, the people and what started it, the drill,
/// its source and the target.
fn summary(o: &mut String, r: &Report) {
    let mut who = vec![format!("operator {}", esc(&r.operator))];
    if !r.participants.is_empty() {
        who.push(format!("with {}", esc(&r.participants.join(", "))));
    }
    who.push(format!("started by {}", esc(&trigger_label(&r.trigger))));
    let source = std::iter::once(esc(&label(&r.source.provider)))
        .chain(
            ["source-instance", "source-cluster", "resource-arn", "base_backups"]
                .iter()
                .filter_map(|k| r.source.details.get(*k).map(|v| format!("{} <code>{}</code>", label(k), esc(v)))),
        )
        .collect::<Vec<_>>()
        .join(", ");
    let target = match r.target.time {
        Some(t) => format!("{} ({})", when(t), esc(&label(&r.target.selection))),
        None => "the latest restorable time".into(),
    };
    let _ = writeln!(
        o,
        "<table class=\"summary\"><tr><th>when</th><td>{} → {} ({})</td></tr><tr><th>who</th><td>{}</td></tr>\
         <tr><th>what</th><td>drill <code>{}</code>: {} restored to {}</td></tr></table>",
        when(r.started_at),
        when(r.finished_at),
        esc(&human_seconds((r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0)),
        who.join("; "),
        esc(&r.drill),
        source,
        target
    );
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
        let query = match (&c.query, &c.expect) {
            (Some(q), e) => format!(
                "<div class=\"muted\"><code>{}</code>{}</div>",
                esc(q),
                e.as_deref().map(|e| format!(" — expected: {}", esc(e))).unwrap_or_default()
            ),
            _ => String::new(),
        };
        let _ = write!(
            o,
            "<tr><td>{}{query}</td><td>{}</td><td class=\"{}\">{s}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&label(&c.kind)),
            status_class(s),
            esc(&c.detail)
        );
    }
    o.push_str("</table>\n");
}

/// What was restored (provider, backup, target), the connections, what made the copy inert.
fn restored(o: &mut String, r: &Report) {
    let _ = write!(o, "<h2>What was restored</h2><table>");
    let _ = write!(o, "<tr><th>restored with</th><td>{}</td></tr>", esc(&label(&r.source.provider)));
    for (k, v) in &r.source.details {
        let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(&label(k)), esc(v));
    }
    if let Some(b) = &r.source.backup {
        let _ = write!(
            o,
            "<tr><th>backup</th><td><code>{}</code> at {} (taken {} – {})</td></tr>",
            esc(&b.id),
            esc(&b.location),
            when(b.started_at),
            when(b.finished_at)
        );
    }
    let target = r.target.time.map(when).unwrap_or_else(|| "latest".into());
    let _ = writeln!(
        o,
        "<tr><th>target</th><td>{} ({}; {})</td></tr></table>",
        esc(&target),
        esc(&r.target.selection),
        esc(&r.target.recovery)
    );
    if !r.also_restored.is_empty() {
        o.push_str("<p>Also restored to the same instant:</p><ul>");
        for a in &r.also_restored {
            let _ = write!(o, "<li>{}</li>", esc(&a.summary().replace('`', "")));
        }
        o.push_str("</ul>\n");
    }
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
        when(r.teardown.at),
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
                "<tr><th>runbook followed</th><td><code>{}</code> sha256 <code>{}</code>{}</td></tr>",
                esc(&rb.path),
                esc(rb.sha256.as_deref().unwrap_or("-")),
                commit_of(rb)
            );
        }
        None => o.push_str("<tr><th>runbook followed</th><td class=\"bad\">none cited</td></tr>"),
    }
    let _ = write!(
        o,
        "<tr><th>drill file</th><td><code>{}</code>{}</td></tr>",
        esc(&r.drill_file.path),
        commit_of(&r.drill_file)
    );
    let _ = write!(
        o,
        "<tr><th>operator</th><td>{}</td></tr><tr><th>started by</th><td>{}</td></tr>",
        esc(&r.operator),
        esc(&trigger_label(&r.trigger))
    );
    if let Some(at) = r.scheduled_for {
        let _ = write!(o, "<tr><th>scheduled for</th><td>{}</td></tr>", when(at));
    }
    if let Some(at) = r.next_scheduled {
        let _ = write!(o, "<tr><th>next scheduled</th><td>{}</td></tr>", when(at));
    }
    if !r.participants.is_empty() {
        let _ = write!(o, "<tr><th>participants</th><td>{}</td></tr>", esc(&r.participants.join(", ")));
    }
    let _ = writeln!(o, "<tr><th>controls</th><td>{}</td></tr></table>", esc(&r.controls.join(", ")));
}

/// ` at commit <abc>` (and whether the file had uncommitted changes), when the file is in git.
fn commit_of(f: &super::model::FileRef) -> String {
    f.git_commit
        .as_deref()
        .map(|c| {
            format!(
                " at commit <code>{}</code>{}",
                esc(c),
                if f.git_dirty { " (with uncommitted changes)" } else { "" }
            )
        })
        .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The `cx`/`cy` of every dot in a chart.
    fn dots(svg: &str) -> Vec<(f64, f64)> {
        let re = regex::Regex::new(r#"<circle cx="([0-9.]+)" cy="([0-9.]+)""#).unwrap();
        re.captures_iter(svg).map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap())).collect()
    }

    /// 14 runs of 3–7 s, minutes apart, against a 10-minute objective: the axis is scaled to the runs (they
    /// spread over it, none sits at 0), the objective is an arrow above the scale, the ticks are round.
    #[test]
    fn a_chart_is_scaled_to_its_runs_and_the_objective_is_shown_off_scale() {
        let start = chrono::DateTime::parse_from_rfc3339("2026-12-06T02:00:00Z").unwrap().to_utc();
        let points: Vec<ChartPoint> = (0..14)
            .map(|i| ChartPoint {
                at: start + chrono::Duration::minutes(3 * i),
                value: 3.0 + (i % 5) as f64,
                passed: true,
                current: i == 13,
            })
            .collect();
        let svg = chart("RTO", &points, Some(600.0));
        let d = dots(&svg);
        assert_eq!(d.len(), 14);
        let (bottom, top) = (200.0 - 28.0, 16.0);
        let xs: std::collections::BTreeSet<i64> = d.iter().map(|(x, _)| *x as i64).collect();
        assert!(xs.len() >= 12, "runs minutes apart spread along the time axis: {d:?}");
        for (_, y) in &d {
            assert!(*y < bottom - 40.0 && *y >= top, "a 3–7 s run is well above the 0 line: {d:?}");
        }
        assert!(svg.contains("↑ objective 10m 00s (above this scale)"), "{svg}");
        let ticks: Vec<&str> =
            svg.split("text-anchor=\"end\" fill=\"#57606a\">").skip(1).filter_map(|t| t.split('<').next()).collect();
        assert!(ticks.starts_with(&["0s", "2s", "4s", "6s", "8s"]), "round ticks: {ticks:?}");
        assert!(svg.contains(">2026-12-06 0"), "a time axis within a day names hours: {svg}");
    }

    /// An objective close to the runs joins the scale as a dashed, labelled line.
    #[test]
    fn an_objective_near_the_runs_is_a_labelled_line() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T02:00:00Z").unwrap().to_utc();
        let points = [ChartPoint { at, value: 40.0, passed: true, current: true }];
        let svg = chart("RTO", &points, Some(60.0));
        assert!(svg.contains("stroke-dasharray=\"6 4\"") && svg.contains(">objective 1m 00s</text>"), "{svg}");
        assert!(!svg.contains("above this scale"));
        assert_eq!(tick_label(90.0), "1m 30s");
        assert_eq!(tick_label(7200.0), "2h");
        assert_eq!(tick_step(600.0), 120.0);
    }

    /// Controls and bidi overrides in a value are shown in the HTML, not obeyed.
    #[test]
    fn html_shows_controls_and_bidi_overrides() {
        assert_eq!(esc("a\u{202e}<b>\u{1b}"), "a\\u{202e}&lt;b&gt;\\u{1b}");
    }
}
