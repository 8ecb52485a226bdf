//! `supabase-branch`: a branch with data of a Supabase project (Management API), verified and deleted.
//!
//! A branch copies the project as it is when the branch is created, so the only target is `latest`. The
//! project's region must be in the drill's residency before anything is created. The branch is named
//! `sd-<drill>-<run>`, not persistent, reached over TLS with the credentials the API hands back (kept in
//! memory), and deleted on every path; `drill cleanup` deletes expired `sd-<drill>-` branches a crashed
//! run left. The client cannot call Supabase's in-place restore endpoints (see `crate::supabase`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{BackupUsed, Endpoint, RestoreProvider, Teardown, TeardownStatus};
use crate::config::SupabaseBranchSpec;
use crate::config::SupabaseConnect;
use crate::drill::cleanup::Swept;
use crate::drill::error::{DrillError, RestoreError};
use crate::drill::events::EventSink;
use crate::drill::target::{ResolvedTarget, Window};
use crate::supabase::{Branch, BranchConfig, Call, Client, Health, Pooler, Project, valid_ref};

pub(crate) struct SupabaseBranch {
    spec: SupabaseBranchSpec,
    client: Client,
    drill: String,
    run: String,
    events: EventSink,
    facts: Vec<(&'static str, String)>,
    planned_at: DateTime<Utc>,
    /// The branch this run created (its project_ref, name), once the API answered the create.
    branch: Option<(String, String)>,
    /// The region the branch is asked for: the drill's `region`, else the project's.
    region: Option<String>,
    created_at: Option<DateTime<Utc>>,
    /// The backup-health gate, judged when the window is read.
    gate: Vec<crate::drill::verify::CheckResult>,
}

/// The backup-health gate's findings as one check: failed (naming every failing field) when any failed.
pub(crate) fn health_check(
    backups: &crate::supabase::Backups,
    policy: &crate::supabase::HealthPolicy,
    now: DateTime<Utc>,
) -> crate::drill::verify::CheckResult {
    use crate::drill::verify::{CheckResult, CheckStatus};
    let findings = crate::supabase::backup_health(backups, policy, now);
    let bad: Vec<String> = findings.iter().filter(|f| !f.ok).map(|f| format!("{}: {}", f.field, f.detail)).collect();
    let (status, detail) = if bad.is_empty() {
        let all: Vec<&str> = findings.iter().map(|f| f.detail.as_str()).collect();
        (CheckStatus::Passed, all.join("; "))
    } else {
        (CheckStatus::Failed, bad.join("; "))
    };
    CheckResult {
        name: "backup-health".into(),
        kind: "backup-health".into(),
        status,
        detail,
        seconds: 0.0,
        newest: None,
        heartbeat: None,
    }
}

/// The branch name of run `run` of `drill`: what `drill cleanup` looks for.
pub(crate) fn branch_name(drill: &str, run: &str) -> String {
    let short: String = run.chars().take(8).collect();
    format!("sd-{drill}-{short}")
}

/// Whether `name` is a branch some run of `drill` created: `sd-<drill>-` and eight hex digits.
pub(crate) fn is_drill_branch(name: &str, drill: &str) -> bool {
    name.strip_prefix(&format!("sd-{drill}-"))
        .is_some_and(|run| run.len() == 8 && run.chars().all(|c| c.is_ascii_hexdigit()))
}

impl SupabaseBranch {
    pub(crate) fn new(
        spec: &SupabaseBranchSpec,
        drill: &str,
        run: &str,
        events: EventSink,
    ) -> Result<SupabaseBranch, DrillError> {
        Ok(SupabaseBranch {
            client: Client::new(&spec.api_url, &spec.token_env)?,
            spec: spec.clone(),
            drill: drill.into(),
            run: run.into(),
            events,
            facts: Vec::new(),
            planned_at: Utc::now(),
            branch: None,
            region: spec.region.clone(),
            created_at: None,
            gate: Vec::new(),
        })
    }

