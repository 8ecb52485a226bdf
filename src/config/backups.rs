//! `backups.yaml`: the data stores `stackdrill backups check` reads every day and the objectives each must
//! meet (newest backup's age, point-in-time recovery lag, retention, encryption), declared once.
//!
//! One file rather than a block in each drill file: a posture store is not a drill's source (a bucket, a
//! vault or a Supabase project may have no drill at all, and a source may be restored by several drills),
//! and the daily check runs on its own cadence; one file is one place an auditor reads the objectives.
//!
//! ```yaml
//! stores:
//!   - name: app-db
//!     source:
//!       local-postgres: { socket-dir: /var/run/postgresql, port: 5432, base-backups: /srv/base-backups,
//!                         wal-archive: /srv/wal-archive }
//!     objectives: { max-backup-age: 26h, max-pitr-lag: 10m, min-retention: 7d }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, Problems};
use super::parse::{duration, parse_with, read_file};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBackups {
    stores: Vec<RawStore>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStore {
    name: String,
    source: RawSource,
    #[serde(default)]
    objectives: RawObjectives,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum RawSource {
    LocalPostgres(RawLocal),
    Supabase(RawSupabase),
    RdsInstance(RawRds),
    AuroraCluster(RawRds),
    AwsBackup(RawAwsBackup),
    S3Bucket(RawBucket),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRds {
    id: String,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawAwsBackup {
    vault: String,
    resource_arn: String,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBucket {
    bucket: String,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSupabase {
    project_ref: String,
    token_env: Option<String>,
    api_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLocal {
    socket_dir: String,
    port: Option<u16>,
    user: Option<String>,
    database: Option<String>,
    base_backups: String,
    /// The WAL archive directory the `archive_command` writes into: when given, the segment
    /// `pg_stat_archiver` last reports archived must be there.
    wal_archive: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawObjectives {
    max_backup_age: Option<String>,
    max_pitr_lag: Option<String>,
    min_retention: Option<String>,
    max_wal_backlog: Option<u64>,
    encryption: Option<Encryption>,
}

/// The encryption a store's backups must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Encryption {
    /// Encrypted with a KMS key (which key is recorded).
    Kms,
}

/// What a store must meet. `max_backup_age` always applies (26h by default: a daily backup and its run).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PostureObjectives {
    pub(crate) max_backup_age: Duration,
    pub(crate) max_pitr_lag: Option<Duration>,
    pub(crate) min_retention: Option<Duration>,
    pub(crate) max_wal_backlog: Option<u64>,
    pub(crate) encryption: Option<Encryption>,
}

/// A local PostgreSQL cluster: read over its unix socket, its base backups in a directory.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LocalPostureSpec {
    pub(crate) socket_dir: PathBuf,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) database: String,
    pub(crate) base_backups: PathBuf,
    /// Where archived WAL lands, when the file says (`wal-archive`).
    pub(crate) wal_archive: Option<PathBuf>,
}

/// Where a store's posture is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PostureSource {
    LocalPostgres(LocalPostureSpec),
    Supabase(SupabasePostureSpec),
    /// An RDS instance, by identifier (`DescribeDBInstances`, `DescribeDBSnapshots`).
    RdsInstance(AwsPostureSpec),
    /// An Aurora cluster, by identifier (`DescribeDBClusters`, `DescribeDBClusterSnapshots`).
    AuroraCluster(AwsPostureSpec),
    /// One resource AWS Backup protects, and the vault its recovery points are in.
    AwsBackup(AwsBackupPostureSpec),
    /// An S3 bucket: versioning, default encryption, noncurrent-version retention.
    S3Bucket(AwsPostureSpec),
}

/// An AWS resource by name (an RDS instance or cluster identifier, a bucket), in `region` (the command's
/// region when absent).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AwsPostureSpec {
    pub(crate) id: String,
    pub(crate) region: Option<String>,
}

/// A resource AWS Backup protects (`resource_arn`) and its vault.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AwsBackupPostureSpec {
    pub(crate) vault: String,
    pub(crate) resource_arn: String,
    pub(crate) region: Option<String>,
}

/// A Supabase project, read through the Management API (`GET /v1/projects/{ref}/database/backups`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SupabasePostureSpec {
    pub(crate) project_ref: String,
    /// The environment variable holding the access token (never the token itself).
    pub(crate) token_env: String,
    pub(crate) api_url: String,
}

