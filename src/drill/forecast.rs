//! The RTO forecast of `drill plan`: how long the next restore will take, fitted from this drill's past
//! reports (the measured RTO against the restored size), with a prediction interval, against the
//! objective. With fewer than three sized runs of the drill, the observed rate (seconds per byte) of every
//! sized run of the same provider in the store stands in.

use serde::Serialize;

use crate::report::model::Report;

/// The report detail every local restore provider records: the bytes the restore had to bring back.
pub(crate) const RESTORED_BYTES: &str = "restored_bytes";

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Forecast {
    /// Seconds from restore start until the scratch accepts queries (the RTO as reports measure it).
    pub(crate) seconds: f64,
    /// A ~95% prediction interval.
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) objective: f64,
    /// How the figure was made, in words.
    pub(crate) basis: String,
    /// Runs it was fitted on.
    pub(crate) runs: usize,
}

impl Forecast {
    /// The point forecast misses the objective: the drill would fail.
    pub(crate) fn misses(&self) -> bool {
        self.seconds > self.objective
    }

    /// The interval reaches past the objective: not a failure, a warning.
    pub(crate) fn at_risk(&self) -> bool {
        self.high > self.objective
    }
}

/// A run's size and its restore + ready seconds, when the report has both.
fn point(r: &Report) -> Option<(f64, f64)> {
    let bytes: f64 = r.source.details.get(RESTORED_BYTES)?.parse().ok()?;
    let secs = r.measured.rto_seconds?;
    (bytes > 0.0 && secs > 0.0).then_some((bytes, secs))
}

/// The forecast for a restore of `bytes_now` bytes from `history` (this drill's runs) and `same_provider`
/// (every run of a drill with the same provider); `None` with nothing to go on.
pub(crate) fn forecast(
    history: &[&Report],
    same_provider: &[&Report],
    bytes_now: Option<u64>,
    objective_seconds: f64,
) -> Option<Forecast> {
    let own: Vec<(f64, f64)> = history.iter().filter_map(|r| point(r)).collect();
    let x0 = bytes_now.map(|b| b as f64);
    if let (Some(x0), true) = (x0, own.len() >= 3) {
        let (seconds, half) = fit(&own, x0);
        return Some(Forecast {
            seconds,
            low: (seconds - half).max(0.0),
            high: seconds + half,
            objective: objective_seconds,
            basis: format!(
                "linear fit of RTO against restored size over {} runs of this drill, at {}",
                own.len(),
                human_bytes(x0)
            ),
            runs: own.len(),
        });
    }
    // Runs without a size (older reports, AWS providers): the spread of past restore times.
    let timed: Vec<f64> = history.iter().filter_map(|r| r.measured.rto_seconds).collect();
    if timed.len() >= 3 && (x0.is_none() || own.is_empty()) {
        let mut sorted = timed.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        return Some(Forecast {
            seconds: median,
            low: sorted[0],
            high: sorted[sorted.len() - 1],
            objective: objective_seconds,
            basis: format!(
                "median and range of the last {} restore times of this drill (no size recorded)",
                timed.len()
            ),
            runs: timed.len(),
        });
    }
    let x0 = x0?;
    let mut rates: Vec<f64> = same_provider.iter().filter_map(|r| point(r)).map(|(b, s)| s / b).collect();
    if rates.is_empty() {
        return None;
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    Some(Forecast {
        seconds: median * x0,
        low: rates[0] * x0,
        high: rates[rates.len() - 1] * x0,
        objective: objective_seconds,
        basis: format!(
            "the provider's observed rate ({} sized runs of drills like it; fewer than 3 of this drill) at {}",
            rates.len(),
            human_bytes(x0)
        ),
        runs: rates.len(),
    })
}

/// Least squares `y = a + b·x` at `x0`, and the half-width of a ~95% prediction interval there.
fn fit(points: &[(f64, f64)], x0: f64) -> (f64, f64) {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let a = my - b * mx;
    let residual: f64 = points.iter().map(|p| (p.1 - (a + b * p.0)).powi(2)).sum();
    let s = (residual / (n - 2.0).max(1.0)).sqrt();
    let leverage = if sxx > 0.0 { (x0 - mx).powi(2) / sxx } else { 0.0 };
    // t(0.975) for n − 2 degrees of freedom, roughly: 4.3 at 2, 2.8 at 4, 2.2 at 10, 2.0 beyond.
    let t = match points.len() {
        0..=3 => 12.7,
        4 => 4.3,
        5 => 3.2,
        6 => 2.8,
        7..=12 => 2.4,
        _ => 2.0,
    };
    ((a + b * x0).max(0.0), t * s * (1.0 + 1.0 / n + leverage).sqrt())
}

pub(crate) fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut v, mut u) = (b, 0);
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: u64, seconds: f64) -> Report {
        let mut r: Report = serde_json::from_str(include_str!("../../tests/golden/report-v1.json")).unwrap();
        r.source.details.insert(RESTORED_BYTES.into(), bytes.to_string());
        r.measured.rto_seconds = Some(seconds);
        r
    }

    #[test]
    fn a_growing_database_crosses_its_objective() {
        const GIB: u64 = 1 << 30;
        // 100 s per GiB plus 60 s of start-up, with a little noise: 10..40 GiB so far, 80 GiB now.
        let runs: Vec<Report> = [(10, 1065.0), (15, 1555.0), (20, 2070.0), (25, 2555.0), (30, 3064.0), (40, 4058.0)]
            .iter()
            .map(|(g, s)| run(g * GIB, *s))
            .collect();
        let history: Vec<&Report> = runs.iter().collect();
        let f = forecast(&history, &[], Some(80 * GIB), 3600.0).unwrap();
        assert!((8000.0..8200.0).contains(&f.seconds), "{f:?}");
        assert!(f.low < f.seconds && f.seconds < f.high && f.high - f.low < 400.0, "{f:?}");
        assert!(f.misses() && f.basis.contains("6 runs"), "{f:?}");
        // At today's size it fits.
        let f = forecast(&history, &[], Some(20 * GIB), 3600.0).unwrap();
        assert!(!f.misses() && !f.at_risk(), "{f:?}");
    }

    #[test]
    fn with_few_runs_the_providers_rate_stands_in_and_with_none_there_is_no_forecast() {
        const GIB: u64 = 1 << 30;
        let mine = [run(10 * GIB, 1000.0)];
        let others = [run(20 * GIB, 2000.0), run(5 * GIB, 600.0), run(10 * GIB, 1000.0)];
        let f = forecast(&mine.iter().collect::<Vec<_>>(), &others.iter().collect::<Vec<_>>(), Some(30 * GIB), 3500.0)
            .unwrap();
        // Rates 100, 100 and 120 s/GiB: 3000 s at the median, up to 3600 s at the slowest.
        assert!((2990.0..3010.0).contains(&f.seconds) && f.basis.contains("provider's observed rate"), "{f:?}");
        assert!(f.high > 3500.0 && f.at_risk() && !f.misses(), "{f:?}");
        assert!(forecast(&[], &[], Some(GIB), 60.0).is_none());
        assert!(forecast(&[], &others.iter().collect::<Vec<_>>(), None, 60.0).is_none());
    }
}