    fn progress(&self, phase: &'static str, msg: impl Into<String>) {
        self.events.progress(&self.drill, phase, msg);
    }

    /// Polls the branch until its database is `ACTIVE_HEALTHY` and its action run's `clone` step (the data
    /// copy) has exited, with backoff, within `wait-healthy`. A status that will not become healthy
    /// (`ACTIVE_UNHEALTHY`, `INACTIVE`, `PAUSING`, … — every value the document lists is classified) ends
    /// the wait at once, and so does a `clone` step that died; `UNKNOWN` is waited out for at most a minute.
    async fn wait_healthy(&self, branch_ref: &str) -> Result<BranchConfig, RestoreError> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(500);
        let mut unknown_since: Option<Instant> = None;
        loop {
            let config: BranchConfig = self
                .client
                .send(Call::GetBranch(branch_ref), None)
                .await
                .map_err(|e| RestoreError::Error(e.to_string()))?;
            let runs: Vec<crate::supabase::ActionRun> = self
                .client
                .send(Call::ListActions(branch_ref), None)
                .await
                .map_err(|e| RestoreError::Error(e.to_string()))?;
            let clone = crate::supabase::clone_step(&runs).map(str::to_string);
            let status = config.status;
            match (status.health(), clone.as_deref()) {
                (_, Some("DEAD")) => {
                    return Err(RestoreError::Failed(
                        "the branch's data copy failed: its action run's `clone` step is DEAD".into(),
                    ));
                }
                (Health::Healthy, Some("EXITED")) => return Ok(config),
                (Health::Stop, _) => {
                    return Err(RestoreError::Failed(format!(
                        "the branch database went to {}: it will not become healthy",
                        status.as_str()
                    )));
                }
                _ => {}
            }
            if status.health() == Health::Wait
                && matches!(status, crate::supabase::ProjectStatus::Unknown | crate::supabase::ProjectStatus::Unlisted)
            {
                let since = *unknown_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(60) {
                    return Err(RestoreError::Failed(format!(
                        "the branch database has been {} for a minute",
                        status.as_str()
                    )));
                }
            } else {
                unknown_since = None;
            }
            let clone = clone.as_deref().unwrap_or("not started");
            self.progress(
                "ready",
                format!(
                    "branch database {}, data copy {clone} ({:.0}s)",
                    status.as_str(),
                    start.elapsed().as_secs_f64()
                ),
            );
            if start.elapsed() + wait > self.spec.wait_healthy {
                return Err(RestoreError::Error(format!(
                    "the branch did not become healthy within {} (last status {}, clone step {clone}); it is deleted",
                    humantime::format_duration(self.spec.wait_healthy),
                    status.as_str()
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(15));
        }
    }

    /// Where to connect: the session pooler (its host, port 5432 in session mode, its user) or the direct
    /// host the branch config names.
    async fn address(&self, branch_ref: &str, config: &BranchConfig) -> Result<(String, u16, String), RestoreError> {
        let user = config.db_user.clone().unwrap_or_else(|| "postgres".into());
        match self.spec.connect {
            SupabaseConnect::Direct => Ok((config.db_host.clone(), config.db_port, user)),
            SupabaseConnect::Pooler => {
                let poolers: Vec<Pooler> = self
                    .client
                    .send(Call::GetPooler(branch_ref), None)
                    .await
                    .map_err(|e| RestoreError::Error(e.to_string()))?;
                let p = poolers.into_iter().find(|p| p.database_type == "PRIMARY").ok_or_else(|| {
                    RestoreError::Failed(format!(
                        "branch {branch_ref} has no PRIMARY pooler: use `connect: direct` from a network with IPv6 \
                         (its host {} is IPv6-only without the IPv4 add-on)",
                        config.db_host
                    ))
                })?;
                // Session mode is port 5432 on the pooler host, whatever mode the project's pooler is in.
                let port = if p.pool_mode == "session" { p.db_port } else { 5432 };
                Ok((p.db_host, port, p.db_user))
            }
        }
    }
}

/// Waits (up to a minute) until `ep` accepts a connection — healthy in the API is not always accepting yet —
/// and returns it; `what` names the database in errors. A host that resolves only to IPv6 fails at once,
/// naming it, and so does a server that refuses channel binding.
pub(super) async fn accepting(ep: Endpoint, host: &str, port: u16, what: &str) -> Result<Endpoint, RestoreError> {
    let start = Instant::now();
    loop {
        match crate::pg::connect_tls(&ep.config, &ep.tls, None).await {
            Ok(_) => return Ok(ep),
            // A server that asks for a password without channel binding will not stop asking.
            Err(e) if crate::pg::is_channel_binding_refused(&e) => {
                return Err(RestoreError::Failed(format!(
                    "cannot connect to {what}: {e}; {}",
                    crate::pg::CHANNEL_BINDING_HINT
                )));
            }
            Err(e)
                if start.elapsed() < Duration::from_secs(60)
                    && ipv6_only(
                        host,
                        &tokio::net::lookup_host((host, port))
                            .await
                            .map(Iterator::collect::<Vec<_>>)
                            .unwrap_or_default(),
                    )
                    .is_none() =>
            {
                tracing::debug!(error = %e, "{what} not accepting connections yet");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                let addrs: Vec<std::net::SocketAddr> =
                    tokio::net::lookup_host((host, port)).await.map(Iterator::collect).unwrap_or_default();
                let why = ipv6_only(host, &addrs).unwrap_or_default();
                return Err(RestoreError::Failed(format!("cannot connect to {what}: {e}. {why}")));
            }
        }
    }
}

/// The error for a direct host that resolves only to IPv6 addresses and could not be reached.
pub(crate) fn ipv6_only(host: &str, addrs: &[std::net::SocketAddr]) -> Option<String> {
    (!addrs.is_empty() && addrs.iter().all(std::net::SocketAddr::is_ipv6)).then(|| {
        format!(
            "{host} resolves only to IPv6 addresses and cannot be reached from here: Supabase's direct database host \
             is IPv6-only without the IPv4 add-on; use `connect: pooler` (the session pooler, reachable over IPv4)"
        )
    })
}

#[async_trait::async_trait]
impl RestoreProvider for SupabaseBranch {
    fn name(&self) -> &'static str {
        "supabase-branch"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("project_ref", self.spec.project_ref.clone()), ("api", self.spec.api_url.clone())];
        if let Some((branch_ref, name)) = &self.branch {
            v.push(("branch", format!("{name} ({branch_ref})")));
        }
        v.extend(self.facts.iter().cloned());
        v
    }

