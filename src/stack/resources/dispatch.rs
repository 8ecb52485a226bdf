//! What every resource kind goes through: create, update, delete, tags and ownership, dispatched by kind.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::aws::{AwsError, classify};
use crate::stack::live::{Clients, Ids, Live, TAG_MANAGED, TAG_STACK};
use crate::stack::model::{Resource, ResourceKind};

/// What apply carries between steps: the stack's name (for tags) and ids learned along the way.
pub(crate) struct Ctx {
    pub(crate) stack: String,
    pub(crate) ids: Mutex<Ids>,
}

impl Ctx {
    /// The ids learned so far. A step that panicked while holding them left nothing half-written (each
    /// update is one insert), so a poisoned lock is taken as it is.
    pub(crate) fn ids(&self) -> std::sync::MutexGuard<'_, Ids> {
        self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key ARN for an alias the stack declares (created or found so far), else the alias itself, which
    /// every service accepts as a key reference.
    pub(crate) fn key_arn(&self, alias: &str) -> String {
        self.ids().key_arn.get(alias).cloned().unwrap_or_else(|| alias.to_string())
    }
}

/// A property the model did not give a resource (a bug in `stack/model.rs`, or a kind not yet wired):
/// named, and nothing is sent to AWS, never an empty string in its place. Every property comes from the
/// stack file, which `config/` has already checked (a key missing there is named with file:line:column).
#[derive(Debug, Clone, thiserror::Error)]
#[error("stack resource `{address}` has no `{key}` (a string): nothing was sent to AWS for it")]
pub(crate) struct MissingProperty {
    pub(crate) address: String,
    pub(crate) key: String,
}

/// Why one step of `stack apply` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Property(#[from] MissingProperty),
    /// An SDK request builder refused what it was given (a required field unset).
    #[error("cannot build the request: {0}")]
    Build(#[from] aws_smithy_types::error::operation::BuildError),
}

/// The ownership tags every created resource carries.
pub(crate) fn tags(stack: &str) -> Vec<(String, String)> {
    vec![(TAG_MANAGED.to_string(), "true".to_string()), (TAG_STACK.to_string(), stack.to_string())]
}

/// A string property the resource's kind always has: its absence is an error naming it.
pub(crate) fn str_prop<'a>(r: &'a Resource, k: &str) -> Result<&'a str, MissingProperty> {
    r.props.get(k).and_then(Value::as_str).ok_or_else(|| MissingProperty { address: r.address(), key: k.to_string() })
}

/// A string property the stack file may leave out (`null` in the model): `None` then.
pub(crate) fn opt_str_prop<'a>(r: &'a Resource, k: &str) -> Option<&'a str> {
    r.props.get(k).and_then(Value::as_str)
}

pub(crate) fn bool_prop(r: &Resource, k: &str) -> bool {
    r.props.get(k).and_then(Value::as_bool).unwrap_or(false)
}

pub(crate) fn prop(r: &Resource, k: &str) -> Value {
    r.props.get(k).cloned().unwrap_or(Value::Null)
}

/// Properties AWS cannot change in place: a change replaces the resource, and says why.
pub(crate) fn forces_replacement(kind: ResourceKind, prop: &str) -> Option<&'static str> {
    Some(match (kind, prop) {
        (ResourceKind::RdsInstance, "kms-key") => "RDS encrypts an instance's storage with one key for its whole life",
        (ResourceKind::RdsInstance, "master-username") => "RDS cannot rename the master user",
        (ResourceKind::RdsInstance, "database") => "RDS cannot rename the initial database",
        (ResourceKind::DbParameterGroup, "family") => "a parameter group's family is fixed at creation",
        (ResourceKind::DbSubnetGroup, "vpc") => "a subnet group cannot move to another VPC",
        (ResourceKind::BackupVault, "kms-key") => "a backup vault's encryption key is fixed at creation",
        (ResourceKind::BackupSelection, _) => "AWS Backup selections cannot be modified, only recreated",
        (ResourceKind::BeanstalkEnvironment, "vpc") => "an environment cannot move to another VPC",
        (ResourceKind::BeanstalkEnvironment, "application") => "an environment cannot move to another application",
        _ => return None,
    })
}

/// Replacing or deleting these loses data (or, for a key, everything it encrypts): refused without
/// `--allow-data-loss`.
pub(crate) fn holds_data(kind: ResourceKind) -> bool {
    matches!(
        kind,
        ResourceKind::RdsInstance | ResourceKind::BackupVault | ResourceKind::KmsKey | ResourceKind::S3Bucket
    )
}

