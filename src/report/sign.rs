//! Ed25519 signatures on reports: a detached signature over the report's bytes (`<report>.json.sig`,
//! base64) and a DSSE envelope carrying an in-toto statement whose subject is the report
//! (`<report>.dsse.json`), so standard tooling (openssl, in-toto, sigstore's DSSE libraries) can check it.
//!
//! The private key is PKCS#8 in a PEM file (mode 0600) or in `STACKDRILL_SIGNING_KEY` (the PEM text); the
//! public key is SPKI PEM. A key's id is the SHA-256 of its raw 32-byte public key, hex.

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(crate) const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub(crate) const PREDICATE_TYPE: &str = "https://github.com/stackdrill/stackdrill/drill-report/v1";
/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
pub(crate) const KEY_ENV: &str = "STACKDRILL_SIGNING_KEY";
pub(crate) const KEY_FILE_ENV: &str = "STACKDRILL_SIGNING_KEY_FILE";

/// Where a local signing key comes from. Its `Debug` never shows the PEM text.
#[derive(Clone)]
pub(crate) enum KeySource {
    /// No key: reports are unsigned.
    None,
    /// The PEM text itself (from `STACKDRILL_SIGNING_KEY`).
    Pem(String),
    /// A PEM file, which must be private to its owner (mode 0600).
    File(PathBuf),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::None => f.write_str("None"),
            KeySource::Pem(_) => f.write_str("Pem(<redacted>)"),
            KeySource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SignError {
    #[error("cannot read the signing key `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the signing key {from} is not an Ed25519 PKCS#8 PEM key: {why}")]
    Bad { from: String, why: String },
    #[error("cannot write `{path}`: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("the KMS signing key `{key}` {why}")]
    Kms { key: String, why: String },
    #[error("the signing key `{path}` is readable by others (mode {mode:o}); chmod 600 it")]
    Exposed { path: String, mode: u32 },
}

/// Why a detached signature or its DSSE envelope does not verify.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadSignature {
    #[error("the signature is not base64")]
    NotBase64,
    #[error("the signature does not match the report")]
    Mismatch,
    #[error("the DSSE envelope is unreadable: {0}")]
    Envelope(serde_json::Error),
    #[error("the envelope payload is not base64")]
    PayloadNotBase64,
    #[error("the DSSE envelope's signature does not verify")]
    EnvelopeMismatch,
    #[error("{0}")]
    Statement(serde_json::Error),
    #[error("the in-toto statement names another report digest")]
    OtherSubject,
}

pub(crate) struct Signer {
    inner: Inner,
    pub(crate) key_id: String,
}

enum Inner {
    Local(Ed25519KeyPair),
    /// An AWS KMS asymmetric key (ECC_NIST_P256, ECDSA_SHA_256): the private key never leaves KMS.
    Kms {
        client: aws_sdk_kms::Client,
        key: String,
        spki: Vec<u8>,
    },
}

pub(crate) const ED25519: &str = "ed25519";
pub(crate) const ECDSA_P256: &str = "ecdsa-p256-sha256";

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// Where `keys generate` puts the key by default: `<state dir>/keys/signing.key`.
pub(crate) fn default_key_path() -> PathBuf {
    crate::config::state_dir().join("keys").join("signing.key")
}

pub(crate) fn key_id(public: &[u8]) -> String {
    hex::encode(Sha256::digest(public))
}

