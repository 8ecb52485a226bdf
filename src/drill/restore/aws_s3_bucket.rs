//! `aws-s3-bucket`: a bucket (or a prefix of it) restored to an instant into a scratch bucket — the
//! database's instant for an `also-restore` entry, the target for a bucket drilled alone (`restore:`, where
//! it is the drill's provider, without a database). `from: versions` copies, server-side and in parallel, the version of every key current
//! at the instant (a versioned bucket; `ListObjectVersions`, delete markers respected; multipart copy above
//! 5 GiB); `from: aws-backup` runs a restore job of an S3 recovery point into a new bucket. Either way the
//! scratch bucket carries the scratch tags, Block Public Access, the source's encryption and a lifecycle
//! expiry, and teardown deletes every version and the bucket, guarded by its tags.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::aws_scratch::{self, Owner};
use super::s3_scratch::{self, Encryption};
use super::{Teardown, TeardownStatus};
use crate::aws::s3list::{Obj, S3Listing};
use crate::aws::{AwsSettings, Backoff, classify};
use crate::config::{BucketRestoreSpec, BucketSource};
use crate::drill::error::{CopyError, DrillError, RestoreError, fmt_time};
use crate::drill::events::EventSink;
use crate::drill::target::Window;
use crate::report::model::{self, PhaseStatus};

/// Above this size an object is copied in parts (`CopyObject` takes at most 5 GiB).
const SINGLE_COPY_MAX: u64 = 5 << 30;
/// The smallest part of a multipart copy.
const PART_MIN: u64 = 512 << 20;
/// The largest part S3 takes (`UploadPartCopy`), and the most parts an upload may have.
const PART_MAX: u64 = 5 << 30;
const MAX_PARTS: u64 = 10_000;

/// A restored bucket, as checks reach it.
#[derive(Clone)]
pub(crate) struct RestoredBucket {
    pub(crate) name: String,
    pub(crate) client: Client,
    pub(crate) source: String,
    pub(crate) prefix: String,
    pub(crate) scratch: String,
    /// The instant the scratch holds.
    pub(crate) as_of: DateTime<Utc>,
    /// ETags of the copies can equal the source's: neither bucket encrypts with KMS (whose ETags are not
    /// digests of the bytes), and the restore copied rather than rebuilt them.
    pub(crate) etags_comparable: bool,
}

/// A recovery point of the bucket in AWS Backup.
#[derive(Debug, Clone)]
struct Point {
    arn: String,
    created: DateTime<Utc>,
    continuous: bool,
    /// The earliest instant it restores to: its creation; for a continuous point, the later of that and now
    /// less its retention (`aws_backup::continuous_earliest`).
    earliest: DateTime<Utc>,
}

pub(crate) struct BucketRestore {
    spec: BucketRestoreSpec,
    s3: Client,
    backup: aws_sdk_backup::Client,
    region: String,
    drill: String,
    run: String,
    /// This restore's idempotency and creation token: the run's id and the entry's index, so that two
    /// restore jobs of one run are never taken by AWS Backup for the same request.
    token: String,
    events: EventSink,
    expires_at: DateTime<Utc>,
    scratch: String,
    encryption: Option<Encryption>,
    window: Option<Window>,
    /// AWS Backup's recovery points of the bucket, oldest first.
    points: Vec<Point>,
    point: Option<Point>,
    as_of: Option<DateTime<Utc>>,
    /// The scratch bucket may exist: teardown looks for it.
    started: bool,
    /// The AWS Backup restore job making the scratch, and whether it has ended.
    job: Option<String>,
    job_ended: bool,
    copied: Option<(u64, u64)>,
    rto: Option<f64>,
    outcome: Option<Result<(), RestoreError>>,
}