pub(crate) async fn create(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    match r.kind {
        ResourceKind::KmsKey => super::kms::create(c, r, ctx).await,
        ResourceKind::SnsTopic => super::sns::create(c, r, ctx).await,
        ResourceKind::LogGroup => Ok(super::logs::create_group(c, r, ctx).await?),
        ResourceKind::MetricFilter => super::logs::put_filter(c, r).await,
        ResourceKind::Alarm => super::alarms::put(c, r, ctx).await,
        ResourceKind::DbParameterGroup => super::rds::create_parameter_group(c, r, ctx).await,
        ResourceKind::DbSubnetGroup => Ok(super::rds::create_subnet_group(c, r, ctx).await?),
        ResourceKind::RdsInstance => super::rds::create_instance(c, r, ctx).await,
        ResourceKind::BackupVault => super::backup::create_vault(c, r, ctx).await,
        ResourceKind::BackupPlan => super::backup::create_plan(c, r, ctx).await,
        ResourceKind::BackupSelection => super::backup::create_selection(c, r, ctx).await,
        ResourceKind::S3Bucket => Ok(super::s3::create(c, r, ctx).await?),
        ResourceKind::BeanstalkApplication => Ok(super::beanstalk::create_application(c, r, ctx).await?),
        ResourceKind::BeanstalkEnvironment => super::beanstalk::create_environment(c, r, ctx).await,
        ResourceKind::ShieldProtection => super::shield::create(c, r, ctx).await,
    }
}

pub(crate) async fn update(c: &Clients, r: &Resource, live: &Live, ctx: &Ctx) -> Result<(), StepError> {
    match r.kind {
        ResourceKind::KmsKey => super::kms::update(c, r, live).await,
        ResourceKind::SnsTopic => super::sns::update(c, r, live).await,
        ResourceKind::LogGroup => Ok(super::logs::update_group(c, r, live, ctx).await?),
        ResourceKind::MetricFilter => super::logs::put_filter(c, r).await,
        ResourceKind::Alarm => super::alarms::put(c, r, ctx).await,
        ResourceKind::DbParameterGroup => Ok(super::rds::update_parameter_group(c, r, live).await?),
        ResourceKind::DbSubnetGroup => Ok(super::rds::update_subnet_group(c, r).await?),
        ResourceKind::RdsInstance => super::rds::update_instance(c, r, live).await,
        ResourceKind::BackupPlan => super::backup::update_plan(c, r, live).await,
        ResourceKind::S3Bucket => Ok(super::s3::update(c, r, live, ctx).await?),
        ResourceKind::BeanstalkEnvironment => super::beanstalk::update_environment(c, r, live).await,
        // Nothing of these changes in place: their changes force replacement.
        ResourceKind::BackupVault
        | ResourceKind::BackupSelection
        | ResourceKind::BeanstalkApplication
        | ResourceKind::ShieldProtection => Ok(()),
    }
}

pub(crate) async fn delete(c: &Clients, live: &Live, ctx: &Ctx) -> Result<(), AwsError> {
    match live.kind {
        ResourceKind::KmsKey => super::kms::delete(c, live).await,
        ResourceKind::SnsTopic => super::sns::delete(c, live).await,
        ResourceKind::LogGroup => super::logs::delete_group(c, live).await,
        ResourceKind::MetricFilter => super::logs::delete_filter(c, live).await,
        ResourceKind::Alarm => super::alarms::delete(c, live).await,
        ResourceKind::DbParameterGroup => super::rds::delete_parameter_group(c, live).await,
        ResourceKind::DbSubnetGroup => super::rds::delete_subnet_group(c, live).await,
        ResourceKind::RdsInstance => super::rds::delete_instance(c, live).await,
        ResourceKind::BackupVault => super::backup::delete_vault(c, live).await,
        ResourceKind::BackupPlan => super::backup::delete_plan(c, live).await,
        ResourceKind::BackupSelection => super::backup::delete_selection(c, live, ctx).await,
        ResourceKind::S3Bucket => super::s3::delete(c, live).await,
        ResourceKind::BeanstalkApplication => super::beanstalk::delete_application(c, live).await,
        ResourceKind::BeanstalkEnvironment => super::beanstalk::delete_environment(c, live).await,
        ResourceKind::ShieldProtection => super::shield::delete(c, live).await,
    }
}

/// A resource's tags: key → value.
pub(crate) type Tags = HashMap<String, String>;

fn pairs<K: AsRef<str>, V: AsRef<str>>(it: impl IntoIterator<Item = (K, V)>) -> Tags {
    it.into_iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect()
}

