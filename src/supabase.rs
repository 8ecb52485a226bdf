//! A client for the few Supabase Management API endpoints a branch drill needs
//! (`https://api.supabase.com/v1`, described by the OpenAPI document the Supabase CLI publishes). Every
//! request is one of [`Call`]'s variants: the client has no way to reach `…/database/backups/restore-pitr`,
//! `…/restore` or any other endpoint that changes the live project — a drill must never restore in place.
//!
//! The token (a personal access token or an OAuth token) is read from the environment when the client is
//! made and goes only into the `Authorization` header; it is never logged or stored.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

pub(crate) const DEFAULT_API: &str = "https://api.supabase.com";

/// The only requests the client can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call<'a> {
    /// `GET /v1/projects/{ref}`: its region and status.
    GetProject(&'a str),
    /// `GET /v1/projects/{ref}/database/backups`: region, PITR, the backups (read only).
    ListBackups(&'a str),
    /// `POST /v1/projects/{ref}/branches`.
    CreateBranch(&'a str),
    /// `GET /v1/projects/{ref}/branches`.
    ListBranches(&'a str),
    /// `GET /v1/branches/{branch_ref}`: status and connection details.
    GetBranch(&'a str),
    /// `DELETE /v1/branches/{branch_ref}`.
    DeleteBranch(&'a str),
    /// `GET /v1/projects/{ref}/actions`: a branch's action runs (their `clone` step is the data copy).
    ListActions(&'a str),
    /// `GET /v1/projects/{ref}/config/database/pooler`: the Supavisor pooler (the IPv4 path).
    GetPooler(&'a str),
    /// `GET /v1/projects`: the projects the token can see (a project restored by hand appears here).
    ListProjects,
    /// `DELETE /v1/projects/{ref}`: only a project [`deletable`] let through (this run's own restore).
    DeleteProject(&'a Deletable),
}

impl Call<'_> {
    /// Method and path template, as the OpenAPI document writes them.
    pub(crate) fn template(&self) -> (&'static str, &'static str) {
        match self {
            Call::GetProject(_) => ("GET", "/v1/projects/{ref}"),
            Call::ListBackups(_) => ("GET", "/v1/projects/{ref}/database/backups"),
            Call::CreateBranch(_) => ("POST", "/v1/projects/{ref}/branches"),
            Call::ListBranches(_) => ("GET", "/v1/projects/{ref}/branches"),
            Call::GetBranch(_) => ("GET", "/v1/branches/{branch_id_or_ref}"),
            Call::DeleteBranch(_) => ("DELETE", "/v1/branches/{branch_id_or_ref}"),
            Call::ListActions(_) => ("GET", "/v1/projects/{ref}/actions"),
            Call::GetPooler(_) => ("GET", "/v1/projects/{ref}/config/database/pooler"),
            Call::ListProjects => ("GET", "/v1/projects"),
            Call::DeleteProject(_) => ("DELETE", "/v1/projects/{ref}"),
        }
    }

    fn path(&self) -> String {
        let (_, template) = self.template();
        let v: &str = match self {
            Call::ListProjects => "",
            Call::DeleteProject(d) => &d.0,
            Call::GetProject(v)
            | Call::ListBackups(v)
            | Call::CreateBranch(v)
            | Call::ListBranches(v)
            | Call::GetBranch(v)
            | Call::DeleteBranch(v)
            | Call::ListActions(v)
            | Call::GetPooler(v) => v,
        };
        template.replace("{ref}", v).replace("{branch_id_or_ref}", v)
    }

    /// Safe to send again after a 5xx or a dropped connection (a create is not: it could make two).
    fn idempotent(&self) -> bool {
        !matches!(self, Call::CreateBranch(_))
    }
}

/// A project the guard let through for `DELETE /v1/projects/{ref}`: only [`deletable`] makes one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Deletable(String);

impl Deletable {
    pub(crate) fn project_ref(&self) -> &str {
        &self.0
    }
}

/// The guard on deleting a project: its name is exactly this run's, its ref is not the source's (and is a
/// ref), and it was created after the run began. `Err` says which failed.
pub(crate) fn deletable(
    p: &Project,
    run_name: &str,
    source_ref: &str,
    run_started: chrono::DateTime<chrono::Utc>,
) -> Result<Deletable, String> {
    if !valid_ref(&p.project_ref) {
        return Err(format!("`{}` is not a project ref", p.project_ref));
    }
    if p.project_ref == source_ref {
        return Err(format!("project {} is the drill's source", p.project_ref));
    }
    if p.name != run_name {
        return Err(format!("project {} is named `{}`, not this run's `{run_name}`", p.project_ref, p.name));
    }
    match parse_time(&p.created_at) {
        Some(t) if t > run_started => Ok(Deletable(p.project_ref.clone())),
        Some(t) => Err(format!(
            "project {} was created at {}, before this run began ({})",
            p.project_ref,
            t.to_rfc3339(),
            run_started.to_rfc3339()
        )),
        None => Err(format!("project {}'s creation time `{}` is not a time", p.project_ref, p.created_at)),
    }
}

/// A project ref (a branch's too) as the OpenAPI document defines it: exactly 20 lowercase letters.
pub(crate) fn valid_ref(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|b| b.is_ascii_lowercase())
}

/// `CreateBranchBody.desired_instance_size`, the document's enum.
pub(crate) const INSTANCE_SIZES: &[&str] = &[
    "pico",
    "nano",
    "micro",
    "small",
    "medium",
    "large",
    "xlarge",
    "2xlarge",
    "4xlarge",
    "8xlarge",
    "12xlarge",
    "16xlarge",
    "24xlarge",
    "24xlarge_optimized_memory",
    "24xlarge_optimized_cpu",
    "24xlarge_high_memory",
    "48xlarge",
    "48xlarge_optimized_memory",
    "48xlarge_optimized_cpu",
    "48xlarge_high_memory",
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{call}: {status} {message}")]
    Status { call: String, status: u16, message: String },
    #[error("{call}: {detail}")]
    Transport { call: String, detail: String },
    #[error("{0}")]
    Setup(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self.status() {
            Some(401) => {
                Some("the token was refused: check the variable named by `token-env` (a personal access token)")
            }
            Some(403) => Some("the token may not do this: use a token of a member with access to the project"),
            Some(404) => Some("check `project-ref` (Project Settings → General in the dashboard)"),
            _ => None,
        }
    }
}

/// The client's clock: the time a rate limit resets at is read against it, and its waits go through it,
/// so a test can inject one that does not sleep.
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> chrono::DateTime<chrono::Utc>;
    fn sleep(&self, d: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// The wall clock and tokio's timer.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
    fn sleep(&self, d: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// How long a 429 asks to wait, from the headers the API documents (`X-RateLimit-Limit`, `-Remaining`,
/// `-Reset`; limits are per minute). `X-RateLimit-Reset` is read as seconds until the reset when small, as
/// a Unix time in seconds (or milliseconds) when it is one; a reset in the past waits one second. `None`
/// when the header is missing or unreadable.
pub(crate) fn rate_limit_wait(reset: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v: f64 = reset?.trim().parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let secs = if v >= 1e12 {
        v / 1000.0 - now.timestamp_millis() as f64 / 1000.0
    } else if v >= 1e9 {
        v - now.timestamp_millis() as f64 / 1000.0
    } else {
        v
    };
    // Clamped before it becomes a Duration: a huge reset (hostile or mistaken) must not overflow it.
    Some(Duration::from_secs_f64(secs.clamp(1.0, MAX_RATE_LIMIT_WAIT.as_secs_f64())))
}

/// The longest one rate-limit wait may be: the limits are per minute, so a full minute is normal.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(90);

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

pub(crate) struct Client {
    base: String,
    token: String,
    http: HttpClient<Connector, Full<Bytes>>,
    clock: std::sync::Arc<dyn Clock>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `base` (https; http only to a loopback address, for a local stand-in) with the token in
    /// the environment variable `token_env`.
    pub(crate) fn new(base: &str, token_env: &str) -> Result<Client, ApiError> {
        #[expect(clippy::disallowed_methods, reason = "a drill's `token-env` names its variable (documented)")]
        let token = std::env::var(token_env).ok().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            ApiError::Setup(format!(
                "no Supabase access token: set {token_env} (a personal access token from the dashboard's Account → \
                 Access Tokens) or name another variable with `token-env`"
            ))
        })?;
        Client::with_token(base, token, std::sync::Arc::new(SystemClock))
    }

    /// A client with the token given (read from the environment by [`Client::new`]) and a clock.
    pub(crate) fn with_token(base: &str, token: String, clock: std::sync::Arc<dyn Clock>) -> Result<Client, ApiError> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ApiError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if is_loopback_http(base) { builder.https_or_http() } else { builder.https_only() };
        let http = HttpClient::builder(TokioExecutor::new()).build(connector.enable_http1().build());
        Ok(Client { base: base.trim_end_matches('/').to_string(), token, http, clock })
    }

    /// Sends `call` (with a JSON body for a create) and parses the answer. A 429 waits until
    /// `X-RateLimit-Reset` (up to 90 s; without the header, backoff) and tries again — the API refused the
    /// request, so even a create is safe to send again; a 5xx or a dropped connection is retried with
    /// backoff when the call is idempotent. Five attempts in all.
    pub(crate) async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        call: Call<'_>,
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        let (method, template) = call.template();
        let name = format!("{method} {template}");
        let url = format!("{}{}", self.base, call.path());
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let payload = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
            let req = hyper::Request::builder()
                .method(method)
                .uri(&url)
                .header("authorization", format!("Bearer {}", self.token))
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .header("user-agent", concat!("stackdrill/", env!("CARGO_PKG_VERSION")))
                .body(Full::new(Bytes::from(payload)))
                .map_err(|e| ApiError::Setup(e.to_string()))?;
            let sent = tokio::time::timeout(Duration::from_secs(60), self.http.request(req)).await;
            let resp = match sent {
                Ok(Ok(r)) => r,
                Ok(Err(e)) if call.idempotent() && attempt < 5 => {
                    tracing::info!(call = %name, error = %e, attempt, "Supabase API unreachable; retrying");
                    self.clock.sleep(backoff(attempt)).await;
                    continue;
                }
                Ok(Err(e)) => {
                    return Err(ApiError::Transport { call: name, detail: format!("{:#}", anyhow::Error::new(e)) });
                }
                Err(_) => return Err(ApiError::Transport { call: name, detail: "no answer within 60 s".into() }),
            };
            let status = resp.status().as_u16();
            let reset = resp.headers().get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).map(str::to_string);
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ApiError::Transport { call: name.clone(), detail: e.to_string() })?
                .to_bytes();
            if (200..300).contains(&status) {
                return serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::Transport { call: name, detail: format!("unexpected answer: {e}") });
            }
            let retryable = status == 429 || (status >= 500 && call.idempotent());
            if retryable && attempt < 5 {
                let wait = match status {
                    429 => rate_limit_wait(reset.as_deref(), self.clock.now()).unwrap_or_else(|| backoff(attempt)),
                    _ => backoff(attempt),
                }
                .min(MAX_RATE_LIMIT_WAIT);
                tracing::info!(call = %name, status, wait_s = wait.as_secs_f64(), attempt, "Supabase API asked to wait");
                self.clock.sleep(wait).await;
                continue;
            }
            return Err(ApiError::Status { call: name, status, message: message(&bytes) });
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 * 2u64.pow(attempt.min(6)))
}

/// The API's `{"message": …}` when it sent one, else the start of the body.
fn message(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Msg {
        message: String,
    }
    match serde_json::from_slice::<Msg>(bytes) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(bytes).chars().take(200).collect(),
    }
}

