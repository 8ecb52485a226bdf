//! The `aws-backup` provider against mocked AWS Backup and RDS APIs (moto has no restore jobs): a job that
//! fails, one that never finishes, one that completes and is verified against a real PostgreSQL, and
//! throttled or failing describes that the SDK retries.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_backup::operation::describe_restore_job::DescribeRestoreJobOutput;
use aws_sdk_backup::operation::list_recovery_points_by_backup_vault::ListRecoveryPointsByBackupVaultOutput;
use aws_sdk_backup::operation::put_restore_validation_result::PutRestoreValidationResultOutput;
use aws_sdk_backup::operation::start_restore_job::StartRestoreJobOutput;
use aws_sdk_backup::types::{RecoveryPointByBackupVault, RecoveryPointStatus, RestoreJobStatus};
use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
use aws_sdk_rds::types::{DbInstance, Endpoint as RdsEndpoint, Tag};
use aws_smithy_mocks::mock;
use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use chrono::Utc;

use super::AwsBackup;
use crate::aws::mocked;
use crate::aws::{AwsSettings, CallCounter};
use crate::config::{DrillSpec, RestoreSpec, parse_drill};
use crate::drill::events::EventSink;
use crate::drill::restore::aws_scratch::RunInfo;
use crate::drill::runner::RunOptions;
use crate::drill::verify::testdb::TestDb;
use crate::report::model::{PhaseStatus, TeardownStatus};

const RUN: &str = "feedbeef0001";
const SCRATCH: &str = "sd-vault-drill-feedbe";
const ARN: &str = "arn:aws:rds:ap-southeast-1:111122223333:db:sd-vault-drill-feedbe";
const SOURCE_ARN: &str = "arn:aws:rds:ap-southeast-1:111122223333:db:prod-db";

fn spec(connect: &str, teardown: &str) -> DrillSpec {
    let yaml = format!(
        "name: vault-drill\n\
         restore:\n  aws-backup:\n\
         \x20   vault: production-vault\n\
         \x20   resource-arn: arn:aws:rds:ap-southeast-1:111122223333:db:prod-db\n\
         \x20   iam-role-arn: arn:aws:iam::111122223333:role/restore\n\
         \x20   subnet-group: drills-isolated\n\
         \x20   security-groups: [sg-0123456789abcdef0]\n\
         \x20   database: rst\n\
         \x20   sslmode: disable\n\
         \x20   {connect}\n\
         target: latest\n\
         objectives: {{ rto: 10m, rpo: 30d }}\n\
         verify:\n  - sql: {{ name: restored, query: select 1, expect: {{ equals: \"1\" }} }}\n\
         \x20 - freshness: {{ table: ledger, column: at, max-lag: 30d }}\n\
         timeouts: {{ restore: 3s, teardown: {teardown} }}\n"
    );
    parse_drill(&yaml, Path::new("vault-drill.yaml")).unwrap_or_else(|e| panic!("{e:?}"))
}

fn points() -> ListRecoveryPointsByBackupVaultOutput {
    let day = aws_smithy_types::DateTime::from_secs(Utc::now().timestamp() - 86_400);
    ListRecoveryPointsByBackupVaultOutput::builder()
        .recovery_points(
            RecoveryPointByBackupVault::builder()
                .recovery_point_arn("arn:aws:backup:ap-southeast-1:111122223333:recovery-point:continuous:db-prod-1")
                .status(RecoveryPointStatus::Completed)
                .is_encrypted(true)
                .creation_date(day)
                .completion_date(day)
                .build(),
        )
        .recovery_points(
            // Not usable: unencrypted.
            RecoveryPointByBackupVault::builder()
                .recovery_point_arn("arn:aws:rds:ap-southeast-1:111122223333:snapshot:awsbackup:job-plain")
                .status(RecoveryPointStatus::Completed)
                .is_encrypted(false)
                .creation_date(day)
                .build(),
        )
        .build()
}

/// What AWS Backup recorded for the point (GetRecoveryPointRestoreMetadata): the source's settings.
fn recorded_metadata() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_backup::Client::get_recovery_point_restore_metadata).then_output(|| {
        aws_sdk_backup::operation::get_recovery_point_restore_metadata::GetRecoveryPointRestoreMetadataOutput::builder()
            .restore_metadata("Engine", "postgres")
            .restore_metadata("DBInstanceIdentifier", "prod-db")
            .restore_metadata("DBInstanceClass", "db.m6g.large")
            .restore_metadata("MultiAZ", "true")
            .restore_metadata("AvailabilityZone", "ap-southeast-1a")
            .build()
    })
}

