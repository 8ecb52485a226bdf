//! `schedule deploy`: one EventBridge Scheduler schedule per scheduled drill, in a schedule group stackdrill owns
//! (tagged `stackdrill:managed=true`), each starting an ECS task whose command is `stackdrill drill run <drill>`.
//! Idempotent: it reads what is there, shows what changes, and changes only that. Schedules cannot carry tags,
//! so ownership is the group's tag plus a description that marks the schedule as stackdrill's; a schedule
//! without both is never updated or deleted.

use aws_sdk_scheduler::types::{
    AssignPublicIp, AwsVpcConfiguration, DeadLetterConfig, EcsParameters, FlexibleTimeWindow, FlexibleTimeWindowMode,
    LaunchType, NetworkConfiguration, RetryPolicy, ScheduleState, Tag, Target,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::aws::{AwsError, CallCounter, Kind, classify};
use crate::config::{DeploySpec, DrillSpec};
use crate::stack::live::TAG_MANAGED;

/// Descriptions of the schedules stackdrill creates start with this.
const MARK: &str = "stackdrill drill ";

/// One schedule as declared, in the same shape as [`live_shape`] reads one back.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub(crate) name: String,
    pub(crate) shape: Value,
    /// For a `rate(...)`: the next epoch-aligned occurrence, so AWS and `schedule run` agree.
    start: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Change {
    /// `create`, `update`, `delete`, `unchanged`, `refused`.
    pub(crate) action: &'static str,
    pub(crate) schedule: String,
    pub(crate) expression: Option<String>,
    pub(crate) timezone: Option<String>,
    /// For an update: `key: before -> after` per differing property; for a refusal, why.
    pub(crate) details: Vec<String>,
    /// Whether it was carried out (false under `--dry-run`, or when it failed).
    pub(crate) done: bool,
    pub(crate) error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DeployError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error(
        "schedule group `{0}` exists but is not stackdrill's (it lacks the tag stackdrill:managed=true): nothing was changed"
    )]
    ForeignGroup(String),
    #[error("{0}")]
    Invalid(String),
}

impl DeployError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            DeployError::ForeignGroup(_) => {
                Some("choose another `group:` in the deploy file; stackdrill creates and tags its own".into())
            }
            DeployError::Aws(e) if e.kind == Kind::AccessDenied => {
                Some("the deploy role needs scheduler:* on the group and iam:PassRole on `role-arn`".into())
            }
            _ => None,
        }
    }
}

/// The command the ECS task runs.
fn command(drill: &str, cfg: &DeploySpec) -> Vec<String> {
    let mut c: Vec<String> = ["drill", "run", drill, "--trigger", "schedule"].iter().map(|s| s.to_string()).collect();
    c.extend(cfg.args.iter().cloned());
    c
}

/// The ECS RunTask input (as `aws ecs run-task --cli-input-json` takes it) that runs `drill run <args>` now,
/// in the task definition and private network schedules use: how CI runs drills inside the VPC, where the
/// databases and the scratch are reachable (a hosted CI runner reaches neither).
pub(crate) fn run_task_input(cfg: &DeploySpec, run_args: &[String]) -> serde_json::Value {
    let mut command: Vec<String> = vec!["drill".into(), "run".into()];
    command.extend(run_args.iter().cloned());
    command.extend(cfg.args.iter().cloned());
    let mut input = serde_json::json!({
        "cluster": cfg.cluster,
        "taskDefinition": cfg.task_definition,
        "launchType": cfg.launch_type,
        "count": 1,
        "networkConfiguration": { "awsvpcConfiguration": {
            "subnets": cfg.subnets,
            "securityGroups": cfg.security_groups,
            "assignPublicIp": if cfg.assign_public_ip { "ENABLED" } else { "DISABLED" },
        } },
        "overrides": { "containerOverrides": [ { "name": cfg.container, "command": command } ] },
        "startedBy": "stackdrill",
    });
    if let Some(v) = &cfg.platform_version {
        input["platformVersion"] = serde_json::Value::String(v.clone());
    }
    input
}