/// `http://127.0.0.1:…`, `http://localhost…`, `http://[::1]…`: a stand-in on this machine.
pub(crate) fn is_loopback_http(base: &str) -> bool {
    let Some(rest) = base.strip_prefix("http://") else { return false };
    let host = rest.split('/').next().unwrap_or("");
    let host =
        host.rsplit_once(':').map_or(host, |(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { host });
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// `GET /v1/projects/{ref}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Project {
    #[serde(rename = "ref")]
    pub(crate) project_ref: String,
    pub(crate) region: String,
    pub(crate) status: ProjectStatus,
    pub(crate) name: String,
    /// "Creation timestamp" (a string in the document).
    pub(crate) created_at: String,
}

/// `GET /v1/projects/{ref}/database/backups` (`V1BackupsResponse`): where the backups are kept, whether
/// point-in-time recovery (and WAL-G, which it runs on) is enabled, the backups taken, and the physical
/// backups' span (the PITR window's two ends, in Unix seconds).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Backups {
    pub(crate) region: String,
    pub(crate) walg_enabled: bool,
    pub(crate) pitr_enabled: bool,
    pub(crate) backups: Vec<Backup>,
    pub(crate) physical_backup_data: PhysicalBackupData,
}

/// One entry of `V1BackupsResponse.backups`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Backup {
    /// Absent from some answers the dashboard shows; the document requires it.
    #[serde(default)]
    pub(crate) id: Option<i64>,
    pub(crate) is_physical_backup: bool,
    pub(crate) status: BackupStatus,
    /// An ISO 8601 time (the document types it as a plain string).
    pub(crate) inserted_at: String,
}

