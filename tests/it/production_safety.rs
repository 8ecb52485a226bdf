//! What a drill does to production, on real PostgreSQL: the source is reached over TLS (and nothing less
//! when TLS is asked for), its sessions are bounded and cancelled when a check gives up, a restored copy
//! is inert before anything connects to it (no subscription reaches the real publisher, none of the
//! backup's commands run), and PostgreSQL child processes never see stackdrill's secrets.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::harness::{Demo, Scratch, as_postgres, make_ca, scalar, stackdrill, switch_and_archive, text};

fn restart(demo: &Demo) {
    let data = demo.dir.join("source/data");
    let log = demo.dir.join("source/server.log");
    as_postgres("pg_ctl", &["restart", "-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-m", "fast", "-w"]);
}

/// A drill file for `demo`'s source and backups with `verify` and `extra` top-level keys.
fn drill_file(demo: &Demo, name: &str, source_extra: &str, extra: &str, verify: &str) -> PathBuf {
    let d = demo.dir.display();
    let path = demo.root.path().join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\n\
             restore:\n  local-postgres:\n    base-backups: {d}/base-backups\n    wal-archive: {d}/wal-archive\n\
             \x20   scratch-root: {d}/scratch\n    database: app\n\
             source:\n  host: 127.0.0.1\n  port: {port}\n  user: app\n  dbname: app\n  ca-bundle: {d}/ca.crt\n{source_extra}\
             objectives: {{ rto: 10m, rpo: 1m }}\n{extra}verify:\n{verify}",
            port = demo.port
        ),
    )
    .unwrap();
    path
}

fn run(demo: &Demo, drill: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = stackdrill();
    cmd.env("STACKDRILL_STATE_DIR", demo.state())
        .args(["drill", "run"])
        .arg(drill)
        .arg("--reports")
        .arg(&demo.reports)
        .timeout(Duration::from_secs(300));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn the_demo_reaches_its_source_over_verified_tls_and_records_every_connection() {
    let demo = Demo::start();
    let r = demo.last_report();
    assert_eq!(r["result"], "passed", "{r:#}");
    let conns = r["connections"].as_array().unwrap();
    let source = conns.iter().find(|c| c["role"] == "source").expect("a source connection");
    assert_eq!(source["sslmode"], "verify-full");
    assert!(source["tls_version"].as_str().unwrap().starts_with("TLSv1."), "{source:#}");
    assert_eq!(source["server_verified"], true);
    assert_eq!(source["hostname_verified"], true);
    assert_eq!(source["credential"], "password-file");
    let session = source["session"].as_str().unwrap();
    assert!(session.contains("lock_timeout=2s") && session.contains("statement_timeout="), "{session}");
    let scratch = conns.iter().find(|c| c["role"] == "scratch").expect("a scratch connection");
    assert_eq!(scratch["transport"], "unix-socket");
    assert!(r["deviations"].as_array().unwrap().is_empty(), "{:#}", r["deviations"]);
    let neutralised: Vec<&str> = r["neutralised"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(neutralised.iter().any(|n| n.contains("max_logical_replication_workers = 0")), "{neutralised:?}");
    assert!(neutralised.iter().any(|n| n.contains("recovery_end_command")), "{neutralised:?}");
    // The Markdown an auditor reads says the same.
    let md = std::fs::read_dir(&demo.reports)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "md"))
        .unwrap();
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("## Connections") && md.contains("server certificate and host name verified"), "{md}");
}

/// `read-from`: the heavy read-only checks read a replica (here the same server under another name), the
/// canary still writes to the primary; both sessions are recorded and bounded.
#[test]
fn read_from_sends_the_read_only_checks_to_a_replica() {
    let demo = Demo::start();
    let password = std::fs::read_to_string(demo.dir.join("source.password")).unwrap();
    let drill = drill_file(
        &demo,
        "replica",
        &format!("  password-env: SD_TEST_SOURCE_PW\n  read-from: {{ host: localhost, port: {} }}\n", demo.port),
        "",
        "  - canary: {}\n  - checksum: { table: accounts, key: id }\n  - row-count: { table: files, compare: source }\n",
    );
    let out = run(&demo, &drill, &[("SD_TEST_SOURCE_PW", password.trim())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = demo.last_report();
    let roles: Vec<(&str, &str)> = r["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["role"].as_str().unwrap(), c["endpoint"].as_str().unwrap()))
        .collect();
    assert!(roles.contains(&("source", &*format!("app@127.0.0.1:{}/app", demo.port))), "{roles:?}");
    assert!(roles.contains(&("source-replica", &*format!("app@localhost:{}/app", demo.port))), "{roles:?}");
    let replica = r["connections"].as_array().unwrap().iter().find(|c| c["role"] == "source-replica").unwrap();
    assert_eq!(replica["hostname_verified"], true, "{replica:#}");
    assert!(replica["session"].as_str().unwrap().contains("lock_timeout=2s"));
}

/// A TCP server that answers PostgreSQL's SSLRequest with `N` (no TLS) and counts connections.
fn plaintext_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut req = [0u8; 8];
            if s.read_exact(&mut req).is_ok() {
                let _ = s.write_all(b"N");
            }
        }
    });
    (port, seen)
}

