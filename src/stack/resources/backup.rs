//! AWS Backup: the vault (encrypted with the backups key), the plan (rules) and the tag selection.

use std::collections::HashMap;

use aws_sdk_backup::types::{BackupPlanInput, BackupRuleInput, BackupSelection, Condition, ConditionType, Lifecycle};
use serde_json::{Value, json};

use super::{Ctx, StepError, opt_str_prop, str_prop};
use crate::aws::{AwsError, classify};
use crate::stack::live::{Clients, Ids, Live};
use crate::stack::model::{Resource, ResourceKind};

/// The schedule AWS gives a continuous rule that was declared without one.
const CONTINUOUS_DEFAULT_SCHEDULE: &str = "cron(0 5 ? * * *)";

pub(crate) async fn read(
    c: &Clients,
    vaults: &[&Resource],
    plans: &[&Resource],
    selections: &[&Resource],
    ids: &Ids,
) -> Result<Vec<Live>, AwsError> {
    let mut out = Vec::new();
    if !vaults.is_empty() {
        let mut pages = c.backup.list_backup_vaults().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("backup:ListBackupVaults", &e))?;
            for v in page.backup_vault_list() {
                let Some(name) = v.backup_vault_name() else { continue };
                if vaults.iter().any(|r| r.name == name) {
                    out.push(
                        Live::new(ResourceKind::BackupVault, name, v.backup_vault_arn().unwrap_or_default())
                            .prop("kms-key", v.encryption_key_arn().map(|k| ids.alias_of(k))),
                    );
                }
            }
        }
    }
    if plans.is_empty() {
        return Ok(out);
    }
    let mut found = Vec::new();
    let mut pages = c.backup.list_backup_plans().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("backup:ListBackupPlans", &e))?;
        for p in page.backup_plans_list() {
            if let (Some(name), Some(id)) = (p.backup_plan_name(), p.backup_plan_id())
                && plans.iter().any(|r| r.name == name)
            {
                found.push((name.to_string(), id.to_string(), p.backup_plan_arn().unwrap_or_default().to_string()));
            }
        }
    }
    for (name, id, arn) in found {
        let got = c
            .backup
            .get_backup_plan()
            .backup_plan_id(&id)
            .send()
            .await
            .map_err(|e| classify("backup:GetBackupPlan", &e))?;
        let rules: Vec<Value> = got
            .backup_plan()
            .map(|p| p.rules())
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let continuous = r.enable_continuous_backup().unwrap_or(false);
                let schedule = r.schedule_expression().filter(|s| !(continuous && *s == CONTINUOUS_DEFAULT_SCHEDULE));
                json!({
                    "name": r.rule_name(), "schedule": schedule, "continuous": continuous,
                    "retention-days": r.lifecycle().and_then(|l| l.delete_after_days()),
                })
            })
            .collect();
        let vault = got.backup_plan().and_then(|p| p.rules().first()).map(|r| r.target_backup_vault_name().to_string());
        let mut l = Live::new(ResourceKind::BackupPlan, &name, &arn).prop("vault", vault).prop("rules", rules);
        l.id = Some(id.clone());
        out.push(l);
        for r in selections.iter().filter(|s| opt_str_prop(s, "plan") == Some(name.as_str())) {
            let mut pages = c.backup.list_backup_selections().backup_plan_id(&id).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("backup:ListBackupSelections", &e))?;
                for s in page.backup_selections_list().iter().filter(|s| s.selection_name() == Some(r.name.as_str())) {
                    let sid = s.selection_id().unwrap_or_default();
                    let got = c
                        .backup
                        .get_backup_selection()
                        .backup_plan_id(&id)
                        .selection_id(sid)
                        .send()
                        .await
                        .map_err(|e| classify("backup:GetBackupSelection", &e))?;
                    let sel = got.backup_selection();
                    let tag = sel
                        .and_then(|s| s.list_of_tags().first())
                        .map(|t| format!("{}={}", t.condition_key(), t.condition_value()));
                    let mut l = Live::new(ResourceKind::BackupSelection, &r.name, &arn)
                        .prop("plan", &name)
                        .prop("iam-role-arn", sel.map(|s| s.iam_role_arn()))
                        .prop("tag", tag);
                    l.id = Some(sid.to_string());
                    out.push(l);
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn backup_tags(stack: &str) -> HashMap<String, String> {
    super::tags(stack).into_iter().collect()
}

pub(crate) async fn create_vault(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    let key = ctx.key_arn(str_prop(r, "kms-key")?);
    c.backup
        .create_backup_vault()
        .backup_vault_name(&r.name)
        .encryption_key_arn(key)
        .set_backup_vault_tags(Some(backup_tags(&ctx.stack)))
        .send()
        .await
        .map_err(|e| classify("backup:CreateBackupVault", &e))?;
    Ok(())
}

pub(crate) async fn delete_vault(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.backup
        .delete_backup_vault()
        .backup_vault_name(&live.name)
        .send()
        .await
        .map_err(|e| classify("backup:DeleteBackupVault", &e))?;
    Ok(())
}

fn plan_input(r: &Resource) -> Result<BackupPlanInput, StepError> {
    let vault = str_prop(r, "vault")?;
    let rules = r.props.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(BackupPlanInput::builder()
        .backup_plan_name(&r.name)
        .set_rules(Some(
            rules
                .iter()
                .map(|x| {
                    BackupRuleInput::builder()
                        .rule_name(x["name"].as_str().unwrap_or_default())
                        .target_backup_vault_name(vault)
                        .set_schedule_expression(x["schedule"].as_str().map(str::to_string))
                        .enable_continuous_backup(x["continuous"].as_bool().unwrap_or(false))
                        .lifecycle(Lifecycle::builder().set_delete_after_days(x["retention-days"].as_i64()).build())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?,
        ))
        .build()?)
}

pub(crate) async fn create_plan(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    let out = c
        .backup
        .create_backup_plan()
        .backup_plan(plan_input(r)?)
        .set_backup_plan_tags(Some(backup_tags(&ctx.stack)))
        .send()
        .await
        .map_err(|e| classify("backup:CreateBackupPlan", &e))?;
    if let Some(id) = out.backup_plan_id() {
        ctx.ids().plan_id.insert(r.name.clone(), id.to_string());
    }
    Ok(())
}

pub(crate) async fn update_plan(c: &Clients, r: &Resource, live: &Live) -> Result<(), StepError> {
    c.backup
        .update_backup_plan()
        .backup_plan_id(live.id.clone().unwrap_or_default())
        .backup_plan(plan_input(r)?)
        .send()
        .await
        .map_err(|e| classify("backup:UpdateBackupPlan", &e))?;
    Ok(())
}

pub(crate) async fn delete_plan(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.backup
        .delete_backup_plan()
        .backup_plan_id(live.id.clone().unwrap_or_default())
        .send()
        .await
        .map_err(|e| classify("backup:DeleteBackupPlan", &e))?;
    Ok(())
}

pub(crate) async fn create_selection(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    let plan_id = ctx.ids().plan_id.get(str_prop(r, "plan")?).cloned().unwrap_or_default();
    let tag = str_prop(r, "tag")?;
    let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
    let sel = BackupSelection::builder()
        .selection_name(&r.name)
        .iam_role_arn(str_prop(r, "iam-role-arn")?)
        .list_of_tags(
            Condition::builder()
                .condition_type(ConditionType::Stringequals)
                .condition_key(key)
                .condition_value(value)
                .build()?,
        )
        .build()?;
    c.backup
        .create_backup_selection()
        .backup_plan_id(plan_id)
        .backup_selection(sel)
        .send()
        .await
        .map_err(|e| classify("backup:CreateBackupSelection", &e))?;
    Ok(())
}

pub(crate) async fn delete_selection(c: &Clients, live: &Live, ctx: &Ctx) -> Result<(), AwsError> {
    let plan = live.props.get("plan").and_then(Value::as_str).unwrap_or_default();
    let plan_id = ctx.ids().plan_id.get(plan).cloned().unwrap_or_default();
    c.backup
        .delete_backup_selection()
        .backup_plan_id(plan_id)
        .selection_id(live.id.clone().unwrap_or_default())
        .send()
        .await
        .map_err(|e| classify("backup:DeleteBackupSelection", &e))?;
    Ok(())
}
