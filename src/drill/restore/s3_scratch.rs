//! Scratch buckets: named after the run, tagged like every scratch resource, private (Block Public Access,
//! bucket-owner objects), encrypted like the source, with a lifecycle expiry as a safety net; emptied (every
//! version) and deleted only when their tags say this run made them, or that they expired (`drill cleanup`).

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration,
    Delete, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    ObjectIdentifier, ObjectOwnership, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag,
};
use chrono::{DateTime, Utc};

use super::aws_scratch::{self, Owner};
use crate::aws::classify;
use crate::drill::error::ScratchError;

/// The scratch bucket of one `also-restore` entry: `sd-<drill>-<run>-<index>` (at most 59 characters).
pub(crate) fn bucket_name(drill: &str, run: &str, index: usize) -> String {
    format!("sd-{drill}-{}-{index}", &run[..run.len().min(12)])
}

/// How a bucket encrypts new objects by default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Encryption {
    /// SSE-S3.
    S3Managed,
    /// SSE-KMS with this key (an id, ARN or alias); `None`: the AWS-managed `aws/s3` key.
    Kms(Option<String>),
}

impl Encryption {
    pub(crate) fn describe(&self) -> String {
        match self {
            Encryption::S3Managed => "SSE-S3".into(),
            Encryption::Kms(Some(k)) => format!("SSE-KMS ({k})"),
            Encryption::Kms(None) => "SSE-KMS (aws/s3)".into(),
        }
    }
}

/// The source bucket's default encryption (SSE-S3 when it sets none: S3 encrypts every new object so).
pub(crate) async fn encryption_of(client: &Client, bucket: &str) -> Result<Encryption, ScratchError> {
    let default = crate::aws::s3::default_encryption(client, bucket).await?;
    Ok(match default {
        Some(d) if crate::aws::s3::is_kms(&d) => Encryption::Kms(d.kms_master_key_id().map(str::to_string)),
        _ => Encryption::S3Managed,
    })
}

/// Creates the bucket in `region`, born with `tags` (so no crash leaves it untagged), objects owned by the
/// bucket owner (no ACLs).
pub(crate) async fn create(
    client: &Client,
    name: &str,
    region: &str,
    tags: &[(&'static str, String)],
) -> Result<(), ScratchError> {
    // us-east-1 answers 200 to creating a bucket its caller already owns: never adopt one.
    if exists(client, name).await? {
        return Err(ScratchError::Refused(format!(
            "a bucket named `{name}` already exists: refusing to use it as this run's scratch"
        )));
    }
    let tag_set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ScratchError::Request(e.to_string()))?;
    let mut config = CreateBucketConfiguration::builder().set_tags(Some(tag_set));
    // us-east-1 takes no location constraint.
    if region != "us-east-1" {
        config = config.location_constraint(BucketLocationConstraint::from(region));
    }
    client
        .create_bucket()
        .bucket(name)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .create_bucket_configuration(config.build())
        .send()
        .await
        .map_err(|e| classify("s3:CreateBucket", &e))?;
    Ok(())
}

/// Tags (again: a bucket made by AWS Backup, or by an S3 that ignored the creation tags, gets them here
/// first), Block Public Access, default encryption, and a lifecycle expiring every object `expire_days`
/// after it was written.
pub(crate) async fn secure(
    client: &Client,
    name: &str,
    tags: &[(&'static str, String)],
    encryption: &Encryption,
    expire_days: i32,
) -> Result<(), ScratchError> {
    crate::aws::s3::put_tags(client, name, tags).await?;
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    client
        .put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(block)
        .send()
        .await
        .map_err(|e| classify("s3:PutBucketPublicAccessBlock", &e))?;
    let default = match encryption {
        Encryption::S3Managed => ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256),
        Encryption::Kms(key) => ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .set_kms_master_key_id(key.clone()),
    }
    .build()?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default)
        .bucket_key_enabled(matches!(encryption, Encryption::Kms(_)))
        .build();
    let config = ServerSideEncryptionConfiguration::builder().rules(rule).build()?;
    client
        .put_bucket_encryption()
        .bucket(name)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map_err(|e| classify("s3:PutEncryptionConfiguration", &e))?;
    let rule = LifecycleRule::builder()
        .id("stackdrill-scratch-expiry")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .expiration(LifecycleExpiration::builder().days(expire_days.max(1)).build())
        .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(1).build())
        .abort_incomplete_multipart_upload(AbortIncompleteMultipartUpload::builder().days_after_initiation(1).build())
        .build()?;
    let lifecycle = BucketLifecycleConfiguration::builder().rules(rule).build()?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(name)
        .lifecycle_configuration(lifecycle)
        .send()
        .await
        .map_err(|e| classify("s3:PutLifecycleConfiguration", &e))?;
    Ok(())
}