impl BucketRestore {
    /// Loads the config for the scratch region (the entry's `region`, else `--region`), checks
    /// credentials and residency; nothing is created.
    pub(crate) async fn connect(
        spec: &BucketRestoreSpec,
        settings: &AwsSettings,
        (drill, run, index): (&str, &str, usize),
        events: EventSink,
        lifetime: std::time::Duration,
    ) -> Result<Self, DrillError> {
        let mut settings = settings.clone();
        if let Some(r) = &spec.region {
            settings.region = Some(r.clone());
        }
        let config = crate::aws::load(&settings).await;
        crate::aws::check_credentials(&config).await?;
        let region = config.region().map(|r| r.to_string()).unwrap_or_else(|| crate::aws::DEFAULT_REGION.into());
        aws_scratch::check_residency(&region, &spec.residency, &format!("bucket restore `{}`'s", spec.name))?;
        let s3 = crate::aws::s3::client(&config, settings.endpoint_url.is_some(), None);
        let backup = aws_sdk_backup::Client::new(&config);
        Ok(BucketRestore::with_clients(spec, (s3, backup), region, (drill, run, index), events, lifetime))
    }

    /// A restore with its clients built (tests pass mocked ones).
    pub(crate) fn with_clients(
        spec: &BucketRestoreSpec,
        (s3, backup): (Client, aws_sdk_backup::Client),
        region: String,
        (drill, run, index): (&str, &str, usize),
        events: EventSink,
        lifetime: std::time::Duration,
    ) -> Self {
        BucketRestore {
            spec: spec.clone(),
            s3,
            backup,
            region,
            drill: drill.to_string(),
            run: run.to_string(),
            token: format!("{run}-{index}"),
            events,
            expires_at: Utc::now() + lifetime.max(spec.expires_after),
            scratch: s3_scratch::bucket_name(drill, run, index),
            encryption: None,
            window: None,
            points: Vec::new(),
            point: None,
            as_of: None,
            started: false,
            job: None,
            job_ended: false,
            copied: None,
            rto: None,
            outcome: None,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }

    fn progress(&self, msg: impl Into<String>) {
        self.events.progress(&self.drill, "also-restore", msg);
    }

    /// The plan: `prepare`, then `settle` at `instant`; a bucket that cannot be brought back to `instant`
    /// stops the drill before anything is created.
    pub(crate) async fn plan(&mut self, instant: DateTime<Utc>) -> Result<(), DrillError> {
        self.prepare().await?;
        self.settle(instant)
    }

    /// What can be read before the instant is known: the source is in the scratch's region, its
    /// restorable window (and recovery points), the encryption to give the scratch.
    pub(crate) async fn prepare(&mut self) -> Result<Window, DrillError> {
        let bucket = &self.spec.bucket.clone();
        let source_region = bucket_region(&self.s3, bucket).await?;
        if source_region != self.region {
            return Err(DrillError::Refused(format!(
                "bucket `{bucket}` is in `{source_region}` and the scratch would be in `{}`: restore it in its own region (set `region: {source_region}` and allow it in `residency`)",
                self.region
            )));
        }
        let window = match &self.spec.from {
            BucketSource::Versions => self.versions_window().await?,
            BucketSource::AwsBackup { vault, recovery_point, .. } => {
                self.backup_window(vault.clone(), recovery_point.clone()).await?
            }
        };
        self.window = Some(window);
        self.encryption = Some(match &self.spec.kms_key {
            Some(k) => Encryption::Kms(Some(k.clone())),
            None => {
                s3_scratch::encryption_of(&self.s3, bucket).await.map_err(|e| DrillError::Refused(e.to_string()))?
            }
        });
        Ok(window)
    }

    /// The instant inside the window; with AWS Backup, the recovery point that reaches it: a continuous one
    /// restores exactly to it, else the newest snapshot before it (the bucket then stands at its time).
    pub(crate) fn settle(&mut self, instant: DateTime<Utc>) -> Result<(), DrillError> {
        let Some(window) = self.window else {
            return Err(DrillError::Refused(format!("bucket `{}` was not prepared", self.spec.bucket)));
        };
        if instant < window.earliest || instant > window.latest {
            return Err(DrillError::Refused(format!(
                "bucket `{}` cannot be restored to {}: its restorable window is {} .. {}",
                self.spec.bucket,
                fmt_time(&instant),
                fmt_time(&window.earliest),
                fmt_time(&window.latest)
            )));
        }
        if matches!(self.spec.from, BucketSource::AwsBackup { .. }) {
            let points = &self.points;
            self.point = points
                .iter()
                .rev()
                .find(|p| p.continuous && p.earliest <= instant)
                .or_else(|| points.iter().rev().find(|p| !p.continuous && p.created <= instant))
                .cloned();
        }
        self.as_of = Some(match &self.point {
            Some(p) if !p.continuous => p.created,
            _ => instant,
        });
        Ok(())
    }

    /// A versioned bucket can be read as of any instant since its noncurrent versions are kept: from
    /// now minus the shortest noncurrent-version expiry that applies (or its creation) until now.
    async fn versions_window(&self) -> Result<Window, DrillError> {
        let bucket = &self.spec.bucket;
        let v = self
            .s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| classify("s3:GetBucketVersioning", &e))?;
        if v.status() != Some(&aws_sdk_s3::types::BucketVersioningStatus::Enabled) {
            return Err(DrillError::Refused(format!(
                "bucket `{bucket}` does not keep versions (versioning is {}): it cannot be read as of an earlier instant; enable versioning, or restore with `from: aws-backup`",
                v.status().map(|s| s.as_str()).unwrap_or("off")
            )));
        }
        let now = Utc::now();
        let retention = self.noncurrent_retention_days().await?;
        let created = s3_scratch::created_at(&self.s3, bucket).await.map_err(|e| DrillError::Refused(e.to_string()))?;
        let by_retention = retention.map(|d| now - chrono::TimeDelta::days(d.into()));
        let earliest = match (created, by_retention) {
            (Some(c), Some(r)) => c.max(r),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => now,
        };
        Ok(Window { earliest, latest: now })
    }