/// `SHA256:ab12…` (first 16 bytes of the key id), as reports and the HTML show it.
pub(crate) fn fingerprint(key_id: &str) -> String {
    format!("SHA256:{}", super::chain::prefix(key_id, 32))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    // Base64 is ASCII: every 64-byte step is a character boundary.
    let lines: Vec<&str> =
        (0..b64.len()).step_by(64).map(|i| b64.get(i..(i + 64).min(b64.len())).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn unpem(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text.split(&begin).nth(1)?.split(&end).next()?;
    B64.decode(body.split_whitespace().collect::<String>()).ok()
}

/// SPKI PEM of a public key as stackdrill holds it: the raw 32 bytes of an Ed25519 key, or the whole
/// SubjectPublicKeyInfo DER of a P-256 (KMS) key.
pub(crate) fn public_pem(public: &[u8]) -> String {
    if public.len() != 32 {
        return pem("PUBLIC KEY", public);
    }
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    pem("PUBLIC KEY", &der)
}

/// The public key from SPKI PEM: the raw 32 bytes of an Ed25519 key, or the whole DER of a P-256 key (as
/// KMS gives it and reports record it).
pub(crate) fn parse_public_pem(text: &str) -> Option<Vec<u8>> {
    let der = unpem(text, "PUBLIC KEY")?;
    if der.len() == 44 && der[..12] == SPKI_PREFIX {
        return Some(der[12..].to_vec());
    }
    (der.len() == 91).then_some(der)
}

/// A new key pair: `path` (private, 0600) and `path.pub`. Refuses to overwrite.
pub(crate) fn generate(path: &Path) -> Result<(PathBuf, String), SignError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let w = |source| SignError::Write { path: path.display().to_string(), source };
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|e| SignError::Bad { from: "generated".into(), why: e.to_string() })?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
        .map_err(|e| SignError::Bad { from: "generated".into(), why: e.to_string() })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(w)?;
    }
    // PKCS#8 v1 (the seed only): what OpenSSL and most tools read.
    let v1 = pair.to_pkcs8v1().map_err(|e| SignError::Bad { from: "generated".into(), why: e.to_string() })?;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(w)?;
    f.write_all(pem("PRIVATE KEY", v1.as_ref()).as_bytes()).map_err(w)?;
    f.sync_all().map_err(w)?;
    let public = pair.public_key().as_ref().to_vec();
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    crate::report::atomic_write(&pub_path, public_pem(&public).as_bytes())
        .map_err(|source| SignError::Write { path: pub_path.display().to_string(), source })?;
    Ok((pub_path, key_id(&public)))
}

impl Signer {
    pub(crate) fn from_pem(text: &str, from: &str) -> Result<Signer, SignError> {
        let bad = |why: String| SignError::Bad { from: from.to_string(), why };
        let der = unpem(text, "PRIVATE KEY").ok_or_else(|| bad("no PRIVATE KEY block".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der))
            .map_err(|e| bad(e.to_string()))?;
        let key_id = key_id(pair.public_key().as_ref());
        Ok(Signer { inner: Inner::Local(pair), key_id })
    }

