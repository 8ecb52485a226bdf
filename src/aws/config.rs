//! The one place an AWS `SdkConfig` is built: credentials from the default chain, region and endpoint
//! overrides, standard retries with backoff, and operation timeouts.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use aws_types::region::Region;

use super::error::{AwsError, Kind};

/// Where the SDK config comes from when nothing else says: the company's residency region.
pub(crate) const DEFAULT_REGION: &str = "ap-southeast-1";

/// The global AWS flags, resolved (flag over environment).
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsSettings {
    pub(crate) region: Option<String>,
    pub(crate) profile: Option<String>,
    pub(crate) endpoint_url: Option<String>,
}

/// Builds the SDK config: the default credential chain (environment, profile, SSO, web identity,
/// container and instance metadata), `profile`, `region` (else the chain's, else `ap-southeast-1`),
/// `endpoint_url` (else `AWS_ENDPOINT_URL`, which the loader reads itself), standard retries with
/// exponential backoff and jitter, and timeouts so a hung call cannot stall a drill.
pub(crate) async fn load(s: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(300))
            .build(),
    );
    if let Some(p) = &s.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &s.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(u) = &s.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    let cfg = loader.load().await;
    if cfg.region().is_some() { cfg } else { cfg.into_builder().region(Region::from_static(DEFAULT_REGION)).build() }
}

/// Standard retries (throttling, 5xx, transient network errors) with exponential backoff and jitter.
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(6)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(20))
}

/// Resolves credentials once, up front, so "no credentials" is one clear error before anything starts.
pub(crate) async fn check_credentials(cfg: &SdkConfig) -> Result<(), AwsError> {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = cfg.credentials_provider() else {
        return Err(no_credentials("no credential provider is configured".into()));
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(e) => Err(no_credentials(aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())),
    }
}

fn no_credentials(detail: String) -> AwsError {
    AwsError {
        action: "sts:GetCallerIdentity".into(),
        kind: Kind::NoCredentials,
        code: None,
        message: format!("no AWS credentials found ({detail})"),
    }
}