fn job(status: RestoreJobStatus, created: Option<&str>) -> DescribeRestoreJobOutput {
    DescribeRestoreJobOutput::builder()
        .restore_job_id("job-1")
        .status(status)
        .status_message("insufficient capacity in ap-southeast-1a")
        .set_created_resource_arn(created.map(str::to_string))
        .build()
}

fn scratch_instance(port: u16) -> DbInstance {
    let tags =
        crate::drill::restore::aws_scratch::scratch_tags("vault-drill", RUN, Utc::now() + chrono::TimeDelta::hours(1));
    DbInstance::builder()
        .db_instance_identifier(SCRATCH)
        .db_instance_status("available")
        .master_username("postgres")
        .publicly_accessible(false)
        .endpoint(RdsEndpoint::builder().address("sd.example.internal").port(i32::from(port)).build())
        .set_tag_list(Some(tags))
        .build()
}

fn provider(spec: &DrillSpec, backup: aws_sdk_backup::Client, rds: aws_sdk_rds::Client) -> AwsBackup {
    let RestoreSpec::AwsBackup(b) = &spec.restore else { panic!("the drill above is an aws-backup drill") };
    let info = RunInfo {
        calls: CallCounter::default(),
        region: "ap-southeast-1".into(),
        drill: spec.name.clone(),
        run: RUN.into(),
        database: "rst".into(),
        events: EventSink::new(|_| {}),
        expires_at: Utc::now() + chrono::TimeDelta::hours(1),
    };
    AwsBackup::new(b, backup, rds, info, spec.timeouts.teardown)
}

/// A run's options and the directory store its report goes to.
struct Opts {
    run: RunOptions,
    dir: std::path::PathBuf,
}

fn opts(dir: &Path) -> Opts {
    let run = RunOptions::new("test", &AwsSettings::default());
    Opts { run, dir: dir.to_path_buf() }
}

/// A finished drill as the fleet stores it: the report, and where it was written.
struct Outcome {
    report: crate::report::Report,
    written: Result<crate::report::Written, crate::report::StoreError>,
}

/// Runs the drill with `provider` and writes its report into the test's store, as the fleet would.
async fn run_with<P: crate::drill::restore::RestoreProvider>(
    spec: &crate::config::DrillSpec,
    o: &Opts,
    run_id: &str,
    provider: &mut P,
) -> Result<Outcome, crate::drill::DrillError> {
    let mut report = crate::drill::runner::run_with(spec, &o.run, run_id, provider).await?;
    let store = crate::report::ReportStore::Dir(o.dir.clone());
    let written = store.write(&mut report, None, &AwsSettings::default()).await;
    Ok(Outcome { report, written })
}

/// A wire-level RDS error (modeled errors injected by the mocks trip a debug assertion in the runtime).
fn not_found() -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(404).unwrap(),
        SdkBody::from(
            "<ErrorResponse><Error><Type>Sender</Type><Code>DBInstanceNotFound</Code><Message>gone</Message></Error>\
             <RequestId>r</RequestId></ErrorResponse>",
        ),
    )
}

fn throttled() -> HttpResponse {
    let mut r = HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(r#"{"message":"slow down"}"#));
    r.headers_mut().insert("x-amzn-errortype", "ThrottlingException");
    r.headers_mut().insert("content-type", "application/json");
    r
}

#[tokio::test]
async fn a_failed_restore_job_fails_the_drill_and_still_reports() {
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_backup_vault).then_output(points);
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .then_output(|| StartRestoreJobOutput::builder().restore_job_id("job-1").build());
    let describe = mock!(aws_sdk_backup::Client::describe_restore_job)
        .sequence()
        .output(|| job(RestoreJobStatus::Running, None))
        .output(|| job(RestoreJobStatus::Failed, None))
        .build();
    let put = mock!(aws_sdk_backup::Client::put_restore_validation_result)
        .then_output(|| PutRestoreValidationResultOutput::builder().build());
    let meta = recorded_metadata();
    let backup = mocked!(aws_sdk_backup, &[&list, &meta, &start, &describe, &put]);
    let gone = mock!(aws_sdk_rds::Client::describe_db_instances).then_http_response(not_found);
    let rds = mocked!(aws_sdk_rds, &[&gone]);

    let dir = tempfile::tempdir().unwrap();
    let spec = spec("connect: { host: 127.0.0.1, port: 1 }", "10s");
    let mut p = provider(&spec, backup, rds);
    let out = run_with(&spec, &opts(dir.path()), RUN, &mut p).await.unwrap();
    let r = &out.report;
    assert_eq!(r.result, crate::report::model::Verdict::Failed);
    assert!(r.reason.as_deref().unwrap().contains("ended FAILED: insufficient capacity"), "{:?}", r.reason);
    assert_eq!(r.teardown.status, TeardownStatus::NothingToDo, "{:?}", r.teardown);
    assert!(out.written.is_ok());
    assert_eq!(put.num_calls(), 0, "no data was verified, so no validation result is sent");
    // The unencrypted point was never a candidate; the continuous one was restored to the latest time.
    assert!(r.source.backup.as_ref().unwrap().location.contains(":continuous:"));
}