    /// The key the settings chose (`cli/settings.rs` resolves the flag, `STACKDRILL_SIGNING_KEY`,
    /// `STACKDRILL_SIGNING_KEY_FILE` and the default key file, in that order); `None` when none is
    /// configured (reports are then unsigned, and say so).
    pub(crate) fn configured(source: KeySource) -> Result<Option<Signer>, SignError> {
        let file = match source {
            KeySource::None => return Ok(None),
            KeySource::Pem(text) => return Signer::from_pem(&text, &format!("in {KEY_ENV}")).map(Some),
            KeySource::File(f) => f,
        };
        use std::os::unix::fs::MetadataExt;
        let read = |source| SignError::Read { path: file.display().to_string(), source };
        let mode = std::fs::metadata(&file).map_err(read)?.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SignError::Exposed { path: file.display().to_string(), mode });
        }
        // A regular file of bounded size, opened without blocking: a FIFO or a device is refused at once.
        let text = crate::userfile::read_text(&file, crate::userfile::SECRET_MAX, crate::userfile::Links::Follow)
            .map_err(|e| read(std::io::Error::other(crate::userfile::reason(&e))))?;
        Signer::from_pem(&text, &format!("`{}`", file.display())).map(Some)
    }

    /// An AWS KMS key (id, ARN or alias) that signs with ECDSA P-256 / SHA-256; its public key is fetched
    /// once and recorded in each report.
    pub(crate) async fn kms(key: &str, aws: &crate::aws::AwsSettings) -> Result<Signer, SignError> {
        let sdk = crate::aws::load(aws).await;
        let client = aws_sdk_kms::Client::new(&sdk);
        let bad = |why: String| SignError::Kms { key: key.to_string(), why };
        let out = client
            .get_public_key()
            .key_id(key)
            .send()
            .await
            .map_err(|e| bad(crate::aws::classify("kms:GetPublicKey", &e).to_string()))?;
        #[expect(deprecated, reason = "older KMS endpoints (and moto) return only CustomerMasterKeySpec")]
        let spec = out.key_spec().map(|s| s.as_str()).or(out.customer_master_key_spec().map(|s| s.as_str()));
        let spki = out.public_key().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        // A P-256 SubjectPublicKeyInfo is 91 bytes; some endpoints omit the spec, the key says it.
        if spec.is_some_and(|s| s != "ECC_NIST_P256") || spki.len() != 91 {
            return Err(bad(format!(
                "is not an ECC_NIST_P256 signing key ({}); create one with KeySpec ECC_NIST_P256, KeyUsage SIGN_VERIFY",
                spec.unwrap_or("spec not given")
            )));
        }
        Ok(Signer { key_id: key_id(&spki), inner: Inner::Kms { client, key: key.to_string(), spki } })
    }

    pub(crate) fn algorithm(&self) -> &'static str {
        match self.inner {
            Inner::Local(_) => ED25519,
            Inner::Kms { .. } => ECDSA_P256,
        }
    }

    /// The raw Ed25519 key, or the SubjectPublicKeyInfo DER of a KMS key.
    pub(crate) fn public(&self) -> &[u8] {
        match &self.inner {
            Inner::Local(pair) => pair.public_key().as_ref(),
            Inner::Kms { spki, .. } => spki,
        }
    }

    /// What a report records about its signer.
    pub(crate) fn record(&self) -> crate::report::model::SigningRecord {
        crate::report::model::SigningRecord {
            algorithm: self.algorithm().into(),
            key_id: self.key_id.clone(),
            fingerprint: fingerprint(&self.key_id),
            public_key: B64.encode(self.public()),
        }
    }

    /// Signs `msg`. A KMS key signs the message's SHA-256 digest (`MessageType` DIGEST: KMS takes at most
    /// 4,096 bytes raw, and a report is longer); the ECDSA signature is the same one a raw SHA-256 signing
    /// gives, so `openssl dgst -sha256 -verify` checks it over the report. KMS is called synchronously from
    /// within the runtime (reports are written once per drill). A failed call is an error, never an empty
    /// signature.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.inner {
            Inner::Local(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            Inner::Kms { client, key, .. } => {
                let fail = |why: String| SignError::Kms { key: key.clone(), why };
                let call = client
                    .sign()
                    .key_id(key)
                    .message(aws_sdk_kms::primitives::Blob::new(Sha256::digest(msg).to_vec()))
                    .message_type(aws_sdk_kms::types::MessageType::Digest)
                    .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256)
                    .send();
                let signed = async {
                    match call.await {
                        Ok(o) => match o.signature() {
                            Some(b) if !b.as_ref().is_empty() => Ok(b.as_ref().to_vec()),
                            _ => Err(fail("answered Sign without a signature".into())),
                        },
                        Err(e) => Err(fail(format!("could not sign: {}", crate::aws::classify("kms:Sign", &e)))),
                    }
                };
                tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(signed))
            }
        }
    }

    /// The DSSE envelope over an in-toto statement naming `subject` (file name) with its sha256.
    /// A DSSE envelope over an in-toto statement whose subjects are `subjects` (name, bytes), the JSON
    /// record first and then its renderings, so the one signature covers every file an auditor reads.
    pub(crate) fn envelope(
        &self,
        subjects: &[(&str, &[u8])],
        predicate: serde_json::Value,
    ) -> Result<Envelope, SignError> {
        let subject: Vec<serde_json::Value> = subjects
            .iter()
            .map(|(name, bytes)| {
                serde_json::json!({ "name": name, "digest": { "sha256": hex::encode(Sha256::digest(bytes)) } })
            })
            .collect();
        let statement = serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": subject,
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        });
        let payload = serde_json::to_vec(&statement).unwrap_or_default();
        let sig = self.sign(&pae(PAYLOAD_TYPE, &payload))?;
        Ok(Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: B64.encode(&payload),
            signatures: vec![EnvelopeSignature { keyid: self.key_id.clone(), sig: B64.encode(sig) }],
        })
    }
}

