//! The AWS readers against mocked RDS, AWS Backup and S3 answers (moto has no recovery points by resource
//! or backup jobs; the others answer here as the API reference shapes them): a store that meets its
//! objectives passes; an unencrypted instance, a bucket with versioning suspended, a recovery point 30 h old
//! and a failed backup job each fail, naming the figure.

use std::time::Duration;

use aws_sdk_backup::operation::describe_backup_vault::DescribeBackupVaultOutput;
use aws_sdk_backup::operation::list_backup_jobs::ListBackupJobsOutput;
use aws_sdk_backup::operation::list_recovery_points_by_resource::ListRecoveryPointsByResourceOutput;
use aws_sdk_backup::types::{BackupJob, BackupJobState, RecoveryPointByResource, RecoveryPointStatus};
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::{DbInstance, DbSnapshot};
use aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput;
use aws_sdk_s3::operation::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput;
use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ExpirationStatus, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use aws_smithy_mocks::mock;
use chrono::Utc;

use super::*;
use crate::aws::mocked;
use crate::report::posture::Outcome;

const KEY: &str = "arn:aws:kms:ap-southeast-1:111122223333:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
const DB_ARN: &str = "arn:aws:rds:ap-southeast-1:111122223333:db:prod-db";

fn objectives() -> PostureObjectives {
    PostureObjectives {
        max_backup_age: Duration::from_secs(26 * 3600),
        max_pitr_lag: Some(Duration::from_secs(600)),
        min_retention: Some(Duration::from_secs(7 * 86_400)),
        max_wal_backlog: None,
        encryption: Some(Encryption::Kms),
    }
}

fn ago(h: i64) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs((Utc::now() - chrono::Duration::hours(h)).timestamp())
}

fn figure<'a>(f: &'a [Figure], name: &str) -> &'a Figure {
    f.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("no {name} in {f:#?}"))
}

fn instance(encrypted: bool) -> DescribeDbInstancesOutput {
    let mut db = DbInstance::builder()
        .db_instance_identifier("prod-db")
        .db_instance_arn(DB_ARN)
        .backup_retention_period(14)
        .latest_restorable_time(aws_smithy_types::DateTime::from_secs(Utc::now().timestamp() - 120))
        .storage_encrypted(encrypted)
        .deletion_protection(true);
    if encrypted {
        db = db.kms_key_id(KEY);
    }
    DescribeDbInstancesOutput::builder().db_instances(db.build()).build()
}

async fn read_instance(encrypted: bool) -> Vec<Figure> {
    let described = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("prod-db"))
        .then_output(move || instance(encrypted));
    let snapshots = mock!(aws_sdk_rds::Client::describe_db_snapshots)
        .match_requests(|r| r.snapshot_type() == Some("automated") && r.db_instance_identifier() == Some("prod-db"))
        .then_output(|| {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(DbSnapshot::builder().status("available").snapshot_create_time(ago(5)).build())
                .db_snapshots(DbSnapshot::builder().status("available").snapshot_create_time(ago(29)).build())
                .db_snapshots(DbSnapshot::builder().status("creating").snapshot_create_time(ago(0)).build())
                .build()
        });
    let rds = mocked!(aws_sdk_rds, &[&described, &snapshots]);
    let s = AwsPostureSpec { id: "prod-db".into(), region: None };
    rds_instance(&rds, &s, &objectives(), Utc::now()).await
}

/// An encrypted, retained, protected instance with a 5 h old automated snapshot meets every objective; the
/// same instance unencrypted fails on `encryption`.
#[tokio::test]
async fn an_unencrypted_instance_fails_on_encryption() {
    let ok = read_instance(true).await;
    assert_eq!(Outcome::of(&ok), Outcome::Met, "{ok:#?}");
    assert_eq!(figure(&ok, "encryption").value, format!("kms {KEY}"));
    let age = figure(&ok, "backup-age").number.unwrap();
    assert!((5.0 * 3600.0 - 5.0..=5.0 * 3600.0 + 60.0).contains(&age), "the newest available snapshot: {age}");
    assert_eq!(figure(&ok, "retention").status, Status::Met);
    let plain = read_instance(false).await;
    assert_eq!(Outcome::of(&plain), Outcome::NotMet);
    let enc = figure(&plain, "encryption");
    assert_eq!((enc.status, enc.value.as_str()), (Status::NotMet, "unencrypted"), "{enc:?}");
    let not_met: Vec<&str> = plain.iter().filter(|f| f.status == Status::NotMet).map(|f| f.name.as_str()).collect();
    assert_eq!(not_met, ["encryption"]);
}

