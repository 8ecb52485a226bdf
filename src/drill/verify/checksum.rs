//! `checksum`: proves a table in the restore is row-for-row identical to the live source at the target.
//!
//! Rows are hashed inside each database (`hash_record_extended`, or the row's text where a column type has
//! no hash function) and folded per key range into count, sum and xor digests, so only a few hundred
//! numbers cross the wire. Ranges come from percentiles of the source's keys (`width_bucket` over a
//! sorted boundary array works for bigint, uuid and text alike, and a sub-range is an index range scan).
//! Both sides are hashed in parallel inside read-only snapshots. A range whose digests differ is split
//! again until it is small enough to compare key by key; only keys are ever reported, never row contents.
//! Composite keys are bucketed by a hash of the key instead, one level deep.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::session::{quote, table_exists, with_snapshot};
use super::{CheckError, CheckResult, CheckStatus, Context};
use crate::config::{CheckSpec, ChecksumSpec};

/// A range with at most this many rows on either side is compared key by key.
const LEAF_ROWS: i64 = 20_000;
const MAX_DEPTH: u32 = 8;
/// About this many keys are sampled to place range boundaries.
const SAMPLE_ROWS: f64 = 100_000.0;

pub(super) async fn verify(spec: &CheckSpec, c: &ChecksumSpec, ctx: &Context<'_>) -> CheckResult {
    let Some(source) = ctx.source else {
        return CheckResult::new(spec, CheckStatus::Error, "no source connection to compare with");
    };
    match compare(c, source, ctx).await {
        Ok((outcome, upto)) => outcome.result(spec, c, upto),
        Err(e) => CheckResult::new(spec, CheckStatus::Error, e.to_string()),
    }
}

async fn compare(
    c: &ChecksumSpec,
    source: &Client,
    ctx: &Context<'_>,
) -> Result<(Outcome, Option<DateTime<Utc>>), CheckError> {
    let settle = chrono::Duration::from_std(c.settle).unwrap_or_default();
    let window = c.until_column.as_ref().map(|_| (ctx.target - settle, ctx.target + settle));
    let cmp =
        Compare { spec: c, source, restore: ctx.restore, window, key: String::new(), key_type: None, row_hash: "" };
    let outcome = with_snapshot(&[source, ctx.restore], cmp.run()).await?;
    Ok((outcome, window.map(|w| w.0)))
}

struct Compare<'a> {
    spec: &'a ChecksumSpec,
    source: &'a Client,
    restore: &'a Client,
    /// (compare rows up to, rows after this are past the target) when `until-column` is set.
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// SQL for the key of row `t`.
    key: String,
    /// The key's SQL type for range bucketing; `None` buckets by key hash (composite keys).
    key_type: Option<String>,
    row_hash: &'static str,
}

#[derive(Default)]
struct Outcome {
    rows_source: i64,
    rows_restore: i64,
    ranges: usize,
    changed: Vec<String>,
    missing: Vec<String>,
    extra: Vec<String>,
    after_target: i64,
    after_keys: Vec<String>,
    truncated: bool,
    hash: &'static str,
    /// Rows whose key and hash were fetched into stackdrill (both sides); zero when the digests agree.
    fetched: usize,
}

#[derive(Clone, Debug)]
struct Range {
    lo: Option<String>,
    hi: Option<String>,
    depth: u32,
    rows: f64,
}

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
struct Digest {
    rows: i64,
    sum: i128,
    xor: i64,
}