impl PostureSource {
    /// The kind as the file names it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            PostureSource::LocalPostgres(_) => "local-postgres",
            PostureSource::Supabase(_) => "supabase",
            PostureSource::RdsInstance(_) => "rds-instance",
            PostureSource::AuroraCluster(_) => "aurora-cluster",
            PostureSource::AwsBackup(_) => "aws-backup",
            PostureSource::S3Bucket(_) => "s3-bucket",
        }
    }

    /// An AWS store: its encryption is read (and `kms` by default).
    pub(crate) fn is_aws(&self) -> bool {
        !matches!(self, PostureSource::LocalPostgres(_) | PostureSource::Supabase(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BackupStoreSpec {
    pub(crate) name: String,
    pub(crate) source: PostureSource,
    pub(crate) objectives: PostureObjectives,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BackupsSpec {
    pub(crate) stores: Vec<BackupStoreSpec>,
}

/// The default objective for the newest backup's age: a daily backup, and the hours its run may take.
pub(crate) const DEFAULT_MAX_BACKUP_AGE: Duration = Duration::from_secs(26 * 3600);

pub(crate) fn load_backups(path: &Path) -> Result<BackupsSpec, Vec<ConfigError>> {
    parse_backups(&read_file(path)?, path)
}

pub(crate) fn parse_backups(text: &str, path: &Path) -> Result<BackupsSpec, Vec<ConfigError>> {
    parse_with(text, path, resolve)
}

fn resolve(raw: RawBackups, _path: &Path, p: &mut Problems<'_>) -> BackupsSpec {
    if raw.stores.is_empty() {
        p.push("stores", "list at least one store");
    }
    let mut seen = std::collections::HashSet::new();
    let stores = raw
        .stores
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let at = |k: &str| format!("stores[{i}].{k}");
            let name_ok = !s.name.is_empty()
                && s.name.len() <= 64
                && s.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !name_ok {
                p.push(at("name"), format!("`{}` is not a store name (1-64 of A-Z a-z 0-9 - _ .)", s.name));
            } else if !seen.insert(s.name.clone()) {
                p.push(at("name"), format!("`{}` names another store already: each store once", s.name));
            }
            let source = match s.source {
                RawSource::LocalPostgres(l) => {
                    let key = |k: &str| at(&format!("source.local-postgres.{k}"));
                    for (k, v) in [("socket-dir", &l.socket_dir), ("base-backups", &l.base_backups)] {
                        if v.trim().is_empty() {
                            p.push(key(k), "must not be empty");
                        }
                    }
                    PostureSource::LocalPostgres(LocalPostureSpec {
                        socket_dir: l.socket_dir.into(),
                        port: l.port.unwrap_or(5432),
                        user: l.user.unwrap_or_else(|| "postgres".into()),
                        database: l.database.unwrap_or_else(|| "postgres".into()),
                        base_backups: l.base_backups.into(),
                        wal_archive: l.wal_archive.map(PathBuf::from),
                    })
                }
                RawSource::Supabase(s) => {
                    let key = |k: &str| at(&format!("source.supabase.{k}"));
                    if !crate::supabase::valid_ref(&s.project_ref) {
                        p.push(key("project-ref"), format!("`{}` is not a Supabase project ref", s.project_ref));
                    }
                    let api_url = s.api_url.unwrap_or_else(|| crate::supabase::DEFAULT_API.into());
                    if !api_url.starts_with("https://") && !crate::supabase::is_loopback_http(&api_url) {
                        p.push(key("api-url"), "must be https:// (http only to a loopback stand-in)");
                    }
                    PostureSource::Supabase(SupabasePostureSpec {
                        project_ref: s.project_ref,
                        token_env: s.token_env.unwrap_or_else(|| "SUPABASE_ACCESS_TOKEN".into()),
                        api_url,
                    })
                }
                RawSource::RdsInstance(r) => {
                    rds_id(p, &at("source.rds-instance.id"), &r.id);
                    PostureSource::RdsInstance(AwsPostureSpec {
                        id: r.id,
                        region: region(p, &at, "rds-instance", r.region),
                    })
                }
                RawSource::AuroraCluster(r) => {
                    rds_id(p, &at("source.aurora-cluster.id"), &r.id);
                    PostureSource::AuroraCluster(AwsPostureSpec {
                        id: r.id,
                        region: region(p, &at, "aurora-cluster", r.region),
                    })
                }
                RawSource::AwsBackup(b) => {
                    let key = |k: &str| at(&format!("source.aws-backup.{k}"));
                    let vault_ok = (2..=50).contains(&b.vault.len())
                        && b.vault.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                    if !vault_ok {
                        p.push(
                            key("vault"),
                            format!("`{}` is not a backup vault name (2-50 of A-Z a-z 0-9 - _ .)", b.vault),
                        );
                    }
                    if !b.resource_arn.starts_with("arn:") || b.resource_arn.split(':').count() < 6 {
                        p.push(key("resource-arn"), format!("`{}` is not an ARN", b.resource_arn));
                    }
                    PostureSource::AwsBackup(AwsBackupPostureSpec {
                        vault: b.vault,
                        resource_arn: b.resource_arn,
                        region: region(p, &at, "aws-backup", b.region),
                    })
                }
                RawSource::S3Bucket(b) => {
                    let ok = (3..=63).contains(&b.bucket.len())
                        && b.bucket
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
                    if !ok {
                        p.push(at("source.s3-bucket.bucket"), format!("`{}` is not a bucket name", b.bucket));
                    }
                    PostureSource::S3Bucket(AwsPostureSpec {
                        id: b.bucket,
                        region: region(p, &at, "s3-bucket", b.region),
                    })
                }
            };
            let o = s.objectives;
            let d = |p: &mut Problems<'_>, k: &str, v: Option<String>| {
                v.map(|v| duration(p, &at(&format!("objectives.{k}")), &v, Duration::from_secs(1)))
            };
            let max_backup_age = d(p, "max-backup-age", o.max_backup_age).unwrap_or(DEFAULT_MAX_BACKUP_AGE);
            let objectives = PostureObjectives {
                max_backup_age,
                max_pitr_lag: d(p, "max-pitr-lag", o.max_pitr_lag),
                min_retention: d(p, "min-retention", o.min_retention),
                max_wal_backlog: o.max_wal_backlog,
                // An AWS store's backups must be KMS-encrypted unless the file says otherwise.
                encryption: o.encryption.or(source.is_aws().then_some(Encryption::Kms)),
            };
            if objectives.encryption.is_some() && !source.is_aws() {
                p.push(
                    at("objectives.encryption"),
                    "this store's encryption is recorded as not applicable (a local-postgres store's base backups \
                     are plain files; the Supabase Management API does not report it), so an encryption objective \
                     could never be met (remove it)",
                );
            }
            if objectives.max_wal_backlog.is_some() && !matches!(source, PostureSource::LocalPostgres(_)) {
                p.push(at("objectives.max-wal-backlog"), "applies to a local-postgres store only");
            }
            BackupStoreSpec { name: s.name, source, objectives }
        })
        .collect();
    BackupsSpec { stores }
}

/// An RDS instance or cluster identifier: 1-63 letters, digits and hyphens, starting with a letter.
fn rds_id(p: &mut Problems<'_>, key: &str, id: &str) {
    let ok = (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        p.push(key, format!("`{id}` is not an RDS identifier (1-63 letters, digits and hyphens, a letter first)"));
    }
}

/// An optional region, checked for shape.
fn region(p: &mut Problems<'_>, at: &dyn Fn(&str) -> String, kind: &str, r: Option<String>) -> Option<String> {
    if let Some(r) = &r {
        let ok =
            r.split('-').count() >= 3 && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            p.push(at(&format!("source.{kind}.region")), format!("`{r}` is not an AWS region"));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse_backups(text, Path::new("backups.yaml")) {
            Ok(_) => vec![],
            Err(errs) => errs
                .iter()
                .map(|e| {
                    format!(
                        "{}:{}:{} {}: {}",
                        e.file.display(),
                        e.line.unwrap_or(0),
                        e.column.unwrap_or(0),
                        e.key,
                        e.message
                    )
                })
                .collect(),
        }
    }

    const LOCAL: &str = "source:\n      local-postgres: { socket-dir: /run/pg, base-backups: /srv/bb }\n";

    #[test]
    fn a_local_store_reads_with_its_defaults_and_objectives() {
        let text = format!(
            "stores:\n  - name: app-db\n    {LOCAL}    objectives: {{ max-pitr-lag: 10m, min-retention: 7d }}\n"
        );
        let spec = parse_backups(&text, Path::new("backups.yaml")).unwrap();
        let s = &spec.stores[0];
        assert_eq!(s.name, "app-db");
        assert_eq!(s.objectives.max_backup_age, Duration::from_secs(26 * 3600));
        assert_eq!(s.objectives.max_pitr_lag, Some(Duration::from_secs(600)));
        assert_eq!(s.objectives.min_retention, Some(Duration::from_secs(7 * 86400)));
        let PostureSource::LocalPostgres(l) = &s.source else { panic!("{:?}", s.source) };
        assert_eq!((l.port, l.user.as_str(), l.database.as_str()), (5432, "postgres", "postgres"));
    }

    /// Every problem is named with file:line:column:key.
    #[test]
    fn every_problem_names_file_line_column_and_key() {
        let text = format!(
            "stores:\n  - name: app-db\n    {LOCAL}    objectives: {{ max-backup-age: soon, encryption: kms }}\n  \
             - name: app-db\n    {LOCAL}"
        );
        let lines = problems(&text);
        for want in [
            "backups.yaml:5:35 stores[0].objectives.max-backup-age: invalid duration `soon`",
            "backups.yaml:5:53 stores[0].objectives.encryption: this store's encryption is recorded as not applicable",
            "backups.yaml:6:11 stores[1].name: `app-db` names another store already",
        ] {
            assert!(lines.iter().any(|l| l.starts_with(want)), "`{want}` in {lines:#?}");
        }
        let lines = problems(&format!("stores:\n  - name: x\n    {LOCAL}    objectivs: {{}}\n"));
        assert!(
            lines.iter().any(|l| l.starts_with("backups.yaml:5:5 stores[0].objectivs: unknown field `objectivs`")),
            "{lines:#?}"
        );
        let lines = problems("stores:\n  - name: x\n    source: { rds: {} }\n");
        assert!(
            lines.iter().any(|l| l.contains("stores[0].source") && l.contains("unknown variant `rds`")),
            "{lines:#?}"
        );
    }

    /// The AWS stores: their sources, `kms` by default, and each bad value named by line and key.
    #[test]
    fn aws_stores_read_with_kms_by_default_and_bad_values_are_located() {
        let text = "stores:\n  - name: db\n    source: { rds-instance: { id: prod-db, region: eu-west-1 } }\n  \
                    - name: vault\n    source:\n      aws-backup: { vault: prod-vault, resource-arn: 'arn:aws:rds:ap-southeast-1:1:db:prod-db' }\n  \
                    - name: files\n    source: { s3-bucket: { bucket: acme-prod-files } }\n    objectives: { min-retention: 30d }\n";
        let spec = parse_backups(text, Path::new("backups.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(spec.stores.iter().all(|s| s.objectives.encryption == Some(Encryption::Kms)));
        assert_eq!(
            spec.stores[0].source,
            PostureSource::RdsInstance(AwsPostureSpec { id: "prod-db".into(), region: Some("eu-west-1".into()) })
        );
        assert_eq!(spec.stores[1].source.kind(), "aws-backup");
        let lines = problems(
            "stores:\n  - name: db\n    source: { rds-instance: { id: 9db } }\n  \
             - name: v\n    source: { aws-backup: { vault: x, resource-arn: prod-db } }\n  \
             - name: b\n    source: { s3-bucket: { bucket: Bad_Bucket, region: mars } }\n",
        );
        for want in [
            "backups.yaml:3:35 stores[0].source.rds-instance.id: `9db` is not an RDS identifier",
            "backups.yaml:5:36 stores[1].source.aws-backup.vault: `x` is not a backup vault name",
            "backups.yaml:5:53 stores[1].source.aws-backup.resource-arn: `prod-db` is not an ARN",
            "backups.yaml:7:36 stores[2].source.s3-bucket.bucket: `Bad_Bucket` is not a bucket name",
            "backups.yaml:7:56 stores[2].source.s3-bucket.region: `mars` is not an AWS region",
        ] {
            assert!(lines.iter().any(|l| l.starts_with(want)), "`{want}` in {lines:#?}");
        }
    }
}