/// The schedules the drills call for.
pub(crate) fn desired(
    drills: &[DrillSpec],
    cfg: &DeploySpec,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Desired>, DeployError> {
    let mut out = Vec::new();
    for d in drills {
        let Some(s) = &d.schedule else { continue };
        if !cfg.drills.is_empty() && !cfg.drills.contains(&d.name) {
            continue;
        }
        let expression = s
            .expr
            .to_aws()
            .map_err(|e| DeployError::Invalid(format!("drill `{}` ({}): {e}", d.name, d.file.display())))?;
        let input = json!({ "containerOverrides": [{ "name": cfg.container, "command": command(&d.name, cfg) }] });
        let shape = json!({
            "expression": expression,
            "timezone": s.timezone.to_string(),
            "state": "ENABLED",
            "description": format!("{MARK}{} ({}); deployed by `stackdrill schedule deploy`", d.name, d.file.display()),
            "flexible-window-minutes": cfg.flexible_window.map(|w| w.as_secs() / 60),
            "role": cfg.role_arn,
            "cluster": cfg.cluster,
            "task-definition": cfg.task_definition,
            "launch-type": cfg.launch_type,
            "platform-version": cfg.platform_version,
            "subnets": cfg.subnets,
            "security-groups": cfg.security_groups,
            "assign-public-ip": cfg.assign_public_ip,
            "input": input,
            "retry-attempts": cfg.retry_attempts,
            "retry-max-age-seconds": cfg.retry_max_age.as_secs(),
            "dead-letter-queue": cfg.dead_letter_queue,
        });
        let start = s.expr.rate().and_then(|_| crate::cadence::next_after(s, now));
        out.push(Desired { name: d.name.clone(), shape, start });
    }
    if let Some(b) = &cfg.backups {
        if out.iter().any(|d| d.name == BACKUPS_SCHEDULE) {
            return Err(DeployError::Invalid(format!(
                "drill `{BACKUPS_SCHEDULE}` takes the name of the `backups:` schedule: rename the drill"
            )));
        }
        let mut command: Vec<String> = ["backups", "check", "--file", &b.file].iter().map(|s| s.to_string()).collect();
        command.extend(cfg.args.iter().cloned());
        let s = &b.schedule;
        let expression =
            s.expr.to_aws().map_err(|e| DeployError::Invalid(format!("`backups:` in the deploy file: {e}")))?;
        let shape = schedule_shape(
            cfg,
            expression,
            s,
            format!("{MARK}{BACKUPS_SCHEDULE} ({}); deployed by `stackdrill schedule deploy`", b.file),
            &command,
        );
        let start = s.expr.rate().and_then(|_| crate::cadence::next_after(s, now));
        out.push(Desired { name: BACKUPS_SCHEDULE.into(), shape, start });
    }
    Ok(out)
}

/// The schedule that runs `backups check` (schedule.yaml's `backups:`).
pub(crate) const BACKUPS_SCHEDULE: &str = "backups-check";

/// A schedule's shape: the same target, network and retries as every other; its own command.
fn schedule_shape(
    cfg: &DeploySpec,
    expression: String,
    s: &crate::cadence::Schedule,
    description: String,
    command: &[String],
) -> Value {
    let input = json!({ "containerOverrides": [{ "name": cfg.container, "command": command }] });
    json!({
        "expression": expression,
        "timezone": s.timezone.to_string(),
        "state": "ENABLED",
        "description": description,
        "flexible-window-minutes": cfg.flexible_window.map(|w| w.as_secs() / 60),
        "role": cfg.role_arn,
        "cluster": cfg.cluster,
        "task-definition": cfg.task_definition,
        "launch-type": cfg.launch_type,
        "platform-version": cfg.platform_version,
        "subnets": cfg.subnets,
        "security-groups": cfg.security_groups,
        "assign-public-ip": cfg.assign_public_ip,
        "input": input,
        "retry-attempts": cfg.retry_attempts,
        "retry-max-age-seconds": cfg.retry_max_age.as_secs(),
        "dead-letter-queue": cfg.dead_letter_queue,
    })
}

/// A live schedule in the shape of [`desired`].
fn live_shape(g: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput) -> Value {
    let t = g.target();
    let ecs = t.and_then(|t| t.ecs_parameters());
    let vpc = ecs.and_then(|e| e.network_configuration()).and_then(|n| n.awsvpc_configuration());
    let window = g.flexible_time_window().and_then(|w| match w.mode() {
        FlexibleTimeWindowMode::Flexible => w.maximum_window_in_minutes().map(|m| m as u64),
        _ => None,
    });
    let retry = t.and_then(|t| t.retry_policy());
    json!({
        "expression": g.schedule_expression(),
        "timezone": g.schedule_expression_timezone().unwrap_or("UTC"),
        "state": g.state().map(|s| s.as_str()),
        "description": g.description(),
        "flexible-window-minutes": window,
        "role": t.map(|t| t.role_arn()),
        "cluster": t.map(|t| t.arn()),
        "task-definition": ecs.map(|e| e.task_definition_arn()),
        "launch-type": ecs.and_then(|e| e.launch_type()).map(|l| l.as_str()),
        "platform-version": ecs.and_then(|e| e.platform_version()),
        "subnets": vpc.map(|v| v.subnets()).unwrap_or_default(),
        "security-groups": vpc.map(|v| v.security_groups()).unwrap_or_default(),
        "assign-public-ip": vpc.and_then(|v| v.assign_public_ip()).is_some_and(|a| *a == AssignPublicIp::Enabled),
        "input": t.and_then(|t| t.input()).and_then(|i| serde_json::from_str::<Value>(i).ok()),
        // AWS's defaults when none is set: 185 attempts over 24 h.
        "retry-attempts": retry.and_then(|r| r.maximum_retry_attempts()).unwrap_or(185),
        "retry-max-age-seconds": retry.and_then(|r| r.maximum_event_age_in_seconds()).unwrap_or(86_400),
        "dead-letter-queue": t.and_then(|t| t.dead_letter_config()).and_then(|d| d.arn()),
    })
}

/// `key: before -> after` for each property that differs.
fn differences(live: &Value, want: &Value) -> Vec<String> {
    let (Some(l), Some(w)) = (live.as_object(), want.as_object()) else { return vec![] };
    w.iter()
        .filter(|(k, v)| l.get(*k).unwrap_or(&Value::Null) != *v)
        .map(|(k, v)| format!("{k}: {} -> {v}", l.get(k).unwrap_or(&Value::Null)))
        .collect()
}

fn target(d: &Desired, cfg: &DeploySpec) -> Result<Target, DeployError> {
    let bad = |e: aws_smithy_types::error::operation::BuildError| DeployError::Invalid(e.to_string());
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(cfg.subnets.clone()))
        .set_security_groups((!cfg.security_groups.is_empty()).then(|| cfg.security_groups.clone()))
        .assign_public_ip(if cfg.assign_public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
        .build()
        .map_err(bad)?;
    let ecs = EcsParameters::builder()
        .task_definition_arn(&cfg.task_definition)
        .task_count(1)
        .launch_type(LaunchType::from(cfg.launch_type.as_str()))
        .set_platform_version(cfg.platform_version.clone())
        .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
        .build()
        .map_err(bad)?;
    Target::builder()
        .arn(&cfg.cluster)
        .role_arn(&cfg.role_arn)
        .input(d.shape["input"].to_string())
        .ecs_parameters(ecs)
        .retry_policy(
            RetryPolicy::builder()
                .maximum_retry_attempts(cfg.retry_attempts as i32)
                .maximum_event_age_in_seconds(cfg.retry_max_age.as_secs() as i32)
                .build(),
        )
        .set_dead_letter_config(cfg.dead_letter_queue.as_ref().map(|q| DeadLetterConfig::builder().arn(q).build()))
        .build()
        .map_err(bad)
}

fn window(cfg: &DeploySpec) -> Result<FlexibleTimeWindow, DeployError> {
    let b = match cfg.flexible_window {
        None => FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off),
        Some(w) => FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Flexible)
            .maximum_window_in_minutes((w.as_secs() / 60) as i32),
    };
    b.build().map_err(|e| DeployError::Invalid(e.to_string()))
}

