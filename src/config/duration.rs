//! Human durations in configuration: `30s`, `5m`, `1h30m`, `2d`.

use std::time::Duration;

/// Parses a duration with units; a bare number is refused because its unit would be a guess.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid duration `{t}`: add a unit, e.g. `{t}s` or `{t}m`"));
    }
    let d =
        humantime::parse_duration(t).map_err(|e| format!("invalid duration `{t}`: {e} (examples: 90s, 5m, 1h30m)"))?;
    if d > MAX {
        return Err(format!("duration `{t}` is longer than the longest allowed, 366d"));
    }
    Ok(d)
}

/// The longest duration any setting takes: longer than any timeout, objective, retention or look-back
/// (RDS keeps 35 days), and small enough that sums of several and clock arithmetic never overflow.
pub(crate) const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// `1 entry`, `3 entries`: a count and its noun, singular or plural (`plural` for the irregular ones).
pub(crate) fn count(n: impl Into<u64>, singular: &str, plural: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// Formats seconds compactly for people: `42.1s`, `3m 05s`, `1h 02m`.
pub(crate) fn human_seconds(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        format!("{}m {:02}s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!("{}h {:02}m", (secs / 3600.0) as u64, ((secs % 3600.0) / 60.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_refuses_bare_numbers() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("30").unwrap_err().contains("add a unit"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("366d").is_ok());
        for huge in ["367d", "99999999999999h", "584542046090y"] {
            assert!(parse_duration(huge).unwrap_err().contains("longest allowed"), "{huge}");
        }
    }
}
