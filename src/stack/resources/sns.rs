//! The SNS alert topic: KMS encryption and subscriptions (by protocol and endpoint).

use serde_json::{Value, json};

use super::{Ctx, StepError, opt_str_prop};
use crate::aws::{AwsError, classify};
use crate::stack::live::{Clients, Ids, Live};
use crate::stack::model::{Resource, ResourceKind};

fn name_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// ListTopics (paged, 100) finds the topics by name; GetTopicAttributes and ListSubscriptionsByTopic each.
pub(crate) async fn read(c: &Clients, want: &[&Resource], ids: &Ids) -> Result<Vec<Live>, AwsError> {
    if want.is_empty() {
        return Ok(vec![]);
    }
    let mut arns = Vec::new();
    let mut pages = c.sns.list_topics().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("sns:ListTopics", &e))?;
        arns.extend(page.topics().iter().filter_map(|t| t.topic_arn().map(str::to_string)));
    }
    let mut out = Vec::new();
    for r in want {
        let Some(arn) = arns.iter().find(|a| name_of(a) == r.name) else { continue };
        let attrs = c
            .sns
            .get_topic_attributes()
            .topic_arn(arn)
            .send()
            .await
            .map_err(|e| classify("sns:GetTopicAttributes", &e))?;
        let key = attrs.attributes().and_then(|a| a.get("KmsMasterKeyId")).filter(|k| !k.is_empty());
        let mut subs = Vec::new();
        let mut pages = c.sns.list_subscriptions_by_topic().topic_arn(arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("sns:ListSubscriptionsByTopic", &e))?;
            for s in page.subscriptions() {
                subs.push(json!([s.protocol().unwrap_or_default(), s.endpoint().unwrap_or_default()]));
            }
        }
        subs.sort_by_key(|v| v.to_string());
        let mut l = Live::new(ResourceKind::SnsTopic, &r.name, arn).prop("subscriptions", subs);
        if let Some(k) = key {
            l = l.prop("kms-key", ids.alias_of(k));
        }
        out.push(l);
    }
    Ok(out)
}

fn subscriptions(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter().filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_str()?.to_string()))).collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn create(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    let mut req = c.sns.create_topic().name(&r.name);
    if let Some(key) = opt_str_prop(r, "kms-key") {
        req = req.attributes("KmsMasterKeyId", key);
    }
    for (k, v) in super::tags(&ctx.stack) {
        req = req.tags(aws_sdk_sns::types::Tag::builder().key(k).value(v).build()?);
    }
    let arn =
        req.send().await.map_err(|e| classify("sns:CreateTopic", &e))?.topic_arn().unwrap_or_default().to_string();
    for (protocol, endpoint) in subscriptions(r.props.get("subscriptions")) {
        subscribe(c, &arn, &protocol, &endpoint).await?;
    }
    ctx.ids().topic_arn.insert(r.name.clone(), arn);
    Ok(())
}

async fn subscribe(c: &Clients, arn: &str, protocol: &str, endpoint: &str) -> Result<(), AwsError> {
    c.sns
        .subscribe()
        .topic_arn(arn)
        .protocol(protocol)
        .endpoint(endpoint)
        .send()
        .await
        .map_err(|e| classify("sns:Subscribe", &e))?;
    Ok(())
}

pub(crate) async fn update(c: &Clients, r: &Resource, live: &Live) -> Result<(), StepError> {
    if r.props.get("kms-key") != live.props.get("kms-key") {
        c.sns
            .set_topic_attributes()
            .topic_arn(&live.arn)
            .attribute_name("KmsMasterKeyId")
            // No key declared: the empty value switches encryption off.
            .attribute_value(opt_str_prop(r, "kms-key").unwrap_or_default())
            .send()
            .await
            .map_err(|e| classify("sns:SetTopicAttributes", &e))?;
    }
    let want = subscriptions(r.props.get("subscriptions"));
    let have = subscriptions(live.props.get("subscriptions"));
    for (p, e) in want.iter().filter(|s| !have.contains(s)) {
        subscribe(c, &live.arn, p, e).await?;
    }
    let gone: Vec<_> = have.iter().filter(|s| !want.contains(s)).collect();
    if !gone.is_empty() {
        let mut pages = c.sns.list_subscriptions_by_topic().topic_arn(&live.arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("sns:ListSubscriptionsByTopic", &e))?;
            for s in page.subscriptions() {
                let pair = (s.protocol().unwrap_or_default().to_string(), s.endpoint().unwrap_or_default().to_string());
                if gone.contains(&&pair)
                    && let Some(sub) = s.subscription_arn().filter(|a| a.starts_with("arn:"))
                {
                    c.sns
                        .unsubscribe()
                        .subscription_arn(sub)
                        .send()
                        .await
                        .map_err(|e| classify("sns:Unsubscribe", &e))?;
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn delete(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.sns.delete_topic().topic_arn(&live.arn).send().await.map_err(|e| classify("sns:DeleteTopic", &e))?;
    Ok(())
}
