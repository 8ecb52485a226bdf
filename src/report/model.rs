//! The drill report, schema `stackdrill.report/v1`. JSON is the record; Markdown and HTML render the same
//! content. These types are the signed format: the engine's own types convert into them (`drill/record.rs`)
//! and none of them is used by the engine as its working state, so changing an engine struct cannot change
//! signed bytes unnoticed; `tests/golden/report-v1.json` pins the serialisation byte for byte.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub(crate) const SCHEMA: &str = "stackdrill.report/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    Passed,
    Failed,
    Error,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Error => "error",
        }
    }
}

/// Each status prints as it is written in the JSON.
macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Verdict, PhaseStatus, CheckStatus, TeardownStatus);

/// How a phase ended (`phases[].status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PhaseStatus {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl PhaseStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Passed => "passed",
            PhaseStatus::Failed => "failed",
            PhaseStatus::Error => "error",
            PhaseStatus::Skipped => "skipped",
        }
    }
}

/// How a check ended (`checks[].status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CheckStatus {
    Passed,
    Failed,
    Skipped,
    Error,
}

impl CheckStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passed => "passed",
            CheckStatus::Failed => "failed",
            CheckStatus::Skipped => "skipped",
            CheckStatus::Error => "error",
        }
    }

    /// Failed or could not run: either makes the drill fail.
    pub(crate) fn is_bad(self) -> bool {
        matches!(self, CheckStatus::Failed | CheckStatus::Error)
    }
}

/// What teardown did (`teardown.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TeardownStatus {
    Done,
    NothingToDo,
    Failed,
}

impl TeardownStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TeardownStatus::Done => "done",
            TeardownStatus::NothingToDo => "nothing-to-do",
            TeardownStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) schema: String,
    pub(crate) id: String,
    pub(crate) drill: String,
    pub(crate) description: Option<String>,
    pub(crate) result: Verdict,
    /// Why the result is not `passed`, in one line.
    pub(crate) reason: Option<String>,
    /// What to do about the error the run ended in (the stopped phase's hint), for the CLI's summary; never
    /// part of the record.
    #[serde(skip)]
    pub(crate) hint: Option<String>,
    /// The operator stopped the run (a stop signal) before it finished: not a failed restore.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) interrupted: bool,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
    pub(crate) tool: Tool,
    pub(crate) operator: String,
    pub(crate) trigger: String,
    /// The schedule occurrence this run was started for (`schedule run`, `--scheduled-for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scheduled_for: Option<DateTime<Utc>>,
    /// The drill's next scheduled occurrence after this run, from its `schedule:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) next_scheduled: Option<DateTime<Utc>>,
    pub(crate) drill_file: FileRef,
    pub(crate) source: Source,
    /// Every database connection the drill made (source, replica, scratch) and how it was protected.
    #[serde(default)]
    pub(crate) connections: Vec<Connection>,
    /// What was switched off in the restored copy before anything connected to it, so it could not act.
    #[serde(default)]
    pub(crate) neutralised: Vec<String>,
    /// What the drill found and switched off inside the restored database before any check ran (pg_cron
    /// jobs, pg_net's queue, foreign servers); absent when nothing of the kind was there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) inert: Option<Inert>,
    pub(crate) target: Target,
    /// Object stores restored to the same instant as the database (`also-restore`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) also_restored: Vec<AlsoRestored>,
    pub(crate) objectives: Objectives,
    pub(crate) measured: Measured,
    pub(crate) phases: Vec<Phase>,
    pub(crate) checks: Vec<Check>,
    pub(crate) teardown: TeardownRecord,
    pub(crate) runbook: Option<FileRef>,
    pub(crate) controls: Vec<String>,
    /// Who took part besides the operator (`--participant`).
    #[serde(default)]
    pub(crate) participants: Vec<String>,
    /// Where the drill departed from its runbook or objectives, each with what to do about it.
    #[serde(default)]
    pub(crate) deviations: Vec<Deviation>,
    /// The sha256 of the report before this one in the same store (the hash chain); `None` for the first.
    #[serde(default)]
    pub(crate) previous_sha256: Option<String>,
    /// The key that signed this report (the signature is beside it: `<report>.json.sig`, `.dsse.json`).
    #[serde(default)]
    pub(crate) signing: Option<SigningRecord>,
}

