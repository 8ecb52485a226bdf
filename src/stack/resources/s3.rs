//! S3 buckets: versioning, default encryption (SSE-KMS with a stack key), Block Public Access, a lifecycle
//! rule expiring noncurrent versions, server access logging, and the tags (ownership, backup selection).
//! Every setting is put whole on create and update; lifecycle rules stackdrill did not write are kept.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter, LoggingEnabled,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use serde_json::Value;

use super::{Ctx, bool_prop, opt_str_prop};
use crate::aws::{AwsError, classify};
use crate::stack::live::{Clients, Ids, Live};
use crate::stack::model::{Resource, ResourceKind};

/// The lifecycle rule stackdrill owns; others on the bucket are left as they are.
const RULE_ID: &str = "stackdrill-noncurrent-retention";

fn arn(name: &str) -> String {
    format!("arn:aws:s3:::{name}")
}

fn err(e: &impl ToString) -> AwsError {
    AwsError { kind: crate::aws::Kind::Other, action: "s3".into(), code: None, message: e.to_string() }
}

/// Each declared bucket that exists, with its settings in the shapes of [`Resource::props`].
pub(crate) async fn read(c: &Clients, want: &[&Resource], ids: &Ids) -> Result<Vec<Live>, AwsError> {
    let mut out = Vec::new();
    for r in want {
        let name = r.name.as_str();
        match c.s3.head_bucket().bucket(name).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => continue,
            Err(e) => return Err(classify("s3:ListBucket", &e)),
        }
        let v =
            c.s3.get_bucket_versioning()
                .bucket(name)
                .send()
                .await
                .map_err(|e| classify("s3:GetBucketVersioning", &e))?;
        let mut l = Live::new(ResourceKind::S3Bucket, name, arn(name))
            .prop("versioning", v.status() == Some(&BucketVersioningStatus::Enabled))
            .prop("kms-key", kms_key(c, name).await?.map(|k| ids.alias_of(&k)))
            .prop("block-public-access", public_access_blocked(c, name).await?)
            .prop("noncurrent-retention-days", noncurrent_days(c, name).await?)
            .prop("access-logs", access_logs(c, name).await?);
        // The backup tag as the file writes it, `key=value`, when the bucket carries that key.
        let tags = tags_of(c, name).await?;
        let backup = r.props.get("backup-tag").and_then(Value::as_str).and_then(|kv| kv.split_once('='));
        let live_backup =
            backup.and_then(|(k, _)| tags.iter().find(|(tk, _)| tk == k).map(|(k, v)| format!("{k}={v}")));
        l = l.prop("backup-tag", live_backup);
        out.push(l);
    }
    Ok(out)
}

async fn kms_key(c: &Clients, name: &str) -> Result<Option<String>, AwsError> {
    let default = crate::aws::s3::default_encryption(&c.s3, name).await?;
    Ok(default.filter(crate::aws::s3::is_kms).map(|d| d.kms_master_key_id().unwrap_or("aws/s3").to_string()))
}

async fn public_access_blocked(c: &Clients, name: &str) -> Result<bool, AwsError> {
    match c.s3.get_public_access_block().bucket(name).send().await {
        Ok(o) => Ok(o.public_access_block_configuration().is_some_and(|p| {
            p.block_public_acls() == Some(true)
                && p.ignore_public_acls() == Some(true)
                && p.block_public_policy() == Some(true)
                && p.restrict_public_buckets() == Some(true)
        })),
        Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => Ok(false),
        Err(e) => Err(classify("s3:GetBucketPublicAccessBlock", &e)),
    }
}

/// The shortest noncurrent-version expiry of an enabled rule for the whole bucket.
async fn noncurrent_days(c: &Clients, name: &str) -> Result<Option<i32>, AwsError> {
    let whole = |r: &LifecycleRule| crate::aws::s3::rule_prefix(r).is_empty();
    Ok(crate::aws::s3::lifecycle_rules(&c.s3, name)
        .await?
        .iter()
        .filter(|r| r.status() == &ExpirationStatus::Enabled && whole(r))
        .filter_map(|r| r.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()))
        .min())
}

async fn access_logs(c: &Clients, name: &str) -> Result<Option<String>, AwsError> {
    let out = c.s3.get_bucket_logging().bucket(name).send().await.map_err(|e| classify("s3:GetBucketLogging", &e))?;
    Ok(out.logging_enabled().map(|l| format!("{}/{}", l.target_bucket(), l.target_prefix())))
}

/// The bucket's tags (none when it has no tag set).
pub(crate) async fn tags_of(c: &Clients, name: &str) -> Result<Vec<(String, String)>, AwsError> {
    Ok(crate::aws::s3::tags(&c.s3, name).await?.unwrap_or_default())
}

/// Replaces the bucket's tag set with `tags` (S3 has no partial tag update).
pub(crate) async fn put_tags(c: &Clients, name: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
    crate::aws::s3::put_tags(&c.s3, name, tags).await
}

