//! Live state: what AWS has for each declared resource, read with batched describes, and who owns it.
//!
//! Ownership comes from one paged scan of the tagging API (`stackdrill:stack` on every ARN it knows);
//! a resource found by name whose ARN the scan did not return gets one tag read of its own, so a
//! service the tagging API misses still answers correctly.

use std::collections::{BTreeMap, HashMap};

use aws_types::SdkConfig;
use serde::Serialize;
use serde_json::Value;

use super::model::{Resource, ResourceKind};
use super::resources;
use crate::aws::{AwsError, CallCounter, classify, client};

pub(crate) use crate::aws::TAG_MANAGED;
pub(crate) const TAG_STACK: &str = "stackdrill:stack";

/// One client per service, all counting their calls into one tally.
#[derive(Clone)]
pub(crate) struct Clients {
    pub(crate) kms: aws_sdk_kms::Client,
    pub(crate) sns: aws_sdk_sns::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) cw: aws_sdk_cloudwatch::Client,
    pub(crate) rds: aws_sdk_rds::Client,
    pub(crate) backup: aws_sdk_backup::Client,
    pub(crate) eb: aws_sdk_elasticbeanstalk::Client,
    pub(crate) shield: aws_sdk_shield::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) tagging: aws_sdk_resourcegroupstagging::Client,
    pub(crate) calls: CallCounter,
    pub(crate) region: String,
}

impl Clients {
    pub(crate) fn new(sdk: &SdkConfig) -> Self {
        let calls = CallCounter::default();
        Clients {
            kms: client!(aws_sdk_kms, sdk, calls),
            sns: client!(aws_sdk_sns, sdk, calls),
            logs: client!(aws_sdk_cloudwatchlogs, sdk, calls),
            cw: client!(aws_sdk_cloudwatch, sdk, calls),
            rds: client!(aws_sdk_rds, sdk, calls),
            backup: client!(aws_sdk_backup, sdk, calls),
            eb: client!(aws_sdk_elasticbeanstalk, sdk, calls),
            shield: client!(aws_sdk_shield, sdk, calls),
            // Path-style addressing against an emulator endpoint (no bucket subdomains there).
            s3: crate::aws::s3::client(sdk, sdk.endpoint_url().is_some(), Some(&calls)),
            tagging: client!(aws_sdk_resourcegroupstagging, sdk, calls),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            calls,
        }
    }
}

/// Who a live resource belongs to, by its `stackdrill:stack` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "owner", content = "stack")]
pub(crate) enum Owner {
    /// Tagged for this stack.
    This,
    /// Tagged for another stack.
    Other(String),
    /// Exists under the declared name without stackdrill's tags: never adopted silently.
    Untagged,
}

/// A resource as AWS has it: the same property names and shapes as [`Resource::props`].
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Live {
    pub(crate) kind: ResourceKind,
    pub(crate) name: String,
    /// The ARN (or, for metric filters and backup selections, the parent's ARN).
    pub(crate) arn: String,
    /// A service id the name does not give (KMS key id, backup plan id, selection id).
    pub(crate) id: Option<String>,
    pub(crate) props: BTreeMap<String, Value>,
    pub(crate) owner: Owner,
}

impl Live {
    pub(crate) fn new(kind: ResourceKind, name: impl Into<String>, arn: impl Into<String>) -> Self {
        Live { kind, name: name.into(), arn: arn.into(), id: None, props: BTreeMap::new(), owner: Owner::Untagged }
    }

    pub(crate) fn prop(mut self, k: &str, v: impl Serialize) -> Self {
        self.props.insert(k.to_string(), serde_json::json!(v));
        self
    }

    pub(crate) fn address(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

/// Names that cross services while reading and applying: key aliases ↔ ARNs, topic ARNs, plan ids.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ids {
    /// `alias/production-data` → key ARN.
    pub(crate) key_arn: HashMap<String, String>,
    pub(crate) topic_arn: HashMap<String, String>,
    pub(crate) plan_id: HashMap<String, String>,
}

impl Ids {
    /// An ARN, key id or alias as a service reports it, shown as the alias the stack file uses.
    pub(crate) fn alias_of(&self, key: &str) -> String {
        if key.starts_with("alias/") {
            return key.to_string();
        }
        if let Some(alias) = key.strip_prefix("arn:").and_then(|_| key.split_once(":alias/")).map(|(_, a)| a) {
            return format!("alias/{alias}");
        }
        let id = key.rsplit('/').next().unwrap_or(key);
        self.key_arn
            .iter()
            .filter(|(_, arn)| arn.rsplit('/').next() == Some(id))
            .map(|(alias, _)| alias.clone())
            .min()
            .unwrap_or_else(|| key.to_string())
    }
}

/// Everything read: declared resources found (by `kind/name`), and this stack's tagged resources that the
/// file no longer declares.
#[derive(Debug, Default)]
pub(crate) struct LiveState {
    pub(crate) found: BTreeMap<String, Live>,
    pub(crate) orphans: Vec<Live>,
    pub(crate) ids: Ids,
    /// Facts the plan should state (e.g. no Shield Advanced subscription).
    pub(crate) notes: Vec<String>,
    pub(crate) shield_subscribed: bool,
}

impl LiveState {
    pub(crate) fn get(&self, r: &Resource) -> Option<&Live> {
        self.found.get(&r.address())
    }

