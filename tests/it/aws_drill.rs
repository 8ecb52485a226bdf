//! AWS drills against the moto emulator with the real SDK. moto runs no database engine, so the data
//! checks reach a local PostgreSQL through the `connect` override (TLS, as a tunnel user's would).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use aws_sdk_rds::types::Tag;

use crate::harness::{Demo, Scratch, make_ca, stackdrill, text, without_aws_credentials};
use crate::moto::{Moto, param, tags};

const SG: &str = "sg-0123456789abcdef0";

/// An isolated subnet group for scratch databases (the VPC and subnets made with boto3).
pub(crate) async fn subnet_group(moto: &Moto, rds: &aws_sdk_rds::Client) {
    let subnets = moto.python(
        "import boto3\n\
         ec2 = boto3.client('ec2')\n\
         vpc = ec2.create_vpc(CidrBlock='10.9.0.0/16')['Vpc']['VpcId']\n\
         a = ec2.create_subnet(VpcId=vpc, CidrBlock='10.9.1.0/24', AvailabilityZone='ap-southeast-1a')['Subnet']['SubnetId']\n\
         b = ec2.create_subnet(VpcId=vpc, CidrBlock='10.9.2.0/24', AvailabilityZone='ap-southeast-1b')['Subnet']['SubnetId']\n\
         print(a + ',' + b)",
    );
    rds.create_db_subnet_group()
        .db_subnet_group_name("drills-isolated")
        .db_subnet_group_description("no route out; for restore drills")
        .set_subnet_ids(Some(subnets.split(',').map(str::to_string).collect()))
        .send()
        .await
        .unwrap();
}

pub(crate) async fn production_instance(rds: &aws_sdk_rds::Client, id: &str, encrypted: bool) {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .engine_version("15.5")
        .db_instance_class("db.m6g.large")
        .allocated_storage(100)
        .master_username("postgres")
        .master_user_password("production-secret-1")
        .storage_encrypted(encrypted)
        .multi_az(true)
        .backup_retention_period(7)
        .deletion_protection(true)
        .db_subnet_group_name("drills-isolated")
        .tags(Tag::builder().key("env").value("production").build())
        .send()
        .await
        .unwrap();
}

pub(crate) fn drill_file(dir: &Path, name: &str, restore: &str, demo: &Demo, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "name: {name}\n\
         restore:\n{restore}\
         source: {{ host: 127.0.0.1, port: {port}, user: app, dbname: app, password-file: {pw}, sslmode: verify-ca, ca-bundle: {ca} }}\n\
         target: latest\n\
         objectives: {{ rto: 10m, rpo: 1d }}\n\
         verify:\n\
         \x20 - row-count: {{ table: accounts, compare: source }}\n\
         \x20 - freshness: {{ table: credit_transactions, column: created_at, max-lag: 1d }}\n\
         \x20 - schema: {{}}\n\
         \x20 - amcheck: {{}}\n\
         \x20 - sql: {{ name: ledger balances, query: select sum(amount) from credit_transactions, expect: {{ min: 0, max: 0 }} }}\n\
         {extra}",
        port = demo.port,
        pw = demo.dir.join("source.password").display(),
        ca = demo.dir.join("ca.crt").display(),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

pub(crate) fn rds_block(source: &str, port: u16) -> String {
    format!(
        "  aws-rds-instance:\n\
         \x20   source-instance: {source}\n\
         \x20   subnet-group: drills-isolated\n\
         \x20   security-groups: [{SG}]\n\
         \x20   instance-class: db.t4g.medium\n\
         \x20   database: app\n\
         \x20   connect: {{ host: 127.0.0.1, port: {port} }}\n"
    )
}

fn run(moto: &Moto, drill: &Path, reports: &Path, extra: &[&str]) -> Output {
    let mut cmd = stackdrill();
    moto.env(&mut cmd);
    cmd.args(["drill", "run"]).arg(drill).arg("--reports").arg(reports).args(extra);
    cmd.timeout(Duration::from_secs(300)).output().unwrap()
}

/// The newest report (by `finished_at`: two runs in one second get suffixed names that sort earlier).
fn last_report(dir: &Path) -> serde_json::Value {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap())
        .max_by_key(|r| r["finished_at"].as_str().unwrap_or_default().to_string())
        .expect("a report")
}

