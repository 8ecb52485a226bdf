//! `row-count`: rows in the restore, against the source at the same cut-off or against absolute bounds.

use super::session::{quote, with_snapshot};
use super::{CheckError, CheckResult, CheckStatus, Context};
use crate::config::{CheckSpec, RowCountSpec, Tolerance};

async fn count(c: &tokio_postgres::Client, s: &RowCountSpec, ctx: &Context<'_>) -> Result<i64, CheckError> {
    let table = quote(&s.table);
    let row = match &s.until_column {
        Some(col) => {
            let q = format!("select count(*) from {table} t where t.{} <= $1::timestamptz", quote(col));
            c.query_one(q.as_str(), &[&ctx.target]).await
        }
        None => c.query_one(format!("select count(*) from {table}").as_str(), &[]).await,
    };
    Ok(row?.get(0))
}

pub(super) async fn verify(spec: &CheckSpec, s: &RowCountSpec, ctx: &Context<'_>) -> CheckResult {
    let source = if s.compare_source { ctx.source } else { None };
    if s.compare_source && source.is_none() {
        return CheckResult::new(spec, CheckStatus::Error, "no source connection to compare with");
    }
    let clients: Vec<&tokio_postgres::Client> = std::iter::once(ctx.restore).chain(source).collect();
    let counted = with_snapshot(&clients, async {
        let restored = count(ctx.restore, s, ctx).await?;
        let expected = match source {
            Some(src) => Some(count(src, s, ctx).await?),
            None => None,
        };
        Ok::<_, CheckError>((restored, expected))
    })
    .await;
    let (restored, expected) = match counted {
        Ok(v) => v,
        Err(e) => return CheckResult::new(spec, CheckStatus::Error, e.to_string()),
    };
    let mut problems = Vec::new();
    if let Some(src) = expected {
        let diff = restored.abs_diff(src);
        let allowed = match s.tolerance {
            Tolerance::Rows(n) => n,
            Tolerance::Percent(p) => ((src as f64) * p / 100.0).floor() as u64,
        };
        if diff > allowed {
            problems.push(format!(
                "{restored} rows in the restore, {src} in the source (difference {diff}, tolerance {allowed})"
            ));
        }
    }
    if let Some(min) = s.min.filter(|m| (restored as u64) < *m) {
        problems.push(format!("{restored} rows, below the minimum {min}"));
    }
    if let Some(max) = s.max.filter(|m| (restored as u64) > *m) {
        problems.push(format!("{restored} rows, above the maximum {max}"));
    }
    let scope = s.until_column.as_ref().map(|c| format!(" with {c} at or before the target")).unwrap_or_default();
    if problems.is_empty() {
        let vs = expected.map(|e| format!(" (source: {e})")).unwrap_or_default();
        CheckResult::new(spec, CheckStatus::Passed, format!("{restored} rows{scope}{vs}"))
    } else {
        CheckResult::new(spec, CheckStatus::Failed, problems.join("; "))
    }
}
