//! Everything people see: the stdout printer, progress on stderr, logging, and error rendering.

mod logging;
mod printer;
mod progress;
mod summary;

pub(crate) use logging::{LogFormat, init as init_logging};
pub(crate) use printer::{OutputFormat, Printer, out, outln, table, write_stdout};
pub(crate) use progress::{log_sink, sink as progress_sink};
pub(crate) use summary::{Progress, Summary, summary};

/// Colour only on a terminal and never with `NO_COLOR` set.
pub(crate) fn color_enabled() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Prints `error:`, each `caused by:`, then `hint:` to stderr.
pub(crate) fn print_error(err: &anyhow::Error, hint: Option<&str>) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(h) = hint {
        eprintln!("  hint: {h}");
    }
}
