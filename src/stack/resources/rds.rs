//! RDS PostgreSQL: the parameter group, the subnet group and the instance.

use std::collections::BTreeMap;

use aws_sdk_rds::types::{ApplyMethod, Parameter, Tag};
use serde_json::Value;

use super::{Ctx, StepError, bool_prop, str_prop};
use crate::aws::{AwsError, Backoff, classify};
use crate::stack::live::{Clients, Ids, Live};
use crate::stack::model::{Resource, ResourceKind};

pub(crate) fn rds_tags(stack: &str) -> Vec<Tag> {
    super::tags(stack).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub(crate) async fn read(
    c: &Clients,
    pgs: &[&Resource],
    subnets: &[&Resource],
    dbs: &[&Resource],
    ids: &Ids,
) -> Result<Vec<Live>, AwsError> {
    let mut out = Vec::new();
    for r in pgs {
        let g = match c.rds.describe_db_parameter_groups().db_parameter_group_name(&r.name).send().await {
            Ok(g) => g,
            Err(e) => match classify("rds:DescribeDBParameterGroups", &e) {
                e if e.is_not_found() => continue,
                e => return Err(e),
            },
        };
        let Some(g) = g.db_parameter_groups().first() else { continue };
        let params: BTreeMap<String, String> = described(c, &r.name, Some("user"))
            .await?
            .into_iter()
            .filter_map(|(n, (v, _))| v.map(|v| (n, v)))
            .collect();
        out.push(
            Live::new(ResourceKind::DbParameterGroup, &r.name, g.db_parameter_group_arn().unwrap_or_default())
                .prop("family", g.db_parameter_group_family())
                .prop("parameters", params),
        );
    }
    for r in subnets {
        let g = match c.rds.describe_db_subnet_groups().db_subnet_group_name(&r.name).send().await {
            Ok(g) => g,
            Err(e) => match classify("rds:DescribeDBSubnetGroups", &e) {
                e if e.is_not_found() => continue,
                e => return Err(e),
            },
        };
        let Some(g) = g.db_subnet_groups().first() else { continue };
        let mut ids: Vec<&str> = g.subnets().iter().filter_map(|s| s.subnet_identifier()).collect();
        ids.sort();
        out.push(
            Live::new(ResourceKind::DbSubnetGroup, &r.name, g.db_subnet_group_arn().unwrap_or_default())
                .prop("subnets", ids)
                .prop("vpc", g.vpc_id()),
        );
    }
    for r in dbs {
        let d = match c.rds.describe_db_instances().db_instance_identifier(&r.name).send().await {
            Ok(d) => d,
            Err(e) => match classify("rds:DescribeDBInstances", &e) {
                e if e.is_not_found() => continue,
                e => return Err(e),
            },
        };
        let Some(d) = d.db_instances().first() else { continue };
        if d.db_instance_status() == Some("deleting") {
            continue;
        }
        out.push(
            Live::new(ResourceKind::RdsInstance, &r.name, d.db_instance_arn().unwrap_or_default())
                .prop(
                    "engine",
                    format!("{} {}", d.engine().unwrap_or_default(), d.engine_version().unwrap_or_default()),
                )
                .prop("instance-class", d.db_instance_class())
                .prop("allocated-storage", d.allocated_storage())
                .prop("master-username", d.master_username())
                .prop("database", d.db_name())
                .prop(
                    "kms-key",
                    if d.storage_encrypted() == Some(true) { d.kms_key_id().map(|k| ids.alias_of(k)) } else { None },
                )
                .prop("multi-az", d.multi_az())
                .prop("backup-retention-days", d.backup_retention_period())
                .prop("deletion-protection", d.deletion_protection())
                .prop("publicly-accessible", d.publicly_accessible())
                .prop("iam-auth", d.iam_database_authentication_enabled())
                .prop("parameter-group", d.db_parameter_groups().first().and_then(|p| p.db_parameter_group_name()))
                .prop("subnet-group", d.db_subnet_group().and_then(|g| g.db_subnet_group_name()))
                .prop("backup-tag", backup_tag(r, d))
                .prop(BACKUP_MANAGED, d.aws_backup_recovery_point_arn().is_some()),
        );
    }
    Ok(out)
}

/// A live-only prop: AWS Backup's continuous backup owns this instance's retention (RDS user guide:
/// with AwsBackupRecoveryPointArn set, retention is AWS Backup's), so the stack's
/// `backup-retention-days` is neither compared nor sent: re-sending it fights AWS Backup or is refused.
pub(crate) const BACKUP_MANAGED: &str = "aws-backup-managed";

/// Whether a declared property is left to another owner on this live instance.
pub(crate) fn owned_elsewhere(property: &str, live: &Live) -> bool {
    property == "backup-retention-days" && live.props.get(BACKUP_MANAGED) == Some(&Value::Bool(true))
}

/// The instance's value of the tag the backup selection selects by (`key=value`), if it has it.
fn backup_tag(r: &Resource, d: &aws_sdk_rds::types::DbInstance) -> Option<String> {
    let (key, _) = r.props.get("backup-tag").and_then(Value::as_str)?.split_once('=')?;
    let tag = d.tag_list().iter().find(|t| t.key() == Some(key))?;
    Some(format!("{key}={}", tag.value().unwrap_or_default()))
}

/// The tag the backup selection selects by, for the database to carry.
fn selection_tag(r: &Resource) -> Option<Tag> {
    let (k, v) = r.props.get("backup-tag").and_then(Value::as_str)?.split_once('=')?;
    Some(Tag::builder().key(k).value(v).build())
}

/// The stack's tags, plus the backup selection's tag on a database.
fn instance_tags(r: &Resource, stack: &str) -> Vec<Tag> {
    let mut tags = rds_tags(stack);
    tags.extend(selection_tag(r));
    tags
}

fn params(r: &Resource) -> BTreeMap<String, String> {
    r.props
        .get("parameters")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

pub(crate) async fn create_parameter_group(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    c.rds
        .create_db_parameter_group()
        .db_parameter_group_name(&r.name)
        .db_parameter_group_family(str_prop(r, "family")?)
        .description(format!("stackdrill stack {}", ctx.stack))
        .set_tags(Some(rds_tags(&ctx.stack)))
        .send()
        .await
        .map_err(|e| classify("rds:CreateDBParameterGroup", &e))?;
    Ok(set_parameters(c, &r.name, &params(r), &BTreeMap::new()).await?)
}

/// A group's parameters: name → (value, `static` or `dynamic`), from `source` (`user`) or all of them.
async fn described(
    c: &Clients,
    group: &str,
    source: Option<&str>,
) -> Result<BTreeMap<String, (Option<String>, String)>, AwsError> {
    let mut out = BTreeMap::new();
    let mut pages = c
        .rds
        .describe_db_parameters()
        .db_parameter_group_name(group)
        .set_source(source.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("rds:DescribeDBParameters", &e))?;
        for p in page.parameters() {
            if let Some(n) = p.parameter_name() {
                let apply = p.apply_type().unwrap_or("static").to_string();
                out.insert(n.to_string(), (p.parameter_value().map(str::to_string), apply));
            }
        }
    }
    Ok(out)
}

/// Sets what changed. RDS applies a dynamic parameter `immediate`, and takes a static one only
/// `pending-reboot` (ModifyDBParameterGroup refuses `immediate` for it): the group's own ApplyType says
/// which. Then waits until every value reads back, so an instance created next starts with them (the RDS
/// guide asks to let a new group settle before the first instance uses it).
async fn set_parameters(
    c: &Clients,
    group: &str,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let wanted: Vec<(&String, &String)> = want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).collect();
    let kinds = if wanted.is_empty() { BTreeMap::new() } else { described(c, group, None).await? };
    let changed: Vec<Parameter> = wanted
        .iter()
        .map(|(k, v)| {
            let dynamic = kinds.get(*k).is_some_and(|(_, apply)| apply == "dynamic");
            let method = if dynamic { ApplyMethod::Immediate } else { ApplyMethod::PendingReboot };
            Parameter::builder().parameter_name(*k).parameter_value(*v).apply_method(method).build()
        })
        .collect();
    for chunk in changed.chunks(20) {
        c.rds
            .modify_db_parameter_group()
            .db_parameter_group_name(group)
            .set_parameters(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| classify("rds:ModifyDBParameterGroup", &e))?;
    }
    let removed: Vec<Parameter> = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .map(|k| Parameter::builder().parameter_name(k).apply_method(ApplyMethod::PendingReboot).build())
        .collect();
    for chunk in removed.chunks(20) {
        c.rds
            .reset_db_parameter_group()
            .db_parameter_group_name(group)
            .set_parameters(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| classify("rds:ResetDBParameterGroup", &e))?;
    }
    if !wanted.is_empty() {
        settle(c, group, &wanted).await?;
    }
    Ok(())
}

