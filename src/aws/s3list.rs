//! A bucket's listing in key order, page by page: as it is now (`ListObjectsV2`), or as it was at an
//! instant (`ListObjectVersions`: for each key the newest version or delete marker written at or before
//! it; a delete marker means absent). One request per 1,000 keys; nothing is read per object.

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
        let at = |d| time(d).unwrap_or(DateTime::<Utc>::MAX_UTC);
        // (key, written, the object, or None for a delete marker)
        let mut entries: Vec<(String, DateTime<Utc>, Option<Obj>)> = Vec::new();
        for v in page.versions() {
            let Some(key) = v.key() else { continue };
            let obj = Obj {
                key: key.to_string(),
                size: v.size().unwrap_or(0).max(0) as u64,
                version: v.version_id().map(str::to_string),
                etag: unquote(v.e_tag()),
                modified: time(v.last_modified()),
            };
            entries.push((key.to_string(), at(v.last_modified()), Some(obj)));
        }
        for m in page.delete_markers() {
            if let Some(key) = m.key() {
                entries.push((key.to_string(), at(m.last_modified()), None));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        for (key, written, obj) in entries {
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
