//! The least-privilege IAM policy each use of stackdrill needs: drills (by provider and source login), a
//! stack (read-only for plan, or apply), schedule deployment, the report store and its signing key, and the
//! drills workflow that starts the drill task. Resources are narrowed by name or ARN where the service
//! allows it, and scratch changes by the scratch tag.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::{AwsScratchSpec, BackupsSpec, DeploySpec, DrillSpec, PostureSource, SecretRef, StackSpec};
use crate::drill::restore::registry::{self, IamNeeds, RdsScratch, rds_arn};

/// What to write a policy for.
#[derive(Debug, Default)]
pub(crate) struct Request<'a> {
    pub(crate) drills: Vec<&'a DrillSpec>,
    pub(crate) stack: Option<&'a StackSpec>,
    /// Only what `stack plan`/`drift`/`check --live` read (the plan role).
    pub(crate) stack_read_only: bool,
    pub(crate) schedule: Option<&'a DeploySpec>,
    /// The drills workflow: starts the schedules' task and reads the store.
    pub(crate) workflow: Option<&'a DeploySpec>,
    /// `s3://bucket/prefix`.
    pub(crate) report_store: Option<String>,
    pub(crate) sign_kms_key: Option<String>,
    /// `backups check`: the read-only calls its AWS readers make for these stores.
    pub(crate) backups: Option<&'a BackupsSpec>,
    pub(crate) region: String,
}

/// One statement: its actions, resources and condition.
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
    condition: Option<Value>,
}

/// Statements keyed by Sid: actions merge, resources merge; a condition belongs to its Sid.
#[derive(Default)]
struct Policy {
    statements: BTreeMap<String, Statement>,
}

impl Policy {
    fn allow(&mut self, sid: &str, actions: &[&str], resources: &[String], condition: Option<Value>) {
        let st = self.statements.entry(sid.to_string()).or_insert_with(|| Statement {
            actions: Vec::new(),
            resources: Vec::new(),
            condition,
        });
        for a in actions {
            if !st.actions.iter().any(|x| x == a) {
                st.actions.push(a.to_string());
            }
        }
        for r in resources {
            if !st.resources.contains(r) {
                st.resources.push(r.clone());
            }
        }
    }

    fn document(self) -> Value {
        let statements: Vec<Value> = self
            .statements
            .into_iter()
            .map(|(sid, Statement { mut actions, mut resources, condition })| {
                actions.sort();
                resources.sort();
                let mut st = json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources });
                if let Some(c) = condition {
                    st["Condition"] = c;
                }
                st
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements })
    }
}

const SCRATCH_TAG: &str = "aws:ResourceTag/stackdrill:scratch";

/// The policy document for `req`.
pub(crate) fn policy(req: &Request<'_>) -> Value {
    let mut p = Policy::default();
    for d in &req.drills {
        drill(&mut p, d, &req.region);
    }
    if let Some(s) = req.stack {
        stack(&mut p, s, req.stack_read_only);
    }
    if let Some(cfg) = req.schedule {
        schedule(&mut p, cfg, &req.region);
    }
    if let Some(cfg) = req.workflow {
        workflow(&mut p, cfg);
    }
    if let Some(spec) = req.backups {
        backups(&mut p, spec, &req.region);
    }
    if let Some(url) = &req.report_store {
        report_store(&mut p, url, req.workflow.is_some() && req.drills.is_empty());
    }
    if let Some(key) = &req.sign_kms_key {
        let resource = if key.starts_with("arn:") { key.clone() } else { "*".into() };
        let condition =
            (!key.starts_with("arn:")).then(|| json!({ "ForAnyValue:StringEquals": { "kms:ResourceAliases": key } }));
        p.allow("SignReports", &["kms:Sign", "kms:GetPublicKey"], &[resource], condition);
    }
    p.document()
}

/// A drill's statements: what its provider asks for (`ProviderKind::iam`, one hook per provider file), then
/// the source login, the object stores its checks read and its bucket restores.
fn drill(p: &mut Policy, d: &DrillSpec, default_region: &str) {
    let region = d.restore.aws_scratch().and_then(|s| s.region.clone()).unwrap_or_else(|| default_region.to_string());
    registry::kind(&d.restore).iam(p, &region);
    local_source(p, d, &region);
}

/// The IAM module's side of the providers' hook: statements go into the policy, and the RDS statements
/// every restore into an RDS scratch shares are written here once.
impl IamNeeds for Policy {
    fn allow(&mut self, sid: &str, actions: &[&str], resources: &[String], condition: Option<Value>) {
        Policy::allow(self, sid, actions, resources, condition);
    }

    fn read_rds(&mut self) {
        self.allow(
            "DrillReadRds",
            &[
                "rds:DescribeDBInstances",
                "rds:DescribeDBClusters",
                "rds:DescribeDBInstanceAutomatedBackups",
                "rds:DescribeDBParameters",
                "rds:DescribeDBParameterGroups",
                "rds:DescribeDBClusterParameters",
                "rds:DescribeDBClusterParameterGroups",
                "rds:ListTagsForResource",
                "tag:GetResources",
            ],
            &["*".into()],
            None,
        );
    }