#[tokio::test]
async fn a_restore_job_that_never_finishes_times_out_tears_down_and_reports() {
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_backup_vault).then_output(points);
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .then_output(|| StartRestoreJobOutput::builder().restore_job_id("job-1").build());
    let describe =
        mock!(aws_sdk_backup::Client::describe_restore_job).then_output(|| job(RestoreJobStatus::Running, None));
    let meta = recorded_metadata();
    let backup = mocked!(aws_sdk_backup, &[&list, &meta, &start, &describe]);
    let gone = mock!(aws_sdk_rds::Client::describe_db_instances).then_http_response(not_found);
    let rds = mocked!(aws_sdk_rds, &[&gone]);

    let dir = tempfile::tempdir().unwrap();
    let spec = spec("connect: { host: 127.0.0.1, port: 1 }", "8s");
    let mut p = provider(&spec, backup, rds);
    let out = run_with(&spec, &opts(dir.path()), RUN, &mut p).await.unwrap();
    let r = &out.report;
    assert_eq!(r.result, crate::report::model::Verdict::Error, "{:?}", r.reason);
    let restore = r.phases.iter().find(|p| p.name == "restore").unwrap();
    assert_eq!(restore.status, PhaseStatus::Failed);
    assert!(restore.detail.as_deref().unwrap().contains("did not finish within 3s"), "{restore:?}");
    assert_eq!(r.teardown.status, TeardownStatus::Failed);
    assert!(r.teardown.detail.contains("had not finished") && r.teardown.detail.contains(SCRATCH), "{:?}", r.teardown);
    assert!(out.written.is_ok());
}

