//! `also-restore: aws-s3-bucket` with `from: aws-backup` against mocked AWS Backup and S3 APIs (moto has no
//! restore jobs): the job asked for exactly the instant into a new scratch bucket, the bucket secured and
//! torn down by its tags; a failed job fails the restore and leaves nothing to delete; a bucket with no
//! recovery point before the instant is refused at plan.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_backup::operation::describe_restore_job::DescribeRestoreJobOutput;
use aws_sdk_backup::operation::list_recovery_points_by_resource::ListRecoveryPointsByResourceOutput;
use aws_sdk_backup::operation::start_restore_job::StartRestoreJobOutput;
use aws_sdk_backup::types::{RecoveryPointByResource, RecoveryPointStatus, RestoreJobStatus};
use aws_sdk_s3::operation::delete_bucket::DeleteBucketOutput;
use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput;
use aws_sdk_s3::operation::get_bucket_tagging::GetBucketTaggingOutput;
use aws_sdk_s3::operation::head_bucket::HeadBucketOutput;
use aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::operation::put_bucket_encryption::PutBucketEncryptionOutput;
use aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationOutput;
use aws_sdk_s3::operation::put_bucket_tagging::PutBucketTaggingOutput;
use aws_sdk_s3::operation::put_public_access_block::PutPublicAccessBlockOutput;
use aws_sdk_s3::types::{
    Object, ObjectVersion, ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tag,
};
use aws_smithy_mocks::mock;
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use chrono::{TimeDelta, Utc};

use super::BucketRestore;
use crate::aws::mocked;
use crate::config::BucketRestoreSpec;
use crate::drill::error::{DrillError, RestoreError};
use crate::drill::events::EventSink;
use crate::report::model::TeardownStatus;

const RUN: &str = "feedbeef0001";
const SCRATCH: &str = "sd-files-drill-feedbeef0001-0";
const ROLE: &str = "arn:aws:iam::111122223333:role/restore";