/// A WHERE clause and its parameters, numbered as they are added.
#[derive(Default)]
struct Sql {
    conds: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    fn param(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    fn cond(&mut self, c: String) {
        self.conds.push(c);
    }

    fn where_clause(&self) -> String {
        if self.conds.is_empty() { "true".into() } else { self.conds.join(" and ") }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

impl Compare<'_> {
    async fn run(mut self) -> Result<Outcome, CheckError> {
        let spec = self.spec;
        for (side, c) in [("source", self.source), ("restore", self.restore)] {
            if !table_exists(c, &spec.table).await? {
                return Err(CheckError::Missing(format!("table `{}` does not exist in the {side}", spec.table)));
            }
        }
        let table = quote(&spec.table);
        if spec.key.len() == 1 {
            self.key = format!("t.{}", quote(&spec.key[0]));
            let row = self
                .source
                .query_opt(
                    "select format_type(atttypid, atttypmod) from pg_attribute \
                     where attrelid = $1::text::regclass and attname = $2 and attnum > 0 and not attisdropped",
                    &[&table, &spec.key[0]],
                )
                .await?
                .ok_or_else(|| CheckError::Missing(format!("`{}` has no column `{}`", spec.table, spec.key[0])))?;
            self.key_type = Some(row.get(0));
        } else {
            let cols: Vec<String> = spec.key.iter().map(|k| format!("t.{}", quote(k))).collect();
            self.key = format!("row({})", cols.join(", "));
        }
        // Hash each row by its columns' own hash functions; fall back to the row's text for types
        // without one (json, point, ...). Settings that change the text are pinned by the snapshot.
        // The probe runs inside the snapshot: a savepoint keeps its failure from aborting it.
        let probe = format!("select hash_record_extended(t, 0) from {table} t limit 1");
        self.source.batch_execute("savepoint stackdrill_probe").await?;
        self.row_hash = match self.source.query_opt(probe.as_str(), &[]).await {
            Ok(_) => "hash_record_extended(t, 0)",
            Err(_) => "hashtextextended(t::text, 0)",
        };
        self.source.batch_execute("rollback to savepoint stackdrill_probe").await?;
        let mut out = Outcome {
            hash: if self.row_hash.starts_with("hash_record") { "by column hash functions" } else { "by row text" },
            ..Outcome::default()
        };
        let estimate: f64 = self
            .source
            .query_one("select greatest(reltuples, 0)::float8 from pg_class where oid = $1::text::regclass", &[&table])
            .await?
            .get(0);
        if self.key_type.is_some() {
            self.by_ranges(&mut out, estimate).await?;
        } else {
            self.by_hash(&mut out).await?;
        }
        if let Some((_, after)) = self.window {
            let started = std::time::Instant::now();
            self.rows_after_target(&mut out, after).await?;
            tracing::debug!(table = %self.spec.table, ms = started.elapsed().as_millis() as u64, "checksum rows after the target");
        }
        Ok(out)
    }

    fn filter(&self, sql: &mut Sql, range: Option<&Range>) {
        if let (Some((upto, _)), Some(col)) = (self.window, &self.spec.until_column) {
            let p = sql.param(upto);
            sql.cond(format!("t.{} <= {p}::timestamptz", quote(col)));
        }
        let ty = self.key_type.as_deref().unwrap_or("text");
        if let Some(r) = range {
            if let Some(lo) = &r.lo {
                let p = sql.param(lo.clone());
                sql.cond(format!("{} >= {p}::text::{ty}", self.key));
            }
            if let Some(hi) = &r.hi {
                let p = sql.param(hi.clone());
                sql.cond(format!("{} < {p}::text::{ty}", self.key));
            }
        }
    }

    /// Range boundaries inside `r`: percentiles of the source's keys (sampled when the range is large).
    async fn boundaries(&self, r: &Range) -> Result<Vec<String>, CheckError> {
        let n = self.spec.buckets as usize;
        let fractions: Vec<f64> = (1..n).map(|i| i as f64 / n as f64).collect();
        let mut sql = Sql::default();
        self.filter(&mut sql, Some(r));
        let f = sql.param(fractions);
        let sample = if r.rows > SAMPLE_ROWS * 2.0 {
            format!(" tablesample system ({:.4})", (100.0 * SAMPLE_ROWS / r.rows).clamp(0.0001, 100.0))
        } else {
            String::new()
        };
        let q = format!(
            "select coalesce(array_agg(b::text order by b), '{{}}') from (select distinct unnest(
               (select percentile_disc({f}::float8[]) within group (order by k)
                from (select {key} as k from {table} t{sample} where {w}) s)) as b) u where b is not null",
            key = self.key,
            table = quote(&self.spec.table),
            w = sql.where_clause(),
        );
        let row = self.source.query_one(q.as_str(), &sql.refs()).await?;
        Ok(row.get(0))
    }

