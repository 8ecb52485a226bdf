//! The source's heartbeat: `stackdrill.heartbeat(at timestamptz primary key)`, a row every few seconds, so the
//! newest row in any restore is the recovery point that restore really reached (`verify/heartbeat.rs`).
//!
//! The writer is pg_cron where the source's database has pg_cron 1.5 or newer (it takes `'N seconds'`); else
//! stackdrill writes the rows itself (`stackdrill heartbeat run`). Besides the canary, `install`, `remove` and
//! that writer are the only writes stackdrill ever makes to a source, each through the drill's own source
//! login (TLS, bounded sessions: `source.rs`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::inert::HEARTBEAT_JOB;
use super::verify::{HEARTBEAT_TABLE, db_error};

/// The oldest pg_cron that takes a schedule in seconds.
const CRON_SECONDS_SINCE: (u32, u32) = (1, 5);

#[derive(Debug, thiserror::Error)]
pub(crate) enum HeartbeatError {
    #[error("cannot {what} on the source: {detail}")]
    Db { what: &'static str, detail: String },
    #[error("--every {every}: pg_cron takes whole seconds from 1 to 59")]
    Interval { every: String },
}

impl HeartbeatError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            HeartbeatError::Db { detail, .. } if detail.contains("permission denied") => Some(
                "the drill's source user needs CREATE on the database (or a schema `stackdrill` it owns) to install; \
                 USAGE on schema cron for the pg_cron job; see README \"Heartbeat\""
                    .into(),
            ),
            HeartbeatError::Db { .. } => None,
            HeartbeatError::Interval { .. } => Some("give e.g. --every 5s".into()),
        }
    }

    fn db(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> HeartbeatError {
        move |e| HeartbeatError::Db { what, detail: db_error(&e) }
    }
}

/// Who writes the rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Writer {
    /// A pg_cron job in the source's database.
    PgCron { version: String, schedule: String },
    /// `stackdrill heartbeat run` must run (pg_cron absent from this database, or older than 1.5).
    Stackdrill { why: String },
}

/// The pg_cron version in the connected database, when the extension is there.
async fn cron_version(client: &tokio_postgres::Client) -> Result<Option<String>, HeartbeatError> {
    let row = client
        .query_opt("select extversion::text from pg_extension where extname = 'pg_cron'", &[])
        .await
        .map_err(HeartbeatError::db("read pg_extension"))?;
    Ok(row.map(|r| r.get(0)))
}

/// `1.6.4` → (1, 6); anything unreadable is (0, 0), too old.
fn major_minor(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.trim().parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// pg_cron's schedule for a row every `every`: `'N seconds'`, N from 1 to 59.
pub(crate) fn cron_schedule(every: Duration) -> Result<String, HeartbeatError> {
    let secs = every.as_secs();
    if every.subsec_nanos() != 0 || !(1..=59).contains(&secs) {
        return Err(HeartbeatError::Interval { every: humantime::format_duration(every).to_string() });
    }
    Ok(format!("{secs} seconds"))
}

/// One heartbeat, and the rows older than `keep` pruned: the job's command and the writer's statement.
pub(crate) fn write_sql(keep: Duration) -> String {
    format!(
        "insert into {HEARTBEAT_TABLE} (at) values (clock_timestamp()) on conflict do nothing; \
         delete from {HEARTBEAT_TABLE} where at < clock_timestamp() - interval '{} seconds'",
        keep.as_secs().max(1)
    )
}

/// What `install` did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Installed {
    pub(crate) table: &'static str,
    pub(crate) writer: Writer,
}

