//! Lines for people on stderr: errors with their causes and hint, warnings, notes; and whether to colour.

/// Colour only on a terminal and never with `NO_COLOR` set.
pub(crate) fn color_enabled() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// A line for people on stderr (`error: …`, `warning: …`, a note); under `--log-format json` a JSON log
/// record instead (level from the prefix), so every stderr line is JSON.
pub(crate) fn diag_line(text: &str) {
    if super::logging::format() == super::LogFormat::Text {
        eprintln!("{text}");
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
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(h) = hint {
        eprintln!("  hint: {h}");
    }
}
