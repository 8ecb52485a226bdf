//! `aws-backup`: restore an AWS Backup recovery point of an RDS database (a snapshot, or a point in time
//! of a continuous backup) with StartRestoreJob into an isolated scratch instance, then report the
//! verdict back with PutRestoreValidationResult so AWS Backup's console and audit reports see it.
//!
//! With `restore-testing-plan` it restores nothing itself: it validates the newest completed, not yet
//! validated restore job of that AWS Backup restore testing plan — verifies the instance the plan restored,
//! reports the verdict back with PutRestoreValidationResult, and leaves the instance to AWS Backup, which
//! deletes it after its validation window.
//!
//! Window: [oldest usable recovery point, newest] (a continuous point reaches up to now). A target
//! between snapshots restores the newest snapshot before it; the RPO then honestly includes the gap.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_backup::types::{
    RecoveryPointByBackupVault, RecoveryPointStatus, RestoreJobStatus, RestoreValidationStatus,
};
use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};

use super::TeardownStatus;
use super::aws_scratch::{self, GroupLevel, Owner, RunInfo};
use super::{BackupUsed, Endpoint, RestoreProvider, Teardown};
use crate::aws::{Backoff, CallCounter, classify};
use crate::config::{AwsBackupSpec, PointKind};
use crate::drill::error::{DrillError, RestoreError, fmt_time};
use crate::drill::target::{Recovery, ResolvedTarget, Window};

pub(crate) struct AwsBackup {
    spec: AwsBackupSpec,
    backup: aws_sdk_backup::Client,
    rds: aws_sdk_rds::Client,
    info: RunInfo,
    scratch_id: String,
    teardown_deadline: Duration,
    points: Vec<Point>,
    chosen: Option<Point>,
    job_id: Option<String>,
    job_done: bool,
    /// The scratch's parameter group (made inert); deleted at teardown when this run copied it.
    parameters: Option<aws_scratch::ScratchParameters>,
    copying_parameters: bool,
    /// What AWS Backup said to the validation result, for the report.
    validation: Option<String>,
    /// With `restore-testing-plan`: the plan's job being validated.
    tested: Option<TestedJob>,
    /// With `restore-testing-plan`: the user and password the drill's source logs in with (the restored
    /// copy carries the source's roles); stackdrill changes nothing on an instance it does not own.
    login: Option<(String, Option<String>)>,
}

/// A restore testing plan's restore job, as ListRestoreJobs gives it.
#[derive(Debug, Clone)]
struct TestedJob {
    id: String,
    recovery_point: String,
    /// The recovery point's creation: what the restored copy stands at.
    point_created: DateTime<Utc>,
    /// The DB instance identifier from `CreatedResourceArn`.
    instance: String,
    /// How long AWS Backup took to restore it (the job's creation to its completion): the RTO, since the
    /// drill's own clock did not see the restore.
    restore_seconds: Option<f64>,
}

#[derive(Debug, Clone)]
struct Point {
    arn: String,
    created: DateTime<Utc>,
    /// For a continuous point: restorable up to now.
    continuous: bool,
    /// The earliest instant it restores to: its creation, or for a continuous point the later of that and
    /// now less its retention.
    earliest: DateTime<Utc>,
}

/// AWS Backup keeps a continuous backup at most 35 days.
const CONTINUOUS_MAX_DAYS: i64 = 35;

/// The earliest instant a continuous backup created at `created` restores to: it reaches back at most its
/// retention (the recovery point's lifecycle `DeleteAfterDays`; at most 35 days), so max(created, now −
/// retention).
pub(crate) fn continuous_earliest(
    created: DateTime<Utc>,
    delete_after_days: Option<i64>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let days = delete_after_days.filter(|d| *d > 0).unwrap_or(CONTINUOUS_MAX_DAYS).min(CONTINUOUS_MAX_DAYS);
    created.max(now - chrono::TimeDelta::days(days))
}

