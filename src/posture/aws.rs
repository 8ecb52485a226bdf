//! The AWS readers, read-only calls only (each named, as its IAM action, in `iam policy --backups`):
//! - `rds-instance`: `DescribeDBInstances` (retention, `LatestRestorableTime` lag, encryption and its KMS key,
//!   deletion protection), `DescribeDBSnapshots` (`SnapshotType=automated`: the newest automated backup's age);
//! - `aurora-cluster`: `DescribeDBClusters` and `DescribeDBClusterSnapshots`, likewise;
//! - `aws-backup`: `ListRecoveryPointsByResource` (the newest `COMPLETED` point's age and `EncryptionKeyArn`, the
//!   continuous window), `ListBackupJobs` (`FAILED` and `EXPIRED` jobs in the last 24 h), `DescribeBackupVault`
//!   (the lock);
//! - `s3-bucket`: `GetBucketVersioning`, `GetBucketEncryption` (SSE-KMS), `GetBucketLifecycleConfiguration`
//!   (noncurrent-version expiration against the retention objective).

use chrono::{DateTime, Utc};

use super::figure::{at_least, at_most, count_at_most, state, unread};
use crate::aws::{AwsError, AwsSettings, classify};
use crate::config::{AwsBackupPostureSpec, AwsPostureSpec, Encryption, PostureObjectives, PostureSource};
use crate::report::posture::{Figure, Status};

/// How far back `ListBackupJobs` looks for failed or expired jobs.
const JOBS_WINDOW_HOURS: i64 = 24;

/// Reads an AWS store; `None` when `source` is not one.
pub(super) async fn read(
    source: &PostureSource,
    o: &PostureObjectives,
    aws: &AwsSettings,
    now: DateTime<Utc>,
) -> Option<Vec<Figure>> {
    let settings = |region: &Option<String>| {
        let mut s = aws.clone();
        if region.is_some() {
            s.region.clone_from(region);
        }
        s
    };
    Some(match source {
        PostureSource::RdsInstance(s) => {
            let rds = aws_sdk_rds::Client::new(&crate::aws::load(&settings(&s.region)).await);
            rds_instance(&rds, s, o, now).await
        }
        PostureSource::AuroraCluster(s) => {
            let rds = aws_sdk_rds::Client::new(&crate::aws::load(&settings(&s.region)).await);
            aurora_cluster(&rds, s, o, now).await
        }
        PostureSource::AwsBackup(s) => {
            let backup = aws_sdk_backup::Client::new(&crate::aws::load(&settings(&s.region)).await);
            aws_backup(&backup, s, o, now).await
        }
        PostureSource::S3Bucket(s) => {
            let s3 = crate::aws::s3_client(&settings(&s.region)).await;
            s3_bucket(&s3, s, o).await
        }
        PostureSource::LocalPostgres(_) | PostureSource::Supabase(_) => return None,
    })
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn utc(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.to_millis().ok()?)
}

fn secs_since(now: DateTime<Utc>, t: DateTime<Utc>) -> f64 {
    (now - t).num_milliseconds() as f64 / 1000.0
}

/// An unread figure from an AWS error (its hint included).
fn failed(name: &str, e: &AwsError) -> Figure {
    let why = match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    };
    unread(name, None, why)
}

fn objective_text(d: std::time::Duration, op: &str) -> String {
    format!("{op} {}", humantime::format_duration(d))
}

/// What RDS reports for an instance or a cluster.
struct RdsFacts<'a> {
    what: &'static str,
    retention_days: Option<i32>,
    latest_restorable: Option<DateTime<Utc>>,
    encrypted: Option<bool>,
    kms_key: Option<&'a str>,
    deletion_protection: Option<bool>,
}

