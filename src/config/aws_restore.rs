//! The AWS restore provider blocks of a drill file: `aws-rds-instance`, `aws-aurora-cluster`, `aws-backup`.
//! Every provider restores into a scratch database with the same isolation keys, resolved into
//! [`AwsScratchSpec`].

use std::time::Duration;

use serde::Deserialize;

use super::error::Problems;
use super::tls::TlsSpec;

// ---------------------------------------------------------------- raw, as written

/// Declares a provider's raw block: its own keys, then the scratch keys every AWS provider shares (written
/// flat, as design.md §4 shows; `flatten` would weaken `deny_unknown_fields`). `split` hands back the own
/// keys as a tuple and the shared ones as [`ScratchKeys`].
macro_rules! raw_aws_block {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub(super) struct $name {
            $($field: $ty,)*
            region: Option<String>,
            subnet_group: Option<String>,
            security_groups: Option<Vec<String>>,
            use_default_network: Option<bool>,
            instance_class: Option<String>,
            database: Option<String>,
            sslmode: Option<String>,
            ca_bundle: Option<String>,
            connect: Option<RawConnect>,
            allow_unencrypted: Option<bool>,
            residency: Option<Vec<String>>,
            expires_after: Option<String>,
            parameter_group: Option<String>,
            allow_preload: Option<Vec<String>>,
        }

        impl $name {
            fn split(self) -> (($($ty,)*), ScratchKeys) {
                let $name {
                    $($field,)*
                    region,
                    subnet_group,
                    security_groups,
                    use_default_network,
                    instance_class,
                    database,
                    sslmode,
                    ca_bundle,
                    connect,
                    allow_unencrypted,
                    residency,
                    expires_after,
                    parameter_group,
                    allow_preload,
                } = self;
                let keys = ScratchKeys {
                    region,
                    subnet_group,
                    security_groups,
                    use_default_network,
                    instance_class,
                    database,
                    sslmode,
                    ca_bundle,
                    connect,
                    allow_unencrypted,
                    residency,
                    expires_after,
                    parameter_group,
                    allow_preload,
                };
                (($($field,)*), keys)
            }
        }
    };
}

raw_aws_block!(RawRdsInstance { source_instance: String });
raw_aws_block!(RawAuroraCluster { source_cluster: String, copy_on_write: Option<bool> });
raw_aws_block!(RawAwsBackup {
    vault: Option<String>,
    resource_arn: Option<String>,
    iam_role_arn: Option<String>,
    kind: Option<String>,
    within: Option<String>,
    restore_testing_plan: Option<String>,
});

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawConnect {
    host: String,
    port: Option<u16>,
}

// ---------------------------------------------------------------- resolved