/// The demo source serving TLS as the scratch stand-in, and moto with the isolated subnet group and an
/// encrypted `prod-db`.
pub(crate) async fn rds_fixture() -> (Demo, Moto, aws_sdk_rds::Client) {
    let demo = Demo::start();
    demo.serve_tls_as_scratch().await;
    let moto = Moto::start();
    let rds = aws_sdk_rds::Client::new(&moto.sdk().await);
    moto.play_master_password(&demo);
    subnet_group(&moto, &rds).await;
    production_instance(&rds, "prod-db", true).await;
    (demo, moto, rds)
}

pub(crate) fn instance_ids(list: &[aws_sdk_rds::types::DbInstance]) -> Vec<String> {
    list.iter().map(|i| i.db_instance_identifier().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_instance_drill_restores_an_isolated_scratch_verifies_it_and_deletes_only_it() {
    let (demo, moto, rds) = rds_fixture().await;
    // Production preloads pg_cron: the scratch must not run its jobs.
    rds.create_db_parameter_group()
        .db_parameter_group_name("prod-params")
        .db_parameter_group_family("postgres15")
        .description("production")
        .send()
        .await
        .unwrap();
    rds.modify_db_parameter_group()
        .db_parameter_group_name("prod-params")
        .parameters(
            aws_sdk_rds::types::Parameter::builder()
                .parameter_name("shared_preload_libraries")
                .parameter_value("pg_stat_statements,pg_cron")
                .apply_method(aws_sdk_rds::types::ApplyMethod::PendingReboot)
                .build(),
        )
        .send()
        .await
        .unwrap();
    rds.modify_db_instance()
        .db_instance_identifier("prod-db")
        .db_parameter_group_name("prod-params")
        .send()
        .await
        .unwrap();
    let tmp = Scratch::new();
    let drill = drill_file(
        tmp.path(),
        "prod-db-pitr",
        &rds_block("prod-db", demo.port),
        &demo,
        "metrics: { cloudwatch: {} }\n",
    );
    let reports = tmp.path().join("reports");

    let before = moto.mark();
    let out = run(&moto, &drill, &reports, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report = last_report(&reports);
    assert_eq!(report["result"], "passed", "{report:#}");
    assert_eq!(report["source"]["provider"], "aws-rds-instance");
    // Every RDS and CloudWatch call the drill made is in the policy `iam policy` gives for it.
    let sent = moto.query_actions_since(before);
    assert!(sent.contains(&"rds:RestoreDBInstanceToPointInTime".to_string()), "{sent:?}");
    let policy = stackdrill().args(["iam", "policy", "--drill"]).arg(&drill).output().unwrap();
    assert!(policy.status.success(), "{}", text(&policy.stderr));
    let policy = text(&policy.stdout);
    let missing: Vec<&String> = sent.iter().filter(|a| !policy.contains(&format!("\"{a}\""))).collect();
    assert!(missing.is_empty(), "the drill called {missing:?}, which `iam policy --drill` does not grant");
    assert_eq!(report["teardown"]["status"], "done", "{report:#}");
    let run_id = report["id"].as_str().unwrap().to_string();
    let scratch = format!("sd-prod-db-pitr-{}", &run_id[..6]);
    assert!(report["source"]["scratch"].as_str().unwrap().contains("sslmode=require"), "{report:#}");

    // What was asked of RDS: an isolated, private, single-AZ scratch tagged as this run's.
    let restores = moto.calls("RestoreDBInstanceToPointInTime");
    assert_eq!(restores.len(), 1);
    let r = &restores[0];
    assert_eq!(param(r, "SourceDBInstanceIdentifier"), Some("prod-db"));
    assert_eq!(param(r, "TargetDBInstanceIdentifier"), Some(scratch.as_str()));
    assert_eq!(param(r, "PubliclyAccessible"), Some("false"));
    assert_eq!(param(r, "MultiAZ"), Some("false"));
    assert_eq!(param(r, "DeletionProtection"), Some("false"));
    assert_eq!(param(r, "DBSubnetGroupName"), Some("drills-isolated"));
    assert_eq!(param(r, "VpcSecurityGroupIds.VpcSecurityGroupId.1"), Some(SG));
    assert_eq!(param(r, "DBInstanceClass"), Some("db.t4g.medium"));
    let t = tags(r);
    for (k, v) in [
        ("stackdrill:managed", "true"),
        ("stackdrill:scratch", "true"),
        ("stackdrill:drill", "prod-db-pitr"),
        ("stackdrill:run", run_id.as_str()),
    ] {
        assert!(t.contains(&(k.to_string(), v.to_string())), "tag {k}={v} missing: {t:?}");
    }
    assert!(t.iter().any(|(k, _)| k == "stackdrill:expires-at"), "{t:?}");

    // It started with an inert, tagged copy of production's parameter group, deleted at teardown.
    assert_eq!(param(r, "DBParameterGroupName"), Some(scratch.as_str()));
    let copies = moto.calls("CopyDBParameterGroup");
    assert_eq!(copies.len(), 1);
    assert_eq!(param(&copies[0], "SourceDBParameterGroupIdentifier"), Some("prod-params"));
    assert!(tags(&copies[0]).contains(&("stackdrill:run".to_string(), run_id.clone())), "{copies:?}");
    let set: Vec<(String, String)> = moto
        .calls("ModifyDBParameterGroup")
        .iter()
        .filter(|c| param(c, "DBParameterGroupName") == Some(scratch.as_str()))
        .flat_map(|c| {
            (1..10)
                .filter_map(|i| {
                    let name = param(c, &format!("Parameters.Parameter.{i}.ParameterName"))?;
                    let value = param(c, &format!("Parameters.Parameter.{i}.ParameterValue")).unwrap_or("");
                    Some((name.to_string(), value.to_string()))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (k, v) in [("max_logical_replication_workers", "0"), ("shared_preload_libraries", "pg_stat_statements")] {
        assert!(set.contains(&(k.to_string(), v.to_string())), "{k}={v} not set: {set:?}");
    }
    let deleted: Vec<_> = moto
        .calls("DeleteDBParameterGroup")
        .iter()
        .filter_map(|c| param(c, "DBParameterGroupName").map(str::to_string))
        .collect();
    assert_eq!(deleted, std::slice::from_ref(&scratch));
    let neutralised = report["neutralised"].to_string();
    assert!(
        neutralised.contains("pg_cron not loaded") && neutralised.contains("max_logical_replication_workers = 0"),
        "{neutralised}"
    );
    assert_eq!(report["source"]["details"]["parameter-group"], scratch.as_str());
    assert_eq!(report["source"]["details"]["security-groups"], SG);

    // Fresh credentials on the scratch only; the password never reaches the report or the output.
    // (The first ModifyDBInstance is this test's own, giving production its parameter group.)
    let modifies: Vec<_> = moto.calls("ModifyDBInstance").into_iter().skip(1).collect();
    assert!(!modifies.is_empty());
    for m in &modifies {
        assert_eq!(param(m, "DBInstanceIdentifier"), Some(scratch.as_str()), "{m:?}");
    }
    let password = param(&modifies[0], "MasterUserPassword").expect("a fresh password").to_string();
    assert!(password.len() >= 24 && password != "production-secret-1");
    for f in std::fs::read_dir(&reports).unwrap().flatten() {
        assert!(!std::fs::read_to_string(f.path()).unwrap().contains(&password), "password in {:?}", f.path());
    }
    assert!(!stdout.contains(&password) && !stderr.contains(&password));

    // Teardown deleted exactly the scratch, without a final snapshot; production is untouched.
    let deletes = moto.calls("DeleteDBInstance");
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(param(&deletes[0], "DBInstanceIdentifier"), Some(scratch.as_str()));
    assert_eq!(param(&deletes[0], "SkipFinalSnapshot"), Some("true"));
    assert_eq!(param(&deletes[0], "DeleteAutomatedBackups"), Some("true"));
    let left = rds.describe_db_instances().send().await.unwrap();
    assert_eq!(instance_ids(left.db_instances()), vec!["prod-db".to_string()]);
    let prod = &left.db_instances()[0];
    assert_eq!(prod.db_instance_status(), Some("available"));
    assert_eq!(prod.deletion_protection(), Some(true));
    assert_eq!(prod.multi_az(), Some(true));

    // The report says what each phase cost in API calls.
    let phase = |name: &str| report["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(phase("restore")["api_calls"]["RestoreDBInstanceToPointInTime"], 1, "{report:#}");
    assert!(phase("teardown")["api_calls"]["DeleteDBInstance"].as_u64() == Some(1), "{report:#}");

    // Drill metrics went to CloudWatch.
    let puts = moto.calls("PutMetricData");
    assert_eq!(puts.len(), 1, "{stderr}");
    assert_eq!(param(&puts[0], "Namespace"), Some("Stackdrill"));
    let names: Vec<&str> =
        puts[0].iter().filter(|(k, _)| k.ends_with(".MetricName")).map(|(_, v)| v.as_str()).collect();
    assert_eq!(names, ["DrillSucceeded", "RestoreSeconds", "RecoveryPointLagSeconds"]);
    assert!(puts[0].iter().any(|(k, v)| k.ends_with(".Value") && v == "prod-db-pitr"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aurora_drill_restores_the_cluster_adds_a_writer_and_tears_both_down() {
    let demo = Demo::start();
    demo.serve_tls_as_scratch().await;
    let moto = Moto::start();
    let rds = aws_sdk_rds::Client::new(&moto.sdk().await);
    moto.play_master_password(&demo);
    subnet_group(&moto, &rds).await;
    // An explicit cluster parameter group, as production has (moto reports `default.aurora8.0` for a
    // cluster without one, a group it does not hold, where AWS names a real default group).
    rds.create_db_cluster_parameter_group()
        .db_cluster_parameter_group_name("prod-aurora-params")
        .db_parameter_group_family("aurora-postgresql15")
        .description("production")
        .send()
        .await
        .unwrap();
    rds.create_db_cluster()
        .db_cluster_identifier("prod-aurora")
        .db_cluster_parameter_group_name("prod-aurora-params")
        .engine("aurora-postgresql")
        .master_username("postgres")
        .master_user_password("production-secret-1")
        .storage_encrypted(true)
        .backup_retention_period(7)
        .db_subnet_group_name("drills-isolated")
        .send()
        .await
        .unwrap();
    let tmp = Scratch::new();
    let block = format!(
        "  aws-aurora-cluster:\n\
         \x20   source-cluster: prod-aurora\n\
         \x20   subnet-group: drills-isolated\n\
         \x20   security-groups: [{SG}]\n\
         \x20   instance-class: db.r6g.large\n\
         \x20   database: app\n\
         \x20   connect: {{ host: 127.0.0.1, port: {} }}\n",
        demo.port
    );
    let drill = drill_file(tmp.path(), "prod-aurora-pitr", &block, &demo, "");
    let reports = tmp.path().join("reports");
    let before = moto.mark();
    let out = run(&moto, &drill, &reports, &[]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let sent = moto.query_actions_since(before);
    let policy = text(&stackdrill().args(["iam", "policy", "--drill"]).arg(&drill).output().unwrap().stdout);
    let missing: Vec<&String> = sent.iter().filter(|a| !policy.contains(&format!("\"{a}\""))).collect();
    assert!(missing.is_empty(), "the Aurora drill called {missing:?}, which `iam policy --drill` does not grant");
    let report = last_report(&reports);
    assert_eq!(report["teardown"]["status"], "done", "{report:#}");
    let scratch = format!("sd-prod-aurora-pitr-{}", &report["id"].as_str().unwrap()[..6]);

    let restores = moto.calls("RestoreDBClusterToPointInTime");
    assert_eq!(restores.len(), 1);
    assert_eq!(param(&restores[0], "SourceDBClusterIdentifier"), Some("prod-aurora"));
    assert_eq!(param(&restores[0], "DBClusterIdentifier"), Some(scratch.as_str()));
    assert_eq!(param(&restores[0], "DBSubnetGroupName"), Some("drills-isolated"));
    assert!(tags(&restores[0]).contains(&("stackdrill:scratch".into(), "true".into())));
    // The cluster started with an inert copy of the source's cluster parameter group, deleted at teardown.
    assert_eq!(param(&restores[0], "DBClusterParameterGroupName"), Some(scratch.as_str()));
    let copies = moto.calls("CopyDBClusterParameterGroup");
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(moto.calls("ModifyDBClusterParameterGroup").iter().any(|c| {
        param(c, "DBClusterParameterGroupName") == Some(scratch.as_str())
            && c.iter().any(|(_, v)| v == "max_logical_replication_workers")
    }));
    let dropped: Vec<_> = moto
        .calls("DeleteDBClusterParameterGroup")
        .iter()
        .map(|c| param(c, "DBClusterParameterGroupName").unwrap().to_string())
        .collect();
    assert_eq!(dropped, std::slice::from_ref(&scratch));
    assert!(report["neutralised"].to_string().contains("scratch cluster parameter group"), "{report:#}");
    let creates = moto.calls("CreateDBInstance");
    assert_eq!(creates.len(), 1);
    assert_eq!(param(&creates[0], "DBClusterIdentifier"), Some(scratch.as_str()));
    assert_eq!(param(&creates[0], "PubliclyAccessible"), Some("false"));
    for m in moto.calls("ModifyDBCluster") {
        assert_eq!(param(&m, "DBClusterIdentifier"), Some(scratch.as_str()));
    }
    let deleted: Vec<_> =
        moto.calls("DeleteDBCluster").iter().map(|c| param(c, "DBClusterIdentifier").unwrap().to_string()).collect();
    assert_eq!(deleted, std::slice::from_ref(&scratch));
    let clusters = rds.describe_db_clusters().send().await.unwrap();
    let ids: Vec<_> = clusters.db_clusters().iter().map(|c| c.db_cluster_identifier().unwrap()).collect();
    assert_eq!(ids, ["prod-aurora"]);
    assert!(rds.describe_db_instances().send().await.unwrap().db_instances().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_an_expired_orphan_and_refuses_an_untagged_lookalike() {
    let moto = Moto::start();
    let rds = aws_sdk_rds::Client::new(&moto.sdk().await);
    subnet_group(&moto, &rds).await;
    let scratch_tags = |run: &str, expires: &str| {
        vec![
            Tag::builder().key("stackdrill:managed").value("true").build(),
            Tag::builder().key("stackdrill:scratch").value("true").build(),
            Tag::builder().key("stackdrill:drill").value("prod-db-pitr").build(),
            Tag::builder().key("stackdrill:run").value(run).build(),
            Tag::builder().key("stackdrill:expires-at").value(expires).build(),
        ]
    };
    for (id, tags) in [
        ("sd-prod-db-pitr-0a0a0a", scratch_tags("0a0a0a0a0a0a", "2026-01-01T00:00:00Z")),
        ("sd-prod-db-pitr-1b1b1b", scratch_tags("1b1b1b1b1b1b", "2999-01-01T00:00:00Z")),
        ("sd-prod-db-pitr-2c2c2c", vec![Tag::builder().key("env").value("production").build()]),
    ] {
        rds.create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t4g.medium")
            .allocated_storage(20)
            .master_username("postgres")
            .master_user_password("whatever-123")
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
    }
    // A crashed run's scratch parameter group, and an `sd-` group that is not stackdrill's.
    for (name, tags) in [
        ("sd-prod-db-pitr-3d3d3d", scratch_tags("3d3d3d3d3d3d", "2026-01-01T00:00:00Z")),
        ("sd-prod-db-pitr-4e4e4e", vec![Tag::builder().key("env").value("production").build()]),
    ] {
        rds.create_db_parameter_group()
            .db_parameter_group_name(name)
            .db_parameter_group_family("postgres15")
            .description("x")
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
    }
    rds.create_db_cluster_parameter_group()
        .db_cluster_parameter_group_name("sd-prod-aurora-pitr-5f5f5f")
        .db_parameter_group_family("aurora-postgresql15")
        .description("x")
        .set_tags(Some(scratch_tags("5f5f5f5f5f5f", "2026-01-01T00:00:00Z")))
        .send()
        .await
        .unwrap();
    let tmp = Scratch::new();
    let drill = tmp.path().join("d.yaml");
    std::fs::write(
        &drill,
        "restore: { aws-rds-instance: { source-instance: prod-db, subnet-group: g, security-groups: [sg-1] } }\n\
         objectives: { rto: 1h, rpo: 1h }\nverify: [ { freshness: { table: t, column: c } } ]\n",
    )
    .unwrap();
    let mut dry = stackdrill();
    moto.env(&mut dry);
    let dry = dry.args(["drill", "cleanup", "--dry-run"]).arg(&drill).output().unwrap();
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("would remove  rds-instance ap-southeast-1/sd-prod-db-pitr-0a0a0a"),
        "{}",
        text(&dry.stdout)
    );
    assert!(moto.calls("DeleteDBInstance").is_empty());

    // A drill role that may not list buckets (this drill restores none) still sweeps its RDS scratch.
    moto.proxy.deny(Some("ListBuckets"));
    let mut cmd = stackdrill();
    moto.env(&mut cmd);
    let out = cmd.args(["drill", "cleanup", "--output", "json"]).arg(&drill).output().unwrap();
    moto.proxy.deny(None);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let swept: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        swept.as_array().unwrap().iter().all(|s| !s["action"].as_str().unwrap().starts_with("failed")),
        "{swept:#}"
    );
    let action = |id: &str| {
        swept
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["resource"].as_str().unwrap().ends_with(id))
            .map(|s| s["action"].as_str().unwrap().to_string())
    };
    assert_eq!(action("0a0a0a").as_deref(), Some("removed"), "{swept:#}");
    assert!(action("1b1b1b").unwrap().starts_with("kept"), "{swept:#}");
    assert!(action("2c2c2c").unwrap().starts_with("refused"), "{swept:#}");
    assert_eq!(action("3d3d3d").as_deref(), Some("removed"), "{swept:#}");
    assert!(action("4e4e4e").unwrap().starts_with("refused"), "{swept:#}");
    let groups: Vec<String> = moto
        .calls("DeleteDBParameterGroup")
        .iter()
        .map(|c| param(c, "DBParameterGroupName").unwrap().to_string())
        .collect();
    assert_eq!(groups, ["sd-prod-db-pitr-3d3d3d"]);
    assert_eq!(action("5f5f5f").as_deref(), Some("removed"), "{swept:#}");
    assert_eq!(moto.calls("DeleteDBClusterParameterGroup").len(), 1);
    let deletes: Vec<_> =
        moto.calls("DeleteDBInstance").iter().map(|c| param(c, "DBInstanceIdentifier").unwrap().to_string()).collect();
    assert_eq!(deletes, ["sd-prod-db-pitr-0a0a0a"]);
    let mut left = instance_ids(rds.describe_db_instances().send().await.unwrap().db_instances());
    left.sort();
    assert_eq!(left, ["sd-prod-db-pitr-1b1b1b", "sd-prod-db-pitr-2c2c2c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_aws_input_is_refused_before_anything_is_created() {
    let moto = Moto::start();
    let rds = aws_sdk_rds::Client::new(&moto.sdk().await);
    subnet_group(&moto, &rds).await;
    production_instance(&rds, "prod-db", true).await;
    production_instance(&rds, "plain-db", false).await;
    let tmp = Scratch::new();
    let reports = tmp.path().join("reports");
    let write = |name: &str, source: &str| {
        let p = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(
            &p,
            format!(
                "restore: {{ aws-rds-instance: {{ source-instance: {source}, subnet-group: drills-isolated, security-groups: [{SG}], connect: {{ host: 127.0.0.1, port: 1 }} }} }}\n\
                 objectives: {{ rto: 1h, rpo: 1h }}\nverify: [ {{ freshness: {{ table: t, column: c }} }} ]\n"
            ),
        )
        .unwrap();
        p
    };
    let cases: Vec<(PathBuf, Vec<&str>, &str)> = vec![
        (write("missing", "no-such-db"), vec![], "source RDS instance `no-such-db` does not exist in ap-southeast-1"),
        (write("window", "prod-db"), vec!["--target", "2020-01-01T00:00:00Z"], "is outside the recoverable window"),
        (write("plain", "plain-db"), vec![], "is not encrypted at rest"),
        (write("residency", "prod-db"), vec!["--region", "us-east-1"], "outside the drill's residency"),
    ];
    for (drill, extra, want) in cases {
        let out = run(&moto, &drill, &reports, &extra);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{drill:?}: {stderr}");
        assert!(stderr.contains(want), "{drill:?}: want {want:?} in:\n{stderr}");
    }
    // `drill plan` against the same emulator: who the credentials are, the window, the backup, the scratch,
    // and nothing restored; an RTO below what an RDS restore takes would fail; a target outside the window
    // could not be planned.
    let plan = |drill: &Path, extra: &[&str]| {
        let mut cmd = stackdrill();
        moto.env(&mut cmd);
        let out = cmd.args(["drill", "plan"]).arg(drill).arg("--reports").arg(&reports).args(extra).output().unwrap();
        (out.status.code(), text(&out.stdout))
    };
    let ok = write("planned", "prod-db");
    let (code, stdout) = plan(&ok, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    for want in [
        "planned  READY",
        "ok    credentials AWS credentials of arn:aws:",
        "ok    window      recoverable ",
        "ok    backup      automated backups of prod-db (point-in-time recovery)",
        "ok    scratch     sd-planned-",
        "subnet group drills-isolated, security groups sg-0123456789abcdef0",
        "warn  forecast    no RTO forecast",
    ] {
        assert!(stdout.contains(want), "expected `{want}` in:\n{stdout}");
    }
    let fast = tmp.path().join("fast.yaml");
    std::fs::write(&fast, std::fs::read_to_string(&ok).unwrap().replace("rto: 1h", "rto: 5m")).unwrap();
    let (code, stdout) = plan(&fast, &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  objectives  RTO objective 5m 00s is below what aws-rds-instance takes"), "{stdout}");
    let (code, stdout) = plan(&ok, &["--target", "2020-01-01T00:00:00Z"]);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stdout.contains("COULD NOT PLAN") && stdout.contains("outside the recoverable window"), "{stdout}");
    assert!(moto.calls("RestoreDBInstanceToPointInTime").is_empty(), "planning restored something");

    // No credentials at all: exit 2 saying how to provide them.
    let drill = write("nocreds", "prod-db");
    let out = without_aws_credentials(&mut stackdrill())
        .args(["drill", "run"])
        .arg(&drill)
        .arg("--reports")
        .arg(&reports)
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_REGION", "ap-southeast-1")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no AWS credentials") && stderr.contains("--profile"), "{stderr}");
    // Nothing was restored and no report was written for a drill that could not run.
    assert!(moto.calls("RestoreDBInstanceToPointInTime").is_empty());
    assert!(!reports.exists() || std::fs::read_dir(&reports).unwrap().next().is_none());
}

/// An RDS scratch reached at `sslmode require` (no `ca-bundle`, the default) logs in only through SCRAM with
/// channel binding: a TLS impostor on the scratch's tunnel that asks for a cleartext password never receives
/// the fresh one-run password. The ready phase fails at once (no two minutes of retries), the error says
/// why, and the scratch is still torn down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_impostor_on_the_scratch_tunnel_never_receives_the_scratch_password() {
    let (demo, moto, rds) = rds_fixture().await;
    let (port, asked, received) = crate::production_safety::tls_impostor();
    let tmp = Scratch::new();
    let reports = tmp.path().join("reports");
    let drill = drill_file(tmp.path(), "prod-db-impostor", &rds_block("prod-db", port), &demo, "");
    let out = run(&moto, &drill, &reports, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(received.lock().unwrap().is_empty(), "the impostor received {:?}", received.lock().unwrap());
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the impostor was never asked to log in");
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let report = last_report(&reports);
    let ready = report["phases"].as_array().unwrap().iter().find(|p| p["name"] == "ready").unwrap().clone();
    assert_eq!(ready["status"], "failed", "{report:#}");
    assert!(ready["detail"].as_str().unwrap().contains("channel binding"), "{ready:#}");
    assert!(ready["seconds"].as_f64().unwrap() < 30.0, "{ready:#}");
    assert_eq!(report["teardown"]["status"], "done", "{report:#}");
    // The password the drill set is the one the impostor would have got: it is nowhere in the output either.
    let set = moto.calls("ModifyDBInstance");
    let password = set.iter().find_map(|c| param(c, "MasterUserPassword")).expect("a fresh password was set");
    assert!(!stdout.contains(password) && !stderr.contains(password) && !report.to_string().contains(password));
    assert!(rds.describe_db_instances().send().await.unwrap().db_instances().len() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_rds_name_through_a_tunnel_and_refuses_a_foreign_ca() {
    let demo = Demo::start();
    let ca = demo.serve_tls_as_scratch().await;
    let moto = Moto::start();
    let rds = aws_sdk_rds::Client::new(&moto.sdk().await);
    moto.play_master_password(&demo);
    subnet_group(&moto, &rds).await;
    production_instance(&rds, "prod-db", true).await;
    let tmp = Scratch::new();
    let foreign = make_ca(tmp.path(), "foreign");
    let reports = tmp.path().join("reports");
    // The tunnel is 127.0.0.1, which the certificate does not name; the RDS endpoint name it does.
    for (bundle, passes) in [(&ca, true), (&foreign, false)] {
        let block = format!(
            "{}    sslmode: verify-full\n    ca-bundle: {}\n",
            rds_block("prod-db", demo.port),
            bundle.display()
        );
        let drill = drill_file(tmp.path(), "prod-db-pitr", &block, &demo, "");
        let out = run(&moto, &drill, &reports, &[]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let report = last_report(&reports);
        if passes {
            assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
            assert!(report["source"]["scratch"].as_str().unwrap().contains("sslmode=verify-full"), "{report:#}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
            let ready = report["phases"].as_array().unwrap().iter().find(|p| p["name"] == "ready").unwrap().clone();
            assert_eq!(ready["status"], "failed", "{report:#}");
            assert!(ready["detail"].as_str().unwrap().contains("certificate"), "{ready:#}");
            // A certificate that does not verify is not retried for minutes.
            assert!(ready["seconds"].as_f64().unwrap() < 30.0, "{ready:#}");
        }
        assert_eq!(report["teardown"]["status"], "done", "{report:#}");
    }
    assert!(rds.describe_db_instances().send().await.unwrap().db_instances().len() == 1);
}

/// Managed credentials, as the stack provisions them: the source's endpoint, port and master secret are
/// read from the instance itself (`from-instance`), or the password from a named Secrets Manager secret
/// (JSON with username/password, or a plain string). The password never reaches a report or a log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_logs_in_with_managed_secrets_from_secrets_manager_or_the_instance() {
    let (demo, moto, rds) = rds_fixture().await;
    let ca = demo.serve_tls_as_scratch().await;
    rds.create_db_instance()
        .db_instance_identifier("prod-managed")
        .engine("postgres")
        .engine_version("15.5")
        .db_instance_class("db.m6g.large")
        .allocated_storage(100)
        // The scratch (the demo again) trusts `postgres` over TLS; the source login below is `app`'s.
        .master_username("postgres")
        .manage_master_user_password(true)
        .storage_encrypted(true)
        .backup_retention_period(7)
        .db_subnet_group_name("drills-isolated")
        .send()
        .await
        .unwrap();
    let managed = moto.python(
        "import boto3\n\
         i = boto3.client('rds').describe_db_instances(DBInstanceIdentifier='prod-managed')['DBInstances'][0]\n\
         print(boto3.client('secretsmanager').get_secret_value(SecretId=i['MasterUserSecret']['SecretArn'])['SecretString'])",
    );
    let managed: serde_json::Value = serde_json::from_str(&managed).unwrap();
    let password = managed["password"].as_str().unwrap().to_string();
    // The demo source plays the instance: its app role gets the managed password.
    let admin = demo.admin("app").await;
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    admin.batch_execute(&format!("alter role app password '{verifier}'")).await.unwrap();
    moto.python(&format!(
        "import boto3, json\n\
         sm = boto3.client('secretsmanager')\n\
         sm.create_secret(Name='prod/app', SecretString=json.dumps({{'username': 'app', 'password': {password:?}}}))\n\
         sm.create_secret(Name='prod/app-plain', SecretString={password:?})"
    ));
    let tmp = Scratch::new();
    let tls = format!("sslmode: verify-full, ca-bundle: {}", ca.display());
    for (name, restore, source, credential) in [
        (
            "from-instance",
            rds_block("prod-managed", demo.port),
            format!("{{ from-instance: true, user: app, host: localhost, port: {}, dbname: app, {tls} }}", demo.port),
            "secrets-manager",
        ),
        (
            "secret-json",
            rds_block("prod-db", demo.port),
            format!("{{ password-secret: prod/app, host: localhost, port: {}, dbname: app, {tls} }}", demo.port),
            "secrets-manager",
        ),
        (
            "secret-plain",
            rds_block("prod-db", demo.port),
            format!(
                "{{ password-secret: prod/app-plain, user: app, host: localhost, port: {}, dbname: app, {tls} }}",
                demo.port
            ),
            "secrets-manager",
        ),
    ] {
        let drill = drill_file(tmp.path(), name, &restore, &demo, "");
        let body = std::fs::read_to_string(&drill).unwrap();
        let line = body.lines().find(|l| l.starts_with("source:")).unwrap().to_string();
        std::fs::write(&drill, body.replace(&line, &format!("source: {source}"))).unwrap();
        let reports = tmp.path().join(format!("reports-{name}"));
        let out = run(&moto, &drill, &reports, &["-v"]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{name}: {stdout}\n{stderr}");
        let report = last_report(&reports);
        let src = report["connections"].as_array().unwrap().iter().find(|c| c["role"] == "source").unwrap().clone();
        assert_eq!(src["credential"], credential, "{name}: {src:#}");
        assert_eq!(src["endpoint"], format!("app@localhost:{}/app", demo.port), "{name}");
        assert_eq!((src["server_verified"].as_bool(), src["hostname_verified"].as_bool()), (Some(true), Some(true)));
        for text in [&stdout, &stderr, &std::fs::read_to_string(drill).unwrap(), &report.to_string()] {
            assert!(!text.contains(&password), "{name}: the managed password leaked");
        }
    }
    // A managed credential is never sent in cleartext.
    let drill = tmp.path().join("cleartext.yaml");
    std::fs::write(
        &drill,
        "restore: { aws-rds-instance: { source-instance: prod-db, subnet-group: g, security-groups: [sg-1] } }\n\
         source: { password-secret: prod/app, host: db, dbname: app, sslmode: disable }\n\
         objectives: { rto: 1h, rpo: 5m }\nverify: [ { freshness: { table: t, column: c } } ]\n",
    )
    .unwrap();
    let out = stackdrill().args(["drill", "validate"]).arg(&drill).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("never sent in cleartext"), "{}", text(&out.stderr));
}
