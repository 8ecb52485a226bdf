//! Elastic Beanstalk: the application, and a load-balanced environment across the stack's subnets with
//! enhanced health, managed platform updates and an HTTPS listener.

use aws_sdk_elasticbeanstalk::types::{ConfigurationOptionSetting, EnvironmentStatus, Tag};
use serde_json::{Value, json};

use super::{Ctx, MissingProperty, StepError, str_prop};
use crate::aws::{AwsError, Backoff, classify};
use crate::stack::live::{Clients, Live};
use crate::stack::model::{Resource, ResourceKind};

pub(crate) async fn read(c: &Clients, apps: &[&Resource], envs: &[&Resource]) -> Result<Vec<Live>, AwsError> {
    let mut out = Vec::new();
    if !apps.is_empty() {
        let got =
            c.eb.describe_applications()
                .set_application_names(Some(apps.iter().map(|a| a.name.clone()).collect()))
                .send()
                .await
                .map_err(|e| classify("elasticbeanstalk:DescribeApplications", &e))?;
        for a in got.applications() {
            out.push(Live::new(
                ResourceKind::BeanstalkApplication,
                a.application_name().unwrap_or_default(),
                a.application_arn().unwrap_or_default(),
            ));
        }
    }
    if envs.is_empty() {
        return Ok(out);
    }
    let got =
        c.eb.describe_environments()
            .set_environment_names(Some(envs.iter().map(|e| e.name.clone()).collect()))
            .include_deleted(false)
            .send()
            .await
            .map_err(|e| classify("elasticbeanstalk:DescribeEnvironments", &e))?;
    for e in got.environments() {
        if matches!(e.status(), Some(EnvironmentStatus::Terminated | EnvironmentStatus::Terminating)) {
            continue;
        }
        let (Some(name), Some(app)) = (e.environment_name(), e.application_name()) else { continue };
        let settings =
            c.eb.describe_configuration_settings()
                .application_name(app)
                .environment_name(name)
                .send()
                .await
                .map_err(|e| classify("elasticbeanstalk:DescribeConfigurationSettings", &e))?;
        let opts: Vec<&ConfigurationOptionSetting> =
            settings.configuration_settings().iter().flat_map(|s| s.option_settings()).collect();
        let get = |ns: &str, name: &str| {
            opts.iter()
                .find(|o| o.namespace() == Some(ns) && o.option_name() == Some(name))
                .and_then(|o| o.value())
                .unwrap_or_default()
                .to_string()
        };
        let mut subnets: Vec<String> = get("aws:ec2:vpc", "Subnets")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        subnets.sort();
        let instance_type = match get("aws:ec2:instances", "InstanceTypes") {
            t if t.is_empty() => get("aws:autoscaling:launchconfiguration", "InstanceType"),
            t => t.split(',').next().unwrap_or_default().trim().to_string(),
        };
        out.push(
            Live::new(ResourceKind::BeanstalkEnvironment, name, e.environment_arn().unwrap_or_default())
                .prop("application", app)
                .prop("solution-stack", e.solution_stack_name())
                .prop("instance-type", instance_type)
                .prop(
                    "instances",
                    format!("{}..{}", get("aws:autoscaling:asg", "MinSize"), get("aws:autoscaling:asg", "MaxSize")),
                )
                .prop("subnets", subnets)
                .prop("vpc", get("aws:ec2:vpc", "VPCId"))
                .prop("health", get("aws:elasticbeanstalk:healthreporting:system", "SystemType"))
                .prop("managed-updates", get("aws:elasticbeanstalk:managedactions", "ManagedActionsEnabled") == "true")
                .prop("instance-profile", get("aws:autoscaling:launchconfiguration", "IamInstanceProfile"))
                .prop(
                    "service-role",
                    Some(get("aws:elasticbeanstalk:environment", "ServiceRole")).filter(|r| !r.is_empty()),
                )
                .prop(
                    "https",
                    json!({
                        "certificate-arn": get("aws:elbv2:listener:443", "SSLCertificateArns"),
                        "ssl-policy": get("aws:elbv2:listener:443", "SSLPolicy"),
                    }),
                ),
        );
    }
    Ok(out)
}

