//! KMS customer-managed keys, named by alias: description and rotation are managed; a key is never
//! deleted, only scheduled for deletion (30 days), and only with `--allow-data-loss`.

use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag};

use super::{Ctx, StepError, str_prop, tags};
use crate::aws::{AwsError, classify};
use crate::stack::live::{Clients, Ids, Live};
use crate::stack::model::{Resource, ResourceKind};

/// ListAliases (paged, 100) finds every key by alias; then DescribeKey and GetKeyRotationStatus per key.
pub(crate) async fn read(c: &Clients, want: &[&Resource], ids: &mut Ids) -> Result<Vec<Live>, AwsError> {
    let mut pages = c.kms.list_aliases().limit(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("kms:ListAliases", &e))?;
        for a in page.aliases() {
            if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
                ids.key_arn.insert(name.to_string(), target.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for r in want {
        let Some(key_id) = ids.key_arn.get(&r.name).cloned() else { continue };
        let meta = c.kms.describe_key().key_id(&key_id).send().await.map_err(|e| classify("kms:DescribeKey", &e))?;
        let Some(m) = meta.key_metadata() else { continue };
        let arn = m.arn().unwrap_or_default().to_string();
        ids.key_arn.insert(r.name.clone(), arn.clone());
        if matches!(m.key_state(), Some(s) if s.as_str() == "PendingDeletion") {
            // A key waiting to be deleted is not the stack's key any more; creating a new one is the plan.
            continue;
        }
        let rotation = c
            .kms
            .get_key_rotation_status()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| classify("kms:GetKeyRotationStatus", &e))?
            .key_rotation_enabled();
        let policy = c
            .kms
            .get_key_policy()
            .key_id(&key_id)
            .policy_name("default")
            .send()
            .await
            .map_err(|e| classify("kms:GetKeyPolicy", &e))?;
        let mut l = Live::new(ResourceKind::KmsKey, &r.name, arn)
            .prop("description", m.description().unwrap_or_default())
            .prop("rotation", rotation)
            .prop("service-principals", allowed_services(policy.policy().unwrap_or_default()));
        l.id = Some(m.key_id().to_string());
        out.push(l);
    }
    // Aliases that point at key ids become ARNs for the alias lookup in other services.
    let ids_only: Vec<(String, String)> =
        ids.key_arn.iter().filter(|(_, v)| !v.starts_with("arn:")).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (alias, id) in ids_only {
        let arn = ids.key_arn.values().find(|v| v.starts_with("arn:") && v.ends_with(&format!("/{id}"))).cloned();
        if let Some(arn) = arn {
            ids.key_arn.insert(alias, arn);
        }
    }
    Ok(out)
}

pub(crate) async fn create(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    let key = c
        .kms
        .create_key()
        .description(str_prop(r, "description")?)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .key_spec(KeySpec::SymmetricDefault)
        .set_tags(Some(
            tags(&ctx.stack)
                .into_iter()
                .map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build())
                .collect::<Result<Vec<_>, _>>()?,
        ))
        .send()
        .await
        .map_err(|e| classify("kms:CreateKey", &e))?;
    let Some(m) = key.key_metadata() else {
        return Err(StepError::Aws(AwsError {
            kind: crate::aws::Kind::Other,
            action: "kms:CreateKey".into(),
            code: None,
            message: "the response holds no key metadata (no key id): nothing to alias".into(),
        }));
    };
    let (id, arn) = (m.key_id().to_string(), m.arn().unwrap_or_default().to_string());
    if r.props.get("rotation").and_then(|v| v.as_bool()) == Some(true) {
        c.kms.enable_key_rotation().key_id(&id).send().await.map_err(|e| classify("kms:EnableKeyRotation", &e))?;
    }
    c.kms
        .create_alias()
        .alias_name(&r.name)
        .target_key_id(&id)
        .send()
        .await
        .map_err(|e| classify("kms:CreateAlias", &e))?;
    if !services(r).is_empty() {
        put_policy(c, r, &id, &arn).await?;
    }
    ctx.ids().key_arn.insert(r.name.clone(), arn);
    Ok(())
}