#[tokio::test]
async fn a_completed_job_is_tagged_verified_validated_and_deleted_with_retries_on_throttling() {
    let db = TestDb::start().await;
    db.rst
        .batch_execute("create table ledger (at timestamptz); insert into ledger values (now() - interval '1 hour')")
        .await
        .unwrap();
    let socket = db.cluster.dir.display().to_string();
    let port = db.cluster.port;

    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_backup_vault).then_output(points);
    let metadata = Arc::new(Mutex::new(None));
    let seen = metadata.clone();
    // An RDS restore job needs what AWS Backup recorded for the point (`Engine` among it): a request
    // without it matches no rule here, as AWS would refuse it.
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .match_requests(move |req| {
            *seen.lock().unwrap() = req.metadata().cloned();
            req.metadata().is_some_and(|m| m.get("Engine").map(String::as_str) == Some("postgres"))
        })
        .then_output(|| StartRestoreJobOutput::builder().restore_job_id("job-1").build());
    // A throttled describe and a 503 are retried by the SDK's standard retry policy.
    let describe = mock!(aws_sdk_backup::Client::describe_restore_job)
        .sequence()
        .http_response(throttled)
        .http_status(503, None)
        .output(|| job(RestoreJobStatus::Completed, Some(ARN)))
        .build();
    let verdict = Arc::new(Mutex::new(None));
    let v = verdict.clone();
    let put = mock!(aws_sdk_backup::Client::put_restore_validation_result)
        .match_requests(move |req| {
            *v.lock().unwrap() = req.validation_status().map(|s| s.as_str().to_string());
            true
        })
        .then_output(|| PutRestoreValidationResultOutput::builder().build());
    fn retry(c: aws_sdk_backup::config::Builder) -> aws_sdk_backup::config::Builder {
        c.retry_config(crate::aws::retry_config().with_initial_backoff(Duration::from_millis(10)))
    }
    let meta = recorded_metadata();
    let backup = mocked!(aws_sdk_backup, &[&list, &meta, &start, &describe, &put], retry);

    let tag = mock!(aws_sdk_rds::Client::add_tags_to_resource)
        .match_requests(|req| {
            req.resource_name() == Some(ARN)
                && req.tags().iter().any(|t: &Tag| t.key() == Some("stackdrill:run") && t.value() == Some(RUN))
        })
        .then_output(|| AddTagsToResourceOutput::builder().build());
    let describe_db = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .output(move || DescribeDbInstancesOutput::builder().db_instances(scratch_instance(port)).build())
        .times(3)
        .http_response(not_found)
        .build();
    let modify = mock!(aws_sdk_rds::Client::modify_db_instance)
        .match_requests(|req| req.db_instance_identifier() == Some(SCRATCH) && req.master_user_password().is_some())
        .then_output(|| ModifyDbInstanceOutput::builder().build());
    let delete = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|req| req.db_instance_identifier() == Some(SCRATCH) && req.skip_final_snapshot() == Some(true))
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    // The source still exists: its parameter group is copied, made inert, and deleted at teardown.
    // RDS restores a continuous point only up to the source's LatestRestorableTime (minutes behind now).
    let restorable = Utc::now() - chrono::TimeDelta::minutes(7);
    let source = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|req| req.db_instance_identifier() == Some(SOURCE_ARN))
        .then_output(move || {
            let group =
                aws_sdk_rds::types::DbParameterGroupStatus::builder().db_parameter_group_name("prod-params").build();
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("prod-db")
                        .db_parameter_groups(group)
                        .latest_restorable_time(crate::drill::restore::aws_scratch::to_smithy(restorable))
                        .build(),
                )
                .build()
        });
    let copy = mock!(aws_sdk_rds::Client::copy_db_parameter_group)
        .match_requests(|req| {
            req.source_db_parameter_group_identifier() == Some("prod-params")
                && req.target_db_parameter_group_identifier() == Some(SCRATCH)
                && req.tags().iter().any(|t: &Tag| t.key() == Some("stackdrill:run") && t.value() == Some(RUN))
        })
        .then_output(|| aws_sdk_rds::operation::copy_db_parameter_group::CopyDbParameterGroupOutput::builder().build());
    let params = mock!(aws_sdk_rds::Client::describe_db_parameters).then_output(|| {
        aws_sdk_rds::operation::describe_db_parameters::DescribeDbParametersOutput::builder()
            .parameters(
                aws_sdk_rds::types::Parameter::builder()
                    .parameter_name("shared_preload_libraries")
                    .parameter_value("pg_stat_statements,pg_cron")
                    .build(),
            )
            .build()
    });
    let inert = mock!(aws_sdk_rds::Client::modify_db_parameter_group)
        .match_requests(|req| {
            let set = |k: &str, v: &str| {
                req.parameters().iter().any(|p| p.parameter_name() == Some(k) && p.parameter_value() == Some(v))
            };
            req.db_parameter_group_name() == Some(SCRATCH)
                && set("max_logical_replication_workers", "0")
                && set("shared_preload_libraries", "pg_stat_statements")
        })
        .then_output(|| {
            aws_sdk_rds::operation::modify_db_parameter_group::ModifyDbParameterGroupOutput::builder().build()
        });
    let group_arn = "arn:aws:rds:ap-southeast-1:111122223333:pg:sd-vault-drill-feedbe";
    let groups = mock!(aws_sdk_rds::Client::describe_db_parameter_groups).then_output(move || {
        aws_sdk_rds::operation::describe_db_parameter_groups::DescribeDbParameterGroupsOutput::builder()
            .db_parameter_groups(
                aws_sdk_rds::types::DbParameterGroup::builder()
                    .db_parameter_group_name(SCRATCH)
                    .db_parameter_group_arn(group_arn)
                    .build(),
            )
            .build()
    });
    let group_tags = mock!(aws_sdk_rds::Client::list_tags_for_resource)
        .match_requests(move |req| req.resource_name() == Some(group_arn))
        .then_output(|| {
            let tags = crate::drill::restore::aws_scratch::scratch_tags(
                "vault-drill",
                RUN,
                Utc::now() + chrono::TimeDelta::hours(1),
            );
            aws_sdk_rds::operation::list_tags_for_resource::ListTagsForResourceOutput::builder()
                .set_tag_list(Some(tags))
                .build()
        });
    let drop_group = mock!(aws_sdk_rds::Client::delete_db_parameter_group)
        .match_requests(|req| req.db_parameter_group_name() == Some(SCRATCH))
        .then_output(|| {
            aws_sdk_rds::operation::delete_db_parameter_group::DeleteDbParameterGroupOutput::builder().build()
        });
    let rds = mocked!(
        aws_sdk_rds,
        &[&tag, &source, &describe_db, &modify, &delete, &copy, &params, &inert, &groups, &group_tags, &drop_group]
    );

    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&format!("connect: {{ host: \"{socket}\", port: {port} }}"), "10s");
    let mut p = provider(&spec, backup, rds);
    let out = run_with(&spec, &opts(dir.path()), RUN, &mut p).await.unwrap();
    let r = &out.report;
    assert_eq!(r.result, crate::report::model::Verdict::Passed, "{:?} {:?}", r.reason, r.checks);
    assert_eq!(describe.num_calls(), 3, "throttling and 503 were retried");
    assert_eq!(tag.num_calls(), 1, "the created instance was tagged as this run's scratch");
    assert_eq!(modify.num_calls(), 1);
    assert_eq!(delete.num_calls(), 1);
    assert_eq!(r.teardown.status, TeardownStatus::Done);
    assert_eq!((copy.num_calls(), inert.num_calls(), drop_group.num_calls()), (1, 1, 1), "{:?}", r.teardown);
    assert!(r.neutralised.iter().any(|n| n.contains("pg_cron not loaded")), "{:?}", r.neutralised);
    assert_eq!(verdict.lock().unwrap().as_deref(), Some("SUCCESSFUL"));
    let said = r.source.details.get("validation-result").map(String::as_str).unwrap_or_default();
    assert!(said.starts_with("SUCCESSFUL, accepted by AWS Backup for job job-1"), "{said}");
    assert_eq!(r.measured.rpo_basis, "the newest row a freshness check found");
    let m = metadata.lock().unwrap().clone().unwrap();
    assert_eq!(m.get("DBInstanceIdentifier").map(String::as_str), Some(SCRATCH));
    assert_eq!(m.get("PubliclyAccessible").map(String::as_str), Some("false"));
    assert_eq!(m.get("DBSubnetGroupName").map(String::as_str), Some("drills-isolated"));
    assert_eq!(m.get("UseLatestRestorableTime").map(String::as_str), Some("true"));
    assert_eq!(m.get("VpcSecurityGroupIds").map(String::as_str), Some("[\"sg-0123456789abcdef0\"]"));
    assert_eq!(m.get("DBParameterGroupName").map(String::as_str), Some(SCRATCH));
    let window = r.target.window.as_ref().unwrap();
    assert!(
        (window.latest - restorable).num_milliseconds().abs() < 1000,
        "window ends {} not at {restorable}",
        window.latest
    );
    // The recorded metadata is the base; the drill's isolation overrides it.
    assert_eq!(m.get("Engine").map(String::as_str), Some("postgres"));
    assert_eq!(m.get("DBInstanceClass").map(String::as_str), Some("db.m6g.large"));
    assert_eq!(m.get("MultiAZ").map(String::as_str), Some("false"));
    assert!(!m.contains_key("AvailabilityZone"), "{m:?}");
}

