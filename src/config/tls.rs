//! `sslmode` and `ca-bundle`, as libpq spells them, for every connection a drill makes (the source and
//! the scratch): one parser, so both read the same way.

use std::path::PathBuf;

use super::error::Problems;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsSpec {
    /// Encrypted, certificate not checked (libpq's `sslmode=require`): a password goes only through SCRAM
    /// with channel binding (the server proves it holds the verifier, on this very TLS channel), never in
    /// cleartext or MD5.
    Require,
    /// Encrypted, certificate chain checked against this CA bundle; the host name is not checked.
    VerifyCa(PathBuf),
    /// Encrypted, certificate chain checked against this CA bundle and the host name checked.
    VerifyFull(PathBuf),
    /// Encrypted, certificate chain checked against the system's trust store and the host name checked:
    /// what a source gets when neither `sslmode` nor `ca-bundle` is written.
    VerifyFullSystem,
    /// Plain TCP: only when written out (and, for a scratch, only through a tunnel that encrypts).
    Disable,
}

impl TlsSpec {
    /// The libpq name of the mode.
    pub(crate) fn sslmode(&self) -> &'static str {
        match self {
            TlsSpec::Require => "require",
            TlsSpec::VerifyCa(_) => "verify-ca",
            TlsSpec::VerifyFull(_) | TlsSpec::VerifyFullSystem => "verify-full",
            TlsSpec::Disable => "disable",
        }
    }

    /// Whether the server proves who it is (its certificate chains to the bundle).
    pub(crate) fn verifies_identity(&self) -> bool {
        matches!(self, TlsSpec::VerifyCa(_) | TlsSpec::VerifyFull(_) | TlsSpec::VerifyFullSystem)
    }

    /// Whether the host name in the server's certificate is checked too.
    pub(crate) fn verifies_host(&self) -> bool {
        matches!(self, TlsSpec::VerifyFull(_) | TlsSpec::VerifyFullSystem)
    }
}

/// Resolves a source's `sslmode` and `ca-bundle` (the production database, or a database someone else
/// restored): as [`tls_spec`], except that with neither written the server must prove who it is —
/// `verify-full` against the system's trust store, loopback included (any local user can listen on a free
/// port). `require` is taken only as written.
pub(crate) fn source_tls_spec(
    p: &mut Problems<'_>,
    key: &str,
    sslmode: Option<&str>,
    ca_bundle: Option<String>,
) -> TlsSpec {
    match (sslmode, ca_bundle) {
        (None, None) => TlsSpec::VerifyFullSystem,
        (m, ca) => tls_spec(p, key, m, ca),
    }
}

/// Resolves `sslmode` and `ca-bundle` under `key` for a scratch (a fresh credential stackdrill made):
/// `verify-full` when a bundle is given and no mode, else `require` (SCRAM with channel binding only); `disable` must be written out. Problems are pushed; a usable default is returned.
pub(crate) fn tls_spec(p: &mut Problems<'_>, key: &str, sslmode: Option<&str>, ca_bundle: Option<String>) -> TlsSpec {
    match (sslmode, ca_bundle) {
        (None, None) | (Some("require"), None) => TlsSpec::Require,
        (None, Some(ca)) | (Some("verify-full"), Some(ca)) => TlsSpec::VerifyFull(ca.into()),
        (Some("verify-ca"), Some(ca)) => TlsSpec::VerifyCa(ca.into()),
        (Some(m @ ("verify-full" | "verify-ca")), None) => {
            p.push(format!("{key}.sslmode"), format!("{m} needs `ca-bundle` (a PEM file, e.g. the RDS global bundle)"));
            TlsSpec::Require
        }
        (Some("disable"), None) => TlsSpec::Disable,
        (Some(m @ ("require" | "disable")), Some(_)) => {
            p.push(format!("{key}.ca-bundle"), format!("only used with sslmode verify-ca or verify-full, not {m}"));
            TlsSpec::Require
        }
        (Some(other), _) => {
            p.push(
                format!("{key}.sslmode"),
                format!("unknown sslmode `{other}`: use disable, require, verify-ca or verify-full"),
            );
            TlsSpec::Require
        }
    }
}
