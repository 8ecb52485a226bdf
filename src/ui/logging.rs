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
    // The SDK's credential and region chains warn about every source they try (instance metadata on a
    // laptop, above all): noise at the default level, since stackdrill names a missing credential or region
    // itself. `-v` shows them (one line each), `-vv` whole.
    let sdk = if verbose == 0 && !quiet { ",aws_config=error" } else { "" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "stackdrill={level},stackdrill::progress=info,stackdrill::diag=info,tokio_postgres=warn,warn{sdk}"
        ))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => {
            let ansi = super::color_enabled();
            let inner = tracing_subscriber::fmt::format().with_target(false).with_ansi(ansi);
            let brief = Brief { inner, detail: verbose >= 2, seen: Default::default() };
            builder.with_ansi(ansi).event_format(brief).try_init()
        }
    };
}

/// The text format, except that the AWS SDK's own events (`aws_*` targets), below `-vv`, are one line each,
/// once: the message and each field cut before the nested Debug dump the SDK appends (`… (FailedToLoadToken(
/// FailedToLoadToken { source: …`). `-vv` prints them whole.
struct Brief {
    inner: tracing_subscriber::fmt::format::Format,
    detail: bool,
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Brief
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        if self.detail || !meta.target().starts_with("aws_") {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut fields = BriefFields::default();
        event.record(&mut fields);
        let (message, rest) = fields.parts.split_first().map_or(("", &[][..]), |(m, r)| (m.as_str(), r));
        let line = if rest.is_empty() {
            format!("{} {message}", meta.level())
        } else {
            format!("{} {message}: {}", meta.level(), rest.join(" "))
        };
        let first = self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(line.clone());
        if first { writeln!(writer, "{line}") } else { Ok(()) }
    }
}

#[derive(Default)]
struct BriefFields {
    parts: Vec<String>,
}

impl tracing::field::Visit for BriefFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        let text = brief(&text);
        match field.name() {
            "message" => self.parts.insert(0, text),
            name => self.parts.push(format!("{name}={text}")),
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// One line, without the Debug structure an SDK error appends after ` (`, at most 300 characters.
fn brief(text: &str) -> String {
    let mut cut = text.len();
    for (i, _) in text.match_indices(" (") {
        let rest = &text[i + 2..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let after = rest[name.len()..].chars().next();
        if name.starts_with(|c: char| c.is_ascii_uppercase()) && matches!(after, Some('(' | '{' | ' ')) {
            cut = i;
            break;
        }
    }
    let one: String = text[..cut].split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 300 { format!("{}…", one.chars().take(300).collect::<String>()) } else { one }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_sdk_error_is_cut_before_its_debug_dump() {
        let text = "failed to load IMDS session token: service error: request forbidden: IMDS is disabled. \
                    (FailedToLoadToken(FailedToLoadToken { source: ServiceError(ServiceError { raw: Response {} }) }))";
        assert_eq!(
            super::brief(text),
            "failed to load IMDS session token: service error: request forbidden: IMDS is disabled."
        );
        assert_eq!(super::brief("plain words (with a note) stay"), "plain words (with a note) stay");
        assert_eq!(super::brief("a\nb"), "a b");
        assert!(super::brief(&"x".repeat(1000)).ends_with('…'));
    }
}
