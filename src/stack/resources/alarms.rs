//! CloudWatch metric alarms: a single metric, an anomaly-detection band, or metric math. PutMetricAlarm
//! creates or overwrites, so create and update are one call.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat, Tag};
use serde_json::{Value, json};

use super::{Ctx, StepError, str_prop};
use crate::aws::{AwsError, classify};
use crate::stack::live::{Clients, Live};
use crate::stack::model::{Resource, ResourceKind};

/// DescribeAlarms by name, 100 names a call.
pub(crate) async fn read(c: &Clients, want: &[&Resource]) -> Result<Vec<Live>, AwsError> {
    let mut out = Vec::new();
    for chunk in want.chunks(100) {
        let mut pages =
            c.cw.describe_alarms()
                .set_alarm_names(Some(chunk.iter().map(|r| r.name.clone()).collect()))
                .max_records(100)
                .into_paginator()
                .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("cloudwatch:DescribeAlarms", &e))?;
            out.extend(page.metric_alarms().iter().map(live));
        }
    }
    Ok(out)
}

fn metric_json(namespace: &str, name: &str, stat: &str, period: i32, dims: &[Dimension]) -> Value {
    let dims: BTreeMap<&str, &str> =
        dims.iter().map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default())).collect();
    json!({ "namespace": namespace, "name": name, "statistic": stat, "period": period as u64, "dimensions": dims })
}

fn stat_json(s: &MetricStat) -> Value {
    let m = s.metric();
    metric_json(
        m.and_then(|m| m.namespace()).unwrap_or_default(),
        m.and_then(|m| m.metric_name()).unwrap_or_default(),
        s.stat().unwrap_or_default(),
        s.period().unwrap_or_default(),
        m.map(|m| m.dimensions()).unwrap_or_default(),
    )
}

/// The alarm in the shape [`crate::stack::model::desired`] gives it.
fn live(a: &MetricAlarm) -> Live {
    let watches = if let Some(name) = a.metric_name() {
        json!({ "metric": metric_json(
            a.namespace().unwrap_or_default(), name,
            a.statistic().map(|s| s.as_str()).unwrap_or_default(), a.period().unwrap_or_default(), a.dimensions()) })
    } else if let Some(band) = a.threshold_metric_id() {
        let expr = a.metrics().iter().find(|q| q.id() == Some(band)).and_then(|q| q.expression()).unwrap_or_default();
        let width: f64 = expr
            .rsplit(',')
            .next()
            .map(|w| w.trim().trim_end_matches(')').trim())
            .and_then(|w| w.parse().ok())
            .unwrap_or(f64::NAN);
        let metric = a.metrics().iter().find_map(|q| q.metric_stat()).map(stat_json).unwrap_or(Value::Null);
        json!({ "anomaly-band": { "metric": metric, "width": width } })
    } else {
        let expression = a
            .metrics()
            .iter()
            .find(|q| q.return_data() == Some(true) && q.expression().is_some())
            .and_then(|q| q.expression());
        let metrics: BTreeMap<&str, Value> = a
            .metrics()
            .iter()
            .filter_map(|q| Some((q.id().unwrap_or_default(), stat_json(q.metric_stat()?))))
            .collect();
        json!({ "expression": expression, "metrics": metrics })
    };
    let actions: Vec<&str> = a.alarm_actions().iter().map(|arn| arn.rsplit(':').next().unwrap_or(arn)).collect();
    Live::new(ResourceKind::Alarm, a.alarm_name().unwrap_or_default(), a.alarm_arn().unwrap_or_default())
        .prop("description", a.alarm_description())
        .prop("watches", watches)
        .prop("threshold", a.threshold())
        .prop("comparison", a.comparison_operator().map(|c| c.as_str()))
        .prop(
            "evaluation",
            format!(
                "{} of {}",
                a.datapoints_to_alarm().or(a.evaluation_periods()).unwrap_or(0),
                a.evaluation_periods().unwrap_or(0)
            ),
        )
        .prop("missing-data", a.treat_missing_data())
        .prop("actions", actions)
}

fn dims(v: &Value) -> Vec<Dimension> {
    v.get("dimensions")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter().map(|(k, v)| Dimension::builder().name(k).value(v.as_str().unwrap_or_default()).build()).collect()
        })
        .unwrap_or_default()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn stat(id: &str, m: &Value, return_data: bool) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(s(m, "namespace"))
                        .metric_name(s(m, "name"))
                        .set_dimensions(Some(dims(m)))
                        .build(),
                )
                .period(m.get("period").and_then(Value::as_i64).unwrap_or(60) as i32)
                .stat(s(m, "statistic"))
                .build(),
        )
        .return_data(return_data)
        .build()
}

/// Creates or overwrites the alarm; the SNS topic ARN comes from the names resolved so far.
pub(crate) async fn put(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    let eval = str_prop(r, "evaluation")?;
    let (datapoints, periods) = eval.split_once(" of ").unwrap_or(("1", "1"));
    let actions: Vec<String> = {
        let ids = ctx.ids();
        r.props
            .get("actions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|t| ids.topic_arn.get(t).cloned().unwrap_or_else(|| t.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut req =
        c.cw.put_metric_alarm()
            .alarm_name(&r.name)
            .set_alarm_description(r.props.get("description").and_then(Value::as_str).map(str::to_string))
            .comparison_operator(ComparisonOperator::from(str_prop(r, "comparison")?))
            .evaluation_periods(periods.parse().unwrap_or(1))
            .datapoints_to_alarm(datapoints.parse().unwrap_or(1))
            .treat_missing_data(str_prop(r, "missing-data")?)
            .set_threshold(r.props.get("threshold").and_then(Value::as_f64))
            .set_alarm_actions(Some(actions.clone()))
            .set_ok_actions(Some(actions))
            .actions_enabled(true)
            .set_tags(Some(
                super::tags(&ctx.stack).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect(),
            ));
    let w = r.props.get("watches").cloned().unwrap_or(Value::Null);
    if let Some(m) = w.get("metric") {
        req = req
            .namespace(s(m, "namespace"))
            .metric_name(s(m, "name"))
            .statistic(aws_sdk_cloudwatch::types::Statistic::from(s(m, "statistic")))
            .period(m.get("period").and_then(Value::as_i64).unwrap_or(60) as i32)
            .set_dimensions(Some(dims(m)));
    } else if let Some(b) = w.get("anomaly-band") {
        let width = b.get("width").and_then(Value::as_f64).unwrap_or(2.0);
        req = req
            .metrics(stat("m1", &b["metric"], true))
            .metrics(
                MetricDataQuery::builder()
                    .id("band")
                    .expression(format!("ANOMALY_DETECTION_BAND(m1, {width})"))
                    .return_data(true)
                    .build(),
            )
            .threshold_metric_id("band");
    } else {
        if let Some(ms) = w.get("metrics").and_then(Value::as_object) {
            for (id, m) in ms {
                req = req.metrics(stat(id, m, false));
            }
        }
        req = req
            .metrics(MetricDataQuery::builder().id("expr").expression(s(&w, "expression")).return_data(true).build());
    }
    req.send().await.map_err(|e| classify("cloudwatch:PutMetricAlarm", &e))?;
    Ok(())
}

pub(crate) async fn delete(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.cw.delete_alarms().alarm_names(&live.name).send().await.map_err(|e| classify("cloudwatch:DeleteAlarms", &e))?;
    Ok(())
}