/// A continuous recovery point created before `within`'s cutoff still covers every instant since it up to
/// now (issue 29 item 9): it is kept (from the cutoff on), not dropped for its creation date; and it reaches
/// back at most its retention: the window starts at max(created, now − DeleteAfterDays, cutoff).
#[tokio::test]
async fn a_continuous_point_older_than_within_is_kept_and_reaches_back_only_its_retention() {
    use aws_sdk_backup::types::Lifecycle;
    let created = aws_smithy_types::DateTime::from_secs(Utc::now().timestamp() - 60 * 86_400);
    let list = mock!(aws_sdk_backup::Client::list_recovery_points_by_backup_vault).then_output(move || {
        ListRecoveryPointsByBackupVaultOutput::builder()
            .recovery_points(
                RecoveryPointByBackupVault::builder()
                    .recovery_point_arn(
                        "arn:aws:backup:ap-southeast-1:111122223333:recovery-point:continuous:db-prod-1",
                    )
                    .status(RecoveryPointStatus::Completed)
                    .is_encrypted(true)
                    .creation_date(created)
                    .completion_date(created)
                    .lifecycle(Lifecycle::builder().delete_after_days(10).build())
                    .build(),
            )
            .build()
    });
    let described =
        mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| DescribeDbInstancesOutput::builder().build());
    let backup = mocked!(aws_sdk_backup, &[&list]);
    let rds = mocked!(aws_sdk_rds, &[&described]);
    let within = |w: &str| {
        let yaml = spec("connect: { host: 127.0.0.1, port: 1 }", "10s");
        let RestoreSpec::AwsBackup(mut b) = yaml.restore.clone() else {
            panic!("the drill above is an aws-backup drill")
        };
        b.within = humantime::parse_duration(w).ok();
        DrillSpec { restore: RestoreSpec::AwsBackup(b), ..yaml }
    };
    use crate::drill::restore::RestoreProvider;
    let now = Utc::now();
    let mut p = provider(&within("3d"), backup.clone(), rds.clone());
    let w = p.window().await.expect("the continuous point is kept");
    let off = |t: chrono::DateTime<Utc>, want: chrono::DateTime<Utc>| (t - want).num_seconds().abs() < 120;
    assert!(off(w.earliest, now - chrono::TimeDelta::days(3)), "{:?}", w.earliest);
    let mut p = provider(&within("30d"), backup, rds);
    let w = p.window().await.unwrap();
    assert!(off(w.earliest, now - chrono::TimeDelta::days(10)), "retention, not creation: {:?}", w.earliest);
}

