//! `aws-rds-instance`: RestoreDBInstanceToPointInTime of an RDS instance into an isolated, tagged,
//! unreachable-from-the-internet scratch instance with fresh credentials; deleted through the guard.
//!
//! Window: [earliest restorable time of the automated backups, LatestRestorableTime].

use aws_sdk_rds::Client;
use aws_sdk_rds::types::DbInstance;
use chrono::{DateTime, Utc};

use super::TeardownStatus;
use super::aws_scratch::{self, GroupLevel, Owner, RunInfo};
use super::{BackupUsed, Endpoint, RestoreProvider, Teardown};
use crate::aws::{CallCounter, classify};
use crate::config::RdsInstanceSpec;
use crate::drill::error::{DrillError, RestoreError};
use crate::drill::target::{Recovery, ResolvedTarget, Window};

pub(crate) struct AwsRdsInstance {
    spec: RdsInstanceSpec,
    rds: Client,
    info: RunInfo,
    scratch_id: String,
    source: Option<DbInstance>,
    /// Set once a restore call was made: teardown then looks for the scratch whatever the call returned.
    attempted: bool,
    /// The scratch's parameter group (made inert); deleted at teardown when this run created it.
    parameters: Option<aws_scratch::ScratchParameters>,
    /// Set once this run asked for its parameter group copy: teardown then looks for it.
    copying_parameters: bool,
}

impl AwsRdsInstance {
    pub(crate) fn new(spec: &RdsInstanceSpec, rds: Client, info: RunInfo) -> Self {
        let scratch_id = aws_scratch::scratch_id(&info.drill, &info.run);
        Self {
            spec: spec.clone(),
            rds,
            info,
            scratch_id,
            source: None,
            attempted: false,
            parameters: None,
            copying_parameters: false,
        }
    }

    async fn source(&mut self) -> Result<DbInstance, DrillError> {
        let id = &self.spec.source_instance;
        match aws_scratch::describe_instance(&self.rds, id).await? {
            Some(i) => {
                self.source = Some(i.clone());
                Ok(i)
            }
            None => {
                Err(DrillError::NotFound(format!("source RDS instance `{id}` does not exist in {}", self.info.region)))
            }
        }
    }
}