pub(crate) struct Deployer {
    client: aws_sdk_scheduler::Client,
    pub(crate) calls: CallCounter,
}

impl Deployer {
    pub(crate) fn new(sdk: &aws_types::SdkConfig) -> Self {
        let calls = CallCounter::default();
        Deployer { client: crate::aws::client!(aws_sdk_scheduler, sdk, calls), calls }
    }

    /// Whether the group exists; refuses a group stackdrill does not own.
    async fn group(&self, name: &str) -> Result<bool, DeployError> {
        let g = match self.client.get_schedule_group().name(name).send().await {
            Ok(g) => g,
            Err(e) => {
                let e = classify("scheduler:GetScheduleGroup", &e);
                return if e.kind == Kind::NotFound { Ok(false) } else { Err(e.into()) };
            }
        };
        let arn = g.arn().unwrap_or_default();
        let tags = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| classify("scheduler:ListTagsForResource", &e))?;
        let ours = tags.tags().iter().any(|t| t.key() == TAG_MANAGED && t.value() == "true");
        if ours { Ok(true) } else { Err(DeployError::ForeignGroup(name.into())) }
    }

    /// Reads the group's schedules, then creates, updates and deletes (unless `dry_run`) what differs.
    pub(crate) async fn deploy(
        &self,
        cfg: &DeploySpec,
        want: &[Desired],
        dry_run: bool,
    ) -> Result<Vec<Change>, DeployError> {
        let live = self.live_schedules(cfg, dry_run).await?;
        let mut changes = changes(want, &live);
        if dry_run {
            return Ok(changes);
        }
        for c in &mut changes {
            let res = match c.action {
                "create" | "update" => {
                    let Some(d) = want.iter().find(|d| d.name == c.schedule) else { continue };
                    self.put(cfg, d, c.action == "create").await
                }
                "delete" => self
                    .client
                    .delete_schedule()
                    .group_name(&cfg.group)
                    .name(&c.schedule)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify("scheduler:DeleteSchedule", &e).into()),
                _ => continue,
            };
            match res {
                Ok(()) => c.done = true,
                Err(e) => c.error = Some(e.to_string()),
            }
        }
        Ok(changes)
    }

    /// The group's schedules as they are (name, shape); a missing group is created unless `dry_run`.
    async fn live_schedules(
        &self,
        cfg: &DeploySpec,
        dry_run: bool,
    ) -> Result<Vec<(String, serde_json::Value)>, DeployError> {
        let exists = self.group(&cfg.group).await?;
        let mut live = Vec::new();
        if exists {
            let mut pages = self.client.list_schedules().group_name(&cfg.group).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("scheduler:ListSchedules", &e))?;
                for s in page.schedules() {
                    let name = s.name().unwrap_or_default();
                    let g = self
                        .client
                        .get_schedule()
                        .group_name(&cfg.group)
                        .name(name)
                        .send()
                        .await
                        .map_err(|e| classify("scheduler:GetSchedule", &e))?;
                    live.push((name.to_string(), live_shape(&g)));
                }
            }
        } else if !dry_run {
            self.client
                .create_schedule_group()
                .name(&cfg.group)
                .tags(
                    Tag::builder()
                        .key(TAG_MANAGED)
                        .value("true")
                        .build()
                        .map_err(|e| DeployError::Invalid(e.to_string()))?,
                )
                .tags(
                    Tag::builder()
                        .key("stackdrill:purpose")
                        .value("drill-schedules")
                        .build()
                        .map_err(|e| DeployError::Invalid(e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| classify("scheduler:CreateScheduleGroup", &e))?;
        }
        Ok(live)
    }

    async fn put(&self, cfg: &DeploySpec, d: &Desired, create: bool) -> Result<(), DeployError> {
        let start = d.start.map(|t| aws_smithy_types::DateTime::from_secs(t.timestamp()));
        let (expr, tz, desc) = (
            d.shape["expression"].as_str().unwrap_or_default(),
            d.shape["timezone"].as_str().unwrap_or("UTC"),
            d.shape["description"].as_str().unwrap_or_default(),
        );
        // CreateSchedule and UpdateSchedule take the same whole definition.
        macro_rules! send {
            ($op:ident, $action:literal) => {
                self.client
                    .$op()
                    .group_name(&cfg.group)
                    .name(&d.name)
                    .schedule_expression(expr)
                    .schedule_expression_timezone(tz)
                    .description(desc)
                    .state(ScheduleState::Enabled)
                    .flexible_time_window(window(cfg)?)
                    .set_start_date(start)
                    .target(target(d, cfg)?)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify($action, &e).into())
            };
        }
        if create {
            send!(create_schedule, "scheduler:CreateSchedule")
        } else {
            send!(update_schedule, "scheduler:UpdateSchedule")
        }
    }
}

