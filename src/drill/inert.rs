//! A restored copy must not act: Supabase says pg_cron, pg_net and wrappers jobs "start running as soon as the
//! restore completes". Before any check runs, every pg_cron job in the copy (stackdrill's own heartbeat among
//! them) is set inactive; pg_net's queue and the foreign servers (wrappers, postgres_fdw) are reported. One
//! call from the runner, for every provider with a database.

use super::verify::{HEARTBEAT_TABLE, db_error};

/// The name of stackdrill's heartbeat job in `cron.job`.
pub(crate) const HEARTBEAT_JOB: &str = "stackdrill-heartbeat";

/// What was found in the restored copy, and what was switched off.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InertFindings {
    /// Every pg_cron job seen, by id and schedule (never its command: it may hold a secret).
    pub(crate) cron_jobs: Vec<CronJob>,
    /// How many were active and are now inactive.
    pub(crate) cron_jobs_deactivated: u64,
    /// Requests waiting in `net.http_request_queue`, when pg_net is there.
    pub(crate) pg_net_queued: Option<i64>,
    /// Foreign servers: `name (wrapper)`.
    pub(crate) foreign_servers: Vec<String>,
    /// What limits these findings.
    pub(crate) notes: Vec<String>,
}

impl InertFindings {
    /// Nothing that could act was there (the report then carries no `inert` field).
    pub(crate) fn is_empty(&self) -> bool {
        self.cron_jobs.is_empty()
            && self.pg_net_queued.is_none()
            && self.foreign_servers.is_empty()
            && self.notes.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CronJob {
    pub(crate) jobid: i64,
    pub(crate) schedule: String,
    pub(crate) was_active: bool,
    /// Its command writes `stackdrill.heartbeat`: the source's heartbeat job, restored with the data.
    pub(crate) heartbeat: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum InertError {
    #[error("cannot read {what} in the restored copy: {detail}")]
    Read { what: &'static str, detail: String },
    #[error("cannot deactivate the restored copy's pg_cron jobs: {detail}")]
    Deactivate { detail: String },
    #[error("{active} pg_cron job(s) still active in the restored copy after deactivating them")]
    StillActive { active: i64 },
}

impl InertError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            InertError::Deactivate { .. } | InertError::StillActive { .. } => Some(
                "the drill's login to the restored copy must be able to update cron.job (a superuser, or the jobs' \
                 owner through cron.alter_job); until then the copy may run production's jobs"
                    .into(),
            ),
            InertError::Read { .. } => None,
        }
    }
}

/// Deactivates every pg_cron job of the restored copy `client` is connected to and reports pg_net's queue and
/// the foreign servers. A copy without pg_cron, pg_net or foreign servers gives empty findings.
pub(crate) async fn make_inert(client: &tokio_postgres::Client) -> Result<InertFindings, InertError> {
    let mut found = InertFindings::default();
    let read = |what: &'static str| move |e: tokio_postgres::Error| InertError::Read { what, detail: db_error(&e) };
    if exists(client, "cron.job").await.map_err(read("cron.job"))? {
        found.cron_jobs = cron_jobs(client).await.map_err(read("cron.job"))?;
        found.cron_jobs_deactivated = deactivate(client, &found.cron_jobs).await?;
        // Row security shows a role only its own jobs: say so when the login neither is a superuser nor
        // bypasses it, since other roles' jobs were then neither seen nor stopped.
        let row = client
            .query_one(
                "select r.rolsuper or r.rolbypassrls, c.relrowsecurity from pg_roles r, pg_class c \
                 where r.rolname = current_user and c.oid = 'cron.job'::regclass",
                &[],
            )
            .await
            .map_err(read("the login's role"))?;
        let (sees_all, rls): (bool, bool) = (row.get(0), row.get(1));
        if rls && !sees_all {
            found.notes.push(
                "cron.job has row security and the drill's login is not a superuser: other roles' jobs were not \
                 seen"
                    .into(),
            );
        }
    }
    if exists(client, "net.http_request_queue").await.map_err(read("net.http_request_queue"))? {
        let row = client
            .query_one("select count(*) from net.http_request_queue", &[])
            .await
            .map_err(read("net.http_request_queue"))?;
        found.pg_net_queued = Some(row.get(0));
    }
    let rows = client
        .query(
            "select s.srvname::text, w.fdwname::text from pg_foreign_server s \
             join pg_foreign_data_wrapper w on w.oid = s.srvfdw order by 1",
            &[],
        )
        .await
        .map_err(read("pg_foreign_server"))?;
    found.foreign_servers =
        rows.iter().map(|r| format!("{} ({})", r.get::<_, String>(0), r.get::<_, String>(1))).collect();
    Ok(found)
}

async fn exists(client: &tokio_postgres::Client, relation: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_one("select to_regclass($1) is not null", &[&relation]).await?.get(0))
}

async fn cron_jobs(client: &tokio_postgres::Client) -> Result<Vec<CronJob>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select jobid::bigint, schedule::text, coalesce(active, false), command::text from cron.job order by 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CronJob {
            jobid: r.get(0),
            schedule: r.get(1),
            was_active: r.get(2),
            heartbeat: r.get::<_, Option<String>>(3).is_some_and(|c| c.contains(HEARTBEAT_TABLE)),
        })
        .collect())
}

