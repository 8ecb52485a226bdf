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
    let (raw, mut errors, removed) = deserialize_all::<R>(text, path, &locations);
    let Some(raw) = raw else { return Err(errors) };
    let mut problems = Problems::new(path, &locations);
    let spec = resolve(raw, path, &mut problems);
    if problems.errors.is_empty() && errors.is_empty() {
        return Ok(spec);
    }
    // After keys serde refused were taken out, the rest is checked too; what only follows from their
    // absence (a problem at or under the place of one) is left out.
    errors.extend(problems.errors.into_iter().filter(|p| {
        !removed.iter().any(|r| {
            let (parent, _) = split_last(r);
            p.key.starts_with(r.as_str()) || (!parent.is_empty() && p.key == parent)
        })
    }));
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

/// [`deserialize`], naming every key serde refuses, not only the first: after each error the offending key is
/// taken out of the document and it is read again (at most 50 times). What only follows from taking a key out
/// (its parent now lacks it, or is empty) is not reported.
/// Returns the document read (when what is left of it reads), the errors, and the keys taken out.
fn deserialize_all<R: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    locations: &Locations,
) -> (Option<R>, Vec<ConfigError>, Vec<String>) {
    let first = match deserialize(text) {
        Ok(r) => return (Some(r), vec![], vec![]),
        Err(e) => e,
    };
    let mut key = first.path().to_string();
    let mut errors = vec![from_serde(path, locations, first)];
    let mut removed: Vec<String> = Vec::new();
    let Ok(mut doc) = serde_norway::from_str::<serde_norway::Value>(text) else { return (None, errors, removed) };
    for _ in 0..50 {
        if !remove_at(&mut doc, &key) {
            break;
        }
        removed.push(key);
        let e = match deserialize_value::<R>(doc.clone()) {
            Ok(r) => return (Some(r), errors, removed),
            Err(e) => e,
        };
        key = e.path().to_string();
        let err = from_serde(path, locations, e);
        let consequence = removed.iter().any(|r| {
            let (parent, last) = split_last(r);
            parent == err.key
                && (err.message == format!("missing field `{last}`") || !err.message.starts_with("missing field"))
        });
        if consequence || errors.iter().any(|x| x.key == err.key && x.message == err.message) {
            break;
        }
        errors.push(err);
    }
    (None, errors, removed)
}

/// [`deserialize`] of a document already parsed.
fn deserialize_value<T: serde::de::DeserializeOwned>(
    doc: serde_norway::Value,
) -> Result<T, serde_path_to_error::Error<serde_norway::Error>> {
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(doc, &mut track);
    serde_norway::with::singleton_map_recursive::deserialize(tracked)
        .map_err(|e| serde_path_to_error::Error::new(track.path(), e))
}

/// `a.b[2].c` as (`a.b[2]`, `c`); a key path that ends in an index has no last key (`""`).
fn split_last(key: &str) -> (&str, &str) {
    match key.rfind('.') {
        Some(i) => (&key[..i], &key[i + 1..]),
        None if key.ends_with(']') => (key, ""),
        None => ("", key),
    }
}

/// Takes the mapping key at `key` (`verify[0].sql.expect`) out of `doc`; false when there is none (the root,
/// or a path that ends in a list index, whose removal would renumber the rest).
fn remove_at(doc: &mut serde_norway::Value, key: &str) -> bool {
    use serde_norway::Value;
    if key.is_empty() || key == "." || key.ends_with(']') {
        return false;
    }
    let segments: Vec<&str> = key.split('.').collect();
    let mut at = doc;
    for (i, seg) in segments.iter().enumerate() {
        let (name, indexes) = match seg.find('[') {
            Some(b) => (&seg[..b], &seg[b..]),
            None => (*seg, ""),
        };
        let last = i + 1 == segments.len();
        if last {
            return match at {
                Value::Mapping(m) => m.remove(name).is_some(),
                _ => false,
            };
        }
        let Some(next) = (match at {
            Value::Mapping(m) => m.get_mut(name),
            _ => None,
        }) else {
            return false;
        };
        at = next;
        for ix in indexes.split(']').filter(|s| !s.is_empty()) {
            let Ok(n) = ix.trim_start_matches('[').parse::<usize>() else { return false };
            let Some(next) = (match at {
                Value::Sequence(s) => s.get_mut(n),
                _ => None,
            }) else {
                return false;
            };
            at = next;
        }
    }
    false
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

#[cfg(test)]
mod tests {
    /// An unknown key, a value of the wrong type and a bad duration in one file: all three are named, not
    /// only the first serde meets.
    #[test]
    fn every_problem_of_a_file_is_named_not_only_the_first() {
        let text = "restore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                    objectivs: { rto: 1m }\nobjectives: { rto: 1m, rpo: soon }\n\
                    verify:\n  - sql: { name: a, query: select 1, expect: { rows: many } }\n";
        let lines = super::super::drill::problem_lines(text);
        for want in [
            "3:1 objectivs: unknown field `objectivs`",
            "6:54 verify[0].sql.expect.rows: invalid type",
            "4:29 objectives.rpo: invalid duration `soon`",
        ] {
            assert!(lines.iter().any(|l| l.starts_with(want)), "`{want}` in {lines:#?}");
        }
    }

    /// A key taken out to read on is not then reported missing; an unknown check kind is one problem.
    #[test]
    fn what_follows_from_taking_a_key_out_is_not_reported() {
        let text = "restore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                    objectives: { rto: 1m, rpo: 1m }\nverify:\n  - chekcsum: { table: t }\n";
        let lines = super::super::drill::problem_lines(text);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        let text = "restore:\n  local-postgres: { base-backups: b, wal-archive: w, scratch-root: s }\n\
                    objectives: { rto: 1m, rpo: 7 }\n";
        let lines = super::super::drill::problem_lines(text);
        assert_eq!(lines.len(), 1, "a bad rpo is not also a missing one: {lines:#?}");
    }
}
