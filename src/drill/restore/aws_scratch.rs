//! What the AWS providers share: scratch names and tags, the ownership guard, waiting on RDS status with
//! backoff, fresh credentials, the isolation checks, and the guarded delete.

use std::time::{Duration, Instant};

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};
use chrono::{DateTime, Utc};
use rand::Rng;

use crate::aws::{AwsError, Backoff, CallCounter, classify};
use crate::config::AwsScratchSpec;
use crate::drill::error::{DrillError, NotOurs, RestoreError, ScratchError};
use crate::drill::events::EventSink;

pub(crate) use crate::aws::TAG_MANAGED;
pub(crate) const TAG_SCRATCH: &str = "stackdrill:scratch";
pub(crate) const TAG_DRILL: &str = "stackdrill:drill";
pub(crate) const TAG_RUN: &str = "stackdrill:run";
pub(crate) const TAG_EXPIRES: &str = "stackdrill:expires-at";

/// `sd-<drill>-<first 6 of the run id>`, within RDS identifier rules (≤ 63, letter first, no `--`).
pub(crate) fn scratch_id(drill: &str, run: &str) -> String {
    let mut d: String = drill.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    while d.contains("--") {
        d = d.replace("--", "-");
    }
    let d = d.trim_matches('-');
    let d = &d[..d.len().min(40)];
    format!("sd-{}-{}", d.trim_end_matches('-'), &run[..run.len().min(6)])
}

/// The scratch tags of design.md §4, as key and value.
pub(crate) fn scratch_tag_pairs(drill: &str, run: &str, expires_at: DateTime<Utc>) -> [(&'static str, String); 5] {
    [
        (TAG_MANAGED, "true".to_string()),
        (TAG_SCRATCH, "true".to_string()),
        (TAG_DRILL, drill.to_string()),
        (TAG_RUN, run.to_string()),
        (TAG_EXPIRES, expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    ]
}

/// The scratch tags of design.md §4, for RDS.
pub(crate) fn scratch_tags(drill: &str, run: &str, expires_at: DateTime<Utc>) -> Vec<Tag> {
    scratch_tag_pairs(drill, run, expires_at).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// What every AWS provider knows of its run.
pub(crate) struct RunInfo {
    /// Shared by the provider's clients: per-phase API call counts for the report.
    pub(crate) calls: CallCounter,
    pub(crate) region: String,
    pub(crate) drill: String,
    pub(crate) run: String,
    /// The checks' database: see [`database`].
    pub(crate) database: String,
    pub(crate) events: EventSink,
    /// When `drill cleanup` may sweep what a crash left: the run's whole time budget, or the drill's
    /// `expires-after` if longer.
    pub(crate) expires_at: DateTime<Utc>,
}

impl RunInfo {
    pub(crate) fn progress(&self, phase: &'static str, msg: impl Into<String>) {
        self.events.progress(&self.drill, phase, msg);
    }

    pub(crate) fn tags(&self) -> Vec<Tag> {
        scratch_tags(&self.drill, &self.run, self.expires_at)
    }
}

/// Who may delete a scratch resource.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// The run that created it: the run tag must match.
    Run(&'a str),
    /// `drill cleanup`: the expiry tag must be in the past.
    Expired(DateTime<Utc>),
}

/// Decides from a resource's tags whether stackdrill may delete it; `Err` says why not.
pub(crate) fn may_delete(tags: &[(String, String)], owner: Owner<'_>) -> Result<(), NotOurs> {
    let get = |k: &str| tags.iter().find(|(tk, _)| tk == k).map(|(_, v)| v.as_str());
    if get(TAG_MANAGED) != Some("true") || get(TAG_SCRATCH) != Some("true") {
        return Err(NotOurs(format!("it lacks the `{TAG_MANAGED}=true` and `{TAG_SCRATCH}=true` tags")));
    }
    match owner {
        Owner::Run(run) => match get(TAG_RUN) {
            Some(r) if r == run => Ok(()),
            other => Err(NotOurs(format!("its `{TAG_RUN}` tag is {other:?}, not this run's `{run}`"))),
        },
        Owner::Expired(now) => match get(TAG_EXPIRES).and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
            Some(t) if t < now => Ok(()),
            Some(t) => Err(NotOurs(format!("it expires at {t}, not yet"))),
            None => Err(NotOurs(format!("it has no valid `{TAG_EXPIRES}` tag"))),
        },
    }
}

pub(crate) fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter().map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string())).collect()
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