impl Backup {
    /// `inserted_at` as a time, when it is one (with or without an offset; without one it is UTC).
    pub(crate) fn inserted(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        parse_time(&self.inserted_at)
    }
}

/// A time as the API writes it: RFC 3339, or without an offset (UTC).
pub(crate) fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = s.trim();
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc()))
}

/// `V1BackupsResponse.backups[].status`, the document's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum BackupStatus {
    Completed,
    Failed,
    Pending,
    Removed,
    Archived,
    Cancelled,
    /// A status the document does not list (yet): never taken for `COMPLETED`.
    #[serde(other)]
    Unknown,
}

impl BackupStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Completed => "COMPLETED",
            BackupStatus::Failed => "FAILED",
            BackupStatus::Pending => "PENDING",
            BackupStatus::Removed => "REMOVED",
            BackupStatus::Archived => "ARCHIVED",
            BackupStatus::Cancelled => "CANCELLED",
            BackupStatus::Unknown => "an unlisted status",
        }
    }
}

/// `V1BackupsResponse.physical_backup_data`: both ends absent when there are no physical backups.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PhysicalBackupData {
    #[serde(default)]
    pub(crate) earliest_physical_backup_date_unix: Option<i64>,
    #[serde(default)]
    pub(crate) latest_physical_backup_date_unix: Option<i64>,
}

