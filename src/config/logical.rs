//! The restore blocks that are not an AWS or local physical backup: `pg-dump` (a logical backup restored
//! into a local scratch cluster), `existing-postgres` (a database someone else restored, verified where it
//! is) and `supabase-branch` (a branch with data of a Supabase project).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::drill::{RawSource, source_spec};
use super::drill_spec::SourceSpec;
use super::error::Problems;
use super::target::parse_target_time;

// ---------------------------------------------------------------- raw, as written

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPgDump {
    dumps: String,
    scratch_root: String,
    os_user: Option<String>,
    database: Option<String>,
    user: Option<String>,
    jobs: Option<usize>,
    create_missing_roles: Option<bool>,
    header_timezone: Option<String>,
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawExistingPostgres {
    connection: RawSource,
    restore_started_at: Option<String>,
    restore_finished_at: Option<String>,
    restored_to: Option<String>,
    backup: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSupabaseBranch {
    project_ref: String,
    residency: Option<Vec<String>>,
    token_env: Option<String>,
    api_url: Option<String>,
    database: Option<String>,
    sslmode: Option<String>,
    ca_bundle: Option<String>,
    desired_instance_size: Option<String>,
    wait_healthy: Option<String>,
    expires_after: Option<String>,
    backup_health: Option<RawBackupHealth>,
    region: Option<String>,
    connect: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSupabaseNewProject {
    project_ref: String,
    residency: Option<Vec<String>>,
    token_env: Option<String>,
    api_url: Option<String>,
    database: Option<String>,
    sslmode: Option<String>,
    ca_bundle: Option<String>,
    password_env: Option<String>,
    connect: Option<String>,
    wait_restored: Option<String>,
    wait_healthy: Option<String>,
    backup_health: Option<RawBackupHealth>,
}

/// `backup-health:` of a Supabase drill.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBackupHealth {
    pitr: Option<bool>,
    newest_backup_within: Option<String>,
    latest_point_within: Option<String>,
}

/// The backup-health gate's policy: PITR relied on unless the drill says `pitr: false`, the newest backup
/// at most 26 h old, the PITR window's end at most 10 min behind.
pub(super) fn backup_health(
    p: &mut Problems<'_>,
    key: &str,
    raw: Option<RawBackupHealth>,
) -> crate::supabase::HealthPolicy {
    use super::parse::duration;
    use std::time::Duration;
    let RawBackupHealth { pitr, newest_backup_within, latest_point_within } = raw.unwrap_or_default();
    let within = |p: &mut Problems<'_>, k: &str, v: Option<String>, d: u64| {
        v.map(|v| duration(p, &format!("{key}.backup-health.{k}"), &v, Duration::from_secs(d)))
            .unwrap_or(Duration::from_secs(d))
    };
    crate::supabase::HealthPolicy {
        pitr: pitr.unwrap_or(true),
        newest_backup_within: within(p, "newest-backup-within", newest_backup_within, 26 * 3600),
        latest_point_within: within(p, "latest-point-within", latest_point_within, 600),
    }
}

// ---------------------------------------------------------------- resolved

/// Where the dumps are: a file, a directory of them, or an S3 prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DumpLocation {
    Path(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl std::fmt::Display for DumpLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpLocation::Path(p) => write!(f, "{}", p.display()),
            DumpLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PgDumpSpec {
    pub(crate) dumps: DumpLocation,
    pub(crate) scratch_root: PathBuf,
    pub(crate) os_user: String,
    /// The database the checks read; default: the source's `dbname`, else the dump's own database.
    pub(crate) database: Option<String>,
    /// The scratch's superuser (trust over its private socket).
    pub(crate) user: String,
    /// `pg_restore -j`.
    pub(crate) jobs: usize,
    /// Roles the dump uses but does not create are created NOLOGIN (Supabase's `anon`, ...).
    pub(crate) create_missing_roles: bool,
    /// The zone of the wall clock in a pg_dump archive header (it stores no zone).
    pub(crate) header_timezone: chrono_tz::Tz,
    /// The region of an `s3://` location (else the drill's `--region` or the SDK's default).
    pub(crate) region: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ExistingPostgresSpec {
    pub(crate) connection: SourceSpec,
    /// When the person began the restore: the RTO runs from here.
    pub(crate) restore_started_at: Option<DateTime<Utc>>,
    /// When it was usable; without it the RTO runs until stackdrill first connects.
    pub(crate) restore_finished_at: Option<DateTime<Utc>>,
    /// The moment the restored data stands at (the backup's time, a PITR target): RPO and source cuts.
    pub(crate) restored_to: Option<DateTime<Utc>>,
    /// The backup it came from, in words ("Supabase daily backup of 2026-11-29").
    pub(crate) backup: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct SupabaseBranchSpec {
    pub(crate) project_ref: String,
    /// Regions the project (and so its branch) may be in; another is refused before anything is created.
    pub(crate) residency: Vec<String>,
    pub(crate) token_env: String,
    pub(crate) api_url: String,
    pub(crate) database: String,
    pub(crate) tls: super::tls::TlsSpec,
    pub(crate) desired_instance_size: Option<String>,
    /// How long the branch may take to become healthy before the drill gives up (and deletes it).
    pub(crate) wait_healthy: std::time::Duration,
    /// After this, `drill cleanup` may delete a branch a crashed run left.
    pub(crate) expires_after: std::time::Duration,
    /// What the project's backups must show (the backup-health check).
    pub(crate) backup_health: crate::supabase::HealthPolicy,
    /// The region the branch is created in (sent, then checked); default the project's own.
    pub(crate) region: Option<String>,
    /// How the drill reaches the branch database.
    pub(crate) connect: SupabaseConnect,
}

/// `supabase-new-project`: the project's PITR restored to T by a person in the dashboard (the v1 API has
/// only in-place restores), into a new project named `sd-<drill>-<run>` that the drill finds, verifies and
/// deletes behind a guard.
#[derive(Debug, Clone)]
pub(crate) struct SupabaseNewProjectSpec {
    pub(crate) project_ref: String,
    /// Regions the source and the new project may be in.
    pub(crate) residency: Vec<String>,
    pub(crate) token_env: String,
    pub(crate) api_url: String,
    pub(crate) database: String,
    pub(crate) tls: super::tls::TlsSpec,
    /// The variable holding the new project's database password (set in the dashboard's restore form).
    pub(crate) password_env: String,
    pub(crate) connect: SupabaseConnect,
    /// How long the drill waits for the new project to appear after asking for it.
    pub(crate) wait_restored: std::time::Duration,
    /// How long the new project may take to become healthy once it appeared.
    pub(crate) wait_healthy: std::time::Duration,
    pub(crate) backup_health: crate::supabase::HealthPolicy,
}

pub(super) fn supabase_new_project(p: &mut Problems<'_>, raw: RawSupabaseNewProject) -> SupabaseNewProjectSpec {
    use super::parse::duration;
    use std::time::Duration;
    let RawSupabaseNewProject {
        project_ref,
        residency,
        token_env,
        api_url,
        database,
        sslmode,
        ca_bundle,
        password_env,
        connect,
        wait_restored,
        wait_healthy,
        backup_health: raw_health,
    } = raw;
    let key = "restore.supabase-new-project";
    let backup_health = backup_health(p, key, raw_health);
    check_ref(p, &format!("{key}.project-ref"), &project_ref);
    let connect = supabase_connect(p, key, connect);
    let residency = residency.unwrap_or_else(|| vec![crate::aws::DEFAULT_REGION.to_string()]);
    if residency.is_empty() {
        p.push(format!("{key}.residency"), "must allow at least one region");
    }
    let api_url = api_url.unwrap_or_else(|| crate::supabase::DEFAULT_API.into());
    if !api_url.starts_with("https://") && !crate::supabase::is_loopback_http(&api_url) {
        p.push(format!("{key}.api-url"), "must be https:// (plain http only to a stand-in on 127.0.0.1 or localhost)");
    }
    let tls = super::tls::tls_spec(p, key, sslmode.as_deref(), ca_bundle);
    if tls == super::tls::TlsSpec::Disable {
        p.push(format!("{key}.sslmode"), "a restored project holds production data: use require or verify-full");
    }
    let wait = |p: &mut Problems<'_>, k: &str, v: Option<String>, d: u64| {
        v.map(|w| duration(p, &format!("{key}.{k}"), &w, Duration::from_secs(d))).unwrap_or(Duration::from_secs(d))
    };
    SupabaseNewProjectSpec {
        project_ref,
        residency,
        token_env: token_env.unwrap_or_else(|| "SUPABASE_ACCESS_TOKEN".into()),
        api_url,
        database: database.unwrap_or_else(|| "postgres".into()),
        tls,
        password_env: password_env.unwrap_or_else(|| "RESTORED_PGPASSWORD".into()),
        connect,
        wait_restored: wait(p, "wait-restored", wait_restored, 2 * 3600),
        wait_healthy: wait(p, "wait-healthy", wait_healthy, 30 * 60),
        backup_health,
    }
}

/// How a Supabase drill reaches a database: the session pooler (Supavisor, reachable over IPv4) or the
/// direct host `db.<ref>.supabase.co` (IPv6-only unless the project has the IPv4 add-on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SupabaseConnect {
    Pooler,
    Direct,
}

/// `connect:` of a Supabase drill: `pooler` (default) or `direct`.
pub(super) fn supabase_connect(p: &mut Problems<'_>, key: &str, raw: Option<String>) -> SupabaseConnect {
    match raw.as_deref() {
        None | Some("pooler") => SupabaseConnect::Pooler,
        Some("direct") => SupabaseConnect::Direct,
        Some(other) => {
            p.push(
                format!("{key}.connect"),
                format!("`{other}` is not a way to connect: `pooler` (the session pooler, IPv4) or `direct` (IPv6 without the IPv4 add-on)"),
            );
            SupabaseConnect::Pooler
        }
    }
}

/// A project ref as the API defines it (20 lowercase letters).
pub(super) fn check_ref(p: &mut Problems<'_>, key: &str, r: &str) {
    if !crate::supabase::valid_ref(r) {
        p.push(
            key.to_string(),
            format!("`{r}` is not a project ref (20 lowercase letters, as in Project Settings → General)"),
        );
    }
}

/// `desired-instance-size` must be one of the API's sizes.
pub(super) fn check_instance_size(p: &mut Problems<'_>, key: &str, size: Option<&str>) {
    if let Some(s) = size.filter(|s| !crate::supabase::INSTANCE_SIZES.contains(s)) {
        p.push(
            key.to_string(),
            format!("`{s}` is not an instance size: one of {}", crate::supabase::INSTANCE_SIZES.join(", ")),
        );
    }
}

pub(super) fn supabase_branch(p: &mut Problems<'_>, raw: RawSupabaseBranch) -> SupabaseBranchSpec {
    use super::parse::duration;
    use std::time::Duration;
    let RawSupabaseBranch {
        project_ref,
        residency,
        token_env,
        api_url,
        database,
        sslmode,
        ca_bundle,
        desired_instance_size,
        wait_healthy,
        expires_after,
        backup_health: raw_health,
        region,
        connect,
    } = raw;
    let key = "restore.supabase-branch";
    let backup_health = backup_health(p, key, raw_health);
    check_ref(p, &format!("{key}.project-ref"), &project_ref);
    check_instance_size(p, &format!("{key}.desired-instance-size"), desired_instance_size.as_deref());
    let connect = supabase_connect(p, key, connect);
    let residency = residency.unwrap_or_else(|| vec![crate::aws::DEFAULT_REGION.to_string()]);
    if residency.is_empty() {
        p.push(format!("{key}.residency"), "must allow at least one region");
    }
    if let Some(r) = region.as_ref().filter(|r| !residency.contains(r)) {
        p.push(format!("{key}.region"), format!("`{r}` is outside the drill's residency ({})", residency.join(", ")));
    }
    let api_url = api_url.unwrap_or_else(|| crate::supabase::DEFAULT_API.into());
    if !api_url.starts_with("https://") && !crate::supabase::is_loopback_http(&api_url) {
        p.push(format!("{key}.api-url"), "must be https:// (plain http only to a stand-in on 127.0.0.1 or localhost)");
    }
    let tls = super::tls::tls_spec(p, key, sslmode.as_deref(), ca_bundle);
    if tls == super::tls::TlsSpec::Disable {
        p.push(format!("{key}.sslmode"), "a branch holds production data: use require or verify-full");
    }
    let wait_healthy = wait_healthy
        .map(|w| duration(p, &format!("{key}.wait-healthy"), &w, Duration::from_secs(1200)))
        .unwrap_or(Duration::from_secs(1200));
    let expires_after = expires_after
        .map(|w| duration(p, &format!("{key}.expires-after"), &w, Duration::from_secs(6 * 3600)))
        .unwrap_or(Duration::from_secs(6 * 3600));
    SupabaseBranchSpec {
        project_ref,
        residency,
        token_env: token_env.unwrap_or_else(|| "SUPABASE_ACCESS_TOKEN".into()),
        api_url,
        database: database.unwrap_or_else(|| "postgres".into()),
        tls,
        desired_instance_size,
        wait_healthy,
        expires_after,
        backup_health,
        region,
        connect,
    }
}

pub(super) fn pg_dump(p: &mut Problems<'_>, raw: RawPgDump) -> PgDumpSpec {
    let RawPgDump { dumps, scratch_root, os_user, database, user, jobs, create_missing_roles, header_timezone, region } =
        raw;
    let key = "restore.pg-dump";
    let dumps = match dumps.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                p.push(format!("{key}.dumps"), format!("`{dumps}` names no bucket: write s3://BUCKET/PREFIX"));
            }
            DumpLocation::S3 { bucket: bucket.into(), prefix: prefix.into() }
        }
        None => {
            if dumps.trim().is_empty() {
                p.push(format!("{key}.dumps"), "must name a dump file, a directory of dumps or s3://BUCKET/PREFIX");
            }
            DumpLocation::Path(dumps.into())
        }
    };
    if region.is_some() && matches!(dumps, DumpLocation::Path(_)) {
        p.push(format!("{key}.region"), "only used with an s3:// location");
    }
    if scratch_root.trim().is_empty() {
        p.push(format!("{key}.scratch-root"), "must name a directory");
    }
    let jobs = jobs.unwrap_or(2);
    if !(1..=64).contains(&jobs) {
        p.push(format!("{key}.jobs"), "must be between 1 and 64");
    }
    let header_timezone = match header_timezone.as_deref().unwrap_or("UTC").parse::<chrono_tz::Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            let given = header_timezone.unwrap_or_default();
            p.push(format!("{key}.header-timezone"), format!("unknown IANA time zone `{given}`"));
            chrono_tz::UTC
        }
    };
    PgDumpSpec {
        dumps,
        scratch_root: scratch_root.into(),
        os_user: os_user.unwrap_or_else(|| "postgres".into()),
        database,
        user: user.unwrap_or_else(|| "postgres".into()),
        jobs,
        create_missing_roles: create_missing_roles.unwrap_or(false),
        header_timezone,
        region,
    }
}

pub(super) fn existing_postgres(p: &mut Problems<'_>, raw: RawExistingPostgres) -> ExistingPostgresSpec {
    let RawExistingPostgres { connection, restore_started_at, restore_finished_at, restored_to, backup } = raw;
    let key = "restore.existing-postgres";
    // The connection is read the way `source` is; it has no RDS instance to read itself from.
    let connection = source_spec(p, &format!("{key}.connection"), connection, false);
    if connection.read_from.is_some() {
        p.push(format!("{key}.connection.read-from"), "a restored database is read where it is; drop `read-from`");
    }
    let mut time = |name: &str, v: Option<String>| {
        v.and_then(|t| parse_target_time(&t).map_err(|e| p.push(format!("{key}.{name}"), e)).ok())
    };
    let restore_started_at = time("restore-started-at", restore_started_at);
    let restore_finished_at = time("restore-finished-at", restore_finished_at);
    let restored_to = time("restored-to", restored_to);
    if let (Some(s), Some(f)) = (restore_started_at, restore_finished_at)
        && f < s
    {
        p.push(format!("{key}.restore-finished-at"), "is before restore-started-at");
    }
    ExistingPostgresSpec { connection, restore_started_at, restore_finished_at, restored_to, backup }
}
