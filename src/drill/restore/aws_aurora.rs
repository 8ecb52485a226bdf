//! `aws-aurora-cluster`: RestoreDBClusterToPointInTime (full copy, or copy-on-write when asked), then one
//! writer instance in it (Aurora restores come without instances), fresh credentials via ModifyDBCluster,
//! verify, and a guarded teardown of the instance and then the cluster.
//!
//! Window: [EarliestRestorableTime, LatestRestorableTime] of the source cluster.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::DbCluster;
use chrono::{DateTime, Utc};

use super::TeardownStatus;
use super::aws_scratch::{self, GroupLevel, Owner, RunInfo};
use super::{BackupUsed, Endpoint, RestoreProvider, Teardown};
use crate::aws::{CallCounter, classify};
use crate::config::AuroraClusterSpec;
use crate::drill::error::{DrillError, RestoreError};
use crate::drill::target::{Recovery, ResolvedTarget, Window};

pub(crate) struct AwsAuroraCluster {
    spec: AuroraClusterSpec,
    rds: Client,
    info: RunInfo,
    cluster_id: String,
    instance_id: String,
    source: Option<DbCluster>,
    attempted: bool,
    /// The scratch cluster's parameter group (made inert).
    parameters: Option<aws_scratch::ScratchParameters>,
    /// Set once this run asked for its cluster parameter group copy: teardown then looks for it.
    copying_parameters: bool,
}

impl AwsAuroraCluster {
    pub(crate) fn new(spec: &AuroraClusterSpec, rds: Client, info: RunInfo) -> Self {
        let cluster_id = aws_scratch::scratch_id(&info.drill, &info.run);
        let instance_id = format!("{cluster_id}-w");
        Self {
            spec: spec.clone(),
            rds,
            info,
            cluster_id,
            instance_id,
            source: None,
            attempted: false,
            parameters: None,
            copying_parameters: false,
        }
    }

    async fn source(&mut self) -> Result<DbCluster, DrillError> {
        let id = &self.spec.source_cluster;
        match aws_scratch::describe_cluster(&self.rds, id).await? {
            Some(c) => {
                self.source = Some(c.clone());
                Ok(c)
            }
            None => Err(DrillError::NotFound(format!(
                "source Aurora cluster `{id}` does not exist in {}",
                self.info.region
            ))),
        }
    }
}

