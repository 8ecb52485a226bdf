//! The write-once store: `s3://bucket/prefix` in a bucket with S3 Object Lock. Every object (report,
//! renderings, signatures, ledger entries) is put in COMPLIANCE mode with a retention date, so nobody —
//! not even the account root — can delete or overwrite the evidence before it. The ledger is one object
//! per entry (`<prefix>ledger/<seq:08>.json`) created with `If-None-Match: *`: of two drills racing for the
//! same sequence number exactly one wins, the other re-links to the new head and tries the next, so the
//! chain cannot fork. An entry is claimed before its report is uploaded, so a lost race leaves nothing.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectLockEnabled, ObjectLockMode};

use super::chain::{self, Entry};
use super::store::{Rendered, render, render_sign_off, stem};
use super::{Report, Signer, Written};
use crate::aws::{AwsError, AwsSettings, classify};

/// What went wrong reading or writing the S3 store; an AWS error keeps its class (throttled, denied, not
/// found) and its hint.
#[derive(Debug, thiserror::Error)]
pub(crate) enum S3Error {
    #[error("`{0}` is not s3://bucket[/prefix]")]
    NotAnS3Url(String),
    #[error("{0}; the report bucket needs S3 Object Lock")]
    LockConfiguration(AwsError),
    #[error(
        "bucket `{0}` has no Object Lock: reports would be deletable; create it with Object Lock enabled (aws s3api \
         create-bucket ... --object-lock-enabled-for-bucket)"
    )]
    NoObjectLock(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Body(#[from] aws_sdk_s3::primitives::ByteStreamError),
    #[error("`{key}`: {source}")]
    BadEntry { key: String, source: serde_json::Error },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the ledger kept moving: 20 attempts to append lost the race")]
    Raced,
}

impl S3Error {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            S3Error::Aws(e) | S3Error::LockConfiguration(e) => e.hint(),
            _ => None,
        }
    }
}

pub(crate) struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    retain: std::time::Duration,
}

/// `s3://bucket/prefix` → (bucket, prefix with a trailing slash or empty).
pub(crate) fn parse_url(s: &str) -> Option<(String, String)> {
    let rest = s.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    let prefix = prefix.trim_matches('/');
    Some((bucket.to_string(), if prefix.is_empty() { String::new() } else { format!("{prefix}/") }))
}

pub(crate) fn is_url(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with("s3://"))
}

const LEDGER_DIR: &str = "ledger/";

/// A problem with one object of the store: its name in the store and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub(crate) name: String,
    pub(crate) what: String,
}

/// What is wrong with an object's lock: none, not COMPLIANCE, or released sooner than `min_retain` after it
/// was `written`.
fn retention_finding(
    key: &str,
    mode: Option<&ObjectLockMode>,
    until: Option<&aws_smithy_types::DateTime>,
    written: Option<aws_smithy_types::DateTime>,
    min_retain: std::time::Duration,
) -> Option<String> {
    match (mode, until) {
        (Some(ObjectLockMode::Compliance), Some(until)) => {
            let written = written.map(|w| w.secs()).unwrap_or(i64::MIN / 2);
            let held = until.secs().saturating_sub(written);
            // A minute of slack: the retention date is computed just before the upload.
            (held + 60 < min_retain.as_secs() as i64).then(|| {
                let days = |secs: f64| format!("{:.1} days", secs / 86400.0);
                format!(
                    "`{key}` is locked only until {until}, {} after it was written: less than the {} the store keeps \
                     evidence (--retain)",
                    days(held.max(0) as f64),
                    days(min_retain.as_secs_f64())
                )
            })
        }
        (Some(m), _) => Some(format!("`{key}` is locked in {} mode, not COMPLIANCE: it can be deleted", m.as_str())),
        (None, _) => Some(format!("`{key}` has no Object Lock retention: it can be deleted")),
    }
}

impl S3Store {
    /// Connects and checks that the bucket has Object Lock enabled: evidence is never written where it
    /// could be deleted.
    pub(crate) async fn connect(url: &str, aws: &AwsSettings, retain: std::time::Duration) -> Result<S3Store, S3Error> {
        let (bucket, prefix) = parse_url(url).ok_or_else(|| S3Error::NotAnS3Url(url.to_string()))?;
        // `--endpoint-url` carries AWS_ENDPOINT_URL too (the settings resolve it): an emulator wants paths.
        let client = crate::aws::s3_client(aws).await;
        let lock = client
            .get_object_lock_configuration()
            .bucket(&bucket)
            .send()
            .await
            .map_err(|e| S3Error::LockConfiguration(classify("s3:GetBucketObjectLockConfiguration", &e)))?;
        let enabled =
            lock.object_lock_configuration().and_then(|c| c.object_lock_enabled()) == Some(&ObjectLockEnabled::Enabled);
        if !enabled {
            return Err(S3Error::NoObjectLock(bucket));
        }
        Ok(S3Store { client, bucket, prefix, retain })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn retain_until(&self) -> aws_smithy_types::DateTime {
        let until = std::time::SystemTime::now() + self.retain;
        aws_smithy_types::DateTime::from(until)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("s3:GetObject", &e))?;
        Ok(out.body.collect().await?.into_bytes().to_vec())
    }

