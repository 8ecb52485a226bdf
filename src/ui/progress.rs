//! Renders drill events on stderr: one spinner line per phase on a TTY, one plain line per phase otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::config::human_seconds;
use crate::drill::events::{Event, EventSink};
use crate::drill::verify::CheckStatus;

/// An event sink that draws progress; silent when `quiet`; log records (JSON lines) with
/// `--log-format json`, so every stderr line is JSON.
pub(crate) fn sink(quiet: bool) -> EventSink {
    if quiet {
        return EventSink::new(|_| {});
    }
    if super::logging::format() == super::LogFormat::Json {
        return EventSink::new(json_line);
    }
    if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
        let ui = Tty { multi: MultiProgress::new(), bars: Mutex::new(HashMap::new()) };
        EventSink::new(move |e| ui.on(e))
    } else {
        EventSink::new(plain)
    }
}

fn status_mark(status: &str) -> &'static str {
    match status {
        "passed" => "ok",
        "skipped" => "--",
        _ => "!!",
    }
}

/// Progress as log records (text or JSON, as `--log-format` says): for the scheduler, whose output is a log.
pub(crate) fn log_sink(quiet: bool) -> EventSink {
    if quiet {
        return EventSink::new(|_| {});
    }
    EventSink::new(|e| tracing::info!("{}", line(e)))
}

/// A progress event as a log record with its drill and phase as fields (a JSON line under `--log-format json`).
fn json_line(e: Event) {
    let (drill, phase) = match &e {
        Event::PhaseStarted { drill, phase }
        | Event::PhaseProgress { drill, phase, .. }
        | Event::PhaseFinished { drill, phase, .. } => (drill.clone(), *phase),
        Event::CheckFinished { drill, .. } => (drill.clone(), "verify"),
    };
    tracing::info!(target: "stackdrill::progress", drill = %drill, phase, "{}", line(e));
}

fn plain(e: Event) {
    eprintln!("{}", line(e));
}

fn line(e: Event) -> String {
    match e {
        Event::PhaseStarted { drill, phase } => format!("[{drill}] {phase}: started"),
        Event::PhaseProgress { drill, phase, message } => format!("[{drill}] {phase}: {message}"),
        Event::PhaseFinished { drill, phase, status, seconds, detail } => {
            let d = detail.map(|d| format!(" — {d}")).unwrap_or_default();
            format!("[{drill}] {phase}: {status} in {}{d}", human_seconds(seconds))
        }
        Event::CheckFinished { drill, check } => {
            format!("[{drill}]   check {} `{}`: {} — {}", check.kind, check.name, check.status.as_str(), check.detail)
        }
    }
}

struct Tty {
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, &'static str), ProgressBar>>,
}

impl Tty {
    fn on(&self, e: Event) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::PhaseStarted { drill, phase } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{prefix}] {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(drill.clone());
                bar.set_message(phase.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert((drill, phase), bar);
            }
            Event::PhaseProgress { drill, phase, message } => {
                if let Some(bar) = bars.get(&(drill, phase)) {
                    bar.set_message(format!("{phase}: {message}"));
                }
            }
            Event::PhaseFinished { drill, phase, status, seconds, detail } => {
                let d = detail.map(|d| format!(" — {d}")).unwrap_or_default();
                let text = format!(
                    "{} [{drill}] {phase} {status} in {}{d}",
                    status_mark(status.as_str()),
                    human_seconds(seconds)
                );
                match bars.remove(&(drill, phase)) {
                    Some(bar) => {
                        bar.set_style(
                            ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.finish_with_message(text);
                    }
                    None => {
                        let _ = self.multi.println(text);
                    }
                }
            }
            Event::CheckFinished { drill, check } => {
                let mark = if check.status == CheckStatus::Passed { "ok" } else { status_mark(check.status.as_str()) };
                let _ = self
                    .multi
                    .println(format!("   {mark} [{drill}] {} `{}`: {}", check.kind, check.name, check.detail));
            }
        }
    }
}