impl AwsBackup {
    /// `teardown_deadline` bounds how long teardown waits for a restore job that is still running.
    pub(crate) fn new(
        spec: &AwsBackupSpec,
        backup: aws_sdk_backup::Client,
        rds: aws_sdk_rds::Client,
        info: RunInfo,
        teardown_deadline: Duration,
    ) -> Self {
        let scratch_id = aws_scratch::scratch_id(&info.drill, &info.run);
        Self {
            spec: spec.clone(),
            backup,
            rds,
            info,
            scratch_id,
            teardown_deadline,
            points: Vec::new(),
            chosen: None,
            job_id: None,
            job_done: false,
            parameters: None,
            copying_parameters: false,
            validation: None,
            tested: None,
            login: None,
        }
    }

    /// The user and password to log in to a restore testing plan's restored instance with.
    pub(crate) fn with_login(mut self, user: String, password: Option<String>) -> Self {
        self.login = Some((user, password));
        self
    }

    /// The newest completed restore job of the restore testing plan that has no validation result yet
    /// (ListRestoreJobs by the plan's ARN and status COMPLETED) of `resource-arn` (config requires it).
    async fn find_tested_job(&self, plan: &str) -> Result<TestedJob, DrillError> {
        let got = self
            .backup
            .get_restore_testing_plan()
            .restore_testing_plan_name(plan)
            .send()
            .await
            .map_err(|e| classify("backup:GetRestoreTestingPlan", &e))?;
        let arn = got
            .restore_testing_plan()
            .map(|p| p.restore_testing_plan_arn().to_string())
            .ok_or_else(|| DrillError::NotFound(format!("restore testing plan `{plan}`")))?;
        let mut newest: Option<(DateTime<Utc>, TestedJob)> = None;
        let mut token = None;
        loop {
            let page = self
                .backup
                .list_restore_jobs()
                .by_restore_testing_plan_arn(&arn)
                .by_status(RestoreJobStatus::Completed)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("backup:ListRestoreJobs", &e))?;
            for j in page.restore_jobs() {
                if j.validation_status().is_some()
                    || j.status() != Some(&RestoreJobStatus::Completed)
                    // Only `resource-arn`'s restores: a verdict on another team's job is not ours to write.
                    || self.spec.resource_arn.is_empty()
                    || j.source_resource_arn() != Some(self.spec.resource_arn.as_str())
                {
                    continue;
                }
                let (Some(id), Some(created), Some(point)) =
                    (j.restore_job_id(), j.created_resource_arn(), j.recovery_point_arn())
                else {
                    continue;
                };
                // Only RDS DB instances: `arn:aws:rds:<region>:<account>:db:<id>`.
                let Some((_, instance)) = created.split_once(":db:") else { continue };
                let done = j.completion_date().or(j.creation_date()).map(aws_scratch::to_chrono).unwrap_or_default();
                let restore_seconds = j
                    .creation_date()
                    .zip(j.completion_date())
                    .map(|(a, b)| (aws_scratch::to_chrono(b) - aws_scratch::to_chrono(a)).as_seconds_f64());
                let point_created = j.recovery_point_creation_date().map(aws_scratch::to_chrono).unwrap_or(done);
                if newest.as_ref().is_none_or(|(t, _)| done > *t) {
                    let job = TestedJob {
                        id: id.to_string(),
                        recovery_point: point.to_string(),
                        point_created,
                        instance: instance.to_string(),
                        restore_seconds,
                    };
                    newest = Some((done, job));
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        newest.map(|(_, j)| j).ok_or_else(|| {
            DrillError::NoWindow(format!(
                "restore testing plan `{plan}` has no completed RDS restore job of `{}` without a validation \
                 result to validate: it restores on its own schedule, run the drill after its next restore",
                self.spec.resource_arn
            ))
        })
    }

    /// The restored instance of a restore testing plan: available, not publicly accessible, reachable with
    /// the source's login. Nothing on it is changed.
    async fn ready_tested(&self, job: &TestedJob) -> Result<Endpoint, RestoreError> {
        let inst = aws_scratch::wait_instance_available(
            &self.rds,
            &job.instance,
            &self.info.events,
            &self.info.drill,
            "ready",
        )
        .await?;
        if inst.publicly_accessible() == Some(true) {
            return Err(RestoreError::Error(format!(
                "`{}`, restored by restore testing job {}, is publicly accessible; refusing to use it",
                job.instance, job.id
            )));
        }
        let Some((user, password)) = &self.login else {
            return Err(RestoreError::Error(
                "a restore testing plan's instance is reached with the drill's `source` login: give `source`".into(),
            ));
        };
        let address = inst.endpoint().and_then(|e| e.address());
        let port = inst.endpoint().and_then(|e| e.port());
        let ep = aws_scratch::endpoint(
            &self.spec.scratch,
            address,
            port,
            user,
            password.as_deref().unwrap_or_default(),
            &self.info.database,
        )?;
        aws_scratch::wait_connectable(&ep).await?;
        Ok(ep)
    }

    async fn list_points(&self) -> Result<Vec<Point>, DrillError> {
        let mut out = Vec::new();
        let mut token = None;
        let oldest = self.spec.within.map(|w| Utc::now() - chrono::TimeDelta::from_std(w).unwrap_or_default());
        loop {
            let page = self
                .backup
                .list_recovery_points_by_backup_vault()
                .backup_vault_name(&self.spec.vault)
                .by_resource_arn(&self.spec.resource_arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify("backup:ListRecoveryPointsByBackupVault", &e))?;
            for p in page.recovery_points() {
                // A continuous point created before the cutoff still restores to every instant since it
                // (up to now): kept, from the cutoff on.
                if let Some(mut point) = self.usable(p)
                    && oldest.is_none_or(|o| point.continuous || point.created >= o)
                {
                    if let Some(o) = oldest.filter(|_| point.continuous) {
                        point.earliest = point.earliest.max(o);
                    }
                    out.push(point);
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort_by_key(|p| p.created);
        Ok(out)
    }

    fn usable(&self, p: &RecoveryPointByBackupVault) -> Option<Point> {
        if !matches!(p.status(), Some(RecoveryPointStatus::Completed | RecoveryPointStatus::Available)) {
            return None;
        }
        let arn = p.recovery_point_arn()?.to_string();
        let continuous = arn.contains(":continuous:");
        let wanted = match self.spec.kind {
            PointKind::Any => true,
            PointKind::Continuous => continuous,
            PointKind::Snapshot => !continuous,
        };
        if !wanted || (!p.is_encrypted() && !self.spec.scratch.allow_unencrypted) {
            return None;
        }
        let created = p.completion_date().or(p.creation_date()).map(aws_scratch::to_chrono)?;
        let earliest = if continuous {
            continuous_earliest(created, p.lifecycle().and_then(|l| l.delete_after_days()), Utc::now())
        } else {
            created
        };
        Some(Point { arn, created, continuous, earliest })
    }

    /// The parameter group the restored instance starts with: an inert copy of the source instance's when
    /// it still exists (a restore from a backup may outlive its source), else the drill's.
    async fn prepare_parameters(&mut self) -> Result<(), RestoreError> {
        let s = &self.spec.scratch;
        let source = if s.parameter_group.is_none() {
            aws_scratch::describe_instance(&self.rds, &self.spec.resource_arn)
                .await
                .map_err(|e| RestoreError::Error(e.to_string()))?
        } else {
            None
        };
        let from =
            source.as_ref().and_then(|i| i.db_parameter_groups().first()).and_then(|g| g.db_parameter_group_name());
        self.copying_parameters = from.is_some();
        let params = aws_scratch::scratch_parameter_group(
            &self.rds,
            GroupLevel::Instance,
            from,
            s,
            &self.info,
            &self.scratch_id,
        )
        .await?;
        self.parameters = Some(params);
        Ok(())
    }

    /// The restore metadata AWS Backup recorded for the point (it carries what a restore requires, such
    /// as `Engine`), as the AWS Backup developer guide says to start from.
    async fn recorded_metadata(&self, point: &Point) -> Result<Metadata, RestoreError> {
        let out = self
            .backup
            .get_recovery_point_restore_metadata()
            .backup_vault_name(&self.spec.vault)
            .recovery_point_arn(&point.arn)
            .send()
            .await
            .map_err(|e| RestoreError::Failed(classify("backup:GetRecoveryPointRestoreMetadata", &e).to_string()))?;
        Ok(out.restore_metadata().cloned().unwrap_or_default())
    }

    /// The recorded metadata with this drill's overrides: the scratch's name, isolation and parameters.
    fn metadata(
        &self,
        mut m: HashMap<String, String>,
        point: &Point,
        target: &ResolvedTarget,
    ) -> HashMap<String, String> {
        let s = &self.spec.scratch;
        // Recorded keys a new, isolated scratch must not inherit.
        for k in ["DBInstanceIdentifier", "DbiResourceId", "DBInstanceArn", "Endpoint", "Port", "AvailabilityZone"] {
            m.remove(k);
        }
        m.extend([
            ("DBInstanceIdentifier".to_string(), self.scratch_id.clone()),
            ("PubliclyAccessible".to_string(), "false".to_string()),
            ("MultiAZ".to_string(), "false".to_string()),
            ("DeletionProtection".to_string(), "false".to_string()),
            ("CopyTagsToSnapshot".to_string(), "false".to_string()),
        ]);
        if let Some(g) = &s.subnet_group {
            m.insert("DBSubnetGroupName".into(), g.clone());
        }
        if !s.security_groups.is_empty() {
            m.insert("VpcSecurityGroupIds".into(), serde_json::to_string(&s.security_groups).unwrap_or_default());
        }
        if let Some(c) = &s.instance_class {
            m.insert("DBInstanceClass".into(), c.clone());
        }
        if let Some(g) = self.parameters.as_ref().and_then(|p| p.name.clone()) {
            m.insert("DBParameterGroupName".into(), g);
        }
        if point.continuous {
            match target.recovery {
                Recovery::Time(t) => {
                    m.insert("RestoreTime".into(), t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                }
                Recovery::End => {
                    m.insert("UseLatestRestorableTime".into(), "true".into());
                }
            }
        }
        m
    }

    /// Polls the restore job until it ends, or `deadline` passes; returns the final status and detail.
    async fn wait_job(
        &self,
        job: &str,
        deadline: Option<Instant>,
    ) -> Result<(RestoreJobStatus, String, Option<String>), RestoreError> {
        let started = Instant::now();
        let mut backoff = Backoff::describe();
        let mut last = String::new();
        loop {
            let d = self
                .backup
                .describe_restore_job()
                .restore_job_id(job)
                .send()
                .await
                .map_err(|e| RestoreError::Error(classify("backup:DescribeRestoreJob", &e).to_string()))?;
            let status = d.status().cloned().unwrap_or(RestoreJobStatus::Pending);
            let label = format!("{}{}", status.as_str(), d.percent_done().map(|p| format!(" {p}")).unwrap_or_default());
            if label != last {
                self.info
                    .progress("restore", format!("restore job {job}: {label} after {}s", started.elapsed().as_secs()));
                last = label;
            }
            match status {
                RestoreJobStatus::Completed | RestoreJobStatus::Failed | RestoreJobStatus::Aborted => {
                    return Ok((
                        status,
                        d.status_message().unwrap_or_default().to_string(),
                        d.created_resource_arn().map(str::to_string),
                    ));
                }
                _ if deadline.is_some_and(|dl| Instant::now() >= dl) => {
                    return Ok((status, "still running".into(), None));
                }
                _ => backoff.wait().await,
            }
        }
    }

    /// AWS Backup creates the instance without stackdrill's tags; they are added as soon as the job
    /// reports the resource it created, so the guard (and `drill cleanup`) recognise it.
    async fn tag_created(&self, arn: &str) -> Result<(), RestoreError> {
        if !arn.ends_with(&format!(":db:{}", self.scratch_id)) {
            return Err(RestoreError::Error(format!(
                "restore job created `{arn}`, not the requested scratch `{}`; not touching it",
                self.scratch_id
            )));
        }
        let tags: Vec<Tag> = self.info.tags();
        self.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| RestoreError::Error(classify("rds:AddTagsToResource", &e).to_string()))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl RestoreProvider for AwsBackup {
    fn name(&self) -> &'static str {
        "aws-backup"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        if let Some(plan) = &self.spec.restore_testing_plan {
            let mut out = vec![("restore-testing-plan", plan.clone()), ("region", self.info.region.clone())];
            if !self.spec.resource_arn.is_empty() {
                out.push(("resource-arn", self.spec.resource_arn.clone()));
            }
            if let Some(j) = &self.tested {
                out.extend([
                    ("restore-job", j.id.clone()),
                    ("recovery-point", j.recovery_point.clone()),
                    ("restored-instance", j.instance.clone()),
                ]);
            }
            if let Some(v) = &self.validation {
                out.push(("validation-result", v.clone()));
            }
            return out;
        }
        let mut out = vec![
            ("vault", self.spec.vault.clone()),
            ("resource-arn", self.spec.resource_arn.clone()),
            ("region", self.info.region.clone()),
            ("scratch-instance", self.scratch_id.clone()),
            ("publicly-accessible", "false".into()),
        ];
        if let Some(j) = &self.job_id {
            out.push(("restore-job", j.clone()));
        }
        if let Some(p) = &self.chosen {
            out.push(("recovery-point", p.arn.clone()));
        }
        if let Some(g) = self.parameters.as_ref().and_then(|p| p.name.clone()) {
            out.push(("parameter-group", g));
        }
        if let Some(v) = &self.validation {
            out.push(("validation-result", v.clone()));
        }
        out
    }

    fn calls(&self) -> Option<&CallCounter> {
        Some(&self.info.calls)
    }

    async fn window(&mut self) -> Result<Window, DrillError> {
        if let Some(plan) = self.spec.restore_testing_plan.clone() {
            // The plan chose the recovery point: the copy stands at its creation, and nothing else.
            let job = self.find_tested_job(&plan).await?;
            let at = job.point_created;
            self.tested = Some(job);
            return Ok(Window { earliest: at, latest: at });
        }
        self.points = self.list_points().await?;
        let (Some(first), Some(last)) = (self.points.first(), self.points.last()) else {
            return Err(DrillError::NoWindow(format!(
                "vault `{}` holds no completed, encrypted recovery point of `{}`{}",
                self.spec.vault,
                self.spec.resource_arn,
                self.spec
                    .within
                    .map(|w| format!(" from the last {}", humantime::format_duration(w)))
                    .unwrap_or_default()
            )));
        };
        // A continuous (PITR) point restores only up to the source's LatestRestorableTime, about five
        // minutes behind now (RDS user guide, point-in-time recovery); a source that is gone gives that bound.
        let latest = if self.points.iter().any(|p| p.continuous) {
            let source = aws_scratch::describe_instance(&self.rds, &self.spec.resource_arn).await?;
            source
                .and_then(|i| i.latest_restorable_time().map(aws_scratch::to_chrono))
                .unwrap_or_else(|| Utc::now() - chrono::TimeDelta::minutes(5))
        } else {
            last.created
        };
        let earliest = self.points.iter().map(|p| p.earliest).min().unwrap_or(first.created);
        Ok(Window { earliest, latest: latest.max(earliest) })
    }

    async fn wait_recoverable(
        &mut self,
        _t: DateTime<Utc>,
        _source: &tokio_postgres::Client,
    ) -> Result<(), DrillError> {
        Ok(())
    }

    fn plan(&mut self, target: &ResolvedTarget) -> Result<BackupUsed, DrillError> {
        if let Some(j) = &self.tested {
            return Ok(BackupUsed {
                id: j.recovery_point.rsplit(':').next().unwrap_or_default().to_string(),
                location: j.recovery_point.clone(),
                started_at: j.point_created,
                finished_at: j.point_created,
            });
        }
        // A continuous point covering the target restores exactly to it; else the newest snapshot before it.
        let point = self
            .points
            .iter()
            .rev()
            .find(|p| p.continuous && p.earliest <= target.time)
            .or_else(|| self.points.iter().rev().find(|p| !p.continuous && p.created <= target.time))
            .cloned()
            .ok_or_else(|| DrillError::NoWindow(format!("no recovery point precedes {}", fmt_time(&target.time))))?;
        self.chosen = Some(point.clone());
        Ok(BackupUsed {
            id: point.arn.rsplit(':').next().unwrap_or_default().to_string(),
            location: point.arn.clone(),
            started_at: point.created,
            finished_at: point.created,
        })
    }

    async fn restore(&mut self, target: &ResolvedTarget) -> Result<(), RestoreError> {
        if let Some(j) = &self.tested {
            // The plan restored it on its own schedule: the job is this drill's restore.
            self.info.progress("restore", format!("restore testing job {} restored `{}`", j.id, j.instance));
            self.job_id = Some(j.id.clone());
            self.job_done = true;
            return Ok(());
        }
        let point = self.chosen.clone().ok_or_else(|| RestoreError::Error("no recovery point chosen".into()))?;
        self.prepare_parameters().await?;
        let recorded = self.recorded_metadata(&point).await?;
        let out = self
            .backup
            .start_restore_job()
            .recovery_point_arn(&point.arn)
            .iam_role_arn(&self.spec.iam_role_arn)
            .resource_type("RDS")
            .idempotency_token(format!("stackdrill-{}", self.info.run))
            .set_metadata(Some(self.metadata(recorded, &point, target)))
            .send()
            .await
            .map_err(|e| RestoreError::Failed(classify("backup:StartRestoreJob", &e).to_string()))?;
        let job = out.restore_job_id().unwrap_or_default().to_string();
        self.job_id = Some(job.clone());
        let (status, message, created) = self.wait_job(&job, None).await?;
        self.job_done = true;
        match (status, created) {
            (RestoreJobStatus::Completed, Some(arn)) => self.tag_created(&arn).await,
            (RestoreJobStatus::Completed, None) => {
                Err(RestoreError::Failed(format!("restore job {job} completed without naming the resource it created")))
            }
            (s, _) => Err(RestoreError::Failed(format!("restore job {job} ended {}: {message}", s.as_str()))),
        }
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.wait_endpoint().await.map(|ep| super::Restored::Postgres(Box::new(ep)))
    }

    async fn validated(&mut self, verdict: &super::DataVerdict) -> Result<(), crate::aws::AwsError> {
        let Some(job) = &self.job_id else { return Ok(()) };
        if !self.job_done {
            return Ok(());
        }
        let (status, message) = match verdict {
            super::DataVerdict::Verified => {
                (RestoreValidationStatus::Successful, "stackdrill drill passed: data verified".to_string())
            }
            super::DataVerdict::NotVerified(why) => {
                (RestoreValidationStatus::Failed, format!("stackdrill drill failed: {why}"))
            }
        };
        // AWS caps the message; keep it short and free of data.
        let message: String = message.chars().take(250).collect();
        let said = status.as_str().to_string();
        // PutRestoreValidationResult is documented for restore-testing jobs; for an on-demand job AWS may
        // refuse it. Either way the report says what AWS answered, and the drill's verdict stands.
        let sent = self
            .backup
            .put_restore_validation_result()
            .restore_job_id(job)
            .validation_status(status)
            .validation_status_message(message)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("backup:PutRestoreValidationResult", &e));
        self.validation = Some(match &sent {
            Ok(()) => format!("{said}, accepted by AWS Backup for job {job}"),
            Err(e) => format!("{said} not accepted by AWS Backup: {e}"),
        });
        sent
    }

    fn recovery(&self) -> Option<String> {
        let j = self.tested.as_ref()?;
        Some(format!(
            "restored by AWS Backup restore testing plan `{}` (job {}), validated by this drill",
            self.spec.restore_testing_plan.as_deref().unwrap_or_default(),
            j.id
        ))
    }

    fn rto_seconds(&self, _ready_at: DateTime<Utc>) -> Option<f64> {
        self.tested.as_ref().and_then(|j| j.restore_seconds)
    }

    fn neutralised(&self) -> Vec<String> {
        self.parameters.as_ref().map(|p| p.neutralised.clone()).unwrap_or_default()
    }

    async fn teardown(&mut self) -> Teardown {
        if let Some(j) = &self.tested {
            // Never delete what this run did not create.
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: format!(
                    "instance {} (restore job {}) is owned by AWS Backup restore testing, deleted by it after its \
                     validation window; stackdrill deleted nothing",
                    j.instance, j.id
                ),
            };
        }
        let instance = self.teardown_instance().await;
        if !self.copying_parameters {
            return instance;
        }
        aws_scratch::teardown_parameter_group(
            &self.rds,
            GroupLevel::Instance,
            &self.scratch_id,
            &self.info.run,
            instance,
        )
        .await
    }
}

impl AwsBackup {
    /// Waits until the restored database accepts queries as a primary: how to reach it.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        if let Some(j) = &self.tested {
            return self.ready_tested(j).await;
        }
        aws_scratch::ready_instance(&self.rds, &self.scratch_id, &self.spec.scratch, &self.info).await
    }
}

impl AwsBackup {
    async fn teardown_instance(&mut self) -> Teardown {
        let Some(job) = self.job_id.clone() else {
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: "no restore job was started".into(),
            };
        };
        if !self.job_done {
            // The job cannot be cancelled: wait for it (bounded), then tag and delete what it made.
            let deadline = Instant::now() + self.teardown_deadline.saturating_sub(Duration::from_secs(5));
            match self.wait_job(&job, Some(deadline)).await {
                Ok((RestoreJobStatus::Completed, _, Some(arn))) => {
                    if let Err(e) = self.tag_created(&arn).await {
                        return Teardown { status: TeardownStatus::Failed, at: Utc::now(), detail: e.to_string() };
                    }
                }
                Ok((RestoreJobStatus::Failed | RestoreJobStatus::Aborted, _, _)) => {}
                Ok(_) => {
                    return Teardown {
                        status: TeardownStatus::Failed,
                        at: Utc::now(),
                        detail: format!(
                            "restore job {job} had not finished by the teardown deadline; when it does, the \
                             instance {} it creates carries no scratch tags: delete it by hand",
                            self.scratch_id
                        ),
                    };
                }
                Err(e) => return Teardown { status: TeardownStatus::Failed, at: Utc::now(), detail: e.to_string() },
            }
        }
        Teardown::from_delete(
            aws_scratch::delete_instance_guarded(&self.rds, &self.scratch_id, Owner::Run(&self.info.run)).await,
            format!("deleted scratch instance {} restored by job {job}", self.scratch_id),
            format!("restore job {job} created no instance"),
        )
    }
}

// The slow test tier (`--features slow-tests`): some of these verify against a real PostgreSQL.

#[async_trait::async_trait]
impl super::registry::ProviderKind for AwsBackupSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let (aws, info) = crate::drill::runner::Aws::for_scratch(ctx, &self.scratch).await?;
        let mut provider = AwsBackup::new(self, aws.backup(), aws.rds(), info, ctx.spec.timeouts.teardown);
        // A restore testing plan's instance is AWS Backup's: it is reached with the source's login, not
        // given a fresh password.
        if self.restore_testing_plan.is_some()
            && let Some(src) = &ctx.spec.source
        {
            let login = crate::drill::source::login(src, &ctx.spec.restore, Some(&aws.config)).await?;
            if login.credential == "rds-iam-token" {
                return Err(DrillError::Secret(
                    "a restore testing plan's instance is reached with the source's password: an IAM \
                     token is for the source's host"
                        .into(),
                ));
            }
            let (user, password) = login.into_credentials();
            provider = provider.with_login(user, password);
        }
        Ok(super::registry::Built { provider: Box::new(provider), aws: Some(aws.config) })
    }

    fn iam(&self, needs: &mut dyn super::registry::IamNeeds, r: &str) {
        if let Some(plan) = &self.restore_testing_plan {
            // A restore testing plan restores (with its own role) and deletes: the drill only finds the plan's
            // job, reads the restored instance and reports the verdict. It creates, changes and deletes nothing.
            needs.read_rds();
            needs.allow(
                "DrillRestoreTestingPlan",
                &["backup:GetRestoreTestingPlan"],
                // The plan's ARN ends in its name and an id AWS Backup adds.
                &[format!("arn:aws:backup:{r}:*:restore-testing-plan:{plan}-*")],
                None,
            );
            // ListRestoreJobs (by the plan's ARN), DescribeRestoreJob and PutRestoreValidationResult have no
            // resource type: only "*" matches them (Service Authorization Reference).
            needs.allow(
                "DrillAwsBackupJobs",
                &["backup:ListRestoreJobs", "backup:DescribeRestoreJob", "backup:PutRestoreValidationResult"],
                &["*".into()],
                None,
            );
            return;
        }
        needs.rds_scratch(&self.scratch, r, super::registry::RdsScratch::default());
        needs.allow(
            "DrillAwsBackupVault",
            &["backup:ListRecoveryPointsByBackupVault"],
            &[format!("arn:aws:backup:{r}:*:backup-vault:{}", self.vault)],
            None,
        );
        // A recovery point's ARN is AWS Backup's or the snapshot's (`${Vendor}:…:${ResourceType}:…`).
        needs.allow(
            "DrillAwsBackup",
            &["backup:GetRecoveryPointRestoreMetadata", "backup:StartRestoreJob"],
            &[format!("arn:aws:backup:{r}:*:recovery-point:*"), format!("arn:aws:rds:{r}:*:snapshot:awsbackup:*")],
            None,
        );
        needs.allow(
            "DrillAwsBackupJobs",
            &["backup:DescribeRestoreJob", "backup:PutRestoreValidationResult"],
            &["*".into()],
            None,
        );
        needs.allow(
            "DrillPassRestoreRole",
            &["iam:PassRole"],
            std::slice::from_ref(&self.iam_role_arn),
            Some(serde_json::json!({ "StringEquals": { "iam:PassedToService": "backup.amazonaws.com" } })),
        );
    }

    fn rto_floor(&self) -> Option<(u64, &'static str)> {
        Some((15 * 60, "an AWS Backup restore job creates an instance"))
    }

    fn scratch_text(&self, name: &str, _: &crate::config::DrillSpec, _: &str, region: Option<&str>) -> String {
        aws_scratch::scratch_text(&self.scratch, name, region)
    }
}

#[cfg(all(test, feature = "slow-tests"))]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "slow-tier test code")]
#[path = "aws_backup_tests.rs"]
mod tests;

/// A recovery point's restore metadata, key to value, as AWS Backup recorded it.
type Metadata = HashMap<String, String>;
