//! Everything people see: the stdout printer, progress on stderr, logging, and error rendering.

pub(crate) mod color;
mod diag;
pub(crate) mod junit;
mod logging;
pub(crate) mod plan;
pub(crate) mod posture;
mod printer;
mod progress;
mod summary;

pub(crate) use diag::{color_enabled, diag, diag_line, print_error, prompt};
pub(crate) use junit::Junit;
pub(crate) use logging::{LogFormat, init as init_logging};
pub(crate) use printer::{OutputFormat, Printer, out, outln, stdout_written, table, write_raw, write_stdout};
pub(crate) use progress::{log_sink, sink as progress_sink};
pub(crate) use summary::{Progress, Summary, summary};