    /// A digest of everything the plan was computed from: a saved plan is applied only while it holds.
    pub(crate) fn sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        #[derive(Serialize)]
        struct Canon<'a> {
            found: Vec<(&'a String, &'a Owner, &'a BTreeMap<String, Value>)>,
            orphans: Vec<(String, &'a Owner)>,
        }
        let mut orphans: Vec<_> = self.orphans.iter().map(|o| (o.address(), &o.owner)).collect();
        orphans.sort_by(|a, b| a.0.cmp(&b.0));
        let canon = Canon { found: self.found.iter().map(|(k, l)| (k, &l.owner, &l.props)).collect(), orphans };
        hex::encode(Sha256::digest(serde_json::to_vec(&canon).unwrap_or_default()))
    }
}

/// Reads live state for the declared resources: KMS first (aliases name keys everywhere), then every
/// other service at once, then ownership.
pub(crate) async fn read(c: &Clients, stack: &str, desired: &[Resource]) -> Result<LiveState, AwsError> {
    let mut st = LiveState::default();
    let of = |kind: ResourceKind| desired.iter().filter(move |r| r.kind == kind).collect::<Vec<_>>();
    // One batch a kind, in `ResourceKind::ALL`'s (declaration) order.
    let [
        keys,
        topics,
        groups,
        filters,
        alarms,
        pgs,
        subnet_groups,
        dbs,
        vaults,
        plans,
        selections,
        buckets,
        apps,
        envs,
        protections,
    ] = ResourceKind::ALL.map(of);
    let keys = resources::kms::read(c, &keys, &mut st.ids).await?;
    let ids = st.ids.clone();
    let (sns, logs, alarms, rds, backup, s3, eb, shield) = tokio::try_join!(
        resources::sns::read(c, &topics, &ids),
        resources::logs::read(c, &groups, &filters, &ids),
        resources::alarms::read(c, &alarms),
        resources::rds::read(c, &pgs, &subnet_groups, &dbs, &ids),
        resources::backup::read(c, &vaults, &plans, &selections, &ids),
        resources::s3::read(c, &buckets, &ids),
        resources::beanstalk::read(c, &apps, &envs),
        resources::shield::read(c, &protections),
    )?;
    for l in &backup {
        if l.kind == ResourceKind::BackupPlan
            && let Some(id) = &l.id
        {
            st.ids.plan_id.insert(l.name.clone(), id.clone());
        }
    }
    for l in &sns {
        st.ids.topic_arn.insert(l.name.clone(), l.arn.clone());
    }
    st.shield_subscribed = shield.0;
    st.notes.extend(shield.2);
    for l in rds.iter().filter(|l| l.props.get(resources::rds::BACKUP_MANAGED) == Some(&serde_json::Value::Bool(true)))
    {
        st.notes.push(format!(
            "rds-instance {}: AWS Backup's continuous backup manages its retention (AwsBackupRecoveryPointArn is \
             set), so backup-retention-days is not compared or changed",
            l.name
        ));
    }
    let all: Vec<Live> = keys
        .into_iter()
        .chain(sns)
        .chain(logs)
        .chain(alarms)
        .chain(rds)
        .chain(backup)
        .chain(s3)
        .chain(eb)
        .chain(shield.1)
        .collect();
    let tagged = tagged_arns(c).await?;
    st.found = owned(c, all, &tagged, stack).await?;
    // This stack's resources the file no longer declares.
    let known: std::collections::HashSet<&String> = st.found.values().map(|l| &l.arn).collect();
    let mut orphans = Vec::new();
    for (arn, s) in &tagged {
        if s == stack
            && !known.contains(arn)
            && let Some(l) = resources::orphan(c, arn, &st.ids).await?
        {
            orphans.push(l);
        }
    }
    st.orphans = orphans;
    Ok(st)
}

/// Each live resource with its owner (by its tag, from the tagging API or its own service), by `kind/name`.
async fn owned(
    c: &Clients,
    all: Vec<Live>,
    tagged: &HashMap<String, String>,
    stack: &str,
) -> Result<BTreeMap<String, Live>, AwsError> {
    let mut found = BTreeMap::new();
    let mut owners: HashMap<String, Owner> = HashMap::new();
    for mut l in all {
        // Metric filters and selections carry no tags: they belong to whoever owns their parent.
        let owner = match owners.get(&l.arn) {
            Some(o) => o.clone(),
            None => {
                let owner = match tagged.get(&l.arn) {
                    Some(s) => owner_of(s, stack),
                    None => match resources::tags_of(c, l.kind, &l.arn).await? {
                        Some(tags) => tags.get(TAG_STACK).map(|s| owner_of(s, stack)).unwrap_or(Owner::Untagged),
                        None => Owner::Untagged,
                    },
                };
                owners.insert(l.arn.clone(), owner.clone());
                owner
            }
        };
        l.owner = owner;
        found.insert(format!("{}/{}", l.kind, l.name), l);
    }
    Ok(found)
}

fn owner_of(tag: &str, stack: &str) -> Owner {
    if tag == stack { Owner::This } else { Owner::Other(tag.to_string()) }
}

/// ARN → the stack its `stackdrill:stack` tag names.
type StackTags = HashMap<String, String>;

/// Every ARN the tagging API knows with a `stackdrill:stack` tag, and the tag's value (100 a page).
async fn tagged_arns(c: &Clients) -> Result<StackTags, AwsError> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let mut out = HashMap::new();
    let mut pages = c
        .tagging
        .get_resources()
        .tag_filters(TagFilter::builder().key(TAG_STACK).build())
        .resources_per_page(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| classify("tag:GetResources", &e))?;
        for m in page.resource_tag_mapping_list() {
            let Some(arn) = m.resource_arn() else { continue };
            if let Some(t) = m.tags().iter().find(|t| t.key() == TAG_STACK) {
                out.insert(arn.to_string(), t.value().to_string());
            }
        }
    }
    Ok(out)
}