/// Polls (5 s growing to 30 s, 5 minutes at most) until each value set reads back from the group.
async fn settle(c: &Clients, group: &str, wanted: &[(&String, &String)]) -> Result<(), AwsError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut backoff = crate::aws::Backoff::new(std::time::Duration::from_secs(5), std::time::Duration::from_secs(30));
    loop {
        let now = described(c, group, Some("user")).await?;
        let pending: Vec<&str> = wanted
            .iter()
            .filter(|(k, v)| now.get(*k).and_then(|(value, _)| value.as_deref()) != Some(v.as_str()))
            .map(|(k, _)| k.as_str())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(AwsError {
                action: "rds:DescribeDBParameters".into(),
                kind: crate::aws::Kind::Other,
                code: None,
                message: format!("parameter group `{group}` did not show {} within 5 minutes", pending.join(", ")),
            });
        }
        backoff.wait().await;
    }
}

pub(crate) async fn update_parameter_group(c: &Clients, r: &Resource, live: &Live) -> Result<(), AwsError> {
    let have: BTreeMap<String, String> =
        live.props.get("parameters").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    set_parameters(c, &r.name, &params(r), &have).await
}

fn subnet_ids(r: &Resource) -> Vec<String> {
    r.props
        .get("subnets")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

pub(crate) async fn create_subnet_group(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), AwsError> {
    c.rds
        .create_db_subnet_group()
        .db_subnet_group_name(&r.name)
        .db_subnet_group_description(format!("stackdrill stack {}", ctx.stack))
        .set_subnet_ids(Some(subnet_ids(r)))
        .set_tags(Some(rds_tags(&ctx.stack)))
        .send()
        .await
        .map_err(|e| classify("rds:CreateDBSubnetGroup", &e))?;
    Ok(())
}

pub(crate) async fn update_subnet_group(c: &Clients, r: &Resource) -> Result<(), AwsError> {
    c.rds
        .modify_db_subnet_group()
        .db_subnet_group_name(&r.name)
        .set_subnet_ids(Some(subnet_ids(r)))
        .send()
        .await
        .map_err(|e| classify("rds:ModifyDBSubnetGroup", &e))?;
    Ok(())
}

pub(crate) async fn delete_parameter_group(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.rds
        .delete_db_parameter_group()
        .db_parameter_group_name(&live.name)
        .send()
        .await
        .map_err(|e| classify("rds:DeleteDBParameterGroup", &e))?;
    Ok(())
}

pub(crate) async fn delete_subnet_group(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.rds
        .delete_db_subnet_group()
        .db_subnet_group_name(&live.name)
        .send()
        .await
        .map_err(|e| classify("rds:DeleteDBSubnetGroup", &e))?;
    Ok(())
}

fn engine(r: &Resource) -> Result<(String, String), StepError> {
    let e = str_prop(r, "engine")?;
    let (engine, version) = e.split_once(' ').unwrap_or((e, ""));
    Ok((engine.to_string(), version.to_string()))
}

/// The master password is managed by RDS in Secrets Manager: stackdrill never sees it.
pub(crate) async fn create_instance(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    let (engine, version) = engine(r)?;
    let key = ctx.key_arn(str_prop(r, "kms-key")?);
    c.rds
        .create_db_instance()
        .db_instance_identifier(&r.name)
        .engine(engine)
        .engine_version(version)
        .db_instance_class(str_prop(r, "instance-class")?)
        .allocated_storage(r.props.get("allocated-storage").and_then(Value::as_i64).unwrap_or(20) as i32)
        .master_username(str_prop(r, "master-username")?)
        .manage_master_user_password(true)
        .set_db_name(r.props.get("database").and_then(Value::as_str).map(str::to_string))
        .storage_encrypted(true)
        .kms_key_id(key)
        .multi_az(bool_prop(r, "multi-az"))
        .backup_retention_period(r.props.get("backup-retention-days").and_then(Value::as_i64).unwrap_or(7) as i32)
        .deletion_protection(bool_prop(r, "deletion-protection"))
        .publicly_accessible(bool_prop(r, "publicly-accessible"))
        .enable_iam_database_authentication(bool_prop(r, "iam-auth"))
        .db_parameter_group_name(str_prop(r, "parameter-group")?)
        .db_subnet_group_name(str_prop(r, "subnet-group")?)
        .copy_tags_to_snapshot(true)
        .set_tags(Some(instance_tags(r, &ctx.stack)))
        .send()
        .await
        .map_err(|e| classify("rds:CreateDBInstance", &e))?;
    Ok(wait_available(c, &r.name).await?)
}

/// Whether the live engine (`postgres 15.10`) satisfies the declared one (`postgres 15.8` or `postgres 15`):
/// the same engine and major version, at or above the declared minor. RDS upgrades minor versions on its
/// own (auto minor version upgrade); asking for the declared one again would be a downgrade it refuses.
pub(crate) fn engine_satisfies(declared: &str, live: &str) -> bool {
    let split = |e: &str| {
        let (name, version) = e.split_once(' ').unwrap_or((e, ""));
        let parts: Vec<u64> = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
        (name.to_string(), parts)
    };
    let ((want_engine, want), (have_engine, have)) = (split(declared), split(live));
    want_engine == have_engine && !want.is_empty() && have.first() == want.first() && have >= want
}

pub(crate) async fn update_instance(c: &Clients, r: &Resource, live: &Live) -> Result<(), StepError> {
    let changed = |k: &str| match k {
        "engine" => {
            let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
            !engine_satisfies(&text(r.props.get(k)), &text(live.props.get(k)))
        }
        _ => r.props.get(k) != live.props.get(k) && !owned_elsewhere(k, live),
    };
    if changed("backup-tag") {
        let tag = selection_tag(r);
        c.rds
            .add_tags_to_resource()
            .resource_name(&live.arn)
            .set_tags(tag.map(|t| vec![t]))
            .send()
            .await
            .map_err(|e| classify("rds:AddTagsToResource", &e))?;
    }
    const MODIFIABLE: [&str; 10] = [
        "engine",
        "instance-class",
        "allocated-storage",
        "multi-az",
        "backup-retention-days",
        "deletion-protection",
        "publicly-accessible",
        "iam-auth",
        "parameter-group",
        "subnet-group",
    ];
    if !MODIFIABLE.iter().any(|k| changed(k)) {
        return Ok(());
    }
    let mut req = c.rds.modify_db_instance().db_instance_identifier(&r.name).apply_immediately(true);
    if changed("engine") {
        req = req.engine_version(engine(r)?.1).allow_major_version_upgrade(true);
    }
    if changed("instance-class") {
        req = req.db_instance_class(str_prop(r, "instance-class")?);
    }
    if changed("allocated-storage") {
        req = req.allocated_storage(r.props.get("allocated-storage").and_then(Value::as_i64).unwrap_or(20) as i32);
    }
    if changed("multi-az") {
        req = req.multi_az(bool_prop(r, "multi-az"));
    }
    if changed("backup-retention-days") {
        req = req
            .backup_retention_period(r.props.get("backup-retention-days").and_then(Value::as_i64).unwrap_or(7) as i32);
    }
    if changed("deletion-protection") {
        req = req.deletion_protection(bool_prop(r, "deletion-protection"));
    }
    if changed("publicly-accessible") {
        req = req.publicly_accessible(bool_prop(r, "publicly-accessible"));
    }
    if changed("iam-auth") {
        req = req.enable_iam_database_authentication(bool_prop(r, "iam-auth"));
    }
    if changed("parameter-group") {
        req = req.db_parameter_group_name(str_prop(r, "parameter-group")?);
    }
    if changed("subnet-group") {
        req = req.db_subnet_group_name(str_prop(r, "subnet-group")?);
    }
    req.send().await.map_err(|e| classify("rds:ModifyDBInstance", &e))?;
    Ok(wait_available(c, &r.name).await?)
}

/// Switches deletion protection off (the caller passed `--allow-data-loss`), keeps a final snapshot (the
/// automated backups go with the instance, as Terraform's default has it), and waits until it is gone.
pub(crate) async fn delete_instance(c: &Clients, live: &Live) -> Result<(), AwsError> {
    if live.props.get("deletion-protection").and_then(Value::as_bool) == Some(true) {
        c.rds
            .modify_db_instance()
            .db_instance_identifier(&live.name)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| classify("rds:ModifyDBInstance", &e))?;
    }
    let snapshot = format!("{}-final-{}", live.name, chrono::Utc::now().format("%Y%m%d%H%M%S"));
    c.rds
        .delete_db_instance()
        .db_instance_identifier(&live.name)
        .skip_final_snapshot(false)
        .final_db_snapshot_identifier(snapshot)
        .delete_automated_backups(true)
        .send()
        .await
        .map_err(|e| classify("rds:DeleteDBInstance", &e))?;
    let mut backoff = Backoff::describe();
    loop {
        match c.rds.describe_db_instances().db_instance_identifier(&live.name).send().await {
            Err(e) => match classify("rds:DescribeDBInstances", &e) {
                e if e.is_not_found() => return Ok(()),
                e => return Err(e),
            },
            Ok(d) if d.db_instances().is_empty() => return Ok(()),
            Ok(_) => backoff.wait().await,
        }
    }
}