#[async_trait::async_trait]
impl RestoreProvider for AwsAuroraCluster {
    fn name(&self) -> &'static str {
        "aws-aurora-cluster"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let s = &self.spec.scratch;
        let mut out = vec![
            ("source-cluster", self.spec.source_cluster.clone()),
            ("region", self.info.region.clone()),
            ("scratch-cluster", self.cluster_id.clone()),
            ("scratch-instance", self.instance_id.clone()),
            ("restore-type", if self.spec.copy_on_write { "copy-on-write" } else { "full-copy" }.into()),
            ("subnet-group", s.subnet_group.clone().unwrap_or_else(|| "default (explicit opt-in)".into())),
            ("publicly-accessible", "false".into()),
            (
                "security-groups",
                if s.security_groups.is_empty() { "default".into() } else { s.security_groups.join(",") },
            ),
            (
                "cluster-parameter-group",
                self.parameters.as_ref().and_then(|p| p.name.clone()).unwrap_or_else(|| "the engine default".into()),
            ),
        ];
        if let Some(src) = &self.source {
            out.push(("engine", format!("{} {}", src.engine().unwrap_or("?"), src.engine_version().unwrap_or("?"))));
            out.push(("storage-encrypted", src.storage_encrypted().unwrap_or(false).to_string()));
        }
        out
    }

    fn calls(&self) -> Option<&CallCounter> {
        Some(&self.info.calls)
    }

    async fn window(&mut self) -> Result<Window, DrillError> {
        let src = self.source().await?;
        let id = self.spec.source_cluster.clone();
        aws_scratch::refuse_unencrypted(
            &format!("source cluster `{id}`"),
            src.storage_encrypted() == Some(true),
            &self.spec.scratch,
        )?;
        let latest = src.latest_restorable_time().map(aws_scratch::to_chrono);
        let earliest = src
            .earliest_restorable_time()
            .map(aws_scratch::to_chrono)
            .or(src.cluster_create_time().map(aws_scratch::to_chrono));
        match (earliest, latest) {
            (Some(earliest), Some(latest)) => Ok(Window { earliest, latest }),
            _ => Err(DrillError::NoWindow(format!("`{id}` reports no restorable time range"))),
        }
    }

    async fn wait_recoverable(&mut self, t: DateTime<Utc>, _source: &tokio_postgres::Client) -> Result<(), DrillError> {
        aws_scratch::wait_until_restorable(self, t).await
    }

    fn plan(&mut self, _target: &ResolvedTarget) -> Result<BackupUsed, DrillError> {
        let src = self.source.as_ref().ok_or_else(|| DrillError::NoWindow("source not described".into()))?;
        Ok(BackupUsed {
            id: format!("continuous backup of {} (point-in-time recovery)", self.spec.source_cluster),
            location: src.db_cluster_arn().unwrap_or_default().to_string(),
            started_at: src.earliest_restorable_time().map(aws_scratch::to_chrono).unwrap_or_default(),
            finished_at: src.latest_restorable_time().map(aws_scratch::to_chrono).unwrap_or_default(),
        })
    }

    async fn restore(&mut self, target: &ResolvedTarget) -> Result<(), RestoreError> {
        if self.spec.copy_on_write && matches!(target.recovery, Recovery::Time(_)) {
            // `drill validate` refuses this in the file; `--target` can still ask for it.
            return Err(RestoreError::Error(
                "a copy-on-write clone restores only to the latest restorable time (RDS takes no RestoreToTime \
                 with RestoreType copy-on-write): run with `--target latest` or set copy-on-write: false"
                    .into(),
            ));
        }
        let s = &self.spec.scratch;
        let src = self.source.clone().ok_or_else(|| RestoreError::Error("source not described".into()))?;
        let tags = self.info.tags();
        self.copying_parameters = s.parameter_group.is_none();
        let from = src.db_cluster_parameter_group();
        let params =
            aws_scratch::scratch_parameter_group(&self.rds, GroupLevel::Cluster, from, s, &self.info, &self.cluster_id)
                .await?;
        let group = params.name.clone();
        self.parameters = Some(params);
        let mut req = self
            .rds
            .restore_db_cluster_to_point_in_time()
            .source_db_cluster_identifier(&self.spec.source_cluster)
            .db_cluster_identifier(&self.cluster_id)
            .restore_type(if self.spec.copy_on_write { "copy-on-write" } else { "full-copy" })
            .deletion_protection(false)
            .copy_tags_to_snapshot(false)
            .set_db_subnet_group_name(s.subnet_group.clone())
            .set_db_cluster_parameter_group_name(group)
            .set_tags(Some(tags.clone()));
        if !s.security_groups.is_empty() {
            req = req.set_vpc_security_group_ids(Some(s.security_groups.clone()));
        }
        req = match target.recovery {
            Recovery::Time(t) => req.restore_to_time(aws_scratch::to_smithy(t)),
            Recovery::End => req.use_latest_restorable_time(true),
        };
        self.attempted = true;
        self.info.progress("restore", format!("RestoreDBClusterToPointInTime → {}", self.cluster_id));
        req.send().await.map_err(|e| {
            let e = classify("rds:RestoreDBClusterToPointInTime", &e);
            RestoreError::Failed(format!("restore of `{}` was refused: {e}", self.spec.source_cluster))
        })?;
        aws_scratch::wait_cluster_available(
            &self.rds,
            &self.cluster_id,
            &self.info.events,
            &self.info.drill,
            "restore",
        )
        .await?;
        let class = s.instance_class.clone().unwrap_or_else(|| "db.r6g.large".into());
        self.info.progress("restore", format!("CreateDBInstance {} ({class})", self.instance_id));
        self.rds
            .create_db_instance()
            .db_instance_identifier(&self.instance_id)
            .db_cluster_identifier(&self.cluster_id)
            .engine(src.engine().unwrap_or("aurora-postgresql"))
            .db_instance_class(class)
            .publicly_accessible(false)
            .auto_minor_version_upgrade(false)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| RestoreError::Failed(classify("rds:CreateDBInstance", &e).to_string()))?;
        Ok(())
    }

    fn neutralised(&self) -> Vec<String> {
        self.parameters.as_ref().map(|p| p.neutralised.clone()).unwrap_or_default()
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.wait_endpoint().await.map(|ep| super::Restored::Postgres(Box::new(ep)))
    }

    async fn teardown(&mut self) -> Teardown {
        if !self.attempted {
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: "nothing was restored".into(),
            };
        }
        let owner = Owner::Run(&self.info.run);
        // The writer first: a cluster with members cannot be deleted. It may exist even if the cluster
        // listing does not show it yet.
        let inst = aws_scratch::delete_instance_guarded(&self.rds, &self.instance_id, owner).await;
        let cluster = aws_scratch::delete_cluster_guarded(&self.rds, &self.cluster_id, owner).await;
        let done = Teardown::from_delete(
            inst.and(cluster),
            format!("deleted scratch instance {} and cluster {}", self.instance_id, self.cluster_id),
            format!("scratch cluster {} does not exist", self.cluster_id),
        );
        if !self.copying_parameters {
            return done;
        }
        aws_scratch::teardown_parameter_group(&self.rds, GroupLevel::Cluster, &self.cluster_id, &self.info.run, done)
            .await
    }
}

