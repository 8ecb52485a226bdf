//! Why a check could not reach a verdict: a query failed, something the check reads is not there, an object
//! could not be read. A difference in the copy is not an error: it is the check's `failed` verdict.

use super::check::db_error;

/// A check that ended in `error`. The kind tells a query that failed from a missing input from an AWS
/// call (whose kind tells throttling from not-found from denied).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    /// A query on the source or the restore failed (one line, without the query text).
    #[error("{}", db_error(.0))]
    Query(#[from] tokio_postgres::Error),
    /// A query failed while doing `context`.
    #[error("{context}: {}", db_error(.source))]
    QueryIn { context: String, source: tokio_postgres::Error },
    /// A connection the check needs could not be made.
    #[error("{context}: {detail}")]
    Connect { context: String, detail: String },
    /// Something the check reads is not there: a table on one side, the object directory, a bucket restore.
    #[error("{0}")]
    Missing(String),
    /// The database answered something the check cannot use (a digest that does not parse, a setting).
    #[error("{0}")]
    Unexpected(String),
    /// The query is refused before it is sent (not one statement).
    #[error("{0}")]
    Refused(String),
    /// A file of the object directory could not be read or listed.
    #[error("{context} `{}`: {source}", path.display())]
    Io { context: &'static str, path: std::path::PathBuf, source: std::io::Error },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    /// An object could not be read from a bucket.
    #[error("reading `{key}` from `{bucket}`: {source}")]
    ObjectRead { key: String, bucket: String, source: Box<crate::aws::AwsError> },
    /// A bucket listing failed (`aws/s3list.rs` reports it as text).
    #[error("{0}")]
    Listing(String),
    /// An object's body broke off while it was read.
    #[error(transparent)]
    Body(#[from] aws_sdk_s3::primitives::ByteStreamError),
}

impl CheckError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| CheckError::Io { context, path, source }
    }

    pub(crate) fn query_in(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Self {
        let context = context.into();
        move |source| CheckError::QueryIn { context, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller tells an AWS failure (by its kind) from a missing input from a refused query; the texts are
    /// the ones the report pins.
    #[test]
    fn check_errors_keep_their_kind_and_text() {
        let aws = crate::aws::AwsError {
            action: "s3:GetObject".into(),
            kind: crate::aws::Kind::AccessDenied,
            code: None,
            message: "m".into(),
        };
        let e = CheckError::ObjectRead { key: "k".into(), bucket: "b".into(), source: Box::new(aws.clone()) };
        assert!(e.to_string().starts_with("reading `k` from `b`: access denied for `s3:GetObject`"), "{e}");
        assert!(matches!(&e, CheckError::ObjectRead { source, .. } if source.kind == crate::aws::Kind::AccessDenied));
        assert!(matches!(CheckError::from(aws), CheckError::Aws(a) if a.kind == crate::aws::Kind::AccessDenied));
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = CheckError::io("cannot read", "/x/y")(io);
        assert_eq!(e.to_string(), "cannot read `/x/y`: gone");
        assert!(matches!(e, CheckError::Io { .. }));
    }
}
