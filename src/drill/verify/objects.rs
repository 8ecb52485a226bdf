//! `objects`: does the restored bucket hold what the source held at the instant? The source's listing as of
//! the instant (`ListObjectVersions`) and the scratch bucket's listing are merged in key order: counts and
//! bytes, each key's size (and ETag where both are digests of the same bytes), missing and extra keys named;
//! then a seeded sample of objects is read from both and their SHA-256 compared.

use rand::SeedableRng;
use sha2::Digest;

use super::CheckError;
use super::check::{CheckResult, Context};
use crate::aws::s3list::{Obj, S3Listing};
use crate::config::{CheckSpec, ObjectsSpec};
use crate::drill::restore::RestoredBucket;
use crate::report::model::CheckStatus;

/// Keys named per kind of problem.
const NAMED: usize = 5;
/// Copies whose ETag differs from the source's are read to see whether the bytes do (an object the source
/// encrypts with its own KMS key has an ETag that is no digest); past this many, they are counted unread.
const SUSPECTS: usize = 1000;

#[derive(Default)]
struct Tally {
    objects: u64,
    bytes: u64,
    restored: u64,
    problems: Vec<(&'static str, &'static str, u64, Vec<String>)>,
    /// Copies the listings cannot tell from their source (source version, copy), reservoir-sampled.
    sample: super::check::Reservoir<(Obj, Obj)>,
    /// Pairs of the same size whose ETags differ: read in full, all of them (up to `SUSPECTS`).
    suspects: Vec<(Obj, Obj)>,
}

impl Tally {
    fn problem(&mut self, one: &'static str, many: &'static str, key: &str) {
        let i = match self.problems.iter().position(|p| p.0 == one) {
            Some(i) => i,
            None => {
                self.problems.push((one, many, 0, Vec::new()));
                self.problems.len() - 1
            }
        };
        let p = &mut self.problems[i];
        p.2 += 1;
        if p.3.len() < NAMED {
            p.3.push(key.to_string());
        }
    }
}

/// A single-part ETag is the MD5 of the bytes; a multipart one (`…-N`) depends on the part sizes.
fn single_part(etag: &Option<String>) -> bool {
    etag.as_deref().is_some_and(|e| !e.contains('-'))
}

async fn merge(b: &RestoredBucket, size: usize, rng: &mut rand::rngs::StdRng) -> Result<(Tally, usize), CheckError> {
    let mut source = S3Listing::new(b.client.clone(), &b.source, &b.prefix, Some(b.as_of));
    let mut copy = S3Listing::new(b.client.clone(), &b.scratch, &b.prefix, None);
    let mut t = Tally::default();
    loop {
        let (s, c) = (
            source.peek().await.map_err(CheckError::Listing)?.cloned(),
            copy.peek().await.map_err(CheckError::Listing)?.cloned(),
        );
        match (s, c) {
            (None, None) => break,
            (Some(s), c) if c.as_ref().is_none_or(|c| s.key < c.key) => {
                source.pop();
                t.objects += 1;
                t.bytes += s.size;
                t.problem("missing object", "missing objects", &s.key);
            }
            (s, Some(c)) if s.as_ref().is_none_or(|s| c.key < s.key) => {
                copy.pop();
                t.restored += 1;
                t.problem("extra object", "extra objects", &c.key);
            }
            (Some(s), Some(c)) => {
                source.pop();
                copy.pop();
                t.objects += 1;
                t.restored += 1;
                t.bytes += s.size;
                if s.size != c.size {
                    t.problem("size mismatch", "size mismatches", &s.key);
                } else if b.etags_comparable && single_part(&s.etag) && single_part(&c.etag) && s.etag != c.etag {
                    if t.suspects.len() < SUSPECTS {
                        t.suspects.push((s, c));
                    } else {
                        t.problem("ETag mismatch (not read)", "ETag mismatches (not read)", &s.key);
                    }
                } else {
                    // Only a copy the listings cannot tell apart is worth reading in full.
                    t.sample.offer(size, || (s, c), rng);
                }
            }
            _ => unreachable!("every pair of listings heads is handled above"),
        }
    }
    Ok((t, source.requests + copy.requests))
}

