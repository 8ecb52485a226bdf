//! stdout carries data you could pipe; a closed pipe on stdout is not an error.

use std::io::Write;

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

    /// Writes a JSON value to stdout.
    pub(crate) fn json<T: serde::Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => write_stdout(&format!("{s}\n")),
            Err(e) => tracing::error!(error = %e, "cannot serialise output"),
        }
    }

    pub(crate) fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }
}

/// Writes data to stdout as `print!` would, but a closed pipe ends the process quietly instead of panicking.
pub(crate) fn write_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        // The reader went away (`| head`); that is how pipes end, not a failure.
        std::process::exit(0);
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