    fn rds_scratch(&mut self, scratch: &AwsScratchSpec, r: &str, extra: RdsScratch) {
        self.read_rds();
        let RdsScratch { scratch_tagged: extra_scratch_tagged, tagged: extra_tagged, cluster } = extra;
        // Tag-on-create: every type AddTagsToResource is asked about when a scratch resource is created
        // tagged. `stackdrill:*` tags (what the guard and the change rights below trust) go only on the
        // scratch resources, all named sd-*: `scratch_tagged`. The other types the request names (the source,
        // option, parameter and security groups) may be asked about but never receive a `stackdrill:` key, or
        // the role could mark production as scratch and then delete it.
        let mut scratch_tagged = vec![rds_arn(r, "db", "sd-*"), rds_arn(r, "pg", "sd-*")];
        scratch_tagged.extend(extra_scratch_tagged);
        let mut tagged = vec![rds_arn(r, "pg", "*"), rds_arn(r, "og", "*"), rds_arn(r, "secgrp", "*")];
        tagged.extend(scratch.subnet_group.as_ref().map(|g| rds_arn(r, "subgrp", g)));
        tagged.extend(extra_tagged);
        // Parameter groups are copied from the source's; the copies are named like the scratch: only those
        // are changed.
        self.allow("DrillCopyParameterGroup", &["rds:CopyDBParameterGroup"], &[rds_arn(r, "pg", "*")], None);
        self.allow(
            "DrillTuneScratchParameters",
            &["rds:ModifyDBParameterGroup", "rds:ResetDBParameterGroup"],
            &[rds_arn(r, "pg", "sd-*")],
            None,
        );
        self.allow("DrillTagScratch", &["rds:AddTagsToResource"], &scratch_tagged, None);
        tagged.retain(|t| !scratch_tagged.contains(t));
        self.allow(
            "DrillTagOthersNoStackdrillKeys",
            &["rds:AddTagsToResource"],
            &tagged,
            Some(json!({ "ForAllValues:StringNotLike": { "aws:TagKeys": "stackdrill:*" } })),
        );
        scratch_changes(self, r, cluster);
        // An encrypted source: RDS creates grants on the key for the restored copy, on the caller's behalf.
        self.allow(
            "DrillEncryptedRestore",
            &["kms:CreateGrant", "kms:DescribeKey"],
            &["*".into()],
            Some(json!({ "StringEquals": { "kms:ViaService": format!("rds.{r}.amazonaws.com") } })),
        );
    }
}

/// Only scratch resources (named sd-*) that also carry the scratch tag are ever changed or deleted; a
/// cluster drill's cluster and cluster parameter group too.
fn scratch_changes(p: &mut Policy, r: &str, cluster: bool) {
    let scratch_only = || Some(json!({ "StringEquals": { SCRATCH_TAG: "true" } }));
    p.allow(
        "DrillChangeOnlyScratch",
        &["rds:ModifyDBInstance", "rds:DeleteDBInstance"],
        &[rds_arn(r, "db", "sd-*")],
        scratch_only(),
    );
    p.allow(
        "DrillDeleteOnlyScratchParameterGroup",
        &["rds:DeleteDBParameterGroup"],
        &[rds_arn(r, "pg", "sd-*")],
        scratch_only(),
    );
    if !cluster {
        return;
    }
    p.allow(
        "DrillChangeOnlyScratchCluster",
        &["rds:ModifyDBCluster"],
        &[rds_arn(r, "cluster", "sd-*")],
        scratch_only(),
    );
    // DeleteDBCluster also names the final snapshot's type (none is taken: SkipFinalSnapshot).
    p.allow(
        "DrillDeleteOnlyScratchCluster",
        &["rds:DeleteDBCluster"],
        &[rds_arn(r, "cluster", "sd-*"), rds_arn(r, "cluster-snapshot", "sd-*")],
        scratch_only(),
    );
    p.allow(
        "DrillDeleteOnlyScratchClusterParameterGroup",
        &["rds:DeleteDBClusterParameterGroup"],
        &[rds_arn(r, "cluster-pg", "sd-*")],
        scratch_only(),
    );
}

/// Read-only access to the buckets `object-references` checks list and sample (every version, for `as-of:
/// target`).
fn object_stores(p: &mut Policy, d: &DrillSpec) {
    for c in &d.verify {
        let crate::config::CheckSpec::ObjectRefs(o) = c else { continue };
        let crate::config::ObjectStoreSpec::S3 { bucket, prefix, .. } = &o.store else { continue };
        let scope = prefix.clone().unwrap_or_else(|| o.prefix.clone());
        p.allow(
            "ObjectReferencesList",
            &["s3:ListBucket", "s3:ListBucketVersions"],
            &[format!("arn:aws:s3:::{bucket}")],
            None,
        );
        p.allow(
            "ObjectReferencesRead",
            &["s3:GetObject", "s3:GetObjectVersion"],
            &[format!("arn:aws:s3:::{bucket}/{scope}*")],
            None,
        );
    }
}

