//! Connecting over TLS (rustls) the way libpq's `sslmode=require` and `sslmode=verify-full` do: RDS and
//! Aurora endpoints, and tunnels to them, are reached encrypted.

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
pub(crate) async fn connect_tls(
    config: &tokio_postgres::Config,
    tls: &TlsSpec,
    server_name: Option<&str>,
) -> Result<tokio_postgres::Client, String> {
    let client_config = match tls {
        TlsSpec::Disable => return super::connect(config).await.map_err(|e| e.to_string()),
        TlsSpec::Require => require()?,
        TlsSpec::VerifyFull(ca) => verify_full(ca)?,
    };
    let mut config = config.clone();
    config.ssl_mode(SslMode::Require);
    let (client, conn) = config
        .connect(Named {
            inner: tokio_postgres_rustls::MakeRustlsConnect::new(client_config),
            name: server_name.map(str::to_string),
        })
        .await
        .map_err(|e| chain(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection closed");
        }
    });
    Ok(client)
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

fn verify_full(ca: &Path) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(ca).map_err(|e| format!("cannot read CA bundle `{}`: {e}", ca.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("bad certificate in `{}`: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("bad certificate in `{}`: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("CA bundle `{}` holds no certificate", ca.display()));
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
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