fn rds_figures(
    f: &RdsFacts<'_>,
    newest: Result<Option<DateTime<Utc>>, Figure>,
    o: &PostureObjectives,
    now: DateTime<Utc>,
) -> Vec<Figure> {
    let mut out = Vec::new();
    let days = f.retention_days.unwrap_or(0);
    out.push(at_least(
        "retention",
        f64::from(days.max(0)) * 86_400.0,
        o.min_retention,
        Some(format!("BackupRetentionPeriod {days} (days)")),
    ));
    match f.latest_restorable {
        Some(t) => out.push(at_most(
            "pitr-lag",
            secs_since(now, t),
            o.max_pitr_lag,
            Some(format!("LatestRestorableTime {}", when(t))),
        )),
        None => out.push(Figure {
            name: "pitr-lag".into(),
            value: "no restorable time".into(),
            number: None,
            objective: o.max_pitr_lag.map(|m| objective_text(m, "≤")),
            status: Status::NotMet,
            detail: Some(format!(
                "the {} reports no LatestRestorableTime: automated backups (point-in-time recovery) are off",
                f.what
            )),
        }),
    }
    out.push(encryption(
        f.encrypted == Some(true),
        f.kms_key,
        o,
        format!("StorageEncrypted {:?}", f.encrypted.unwrap_or(false)),
    ));
    let dp = f.deletion_protection == Some(true);
    out.push(state("deletion-protection", if dp { "on" } else { "off" }, "on", dp, None));
    match newest {
        Ok(Some(t)) => out.push(at_most(
            "backup-age",
            secs_since(now, t),
            Some(o.max_backup_age),
            Some(format!("newest automated snapshot created {}", when(t))),
        )),
        Ok(None) => out.push(Figure {
            name: "backup-age".into(),
            value: "none".into(),
            number: None,
            objective: Some(objective_text(o.max_backup_age, "≤")),
            status: Status::NotMet,
            detail: Some(format!("the {} has no available automated snapshot", f.what)),
        }),
        Err(fig) => out.push(fig),
    }
    out
}

/// The encryption figure: met only when encrypted with a KMS key (named) and the objective is `kms`.
fn encryption(encrypted: bool, key: Option<&str>, o: &PostureObjectives, detail: String) -> Figure {
    let value = match (encrypted, key) {
        (true, Some(k)) => format!("kms {k}"),
        (true, None) => "encrypted (no KMS key reported)".into(),
        (false, _) => "unencrypted".into(),
    };
    match o.encryption {
        Some(Encryption::Kms) => state("encryption", &value, "kms", encrypted && key.is_some(), Some(detail)),
        None => Figure {
            name: "encryption".into(),
            value,
            number: Some(if encrypted { 1.0 } else { 0.0 }),
            objective: None,
            status: Status::Observed,
            detail: Some(detail),
        },
    }
}

pub(super) async fn rds_instance(
    rds: &aws_sdk_rds::Client,
    s: &AwsPostureSpec,
    o: &PostureObjectives,
    now: DateTime<Utc>,
) -> Vec<Figure> {
    let described = match rds.describe_db_instances().db_instance_identifier(&s.id).send().await {
        Ok(out) => out,
        Err(e) => return vec![failed("instance", &classify("rds:DescribeDBInstances", &e))],
    };
    let Some(db) = described.db_instances().first() else {
        return vec![unread("instance", None, format!("DescribeDBInstances returned no instance `{}`", s.id))];
    };
    let newest = match rds.describe_db_snapshots().db_instance_identifier(&s.id).snapshot_type("automated").send().await
    {
        Ok(out) => Ok(out
            .db_snapshots()
            .iter()
            .filter(|x| x.status() == Some("available"))
            .filter_map(|x| x.snapshot_create_time().and_then(utc))
            .max()),
        Err(e) => Err(failed("backup-age", &classify("rds:DescribeDBSnapshots", &e))),
    };
    let facts = RdsFacts {
        what: "instance",
        retention_days: db.backup_retention_period(),
        latest_restorable: db.latest_restorable_time().and_then(utc),
        encrypted: db.storage_encrypted(),
        kms_key: db.kms_key_id(),
        deletion_protection: db.deletion_protection(),
    };
    rds_figures(&facts, newest, o, now)
}

pub(super) async fn aurora_cluster(
    rds: &aws_sdk_rds::Client,
    s: &AwsPostureSpec,
    o: &PostureObjectives,
    now: DateTime<Utc>,
) -> Vec<Figure> {
    let described = match rds.describe_db_clusters().db_cluster_identifier(&s.id).send().await {
        Ok(out) => out,
        Err(e) => return vec![failed("cluster", &classify("rds:DescribeDBClusters", &e))],
    };
    let Some(c) = described.db_clusters().first() else {
        return vec![unread("cluster", None, format!("DescribeDBClusters returned no cluster `{}`", s.id))];
    };
    let newest = match rds
        .describe_db_cluster_snapshots()
        .db_cluster_identifier(&s.id)
        .snapshot_type("automated")
        .send()
        .await
    {
        Ok(out) => Ok(out
            .db_cluster_snapshots()
            .iter()
            .filter(|x| x.status() == Some("available"))
            .filter_map(|x| x.snapshot_create_time().and_then(utc))
            .max()),
        Err(e) => Err(failed("backup-age", &classify("rds:DescribeDBClusterSnapshots", &e))),
    };
    let facts = RdsFacts {
        what: "cluster",
        retention_days: c.backup_retention_period(),
        latest_restorable: c.latest_restorable_time().and_then(utc),
        encrypted: c.storage_encrypted(),
        kms_key: c.kms_key_id(),
        deletion_protection: c.deletion_protection(),
    };
    rds_figures(&facts, newest, o, now)
}