pub(crate) fn to_smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

/// The database the checks connect to: the drill's `database`, else the source's dbname, else `postgres`.
pub(crate) fn database(scratch: &AwsScratchSpec, default_database: Option<&str>) -> String {
    scratch.database.clone().or(default_database.map(str::to_string)).unwrap_or_else(|| "postgres".into())
}

/// A fresh master password: 32 characters RDS accepts (no `/`, `@`, `"` or space). It lives in memory only.
pub(crate) fn fresh_password() -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.~";
    let mut rng = rand::thread_rng();
    (0..32).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}

/// Refuses a region outside `residency` (`whose`: "the drill's", or a bucket restore's), before anything is
/// created.
pub(crate) fn check_residency(region: &str, residency: &[String], whose: &str) -> Result<(), DrillError> {
    if residency.iter().any(|r| r == region) {
        Ok(())
    } else {
        Err(DrillError::Refused(format!(
            "region `{region}` is outside {whose} residency ({}): restored data must stay there",
            residency.join(", ")
        )))
    }
}

pub(crate) fn refuse_unencrypted(what: &str, encrypted: bool, scratch: &AwsScratchSpec) -> Result<(), DrillError> {
    if encrypted || scratch.allow_unencrypted {
        Ok(())
    } else {
        Err(DrillError::Refused(format!(
            "{what} is not encrypted at rest; a drill would copy unencrypted data (set `allow-unencrypted: true` \
             to accept that knowingly)"
        )))
    }
}

