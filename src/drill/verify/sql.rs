//! `sql`: a named read-only query on the restored database, checked against `expect`: one statement, in a
//! read-only transaction, as the read-only role where the drill's own session is a superuser (`reader.rs`).

use super::{CheckError, CheckResult, CheckStatus};
use crate::config::{CheckSpec, SqlSpec};

pub(super) async fn verify(spec: &CheckSpec, s: &SqlSpec, restore: &tokio_postgres::Client) -> CheckResult {
    let rows = match run_read_only(restore, &s.query).await {
        Ok(rows) => rows,
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, format!("query failed: {e}")),
    };
    let first = rows.first().and_then(|r| r.clone());
    let shown = first.clone().unwrap_or_else(|| "NULL".into());
    let mut failures = Vec::new();
    let e = &s.expect;
    if let Some(n) = e.rows
        && rows.len() as u64 != n
    {
        failures.push(format!("returned {} rows, expected {n}", rows.len()));
    }
    if let Some(want) = &e.equals
        && first.as_deref() != Some(want.as_str())
    {
        failures.push(format!("returned {shown}, expected {want}"));
    }
    if e.min.is_some() || e.max.is_some() {
        match first.as_deref().and_then(|v| v.trim().parse::<f64>().ok()) {
            None => failures.push(format!("returned {shown}, not a number")),
            Some(v) => {
                if let Some(lo) = e.min.filter(|lo| v < *lo) {
                    failures.push(format!("returned {shown}, below the minimum {lo}"));
                }
                if let Some(hi) = e.max.filter(|hi| v > *hi) {
                    failures.push(format!("returned {shown}, above the maximum {hi}"));
                }
            }
        }
    }
    if let Some(re) = &e.regex
        && !first.as_deref().is_some_and(|v| re.is_match(v))
    {
        failures.push(format!("returned {shown}, which does not match /{}/", re.as_str()));
    }
    if failures.is_empty() {
        CheckResult::new(spec, CheckStatus::Passed, format!("returned {shown} ({} rows)", rows.len()))
    } else {
        CheckResult::new(spec, CheckStatus::Failed, failures.join("; "))
    }
}

/// The first column of every row, as text, from a read-only transaction.
async fn run_read_only(client: &tokio_postgres::Client, query: &str) -> Result<Vec<Option<String>>, CheckError> {
    // Validation refuses these already; a query is never sent with a second statement after it.
    crate::config::single_statement(query).map_err(CheckError::Refused)?;
    client.batch_execute("begin transaction read only").await?;
    let res = client.simple_query(query).await;
    let _ = client.batch_execute("rollback").await;
    let msgs = res?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })
        .collect())
}