    /// Per-bucket digests of `r` on one side; bucket `i` holds keys in `[bounds[i-1], bounds[i])`.
    async fn digests(&self, c: &Client, r: &Range, bounds: &[String]) -> Result<BTreeMap<i32, Digest>, CheckError> {
        let ty = self.key_type.as_deref().unwrap_or("text");
        let mut sql = Sql::default();
        self.filter(&mut sql, Some(r));
        let b = sql.param(bounds.to_vec());
        let q = format!(
            "select width_bucket(k, {b}::text[]::{ty}[]), count(*), coalesce(sum(h), 0)::text, coalesce(bit_xor(h), 0)
             from (select {key} as k, {hash} as h from {table} t where {w} offset 0) s group by 1",
            key = self.key,
            hash = self.row_hash,
            table = quote(&self.spec.table),
            w = sql.where_clause(),
        );
        let started = std::time::Instant::now();
        let out = collect_digests(c, &q, &sql).await;
        let side = if std::ptr::eq(c, self.source) { "source" } else { "restore" };
        tracing::debug!(side, ms = started.elapsed().as_millis() as u64, "checksum digests");
        out
    }

    async fn by_ranges(&self, out: &mut Outcome, estimate: f64) -> Result<(), CheckError> {
        let mut work = vec![Range { lo: None, hi: None, depth: 0, rows: estimate }];
        while let Some(r) = work.pop() {
            if out.differences() >= self.spec.max_keys {
                out.truncated = true;
                break;
            }
            let started = std::time::Instant::now();
            let bounds = self.boundaries(&r).await?;
            let sampled = started.elapsed();
            let (src, rst) =
                tokio::try_join!(self.digests(self.source, &r, &bounds), self.digests(self.restore, &r, &bounds))?;
            tracing::debug!(
                table = %self.spec.table,
                depth = r.depth,
                ranges = bounds.len() + 1,
                boundaries_ms = sampled.as_millis() as u64,
                digests_ms = (started.elapsed() - sampled).as_millis() as u64,
                "checksum level"
            );
            out.ranges += src.len().max(rst.len());
            if r.depth == 0 {
                out.rows_source = src.values().map(|d| d.rows).sum();
                out.rows_restore = rst.values().map(|d| d.rows).sum();
            }
            for b in mismatched(&src, &rst).into_iter().rev() {
                let idx = b as usize;
                let sub = Range {
                    lo: if idx == 0 { r.lo.clone() } else { bounds.get(idx - 1).cloned() },
                    hi: if idx >= bounds.len() { r.hi.clone() } else { bounds.get(idx).cloned() },
                    depth: r.depth + 1,
                    rows: src.get(&b).map_or(0, |d| d.rows).max(rst.get(&b).map_or(0, |d| d.rows)) as f64,
                };
                let stuck = bounds.is_empty() || (sub.lo == r.lo && sub.hi == r.hi);
                if sub.rows <= LEAF_ROWS as f64 || sub.depth >= MAX_DEPTH || stuck {
                    let mut sql = Sql::default();
                    self.filter(&mut sql, Some(&sub));
                    self.leaf(out, &sql).await?;
                } else {
                    work.push(sub);
                }
            }
        }
        Ok(())
    }