/// Where and how the scratch database is created and reached; shared by the AWS providers.
#[derive(Debug, Clone)]
pub(crate) struct AwsScratchSpec {
    /// Overrides `--region` for this drill.
    pub(crate) region: Option<String>,
    /// `None` only with `use-default-network: true` or `restore-testing-plan` (which creates nothing).
    pub(crate) subnet_group: Option<String>,
    pub(crate) security_groups: Vec<String>,
    pub(crate) instance_class: Option<String>,
    /// Database the verifiers connect to; else the source connection's dbname, else `postgres`.
    pub(crate) database: Option<String>,
    pub(crate) tls: TlsSpec,
    /// Reach the scratch through a tunnel instead of its endpoint.
    pub(crate) connect: Option<(String, u16)>,
    pub(crate) allow_unencrypted: bool,
    /// Regions data may be restored into.
    pub(crate) residency: Vec<String>,
    /// How long after creation `drill cleanup` may sweep a scratch left behind by a crash.
    pub(crate) expires_after: Duration,
    /// The parameter group the scratch starts with; else a tagged copy of the source's made inert.
    pub(crate) parameter_group: Option<String>,
    /// `shared_preload_libraries` the scratch may keep (pg_cron and the like are dropped).
    pub(crate) allow_preload: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RdsInstanceSpec {
    pub(crate) source_instance: String,
    pub(crate) scratch: AwsScratchSpec,
}

#[derive(Debug, Clone)]
pub(crate) struct AuroraClusterSpec {
    pub(crate) source_cluster: String,
    pub(crate) copy_on_write: bool,
    pub(crate) scratch: AwsScratchSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PointKind {
    Continuous,
    Snapshot,
    Any,
}

#[derive(Debug, Clone)]
pub(crate) struct AwsBackupSpec {
    /// Empty with `restore_testing_plan` (the plan's selection names its vaults).
    pub(crate) vault: String,
    /// With `restore_testing_plan`, optional: only that resource's restores are validated (empty: any).
    pub(crate) resource_arn: String,
    /// Empty with `restore_testing_plan` (the plan restores with its own role).
    pub(crate) iam_role_arn: String,
    /// Validate the restores of this AWS Backup restore testing plan (by name) instead of restoring on
    /// demand: the plan restores on its schedule, AWS Backup deletes what it restored.
    pub(crate) restore_testing_plan: Option<String>,
    pub(crate) kind: PointKind,
    /// Only recovery points created within this long before now (the drill's `target` picks among them).
    pub(crate) within: Option<Duration>,
    pub(crate) scratch: AwsScratchSpec,
}

// ---------------------------------------------------------------- resolution

/// The isolation keys as written, before resolution (one shape for every provider).
struct ScratchKeys {
    region: Option<String>,
    subnet_group: Option<String>,
    security_groups: Option<Vec<String>>,
    use_default_network: Option<bool>,
    instance_class: Option<String>,
    database: Option<String>,
    sslmode: Option<String>,
    ca_bundle: Option<String>,
    connect: Option<RawConnect>,
    allow_unencrypted: Option<bool>,
    residency: Option<Vec<String>>,
    expires_after: Option<String>,
    parameter_group: Option<String>,
    allow_preload: Option<Vec<String>>,
}

pub(super) fn rds_instance(raw: RawRdsInstance, p: &mut Problems<'_>) -> RdsInstanceSpec {
    let ((source_instance,), keys) = raw.split();
    let k = "restore.aws-rds-instance";
    check_db_identifier(p, &format!("{k}.source-instance"), &source_instance);
    RdsInstanceSpec { source_instance, scratch: scratch(k, keys, p, true) }
}

pub(super) fn aurora_cluster(raw: RawAuroraCluster, p: &mut Problems<'_>) -> AuroraClusterSpec {
    let ((source_cluster, copy_on_write), keys) = raw.split();
    let k = "restore.aws-aurora-cluster";
    check_db_identifier(p, &format!("{k}.source-cluster"), &source_cluster);
    AuroraClusterSpec {
        source_cluster,
        copy_on_write: copy_on_write.unwrap_or(false),
        scratch: scratch(k, keys, p, true),
    }
}

pub(super) fn aws_backup(raw: RawAwsBackup, p: &mut Problems<'_>) -> AwsBackupSpec {
    let ((vault, resource_arn, iam_role_arn, kind, within, restore_testing_plan), keys) = raw.split();
    let k = "restore.aws-backup";
    let check_resource = |p: &mut Problems<'_>, arn: &str| {
        if !arn.starts_with("arn:") || !arn.contains(":rds:") {
            p.push(format!("{k}.resource-arn"), "must be the ARN of the protected RDS database (arn:aws:rds:…)");
        }
    };
    if let Some(plan) = &restore_testing_plan {
        // The plan restores on its own schedule, from its own selection, with its own role: the keys of an
        // on-demand restore have nothing to do.
        if !is_restore_testing_plan_name(plan) {
            p.push(
                format!("{k}.restore-testing-plan"),
                format!("`{plan}` is not a restore testing plan name (letters, digits and underscores, 1-50)"),
            );
        }
        for (key, set) in [
            ("vault", vault.is_some()),
            ("iam-role-arn", iam_role_arn.is_some()),
            ("kind", kind.is_some()),
            ("within", within.is_some()),
        ] {
            if set {
                p.push(
                    format!("{k}.{key}"),
                    "is for an on-demand restore; with `restore-testing-plan` the plan chooses what it \
                     restores: remove one of them",
                );
            }
        }
        match &resource_arn {
            Some(arn) => check_resource(p, arn),
            // A plan's selection may hold other teams' databases: only this one's restores are judged.
            None => p.push(
                format!("{k}.restore-testing-plan"),
                "needs `resource-arn`: only the restores of that protected database are validated (the plan \
                 may restore other teams' databases)",
            ),
        }
        return AwsBackupSpec {
            vault: String::new(),
            resource_arn: resource_arn.unwrap_or_default(),
            iam_role_arn: String::new(),
            restore_testing_plan,
            kind: PointKind::Any,
            within: None,
            scratch: scratch(k, keys, p, false),
        };
    }
    let missing = |p: &mut Problems<'_>, key: &str, v: Option<String>| {
        v.unwrap_or_else(|| {
            p.push(k, format!("needs `{key}` (or `restore-testing-plan` to validate a plan's restores)"));
            String::new()
        })
    };
    let vault_given = vault.is_some();
    let vault = missing(p, "vault", vault);
    let resource_arn = missing(p, "resource-arn", resource_arn);
    let iam_role_arn = missing(p, "iam-role-arn", iam_role_arn);
    if vault_given && vault.trim().is_empty() {
        p.push(format!("{k}.vault"), "must name a backup vault");
    }
    if !resource_arn.is_empty() {
        check_resource(p, &resource_arn);
    }
    if !iam_role_arn.is_empty() && (!iam_role_arn.starts_with("arn:") || !iam_role_arn.contains(":iam::")) {
        p.push(format!("{k}.iam-role-arn"), "must be the ARN of the IAM role AWS Backup restores with");
    }
    let kind = match kind.as_deref().unwrap_or("any") {
        "continuous" => PointKind::Continuous,
        "snapshot" => PointKind::Snapshot,
        "any" => PointKind::Any,
        other => {
            p.push(format!("{k}.kind"), format!("unknown kind `{other}`: use continuous, snapshot or any"));
            PointKind::Any
        }
    };
    let within = within.and_then(|w| match super::duration::parse_duration(&w) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            p.push(format!("{k}.within"), "must be longer than zero");
            None
        }
        Err(e) => {
            p.push(format!("{k}.within"), e);
            None
        }
    });
    AwsBackupSpec {
        vault,
        resource_arn,
        iam_role_arn,
        restore_testing_plan: None,
        kind,
        within,
        scratch: scratch(k, keys, p, true),
    }
}

