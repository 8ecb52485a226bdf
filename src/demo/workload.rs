//! The demo's drill file (beside its source) and the write workload that runs while the drill restores.

use std::path::PathBuf;
use std::time::Duration;

use super::source::{DEFAULT_PORT, RUNBOOK, Source, TEMPLATE};
use crate::pg::{self, PgError};

/// The demo drill file for this source: the template with the demo's directory, port and runbook.
pub(crate) fn write_drill_file(source: &Source) -> Result<PathBuf, PgError> {
    let template = std::fs::read_to_string("drills/local-demo.yaml").unwrap_or_else(|_| TEMPLATE.to_string());
    let runbook_rel = "runbooks/database-pitr-restore.md";
    let runbook = match std::path::absolute(runbook_rel) {
        Ok(p) if p.is_file() => p,
        _ => {
            let p = source.dir.join("database-pitr-restore.md");
            std::fs::write(&p, RUNBOOK).map_err(PgError::io("cannot write", &p))?;
            p
        }
    };
    let text = template
        .replace(".stackdrill/demo", &source.dir.display().to_string())
        .replace(&format!("port: {DEFAULT_PORT}"), &format!("port: {}", source.cluster.port))
        .replace(runbook_rel, &runbook.display().to_string());
    let path = source.dir.join("local-demo.yaml");
    std::fs::write(&path, text).map_err(PgError::io("cannot write", &path))?;
    Ok(path)
}

/// Inserts balanced transfers as the app role over TCP until told to stop; returns how many committed.
pub(crate) fn start_workload(source: &Source) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<u64>) {
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let config = source.app_config();
    let tls = crate::config::TlsSpec::VerifyFull(source.ca.clone());
    let handle = tokio::spawn(async move {
        let Ok(mut client) = pg::connect_tls(&config, &tls, None).await else { return 0 };
        let mut n = 0u64;
        loop {
            let tx = async {
                let t = client.transaction().await?;
                t.batch_execute(
                    "with id as (select gen_random_uuid() as v, (random() * 100)::numeric(18,4) + 0.01 as amt)
                     insert into credit_transactions (transfer_id, account_id, amount, kind, idempotency_key)
                     select id.v, a, case when a = 1 then -id.amt else id.amt end, 'transfer', gen_random_uuid()
                     from id, (values (1), (2)) s(a)",
                )
                .await?;
                t.commit().await
            };
            if tx.await.is_ok() {
                n += 1;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(25)) => {}
                _ = rx.changed() => return n,
            }
        }
    });
    (tx, handle)
}