/// One resource's tags, read from its own service: for ARNs the tagging API did not return. `None` when
/// the kind has no tags of its own (its parent's decide).
pub(crate) async fn tags_of(c: &Clients, kind: ResourceKind, arn: &str) -> Result<Option<Tags>, AwsError> {
    Ok(Some(match kind {
        ResourceKind::KmsKey => {
            let t = c
                .kms
                .list_resource_tags()
                .key_id(arn)
                .send()
                .await
                .map_err(|e| classify("kms:ListResourceTags", &e))?;
            pairs(t.tags().iter().map(|t| (t.tag_key(), t.tag_value())))
        }
        ResourceKind::SnsTopic => {
            let t = c
                .sns
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(|e| classify("sns:ListTagsForResource", &e))?;
            pairs(t.tags().iter().map(|t| (t.key(), t.value())))
        }
        ResourceKind::LogGroup | ResourceKind::MetricFilter => {
            let name = arn.split_once(":log-group:").map(|(_, n)| n).unwrap_or(arn);
            #[expect(deprecated, reason = "moto serves ListTagsLogGroup, not its successor ListTagsForResource")]
            let t = c
                .logs
                .list_tags_log_group()
                .log_group_name(name)
                .send()
                .await
                .map_err(|e| classify("logs:ListTagsLogGroup", &e))?;
            t.tags().cloned().unwrap_or_default()
        }
        ResourceKind::Alarm => {
            let t =
                c.cw.list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .map_err(|e| classify("cloudwatch:ListTagsForResource", &e))?;
            pairs(t.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
        }
        ResourceKind::DbParameterGroup | ResourceKind::DbSubnetGroup | ResourceKind::RdsInstance => {
            let t = c
                .rds
                .list_tags_for_resource()
                .resource_name(arn)
                .send()
                .await
                .map_err(|e| classify("rds:ListTagsForResource", &e))?;
            pairs(t.tag_list().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
        }
        ResourceKind::BackupVault | ResourceKind::BackupPlan | ResourceKind::BackupSelection => {
            let t = c.backup.list_tags().resource_arn(arn).send().await.map_err(|e| classify("backup:ListTags", &e))?;
            t.tags().cloned().unwrap_or_default()
        }
        ResourceKind::BeanstalkApplication | ResourceKind::BeanstalkEnvironment => {
            let t =
                c.eb.list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .map_err(|e| classify("elasticbeanstalk:ListTagsForResource", &e))?;
            pairs(t.resource_tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
        }
        ResourceKind::S3Bucket => {
            super::s3::tags_of(c, arn.trim_start_matches("arn:aws:s3:::")).await?.into_iter().collect()
        }
        ResourceKind::ShieldProtection => {
            let t = c
                .shield
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .map_err(|e| classify("shield:ListTagsForResource", &e))?;
            pairs(t.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default())))
        }
    }))
}

/// A resource tagged for this stack that the file no longer declares, from its ARN; `None` for what is
/// already on its way out (a key pending deletion) or a kind stackdrill does not manage.
pub(crate) async fn orphan(c: &Clients, arn: &str, ids: &Ids) -> Result<Option<Live>, AwsError> {
    let mut parts = arn.splitn(6, ':');
    let (service, resource) = (parts.nth(2).unwrap_or_default(), parts.nth(2).unwrap_or_default());
    let (kind, name): (ResourceKind, String) = match service {
        "cloudwatch" => match resource.strip_prefix("alarm:") {
            Some(n) => (ResourceKind::Alarm, n.to_string()),
            None => return Ok(None),
        },
        "logs" => match resource.strip_prefix("log-group:") {
            Some(n) => (ResourceKind::LogGroup, n.trim_end_matches(":*").to_string()),
            None => return Ok(None),
        },
        "sns" => (ResourceKind::SnsTopic, resource.to_string()),
        "s3" => (ResourceKind::S3Bucket, resource.to_string()),
        "kms" => {
            let Some(id) = resource.strip_prefix("key/") else { return Ok(None) };
            let meta = c.kms.describe_key().key_id(id).send().await.map_err(|e| classify("kms:DescribeKey", &e))?;
            if meta.key_metadata().and_then(|m| m.key_state()).map(|s| s.as_str()) == Some("PendingDeletion") {
                return Ok(None);
            }
            let alias = ids.alias_of(arn);
            let mut l = Live::new(ResourceKind::KmsKey, if alias == arn { format!("key/{id}") } else { alias }, arn);
            l.id = Some(id.to_string());
            return Ok(Some(l));
        }
        "rds" => match resource.split_once(':') {
            Some(("db", n)) => (ResourceKind::RdsInstance, n.to_string()),
            Some(("pg", n)) => (ResourceKind::DbParameterGroup, n.to_string()),
            Some(("subgrp", n)) => (ResourceKind::DbSubnetGroup, n.to_string()),
            _ => return Ok(None),
        },
        "backup" => match resource.split_once(':') {
            Some(("backup-vault", n)) => (ResourceKind::BackupVault, n.to_string()),
            Some(("backup-plan", id)) => {
                let mut l = Live::new(ResourceKind::BackupPlan, id, arn);
                l.id = Some(id.to_string());
                return Ok(Some(l));
            }
            _ => return Ok(None),
        },
        "elasticbeanstalk" => match resource.split_once('/') {
            Some(("application", n)) => (ResourceKind::BeanstalkApplication, n.to_string()),
            Some(("environment", rest)) => {
                (ResourceKind::BeanstalkEnvironment, rest.rsplit('/').next().unwrap_or(rest).to_string())
            }
            _ => return Ok(None),
        },
        "shield" => match resource.strip_prefix("protection/") {
            Some(id) => {
                let mut l = Live::new(ResourceKind::ShieldProtection, id, arn);
                l.id = Some(id.to_string());
                return Ok(Some(l));
            }
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(Live::new(kind, name, arn)))
}

/// An SDK request builder's refusal, as the error of the call it was for.
fn unbuilt(action: &str, e: &aws_smithy_types::error::operation::BuildError) -> AwsError {
    AwsError {
        kind: crate::aws::Kind::Other,
        action: action.into(),
        code: None,
        message: format!("cannot build the request: {e}"),
    }
}

/// Adds the ownership tags to an existing resource (`stack import`). Metric filters and selections have
/// no tags: importing their parent adopts them.
pub(crate) async fn tag(c: &Clients, l: &Live, stack: &str) -> Result<(), AwsError> {
    let t = tags(stack);
    match l.kind {
        ResourceKind::KmsKey => {
            let tags = t
                .iter()
                .map(|(k, v)| aws_sdk_kms::types::Tag::builder().tag_key(k).tag_value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unbuilt("kms:TagResource", &e))?;
            c.kms
                .tag_resource()
                .key_id(&l.arn)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("kms:TagResource", &e))
        }
        ResourceKind::SnsTopic => {
            let tags = t
                .iter()
                .map(|(k, v)| aws_sdk_sns::types::Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unbuilt("sns:TagResource", &e))?;
            c.sns
                .tag_resource()
                .resource_arn(&l.arn)
                .set_tags(Some(tags))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("sns:TagResource", &e))
        }
        ResourceKind::LogGroup | ResourceKind::MetricFilter => {
            let name = l.arn.split_once(":log-group:").map(|(_, n)| n).unwrap_or(&l.name);
            #[expect(deprecated, reason = "moto serves TagLogGroup, not its successor TagResource")]
            c.logs
                .tag_log_group()
                .log_group_name(name)
                .set_tags(Some(t.into_iter().collect()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("logs:TagLogGroup", &e))
        }
        ResourceKind::Alarm => {
            let tags = t.iter().map(|(k, v)| aws_sdk_cloudwatch::types::Tag::builder().key(k).value(v).build());
            c.cw.tag_resource()
                .resource_arn(&l.arn)
                .set_tags(Some(tags.collect()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("cloudwatch:TagResource", &e))
        }
        ResourceKind::DbParameterGroup | ResourceKind::DbSubnetGroup | ResourceKind::RdsInstance => c
            .rds
            .add_tags_to_resource()
            .resource_name(&l.arn)
            .set_tags(Some(super::rds::rds_tags(stack)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds:AddTagsToResource", &e)),
        ResourceKind::BackupVault | ResourceKind::BackupPlan | ResourceKind::BackupSelection => c
            .backup
            .tag_resource()
            .resource_arn(&l.arn)
            .set_tags(Some(super::backup::backup_tags(stack)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("backup:TagResource", &e)),
        ResourceKind::BeanstalkApplication | ResourceKind::BeanstalkEnvironment => {
            c.eb.update_tags_for_resource()
                .resource_arn(&l.arn)
                .set_tags_to_add(Some(super::beanstalk::eb_tags(stack)))
                .send()
                .await
                .map(|_| ())
                // IAM authorizes UpdateTagsForResource's TagsToAdd as elasticbeanstalk:AddTags.
                .map_err(|e| classify("elasticbeanstalk:AddTags", &e))
        }
        ResourceKind::S3Bucket => {
            let existing = super::s3::tags_of(c, &l.name).await?;
            super::s3::put_tags(c, &l.name, &super::s3::merged(existing, &t)).await
        }
        ResourceKind::ShieldProtection => {
            let tags = t.iter().map(|(k, v)| aws_sdk_shield::types::Tag::builder().key(k).value(v).build());
            c.shield
                .tag_resource()
                .resource_arn(&l.arn)
                .set_tags(Some(tags.collect()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("shield:TagResource", &e))
        }
    }
}