pub(crate) async fn describe_instance(rds: &Client, id: &str) -> Result<Option<DbInstance>, AwsError> {
    match rds.describe_db_instances().db_instance_identifier(id).send().await {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) => {
            let e = classify("rds:DescribeDBInstances", &e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

pub(crate) async fn describe_cluster(rds: &Client, id: &str) -> Result<Option<DbCluster>, AwsError> {
    match rds.describe_db_clusters().db_cluster_identifier(id).send().await {
        Ok(out) => Ok(out.db_clusters().first().cloned()),
        Err(e) => {
            let e = classify("rds:DescribeDBClusters", &e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

/// RDS instance statuses that do not come back to `available` without someone acting (RDS user guide,
/// "Viewing Amazon RDS DB instance status").
pub(crate) const INSTANCE_TERMINAL: [&str; 6] = [
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "storage-full",
    "inaccessible-encryption-credentials",
];

/// Polls (with backoff and jitter) until the instance is `available` with nothing pending; each status
/// change is a progress line with the elapsed time. A terminal failure status fails the restore.
pub(crate) async fn wait_instance_available(
    rds: &Client,
    id: &str,
    events: &EventSink,
    drill: &str,
    phase: &'static str,
) -> Result<DbInstance, RestoreError> {
    let started = Instant::now();
    let mut backoff = Backoff::describe();
    let mut last = String::new();
    loop {
        let inst = describe_instance(rds, id).await.map_err(|e| RestoreError::Error(e.to_string()))?;
        let Some(inst) = inst else {
            return Err(RestoreError::Failed(format!("scratch instance `{id}` disappeared while restoring")));
        };
        let status = inst.db_instance_status().unwrap_or("unknown").to_string();
        let pending_password = inst.pending_modified_values().and_then(|p| p.master_user_password()).is_some();
        if status != last {
            events.progress(drill, phase, format!("{id}: {status} after {}s", started.elapsed().as_secs()));
            last = status.clone();
        }
        match status.as_str() {
            "available" if !pending_password => return Ok(inst),
            s if INSTANCE_TERMINAL.contains(&s) => {
                return Err(RestoreError::Failed(format!("scratch instance `{id}` entered status `{status}`")));
            }
            _ => backoff.wait().await,
        }
    }
}

/// Polls until the cluster is `available`.
pub(crate) async fn wait_cluster_available(
    rds: &Client,
    id: &str,
    events: &EventSink,
    drill: &str,
    phase: &'static str,
) -> Result<DbCluster, RestoreError> {
    let started = Instant::now();
    let mut backoff = Backoff::describe();
    let mut last = String::new();
    loop {
        let Some(c) = describe_cluster(rds, id).await.map_err(|e| RestoreError::Error(e.to_string()))? else {
            return Err(RestoreError::Failed(format!("scratch cluster `{id}` disappeared while restoring")));
        };
        let status = c.status().unwrap_or("unknown").to_string();
        if status != last {
            events.progress(drill, phase, format!("{id}: {status} after {}s", started.elapsed().as_secs()));
            last = status.clone();
        }
        match status.as_str() {
            "available" => return Ok(c),
            "failed" | "inaccessible-encryption-credentials" | "incompatible-restore" => {
                return Err(RestoreError::Failed(format!("scratch cluster `{id}` entered status `{status}`")));
            }
            _ => backoff.wait().await,
        }
    }
}

/// Which kind of parameter group: an instance's (RDS) or a cluster's (Aurora, where replication and
/// preload settings live).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupLevel {
    Instance,
    Cluster,
}

impl GroupLevel {
    fn what(self) -> &'static str {
        match self {
            GroupLevel::Instance => "parameter group",
            GroupLevel::Cluster => "cluster parameter group",
        }
    }
}

/// The parameter group a scratch starts with, and what it neutralises.
pub(crate) struct ScratchParameters {
    /// `None` when there was nothing to copy and the drill named none (the report says so).
    pub(crate) name: Option<String>,
    pub(crate) neutralised: Vec<String>,
}

/// Overrides that keep a restored RDS/Aurora PostgreSQL copy from acting: no logical replication worker
/// (a subscription in the backup would connect to the real publisher and consume its slot) and no
/// logical decoding from it. All static: they apply as the restored copy first boots.
const INERT_PARAMETERS: [(&str, &str); 2] =
    [("max_logical_replication_workers", "0"), ("rds.logical_replication", "0")];

/// The drill's `parameter-group`, else a copy of the source's `from` (named `name` and tagged as this
/// run's scratch) with [`INERT_PARAMETERS`] and `shared_preload_libraries` cut to the allow-list (no
/// pg_cron). Without either, the scratch keeps the engine's default group and the report says so.
pub(crate) async fn scratch_parameter_group(
    rds: &Client,
    level: GroupLevel,
    from: Option<&str>,
    scratch: &AwsScratchSpec,
    info: &RunInfo,
    name: &str,
) -> Result<ScratchParameters, RestoreError> {
    let what = level.what();
    if let Some(given) = &scratch.parameter_group {
        return Ok(ScratchParameters {
            name: Some(given.clone()),
            neutralised: vec![format!("{what} `{given}` (named by the drill; its settings are the drill's)")],
        });
    }
    let Some(from) = from else {
        return Ok(ScratchParameters {
            name: None,
            neutralised: vec![format!(
                "NOT neutralised: the source has no {what} to copy (it may no longer exist); name an inert one \
                 with `parameter-group`"
            )],
        });
    };
    let err = |step: &'static str| {
        move |e: AwsError| RestoreError::Error(format!("cannot prepare the scratch {what} ({step}): {e}"))
    };
    info.progress("restore", format!("copying {what} {from} → {name} (inert overrides)"));
    let description = format!("stackdrill scratch of run {} (inert copy of {from})", info.run);
    match level {
        GroupLevel::Instance => rds
            .copy_db_parameter_group()
            .source_db_parameter_group_identifier(from)
            .target_db_parameter_group_identifier(name)
            .target_db_parameter_group_description(description)
            .set_tags(Some(info.tags()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds:CopyDBParameterGroup", &e)),
        GroupLevel::Cluster => rds
            .copy_db_cluster_parameter_group()
            .source_db_cluster_parameter_group_identifier(from)
            .target_db_cluster_parameter_group_identifier(name)
            .target_db_cluster_parameter_group_description(description)
            .set_tags(Some(info.tags()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds:CopyDBClusterParameterGroup", &e)),
    }
    .map_err(err("copy"))?;
    let preload = parameter_value(rds, level, name, "shared_preload_libraries").await.map_err(err("describe"))?;
    let libraries: Vec<String> = preload.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    let (kept, dropped): (Vec<String>, Vec<String>) =
        libraries.into_iter().partition(|l| scratch.allow_preload.contains(l));
    let mut params: Vec<(&str, String)> = INERT_PARAMETERS.iter().map(|(k, v)| (*k, v.to_string())).collect();
    if !dropped.is_empty() && !kept.is_empty() {
        params.push(("shared_preload_libraries", kept.join(",")));
    }
    set_parameters(rds, level, name, &params, false).await.map_err(err("modify"))?;
    if !dropped.is_empty() && kept.is_empty() {
        // RDS takes no empty value: back to the engine's default (statistics only).
        set_parameters(rds, level, name, &[("shared_preload_libraries", String::new())], true)
            .await
            .map_err(err("reset"))?;
    }
    let mut neutralised = vec![format!(
        "scratch {what} `{name}` (a copy of `{from}`): max_logical_replication_workers = 0, rds.logical_replication = 0"
    )];
    if !dropped.is_empty() {
        neutralised.push(format!(
            "shared_preload_libraries: {} not loaded (kept: {})",
            dropped.join(", "),
            if kept.is_empty() { "the engine default".to_string() } else { kept.join(", ") }
        ));
    }
    Ok(ScratchParameters { name: Some(name.to_string()), neutralised })
}

/// Sets (or, with `reset`, resets to the engine default) static parameters, applied at the next boot.
async fn set_parameters(
    rds: &Client,
    level: GroupLevel,
    group: &str,
    params: &[(&str, String)],
    reset: bool,
) -> Result<(), AwsError> {
    use aws_sdk_rds::types::{ApplyMethod, Parameter};
    let params: Vec<Parameter> = params
        .iter()
        .map(|(k, v)| {
            let p = Parameter::builder().parameter_name(*k).apply_method(ApplyMethod::PendingReboot);
            if reset { p.build() } else { p.parameter_value(v).build() }
        })
        .collect();
    let params = Some(params);
    match (level, reset) {
        (GroupLevel::Instance, false) => rds
            .modify_db_parameter_group()
            .db_parameter_group_name(group)
            .set_parameters(params)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds:ModifyDBParameterGroup", &e)),
        (GroupLevel::Instance, true) => rds
            .reset_db_parameter_group()
            .db_parameter_group_name(group)
            .set_parameters(params)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds:ResetDBParameterGroup", &e)),
        (GroupLevel::Cluster, false) => rds
            .modify_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(group)
            .set_parameters(params)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds:ModifyDBClusterParameterGroup", &e)),
        (GroupLevel::Cluster, true) => rds
            .reset_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(group)
            .set_parameters(params)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("rds:ResetDBClusterParameterGroup", &e)),
    }
}

/// One parameter's value in a parameter group (empty when unset).
async fn parameter_value(rds: &Client, level: GroupLevel, group: &str, parameter: &str) -> Result<String, AwsError> {
    let mut marker: Option<String> = None;
    loop {
        let (params, next) = match level {
            GroupLevel::Instance => {
                let out = rds
                    .describe_db_parameters()
                    .db_parameter_group_name(group)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map_err(|e| classify("rds:DescribeDBParameters", &e))?;
                (out.parameters().to_vec(), out.marker().map(str::to_string))
            }
            GroupLevel::Cluster => {
                let out = rds
                    .describe_db_cluster_parameters()
                    .db_cluster_parameter_group_name(group)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map_err(|e| classify("rds:DescribeDBClusterParameters", &e))?;
                (out.parameters().to_vec(), out.marker().map(str::to_string))
            }
        };
        if let Some(p) = params.iter().find(|p| p.parameter_name() == Some(parameter)) {
            return Ok(p.parameter_value().unwrap_or_default().to_string());
        }
        marker = next;
        if marker.is_none() {
            return Ok(String::new());
        }
    }
}

/// Deletes a scratch parameter group after re-reading its tags; `Ok(false)` when it is already gone.
pub(crate) async fn delete_parameter_group_guarded(
    rds: &Client,
    level: GroupLevel,
    name: &str,
    owner: Owner<'_>,
) -> Result<bool, ScratchError> {
    retrying(name, || async {
        let arn = match level {
            GroupLevel::Instance => rds
                .describe_db_parameter_groups()
                .db_parameter_group_name(name)
                .send()
                .await
                .map(|o| o.db_parameter_groups().first().and_then(|g| g.db_parameter_group_arn()).map(str::to_string))
                .map_err(|e| classify("rds:DescribeDBParameterGroups", &e)),
            GroupLevel::Cluster => rds
                .describe_db_cluster_parameter_groups()
                .db_cluster_parameter_group_name(name)
                .send()
                .await
                .map(|o| {
                    o.db_cluster_parameter_groups()
                        .first()
                        .and_then(|g| g.db_cluster_parameter_group_arn())
                        .map(str::to_string)
                })
                .map_err(|e| classify("rds:DescribeDBClusterParameterGroups", &e)),
        };
        let arn = match arn {
            Ok(Some(arn)) => arn,
            Ok(None) => return Ok(false),
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let tags = rds
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|e| classify("rds:ListTagsForResource", &e))?;
        may_delete(&tag_pairs(tags.tag_list()), owner).map_err(|why| {
            ScratchError::Refused(format!(
                "refused to delete {} `{name}`: {why}; stackdrill deletes only its own scratch",
                level.what()
            ))
        })?;
        let deleted = match level {
            GroupLevel::Instance => rds
                .delete_db_parameter_group()
                .db_parameter_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("rds:DeleteDBParameterGroup", &e)),
            GroupLevel::Cluster => rds
                .delete_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("rds:DeleteDBClusterParameterGroup", &e)),
        };
        match deleted {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// Tears down a scratch parameter group this run copied, after its instance or cluster is gone.
pub(crate) async fn teardown_parameter_group(
    rds: &Client,
    level: GroupLevel,
    name: &str,
    run: &str,
    before: super::Teardown,
) -> super::Teardown {
    if before.status == super::TeardownStatus::Failed {
        // Still in use by what could not be deleted: `drill cleanup` takes both once they expire.
        return before;
    }
    let group = delete_parameter_group_guarded(rds, level, name, Owner::Run(run)).await;
    before.and(super::Teardown::from_delete(
        group,
        format!("deleted scratch {} {name}", level.what()),
        format!("scratch {} {name} does not exist", level.what()),
    ))
}

/// Deletes a scratch instance after re-reading its tags, then waits until it is gone.
/// Returns `Ok(false)` when there was nothing to delete.
/// Deletes a scratch instance, guarded by its tags; see [`retrying`].
pub(crate) async fn delete_instance_guarded(rds: &Client, id: &str, owner: Owner<'_>) -> Result<bool, ScratchError> {
    retrying(id, || delete_instance_once(rds, id, owner)).await
}

/// A teardown step tried again (backoff 2 s → 30 s, up to 8 rounds, inside the teardown's own deadline) when
/// it failed for a reason that passes — throttling, a dropped connection, a 5xx after the SDK's own retries —
/// so a flaky API does not leave a scratch behind. A refusal (not ours) or a denial is final at once.
async fn retrying<F, Fut>(id: &str, mut step: F) -> Result<bool, ScratchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, ScratchError>>,
{
    let mut backoff = Backoff::describe();
    let mut round = 1;
    loop {
        match step().await {
            Ok(done) => return Ok(done),
            Err(e) if round >= 8 || e.is_final() => return Err(e),
            Err(e) => {
                tracing::warn!(scratch = %id, round, "teardown of `{id}` failed, trying again: {e}");
                round += 1;
                backoff.wait().await;
            }
        }
    }
}

async fn delete_instance_once(rds: &Client, id: &str, owner: Owner<'_>) -> Result<bool, ScratchError> {
    let Some(inst) = describe_instance(rds, id).await? else {
        return Ok(false);
    };
    may_delete(&tag_pairs(inst.tag_list()), owner).map_err(|why| {
        ScratchError::Refused(format!("refused to delete `{id}`: {why}; stackdrill deletes only its own scratch"))
    })?;
    if inst.deletion_protection() == Some(true) {
        rds.modify_db_instance()
            .db_instance_identifier(id)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| classify("rds:ModifyDBInstance", &e))?;
    }
    if inst.db_instance_status() != Some("deleting") {
        match rds
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let e = classify("rds:DeleteDBInstance", &e);
                if !e.is_not_found() {
                    return Err(e.into());
                }
            }
        }
    }
    let mut backoff = Backoff::describe();
    while describe_instance(rds, id).await?.is_some() {
        backoff.wait().await;
    }
    Ok(true)
}

/// Deletes a scratch Aurora cluster (its instances first), guarded by the cluster's tags; see [`retrying`].
pub(crate) async fn delete_cluster_guarded(rds: &Client, id: &str, owner: Owner<'_>) -> Result<bool, ScratchError> {
    retrying(id, || delete_cluster_once(rds, id, owner)).await
}

async fn delete_cluster_once(rds: &Client, id: &str, owner: Owner<'_>) -> Result<bool, ScratchError> {
    let Some(c) = describe_cluster(rds, id).await? else {
        return Ok(false);
    };
    may_delete(&tag_pairs(c.tag_list()), owner).map_err(|why| {
        ScratchError::Refused(format!(
            "refused to delete cluster `{id}`: {why}; stackdrill deletes only its own scratch"
        ))
    })?;
    for m in c.db_cluster_members() {
        if let Some(inst) = m.db_instance_identifier() {
            delete_instance_once(rds, inst, owner).await?;
        }
    }
    if c.deletion_protection() == Some(true) {
        rds.modify_db_cluster()
            .db_cluster_identifier(id)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| classify("rds:ModifyDBCluster", &e))?;
    }
    match rds.delete_db_cluster().db_cluster_identifier(id).skip_final_snapshot(true).send().await {
        Ok(_) => {}
        Err(e) => {
            let e = classify("rds:DeleteDBCluster", &e);
            if !e.is_not_found() {
                return Err(e.into());
            }
        }
    }
    let mut backoff = Backoff::describe();
    while describe_cluster(rds, id).await?.is_some() {
        backoff.wait().await;
    }
    Ok(true)
}

/// The connection to a scratch database: its endpoint or the `connect` override, over the drill's TLS mode.
pub(crate) fn endpoint(
    scratch: &AwsScratchSpec,
    address: Option<&str>,
    port: Option<i32>,
    user: &str,
    password: &str,
    database: &str,
) -> Result<super::Endpoint, RestoreError> {
    let (host, port) = match &scratch.connect {
        Some((h, p)) => (h.clone(), *p),
        None => {
            let Some(a) = address else {
                return Err(RestoreError::Failed("the scratch database reports no endpoint address".into()));
            };
            (a.to_string(), port.and_then(|p| u16::try_from(p).ok()).unwrap_or(5432))
        }
    };
    let mut config = tokio_postgres::Config::new();
    config
        .host(&host)
        .port(port)
        .user(user)
        .password(password)
        .dbname(database)
        .application_name("stackdrill")
        .connect_timeout(Duration::from_secs(15));
    let via = if scratch.connect.is_some() { " (via connect override)" } else { "" };
    let tls = format!("sslmode={}", scratch.tls.sslmode());
    Ok(super::Endpoint {
        config,
        tls: scratch.tls.clone(),
        // Through a tunnel the certificate still names the RDS endpoint: verify-full checks that name.
        server_name: scratch.connect.as_ref().and(address).map(str::to_string),
        credential: None,
        display: format!("{user}@{host}:{port}/{database}{via} {tls}"),
    })
}

/// Brings a restored scratch instance to a usable endpoint: waits for `available`, sets a fresh master
/// password (the restore carries the source's; the new one lives only in this process) and switches off
/// deletion protection in the same call in case the restore inherited it (teardown must be able to delete),
/// waits until that applied, refuses a publicly accessible scratch, and waits until it accepts a connection.
pub(crate) async fn ready_instance(
    rds: &Client,
    id: &str,
    scratch: &AwsScratchSpec,
    info: &RunInfo,
) -> Result<super::Endpoint, RestoreError> {
    let (events, drill) = (&info.events, info.drill.as_str());
    wait_instance_available(rds, id, events, drill, "ready").await?;
    let password = fresh_password();
    info.progress("ready", "setting fresh credentials (ModifyDBInstance)");
    set_fresh_credentials(rds, id, &password, Backoff::describe()).await?;
    let inst = wait_instance_available(rds, id, events, drill, "ready").await?;
    if inst.publicly_accessible() == Some(true) {
        return Err(RestoreError::Error(format!(
            "scratch `{id}` came up publicly accessible; refusing to use it (it will be torn down)"
        )));
    }
    let user = inst.master_username().unwrap_or("postgres").to_string();
    let address = inst.endpoint().and_then(|e| e.address());
    let port = inst.endpoint().and_then(|e| e.port());
    let ep = endpoint(scratch, address, port, &user, &password, &info.database)?;
    wait_connectable(&ep).await?;
    Ok(ep)
}

/// Sets the scratch's fresh master password (and deletion protection off, in case the restore inherited
/// it). Right after a restore reports `available`, RDS may still be taking the post-restore backup and
/// answer InvalidDBInstanceState ("not in available state"): that is retried with `backoff`, ten times
/// at most; any other error is final.
async fn set_fresh_credentials(
    rds: &Client,
    id: &str,
    password: &str,
    mut backoff: Backoff,
) -> Result<(), RestoreError> {
    let mut attempt = 1;
    loop {
        let sent = rds
            .modify_db_instance()
            .db_instance_identifier(id)
            .master_user_password(password)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(()),
            Err(e) => {
                let e = classify("rds:ModifyDBInstance", &e);
                if e.code.as_deref() != Some("InvalidDBInstanceState") || attempt >= 10 {
                    return Err(RestoreError::Error(e.to_string()));
                }
                tracing::info!(scratch = %id, attempt, "the scratch is not ready for ModifyDBInstance yet; retrying");
                attempt += 1;
                backoff.wait().await;
            }
        }
    }
}

/// Waits until the scratch accepts a TLS connection with the fresh credentials (a password change
/// can take a moment to reach the engine after RDS reports it applied).
pub(crate) async fn wait_connectable(ep: &super::Endpoint) -> Result<(), RestoreError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    loop {
        match crate::pg::connect_tls(&ep.config, &ep.tls, ep.server_name.as_deref()).await {
            Ok(_) => return Ok(()),
            // A certificate that does not verify will not start verifying, a server that does not speak
            // TLS will not start, and one that asks for a password without channel binding will not stop
            // asking: no point in retrying any of them.
            Err(e) if e.contains("certificate") || crate::pg::is_tls_refused(&e) => {
                return Err(RestoreError::Failed(format!("cannot connect to the scratch {}: {e}", ep.display)));
            }
            Err(e) if crate::pg::is_channel_binding_refused(&e) => {
                return Err(RestoreError::Failed(format!(
                    "cannot connect to the scratch {}: {e}; {}",
                    ep.display,
                    crate::pg::CHANNEL_BINDING_HINT
                )));
            }
            Err(e) if Instant::now() > deadline => {
                return Err(RestoreError::Failed(format!("cannot connect to the scratch {}: {e}", ep.display)));
            }
            Err(_) => backoff.wait().await,
        }
    }
}

/// A source whose newest restorable time can be read again (an RDS instance, an Aurora cluster).
pub(crate) trait Restorable {
    async fn latest_restorable(&mut self) -> Result<Option<DateTime<Utc>>, DrillError>;
}

/// Waits (polling with backoff, within the plan phase's deadline) until the source can be restored to `t`:
/// RDS's LatestRestorableTime trails commits by up to ~5 minutes.
pub(crate) async fn wait_until_restorable(source: &mut impl Restorable, t: DateTime<Utc>) -> Result<(), DrillError> {
    let mut backoff = crate::aws::Backoff::new(Duration::from_secs(5), Duration::from_secs(30));
    while source.latest_restorable().await?.is_none_or(|l| l < t) {
        backoff.wait().await;
    }
    Ok(())
}

/// What an AWS database provider's run would create, named `name`, for `drill plan`.
pub(crate) fn scratch_text(s: &crate::config::AwsScratchSpec, name: &str, region: Option<&str>) -> String {
    let mut net = format!(
        "subnet group {}, security groups {}",
        s.subnet_group.as_deref().unwrap_or("(default VPC)"),
        if s.security_groups.is_empty() { "(default)".to_string() } else { s.security_groups.join(", ") }
    );
    if let Some(class) = &s.instance_class {
        net.push_str(&format!(", {class}"));
    }
    let region = s.region.as_deref().or(region).unwrap_or("the default region");
    format!("{name} in {region} ({net}), tagged stackdrill:scratch")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ModifyDBInstance right after a restore can meet InvalidDBInstanceState while RDS takes the
    /// post-restore backup (the RDS API reference lists it for ModifyDBInstance): retried, not fatal.
    #[tokio::test]
    async fn fresh_credentials_are_retried_while_the_instance_is_busy() {
        use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
        use aws_smithy_mocks::mock;
        use aws_smithy_runtime_api::http::{Response, StatusCode};

        use crate::aws::mocked;
        use aws_smithy_types::body::SdkBody;
        let busy = || {
            Response::new(
                StatusCode::try_from(400).unwrap(),
                SdkBody::from(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidDBInstanceState</Code><Message>Database \
                     instance is not in available state.</Message></Error><RequestId>r</RequestId></ErrorResponse>",
                ),
            )
        };
        let modify = mock!(aws_sdk_rds::Client::modify_db_instance)
            .sequence()
            .http_response(busy)
            .times(2)
            .output(|| ModifyDbInstanceOutput::builder().build())
            .build();
        let rds = mocked!(aws_sdk_rds, &[&modify]);
        let quick = Backoff::new(Duration::from_millis(10), Duration::from_millis(20));
        set_fresh_credentials(&rds, "sd-x-abcdef", "pw", quick).await.unwrap();
        assert_eq!(modify.num_calls(), 3);

        let denied = mock!(aws_sdk_rds::Client::modify_db_instance).then_http_response(|| {
            Response::new(
                StatusCode::try_from(400).unwrap(),
                SdkBody::from(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterCombination</Code><Message>no\
                     </Message></Error><RequestId>r</RequestId></ErrorResponse>",
                ),
            )
        });
        let rds = mocked!(aws_sdk_rds, &[&denied]);
        let quick = Backoff::new(Duration::from_millis(10), Duration::from_millis(20));
        assert!(set_fresh_credentials(&rds, "sd-x-abcdef", "pw", quick).await.is_err());
        assert_eq!(denied.num_calls(), 1, "another error is final");
    }

    #[test]
    fn scratch_ids_follow_rds_rules() {
        for (drill, want) in [
            ("prod-db-pitr", "sd-prod-db-pitr-abcdef"),
            ("9lives--x-", "sd-9lives-x-abcdef"),
            ("a".repeat(40).as_str(), &format!("sd-{}-abcdef", "a".repeat(40))),
        ] {
            let id = scratch_id(drill, "abcdef123456");
            assert_eq!(id, want);
            assert!(crate::config::is_db_identifier(&id), "{id}");
        }
    }

    #[test]
    fn the_guard_needs_the_scratch_tags_and_the_run_or_an_expiry() {
        let now = Utc::now();
        let tags = tag_pairs(&scratch_tags("d", "run1", now - chrono::TimeDelta::minutes(1)));
        assert!(may_delete(&tags, Owner::Run("run1")).is_ok());
        assert!(may_delete(&tags, Owner::Run("run2")).is_err());
        assert!(may_delete(&tags, Owner::Expired(now)).is_ok());
        let fresh = tag_pairs(&scratch_tags("d", "run1", now + chrono::TimeDelta::hours(1)));
        assert!(may_delete(&fresh, Owner::Expired(now)).is_err());
        let untagged = vec![(TAG_RUN.to_string(), "run1".to_string())];
        assert!(may_delete(&untagged, Owner::Run("run1")).unwrap_err().to_string().contains("lacks"));
    }
}