/// `also-restore` buckets: read the source as of the instant (versions, its settings), make and remove only
/// scratch buckets named after the drill, and run AWS Backup restore jobs of the bucket's recovery points.
fn bucket_restores(p: &mut Policy, d: &DrillSpec, default_region: &str) {
    for b in d.restore.buckets(&d.also_restore) {
        let r = b.region.clone().unwrap_or_else(|| default_region.to_string());
        let source = format!("arn:aws:s3:::{}", b.bucket);
        let scratch = format!("arn:aws:s3:::sd-{}-*", d.name);
        p.allow(
            "BucketRestoreReadSource",
            &[
                "s3:GetBucketVersioning",
                "s3:GetLifecycleConfiguration",
                "s3:GetEncryptionConfiguration",
                "s3:ListBucket",
                "s3:ListBucketVersions",
            ],
            std::slice::from_ref(&source),
            None,
        );
        p.allow(
            "BucketRestoreReadObjects",
            &["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"],
            &[format!("{source}/{}*", b.prefix)],
            None,
        );
        p.allow("BucketRestoreFindBuckets", &["s3:ListAllMyBuckets"], &["*".into()], None);
        p.allow(
            "BucketRestoreScratchBuckets",
            &[
                "s3:CreateBucket",
                "s3:TagResource",
                "s3:PutBucketOwnershipControls",
                "s3:PutBucketTagging",
                "s3:GetBucketTagging",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutEncryptionConfiguration",
                "s3:PutLifecycleConfiguration",
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:ListBucketMultipartUploads",
                "s3:DeleteBucket",
            ],
            std::slice::from_ref(&scratch),
            None,
        );
        p.allow(
            "BucketRestoreScratchObjects",
            &[
                "s3:PutObject",
                "s3:PutObjectTagging",
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
                "s3:AbortMultipartUpload",
            ],
            &[format!("{scratch}/*")],
            None,
        );
        // SSE-KMS buckets: S3 decrypts the source's objects and encrypts the copies on the caller's behalf.
        p.allow(
            "BucketRestoreKms",
            &["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            &["*".into()],
            Some(json!({ "StringEquals": { "kms:ViaService": format!("s3.{r}.amazonaws.com") } })),
        );
        if let crate::config::BucketSource::AwsBackup { iam_role_arn, .. } = &b.from {
            p.allow(
                "BucketRestoreAwsBackup",
                &["backup:StartRestoreJob", "backup:DescribeRecoveryPoint"],
                &[format!("arn:aws:backup:{r}:*:recovery-point:*")],
                None,
            );
            // The action has no resource type: only "*" matches it (Service Authorization Reference).
            p.allow("BucketRestoreFindRecoveryPoints", &["backup:ListRecoveryPointsByResource"], &["*".into()], None);
            p.allow("DrillAwsBackupJobs", &["backup:DescribeRestoreJob"], &["*".into()], None);
            p.allow(
                "DrillPassRestoreRole",
                &["iam:PassRole"],
                std::slice::from_ref(iam_role_arn),
                Some(json!({ "StringEquals": { "iam:PassedToService": "backup.amazonaws.com" } })),
            );
        }
    }
}

/// The source login and metrics, for any provider.
fn local_source(p: &mut Policy, d: &DrillSpec, region: &str) {
    object_stores(p, d);
    bucket_restores(p, d, region);
    if let Some(s) = &d.source {
        if let SecretRef::Secret(id) = &s.password {
            let arn = if id.starts_with("arn:") {
                id.clone()
            } else {
                // Secrets Manager appends six random characters to a secret's name in its ARN.
                format!("arn:aws:secretsmanager:{region}:*:secret:{id}-??????")
            };
            p.allow("SourceSecret", &["secretsmanager:GetSecretValue"], &[arn], None);
        }
        if s.from_instance {
            // RDS-managed master secrets are named rds!db-<id> / rds!cluster-<id>.
            p.allow(
                "SourceSecret",
                &["secretsmanager:GetSecretValue"],
                &[format!("arn:aws:secretsmanager:{region}:*:secret:rds!*")],
                None,
            );
            p.allow("DrillReadRds", &["rds:DescribeDBInstances", "rds:DescribeDBClusters"], &["*".into()], None);
        }
        if s.password == SecretRef::IamAuth {
            let user = s.user.as_deref().unwrap_or("*");
            p.allow(
                "SourceIamAuth",
                &["rds-db:connect"],
                &[format!("arn:aws:rds-db:{region}:*:dbuser:*/{user}")],
                None,
            );
        }
    }
    if let Some(ns) = &d.metrics.cloudwatch_namespace {
        p.allow(
            "DrillMetrics",
            &["cloudwatch:PutMetricData"],
            &["*".into()],
            Some(json!({ "StringEquals": { "cloudwatch:namespace": ns } })),
        );
    }
}

/// What `stack plan`, `drift` and `check --live` read.
const STACK_READ: &[&str] = &[
    "kms:ListAliases",
    "kms:DescribeKey",
    "kms:GetKeyRotationStatus",
    "kms:GetKeyPolicy",
    "kms:ListResourceTags",
    "sns:ListTopics",
    "sns:GetTopicAttributes",
    "sns:ListSubscriptionsByTopic",
    "sns:ListTagsForResource",
    "logs:DescribeLogGroups",
    "logs:DescribeMetricFilters",
    "logs:ListTagsLogGroup",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:ListTagsForResource",
    "rds:DescribeDBInstances",
    "rds:DescribeDBParameterGroups",
    "rds:DescribeDBParameters",
    "rds:DescribeDBSubnetGroups",
    "rds:ListTagsForResource",
    "backup:ListBackupVaults",
    "backup:ListBackupPlans",
    "backup:GetBackupPlan",
    "backup:ListBackupSelections",
    "backup:GetBackupSelection",
    "backup:ListTags",
    "elasticbeanstalk:DescribeApplications",
    "elasticbeanstalk:DescribeEnvironments",
    "elasticbeanstalk:DescribeConfigurationSettings",
    "elasticbeanstalk:DescribeEnvironmentResources",
    "elasticbeanstalk:DescribeEvents",
    "elasticbeanstalk:ListTagsForResource",
    "shield:DescribeSubscription",
    "shield:ListProtections",
    "shield:ListTagsForResource",
    "tag:GetResources",
];

/// What `stack apply` creates (on `*`: tag-on-create conditions differ per service).
const STACK_CREATE: &[&str] = &[
    "kms:CreateKey",
    "kms:TagResource",
    "kms:CreateAlias",
    "sns:CreateTopic",
    "sns:TagResource",
    "logs:CreateLogGroup",
    "logs:TagLogGroup",
    "logs:PutRetentionPolicy",
    "logs:DeleteRetentionPolicy",
    "logs:AssociateKmsKey",
    "logs:DisassociateKmsKey",
    "logs:PutMetricFilter",
    "logs:DeleteMetricFilter",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:TagResource",
    "rds:CreateDBParameterGroup",
    "rds:CreateDBSubnetGroup",
    "rds:CreateDBInstance",
    "rds:AddTagsToResource",
    "backup:CreateBackupVault",
    "backup:CreateBackupPlan",
    "backup:CreateBackupSelection",
    "backup:TagResource",
    "elasticbeanstalk:CreateApplication",
    "elasticbeanstalk:CreateEnvironment",
    // UpdateTagsForResource (the API) and tag-on-create are authorized as AddTags; stackdrill never removes
    // a tag, so RemoveTags is not granted.
    "elasticbeanstalk:AddTags",
    "shield:CreateProtection",
    "shield:TagResource",
];

/// What `stack apply` changes or deletes, only on resources carrying the stack's tag.
const STACK_CHANGE: &[&str] = &[
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:UpdateKeyDescription",
    "kms:PutKeyPolicy",
    "kms:DeleteAlias",
    "kms:ScheduleKeyDeletion",
    "sns:SetTopicAttributes",
    "sns:Subscribe",
    "sns:DeleteTopic",
    "logs:DeleteLogGroup",
    "cloudwatch:DeleteAlarms",
    "rds:ModifyDBParameterGroup",
    "rds:ResetDBParameterGroup",
    "rds:DeleteDBParameterGroup",
    "rds:ModifyDBSubnetGroup",
    "rds:DeleteDBSubnetGroup",
    "rds:ModifyDBInstance",
    "rds:DeleteDBInstance",
    "backup:UpdateBackupPlan",
    "backup:DeleteBackupPlan",
    "backup:DeleteBackupSelection",
    "backup:DeleteBackupVault",
    "elasticbeanstalk:UpdateEnvironment",
    "elasticbeanstalk:TerminateEnvironment",
    "elasticbeanstalk:DeleteApplication",
    "shield:DeleteProtection",
];

/// What `stack plan` reads; with apply, what it changes too.
fn stack(p: &mut Policy, s: &StackSpec, read_only: bool) {
    p.allow("StackRead", STACK_READ, &["*".into()], None);
    // S3 conditions on bucket tags are not dependable: the stack's buckets are granted by name.
    let buckets: Vec<String> = s.buckets.iter().map(|b| format!("arn:aws:s3:::{}", b.name)).collect();
    if !buckets.is_empty() {
        p.allow(
            "StackBucketsRead",
            &[
                "s3:ListBucket",
                "s3:GetBucketVersioning",
                "s3:GetEncryptionConfiguration",
                "s3:GetBucketPublicAccessBlock",
                "s3:GetLifecycleConfiguration",
                "s3:GetBucketLogging",
                "s3:GetBucketTagging",
            ],
            &buckets,
            None,
        );
    }
    if read_only {
        return;
    }
    if !buckets.is_empty() {
        p.allow(
            "StackBuckets",
            &[
                "s3:CreateBucket",
                "s3:PutBucketTagging",
                "s3:PutBucketVersioning",
                "s3:PutEncryptionConfiguration",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutLifecycleConfiguration",
                "s3:PutBucketLogging",
                "s3:DeleteBucket",
            ],
            &buckets,
            None,
        );
    }
    p.allow("StackCreate", STACK_CREATE, &["*".into()], None);
    // Changes and deletions: only what carries this stack's tag.
    p.allow(
        "StackChangeOnlyItsOwn",
        STACK_CHANGE,
        &["*".into()],
        Some(json!({ "StringEquals": { "aws:ResourceTag/stackdrill:stack": s.name } })),
    );
    // sns:Unsubscribe has no resource type and supports no condition key: only an unconditioned "*" lets the
    // stack remove a subscription (a tag condition would never hold).
    p.allow("StackUnsubscribe", &["sns:Unsubscribe"], &["*".into()], None);
    // Roles the stack hands to services: the backup selection's, the Beanstalk instance profile's and
    // service role. (Launching a Beanstalk environment also needs what Beanstalk itself creates on the
    // caller's behalf — EC2, Auto Scaling, load balancers, CloudFormation: AWS's managed policy
    // AdministratorAccess-AWSElasticBeanstalk covers that.)
    let mut roles: Vec<String> = Vec::new();
    if let Some(sel) = s.backup.as_ref().and_then(|b| b.selection.as_ref()) {
        roles.push(sel.iam_role_arn.clone());
    }
    if let Some(app) = &s.app {
        let arn = |name: &str| {
            if name.starts_with("arn:") { name.to_string() } else { format!("arn:aws:iam::*:role/{name}") }
        };
        roles.push(arn(&app.instance_profile));
        if let Some(r) = &app.service_role {
            roles.push(arn(r));
        }
    }
    if !roles.is_empty() {
        p.allow("StackPassRoles", &["iam:PassRole"], &roles, None);
    }
}

fn schedule(p: &mut Policy, cfg: &DeploySpec, region: &str) {
    let group = format!("arn:aws:scheduler:{region}:*:schedule-group/{}", cfg.group);
    let schedules = format!("arn:aws:scheduler:{region}:*:schedule/{}/*", cfg.group);
    // Group actions act on the schedule group, schedule actions on its schedules (one statement each: IAM
    // grants every action of a statement on every resource of it).
    p.allow(
        "ScheduleDeployGroup",
        &[
            "scheduler:GetScheduleGroup",
            "scheduler:CreateScheduleGroup",
            "scheduler:TagResource",
            "scheduler:ListTagsForResource",
        ],
        &[group],
        None,
    );
    p.allow(
        "ScheduleDeploy",
        &["scheduler:GetSchedule", "scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
        &[schedules],
        None,
    );
    // ListSchedules has no resource type: only "*" matches it (Service Authorization Reference).
    p.allow("ScheduleList", &["scheduler:ListSchedules"], &["*".into()], None);
    p.allow(
        "SchedulePassRole",
        &["iam:PassRole"],
        std::slice::from_ref(&cfg.role_arn),
        Some(json!({ "StringEquals": { "iam:PassedToService": "scheduler.amazonaws.com" } })),
    );
}

fn workflow(p: &mut Policy, cfg: &DeploySpec) {
    // RunTask's resource is `task-definition/${Family}:${Revision}`: a family without a revision matches
    // nothing, so it is granted on every revision of the family.
    let td = &cfg.task_definition;
    let family_only = td.rsplit_once("task-definition/").is_some_and(|(_, f)| !f.contains(':'));
    let task_definition = if family_only { format!("{td}:*") } else { td.clone() };
    p.allow(
        "WorkflowRunDrillTask",
        &["ecs:RunTask"],
        &[task_definition],
        Some(json!({ "ArnEquals": { "ecs:cluster": cfg.cluster } })),
    );
    p.allow(
        "WorkflowWatchDrillTask",
        &["ecs:DescribeTasks"],
        &["*".into()],
        Some(json!({ "ArnEquals": { "ecs:cluster": cfg.cluster } })),
    );
    // RunTask hands the task definition's task and execution roles to ECS.
    p.allow(
        "WorkflowPassTaskRoles",
        &["iam:PassRole"],
        &["arn:aws:iam::*:role/*".into()],
        Some(json!({ "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" } })),
    );
}

/// The write-once report store; `read_only` for readers (the workflow lists and copies reports).
fn report_store(p: &mut Policy, url: &str, read_only: bool) {
    let rest = url.trim_start_matches("s3://");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_end_matches('/');
    let objects = if prefix.is_empty() {
        format!("arn:aws:s3:::{bucket}/*")
    } else {
        format!("arn:aws:s3:::{bucket}/{prefix}/*")
    };
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    // Readers check the bucket's Object Lock, every object version and each version's retention.
    let bucket_actions = vec!["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketObjectLockConfiguration"];
    let mut object_actions = vec!["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention"];
    if !read_only {
        object_actions.extend(["s3:PutObject", "s3:PutObjectRetention"]);
    }
    p.allow("ReportStoreBucket", &bucket_actions, &[bucket_arn], None);
    p.allow("ReportStoreObjects", &object_actions, &[objects], None);
}

/// `backups check`'s AWS readers (src/posture/aws.rs): only reads, each on the store's resource where the
/// action has a resource type. `ListRecoveryPointsByResource` and `ListBackupJobs` have none: `*`.
fn backups(p: &mut Policy, spec: &BackupsSpec, default_region: &str) {
    for store in &spec.stores {
        match &store.source {
            PostureSource::RdsInstance(s) => {
                let r = s.region.as_deref().unwrap_or(default_region);
                p.allow("BackupsReadRdsInstances", &["rds:DescribeDBInstances"], &[rds_arn(r, "db", &s.id)], None);
                // Automated snapshots are named rds:<instance>-<date>.
                p.allow(
                    "BackupsReadRdsSnapshots",
                    &["rds:DescribeDBSnapshots"],
                    &[rds_arn(r, "db", &s.id), rds_arn(r, "snapshot", &format!("rds:{}-*", s.id))],
                    None,
                );
            }
            PostureSource::AuroraCluster(s) => {
                let r = s.region.as_deref().unwrap_or(default_region);
                p.allow(
                    "BackupsReadAuroraClusters",
                    &["rds:DescribeDBClusters"],
                    &[rds_arn(r, "cluster", &s.id)],
                    None,
                );
                p.allow(
                    "BackupsReadAuroraSnapshots",
                    &["rds:DescribeDBClusterSnapshots"],
                    &[rds_arn(r, "cluster", &s.id), rds_arn(r, "cluster-snapshot", &format!("rds:{}-*", s.id))],
                    None,
                );
            }
            PostureSource::AwsBackup(s) => {
                let r = s.region.as_deref().unwrap_or(default_region);
                p.allow(
                    "BackupsListRecoveryPointsAndJobs",
                    &["backup:ListRecoveryPointsByResource", "backup:ListBackupJobs"],
                    &["*".into()],
                    None,
                );
                p.allow(
                    "BackupsReadVaults",
                    &["backup:DescribeBackupVault"],
                    &[format!("arn:aws:backup:{r}:*:backup-vault:{}", s.vault)],
                    None,
                );
            }
            PostureSource::S3Bucket(s) => p.allow(
                "BackupsReadBuckets",
                &["s3:GetBucketVersioning", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration"],
                &[format!("arn:aws:s3:::{}", s.id)],
                None,
            ),
            PostureSource::LocalPostgres(_) | PostureSource::Supabase(_) => {}
        }
    }
}

/// Every IAM action in a policy document.
#[cfg(test)]
fn actions(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = doc["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Every IAM action the code names (each SDK call's error goes through `classify("service:Action")`,
    /// and macros pass it the same way), outside test modules, in `files`.
    fn named_actions(files: &[&str]) -> Vec<(String, String)> {
        let re = regex::Regex::new(
            r#"(?:classify\(\s*|send!\(\w+,\s*)"((?:rds|kms|sns|logs|cloudwatch|backup|elasticbeanstalk|shield|tag|scheduler|s3|secretsmanager|ecs|iam):[A-Z][A-Za-z0-9]+)""#,
        )
        .unwrap();
        let mut out = Vec::new();
        for f in files {
            let paths: Vec<PathBuf> = if f.ends_with('/') {
                std::fs::read_dir(root().join(f))
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "rs"))
                    .filter(|p| !p.file_name().unwrap().to_string_lossy().contains("tests"))
                    .collect()
            } else {
                vec![root().join(f)]
            };
            for p in paths {
                let text = std::fs::read_to_string(&p).unwrap();
                let code = text.split("\n#[cfg(test)]\nmod ").next().unwrap_or_default();
                for c in re.captures_iter(code) {
                    out.push((c[1].to_string(), p.strip_prefix(root()).unwrap().display().to_string()));
                }
            }
        }
        out
    }

    fn drills() -> Vec<DrillSpec> {
        std::fs::read_dir(root().join("drills"))
            .unwrap()
            .flatten()
            .map(|e| crate::config::load_drill(&e.path()).unwrap_or_else(|e| panic!("{e:?}")))
            .collect()
    }

    /// An `aws-backup` drill validating a restore testing plan's restores (no drill in drills/ does).
    fn restore_testing_drill() -> DrillSpec {
        crate::config::parse_drill(RESTORE_TESTING, Path::new("plan-drill.yaml")).unwrap_or_else(|e| panic!("{e:?}"))
    }

    const RESTORE_TESTING: &str = "name: plan-drill\nrestore:\n  aws-backup:\n    restore-testing-plan: nightly_rds\n    \
         resource-arn: arn:aws:rds:ap-southeast-1:111122223333:db:prod-db\n\
         source: { host: db.internal, user: drill_reader, dbname: app, password-secret: prod/drill_reader }\n\
         objectives: { rto: 1h, rpo: 30d }\nverify:\n  - freshness: { table: ledger, column: at, max-lag: 30d }\n";

    fn missing(doc: &Value, named: &[(String, String)]) -> Vec<String> {
        let have = actions(doc);
        named.iter().filter(|(a, _)| !have.contains(a)).map(|(a, f)| format!("{a} ({f})")).collect()
    }

    /// The policy for each use covers every action the code for that use can call: a new SDK call with no
    /// policy line fails here, naming the action and the file.
    #[test]
    fn each_policy_covers_every_action_its_code_calls() {
        let mut specs = drills();
        specs.push(restore_testing_drill());
        let stack =
            crate::config::load_stack(&root().join("stacks/production.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
        let deploy = crate::config::load_deploy(&root().join("schedule.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
        let region = "ap-southeast-1".to_string();
        let drill_policy = policy(&Request {
            drills: specs.iter().collect(),
            report_store: Some("s3://evidence/prod".into()),
            sign_kms_key: Some("alias/signing".into()),
            region: region.clone(),
            ..Request::default()
        });
        let code = named_actions(&[
            "src/drill/restore/",
            "src/drill/source.rs",
            "src/drill/metrics.rs",
            "src/drill/cleanup.rs",
            "src/drill/verify/object_refs.rs",
            "src/drill/verify/objects.rs",
            "src/aws/s3list.rs",
            "src/aws/s3.rs",
            "src/report/s3.rs",
            "src/report/sign.rs",
        ]);
        assert!(code.len() > 30, "the scan found too little: {code:?}");
        assert_eq!(missing(&drill_policy, &code), Vec::<String>::new());
        let stack_policy = policy(&Request { stack: Some(&stack), region: region.clone(), ..Request::default() });
        let code = named_actions(&["src/stack/resources/", "src/stack/live.rs", "src/aws/s3.rs"]);
        assert_eq!(missing(&stack_policy, &code), Vec::<String>::new());
        let schedule_policy =
            policy(&Request { schedule: Some(&deploy), region: region.clone(), ..Request::default() });
        assert_eq!(missing(&schedule_policy, &named_actions(&["src/schedule/deploy.rs"])), Vec::<String>::new());
        let backups =
            crate::config::parse_backups(BACKUPS, Path::new("backups.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
        let backups_policy = policy(&Request { backups: Some(&backups), region, ..Request::default() });
        // Every reader (metrics.rs's PutMetricData is `--cloudwatch-namespace`'s, granted with the metrics).
        let code: Vec<_> =
            named_actions(&["src/posture/"]).into_iter().filter(|(_, f)| f != "src/posture/metrics.rs").collect();
        assert!(code.len() >= 10, "the scan found too little: {code:?}");
        assert_eq!(missing(&backups_policy, &code), Vec::<String>::new());
        // Exactly the calls the readers make: nothing more.
        let mut named: Vec<String> = code.into_iter().map(|(a, _)| a).collect();
        named.sort();
        named.dedup();
        assert_eq!(actions(&backups_policy), named);
    }

    const BACKUPS: &str = "stores:\n\
        \x20 - { name: db, source: { rds-instance: { id: prod-db } } }\n\
        \x20 - { name: aurora, source: { aurora-cluster: { id: prod-aurora, region: eu-west-1 } } }\n\
        \x20 - { name: vault, source: { aws-backup: { vault: prod-vault, resource-arn: 'arn:aws:rds:ap-southeast-1:111122223333:db:prod-db' } } }\n\
        \x20 - { name: files, source: { s3-bucket: { bucket: acme-prod-files } } }\n";

    /// The backups role only reads (Describe, List, Get), each on the store's resource where it can.
    #[test]
    fn the_backups_role_reads_and_changes_nothing() {
        let backups =
            crate::config::parse_backups(BACKUPS, Path::new("backups.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
        let doc = policy(&Request { backups: Some(&backups), region: "ap-southeast-1".into(), ..Request::default() });
        for a in actions(&doc) {
            let op = a.split(':').nth(1).unwrap();
            assert!(["Describe", "List", "Get"].iter().any(|p| op.starts_with(p)), "{a} is not a read");
        }
        let text = doc.to_string();
        for r in [
            "arn:aws:rds:ap-southeast-1:*:db:prod-db",
            "arn:aws:rds:eu-west-1:*:cluster:prod-aurora",
            "arn:aws:backup:ap-southeast-1:*:backup-vault:prod-vault",
            "arn:aws:s3:::acme-prod-files",
        ] {
            assert!(text.contains(r), "{r} in {doc:#}");
        }
    }

    #[test]
    fn scratch_changes_are_tag_scoped_and_roles_are_passed_only_to_their_service() {
        let specs = drills();
        let by_name = |n: &str| specs.iter().find(|d| d.name == n).unwrap();
        let doc = policy(&Request {
            drills: vec![by_name("prod-db-backup-vault")],
            region: "ap-southeast-1".into(),
            ..Request::default()
        });
        let st = |sid: &str| {
            doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["Sid"] == sid)
                .cloned()
                .unwrap_or_else(|| panic!("no {sid} in {doc:#}"))
        };
        assert_eq!(
            st("DrillChangeOnlyScratch")["Condition"]["StringEquals"]["aws:ResourceTag/stackdrill:scratch"],
            "true"
        );
        assert!(
            !st("DrillChangeOnlyScratch")["Action"].to_string().contains("Cluster"),
            "an instance drill needs no cluster rights"
        );
        assert_eq!(
            st("DrillPassRestoreRole")["Condition"]["StringEquals"]["iam:PassedToService"],
            "backup.amazonaws.com"
        );
        assert_eq!(st("DrillTuneScratchParameters")["Resource"], json!(["arn:aws:rds:ap-southeast-1:*:pg:sd-*"]));
        assert_eq!(
            st("DrillEncryptedRestore")["Condition"]["StringEquals"]["kms:ViaService"],
            "rds.ap-southeast-1.amazonaws.com"
        );
        let doc = policy(&Request {
            drills: vec![by_name("prod-db-pitr")],
            region: "ap-southeast-1".into(),
            ..Request::default()
        });
        assert!(doc.to_string().contains("arn:aws:rds-db:ap-southeast-1:*:dbuser:*/drill_reader"), "{doc:#}");
        assert!(doc.to_string().contains("secret:rds!*"), "from-instance reads the managed master secret");
        let doc = policy(&Request {
            drills: vec![by_name("prod-aurora-pitr")],
            region: "ap-southeast-1".into(),
            ..Request::default()
        });
        assert!(doc.to_string().contains("secret:prod/drill_reader-??????"), "{doc:#}");
        assert!(!doc.to_string().contains("s3:"), "no store named, no store rights");
    }

    /// The drill role can neither mark a resource that is not a scratch (named sd-*) as scratch nor change or
    /// delete one: a `stackdrill:` tag on production plus a tag-conditioned delete would delete production.
    #[test]
    fn no_drill_statement_tags_or_deletes_what_is_not_named_sd() {
        let specs = drills();
        for d in &specs {
            let doc = policy(&Request { drills: vec![d], region: "ap-southeast-1".into(), ..Request::default() });
            for st in doc["Statement"].as_array().unwrap() {
                let acts: Vec<&str> = st["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
                let res: Vec<&str> = st["Resource"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
                let scratch_named = |r: &&str| r.rsplit(':').next().is_some_and(|n| n.starts_with("sd-"));
                let rds_change = |a: &&str| {
                    a.starts_with("rds:")
                        && ["Delete", "Modify", "Reset", "Reboot", "Stop"].iter().any(|p| a[4..].starts_with(p))
                };
                if acts.iter().any(rds_change) {
                    assert!(res.iter().all(scratch_named), "{} changes what is not sd-*: {st:#}", d.name);
                }
                if acts.contains(&"rds:AddTagsToResource") || acts.contains(&"rds:*") {
                    let no_stackdrill_keys =
                        st["Condition"]["ForAllValues:StringNotLike"]["aws:TagKeys"] == json!("stackdrill:*");
                    assert!(
                        no_stackdrill_keys || res.iter().all(scratch_named),
                        "{} may put a stackdrill: tag on what is not sd-*: {st:#}",
                        d.name
                    );
                }
            }
        }
    }

    /// Validating a restore testing plan's jobs: the plan by name, its jobs and the verdict on "*" (those
    /// actions have no resource type); nothing that creates, changes or deletes, and no role to pass.
    #[test]
    fn a_restore_testing_drill_finds_reads_and_validates_but_creates_nothing() {
        let d = restore_testing_drill();
        let doc = policy(&Request { drills: vec![&d], region: "ap-southeast-1".into(), ..Request::default() });
        let text = doc.to_string();
        assert!(text.contains("arn:aws:backup:ap-southeast-1:*:restore-testing-plan:nightly_rds-*"), "{doc:#}");
        let all = actions(&doc);
        for a in ["backup:ListRestoreJobs", "backup:PutRestoreValidationResult", "backup:GetRestoreTestingPlan"] {
            assert!(all.iter().any(|x| x == a), "{a} missing: {all:?}");
        }
        for a in &all {
            let op = a.split(':').nth(1).unwrap();
            assert!(
                ["Describe", "List", "Get", "PutRestoreValidationResult"].iter().any(|p| op.starts_with(p)),
                "{a} is more than finding, reading and validating"
            );
        }
    }

    #[test]
    fn the_plan_role_reads_and_changes_nothing() {
        let stack =
            crate::config::load_stack(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/stacks/production.yaml")))
                .unwrap();
        let doc = policy(&Request {
            stack: Some(&stack),
            stack_read_only: true,
            region: "ap-southeast-1".into(),
            ..Request::default()
        });
        for a in actions(&doc) {
            let op = a.split(':').nth(1).unwrap();
            assert!(["Describe", "List", "Get"].iter().any(|p| op.starts_with(p)), "{a} is not a read");
        }
    }
}