/// Creates the schema and table (if missing) and, with pg_cron ≥ 1.5 in this database, schedules (or
/// re-schedules: pg_cron replaces a job of the same name) the job. Idempotent.
pub(crate) async fn install(
    client: &tokio_postgres::Client,
    every: Duration,
    keep: Duration,
) -> Result<Installed, HeartbeatError> {
    client
        .batch_execute(&format!(
            "create schema if not exists stackdrill; \
             create table if not exists {HEARTBEAT_TABLE} (at timestamptz primary key); \
             comment on table {HEARTBEAT_TABLE} is 'stackdrill heartbeat: one row every few seconds; the newest row \
             in a restore is its recovery point'"
        ))
        .await
        .map_err(HeartbeatError::db("create the heartbeat table"))?;
    let writer = match cron_version(client).await? {
        Some(v) if major_minor(&v) >= CRON_SECONDS_SINCE => {
            let schedule = cron_schedule(every)?;
            client
                .execute(
                    "select cron.schedule_in_database($1, $2, $3, current_database())",
                    &[&HEARTBEAT_JOB, &schedule, &write_sql(keep)],
                )
                .await
                .map_err(HeartbeatError::db("schedule the pg_cron job"))?;
            Writer::PgCron { version: v, schedule }
        }
        Some(v) => Writer::Stackdrill { why: format!("pg_cron {v} here takes no schedule in seconds (1.5 does)") },
        None => Writer::Stackdrill { why: "no pg_cron in this database".into() },
    };
    Ok(Installed { table: HEARTBEAT_TABLE, writer })
}

/// The heartbeat as the source has it now.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Status {
    pub(crate) table: bool,
    pub(crate) rows: i64,
    pub(crate) newest: Option<DateTime<Utc>>,
    /// Seconds between the newest row and the source's clock now.
    pub(crate) age_seconds: Option<f64>,
    pub(crate) pg_cron: Option<String>,
    /// The pg_cron job: its schedule and whether it is active.
    pub(crate) job: Option<Job>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Job {
    pub(crate) jobid: i64,
    pub(crate) schedule: String,
    pub(crate) active: bool,
}

pub(crate) async fn status(client: &tokio_postgres::Client) -> Result<Status, HeartbeatError> {
    let table: bool = client
        .query_one("select to_regclass($1) is not null", &[&HEARTBEAT_TABLE])
        .await
        .map_err(HeartbeatError::db("look for the heartbeat table"))?
        .get(0);
    let (mut rows, mut newest, mut age_seconds): (i64, Option<DateTime<Utc>>, Option<f64>) = (0, None, None);
    if table {
        let r = client
            .query_one(
                &format!(
                    "select count(*), max(at), extract(epoch from clock_timestamp() - max(at))::float8 \
                     from {HEARTBEAT_TABLE}"
                ),
                &[],
            )
            .await
            .map_err(HeartbeatError::db("read the heartbeat table"))?;
        (rows, newest, age_seconds) = (r.get(0), r.get(1), r.get(2));
    }
    let pg_cron = cron_version(client).await?;
    let job = if pg_cron.is_some() {
        client
            .query_opt(
                "select jobid::bigint, schedule::text, active from cron.job where jobname = $1 limit 1",
                &[&HEARTBEAT_JOB],
            )
            .await
            .map_err(HeartbeatError::db("read cron.job"))?
            .map(|r| Job { jobid: r.get(0), schedule: r.get(1), active: r.get(2) })
    } else {
        None
    };
    Ok(Status { table, rows, newest, age_seconds, pg_cron, job })
}

/// What `remove` did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Removed {
    pub(crate) job_unscheduled: bool,
    pub(crate) table_dropped: bool,
    /// The schema `stackdrill` stayed (something else is in it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) schema_kept: Option<String>,
}

/// Unschedules the job (when pg_cron is here), drops the table, and the schema when it is empty. Idempotent.
pub(crate) async fn remove(client: &tokio_postgres::Client) -> Result<Removed, HeartbeatError> {
    let mut job_unscheduled = false;
    if cron_version(client).await?.is_some() {
        let n = client
            .execute("select cron.unschedule(jobid) from cron.job where jobname = $1", &[&HEARTBEAT_JOB])
            .await
            .map_err(HeartbeatError::db("unschedule the pg_cron job"))?;
        job_unscheduled = n > 0;
    }
    let table_dropped: bool = client
        .query_one("select to_regclass($1) is not null", &[&HEARTBEAT_TABLE])
        .await
        .map_err(HeartbeatError::db("look for the heartbeat table"))?
        .get(0);
    client
        .batch_execute(&format!("drop table if exists {HEARTBEAT_TABLE}"))
        .await
        .map_err(HeartbeatError::db("drop the heartbeat table"))?;
    // Restrict: a schema someone else put things in stays.
    let schema_kept = match client.batch_execute("drop schema if exists stackdrill").await {
        Ok(()) => None,
        Err(e) => Some(db_error(&e)),
    };
    Ok(Removed { job_unscheduled, table_dropped, schema_kept })
}