pub(super) async fn aws_backup(
    backup: &aws_sdk_backup::Client,
    s: &AwsBackupPostureSpec,
    o: &PostureObjectives,
    now: DateTime<Utc>,
) -> Vec<Figure> {
    use aws_sdk_backup::types::{BackupJobState, RecoveryPointStatus};
    let mut out = Vec::new();
    // The recovery points of the resource (every page).
    let mut points = Vec::new();
    let mut token = None;
    let listed = loop {
        match backup.list_recovery_points_by_resource().resource_arn(&s.resource_arn).set_next_token(token).send().await
        {
            Ok(page) => {
                points.extend(page.recovery_points().iter().cloned());
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break Ok(()),
                }
            }
            Err(e) => break Err(classify("backup:ListRecoveryPointsByResource", &e)),
        }
    };
    match listed {
        Err(e) => out.push(failed("backup-age", &e)),
        Ok(()) => {
            let completed = |p: &&aws_sdk_backup::types::RecoveryPointByResource| {
                p.status() == Some(&RecoveryPointStatus::Completed)
            };
            let continuous = |p: &aws_sdk_backup::types::RecoveryPointByResource| {
                p.recovery_point_arn().is_some_and(|a| a.contains(":continuous:"))
            };
            let newest = points
                .iter()
                .filter(completed)
                .filter_map(|p| p.creation_date().and_then(utc).map(|t| (p, t)))
                .max_by_key(|(_, t)| *t);
            match newest {
                Some((p, t)) => {
                    out.push(at_most(
                        "backup-age",
                        secs_since(now, t),
                        Some(o.max_backup_age),
                        Some(format!(
                            "newest COMPLETED recovery point {} created {}",
                            p.recovery_point_arn().unwrap_or("(no ARN)"),
                            when(t)
                        )),
                    ));
                    let key = p.encryption_key_arn();
                    out.push(encryption(
                        key.is_some(),
                        key,
                        o,
                        "the newest COMPLETED recovery point's EncryptionKeyArn".into(),
                    ));
                }
                None => out.push(Figure {
                    name: "backup-age".into(),
                    value: "none".into(),
                    number: None,
                    objective: Some(objective_text(o.max_backup_age, "≤")),
                    status: Status::NotMet,
                    detail: Some(format!("no COMPLETED recovery point of {}", s.resource_arn)),
                }),
            }
            let window = points
                .iter()
                .filter(|p| continuous(p) && p.status() != Some(&RecoveryPointStatus::Deleting))
                .filter_map(|p| p.creation_date().and_then(utc))
                .min();
            match window {
                Some(start) => out.push(at_least(
                    "continuous-window",
                    secs_since(now, start),
                    o.min_retention,
                    Some(format!("the continuous recovery point reaches back to {}", when(start))),
                )),
                None if o.max_pitr_lag.is_some() => out.push(Figure {
                    name: "continuous-window".into(),
                    value: "none".into(),
                    number: None,
                    objective: Some("a continuous recovery point".into()),
                    status: Status::NotMet,
                    detail: Some(
                        "a PITR objective is set but AWS Backup holds no continuous recovery point for the resource"
                            .into(),
                    ),
                }),
                None => {}
            }
        }
    }
    // Failed and expired jobs in the window.
    let since = now - chrono::Duration::hours(JOBS_WINDOW_HOURS);
    let after = aws_smithy_types::DateTime::from_millis(since.timestamp_millis());
    let mut bad = Vec::new();
    let mut jobs_error = None;
    'states: for st in [BackupJobState::Failed, BackupJobState::Expired] {
        let mut token = None;
        loop {
            let sent = backup
                .list_backup_jobs()
                .by_resource_arn(&s.resource_arn)
                .by_state(st.clone())
                .by_created_after(after)
                .set_next_token(token)
                .send()
                .await;
            match sent {
                Ok(page) => {
                    bad.extend(page.backup_jobs().iter().map(|j| {
                        format!(
                            "{} {}{}",
                            j.backup_job_id().unwrap_or("(no id)"),
                            j.state().map_or("?", |s| s.as_str()),
                            j.status_message().map(|m| format!(": {m}")).unwrap_or_default()
                        )
                    }));
                    match page.next_token() {
                        Some(t) if !t.is_empty() => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Err(e) => {
                    jobs_error = Some(classify("backup:ListBackupJobs", &e));
                    break 'states;
                }
            }
        }
    }
    match jobs_error {
        Some(e) => out.push(failed("failed-jobs", &e)),
        None => {
            let detail = if bad.is_empty() {
                format!("no FAILED or EXPIRED backup job since {}", when(since))
            } else {
                format!("since {}: {}", when(since), bad.join("; "))
            };
            out.push(count_at_most("failed-jobs", bad.len() as u64, ("job", "jobs"), Some(0), Some(detail)));
        }
    }
    match backup.describe_backup_vault().backup_vault_name(&s.vault).send().await {
        Ok(v) => {
            let locked = v.locked() == Some(true);
            let days = |d: Option<i64>| d.map_or("-".to_string(), |d| format!("{d}d"));
            out.push(Figure {
                name: "vault-lock".into(),
                value: if locked {
                    format!("locked (min {}, max {})", days(v.min_retention_days()), days(v.max_retention_days()))
                } else {
                    "not locked".into()
                },
                number: Some(if locked { 1.0 } else { 0.0 }),
                objective: None,
                status: Status::Observed,
                detail: Some(format!("vault `{}`", s.vault)),
            });
        }
        Err(e) => out.push(failed("vault-lock", &classify("backup:DescribeBackupVault", &e))),
    }
    out
}