/// DSSE v1 pre-authentication encoding.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "payloadType")]
    pub(crate) payload_type: String,
    pub(crate) payload: String,
    pub(crate) signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EnvelopeSignature {
    pub(crate) keyid: String,
    pub(crate) sig: String,
}

/// Verifies with the raw Ed25519 key, or (ECDSA P-256) the SubjectPublicKeyInfo DER whose last 65 bytes
/// are the uncompressed point.
pub(crate) fn verify(public: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    if public.len() == 32 {
        return UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, public).verify(msg, sig).is_ok();
    }
    let point = &public[public.len().saturating_sub(65)..];
    UnparsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1, point).verify(msg, sig).is_ok()
}

/// Checks a detached base64 signature and an envelope against `bytes`; `Err` says what is wrong.
/// Checks the detached signature over `bytes` and the DSSE envelope (when there is one) with `public`; the
/// statement's first subject must be `bytes`. Returns the statement's other subjects (name, sha256): the
/// renderings the signature covers, for the caller to compare with the files.
pub(crate) fn verify_files(
    public: &[u8],
    bytes: &[u8],
    sig_b64: &str,
    envelope: Option<&str>,
) -> Result<Vec<(String, String)>, BadSignature> {
    let sig = B64.decode(sig_b64.trim()).map_err(|_| BadSignature::NotBase64)?;
    if !verify(public, bytes, &sig) {
        return Err(BadSignature::Mismatch);
    }
    if let Some(text) = envelope {
        let env: Envelope = serde_json::from_str(text).map_err(BadSignature::Envelope)?;
        let payload = B64.decode(&env.payload).map_err(|_| BadSignature::PayloadNotBase64)?;
        let ok = env
            .signatures
            .iter()
            .any(|s| B64.decode(&s.sig).is_ok_and(|sig| verify(public, &pae(&env.payload_type, &payload), &sig)));
        if !ok {
            return Err(BadSignature::EnvelopeMismatch);
        }
        let statement: serde_json::Value = serde_json::from_slice(&payload).map_err(BadSignature::Statement)?;
        let digest = statement["subject"][0]["digest"]["sha256"].as_str().unwrap_or_default();
        if digest != hex::encode(Sha256::digest(bytes)) {
            return Err(BadSignature::OtherSubject);
        }
        let others = statement["subject"].as_array().map(|s| &s[1.min(s.len())..]).unwrap_or_default();
        return Ok(others
            .iter()
            .map(|s| {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                (text(&s["name"]), text(&s["digest"]["sha256"]))
            })
            .collect());
    }
    Ok(vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_round_trips_through_pem_ed25519_and_p256_alike() {
        let ed = [5u8; 32];
        assert_eq!(parse_public_pem(&public_pem(&ed)).as_deref(), Some(&ed[..]));
        let mut p256 = vec![0x30u8; 91];
        p256[1] = 0x59;
        assert_eq!(parse_public_pem(&public_pem(&p256)).as_deref(), Some(&p256[..]));
    }

    #[test]
    fn a_key_source_never_shows_the_key_in_debug_output() {
        let shown = format!("{:?}", KeySource::Pem("-----BEGIN PRIVATE KEY----- secret".into()));
        assert!(!shown.contains("secret") && shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn a_generated_key_signs_and_verifies_and_tampering_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/signing.key");
        let (pub_path, id) = generate(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert!(generate(&path).is_err(), "never overwrites a key");
        let s = Signer::configured(KeySource::File(path.clone())).unwrap().unwrap();
        assert_eq!(s.key_id, id);
        let public = parse_public_pem(&std::fs::read_to_string(pub_path).unwrap()).unwrap();
        let sig = B64.encode(s.sign(b"report").unwrap());
        let env =
            serde_json::to_string(&s.envelope(&[("r.json", b"report".as_slice())], serde_json::json!({})).unwrap())
                .unwrap();
        assert!(verify_files(&public, b"report", &sig, Some(&env)).is_ok());
        assert!(verify_files(&public, b"rep0rt", &sig, None).is_err());
        assert!(verify_files(&public, b"rep0rt", &B64.encode(s.sign(b"rep0rt").unwrap()), Some(&env)).is_err());
    }
}