/// What to do per schedule: create what is missing, update what differs, delete ours whose drill lost its
/// schedule, refuse a schedule of the same name that is not ours.
fn changes(want: &[Desired], live: &[(String, serde_json::Value)]) -> Vec<Change> {
    let mut changes = Vec::new();
    for d in want {
        let expression = d.shape["expression"].as_str().map(str::to_string);
        let timezone = d.shape["timezone"].as_str().map(str::to_string);
        let found = live.iter().find(|(n, _)| *n == d.name).map(|(_, v)| v);
        let (action, details) = match found {
            None => ("create", vec![]),
            Some(l) if !is_ours(l) => (
                "refused",
                vec!["a schedule of this name exists that stackdrill did not create (its description lacks the stackdrill mark)".to_string()],
            ),
            Some(l) => {
                let diff = differences(l, &d.shape);
                if diff.is_empty() { ("unchanged", diff) } else { ("update", diff) }
            }
        };
        changes.push(Change {
            action,
            schedule: d.name.clone(),
            expression,
            timezone,
            details,
            done: false,
            error: None,
        });
    }
    for (name, l) in live {
        if want.iter().any(|d| d.name == *name) {
            continue;
        }
        if is_ours(l) {
            changes.push(Change {
                action: "delete",
                schedule: name.clone(),
                expression: l["expression"].as_str().map(str::to_string),
                timezone: l["timezone"].as_str().map(str::to_string),
                details: vec!["its drill no longer has a schedule (or was removed)".into()],
                done: false,
                error: None,
            });
        }
    }
    changes
}

