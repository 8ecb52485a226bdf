//! CloudWatch Logs groups (retention, KMS) and the metric filters on them.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatchlogs::types::MetricTransformation;
use serde_json::Value;

use super::{Ctx, StepError, opt_str_prop, str_prop};
use crate::aws::{AwsError, classify};
use crate::stack::live::{Clients, Ids, Live};
use crate::stack::model::{Resource, ResourceKind};

/// The longest prefix all names share, so one DescribeLogGroups (50 a page) covers the lot.
fn common_prefix<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut prefix: Option<&str> = None;
    for n in names {
        prefix = Some(match prefix {
            None => n,
            Some(p) => {
                let len = p.chars().zip(n.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a.len_utf8()).sum();
                &p[..len]
            }
        });
    }
    prefix.unwrap_or_default().to_string()
}

pub(crate) async fn read(
    c: &Clients,
    groups: &[&Resource],
    filters: &[&Resource],
    ids: &Ids,
) -> Result<Vec<Live>, AwsError> {
    let mut out = Vec::new();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g.name.as_str())
        .chain(filters.iter().filter_map(|f| opt_str_prop(f, "log-group")))
        .collect();
    if names.is_empty() {
        return Ok(out);
    }
    let prefix = common_prefix(names.iter().copied());
    let mut found: HashMap<String, Live> = HashMap::new();
    let mut req = c.logs.describe_log_groups();
    if !prefix.is_empty() {
        req = req.log_group_name_prefix(&prefix);
    }
    let mut pages = req.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("logs:DescribeLogGroups", &e))?;
        for g in page.log_groups() {
            let Some(name) = g.log_group_name() else { continue };
            if !names.contains(&name) {
                continue;
            }
            let arn = g.arn().unwrap_or_default().trim_end_matches(":*").to_string();
            let l = Live::new(ResourceKind::LogGroup, name, arn)
                .prop("retention-days", g.retention_in_days())
                .prop("kms-key", g.kms_key_id().map(|k| ids.alias_of(k)));
            found.insert(name.to_string(), l);
        }
    }
    // Metric filters: one paged DescribeMetricFilters per log group that has any declared.
    let mut by_group: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for f in filters {
        if let Some(group) = opt_str_prop(f, "log-group") {
            by_group.entry(group).or_default().push(f);
        }
    }
    for (group, fs) in by_group {
        let Some(parent) = found.get(group) else { continue };
        let parent_arn = parent.arn.clone();
        let mut pages = c.logs.describe_metric_filters().log_group_name(group).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("logs:DescribeMetricFilters", &e))?;
            for m in page.metric_filters() {
                let Some(name) = m.filter_name() else { continue };
                if !fs.iter().any(|f| f.name == name) {
                    continue;
                }
                let t = m.metric_transformations().first();
                let dims: BTreeMap<String, String> = t
                    .and_then(|t| t.dimensions())
                    .map(|d| d.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                out.push(
                    Live::new(ResourceKind::MetricFilter, name, &parent_arn)
                        .prop("log-group", group)
                        .prop("pattern", m.filter_pattern().unwrap_or_default())
                        .prop(
                            "metric",
                            format!(
                                "{}/{}",
                                t.map(|t| t.metric_namespace()).unwrap_or_default(),
                                t.map(|t| t.metric_name()).unwrap_or_default()
                            ),
                        )
                        .prop("value", t.map(|t| t.metric_value()).unwrap_or_default())
                        .prop("default", t.and_then(|t| t.default_value()))
                        .prop("dimensions", dims),
                );
            }
        }
    }
    out.extend(found.into_values());
    Ok(out)
}

fn retention(r: &Resource) -> Option<i32> {
    r.props.get("retention-days").and_then(Value::as_i64).map(|d| d as i32)
}

fn key_arn(r: &Resource, ctx: &Ctx) -> Option<String> {
    r.props.get("kms-key").and_then(Value::as_str).map(|alias| ctx.key_arn(alias))
}

pub(crate) async fn create_group(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), AwsError> {
    c.logs
        .create_log_group()
        .log_group_name(&r.name)
        .set_kms_key_id(key_arn(r, ctx))
        .set_tags(Some(super::tags(&ctx.stack).into_iter().collect()))
        .send()
        .await
        .map_err(|e| classify("logs:CreateLogGroup", &e))?;
    if let Some(days) = retention(r) {
        put_retention(c, &r.name, days).await?;
    }
    Ok(())
}

async fn put_retention(c: &Clients, group: &str, days: i32) -> Result<(), AwsError> {
    c.logs
        .put_retention_policy()
        .log_group_name(group)
        .retention_in_days(days)
        .send()
        .await
        .map_err(|e| classify("logs:PutRetentionPolicy", &e))?;
    Ok(())
}

pub(crate) async fn update_group(c: &Clients, r: &Resource, live: &Live, ctx: &Ctx) -> Result<(), AwsError> {
    if r.props.get("retention-days") != live.props.get("retention-days") {
        match retention(r) {
            Some(days) => put_retention(c, &r.name, days).await?,
            None => {
                c.logs
                    .delete_retention_policy()
                    .log_group_name(&r.name)
                    .send()
                    .await
                    .map_err(|e| classify("logs:DeleteRetentionPolicy", &e))?;
            }
        }
    }
    if super::prop(r, "kms-key") != live.props.get("kms-key").cloned().unwrap_or(Value::Null) {
        match key_arn(r, ctx) {
            Some(k) => c
                .logs
                .associate_kms_key()
                .log_group_name(&r.name)
                .kms_key_id(k)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("logs:AssociateKmsKey", &e))?,
            None => c
                .logs
                .disassociate_kms_key()
                .log_group_name(&r.name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("logs:DisassociateKmsKey", &e))?,
        }
    }
    Ok(())
}

pub(crate) async fn delete_group(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.logs
        .delete_log_group()
        .log_group_name(&live.name)
        .send()
        .await
        .map_err(|e| classify("logs:DeleteLogGroup", &e))?;
    Ok(())
}

/// PutMetricFilter creates or overwrites: create and update are one call.
pub(crate) async fn put_filter(c: &Clients, r: &Resource) -> Result<(), StepError> {
    let metric = str_prop(r, "metric")?;
    let (ns, name) = metric.split_once('/').unwrap_or(("", metric));
    let dims: HashMap<String, String> = r
        .props
        .get("dimensions")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    let t = MetricTransformation::builder()
        .metric_namespace(ns)
        .metric_name(name)
        .metric_value(str_prop(r, "value")?)
        .set_default_value(r.props.get("default").and_then(Value::as_f64))
        .set_dimensions(if dims.is_empty() { None } else { Some(dims) })
        .build()?;
    c.logs
        .put_metric_filter()
        .log_group_name(str_prop(r, "log-group")?)
        .filter_name(&r.name)
        .filter_pattern(str_prop(r, "pattern")?)
        .metric_transformations(t)
        .send()
        .await
        .map_err(|e| classify("logs:PutMetricFilter", &e))?;
    Ok(())
}

pub(crate) async fn delete_filter(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.logs
        .delete_metric_filter()
        .log_group_name(live.props.get("log-group").and_then(Value::as_str).unwrap_or_default())
        .filter_name(&live.name)
        .send()
        .await
        .map_err(|e| classify("logs:DeleteMetricFilter", &e))?;
    Ok(())
}