    /// The shortest noncurrent-version expiry of an enabled lifecycle rule reaching the prefix.
    async fn noncurrent_retention_days(&self) -> Result<Option<i32>, DrillError> {
        let rules = crate::aws::s3::lifecycle_rules(&self.s3, &self.spec.bucket).await?;
        let prefix = &self.spec.prefix;
        let days = rules
            .iter()
            .filter(|r| r.status() == &aws_sdk_s3::types::ExpirationStatus::Enabled)
            .filter(|r| {
                let p = crate::aws::s3::rule_prefix(r);
                prefix.starts_with(p) || p.starts_with(prefix.as_str())
            })
            .filter_map(|r| r.noncurrent_version_expiration().and_then(|n| n.noncurrent_days()))
            .min();
        Ok(days)
    }

    /// The bucket's recovery points (those in `vault` when given; only `pinned` when given), and the window
    /// they cover.
    async fn backup_window(&mut self, vault: Option<String>, pinned: Option<String>) -> Result<Window, DrillError> {
        let arn = format!("arn:aws:s3:::{}", self.spec.bucket);
        let mut points = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .backup
                .list_recovery_points_by_resource()
                .resource_arn(&arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("backup:ListRecoveryPointsByResource", &e))?;
            for p in page.recovery_points() {
                use aws_sdk_backup::types::RecoveryPointStatus::*;
                let (Some(point_arn), Some(created)) =
                    (p.recovery_point_arn(), p.creation_date().map(aws_scratch::to_chrono))
                else {
                    continue;
                };
                let wanted = matches!(p.status(), Some(Completed | Available))
                    && vault.as_deref().is_none_or(|v| p.backup_vault_name() == Some(v))
                    && pinned.as_deref().is_none_or(|a| a == point_arn);
                if wanted {
                    let continuous = point_arn.contains(":continuous:");
                    let earliest = if continuous {
                        // The listing by resource carries no lifecycle: the point's own description does.
                        let days = match p.backup_vault_name() {
                            Some(v) => self
                                .backup
                                .describe_recovery_point()
                                .backup_vault_name(v)
                                .recovery_point_arn(point_arn)
                                .send()
                                .await
                                .map_err(|e| classify("backup:DescribeRecoveryPoint", &e))?
                                .lifecycle()
                                .and_then(|l| l.delete_after_days()),
                            None => None,
                        };
                        super::aws_backup::continuous_earliest(created, days, Utc::now())
                    } else {
                        created
                    };
                    points.push(Point { arn: point_arn.to_string(), created, continuous, earliest });
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        points.sort_by_key(|p| p.created);
        let (Some(_), Some(last)) = (points.first(), points.last()) else {
            let which = match (&pinned, &vault) {
                (Some(a), _) => format!("recovery point `{a}` is not a completed recovery point of"),
                (None, Some(v)) => format!("vault `{v}` holds no completed recovery point of"),
                (None, None) => "AWS Backup holds no completed recovery point of".to_string(),
            };
            return Err(DrillError::NoWindow(format!("{which} bucket `{}`", self.spec.bucket)));
        };
        // AWS Backup restores a continuous S3 backup up to about 15 minutes ago at best: stay behind that.
        let continuous_latest = Utc::now() - chrono::TimeDelta::minutes(15);
        let latest =
            if points.iter().any(|p| p.continuous) { continuous_latest.max(last.created) } else { last.created };
        let earliest = points.iter().map(|p| p.earliest).min().unwrap_or(last.created);
        let window = Window { earliest, latest };
        self.points = points;
        Ok(window)
    }

    /// Creates the scratch and brings the objects back; records how it went.
    pub(crate) async fn bring_back(&mut self) -> Result<(), RestoreError> {
        let clock = Instant::now();
        let res = match self.spec.from.clone() {
            BucketSource::Versions => self.restore_versions().await,
            BucketSource::AwsBackup { iam_role_arn, .. } => self.restore_backup(&iam_role_arn).await,
        };
        if res.is_ok() {
            self.rto = Some(clock.elapsed().as_secs_f64());
        }
        self.outcome = Some(res.clone());
        res
    }

    async fn restore_versions(&mut self) -> Result<(), RestoreError> {
        let as_of = self.as_of.ok_or_else(|| RestoreError::Error("the bucket restore was not planned".into()))?;
        let encryption = self.encryption.clone().unwrap_or(Encryption::S3Managed);
        self.started = true;
        let tags = aws_scratch::scratch_tag_pairs(&self.drill, &self.run, self.expires_at);
        s3_scratch::create(&self.s3, &self.scratch, &self.region, &tags).await?;
        self.secure(&encryption).await?;
        crate::crash::point("also-restore:copying");
        self.progress(format!(
            "copying the objects of `{}` as of {} into `{}`",
            self.spec.bucket,
            fmt_time(&as_of),
            self.scratch
        ));
        let mut listing = S3Listing::new(self.s3.clone(), &self.spec.bucket, &self.spec.prefix, Some(as_of));
        let objects = listing.all().await.map_err(RestoreError::Error)?;
        let (s3, source, scratch) = (&self.s3, self.spec.bucket.as_str(), self.scratch.as_str());
        // By index: a closure over a borrowed object would make the stream not `Send`.
        let objects = &objects;
        let mut copies = futures_util::stream::iter(0..objects.len())
            .map(move |i| copy_one(s3, source, scratch, &objects[i]))
            .buffer_unordered(self.spec.parallel);
        let (mut n, mut bytes) = (0u64, 0u64);
        while let Some(done) = copies.next().await {
            let size = done?;
            n += 1;
            bytes += size;
            if n % 1000 == 0 {
                self.events.progress(&self.drill, "also-restore", format!("{n} of {} objects copied", objects.len()));
            }
        }
        drop(copies);
        self.copied = Some((n, bytes));
        Ok(())
    }

    async fn secure(&self, encryption: &Encryption) -> Result<(), RestoreError> {
        let tags = aws_scratch::scratch_tag_pairs(&self.drill, &self.run, self.expires_at);
        let days = (self.expires_at - Utc::now()).num_days() as i32 + 1;
        Ok(s3_scratch::secure(&self.s3, &self.scratch, &tags, encryption, days).await?)
    }

    /// A restore job into a new bucket named like the scratch; tagged and secured as soon as it exists.
    async fn restore_backup(&mut self, role: &str) -> Result<(), RestoreError> {
        let point = self.point.clone().ok_or_else(|| RestoreError::Error("no recovery point chosen".into()))?;
        let as_of = self.as_of.unwrap_or(point.created);
        let encryption = self.encryption.clone().unwrap_or(Encryption::S3Managed);
        let mut m: HashMap<String, String> = HashMap::new();
        m.insert("DestinationBucketName".into(), self.scratch.clone());
        m.insert("NewBucket".into(), "true".into());
        m.insert("CreationToken".into(), self.token.clone());
        m.insert("Encrypted".into(), "true".into());
        match &encryption {
            Encryption::S3Managed => {
                m.insert("EncryptionType".into(), "SSE-S3".into());
            }
            Encryption::Kms(key) => {
                m.insert("EncryptionType".into(), "SSE-KMS".into());
                if let Some(k) = key {
                    m.insert("KMSKey".into(), k.clone());
                }
            }
        }
        if point.continuous {
            m.insert("RestoreTime".into(), as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        if !self.spec.prefix.is_empty() {
            let item = format!("s3://{}/{}", self.spec.bucket, self.spec.prefix);
            m.insert("ItemsToRestore".into(), serde_json::json!([item]).to_string());
        }
        self.started = true;
        let job = self
            .backup
            .start_restore_job()
            .recovery_point_arn(&point.arn)
            .iam_role_arn(role)
            .resource_type("S3")
            .idempotency_token(&self.token)
            .set_metadata(Some(m))
            .send()
            .await
            .map_err(|e| RestoreError::Error(classify("backup:StartRestoreJob", &e).to_string()))?;
        let job = job.restore_job_id().unwrap_or_default().to_string();
        self.progress(format!("restore job {job} of {} into `{}`", point.arn, self.scratch));
        self.job = Some(job);
        self.wait_job().await?;
        self.secure(&encryption).await?;
        let mut listing = S3Listing::new(self.s3.clone(), &self.scratch, &self.spec.prefix, None);
        let objects = listing.all().await.map_err(RestoreError::Error)?;
        self.copied = Some((objects.len() as u64, objects.iter().map(|o| o.size).sum()));
        Ok(())
    }

    /// Polls the restore job until it ends: `Ok` completed, `Failed` with AWS Backup's message.
    async fn wait_job(&mut self) -> Result<(), RestoreError> {
        let Some(job) = self.job.clone() else { return Ok(()) };
        let mut backoff = Backoff::describe();
        loop {
            use aws_sdk_backup::types::RestoreJobStatus::*;
            let d = self
                .backup
                .describe_restore_job()
                .restore_job_id(&job)
                .send()
                .await
                .map_err(|e| RestoreError::Error(classify("backup:DescribeRestoreJob", &e).to_string()))?;
            match d.status() {
                Some(Completed) => {
                    self.job_ended = true;
                    return Ok(());
                }
                Some(Failed | Aborted) => {
                    self.job_ended = true;
                    return Err(RestoreError::Failed(format!(
                        "restore job {job} ended {}: {}",
                        d.status().map(|s| s.as_str()).unwrap_or_default(),
                        d.status_message().unwrap_or("no message")
                    )));
                }
                _ => backoff.wait().await,
            }
        }
    }

    /// What checks reach once the restore is complete.
    pub(crate) fn restored(&self) -> Option<RestoredBucket> {
        if !matches!(self.outcome, Some(Ok(()))) {
            return None;
        }
        let kms = matches!(self.encryption, Some(Encryption::Kms(_)));
        Some(RestoredBucket {
            name: self.spec.name.clone(),
            client: self.s3.clone(),
            source: self.spec.bucket.clone(),
            prefix: self.spec.prefix.clone(),
            scratch: self.scratch.clone(),
            as_of: self.as_of?,
            etags_comparable: !kms && self.spec.from == BucketSource::Versions,
        })
    }

    /// Deletes the scratch bucket (every version first) when its tags name this run.
    pub(crate) async fn remove_scratch(&mut self) -> Teardown {
        if !self.started {
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: format!("no scratch bucket was created for `{}`", self.spec.name),
            };
        }
        if self.job.is_some() {
            // A restore job cut short by its phase may still make the bucket: wait for it to end (within the
            // teardown's deadline), and give what it made the tags AWS Backup does not, so it goes too.
            if !self.job_ended {
                let _ = self.wait_job().await;
            }
            let tagged = s3_scratch::tags_of(&self.s3, &self.scratch).await.ok().flatten();
            if tagged.is_some_and(|t| !t.iter().any(|(k, v)| k == aws_scratch::TAG_SCRATCH && v == "true")) {
                let tags = aws_scratch::scratch_tag_pairs(&self.drill, &self.run, self.expires_at);
                if let Err(e) = crate::aws::s3::put_tags(&self.s3, &self.scratch, &tags).await {
                    tracing::warn!(bucket = %self.scratch, error = %e, "could not tag the bucket the restore job made");
                }
            }
        }
        let res = s3_scratch::delete_guarded(&self.s3, &self.scratch, Owner::Run(&self.run)).await;
        Teardown::from_delete(
            res,
            format!("scratch bucket `{}` emptied and deleted", self.scratch),
            format!("scratch bucket `{}` was not there", self.scratch),
        )
    }

    /// `versions`, or the recovery point restored.
    fn record_from(&self) -> String {
        match (&self.spec.from, &self.point) {
            (BucketSource::Versions, _) => "versions".into(),
            (BucketSource::AwsBackup { .. }, Some(p)) => p.arn.clone(),
            (BucketSource::AwsBackup { .. }, None) => "aws-backup".into(),
        }
    }

    /// What a planned restore would do, for `drill plan`.
    pub(crate) fn plan_text(&self) -> String {
        let t = |t: Option<DateTime<Utc>>| t.map(|t| fmt_time(&t)).unwrap_or_else(|| "?".into());
        let from = match &self.point {
            Some(p) => format!("recovery point {}", p.arn),
            None => "its versions".into(),
        };
        format!(
            "`{}`: s3://{}/{} from {from} (window {} → {}) to {} into `{}/{}` ({})",
            self.spec.name,
            self.spec.bucket,
            self.spec.prefix,
            t(self.window.map(|w| w.earliest)),
            t(self.window.map(|w| w.latest)),
            t(self.as_of),
            self.region,
            self.scratch,
            self.encryption.as_ref().map(Encryption::describe).unwrap_or_default()
        )
    }

    /// The report's record of this restore.
    pub(crate) fn record(&self, teardown: Teardown) -> model::AlsoRestored {
        let (status, detail) = match &self.outcome {
            Some(Ok(())) => (PhaseStatus::Passed, None),
            Some(Err(e)) => (PhaseStatus::Failed, Some(e.to_string())),
            None if self.started => (
                PhaseStatus::Error,
                Some("did not finish: the also-restore phase ended first (its deadline, or a stop)".into()),
            ),
            None => (PhaseStatus::Skipped, Some("not restored: the database restore did not complete".into())),
        };
        model::AlsoRestored {
            name: self.spec.name.clone(),
            provider: "aws-s3-bucket".into(),
            source: format!("s3://{}/{}", self.spec.bucket, self.spec.prefix),
            from: self.record_from(),
            window: self.window.map(|w| model::WindowRecord { earliest: w.earliest, latest: w.latest }),
            restored_to: self.as_of,
            scratch: self.started.then(|| format!("{}/{}", self.region, self.scratch)),
            encryption: self.encryption.as_ref().map(Encryption::describe),
            objects: self.copied.map(|c| c.0),
            bytes: self.copied.map(|c| c.1),
            rto_seconds: self.rto,
            status,
            detail,
            teardown: teardown.into(),
        }
    }
}

/// A bucket restored alone (`restore: aws-s3-bucket`): a provider with no database. The runner skips the
/// ready phase and runs the `objects` checks on the scratch bucket.
#[async_trait::async_trait]
impl super::RestoreProvider for BucketRestore {
    fn name(&self) -> &'static str {
        "aws-s3-bucket"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("bucket", self.spec.bucket.clone()),
            ("prefix", self.spec.prefix.clone()),
            ("from", self.record_from()),
            ("region", self.region.clone()),
        ];
        if self.started {
            out.push(("scratch", format!("{}/{}", self.region, self.scratch)));
        }
        if let Some(e) = &self.encryption {
            out.push(("encryption", e.describe()));
        }
        if let Some((n, b)) = self.copied {
            out.push(("objects", n.to_string()));
            out.push(("restored_bytes", b.to_string()));
        }
        out
    }

    fn has_ready_phase(&self) -> bool {
        false
    }

    async fn window(&mut self) -> Result<Window, DrillError> {
        self.prepare().await
    }

    async fn wait_recoverable(&mut self, _: DateTime<Utc>, _: &tokio_postgres::Client) -> Result<(), DrillError> {
        Ok(())
    }

    fn plan(&mut self, target: &crate::drill::target::ResolvedTarget) -> Result<super::BackupUsed, DrillError> {
        self.settle(target.time)?;
        let at = self.as_of.unwrap_or(target.time);
        Ok(match &self.point {
            Some(p) => super::BackupUsed {
                id: p.arn.rsplit(':').next().unwrap_or_default().to_string(),
                location: p.arn.clone(),
                started_at: p.created,
                finished_at: p.created,
            },
            None => super::BackupUsed {
                id: "versions".into(),
                location: format!("s3://{}/{}", self.spec.bucket, self.spec.prefix),
                started_at: at,
                finished_at: at,
            },
        })
    }

    async fn restore(&mut self, _: &crate::drill::target::ResolvedTarget) -> Result<(), RestoreError> {
        self.bring_back().await
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.restored()
            .map(super::Restored::Bucket)
            .ok_or_else(|| RestoreError::Error("the bucket was not restored: nothing to check".into()))
    }

    async fn teardown(&mut self) -> Teardown {
        self.remove_scratch().await
    }

    fn rpo_floor(&self) -> Option<(DateTime<Utc>, &'static str)> {
        let basis = if self.point.as_ref().is_some_and(|p| !p.continuous) {
            "the recovery point's time: the bucket stands there"
        } else {
            // Not "RPO 0 exactly": listings resolve LastModified to the second (aws/s3list.rs).
            "the version of every key current at the target, to the second: S3 lists LastModified to one second, so a write within the target's second counts"
        };
        self.as_of.map(|t| (t, basis))
    }

    fn data_as_of(&self) -> Option<DateTime<Utc>> {
        self.as_of
    }

    fn recovery(&self) -> Option<String> {
        Some(match &self.point {
            Some(p) => format!("AWS Backup restore job of {} into a new scratch bucket", p.arn),
            None => "the version of every key current at the target, copied server-side into a scratch bucket".into(),
        })
    }

    fn restored_bytes(&self) -> Option<u64> {
        self.copied.map(|c| c.1)
    }

    fn rto_seconds(&self, _: DateTime<Utc>) -> Option<f64> {
        self.rto
    }
}

/// The region a bucket is in, from `HeadBucket`'s `x-amz-bucket-region` (AWS sends it with a 200, and with
/// the 301 or 403 a bucket in another region or account answers from this client's region) — not
/// `GetBucketLocation`, which AWS no longer recommends and which fails with a redirect for such a bucket.
async fn bucket_region(s3: &Client, bucket: &str) -> Result<String, DrillError> {
    let region = match s3.head_bucket().bucket(bucket).send().await {
        Ok(o) => o.bucket_region().map(str::to_string),
        Err(e) => match e.raw_response().and_then(|r| r.headers().get("x-amz-bucket-region")) {
            Some(r) => Some(r.to_string()),
            // IAM authorizes HeadBucket as s3:ListBucket.
            None => return Err(classify("s3:ListBucket", &e).into()),
        },
    };
    region.filter(|r| !r.is_empty()).ok_or_else(|| {
        DrillError::Refused(format!("S3 did not say which region bucket `{bucket}` is in (HeadBucket gave no region)"))
    })
}

/// `CopySource` wants the key URL-encoded: everything but unreserved characters and `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A tag set as `x-amz-tagging` carries it: URL query parameters.
fn tagging(tags: &[aws_sdk_s3::types::Tag]) -> Option<String> {
    let enc = |s: &str| encode_key(s).replace('/', "%2F");
    let pairs: Vec<String> = tags.iter().map(|t| format!("{}={}", enc(t.key()), enc(t.value()))).collect();
    (!pairs.is_empty()).then(|| pairs.join("&"))
}

/// The byte ranges (inclusive) of a multipart copy of `size` bytes: parts of max(512 MiB, ⌈size/10,000⌉), at
/// most 5 GiB, so that no object S3 can hold (5 TiB) needs more than the 10,000 parts an upload may have.
fn part_ranges(size: u64) -> Vec<(u64, u64)> {
    let part = PART_MIN.max(size.div_ceil(MAX_PARTS)).min(PART_MAX);
    let mut out = Vec::new();
    let mut start = 0u64;
    while start < size {
        let end = (start + part).min(size) - 1;
        out.push((start, end));
        start = end + 1;
    }
    out
}

/// Copies one version server-side (in parts above 5 GiB); the bytes copied. `CopyObject` keeps the
/// source's Content-Type, user metadata, cache and encoding headers and tags; a multipart copy does not, so
/// they are read (`HeadObject`, `GetObjectTagging`) and given to `CreateMultipartUpload`.
async fn copy_one(s3: &Client, source: &str, scratch: &str, o: &Obj) -> Result<u64, CopyError> {
    let from = format!("{source}/{}?versionId={}", encode_key(&o.key), o.version.as_deref().unwrap_or("null"));
    if o.size <= SINGLE_COPY_MAX {
        s3.copy_object().bucket(scratch).key(&o.key).copy_source(&from).send().await.map_err(|e| CopyError {
            step: format!("copying `{}`", o.key),
            source: classify("s3:GetObjectVersion", &e),
        })?;
        return Ok(o.size);
    }
    let head =
        s3.head_object().bucket(source).key(&o.key).set_version_id(o.version.clone()).send().await.map_err(|e| {
            CopyError { step: format!("reading `{}`'s headers", o.key), source: classify("s3:GetObjectVersion", &e) }
        })?;
    let tags =
        s3.get_object_tagging().bucket(source).key(&o.key).set_version_id(o.version.clone()).send().await.map_err(
            |e| CopyError {
                step: format!("reading `{}`'s tags", o.key),
                source: classify("s3:GetObjectVersionTagging", &e),
            },
        )?;
    let upload = s3
        .create_multipart_upload()
        .bucket(scratch)
        .key(&o.key)
        .set_content_type(head.content_type().map(str::to_string))
        .set_metadata(head.metadata().cloned())
        .set_cache_control(head.cache_control().map(str::to_string))
        .set_content_encoding(head.content_encoding().map(str::to_string))
        .set_content_disposition(head.content_disposition().map(str::to_string))
        .set_content_language(head.content_language().map(str::to_string))
        .set_tagging(tagging(tags.tag_set()))
        .send()
        .await
        .map_err(|e| CopyError { step: format!("copying `{}`", o.key), source: classify("s3:PutObject", &e) })?;
    let id = upload.upload_id().unwrap_or_default().to_string();
    let mut parts = Vec::new();
    for (start, end) in part_ranges(o.size) {
        let n = parts.len() as i32 + 1;
        let part = s3
            .upload_part_copy()
            .bucket(scratch)
            .key(&o.key)
            .upload_id(&id)
            .part_number(n)
            .copy_source(&from)
            .copy_source_range(format!("bytes={start}-{end}"))
            .send()
            .await
            .map_err(|e| CopyError {
                step: format!("copying part {n} of `{}`", o.key),
                source: classify("s3:GetObjectVersion", &e),
            })?;
        let etag = part.copy_part_result().and_then(|r| r.e_tag()).map(str::to_string);
        parts.push(aws_sdk_s3::types::CompletedPart::builder().part_number(n).set_e_tag(etag).build());
    }
    s3.complete_multipart_upload()
        .bucket(scratch)
        .key(&o.key)
        .upload_id(&id)
        .multipart_upload(aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .map_err(|e| CopyError {
            step: format!("completing the copy of `{}`", o.key),
            source: classify("s3:PutObject", &e),
        })?;
    Ok(o.size)
}

#[cfg(test)]
#[path = "aws_s3_bucket_tests.rs"]
mod backup_tests;

#[async_trait::async_trait]
impl super::registry::ProviderKind for BucketRestoreSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let ids = (ctx.spec.name.as_str(), ctx.run_id, 0);
        let provider = BucketRestore::connect(self, &ctx.opts.aws, ids, ctx.events.clone(), ctx.lifetime).await?;
        Ok(super::registry::Built::alone(provider))
    }

    fn scratch_text(&self, _: &str, spec: &crate::config::DrillSpec, run_id: &str, region: Option<&str>) -> String {
        format!(
            "bucket {} in {}: private, encrypted like the source, expiring, tagged stackdrill:scratch",
            super::s3_scratch::bucket_name(&spec.name, run_id, 0),
            self.region.as_deref().or(region).unwrap_or("the default region")
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_sources_encode_what_a_url_cannot_carry() {
        assert_eq!(super::encode_key("docs/a b+c?.pdf"), "docs/a%20b%2Bc%3F.pdf");
        assert_eq!(super::encode_key("ü/x"), "%C3%BC/x");
    }
}
