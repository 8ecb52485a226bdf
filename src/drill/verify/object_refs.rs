//! `object-references`: do the objects the restored rows point at exist, as they were? Rows of a table
//! (each naming an object key, optionally its size and checksum) are merged, in key order, with the
//! listing of an object store: an S3 bucket as of the drill's target (`ListObjectVersions`: the version
//! current at T, delete markers respected) or now (`ListObjectsV2`), or a directory. Sizes are compared for
//! every row from the listings alone (one request per 1,000 objects); checksums for a seeded random sample
//! of rows, by reading those objects. Missing objects, size and checksum mismatches are named by key
//! (never contents); objects without a row are reported, and fail the check only with `orphans: fail`.

use std::collections::VecDeque;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rand::SeedableRng;

use super::CheckError;
use super::check::{CheckResult, Context};
use crate::aws::s3list::{Obj, S3Listing};
use crate::config::{AsOf, CheckSpec, ChecksumAlgorithm, ObjectRefsSpec, ObjectStoreSpec};
use crate::report::model::CheckStatus;

/// Rows fetched per round trip.
const ROWS_PER_FETCH: i64 = 5000;
/// Keys named per kind of problem.
const NAMED: usize = 5;

/// One row: its object key (prefix applied), size and checksum as the table records them.
#[derive(Debug, Clone)]
struct RowRef {
    key: String,
    size: Option<i64>,
    checksum: Option<String>,
}

/// Where the objects are.
enum Store {
    Dir(PathBuf),
    S3 { client: aws_sdk_s3::Client, bucket: String, prefix: String, as_of: Option<DateTime<Utc>> },
}

/// A sorted listing of a store.
enum Listing {
    /// Read whole on the first look.
    Dir {
        root: PathBuf,
        objects: Option<VecDeque<Obj>>,
    },
    S3(Box<S3Listing>),
}

impl Listing {
    fn new(store: &Store) -> Self {
        match store {
            Store::Dir(root) => Listing::Dir { root: root.clone(), objects: None },
            Store::S3 { client, bucket, prefix, as_of } => {
                Listing::S3(Box::new(S3Listing::new(client.clone(), bucket, prefix, *as_of)))
            }
        }
    }

    /// The next object in key order, or `None` at the end.
    async fn peek(&mut self) -> Result<Option<&Obj>, CheckError> {
        match self {
            Listing::Dir { root, objects } => {
                if objects.is_none() {
                    *objects = Some(dir_listing(root)?.into());
                }
                Ok(objects.as_ref().and_then(VecDeque::front))
            }
            Listing::S3(l) => l.peek().await.map_err(CheckError::Listing),
        }
    }

    fn pop(&mut self) -> Option<Obj> {
        match self {
            Listing::Dir { objects, .. } => objects.as_mut().and_then(VecDeque::pop_front),
            Listing::S3(l) => l.pop(),
        }
    }

    fn requests(&self) -> usize {
        match self {
            Listing::Dir { .. } => 0,
            Listing::S3(l) => l.requests,
        }
    }
}

