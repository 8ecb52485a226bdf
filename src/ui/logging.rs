//! tracing setup: logs go to stderr as text or JSON lines; `-v`/`-q` pick the level, `RUST_LOG` overrides.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

static FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// The `--log-format` logging was set up with (text until then).
pub(crate) fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or(LogFormat::Text)
}

pub(crate) fn init(format: LogFormat, verbose: u8, quiet: bool) {
    let _ = FORMAT.set(format);
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "stackdrill={level},stackdrill::progress=info,stackdrill::diag=info,tokio_postgres=warn,warn"
        ))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(super::color_enabled()).with_target(false).try_init(),
    };
}
