//! `pg-dump` and `existing-postgres` on real PostgreSQL: dumps of the demo database in every format restore
//! into a fresh scratch and pass the demo's checks against the source cut at the dump's time; bad dumps
//! fail with the tool's own message and leave nothing behind; a database restored by hand is verified in
//! read-only sessions and never touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::harness::{Demo, as_postgres, stackdrill, text};

/// The demo's checks that a dump can answer (no canary: nothing written now is in a dump).
const CHECKS: &str = "  - checksum: { table: credit_transactions, key: id, until-column: created_at }
  - checksum: { table: accounts, key: id }
  - row-count: { table: credit_transactions, until-column: created_at, compare: source }
  - freshness: { table: credit_transactions, column: created_at }
  - schema: {}
  - amcheck: {}
  - sql:
      name: ledger balances to zero
      query: select sum(amount) from credit_transactions
      expect: { min: 0, max: 0 }
";

/// The demo's source block: TLS verified against the demo's CA, the app role's password file.
fn source(demo: &Demo) -> String {
    let d = demo.dir.display();
    format!(
        "source:\n  host: 127.0.0.1\n  port: {}\n  user: app\n  dbname: app\n  password-file: {d}/source.password\n  \
         sslmode: verify-full\n  ca-bundle: {d}/ca.crt\n",
        demo.port
    )
}

fn dump_drill(demo: &Demo, name: &str, dumps: &str, restore_extra: &str) -> PathBuf {
    let path = demo.root.path().join(format!("{name}.yaml"));
    let body = format!(
        "name: {name}\nrestore:\n  pg-dump:\n    dumps: {dumps}\n    scratch-root: {d}/scratch\n    database: app\n\
         {restore_extra}{source}objectives: {{ rto: 10m, rpo: 1h }}\nverify:\n{CHECKS}",
        d = demo.dir.display(),
        source = source(demo),
    );
    std::fs::write(&path, body).unwrap();
    path
}

/// A directory the `postgres` OS user can write dumps into.
fn dump_dir(demo: &Demo, name: &str) -> PathBuf {
    let dir = demo.root.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
    std::os::unix::fs::chown(&dir, Some(pg.uid.as_raw()), Some(pg.gid.as_raw())).unwrap();
    dir
}

/// Runs `program` (pg_dump, pg_dumpall) against the demo source's private socket as `postgres`.
fn dump(demo: &Demo, program: &str, args: &[&str]) {
    let socket = demo.dir.join("source");
    let port = demo.port.to_string();
    let mut all = vec!["-h", socket.to_str().unwrap(), "-p", &port, "-U", "postgres"];
    all.extend_from_slice(args);
    as_postgres(program, &all);
}

fn run(demo: &Demo, drill: &Path, extra: &[&str]) -> (std::process::Output, serde_json::Value) {
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(drill)
        .arg("--reports")
        .arg(&demo.reports)
        .args(extra)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    (out, newest(demo))
}