impl AwsAuroraCluster {
    /// Waits until the restored database accepts queries as a primary: how to reach it.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        aws_scratch::wait_instance_available(
            &self.rds,
            &self.instance_id,
            &self.info.events,
            &self.info.drill,
            "ready",
        )
        .await?;
        let password = aws_scratch::fresh_password();
        self.info.progress("ready", "setting fresh credentials (ModifyDBCluster)");
        self.rds
            .modify_db_cluster()
            .db_cluster_identifier(&self.cluster_id)
            .master_user_password(&password)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| RestoreError::Error(classify("rds:ModifyDBCluster", &e).to_string()))?;
        let c = aws_scratch::wait_cluster_available(
            &self.rds,
            &self.cluster_id,
            &self.info.events,
            &self.info.drill,
            "ready",
        )
        .await?;
        let user = c.master_username().unwrap_or("postgres").to_string();
        let ep =
            aws_scratch::endpoint(&self.spec.scratch, c.endpoint(), c.port(), &user, &password, &self.info.database)?;
        aws_scratch::wait_connectable(&ep).await?;
        Ok(ep)
    }
}

impl aws_scratch::Restorable for AwsAuroraCluster {
    async fn latest_restorable(&mut self) -> Result<Option<DateTime<Utc>>, DrillError> {
        Ok(self.source().await?.latest_restorable_time().map(aws_scratch::to_chrono))
    }
}

#[async_trait::async_trait]
impl super::registry::ProviderKind for AuroraClusterSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let (aws, info) = crate::drill::runner::Aws::for_scratch(ctx, &self.scratch).await?;
        let provider = AwsAuroraCluster::new(self, aws.rds(), info);
        Ok(super::registry::Built { provider: Box::new(provider), aws: Some(aws.config) })
    }

    fn iam(&self, needs: &mut dyn super::registry::IamNeeds, r: &str) {
        use super::registry::{RdsScratch, rds_arn};
        let subnet_group = self.scratch.subnet_group.as_ref().map(|g| rds_arn(r, "subgrp", g));
        let source = rds_arn(r, "cluster", &self.source_cluster);
        needs.rds_scratch(
            &self.scratch,
            r,
            RdsScratch {
                scratch_tagged: vec![rds_arn(r, "cluster", "sd-*"), rds_arn(r, "cluster-pg", "sd-*")],
                tagged: vec![source.clone(), rds_arn(r, "cluster-pg", "*")],
                cluster: true,
            },
        );
        // cluster, cluster-pg, og, subgrp.
        let mut restore =
            vec![rds_arn(r, "cluster", "sd-*"), source.clone(), rds_arn(r, "cluster-pg", "*"), rds_arn(r, "og", "*")];
        restore.extend(subnet_group.clone());
        needs.allow("DrillRestoreCluster", &["rds:RestoreDBClusterToPointInTime"], &restore, None);
        // db, cluster, og, pg, secgrp, subgrp.
        let mut instance = vec![
            rds_arn(r, "db", "sd-*"),
            rds_arn(r, "cluster", "sd-*"),
            source,
            rds_arn(r, "pg", "*"),
            rds_arn(r, "og", "*"),
            rds_arn(r, "secgrp", "*"),
        ];
        instance.extend(subnet_group);
        needs.allow("DrillCreateClusterInstance", &["rds:CreateDBInstance"], &instance, None);
        needs.allow(
            "DrillCopyClusterParameterGroup",
            &["rds:CopyDBClusterParameterGroup"],
            &[rds_arn(r, "cluster-pg", "*")],
            None,
        );
        needs.allow(
            "DrillTuneScratchClusterParameters",
            &["rds:ModifyDBClusterParameterGroup", "rds:ResetDBClusterParameterGroup"],
            &[rds_arn(r, "cluster-pg", "sd-*")],
            None,
        );
    }

    fn rto_floor(&self) -> Option<(u64, &'static str)> {
        Some((8 * 60, "an Aurora restore creates a cluster and an instance"))
    }

    fn scratch_text(&self, name: &str, _: &crate::config::DrillSpec, _: &str, region: Option<&str>) -> String {
        aws_scratch::scratch_text(&self.scratch, name, region)
    }

    fn source_instance(&self) -> Option<super::registry::SourceInstance<'_>> {
        Some(super::registry::SourceInstance::Cluster(&self.source_cluster))
    }
}