#[test]
fn a_source_without_tls_or_with_an_unknown_certificate_is_refused_at_once() {
    let dir = Scratch::new();
    let (port, seen) = plaintext_server();
    let drill = dir.path().join("no-tls.yaml");
    let body = |port: u16, extra: &str| {
        format!(
            "restore: {{ local-postgres: {{ base-backups: /nonexistent/b, wal-archive: /nonexistent/w, scratch-root: /tmp }} }}\n\
             source: {{ host: 127.0.0.1, port: {port}, user: app, dbname: app{extra} }}\n\
             objectives: {{ rto: 10m, rpo: 1m }}\n"
        )
    };
    std::fs::write(&drill, body(port, "")).unwrap();
    let started = Instant::now();
    let out = stackdrill().env("STACKDRILL_STATE_DIR", dir.path()).args(["drill", "run"]).arg(&drill).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server does not support TLS") && stderr.contains("sslmode verify-full"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1, "one attempt, no retries");

    // A real TLS server whose certificate another CA signed: verify-full refuses it.
    let demo = Demo::start();
    let other = make_ca(dir.path(), "other");
    std::fs::write(
        &drill,
        body(
            demo.port,
            &format!(
                ", sslmode: verify-full, ca-bundle: {}, password-file: {}",
                other.display(),
                demo.dir.join("source.password").display()
            ),
        ),
    )
    .unwrap();
    let out = stackdrill().env("STACKDRILL_STATE_DIR", dir.path()).args(["drill", "run"]).arg(&drill).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid peer certificate") || stderr.contains("UnknownIssuer"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_gives_up_cancels_its_query_and_leaves_no_session_or_lock_behind() {
    let demo = Demo::start();
    let admin = demo.admin("app").await;
    // Big enough that hashing it takes several seconds on each side.
    admin
        .batch_execute(
            "create table big (id bigint primary key, a text, b text);
             insert into big select g, md5(g::text), md5((g * 7)::text) from generate_series(1, 3000000) g;
             alter table big owner to app;",
        )
        .await
        .unwrap();
    switch_and_archive(&admin).await;
    let password = std::fs::read_to_string(demo.dir.join("source.password")).unwrap();
    // Another session holds a lock the checksum's read must wait for, and the drill's own statement and
    // lock timeouts are long: only stackdrill's cancel can end the waiting query within the test (a
    // backend waiting on a lock does not notice that its client went away).
    let locker = demo.admin("app").await;
    locker.batch_execute("begin; lock table big in access exclusive mode").await.unwrap();
    let drill = drill_file(
        &demo,
        "cancel",
        "  password-env: SD_TEST_SOURCE_PW\n  statement-timeout: 10m\n  lock-timeout: 10m\n",
        "timeouts: { check: 1s }\n",
        "  - checksum: { table: big, key: id }\n  - sql: { name: still answers, query: select 1, expect: { equals: \"1\" } }\n",
    );
    let out = run(&demo, &drill, &[("SD_TEST_SOURCE_PW", password.trim())]);
    let ended = Instant::now();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r = demo.last_report();
    let checks = r["checks"].as_array().unwrap();
    let checksum = checks.iter().find(|c| c["kind"] == "checksum").unwrap();
    assert_eq!(checksum["status"], "error", "{checksum:#}");
    assert!(checksum["detail"].as_str().unwrap().contains("did not finish within 1s; its queries were cancelled"));
    // The next check ran in a clean transaction on the same sessions.
    assert_eq!(checks.iter().find(|c| c["kind"] == "sql").unwrap()["status"], "passed", "{checks:#?}");
    let app = format!("stackdrill/{}", r["id"].as_str().unwrap());
    let mut left = String::from("?");
    while ended.elapsed() < Duration::from_secs(2) {
        left = scalar(&admin, &format!("select count(*) from pg_stat_activity where application_name = '{app}'")).await;
        if left == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, "0", "sessions of {app} still on the source 2s after the drill");
    locker.batch_execute("commit").await.unwrap();
    let t = Instant::now();
    admin.batch_execute("set lock_timeout = '1s'; alter table big add column c int").await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(900), "ALTER TABLE waited {:?}", t.elapsed());
    let source = r["connections"].as_array().unwrap().iter().find(|c| c["role"] == "source").unwrap().clone();
    assert_eq!(source["credential"], "password-env");
    assert!(source["session"].as_str().unwrap().contains("statement_timeout=10m"), "{source:#}");
    demo.assert_no_scratch_left();
}

