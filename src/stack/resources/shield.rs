//! Shield: Standard protects every AWS account automatically; Advanced protection of the environment's load
//! balancer is created only when the account has a subscription (DescribeSubscription).

use super::{Ctx, StepError, str_prop};
use crate::aws::{AwsError, classify};
use crate::stack::live::{Clients, Live};
use crate::stack::model::{Resource, ResourceKind};

/// Whether the account subscribes to Shield Advanced, the declared protections that exist, and notes.
pub(crate) async fn read(c: &Clients, want: &[&Resource]) -> Result<(bool, Vec<Live>, Vec<String>), AwsError> {
    if want.is_empty() {
        return Ok((false, vec![], vec![]));
    }
    let subscribed = match c.shield.describe_subscription().send().await {
        Ok(s) => s.subscription().is_some(),
        Err(e) => match classify("shield:DescribeSubscription", &e) {
            e if e.is_not_found() => false,
            e => return Err(e),
        },
    };
    let mut notes = vec!["Shield Standard protects the account's load balancers automatically".to_string()];
    if !subscribed {
        notes.push(
            "no Shield Advanced subscription (DescribeSubscription): the load balancer gets Shield Standard only; \
             subscribe to add Advanced protection"
                .to_string(),
        );
        return Ok((false, vec![], notes));
    }
    let mut out = Vec::new();
    let mut pages = c.shield.list_protections().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("shield:ListProtections", &e))?;
        for p in page.protections() {
            let Some(name) = p.name() else { continue };
            if let Some(r) = want.iter().find(|r| r.name == name) {
                let mut l = Live::new(ResourceKind::ShieldProtection, name, p.protection_arn().unwrap_or_default())
                    .prop("environment", r.props.get("environment"))
                    .prop("mode", r.props.get("mode"));
                l.id = p.id().map(str::to_string);
                out.push(l);
            }
        }
    }
    Ok((true, out, notes))
}

pub(crate) async fn create(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    let env = str_prop(r, "environment")?;
    let Some(lb) = super::beanstalk::load_balancer(c, env).await? else {
        return Err(StepError::Aws(AwsError {
            action: "shield:CreateProtection".into(),
            kind: crate::aws::Kind::Other,
            code: None,
            message: format!("environment `{env}` has no application load balancer to protect yet"),
        }));
    };
    c.shield
        .create_protection()
        .name(&r.name)
        .resource_arn(lb)
        .set_tags(Some(
            super::tags(&ctx.stack)
                .into_iter()
                .map(|(k, v)| aws_sdk_shield::types::Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| classify("shield:CreateProtection", &e))?;
    Ok(())
}

pub(crate) async fn delete(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.shield
        .delete_protection()
        .protection_id(live.id.clone().unwrap_or_default())
        .send()
        .await
        .map_err(|e| classify("shield:DeleteProtection", &e))?;
    Ok(())
}