/// Whether a bucket of this name exists (anyone's: S3 names are global).
pub(crate) async fn exists(client: &Client, name: &str) -> Result<bool, ScratchError> {
    match client.head_bucket().bucket(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
        // 403: it exists, in another account.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Ok(true),
        Err(e) => Err(classify("s3:ListBucket", &e).into()),
    }
}

/// The bucket's tags; `None` when the bucket does not exist.
pub(crate) async fn tags_of(client: &Client, name: &str) -> Result<Option<Vec<(String, String)>>, ScratchError> {
    Ok(crate::aws::s3::tags(client, name).await?)
}

/// Deletes every version, delete marker and unfinished upload of the bucket, then the bucket, once its tags
/// allow `owner` to: `Ok(true)` deleted, `Ok(false)` it was not there.
pub(crate) async fn delete_guarded(client: &Client, name: &str, owner: Owner<'_>) -> Result<bool, ScratchError> {
    let Some(tags) = tags_of(client, name).await? else { return Ok(false) };
    aws_scratch::may_delete(&tags, owner)
        .map_err(|why| ScratchError::Refused(format!("refused to delete bucket `{name}`: {why}")))?;
    empty(client, name).await?;
    match client.delete_bucket().bucket(name).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("NoSuchBucket") => Ok(false),
        Err(e) => Err(classify("s3:DeleteBucket", &e).into()),
    }
}

/// Deletes everything in the bucket, 1,000 keys per request.
async fn empty(client: &Client, name: &str) -> Result<(), ScratchError> {
    // Aborting uploads removes them from the listing: list again until none is left.
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(name)
            .send()
            .await
            .map_err(|e| classify("s3:ListBucketMultipartUploads", &e))?;
        if page.uploads().is_empty() {
            break;
        }
        for u in page.uploads() {
            if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                client
                    .abort_multipart_upload()
                    .bucket(name)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| classify("s3:AbortMultipartUpload", &e))?;
            }
        }
    }
    loop {
        let page = client
            .list_object_versions()
            .bucket(name)
            .send()
            .await
            .map_err(|e| classify("s3:ListBucketVersions", &e))?;
        let ids: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(page.delete_markers().iter().map(|m| (m.key(), m.version_id())))
            .filter_map(|(k, v)| {
                ObjectIdentifier::builder()
                    .set_key(k.map(str::to_string))
                    .set_version_id(v.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build()?;
        let out = client
            .delete_objects()
            .bucket(name)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify("s3:DeleteObjectVersion", &e))?;
        if let Some(err) = out.errors().first() {
            return Err(ScratchError::Incomplete(format!(
                "cannot delete `{}` from bucket `{name}`: {}",
                err.key().unwrap_or_default(),
                err.message().or(err.code()).unwrap_or("refused")
            )));
        }
    }
}

/// Every bucket of the account, from `ListBuckets`, page by page.
async fn all_buckets(client: &Client) -> Result<Vec<aws_sdk_s3::types::Bucket>, ScratchError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_buckets()
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| classify("s3:ListAllMyBuckets", &e))?;
        out.extend(page.buckets().iter().cloned());
        token = page.continuation_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Scratch-named buckets (`sd-…`) of `region`, for `drill cleanup`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Candidates {
    /// Those whose tags were read, with their tags.
    pub(crate) tagged: Vec<(String, Vec<(String, String)>)>,
    /// Those whose tags may not be read here (another account's `sd-` bucket answers AccessDenied, one of
    /// another region a 301): not ours to judge, so skipped, with why.
    pub(crate) unreadable: Vec<(String, String)>,
}

