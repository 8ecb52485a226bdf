//! `drill cleanup`: sweeps scratch environments left behind by crashed runs. Local directories are
//! touched only when their scratch marker says stackdrill created them and their run is gone or expired;
//! AWS resources only when they carry `stackdrill:scratch=true` and an expiry in the past (re-read just
//! before the delete). Anything else that looks like scratch is reported as refused, never touched.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;

use super::guard;
use super::restore::aws_scratch::{self, Owner, TAG_SCRATCH};
use super::restore::s3_scratch;
use crate::aws::{AwsError, AwsSettings, classify};
use crate::config::DrillSpec;
use crate::drill::restore::registry;
use crate::pg::{Cluster, PgBin, RunAs, remove_tree};

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Swept {
    /// `local`, `rds-instance`, `rds-cluster`, `rds-parameter-group`, `s3-bucket`, `supabase-branch`.
    pub(crate) kind: &'static str,
    /// A directory, or `region/identifier`.
    pub(crate) resource: String,
    pub(crate) drill: String,
    pub(crate) run: String,
    /// `removed`, `would remove`, `kept (...)`, `refused: ...`, `skipped: ...` or `failed: ...`.
    pub(crate) action: String,
}

#[tracing::instrument(skip_all, fields(dry_run))]
pub(crate) async fn sweep(drills: &[DrillSpec], dry_run: bool, aws: &AwsSettings, force_aws: bool) -> Vec<Swept> {
    let mut out = sweep_local(drills, dry_run).await;
    for d in drills {
        out.extend(registry::kind(&d.restore).sweep(&d.name, dry_run).await);
    }
    let mut regions = BTreeSet::new();
    for scratch in drills.iter().filter_map(|d| d.restore.aws_scratch()) {
        regions.insert(scratch.region.clone());
    }
    let mut buckets = force_aws;
    for bucket in drills.iter().flat_map(|d| d.restore.buckets(&d.also_restore)) {
        regions.insert(bucket.region.clone());
        buckets = true;
    }
    if force_aws && regions.is_empty() {
        regions.insert(None);
    }
    for region in regions {
        let mut settings = aws.clone();
        if region.is_some() {
            settings.region = region;
        }
        out.extend(sweep_aws(&settings, dry_run, force_aws, buckets).await);
    }
    out
}

async fn sweep_local(drills: &[DrillSpec], dry_run: bool) -> Vec<Swept> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in drills {
        let Some((root, os_user)) = registry::kind(&d.restore).local_scratch() else { continue };
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        if !seen.insert(root.clone()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&root) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(marker) = guard::read(&path) else { continue };
            if !marker.scratch {
                continue;
            }
            let expired = marker.expires_at < Utc::now();
            let orphan = guard::creator_gone(&marker);
            let action = if !(expired || orphan) {
                "kept (its run is still alive)".to_string()
            } else if dry_run {
                "would remove".to_string()
            } else {
                match remove(&path, os_user).await {
                    Ok(()) => "removed".to_string(),
                    Err(e) => format!("failed: {e}"),
                }
            };
            out.push(Swept {
                kind: "local",
                resource: path.display().to_string(),
                drill: marker.drill,
                run: marker.run,
                action,
            });
        }
    }
    out
}

async fn remove(path: &std::path::Path, os_user: &str) -> Result<(), crate::pg::PgError> {
    let cluster = Cluster { dir: path.to_path_buf(), port: 0 };
    if cluster.is_running() {
        let bin = PgBin::find()?;
        let as_user = RunAs::resolve(os_user)?;
        cluster.stop(&bin, &as_user, Duration::from_secs(60)).await?;
    }
    remove_tree(path)
}

/// One RDS resource that looks like drill scratch: tagged as scratch, or named `sd-…`.
struct Candidate {
    kind: &'static str,
    id: String,
    tags: Vec<(String, String)>,
}