/// Every file under `root`, as keys relative to it (`/`-separated), sorted by bytes as S3 sorts keys.
fn dir_listing(root: &std::path::Path) -> Result<Vec<Obj>, CheckError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let rd = std::fs::read_dir(root.join(&rel))
            .map_err(CheckError::io("cannot list the object directory", root.join(&rel)))?;
        for d in rd.filter_map(Result::ok) {
            let p = rel.join(d.file_name());
            let meta = d.metadata().map_err(CheckError::io("cannot read", &p))?;
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.push(Obj {
                    key: p.to_string_lossy().into_owned(),
                    size: meta.len(),
                    version: None,
                    etag: None,
                    modified: None,
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// What the merge found.
#[derive(Default)]
struct Tally {
    rows: u64,
    objects: u64,
    missing: u64,
    missing_keys: Vec<String>,
    size_mismatches: u64,
    size_keys: Vec<String>,
    orphans: u64,
    orphan_keys: Vec<String>,
    /// Rows with an object and a checksum, reservoir-sampled: their objects are read in full.
    sample: super::check::Reservoir<(RowRef, Obj)>,
}

impl Tally {
    fn name(list: &mut Vec<String>, key: &str) {
        if list.len() < NAMED {
            list.push(key.to_string());
        }
    }

    fn orphan(&mut self, o: &Obj) {
        self.orphans += 1;
        Tally::name(&mut self.orphan_keys, &o.key);
    }
}

/// The SELECT the cursor walks: key (not null), size and checksum as text, in byte order of the key.
fn rows_query(o: &ObjectRefsSpec) -> String {
    let col = |c: &Option<String>, cast: &str| c.as_ref().map_or(format!("null::{cast}"), |c| format!("{c}::{cast}"));
    format!(
        "select {k}::text, {}, {} from {} where {k} is not null{} order by {k}::text collate \"C\"",
        col(&o.size_column, "bigint"),
        col(&o.checksum_column, "text"),
        o.table,
        o.filter.as_ref().map(|w| format!(" and ({w})")).unwrap_or_default(),
        k = o.key_column
    )
}

/// Walks the rows (a cursor in one read-only snapshot) and the listing together, in key order.
async fn merge(
    o: &ObjectRefsSpec,
    client: &tokio_postgres::Client,
    listing: &mut Listing,
    rng: &mut rand::rngs::StdRng,
) -> Result<Tally, CheckError> {
    let mut t = Tally::default();
    client
        .batch_execute(&format!(
            "begin isolation level repeatable read read only; declare sd_object_refs no scroll cursor for {}",
            rows_query(o)
        ))
        .await?;
    let mut last_matched: Option<String> = None;
    loop {
        let rows = client.query(&format!("fetch forward {ROWS_PER_FETCH} from sd_object_refs"), &[]).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let r = RowRef {
                key: format!("{}{}", o.prefix, row.get::<_, String>(0)),
                size: row.get(1),
                checksum: row.get(2),
            };
            t.rows += 1;
            // Objects before this row's key have no row (unless an earlier row matched them).
            while let Some(obj) = listing.peek().await?.filter(|obj| obj.key < r.key).cloned() {
                listing.pop();
                t.objects += 1;
                if last_matched.as_deref() != Some(obj.key.as_str()) {
                    t.orphan(&obj);
                }
            }
            match listing.peek().await?.filter(|obj| obj.key == r.key).cloned() {
                Some(obj) => {
                    if r.size.is_some_and(|s| s != obj.size as i64) {
                        t.size_mismatches += 1;
                        Tally::name(&mut t.size_keys, &r.key);
                    }
                    if r.checksum.is_some() {
                        t.sample.offer(o.sample, || (r.clone(), obj.clone()), rng);
                    }
                    last_matched = Some(obj.key);
                }
                None => {
                    t.missing += 1;
                    Tally::name(&mut t.missing_keys, &r.key);
                }
            }
        }
    }
    client.batch_execute("close sd_object_refs; commit").await?;
    while let Some(obj) = listing.pop_or_fetch().await? {
        t.objects += 1;
        if last_matched.as_deref() != Some(obj.key.as_str()) {
            t.orphan(&obj);
        }
    }
    Ok(t)
}

impl Listing {
    async fn pop_or_fetch(&mut self) -> Result<Option<Obj>, CheckError> {
        self.peek().await?;
        Ok(self.pop())
    }
}

/// The digest of an object's bytes, read in full.
async fn digest(store: &Store, obj: &Obj, algorithm: ChecksumAlgorithm) -> Result<Vec<u8>, CheckError> {
    use sha2::Digest;
    enum H {
        Sha(sha2::Sha256),
        Md5(md5::Md5),
    }
    let mut h = match algorithm {
        ChecksumAlgorithm::Sha256 => H::Sha(sha2::Sha256::new()),
        ChecksumAlgorithm::Md5 => H::Md5(<md5::Md5 as md5::Digest>::new()),
    };
    let mut feed = |b: &[u8]| match &mut h {
        H::Sha(s) => s.update(b),
        H::Md5(m) => md5::Digest::update(m, b),
    };
    match store {
        Store::Dir(root) => {
            use std::io::Read;
            let path = root.join(&obj.key);
            let mut f = std::fs::File::open(&path).map_err(CheckError::io("cannot read", &path))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf).map_err(CheckError::io("cannot read", &path))?;
                if n == 0 {
                    break;
                }
                feed(&buf[..n]);
            }
        }
        Store::S3 { client, bucket, .. } => {
            let out = client
                .get_object()
                .bucket(bucket)
                .key(&obj.key)
                .set_version_id(obj.version.clone())
                .send()
                .await
                .map_err(|e| crate::aws::classify("s3:GetObject", &e))?;
            let mut body = out.body;
            while let Some(chunk) = body.try_next().await? {
                feed(&chunk);
            }
        }
    }
    Ok(match h {
        H::Sha(s) => s.finalize().to_vec(),
        H::Md5(m) => md5::Digest::finalize(m).to_vec(),
    })
}

/// The row's checksum matches the digest: hex (any case) or base64, as tables store them.
fn checksum_matches(recorded: &str, digest: &[u8]) -> bool {
    use base64::Engine;
    let recorded = recorded.trim();
    recorded.eq_ignore_ascii_case(&hex::encode(digest))
        || base64::engine::general_purpose::STANDARD.decode(recorded).is_ok_and(|b| b == digest)
}