// ---------------------------------------------------------------- restore testing plans (issue 29 item 13)

const PLAN: &str = "nightly_rds";
const PLAN_ARN: &str = "arn:aws:backup:ap-southeast-1:111122223333:restore-testing-plan:nightly_rds-8f3c2a1b";
const TESTED: &str = "awsbackup-restore-test-5d1e";
const TESTED_ARN: &str = "arn:aws:rds:ap-southeast-1:111122223333:db:awsbackup-restore-test-5d1e";

fn plan_spec(connect: &str, expect: &str) -> DrillSpec {
    let yaml = format!(
        "name: plan-drill\n\
         restore:\n  aws-backup:\n\
         \x20   restore-testing-plan: {PLAN}\n\
         \x20   resource-arn: {SOURCE_ARN}\n\
         \x20   database: rst\n\
         \x20   sslmode: disable\n\
         \x20   {connect}\n\
         target: latest\n\
         objectives: {{ rto: 2h, rpo: 30d }}\n\
         verify:\n  - sql: {{ name: restored, query: select 1, expect: {{ equals: \"{expect}\" }} }}\n\
         \x20 - freshness: {{ table: ledger, column: at, max-lag: 30d }}\n\
         source: {{ host: db.internal, user: postgres, dbname: app, password-env: PW }}\n\
         timeouts: {{ restore: 3s, teardown: 10s }}\n"
    );
    let mut spec = parse_drill(&yaml, Path::new("plan-drill.yaml")).unwrap_or_else(|e| panic!("{e:?}"));
    // The runner resolves the source's login for the provider (`with_login`); the tests hand it over
    // themselves, and no source is read.
    spec.source = None;
    spec
}