/// Without `--aws` (`required` false), no credentials means the AWS sweep is skipped with a note, not a
/// failure: a laptop that ran the demo has AWS drills in drills/ and no credentials.
/// `buckets`: the drills restore buckets (or `--aws` asks for everything), so scratch buckets are swept and
/// a failure to list them is reported; otherwise a role that may not list buckets is left alone.
async fn sweep_aws(settings: &AwsSettings, dry_run: bool, required: bool, buckets: bool) -> Vec<Swept> {
    let config = crate::aws::load(settings).await;
    let region = config.region().map(|r| r.to_string()).unwrap_or_default();
    let failed = |what: String| Swept {
        kind: "aws",
        resource: region.clone(),
        drill: String::new(),
        run: String::new(),
        action: format!("failed: {what}"),
    };
    if let Err(e) = crate::aws::check_credentials(&config).await {
        if !required && e.kind == crate::aws::Kind::NoCredentials {
            return vec![Swept {
                kind: "aws",
                resource: region.clone(),
                drill: String::new(),
                run: String::new(),
                action: "skipped: no AWS credentials (`--aws` makes that an error)".into(),
            }];
        }
        return vec![failed(e.to_string())];
    }
    let rds_client = aws_sdk_rds::Client::new(&config);
    let tagging = aws_sdk_resourcegroupstagging::Client::new(&config);
    let mut found: Vec<Candidate> = Vec::new();
    let mut seen = BTreeSet::new();
    // The tagging API finds scratch by tag in one paged listing; RDS describes also catch `sd-` lookalikes
    // (reported as refused) and work where the tagging API is not allowed.
    match tagged_scratch(&tagging).await {
        Ok(list) => {
            for c in list {
                if seen.insert((c.kind, c.id.clone())) {
                    found.push(c);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "the tagging API failed; falling back to RDS describes"),
    }
    match described_scratch(&rds_client).await {
        Ok(list) => {
            for c in list {
                if seen.insert((c.kind, c.id.clone())) {
                    found.push(c);
                }
            }
        }
        Err(e) => return vec![failed(e.to_string())],
    }
    let s3 = crate::aws::s3_client(settings).await;
    let mut out = Vec::new();
    match s3_scratch::scratch_candidates(&s3, &region).await {
        Ok(list) => {
            found.extend(list.tagged.into_iter().map(|(id, tags)| Candidate { kind: "s3-bucket", id, tags }));
            // Named like scratch, but its tags may not be read here: not provably ours, so left alone.
            out.extend(list.unreadable.into_iter().map(|(id, why)| Swept {
                kind: "s3-bucket",
                resource: format!("{region}/{id}"),
                drill: String::new(),
                run: String::new(),
                action: format!("skipped: its tags cannot be read ({why})"),
            }));
        }
        // The RDS scratch found above is still swept.
        Err(e) if buckets => out.push(failed(format!("scratch buckets not swept: {e}"))),
        Err(e) => tracing::debug!(error = %e, "scratch buckets not listed (no drill restores a bucket)"),
    }
    // Instances before clusters (a cluster's members go with it), parameter groups last (in use until then).
    let order = |k: &str| {
        ["rds-instance", "rds-cluster", "rds-parameter-group", "rds-cluster-parameter-group", "s3-bucket"]
            .iter()
            .position(|x| *x == k)
    };
    found.sort_by_key(|c| (order(c.kind), c.id.clone()));
    let now = Utc::now();
    for c in found {
        let get = |k: &str| c.tags.iter().find(|(tk, _)| tk == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let (drill, run) = (get(aws_scratch::TAG_DRILL), get(aws_scratch::TAG_RUN));
        let action = match aws_scratch::may_delete(&c.tags, Owner::Expired(now)) {
            Err(why) if get(TAG_SCRATCH) != "true" => format!("refused: {why}"),
            Err(why) => format!("kept ({why})"),
            Ok(()) if dry_run => "would remove".into(),
            Ok(()) => {
                let res = match c.kind {
                    "rds-cluster" => aws_scratch::delete_cluster_guarded(&rds_client, &c.id, Owner::Expired(now)).await,
                    "s3-bucket" => s3_scratch::delete_guarded(&s3, &c.id, Owner::Expired(now)).await,
                    "rds-parameter-group" => {
                        let level = aws_scratch::GroupLevel::Instance;
                        aws_scratch::delete_parameter_group_guarded(&rds_client, level, &c.id, Owner::Expired(now))
                            .await
                    }
                    "rds-cluster-parameter-group" => {
                        let level = aws_scratch::GroupLevel::Cluster;
                        aws_scratch::delete_parameter_group_guarded(&rds_client, level, &c.id, Owner::Expired(now))
                            .await
                    }
                    _ => aws_scratch::delete_instance_guarded(&rds_client, &c.id, Owner::Expired(now)).await,
                };
                match res {
                    Ok(true) => "removed".into(),
                    Ok(false) => "already gone".into(),
                    Err(e) => format!("failed: {e}"),
                }
            }
        };
        out.push(Swept { kind: c.kind, resource: format!("{region}/{}", c.id), drill, run, action });
    }
    out
}

async fn tagged_scratch(tagging: &aws_sdk_resourcegroupstagging::Client) -> Result<Vec<Candidate>, AwsError> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = tagging
            .get_resources()
            .tag_filters(TagFilter::builder().key(TAG_SCRATCH).values("true").build())
            .resource_type_filters("rds:db")
            .resource_type_filters("rds:cluster")
            .resource_type_filters("rds:pg")
            .resource_type_filters("rds:cluster-pg")
            .set_pagination_token(token.clone())
            .send()
            .await
            .map_err(|e| classify("tag:GetResources", &e))?;
        for m in page.resource_tag_mapping_list() {
            let Some(arn) = m.resource_arn() else { continue };
            let parts: Vec<&str> = arn.split(':').collect();
            let kind = match parts.get(5) {
                Some(&"db") => "rds-instance",
                Some(&"cluster") => "rds-cluster",
                Some(&"pg") => "rds-parameter-group",
                Some(&"cluster-pg") => "rds-cluster-parameter-group",
                _ => continue,
            };
            let Some(id) = parts.get(6) else { continue };
            let tags = m.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
            out.push(Candidate { kind, id: id.to_string(), tags });
        }
        token = page.pagination_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

fn looks_like_scratch(id: &str, tags: &[(String, String)]) -> bool {
    id.starts_with("sd-") || tags.iter().any(|(k, v)| k == TAG_SCRATCH && v == "true")
}

async fn described_scratch(rds_client: &aws_sdk_rds::Client) -> Result<Vec<Candidate>, AwsError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = rds_client
            .describe_db_instances()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| classify("rds:DescribeDBInstances", &e))?;
        for i in page.db_instances() {
            let id = i.db_instance_identifier().unwrap_or_default().to_string();
            let tags = aws_scratch::tag_pairs(i.tag_list());
            // Members of a scratch cluster go with their cluster.
            if looks_like_scratch(&id, &tags) && i.db_cluster_identifier().is_none() {
                out.push(Candidate { kind: "rds-instance", id, tags });
            }
        }
        marker = page.marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    let mut marker: Option<String> = None;
    loop {
        let page = rds_client
            .describe_db_clusters()
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| classify("rds:DescribeDBClusters", &e))?;
        for c in page.db_clusters() {
            let id = c.db_cluster_identifier().unwrap_or_default().to_string();
            let tags = aws_scratch::tag_pairs(c.tag_list());
            if looks_like_scratch(&id, &tags) {
                out.push(Candidate { kind: "rds-cluster", id, tags });
            }
        }
        marker = page.marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    // Parameter groups carry no tags in their listing: read them for the `sd-` ones only.
    let mut named: Vec<(&'static str, String, String)> = Vec::new();
    let mut groups = rds_client.describe_db_parameter_groups().into_paginator().send();
    while let Some(page) = groups.next().await {
        let page = page.map_err(|e| classify("rds:DescribeDBParameterGroups", &e))?;
        for g in page.db_parameter_groups() {
            if let (Some(id), Some(arn)) = (g.db_parameter_group_name(), g.db_parameter_group_arn()) {
                named.push(("rds-parameter-group", id.to_string(), arn.to_string()));
            }
        }
    }
    let mut groups = rds_client.describe_db_cluster_parameter_groups().into_paginator().send();
    while let Some(page) = groups.next().await {
        let page = page.map_err(|e| classify("rds:DescribeDBClusterParameterGroups", &e))?;
        for g in page.db_cluster_parameter_groups() {
            if let (Some(id), Some(arn)) = (g.db_cluster_parameter_group_name(), g.db_cluster_parameter_group_arn()) {
                named.push(("rds-cluster-parameter-group", id.to_string(), arn.to_string()));
            }
        }
    }
    for (kind, id, arn) in named.into_iter().filter(|(_, id, _)| id.starts_with("sd-")) {
        let tags = rds_client
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|e| classify("rds:ListTagsForResource", &e))?;
        out.push(Candidate { kind, id, tags: aws_scratch::tag_pairs(tags.tag_list()) });
    }
    Ok(out)
}