/// Every `/proc/<pid>/environ` of a process whose command line mentions `dir`, joined.
fn environments_under(dir: &Path) -> Vec<(String, String)> {
    let needle = dir.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle)
            && let Ok(env) = std::fs::read(e.path().join("environ"))
        {
            out.push((cmd, String::from_utf8_lossy(&env).replace('\0', "\n")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_copy_cannot_act_and_postgres_never_sees_the_secrets() {
    let demo = Demo::start();
    let publisher = Demo::start();
    let markers = demo.root.path().join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    std::os::unix::fs::chown(&markers, Some(postgres_uid()), None).unwrap();

    // The publisher: logical WAL, a publication, and a role the subscriber logs in as over TLS.
    let pub_admin = publisher.admin("postgres").await;
    // ALTER SYSTEM refuses to run in the implicit transaction of a multi-statement batch: one at a time.
    for set in ["alter system set wal_level = logical", "alter system set log_connections = on"] {
        pub_admin.batch_execute(set).await.unwrap();
    }
    drop(pub_admin);
    restart(&publisher);
    let pub_app = publisher.admin("app").await;
    pub_app
        .batch_execute(
            "create role repl login replication password 'repl-pw';
             create table pubsub (id int primary key, v text); grant select on pubsub to repl;
             create publication pub for table pubsub; insert into pubsub select g, 'row ' || g from generate_series(1, 3) g;",
        )
        .await
        .unwrap();

    // The source subscribes, and carries archive/recovery commands that would leave markers if they ran.
    let src = demo.admin("app").await;
    src.batch_execute("create table pubsub (id int primary key, v text)").await.unwrap();
    src.batch_execute(&format!(
        "create subscription sub connection 'host=127.0.0.1 port={} user=repl password=repl-pw dbname=app sslmode=require' publication pub",
        publisher.port
    ))
    .await
    .unwrap();
    let t0 = Instant::now();
    while scalar(&src, "select count(*) from pubsub").await != "3" {
        assert!(t0.elapsed() < Duration::from_secs(30), "the subscription never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (k, f) in [("recovery_end_command", "recovery-end"), ("archive_cleanup_command", "archive-cleanup")] {
        src.batch_execute(&format!("alter system set {k} = 'touch {}'", markers.join(f).display())).await.unwrap();
    }
    src.batch_execute("select pg_reload_conf()").await.unwrap();
    // A base backup that carries the subscription and those settings.
    let backup = demo.dir.join("base-backups").join("99990101T000000.000Z");
    as_postgres(
        "pg_basebackup",
        &[
            "-D",
            backup.to_str().unwrap(),
            "-h",
            demo.dir.join("source").to_str().unwrap(),
            "-p",
            &demo.port.to_string(),
            "-U",
            "postgres",
            "-Fp",
            "-Xstream",
            "-cfast",
        ],
    );
    src.batch_execute("insert into accounts (email) values ('before-target@example.com')").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let target = scalar(&src, "select to_char(now() at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The real subscriber lets go of the slot; the restored copy (as of the target) still has it enabled.
    src.batch_execute("alter subscription sub disable").await.unwrap();
    let pub_pg = publisher.admin("app").await;
    let t0 = Instant::now();
    while scalar(&pub_pg, "select count(*) from pg_replication_slots where slot_name = 'sub' and active").await != "0" {
        assert!(t0.elapsed() < Duration::from_secs(30), "the subscriber never released its slot");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    src.batch_execute("insert into accounts (email) values ('after-target@example.com'); select pg_switch_wal()")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flush_before =
        scalar(&pub_pg, "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = 'sub'").await;
    let log = publisher.dir.join("source/server.log");
    let repl_logins = |text: &str| text.lines().filter(|l| l.contains("user=repl")).count();
    let logins_before = repl_logins(&std::fs::read_to_string(&log).unwrap_or_default());
    let archive_before: Vec<String> = demo.archive_segments();

    // Watch the publisher and every PostgreSQL process of the demo while the drill runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let (dir, pub_port, pub_dir) = (demo.dir.clone(), publisher.port, publisher.dir.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut c = tokio_postgres::Config::new();
                c.host_path(pub_dir.join("source")).port(pub_port).user("postgres").dbname("app");
                let (client, conn) = c.connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                let (mut senders, mut envs) = (0usize, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let n: i64 =
                        client.query_one("select count(*) from pg_stat_replication", &[]).await.unwrap().get(0);
                    senders = senders.max(n as usize);
                    envs.extend(environments_under(&dir));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (senders, envs)
            })
        })
    };
    let password = std::fs::read_to_string(demo.dir.join("source.password")).unwrap();
    let key = demo.root.path().join("signing.key");
    let out = stackdrill()
        .env("STACKDRILL_STATE_DIR", demo.state())
        .args(["keys", "generate", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let key_line = key_pem.lines().nth(1).unwrap().to_string();
    let drill = drill_file(
        &demo,
        "inert",
        "  password-env: SD_TEST_SOURCE_PW\n",
        &format!("target: {{ at: \"{target}\" }}\n"),
        "  - sql: { name: replicated rows are there, query: select count(*) from pubsub, expect: { equals: \"3\" } }\n\
         \x20 - sql: { name: no subscription is enabled, query: select count(*) from pg_subscription where subenabled or subslotname is not null, expect: { equals: \"0\" } }\n\
         \x20 - checksum: { table: accounts, key: id, until-column: created_at }\n",
    );
    let secret_aws = "sd-test-aws-secret-9f8e7d";
    let out = run(
        &demo,
        &drill,
        &[
            ("SD_TEST_SOURCE_PW", password.trim()),
            ("STACKDRILL_SIGNING_KEY", &key_pem),
            ("AWS_ACCESS_KEY_ID", "AKIDSDTESTLEAK"),
            ("AWS_SECRET_ACCESS_KEY", secret_aws),
        ],
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (senders, envs) = watcher.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));

    let r = demo.last_report();
    let neutralised: Vec<&str> = r["neutralised"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(
        neutralised.iter().any(|n| n.contains("subscription `sub` in database `app` disabled and detached")),
        "{neutralised:?}"
    );
    // The publisher never saw the scratch: no walsender, no login of the replication role, the slot as it was.
    assert_eq!(senders, 0, "a walsender served someone during the drill");
    assert_eq!(
        repl_logins(&std::fs::read_to_string(&log).unwrap_or_default()),
        logins_before,
        "the scratch logged in to the publisher"
    );
    let flush_after =
        scalar(&pub_pg, "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = 'sub'").await;
    assert_eq!(flush_after, flush_before);
    // None of the backup's commands ran, and the archive is whole.
    let left: Vec<_> = std::fs::read_dir(&markers).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "commands from the backup ran: {left:?}");
    let archive_after = demo.archive_segments();
    assert!(archive_before.iter().all(|s| archive_after.contains(s)), "segments vanished from the archive");

    // PostgreSQL processes (the source's and the scratch's) never saw a secret of stackdrill's.
    assert!(envs.iter().any(|(cmd, _)| cmd.contains("/scratch/")), "never saw the scratch server's processes");
    for (cmd, env) in &envs {
        for needle in [password.trim(), secret_aws, "AKIDSDTESTLEAK", key_line.as_str(), "SD_TEST_SOURCE_PW"] {
            assert!(!env.contains(needle), "`{needle}` in the environment of `{cmd}`");
        }
    }
    demo.assert_no_scratch_left();
}

fn postgres_uid() -> u32 {
    nix::unistd::User::from_name("postgres").unwrap().expect("the postgres OS user").uid.as_raw()
}

/// `demo --keep`, then another drill a while later: the demo's writes have stopped, so the newest ledger row is
/// older than the freshness bound — and still exactly what the source holds before the target. Passed.
#[test]
fn a_quiet_source_is_not_a_stale_restore() {
    let demo = Demo::start();
    std::thread::sleep(Duration::from_secs(3));
    let password = std::fs::read_to_string(demo.dir.join("source.password")).unwrap();
    let drill = drill_file(
        &demo,
        "quiet",
        "  password-env: SD_TEST_SOURCE_PW\n",
        "",
        "  - canary: {}\n  - freshness: { table: credit_transactions, column: created_at, max-lag: 2s }\n",
    );
    let out = run(&demo, &drill, &[("SD_TEST_SOURCE_PW", password.trim())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r = demo.last_report();
    let fresh = r["checks"].as_array().unwrap().iter().find(|c| c["kind"] == "freshness").unwrap().clone();
    assert!(fresh["detail"].as_str().unwrap().contains("is the source's newest at or before the target"), "{fresh:#}");
}

/// A TLS impostor: answers the SSLRequest with `S`, completes TLS with a self-signed certificate (rustls, the
/// stack stackdrill uses), reads the startup message and asks for a cleartext password. Returns its port,
/// how many logins reached the password request, and every password it received.
pub(crate) fn tls_impostor()
-> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (asked2, received2) = (asked.clone(), received.clone());
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let (config, asked, received) = (config.clone(), asked2.clone(), received2.clone());
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut req = [0u8; 8];
                if s.read_exact(&mut req).is_err() || s.write_all(b"S").is_err() {
                    return;
                }
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut len = [0u8; 4];
                if tls.read_exact(&mut len).is_err() {
                    return; // the client gave up during the handshake
                }
                let mut startup = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                if tls.read_exact(&mut startup).is_err() {
                    return;
                }
                // AuthenticationCleartextPassword.
                if tls.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).and_then(|()| tls.flush()).is_err() {
                    return;
                }
                asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut tag = [0u8; 1];
                if tls.read_exact(&mut tag).is_ok() && tag[0] == b'p' && tls.read_exact(&mut len).is_ok() {
                    let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                    if tls.read_exact(&mut body).is_ok() {
                        received
                            .lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&body).trim_end_matches('\0').to_string());
                    }
                }
            });
        }
    });
    (port, asked, received)
}

