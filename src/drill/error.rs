//! Errors of the drill engine: a drill that could not run, and a restore that failed.

use chrono::{DateTime, Utc};

use crate::pg::PgError;

/// The drill did not start restoring: bad input, a missing dependency, a target outside the window.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DrillError {
    #[error("target {target} is outside the recoverable window {} .. {}", fmt_time(earliest), fmt_time(latest))]
    TargetOutsideWindow { target: String, earliest: DateTime<Utc>, latest: DateTime<Utc> },
    #[error("nothing is recoverable: {0}")]
    NoWindow(String),
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("cannot read the source password: {0}")]
    Secret(String),
    #[error("cannot connect to the source `{endpoint}`: {detail}")]
    Source { endpoint: String, detail: String },
    #[error("cannot read runbook `{path}`: {detail}")]
    Runbook { path: String, detail: String },
    #[error("the plan phase did not finish within {0}")]
    PlanTimeout(String),
    #[error("interrupted before the restore started")]
    Interrupted,
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    #[error("Supabase API: {0}")]
    Supabase(#[from] crate::supabase::ApiError),
    #[error("{0}")]
    NotFound(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    AlreadyRunning(String),
    #[error("the plan phase panicked (a bug): {0}")]
    Panicked(String),
}

impl DrillError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            DrillError::Pg(e) => e.hint(),
            DrillError::Aws(e) => e.hint(),
            DrillError::Supabase(e) => e.hint().map(str::to_string),
            DrillError::TargetOutsideWindow { .. } => {
                Some("pick a target inside the window, e.g. `--target latest` or `--target random`".into())
            }
            DrillError::NoWindow(_) => Some(
                "for local-postgres take a base backup and check WAL archiving; on AWS check automated backups".into(),
            ),
            DrillError::NotFound(_) => Some("check the identifier, `--region` and `--profile`".into()),
            DrillError::Source { detail, .. } => source_hint(detail),
            DrillError::AlreadyRunning(_) => {
                Some("`--if-running wait` queues behind it; `--if-running parallel` restores a second scratch".into())
            }
            _ => None,
        }
    }
}

/// What to do about a source connection that failed on the server's certificate (rustls names the check in
/// the error's causes: `invalid peer certificate: UnknownIssuer`).
fn source_hint(detail: &str) -> Option<String> {
    if detail.contains("UnknownIssuer") || detail.contains("unknown issuer") {
        return Some(
            "the server's certificate is not signed by a CA in the drill file's `ca-bundle`: give the bundle of \
             the CA that signed it (for RDS, the region's bundle from truststore.pki.rds.amazonaws.com), or check \
             that this is the server you meant"
                .into(),
        );
    }
    if detail.contains("NotValidForName") || detail.contains("not valid for name") {
        return Some(
            "the server's certificate does not name the host connected to: connect by the name in the \
             certificate"
                .into(),
        );
    }
    if detail.contains("Expired") || detail.contains("expired") {
        return Some("the server's certificate has expired (or this machine's clock is wrong)".into());
    }
    None
}

/// Why a restore did not produce a usable scratch database.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RestoreError {
    /// The backups could not be restored as asked: the drill ran and was not verified.
    #[error("{0}")]
    Failed(String),
    /// Something around the restore broke (disk, processes); not a verdict on the backups.
    #[error("{0}")]
    Error(String),
}

impl From<PgError> for RestoreError {
    fn from(e: PgError) -> Self {
        RestoreError::Error(e.to_string())
    }
}

pub(crate) fn fmt_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate another CA signed: the hint says the `ca-bundle` did not sign it.
    #[test]
    fn a_certificate_error_names_the_ca_bundle() {
        let e = DrillError::Source {
            endpoint: "drill@db:5432/app".into(),
            detail: "error performing TLS handshake: invalid peer certificate: UnknownIssuer".into(),
        };
        let hint = e.hint().expect("a hint");
        assert!(hint.contains("not signed by a CA in the drill file's `ca-bundle`"), "{hint}");
        let other = DrillError::Source { endpoint: "e".into(), detail: "connection refused".into() };
        assert_eq!(other.hint(), None);
    }
}
