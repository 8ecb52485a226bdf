//! Renders drill events on stderr: one spinner line per running phase on a terminal, one plain line per
//! event otherwise. Both go through one state machine ([`Render`]): it keeps a phase's end as a line of its
//! own (a spinner is only ever the running phase; what finished is printed above it and never redrawn), and
//! a verify phase whose checks failed ends `failed`, never `passed`.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::color::{Tone, paint};
use crate::config::human_seconds;
use crate::drill::events::{Event, EventSink};
use crate::drill::verify::CheckStatus;
use crate::report::model::PhaseStatus;
use crate::report::visible::visible;

/// The spinners on stderr while a drill runs on a terminal: other stderr lines (errors, warnings) are
/// printed with the spinners suspended, so neither overwrites the other.
static SPINNERS: OnceLock<MultiProgress> = OnceLock::new();

/// Runs `f` (which writes to stderr) with the spinners cleared and redraws them after.
pub(crate) fn suspended<R>(f: impl FnOnce() -> R) -> R {
    match SPINNERS.get() {
        Some(m) => m.suspend(f),
        None => f(),
    }
}

/// How progress is drawn on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Spinners,
    Lines,
}

/// Spinners only on a terminal that has columns (a 0-column pty, as some CI runners and `script` give,
/// would run the spinner line into stdout's) and not under CI.
fn mode(terminal: bool, columns: Option<u16>, ci: bool) -> Mode {
    match (terminal, columns, ci) {
        (true, Some(c), false) if c > 0 => Mode::Spinners,
        _ => Mode::Lines,
    }
}

/// An event sink that draws progress; silent when `quiet`; log records (JSON lines) with
/// `--log-format json`, so every stderr line is JSON.
pub(crate) fn sink(quiet: bool) -> EventSink {
    if quiet {
        return EventSink::new(|_| {});
    }
    if super::logging::format() == super::LogFormat::Json {
        let render = Mutex::new(Render::default());
        return EventSink::new(move |e| {
            let (drill, phase) = e.drill_phase();
            for out in render.lock().unwrap_or_else(|p| p.into_inner()).on(e) {
                if let Out::Line { text, .. } | Out::Spin { text, .. } = out {
                    tracing::info!(target: "stackdrill::progress", drill = %drill, phase, "{text}");
                }
            }
        });
    }
    let stderr = std::io::stderr();
    let columns = console::Term::stderr().size_checked().map(|(_, c)| c);
    let render = Mutex::new(Render::default());
    match mode(stderr.is_terminal(), columns, std::env::var_os("CI").is_some()) {
        Mode::Spinners => {
            let multi = SPINNERS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
            let ui = Tty { multi: multi.clone(), bars: Mutex::new(HashMap::new()) };
            EventSink::new(move |e| {
                let outs = render.lock().unwrap_or_else(|p| p.into_inner()).on(e);
                ui.draw(outs)
            })
        }
        Mode::Lines => EventSink::new(move |e| {
            let on = super::color_enabled();
            for out in render.lock().unwrap_or_else(|p| p.into_inner()).on(e) {
                match out {
                    Out::Line { text, tone } => eprintln!("{}", colour_mark(&text, tone, on)),
                    // Without spinners, a phase's start and its messages are lines too.
                    Out::Spin { text, .. } => eprintln!("{text}"),
                    Out::Clear { .. } => {}
                }
            }
        }),
    }
}

/// Progress as log records (text or JSON, as `--log-format` says): for the scheduler, whose output is a log.
pub(crate) fn log_sink(quiet: bool) -> EventSink {
    if quiet {
        return EventSink::new(|_| {});
    }
    let render = Mutex::new(Render::default());
    EventSink::new(move |e| {
        for out in render.lock().unwrap_or_else(|p| p.into_inner()).on(e) {
            match out {
                Out::Line { text, .. } | Out::Spin { text, .. } => tracing::info!("{text}"),
                Out::Clear { .. } => {}
            }
        }
    })
}

impl Event {
    fn drill_phase(&self) -> (String, &'static str) {
        match self {
            Event::PhaseStarted { drill, phase }
            | Event::PhaseProgress { drill, phase, .. }
            | Event::PhaseFinished { drill, phase, .. } => (drill.clone(), *phase),
            Event::CheckFinished { drill, .. } => (drill.clone(), "verify"),
        }
    }
}

