//! The AWS emulator: a real `moto_server` (pinned in tests/requirements.txt, installed into .venv by
//! scripts/test) on a free loopback port, recording every request so tests can assert what was sent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;

pub const REGION: &str = "ap-southeast-1";

pub struct Moto {
    child: Child,
    /// Where clients go: the mending proxy in front of moto (see proxy.rs).
    pub url: String,
    direct: String,
    pub proxy: super::proxy::Proxy,
    recording: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin")
}

impl Moto {
    pub fn start() -> Moto {
        let bin = venv().join("moto_server");
        assert!(
            bin.is_file(),
            "the AWS emulator is missing: {} does not exist.\ninstall it with \
             `python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt` (scripts/test does this)",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let recording = dir.path().join("recording.jsonl");
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        // moto_server, with KMS Sign mended to answer as AWS does (tests/moto_server.py says how).
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/moto_server.py");
        let child = Command::new(venv().join("python"))
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let direct = format!("http://127.0.0.1:{port}");
        let proxy = super::proxy::Proxy::start(&direct);
        let mut moto = Moto { child, url: proxy.url.clone(), direct, proxy, recording, _dir: dir };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                let log = std::fs::read_to_string(moto._dir.path().join("moto.log")).unwrap_or_default();
                panic!("moto_server exited with {status} at start:\n{log}");
            }
            assert!(start.elapsed() < Duration::from_secs(60), "moto_server did not listen within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto.post("/moto-api/recorder/start-recording");
        moto
    }

    fn post(&self, path: &str) {
        let addr = self.direct.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"), "{path}: {out}");
    }

    /// The environment `env` sets (besides removing AWS_PROFILE and AWS_SESSION_TOKEN), for any command.
    pub fn env_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("STACKDRILL_STATE_DIR", self._dir.path().join("state").display().to_string()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Environment for a `stackdrill` process aimed at this emulator with test credentials.
    pub fn env(&self, cmd: &mut assert_cmd::Command) {
        cmd.envs(self.env_pairs()).env_remove("AWS_PROFILE").env_remove("AWS_SESSION_TOKEN");
    }

    pub async fn sdk(&self) -> aws_types::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_types::region::Region::new(REGION))
            .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await
    }

    /// Runs Python with boto3 (installed with moto) against the emulator; returns stdout. For setup the
    /// Rust side has no SDK crate for (EC2 networking).
    pub fn python(&self, code: &str) -> String {
        self.python_at(&self.url, code)
    }

    /// [`Moto::python`] straight to moto, past the proxy: for bulk setup (boto3's uploads wait for a
    /// `100 Continue` the proxy never sends).
    pub fn python_direct(&self, code: &str) -> String {
        self.python_at(&self.direct, code)
    }

    fn python_at(&self, url: &str, code: &str) -> String {
        let out = Command::new(venv().join("python"))
            .args(["-c", code])
            .env("AWS_ENDPOINT_URL", url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", REGION)
            .output()
            .unwrap();
        assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// How many requests moto has recorded so far (for [`Moto::query_actions_since`]).
    pub fn mark(&self) -> usize {
        std::fs::read_to_string(&self.recording).unwrap_or_default().lines().count()
    }

    /// The form parameters of every Query-protocol request recorded after the first `skip`.
    fn recorded_forms(&self, skip: usize) -> Vec<Vec<(String, String)>> {
        Moto::forms_in(&self.recording, skip)
    }

    fn forms_in(recording: &Path, skip: usize) -> Vec<Vec<(String, String)>> {
        use base64::Engine;
        let text = std::fs::read_to_string(recording).unwrap_or_default();
        let mut out = Vec::new();
        for line in text.lines().skip(skip) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let body = v["body"].as_str().unwrap_or_default();
            let body = if v["body_encoded"].as_bool() == Some(true) {
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body).unwrap()).unwrap_or_default()
            } else {
                body.to_string()
            };
            out.push(url::form_urlencoded::parse(body.as_bytes()).into_owned().collect());
        }
        out
    }

    /// The IAM action (`rds:RestoreDBInstanceToPointInTime`) of every Query-protocol call recorded after `mark`.
    pub fn query_actions_since(&self, mark: usize) -> Vec<String> {
        let mut out: Vec<String> = self
            .recorded_forms(mark)
            .iter()
            .filter_map(|params| {
                let get = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
                let service = match get("Version").as_deref() {
                    Some("2014-10-31") => "rds",
                    Some("2010-08-01") => "cloudwatch",
                    Some("2010-03-31") => "sns",
                    _ => return None,
                };
                Some(format!("{service}:{}", get("Action")?))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Plays RDS's part in a scratch login: moto runs no database, so whenever the drill sets a master
    /// password (ModifyDBInstance, ModifyDBCluster) the stand-in cluster's `postgres` role gets it, as a
    /// SCRAM verifier, the way a real RDS instance's engine does (it logs in by scram-sha-256 over TLS).
    /// Polls the recording in a thread of its own until the demo's cluster is gone.
    pub fn play_master_password(&self, demo: &super::harness::Demo) {
        let (recording, socket, port) = (self.recording.clone(), demo.dir.join("source"), demo.port);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut c = tokio_postgres::Config::new();
                c.host_path(&socket).port(port).user("postgres").dbname("postgres");
                let Ok((admin, conn)) = c.connect(tokio_postgres::NoTls).await else { return };
                tokio::spawn(conn);
                let mut applied = 0;
                loop {
                    let passwords: Vec<String> = Moto::forms_in(&recording, 0)
                        .into_iter()
                        .filter(|p| {
                            p.iter().any(|(k, v)| k == "Action" && (v == "ModifyDBInstance" || v == "ModifyDBCluster"))
                        })
                        .filter_map(|p| param(&p, "MasterUserPassword").map(str::to_string))
                        .collect();
                    for pw in &passwords[applied.min(passwords.len())..] {
                        let verifier = postgres_protocol::password::scram_sha_256(pw.as_bytes());
                        if admin.batch_execute(&format!("alter role postgres password '{verifier}'")).await.is_err() {
                            return;
                        }
                    }
                    applied = passwords.len();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        });
    }

    /// The form parameters of every recorded Query-protocol call of `action`.
    pub fn calls(&self, action: &str) -> Vec<Vec<(String, String)>> {
        self.recorded_forms(0).into_iter().filter(|p| p.iter().any(|(k, v)| k == "Action" && v == action)).collect()
    }
}

pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The `Tags.Tag.N.Key/Value` (or `Tags.member.N`) pairs of a recorded call.
pub fn tags(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in 1.. {
        let key = ["Tags.Tag", "Tags.member"]
            .iter()
            .find_map(|p| param(params, &format!("{p}.{n}.Key")).map(|k| (p.to_string(), k.to_string())));
        let Some((prefix, k)) = key else { break };
        let v = param(params, &format!("{prefix}.{n}.Value")).unwrap_or_default().to_string();
        out.push((k, v));
    }
    out
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