    /// Reads the project (its region must be in the residency) and its backups' settings; the window is
    /// now: a branch copies the current state.
    async fn window(&mut self) -> Result<Window, DrillError> {
        let r = self.spec.project_ref.clone();
        let project: Project = self.client.send(Call::GetProject(&r), None).await?;
        if !self.spec.residency.contains(&project.region) {
            return Err(DrillError::Refused(format!(
                "Supabase project `{r}` is in `{}`, outside the drill's residency ({}): a branch would copy its data there",
                project.region,
                self.spec.residency.join(", ")
            )));
        }
        self.region.get_or_insert_with(|| project.region.clone());
        let backups: crate::supabase::Backups = self.client.send(Call::ListBackups(&r), None).await?;
        self.facts.extend([
            ("project_name", project.name.clone()),
            ("region", project.region.clone()),
            ("project_status", project.status.as_str().to_string()),
            ("pitr_enabled", backups.pitr_enabled.to_string()),
            ("walg_enabled", backups.walg_enabled.to_string()),
            ("backups_region", backups.region.clone()),
            ("backups_listed", backups.backups.len().to_string()),
        ]);
        if let Some((b, at)) = backups.newest() {
            let kind = if b.is_physical_backup { "physical" } else { "logical" };
            let id = b.id.map(|i| format!(" #{i}")).unwrap_or_default();
            self.facts.push(("newest_backup", format!("{} {kind}{id} {}", b.status.as_str(), at.to_rfc3339())));
        }
        if let Some((earliest, latest)) = backups.physical_backup_data.window() {
            self.facts.push(("pitr_window", format!("{} .. {}", earliest.to_rfc3339(), latest.to_rfc3339())));
        }
        self.planned_at = Utc::now();
        self.gate = vec![health_check(&backups, &self.spec.backup_health, self.planned_at)];
        Ok(Window { earliest: self.planned_at, latest: self.planned_at })
    }