/// One heartbeat row now, and (when `prune`) rows older than `keep` deleted.
pub(crate) async fn beat(client: &tokio_postgres::Client, keep: Duration, prune: bool) -> Result<(), HeartbeatError> {
    let sql = if prune {
        write_sql(keep)
    } else {
        format!("insert into {HEARTBEAT_TABLE} (at) values (clock_timestamp()) on conflict do nothing")
    };
    client.batch_execute(&sql).await.map_err(HeartbeatError::db("write a heartbeat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_cron_takes_seconds_from_1_5_and_1_to_59_of_them() {
        assert!(major_minor("1.5") >= CRON_SECONDS_SINCE);
        assert!(major_minor("1.6.4") >= CRON_SECONDS_SINCE);
        assert!(major_minor("2.0") >= CRON_SECONDS_SINCE);
        assert!(major_minor("1.4-1") < CRON_SECONDS_SINCE);
        assert!(major_minor("1.4.2") < CRON_SECONDS_SINCE);
        assert!(major_minor("garbage") < CRON_SECONDS_SINCE);
        assert_eq!(cron_schedule(Duration::from_secs(5)).unwrap(), "5 seconds");
        assert_eq!(cron_schedule(Duration::from_secs(59)).unwrap(), "59 seconds");
        for bad in [Duration::ZERO, Duration::from_secs(60), Duration::from_millis(1500)] {
            assert!(cron_schedule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_job_inserts_a_row_and_prunes_past_the_window() {
        let sql = write_sql(Duration::from_secs(35 * 86_400));
        assert_eq!(
            sql,
            "insert into stackdrill.heartbeat (at) values (clock_timestamp()) on conflict do nothing; delete from \
             stackdrill.heartbeat where at < clock_timestamp() - interval '3024000 seconds'"
        );
    }
}

#[cfg(all(test, feature = "slow-tests"))]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "slow-tier test code")]
mod slow_tests {
    use super::*;
    use crate::drill::verify::testdb::TestDb;

    /// install, beat, status and remove on a real PostgreSQL 15 without pg_cron: the writer is stackdrill,
    /// install twice is install once, remove leaves nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn install_status_and_remove_are_idempotent_without_pg_cron() {
        let db = TestDb::start().await;
        let keep = Duration::from_secs(3600);
        let first = install(&db.src, Duration::from_secs(1), keep).await.unwrap();
        let again = install(&db.src, Duration::from_secs(1), keep).await.unwrap();
        assert!(matches!(first.writer, Writer::Stackdrill { .. }), "{first:?}");
        assert_eq!(first.writer, again.writer);
        let s = status(&db.src).await.unwrap();
        assert!(s.table && s.rows == 0 && s.newest.is_none() && s.pg_cron.is_none() && s.job.is_none(), "{s:?}");
        db.src.batch_execute("insert into stackdrill.heartbeat values (now() - interval '2 hours')").await.unwrap();
        beat(&db.src, keep, false).await.unwrap();
        assert_eq!(status(&db.src).await.unwrap().rows, 2);
        beat(&db.src, keep, true).await.unwrap();
        let s = status(&db.src).await.unwrap();
        assert_eq!(s.rows, 2, "the 2-hour-old row is pruned, a new one written: {s:?}");
        assert!(s.age_seconds.unwrap() < 5.0, "{s:?}");
        let r = remove(&db.src).await.unwrap();
        assert!(r.table_dropped && !r.job_unscheduled && r.schema_kept.is_none(), "{r:?}");
        let r = remove(&db.src).await.unwrap();
        assert!(!r.table_dropped, "{r:?}");
        assert!(!status(&db.src).await.unwrap().table);
    }
}
