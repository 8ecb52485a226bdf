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

/// An S3 client for these settings; path-style addressing when an endpoint is given (an emulator).
pub(crate) async fn s3_client(s: &AwsSettings) -> aws_sdk_s3::Client {
    super::s3::client(&load(s).await, s.endpoint_url.is_some(), None)
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
        Err(e) => {
            // The full chain, nested SDK structures and all, only for -v.
            tracing::debug!(error = ?e, "credential chain");
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            Err(no_credentials(summarise_chain(&text)))
        }
    }
}

/// Who the credentials are (`sts:GetCallerIdentity`): the ARN.
pub(crate) async fn caller_identity(cfg: &SdkConfig) -> Result<String, AwsError> {
    let out = aws_sdk_sts::Client::new(cfg)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| super::classify("sts:GetCallerIdentity", &e))?;
    Ok(out.arn().unwrap_or("an unnamed principal").to_string())
}

fn no_credentials(detail: String) -> AwsError {
    AwsError {
        action: "sts:GetCallerIdentity".into(),
        kind: Kind::NoCredentials,
        code: None,
        message: format!("no AWS credentials found ({detail})"),
    }
}

/// The default chain's error as one line: `tried environment (variable not set), profile (not enabled), ...`.
/// Its text lists each provider on a line of its own after `Attempted:`; anything else is kept whole.
fn summarise_chain(text: &str) -> String {
    let Some((_, attempts)) = text.split_once("Attempted:") else {
        return text.lines().next().unwrap_or(text).to_string();
    };
    let tried: Vec<String> = attempts
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(name, why)| {
            let why = why.rsplit(": ").next().unwrap_or(why);
            let why = if why == "the credential provider was not enabled" { "not enabled" } else { why };
            format!("{name} ({why})")
        })
        .collect();
    if tried.is_empty() {
        text.lines().next().unwrap_or(text).to_string()
    } else {
        format!("tried {}", tried.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_credential_chain_fits_on_one_line() {
        let text = "the credential provider was not enabled: no credentials found in chain. Attempted:\n  \
            Environment: the credential provider was not enabled: environment variable not set\n  \
            Profile: the credential provider was not enabled\n  \
            WebIdentityToken: the credential provider was not enabled: $AWS_WEB_IDENTITY_TOKEN_FILE was not set\n  \
            EcsContainer: the credential provider was not enabled: ECS provider not configured\n  \
            Ec2InstanceMetadata: the credential provider was not enabled: IMDS disabled by AWS_EC2_METADATA_DISABLED env var set to `true`";
        assert_eq!(
            super::summarise_chain(text),
            "tried Environment (environment variable not set), Profile (not enabled), WebIdentityToken \
             ($AWS_WEB_IDENTITY_TOKEN_FILE was not set), EcsContainer (ECS provider not configured), \
             Ec2InstanceMetadata (IMDS disabled by AWS_EC2_METADATA_DISABLED env var set to `true`)"
        );
    }
}