/// With no `sslmode` and no `ca-bundle` the source must prove who it is (verify-full against the system's
/// trust store), so a TLS impostor with a self-signed certificate is refused before any login; with
/// `sslmode: require` written, the login goes only through SCRAM with channel binding, so its cleartext
/// password request is refused. The impostor never receives the password either way, and `drill
/// validate` warns about `require`.
#[test]
fn a_tls_impostor_never_receives_the_source_password() {
    let dir = Scratch::new();
    let (port, asked, received) = tls_impostor();
    let pw = dir.path().join("source.password");
    std::fs::write(&pw, "hunter2-source-password\n").unwrap();
    let drill = dir.path().join("impostor.yaml");
    let write = |extra: &str| {
        std::fs::write(
            &drill,
            format!(
                "restore: {{ local-postgres: {{ base-backups: /nonexistent/b, wal-archive: /nonexistent/w, scratch-root: /tmp }} }}\n\
                 source: {{ host: 127.0.0.1, port: {port}, user: app, dbname: app, password-file: {}{extra} }}\n\
                 objectives: {{ rto: 10m, rpo: 1m }}\n",
                pw.display()
            ),
        )
        .unwrap()
    };
    let run = || {
        let started = Instant::now();
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", dir.path())
            .args(["drill", "run"])
            .arg(&drill)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
        out
    };

    write("");
    let out = run();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("certificate") && stderr.contains("ca-bundle"), "{stderr}");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 0, "the login went past an unverified certificate");
    assert!(received.lock().unwrap().is_empty(), "the impostor received {:?}", received.lock().unwrap());

    write(", sslmode: require");
    let out = run();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("channel binding"), "{stderr}");
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the impostor was never asked to log in");
    assert!(received.lock().unwrap().is_empty(), "the impostor received {:?}", received.lock().unwrap());
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let out = stackdrill().args(["drill", "validate"]).arg(&drill).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning:") && stderr.contains("`source.sslmode` require does not check"), "{stderr}");
}