    async fn wait_recoverable(
        &mut self,
        _t: DateTime<Utc>,
        _source: &tokio_postgres::Client,
    ) -> Result<(), DrillError> {
        Err(DrillError::NoWindow("a branch copies the project as it is: it cannot stop at a canary's target".into()))
    }

    fn plan(&mut self, _target: &ResolvedTarget) -> Result<BackupUsed, DrillError> {
        Ok(BackupUsed {
            id: format!("branch of {}", self.spec.project_ref),
            location: format!("supabase project {} (the live state, copied with data)", self.spec.project_ref),
            started_at: self.planned_at,
            finished_at: self.planned_at,
        })
    }

    async fn restore(&mut self, _target: &ResolvedTarget) -> Result<(), RestoreError> {
        let name = branch_name(&self.drill, &self.run);
        let mut body = serde_json::json!({ "branch_name": name, "with_data": true, "persistent": false });
        if let Some(size) = &self.spec.desired_instance_size {
            body["desired_instance_size"] = size.clone().into();
        }
        if let Some(region) = &self.region {
            body["region"] = region.clone().into();
        }
        self.progress("restore", format!("creating branch {name} with data"));
        self.created_at = Some(Utc::now());
        let created: Branch = self
            .client
            .send(Call::CreateBranch(&self.spec.project_ref), Some(body))
            .await
            .map_err(|e| RestoreError::Error(e.to_string()))?;
        if !valid_ref(&created.project_ref) {
            return Err(RestoreError::Error(format!(
                "the API answered a branch ref `{}` that is not a project ref (branch id {})",
                created.project_ref, created.id
            )));
        }
        // Only a new branch of the source, named as asked, is ever this run's to delete: an answer naming the
        // source itself (or another project's branch) is refused and never recorded for the teardown.
        if created.project_ref == self.spec.project_ref
            || created.is_default
            || created.name != name
            || created.parent_project_ref != self.spec.project_ref
        {
            return Err(RestoreError::Error(format!(
                "the API answered branch `{}` ({}, parent `{}`) for a request to create {name} of `{}`: not a new \
                 branch of it; nothing is deleted",
                created.name, created.project_ref, created.parent_project_ref, self.spec.project_ref
            )));
        }
        self.facts.push(("branch_ref", created.project_ref.clone()));
        self.branch = Some((created.project_ref.clone(), created.name.clone()));
        if !created.with_data {
            return Err(RestoreError::Failed(format!(
                "branch {} was created without data (with_data: false in the API's answer): it would verify an empty \
                 schema; it is deleted",
                created.name
            )));
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.wait_endpoint().await.map(|ep| super::Restored::Postgres(Box::new(ep)))
    }

    fn neutralised(&self) -> Vec<String> {
        vec![
            "a non-persistent branch: Supabase pauses and removes it on its own if teardown never runs".into(),
            "the drill never calls Supabase's in-place restore endpoints (the client cannot reach them)".into(),
        ]
    }

    fn gate_checks(&self) -> Vec<crate::drill::verify::CheckResult> {
        self.gate.clone()
    }

    fn data_as_of(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }

    fn rpo_floor(&self) -> Option<(DateTime<Utc>, &'static str)> {
        let basis = "the branch's creation: it copies the live project's data as of then, so nothing before the \
                     target is lost; this proves the copy, not the project's backups' RPO";
        self.created_at.map(|t| (t, basis))
    }

    fn recovery(&self) -> Option<String> {
        Some("a Supabase branch with data (the project's current state)".into())
    }

    async fn teardown(&mut self) -> Teardown {
        let Some((branch_ref, name)) = self.branch.take() else {
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: "no branch was created".into(),
            };
        };
        let deleted: Result<serde_json::Value, _> = self.client.send(Call::DeleteBranch(&branch_ref), None).await;
        let result = match deleted {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(format!("cannot delete branch {name} ({branch_ref}): {e}; run `stackdrill drill cleanup`")),
        };
        Teardown::from_delete(
            result,
            format!("branch {name} ({branch_ref}) deleted"),
            format!("branch {name} was already gone"),
        )
    }
}

impl SupabaseBranch {
    /// Waits until the branch is healthy, in its region, and accepts connections: how to reach it.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        let (branch_ref, name) =
            self.branch.clone().ok_or_else(|| RestoreError::Error("ready before restore".into()))?;
        let config = self.wait_healthy(&branch_ref).await?;
        if !config.postgres_version.is_empty() {
            self.facts.push(("postgres_version", config.postgres_version.clone()));
        }
        // The branch is a project of its own: its region must be the one asked for, inside the residency.
        let project: Project = self
            .client
            .send(Call::GetProject(&branch_ref), None)
            .await
            .map_err(|e| RestoreError::Error(e.to_string()))?;
        self.facts.push(("branch_region", project.region.clone()));
        let asked = self.region.clone().unwrap_or_default();
        if project.region != asked || !self.spec.residency.contains(&project.region) {
            return Err(RestoreError::Failed(format!(
                "branch {name} is in `{}`, not `{asked}` as asked (residency {}); it is deleted",
                project.region,
                self.spec.residency.join(", ")
            )));
        }
        let (host, port, user) = self.address(&branch_ref, &config).await?;
        let via = match self.spec.connect {
            SupabaseConnect::Pooler => "session pooler",
            SupabaseConnect::Direct => "direct host",
        };
        self.facts.push(("connected_via", format!("{via} {host}:{port}")));
        let mut pg = tokio_postgres::Config::new();
        pg.host(&host)
            .port(port)
            .user(&user)
            .dbname(&self.spec.database)
            .application_name("stackdrill")
            .connect_timeout(Duration::from_secs(15));
        if let Some(p) = &config.db_pass {
            pg.password(p);
        }
        let ep = Endpoint {
            config: pg,
            tls: self.spec.tls.clone(),
            server_name: None,
            credential: Some("branch credentials from the Management API (in memory only)"),
            display: format!(
                "{user}@{host}:{port}/{} (branch {name} via the {via}) sslmode={}",
                self.spec.database,
                self.spec.tls.sslmode()
            ),
        };
        // Healthy in the API is not always accepting connections yet.
        accepting(ep, &host, port, "the branch database").await
    }
}