/// AWS Backup restore testing plan names: 1-50 letters, digits and underscores, starting with a letter.
fn is_restore_testing_plan_name(s: &str) -> bool {
    (1..=50).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `creates`: whether the drill creates the scratch database (a restore testing plan's drill creates nothing,
/// so it needs no network of its own).
fn scratch(k: &str, keys: ScratchKeys, p: &mut Problems<'_>, creates: bool) -> AwsScratchSpec {
    let ScratchKeys {
        region,
        subnet_group,
        security_groups,
        use_default_network,
        instance_class,
        database,
        sslmode,
        ca_bundle,
        connect,
        allow_unencrypted,
        residency,
        expires_after,
        parameter_group,
        allow_preload,
    } = keys;
    let default_network = use_default_network.unwrap_or(false);
    let security_groups = security_groups.unwrap_or_default();
    if !default_network && creates {
        if subnet_group.is_none() {
            p.push(
                k,
                "needs `subnet-group`: scratch databases go into an isolated subnet group \
                 (or set `use-default-network: true` to accept the account's default VPC)",
            );
        }
        if security_groups.is_empty() {
            p.push(
                k,
                "needs `security-groups`: scratch databases get isolated security groups \
                 (or set `use-default-network: true` to accept the default one)",
            );
        }
    }
    for (i, sg) in security_groups.iter().enumerate() {
        if !sg.starts_with("sg-") {
            p.push(format!("{k}.security-groups[{i}]"), format!("`{sg}` is not a security group id (sg-…)"));
        }
    }
    if let Some(c) = &instance_class
        && !c.starts_with("db.")
    {
        p.push(format!("{k}.instance-class"), format!("`{c}` is not an instance class like db.t4g.medium"));
    }
    let residency = residency_of(p, k, region.as_deref(), residency);
    let connect = connect.map(|RawConnect { host, port }| (host, port.unwrap_or(5432)));
    let tls = super::tls::tls_spec(p, k, sslmode.as_deref(), ca_bundle);
    if tls == TlsSpec::Disable && connect.is_none() {
        p.push(
            format!("{k}.sslmode"),
            "`disable` is only allowed with `connect` (a tunnel that encrypts); RDS endpoints need TLS",
        );
    }
    let expires_after = match expires_after {
        None => Duration::from_secs(6 * 3600),
        Some(t) => match super::duration::parse_duration(&t) {
            Ok(d) if d >= Duration::from_secs(600) => d,
            Ok(_) => {
                p.push(format!("{k}.expires-after"), "must be at least 10m, longer than any drill");
                Duration::from_secs(6 * 3600)
            }
            Err(e) => {
                p.push(format!("{k}.expires-after"), e);
                Duration::from_secs(6 * 3600)
            }
        },
    };
    AwsScratchSpec {
        region,
        subnet_group,
        security_groups,
        instance_class,
        database,
        tls,
        connect,
        allow_unencrypted: allow_unencrypted.unwrap_or(false),
        residency,
        expires_after,
        parameter_group,
        allow_preload: allow_preload.unwrap_or_else(default_allow_preload),
    }
}

/// `residency` (default: the default region), at least one region, and `region` within it.
pub(super) fn residency_of(
    p: &mut Problems<'_>,
    k: &str,
    region: Option<&str>,
    residency: Option<Vec<String>>,
) -> Vec<String> {
    let residency = residency.unwrap_or_else(|| vec![crate::aws::DEFAULT_REGION.to_string()]);
    if residency.is_empty() {
        p.push(format!("{k}.residency"), "must allow at least one region");
    }
    if let Some(r) = region
        && !residency.iter().any(|x| x == r)
    {
        p.push(format!("{k}.region"), format!("`{r}` is outside the allowed residency {}", residency.join(", ")));
    }
    residency
}

/// The libraries a restored copy may preload unless the drill says otherwise: statistics only, nothing
/// that runs jobs or talks to the network.
pub(crate) fn default_allow_preload() -> Vec<String> {
    vec!["pg_stat_statements".into(), "auto_explain".into()]
}

/// RDS identifiers: 1-63 letters, digits and hyphens, starting with a letter, no `--`, no trailing `-`.
pub(crate) fn is_db_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.contains("--")
        && !s.ends_with('-')
}

fn check_db_identifier(p: &mut Problems<'_>, key: &str, s: &str) {
    if !is_db_identifier(s) {
        p.push(key, format!("`{s}` is not an RDS identifier (letters, digits, hyphens; starts with a letter)"));
    }
}