/// GetRestoreTestingPlan as the API reference documents it: the plan's ARN is its name and an id.
fn the_plan() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_backup::Client::get_restore_testing_plan)
        .match_requests(|req| req.restore_testing_plan_name() == Some(PLAN))
        .then_output(|| {
            aws_sdk_backup::operation::get_restore_testing_plan::GetRestoreTestingPlanOutput::builder()
                .restore_testing_plan(
                    aws_sdk_backup::types::RestoreTestingPlanForGet::builder()
                        .creation_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                        .restore_testing_plan_arn(PLAN_ARN)
                        .restore_testing_plan_name(PLAN)
                        .schedule_expression("cron(0 1 ? * * *)")
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

/// ListRestoreJobs by the plan's ARN and status COMPLETED: `jobs` (one page), only for that filter.
fn plan_jobs(jobs: fn() -> Vec<aws_sdk_backup::types::RestoreJobsListMember>) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_backup::Client::list_restore_jobs)
        .match_requests(|req| {
            req.by_restore_testing_plan_arn() == Some(PLAN_ARN) && req.by_status() == Some(&RestoreJobStatus::Completed)
        })
        .then_output(move || {
            aws_sdk_backup::operation::list_restore_jobs::ListRestoreJobsOutput::builder()
                .set_restore_jobs(Some(jobs()))
                .build()
        })
}

fn plan_job(id: &str, created: &str, hours_ago: i64, validated: bool) -> aws_sdk_backup::types::RestoreJobsListMember {
    plan_job_of(SOURCE_ARN, id, created, hours_ago, validated)
}

fn plan_job_of(
    source: &str,
    id: &str,
    created: &str,
    hours_ago: i64,
    validated: bool,
) -> aws_sdk_backup::types::RestoreJobsListMember {
    use aws_sdk_backup::types::{RestoreJobCreator, RestoreValidationStatus};
    let at = |h: i64| aws_smithy_types::DateTime::from_secs(Utc::now().timestamp() - h * 3600);
    aws_sdk_backup::types::RestoreJobsListMember::builder()
        .restore_job_id(id)
        .status(RestoreJobStatus::Completed)
        .recovery_point_arn("arn:aws:rds:ap-southeast-1:111122223333:snapshot:awsbackup:job-9a8b")
        .recovery_point_creation_date(at(hours_ago + 20))
        .source_resource_arn(source)
        .resource_type("RDS")
        .created_resource_arn(created)
        .creation_date(at(hours_ago + 1))
        .completion_date(at(hours_ago))
        .created_by(RestoreJobCreator::builder().restore_testing_plan_arn(PLAN_ARN).build())
        .set_validation_status(validated.then_some(RestoreValidationStatus::Successful))
        .build()
}

/// The newest job of `resource-arn` without a validation result (a newer one already validated, and a newer
/// one of another team's database in the same plan, are left alone).
fn plan_jobs_list() -> Vec<aws_sdk_backup::types::RestoreJobsListMember> {
    vec![
        plan_job_of(
            "arn:aws:rds:ap-southeast-1:111122223333:db:other-team-db",
            "job-other-team",
            "arn:aws:rds:ap-southeast-1:111122223333:db:awsbackup-restore-test-7777",
            0,
            false,
        ),
        plan_job("job-old", "arn:aws:rds:ap-southeast-1:111122223333:db:awsbackup-restore-test-0001", 30, false),
        plan_job("job-test", TESTED_ARN, 2, false),
        plan_job("job-done", "arn:aws:rds:ap-southeast-1:111122223333:db:awsbackup-restore-test-9999", 1, true),
    ]
}

/// The instance the plan restored, as DescribeDBInstances gives it: AWS Backup's, without stackdrill's tags.
fn tested_instance(port: u16) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(TESTED)
        .db_instance_status("available")
        .master_username("postgres")
        .publicly_accessible(false)
        .endpoint(RdsEndpoint::builder().address("restored.example.internal").port(i32::from(port)).build())
        .build()
}

/// Runs a restore-testing drill whose SQL check expects `expect` (`1` passes): the verdict AWS Backup was
/// sent for which job, the report, and how many calls would have changed anything.
async fn validate_plan_job(expect: &str) -> (Option<(String, String, String)>, Outcome, usize) {
    let db = TestDb::start().await;
    db.rst
        .batch_execute("create table ledger (at timestamptz); insert into ledger values (now() - interval '1 hour')")
        .await
        .unwrap();
    let socket = db.cluster.dir.display().to_string();
    let port = db.cluster.port;
    let verdict = Arc::new(Mutex::new(None));
    let v = verdict.clone();
    let put = mock!(aws_sdk_backup::Client::put_restore_validation_result)
        .match_requests(move |req| {
            *v.lock().unwrap() = Some((
                req.restore_job_id().unwrap_or_default().to_string(),
                req.validation_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                req.validation_status_message().unwrap_or_default().to_string(),
            ));
            true
        })
        .then_output(|| PutRestoreValidationResultOutput::builder().build());
    let (plan, jobs) = (the_plan(), plan_jobs(plan_jobs_list));
    let start = mock!(aws_sdk_backup::Client::start_restore_job)
        .then_output(|| StartRestoreJobOutput::builder().restore_job_id("never").build());
    let backup = mocked!(aws_sdk_backup, &[&plan, &jobs, &put, &start]);
    let described = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|req| req.db_instance_identifier() == Some(TESTED))
        .then_output(move || DescribeDbInstancesOutput::builder().db_instances(tested_instance(port)).build());
    // Any of these would change or delete what AWS Backup owns.
    let modify =
        mock!(aws_sdk_rds::Client::modify_db_instance).then_output(|| ModifyDbInstanceOutput::builder().build());
    let delete =
        mock!(aws_sdk_rds::Client::delete_db_instance).then_output(|| DeleteDbInstanceOutput::builder().build());
    let tag =
        mock!(aws_sdk_rds::Client::add_tags_to_resource).then_output(|| AddTagsToResourceOutput::builder().build());
    let rds = mocked!(aws_sdk_rds, &[&described, &modify, &delete, &tag]);

    let dir = tempfile::tempdir().unwrap();
    let spec = plan_spec(&format!("connect: {{ host: \"{socket}\", port: {port} }}"), expect);
    let mut p = provider(&spec, backup, rds).with_login("postgres".into(), None);
    let out = run_with(&spec, &opts(dir.path()), RUN, &mut p).await.unwrap();
    let changed = modify.num_calls() + delete.num_calls() + tag.num_calls() + start.num_calls();
    let sent = verdict.lock().unwrap().clone();
    (sent, out, changed)
}