fn is_ours(live: &Value) -> bool {
    live["description"].as_str().is_some_and(|d| d.starts_with(MARK))
}

#[cfg(test)]
mod tests {

    use super::*;

    const DEPLOY: &str = "role-arn: arn:aws:iam::123456789012:role/sched\necs:\n  \
        cluster: arn:aws:ecs:ap-southeast-1:123456789012:cluster/drills\n  \
        task-definition: arn:aws:ecs:ap-southeast-1:123456789012:task-definition/stackdrill-drill\n  \
        subnets: [subnet-1]\nargs: [--reports, s3://evidence/prod]\n";

    fn load(extra: &str) -> Result<DeploySpec, Vec<crate::config::ConfigError>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schedule.yaml");
        std::fs::write(&path, format!("{DEPLOY}{extra}")).unwrap();
        crate::config::load_deploy(&path)
    }

    /// `backups:` adds one schedule, `backups-check`, whose task runs `backups check --file FILE` with the
    /// deploy file's `args`, through the same group, role, task and network as the drills.
    #[test]
    fn a_backups_entry_schedules_backups_check_like_a_drill() {
        let cfg =
            load("backups: { cron: \"0 5 * * *\", timezone: Asia/Singapore, file: /etc/stackdrill/backups.yaml }\n")
                .unwrap_or_else(|e| panic!("{e:?}"));
        let want = desired(&[], &cfg, chrono::Utc::now()).unwrap();
        assert_eq!(want.len(), 1);
        let d = &want[0];
        assert_eq!(d.name, "backups-check");
        assert_eq!(
            d.shape["input"]["containerOverrides"][0]["command"],
            json!(["backups", "check", "--file", "/etc/stackdrill/backups.yaml", "--reports", "s3://evidence/prod"])
        );
        assert_eq!(d.shape["timezone"], "Asia/Singapore");
        assert_eq!(d.shape["expression"], "cron(0 5 * * ? *)");
        assert_eq!(d.shape["role"], "arn:aws:iam::123456789012:role/sched");
        assert!(is_ours(&d.shape), "{:#}", d.shape);
        // Without `backups:` there is none; a bad cron is named by its key.
        assert!(desired(&[], &load("").unwrap(), chrono::Utc::now()).unwrap().is_empty());
        let errs = load("backups: { cron: \"every day\" }\n").unwrap_err();
        assert!(errs.iter().any(|e| e.key == "backups.cron"), "{errs:?}");
    }
}