/// Sets every active job inactive (`update cron.job`, else `cron.alter_job` one by one), then checks that none
/// the login can see is still active.
async fn deactivate(client: &tokio_postgres::Client, jobs: &[CronJob]) -> Result<u64, InertError> {
    let active = jobs.iter().filter(|j| j.was_active).count() as u64;
    if active == 0 {
        return Ok(0);
    }
    if let Err(update) = client.execute("update cron.job set active = false where active", &[]).await {
        for j in jobs.iter().filter(|j| j.was_active) {
            client.execute("select cron.alter_job(job_id := $1, active := false)", &[&j.jobid]).await.map_err(|e| {
                InertError::Deactivate {
                    detail: format!("update cron.job: {}; cron.alter_job: {}", db_error(&update), db_error(&e)),
                }
            })?;
        }
    }
    let still: i64 = client
        .query_one("select count(*) from cron.job where active", &[])
        .await
        .map_err(|e| InertError::Read { what: "cron.job", detail: db_error(&e) })?
        .get(0);
    if still > 0 {
        return Err(InertError::StillActive { active: still });
    }
    Ok(active)
}

#[cfg(all(test, feature = "slow-tests"))]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "slow-tier test code")]
mod tests {
    use super::*;
    use crate::drill::verify::testdb::TestDb;

    /// A restored copy with pg_cron's job table (as the extension makes it), pg_net's queue and a foreign
    /// server: every job ends inactive, the heartbeat job is named, the rest is reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_cron_job_is_deactivated_and_the_rest_reported() {
        let db = TestDb::start().await;
        // Nothing there: empty findings, nothing in the report.
        let none = make_inert(&db.rst).await.unwrap();
        assert!(none.is_empty(), "{none:?}");
        db.rst
            .batch_execute(
                "create schema cron;
                 create table cron.job (jobid bigint primary key, schedule text, command text, active bool);
                 insert into cron.job values
                   (1, '*/5 * * * *', 'delete from sessions where expires_at < now()', true),
                   (2, '5 seconds', 'insert into stackdrill.heartbeat (at) values (clock_timestamp())', true),
                   (3, '0 3 * * *', 'select net.http_post(''https://hooks.example/x'')', false);
                 create schema net;
                 create table net.http_request_queue (id bigint);
                 insert into net.http_request_queue values (1), (2);
                 create foreign data wrapper dummy_fdw;
                 create server stripe_server foreign data wrapper dummy_fdw;",
            )
            .await
            .unwrap();
        let f = make_inert(&db.rst).await.unwrap();
        assert_eq!(f.cron_jobs_deactivated, 2);
        assert_eq!(
            f.cron_jobs,
            vec![
                CronJob { jobid: 1, schedule: "*/5 * * * *".into(), was_active: true, heartbeat: false },
                CronJob { jobid: 2, schedule: "5 seconds".into(), was_active: true, heartbeat: true },
                CronJob { jobid: 3, schedule: "0 3 * * *".into(), was_active: false, heartbeat: false },
            ]
        );
        assert_eq!(f.pg_net_queued, Some(2));
        assert_eq!(f.foreign_servers, vec!["stripe_server (dummy_fdw)".to_string()]);
        assert!(f.notes.is_empty(), "a superuser sees every job: {:?}", f.notes);
        let active: i64 = db.rst.query_one("select count(*) from cron.job where active", &[]).await.unwrap().get(0);
        assert_eq!(active, 0);
        // Idempotent: a second pass finds them inactive and changes nothing.
        let again = make_inert(&db.rst).await.unwrap();
        assert_eq!(again.cron_jobs_deactivated, 0);
        // The source is untouched: it has no cron schema at all here, and nothing was created in it.
        let src: bool = db.src.query_one("select to_regclass('cron.job') is null", &[]).await.unwrap().get(0);
        assert!(src);
    }

    /// A login that cannot update cron.job (and has no cron.alter_job) is an error, never empty findings.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_login_that_cannot_deactivate_the_jobs_is_an_error() {
        let db = TestDb::start().await;
        db.rst
            .batch_execute(
                "create schema cron;
                 create table cron.job (jobid bigint primary key, schedule text, command text, active bool);
                 insert into cron.job values (1, '* * * * *', 'select 1', true);
                 create role sd_inert_reader login;
                 grant usage on schema cron to sd_inert_reader;
                 grant select on cron.job to sd_inert_reader;",
            )
            .await
            .unwrap();
        let mut config = db.cluster.client_config("sd_inert_reader", "rst");
        config.application_name("inert-test");
        let reader = crate::pg::connect(&config).await.unwrap();
        let e = make_inert(&reader).await.unwrap_err();
        assert!(matches!(e, InertError::Deactivate { .. }), "{e}");
        assert!(e.to_string().contains("permission denied"), "{e}");
        assert!(e.hint().is_some());
    }
}