/// Waits until the instance is `available` with nothing pending.
/// Within two hours (a Multi-AZ conversion of a large instance is slow, never endless); a terminal status
/// (`incompatible-parameters`, `failed`, ...) fails at once.
async fn wait_available(c: &Clients, id: &str) -> Result<(), AwsError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2 * 3600);
    let mut backoff = Backoff::describe();
    let fail = |message: String| AwsError {
        action: "rds:DescribeDBInstances".into(),
        kind: crate::aws::Kind::Other,
        code: None,
        message,
    };
    loop {
        let d = c
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .map_err(|e| classify("rds:DescribeDBInstances", &e))?;
        let inst = d.db_instances().first();
        let status = inst.and_then(|i| i.db_instance_status()).unwrap_or("unknown");
        let settled = inst.is_some_and(|i| {
            status == "available"
                && i.pending_modified_values().is_none_or(|p| p.db_instance_class().is_none() && p.multi_az().is_none())
        });
        if settled {
            return Ok(());
        }
        if crate::drill::restore::aws_scratch::INSTANCE_TERMINAL.contains(&status) {
            return Err(fail(format!(
                "instance `{id}` entered status `{status}`; it needs attention before apply can go on"
            )));
        }
        if std::time::Instant::now() > deadline {
            return Err(fail(format!("instance `{id}` is still `{status}` after 2 hours")));
        }
        backoff.wait().await;
    }
}

