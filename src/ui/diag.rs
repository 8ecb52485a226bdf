//! Lines for people on stderr: errors with their causes and hint, warnings, notes; and whether to colour.

/// Whether stderr takes colour (`--color`, `NO_COLOR`, a terminal).
pub(crate) fn color_enabled() -> bool {
    super::color::enabled(super::color::Stream::Stderr)
}

/// A stderr line as people see it: characters that would act on the terminal shown as escapes, and the
/// `error:` / `warning:` prefix coloured when stderr takes colour.
fn for_terminal(line: &str) -> String {
    use super::color::{Tone, paint};
    let line = crate::report::visible::visible(line);
    let on = color_enabled();
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    for (prefix, tone) in [("error:", Tone::Bad), ("warning:", Tone::Warn)] {
        if let Some(rest) = trimmed.strip_prefix(prefix) {
            return format!("{indent}{}{rest}", paint(prefix, tone, on));
        }
    }
    line.into_owned()
}

/// A line for people on stderr (`error: …`, `warning: …`, a note); under `--log-format json` a JSON log
/// record instead (level from the prefix), so every stderr line is JSON.
pub(crate) fn diag_line(text: &str) {
    if super::logging::format() == super::LogFormat::Text {
        super::progress::suspended(|| {
            for line in text.split('\n') {
                eprintln!("{}", for_terminal(line));
            }
        });
        return;
    }
    for line in text.lines().map(str::trim_start) {
        if let Some(m) = line.strip_prefix("error: ") {
            tracing::error!(target: "stackdrill::diag", "{m}");
        } else if let Some(m) = line.strip_prefix("warning: ") {
            tracing::warn!(target: "stackdrill::diag", "{m}");
        } else {
            tracing::info!(target: "stackdrill::diag", "{line}");
        }
    }
}

/// A question on stderr, without a newline, for the answer to follow on the same line (`stack apply`'s
/// confirmation).
pub(crate) fn prompt(question: &str) {
    use std::io::Write;
    eprint!("{}", for_terminal(question));
    let _ = std::io::stderr().flush();
}

/// `eprintln!` for people, through [`diag_line`].
macro_rules! diag {
    ($($arg:tt)*) => { $crate::ui::diag_line(&format!($($arg)*)) };
}
pub(crate) use diag;

/// Prints `error:`, each `caused by:`, then `hint:` to stderr (one JSON record under `--log-format json`).
pub(crate) fn print_error(err: &anyhow::Error, hint: Option<&str>) {
    if super::logging::format() == super::LogFormat::Json {
        let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
        let caused_by = (!causes.is_empty()).then(|| causes.join("; "));
        tracing::error!(target: "stackdrill::diag", caused_by, hint, "{err}");
        return;
    }
    super::progress::suspended(|| {
        eprintln!("{}", for_terminal(&format!("error: {err}")));
        for cause in err.chain().skip(1) {
            eprintln!("{}", for_terminal(&format!("  caused by: {cause}")));
        }
        if let Some(h) = hint {
            eprintln!("{}", for_terminal(&format!("  hint: {h}")));
        }
    });
}