fn spec() -> BucketRestoreSpec {
    let yaml = format!(
        "name: files-drill\nrestore:\n  local-postgres: {{ base-backups: b, wal-archive: w, scratch-root: s }}\n\
         also-restore:\n  - aws-s3-bucket: {{ bucket: files-prod, from: aws-backup, vault: prod-vault, iam-role-arn: \"{ROLE}\" }}\n\
         objectives: {{ rto: 1h, rpo: 5m }}\nverify:\n  - objects: {{ sample: 2 }}\n"
    );
    let d =
        crate::config::parse_drill(&yaml, std::path::Path::new("files-drill.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
    d.also_restore[0].clone()
}

fn points(hours_ago: i64) -> ListRecoveryPointsByResourceOutput {
    let at = aws_smithy_types::DateTime::from_secs((Utc::now() - TimeDelta::hours(hours_ago)).timestamp());
    let point = |arn: &str, vault: &str| {
        RecoveryPointByResource::builder()
            .recovery_point_arn(arn)
            .backup_vault_name(vault)
            .status(RecoveryPointStatus::Completed)
            .creation_date(at)
            .build()
    };
    ListRecoveryPointsByResourceOutput::builder()
        .recovery_points(point(
            "arn:aws:backup:ap-southeast-1:111122223333:recovery-point:continuous:s3-files",
            "prod-vault",
        ))
        // Another vault's point is not this drill's.
        .recovery_points(point("arn:aws:backup:ap-southeast-1:111122223333:recovery-point:other", "other-vault"))
        .build()
}

/// DescribeRecoveryPoint's answer: a lifecycle deleting the point after `days`.
fn lifecycle(days: i64) -> aws_smithy_mocks::Rule {
    use aws_sdk_backup::operation::describe_recovery_point::DescribeRecoveryPointOutput;
    mock!(aws_sdk_backup::Client::describe_recovery_point)
        .match_requests(|r| r.backup_vault_name() == Some("prod-vault"))
        .then_output(move || {
            DescribeRecoveryPointOutput::builder()
                .lifecycle(aws_sdk_backup::types::Lifecycle::builder().delete_after_days(days).build())
                .build()
        })
}

fn not_found(code: &'static str) -> impl Fn() -> HttpResponse + Send + Sync + 'static {
    move || {
        let body = format!("<Error><Code>{code}</Code><Message>none</Message></Error>");
        HttpResponse::new(StatusCode::try_from(404).unwrap(), SdkBody::from(body))
    }
}

/// The source bucket's answers, the scratch's setup, and its tags as this run wrote them.
fn s3_rules(tagged: bool) -> Vec<aws_smithy_mocks::Rule> {
    let tags =
        crate::drill::restore::aws_scratch::scratch_tag_pairs("files-drill", RUN, Utc::now() + TimeDelta::hours(1));
    let tag_set: Vec<Tag> = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build().unwrap()).collect();
    let kms = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::AwsKms)
                        .kms_master_key_id("alias/files")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap();
    let mut rules = vec![
        mock!(aws_sdk_s3::Client::head_bucket)
            .then_output(|| HeadBucketOutput::builder().bucket_region("ap-southeast-1").build()),
        mock!(aws_sdk_s3::Client::get_bucket_encryption).then_output(move || {
            GetBucketEncryptionOutput::builder().server_side_encryption_configuration(kms.clone()).build()
        }),
        mock!(aws_sdk_s3::Client::put_bucket_tagging).then_output(|| PutBucketTaggingOutput::builder().build()),
        mock!(aws_sdk_s3::Client::put_public_access_block)
            .then_output(|| PutPublicAccessBlockOutput::builder().build()),
        mock!(aws_sdk_s3::Client::put_bucket_encryption)
            .match_requests(|r| {
                let d = r.server_side_encryption_configuration().unwrap().rules()[0]
                    .apply_server_side_encryption_by_default()
                    .unwrap();
                d.sse_algorithm() == &ServerSideEncryption::AwsKms && d.kms_master_key_id() == Some("alias/files")
            })
            .then_output(|| PutBucketEncryptionOutput::builder().build()),
        mock!(aws_sdk_s3::Client::put_bucket_lifecycle_configuration)
            .then_output(|| PutBucketLifecycleConfigurationOutput::builder().build()),
        mock!(aws_sdk_s3::Client::list_objects_v2).then_output(|| {
            ListObjectsV2Output::builder()
                .contents(Object::builder().key("a.pdf").size(10).build())
                .contents(Object::builder().key("b.pdf").size(32).build())
                .is_truncated(false)
                .build()
        }),
        mock!(aws_sdk_s3::Client::list_multipart_uploads).then_output(|| ListMultipartUploadsOutput::builder().build()),
        mock!(aws_sdk_s3::Client::delete_objects).then_output(|| DeleteObjectsOutput::builder().build()),
        mock!(aws_sdk_s3::Client::delete_bucket)
            .match_requests(|r| r.bucket() == Some(SCRATCH))
            .then_output(|| DeleteBucketOutput::builder().build()),
    ];
    // The scratch holds two objects until they are deleted: the first listing has them, the next none.
    let listed = Arc::new(Mutex::new(0));
    rules.push(mock!(aws_sdk_s3::Client::list_object_versions).then_output(move || {
        let mut n = listed.lock().unwrap();
        *n += 1;
        let b = ListObjectVersionsOutput::builder().is_truncated(false);
        if *n == 1 {
            b.versions(ObjectVersion::builder().key("a.pdf").version_id("v1").build())
                .versions(ObjectVersion::builder().key("b.pdf").version_id("v2").build())
                .build()
        } else {
            b.build()
        }
    }));
    rules.push(if tagged {
        mock!(aws_sdk_s3::Client::get_bucket_tagging)
            .then_output(move || GetBucketTaggingOutput::builder().set_tag_set(Some(tag_set.clone())).build().unwrap())
    } else {
        mock!(aws_sdk_s3::Client::get_bucket_tagging).then_http_response(not_found("NoSuchBucket"))
    });
    rules
}

fn restore(backup_rules: &[&aws_smithy_mocks::Rule], s3_rules: &[aws_smithy_mocks::Rule]) -> BucketRestore {
    restore_at(0, backup_rules, s3_rules)
}

/// The restore of the drill's `index`th bucket.
fn restore_at(
    index: usize,
    backup_rules: &[&aws_smithy_mocks::Rule],
    s3_rules: &[aws_smithy_mocks::Rule],
) -> BucketRestore {
    let s3_refs: Vec<&aws_smithy_mocks::Rule> = s3_rules.iter().collect();
    let s3 = mocked!(aws_sdk_s3, &s3_refs);
    // A continuous point's retention, from its own description (35 days unless a test answers first).
    let retention = lifecycle(35);
    let backup_rules: Vec<&aws_smithy_mocks::Rule> = backup_rules.iter().copied().chain([&retention]).collect();
    let backup = mocked!(aws_sdk_backup, &backup_rules);
    BucketRestore::with_clients(
        &spec(),
        (s3, backup),
        "ap-southeast-1".into(),
        ("files-drill", RUN, index),
        EventSink::new(|_| {}),
        Duration::from_secs(3600),
    )
}

#[tokio::test]
async fn a_continuous_backup_is_restored_to_the_instant_into_a_secured_scratch_and_torn_down_by_its_tags() {
    let instant = Utc::now() - TimeDelta::hours(1);
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource).then_output(|| points(24));
    let want = instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .match_requests(move |r| {
            let m = r.metadata().unwrap();
            r.recovery_point_arn().unwrap().ends_with(":continuous:s3-files")
                && r.resource_type() == Some("S3")
                && r.iam_role_arn() == Some(ROLE)
                && m.get("DestinationBucketName").map(String::as_str) == Some(SCRATCH)
                && m.get("NewBucket").map(String::as_str) == Some("true")
                && m.get("RestoreTime") == Some(&want)
                && m.get("EncryptionType").map(String::as_str) == Some("SSE-KMS")
                && m.get("KMSKey").map(String::as_str) == Some("alias/files")
        })
        .then_output(|| StartRestoreJobOutput::builder().restore_job_id("job-1").build());
    let describe = mock!(aws_sdk_backup::Client::describe_restore_job)
        .then_output(|| DescribeRestoreJobOutput::builder().status(RestoreJobStatus::Completed).build());
    let s3 = s3_rules(true);
    let mut r = restore(&[&list, &start, &describe], &s3);
    r.plan(instant).await.unwrap();
    r.bring_back().await.unwrap();
    assert_eq!(start.num_calls(), 1, "the job starts with exactly the instant, scratch and key");
    let restored = r.restored().unwrap();
    assert_eq!((restored.scratch.as_str(), restored.as_of), (SCRATCH, instant));
    assert!(!restored.etags_comparable, "KMS ETags are not digests");
    let td = r.remove_scratch().await;
    assert_eq!(td.status, TeardownStatus::Done, "{}", td.detail);
    let rec = r.record(td);
    assert_eq!((rec.objects, rec.bytes), (Some(2), Some(42)));
    assert_eq!(rec.from, "arn:aws:backup:ap-southeast-1:111122223333:recovery-point:continuous:s3-files");
    assert_eq!(rec.encryption.as_deref(), Some("SSE-KMS (alias/files)"));
}

