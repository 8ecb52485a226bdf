//! Configuration errors that name the file, line, column and key path, with a hint where one helps.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::Locations;

/// One problem in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    pub(crate) file: PathBuf,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    /// Dotted key path, e.g. `objectives.rto`; empty for the document itself.
    pub(crate) key: String,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, " {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems found after parsing, placing each with the document's locations.
pub(crate) struct Problems<'a> {
    file: &'a Path,
    locations: &'a Locations,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(file: &'a Path, locations: &'a Locations) -> Self {
        Self { file, locations, errors: Vec::new() }
    }

    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let pos = self.locations.find(&key);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            key,
            message: message.into(),
            hint: None,
        });
    }
}

/// Turns a serde error into a located [`ConfigError`], adding "did you mean" to unknown keys.
pub(crate) fn from_serde(
    file: &Path,
    locations: &Locations,
    err: serde_path_to_error::Error<serde_norway::Error>,
) -> ConfigError {
    let key = err.path().to_string();
    let key = if key == "." { String::new() } else { key };
    let inner = err.into_inner();
    let (line, column) = match inner.location() {
        Some(l) => (Some(l.line()), Some(l.column())),
        None => match locations.find(&key) {
            Some((l, c)) => (Some(l), Some(c)),
            None => (None, None),
        },
    };
    let mut message = inner.to_string();
    // serde_norway appends " at line L column C"; the location is printed in front instead.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    // serde_norway repeats the path in front of the message; the key is printed separately.
    if let Some((prefix, rest)) = message.split_once(": ")
        && !prefix.is_empty()
        && !prefix.contains(' ')
        && key.starts_with(prefix)
    {
        message = rest.to_string();
    }
    let message = plain_types(&message);
    let hint = did_you_mean(&message);
    ConfigError { file: file.to_path_buf(), line, column, key, message, hint }
}

/// Replaces the names of internal types in serde messages with what the file should hold.
fn plain_types(message: &str) -> String {
    let mut out = message
        .replace("enum RawRestore", "a provider block, e.g. `local-postgres: { ... }`")
        .replace("enum RawCheck", "a check block, e.g. `canary: {}` or `sql: { ... }`");
    while let Some(start) = out.find("struct Raw") {
        let end = out[start + 7..].find(|c: char| !c.is_alphanumeric()).map_or(out.len(), |e| start + 7 + e);
        out.replace_range(start..end, "a mapping");
    }
    out
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" messages, the closest expected name.
fn did_you_mean(message: &str) -> Option<String> {
    if message.starts_with("unknown variant `aws-s3-bucket`") {
        return Some(
            "a bucket is restored beside a database: put `aws-s3-bucket` under `also-restore:`, next to `restore:`"
                .into(),
        );
    }
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("unknown variant `"))?;
    let (given, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (strsim::jaro_winkler(given, cand), cand))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, cand)| format!("did you mean `{cand}`?"))
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("unknown field `objectivs`, expected one of `name`, `objectives`, `verify`"),
            Some("did you mean `objectives`?".into())
        );
        assert_eq!(did_you_mean("unknown field `zzz`, expected `name` or `verify`"), None);
    }
}
