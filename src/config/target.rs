//! Drill targets: how the point in time to restore to is chosen, from a file or from `--target`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::duration::parse_duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetSpec {
    /// The newest recoverable point.
    Latest,
    /// Uniformly random within the recoverable window; the seed is recorded so the choice can be replayed.
    Random {
        seed: Option<u64>,
    },
    At(DateTime<Utc>),
    Ago(Duration),
}

/// Parses an RFC 3339 time; a time without an offset is refused rather than guessed.
pub(crate) fn parse_target_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid time `{text}`: {e} (use RFC 3339 with an offset, e.g. 2026-11-28T03:00:00Z)"))
}

/// Parses `--target`: `latest`, `random`, `random:SEED`, an RFC 3339 time, or `<DURATION> ago`.
pub(crate) fn parse_target_flag(text: &str) -> Result<TargetSpec, String> {
    let t = text.trim();
    match t {
        "latest" => return Ok(TargetSpec::Latest),
        "random" => return Ok(TargetSpec::Random { seed: None }),
        _ => {}
    }
    if let Some(seed) = t.strip_prefix("random:") {
        return seed
            .parse()
            .map(|s| TargetSpec::Random { seed: Some(s) })
            .map_err(|_| format!("invalid seed `{seed}`: a whole number"));
    }
    if let Some(d) = t.strip_suffix(" ago").or_else(|| t.strip_suffix("-ago")) {
        return parse_duration(d).map(TargetSpec::Ago);
    }
    parse_target_time(t).map(TargetSpec::At).map_err(|_| {
        format!("invalid target `{t}`: use latest, random, random:SEED, an RFC 3339 time, or `<DURATION> ago` (e.g. `1h ago`)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_flag_form() {
        assert_eq!(parse_target_flag("latest").unwrap(), TargetSpec::Latest);
        assert_eq!(parse_target_flag("random:7").unwrap(), TargetSpec::Random { seed: Some(7) });
        assert_eq!(parse_target_flag("90m ago").unwrap(), TargetSpec::Ago(Duration::from_secs(5400)));
        assert!(
            matches!(parse_target_flag("2026-11-28T03:00:00+08:00").unwrap(), TargetSpec::At(t) if t.to_rfc3339() == "2026-11-27T19:00:00+00:00")
        );
        assert!(parse_target_flag("2026-11-28 03:00").is_err());
        assert!(parse_target_flag("yesterday").is_err());
    }
}
