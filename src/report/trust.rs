//! Which signing keys `report verify` trusts: the `--key` files and the `--trust-kms-key` keys when any is
//! given (exactly those: they pin the trust), otherwise — for the operator's own store only — the public
//! keys in `<state dir>/keys/trusted/` (one SPKI PEM per file, its name the key's name). An evidence pack is
//! never verified with keys from the pack or the working directory. A report signed by any other key is
//! *unverified*: its signature may be sound, but nothing says whose it is.
//!
//! A trusted file may say its role on a line before the PEM block (`role: reviewer`); openssl and other PEM
//! readers skip such lines. A reviewer's key is what makes a sign-off theirs.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::sign;

/// Whose key it is: an operator's (signs reports) or a reviewer's (signs sign-offs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Role {
    #[default]
    Operator,
    Reviewer,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Reviewer => "reviewer",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TrustedKey {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) key_id: String,
    #[serde(skip)]
    pub(crate) public: Vec<u8>,
    /// Where it came from: a file, or `kms:<key>`.
    pub(crate) from: String,
}

/// The keys a verification trusts. `explicit` when they came from the command line (`--key`,
/// `--trust-kms-key`): then they are the only keys trusted, and the chain must be signed (see
/// [`Trust::requires_signatures`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Trust {
    pub(crate) keys: Vec<TrustedKey>,
    pub(crate) explicit: bool,
}

/// A key's name from its file: `ops.pub` (or `.pem`, `.key`, `.key.pub`) is `ops`.
pub(crate) fn key_name(path: &Path) -> String {
    let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    file.trim_end_matches(".pub").trim_end_matches(".pem").trim_end_matches(".key").to_string()
}

/// `<state dir>/keys/trusted`.
pub(crate) fn trusted_dir() -> PathBuf {
    crate::config::state_dir().join("keys").join("trusted")
}

/// A public key file's text, with the role line when not an operator's.
pub(crate) fn trusted_file_text(public: &[u8], role: Role) -> String {
    let pem = sign::public_pem(public);
    match role {
        Role::Operator => pem,
        Role::Reviewer => format!("role: reviewer\n{pem}"),
    }
}

/// A trusted key that cannot be loaded: never skipped, so a typo cannot drop a key silently.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrustError {
    #[error("cannot read the trusted keys in `{dir}`: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("cannot read `{path}`: {reason}")]
    Read { path: String, reason: String },
    #[error("`{0}` is not an Ed25519 or P-256 public key (SPKI PEM, as `keys generate` writes)")]
    NotAKey(String),
    #[error("`{path}` names the role `{role}`; a key is an `operator` or a `reviewer` key")]
    UnknownRole { path: String, role: String },
}

/// The role the header of key file `path` names.
fn parse_role(text: &str, path: &Path) -> Result<Role, TrustError> {
    let head = text.split("-----BEGIN").next().unwrap_or_default();
    match head.lines().find_map(|l| l.trim().strip_prefix("role:")).map(str::trim) {
        None | Some("operator") => Ok(Role::Operator),
        Some("reviewer") => Ok(Role::Reviewer),
        Some(other) => Err(TrustError::UnknownRole { path: path.display().to_string(), role: other.to_string() }),
    }
}

