//! `schedule.yaml`: where `stackdrill schedule deploy` puts the drill schedules (an EventBridge Scheduler
//! group) and what each starts (an ECS task running `stackdrill drill run <drill>`).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, Problems};
use super::parse::{parse_with, read_file};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDeploy {
    group: Option<String>,
    role_arn: String,
    ecs: RawEcs,
    flexible_window: Option<String>,
    retry: Option<RawRetry>,
    dead_letter_queue: Option<String>,
    #[serde(default)]
    drills: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    backups: Option<RawBackupsSchedule>,
}

/// `backups:`: run `backups check --file FILE` on this cadence, through the same group and task.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBackupsSchedule {
    #[serde(alias = "expression")]
    cron: String,
    timezone: Option<String>,
    file: Option<String>,
}

/// The daily backup-posture check's schedule (the schedule is named `backups-check`).
#[derive(Debug, Clone)]
pub(crate) struct BackupsSchedule {
    pub(crate) schedule: crate::cadence::Schedule,
    /// The backups file, as the task sees it (default `backups.yaml`).
    pub(crate) file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEcs {
    cluster: String,
    task_definition: String,
    container: Option<String>,
    launch_type: Option<String>,
    platform_version: Option<String>,
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    #[serde(default)]
    assign_public_ip: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRetry {
    attempts: u32,
    max_age: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct DeploySpec {
    pub(crate) group: String,
    pub(crate) role_arn: String,
    pub(crate) cluster: String,
    pub(crate) task_definition: String,
    pub(crate) container: String,
    pub(crate) launch_type: String,
    pub(crate) platform_version: Option<String>,
    pub(crate) subnets: Vec<String>,
    pub(crate) security_groups: Vec<String>,
    pub(crate) assign_public_ip: bool,
    /// `None`: start at the scheduled time (EventBridge's `OFF`).
    pub(crate) flexible_window: Option<Duration>,
    pub(crate) retry_attempts: u32,
    pub(crate) retry_max_age: Duration,
    pub(crate) dead_letter_queue: Option<String>,
    /// Only these drills (default: every drill in drills/ with a `schedule:`).
    pub(crate) drills: Vec<String>,
    /// Extra arguments after `drill run <name>` (a report store, a KMS signing key).
    pub(crate) args: Vec<String>,
    /// `backups check` on its own cadence (with the same `args`), when declared.
    pub(crate) backups: Option<BackupsSchedule>,
}

pub(crate) fn load_deploy(path: &Path) -> Result<DeploySpec, Vec<ConfigError>> {
    parse_with(&read_file(path)?, path, resolve)
}

fn arn_of(p: &mut Problems<'_>, key: &str, value: &str, service: &str, kind: &str) {
    let ok = value.starts_with("arn:aws") && value.split(':').nth(2) == Some(service) && value.contains(kind);
    if !ok {
        p.push(key, format!("`{value}` is not an {service} {kind} ARN (arn:aws:{service}:…:{kind}…)"));
    }
}

fn duration(p: &mut Problems<'_>, key: &str, text: &str) -> Option<Duration> {
    match humantime::parse_duration(text) {
        Ok(d) => Some(d),
        Err(e) => {
            p.push(key, format!("`{text}` is not a duration like 15m or 1h: {e}"));
            None
        }
    }
}

fn resolve(raw: RawDeploy, _path: &Path, p: &mut Problems<'_>) -> DeploySpec {
    let RawDeploy { group, role_arn, ecs, flexible_window, retry, dead_letter_queue, drills, args, backups } = raw;
    let backups = backups.and_then(|b| {
        let timezone = match b.timezone.as_deref().unwrap_or("UTC").parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                p.push("backups.timezone", format!("unknown IANA time zone `{}`", b.timezone.unwrap_or_default()));
                None
            }
        };
        let expr = match crate::cadence::Expr::parse(&b.cron) {
            Ok(x) => Some(x),
            Err(e) => {
                p.push("backups.cron", e);
                None
            }
        };
        let file = b.file.unwrap_or_else(|| "backups.yaml".into());
        if file.trim().is_empty() {
            p.push("backups.file", "must not be empty");
        }
        Some(BackupsSchedule {
            schedule: crate::cadence::Schedule { cron: b.cron, expr: expr?, timezone: timezone? },
            file,
        })
    });
    let group = group.unwrap_or_else(|| "stackdrill-drills".into());
    if group.is_empty()
        || group.len() > 64
        || !group.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || group == "default"
    {
        p.push(
            "group",
            format!(
                "`{group}` is not a schedule group name stackdrill can own (1-64 of A-Z a-z 0-9 - _ ., not `default`)"
            ),
        );
    }
    arn_of(p, "role-arn", &role_arn, "iam", "role/");
    arn_of(p, "ecs.cluster", &ecs.cluster, "ecs", "cluster/");
    arn_of(p, "ecs.task-definition", &ecs.task_definition, "ecs", "task-definition/");
    if let Some(q) = &dead_letter_queue {
        arn_of(p, "dead-letter-queue", q, "sqs", "");
    }
    if ecs.subnets.is_empty() {
        p.push("ecs.subnets", "list at least one subnet for the task's network (awsvpc)");
    }
    for (i, s) in ecs.subnets.iter().enumerate() {
        if !s.starts_with("subnet-") {
            p.push(format!("ecs.subnets[{i}]"), format!("`{s}` is not a subnet id (subnet-…)"));
        }
    }
    for (i, s) in ecs.security_groups.iter().enumerate() {
        if !s.starts_with("sg-") {
            p.push(format!("ecs.security-groups[{i}]"), format!("`{s}` is not a security group id (sg-…)"));
        }
    }
    let launch_type = ecs.launch_type.unwrap_or_else(|| "FARGATE".into());
    if !matches!(launch_type.as_str(), "FARGATE" | "EC2" | "EXTERNAL") {
        p.push("ecs.launch-type", format!("`{launch_type}` is not FARGATE, EC2 or EXTERNAL"));
    }
    let flexible_window = match flexible_window.as_deref() {
        None | Some("off" | "0" | "0s") => None,
        Some(t) => duration(p, "flexible-window", t).filter(|d| {
            let ok = (60..=86_400).contains(&d.as_secs());
            if !ok {
                p.push("flexible-window", "must be between 1m and 24h (or `off`)");
            }
            ok
        }),
    };
    let (retry_attempts, retry_max_age) = match retry {
        None => (0, Duration::from_secs(3600)),
        Some(RawRetry { attempts, max_age }) => {
            if attempts > 185 {
                p.push("retry.attempts", "EventBridge Scheduler allows 0–185 retries");
            }
            let age = max_age.and_then(|t| duration(p, "retry.max-age", &t)).unwrap_or(Duration::from_secs(3600));
            if !(60..=86_400).contains(&age.as_secs()) {
                p.push("retry.max-age", "must be between 1m and 24h");
            }
            (attempts, age)
        }
    };
    for (i, a) in args.iter().enumerate() {
        let lower = a.to_ascii_lowercase();
        if lower.contains("password") || lower.contains("secret=") {
            p.push(format!("args[{i}]"), "looks like a secret: secrets never go on a command line; give the task a secret from Secrets Manager instead");
        }
    }
    DeploySpec {
        group,
        role_arn,
        cluster: ecs.cluster,
        task_definition: ecs.task_definition,
        container: ecs.container.unwrap_or_else(|| "stackdrill".into()),
        launch_type,
        platform_version: ecs.platform_version,
        subnets: ecs.subnets,
        security_groups: ecs.security_groups,
        assign_public_ip: ecs.assign_public_ip,
        flexible_window,
        retry_attempts,
        retry_max_age,
        dead_letter_queue,
        drills,
        args,
        backups,
    }
}
