//! Drill metrics in CloudWatch (`metrics: { cloudwatch: {} }`): `DrillSucceeded` (1/0), `RestoreSeconds`
//! and `RecoveryPointLagSeconds` in namespace `Stackdrill`, dimension `Drill`. The stack's drill-freshness
//! alarm watches `DrillSucceeded`. Publishing is best effort: a failing sink is a warning, never a verdict.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::aws::{AwsSettings, classify};
use crate::report::model::{Report, Verdict};

/// The data points for one finished drill.
pub(crate) fn datums(r: &Report) -> Vec<MetricDatum> {
    let dim = Dimension::builder().name("Drill").value(&r.drill).build();
    let at = crate::drill::restore::aws_scratch::to_smithy(r.finished_at);
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

/// Publishes `r`'s data points with a config loaded from `settings`.
async fn publish(settings: &AwsSettings, namespace: &str, r: &Report) -> Result<usize, crate::aws::AwsError> {
    let cw = aws_sdk_cloudwatch::Client::new(&crate::aws::load(settings).await);
    let data = datums(r);
    let n = data.len();
    cw.put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .map_err(|e| classify("cloudwatch:PutMetricData", &e))?;
    Ok(n)
}

/// Publishes each report's metrics when its drill asks (`metrics: { cloudwatch: ... }`), in the drill's
/// region; a failure is a warning, never a verdict.
pub(crate) struct CloudWatch {
    pub(crate) aws: AwsSettings,
}

impl super::fleet::Reporter for CloudWatch {
    fn finished<'a>(&'a self, f: &'a super::fleet::Finished) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let (super::fleet::Ended::Ran { report, .. }, Some(ns)) =
                (&f.ended, f.spec.metrics.cloudwatch_namespace.as_deref())
            else {
                return;
            };
            let mut settings = self.aws.clone();
            if let Some(region) = f.spec.restore.aws_scratch().and_then(|s| s.region.clone()) {
                settings.region = Some(region);
            }
            match publish(&settings, ns, report).await {
                Ok(n) => tracing::info!(drill = %f.drill(), namespace = %ns, metrics = n, "published drill metrics"),
                Err(e) => {
                    tracing::warn!(drill = %f.drill(), namespace = %ns, error = %e, "could not publish drill metrics (the drill result stands)")
                }
            }
        })
    }
}