#[cfg(test)]
mod wait_tests {
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::types::DbInstance;
    use aws_smithy_mocks::mock;

    use crate::aws::mocked;

    /// An instance that enters `incompatible-parameters` (a parameter group it cannot start with) never
    /// becomes available by waiting: apply says so at once.
    #[tokio::test]
    async fn a_terminal_status_ends_the_wait() {
        let describe = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("production-db")
                        .db_instance_status("incompatible-parameters")
                        .build(),
                )
                .build()
        });
        let sdk = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("ap-southeast-1"))
            .build();
        let mut c = crate::stack::live::Clients::new(&sdk);
        c.rds = mocked!(aws_sdk_rds, &[&describe]);
        let e = super::wait_available(&c, "production-db").await.unwrap_err().to_string();
        assert!(e.contains("entered status `incompatible-parameters`"), "{e}");
        assert_eq!(describe.num_calls(), 1);
    }
}

#[cfg(test)]
mod engine_tests {
    #[test]
    fn a_minor_upgrade_rds_made_is_not_drift_and_never_a_downgrade() {
        use super::engine_satisfies as ok;
        assert!(ok("postgres 15.8", "postgres 15.8"));
        assert!(ok("postgres 15.8", "postgres 15.10"), "15.10 > 15.8 numerically, not as text");
        assert!(ok("postgres 15", "postgres 15.12"));
        assert!(!ok("postgres 15.8", "postgres 15.4"), "below the declared minor");
        assert!(!ok("postgres 15.8", "postgres 16.1"), "another major");
        assert!(!ok("postgres 15.8", "mysql 15.8"));
    }
}
