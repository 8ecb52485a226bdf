//! Choosing the point in time to restore to, inside the recoverable window.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::{Rng, SeedableRng};

use super::error::{DrillError, fmt_time};
use crate::config::TargetSpec;

/// The span a provider can restore to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) earliest: DateTime<Utc>,
    pub(crate) latest: DateTime<Utc>,
}

/// How recovery is told where to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Stop at this time (`recovery_target_time`, RestoreTime).
    Time(DateTime<Utc>),
    /// Replay everything recoverable (`latest` without a canary).
    End,
}

#[derive(Debug, Clone)]
pub(crate) struct ResolvedTarget {
    /// The point in time the restore stands for; RPO is measured against it.
    pub(crate) time: DateTime<Utc>,
    pub(crate) recovery: Recovery,
    /// How the time was chosen, for the report.
    pub(crate) selection: String,
    pub(crate) seed: Option<u64>,
}

/// Resolves `spec` against `window`. `canary_time` is the bracketed time written by the canary, if any.
pub(crate) fn select(
    spec: &TargetSpec,
    window: &Window,
    now: DateTime<Utc>,
    canary_time: Option<DateTime<Utc>>,
) -> Result<ResolvedTarget, DrillError> {
    let resolved = match spec {
        TargetSpec::Latest => {
            return Ok(match canary_time {
                Some(t) => ResolvedTarget {
                    time: t,
                    recovery: Recovery::Time(t),
                    selection: "latest: the moment between the two canary writes".into(),
                    seed: None,
                },
                None => ResolvedTarget {
                    time: now,
                    recovery: Recovery::End,
                    selection: "latest: replay all archived WAL; the target is the time the drill was planned".into(),
                    seed: None,
                },
            });
        }
        TargetSpec::At(t) => ResolvedTarget {
            time: *t,
            recovery: Recovery::Time(*t),
            selection: format!("at {}", fmt_time(t)),
            seed: None,
        },
        TargetSpec::Ago(d) => {
            let t = now - ChronoDuration::from_std(*d).unwrap_or(ChronoDuration::zero());
            ResolvedTarget {
                time: t,
                recovery: Recovery::Time(t),
                selection: format!("{} ago at planning time", humantime::format_duration(*d)),
                seed: None,
            }
        }
        TargetSpec::Random { seed } => {
            let seed = seed.unwrap_or_else(|| rand::thread_rng().r#gen());
            let span = (window.latest - window.earliest).num_milliseconds().max(0);
            let offset = rand::rngs::StdRng::seed_from_u64(seed).gen_range(0..=span);
            let t = window.earliest + ChronoDuration::milliseconds(offset);
            ResolvedTarget {
                time: t,
                recovery: Recovery::Time(t),
                selection: format!("random within the window, seed {seed}"),
                seed: Some(seed),
            }
        }
    };
    if resolved.time < window.earliest || resolved.time > window.latest {
        return Err(DrillError::TargetOutsideWindow {
            target: fmt_time(&resolved.time),
            earliest: window.earliest,
            latest: window.latest,
        });
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        let e = DateTime::parse_from_rfc3339("2026-11-28T00:00:00Z").unwrap().to_utc();
        Window { earliest: e, latest: e + ChronoDuration::hours(10) }
    }

    #[test]
    fn random_is_reproducible_from_its_seed() {
        let w = window();
        let a = select(&TargetSpec::Random { seed: Some(42) }, &w, w.latest, None).unwrap();
        let b = select(&TargetSpec::Random { seed: Some(42) }, &w, w.latest, None).unwrap();
        assert_eq!(a.time, b.time);
        assert_eq!(a.seed, Some(42));
        assert!(a.time >= w.earliest && a.time <= w.latest);
    }

    #[test]
    fn outside_the_window_is_refused_with_the_window() {
        let w = window();
        let t = w.latest + ChronoDuration::hours(1);
        let err = select(&TargetSpec::At(t), &w, w.latest, None).unwrap_err().to_string();
        assert!(err.contains("2026-11-28T00:00:00.000Z .. 2026-11-28T10:00:00.000Z"), "{err}");
    }

    #[test]
    fn latest_uses_the_canary_time_when_there_is_one() {
        let w = window();
        let t = w.latest - ChronoDuration::minutes(1);
        let r = select(&TargetSpec::Latest, &w, w.latest, Some(t)).unwrap();
        assert_eq!(r.recovery, Recovery::Time(t));
        let r = select(&TargetSpec::Latest, &w, w.latest, None).unwrap();
        assert_eq!(r.recovery, Recovery::End);
    }
}
