//! `drill plan` for people: one block per drill (text), or a Markdown section per drill for a pull-request
//! comment.

use crate::drill::plan::{Plan, Status};

fn verdict_word(p: &Plan) -> &'static str {
    match p.verdict {
        "ready" => "READY",
        "would-fail" => "WOULD FAIL",
        _ => "COULD NOT PLAN",
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "FAIL",
    }
}

/// `name  VERDICT  (file)`, then one line per item: status, topic, what; a hint under a problem.
pub(crate) fn text(plans: &[Plan]) -> String {
    let mut out = String::new();
    for (i, p) in plans.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{}  {}  ({})\n", p.drill, verdict_word(p), p.file));
        for item in &p.items {
            out.push_str(&format!("  {:<5} {:<11} {}\n", status_word(item.status), item.topic, item.what));
            if let Some(h) = &item.hint {
                out.push_str(&format!("  {:<5} {:<11} hint: {h}\n", "", ""));
            }
        }
    }
    out.trim_end().to_string()
}

/// A section per drill with a table of what was looked at; `|` and newlines in values are escaped.
pub(crate) fn markdown(plans: &[Plan]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from("## stackdrill drill plan\n");
    for p in plans {
        let mark = match p.verdict {
            "ready" => "✅",
            "would-fail" => "❌",
            _ => "⚠️",
        };
        out.push_str(&format!("\n### {mark} `{}` — {}\n\n", p.drill, verdict_word(p).to_lowercase()));
        out.push_str(&format!("`{}`\n\n| | check | finding |\n|---|---|---|\n", cell(&p.file)));
        for item in &p.items {
            let mark = match item.status {
                Status::Ok => "✅",
                Status::Warn => "⚠️",
                Status::Fail => "❌",
            };
            let hint = item.hint.as_deref().map(|h| format!(" — *{}*", cell(h))).unwrap_or_default();
            out.push_str(&format!("| {mark} | {} | {}{hint} |\n", item.topic, cell(&item.what)));
        }
    }
    out.trim_end().to_string()
}