/// `existing` with each of `add` set (replacing a tag of the same key).
pub(crate) fn merged(mut existing: Vec<(String, String)>, add: &[(String, String)]) -> Vec<(String, String)> {
    for (k, v) in add {
        existing.retain(|(ek, _)| ek != k);
        existing.push((k.clone(), v.clone()));
    }
    existing
}

fn backup_tag(r: &Resource) -> Option<(String, String)> {
    opt_str_prop(r, "backup-tag")?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
}

pub(crate) async fn create(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), AwsError> {
    let mut req = c.s3.create_bucket().bucket(&r.name);
    if c.region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(c.region.as_str()))
                .build(),
        );
    }
    req.send().await.map_err(|e| classify("s3:CreateBucket", &e))?;
    let mut tags = super::tags(&ctx.stack);
    tags.extend(backup_tag(r));
    put_tags(c, &r.name, &tags).await?;
    settle(c, r, ctx).await
}

/// Puts every setting the file declares.
async fn settle(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), AwsError> {
    let name = r.name.as_str();
    let status =
        if bool_prop(r, "versioning") { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended };
    c.s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .map_err(|e| classify("s3:PutBucketVersioning", &e))?;
    let default = match r.props.get("kms-key").and_then(Value::as_str) {
        Some(alias) => ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(ctx.key_arn(alias)),
        None => ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256),
    }
    .build()
    .map_err(|e| err(&e))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .bucket_key_enabled(r.props.get("kms-key").is_some_and(Value::is_string))
        .build();
    c.s3.put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(|e| err(&e))?,
        )
        .send()
        .await
        .map_err(|e| classify("s3:PutEncryptionConfiguration", &e))?;
    let block = bool_prop(r, "block-public-access");
    c.s3.put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(block)
                .ignore_public_acls(block)
                .block_public_policy(block)
                .restrict_public_buckets(block)
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify("s3:PutBucketPublicAccessBlock", &e))?;
    settle_lifecycle(c, r).await?;
    let logging = match opt_str_prop(r, "access-logs").and_then(|l| l.split_once('/')) {
        Some((bucket, prefix)) => BucketLoggingStatus::builder()
            .logging_enabled(
                LoggingEnabled::builder().target_bucket(bucket).target_prefix(prefix).build().map_err(|e| err(&e))?,
            )
            .build(),
        None => BucketLoggingStatus::builder().build(),
    };
    c.s3.put_bucket_logging()
        .bucket(name)
        .bucket_logging_status(logging)
        .send()
        .await
        .map_err(|e| classify("s3:PutBucketLogging", &e))?;
    Ok(())
}

/// Stackdrill's noncurrent-version rule, written beside the bucket's other rules (or removed).
async fn settle_lifecycle(c: &Clients, r: &Resource) -> Result<(), AwsError> {
    let mut rules: Vec<LifecycleRule> = crate::aws::s3::lifecycle_rules(&c.s3, &r.name)
        .await?
        .into_iter()
        .filter(|x| x.id() != Some(RULE_ID))
        .collect();
    if let Some(days) = r.props.get("noncurrent-retention-days").and_then(Value::as_i64) {
        rules.push(
            LifecycleRule::builder()
                .id(RULE_ID)
                .status(ExpirationStatus::Enabled)
                .filter(LifecycleRuleFilter::builder().prefix("").build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder().noncurrent_days(days as i32).build(),
                )
                .build()
                .map_err(|e| err(&e))?,
        );
    }
    if rules.is_empty() {
        c.s3.delete_bucket_lifecycle()
            .bucket(&r.name)
            .send()
            .await
            .map_err(|e| classify("s3:PutLifecycleConfiguration", &e))?;
        return Ok(());
    }
    c.s3.put_bucket_lifecycle_configuration()
        .bucket(&r.name)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().map_err(|e| err(&e))?,
        )
        .send()
        .await
        .map_err(|e| classify("s3:PutLifecycleConfiguration", &e))?;
    Ok(())
}

pub(crate) async fn update(c: &Clients, r: &Resource, live: &Live, ctx: &Ctx) -> Result<(), AwsError> {
    if r.props.get("backup-tag") != live.props.get("backup-tag") {
        let mut tags = tags_of(c, &r.name).await?;
        if let Some((k, _)) = live.props.get("backup-tag").and_then(Value::as_str).and_then(|kv| kv.split_once('=')) {
            tags.retain(|(tk, _)| tk != k);
        }
        put_tags(c, &r.name, &merged(tags, &backup_tag(r).into_iter().collect::<Vec<_>>())).await?;
    }
    settle(c, r, ctx).await
}

/// Deletes the bucket; S3 refuses one that still holds objects (its data is never emptied by a plan).
pub(crate) async fn delete(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.s3.delete_bucket().bucket(&live.name).send().await.map_err(|e| classify("s3:DeleteBucket", &e))?;
    Ok(())
}