impl Report {
    /// The restore and ready phases: how long the copy took to come back.
    pub(crate) fn restore_seconds(&self) -> f64 {
        self.phases.iter().filter(|p| p.name == "restore" || p.name == "ready").map(|p| p.seconds).sum()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Deviation {
    pub(crate) what: String,
    pub(crate) remediation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SigningRecord {
    pub(crate) algorithm: String,
    pub(crate) key_id: String,
    pub(crate) fingerprint: String,
    /// The raw Ed25519 public key, base64.
    pub(crate) public_key: String,
}

impl FileRef {
    /// The file's path, sha256, and (in a git repository) the commit that last changed it.
    pub(crate) fn of(path: &std::path::Path) -> std::io::Result<FileRef> {
        let sha256 = crate::report::chain::sha256_hex(&std::fs::read(path)?);
        let (git_commit, git_dirty) = git_state(path);
        Ok(FileRef { path: path.display().to_string(), sha256: Some(sha256), git_commit, git_dirty })
    }
}

fn git_state(path: &std::path::Path) -> (Option<String>, bool) {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().unwrap_or_default();
    let git = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new("git")
            .current_dir(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit =
        git(&["log".as_ref(), "-1".as_ref(), "--format=%H".as_ref(), "--".as_ref(), name]).filter(|c| !c.is_empty());
    let dirty = commit.is_some()
        && git(&["status".as_ref(), "--porcelain".as_ref(), "--".as_ref(), name]).is_some_and(|s| !s.is_empty());
    (commit, dirty)
}

/// Where a run departed from its objectives or procedure, each with what to do next.
pub(crate) fn deviations(r: &Report) -> Vec<Deviation> {
    let mut out = Vec::new();
    for c in &r.checks {
        let remediation = match c.status {
            CheckStatus::Failed => {
                "investigate the data difference before relying on this backup; re-run the drill after the fix"
            }
            CheckStatus::Error => {
                "the check could not run: fix its cause (timeout, permissions, missing table) and re-run"
            }
            _ => continue,
        };
        out.push(Deviation {
            what: format!("check `{}` {}: {}", c.name, c.status.as_str(), c.detail),
            remediation: remediation.into(),
        });
    }
    if r.measured.rto_seconds.is_some() && !r.measured.rto_met {
        out.push(Deviation {
            what: format!(
                "RTO objective missed ({:.0} s > {:.0} s)",
                r.measured.rto_seconds.unwrap_or(0.0),
                r.objectives.rto_seconds
            ),
            remediation:
                "review the restore phases' timings; raise the objective only with the service owner's sign-off".into(),
        });
    }
    if r.measured.rpo_seconds.is_some() && !r.measured.rpo_met {
        out.push(Deviation {
            what: format!(
                "RPO objective missed ({:.0} s > {:.0} s)",
                r.measured.rpo_seconds.unwrap_or(0.0),
                r.objectives.rpo_seconds
            ),
            remediation: "check WAL archiving / backup frequency for gaps before the target time".into(),
        });
    }
    if r.teardown.status == TeardownStatus::Failed {
        out.push(Deviation {
            what: format!("teardown failed: {}", r.teardown.detail),
            remediation: "run `stackdrill drill cleanup` and confirm the scratch is gone".into(),
        });
    }
    out.extend(r.connections.iter().filter_map(Connection::deviation));
    if r.drill_file.git_dirty {
        out.push(Deviation {
            what: "the drill file had uncommitted changes".into(),
            remediation: "commit drill files before scheduled runs so the record names the exact procedure".into(),
        });
    }
    out
}

/// One database connection and how it was protected (TLS as the server reported it in `pg_stat_ssl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Connection {
    /// `source` or `scratch`.
    pub(crate) role: String,
    /// `user@host:port/dbname` or the socket path; never a secret.
    pub(crate) endpoint: String,
    /// `tcp` or `unix-socket` (a scratch on this machine, in a 0700 directory).
    pub(crate) transport: String,
    pub(crate) sslmode: String,
    /// `TLSv1.3` etc.; `None` when the connection is not encrypted.
    pub(crate) tls_version: Option<String>,
    pub(crate) cipher: Option<String>,
    /// The server's certificate chains to the configured CA bundle.
    pub(crate) server_verified: bool,
    /// ...and names the host connected to (verify-full).
    pub(crate) hostname_verified: bool,
    /// Where the credential came from (`secrets-manager`, `rds-iam-token`, `password-env`, ...), never its value.
    pub(crate) credential: String,
    /// The bounds the session carried (`statement_timeout=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<String>,
}

impl Connection {
    /// How it was protected, in one line for people.
    pub(crate) fn protection(&self) -> String {
        let tls = match (&self.tls_version, self.transport.as_str()) {
            (None, "unix-socket") => "local socket in a private directory (no network)".to_string(),
            (None, _) => format!("NOT encrypted (sslmode {})", self.sslmode),
            (Some(v), _) => {
                let who = match (self.server_verified, self.hostname_verified) {
                    (true, true) => "server certificate and host name verified",
                    (true, false) => "server certificate verified, host name not checked",
                    _ => "server identity NOT verified",
                };
                format!("{v} ({}), {who} (sslmode {})", self.cipher.as_deref().unwrap_or("?"), self.sslmode)
            }
        };
        let session = self.session.as_deref().map(|s| format!("; {s}")).unwrap_or_default();
        format!("{tls}; credential: {}{session}", self.credential)
    }

    /// The deviation this connection is, if any: unencrypted over a network, or a server not verified.
    fn deviation(&self) -> Option<Deviation> {
        if self.transport != "tcp" {
            return None;
        }
        let (what, remediation) = if self.tls_version.is_none() {
            (
                format!("{} connection `{}` was not encrypted (sslmode {})", self.role, self.endpoint, self.sslmode),
                "set `sslmode: verify-full` with `ca-bundle` (e.g. the RDS global bundle) and enable TLS on the server",
            )
        } else if !self.server_verified {
            (
                format!(
                    "{} connection `{}` was encrypted ({}) but the server's identity was not verified (sslmode {})",
                    self.role,
                    self.endpoint,
                    self.tls_version.as_deref().unwrap_or("TLS"),
                    self.sslmode
                ),
                "give `ca-bundle` (e.g. the RDS global bundle) so sslmode verify-full checks the certificate and name",
            )
        } else {
            return None;
        };
        Some(Deviation { what, remediation: remediation.into() })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Tool {
    pub(crate) name: String,
    pub(crate) version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileRef {
    pub(crate) path: String,
    pub(crate) sha256: Option<String>,
    /// The git commit that last changed the file, when it is in a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) git_commit: Option<String>,
    /// The file differs from that commit (uncommitted changes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) git_dirty: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Source {
    pub(crate) provider: String,
    pub(crate) details: BTreeMap<String, String>,
    pub(crate) backup: Option<Backup>,
    /// Where the scratch ran (no credentials).
    pub(crate) scratch: Option<String>,
}

/// The backup a restore started from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Backup {
    pub(crate) id: String,
    pub(crate) location: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
}

/// One check and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) status: CheckStatus,
    /// One line, never containing row contents or secrets.
    pub(crate) detail: String,
    pub(crate) seconds: f64,
    /// The newest timestamp a `freshness` check found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) newest: Option<DateTime<Utc>>,
    /// A `sql` check's query, as the drill file has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    /// A `sql` check's expectation, in words (`equals 0`, `at least 1000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expect: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Target {
    pub(crate) time: Option<DateTime<Utc>>,
    pub(crate) selection: String,
    pub(crate) seed: Option<u64>,
    pub(crate) recovery: String,
    pub(crate) window: Option<WindowRecord>,
}

/// One bucket restored beside the database: from where, to which instant, into what, and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AlsoRestored {
    /// How the drill file names it.
    pub(crate) name: String,
    pub(crate) provider: String,
    /// `s3://bucket/prefix`.
    pub(crate) source: String,
    /// `versions`, or the AWS Backup recovery point restored.
    pub(crate) from: String,
    pub(crate) window: Option<WindowRecord>,
    /// The instant the bucket was restored to (the database's).
    pub(crate) restored_to: Option<DateTime<Utc>>,
    /// The scratch bucket (`region/name`).
    pub(crate) scratch: Option<String>,
    pub(crate) encryption: Option<String>,
    pub(crate) objects: Option<u64>,
    pub(crate) bytes: Option<u64>,
    /// Restore start until the last object was copied.
    pub(crate) rto_seconds: Option<f64>,
    pub(crate) status: PhaseStatus,
    pub(crate) detail: Option<String>,
    pub(crate) teardown: TeardownRecord,
}

impl AlsoRestored {
    /// One line for people: what came back from where, to which instant, and how it ended.
    pub(crate) fn summary(&self) -> String {
        let t = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut out = format!("`{}` ({}): {} from {}", self.name, self.provider, self.source, self.from);
        if let Some(at) = &self.restored_to {
            out.push_str(&format!(", restored to {}", t(at)));
        }
        if let Some(w) = &self.window {
            out.push_str(&format!(" (window {} → {})", t(&w.earliest), t(&w.latest)));
        }
        if let Some(s) = &self.scratch {
            out.push_str(&format!(" into `{s}`"));
        }
        if let Some(e) = &self.encryption {
            out.push_str(&format!(", {e}"));
        }
        if let (Some(n), Some(b)) = (self.objects, self.bytes) {
            out.push_str(&format!("; {n} objects, {b} bytes"));
        }
        if let Some(s) = self.rto_seconds {
            out.push_str(&format!(" in {s:.1} s"));
        }
        out.push_str(&format!("; {}", self.status.as_str()));
        if let Some(d) = &self.detail {
            out.push_str(&format!(": {d}"));
        }
        out.push_str(&format!("; teardown {}: {}", self.teardown.status.as_str(), self.teardown.detail));
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WindowRecord {
    pub(crate) earliest: DateTime<Utc>,
    pub(crate) latest: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Objectives {
    pub(crate) rto_seconds: f64,
    pub(crate) rpo_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// Restore start until the scratch accepts queries as a primary.
    pub(crate) rto_seconds: Option<f64>,
    /// Target time minus the newest commit present in the restore.
    pub(crate) rpo_seconds: Option<f64>,
    /// How the RPO figure was obtained.
    pub(crate) rpo_basis: String,
    pub(crate) newest_commit: Option<DateTime<Utc>>,
    pub(crate) rto_met: bool,
    pub(crate) rpo_met: bool,
    /// The recovery point the restore really reached: the newest heartbeat row in it (a `heartbeat` check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recovery_point: Option<DateTime<Utc>>,
    /// What the heartbeat RPO is measured from: the target, or for `latest` the source's newest heartbeat
    /// when the drill checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recovery_point_reference: Option<DateTime<Utc>>,
}

/// What was found inside a restored database that could act, and what was done about it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Inert {
    /// pg_cron jobs found (`cron.job`), by id and schedule; never their commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) cron_jobs: Vec<InertCronJob>,
    /// How many of them were active and were set inactive.
    pub(crate) cron_jobs_deactivated: u64,
    /// Requests waiting in pg_net's queue (`net.http_request_queue`), when pg_net is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pg_net_queued: Option<i64>,
    /// Foreign servers (wrappers, postgres_fdw): `name (wrapper)`. Reported, not changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) foreign_servers: Vec<String>,
    /// What limits the findings (a role that row security hides other roles' jobs from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
}

/// One pg_cron job of a restored copy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct InertCronJob {
    pub(crate) jobid: i64,
    pub(crate) schedule: String,
    /// It was active when found.
    pub(crate) was_active: bool,
    /// It is stackdrill's own heartbeat writer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) heartbeat: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) seconds: f64,
    pub(crate) status: PhaseStatus,
    pub(crate) detail: Option<String>,
    /// AWS API calls the phase made, by operation (retried attempts included).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) api_calls: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TeardownRecord {
    pub(crate) status: TeardownStatus,
    pub(crate) at: DateTime<Utc>,
    pub(crate) detail: String,
}
