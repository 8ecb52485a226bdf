//! Errors of local PostgreSQL management.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    #[error("the PostgreSQL server binaries were not found ({detail})")]
    BinariesMissing { detail: String },
    #[error("OS user `{user}` does not exist; PostgreSQL refuses to run as root, so stackdrill runs it as that user")]
    UserMissing { user: String },
    #[error("OS user `{user}` cannot reach `{path}`: a parent directory is not searchable by it")]
    Unreachable { user: String, path: PathBuf },
    #[error("`{program}` failed ({status}): {stderr}")]
    Command { program: String, status: String, stderr: String },
    #[error("could not run `{program}`: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{context} `{}`: {source}", path.display())]
    Io { context: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

impl PgError {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PgError {
        let path = path.into();
        move |source| PgError::Io { context, path, source }
    }

    /// What to tell a person who hits this error.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            PgError::BinariesMissing { .. } => Some(
                "install the PostgreSQL server (Debian/Ubuntu: `apt-get install postgresql`; Fedora: `dnf install \
                 postgresql-server`; macOS: `brew install postgresql@16`), or point STACKDRILL_PG_BIN at the \
                 directory holding `postgres`, `initdb` and `pg_ctl`"
                    .into(),
            ),
            PgError::UserMissing { user } => Some(format!(
                "create it (`useradd --system --home /var/lib/postgresql {user}`) or set `os-user` in the drill file"
            )),
            PgError::Unreachable { .. } => Some(
                "choose directories the PostgreSQL OS user can reach (e.g. under /tmp or /var/lib), or `chmod o+x` the parents"
                    .into(),
            ),
            _ => None,
        }
    }
}
