//! Named classifiers for SDK errors, and one error type that says which IAM action a call needed.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What went wrong, as far as a caller decides anything by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    NotFound,
    Throttled,
    AccessDenied,
    NoCredentials,
    /// Could not reach the endpoint, or it timed out.
    Unreachable,
    Other,
}

/// A failed AWS call: the IAM action (`rds:DescribeDBInstances`), the kind, and a message without secrets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub(crate) struct AwsError {
    pub(crate) action: String,
    pub(crate) kind: Kind,
    pub(crate) code: Option<String>,
    pub(crate) message: String,
}

impl AwsError {
    fn render(&self) -> String {
        match self.kind {
            Kind::AccessDenied => format!(
                "access denied for `{}`: the credentials in use lack this IAM action ({})",
                self.action, self.message
            ),
            Kind::NoCredentials => self.message.clone(),
            _ => format!("`{}` failed: {}", self.action, self.message),
        }
    }

    /// What to do about it, for the `hint:` line.
    pub(crate) fn hint(&self) -> Option<String> {
        match self.kind {
            Kind::NoCredentials => Some(
                "provide credentials with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, `--profile` (or AWS_PROFILE), \
                 `aws sso login`, web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, as in CI) or an \
                 instance/container role"
                    .into(),
            ),
            Kind::AccessDenied => {
                Some(format!("grant `{}` to the role stackdrill runs as (see the runbook's IAM list)", self.action))
            }
            _ => None,
        }
    }

    pub(crate) fn is_not_found(&self) -> bool {
        self.kind == Kind::NotFound
    }
}

const NOT_FOUND: &[&str] = &[
    "DBInstanceNotFound",
    "DBParameterGroupNotFound",
    "DBParameterGroupNotFoundFault",
    "DBSubnetGroupNotFoundFault",
    "DBInstanceNotFoundFault",
    "DBClusterNotFoundFault",
    "DBInstanceAutomatedBackupNotFound",
    "DBInstanceAutomatedBackupNotFoundFault",
    "ResourceNotFoundException",
    "NotFound",
    "NotFoundException",
];
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];
const DENIED: &[&str] =
    &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized", "AuthorizationError"];
const BAD_CREDENTIALS: &[&str] =
    &["InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "ExpiredToken"];

/// Turns an SDK error from the call behind IAM action `action` into an [`AwsError`].
pub(crate) fn classify<E, R>(action: &str, e: &SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().map(str::to_string);
    let kind = match (e, code.as_deref()) {
        (_, Some(c)) if NOT_FOUND.contains(&c) => Kind::NotFound,
        (_, Some(c)) if THROTTLED.contains(&c) => Kind::Throttled,
        (_, Some(c)) if DENIED.contains(&c) => Kind::AccessDenied,
        (_, Some(c)) if BAD_CREDENTIALS.contains(&c) => Kind::NoCredentials,
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
            let text = DisplayErrorContext(e).to_string();
            if text.contains("credentials") { Kind::NoCredentials } else { Kind::Unreachable }
        }
        _ => Kind::Other,
    };
    let message = match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => {
            // The SDK's full context ends in a Debug dump of its structures: only for -v.
            tracing::debug!(action, error = %DisplayErrorContext(e), "AWS call failed");
            let what = match e {
                SdkError::ServiceError(_) => "the service answered with an error it did not name",
                SdkError::TimeoutError(_) => "the call timed out",
                SdkError::DispatchFailure(_) => "could not reach the endpoint",
                SdkError::ResponseError(_) => "the answer could not be read",
                _ => "the request could not be built",
            };
            let mut causes = Vec::new();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                causes.push(c.to_string());
                cause = c.source();
            }
            match causes.last() {
                Some(root) => format!("{what}: {root}"),
                None => what.to_string(),
            }
        }
    };
    AwsError { action: action.to_string(), kind, code, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str) -> SdkError<DescribeDBInstancesError, Response> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        SdkError::service_error(
            DescribeDBInstancesError::generic(meta),
            Response::new(StatusCode::try_from(400).unwrap(), SdkBody::empty()),
        )
    }

    #[test]
    fn codes_map_to_kinds_and_denials_name_the_action() {
        for (code, kind) in [
            ("DBInstanceNotFound", Kind::NotFound),
            ("Throttling", Kind::Throttled),
            ("AccessDenied", Kind::AccessDenied),
            ("InvalidClientTokenId", Kind::NoCredentials),
            ("InvalidParameterValue", Kind::Other),
        ] {
            assert_eq!(classify("rds:DescribeDBInstances", &service_error(code)).kind, kind, "{code}");
        }
        let msg = classify("rds:RestoreDBInstanceToPointInTime", &service_error("AccessDenied")).to_string();
        assert!(msg.contains("`rds:RestoreDBInstanceToPointInTime`") && msg.contains("IAM action"), "{msg}");
    }

    #[test]
    fn an_unnamed_error_is_one_line_without_sdk_structures() {
        let raw = Response::new(StatusCode::try_from(500).unwrap(), SdkBody::from("<html>oops</html>"));
        let e: SdkError<DescribeDBInstancesError, Response> = SdkError::service_error(
            DescribeDBInstancesError::unhandled("Error at offset 0: unexpected token '<'"),
            raw,
        );
        let msg = classify("backup:UpdateBackupPlan", &e).to_string();
        assert!(
            msg.starts_with("`backup:UpdateBackupPlan` failed: the service answered with an error it did not name"),
            "{msg}"
        );
        assert!(!msg.contains("ServiceError") && !msg.contains("SdkBody") && !msg.contains('\n'), "{msg}");
    }
}
