//! A bucket's listing in key order, page by page: as it is now (`ListObjectsV2`), or as it was at an
//! instant (`ListObjectVersions`: for each key the newest version or delete marker written at or before
//! it; a delete marker means absent). One request per 1,000 keys; nothing is read per object.
//!
//! Listings give `LastModified` to the second, so "as of T" is decided to the second: whatever was written
//! in T's second counts (a write at 12:00:00.7 counts for T = 12:00:00.3 — the restore holds everything
//! that may have existed at T). Entries of one key in one second are ordered as S3 orders them: the one
//! `IsLatest` marks is the newest, and a delete marker comes after the put it hides (the SDK gives versions
//! and delete markers in two lists, which loses S3's interleaved order).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

/// One object as a listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Obj {
    pub(crate) key: String,
    pub(crate) size: u64,
    /// The version current at the instant (an as-of listing).
    pub(crate) version: Option<String>,
    /// The ETag as S3 lists it, quotes removed.
    pub(crate) etag: Option<String>,
    pub(crate) modified: Option<DateTime<Utc>>,
}

/// A key being decided as of T: entries come newest first, and the first at or before T decides.
struct Pending {
    key: String,
    decided: bool,
    obj: Option<Obj>,
}

pub(crate) struct S3Listing {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    as_of: Option<DateTime<Utc>>,
    buffered: VecDeque<Obj>,
    token: Option<(Option<String>, Option<String>)>,
    done: bool,
    pending: Option<Pending>,
    /// List requests made so far.
    pub(crate) requests: usize,
}

fn time(d: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    d.and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos()))
}

fn unquote(e: Option<&str>) -> Option<String> {
    e.map(|e| e.trim_matches('"').to_string())
}

