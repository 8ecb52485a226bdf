//! Drill metrics in CloudWatch (`metrics: { cloudwatch: {} }`): `DrillSucceeded` (1/0), `RestoreSeconds`
//! and `RecoveryPointLagSeconds` in namespace `Stackdrill`, dimension `Drill`. The stack's drill-freshness
//! alarm watches `DrillSucceeded`. Publishing is best effort: a failing sink is a warning, never a verdict.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::aws::{AwsSettings, classify};
use crate::report::model::{Report, Verdict};

/// The data points for one finished drill.
pub(crate) fn datums(r: &Report) -> Vec<MetricDatum> {
    let dim = Dimension::builder().name("Drill").value(&r.drill).build();
    let at = crate::drill::restore::rds::to_smithy(r.finished_at);
    let mut out = vec![("DrillSucceeded", if r.result == Verdict::Passed { 1.0 } else { 0.0 }, StandardUnit::Count)];
    if let Some(v) = r.measured.rto_seconds {
        out.push(("RestoreSeconds", v, StandardUnit::Seconds));
    }
    if let Some(v) = r.measured.rpo_seconds {
        out.push(("RecoveryPointLagSeconds", v.max(0.0), StandardUnit::Seconds));
    }
    out.into_iter()
        .map(|(name, value, unit)| {
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(dim.clone())
                .value(value)
                .unit(unit)
                .timestamp(at)
                .build()
        })
        .collect()
}

/// Publishes with `config` (an AWS drill's own) or, for a local drill, one loaded from `settings`.
pub(crate) async fn publish(
    settings: &AwsSettings,
    config: Option<&aws_types::SdkConfig>,
    namespace: &str,
    r: &Report,
) -> Result<usize, String> {
    let cw = match config {
        Some(c) => aws_sdk_cloudwatch::Client::new(c),
        None => aws_sdk_cloudwatch::Client::new(&crate::aws::load(settings).await),
    };
    let data = datums(r);
    let n = data.len();
    cw.put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .map_err(|e| classify("cloudwatch:PutMetricData", &e).to_string())?;
    Ok(n)
}