fn opt(ns: &str, name: &str, value: impl Into<String>) -> ConfigurationOptionSetting {
    ConfigurationOptionSetting::builder().namespace(ns).option_name(name).value(value).build()
}

/// The option settings that express the declared environment.
pub(crate) fn option_settings(r: &Resource) -> Result<Vec<ConfigurationOptionSetting>, MissingProperty> {
    let instances = str_prop(r, "instances")?;
    let (min, max) = instances.split_once("..").unwrap_or(("2", "2"));
    let subnets: Vec<&str> = r
        .props
        .get("subnets")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let https = r.props.get("https").cloned().unwrap_or(Value::Null);
    let mut out = vec![
        opt("aws:autoscaling:launchconfiguration", "IamInstanceProfile", str_prop(r, "instance-profile")?),
        opt("aws:elasticbeanstalk:environment", "EnvironmentType", "LoadBalanced"),
        opt("aws:elasticbeanstalk:environment", "LoadBalancerType", "application"),
        opt("aws:ec2:instances", "InstanceTypes", str_prop(r, "instance-type")?),
        opt("aws:autoscaling:asg", "MinSize", min),
        opt("aws:autoscaling:asg", "MaxSize", max),
        opt("aws:ec2:vpc", "VPCId", str_prop(r, "vpc")?),
        opt("aws:ec2:vpc", "Subnets", subnets.join(",")),
        opt("aws:ec2:vpc", "ELBSubnets", subnets.join(",")),
        opt("aws:elasticbeanstalk:healthreporting:system", "SystemType", str_prop(r, "health")?),
        opt(
            "aws:elasticbeanstalk:managedactions",
            "ManagedActionsEnabled",
            r.props.get("managed-updates").and_then(Value::as_bool).unwrap_or(false).to_string(),
        ),
        opt("aws:elasticbeanstalk:managedactions", "PreferredStartTime", "Sun:18:00"),
        opt("aws:elasticbeanstalk:managedactions:platformupdate", "UpdateLevel", "minor"),
        opt("aws:elbv2:listener:443", "Protocol", "HTTPS"),
        opt("aws:elbv2:listener:443", "SSLCertificateArns", https["certificate-arn"].as_str().unwrap_or_default()),
        opt("aws:elbv2:listener:443", "SSLPolicy", https["ssl-policy"].as_str().unwrap_or_default()),
    ];
    if let Some(role) = r.props.get("service-role").and_then(Value::as_str) {
        out.push(opt("aws:elasticbeanstalk:environment", "ServiceRole", role));
    }
    Ok(out)
}