impl S3Listing {
    /// The objects under `prefix`, as of `as_of` (`None`: now).
    pub(crate) fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str, as_of: Option<DateTime<Utc>>) -> Self {
        S3Listing {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            as_of,
            buffered: VecDeque::new(),
            token: None,
            done: false,
            pending: None,
            requests: 0,
        }
    }

    /// The next object in key order, or `None` at the end.
    pub(crate) async fn peek(&mut self) -> Result<Option<&Obj>, String> {
        while self.buffered.is_empty() && !self.done {
            match self.as_of {
                None => self.fill_current().await?,
                Some(t) => self.fill_as_of(t).await?,
            }
        }
        Ok(self.buffered.front())
    }

    pub(crate) fn pop(&mut self) -> Option<Obj> {
        self.buffered.pop_front()
    }

    pub(crate) async fn next(&mut self) -> Result<Option<Obj>, String> {
        self.peek().await?;
        Ok(self.pop())
    }

    /// Every object, in key order.
    pub(crate) async fn all(&mut self) -> Result<Vec<Obj>, String> {
        let mut out = Vec::new();
        while let Some(o) = self.next().await? {
            out.push(o);
        }
        Ok(out)
    }

    async fn fill_current(&mut self) -> Result<(), String> {
        let token = self.token.take().and_then(|t| t.0);
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| crate::aws::classify("s3:ListBucket", &e).to_string())?;
        self.requests += 1;
        self.buffered.extend(page.contents().iter().filter_map(|o| {
            Some(Obj {
                key: o.key()?.to_string(),
                size: o.size().unwrap_or(0).max(0) as u64,
                version: None,
                etag: unquote(o.e_tag()),
                modified: time(o.last_modified()),
            })
        }));
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => self.token = Some((Some(t.to_string()), None)),
            _ => self.done = true,
        }
        Ok(())
    }

    /// One page of `ListObjectVersions`, decided as of `t`; a key whose decision may continue on the next
    /// page stays pending.
    async fn fill_as_of(&mut self, t: DateTime<Utc>) -> Result<(), String> {
        let (key_marker, version_marker) = self.token.take().unwrap_or((None, None));
        let page = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .map_err(|e| crate::aws::classify("s3:ListBucketVersions", &e).to_string())?;
        self.requests += 1;
        // To the second: what listings resolve.
        let at = |d: Option<&aws_smithy_types::DateTime>| d.map(|d| d.secs()).unwrap_or(i64::MAX);
        let t = t.timestamp();
        // Within one key and second: the latest first, then delete markers, then versions in S3's order.
        let (latest, marker, version) = (0u8, 1u8, 2u8);
        // (key, written, rank, the object, or None for a delete marker)
        let mut entries: Vec<(String, i64, u8, Option<Obj>)> = Vec::new();
        for v in page.versions() {
            let Some(key) = v.key() else { continue };
            let obj = Obj {
                key: key.to_string(),
                size: v.size().unwrap_or(0).max(0) as u64,
                version: v.version_id().map(str::to_string),
                etag: unquote(v.e_tag()),
                modified: time(v.last_modified()),
            };
            let rank = if v.is_latest() == Some(true) { latest } else { version };
            entries.push((key.to_string(), at(v.last_modified()), rank, Some(obj)));
        }
        for m in page.delete_markers() {
            if let Some(key) = m.key() {
                let rank = if m.is_latest() == Some(true) { latest } else { marker };
                entries.push((key.to_string(), at(m.last_modified()), rank, None));
            }
        }
        // Stable: versions keep S3's newest-first order within a rank.
        entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        for (key, written, _, obj) in entries {
            if self.pending.as_ref().is_some_and(|p| p.key != key) {
                self.buffered.extend(self.pending.take().and_then(|p| p.obj));
            }
            let p = self.pending.get_or_insert_with(|| Pending { key: key.clone(), decided: false, obj: None });
            if written <= t && !p.decided {
                p.decided = true;
                p.obj = obj;
            }
        }
        if page.is_truncated() == Some(true) {
            self.token =
                Some((page.next_key_marker().map(str::to_string), page.next_version_id_marker().map(str::to_string)));
        } else {
            self.done = true;
            self.buffered.extend(self.pending.take().and_then(|p| p.obj));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
    use aws_sdk_s3::types::{DeleteMarkerEntry, ObjectVersion};
    use aws_smithy_mocks::mock;
    use aws_smithy_types::DateTime as SdkTime;
    use chrono::{DateTime, Utc};

    use super::S3Listing;
    use crate::aws::mocked;

    /// 12:00:00 UTC on a day, plus `ms` milliseconds, as S3 would list it.
    fn at(ms: i64) -> SdkTime {
        SdkTime::from_millis(1_767_268_800_000 + ms)
    }

    /// Ties in one second resolve as S3 orders them (issue 29 item 8): `a` put then deleted within one second
    /// is absent (its delete marker is the latest); `b` deleted then put again in one second is present; of
    /// `c`'s two puts in one second the latest wins; `d`, written at 12:00:00.7, counts for T = 12:00:00.3
    /// (listings are one-second granular); `e`, written the next second, does not.
    #[tokio::test]
    async fn ties_within_a_second_resolve_as_s3_orders_them() {
        let version = |key: &str, id: &str, ms: i64, latest: bool| {
            ObjectVersion::builder().key(key).version_id(id).size(1).last_modified(at(ms)).is_latest(latest).build()
        };
        let marker = |key: &str, ms: i64, latest: bool| {
            DeleteMarkerEntry::builder().key(key).version_id("dm").last_modified(at(ms)).is_latest(latest).build()
        };
        let list = mock!(aws_sdk_s3::Client::list_object_versions).then_output(move || {
            ListObjectVersionsOutput::builder()
                .versions(version("a", "a1", 0, false))
                .versions(version("b", "b2", 0, true))
                .versions(version("b", "b1", -5_000, false))
                .versions(version("c", "c2", 0, true))
                .versions(version("c", "c1", 0, false))
                .versions(version("d", "d1", 700, true))
                .versions(version("e", "e2", 1_000, true))
                .versions(version("e", "e1", -60_000, false))
                .delete_markers(marker("a", 0, true))
                .delete_markers(marker("b", 0, false))
                .is_truncated(false)
                .build()
        });
        let s3 = mocked!(aws_sdk_s3, &[&list]);
        let t = DateTime::<Utc>::from_timestamp_millis(1_767_268_800_300).unwrap();
        let got = S3Listing::new(s3, "files", "", Some(t)).all().await.unwrap();
        let got: Vec<(&str, Option<&str>)> = got.iter().map(|o| (o.key.as_str(), o.version.as_deref())).collect();
        assert_eq!(got, [("b", Some("b2")), ("c", Some("c2")), ("d", Some("d1")), ("e", Some("e1"))]);
    }
}
