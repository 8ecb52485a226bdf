//! Restore providers: the traits (`provider.rs`), the registry that builds one (`registry.rs`), one module
//! each.

mod aws_aurora;
mod aws_backup;
mod aws_rds;
pub(crate) mod aws_s3_bucket;
pub(crate) mod aws_scratch;
mod existing_postgres;
mod local_postgres;
pub(crate) mod outbound;
mod pg_dump;
mod provider;
pub(crate) mod registry;
pub(crate) mod s3_scratch;
pub(crate) mod supabase_branch;
pub(crate) mod supabase_new_project;

pub(crate) use crate::report::model::TeardownStatus;
pub(crate) use aws_s3_bucket::{BucketRestore, RestoredBucket};
pub(crate) use provider::{BackupUsed, DataVerdict, Endpoint, RestoreProvider, Restored, Teardown, plan_timeout};

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

/// Makes the directory of a local scratch cluster, `<root>/sd-<drill>-<run>`, private to the server's OS
/// user, with the ownership marker teardown and `drill cleanup` check; refuses one that exists.
pub(crate) fn make_scratch_dir(
    root: &std::path::Path,
    drill: &str,
    run: &str,
    lifetime: std::time::Duration,
    as_user: &crate::pg::RunAs,
) -> Result<crate::pg::Cluster, crate::drill::error::RestoreError> {
    use crate::drill::error::RestoreError;
    let short: String = run.chars().take(8).collect();
    let dir = root.join(format!("sd-{drill}-{short}"));
    let cluster = crate::pg::Cluster::new(dir.clone(), crate::pg::free_port()?)?;
    std::fs::create_dir_all(root)
        .map_err(|e| RestoreError::Error(format!("cannot create `{}`: {e}", root.display())))?;
    if dir.exists() {
        return Err(RestoreError::Error(format!("scratch `{}` already exists", dir.display())));
    }
    as_user.check_reachable(&dir)?;
    as_user.make_private_dir(&dir)?;
    let now = chrono::Utc::now();
    let marker = crate::drill::guard::ScratchMarker {
        scratch: true,
        drill: drill.to_string(),
        run: run.to_string(),
        pid: std::process::id(),
        created_at: now,
        expires_at: now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(24)),
    };
    crate::drill::guard::write(&dir, &marker, as_user)
        .map_err(|e| RestoreError::Error(format!("cannot write the scratch marker: {e}")))?;
    Ok(cluster)
}