/// A denied call is `could not read`, never met, and names the IAM action.
#[tokio::test]
async fn a_denied_describe_is_could_not_read() {
    let denied = mock!(aws_sdk_rds::Client::describe_db_instances).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error>\
                 <RequestId>r</RequestId></ErrorResponse>",
            ),
        )
    });
    let rds = mocked!(aws_sdk_rds, &[&denied]);
    let s = AwsPostureSpec { id: "prod-db".into(), region: None };
    let f = rds_instance(&rds, &s, &objectives(), Utc::now()).await;
    assert_eq!(Outcome::of(&f), Outcome::CouldNotRead, "{f:#?}");
    assert!(f[0].detail.as_deref().unwrap_or_default().contains("rds:DescribeDBInstances"), "{f:#?}");
}

fn bucket(versioning: BucketVersioningStatus) -> aws_sdk_s3::Client {
    let v = mock!(aws_sdk_s3::Client::get_bucket_versioning)
        .then_output(move || GetBucketVersioningOutput::builder().status(versioning.clone()).build());
    let e = mock!(aws_sdk_s3::Client::get_bucket_encryption).then_output(|| {
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(KEY)
            .build()
            .unwrap();
        let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build();
        GetBucketEncryptionOutput::builder()
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder().rules(rule).build().unwrap(),
            )
            .build()
    });
    let l = mock!(aws_sdk_s3::Client::get_bucket_lifecycle_configuration).then_output(|| {
        let rule = LifecycleRule::builder()
            .id("noncurrent")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(30).build())
            .build()
            .unwrap();
        GetBucketLifecycleConfigurationOutput::builder().rules(rule).build()
    });
    mocked!(aws_sdk_s3, &[&v, &e, &l])
}

/// A versioned SSE-KMS bucket keeping noncurrent versions 30 days meets a 7-day objective; with versioning
/// suspended it fails on `versioning`.
#[tokio::test]
async fn a_bucket_with_versioning_suspended_fails_on_versioning() {
    let s = AwsPostureSpec { id: "acme-prod-files".into(), region: None };
    let ok = s3_bucket(&bucket(BucketVersioningStatus::Enabled), &s, &objectives()).await;
    assert_eq!(Outcome::of(&ok), Outcome::Met, "{ok:#?}");
    assert_eq!(figure(&ok, "noncurrent-retention").number, Some(30.0 * 86_400.0));
    let off = s3_bucket(&bucket(BucketVersioningStatus::Suspended), &s, &objectives()).await;
    assert_eq!(Outcome::of(&off), Outcome::NotMet);
    let v = figure(&off, "versioning");
    assert_eq!((v.status, v.value.as_str()), (Status::NotMet, "Suspended"));
}

fn backup_client(point_age_h: i64, failed_jobs: usize) -> aws_sdk_backup::Client {
    let points = mock!(aws_sdk_backup::Client::list_recovery_points_by_resource)
        .match_requests(|r| r.resource_arn() == Some(DB_ARN))
        .then_output(move || {
            ListRecoveryPointsByResourceOutput::builder()
                .recovery_points(
                    RecoveryPointByResource::builder()
                        .recovery_point_arn("arn:aws:rds:ap-southeast-1:111122223333:snapshot:awsbackup:job-1")
                        .status(RecoveryPointStatus::Completed)
                        .creation_date(ago(point_age_h))
                        .encryption_key_arn(KEY)
                        .build(),
                )
                .recovery_points(
                    RecoveryPointByResource::builder()
                        .recovery_point_arn("arn:aws:backup:ap-southeast-1:111122223333:recovery-point:continuous:db-1")
                        .status(RecoveryPointStatus::Completed)
                        .creation_date(ago(10 * 24))
                        .encryption_key_arn(KEY)
                        .build(),
                )
                .build()
        });
    let failed = mock!(aws_sdk_backup::Client::list_backup_jobs)
        .match_requests(|r| r.by_state() == Some(&BackupJobState::Failed) && r.by_resource_arn() == Some(DB_ARN))
        .then_output(move || {
            let mut out = ListBackupJobsOutput::builder();
            for i in 0..failed_jobs {
                out = out.backup_jobs(
                    BackupJob::builder()
                        .backup_job_id(format!("job-f{i}"))
                        .state(BackupJobState::Failed)
                        .status_message("insufficient privileges")
                        .build(),
                );
            }
            out.build()
        });
    let expired = mock!(aws_sdk_backup::Client::list_backup_jobs)
        .match_requests(|r| r.by_state() == Some(&BackupJobState::Expired))
        .then_output(|| ListBackupJobsOutput::builder().build());
    let vault = mock!(aws_sdk_backup::Client::describe_backup_vault).then_output(|| {
        DescribeBackupVaultOutput::builder()
            .backup_vault_name("prod-vault")
            .locked(true)
            .min_retention_days(7)
            .max_retention_days(35)
            .build()
    });
    mocked!(aws_sdk_backup, &[&points, &failed, &expired, &vault])
}