#[async_trait::async_trait]
impl super::registry::ProviderKind for SupabaseBranchSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let provider = SupabaseBranch::new(self, &ctx.spec.name, ctx.run_id, ctx.events.clone())?;
        Ok(super::registry::Built::alone(provider))
    }

    /// The dashboard's own estimate for a branch with data: at least 3 minutes, plus ~2 s per GB copied.
    fn rto_floor(&self) -> Option<(u64, &'static str)> {
        Some((3 * 60, "a Supabase branch with data is provisioned (≥ 3 min + ~2 s/GB)"))
    }

    async fn sweep(&self, drill: &str, dry_run: bool) -> Vec<Swept> {
        sweep_branches(drill, self, dry_run).await
    }

    fn scratch_text(&self, name: &str, _: &crate::config::DrillSpec, _: &str, _: Option<&str>) -> String {
        format!("branch {name} of project {} (not persistent)", self.project_ref)
    }
}

/// Branches of the drill's Supabase project named `sd-<drill>-<run>` (what its runs create), not persistent,
/// older than `expires-after`. No token means the sweep is skipped with a note.
async fn sweep_branches(drill: &str, spec: &SupabaseBranchSpec, dry_run: bool) -> Vec<Swept> {
    let swept = |resource: String, run: &str, action: String| Swept {
        kind: "supabase-branch",
        resource,
        drill: drill.to_string(),
        run: run.to_string(),
        action,
    };
    let project = format!("supabase:{}", spec.project_ref);
    let client = match Client::new(&spec.api_url, &spec.token_env) {
        Ok(c) => c,
        Err(e) => return vec![swept(project, "", format!("skipped: {e}"))],
    };
    let branches: Vec<Branch> = match client.send(Call::ListBranches(&spec.project_ref), None).await {
        Ok(b) => b,
        Err(e) => return vec![swept(project, "", format!("failed: {e}"))],
    };
    let mut out = Vec::new();
    for b in branches.into_iter().filter(|b| is_drill_branch(&b.name, drill)) {
        let run = b.name.rsplit('-').next().unwrap_or_default().to_string();
        let resource = format!("{project}/{} ({})", b.name, b.id);
        let created = chrono::DateTime::parse_from_rfc3339(&b.created_at).map(|t| t.to_utc());
        // An expiry that cannot be represented never comes: the branch is kept.
        let expired = created.as_ref().is_ok_and(|t| {
            chrono::Duration::from_std(spec.expires_after)
                .ok()
                .and_then(|d| t.checked_add_signed(d))
                .is_some_and(|end| end < Utc::now())
        });
        let action = if b.persistent {
            "refused: a persistent branch (drills create only non-persistent ones)".to_string()
        } else if b.is_default || b.project_ref == spec.project_ref || b.parent_project_ref != spec.project_ref {
            format!("refused: `{}` is the default branch, the project itself, or not its branch", b.project_ref)
        } else if created.is_err() {
            format!("refused: its creation time `{}` is not a time", b.created_at)
        } else if !expired {
            "kept (not expired yet)".to_string()
        } else if !valid_ref(&b.project_ref) {
            format!("refused: `{}` is not a branch ref", b.project_ref)
        } else if dry_run {
            "would remove".to_string()
        } else {
            match client.send::<serde_json::Value>(Call::DeleteBranch(&b.project_ref), None).await {
                Ok(_) => "removed".to_string(),
                Err(e) => format!("failed: {e}"),
            }
        };
        out.push(swept(resource, &run, action));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_drills_branches_match() {
        assert_eq!(branch_name("supa", "0123456789ab"), "sd-supa-01234567");
        assert!(is_drill_branch("sd-supa-01234567", "supa"));
        assert!(!is_drill_branch("sd-supa-0123456", "supa"));
        assert!(!is_drill_branch("sd-supa-x1234567", "supa"));
        assert!(!is_drill_branch("sd-supa-staging-01234567", "supa"));
        assert!(!is_drill_branch("feature-login", "supa"));
    }

    #[test]
    fn an_ipv6_only_host_is_named_in_the_error() {
        let v6: std::net::SocketAddr = "[2406:da18::1]:5432".parse().unwrap();
        let v4: std::net::SocketAddr = "13.228.0.1:5432".parse().unwrap();
        let e = ipv6_only("db.abcdefghijklmnopqrst.supabase.co", &[v6]).unwrap();
        assert!(
            e.contains("db.abcdefghijklmnopqrst.supabase.co") && e.contains("IPv6") && e.contains("connect: pooler"),
            "{e}"
        );
        assert!(ipv6_only("h", &[v6, v4]).is_none() && ipv6_only("h", &[]).is_none());
    }
}
