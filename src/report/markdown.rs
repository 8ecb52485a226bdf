//! The Markdown rendering of a report, written for an auditor: verdict first, then the evidence.

use std::fmt::Write;

use super::model::{Report, Verdict};
use crate::config::human_seconds;

/// Every time as the HTML shows it: to the second, in UTC.
fn t(time: &chrono::DateTime<chrono::Utc>) -> String {
    super::html::when(*time)
}

fn opt_secs(v: Option<f64>) -> String {
    v.map(human_seconds).unwrap_or_else(|| "not measured".into())
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// Escapes a value for Markdown prose or a table cell: controls and bidi overrides shown
/// ([`super::visible::visible`]), HTML written as text (`&lt;script&gt;`), no link or image syntax (`\[`),
/// `|` escaped and one line. Ordinary text is unchanged.
pub(crate) fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in super::visible::visible(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A backslash escaped too: `\[x\](javascript:…)` must not turn back into a live link. (A
            // backtick is left: the reasons quote names in code spans, inside which no link is live.)
            '[' | ']' | '|' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a value for a Markdown code span (`` `…` ``), where HTML and links are not rendered: controls
/// shown, no backtick to end the span early, `|` escaped for tables, one line.
pub(crate) fn code(s: &str) -> String {
    super::visible::visible(s).replace('`', "'").replace('|', "\\|").replace('\n', " ")
}

pub(crate) fn render(r: &Report) -> String {
    let mut o = String::new();
    header(&mut o, r);
    objectives(&mut o, r);
    backup_and_target(&mut o, r);
    connections(&mut o, r);
    timeline(&mut o, r);
    checks_and_procedure(&mut o, r);
    o
}

/// The verdict, the reason, and the run's facts (id, times, tool, operator, schedule, definition, controls).
fn header(o: &mut String, r: &Report) {
    let verdict = match r.result {
        Verdict::Passed => "PASSED — the backup was restored to the target and verified",
        _ if r.interrupted => {
            "INTERRUPTED — the operator stopped the drill before it finished; the scratch was torn down"
        }
        Verdict::Failed => "FAILED — the restore was not verified",
        Verdict::Error => "ERROR — the drill did not complete",
    };
    let _ = writeln!(o, "# Restore drill `{}`: {}\n", code(&r.drill), verdict);
    if let Some(reason) = &r.reason {
        let _ = writeln!(o, "> **Reason:** {}\n", cell(reason));
    }
    if let Some(d) = &r.description {
        let _ = writeln!(o, "{}\n", cell(d));
    }
    if r.trigger == "demo" {
        let _ = writeln!(
            o,
            "> **Demo run** against stackdrill's own throwaway source: evidence of nothing; `report controls` leaves it out.\n"
        );
    }
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Report id | `{}` (schema `{}`) |", code(&r.id), code(&r.schema));
    let _ = writeln!(o, "| Started / finished | {} / {} |", t(&r.started_at), t(&r.finished_at));
    let _ = writeln!(o, "| Tool | {} {} |", cell(&r.tool.name), cell(&r.tool.version));
    let _ = writeln!(o, "| Operator / trigger | {} / {} |", cell(&r.operator), cell(&r.trigger));
    if let Some(at) = &r.scheduled_for {
        let late = (r.started_at - *at).num_seconds();
        let _ = writeln!(o, "| Scheduled for | {} (started {late} s later) |", t(at));
    }
    if let Some(at) = &r.next_scheduled {
        let _ = writeln!(o, "| Next scheduled drill | {} |", t(at));
    }
    let _ = writeln!(
        o,
        "| Drill definition | `{}` (sha256 `{}`) |",
        code(&r.drill_file.path),
        r.drill_file.sha256.as_deref().unwrap_or("unreadable")
    );
    let _ = writeln!(
        o,
        "| Controls evidenced | {} |\n",
        if r.controls.is_empty() { "none listed".into() } else { cell(&r.controls.join(", ")) }
    );
}

/// RTO and RPO against their objectives, and the RPO's basis.
fn objectives(o: &mut String, r: &Report) {
    let m = &r.measured;
    let _ = writeln!(o, "## Objectives\n\n| | objective | measured | |\n|---|---|---|---|");
    let _ = writeln!(
        o,
        "| RTO (restore start → accepts queries) | {} | {} | {} |",
        human_seconds(r.objectives.rto_seconds),
        opt_secs(m.rto_seconds),
        met(m.rto_met)
    );
    let _ = writeln!(
        o,
        "| RPO (target → newest commit restored) | {} | {} | {} |\n",
        human_seconds(r.objectives.rpo_seconds),
        opt_secs(m.rpo_seconds),
        met(m.rpo_met)
    );
    if let Some(c) = &m.newest_commit {
        let _ = writeln!(o, "Newest commit present in the restore: {}.", t(c));
    }
    if let Some(p) = &m.recovery_point {
        let _ = writeln!(o, "Recovery point reached (newest heartbeat in the restore): {}.", t(p));
    }
    let _ = writeln!(o, "RPO basis: {}.\n", cell(&m.rpo_basis));
}

/// The provider, the backup, the target, the window and the scratch.
fn backup_and_target(o: &mut String, r: &Report) {
    let _ = writeln!(o, "## Backup and target\n");
    let _ = writeln!(o, "- Provider: `{}`", code(&r.source.provider));
    for (k, v) in &r.source.details {
        let _ = writeln!(o, "- {}: `{}`", cell(&k.replace('_', " ")), code(v));
    }
    match &r.source.backup {
        Some(b) => {
            let _ = writeln!(
                o,
                "- Base backup: `{}` at `{}`, taken {} → {}",
                code(&b.id),
                code(&b.location),
                t(&b.started_at),
                t(&b.finished_at)
            );
        }
        None => {
            let _ = writeln!(o, "- Base backup: none chosen");
        }
    }
    match &r.target.time {
        Some(time) => {
            let _ = writeln!(o, "- Target: {} — {}", t(time), cell(&r.target.selection));
        }
        None => {
            let _ = writeln!(o, "- Target: not chosen");
        }
    }
    let _ = writeln!(o, "- Recovery: {}", cell(&r.target.recovery));
    if let Some(w) = &r.target.window {
        let _ = writeln!(o, "- Recoverable window at planning: {} → {}", t(&w.earliest), t(&w.latest));
    }
    if let Some(s) = &r.source.scratch {
        let how =
            if r.source.provider == "local-postgres" { "isolated, private socket only" } else { "isolated, private" };
        let _ = writeln!(o, "- Scratch ({how}): `{}`", code(s));
    }
    for a in &r.also_restored {
        let _ = writeln!(o, "- Also restored to the same instant: {}", cell(&a.summary()));
    }
}

/// How each connection was protected, and what made the restored copy inert.
fn connections(o: &mut String, r: &Report) {
    if !r.connections.is_empty() {
        let _ = writeln!(o, "\n## Connections\n\n| role | endpoint | protection |\n|---|---|---|");
        for c in &r.connections {
            let _ = writeln!(o, "| {} | `{}` | {} |", cell(&c.role), code(&c.endpoint), cell(&c.protection()));
        }
    }
    if !r.neutralised.is_empty() {
        let _ = writeln!(o, "\nThe restored copy was made inert before anything connected to it:\n");
        for n in &r.neutralised {
            let _ = writeln!(o, "- {}", cell(n));
        }
    }
    if let Some(i) = &r.inert {
        let _ = writeln!(
            o,
            "\nBefore the checks, {} of {} pg_cron job(s) in the copy were set inactive.",
            i.cron_jobs_deactivated,
            i.cron_jobs.len()
        );
        if let Some(q) = i.pg_net_queued {
            let _ = writeln!(o, "pg_net had {q} request(s) queued.");
        }
        if !i.foreign_servers.is_empty() {
            let _ = writeln!(o, "Foreign servers: {}.", cell(&i.foreign_servers.join(", ")));
        }
        for n in &i.notes {
            let _ = writeln!(o, "- {}", cell(n));
        }
    }
}

/// Each phase, and the AWS API calls it made.
fn timeline(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Timeline\n\n| phase | started | duration | status | detail |\n|---|---|---|---|---|");
    for p in &r.phases {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            cell(&p.name),
            t(&p.started_at),
            human_seconds(p.seconds),
            p.status,
            cell(p.detail.as_deref().unwrap_or(""))
        );
    }
    if r.phases.iter().any(|p| !p.api_calls.is_empty()) {
        let _ = writeln!(o, "\nAWS API calls (attempts, retries included):\n");
        for p in r.phases.iter().filter(|p| !p.api_calls.is_empty()) {
            let calls: Vec<String> = p.api_calls.iter().map(|(op, n)| format!("{op} ×{n}")).collect();
            let _ = writeln!(o, "- {}: {}", cell(&p.name), cell(&calls.join(", ")));
        }
    }
}

/// The checks, the teardown and the runbook followed.
fn checks_and_procedure(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Checks\n\n| check | kind | result | detail |\n|---|---|---|---|");
    if r.checks.is_empty() {
        let _ = writeln!(o, "| — | — | — | no checks ran |");
    }
    for c in &r.checks {
        let query = match (&c.query, &c.expect) {
            (Some(q), e) => format!(
                "<br>`{}`{}",
                code(q),
                e.as_deref().map(|e| format!(" — expected: {}", cell(e))).unwrap_or_default()
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "| {}{query} | {} | {} | {} |",
            cell(&c.name),
            cell(&c.kind),
            c.status.as_str(),
            cell(&c.detail)
        );
    }

    let _ =
        writeln!(o, "\n## Teardown\n\n{} at {}: {}\n", r.teardown.status, t(&r.teardown.at), cell(&r.teardown.detail));
    if !r.deviations.is_empty() {
        let _ = writeln!(o, "## Deviations\n\n| what | remediation |\n|---|---|");
        for d in &r.deviations {
            let _ = writeln!(o, "| {} | {} |", cell(&d.what), cell(&d.remediation));
        }
        o.push('\n');
    }
    let _ = writeln!(o, "## Procedure and people\n");
    match &r.runbook {
        Some(rb) => {
            let _ = writeln!(
                o,
                "- Runbook followed: `{}` (sha256 `{}`{})",
                code(&rb.path),
                code(rb.sha256.as_deref().unwrap_or("unreadable")),
                commit(rb.git_commit.as_deref(), rb.git_dirty)
            );
        }
        None => {
            let _ = writeln!(o, "- Runbook followed: none cited by this drill");
        }
    }
    let _ = writeln!(
        o,
        "- Drill file: `{}`{}",
        code(&r.drill_file.path),
        commit(r.drill_file.git_commit.as_deref(), r.drill_file.git_dirty)
    );
    let _ = writeln!(o, "- Operator: {}; trigger: {}", cell(&r.operator), cell(&r.trigger));
    if !r.participants.is_empty() {
        let _ = writeln!(o, "- Participants: {}", cell(&r.participants.join(", ")));
    }
    integrity(o, r);
}

/// ", at commit `…`" (and whether the file had uncommitted changes), when the file is in git.
fn commit(c: Option<&str>, dirty: bool) -> String {
    c.map(|c| format!(", at commit `{}`{}", code(c), if dirty { " with uncommitted changes" } else { "" }))
        .unwrap_or_default()
}

/// How the report is signed and chained, as the HTML shows it.
fn integrity(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Integrity\n");
    match &r.signing {
        Some(s) => {
            let _ = writeln!(o, "- Signed by: {} key `{}`", cell(&s.algorithm), code(&s.fingerprint));
        }
        None => {
            let _ = writeln!(o, "- Signed by: **not signed**");
        }
    }
    let _ = writeln!(
        o,
        "- Previous report: `{}`",
        code(r.previous_sha256.as_deref().unwrap_or("none: the first report in this store"))
    );
    let _ = writeln!(
        o,
        "- Check with `stackdrill report verify`: it detects an edited, deleted, inserted or reordered report."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a database value or a name can carry into a Markdown report is shown as text: no HTML, no
    /// link, no reordering, no control character.
    #[test]
    fn markdown_shows_html_links_and_controls_as_text() {
        let mut r = crate::report::golden_tests::fixed();
        r.checks[0].detail =
            "<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) \u{202e}desrever \u{1b}[2K".into();
        r.reason = Some("check `orders` failed: ![p](https://evil/p.png) & more".into());
        let md = render(&r);
        for raw in ["<script>", "<img", "[x](javascript:", "![p](https://", "\u{202e}", "\u{1b}"] {
            assert!(!md.contains(raw), "`{raw}` reaches the Markdown:\n{md}");
        }
        for shown in [
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "&lt;img src=x onerror=alert(1)&gt;",
            "\\[x\\](javascript:alert(1))",
            // visible()'s backslash is itself escaped, so it renders as `\u{202e}`.
            "\\\\u{202e}desrever \\\\u{1b}\\[2K",
            "check `orders` failed: !\\[p\\](https://evil/p.png) &amp; more",
        ] {
            assert!(md.contains(shown), "`{shown}` in:\n{md}");
        }
    }

    #[test]
    fn an_escaped_link_stays_text() {
        // Old code: `\[click\](javascript:…)` kept its backslashes, which then escaped the escapes.
        assert_eq!(cell(r"\[click\](javascript:alert(1))"), r"\\\[click\\\](javascript:alert(1))");
        assert!(!code("x`[y](javascript:z)`").contains('`'));
    }

    #[test]
    fn code_spans_stay_code_spans() {
        assert_eq!(code("a`b|c\n\u{202e}"), "a'b\\|c \\u{202e}");
        assert_eq!(cell("ordinary text (1 rows) — ok"), "ordinary text (1 rows) — ok");
    }
}
