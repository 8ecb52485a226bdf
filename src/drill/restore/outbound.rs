//! What could reach the network from a restored copy through SQL, made unusable before any check runs:
//! the functions of `dblink`, `http` and `pg_net` lose `EXECUTE` for `PUBLIC` (the checks' read-only role
//! then cannot call them), every user mapping of a foreign server (`postgres_fdw`, `dblink_fdw`, …) is
//! dropped (no query through one can log in anywhere), and `pg_cron`'s jobs are deactivated. Each thing
//! done is said, in words, among what the report lists as neutralised.

use tokio_postgres::Client;

/// The extensions whose functions reach other hosts.
const OUTBOUND_FUNCTIONS: &[&str] = &["dblink", "http", "pg_net"];

/// Why the restored copy could not be made inert. Never a verdict on the backups.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum OutboundError {
    /// A statement in one database failed: what it was for, and the server's answer.
    #[error("{what} in database `{db}`: {detail}")]
    Statement { what: String, db: String, detail: String },
    /// The scratch cluster could not be reached or listed.
    #[error("{0}")]
    Cluster(String),
}

/// Neutralises database `db` through `client` (a superuser session to it); returns what was done.
pub(crate) async fn neutralise(client: &Client, db: &str) -> Result<Vec<String>, OutboundError> {
    let err = |what: &str, e: tokio_postgres::Error| OutboundError::Statement {
        what: what.to_string(),
        db: db.to_string(),
        detail: crate::drill::verify::db_error(&e),
    };
    let mut said = Vec::new();
    let installed: Vec<String> = client
        .query(
            "select extname from pg_extension where extname = any($1) order by 1",
            &[&["dblink", "http", "pg_net", "postgres_fdw", "pg_cron"].as_slice()],
        )
        .await
        .map_err(|e| err("cannot list extensions", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for ext in installed.iter().filter(|e| OUTBOUND_FUNCTIONS.contains(&e.as_str())) {
        let functions: Vec<String> = client
            .query(
                "select p.oid::regprocedure::text from pg_depend d join pg_proc p on p.oid = d.objid \
                 where d.classid = 'pg_proc'::regclass and d.refclassid = 'pg_extension'::regclass \
                   and d.deptype = 'e' and d.refobjid = (select oid from pg_extension where extname = $1)",
                &[ext],
            )
            .await
            .map_err(|e| err("cannot list an extension's functions", e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // regprocedure text is a qualified, quoted signature: usable as written.
        let sql: String = functions.iter().map(|f| format!("revoke execute on function {f} from public;")).collect();
        client.batch_execute(&sql).await.map_err(|e| err(&format!("cannot revoke `{ext}`'s functions"), e))?;
        said.push(format!(
            "extension `{ext}` in database `{db}`: EXECUTE on its {} functions revoked from PUBLIC (checks cannot reach \
             the network through it)",
            functions.len()
        ));
    }
    let mappings = client
        .query(
            "select srvname, case when umuser = 0 then 'public' else quote_ident(usename) end from pg_user_mappings \
             order by 1, 2",
            &[],
        )
        .await
        .map_err(|e| err("cannot list user mappings", e))?;
    for row in &mappings {
        let (server, user): (String, String) = (row.get(0), row.get(1));
        let q = format!("\"{}\"", server.replace('"', "\"\""));
        client
            .batch_execute(&format!("drop user mapping if exists for {user} server {q}"))
            .await
            .map_err(|e| err(&format!("cannot drop the user mapping of server `{server}`"), e))?;
        said.push(format!(
            "foreign server `{server}` in database `{db}`: user mapping for {user} dropped (no query through it logs in \
             anywhere)"
        ));
    }
    if installed.iter().any(|e| e == "pg_cron") {
        let n = client
            .execute("update cron.job set active = false where active", &[])
            .await
            .map_err(|e| err("cannot deactivate pg_cron's jobs", e))?;
        said.push(format!("pg_cron in database `{db}`: {n} active job(s) deactivated"));
    }
    Ok(said)
}

/// [`neutralise`] in every database of a local scratch cluster, as its superuser `user`.
pub(crate) async fn neutralise_cluster(cluster: &crate::pg::Cluster, user: &str) -> Result<Vec<String>, OutboundError> {
    let admin = crate::pg::connect(&cluster.client_config(user, "postgres"))
        .await
        .map_err(|e| OutboundError::Cluster(format!("cannot connect to the scratch to neutralise it: {e}")))?;
    let dbs: Vec<String> = admin
        .query("select datname from pg_database where datallowconn and not datistemplate order by 1", &[])
        .await
        .map_err(|e| {
            OutboundError::Cluster(format!(
                "cannot list the scratch's databases: {}",
                crate::drill::verify::db_error(&e)
            ))
        })?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut said = Vec::new();
    for db in dbs {
        let client = crate::pg::connect(&cluster.client_config(user, &db))
            .await
            .map_err(|e| OutboundError::Cluster(format!("cannot connect to database `{db}` in the scratch: {e}")))?;
        said.extend(neutralise(&client, &db).await?);
    }
    Ok(said)
}