impl PhysicalBackupData {
    /// The PITR window's ends, when both are given and in order.
    pub(crate) fn window(&self) -> Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
        let at = |s: i64| chrono::DateTime::from_timestamp(s, 0);
        let (e, l) = (at(self.earliest_physical_backup_date_unix?)?, at(self.latest_physical_backup_date_unix?)?);
        (e <= l).then_some((e, l))
    }
}

impl Backups {
    /// The newest backup by `inserted_at` (entries whose time does not parse are left out).
    pub(crate) fn newest(&self) -> Option<(&Backup, chrono::DateTime<chrono::Utc>)> {
        self.backups.iter().filter_map(|b| b.inserted().map(|t| (b, t))).max_by_key(|(_, t)| *t)
    }
}

/// A project's (or a branch database's) status, the document's enum. Every value is one of three kinds:
/// healthy, on its way (wait), or an end that will not become healthy (stop at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ProjectStatus {
    Inactive,
    ActiveHealthy,
    ActiveUnhealthy,
    ComingUp,
    Unknown,
    GoingDown,
    InitFailed,
    Removed,
    Restoring,
    Upgrading,
    Pausing,
    RestoreFailed,
    Restarting,
    PauseFailed,
    Resizing,
    /// A value the document does not list.
    #[serde(other)]
    Unlisted,
}

/// What a status means to a drill waiting for a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Healthy,
    Wait,
    Stop,
}

impl ProjectStatus {
    pub(crate) fn health(self) -> Health {
        use ProjectStatus::*;
        match self {
            ActiveHealthy => Health::Healthy,
            ComingUp | Restoring | Upgrading | Restarting | Resizing => Health::Wait,
            // UNKNOWN (and a value not listed) is waited out only for a while: see the providers' waits.
            Unknown | Unlisted => Health::Wait,
            Inactive | ActiveUnhealthy | GoingDown | InitFailed | Removed | Pausing | RestoreFailed | PauseFailed => {
                Health::Stop
            }
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        use ProjectStatus::*;
        match self {
            Inactive => "INACTIVE",
            ActiveHealthy => "ACTIVE_HEALTHY",
            ActiveUnhealthy => "ACTIVE_UNHEALTHY",
            ComingUp => "COMING_UP",
            Unknown => "UNKNOWN",
            GoingDown => "GOING_DOWN",
            InitFailed => "INIT_FAILED",
            Removed => "REMOVED",
            Restoring => "RESTORING",
            Upgrading => "UPGRADING",
            Pausing => "PAUSING",
            RestoreFailed => "RESTORE_FAILED",
            Restarting => "RESTARTING",
            PauseFailed => "PAUSE_FAILED",
            Resizing => "RESIZING",
            Unlisted => "a status the API document does not list",
        }
    }
}

/// A branch as `POST`/`GET …/branches` return it (`BranchResponse`): addressed by its `project_ref`
/// (the uuid `id` is deprecated as an address).
#[derive(Debug, Deserialize)]
pub(crate) struct Branch {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) project_ref: String,
    pub(crate) parent_project_ref: String,
    pub(crate) persistent: bool,
    /// The project's own (default) branch: never a drill's. Read leniently; its ref is the project's too.
    #[serde(default)]
    pub(crate) is_default: bool,
    pub(crate) created_at: String,
    /// Whether the branch was created with the project's data: required by the document, so a missing
    /// field is an error, never a default.
    pub(crate) with_data: bool,
}

/// One action run of a branch (`ActionRunResponse`).
#[derive(Debug, Deserialize)]
pub(crate) struct ActionRun {
    pub(crate) run_steps: Vec<RunStep>,
    pub(crate) created_at: String,
}

/// A step of an action run: `clone` (the data copy), `pull`, `health`, `configure`, `migrate`, `seed`,
/// `deploy`; its status is a container's (`CREATED`, `DEAD`, `EXITED`, `PAUSED`, `REMOVING`, `RESTARTING`,
/// `RUNNING`).
#[derive(Debug, Deserialize)]
pub(crate) struct RunStep {
    pub(crate) name: String,
    pub(crate) status: String,
}