fn backup_spec() -> AwsBackupPostureSpec {
    AwsBackupPostureSpec { vault: "prod-vault".into(), resource_arn: DB_ARN.into(), region: None }
}

/// A recovery point 30 h old fails a 26 h objective on `backup-age`; a fresh one with a 10-day continuous
/// window, no failed job and a locked vault meets every objective.
#[tokio::test]
async fn a_recovery_point_30_hours_old_fails_on_backup_age() {
    let ok = aws_backup(&backup_client(3, 0), &backup_spec(), &objectives(), Utc::now()).await;
    assert_eq!(Outcome::of(&ok), Outcome::Met, "{ok:#?}");
    assert_eq!(figure(&ok, "vault-lock").value, "locked (min 7d, max 35d)");
    assert_eq!(figure(&ok, "encryption").value, format!("kms {KEY}"));
    assert_eq!(figure(&ok, "continuous-window").status, Status::Met);
    let old = aws_backup(&backup_client(30, 0), &backup_spec(), &objectives(), Utc::now()).await;
    assert_eq!(Outcome::of(&old), Outcome::NotMet);
    let age = figure(&old, "backup-age");
    assert_eq!((age.status, age.value.as_str()), (Status::NotMet, "30h 00m"), "{age:?}");
}

/// A failed backup job in the last 24 h fails on `failed-jobs`, naming the job and its message.
#[tokio::test]
async fn a_failed_backup_job_fails_on_failed_jobs() {
    let f = aws_backup(&backup_client(3, 1), &backup_spec(), &objectives(), Utc::now()).await;
    assert_eq!(Outcome::of(&f), Outcome::NotMet, "{f:#?}");
    let jobs = figure(&f, "failed-jobs");
    assert_eq!(jobs.status, Status::NotMet);
    let detail = jobs.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("job-f0 FAILED: insufficient privileges"), "{detail}");
}

/// An Aurora cluster without automated backups' restorable time and with no automated snapshot fails on
/// `pitr-lag` and `backup-age`; the calls are the cluster ones.
#[tokio::test]
async fn an_aurora_cluster_without_pitr_or_snapshots_fails_on_both() {
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::types::DbCluster;
    let described = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some("prod-aurora"))
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("prod-aurora")
                        .backup_retention_period(7)
                        .storage_encrypted(true)
                        .kms_key_id(KEY)
                        .deletion_protection(true)
                        .build(),
                )
                .build()
        });
    let snapshots = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots)
        .match_requests(|r| r.snapshot_type() == Some("automated"))
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let rds = mocked!(aws_sdk_rds, &[&described, &snapshots]);
    let s = AwsPostureSpec { id: "prod-aurora".into(), region: None };
    let f = aurora_cluster(&rds, &s, &objectives(), Utc::now()).await;
    let not_met: Vec<&str> = f.iter().filter(|x| x.status == Status::NotMet).map(|x| x.name.as_str()).collect();
    assert_eq!(not_met, ["pitr-lag", "backup-age"], "{f:#?}");
    assert_eq!(figure(&f, "encryption").status, Status::Met);
    assert_eq!(figure(&f, "retention").status, Status::Met);
}