    async fn by_hash(&self, out: &mut Outcome) -> Result<(), CheckError> {
        let mask = (self.spec.buckets.next_power_of_two() - 1) as i64;
        let bucket = format!("(hashtextextended(({})::text, 1) & {mask})::int", self.key);
        let mut sql = Sql::default();
        self.filter(&mut sql, None);
        let q = format!(
            "select b, count(*), coalesce(sum(h), 0)::text, coalesce(bit_xor(h), 0)
             from (select {bucket} as b, {hash} as h from {table} t where {w} offset 0) s group by 1",
            hash = self.row_hash,
            table = quote(&self.spec.table),
            w = sql.where_clause(),
        );
        let (src, rst) =
            tokio::try_join!(collect_digests(self.source, &q, &sql), collect_digests(self.restore, &q, &sql))?;
        out.ranges = src.len().max(rst.len());
        out.rows_source = src.values().map(|d| d.rows).sum();
        out.rows_restore = rst.values().map(|d| d.rows).sum();
        for b in mismatched(&src, &rst) {
            if out.differences() >= self.spec.max_keys {
                out.truncated = true;
                break;
            }
            let mut sql = Sql::default();
            self.filter(&mut sql, None);
            let p = sql.param(b);
            sql.cond(format!("{bucket} = {p}"));
            self.leaf(out, &sql).await?;
        }
        Ok(())
    }

    /// Compares the rows selected by `sql` key by key on both sides.
    async fn leaf(&self, out: &mut Outcome, sql: &Sql) -> Result<(), CheckError> {
        let q = format!(
            "select ({key})::text, {hash} from {table} t where {w}",
            key = self.key,
            hash = self.row_hash,
            table = quote(&self.spec.table),
            w = sql.where_clause(),
        );
        let (src, rst) = tokio::try_join!(fetch_hashes(self.source, &q, sql), fetch_hashes(self.restore, &q, sql))?;
        out.fetched += src.len() + rst.len();
        let mut keys: Vec<&String> = src.keys().chain(rst.keys().filter(|k| !src.contains_key(*k))).collect();
        keys.sort();
        for k in keys {
            let differs = match (src.get(k), rst.get(k)) {
                (Some(a), Some(b)) => a != b,
                _ => true,
            };
            if !differs {
                continue;
            }
            if out.differences() >= self.spec.max_keys {
                out.truncated = true;
                return Ok(());
            }
            match (src.contains_key(k), rst.contains_key(k)) {
                (true, true) => out.changed.push(k.clone()),
                (true, false) => out.missing.push(k.clone()),
                _ => out.extra.push(k.clone()),
            }
        }
        Ok(())
    }

    /// Rows in the restore written after the target (beyond the settle margin) mean it went too far.
    async fn rows_after_target(&self, out: &mut Outcome, after: DateTime<Utc>) -> Result<(), CheckError> {
        let Some(col) = &self.spec.until_column else { return Ok(()) };
        let q = format!(
            "select count(*), coalesce((array_agg(({key})::text order by {key}))[1:{n}], '{{}}')
             from {table} t where t.{col} > $1::timestamptz",
            key = self.key,
            n = self.spec.max_keys,
            table = quote(&self.spec.table),
            col = quote(col),
        );
        let row = self.restore.query_one(q.as_str(), &[&after]).await?;
        out.after_target = row.get(0);
        out.after_keys = row.get(1);
        Ok(())
    }
}

async fn fetch_hashes(c: &Client, q: &str, sql: &Sql) -> Result<HashMap<String, i64>, CheckError> {
    let rows = c.query(q, &sql.refs()).await?;
    Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect())
}

async fn collect_digests(c: &Client, q: &str, sql: &Sql) -> Result<BTreeMap<i32, Digest>, CheckError> {
    let rows = c.query(q, &sql.refs()).await?;
    rows.iter()
        .map(|r| {
            let sum: String = r.get(2);
            let sum =
                sum.parse::<i128>().map_err(|e| CheckError::Unexpected(format!("unexpected digest `{sum}`: {e}")))?;
            Ok((r.get::<_, i32>(0), Digest { rows: r.get(1), sum, xor: r.get(3) }))
        })
        .collect()
}