fn services(r: &Resource) -> Vec<String> {
    r.props
        .get("service-principals")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The service principals a key policy allows (statements with Effect Allow), sorted.
fn allowed_services(policy: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(policy).unwrap_or_default();
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.clone(),
        one @ serde_json::Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    let mut out: Vec<String> = statements
        .iter()
        .filter(|st| st["Effect"] == "Allow")
        .flat_map(|st| match &st["Principal"]["Service"] {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The key policy for `services`: the account administers the key (as the default policy does), CloudWatch
/// Logs may use it for this account's log groups in the region (the encryption-context condition the
/// CloudWatch Logs guide gives), and CloudWatch may decrypt and make data keys to publish alarms to a
/// topic it encrypts.
pub(crate) fn key_policy(services: &[String], key_arn: &str) -> String {
    let parts: Vec<&str> = key_arn.split(':').collect();
    let (region, account) = (parts.get(3).copied().unwrap_or_default(), parts.get(4).copied().unwrap_or_default());
    let mut statements = vec![serde_json::json!({
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
        "Action": "kms:*",
        "Resource": "*",
    })];
    for s in services {
        if s.starts_with("logs.") {
            statements.push(serde_json::json!({
                "Sid": "CloudWatchLogsEncryptsLogGroups",
                "Effect": "Allow",
                "Principal": { "Service": s },
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": { "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": format!("arn:aws:logs:{region}:{account}:log-group:*")
                } },
            }));
        } else if s == "cloudwatch.amazonaws.com" {
            statements.push(serde_json::json!({
                "Sid": "CloudWatchAlarmsPublishToTheTopic",
                "Effect": "Allow",
                "Principal": { "Service": s },
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            }));
        }
    }
    serde_json::json!({ "Version": "2012-10-17", "Id": "stackdrill", "Statement": statements }).to_string()
}

async fn put_policy(c: &Clients, r: &Resource, id: &str, arn: &str) -> Result<(), AwsError> {
    c.kms
        .put_key_policy()
        .key_id(id)
        .policy_name("default")
        .policy(key_policy(&services(r), arn))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| classify("kms:PutKeyPolicy", &e))
}

pub(crate) async fn update(c: &Clients, r: &Resource, live: &Live) -> Result<(), StepError> {
    let id = live.id.clone().unwrap_or_else(|| live.arn.clone());
    if r.props.get("service-principals") != live.props.get("service-principals") {
        put_policy(c, r, &id, &live.arn).await?;
    }
    if r.props.get("description") != live.props.get("description") {
        c.kms
            .update_key_description()
            .key_id(&id)
            .description(str_prop(r, "description")?)
            .send()
            .await
            .map_err(|e| classify("kms:UpdateKeyDescription", &e))?;
    }
    match r.props.get("rotation").and_then(|v| v.as_bool()) {
        Some(true) => c
            .kms
            .enable_key_rotation()
            .key_id(&id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("kms:EnableKeyRotation", &e).into()),
        _ => c
            .kms
            .disable_key_rotation()
            .key_id(&id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("kms:DisableKeyRotation", &e).into()),
    }
}

/// Schedules deletion in 30 days (the longest wait AWS allows) and removes the alias.
pub(crate) async fn delete(c: &Clients, live: &Live) -> Result<(), AwsError> {
    let id = live.id.clone().unwrap_or_else(|| live.arn.clone());
    if live.name.starts_with("alias/") {
        c.kms.delete_alias().alias_name(&live.name).send().await.map_err(|e| classify("kms:DeleteAlias", &e))?;
    }
    c.kms
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(30)
        .send()
        .await
        .map_err(|e| classify("kms:ScheduleKeyDeletion", &e))?;
    Ok(())
}