pub(crate) fn eb_tags(stack: &str) -> Vec<Tag> {
    super::tags(stack).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub(crate) async fn create_application(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), AwsError> {
    c.eb.create_application()
        .application_name(&r.name)
        .set_tags(Some(eb_tags(&ctx.stack)))
        .send()
        .await
        .map_err(|e| classify("elasticbeanstalk:CreateApplication", &e))?;
    Ok(())
}

pub(crate) async fn delete_application(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.eb.delete_application()
        .application_name(&live.name)
        .send()
        .await
        .map_err(|e| classify("elasticbeanstalk:DeleteApplication", &e))?;
    Ok(())
}

pub(crate) async fn create_environment(c: &Clients, r: &Resource, ctx: &Ctx) -> Result<(), StepError> {
    c.eb.create_environment()
        .application_name(str_prop(r, "application")?)
        .environment_name(&r.name)
        .solution_stack_name(str_prop(r, "solution-stack")?)
        .set_option_settings(Some(option_settings(r)?))
        .set_tags(Some(eb_tags(&ctx.stack)))
        .send()
        .await
        .map_err(|e| classify("elasticbeanstalk:CreateEnvironment", &e))?;
    Ok(wait_ready(c, &r.name).await?)
}

pub(crate) async fn update_environment(c: &Clients, r: &Resource, live: &Live) -> Result<(), StepError> {
    let mut req = c.eb.update_environment().environment_name(&r.name).set_option_settings(Some(option_settings(r)?));
    if r.props.get("solution-stack") != live.props.get("solution-stack") {
        req = req.solution_stack_name(str_prop(r, "solution-stack")?);
    }
    req.send().await.map_err(|e| classify("elasticbeanstalk:UpdateEnvironment", &e))?;
    Ok(wait_ready(c, &r.name).await?)
}

pub(crate) async fn delete_environment(c: &Clients, live: &Live) -> Result<(), AwsError> {
    c.eb.terminate_environment()
        .environment_name(&live.name)
        .send()
        .await
        .map_err(|e| classify("elasticbeanstalk:TerminateEnvironment", &e))?;
    Ok(())
}

/// How long an environment may take to launch or update before apply gives up on it.
const READY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(45 * 60);

/// Waits until the environment is `Ready` (not Launching or Updating), within [`READY_DEADLINE`]. It fails
/// at once when the environment terminates, or settles Ready with Red health: the error carries Beanstalk's
/// own ERROR events since the wait began.
async fn wait_ready(c: &Clients, name: &str) -> Result<(), AwsError> {
    wait_ready_within(c, name, READY_DEADLINE, Backoff::describe()).await
}

async fn wait_ready_within(
    c: &Clients,
    name: &str,
    deadline: std::time::Duration,
    mut backoff: Backoff,
) -> Result<(), AwsError> {
    let started = std::time::Instant::now();
    let since = aws_smithy_types::DateTime::from_secs(chrono::Utc::now().timestamp() - 60);
    let fail = |message: String| AwsError {
        action: "elasticbeanstalk:DescribeEnvironments".into(),
        kind: crate::aws::Kind::Other,
        code: None,
        message,
    };
    loop {
        let got =
            c.eb.describe_environments()
                .environment_names(name)
                // Beanstalk includes environments terminated in the last hour by default: one of the same name
                // would end the wait at once.
                .include_deleted(false)
                .send()
                .await
                .map_err(|e| classify("elasticbeanstalk:DescribeEnvironments", &e))?;
        let env = got.environments().first();
        let red = env.and_then(|e| e.health()).is_some_and(|h| h.as_str() == "Red");
        match env.and_then(|e| e.status()) {
            Some(EnvironmentStatus::Ready) if !red => return Ok(()),
            None => return Ok(()),
            Some(s @ (EnvironmentStatus::Terminated | EnvironmentStatus::Terminating)) => {
                let events = error_events(c, name, since).await;
                return Err(fail(format!("environment `{name}` is {}{events}", s.as_str())));
            }
            Some(EnvironmentStatus::Ready) => {
                let events = error_events(c, name, since).await;
                return Err(fail(format!("environment `{name}` is Ready with Red health{events}")));
            }
            Some(s) if started.elapsed() > deadline => {
                let events = error_events(c, name, since).await;
                return Err(fail(format!(
                    "environment `{name}` is still {} after {}{events}",
                    s.as_str(),
                    humantime::format_duration(deadline)
                )));
            }
            _ => backoff.wait().await,
        }
    }
}

/// Beanstalk's ERROR events for `name` since `since`, newest first, as `: first; second` (at most three).
async fn error_events(c: &Clients, name: &str, since: aws_smithy_types::DateTime) -> String {
    let got =
        c.eb.describe_events()
            .environment_name(name)
            .severity(aws_sdk_elasticbeanstalk::types::EventSeverity::Error)
            .start_time(since)
            .max_records(3)
            .send()
            .await;
    match got {
        Ok(out) => {
            let msgs: Vec<&str> = out.events().iter().filter_map(|e| e.message()).collect();
            if msgs.is_empty() { String::new() } else { format!(": {}", msgs.join("; ")) }
        }
        Err(e) => format!(" (its events could not be read: {})", classify("elasticbeanstalk:DescribeEvents", &e)),
    }
}

/// The environment's load balancer ARN, for Shield Advanced.
pub(crate) async fn load_balancer(c: &Clients, env: &str) -> Result<Option<String>, AwsError> {
    let got =
        c.eb.describe_environment_resources()
            .environment_name(env)
            .send()
            .await
            .map_err(|e| classify("elasticbeanstalk:DescribeEnvironmentResources", &e))?;
    Ok(got
        .environment_resources()
        .and_then(|r| r.load_balancers().first())
        .and_then(|l| l.name())
        .filter(|n| n.starts_with("arn:"))
        .map(str::to_string))
}