/// A FIFO or `/dev/zero` named as the password file is refused at once with an error that names it: never
/// a drill hung on a reader past its deadline and SIGTERM, nor one reading until memory runs out.
#[test]
fn a_fifo_or_a_device_as_password_file_is_refused_at_once() {
    let dir = Scratch::new();
    let fifo = dir.path().join("pw.fifo");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let drill = dir.path().join("fifo-pw.yaml");
    for (file, kind) in [(fifo.as_path(), "a FIFO"), (Path::new("/dev/zero"), "a character device")] {
        std::fs::write(
            &drill,
            format!(
                "restore: {{ local-postgres: {{ base-backups: /nonexistent/b, wal-archive: /nonexistent/w, scratch-root: /tmp }} }}\n\
                 source: {{ host: 127.0.0.1, port: 1, user: app, dbname: app, password-file: {} }}\n\
                 objectives: {{ rto: 10m, rpo: 1m }}\n",
                file.display()
            ),
        )
        .unwrap();
        let started = Instant::now();
        let out = stackdrill()
            .env("STACKDRILL_STATE_DIR", dir.path())
            .args(["drill", "run"])
            .arg(&drill)
            .timeout(Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(started.elapsed() < Duration::from_secs(3), "{kind}: took {:?}: {stderr}", started.elapsed());
        assert_eq!(out.status.code(), Some(2), "{kind}: {stderr}");
        assert!(
            stderr.contains("password-file") && stderr.contains(&format!("is {kind}, not a regular file")),
            "{kind}: {stderr}"
        );
    }
}

/// `sql` checks cannot write, run programs or reach the network: a query is one statement (nothing after a
/// `commit`), and it runs as a non-superuser read-only role stackdrill creates in the restored copy, where
/// `dblink`'s functions are no longer PUBLIC's and foreign servers have no user mapping left (the report
/// lists both among what was neutralised). Before, the checks ran in the superuser's session: `copy … to
/// program` ran a shell command and `dblink_exec` wrote to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_checks_cannot_write_run_programs_or_reach_the_source() {
    let demo = Demo::start();
    let password = std::fs::read_to_string(demo.dir.join("source.password")).unwrap();
    let password = password.trim();
    let admin = demo.admin("app").await;
    admin
        .batch_execute(&format!(
            "create extension dblink; create extension postgres_fdw;
             create server prod_fdw foreign data wrapper postgres_fdw options (host '127.0.0.1', port '{}', dbname 'app');
             create user mapping for public server prod_fdw options (user 'app', password '{password}');",
            demo.port
        ))
        .await
        .unwrap();
    switch_and_archive(&admin).await;

    // Two statements are refused when the drill loads.
    let pw = format!("  password-file: {}\n", demo.dir.join("source.password").display());
    let multi = drill_file(
        &demo,
        "multi",
        &pw,
        "",
        "  - sql: { name: sneaky, query: \"commit; create table x()\", expect: { rows: 0 } }\n",
    );
    let out = stackdrill().args(["drill", "validate"]).arg(&multi).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`verify[0].sql.query` holds more than one statement"), "{stderr}");
    let out = run(&demo, &multi, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let marker = demo.root.path().join("copy-to-program-ran");
    let connstr = format!("host=127.0.0.1 port={} user=app password={password} dbname=app sslmode=require", demo.port);
    let drill = drill_file(
        &demo,
        "readonly",
        &pw,
        "",
        &format!(
            "  - sql: {{ name: program, query: \"copy (select 1) to program 'touch {}'\", expect: {{ rows: 0 }} }}\n\
             \x20 - sql: {{ name: dblink, query: \"select dblink_exec('{connstr}', 'create table reached_the_source ()')\", expect: {{ rows: 1 }} }}\n\
             \x20 - sql: {{ name: create, query: \"create table x ()\", expect: {{ rows: 0 }} }}\n\
             \x20 - sql: {{ name: reads, query: \"select count(*) from accounts\", expect: {{ min: 1 }} }}\n",
            marker.display()
        ),
    );
    let out = run(&demo, &drill, &[]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    let r = demo.last_report();
    assert_ne!(r["result"], "passed", "{r:#}");
    let status = |name: &str| {
        let c = r["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{r:#}"));
        (c["status"].as_str().unwrap().to_string(), c["detail"].as_str().unwrap().to_string())
    };
    let (s, d) = status("program");
    assert_eq!(s, "error", "{d}");
    assert!(d.contains("pg_execute_server_program") || d.contains("superuser"), "{d}");
    assert!(!marker.exists(), "COPY … TO PROGRAM ran");
    let (s, d) = status("dblink");
    assert_eq!(s, "error", "{d}");
    assert!(d.contains("permission denied"), "{d}");
    let reached = scalar(&admin, "select count(*) from pg_class where relname = 'reached_the_source'").await;
    assert_eq!(reached, "0", "dblink_exec wrote to the source");
    assert_eq!(status("create").0, "error");
    let (s, d) = status("reads");
    assert_eq!(s, "passed", "{d}");
    let neutralised: Vec<&str> = r["neutralised"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(neutralised.iter().any(|n| n.contains("extension `dblink` in database `app`")), "{neutralised:?}");
    assert!(neutralised.iter().any(|n| n.contains("foreign server `prod_fdw` in database `app`")), "{neutralised:?}");
}
