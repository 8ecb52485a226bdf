//! The parts of the production stack moto cannot serve, against aws-smithy-mocks: the Elastic Beanstalk
//! environment's option settings (DescribeConfigurationSettings, UpdateEnvironment) and the AWS Backup
//! selection (List/Get/CreateBackupSelection). The live shape each reads must equal what the file
//! declares, or every plan would show phantom changes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_sdk_backup::operation::create_backup_selection::CreateBackupSelectionOutput;
use aws_sdk_backup::operation::get_backup_plan::GetBackupPlanOutput;
use aws_sdk_backup::operation::get_backup_selection::GetBackupSelectionOutput;
use aws_sdk_backup::operation::list_backup_plans::ListBackupPlansOutput;
use aws_sdk_backup::operation::list_backup_selections::ListBackupSelectionsOutput;
use aws_sdk_backup::types::{
    BackupPlan, BackupPlansListMember, BackupRule, BackupSelection, BackupSelectionsListMember, Condition,
    ConditionType, Lifecycle,
};
use aws_sdk_elasticbeanstalk::operation::describe_applications::DescribeApplicationsOutput;
use aws_sdk_elasticbeanstalk::operation::describe_configuration_settings::DescribeConfigurationSettingsOutput;
use aws_sdk_elasticbeanstalk::operation::describe_environments::DescribeEnvironmentsOutput;
use aws_sdk_elasticbeanstalk::operation::update_environment::UpdateEnvironmentOutput;
use aws_sdk_elasticbeanstalk::types::{
    ApplicationDescription, ConfigurationOptionSetting, ConfigurationSettingsDescription, EnvironmentDescription,
    EnvironmentStatus,
};
use aws_smithy_mocks::mock;

use super::{Ctx, backup, beanstalk};
use crate::aws::mocked;
use crate::stack::live::{Clients, Ids, Live};
use crate::stack::model::{Resource, ResourceKind, desired};

fn production() -> Vec<Resource> {
    let spec = crate::config::load_stack(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/stacks/production.yaml")))
        .unwrap_or_else(|e| panic!("{e:?}"));
    desired(&spec)
}

fn find<'a>(rs: &'a [Resource], kind: &str) -> &'a Resource {
    rs.iter().find(|r| r.kind.as_str() == kind).unwrap_or_else(|| panic!("production declares a {kind}"))
}

/// Clients that must not be called, except the ones a test replaces.
fn clients() -> Clients {
    let sdk = aws_types::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("ap-southeast-1"))
        .build();
    Clients::new(&sdk)
}

fn same_props(r: &Resource, l: &Live) {
    for (k, v) in &r.props {
        assert_eq!(l.props.get(*k), Some(v), "{}.{}: live {:?} vs declared {v}", r.kind, k, l.props.get(*k));
    }
}

fn settings(min: &str, health: &str, subnets: &str) -> ConfigurationSettingsDescription {
    let o = |ns: &str, n: &str, v: &str| {
        ConfigurationOptionSetting::builder().namespace(ns).option_name(n).value(v).build()
    };
    ConfigurationSettingsDescription::builder()
        .option_settings(o("aws:ec2:instances", "InstanceTypes", "m7g.large"))
        .option_settings(o("aws:autoscaling:asg", "MinSize", min))
        .option_settings(o("aws:autoscaling:asg", "MaxSize", "8"))
        .option_settings(o("aws:ec2:vpc", "VPCId", "vpc-0a1b2c3d4e5f60718"))
        .option_settings(o("aws:ec2:vpc", "Subnets", subnets))
        .option_settings(o("aws:elasticbeanstalk:healthreporting:system", "SystemType", health))
        .option_settings(o("aws:elasticbeanstalk:managedactions", "ManagedActionsEnabled", "true"))
        .option_settings(o(
            "aws:elbv2:listener:443",
            "SSLCertificateArns",
            "arn:aws:acm:ap-southeast-1:111122223333:certificate/00000000-0000-0000-0000-000000000000",
        ))
        .option_settings(o("aws:elbv2:listener:443", "SSLPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06"))
        .option_settings(o(
            "aws:autoscaling:launchconfiguration",
            "IamInstanceProfile",
            "aws-elasticbeanstalk-ec2-role",
        ))
        .option_settings(o("aws:elasticbeanstalk:environment", "ServiceRole", "aws-elasticbeanstalk-service-role"))
        .build()
}