async fn open(o: &ObjectRefsSpec, ctx: &Context<'_>) -> Result<Store, CheckError> {
    Ok(match &o.store {
        ObjectStoreSpec::Dir(d) => {
            if !d.is_dir() {
                return Err(CheckError::Missing(format!("the object directory `{}` does not exist", d.display())));
            }
            Store::Dir(d.clone())
        }
        ObjectStoreSpec::S3 { bucket, prefix, as_of } => Store::S3 {
            client: crate::aws::s3_client(ctx.aws).await,
            bucket: bucket.clone(),
            prefix: prefix.clone().unwrap_or_else(|| o.prefix.clone()),
            as_of: (*as_of == AsOf::Target).then_some(ctx.target),
        },
        // The scratch bucket holds the instant's objects as they are now.
        ObjectStoreSpec::Restored(name) => {
            let b = ctx
                .restored
                .iter()
                .find(|b| &b.name == name)
                .ok_or_else(|| CheckError::Missing(format!("the bucket restore `{name}` did not complete")))?;
            Store::S3 { client: b.client.clone(), bucket: b.scratch.clone(), prefix: o.prefix.clone(), as_of: None }
        }
    })
}

pub(super) async fn verify(spec: &CheckSpec, o: &ObjectRefsSpec, ctx: &Context<'_>) -> CheckResult {
    let store = match open(o, ctx).await {
        Ok(s) => s,
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, e.to_string()),
    };
    let seed = o.seed.unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut listing = Listing::new(&store);
    let tally = match merge(o, ctx.restore, &mut listing, &mut rng).await {
        Ok(t) => t,
        Err(e) => {
            let _ = ctx.restore.batch_execute("rollback").await;
            return CheckResult::new(spec, CheckStatus::Error, e.to_string());
        }
    };
    let requests = listing.requests();
    // The sample's objects, read in full, eight at a time.
    let mut bad_sums = Vec::new();
    for chunk in tally.sample.items.chunks(8) {
        let mut reads = Vec::new();
        for (_, obj) in chunk {
            reads.push(digest(&store, obj, o.algorithm));
        }
        for ((r, _), d) in chunk.iter().zip(futures_util::future::join_all(reads).await) {
            match d {
                Ok(d) if r.checksum.as_deref().is_some_and(|c| checksum_matches(c, &d)) => {}
                Ok(_) => bad_sums.push(r.key.clone()),
                Err(e) => return CheckResult::new(spec, CheckStatus::Error, format!("reading `{}`: {e}", r.key)),
            }
        }
    }
    bad_sums.sort();
    summary(spec, o, &tally, &bad_sums, seed, requests)
}

/// `2 size mismatches (a, b)`: a count, its noun, and the first keys.
fn named(n: u64, (one, many): (&str, &str), keys: &[String]) -> String {
    let more = if n as usize > keys.len() { ", …" } else { "" };
    format!("{} ({}{more})", crate::config::count(n, one, many), keys.join(", "))
}

fn summary(
    spec: &CheckSpec,
    o: &ObjectRefsSpec,
    t: &Tally,
    bad_sums: &[String],
    seed: u64,
    requests: usize,
) -> CheckResult {
    let mut problems = Vec::new();
    if t.missing > 0 {
        problems.push(named(t.missing, ("missing object", "missing objects"), &t.missing_keys));
    }
    if t.size_mismatches > 0 {
        problems.push(named(t.size_mismatches, ("size mismatch", "size mismatches"), &t.size_keys));
    }
    if !bad_sums.is_empty() {
        let keys: Vec<String> = bad_sums.iter().take(NAMED).cloned().collect();
        problems.push(named(bad_sums.len() as u64, ("checksum mismatch", "checksum mismatches"), &keys));
    }
    let orphans = if t.orphans > 0 {
        Some(named(t.orphans, ("object without a row", "objects without a row"), &t.orphan_keys))
    } else {
        None
    };
    let fail = !problems.is_empty() || (o.orphans_fail && orphans.is_some());
    let when = match &o.store {
        ObjectStoreSpec::S3 { as_of: AsOf::Target, .. } => " as of the target",
        ObjectStoreSpec::S3 { as_of: AsOf::Now, .. } => " as of now",
        ObjectStoreSpec::Dir(_) => "",
        ObjectStoreSpec::Restored(_) => " in the restored bucket",
    };
    let sums = if o.checksum_column.is_some() {
        format!("; checksums of {} sampled rows (seed {seed})", t.sample.items.len())
    } else {
        String::new()
    };
    let mut detail = format!("{} rows against {} objects{when}{sums}: ", t.rows, t.objects);
    if problems.is_empty() {
        detail.push_str("every object is there");
        if o.size_column.is_some() {
            detail.push_str(" with its size");
        }
    } else {
        detail.push_str(&problems.join("; "));
    }
    if let Some(orph) = orphans {
        detail.push_str(&format!("; {orph}{}", if o.orphans_fail { "" } else { " (reported, not a failure)" }));
    }
    if requests > 0 {
        detail.push_str(&format!("; {requests} list requests"));
    }
    CheckResult::new(spec, if fail { CheckStatus::Failed } else { CheckStatus::Passed }, detail)
}