/// Buckets whose digests differ (or that exist on one side only), in bucket order.
fn mismatched(a: &BTreeMap<i32, Digest>, b: &BTreeMap<i32, Digest>) -> Vec<i32> {
    let mut keys: Vec<i32> = a.keys().chain(b.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().filter(|k| a.get(k) != b.get(k)).collect()
}

impl Outcome {
    fn differences(&self) -> usize {
        self.changed.len() + self.missing.len() + self.extra.len()
    }

    fn result(&self, spec: &CheckSpec, c: &ChecksumSpec, upto: Option<DateTime<Utc>>) -> CheckResult {
        let scope = match (upto, &c.until_column) {
            (Some(t), Some(col)) => {
                format!(" with {col} <= {}", t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            }
            _ => String::new(),
        };
        let mut problems = Vec::new();
        let list = |v: &[String]| v.join(", ");
        if !self.changed.is_empty() {
            problems.push(format!("changed: {}", list(&self.changed)));
        }
        if !self.missing.is_empty() {
            problems.push(format!("missing from the restore: {}", list(&self.missing)));
        }
        if !self.extra.is_empty() {
            problems.push(format!("only in the restore: {}", list(&self.extra)));
        }
        if self.after_target > 0 {
            problems.push(format!(
                "{} rows written after the target are in the restore: {}",
                self.after_target,
                list(&self.after_keys)
            ));
        }
        if problems.is_empty() && self.rows_source != self.rows_restore {
            problems.push(format!("{} rows in the source, {} in the restore", self.rows_source, self.rows_restore));
        }
        if problems.is_empty() {
            return CheckResult::new(
                spec,
                CheckStatus::Passed,
                format!(
                    "{} rows{scope} identical on both sides ({} key ranges; rows hashed in each database {})",
                    self.rows_source, self.ranges, self.hash
                ),
            );
        }
        let more = if self.truncated { format!(" (first {} differing keys shown)", c.max_keys) } else { String::new() };
        CheckResult::new(spec, CheckStatus::Failed, format!("rows{scope} differ — {}{more}", problems.join("; ")))
    }
}

// The slow test tier (`--features slow-tests`): real PostgreSQL clusters.
#[cfg(all(test, feature = "slow-tests"))]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "slow-tier test code")]
mod tests {
    use std::time::Duration;

    use chrono::{DateTime, Utc};

    use super::super::testdb::TestDb;
    use super::*;

    fn spec(table: &str, key: &[&str], until: Option<&str>) -> ChecksumSpec {
        ChecksumSpec {
            table: table.into(),
            key: key.iter().map(|k| k.to_string()).collect(),
            until_column: until.map(str::to_string),
            settle: Duration::from_secs(1),
            max_keys: 10,
            buckets: 64,
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc()
    }

    const LEDGER: &str = "create table ledger (id bigint primary key, account text, amount numeric(18,4), note text,
          created_at timestamptz not null);
        insert into ledger select g, 'acct-' || (g % 97), (g % 1000) / 7.0,
          case when g % 10 = 0 then null else 'nöte ✓ ' || g end,
          '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 second' from generate_series(1, 50000) g;";

    async fn run(db: &TestDb, s: &ChecksumSpec, target: DateTime<Utc>) -> (Outcome, CheckResult) {
        let (out, upto) = compare(s, &db.src, &db.ctx(target)).await.unwrap();
        let result = out.result(&CheckSpec::Checksum(s.clone()), s, upto);
        (out, result)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changed_missing_extra_and_late_rows_are_named_by_key() {
        let db = TestDb::start().await;
        db.both(LEDGER).await;
        let target = t0() + chrono::Duration::seconds(40_000);
        // A restore to the target holds nothing written after it.
        db.rst.batch_execute("delete from ledger where created_at > '2026-01-01T11:06:40Z'").await.unwrap();
        let s = spec("ledger", &["id"], Some("created_at"));
        let (clean, result) = run(&db, &s, target).await;
        assert_eq!(result.status, CheckStatus::Passed, "{}", result.detail);
        assert_eq!(clean.rows_source, 39_999);
        assert_eq!(clean.fetched, 0, "a clean comparison moves no rows into stackdrill");

        db.rst
            .batch_execute(
                "update ledger set amount = amount + 1 where id = 777;
                 delete from ledger where id = 1234;
                 insert into ledger values (100001, 'x', 1, 'only in the restore', '2026-01-01T01:00:00Z'),
                                           (100002, 'x', 1, 'after the target', '2026-01-01T12:00:00Z');",
            )
            .await
            .unwrap();
        let (out, result) = run(&db, &s, target).await;
        assert_eq!(result.status, CheckStatus::Failed);
        assert_eq!(out.changed, ["777"]);
        assert_eq!(out.missing, ["1234"]);
        assert_eq!(out.extra, ["100001"]);
        assert_eq!((out.after_target, out.after_keys.clone()), (1, vec!["100002".to_string()]));
        assert!(out.fetched < 3 * LEAF_ROWS as usize, "only the differing ranges are fetched: {}", out.fetched);
        for needle in ["changed: 777", "missing from the restore: 1234", "only in the restore: 100001", "100002"] {
            assert!(result.detail.contains(needle), "{}", result.detail);
        }
        // Keys only: no row contents in the detail.
        assert!(!result.detail.contains("nöte") && !result.detail.contains("only in the restore'"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_immutable_row_changed_on_the_source_after_the_target_is_a_mismatch() {
        let db = TestDb::start().await;
        db.both(LEDGER).await;
        let target = t0() + chrono::Duration::seconds(60_000);
        db.src.batch_execute("update ledger set note = 'rewritten later' where id = 10").await.unwrap();
        let (out, result) = run(&db, &spec("ledger", &["id"], Some("created_at")), target).await;
        assert_eq!(result.status, CheckStatus::Failed);
        assert_eq!(out.changed, ["10"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_values_in_a_different_physical_layout_match() {
        let db = TestDb::start().await;
        let create = "create table mixed (id text primary key, u uuid, n numeric, f float8, ts timestamptz,
                        j jsonb, b bytea, maybe text);";
        db.both(create).await;
        let fill = |order: &str| {
            format!(
                "insert into mixed select 'ключ-' || g || '-🔑', md5(g::text)::uuid, g * 1.25, g / 3.0::float8,
                   '2026-03-01 12:00:00+08'::timestamptz + g * interval '1 minute',
                   jsonb_build_object('g', g, 'ü', array[g, -g]), decode(md5(g::text), 'hex'),
                   case when g % 3 = 0 then null else 'v' || g end
                 from generate_series(1, 20000) g order by g {order}"
            )
        };
        db.src.batch_execute(&fill("asc")).await.unwrap();
        db.rst.batch_execute(&fill("desc")).await.unwrap();
        // New tuple versions, then a rewrite: nothing is where it was on the source.
        for stmt in [
            "update mixed set n = n, maybe = maybe",
            "vacuum full mixed",
            "alter database rst set timezone = 'Asia/Singapore'",
        ] {
            db.rst.batch_execute(stmt).await.unwrap();
        }
        let (out, result) = run(&db, &spec("mixed", &["id"], None), t0()).await;
        assert_eq!(result.status, CheckStatus::Passed, "{}", result.detail);
        assert_eq!((out.rows_source, out.fetched), (20_000, 0));
        assert!(result.detail.contains("by column hash functions"), "{}", result.detail);

        // A type without a hash function (json, point) falls back to hashing the row's text.
        db.both("create table odd (id int primary key, j json, p point);").await;
        db.src
            .batch_execute(
                "insert into odd select g, json_build_object('g', g), point(g, -g) from generate_series(1, 500) g",
            )
            .await
            .unwrap();
        db.rst
            .batch_execute(
                "insert into odd select g, json_build_object('g', g), point(g, -g) from generate_series(500, 1, -1) g",
            )
            .await
            .unwrap();
        let (_, result) = run(&db, &spec("odd", &["id"], None), t0()).await;
        assert_eq!(result.status, CheckStatus::Passed, "{}", result.detail);
        assert!(result.detail.contains("by row text"), "{}", result.detail);
        db.rst.batch_execute("update odd set p = point(0, 0) where id = 42").await.unwrap();
        let (out, _) = run(&db, &spec("odd", &["id"], None), t0()).await;
        assert_eq!(out.changed, ["42"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uuid_and_composite_keys_name_the_differing_key() {
        let db = TestDb::start().await;
        db.both(
            "create table docs (id uuid primary key, body text);
             insert into docs select md5(g::text)::uuid, 'body ' || g from generate_series(1, 30000) g;
             create table seats (tenant int, id int, name text, primary key (tenant, id));
             insert into seats select g % 7, g, 'seat ' || g from generate_series(1, 30000) g;",
        )
        .await;
        db.rst
            .batch_execute(&format!(
                "update docs set body = 'changed' where id = '{}'; update seats set name = 'moved' where tenant = 3 and id = 45",
                "c4ca4238-a0b9-2382-0dcc-509a6f75849b"
            ))
            .await
            .unwrap();
        let (out, _) = run(&db, &spec("docs", &["id"], None), t0()).await;
        assert_eq!(out.changed, ["c4ca4238-a0b9-2382-0dcc-509a6f75849b"]);
        let (out, result) = run(&db, &spec("seats", &["tenant", "id"], None), t0()).await;
        assert_eq!(out.changed, ["(3,45)"], "{}", result.detail);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn integer_keys_skewed_negative_or_spanning_the_whole_range_find_the_differing_key() {
        let db = TestDb::start().await;
        db.both(
            "create table skew (id bigint primary key, v text);
             insert into skew select g::int8 * g * g, 'v' || g from generate_series(-2000, 2000) g;
             create table wide (id bigint primary key, v text);
             insert into wide values (-9223372036854775807, 'min'), (9223372036854775806, 'max');
             insert into wide select g, 'v' || g from generate_series(1, 5000) g;
             create table small (id smallint primary key, v text);
             insert into small select g, 'v' || g from generate_series(-300, 300) g;",
        )
        .await;
        db.rst
            .batch_execute(
                "update skew set v = 'x' where id = -27000; delete from skew where id = 8;
                 insert into skew values (-9000000000000000000, 'below the source');
                 update wide set v = 'x' where id = 9223372036854775806; update small set v = 'x' where id = -7;",
            )
            .await
            .unwrap();
        let (out, result) = run(&db, &spec("skew", &["id"], None), t0()).await;
        assert_eq!(
            (out.changed.clone(), out.missing.clone(), out.extra.clone()),
            (vec!["-27000".to_string()], vec!["8".to_string()], vec!["-9000000000000000000".to_string()]),
            "{}",
            result.detail
        );
        let (out, result) = run(&db, &spec("wide", &["id"], None), t0()).await;
        assert_eq!(out.changed, ["9223372036854775806"], "{}", result.detail);
        let (out, result) = run(&db, &spec("small", &["id"], None), t0()).await;
        assert_eq!(out.changed, ["-7"], "{}", result.detail);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_table_is_compared_without_moving_it_into_the_client() {
        let db = TestDb::start().await;
        db.both(
            "create table big (id bigint primary key, pad text);
             insert into big select g, md5(g::text) from generate_series(1, 1000000) g;",
        )
        .await;
        let s = spec("big", &["id"], None);
        let (out, result) = run(&db, &s, t0()).await;
        assert_eq!(result.status, CheckStatus::Passed, "{}", result.detail);
        assert_eq!((out.rows_source, out.fetched), (1_000_000, 0));
        db.rst.batch_execute("update big set pad = 'x' where id = 654321").await.unwrap();
        let (out, _) = run(&db, &s, t0()).await;
        assert_eq!(out.changed, ["654321"]);
        assert!(out.fetched <= 2 * LEAF_ROWS as usize, "fetched {} of 2,000,000 rows", out.fetched);
    }
}
