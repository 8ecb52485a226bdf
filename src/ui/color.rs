//! Colour on a terminal: verdicts and failed checks, chosen by `--color auto|always|never` and `NO_COLOR`.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`: `auto` colours a stream that is a terminal unless `NO_COLOR` is set (and not empty);
/// `always` and `never` decide for both streams, whatever `NO_COLOR` says (a flag is the more specific ask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: OnceLock<ColorChoice> = OnceLock::new();

/// Sets the `--color` choice, once, before anything prints.
pub(crate) fn set_choice(c: ColorChoice) {
    let _ = CHOICE.set(c);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Whether to colour what goes to `stream`.
pub(crate) fn enabled(stream: Stream) -> bool {
    decide(CHOICE.get().copied().unwrap_or_default(), std::env::var_os("NO_COLOR"), || match stream {
        Stream::Stdout => std::io::stdout().is_terminal(),
        Stream::Stderr => std::io::stderr().is_terminal(),
    })
}

fn decide(choice: ColorChoice, no_color: Option<std::ffi::OsString>, terminal: impl FnOnce() -> bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => no_color.is_none_or(|v| v.is_empty()) && terminal(),
    }
}

/// What a piece of text means, and so its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Passed, met: green.
    Good,
    /// Failed, missed, an error: bold red.
    Bad,
    /// Could not run, skipped, a warning: yellow.
    Warn,
}

/// `text` in `tone`'s colour when `on`, else unchanged. `text` must already be sanitised
/// ([`crate::report::visible::visible`]): this adds the only escape sequences stackdrill writes.
pub(crate) fn paint(text: &str, tone: Tone, on: bool) -> String {
    if !on || text.is_empty() {
        return text.to_string();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Bad => "1;31",
        Tone::Warn => "33",
    };
    format!("\u{1b}[{code}m{text}\u{1b}[0m")
}

/// The tone of a verdict or status word (`PASSED`, `failed`, `error`, `skipped`, `could-not-run`, …).
pub(crate) fn tone_of(word: &str) -> Tone {
    match word.to_ascii_lowercase().as_str() {
        "passed" | "ok" | "met" | "done" | "nothing-to-do" => Tone::Good,
        "skipped" | "could not run" | "could-not-run" | "--" | "warning" | "interrupted" => Tone::Warn,
        _ => Tone::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_a_terminal_without_no_color_and_flags_decide_alone() {
        let set = Some(std::ffi::OsString::from("1"));
        assert!(decide(ColorChoice::Auto, None, || true));
        assert!(!decide(ColorChoice::Auto, None, || false), "not a terminal");
        assert!(!decide(ColorChoice::Auto, set.clone(), || true), "NO_COLOR");
        assert!(decide(ColorChoice::Auto, Some("".into()), || true), "an empty NO_COLOR is unset");
        assert!(decide(ColorChoice::Always, set.clone(), || false));
        assert!(!decide(ColorChoice::Never, None, || true));
    }

    #[test]
    fn paint_wraps_only_when_on() {
        assert_eq!(paint("FAILED", Tone::Bad, true), "\u{1b}[1;31mFAILED\u{1b}[0m");
        assert_eq!(paint("FAILED", Tone::Bad, false), "FAILED");
        assert_eq!(tone_of("PASSED"), Tone::Good);
        assert_eq!(tone_of("FAILED"), Tone::Bad);
        assert_eq!(tone_of("error"), Tone::Bad);
        assert_eq!(tone_of("skipped"), Tone::Warn);
    }
}