async fn sha256(b: &RestoredBucket, bucket: &str, o: &Obj) -> Result<Vec<u8>, CheckError> {
    let out = b.client.get_object().bucket(bucket).key(&o.key).set_version_id(o.version.clone()).send().await.map_err(
        |e| CheckError::ObjectRead {
            key: o.key.clone(),
            bucket: bucket.to_string(),
            source: Box::new(crate::aws::classify("s3:GetObject", &e)),
        },
    )?;
    let mut h = sha2::Sha256::new();
    let mut body = out.body;
    while let Some(chunk) = body.try_next().await? {
        h.update(&chunk);
    }
    Ok(h.finalize().to_vec())
}

pub(super) async fn verify(spec: &CheckSpec, o: &ObjectsSpec, ctx: &Context<'_>) -> CheckResult {
    verify_bucket(spec, o, ctx.restored).await
}

/// The check against the restored bucket it names.
pub(super) async fn verify_bucket(spec: &CheckSpec, o: &ObjectsSpec, restored: &[RestoredBucket]) -> CheckResult {
    match restored.iter().find(|b| b.name == o.restore) {
        Some(b) => compare(spec, o, b).await,
        None => {
            let why = format!("the bucket restore `{}` did not complete", o.restore);
            CheckResult::new(spec, CheckStatus::Error, why)
        }
    }
}

