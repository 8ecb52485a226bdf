//! The role `sql` checks run as: a scratch session logged in as the superuser could write, run programs
//! (`COPY … TO PROGRAM`) or reach the network (`dblink_exec`) from a check's query. Where the drill's own
//! session to the restored copy is a superuser (the local scratches), stackdrill creates a non-superuser,
//! read-only role in the copy after the restore — `pg_read_all_data` (PostgreSQL 14+; `SELECT` on every
//! table of every schema before that), `BYPASSRLS` so it reads what the restore holds, and
//! `default_transaction_read_only = on` — and runs the checks' queries through a login of its own.

use tokio_postgres::Client;

use super::CheckError;
use crate::drill::restore::Endpoint;

/// A login to the restored copy as the read-only role, and what it takes to cancel its query.
pub(crate) struct Reader {
    pub(crate) client: Client,
    pub(crate) canceller: crate::pg::Canceller,
    pub(crate) role: String,
}

/// Opens the read-only login when `admin` is a superuser; `None` when it is not (a managed database's
/// master user cannot run programs or bypass permissions: its session, read-only per transaction, stays).
pub(crate) async fn open(admin: &Client, ep: &Endpoint, run_id: &str) -> Result<Option<Reader>, CheckError> {
    let row = admin
        .query_one(
            "select rolsuper, current_setting('server_version_num')::int from pg_roles where rolname = current_user",
            &[],
        )
        .await?;
    let (superuser, version): (bool, i32) = (row.get(0), row.get(1));
    if !superuser {
        return Ok(None);
    }
    let suffix: String =
        run_id.chars().filter(char::is_ascii_alphanumeric).take(12).collect::<String>().to_ascii_lowercase();
    let role = format!("stackdrill_reader_{suffix}");
    let password = crate::drill::restore::aws_scratch::fresh_password();
    // Role names and the password are ours (ASCII letters, digits and `-_.~`): no quoting can break.
    let mut sql = format!(
        "create role \"{role}\" login password '{password}' nosuperuser nocreatedb nocreaterole noreplication \
         bypassrls connection limit 4; \
         alter role \"{role}\" set default_transaction_read_only = on;"
    );
    if version >= 140000 {
        sql.push_str(&format!("grant pg_read_all_data to \"{role}\";"));
    } else {
        sql.push_str(&format!(
            "do $grant$ declare s text; begin \
               for s in select nspname from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema' loop \
                 execute format('grant usage on schema %I to %I', s, '{role}'); \
                 execute format('grant select on all tables in schema %I to %I', s, '{role}'); \
               end loop; end $grant$;"
        ));
    }
    admin.batch_execute(&sql).await.map_err(CheckError::query_in("cannot create the read-only role"))?;
    let mut config = ep.config.clone();
    config.user(&role).password(password.as_bytes()).application_name(crate::drill::source::application_name(run_id));
    let client = crate::pg::connect_tls(&config, &ep.tls, ep.server_name.as_deref()).await.map_err(|detail| {
        CheckError::Connect { context: format!("cannot log in to the restore as the read-only role `{role}`"), detail }
    })?;
    let ro: String = client.query_one("select current_setting('default_transaction_read_only')", &[]).await?.get(0);
    if ro != "on" {
        return Err(CheckError::Unexpected(format!(
            "the read-only role `{role}` got default_transaction_read_only = {ro}"
        )));
    }
    let canceller = crate::pg::Canceller::new(&client, &ep.tls, ep.server_name.as_deref());
    Ok(Some(Reader { client, canceller, role }))
}