fn eb_rules(min: &'static str, health: &'static str) -> Vec<aws_smithy_mocks::Rule> {
    let apps = mock!(aws_sdk_elasticbeanstalk::Client::describe_applications).then_output(|| {
        DescribeApplicationsOutput::builder()
            .applications(
                ApplicationDescription::builder()
                    .application_name("production")
                    .application_arn("arn:aws:elasticbeanstalk:ap-southeast-1:111122223333:application/production")
                    .build(),
            )
            .build()
    });
    let envs = mock!(aws_sdk_elasticbeanstalk::Client::describe_environments).then_output(|| {
        DescribeEnvironmentsOutput::builder()
            .environments(
                EnvironmentDescription::builder()
                    .environment_name("production-web")
                    .application_name("production")
                    .environment_arn(
                        "arn:aws:elasticbeanstalk:ap-southeast-1:111122223333:environment/production/production-web",
                    )
                    .solution_stack_name("64bit Amazon Linux 2023 v4.3.0 running Docker")
                    .status(EnvironmentStatus::Ready)
                    .build(),
            )
            .build()
    });
    let settings = mock!(aws_sdk_elasticbeanstalk::Client::describe_configuration_settings).then_output(move || {
        DescribeConfigurationSettingsOutput::builder()
            // AWS lists subnets in its own order: the plan must not call that a change.
            .configuration_settings(settings(
                min,
                health,
                "subnet-0a1b2c3d4e5f60003,subnet-0a1b2c3d4e5f60001,subnet-0a1b2c3d4e5f60002",
            ))
            .build()
    });
    vec![apps, envs, settings]
}

#[tokio::test]
async fn a_beanstalk_environment_reads_back_as_declared_and_updates_its_option_settings() {
    let rs = production();
    let (app, env) = (find(&rs, "beanstalk-application"), find(&rs, "beanstalk-environment"));

    let rules = eb_rules("2", "enhanced");
    let mut c = clients();
    c.eb = mocked!(aws_sdk_elasticbeanstalk, &rules.iter().collect::<Vec<_>>());
    let live = beanstalk::read(&c, &[app], &[env]).await.unwrap();
    assert_eq!(live.len(), 2);
    same_props(env, live.iter().find(|l| l.kind == ResourceKind::BeanstalkEnvironment).unwrap());

    // Someone lowered the floor to one instance and switched to basic health: two changes, in place.
    let rules = eb_rules("1", "basic");
    let sent: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen = sent.clone();
    let update = mock!(aws_sdk_elasticbeanstalk::Client::update_environment)
        .match_requests(move |r| {
            let mut s = seen.lock().unwrap();
            for o in r.option_settings() {
                s.push((o.option_name().unwrap_or_default().into(), o.value().unwrap_or_default().into()));
            }
            true
        })
        .then_output(|| UpdateEnvironmentOutput::builder().build());
    let mut all: Vec<&aws_smithy_mocks::Rule> = rules.iter().collect();
    all.push(&update);
    let mut c = clients();
    c.eb = mocked!(aws_sdk_elasticbeanstalk, &all);
    let live = beanstalk::read(&c, &[app], &[env]).await.unwrap();
    let l = live.iter().find(|l| l.kind == ResourceKind::BeanstalkEnvironment).unwrap();
    let mut state = crate::stack::live::LiveState::default();
    state.found.insert(env.address(), Live { owner: crate::stack::live::Owner::This, ..l.clone() });
    let steps = crate::stack::plan::diff("production", std::slice::from_ref(env), &state);
    assert_eq!(steps[0].action, crate::stack::plan::Action::Update);
    let changed: Vec<&str> = steps[0].changes.iter().map(|c| c.property.as_str()).collect();
    assert_eq!(changed, ["health", "instances"]);

    beanstalk::update_environment(&c, env, l).await.unwrap();
    let sent = sent.lock().unwrap();
    assert!(sent.contains(&("MinSize".into(), "2".into())), "{sent:?}");
    assert!(sent.contains(&("SystemType".into(), "enhanced".into())), "{sent:?}");
    assert!(sent.contains(&("SSLPolicy".into(), "ELBSecurityPolicy-TLS13-1-2-2021-06".into())), "{sent:?}");
    assert_eq!(update.num_calls(), 1);
}