#[tokio::test]
async fn a_failed_job_fails_the_restore_and_a_bucket_never_made_is_not_deleted() {
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource).then_output(|| points(24));
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .then_output(|| StartRestoreJobOutput::builder().restore_job_id("job-2").build());
    let describe = mock!(aws_sdk_backup::Client::describe_restore_job).then_output(|| {
        DescribeRestoreJobOutput::builder()
            .status(RestoreJobStatus::Failed)
            .status_message("Access denied to key")
            .build()
    });
    let s3 = s3_rules(false);
    let mut r = restore(&[&list, &start, &describe], &s3);
    r.plan(Utc::now() - TimeDelta::hours(1)).await.unwrap();
    match r.bring_back().await {
        Err(RestoreError::Failed(m)) => assert!(m.contains("job-2 ended FAILED: Access denied to key"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(r.restored().is_none());
    let td = r.remove_scratch().await;
    assert_eq!(td.status, TeardownStatus::NothingToDo, "{}", td.detail);
    assert_eq!(r.record(td).status, crate::report::model::PhaseStatus::Failed);
}

#[tokio::test]
async fn an_instant_before_every_recovery_point_is_refused_at_plan() {
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource).then_output(|| points(2));
    let s3 = s3_rules(false);
    let mut r = restore(&[&list], &s3);
    match r.plan(Utc::now() - TimeDelta::hours(5)).await {
        Err(DrillError::Refused(m)) => assert!(m.contains("bucket `files-prod` cannot be restored to"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// An object above 5 GiB is copied in 512 MiB parts whose ranges cover it exactly, then completed; the
/// upload carries what `CopyObject` would have kept (issue 29 item 7): Content-Type, user metadata, cache
/// and encoding headers (`HeadObject` of the version) and tags (`GetObjectTagging` of the version).
#[tokio::test]
async fn an_object_above_five_gib_is_copied_in_parts_that_cover_it_exactly_with_its_headers_and_tags() {
    use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput;
    use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadOutput;
    use aws_sdk_s3::operation::get_object_tagging::GetObjectTaggingOutput;
    use aws_sdk_s3::operation::head_object::HeadObjectOutput;
    use aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput;
    use aws_sdk_s3::types::CopyPartResult;
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let head = mock!(aws_sdk_s3::Client::head_object)
        .match_requests(|r| r.bucket() == Some("files-prod") && r.version_id() == Some("v9"))
        .then_output(|| {
            HeadObjectOutput::builder()
                .content_type("application/x-tar")
                .metadata("origin", "exporter")
                .cache_control("max-age=60")
                .content_encoding("gzip")
                .content_disposition("attachment")
                .build()
        });
    let tagging = mock!(aws_sdk_s3::Client::get_object_tagging)
        .match_requests(|r| r.bucket() == Some("files-prod") && r.version_id() == Some("v9"))
        .then_output(|| {
            GetObjectTaggingOutput::builder()
                .tag_set(Tag::builder().key("class").value("cold").build().unwrap())
                .tag_set(Tag::builder().key("owner").value("a b/c").build().unwrap())
                .build()
                .unwrap()
        });
    let create = mock!(aws_sdk_s3::Client::create_multipart_upload)
        .match_requests(|r| {
            r.bucket() == Some(SCRATCH)
                && r.content_type() == Some("application/x-tar")
                && r.metadata().and_then(|m| m.get("origin")).map(String::as_str) == Some("exporter")
                && r.cache_control() == Some("max-age=60")
                && r.content_encoding() == Some("gzip")
                && r.content_disposition() == Some("attachment")
                && r.tagging() == Some("class=cold&owner=a%20b%2Fc")
        })
        .then_output(|| CreateMultipartUploadOutput::builder().upload_id("u1").build());
    let part = mock!(aws_sdk_s3::Client::upload_part_copy)
        .match_requests(move |r| {
            seen.lock().unwrap().push((r.part_number().unwrap(), r.copy_source_range().unwrap().to_string()));
            r.copy_source() == Some("files-prod/big%20file.bin?versionId=v9") && r.upload_id() == Some("u1")
        })
        .then_output(|| {
            UploadPartCopyOutput::builder().copy_part_result(CopyPartResult::builder().e_tag("\"p\"").build()).build()
        });
    let complete = mock!(aws_sdk_s3::Client::complete_multipart_upload)
        .match_requests(|r| r.multipart_upload().is_some_and(|m| m.parts().len() == 11))
        .then_output(|| CompleteMultipartUploadOutput::builder().build());
    let s3 = mocked!(aws_sdk_s3, &[&head, &tagging, &create, &part, &complete]);
    let size = (5u64 << 30) + 1;
    let o = crate::aws::s3list::Obj {
        key: "big file.bin".into(),
        size,
        version: Some("v9".into()),
        etag: None,
        modified: None,
    };
    assert_eq!(super::copy_one(&s3, "files-prod", SCRATCH, &o).await.ok(), Some(size));
    assert_eq!((create.num_calls(), complete.num_calls()), (1, 1), "the upload carries the headers and tags");
    let ranges = ranges.lock().unwrap();
    assert_eq!(ranges.len(), 11);
    assert_eq!(ranges[0], (1, "bytes=0-536870911".to_string()));
    assert_eq!(ranges[10], (11, format!("bytes={}-{}", 10u64 << 29, size - 1)));
}

/// S3 takes at most 10,000 parts of at most 5 GiB (issue 29 item 6): a fixed 512 MiB part fails above
/// ~4.9 TiB; parts of max(512 MiB, ⌈size/10,000⌉) cover every size S3 holds (up to 5 TiB), contiguously.
#[test]
fn multipart_copies_stay_within_ten_thousand_parts_of_at_most_five_gib() {
    for size in [(5u64 << 30) + 1, 5_000u64 << 30, 5u64 << 40, (5u64 << 40) - 7] {
        let ranges = super::part_ranges(size);
        assert!(ranges.len() <= 10_000, "{size} bytes in {} parts", ranges.len());
        assert_eq!(ranges[0].0, 0);
        assert_eq!(ranges.last().unwrap().1, size - 1);
        for w in ranges.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0, "contiguous");
        }
        for (a, b) in &ranges {
            assert!(b - a < 5 << 30, "a part above 5 GiB");
        }
        let first = ranges[0].1 + 1;
        assert!(first >= 512 << 20 && first >= size.div_ceil(10_000), "{first}");
    }
    assert_eq!(super::part_ranges(5u64 << 40).len(), 10_000);
}

/// Two `from: aws-backup` bucket restores of one run send different IdempotencyTokens and CreationTokens
/// (issue 29 item 5): with the run id for both, AWS Backup answers the second with the first's job, and the
/// second bucket never appears.
#[tokio::test]
async fn each_bucket_restore_of_a_run_sends_its_own_tokens() {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let seen = tokens.clone();
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource).then_output(|| points(24));
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .match_requests(move |r| {
            let creation = r.metadata().and_then(|m| m.get("CreationToken")).cloned().unwrap_or_default();
            seen.lock().unwrap().push((r.idempotency_token().unwrap_or_default().to_string(), creation));
            true
        })
        .then_output(|| StartRestoreJobOutput::builder().restore_job_id("job-1").build());
    let describe = mock!(aws_sdk_backup::Client::describe_restore_job)
        .then_output(|| DescribeRestoreJobOutput::builder().status(RestoreJobStatus::Completed).build());
    for index in [0, 1] {
        let s3 = s3_rules(true);
        let mut r = restore_at(index, &[&list, &start, &describe], &s3);
        r.plan(Utc::now() - TimeDelta::hours(1)).await.unwrap();
        r.bring_back().await.unwrap();
    }
    let tokens = tokens.lock().unwrap();
    assert_eq!(
        *tokens,
        vec![(format!("{RUN}-0"), format!("{RUN}-0")), (format!("{RUN}-1"), format!("{RUN}-1"))],
        "one token per restore"
    );
}

/// The bucket's region comes from HeadBucket (issue 29 item 12): a bucket in another region answers the
/// scratch region's client with a 301 carrying `x-amz-bucket-region`, which gives the friendly refusal
/// (GetBucketLocation from that client fails with a redirect instead).
#[tokio::test]
async fn a_bucket_in_another_region_is_refused_by_its_head_bucket_region() {
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource).then_output(|| points(24));
    let head = mock!(aws_sdk_s3::Client::head_bucket).then_http_response(|| {
        let mut r = HttpResponse::new(StatusCode::try_from(301).unwrap(), SdkBody::empty());
        r.headers_mut().insert("x-amz-bucket-region", "eu-west-1");
        r
    });
    let s3: Vec<aws_smithy_mocks::Rule> = [head].into_iter().chain(s3_rules(false)).collect();
    let mut r = restore(&[&list], &s3);
    match r.plan(Utc::now() - TimeDelta::hours(1)).await {
        Err(DrillError::Refused(m)) => {
            assert!(
                m.contains("bucket `files-prod` is in `eu-west-1` and the scratch would be in `ap-southeast-1`"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// A restore job still running when its phase ends is waited for at teardown, and the bucket it made —
/// without stackdrill's tags, as AWS Backup makes it — is tagged and removed, not left for nobody to delete.
#[tokio::test]
async fn a_restore_job_cut_short_is_waited_for_and_its_untagged_bucket_removed() {
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource).then_output(|| points(24));
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .then_output(|| StartRestoreJobOutput::builder().restore_job_id("job-3").build());
    // RUNNING while the restore phase lasts, then COMPLETED.
    let described = Arc::new(Mutex::new(0));
    let seen = described.clone();
    let describe = mock!(aws_sdk_backup::Client::describe_restore_job).then_output(move || {
        let mut n = seen.lock().unwrap();
        *n += 1;
        let status = if *n <= 1 { RestoreJobStatus::Running } else { RestoreJobStatus::Completed };
        DescribeRestoreJobOutput::builder().status(status).build()
    });
    // The job's bucket has no tag set until stackdrill puts one.
    let tagged = Arc::new(Mutex::new(false));
    let (put_seen, get_seen) = (tagged.clone(), tagged.clone());
    let tags =
        crate::drill::restore::aws_scratch::scratch_tag_pairs("files-drill", RUN, Utc::now() + TimeDelta::hours(1));
    let tag_set: Vec<Tag> = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(v).build().unwrap()).collect();
    let put = mock!(aws_sdk_s3::Client::put_bucket_tagging)
        .match_requests(|r| r.bucket() == Some(SCRATCH))
        .then_output(move || {
            *put_seen.lock().unwrap() = true;
            PutBucketTaggingOutput::builder().build()
        });
    let get = mock!(aws_sdk_s3::Client::get_bucket_tagging).then_http_response(move || {
        if *get_seen.lock().unwrap() {
            let xml: String = tag_set
                .iter()
                .map(|t| format!("<Tag><Key>{}</Key><Value>{}</Value></Tag>", t.key(), t.value()))
                .collect();
            HttpResponse::new(
                StatusCode::try_from(200).unwrap(),
                SdkBody::from(format!("<Tagging><TagSet>{xml}</TagSet></Tagging>")),
            )
        } else {
            HttpResponse::new(
                StatusCode::try_from(404).unwrap(),
                SdkBody::from("<Error><Code>NoSuchTagSet</Code><Message>none</Message></Error>"),
            )
        }
    });
    // The rest of the source's and the scratch's answers (the first rule that matches answers: the two above
    // come first).
    let s3: Vec<aws_smithy_mocks::Rule> = [put, get].into_iter().chain(s3_rules(true)).collect();
    let mut r = restore(&[&list, &start, &describe], &s3);
    r.plan(Utc::now() - TimeDelta::hours(1)).await.unwrap();
    // The phase's deadline ends the restore while the job runs.
    assert!(tokio::time::timeout(Duration::from_millis(200), r.bring_back()).await.is_err());
    let td = r.remove_scratch().await;
    assert_eq!(td.status, TeardownStatus::Done, "{}", td.detail);
    assert!(*tagged.lock().unwrap(), "the job's bucket was tagged before it was deleted");
    assert!(describe.num_calls() >= 2, "the job was waited for");
}

/// A continuous backup reaches back at most its retention (issue 29 item 9): a point created 60 days ago
/// whose lifecycle keeps 10 days restores from now − 10 days, not from its creation; an instant 20 days ago
/// is refused at plan, one 5 days ago restores from the continuous point to exactly that instant.
#[tokio::test]
async fn a_continuous_bucket_backup_reaches_back_only_its_retention() {
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource).then_output(|| points(24 * 60));
    let ten = lifecycle(10);
    let s3 = s3_rules(false);
    let mut r = restore(&[&list, &ten], &s3);
    match r.plan(Utc::now() - TimeDelta::days(20)).await {
        Err(DrillError::Refused(m)) => assert!(m.contains("its restorable window is"), "{m}"),
        other => panic!("an instant beyond the retention was accepted: {other:?}"),
    }
    let mut r = restore(&[&list, &ten], &s3);
    let instant = Utc::now() - TimeDelta::days(5);
    r.plan(instant).await.unwrap();
    assert_eq!(r.point.as_ref().map(|p| p.continuous), Some(true));
    assert_eq!(r.as_of, Some(instant));
}