pub(super) async fn s3_bucket(s3: &aws_sdk_s3::Client, s: &AwsPostureSpec, o: &PostureObjectives) -> Vec<Figure> {
    use aws_sdk_s3::types::{BucketVersioningStatus, ExpirationStatus, ServerSideEncryption};
    let mut out = Vec::new();
    match s3.get_bucket_versioning().bucket(&s.id).send().await {
        Ok(v) => {
            let status = v.status();
            let on = status == Some(&BucketVersioningStatus::Enabled);
            out.push(state(
                "versioning",
                status.map_or("never enabled", |s| s.as_str()),
                "Enabled",
                on,
                Some(format!("GetBucketVersioning of `{}`", s.id)),
            ));
        }
        Err(e) => out.push(failed("versioning", &classify("s3:GetBucketVersioning", &e))),
    }
    // The IAM action behind GetBucketEncryption is s3:GetEncryptionConfiguration.
    match s3.get_bucket_encryption().bucket(&s.id).send().await {
        Ok(enc) => {
            let rules = enc.server_side_encryption_configuration().map(|c| c.rules()).unwrap_or_default();
            let kms = rules
                .iter()
                .filter_map(|r| r.apply_server_side_encryption_by_default())
                .find(|d| matches!(d.sse_algorithm(), ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse));
            let algorithms: Vec<&str> = rules
                .iter()
                .filter_map(|r| r.apply_server_side_encryption_by_default())
                .map(|d| d.sse_algorithm().as_str())
                .collect();
            let detail = format!(
                "default encryption: {}",
                if algorithms.is_empty() { "none".into() } else { algorithms.join(", ") }
            );
            match kms {
                Some(d) => out.push(encryption(true, Some(d.kms_master_key_id().unwrap_or("aws/s3")), o, detail)),
                None => out.push(encryption(false, None, o, detail)),
            }
        }
        Err(e) => out.push(failed("encryption", &classify("s3:GetEncryptionConfiguration", &e))),
    }
    // The IAM action behind GetBucketLifecycleConfiguration is s3:GetLifecycleConfiguration.
    match s3.get_bucket_lifecycle_configuration().bucket(&s.id).send().await {
        Ok(l) => {
            let days = l
                .rules()
                .iter()
                .filter(|r| r.status() == &ExpirationStatus::Enabled)
                .filter_map(|r| r.noncurrent_version_expiration().and_then(|x| x.noncurrent_days()))
                .min();
            out.push(noncurrent(days, o));
        }
        Err(e) => {
            let e = classify("s3:GetLifecycleConfiguration", &e);
            if e.code.as_deref() == Some("NoSuchLifecycleConfiguration") {
                out.push(noncurrent(None, o));
            } else {
                out.push(failed("noncurrent-retention", &e));
            }
        }
    }
    out
}

/// Noncurrent versions kept `days` (the shortest enabled `NoncurrentVersionExpiration`), or for ever.
fn noncurrent(days: Option<i32>, o: &PostureObjectives) -> Figure {
    match days {
        Some(d) => at_least(
            "noncurrent-retention",
            f64::from(d.max(0)) * 86_400.0,
            o.min_retention,
            Some(format!("the shortest enabled NoncurrentVersionExpiration: {d} days")),
        ),
        None => Figure {
            name: "noncurrent-retention".into(),
            value: "kept (no expiration)".into(),
            number: None,
            objective: o.min_retention.map(|m| objective_text(m, "≥")),
            status: if o.min_retention.is_some() { Status::Met } else { Status::Observed },
            detail: Some("no enabled lifecycle rule expires noncurrent versions".into()),
        },
    }
}

#[cfg(test)]
#[path = "aws_tests.rs"]
mod tests;
