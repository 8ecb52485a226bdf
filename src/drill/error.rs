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
    /// An object of a bucket restore could not be copied into the scratch bucket: the backups could not be
    /// restored as asked (the verdict `failed`), and the AWS kind says why.
    #[error(transparent)]
    ObjectCopy(#[from] CopyError),
    /// A bucket of `also-restore` failed; its error keeps its kind (a verdict on the backups or not).
    #[error("bucket restore `{name}`: {source}")]
    Bucket { name: String, source: Box<RestoreError> },
    /// The restored database took no connection (its text says why: refused, TLS, authentication).
    #[error("cannot connect to the restore: {0}")]
    Unreachable(String),
    /// An AWS call failed: its kind tells throttling from not-found from denied. Not a verdict on the
    /// backups.
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    /// A scratch resource could not be made or removed. Not a verdict on the backups.
    #[error(transparent)]
    Scratch(#[from] ScratchError),
    /// The restored copy could not be made inert (`restore/outbound.rs`). Not a verdict on the backups.
    #[error(transparent)]
    Neutralise(#[from] crate::drill::restore::outbound::OutboundError),
}

impl RestoreError {
    /// Whether the backups themselves could not be restored (the verdict `failed`), rather than something
    /// around the restore breaking (`error`).
    pub(crate) fn is_failed(&self) -> bool {
        match self {
            RestoreError::Bucket { source, .. } => source.is_failed(),
            other => matches!(other, RestoreError::Failed(_) | RestoreError::ObjectCopy(_)),
        }
    }

    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            RestoreError::Aws(e) => e.hint(),
            RestoreError::Scratch(e) => e.hint(),
            RestoreError::ObjectCopy(e) => e.source.hint(),
            RestoreError::Bucket { source, .. } => source.hint(),
            RestoreError::Unreachable(_) => Some(
                "check that the scratch is reachable from this machine (on AWS: its security group and subnet)".into(),
            ),
            RestoreError::Failed(_) | RestoreError::Error(_) | RestoreError::Neutralise(_) => None,
        }
    }
}

/// A step of copying one object version into a scratch bucket that failed (`copying `k``, `reading `k`'s
/// headers`), with the AWS error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{step}: {source}")]
pub(crate) struct CopyError {
    pub(crate) step: String,
    pub(crate) source: crate::aws::AwsError,
}

/// Why stackdrill may not delete a resource: its tags do not prove it is this run's scratch (or an expired
/// run's).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NotOurs(pub(crate) String);

/// Why a scratch resource (an RDS instance, cluster or parameter group, an S3 bucket) could not be made,
/// read or removed. The kind decides what happens next: a refusal or a denial is final, throttling passes.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ScratchError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    /// Not ours to touch: its tags do not prove it, or a bucket of the name exists already.
    #[error("{0}")]
    Refused(String),
    /// A request could not be built from what we had (a tag or rule the SDK rejects).
    #[error("{0}")]
    Request(String),
    /// S3 refused some keys of a batch delete.
    #[error("{0}")]
    Incomplete(String),
}

impl From<aws_sdk_s3::error::BuildError> for ScratchError {
    fn from(e: aws_sdk_s3::error::BuildError) -> Self {
        ScratchError::Request(e.to_string())
    }
}

impl ScratchError {
    /// Trying again will not help: a refusal, or a denial (the role lacks the action).
    pub(crate) fn is_final(&self) -> bool {
        match self {
            ScratchError::Refused(_) => true,
            ScratchError::Aws(e) => e.kind == crate::aws::Kind::AccessDenied,
            ScratchError::Request(_) | ScratchError::Incomplete(_) => false,
        }
    }

    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            ScratchError::Aws(e) => e.hint(),
            ScratchError::Refused(_) => Some(
                "stackdrill changes and deletes only scratch its tags prove is its own: remove the resource by \
                 hand if it is yours, or rename the drill"
                    .into(),
            ),
            ScratchError::Request(_) | ScratchError::Incomplete(_) => None,
        }
    }
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

    fn aws(kind: crate::aws::Kind) -> crate::aws::AwsError {
        crate::aws::AwsError { action: "rds:DeleteDBInstance".into(), kind, code: None, message: "m".into() }
    }

    /// A caller tells throttling from not-found from denied by kind, not by the message's first words (the
    /// teardown's retry loop used to test `starts_with("access denied")`).
    #[test]
    fn restore_and_scratch_errors_keep_the_aws_kind() {
        use crate::aws::Kind;
        let throttled = ScratchError::from(aws(Kind::Throttled));
        assert!(!throttled.is_final(), "throttling passes: try again");
        assert!(ScratchError::from(aws(Kind::AccessDenied)).is_final(), "a denial is final");
        assert!(ScratchError::Refused("refused to delete `x`: not ours".into()).is_final());
        let e = RestoreError::from(throttled);
        assert!(matches!(&e, RestoreError::Scratch(ScratchError::Aws(a)) if a.kind == Kind::Throttled), "{e:?}");
        assert!(!e.is_failed(), "an AWS failure is not a verdict on the backups");
        let e = RestoreError::from(aws(Kind::NotFound));
        assert!(matches!(&e, RestoreError::Aws(a) if a.is_not_found()), "{e:?}");
        let e = RestoreError::from(ScratchError::from(aws(Kind::AccessDenied)));
        assert!(e.hint().is_some_and(|h| h.contains("rds:DeleteDBInstance")), "{e}");
        assert!(ScratchError::Refused("r".into()).hint().is_some());
        assert!(RestoreError::Failed("f".into()).is_failed());
    }

    /// A bucket restore's error keeps its kind and verdict under the bucket's name: a copy AWS denied is the
    /// verdict `failed` with the denied action's hint, throttling around it is `error` (the runner used to
    /// flatten every kind but two into a string).
    #[test]
    fn a_bucket_restore_error_keeps_its_kind_under_the_bucket_name() {
        use crate::aws::Kind;
        let copy = CopyError { step: "copying `a/b`".into(), source: aws(Kind::AccessDenied) };
        let e = RestoreError::Bucket { name: "files".into(), source: Box::new(copy.into()) };
        assert!(e.is_failed(), "a copy that failed is a verdict on the backups");
        assert!(e.to_string().starts_with("bucket restore `files`: copying `a/b`: access denied for"), "{e}");
        assert!(e.hint().is_some_and(|h| h.contains("rds:DeleteDBInstance")), "{e}");
        let e = RestoreError::Bucket { name: "files".into(), source: Box::new(aws(Kind::Throttled).into()) };
        assert!(!e.is_failed());
        assert!(
            matches!(&e, RestoreError::Bucket { source, .. } if matches!(&**source, RestoreError::Aws(a) if a.kind == Kind::Throttled))
        );
        let e = RestoreError::Unreachable("connection refused".into());
        assert_eq!(e.to_string(), "cannot connect to the restore: connection refused");
        assert!(!e.is_failed() && e.hint().is_some());
    }

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