/// The report of the latest run (file names of two runs in one second do not sort by time).
fn newest(demo: &Demo) -> serde_json::Value {
    demo.reports()
        .into_iter()
        .max_by_key(|r| r["started_at"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

fn check_statuses(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}: {}", c["kind"].as_str().unwrap(), c["status"].as_str().unwrap(), c["detail"]))
        .collect()
}

fn assert_passed(out: &std::process::Output, report: &serde_json::Value, what: &str) {
    assert!(
        out.status.success() && report["result"] == "passed",
        "{what}: {}\n{}\n{:#?}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        check_statuses(report),
        report["phases"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_plain_and_dumpall_backups_of_the_demo_restore_and_pass_its_checks() {
    let demo = Demo::start();
    let custom = dump_dir(&demo, "custom");
    let plain = dump_dir(&demo, "plain");
    let cluster = dump_dir(&demo, "cluster");
    dump(&demo, "pg_dump", &["-Fc", "-f", custom.join("app.dump").to_str().unwrap(), "app"]);
    dump(&demo, "pg_dump", &["-Fp", "--verbose", "-f", plain.join("app.sql").to_str().unwrap(), "app"]);
    let sidecar_time = chrono::Utc::now();
    dump(&demo, "pg_dumpall", &["-f", cluster.join("all.sql").to_str().unwrap()]);
    std::fs::write(cluster.join("all.sql.json"), format!("{{\"taken_at\": \"{}\"}}", sidecar_time.to_rfc3339()))
        .unwrap();
    // Written after every dump: the checks against the source must cut at the dump's time, not now.
    let admin = demo.admin("app").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    admin
        .batch_execute(
            "with t as (select gen_random_uuid() as id) \
             insert into credit_transactions (transfer_id, account_id, amount, kind, idempotency_key) \
             select t.id, 1, v, 'transfer', gen_random_uuid() from t, (values (1.0), (-1.0)) x(v)",
        )
        .await
        .unwrap();

    // The demo's tables belong to `app`, a role a single-database dump does not create.
    let drill = dump_drill(&demo, "dump-custom", &custom.display().to_string(), "");
    let (out, report) = run(&demo, &drill, &[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(report["result"], "failed");
    let restore = &report["phases"].as_array().unwrap().iter().find(|p| p["name"] == "restore").unwrap()["detail"];
    assert!(
        restore.as_str().unwrap().contains("the dump needs a role it does not create: app"),
        "{restore}\n{}",
        text(&out.stderr)
    );
    demo.assert_no_scratch_left();

    let drill = dump_drill(&demo, "dump-custom", &custom.display().to_string(), "    create-missing-roles: true\n");
    let (out, report) = run(&demo, &drill, &[]);
    assert_passed(&out, &report, "custom format");
    let details = &report["source"]["details"];
    assert_eq!(details["dump_format"], "custom", "{details}");
    assert!(details["dump_taken_from"].as_str().unwrap().starts_with("archive header"), "{details}");
    let digest = details["dump_sha256"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    assert!(report["neutralised"].to_string().contains("created NOLOGIN: app"), "{}", report["neutralised"]);
    // RPO: the target (now) minus the dump's time, exact for a dump.
    assert!(report["measured"]["rpo_basis"].as_str().unwrap().contains("the dump's time"), "{}", report["measured"]);
    assert_eq!(report["source"]["backup"]["id"], "app.dump");
    assert!(report["target"]["recovery"].as_str().unwrap().starts_with("logical restore"));
    demo.assert_no_scratch_left();

    // Tar and directory formats, restored by pg_restore (the directory one in parallel).
    let tar = dump_dir(&demo, "tar");
    let directory = dump_dir(&demo, "directory");
    dump(&demo, "pg_dump", &["-Ft", "-f", tar.join("app.tar").to_str().unwrap(), "app"]);
    dump(&demo, "pg_dump", &["-Fd", "-j", "2", "-f", directory.join("app.dir").to_str().unwrap(), "app"]);
    for (name, dir, format) in [("dump-tar", &tar, "tar"), ("dump-directory", &directory, "directory")] {
        let drill = dump_drill(&demo, name, &dir.display().to_string(), "    create-missing-roles: true\n");
        let (out, report) = run(&demo, &drill, &[]);
        assert_passed(&out, &report, format);
        assert_eq!(report["source"]["details"]["dump_format"], format);
        assert!(report["source"]["details"]["dump_taken_from"].as_str().unwrap().starts_with("archive header"));
    }

    let drill = dump_drill(
        &demo,
        "dump-plain",
        &plain.join("app.sql").display().to_string(),
        "    create-missing-roles: true\n",
    );
    let (out, report) = run(&demo, &drill, &[]);
    assert_passed(&out, &report, "plain format");
    assert_eq!(report["source"]["details"]["dump_format"], "plain");
    assert_eq!(report["source"]["details"]["dump_taken_from"], "`-- Started on` line");

    // pg_dumpall creates its roles (app among them) and its databases; its time comes from the sidecar.
    let drill = dump_drill(&demo, "dump-cluster", &cluster.display().to_string(), "");
    let (out, report) = run(&demo, &drill, &[]);
    assert_passed(&out, &report, "pg_dumpall");
    assert_eq!(report["source"]["details"]["dump_format"], "pg_dumpall");
    assert_eq!(report["source"]["details"]["dump_taken_from"], "sidecar");
    let backup_time: chrono::DateTime<chrono::Utc> =
        report["source"]["backup"]["started_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(backup_time.timestamp_millis(), sidecar_time.timestamp_millis());
    demo.assert_no_scratch_left();

    // Two dumps: a target between them restores the older one (a drill with no source comparison: the
    // sidecars here claim earlier times than the data really has).
    let two = dump_dir(&demo, "two");
    let now = chrono::Utc::now();
    for (name, hours) in [("older.dump", 2), ("newer.dump", 1)] {
        std::fs::copy(custom.join("app.dump"), two.join(name)).unwrap();
        let at = (now - chrono::Duration::hours(hours)).to_rfc3339();
        std::fs::write(two.join(format!("{name}.json")), format!("{{\"taken_at\": \"{at}\"}}")).unwrap();
    }
    let path = demo.root.path().join("dump-two.yaml");
    let d = demo.dir.display();
    std::fs::write(
        &path,
        format!(
            "name: dump-two\nrestore:\n  pg-dump:\n    dumps: {}\n    scratch-root: {d}/scratch\n    database: app\n    \
             create-missing-roles: true\nobjectives: {{ rto: 10m, rpo: 1h }}\nverify:\n  - row-count: {{ table: accounts, min: 1 }}\n",
            two.display()
        ),
    )
    .unwrap();
    let between = (now - chrono::Duration::minutes(90)).to_rfc3339();
    let (out, report) = run(&demo, &path, &["--target", &between]);
    assert_passed(&out, &report, "the older of two dumps");
    assert_eq!(report["source"]["backup"]["id"], "older.dump");
    assert_eq!(report["source"]["details"]["dumps_available"], "2");
    let rpo = report["measured"]["rpo_seconds"].as_f64().unwrap();
    assert!((1790.0..1810.0).contains(&rpo), "RPO is the target minus the dump's time: {rpo}");

    // A dump that creates an extension this machine lacks: skipped, named as a deviation, not a crash.
    let ext = dump_dir(&demo, "ext");
    let sql = std::fs::read_to_string(plain.join("app.sql")).unwrap().replacen(
        "SET statement_timeout = 0;",
        "SET statement_timeout = 0;\nCREATE EXTENSION IF NOT EXISTS pg_graphql WITH SCHEMA public;\n\
         COMMENT ON EXTENSION pg_graphql IS 'GraphQL support';",
        1,
    );
    assert!(sql.contains("pg_graphql"));
    std::fs::write(ext.join("app.sql"), sql).unwrap();
    let drill = dump_drill(&demo, "dump-ext", &ext.display().to_string(), "    create-missing-roles: true\n");
    let (out, report) = run(&demo, &drill, &[]);
    assert_passed(&out, &report, "a dump needing a missing extension");
    let deviations = report["deviations"].to_string();
    assert!(deviations.contains("extension `pg_graphql` is not installed on this machine"), "{deviations}");

    // The same custom dump from S3 (moto): listed, downloaded, hashed to the same digest.
    let moto = super::moto::Moto::start();
    moto.python_direct(&format!(
        "import boto3\n\
         s3 = boto3.client('s3')\n\
         s3.create_bucket(Bucket='db-dumps', CreateBucketConfiguration={{'LocationConstraint': 'ap-southeast-1'}})\n\
         s3.put_object(Bucket='db-dumps', Key='daily/readme.txt', Body=b'not a dump')\n\
         s3.upload_file('{}', 'db-dumps', 'daily/app.dump')",
        custom.join("app.dump").display()
    ));
    let drill = dump_drill(&demo, "dump-s3", "s3://db-dumps/daily/", "    create-missing-roles: true\n");
    let mut cmd = stackdrill();
    moto.env(&mut cmd);
    let out = cmd
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(&drill)
        .arg("--reports")
        .arg(&demo.reports)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let report = newest(&demo);
    assert_passed(&out, &report, "custom format from S3");
    assert_eq!(report["source"]["backup"]["location"], "s3://db-dumps/daily/app.dump");
    assert_eq!(report["source"]["details"]["dump_sha256"], digest);
    demo.assert_no_scratch_left();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_dump_fails_with_the_tools_own_words_and_leaves_nothing_behind() {
    let demo = Demo::start();
    let dir = dump_dir(&demo, "bad");
    let good = dir.join("app.dump");
    dump(&demo, "pg_dump", &["-Fc", "-f", good.to_str().unwrap(), "app"]);
    let bytes = std::fs::read(&good).unwrap();
    let restore_detail = |report: &serde_json::Value| {
        report["phases"].as_array().unwrap().iter().find(|p| p["name"] == "restore").unwrap()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // Truncated: pg_restore's own message is quoted.
    let truncated = dump_dir(&demo, "truncated");
    std::fs::write(truncated.join("app.dump"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    let drill =
        dump_drill(&demo, "dump-truncated", &truncated.display().to_string(), "    create-missing-roles: true\n");
    let (out, report) = run(&demo, &drill, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(report["result"], "failed");
    let detail = restore_detail(&report);
    assert!(detail.contains("pg_restore") && detail.contains("error"), "{detail}");
    assert_eq!(report["teardown"]["status"], "done", "{}", report["teardown"]);
    demo.assert_no_scratch_left();

    // A sidecar's digest that the file no longer matches.
    let changed = dump_dir(&demo, "changed");
    std::fs::write(changed.join("app.dump"), &bytes).unwrap();
    std::fs::write(
        changed.join("app.dump.json"),
        format!("{{\"taken_at\": \"{}\", \"sha256\": \"{}\"}}", chrono::Utc::now().to_rfc3339(), "ab".repeat(32)),
    )
    .unwrap();
    let drill = dump_drill(&demo, "dump-changed", &changed.display().to_string(), "    create-missing-roles: true\n");
    let (out, report) = run(&demo, &drill, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(restore_detail(&report).contains("but its sidecar says abab"), "{}", restore_detail(&report));
    demo.assert_no_scratch_left();

    // A plain dump carrying a psql shell escape is refused before psql ever sees it.
    let hostile = dump_dir(&demo, "hostile");
    let marker = demo.root.path().join("shell-ran");
    dump(&demo, "pg_dump", &["-Fp", "-f", hostile.join("app-2026-11-30T02:00:00.sql").to_str().unwrap(), "app"]);
    let sql = hostile.join("app-2026-11-30T02:00:00.sql");
    let mut text_sql = std::fs::read_to_string(&sql).unwrap();
    text_sql.push_str(&format!("\\! touch {}\n", marker.display()));
    std::fs::write(&sql, text_sql).unwrap();
    let drill = dump_drill(&demo, "dump-hostile", &hostile.display().to_string(), "    create-missing-roles: true\n");
    let (out, report) = run(&demo, &drill, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let detail = restore_detail(&report);
    assert!(detail.contains("refused") && detail.contains("\\! touch"), "{detail}");
    assert!(!marker.exists(), "the dump's shell command ran");
    // The time in its name placed it; a target before it finds no dump (could not run, exit 2).
    assert_eq!(report["source"]["details"]["dump_taken_from"], "file name (UTC)");
    let (out, _) = run(&demo, &drill, &["--target", "2026-11-30T01:00:00Z"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("2026-11-30T02:00:00"), "{}", text(&out.stderr));
    demo.assert_no_scratch_left();

    // Nothing here is a dump: a clear error, not a crash.
    let empty = dump_dir(&demo, "empty");
    std::fs::write(empty.join("notes.txt"), "not a dump").unwrap();
    let drill = dump_drill(&demo, "dump-empty", &empty.display().to_string(), "");
    let (out, _) = run(&demo, &drill, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no pg_dump or pg_dumpall output in"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_by_hand_is_verified_read_only_and_never_touched() {
    let demo = Demo::start();
    let d = demo.dir.display();
    // The demo's source stands in for a copy someone restored by hand (Supabase's restore to a new project).
    let drill = demo.root.path().join("manual.yaml");
    std::fs::write(
        &drill,
        format!(
            "name: manual-restore\nrestore:\n  existing-postgres:\n    connection:\n      host: 127.0.0.1\n      \
             port: {port}\n      user: app\n      dbname: app\n      password-file: {d}/source.password\n      \
             sslmode: verify-full\n      ca-bundle: {d}/ca.crt\n    backup: Supabase daily backup of 2026-11-29\n\
             \x20   restored-to: {restored_to}\n\
             objectives: {{ rto: 1h, rpo: 1d }}\nverify:\n  - row-count: {{ table: accounts, min: 1 }}\n  - sql:\n      \
             name: sessions are read-only\n      query: show default_transaction_read_only\n      expect: {{ equals: \"on\" }}\n  \
             - sql:\n      name: a write is refused\n      query: create table intruder (x int)\n      expect: {{ equals: \"\" }}\n  \
             - sql:\n      name: sessions are bounded\n      query: show lock_timeout\n      expect: {{ equals: \"2s\" }}\n",
            port = demo.port,
            restored_to = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
        ),
    )
    .unwrap();
    let started = (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc3339();
    let (out, report) = run(&demo, &drill, &["--restore-started-at", &started, "--participant", "a.tan"]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let statuses = check_statuses(&report);
    assert!(statuses[0].starts_with("row-count passed"), "{statuses:?}");
    assert!(statuses[1].starts_with("sql passed"), "{statuses:?}");
    assert!(statuses[2].contains("read-only transaction"), "{statuses:?}");
    assert!(statuses[3].starts_with("sql passed"), "sessions carry the source's lock timeout: {statuses:?}");
    assert_eq!(report["source"]["details"]["restore"], "manual");
    let rpo = report["measured"]["rpo_seconds"].as_f64().unwrap();
    assert!((3590.0..3700.0).contains(&rpo), "RPO from restored-to: {rpo}");
    assert_eq!(report["source"]["backup"]["location"], "Supabase daily backup of 2026-11-29");
    assert_eq!(report["participants"][0], "a.tan");
    assert_eq!(report["teardown"]["status"], "nothing-to-do", "{}", report["teardown"]);
    let rto = report["measured"]["rto_seconds"].as_f64().unwrap();
    assert!((1190.0..1400.0).contains(&rto), "RTO from --restore-started-at: {rto}");
    let scratch = report["connections"].as_array().unwrap().iter().find(|c| c["role"] == "scratch").unwrap().clone();
    assert_eq!(scratch["credential"], "password-file", "{scratch}");
    assert!(scratch["tls_version"].is_string() && scratch["hostname_verified"] == true, "{scratch}");
    let admin = demo.admin("app").await;
    let intruder = admin.query_opt("select 1 from pg_class where relname = 'intruder'", &[]).await.unwrap();
    assert!(intruder.is_none(), "the drill wrote to a database it does not own");
    // The demo's cluster is still running: teardown removed nothing.
    assert!(demo.dir.join("source/data/postmaster.pid").exists());

    // A canary cannot be in a copy restored before the drill: refused by validate, naming the key.
    let bad = demo.root.path().join("manual-canary.yaml");
    let body = std::fs::read_to_string(&drill).unwrap().replace("verify:\n", "verify:\n  - canary: {}\n");
    std::fs::write(&bad, body).unwrap();
    let out = stackdrill().args(["drill", "validate"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("verify[0].canary"), "{}", text(&out.stderr));
}