/// A restore testing plan's newest unvalidated job is verified and validated SUCCESSFUL, recorded in the
/// signed chain, and the instance AWS Backup restored is left to AWS Backup (issue 29 item 13).
#[tokio::test]
async fn a_restore_testing_job_is_verified_validated_successful_and_left_to_aws_backup() {
    let (sent, out, changed) = validate_plan_job("1").await;
    let r = &out.report;
    assert_eq!(r.result, crate::report::model::Verdict::Passed, "{:?} {:?}", r.reason, r.checks);
    let (job, status, message) = sent.expect("a validation result was sent");
    assert_eq!((job.as_str(), status.as_str()), ("job-test", "SUCCESSFUL"), "{message}");
    assert_eq!(changed, 0, "nothing was restored, changed, tagged or deleted");
    assert_eq!(r.teardown.status, TeardownStatus::NothingToDo, "{:?}", r.teardown);
    assert!(
        r.teardown.detail.contains("owned by AWS Backup restore testing, deleted by it after its validation window")
            && r.teardown.detail.contains(TESTED),
        "{:?}",
        r.teardown
    );
    let d = &r.source.details;
    assert_eq!(d.get("restore-testing-plan").map(String::as_str), Some(PLAN));
    assert_eq!(d.get("restore-job").map(String::as_str), Some("job-test"));
    assert_eq!(d.get("restored-instance").map(String::as_str), Some(TESTED));
    let said = d.get("validation-result").map(String::as_str).unwrap_or_default();
    assert!(said.starts_with("SUCCESSFUL, accepted by AWS Backup for job job-test"), "{said}");
    assert!(r.source.backup.as_ref().unwrap().location.contains("snapshot:awsbackup:job-9a8b"));
    assert!(out.written.is_ok(), "the report is signed and chained like any drill's: {:?}", out.written.err());
    // The RTO is AWS Backup's restore (the job's creation to its completion: an hour), not the drill's clock.
    assert_eq!(r.measured.rto_seconds, Some(3600.0), "{:?}", r.measured);
}

/// A failing check sends FAILED with its reason, and still deletes nothing.
#[tokio::test]
async fn a_failing_check_validates_the_restore_testing_job_failed() {
    let (sent, out, changed) = validate_plan_job("2").await;
    let r = &out.report;
    assert_eq!(r.result, crate::report::model::Verdict::Failed, "{:?}", r.reason);
    let (job, status, message) = sent.expect("a validation result was sent");
    assert_eq!((job.as_str(), status.as_str()), ("job-test", "FAILED"));
    assert!(message.starts_with("stackdrill drill failed: "), "{message}");
    assert_eq!(changed, 0);
    assert_eq!(r.teardown.status, TeardownStatus::NothingToDo, "{:?}", r.teardown);
    assert!(out.written.is_ok());
}

/// No completed, unvalidated job of the plan: the drill could not run, and the error names the plan.
#[tokio::test]
async fn a_plan_without_a_job_to_validate_could_not_run_naming_the_plan() {
    fn validated_only() -> Vec<aws_sdk_backup::types::RestoreJobsListMember> {
        vec![plan_job("job-done", TESTED_ARN, 1, true)]
    }
    let (plan, jobs) = (the_plan(), plan_jobs(validated_only));
    let put = mock!(aws_sdk_backup::Client::put_restore_validation_result)
        .then_output(|| PutRestoreValidationResultOutput::builder().build());
    let backup = mocked!(aws_sdk_backup, &[&plan, &jobs, &put]);
    let delete =
        mock!(aws_sdk_rds::Client::delete_db_instance).then_output(|| DeleteDbInstanceOutput::builder().build());
    let rds = mocked!(aws_sdk_rds, &[&delete]);
    let dir = tempfile::tempdir().unwrap();
    let spec = plan_spec("connect: { host: 127.0.0.1, port: 1 }", "1");
    let mut p = provider(&spec, backup, rds);
    let err = match run_with(&spec, &opts(dir.path()), RUN, &mut p).await {
        Ok(o) => panic!("the drill ran: {:?} {:?}", o.report.result, o.report.reason),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("restore testing plan `nightly_rds` has no completed RDS restore job"), "{err}");
    assert_eq!((put.num_calls(), delete.num_calls()), (0, 0));
}
