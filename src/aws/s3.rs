//! S3 reads and writes that drills (scratch buckets, bucket restores) and stacks (the `s3-bucket` resource)
//! share: the client, a bucket's tags, its lifecycle rules and its default encryption.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{LifecycleRule, ServerSideEncryption, ServerSideEncryptionByDefault, Tag, Tagging};
use aws_types::SdkConfig;

use super::{AwsError, CallCounter, Kind, classify};

/// An S3 client for `sdk`: path-style addressing when `path_style` (an emulator's endpoint has no bucket
/// subdomains), calls counted by `calls` when given.
pub(crate) fn client(sdk: &SdkConfig, path_style: bool, calls: Option<&CallCounter>) -> Client {
    let mut b = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style);
    if let Some(c) = calls {
        b = b.interceptor(c.clone());
    }
    Client::from_conf(b.build())
}

/// The bucket's tags: `None` when the bucket does not exist, empty when it has no tag set.
pub(crate) async fn tags(client: &Client, bucket: &str) -> Result<Option<Vec<(String, String)>>, AwsError> {
    match client.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => Ok(Some(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect())),
        Err(e) if e.code() == Some("NoSuchTagSet") => Ok(Some(Vec::new())),
        Err(e) if e.code() == Some("NoSuchBucket") => Ok(None),
        Err(e) => Err(classify("s3:GetBucketTagging", &e)),
    }
}

/// Replaces the bucket's whole tag set with `tags` (S3 has no partial tag update).
pub(crate) async fn put_tags<K: AsRef<str>, V: AsRef<str>>(
    client: &Client,
    bucket: &str,
    tags: &[(K, V)],
) -> Result<(), AwsError> {
    let built = |e: aws_smithy_types::error::operation::BuildError| AwsError {
        action: "s3:PutBucketTagging".into(),
        kind: Kind::Other,
        code: None,
        message: e.to_string(),
    };
    let set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k.as_ref()).value(v.as_ref()).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(built)?;
    let tagging = Tagging::builder().set_tag_set(Some(set)).build().map_err(built)?;
    client
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| classify("s3:PutBucketTagging", &e))?;
    Ok(())
}

/// The bucket's lifecycle rules (none when it has no lifecycle configuration).
pub(crate) async fn lifecycle_rules(client: &Client, bucket: &str) -> Result<Vec<LifecycleRule>, AwsError> {
    match client.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
        Ok(o) => Ok(o.rules().to_vec()),
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => Ok(Vec::new()),
        Err(e) => Err(classify("s3:GetLifecycleConfiguration", &e)),
    }
}

/// The prefix a lifecycle rule applies to (empty: the whole bucket).
pub(crate) fn rule_prefix(r: &LifecycleRule) -> &str {
    #[allow(deprecated)]
    let top = r.prefix();
    r.filter().and_then(|f| f.prefix()).or(top).unwrap_or("")
}

/// The bucket's default encryption; `None` when it sets none.
pub(crate) async fn default_encryption(
    client: &Client,
    bucket: &str,
) -> Result<Option<ServerSideEncryptionByDefault>, AwsError> {
    let out = match client.get_bucket_encryption().bucket(bucket).send().await {
        Ok(o) => o,
        Err(e) if e.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => return Ok(None),
        Err(e) => return Err(classify("s3:GetEncryptionConfiguration", &e)),
    };
    Ok(out
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().iter().find_map(|r| r.apply_server_side_encryption_by_default()))
        .cloned())
}

/// Whether a default encryption is SSE-KMS (single- or dual-layer).
pub(crate) fn is_kms(d: &ServerSideEncryptionByDefault) -> bool {
    matches!(d.sse_algorithm(), ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
}
