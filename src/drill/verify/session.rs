//! Shared plumbing for verifiers that read both databases: a read-only snapshot with the settings
//! that change how values print pinned, so the same data renders (and hashes) the same on both sides.

use tokio_postgres::Client;

use super::CheckError;

const BEGIN: &str = "begin isolation level repeatable read read only;
    set local timezone = 'UTC'; set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres';
    set local extra_float_digits = 3; set local bytea_output = 'hex'; set local lc_monetary = 'C'";

/// Runs `body` inside a read-only repeatable-read snapshot on each client, rolling back afterwards.
pub(crate) async fn with_snapshot<T, F>(clients: &[&Client], body: F) -> Result<T, CheckError>
where
    F: std::future::Future<Output = Result<T, CheckError>>,
{
    for c in clients {
        c.batch_execute(BEGIN).await?;
    }
    let out = body.await;
    for c in clients {
        let _ = c.batch_execute("rollback").await;
    }
    out
}

/// `"name"` or `"schema"."name"`; names are validated as plain identifiers when the drill loads.
pub(crate) fn quote(name: &str) -> String {
    name.split('.').map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(".")
}

/// Whether `table` exists in the database behind `c`.
pub(crate) async fn table_exists(c: &Client, table: &str) -> Result<bool, CheckError> {
    let row = c.query_one("select to_regclass($1) is not null", &[&quote(table)]).await?;
    Ok(row.get(0))
}