/// What to draw for one event.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    /// A line that stays: a phase's end, a check's result. `tone` colours its leading mark.
    Line { text: String, tone: Option<Tone> },
    /// The running phase's spinner (started or its message changed); a plain line without spinners.
    Spin { key: (String, &'static str), text: String },
    /// The phase's spinner goes (its end is the [`Out::Line`] that follows).
    Clear { key: (String, &'static str) },
}

/// The rendering state machine: which checks failed in each drill's verify phase.
#[derive(Default)]
struct Render {
    failed_checks: HashMap<String, usize>,
    spinning: HashSet<(String, &'static str)>,
}

fn mark(status: &str) -> (&'static str, Tone) {
    match status {
        "passed" => ("ok", Tone::Good),
        "skipped" => ("--", Tone::Warn),
        _ => ("!!", Tone::Bad),
    }
}

impl Render {
    fn on(&mut self, e: Event) -> Vec<Out> {
        match e {
            Event::PhaseStarted { drill, phase } => {
                if phase == "verify" {
                    self.failed_checks.remove(&drill);
                }
                self.spinning.insert((drill.clone(), phase));
                let text = visible(&format!("[{drill}] {phase}: started")).into_owned();
                vec![Out::Spin { key: (drill, phase), text }]
            }
            Event::PhaseProgress { drill, phase, message } => {
                let text = visible(&format!("[{drill}] {phase}: {message}")).into_owned();
                vec![Out::Spin { key: (drill, phase), text }]
            }
            Event::PhaseFinished { drill, phase, status, seconds, detail } => {
                let failed = if phase == "verify" { self.failed_checks.get(&drill).copied().unwrap_or(0) } else { 0 };
                // The phase ran to its end, but a check in it failed: the phase did not pass.
                let (status, detail) = match (status, failed) {
                    (PhaseStatus::Passed, n) if n > 0 => (
                        "failed".to_string(),
                        Some(detail.unwrap_or_else(|| crate::config::count(n as u64, "check failed", "checks failed"))),
                    ),
                    (s, _) => (s.as_str().to_string(), detail),
                };
                let (m, tone) = mark(&status);
                let d = detail.map(|d| format!(" — {d}")).unwrap_or_default();
                let text =
                    visible(&format!("{m} [{drill}] {phase}: {status} in {}{d}", human_seconds(seconds))).into_owned();
                let key = (drill, phase);
                let mut outs = Vec::new();
                if self.spinning.remove(&key) {
                    outs.push(Out::Clear { key });
                }
                outs.push(Out::Line { text, tone: Some(tone) });
                outs
            }
            Event::CheckFinished { drill, check } => {
                if !matches!(check.status, CheckStatus::Passed | CheckStatus::Skipped) {
                    *self.failed_checks.entry(drill.clone()).or_default() += 1;
                }
                let (m, tone) = mark(check.status.as_str());
                let text = visible(&format!(
                    "   {m} [{drill}] check {} `{}`: {} — {}",
                    check.kind,
                    check.name,
                    check.status.as_str(),
                    check.detail
                ))
                .into_owned();
                vec![Out::Line { text, tone: Some(tone) }]
            }
        }
    }
}

/// `text` with its leading mark (`ok`, `!!`, `--`) coloured.
fn colour_mark(text: &str, tone: Option<Tone>, on: bool) -> String {
    let Some(tone) = tone else { return text.to_string() };
    let trimmed = text.trim_start();
    let indent = &text[..text.len() - trimmed.len()];
    match trimmed.split_once(' ') {
        Some((m, rest)) => format!("{indent}{} {rest}", paint(m, tone, on)),
        None => text.to_string(),
    }
}

struct Tty {
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, &'static str), ProgressBar>>,
}

impl Tty {
    fn draw(&self, outs: Vec<Out>) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let on = super::color_enabled();
        for out in outs {
            match out {
                Out::Spin { key, text } => {
                    let bar = bars.entry(key).or_insert_with(|| {
                        let bar = self.multi.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} {wide_msg} {elapsed}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    });
                    bar.set_message(text);
                }
                Out::Clear { key } => {
                    if let Some(bar) = bars.remove(&key) {
                        bar.finish_and_clear();
                        self.multi.remove(&bar);
                    }
                }
                // Printed above the spinners: it stays, whatever they redraw.
                Out::Line { text, tone } => {
                    let _ = self.multi.println(colour_mark(&text, tone, on));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::verify::CheckResult;

    fn check(name: &str, kind: &str, status: CheckStatus, detail: &str) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: kind.into(),
            status,
            detail: detail.into(),
            seconds: 0.1,
            newest: None,
            heartbeat: None,
        }
    }

    fn lines(outs: &[Out]) -> Vec<String> {
        outs.iter()
            .filter_map(|o| match o {
                Out::Line { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    fn phase(r: &mut Render, phase: &'static str, detail: Option<&str>) -> Vec<Out> {
        let mut outs = r.on(Event::PhaseStarted { drill: "d".into(), phase });
        outs.extend(r.on(Event::PhaseProgress { drill: "d".into(), phase, message: "working".into() }));
        outs.extend(r.on(Event::PhaseFinished {
            drill: "d".into(),
            phase,
            status: PhaseStatus::Passed,
            seconds: 1.0,
            detail: detail.map(String::from),
        }));
        outs
    }

    /// Every finished phase, with its detail (the target and backup of the plan), is a line that stays; the
    /// spinner of a phase is cleared before its end is printed.
    #[test]
    fn every_phase_end_stays_and_its_spinner_goes() {
        let mut r = Render::default();
        let mut outs = Vec::new();
        for (p, d) in [
            ("setup", None),
            ("plan", Some("target 2026-12-06 02:19:39 UTC, backup base-1")),
            ("restore", None),
            ("ready", None),
        ] {
            let o = phase(&mut r, p, d);
            let clear = o.iter().position(|x| matches!(x, Out::Clear { .. })).expect("spinner cleared");
            let line = o.iter().position(|x| matches!(x, Out::Line { .. })).expect("end printed");
            assert!(clear < line, "{o:?}");
            outs.extend(o);
        }
        let kept = lines(&outs);
        assert_eq!(kept.len(), 4, "{kept:?}");
        for p in ["setup", "plan", "restore", "ready"] {
            assert!(kept.iter().any(|l| l.contains(&format!("[d] {p}: passed"))), "{p} in {kept:?}");
        }
        assert!(kept[1].contains("target 2026-12-06 02:19:39 UTC, backup base-1"), "{kept:?}");
    }

    /// A verify phase in which a check failed ends `failed`, never `passed`; the next run's verify starts
    /// clean.
    #[test]
    fn a_failed_check_makes_the_verify_line_say_failed() {
        let mut r = Render::default();
        r.on(Event::PhaseStarted { drill: "d".into(), phase: "verify" });
        let failed = check("orders", "row-count", CheckStatus::Failed, "2 rows missing");
        let passed = check("canary", "canary", CheckStatus::Passed, "found");
        let mut outs = r.on(Event::CheckFinished { drill: "d".into(), check: failed });
        outs.extend(r.on(Event::CheckFinished { drill: "d".into(), check: passed }));
        outs.extend(r.on(Event::PhaseFinished {
            drill: "d".into(),
            phase: "verify",
            status: PhaseStatus::Passed,
            seconds: 2.0,
            detail: None,
        }));
        let kept = lines(&outs);
        assert!(kept[0].starts_with("   !! [d] check row-count `orders`: failed"), "{kept:?}");
        let end = kept.last().unwrap();
        assert!(end.starts_with("!! [d] verify: failed in 2.0s — 1 check failed"), "{end}");
        assert!(!end.contains("passed"), "{end}");
        let again = phase(&mut r, "verify", None);
        assert!(lines(&again)[0].starts_with("ok [d] verify: passed"), "{again:?}");
    }

    #[test]
    fn values_that_would_act_on_the_terminal_are_shown() {
        let mut r = Render::default();
        let check = check("x", "sql", CheckStatus::Failed, "\u{1b}[2K\r✔ ALL CHECKS PASSED");
        let kept = lines(&r.on(Event::CheckFinished { drill: "d".into(), check }));
        assert!(kept[0].contains("\\u{1b}[2K\\r✔ ALL CHECKS PASSED") && !kept[0].contains('\u{1b}'), "{kept:?}");
    }

    /// Spinners only on a terminal with columns, and never under CI.
    #[test]
    fn a_zero_column_terminal_gets_lines() {
        assert_eq!(mode(true, Some(120), false), Mode::Spinners);
        assert_eq!(mode(true, Some(0), false), Mode::Lines);
        assert_eq!(mode(true, None, false), Mode::Lines);
        assert_eq!(mode(false, Some(80), false), Mode::Lines);
        assert_eq!(mode(true, Some(80), true), Mode::Lines);
    }
}
