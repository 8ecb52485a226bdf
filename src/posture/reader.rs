//! One reader per store kind behind one dispatch: each store is read within a deadline, and whatever
//! happens the store ends with figures (an unread one is `could not read`, never met).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{BackupStoreSpec, BackupsSpec, PostureSource};
use crate::report::posture::{Outcome, StorePosture};

/// Why a reader could not read a figure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PostureError {
    #[error("cannot connect to PostgreSQL at `{socket}` port {port}: {source}")]
    Connect { socket: String, port: u16, source: tokio_postgres::Error },
    #[error("cannot read {what}: {source}")]
    Query { what: &'static str, source: tokio_postgres::Error },
    #[error("cannot list the base backups: {0}")]
    Backups(#[from] crate::pg::PgError),
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

impl PostureError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            PostureError::Connect { .. } => Some(
                "check `socket-dir` and `port` in backups.yaml; the role (`user`) needs local trust or peer \
                 authentication for the OS user stackdrill runs as"
                    .into(),
            ),
            PostureError::Query { .. } => {
                Some("the role needs pg_monitor (pg_ls_archive_statusdir) or to be a superuser".into())
            }
            _ => None,
        }
    }

    /// The error and its hint, as a figure's detail.
    pub(crate) fn detail(&self) -> String {
        match self.hint() {
            Some(h) => format!("{self} (hint: {h})"),
            None => self.to_string(),
        }
    }
}

/// How long one store's reader may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// Reads every store of `spec` (only those named in `only`, when it names any), in file order, as of `now`.
pub(crate) async fn check(
    spec: &BackupsSpec,
    only: &[String],
    now: DateTime<Utc>,
    aws: &crate::aws::AwsSettings,
) -> Vec<StorePosture> {
    let mut out = Vec::new();
    for store in spec.stores.iter().filter(|s| only.is_empty() || only.contains(&s.name)) {
        out.push(read(store, now, aws).await);
    }
    out
}

async fn read(store: &BackupStoreSpec, now: DateTime<Utc>, aws: &crate::aws::AwsSettings) -> StorePosture {
    let figures = match tokio::time::timeout(DEADLINE, read_figures(store, now, aws)).await {
        Ok(f) => f,
        Err(_) => vec![super::figure::unread("read", None, PostureError::Timeout(DEADLINE).to_string())],
    };
    StorePosture { name: store.name.clone(), kind: store.source.kind().into(), result: Outcome::of(&figures), figures }
}

async fn read_figures(
    store: &BackupStoreSpec,
    now: DateTime<Utc>,
    aws: &crate::aws::AwsSettings,
) -> Vec<crate::report::posture::Figure> {
    if let Some(f) = super::aws::read(&store.source, &store.objectives, aws, now).await {
        return f;
    }
    match &store.source {
        PostureSource::LocalPostgres(l) => super::local_postgres::read(l, &store.objectives, now).await,
        PostureSource::Supabase(s) => super::supabase::read(s, &store.objectives, now).await,
        // Read above.
        PostureSource::RdsInstance(_)
        | PostureSource::AuroraCluster(_)
        | PostureSource::AwsBackup(_)
        | PostureSource::S3Bucket(_) => Vec::new(),
    }
}
