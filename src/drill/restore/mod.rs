//! Restore providers: one trait (`provider.rs`), one module each.

mod aws_aurora;
mod aws_backup;
mod aws_rds;
pub(crate) mod aws_scratch;
mod existing_postgres;
mod local_postgres;
mod pg_dump;
mod provider;
pub(crate) mod supabase_branch;

pub(crate) use crate::report::model::TeardownStatus;
pub(crate) use aws_aurora::AwsAuroraCluster;
pub(crate) use aws_backup::AwsBackup;
pub(crate) use aws_rds::AwsRdsInstance;
pub(crate) use existing_postgres::ExistingPostgres;
pub(crate) use local_postgres::LocalPostgres;
pub(crate) use pg_dump::PgDump;
pub(crate) use provider::{BackupUsed, Endpoint, RestoreProvider, Teardown, plan_timeout};
pub(crate) use supabase_branch::SupabaseBranch;

/// Stops a local scratch cluster and removes its directory, once its marker proves this run made it.
pub(crate) async fn remove_scratch_cluster(
    cluster: &crate::pg::Cluster,
    bin: &crate::pg::PgBin,
    as_user: &crate::pg::RunAs,
    drill: &str,
    run: &str,
    deadline: std::time::Duration,
) -> Teardown {
    use chrono::Utc;
    let dir = &cluster.dir;
    let failed = |detail: String| Teardown { status: TeardownStatus::Failed, at: Utc::now(), detail };
    if !crate::drill::guard::owned_by_run(dir, drill, run) {
        return failed(format!("refused to remove `{}`: its scratch marker does not name this run", dir.display()));
    }
    let stop_text = match cluster.stop(bin, as_user, deadline).await {
        Ok(mode) => mode.as_str(),
        Err(e) => return failed(format!("cannot stop the scratch server: {e}")),
    };
    match crate::pg::remove_tree(dir) {
        Ok(()) => Teardown {
            status: TeardownStatus::Done,
            at: Utc::now(),
            detail: format!("scratch server stopped ({stop_text}); `{}` removed", dir.display()),
        },
        Err(e) => failed(e.to_string()),
    }
}