#[tokio::test]
async fn a_backup_selection_reads_back_as_declared_and_is_created_on_its_plan() {
    let rs = production();
    let (plan, sel) = (find(&rs, "backup-plan"), find(&rs, "backup-selection"));
    const PLAN_ID: &str = "7f0c6a1e-0000-4000-8000-000000000001";
    let list = mock!(aws_sdk_backup::Client::list_backup_plans).then_output(|| {
        ListBackupPlansOutput::builder()
            .backup_plans_list(
                BackupPlansListMember::builder()
                    .backup_plan_name("production-plan")
                    .backup_plan_id(PLAN_ID)
                    .backup_plan_arn(format!("arn:aws:backup:ap-southeast-1:111122223333:backup-plan:{PLAN_ID}"))
                    .build(),
            )
            .build()
    });
    let rule = |name: &str, schedule: Option<&str>, continuous: bool| {
        BackupRule::builder()
            .rule_name(name)
            .target_backup_vault_name("production-vault")
            .set_schedule_expression(schedule.map(str::to_string))
            .enable_continuous_backup(continuous)
            .lifecycle(Lifecycle::builder().delete_after_days(35).build())
            .build()
            .unwrap()
    };
    let get = mock!(aws_sdk_backup::Client::get_backup_plan).then_output(move || {
        GetBackupPlanOutput::builder()
            .backup_plan(
                BackupPlan::builder()
                    .backup_plan_name("production-plan")
                    .rules(rule("daily", Some("cron(0 18 * * ? *)"), false))
                    // AWS fills in a schedule for a continuous rule declared without one.
                    .rules(rule("continuous", Some("cron(0 5 ? * * *)"), true))
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let list_sel = mock!(aws_sdk_backup::Client::list_backup_selections).then_output(|| {
        ListBackupSelectionsOutput::builder()
            .backup_selections_list(
                BackupSelectionsListMember::builder()
                    .selection_name("production-selection")
                    .selection_id("sel-1")
                    .build(),
            )
            .build()
    });
    let get_sel = mock!(aws_sdk_backup::Client::get_backup_selection).then_output(|| {
        GetBackupSelectionOutput::builder()
            .backup_selection(
                BackupSelection::builder()
                    .selection_name("production-selection")
                    .iam_role_arn("arn:aws:iam::111122223333:role/production-backup")
                    .list_of_tags(
                        Condition::builder()
                            .condition_type(ConditionType::Stringequals)
                            .condition_key("backup")
                            .condition_value("production")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let create = mock!(aws_sdk_backup::Client::create_backup_selection)
        .match_requests(|r| {
            let s = r.backup_selection().unwrap();
            let t = &s.list_of_tags()[0];
            r.backup_plan_id() == Some(PLAN_ID)
                && s.selection_name() == "production-selection"
                && t.condition_key() == "backup"
                && t.condition_value() == "production"
        })
        .then_output(|| CreateBackupSelectionOutput::builder().selection_id("sel-2").build());
    let mut c = clients();
    c.backup = mocked!(aws_sdk_backup, &[&list, &get, &list_sel, &get_sel, &create]);
    let live = backup::read(&c, &[], &[plan], &[sel], &Ids::default()).await.unwrap();
    same_props(plan, live.iter().find(|l| l.kind == ResourceKind::BackupPlan).unwrap());
    same_props(sel, live.iter().find(|l| l.kind == ResourceKind::BackupSelection).unwrap());

    let mut ids = Ids::default();
    ids.plan_id.insert("production-plan".into(), PLAN_ID.into());
    let ctx = Ctx { stack: "production".into(), ids: Mutex::new(ids) };
    backup::create_selection(&c, sel, &ctx).await.unwrap();
    assert_eq!(create.num_calls(), 1, "the selection went to the plan's id with the declared tag");
}

/// The backup selection selects by tag, so the stack's database carries that tag: an instance without it
/// gets it in place (AddTagsToResource, no ModifyDBInstance), and the live read reports it.
#[tokio::test]
async fn the_database_carries_the_tag_its_backup_selection_selects_by() {
    use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::types::{DbInstance, Tag};
    let rs = production();
    let db = find(&rs, "rds-instance");
    assert_eq!(db.props.get("backup-tag").and_then(|v| v.as_str()), Some("backup=production"));
    const ARN: &str = "arn:aws:rds:ap-southeast-1:111122223333:db:production-db";
    let mut live = Live::new(ResourceKind::RdsInstance, "production-db", ARN);
    for (k, v) in &db.props {
        if *k != "backup-tag" {
            live.props.insert(k.to_string(), v.clone());
        }
    }
    let tag = mock!(aws_sdk_rds::Client::add_tags_to_resource)
        .match_requests(|r| {
            r.resource_name() == Some(ARN)
                && r.tags().iter().any(|t: &Tag| t.key() == Some("backup") && t.value() == Some("production"))
        })
        .then_output(|| AddTagsToResourceOutput::builder().build());
    let mut c = clients();
    c.rds = mocked!(aws_sdk_rds, &[&tag]);
    super::rds::update_instance(&c, db, &live).await.unwrap();
    assert_eq!(tag.num_calls(), 1);

    // Read back: the instance's tags give the prop the plan compares.
    let described = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("production-db")
                    .db_instance_arn(ARN)
                    .tag_list(Tag::builder().key("backup").value("production").build())
                    .build(),
            )
            .build()
    });
    c.rds = mocked!(aws_sdk_rds, &[&described]);
    let read = super::rds::read(&c, &[], &[], &[db], &Ids::default()).await.unwrap();
    assert_eq!(read[0].props.get("backup-tag").and_then(|v| v.as_str()), Some("backup=production"));
}

/// ModifyDBParameterGroup takes `immediate` only for a dynamic parameter; a static one (its ApplyType, as
/// DescribeDBParameters reports it) goes `pending-reboot`, or RDS refuses the call.
#[tokio::test]
async fn parameters_apply_immediately_only_when_dynamic() {
    use aws_sdk_rds::operation::describe_db_parameters::DescribeDbParametersOutput;
    use aws_sdk_rds::operation::modify_db_parameter_group::ModifyDbParameterGroupOutput;
    use aws_sdk_rds::types::{ApplyMethod, Parameter};
    let group = Resource::new(ResourceKind::DbParameterGroup, "production-pg15").prop("family", "postgres15").prop(
        "parameters",
        serde_json::json!({ "rds.force_ssl": "1", "shared_preload_libraries": "pg_stat_statements" }),
    );
    let described = mock!(aws_sdk_rds::Client::describe_db_parameters).then_output(|| {
        let p = |n: &str, v: &str, apply: &str| {
            Parameter::builder().parameter_name(n).parameter_value(v).apply_type(apply).build()
        };
        DescribeDbParametersOutput::builder()
            .parameters(p("rds.force_ssl", "1", "dynamic"))
            .parameters(p("shared_preload_libraries", "pg_stat_statements", "static"))
            .build()
    });
    let modify = mock!(aws_sdk_rds::Client::modify_db_parameter_group)
        .match_requests(|r| {
            let method = |n: &str| {
                r.parameters().iter().find(|p| p.parameter_name() == Some(n)).and_then(|p| p.apply_method().cloned())
            };
            method("rds.force_ssl") == Some(ApplyMethod::Immediate)
                && method("shared_preload_libraries") == Some(ApplyMethod::PendingReboot)
        })
        .then_output(|| ModifyDbParameterGroupOutput::builder().build());
    let mut c = clients();
    c.rds = mocked!(aws_sdk_rds, &[&described, &modify]);
    let live =
        Live::new(ResourceKind::DbParameterGroup, "production-pg15", "arn:aws:rds:ap-southeast-1:1:pg:production-pg15")
            .prop("family", "postgres15")
            .prop("parameters", serde_json::json!({}));
    super::rds::update_parameter_group(&c, &group, &live).await.unwrap();
    assert_eq!(modify.num_calls(), 1, "one call, each parameter with its own apply method");
}

/// CreateEnvironment without an instance profile fails on AWS (Beanstalk has no default one any more), so
/// the mock answers only a request that carries it; and an environment that terminates while launching
/// ends the wait at once with Beanstalk's own error events, instead of polling forever.
#[tokio::test]
async fn a_beanstalk_environment_launches_with_its_roles_and_a_failed_launch_says_why() {
    use aws_sdk_elasticbeanstalk::operation::create_environment::CreateEnvironmentOutput;
    use aws_sdk_elasticbeanstalk::operation::describe_events::DescribeEventsOutput;
    use aws_sdk_elasticbeanstalk::types::EventDescription;
    let rs = production();
    let env = find(&rs, "beanstalk-environment");
    let create = mock!(aws_sdk_elasticbeanstalk::Client::create_environment)
        .match_requests(|r| {
            let has = |ns: &str, n: &str, v: &str| {
                r.option_settings()
                    .iter()
                    .any(|o| o.namespace() == Some(ns) && o.option_name() == Some(n) && o.value() == Some(v))
            };
            has("aws:autoscaling:launchconfiguration", "IamInstanceProfile", "aws-elasticbeanstalk-ec2-role")
                && has("aws:elasticbeanstalk:environment", "ServiceRole", "aws-elasticbeanstalk-service-role")
        })
        .then_output(|| CreateEnvironmentOutput::builder().build());
    let status = |s: EnvironmentStatus| {
        DescribeEnvironmentsOutput::builder()
            .environments(EnvironmentDescription::builder().environment_name("production-web").status(s).build())
            .build()
    };
    let describe = mock!(aws_sdk_elasticbeanstalk::Client::describe_environments)
        .sequence()
        .output(move || status(EnvironmentStatus::Launching))
        .output(move || status(EnvironmentStatus::Terminated))
        .build();
    let events = mock!(aws_sdk_elasticbeanstalk::Client::describe_events).then_output(|| {
        DescribeEventsOutput::builder()
            .events(
                EventDescription::builder()
                    .message("Stack named 'awseb-e-x' aborted operation: instance profile not found")
                    .build(),
            )
            .build()
    });
    let mut c = clients();
    c.eb = mocked!(aws_sdk_elasticbeanstalk, &[&create, &describe, &events]);
    let ctx = Ctx { stack: "production".into(), ids: Default::default() };
    let e = super::beanstalk::create_environment(&c, env, &ctx).await.unwrap_err().to_string();
    assert_eq!(create.num_calls(), 1, "CreateEnvironment carried the instance profile and the service role");
    assert!(e.contains("production-web` is Terminated") && e.contains("instance profile not found"), "{e}");
}

/// The wait for Ready asks without deleted environments (issue 29 item 11): Beanstalk lists environments
/// terminated within the last hour unless `IncludeDeleted=false`, and a terminated one of the same name would
/// end the wait at once as a failure (the mock answers only a request that leaves them out with Ready).
#[tokio::test]
async fn the_wait_for_a_beanstalk_environment_leaves_out_terminated_ones_of_the_same_name() {
    use aws_sdk_elasticbeanstalk::operation::create_environment::CreateEnvironmentOutput;
    let rs = production();
    let env = find(&rs, "beanstalk-environment");
    let create = mock!(aws_sdk_elasticbeanstalk::Client::create_environment)
        .then_output(|| CreateEnvironmentOutput::builder().build());
    let status = |s: EnvironmentStatus| {
        DescribeEnvironmentsOutput::builder()
            .environments(EnvironmentDescription::builder().environment_name("production-web").status(s).build())
            .build()
    };
    let live = mock!(aws_sdk_elasticbeanstalk::Client::describe_environments)
        .match_requests(|r| r.include_deleted() == Some(false))
        .then_output(move || status(EnvironmentStatus::Ready));
    let with_deleted = mock!(aws_sdk_elasticbeanstalk::Client::describe_environments)
        .then_output(move || status(EnvironmentStatus::Terminated));
    let mut c = clients();
    c.eb = mocked!(aws_sdk_elasticbeanstalk, &[&create, &live, &with_deleted]);
    let ctx = Ctx { stack: "production".into(), ids: Default::default() };
    super::beanstalk::create_environment(&c, env, &ctx).await.unwrap();
    assert_eq!((live.num_calls(), with_deleted.num_calls()), (1, 0));
}

/// A property the model did not give a resource is an error naming the resource and the key, raised before
/// any AWS call: never an empty string sent in its place (the old `str_prop` read a missing one as `""`).
#[tokio::test]
async fn a_missing_property_is_named_before_any_call_not_read_as_empty() {
    use super::{MissingProperty, StepError, opt_str_prop, str_prop};
    let rs = production();
    let mut db = find(&rs, "rds-instance").clone();
    assert_eq!(str_prop(&db, "instance-class").unwrap(), "db.m6g.large");
    db.props.remove("instance-class");
    let e = str_prop(&db, "instance-class").unwrap_err();
    assert_eq!((e.address.as_str(), e.key.as_str()), ("rds-instance/production-db", "instance-class"));
    assert!(e.to_string().contains("`rds-instance/production-db` has no `instance-class`"), "{e}");
    // Through the dispatch: the clients here are never called (they have no credentials), so an AWS error
    // would mean the request went out with the property missing.
    let ctx = Ctx { stack: "production".into(), ids: Mutex::new(Ids::default()) };
    match super::create(&clients(), &db, &ctx).await {
        Err(StepError::Property(MissingProperty { key, .. })) => assert_eq!(key, "instance-class"),
        other => panic!("expected the missing property, got {other:?}"),
    }
    // An environment without its instance profile: its option settings are refused, not built with "".
    let mut env = find(&rs, "beanstalk-environment").clone();
    env.props.remove("instance-profile");
    assert_eq!(beanstalk::option_settings(&env).unwrap_err().key, "instance-profile");
    // An optional property left out (null in the model) reads as absent.
    let bucket = find(&rs, "s3-bucket");
    assert_eq!(opt_str_prop(bucket, "no-such-property"), None);
}
