//! `drill run --metrics-file` and `schedule run --metrics-listen`: the store's state as OpenMetrics text
//! (`report::prometheus`), written atomically for node_exporter's textfile collector, or served on
//! `/metrics`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::anyhow;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Failure;
use super::args::StoreArgs;
use crate::config::DrillSpec;

/// Where the metrics come from: the store, the drill files, and a running scheduler's heartbeat.
#[derive(Clone)]
pub(crate) struct Source {
    pub(crate) reports: PathBuf,
    pub(crate) retain: std::time::Duration,
    pub(crate) aws: crate::aws::AwsSettings,
    pub(crate) files: Vec<PathBuf>,
    /// Unix milliseconds of the scheduler's last loop; 0 when there is no scheduler.
    pub(crate) heartbeat: Arc<AtomicI64>,
    /// The last text served and when: scrapes within [`FRESH`] of it get it again instead of re-reading
    /// (for an s3:// store, re-downloading and re-auditing) the whole store.
    pub(crate) served: Arc<tokio::sync::Mutex<Option<(std::time::Instant, String)>>>,
}

/// How long a served text stands for later scrapes.
const FRESH: std::time::Duration = std::time::Duration::from_secs(15);

impl Source {
    /// The OpenMetrics text as of now.
    pub(crate) async fn render(&self) -> Result<String, Failure> {
        let args = StoreArgs { reports: Some(self.reports.clone()), retain: self.retain, ..Default::default() };
        let view = super::report::open(&args, &self.aws).await?;
        let store = super::report::store(&view)?;
        let specs: Vec<DrillSpec> = self.files.iter().filter_map(|f| crate::config::load_drill(f).ok()).collect();
        let beat = self.heartbeat.load(Ordering::Relaxed);
        let heartbeat = (beat > 0).then(|| chrono::DateTime::from_timestamp_millis(beat)).flatten();
        Ok(crate::report::prometheus::render(&store, &specs, chrono::Utc::now(), heartbeat))
    }

    /// The text for a scrape: the last one while fresh, else rendered now (one render at a time).
    async fn scrape(&self) -> Result<String, Failure> {
        let mut served = self.served.lock().await;
        if let Some((_, text)) = served.as_ref().filter(|(at, _)| at.elapsed() < FRESH) {
            return Ok(text.clone());
        }
        let text = self.render().await?;
        *served = Some((std::time::Instant::now(), text.clone()));
        Ok(text)
    }

    /// Writes the text to `path` atomically (node_exporter never reads half a file); a failure is a warning.
    pub(crate) async fn write(&self, path: &Path) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let written = match self.render().await {
            Ok(text) => crate::report::atomic_write(path, text.as_bytes()).map_err(|e| e.to_string()),
            Err(f) => Err(f.error.to_string()),
        };
        if let Err(e) = written {
            crate::ui::diag!("warning: cannot write the metrics file `{}`: {e}", path.display());
        }
    }
}

/// Binds `addr` and serves `GET /metrics` until the process ends; other paths answer 404.
pub(crate) async fn listen(addr: &str, source: Source) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::could_not_run(
            anyhow!("cannot listen on `{addr}` for metrics: {e}"),
            Some("give a free host:port, e.g. --metrics-listen 127.0.0.1:9477".into()),
        )
    })?;
    tracing::info!("serving metrics on http://{addr}/metrics");
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else { continue };
            let source = source.clone();
            tokio::spawn(async move {
                let _ = serve(conn, &source).await;
            });
        }
    });
    Ok(())
}

async fn serve(mut conn: tokio::net::TcpStream, source: &Source) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("request timed out"))??;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, kind, body) = if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
        match source.scrape().await {
            Ok(text) => ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", text),
            Err(f) => ("503 Service Unavailable", "text/plain; charset=utf-8", format!("{}\n", f.error)),
        }
    } else {
        ("404 Not Found", "text/plain; charset=utf-8", "metrics are at /metrics\n".into())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(response.as_bytes()).await?;
    conn.shutdown().await
}
