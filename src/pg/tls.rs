//! Connecting over TLS (rustls) the way libpq's `sslmode=require`, `verify-ca` and `verify-full` do: the
//! source, RDS and Aurora endpoints, and tunnels to them, are reached encrypted; cancel requests too.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;

use crate::config::TlsSpec;

/// Connects with the given TLS mode; `Disable` is a plain connection. `server_name` is the name the
/// certificate must carry when it differs from the host connected to (a tunnel to an RDS endpoint).
///
/// Every login of a drill goes through here — the source, its replica, an existing copy, and every
/// scratch (RDS, Aurora, AWS Backup, a Supabase branch, the read-only checks role) — so the rule of
/// `sslmode require` is kept in one place: see [`login_config`].
pub(crate) async fn connect_tls(
    config: &tokio_postgres::Config,
    tls: &TlsSpec,
    server_name: Option<&str>,
) -> Result<tokio_postgres::Client, String> {
    let Some(connector) = connector(tls, server_name)? else {
        return super::connect(config).await.map_err(|e| e.to_string());
    };
    let mut config = login_config(config, tls);
    config.ssl_mode(SslMode::Require);
    let (client, conn) = config.connect(connector).await.map_err(|e| chain(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection closed");
        }
    });
    Ok(client)
}

/// The settings a login under `tls` goes out with. Under `require` the certificate proves nothing: the
/// login may go only through SCRAM bound to this TLS channel, where the server proves it holds the
/// verifier and a relay cannot splice in. tokio-postgres then refuses a cleartext or MD5 password request
/// (or a login that asks for none) before sending a byte of the password. The verifying modes are left
/// as configured (the server has proved who it is).
fn login_config(config: &tokio_postgres::Config, tls: &TlsSpec) -> tokio_postgres::Config {
    let mut config = config.clone();
    if *tls == TlsSpec::Require {
        config.channel_binding(tokio_postgres::config::ChannelBinding::Require);
    }
    config
}

/// Asks the server to cancel whatever the session behind `token` is running, over the same TLS mode
/// (a cancel request is a connection of its own).
pub(crate) async fn cancel(
    token: &tokio_postgres::CancelToken,
    tls: &TlsSpec,
    server_name: Option<&str>,
) -> Result<(), String> {
    match connector(tls, server_name)? {
        Some(c) => token.cancel_query(c).await.map_err(|e| chain(&e)),
        None => token.cancel_query(tokio_postgres::NoTls).await.map_err(|e| chain(&e)),
    }
}

/// What it takes to cancel a session's running query: its cancel key and how to reach the server.
#[derive(Clone)]
pub(crate) struct Canceller {
    token: tokio_postgres::CancelToken,
    tls: TlsSpec,
    server_name: Option<String>,
}

impl Canceller {
    pub(crate) fn new(client: &tokio_postgres::Client, tls: &TlsSpec, server_name: Option<&str>) -> Canceller {
        Canceller { token: client.cancel_token(), tls: tls.clone(), server_name: server_name.map(str::to_string) }
    }

    /// Cancels the running query, if any (the server ignores a cancel for an idle session); bounded,
    /// and a failure is logged, never fatal: the session's own `statement_timeout` still ends the query.
    pub(crate) async fn cancel(&self) {
        let sent = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            cancel(&self.token, &self.tls, self.server_name.as_deref()),
        )
        .await;
        match sent {
            Ok(Ok(())) => tracing::debug!("cancel request sent"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not send a cancel request"),
            Err(_) => tracing::warn!("a cancel request did not finish within 5s"),
        }
    }
}

/// Whether a connection error says the server refused TLS: retrying will not change that.
pub(crate) fn is_tls_refused(error: &str) -> bool {
    error.contains("server does not support TLS")
}

/// What to do when a server under `sslmode require` would not log in with channel binding.
pub(crate) const CHANNEL_BINDING_HINT: &str = "under sslmode require a password goes only through SCRAM with \
     channel binding, never in cleartext or MD5: give `ca-bundle` (sslmode verify-full) or make the server use \
     scram-sha-256";

