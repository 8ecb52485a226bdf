//! stdout carries data you could pipe; a closed pipe on stdout is not an error, and not a success either:
//! the command carries on without its stdout and exits with the code it would have had.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::report::visible::{json_escaped, visible};

/// Set once a write to stdout met a closed pipe: later writes are dropped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Set once anything was written to stdout.
static STDOUT_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Whether anything was written to stdout (or tried to be, into a closed pipe).
pub(crate) fn stdout_written() -> bool {
    STDOUT_WRITTEN.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub(crate) enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    pub(crate) format: OutputFormat,
}

impl Printer {
    /// Writes a line of data to stdout.
    pub(crate) fn line(&self, text: impl AsRef<str>) {
        write_stdout(&format!("{}\n", text.as_ref()));
    }

    /// Writes a line of data to stdout with the first `word` in it coloured as what it says (a verdict:
    /// `PASSED` green, `FAILED` red), when stdout is a terminal that takes colour (`--color`, `NO_COLOR`).
    pub(crate) fn line_marked(&self, text: impl AsRef<str>, word: &str) {
        let on = super::color::enabled(super::color::Stream::Stdout);
        write_raw(&format!("{}\n", marked(text.as_ref(), word, on)));
    }

    /// Writes a JSON value to stdout; characters that would act on a terminal (bidi overrides, C1
    /// controls) stay in their strings as `\uXXXX` escapes — the same data.
    pub(crate) fn json<T: serde::Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => write_raw(&format!("{}\n", json_escaped(&s))),
            Err(e) => tracing::error!(error = %e, "cannot serialise output"),
        }
    }

    pub(crate) fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }
}

/// Writes data to stdout as `print!` would, but a closed pipe is quiet instead of a panic: the rest of the
/// output is dropped and the command goes on to the exit code it would have had (a failed drill piped into
/// `head -1` still exits 1, so a CI gate never reads a closed pipe as a pass).
///
/// Characters that would act on the terminal instead of showing (`ESC[2K\r`, OSC 52, U+202E) are written
/// as escapes ([`visible`]): a database value or a name cannot erase or reorder the verdict.
pub(crate) fn write_stdout(s: &str) {
    write_raw(&visible(s));
}

/// [`write_stdout`] for text stackdrill made itself (a completion script, colour codes added after
/// sanitising): written as it is.
pub(crate) fn write_raw(s: &str) {
    STDOUT_WRITTEN.store(true, Ordering::Relaxed);
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        // The reader went away (`| head`); that is how pipes end, not a failure — nor a verdict.
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `text` made [`visible`], then its first `word` coloured as what it says when `on`.
fn marked(text: &str, word: &str, on: bool) -> String {
    let text = visible(text);
    match (on, text.find(word)) {
        (true, Some(at)) if !word.is_empty() => {
            let end = at + word.len();
            let tone = super::color::tone_of(word);
            format!("{}{}{}", &text[..at], super::color::paint(word, tone, true), &text[end..])
        }
        _ => text.into_owned(),
    }
}

/// Columns padded to their widest cell (the last column is not padded), one line per row.
pub(crate) fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (c, w) in cells.zip(&width) {
            let pad = w.saturating_sub(c.chars().count());
            s.push_str(c);
            s.push_str(&" ".repeat(pad + 2));
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(&mut head.iter().copied())];
    out.extend(rows.iter().map(|r| line(&mut r.iter().map(String::as_str))));
    out.join("\n")
}

/// `print!` for data on stdout, through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::ui::write_stdout(&format!($($arg)*)) };
}
pub(crate) use out;

/// `println!` for data on stdout, through [`write_stdout`].
macro_rules! outln {
    () => { $crate::ui::write_stdout("\n") };
    ($($arg:tt)*) => { $crate::ui::write_stdout(&format!("{}\n", format_args!($($arg)*))) };
}
pub(crate) use outln;

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict word is coloured (red for FAILED, green for PASSED) only when colour is on; a value that
    /// carries its own escape sequence (`ESC[2K\r… ALL CHECKS PASSED`) is shown, not obeyed, either way.
    #[test]
    fn verdicts_are_coloured_and_values_cannot_rewrite_them() {
        let line = "orders: FAILED  RTO 1m\n  reason: check `x` failed: \u{1b}[2K\r✔ ALL CHECKS PASSED";
        let on = marked(line, "FAILED", true);
        assert!(on.starts_with("orders: \u{1b}[1;31mFAILED\u{1b}[0m  RTO 1m"), "{on:?}");
        assert!(on.ends_with("failed: \\u{1b}[2K\\r✔ ALL CHECKS PASSED"), "{on:?}");
        assert_eq!(on.matches('\u{1b}').count(), 2, "only the colour's own escapes: {on:?}");
        let off = marked(line, "FAILED", false);
        assert!(!off.contains('\u{1b}') && !off.contains('\r'), "{off:?}");
        assert!(marked("orders: PASSED  RTO 1m", "PASSED", true).contains("\u{1b}[32mPASSED\u{1b}[0m"));
    }
}