#[async_trait::async_trait]
impl RestoreProvider for AwsRdsInstance {
    fn name(&self) -> &'static str {
        "aws-rds-instance"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let s = &self.spec.scratch;
        let mut out = vec![
            ("source-instance", self.spec.source_instance.clone()),
            ("region", self.info.region.clone()),
            ("scratch-instance", self.scratch_id.clone()),
            ("subnet-group", s.subnet_group.clone().unwrap_or_else(|| "default (explicit opt-in)".into())),
            (
                "security-groups",
                if s.security_groups.is_empty() { "default".into() } else { s.security_groups.join(",") },
            ),
            ("publicly-accessible", "false".into()),
            (
                "parameter-group",
                self.parameters.as_ref().and_then(|p| p.name.clone()).unwrap_or_else(|| "the engine default".into()),
            ),
            ("multi-az", "false".into()),
        ];
        if let Some(src) = &self.source {
            out.push(("engine", format!("{} {}", src.engine().unwrap_or("?"), src.engine_version().unwrap_or("?"))));
            out.push(("storage-encrypted", src.storage_encrypted().unwrap_or(false).to_string()));
            if let Some(arn) = src.db_instance_arn() {
                out.push(("source-arn", arn.to_string()));
            }
        }
        out
    }

    fn calls(&self) -> Option<&CallCounter> {
        Some(&self.info.calls)
    }

    async fn window(&mut self) -> Result<Window, DrillError> {
        let src = self.source().await?;
        let id = self.spec.source_instance.clone();
        aws_scratch::refuse_unencrypted(
            &format!("source instance `{id}`"),
            src.storage_encrypted() == Some(true),
            &self.spec.scratch,
        )?;
        let retention = src.backup_retention_period().unwrap_or(0);
        if retention == 0 {
            return Err(DrillError::NoWindow(format!(
                "automated backups of `{id}` are off (BackupRetentionPeriod 0): point-in-time recovery is impossible"
            )));
        }
        let Some(latest) = src.latest_restorable_time().map(aws_scratch::to_chrono) else {
            return Err(DrillError::NoWindow(format!("`{id}` reports no LatestRestorableTime yet")));
        };
        let backups = self
            .rds
            .describe_db_instance_automated_backups()
            .db_instance_identifier(&id)
            .send()
            .await
            .map_err(|e| classify("rds:DescribeDBInstanceAutomatedBackups", &e))?;
        // Only this instance's own, active automated backups: a retained backup of an earlier instance
        // that had the same name (another DbiResourceId, status `retained`) cannot restore this one.
        let from_backups = backups
            .db_instance_automated_backups()
            .iter()
            .filter(|b| b.dbi_resource_id().is_some() && b.dbi_resource_id() == src.dbi_resource_id())
            .filter(|b| b.status() == Some("active"))
            .filter_map(|b| b.restore_window().and_then(|w| w.earliest_time()).map(aws_scratch::to_chrono))
            .min();
        // Without a reported restore window, the retention period bounds it (never before creation).
        let earliest = from_backups.unwrap_or_else(|| {
            let by_retention = Utc::now() - chrono::TimeDelta::days(i64::from(retention));
            src.instance_create_time().map(aws_scratch::to_chrono).map_or(by_retention, |c| c.max(by_retention))
        });
        Ok(Window { earliest, latest })
    }

    async fn wait_recoverable(&mut self, t: DateTime<Utc>, _source: &tokio_postgres::Client) -> Result<(), DrillError> {
        aws_scratch::wait_until_restorable(self, t).await
    }

    fn plan(&mut self, _target: &ResolvedTarget) -> Result<BackupUsed, DrillError> {
        let src = self.source.as_ref().ok_or_else(|| DrillError::NoWindow("source not described".into()))?;
        Ok(BackupUsed {
            id: format!("automated backups of {} (point-in-time recovery)", self.spec.source_instance),
            location: src.db_instance_arn().unwrap_or_default().to_string(),
            started_at: src.instance_create_time().map(aws_scratch::to_chrono).unwrap_or_default(),
            finished_at: src.latest_restorable_time().map(aws_scratch::to_chrono).unwrap_or_default(),
        })
    }

    async fn restore(&mut self, target: &ResolvedTarget) -> Result<(), RestoreError> {
        let s = &self.spec.scratch;
        let src = self.source.clone().ok_or_else(|| RestoreError::Error("source not described".into()))?;
        self.copying_parameters = s.parameter_group.is_none();
        let from = src.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name());
        let params = aws_scratch::scratch_parameter_group(
            &self.rds,
            GroupLevel::Instance,
            from,
            s,
            &self.info,
            &self.scratch_id,
        )
        .await?;
        let group = params.name.clone();
        self.parameters = Some(params);
        let mut req = self
            .rds
            .restore_db_instance_to_point_in_time()
            .source_db_instance_identifier(&self.spec.source_instance)
            .target_db_instance_identifier(&self.scratch_id)
            .publicly_accessible(false)
            .multi_az(false)
            .deletion_protection(false)
            .copy_tags_to_snapshot(false)
            .auto_minor_version_upgrade(false)
            .set_db_subnet_group_name(s.subnet_group.clone())
            .set_db_parameter_group_name(group)
            .set_tags(Some(self.info.tags()));
        if !s.security_groups.is_empty() {
            req = req.set_vpc_security_group_ids(Some(s.security_groups.clone()));
        }
        if let Some(c) = s.instance_class.clone().or(src.db_instance_class().map(str::to_string)) {
            req = req.db_instance_class(c);
        }
        req = match target.recovery {
            Recovery::Time(t) => req.restore_time(aws_scratch::to_smithy(t)),
            Recovery::End => req.use_latest_restorable_time(true),
        };
        self.attempted = true;
        self.info.progress("restore", format!("RestoreDBInstanceToPointInTime → {}", self.scratch_id));
        req.send().await.map_err(|e| {
            let e = classify("rds:RestoreDBInstanceToPointInTime", &e);
            RestoreError::Failed(format!("restore of `{}` was refused: {e}", self.spec.source_instance))
        })?;
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.wait_endpoint().await.map(|ep| super::Restored::Postgres(Box::new(ep)))
    }

    fn neutralised(&self) -> Vec<String> {
        self.parameters.as_ref().map(|p| p.neutralised.clone()).unwrap_or_default()
    }

    async fn teardown(&mut self) -> Teardown {
        let instance = if self.attempted {
            Teardown::from_delete(
                aws_scratch::delete_instance_guarded(&self.rds, &self.scratch_id, Owner::Run(&self.info.run)).await,
                format!("deleted scratch instance {} (no final snapshot, automated backups deleted)", self.scratch_id),
                format!("scratch instance {} does not exist", self.scratch_id),
            )
        } else {
            Teardown { status: TeardownStatus::NothingToDo, at: Utc::now(), detail: "nothing was restored".into() }
        };
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

impl AwsRdsInstance {
    /// Waits until the restored database accepts queries as a primary: how to reach it.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        aws_scratch::ready_instance(&self.rds, &self.scratch_id, &self.spec.scratch, &self.info).await
    }
}

impl aws_scratch::Restorable for AwsRdsInstance {
    async fn latest_restorable(&mut self) -> Result<Option<DateTime<Utc>>, DrillError> {
        Ok(self.source().await?.latest_restorable_time().map(aws_scratch::to_chrono))
    }
}