    /// Every key under the prefix.
    async fn keys(&self, under: &str) -> Result<Vec<String>, S3Error> {
        let mut out = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(self.key(under)).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("s3:ListBucket", &e))?;
            out.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        out.sort();
        Ok(out)
    }

    /// The newest ledger entry.
    async fn head(&self) -> Result<Option<Entry>, S3Error> {
        let Some(last) = self.keys(LEDGER_DIR).await?.pop() else { return Ok(None) };
        let bytes = self.get(&last).await?;
        serde_json::from_slice(&bytes).map(Some).map_err(|source| S3Error::BadEntry { key: last, source })
    }

    /// Puts a write-once object; with `create_only`, `Ok(false)` when the key already exists.
    async fn put(&self, name: &str, bytes: &[u8], create_only: bool) -> Result<bool, S3Error> {
        let content_type = match name.rsplit('.').next() {
            Some("json") => "application/json",
            Some("html") => "text/html; charset=utf-8",
            Some("md") => "text/markdown; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(name))
            .body(ByteStream::from(bytes.to_vec()))
            .content_type(content_type)
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(self.retain_until());
        if create_only {
            req = req.if_none_match("*");
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = classify("s3:PutObject", &e);
                // 412: the key exists (another writer won); 409 ConditionalRequestConflict: another
                // conditional write to it is in flight. Either way, re-read the head and try again.
                let raced = e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 409 | 412))
                    || matches!(err.code.as_deref(), Some("PreconditionFailed" | "ConditionalRequestConflict"));
                if create_only && raced { Ok(false) } else { Err(err.into()) }
            }
        }
    }

    /// Claims the next sequence number for what `make` renders against the current head, then uploads it.
    async fn append(&self, make: impl Fn(Option<String>) -> std::io::Result<Rendered>) -> Result<Rendered, S3Error> {
        for _ in 0..20 {
            let head = self.head().await?;
            let mut r = make(head.as_ref().map(|h| h.sha256.clone()))?;
            r.entry.seq = head.as_ref().map(|h| h.seq + 1).unwrap_or(1);
            let line = serde_json::to_vec(&r.entry)?;
            if !self.put(&format!("{LEDGER_DIR}{:08}.json", r.entry.seq), &line, true).await? {
                // Another writer took (or is taking) this number: re-link to the new head, after a pause.
                tokio::time::sleep(std::time::Duration::from_millis(rand::random::<u64>() % 200 + 50)).await;
                continue;
            }
            for (name, bytes) in &r.files {
                self.put(name, bytes, false).await?;
            }
            self.put(&r.json.0, &r.json.1, false).await?;
            return Ok(r);
        }
        Err(S3Error::Raced)
    }

    pub(crate) async fn write_report(&self, report: &mut Report, signer: Option<&Signer>) -> Result<Written, S3Error> {
        let stem = format!("{}-{}", stem(report), report.id);
        let base = report.clone();
        let r = self
            .append(|previous| {
                let mut attempt = base.clone();
                render(&mut attempt, previous, signer, &[], &stem)
            })
            .await?;
        report.previous_sha256 = r.entry.previous.clone();
        report.signing = serde_json::from_slice::<Report>(&r.json.1).ok().and_then(|d| d.signing);
        let url = |ext: &str| std::path::PathBuf::from(format!("{}{stem}.{ext}", self.url_prefix()));
        Ok(Written { json: url("json"), markdown: url("md"), html: url("html") })
    }

    pub(crate) async fn write_sign_off(
        &self,
        report: &Entry,
        reviewer: &str,
        decision: &str,
        note: Option<String>,
        signer: Option<&Signer>,
    ) -> Result<String, S3Error> {
        let r =
            self.append(|previous| render_sign_off(report, reviewer, decision, note.clone(), previous, signer)).await?;
        Ok(format!("{}{}", self.url_prefix(), r.json.0))
    }

    pub(crate) async fn write_posture(
        &self,
        record: &mut super::posture::Record,
        signer: Option<&Signer>,
    ) -> Result<String, S3Error> {
        let base = record.clone();
        let r = self
            .append(|previous| {
                let mut attempt = base.clone();
                super::posture::render(&mut attempt, previous, signer)
            })
            .await?;
        if let Ok(written) = serde_json::from_slice::<super::posture::Record>(&r.json.1) {
            *record = written;
        }
        Ok(format!("{}{}", self.url_prefix(), r.json.0))
    }

    fn url_prefix(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// What the current objects cannot show, from every version under the prefix: an object with more than
    /// one version was overwritten (Object Lock keeps old versions but allows new ones), a delete marker
    /// hides one (deleting without a version id is allowed too), and each current version must be locked in
    /// COMPLIANCE mode until at least `min_retain` after it was written. Findings are sorted by key.
    pub(crate) async fn audit_versions(&self, min_retain: std::time::Duration) -> Result<Vec<Finding>, S3Error> {
        let mut versions: BTreeMap<String, Vec<(String, Option<aws_smithy_types::DateTime>)>> = BTreeMap::new();
        let mut markers: BTreeMap<String, usize> = BTreeMap::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| classify("s3:ListBucketVersions", &e))?;
            for v in page.versions() {
                if let Some(k) = v.key() {
                    let id = v.version_id().unwrap_or("null").to_string();
                    versions.entry(k.to_string()).or_default().push((id, v.last_modified().copied()));
                }
            }
            for m in page.delete_markers() {
                if let Some(k) = m.key() {
                    *markers.entry(k.to_string()).or_default() += 1;
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        let mut findings = Vec::new();
        let name = |k: &str| k[self.prefix.len().min(k.len())..].to_string();
        for (key, n) in &markers {
            findings.push(Finding {
                name: name(key),
                what: format!(
                    "`{key}` is hidden by {} delete marker{}: it was deleted after it was written",
                    n,
                    if *n == 1 { "" } else { "s" }
                ),
            });
        }
        let mut heads = Vec::new();
        for (key, vs) in &versions {
            if vs.len() > 1 {
                findings.push(Finding {
                    name: name(key),
                    what: format!("`{key}` has {} versions: it was overwritten after it was written", vs.len()),
                });
            }
            // The version the store was first written with: the oldest.
            if let Some(first) = vs.iter().min_by_key(|(_, at)| at.map(|t| (t.secs(), t.subsec_nanos()))) {
                heads.push((key.clone(), first.clone()));
            }
        }
        let checks = heads.into_iter().map(|(key, (version, written))| async move {
            let out = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .version_id(&version)
                .send()
                .await
                .map_err(|e| classify("s3:GetObjectRetention", &e))?;
            Ok::<_, S3Error>(
                retention_finding(
                    &key,
                    out.object_lock_mode(),
                    out.object_lock_retain_until_date(),
                    written,
                    min_retain,
                )
                .map(|what| Finding { name: name(&key), what }),
            )
        });
        use futures_util::StreamExt;
        let mut checked = futures_util::stream::iter(checks).buffer_unordered(16);
        while let Some(f) = checked.next().await {
            findings.extend(f?);
        }
        findings.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(findings)
    }

    /// Copies the store into `dir` (the ledger as `ledger.jsonl`, in order) so the directory tools —
    /// verify, list, history, controls — read it unchanged.
    pub(crate) async fn download(&self, dir: &Path) -> Result<usize, S3Error> {
        let mut ledger = Vec::new();
        let keys = self.keys("").await?;
        for key in &keys {
            let name = &key[self.prefix.len()..];
            let bytes = self.get(key).await?;
            if name.starts_with(LEDGER_DIR) {
                ledger.extend_from_slice(&bytes);
                ledger.push(b'\n');
            } else if !name.contains('/') {
                std::fs::write(dir.join(name), &bytes)?;
            }
        }
        std::fs::write(dir.join(chain::LEDGER), &ledger)?;
        Ok(keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_that_is_missing_governance_or_short_is_named() {
        let t = |secs: i64| aws_smithy_types::DateTime::from_secs(secs);
        let day = std::time::Duration::from_secs(86400);
        let compliance = Some(&ObjectLockMode::Compliance);
        assert_eq!(retention_finding("k", compliance, Some(&t(86400 * 3)), Some(t(0)), day * 2), None);
        let short = retention_finding("k", compliance, Some(&t(86400)), Some(t(0)), day * 2).unwrap();
        assert!(
            short.contains("`k` is locked only until")
                && short.contains("1.0 days after it was written: less than the 2.0 days"),
            "{short}"
        );
        let gov = retention_finding("k", Some(&ObjectLockMode::Governance), Some(&t(86400 * 9)), Some(t(0)), day);
        assert!(gov.unwrap().contains("GOVERNANCE mode, not COMPLIANCE"));
        assert!(retention_finding("k", None, None, Some(t(0)), day).unwrap().contains("no Object Lock retention"));
    }
}