/// Whether a connection error says the server would not authenticate with channel binding (it asked for a
/// cleartext or MD5 password, or none): under `sslmode require` stackdrill refuses to log in then.
pub(crate) fn is_channel_binding_refused(error: &str) -> bool {
    error.contains("channel binding")
}

fn connector(tls: &TlsSpec, server_name: Option<&str>) -> Result<Option<Named>, String> {
    let client_config = match tls {
        TlsSpec::Disable => return Ok(None),
        TlsSpec::Require => require()?,
        TlsSpec::VerifyCa(ca) => verify_ca(ca)?,
        TlsSpec::VerifyFull(ca) => verify_full(ca)?,
        TlsSpec::VerifyFullSystem => verify_full_system()?,
    };
    Ok(Some(Named {
        inner: tokio_postgres_rustls::MakeRustlsConnect::new(client_config),
        name: server_name.map(str::to_string),
    }))
}

/// Checks the certificate against `name` instead of the host connected to.
struct Named {
    inner: tokio_postgres_rustls::MakeRustlsConnect,
    name: Option<String>,
}

impl<S> MakeTlsConnect<S> for Named
where
    tokio_postgres_rustls::MakeRustlsConnect: MakeTlsConnect<S>,
{
    type Stream = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = self.name.clone();
        self.inner.make_tls_connect(name.as_deref().unwrap_or(domain))
    }
}

/// An error with its causes: tokio-postgres says only "error performing TLS handshake"; the cause says
/// which certificate check failed.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn require() -> Result<ClientConfig, String> {
    let p = provider();
    Ok(ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(EncryptOnly(p)))
        .with_no_client_auth())
}

fn roots(ca: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let bytes = crate::userfile::read(ca, crate::userfile::CA_BUNDLE_MAX, crate::userfile::Links::Follow)
        .map_err(|e| format!("CA bundle: {e}"))?;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("bad certificate in `{}`: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("bad certificate in `{}`: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("CA bundle `{}` holds no certificate", ca.display()));
    }
    Ok(roots)
}

fn verify_full(ca: &Path) -> Result<ClientConfig, String> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(ca)?)
        .with_no_client_auth())
}

/// `sslmode=verify-full` with no bundle written: the chain must lead to a root of the system's trust store
/// (as libpq's `sslrootcert=system`).
fn verify_full_system() -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system store may hold a certificate rustls cannot parse; the others still count.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("the system's trust store holds no certificate: give `ca-bundle`".into());
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `sslmode=verify-ca`: the chain must lead to the bundle; the name in the certificate is not checked.
fn verify_ca(ca: &Path) -> Result<ClientConfig, String> {
    let p = provider();
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), p.clone())
        .build()
        .map_err(|e| e.to_string())?;
    Ok(ClientConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
        .with_no_client_auth())
}

/// Checks the chain as verify-full does and forgives only a name mismatch (webpki checks the chain
/// first, so a name error means the chain was good).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `sslmode=require`: the channel is encrypted and the server's handshake signature is checked, but its
/// certificate chain is not (as libpq does for `require`).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tokio_postgres::config::ChannelBinding;

    use super::*;

    /// Every login at `require` — a scratch's as much as the source's — demands channel binding; the
    /// verifying modes keep what they were given.
    #[test]
    fn a_login_at_require_demands_channel_binding() {
        let mut c = tokio_postgres::Config::new();
        c.host("scratch.example").user("postgres").password("one-run");
        assert_eq!(login_config(&c, &TlsSpec::Require).get_channel_binding(), ChannelBinding::Require);
        for tls in [TlsSpec::VerifyFull(PathBuf::from("ca.pem")), TlsSpec::VerifyFullSystem, TlsSpec::Disable] {
            assert_eq!(login_config(&c, &tls).get_channel_binding(), c.get_channel_binding(), "{tls:?}");
        }
    }
}