/// The newest run's `clone` step status, if any run has one.
pub(crate) fn clone_step(runs: &[ActionRun]) -> Option<&str> {
    runs.iter()
        .filter(|r| r.run_steps.iter().any(|s| s.name == "clone"))
        .max_by_key(|r| parse_time(&r.created_at))
        .and_then(|r| r.run_steps.iter().find(|s| s.name == "clone"))
        .map(|s| s.status.as_str())
}

/// One pooler of a project (`SupavisorConfigResponse`).
#[derive(Debug, Deserialize)]
pub(crate) struct Pooler {
    pub(crate) database_type: String,
    pub(crate) db_user: String,
    pub(crate) db_host: String,
    pub(crate) db_port: u16,
    pub(crate) pool_mode: String,
}

/// `GET /v1/branches/{branch_ref}`: the branch database's state and connection details.
#[derive(Deserialize)]
pub(crate) struct BranchConfig {
    pub(crate) status: ProjectStatus,
    pub(crate) db_host: String,
    pub(crate) db_port: u16,
    pub(crate) db_user: Option<String>,
    pub(crate) db_pass: Option<String>,
    #[serde(default)]
    pub(crate) postgres_version: String,
}

/// What a Supabase drill demands of the project's backups (`backup-health` in the drill file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthPolicy {
    /// The drill relies on point-in-time recovery: PITR and WAL-G must be enabled and the window fresh.
    pub(crate) pitr: bool,
    /// The newest backup must be `COMPLETED` and at most this old.
    pub(crate) newest_backup_within: Duration,
    /// The PITR window's latest point must be at most this far behind now.
    pub(crate) latest_point_within: Duration,
}

/// One field of the backups answer the gate judged: the field, whether it passed, what it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthFinding {
    pub(crate) field: &'static str,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

