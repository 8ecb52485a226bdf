//! Settings resolved once, before a command runs: flags (clap, several with an environment variable:
//! `--reports`/STACKDRILL_REPORTS, `--endpoint-url`/AWS_ENDPOINT_URL, `--log-format`/STACKDRILL_LOG_FORMAT,
//! ...), then the environment variables no flag carries, then defaults. Engine modules read no environment
//! variable: what they need arrives from here. (Three reads stay where they are by design: a drill's
//! `password-env` names the variable its source password is in; `PATH`, which `pg/` searches for the server
//! binaries and hands to the processes it starts; and the crash points tests arm, `crash.rs`.)

use std::path::{Path, PathBuf};

use crate::report::sign::{KEY_ENV, KEY_FILE_ENV, KeySource, default_key_path};

/// The process-wide places the engine uses, from the environment: the state directory
/// (`STACKDRILL_STATE_DIR`) and the one directory to take the PostgreSQL server binaries from
/// (`STACKDRILL_PG_BIN`). Called once at start (and by tests that need the same places).
pub(crate) fn init_process() {
    if let Some(dir) = std::env::var_os("STACKDRILL_STATE_DIR").filter(|d| !d.is_empty()) {
        crate::config::set_state_dir(dir.into());
    }
    if let Some(dir) = std::env::var_os("STACKDRILL_PG_BIN").filter(|d| !d.is_empty()) {
        crate::pg::set_bin_dir(dir.into());
    }
}

/// Where reports go: `--reports` (which clap fills from STACKDRILL_REPORTS too), else `reports/` in the
/// project (found upward from the working directory, see `config::project_dir`).
pub(crate) fn reports(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf).unwrap_or_else(|| crate::config::project_dir().join("reports"))
}

/// The local signing key: `--signing-key`, else the PEM text in STACKDRILL_SIGNING_KEY, else the file in
/// STACKDRILL_SIGNING_KEY_FILE, else the default key file when it exists, else none.
pub(crate) fn signing_key(flag: Option<&Path>) -> KeySource {
    if let Some(f) = flag {
        return KeySource::File(f.to_path_buf());
    }
    if let Ok(text) = std::env::var(KEY_ENV) {
        return KeySource::Pem(text);
    }
    if let Some(f) = std::env::var_os(KEY_FILE_ENV).filter(|f| !f.is_empty()) {
        return KeySource::File(f.into());
    }
    let default = default_key_path();
    if default.is_file() { KeySource::File(default) } else { KeySource::None }
}