impl Trust {
    /// The keys in `dir` (`*.pub` and `*.pem`); a missing directory trusts nothing. A file that is not a
    /// public key is an error naming it, never skipped: a typo would otherwise drop a key silently.
    pub(crate) fn load_dir(dir: &Path) -> Result<Trust, TrustError> {
        let mut trust = Trust::default();
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(trust),
            Err(source) => return Err(TrustError::Dir { dir: dir.display().to_string(), source }),
        };
        let mut files: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|d| d.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pub" || e == "pem"))
            .collect();
        files.sort();
        for f in files {
            trust.add_file(&f)?;
        }
        Ok(trust)
    }

    /// Trusts the public key in `path`, named after the file.
    pub(crate) fn add_file(&mut self, path: &Path) -> Result<(), TrustError> {
        // A regular file of bounded size, opened without blocking: a FIFO or a device given as `--key` (or
        // found among the trusted keys) is refused at once instead of hanging the verification.
        let text = crate::userfile::read_text(path, crate::userfile::SECRET_MAX, crate::userfile::Links::Follow)
            .map_err(|e| TrustError::Read { path: path.display().to_string(), reason: crate::userfile::reason(&e) })?;
        let public = sign::parse_public_pem(&text).ok_or_else(|| TrustError::NotAKey(path.display().to_string()))?;
        let role = parse_role(&text, path)?;
        self.add(&key_name(path), role, public, path.display().to_string());
        Ok(())
    }

    pub(crate) fn add(&mut self, name: &str, role: Role, public: Vec<u8>, from: String) {
        let key_id = sign::key_id(&public);
        if self.find(&key_id).is_none() {
            self.keys.push(TrustedKey { name: name.to_string(), role, key_id, public, from });
        }
    }

    pub(crate) fn find(&self, key_id: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Why the chain must be signed, when it must: keys given on the command line, or an operator key
    /// trusted for this store. Then an unsigned entry no signed entry after it vouches for (through the
    /// `previous_sha256` its signature covers) is a broken link: stripping every signature does not turn a
    /// signed store into an unsigned one that verifies.
    pub(crate) fn requires_signatures(&self) -> Option<String> {
        if self.explicit {
            return Some("--key / --trust-kms-key require a signed chain".into());
        }
        self.keys
            .iter()
            .find(|k| k.role == Role::Operator)
            .map(|k| format!("the operator key `{}` is trusted, so the store is signed", k.name))
    }
}

/// What verification found about one entry's signature.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub(crate) enum SigState {
    /// Signed by a trusted key, and the signature holds.
    Verified {
        key: String,
        role: Role,
        fingerprint: String,
    },
    /// The signature holds for the key the document records, but that key is not trusted.
    Unverified {
        fingerprint: String,
    },
    Unsigned,
    /// The entry has a problem (`report verify` names it): its chain link, digest or signature.
    Broken,
}

impl SigState {
    /// As the controls matrix and `report list` show it.
    pub(crate) fn label(&self) -> String {
        match self {
            SigState::Verified { key, fingerprint, .. } => {
                format!("ok `{key}` {}", super::chain::prefix(fingerprint, 18))
            }
            SigState::Unverified { fingerprint } => {
                format!("UNVERIFIED {} (untrusted key)", super::chain::prefix(fingerprint, 18))
            }
            SigState::Unsigned => "unsigned".into(),
            SigState::Broken => "BROKEN".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_files_carry_name_and_role_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let public = [7u8; 32];
        std::fs::write(dir.path().join("ops.pub"), trusted_file_text(&public, Role::Operator)).unwrap();
        std::fs::write(dir.path().join("alice.pub"), trusted_file_text(&[9u8; 32], Role::Reviewer)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a key, not read").unwrap();
        let t = Trust::load_dir(dir.path()).unwrap();
        assert_eq!(t.keys.len(), 2);
        let alice = t.find(&sign::key_id(&[9u8; 32])).unwrap();
        assert_eq!((alice.name.as_str(), alice.role), ("alice", Role::Reviewer));
        assert_eq!(t.find(&sign::key_id(&public)).unwrap().role, Role::Operator);

        std::fs::write(dir.path().join("broken.pub"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
            .unwrap();
        let err = Trust::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("broken.pub") && err.contains("not an Ed25519"), "{err}");
        std::fs::write(dir.path().join("broken.pub"), format!("role: boss\n{}", sign::public_pem(&public))).unwrap();
        let err = Trust::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("`boss`"), "{err}");
        assert!(Trust::load_dir(&dir.path().join("none")).unwrap().is_empty());
    }

    /// A FIFO named as a trusted key is refused at once, not read until a writer comes.
    #[test]
    fn a_fifo_as_a_key_file_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("ops.pub");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = std::time::Instant::now();
        let err = Trust::default().add_file(&fifo).unwrap_err().to_string();
        assert!(err.contains("ops.pub") && err.contains("is a FIFO, not a regular file"), "{err}");
        let err = Trust::load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a FIFO"), "{err}");
        let err = super::super::sign::Signer::configured(super::super::sign::KeySource::File(fifo)).unwrap_err();
        assert!(err.to_string().contains("is a FIFO, not a regular file"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