/// The backup-health gate: every field the drill depends on, judged at `now`. A field that is missing or
/// cannot be read fails; nothing here passes by default.
pub(crate) fn backup_health(
    b: &Backups,
    policy: &HealthPolicy,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<HealthFinding> {
    let age = |t: chrono::DateTime<chrono::Utc>| (now - t).to_std().unwrap_or(Duration::ZERO);
    let fmt = |d: Duration| match d.as_secs() {
        s if s >= 3600 => format!("{:.1} h", s as f64 / 3600.0),
        s if s >= 60 => format!("{:.1} min", s as f64 / 60.0),
        s => format!("{s} s"),
    };
    let mut out = Vec::new();
    let mut push = |field, ok, detail: String| out.push(HealthFinding { field, ok, detail });
    if policy.pitr {
        push(
            "pitr_enabled",
            b.pitr_enabled,
            format!("pitr_enabled is {} (the drill relies on point-in-time recovery)", b.pitr_enabled),
        );
        push("walg_enabled", b.walg_enabled, format!("walg_enabled is {} (PITR runs on WAL-G)", b.walg_enabled));
        match b.physical_backup_data.window() {
            Some((earliest, latest)) => {
                let lag = age(latest);
                push(
                    "physical_backup_data.latest_physical_backup_date_unix",
                    lag <= policy.latest_point_within,
                    format!(
                        "the PITR window ({} .. {}) ends {} ago (at most {} allowed)",
                        earliest.to_rfc3339(),
                        latest.to_rfc3339(),
                        fmt(lag),
                        fmt(policy.latest_point_within)
                    ),
                );
            }
            None => push(
                "physical_backup_data.latest_physical_backup_date_unix",
                false,
                "physical_backup_data gives no PITR window (both ends needed)".into(),
            ),
        }
    }
    match b.newest() {
        None => {
            push("backups", false, format!("no backup listed ({} entries, none with a readable time)", b.backups.len()))
        }
        Some((newest, at)) => {
            let completed = newest.status == BackupStatus::Completed;
            push(
                "backups[].status",
                completed,
                format!("the newest backup (of {}) is {}", at.to_rfc3339(), newest.status.as_str()),
            );
            let old = age(at);
            push(
                "backups[].inserted_at",
                old <= policy.newest_backup_within,
                format!("the newest backup is {} old (at most {} allowed)", fmt(old), fmt(policy.newest_backup_within)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_can_call_these_endpoints_and_no_restore() {
        let all = [
            Call::GetProject("r"),
            Call::ListBackups("r"),
            Call::CreateBranch("r"),
            Call::ListBranches("r"),
            Call::GetBranch("b"),
            Call::DeleteBranch("b"),
            Call::ListActions("b"),
            Call::GetPooler("b"),
            Call::ListProjects,
            Call::DeleteProject(&Deletable("bcdefghijklmnopqrstu".into())),
        ];
        let templates: Vec<String> = all.iter().map(|c| format!("{} {}", c.template().0, c.template().1)).collect();
        assert_eq!(
            templates,
            [
                "GET /v1/projects/{ref}",
                "GET /v1/projects/{ref}/database/backups",
                "POST /v1/projects/{ref}/branches",
                "GET /v1/projects/{ref}/branches",
                "GET /v1/branches/{branch_id_or_ref}",
                "DELETE /v1/branches/{branch_id_or_ref}",
                "GET /v1/projects/{ref}/actions",
                "GET /v1/projects/{ref}/config/database/pooler",
                "GET /v1/projects",
                "DELETE /v1/projects/{ref}",
            ]
        );
        // A new variant must be added above: the match in `template` has no wildcard, so the list is whole.
        for t in &templates {
            assert!(
                !t.contains("restore") && !t.contains("merge") && !t.contains("reset") && !t.contains("push"),
                "{t}"
            );
        }
        // The only write to the project is creating a branch; deletes go to branches, or to a project the
        // guard let through (`Deletable` has no other constructor).
        assert!(
            templates
                .iter()
                .filter(|t| !t.starts_with("GET"))
                .all(|t| t.contains("branch") || t == "DELETE /v1/projects/{ref}")
        );
        assert_eq!(
            Call::DeleteProject(&Deletable("bcdefghijklmnopqrstu".into())).path(),
            "/v1/projects/bcdefghijklmnopqrstu"
        );
        assert_eq!(Call::GetBranch("abc-1").path(), "/v1/branches/abc-1");
    }

    #[test]
    fn a_project_is_deleted_only_when_it_is_this_runs_own() {
        let started = chrono::DateTime::parse_from_rfc3339("2026-12-06T07:00:00Z").unwrap().to_utc();
        let project = |r: &str, name: &str, created: &str| Project {
            project_ref: r.into(),
            region: "ap-southeast-1".into(),
            status: ProjectStatus::ActiveHealthy,
            name: name.into(),
            created_at: created.into(),
        };
        let (source, mine) = ("abcdefghijklmnopqrst", "sd-supa-new-0123abcd");
        let ok = deletable(&project("zyxwvutsrqponmlkjihg", mine, "2026-12-06T07:05:00Z"), mine, source, started);
        assert_eq!(ok.unwrap().project_ref(), "zyxwvutsrqponmlkjihg");
        // The source's own ref, even named and dated right: refused.
        let e = deletable(&project(source, mine, "2026-12-06T07:05:00Z"), mine, source, started).unwrap_err();
        assert!(e.contains("the drill's source"), "{e}");
        // Another run's name: refused.
        let e = deletable(
            &project("zyxwvutsrqponmlkjihg", "sd-supa-new-ffffffff", "2026-12-06T07:05:00Z"),
            mine,
            source,
            started,
        )
        .unwrap_err();
        assert!(e.contains("not this run's"), "{e}");
        // Older than the run: refused (and an unreadable time too).
        let e = deletable(&project("zyxwvutsrqponmlkjihg", mine, "2026-12-06T06:59:59Z"), mine, source, started)
            .unwrap_err();
        assert!(e.contains("before this run began"), "{e}");
        assert!(deletable(&project("zyxwvutsrqponmlkjihg", mine, "yesterday"), mine, source, started).is_err());
        assert!(deletable(&project("../../v1/projects", mine, "2026-12-06T07:05:00Z"), mine, source, started).is_err());
    }

    #[test]
    fn refs_are_twenty_lowercase_letters() {
        assert!(valid_ref("abcdefghijklmnopqrst"));
        for bad in ["abcdefghijklmnopqrs", "abcdefghijklmnopqrstu", "Abcdefghijklmnopqrst", "abcdefghijklmnopqrs1", ""]
        {
            assert!(!valid_ref(bad), "{bad}");
        }
    }

    #[test]
    fn every_status_is_healthy_a_wait_or_a_stop() {
        let st = |s: &str| serde_json::from_value::<ProjectStatus>(serde_json::json!(s)).unwrap();
        assert_eq!(st("ACTIVE_HEALTHY").health(), Health::Healthy);
        for s in [
            "ACTIVE_UNHEALTHY",
            "INACTIVE",
            "PAUSING",
            "PAUSE_FAILED",
            "INIT_FAILED",
            "RESTORE_FAILED",
            "REMOVED",
            "GOING_DOWN",
        ] {
            assert_eq!(st(s).health(), Health::Stop, "{s}");
            assert_eq!(st(s).as_str(), s);
        }
        for s in ["COMING_UP", "RESTORING", "UPGRADING", "RESTARTING", "RESIZING", "UNKNOWN"] {
            assert_eq!(st(s).health(), Health::Wait, "{s}");
        }
        assert_eq!(st("SOMETHING_NEW"), ProjectStatus::Unlisted);
    }

    #[test]
    fn x_ratelimit_reset_is_read_as_seconds_or_a_unix_time() {
        let now = chrono::DateTime::from_timestamp(1_765_000_000, 0).unwrap();
        assert_eq!(rate_limit_wait(Some("40"), now), Some(Duration::from_secs(40)));
        assert_eq!(rate_limit_wait(Some("1765000040"), now), Some(Duration::from_secs(40)));
        assert_eq!(rate_limit_wait(Some("1765000040000"), now), Some(Duration::from_secs(40)));
        assert_eq!(rate_limit_wait(Some("1764999000"), now), Some(Duration::from_secs(1)), "a reset in the past");
        assert_eq!(rate_limit_wait(Some("soon"), now), None);
        assert_eq!(rate_limit_wait(None, now), None);
        // A huge reset is clamped before it becomes a Duration (it would overflow, and panic mid-teardown).
        assert_eq!(rate_limit_wait(Some("1e30"), now), Some(MAX_RATE_LIMIT_WAIT));
        assert_eq!(rate_limit_wait(Some("99999999999999999999"), now), Some(MAX_RATE_LIMIT_WAIT));
    }

    /// A clock that does not sleep: each wait moves it on and is recorded.
    struct FakeClock {
        now: std::sync::Mutex<chrono::DateTime<chrono::Utc>>,
        slept: std::sync::Mutex<Vec<Duration>>,
    }

    impl Clock for FakeClock {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            *self.now.lock().unwrap()
        }
        fn sleep(&self, d: Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
            *self.now.lock().unwrap() += chrono::TimeDelta::from_std(d).unwrap();
            self.slept.lock().unwrap().push(d);
            Box::pin(async {})
        }
    }

    /// A server on 127.0.0.1 that answers each connection with the next of `answers` (HTTP/1.1, closed
    /// after one answer).
    async fn serve(answers: Vec<String>) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for a in answers {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                sock.write_all(a.as_bytes()).await.unwrap();
                sock.shutdown().await.unwrap();
            }
        });
        port
    }

    fn http(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n{headers}content-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn a_429_is_waited_out_until_x_ratelimit_reset_on_the_injected_clock() {
        let project = r#"{"ref":"abcdefghijklmnopqrst","region":"ap-southeast-1","status":"ACTIVE_HEALTHY","name":"p","created_at":"2025-01-01T00:00:00Z"}"#;
        let limited = "x-ratelimit-limit: 120\r\nx-ratelimit-remaining: 0\r\nx-ratelimit-reset: 40\r\n";
        let port = serve(vec![
            http("429 Too Many Requests", limited, r#"{"message":"Rate limit exceeded"}"#),
            http("200 OK", "", project),
        ])
        .await;
        let start = chrono::DateTime::from_timestamp(1_765_000_000, 0).unwrap();
        let clock = std::sync::Arc::new(FakeClock { now: std::sync::Mutex::new(start), slept: Default::default() });
        let client = Client::with_token(&format!("http://127.0.0.1:{port}"), "t".into(), clock.clone()).unwrap();
        let real = std::time::Instant::now();
        let p: Project = client.send(Call::GetProject("abcdefghijklmnopqrst"), None).await.unwrap();
        assert_eq!(p.status, ProjectStatus::ActiveHealthy);
        assert_eq!(*clock.slept.lock().unwrap(), [Duration::from_secs(40)], "waited for the reset, once");
        assert_eq!(clock.now() - start, chrono::TimeDelta::seconds(40));
        assert!(real.elapsed() < Duration::from_secs(10), "slept for real: {:?}", real.elapsed());
    }

    #[test]
    fn ids_cannot_change_the_path_and_http_is_for_loopback_only() {
        for bad in ["", "../restore", "a/b", "a?x=1", "a b", "%2e%2e", "5b9a-11ef"] {
            assert!(!valid_ref(bad), "{bad}");
        }
        assert!(is_loopback_http("http://127.0.0.1:8080"));
        assert!(is_loopback_http("http://localhost/"));
        assert!(!is_loopback_http("http://api.supabase.com"));
        assert!(!is_loopback_http("http://127.0.0.1.evil.com:80"));
        assert!(!is_loopback_http("https://127.0.0.1"));
    }

    #[test]
    fn the_backups_answer_is_read_as_the_document_types_it() {
        let body = r#"{"region":"ap-southeast-1","walg_enabled":true,"pitr_enabled":true,
            "backups":[{"id":7,"is_physical_backup":true,"status":"COMPLETED","inserted_at":"2026-12-05T03:00:00.123Z"},
                       {"id":8,"is_physical_backup":true,"status":"FAILED","inserted_at":"2026-12-06T03:00:00"},
                       {"id":9,"is_physical_backup":false,"status":"SOMETHING_NEW","inserted_at":"not a time"}],
            "physical_backup_data":{"earliest_physical_backup_date_unix":1764900000,"latest_physical_backup_date_unix":1765000000}}"#;
        let b: Backups = serde_json::from_str(body).unwrap();
        assert!(b.pitr_enabled && b.walg_enabled);
        assert_eq!(b.backups[2].status, BackupStatus::Unknown);
        let (newest, at) = b.newest().unwrap();
        assert_eq!((newest.id, newest.status), (Some(8), BackupStatus::Failed));
        assert_eq!(at.to_rfc3339(), "2026-12-06T03:00:00+00:00");
        let (e, l) = b.physical_backup_data.window().unwrap();
        assert_eq!((e.timestamp(), l.timestamp()), (1764900000, 1765000000));
        // No physical backups: an empty object, no window.
        let b: Backups = serde_json::from_str(
            r#"{"region":"r","walg_enabled":false,"pitr_enabled":false,"backups":[],"physical_backup_data":{}}"#,
        )
        .unwrap();
        assert!(b.physical_backup_data.window().is_none() && b.newest().is_none());
        // A field the document requires is missing: an error, not a default that could pass a gate.
        assert!(serde_json::from_str::<Backups>(r#"{"region":"r","pitr_enabled":true,"backups":[]}"#).is_err());
    }

    fn answer(pitr: bool, newest_age_h: i64, status: &str, lag_s: i64, now: chrono::DateTime<chrono::Utc>) -> Backups {
        let t = |d: chrono::TimeDelta| (now - d).to_rfc3339();
        let body = serde_json::json!({
            "region": "ap-southeast-1", "walg_enabled": pitr, "pitr_enabled": pitr,
            "backups": [
                {"id": 1, "is_physical_backup": pitr, "status": status, "inserted_at": t(chrono::TimeDelta::hours(newest_age_h))},
                {"id": 0, "is_physical_backup": pitr, "status": "COMPLETED", "inserted_at": t(chrono::TimeDelta::hours(newest_age_h + 24))},
            ],
            "physical_backup_data": if pitr { serde_json::json!({
                "earliest_physical_backup_date_unix": (now - chrono::TimeDelta::days(7)).timestamp(),
                "latest_physical_backup_date_unix": (now - chrono::TimeDelta::seconds(lag_s)).timestamp(),
            }) } else { serde_json::json!({}) },
        });
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn the_backup_health_gate_names_the_field_that_failed() {
        let now = chrono::Utc::now();
        let policy = HealthPolicy {
            pitr: true,
            newest_backup_within: Duration::from_secs(26 * 3600),
            latest_point_within: Duration::from_secs(600),
        };
        let failed = |b: &Backups, p: &HealthPolicy| -> Vec<&'static str> {
            backup_health(b, p, now).into_iter().filter(|f| !f.ok).map(|f| f.field).collect()
        };
        let healthy = answer(true, 3, "COMPLETED", 60, now);
        assert!(failed(&healthy, &policy).is_empty());
        assert_eq!(backup_health(&healthy, &policy, now).len(), 5);
        let old = answer(true, 30, "COMPLETED", 60, now);
        assert_eq!(failed(&old, &policy), ["backups[].inserted_at"]);
        let off = answer(false, 3, "COMPLETED", 60, now);
        assert_eq!(
            failed(&off, &policy),
            ["pitr_enabled", "walg_enabled", "physical_backup_data.latest_physical_backup_date_unix"]
        );
        // A drill that does not rely on PITR is not failed by PITR being off.
        assert!(failed(&off, &HealthPolicy { pitr: false, ..policy.clone() }).is_empty());
        assert_eq!(failed(&answer(true, 3, "FAILED", 60, now), &policy), ["backups[].status"]);
        assert_eq!(
            failed(&answer(true, 3, "COMPLETED", 3600, now), &policy),
            ["physical_backup_data.latest_physical_backup_date_unix"]
        );
        let none: Backups = serde_json::from_str(
            r#"{"region":"r","walg_enabled":true,"pitr_enabled":true,"backups":[],"physical_backup_data":{}}"#,
        )
        .unwrap();
        assert_eq!(failed(&none, &policy), ["physical_backup_data.latest_physical_backup_date_unix", "backups"]);
        let old = backup_health(&old, &policy, now).into_iter().find(|f| !f.ok).unwrap();
        assert!(old.detail.contains("30.0 h old") && old.detail.contains("at most 26.0 h"), "{}", old.detail);
    }
}
