//! What every configuration file kind shares: reading the file, strict deserialisation with the key path
//! and place of the first error, the depth guard, collecting every problem, and duration fields.

use std::path::Path;
use std::time::Duration;

use super::duration::parse_duration;
use super::error::{ConfigError, Problems, from_serde};
use super::locate::Locations;

/// A configuration file's text, or the error that names it.
pub(super) fn read_file(path: &Path) -> Result<String, Vec<ConfigError>> {
    // A FIFO or a device named as a drill file is refused at once, and no configuration file is that large.
    crate::userfile::read_text(path, 256 * 1024 * 1024, crate::userfile::Links::Follow).map_err(|e| {
        vec![ConfigError {
            file: path.to_path_buf(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read the file: {}", crate::userfile::reason(&e)),
            hint: None,
        }]
    })
}

/// Deserialises `text` strictly into `R`, then resolves it, collecting every problem (sorted by place).
pub(super) fn parse_with<R: serde::de::DeserializeOwned, T>(
    text: &str,
    path: &Path,
    resolve: impl FnOnce(R, &Path, &mut Problems<'_>) -> T,
) -> Result<T, Vec<ConfigError>> {
    // Before any recursive parser sees it: thousands of nested levels would exhaust the stack.
    if let Some((line, column)) = super::locate::too_deep(text) {
        return Err(vec![ConfigError {
            file: path.to_path_buf(),
            line: Some(line),
            column: Some(column),
            key: String::new(),
            message: format!(
                "nested more than {} levels deep; no stackdrill file needs that",
                super::locate::MAX_DEPTH
            ),
            hint: None,
        }]);
    }
    let locations = Locations::index(text);
    let raw: R = deserialize(text).map_err(|e| vec![from_serde(path, &locations, e)])?;
    let mut problems = Problems::new(path, &locations);
    let spec = resolve(raw, path, &mut problems);
    if problems.errors.is_empty() {
        return Ok(spec);
    }
    let mut errors = problems.errors;
    errors.sort_by_key(|e| (e.line, e.column));
    Err(errors)
}

/// Strict deserialisation with the key path of the first error. Providers and checks are written as
/// single-key maps (`restore: { local-postgres: {..} }`), which serde_norway takes via `singleton_map_recursive`.
fn deserialize<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, serde_path_to_error::Error<serde_norway::Error>> {
    let mut track = serde_path_to_error::Track::new();
    let de = serde_norway::Deserializer::from_str(text);
    let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
    serde_norway::with::singleton_map_recursive::deserialize(tracked)
        .map_err(|e| serde_path_to_error::Error::new(track.path(), e))
}

/// A duration that must be longer than zero; `fallback` stands in after a problem.
pub(super) fn duration(p: &mut Problems<'_>, key: &str, text: &str, fallback: Duration) -> Duration {
    match parse_duration(text) {
        Ok(d) if d.is_zero() => {
            p.push(key, "must be longer than zero");
            fallback
        }
        Ok(d) => d,
        Err(e) => {
            p.push(key, e);
            fallback
        }
    }
}

/// A duration that may be zero (margins, lags).
pub(super) fn duration_or_zero(p: &mut Problems<'_>, key: &str, text: &str) -> Duration {
    if text.trim() == "0" {
        return Duration::ZERO;
    }
    parse_duration(text).unwrap_or_else(|e| {
        p.push(key, e);
        Duration::ZERO
    })
}