#[async_trait::async_trait]
impl super::registry::ProviderKind for RdsInstanceSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let (aws, info) = crate::drill::runner::Aws::for_scratch(ctx, &self.scratch).await?;
        let provider = AwsRdsInstance::new(self, aws.rds(), info);
        Ok(super::registry::Built { provider: Box::new(provider), aws: Some(aws.config) })
    }

    fn iam(&self, needs: &mut dyn super::registry::IamNeeds, r: &str) {
        use super::registry::{RdsScratch, rds_arn};
        let source = rds_arn(r, "db", &self.source_instance);
        needs.rds_scratch(&self.scratch, r, RdsScratch { tagged: vec![source.clone()], ..RdsScratch::default() });
        // db, og, pg, subgrp.
        let mut restore = vec![rds_arn(r, "db", "sd-*"), source, rds_arn(r, "pg", "*"), rds_arn(r, "og", "*")];
        restore.extend(self.scratch.subnet_group.as_ref().map(|g| rds_arn(r, "subgrp", g)));
        needs.allow("DrillRestoreInstance", &["rds:RestoreDBInstanceToPointInTime"], &restore, None);
    }

    fn rto_floor(&self) -> Option<(u64, &'static str)> {
        Some((10 * 60, "an RDS point-in-time restore creates an instance"))
    }

    fn scratch_text(&self, name: &str, _: &crate::config::DrillSpec, _: &str, region: Option<&str>) -> String {
        aws_scratch::scratch_text(&self.scratch, name, region)
    }

    fn source_instance(&self) -> Option<super::registry::SourceInstance<'_>> {
        Some(super::registry::SourceInstance::Instance(&self.source_instance))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::operation::describe_db_instance_automated_backups::DescribeDbInstanceAutomatedBackupsOutput;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::types::{DbInstance, DbInstanceAutomatedBackup, RestoreWindow};
    use aws_smithy_mocks::mock;
    use chrono::{TimeDelta, Utc};

    use super::*;
    use crate::aws::mocked;
    use crate::config::{RestoreSpec, parse_drill};
    use crate::drill::events::EventSink;

    fn days_ago(d: i64) -> aws_smithy_types::DateTime {
        aws_scratch::to_smithy(Utc::now() - TimeDelta::days(d))
    }

    /// DescribeDBInstanceAutomatedBackups lists, under the same DBInstanceIdentifier, the backups an earlier
    /// instance of that name left behind (status `retained`, its own DbiResourceId), as the RDS guide on
    /// retained automated backups describes. Those do not widen the window.
    #[tokio::test]
    async fn the_window_comes_from_this_instances_active_backups_only() {
        let source = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("prod-db")
                        .dbi_resource_id("db-CURRENT")
                        .storage_encrypted(true)
                        .backup_retention_period(7)
                        .latest_restorable_time(days_ago(0))
                        .instance_create_time(days_ago(40))
                        .build(),
                )
                .build()
        });
        let backups = mock!(aws_sdk_rds::Client::describe_db_instance_automated_backups).then_output(|| {
            let backup = |id: &str, status: &str, earliest: i64| {
                DbInstanceAutomatedBackup::builder()
                    .db_instance_identifier("prod-db")
                    .dbi_resource_id(id)
                    .status(status)
                    .restore_window(RestoreWindow::builder().earliest_time(days_ago(earliest)).build())
                    .build()
            };
            DescribeDbInstanceAutomatedBackupsOutput::builder()
                .db_instance_automated_backups(backup("db-EARLIER", "retained", 30))
                .db_instance_automated_backups(backup("db-CURRENT", "active", 5))
                .build()
        });
        let client = mocked!(aws_sdk_rds, &[&source, &backups]);
        let spec = parse_drill(
            "restore: { aws-rds-instance: { source-instance: prod-db, subnet-group: g, security-groups: [sg-1] } }\n\
             objectives: { rto: 1h, rpo: 5m }\nverify: [ { freshness: { table: t, column: c } } ]\n",
            std::path::Path::new("w.yaml"),
        )
        .unwrap();
        let RestoreSpec::AwsRdsInstance(r) = &spec.restore else {
            panic!("the drill above is an aws-rds-instance drill")
        };
        let info = RunInfo {
            calls: CallCounter::default(),
            region: "ap-southeast-1".into(),
            drill: "w".into(),
            run: "abcdef123456".into(),
            database: "app".into(),
            events: EventSink::new(|_| {}),
            expires_at: Utc::now(),
        };
        let mut p = AwsRdsInstance::new(r, client, info);
        let w = p.window().await.unwrap();
        let age = Utc::now() - w.earliest;
        assert!(
            age < TimeDelta::days(6) && age > TimeDelta::days(4),
            "earliest {} is not the active backup's",
            w.earliest
        );
    }
}
