//! Backup posture in CloudWatch, beside the drill metrics (`backups check --cloudwatch-namespace NS`):
//! per store `BackupPostureMet` (1/0), `BackupAgeSeconds` and `PitrLagSeconds`, dimension `Store`.
//! Publishing is best effort: a failing sink is a warning, never the check's outcome.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::aws::{AwsSettings, classify};
use crate::report::posture::{Outcome, Record};

/// The data points of one record.
pub(crate) fn datums(r: &Record) -> Vec<MetricDatum> {
    let at = aws_smithy_types::DateTime::from_millis(r.checked_at.timestamp_millis());
    let mut out = Vec::new();
    for s in &r.stores {
        let dim = Dimension::builder().name("Store").value(&s.name).build();
        let figure = |n: &str| s.figures.iter().find(|f| f.name == n).and_then(|f| f.number);
        let mut points = vec![("BackupPostureMet", f64::from(u8::from(s.result == Outcome::Met)), StandardUnit::Count)];
        if let Some(v) = figure("backup-age") {
            points.push(("BackupAgeSeconds", v, StandardUnit::Seconds));
        }
        if let Some(v) = figure("pitr-lag") {
            points.push(("PitrLagSeconds", v.max(0.0), StandardUnit::Seconds));
        }
        out.extend(points.into_iter().map(|(name, value, unit)| {
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(dim.clone())
                .value(value)
                .unit(unit)
                .timestamp(at)
                .build()
        }));
    }
    out
}

/// Publishes `r`'s data points into `namespace`; returns how many.
pub(crate) async fn publish(settings: &AwsSettings, namespace: &str, r: &Record) -> Result<usize, String> {
    let cw = aws_sdk_cloudwatch::Client::new(&crate::aws::load(settings).await);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::posture::{Figure, Status, StorePosture};

    #[test]
    fn each_store_is_met_age_and_lag_by_its_name() {
        let f = |name: &str, n: f64, status: Status| Figure {
            name: name.into(),
            value: String::new(),
            number: Some(n),
            objective: None,
            status,
            detail: None,
        };
        let figures = vec![f("backup-age", 3600.0, Status::Met), f("pitr-lag", 1200.0, Status::NotMet)];
        let s = StorePosture { name: "app-db".into(), kind: "supabase".into(), result: Outcome::of(&figures), figures };
        let d = datums(&Record::new(vec![s], chrono::Utc::now()));
        let got: Vec<(&str, f64, &str)> = d
            .iter()
            .map(|m| (m.metric_name().unwrap(), m.value().unwrap(), m.dimensions()[0].value().unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("BackupPostureMet", 0.0, "app-db"),
                ("BackupAgeSeconds", 3600.0, "app-db"),
                ("PitrLagSeconds", 1200.0, "app-db")
            ]
        );
    }
}
