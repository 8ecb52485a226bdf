//! Tests of row-count, freshness, schema and amcheck on a real cluster (`src` = source, `rst` = restore).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::testdb::TestDb;
use super::{CheckResult, CheckStatus, Context, run_check};
use crate::config::{AmcheckSpec, CheckSpec, FreshnessSpec, RowCountSpec, SchemaSpec, Tolerance};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc()
}

async fn check(ctx: &Context<'_>, spec: CheckSpec) -> CheckResult {
    run_check(&spec, ctx, Duration::from_secs(120)).await
}

const EVENTS: &str = "create table events (id int primary key, created_at timestamptz not null);
    insert into events select g, '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 second'
    from generate_series(1, 1000) g;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_count_against_the_source_with_tolerance_and_bounds() {
    let db = TestDb::start().await;
    db.both(EVENTS).await;
    db.rst.batch_execute("delete from events where id <= 5").await.unwrap();
    let target = t0() + chrono::Duration::seconds(500);
    let ctx = db.ctx(target);
    let spec = |tolerance, min| {
        CheckSpec::RowCount(RowCountSpec {
            table: "events".into(),
            until_column: Some("created_at".into()),
            compare_source: true,
            tolerance,
            min,
            max: None,
        })
    };
    let r = check(&ctx, spec(Tolerance::Rows(0), None)).await;
    assert_eq!(r.status, CheckStatus::Failed);
    assert_eq!(r.detail, "495 rows in the restore, 500 in the source (difference 5, tolerance 0)");
    let r = check(&ctx, spec(Tolerance::Percent(1.0), None)).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    let r = check(&ctx, spec(Tolerance::Rows(5), Some(600))).await;
    assert_eq!((r.status, r.detail.as_str()), (CheckStatus::Failed, "495 rows, below the minimum 600"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_is_within_the_lag_and_never_past_the_target() {
    let db = TestDb::start().await;
    db.both(EVENTS).await;
    let newest = t0() + chrono::Duration::seconds(1000);
    let spec =
        |max_lag| CheckSpec::Freshness(FreshnessSpec { table: "events".into(), column: "created_at".into(), max_lag });
    // 30 s behind the target: within the drill's RPO (60 s in these tests), not within 10 s.
    let ctx = db.ctx(newest + chrono::Duration::seconds(30));
    let r = check(&ctx, spec(None)).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    // A quiet source is not a stale restore: the source wrote nothing newer before the target either.
    let r = check(&ctx, spec(Some(Duration::from_secs(10)))).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    assert!(r.detail.contains("is the source's newest at or before the target"), "{}", r.detail);
    // Without a source to ask, 30 s behind is more than 10 s.
    let alone = Context { source: None, ..db.ctx(newest + chrono::Duration::seconds(30)) };
    let r = check(&alone, spec(Some(Duration::from_secs(10)))).await;
    assert_eq!(r.status, CheckStatus::Failed);
    assert!(r.detail.ends_with("is 30.0s before the target, more than 10.0s"), "{}", r.detail);
    // The source wrote a row 20 s after the restore's newest, still before the target: the restore lacks it.
    db.src
        .execute("insert into events (id, created_at) values (1001, $1)", &[&(newest + chrono::Duration::seconds(20))])
        .await
        .unwrap();
    let r = check(&ctx, spec(Some(Duration::from_secs(10)))).await;
    assert_eq!(r.status, CheckStatus::Failed, "{}", r.detail);
    // A lag that rounds to the limit's text says its seconds, so the message never contradicts itself.
    let ctx61 = Context { source: None, ..db.ctx(newest + chrono::Duration::milliseconds(60_400)) };
    let r = check(&ctx61, spec(None)).await;
    assert!(r.detail.ends_with("is 60.4s before the target, more than 1m 00s"), "{}", r.detail);
    db.src.batch_execute("delete from events where id = 1001").await.unwrap();
    // Data newer than the target: the restore went too far.
    let ctx = db.ctx(newest - chrono::Duration::seconds(60));
    let r = check(&ctx, spec(None)).await;
    assert_eq!(r.status, CheckStatus::Failed);
    assert!(r.detail.contains("is after the target"), "{}", r.detail);
    db.rst.batch_execute("truncate events").await.unwrap();
    let r = check(&db.ctx(newest), spec(None)).await;
    assert_eq!((r.status, r.detail.as_str()), (CheckStatus::Failed, "`events` has no rows in the restore"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_names_what_the_restore_lacks() {
    let db = TestDb::start().await;
    db.both(&format!("{EVENTS} create index events_created_idx on events (created_at); create table notes (id int);"))
        .await;
    // stackdrill's own tables are not part of the comparison.
    db.src.batch_execute("create table stackdrill_canary (id int)").await.unwrap();
    let all = CheckSpec::Schema(SchemaSpec { tables: None });
    let r = check(&db.ctx(t0()), all.clone()).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    assert_eq!(r.detail, "2 tables, 3 columns, 2 indexes match the source");
    db.rst.batch_execute("drop index events_created_idx; alter table notes add column body text").await.unwrap();
    let r = check(&db.ctx(t0()), all).await;
    assert_eq!(r.status, CheckStatus::Failed);
    assert!(r.detail.contains("missing from the restore: index public.events_created_idx"), "{}", r.detail);
    assert!(r.detail.contains("not in the source: column public.notes.body text"), "{}", r.detail);
    // Without a source, a listed set of tables must be present.
    let listed = CheckSpec::Schema(SchemaSpec { tables: Some(vec!["events".into(), "ghosts".into()]) });
    let ctx = Context { source: None, ..db.ctx(t0()) };
    let r = check(&ctx, listed).await;
    assert_eq!((r.status, r.detail.as_str()), (CheckStatus::Failed, "missing tables: ghosts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amcheck_names_a_corrupt_relation() {
    let mut db = TestDb::start().await;
    db.both(
        "create table heap (id int primary key, pad text);
         insert into heap select g, repeat('p', 50) from generate_series(1, 2000) g; checkpoint;",
    )
    .await;
    let spec = CheckSpec::Amcheck(AmcheckSpec { heapallindexed: true });
    let r = check(&db.ctx(t0()), spec.clone()).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    assert!(r.detail.starts_with("1 tables and 1 B-tree indexes are consistent"), "{}", r.detail);

    // While the server is down, point 50 line pointers of the first heap page past the end of the page
    // (LP_NORMAL, offset 0x7fff, length 100; little-endian ItemIdData).
    let rel: String = db.rst.query_one("select pg_relation_filepath('heap')", &[]).await.unwrap().get(0);
    let path = db.cluster.data().join(rel);
    db.cluster.stop(&db.bin, &db.user, Duration::from_secs(30)).await.unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    for lp in bytes[100..300].chunks_mut(4) {
        lp.copy_from_slice(&(0x7fff_u32 | (1 << 15) | (100 << 17)).to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    db.restart().await;
    let r = check(&db.ctx(t0()), spec).await;
    assert_eq!(r.status, CheckStatus::Failed, "{}", r.detail);
    assert!(r.detail.starts_with("corrupt: heap ("), "{}", r.detail);
}

/// `object-references` against a directory store: every row's object is there with its size and
/// checksum; then a missing object, a size mismatch, a checksum mismatch and an object without a row are
/// each named by key (never contents), a row key sorting between objects included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_references_name_missing_resized_corrupt_and_orphan_objects() {
    use sha2::Digest;
    let db = TestDb::start().await;
    let store = tempfile::tempdir().unwrap();
    db.rst.batch_execute("create table files (id int primary key, path text, bytes bigint, sha256 text, deleted boolean default false)").await.unwrap();
    for i in 0..200i32 {
        // Keys in every byte order S3 uses: upper case, digits, nested prefixes.
        let key = format!("t{}/{}File-{i}.bin", i % 3, if i % 2 == 0 { "A" } else { "b" });
        let body = format!("object {i}\n").repeat(1 + (i % 7) as usize);
        let path = store.path().join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &body).unwrap();
        let sum = hex::encode(sha2::Sha256::digest(body.as_bytes()));
        db.rst
            .execute(
                "insert into files values ($1, $2, $3, $4)",
                &[&i, &format!("uploads/{key}"), &(body.len() as i64), &sum],
            )
            .await
            .unwrap();
    }
    // A soft-deleted row whose object is gone: the `where` leaves it out.
    db.rst.batch_execute("insert into files values (999, 'uploads/gone.bin', 1, 'x', true)").await.unwrap();
    let spec = |sample: usize, orphans_fail: bool| {
        CheckSpec::ObjectRefs(crate::config::ObjectRefsSpec {
            name: None,
            table: "files".into(),
            key_column: "path".into(),
            size_column: Some("bytes".into()),
            checksum_column: Some("sha256".into()),
            algorithm: crate::config::ChecksumAlgorithm::Sha256,
            filter: Some("not deleted".into()),
            prefix: String::new(),
            sample,
            seed: Some(7),
            orphans_fail,
            store: crate::config::ObjectStoreSpec::Dir(store.path().to_path_buf()),
        })
    };
    // Row keys carry `uploads/`; the directory holds what is under it: the check's prefix is on rows here.
    db.rst.batch_execute("update files set path = substr(path, 9)").await.unwrap();
    let ctx = db.ctx(t0());
    let r = check(&ctx, spec(200, false)).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    assert!(
        r.detail.starts_with(
            "200 rows against 200 objects; checksums of 200 sampled rows (seed 7): every object is there with its size"
        ),
        "{}",
        r.detail
    );

    std::fs::remove_file(store.path().join("t1/bFile-1.bin")).unwrap();
    std::fs::write(store.path().join("t2/AFile-2.bin"), "longer than it was").unwrap();
    let corrupt = store.path().join("t0/AFile-0.bin");
    let mut body = std::fs::read(&corrupt).unwrap();
    body[0] ^= 1;
    std::fs::write(&corrupt, body).unwrap();
    std::fs::write(store.path().join("t0/zz-no-row.bin"), "stray").unwrap();
    let r = check(&ctx, spec(200, false)).await;
    assert_eq!(r.status, CheckStatus::Failed, "{}", r.detail);
    for part in [
        "1 missing object (t1/bFile-1.bin)",
        "1 size mismatch (t2/AFile-2.bin)",
        "2 checksum mismatches (t0/AFile-0.bin",
        "1 object without a row (t0/zz-no-row.bin) (reported, not a failure)",
    ] {
        assert!(r.detail.contains(part), "`{part}` not in: {}", r.detail);
    }
    assert!(!r.detail.contains("object 0"), "contents never appear: {}", r.detail);

    // Only the orphan left: reported, then failing with `orphans: fail`.
    let db2 = TestDb::start().await;
    db2.rst.batch_execute("create table files (id int primary key, path text, bytes bigint, sha256 text, deleted boolean default false)").await.unwrap();
    let only = tempfile::tempdir().unwrap();
    std::fs::write(only.path().join("a"), "a").unwrap();
    std::fs::write(only.path().join("b"), "b").unwrap();
    db2.rst.batch_execute("insert into files values (1, 'a', 1, null), (2, 'a', 1, null)").await.unwrap();
    let spec2 = |orphans_fail| match spec(10, orphans_fail) {
        CheckSpec::ObjectRefs(mut o) => {
            o.store = crate::config::ObjectStoreSpec::Dir(only.path().to_path_buf());
            CheckSpec::ObjectRefs(o)
        }
        _ => unreachable!(),
    };
    let ctx2 = db2.ctx(t0());
    let r = check(&ctx2, spec2(false)).await;
    assert_eq!(r.status, CheckStatus::Passed, "two rows may share an object: {}", r.detail);
    assert!(r.detail.contains("1 object without a row (b)"), "{}", r.detail);
    let r = check(&ctx2, spec2(true)).await;
    assert_eq!(r.status, CheckStatus::Failed, "{}", r.detail);
}

/// The heartbeat check on a real cluster: the recovery point is the restore's newest heartbeat; past the
/// target fails; for `latest` the reference is the source's newest heartbeat at the target; no table fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_is_the_recovery_point_measured_from_the_target_or_the_sources_newest() {
    use crate::config::HeartbeatSpec;
    let db = TestDb::start().await;
    let spec = |max_lag| CheckSpec::Heartbeat(HeartbeatSpec { max_lag });
    let r = check(&db.ctx(t0()), spec(None)).await;
    assert_eq!(r.status, CheckStatus::Failed);
    assert!(r.detail.contains("no `stackdrill.heartbeat` table"), "{}", r.detail);
    assert!(r.heartbeat.is_none());
    db.both(
        "create schema stackdrill; create table stackdrill.heartbeat (at timestamptz primary key);
         insert into stackdrill.heartbeat select '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 second'
         from generate_series(0, 100) g;",
    )
    .await;
    db.src
        .batch_execute(
            "insert into stackdrill.heartbeat select '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 second'
             from generate_series(101, 200) g",
        )
        .await
        .unwrap();
    let newest = t0() + chrono::Duration::seconds(100);
    // A target 5.5 s after the restore's newest heartbeat: RPO 5.5 s, within the 60 s objective, not 5 s.
    let target = newest + chrono::Duration::milliseconds(5500);
    let r = check(&db.ctx(target), spec(None)).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    let h = r.heartbeat.unwrap();
    assert_eq!((h.at, h.reference, h.rpo_seconds()), (newest, target, 5.5));
    let r = check(&db.ctx(target), spec(Some(Duration::from_secs(5)))).await;
    assert_eq!(r.status, CheckStatus::Failed);
    assert!(r.detail.contains("is 5.5s before the target"), "{}", r.detail);
    // The restore holds a heartbeat 3 s after the target: it went past it.
    let r = check(&db.ctx(newest - chrono::Duration::seconds(3)), spec(None)).await;
    assert_eq!(r.status, CheckStatus::Failed);
    assert!(r.detail.ends_with("is after the target: the restore went past it"), "{}", r.detail);
    // `latest`, planned at 150 s: the source's newest heartbeat then is the reference, 50 s after the restore's.
    let planned = t0() + chrono::Duration::milliseconds(150_400);
    let latest = Context { latest: true, ..db.ctx(planned) };
    let r = check(&latest, spec(None)).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    let h = r.heartbeat.unwrap();
    assert_eq!((h.reference, h.rpo_seconds()), (t0() + chrono::Duration::seconds(150), 50.0));
    let r = check(&latest, spec(Some(Duration::from_secs(10)))).await;
    assert_eq!(r.status, CheckStatus::Failed, "{}", r.detail);
    assert!(r.detail.contains("before the source's newest heartbeat"), "{}", r.detail);
    // Rows the copy wrote itself once it was up (its pg_cron job, before it was made inert), and one dated in
    // the future, are not the restored point: the RPO stays 50 s, not 0.
    db.rst
        .batch_execute("insert into stackdrill.heartbeat values ('2026-01-01T00:08:20Z'), ('2099-01-01T00:00:00Z')")
        .await
        .unwrap();
    let r = check(&latest, spec(None)).await;
    assert_eq!(r.status, CheckStatus::Passed, "{}", r.detail);
    assert_eq!(r.heartbeat.unwrap().rpo_seconds(), 50.0);
    // A writer that stopped: the source's newest row is 100 s older than the drill's start, more than the
    // 60 s objective. Nothing can be measured; it fails rather than reading "no loss".
    let stale = Context { latest: true, ..db.ctx(t0() + chrono::Duration::seconds(300)) };
    let r = check(&stale, spec(None)).await;
    assert_eq!(r.status, CheckStatus::Failed, "{}", r.detail);
    assert!(r.detail.contains("the heartbeat writer is not running"), "{}", r.detail);
}