/// Buckets of `region` named like scratch (`sd-…`) and their tags, for `drill cleanup`; a bucket whose tags
/// cannot be read is set aside with the reason, and the others are still returned.
pub(crate) async fn scratch_candidates(client: &Client, region: &str) -> Result<Candidates, ScratchError> {
    let mut out = Candidates::default();
    for b in all_buckets(client).await? {
        let Some(name) = b.name().filter(|n| n.starts_with("sd-")) else { continue };
        // A bucket of another region answers only there; its region's sweep takes it.
        if b.bucket_region().is_some_and(|r| r != region) {
            continue;
        }
        match tags_of(client, name).await {
            Ok(Some(tags)) => out.tagged.push((name.to_string(), tags)),
            Ok(None) => {}
            Err(e) => out.unreadable.push((name.to_string(), e.to_string())),
        }
    }
    Ok(out)
}

/// When a bucket was created, from `ListBuckets` (`None`: not listed).
pub(crate) async fn created_at(client: &Client, name: &str) -> Result<Option<DateTime<Utc>>, ScratchError> {
    let buckets = all_buckets(client).await?;
    Ok(buckets.iter().find(|b| b.name() == Some(name)).and_then(|b| b.creation_date()).map(aws_scratch::to_chrono))
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::get_bucket_tagging::GetBucketTaggingOutput;
    use aws_sdk_s3::operation::list_buckets::ListBucketsOutput;
    use aws_sdk_s3::types::{Bucket, Tag};
    use aws_smithy_mocks::mock;
    use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use crate::aws::mocked;

    /// `drill cleanup` meets `sd-` buckets it may not read the tags of — another account's (AccessDenied),
    /// or one S3 answers with a 301 from another region (issue 29 item 10): each is set aside with why, and the
    /// buckets after it are still found, instead of the first such bucket ending the sweep.
    #[tokio::test]
    async fn sd_buckets_whose_tags_may_not_be_read_are_set_aside_and_the_rest_found() {
        let list = mock!(aws_sdk_s3::Client::list_buckets).then_output(|| {
            ListBucketsOutput::builder()
                .buckets(Bucket::builder().name("sd-a-theirs").bucket_region("ap-southeast-1").build())
                .buckets(Bucket::builder().name("sd-b-moved").build())
                .buckets(Bucket::builder().name("sd-c-ours-1").bucket_region("ap-southeast-1").build())
                .buckets(Bucket::builder().name("prod-files").bucket_region("ap-southeast-1").build())
                .build()
        });
        let error = |status: u16, code: &'static str| {
            move || {
                let body = format!("<Error><Code>{code}</Code><Message>no</Message></Error>");
                HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
            }
        };
        let denied = mock!(aws_sdk_s3::Client::get_bucket_tagging)
            .match_requests(|r| r.bucket() == Some("sd-a-theirs"))
            .then_http_response(error(403, "AccessDenied"));
        let moved = mock!(aws_sdk_s3::Client::get_bucket_tagging)
            .match_requests(|r| r.bucket() == Some("sd-b-moved"))
            .then_http_response(error(301, "PermanentRedirect"));
        let ours = mock!(aws_sdk_s3::Client::get_bucket_tagging)
            .match_requests(|r| r.bucket() == Some("sd-c-ours-1"))
            .then_output(|| {
                let tag = Tag::builder().key("stackdrill:scratch").value("true").build().unwrap();
                GetBucketTaggingOutput::builder().tag_set(tag).build().unwrap()
            });
        let s3 = mocked!(aws_sdk_s3, &[&list, &denied, &moved, &ours]);
        let found = super::scratch_candidates(&s3, "ap-southeast-1").await.unwrap();
        assert_eq!(
            found.tagged,
            vec![("sd-c-ours-1".to_string(), vec![("stackdrill:scratch".to_string(), "true".to_string())])]
        );
        let unreadable: Vec<&str> = found.unreadable.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(unreadable, ["sd-a-theirs", "sd-b-moved"]);
        assert!(found.unreadable[0].1.contains("AccessDenied"), "{:?}", found.unreadable);
        assert!(found.unreadable[1].1.contains("PermanentRedirect"), "{:?}", found.unreadable);
    }

    #[test]
    fn scratch_bucket_names_are_valid_for_the_longest_drill_name() {
        let drill = "a".repeat(40);
        let name = super::bucket_name(&drill, "0123456789abcdef", 12);
        assert!(crate::config::is_bucket_name(&name), "{name}");
        assert!(name.len() <= 63);
        assert_eq!(super::bucket_name("files", "0123456789ab", 0), "sd-files-0123456789ab-0");
    }
}