/// The restored bucket `b` against its source's listing at the instant.
async fn compare(spec: &CheckSpec, o: &ObjectsSpec, b: &RestoredBucket) -> CheckResult {
    let seed = o.seed.unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut t, requests) = match merge(b, o.sample, &mut rng).await {
        Ok(r) => r,
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, e.to_string()),
    };
    let sample = std::mem::take(&mut t.sample.items);
    let suspects = std::mem::take(&mut t.suspects);
    for chunk in suspects.chunks(8).chain(sample.chunks(8)) {
        let mut reads = Vec::new();
        for (s, c) in chunk {
            reads.push(futures_util::future::join(sha256(b, &b.source, s), sha256(b, &b.scratch, c)));
        }
        for ((s, _), (a, z)) in chunk.iter().zip(futures_util::future::join_all(reads).await) {
            match (a, z) {
                (Ok(a), Ok(z)) if a == z => {}
                (Ok(_), Ok(_)) => t.problem("content mismatch", "content mismatches", &s.key),
                (Err(e), _) | (_, Err(e)) => return CheckResult::new(spec, CheckStatus::Error, e.to_string()),
            }
        }
    }
    let mut detail = format!(
        "{} ({}) in `{}` as of {} against {} restored: ",
        crate::config::count(t.objects, "object", "objects"),
        crate::config::count(t.bytes, "byte", "bytes"),
        b.source,
        crate::drill::error::fmt_time(&b.as_of),
        t.restored
    );
    let failed = !t.problems.is_empty();
    if failed {
        let parts: Vec<String> = t
            .problems
            .iter()
            .map(|(one, many, n, keys)| {
                let more = if *n as usize > keys.len() { ", …" } else { "" };
                format!("{} ({}{more})", crate::config::count(*n, one, many), keys.join(", "))
            })
            .collect();
        detail.push_str(&parts.join("; "));
    } else {
        detail.push_str("every key with its size");
        if b.etags_comparable {
            detail.push_str(" and ETag");
        }
    }
    if !suspects.is_empty() {
        let n = crate::config::count(suspects.len() as u64, "copy", "copies");
        detail.push_str(&format!("; {n} whose ETag differs read in full"));
    }
    detail.push_str(&format!(
        "; SHA-256 of {} read from both (seed {seed}); {requests} list requests",
        crate::config::count(sample.len() as u64, "sampled object", "sampled objects")
    ));
    CheckResult::new(spec, if failed { CheckStatus::Failed } else { CheckStatus::Passed }, detail)
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{Object, ObjectVersion};
    use aws_smithy_mocks::mock;
    use chrono::{TimeDelta, Utc};

    use crate::aws::mocked;
    use crate::config::{CheckSpec, ObjectsSpec};
    use crate::drill::restore::RestoredBucket;
    use crate::report::model::CheckStatus;

    /// Source as of the instant: a (3 bytes), b (3), c (3), d (5; a newer version after the instant is
    /// ignored), and z only after it. The copy: no a, b with other bytes, c resized, d with another ETag, an
    /// extra e, and f with another ETag but the same bytes. d and f (ETags differ) and b (the only copy that
    /// looks right in the listings, so the sample) are read in full: d and b differ, f does not.
    #[tokio::test]
    async fn missing_extra_resized_rewritten_and_corrupt_objects_are_each_named() {
        let instant = Utc::now() - TimeDelta::hours(1);
        let at = |t: chrono::DateTime<Utc>| aws_smithy_types::DateTime::from_secs(t.timestamp());
        let before = at(instant - TimeDelta::hours(1));
        let after = at(instant + TimeDelta::minutes(10));
        let version = move |k: &str, v: &str, size: i64, etag: &str, when| {
            ObjectVersion::builder()
                .key(k)
                .version_id(v)
                .size(size)
                .e_tag(format!("\"{etag}\""))
                .last_modified(when)
                .build()
        };
        let source = mock!(aws_sdk_s3::Client::list_object_versions)
            .match_requests(|r| r.bucket() == Some("files-prod"))
            .then_output(move || {
                ListObjectVersionsOutput::builder()
                    .is_truncated(false)
                    .versions(version("docs/a", "a1", 3, "aa", before))
                    .versions(version("docs/b", "b1", 3, "bb", before))
                    .versions(version("docs/c", "c1", 3, "cc", before))
                    .versions(version("docs/d", "d2", 9, "dd2", after))
                    .versions(version("docs/d", "d1", 5, "dd", before))
                    .versions(version("docs/f", "f1", 4, "ff", before))
                    .versions(version("docs/z", "z1", 5, "zz", after))
                    .build()
            });
        let object =
            |k: &str, size: i64, etag: &str| Object::builder().key(k).size(size).e_tag(format!("\"{etag}\"")).build();
        let copy = mock!(aws_sdk_s3::Client::list_objects_v2)
            .match_requests(|r| r.bucket() == Some("sd-x-0"))
            .then_output(move || {
                ListObjectsV2Output::builder()
                    .is_truncated(false)
                    .contents(object("docs/b", 3, "bb"))
                    .contents(object("docs/c", 4, "cc"))
                    .contents(object("docs/d", 5, "other"))
                    .contents(object("docs/e", 1, "ee"))
                    .contents(object("docs/f", 4, "f0"))
                    .build()
            });
        // f's ETags differ (its source was encrypted with another key) but its bytes are the same; every
        // other read of the source gives `abc`, of the copy `abX`.
        let read_f = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| r.key() == Some("docs/f"))
            .then_output(|| GetObjectOutput::builder().body(ByteStream::from_static(b"same")).build());
        let read_source = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| r.bucket() == Some("files-prod"))
            .then_output(|| GetObjectOutput::builder().body(ByteStream::from_static(b"abc")).build());
        let read_copy = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| r.bucket() == Some("sd-x-0"))
            .then_output(|| GetObjectOutput::builder().body(ByteStream::from_static(b"abX")).build());
        let client = mocked!(aws_sdk_s3, &[&source, &copy, &read_f, &read_source, &read_copy]);
        let b = RestoredBucket {
            name: "files".into(),
            client,
            source: "files-prod".into(),
            prefix: "docs/".into(),
            scratch: "sd-x-0".into(),
            as_of: instant,
            etags_comparable: true,
        };
        let o = ObjectsSpec { restore: "files".into(), sample: 10, seed: Some(1) };
        let spec = CheckSpec::Objects(o.clone());
        let r = super::compare(&spec, &o, &b).await;
        assert_eq!(r.status, CheckStatus::Failed, "{}", r.detail);
        for part in [
            "5 objects (18 bytes) in `files-prod` as of",
            "against 5 restored",
            "1 missing object (docs/a)",
            "1 size mismatch (docs/c)",
            "2 copies whose ETag differs read in full",
            "1 extra object (docs/e)",
            "2 content mismatches (docs/d, docs/b)",
            "SHA-256 of 1 sampled object read from both (seed 1)",
        ] {
            assert!(r.detail.contains(part), "`{part}` not in: {}", r.detail);
        }
    }
}
