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
use crate::drill::cleanup::Swept;
use crate::drill::error::{DrillError, RestoreError};
use crate::drill::events::EventSink;
use crate::drill::target::{ResolvedTarget, Window};
use crate::supabase::{Branch, BranchConfig, Call, Client, valid_id};

pub(crate) struct SupabaseBranch {
    spec: SupabaseBranchSpec,
    client: Client,
    drill: String,
    run: String,
    events: EventSink,
    facts: Vec<(&'static str, String)>,
    planned_at: DateTime<Utc>,
    /// The branch this run created (id, name), once the API answered the create.
    branch: Option<(String, String)>,
    created_at: Option<DateTime<Utc>>,
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
            created_at: None,
        })
    }

    fn progress(&self, phase: &'static str, msg: impl Into<String>) {
        self.events.progress(&self.drill, phase, msg);
    }

    /// Polls the branch until its database is `ACTIVE_HEALTHY`, with backoff, within `wait-healthy`.
    async fn wait_healthy(&self, id: &str) -> Result<BranchConfig, RestoreError> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(500);
        loop {
            let config: BranchConfig =
                self.client.send(Call::GetBranch(id), None).await.map_err(|e| RestoreError::Error(e.to_string()))?;
            match config.status.as_str() {
                "ACTIVE_HEALTHY" => return Ok(config),
                s @ ("INIT_FAILED" | "RESTORE_FAILED" | "REMOVED" | "GOING_DOWN") => {
                    return Err(RestoreError::Failed(format!("the branch database went to {s}")));
                }
                s => self.progress("ready", format!("branch database {s} ({:.0}s)", start.elapsed().as_secs_f64())),
            }
            if start.elapsed() + wait > self.spec.wait_healthy {
                return Err(RestoreError::Error(format!(
                    "the branch did not become healthy within {} (last status {}); it is deleted",
                    humantime::format_duration(self.spec.wait_healthy),
                    config.status
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(15));
        }
    }
}

#[async_trait::async_trait]
impl RestoreProvider for SupabaseBranch {
    fn name(&self) -> &'static str {
        "supabase-branch"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("project_ref", self.spec.project_ref.clone()), ("api", self.spec.api_url.clone())];
        if let Some((id, name)) = &self.branch {
            v.push(("branch", format!("{name} ({id})")));
        }
        v.extend(self.facts.iter().cloned());
        v
    }

    /// Reads the project (its region must be in the residency) and its backups' settings; the window is
    /// now: a branch copies the current state.
    async fn window(&mut self) -> Result<Window, DrillError> {
        let r = self.spec.project_ref.clone();
        let project: crate::supabase::Project = self.client.send(Call::GetProject(&r), None).await?;
        if !self.spec.residency.contains(&project.region) {
            return Err(DrillError::Refused(format!(
                "Supabase project `{r}` is in `{}`, outside the drill's residency ({}): a branch would copy its data there",
                project.region,
                self.spec.residency.join(", ")
            )));
        }
        let backups: crate::supabase::Backups = self.client.send(Call::ListBackups(&r), None).await?;
        self.facts.extend([
            ("project_name", project.name.clone()),
            ("region", project.region.clone()),
            ("project_status", project.status.clone()),
            ("pitr_enabled", backups.pitr_enabled.to_string()),
            ("backups_listed", backups.backups.len().to_string()),
        ]);
        self.planned_at = Utc::now();
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
        self.progress("restore", format!("creating branch {name} with data"));
        self.created_at = Some(Utc::now());
        let created: Branch = self
            .client
            .send(Call::CreateBranch(&self.spec.project_ref), Some(body))
            .await
            .map_err(|e| RestoreError::Error(e.to_string()))?;
        if !valid_id(&created.id) {
            return Err(RestoreError::Error(format!(
                "the API answered a branch id `{}` that is not an id",
                created.id
            )));
        }
        self.branch = Some((created.id, created.name));
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
        let Some((id, name)) = self.branch.take() else {
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: "no branch was created".into(),
            };
        };
        let deleted: Result<serde_json::Value, _> = self.client.send(Call::DeleteBranch(&id), None).await;
        let result = match deleted {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(format!("cannot delete branch {name} ({id}): {e}; run `stackdrill drill cleanup`")),
        };
        Teardown::from_delete(
            result,
            format!("branch {name} ({id}) deleted"),
            format!("branch {name} was already gone"),
        )
    }
}

impl SupabaseBranch {
    /// Waits until the restored database accepts queries as a primary: how to reach it.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        let (id, name) = self.branch.clone().ok_or_else(|| RestoreError::Error("ready before restore".into()))?;
        let config = self.wait_healthy(&id).await?;
        if !config.postgres_version.is_empty() {
            self.facts.push(("postgres_version", config.postgres_version.clone()));
        }
        let user = config.db_user.clone().unwrap_or_else(|| "postgres".into());
        let mut pg = tokio_postgres::Config::new();
        pg.host(&config.db_host)
            .port(config.db_port)
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
                "{user}@{}:{}/{} (branch {name}) sslmode={}",
                config.db_host,
                config.db_port,
                self.spec.database,
                self.spec.tls.sslmode()
            ),
        };
        // Healthy in the API is not always accepting connections yet.
        let start = Instant::now();
        loop {
            match crate::pg::connect_tls(&ep.config, &ep.tls, None).await {
                Ok(_) => return Ok(ep),
                // A server that asks for a password without channel binding will not stop asking.
                Err(e) if crate::pg::is_channel_binding_refused(&e) => {
                    return Err(RestoreError::Failed(format!(
                        "cannot connect to the branch database: {e}; {}",
                        crate::pg::CHANNEL_BINDING_HINT
                    )));
                }
                Err(e) if start.elapsed() < Duration::from_secs(60) => {
                    tracing::debug!(error = %e, "branch database not accepting connections yet");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => return Err(RestoreError::Failed(format!("cannot connect to the branch database: {e}"))),
            }
        }
    }
}

#[async_trait::async_trait]
impl super::registry::ProviderKind for SupabaseBranchSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let provider = SupabaseBranch::new(self, &ctx.spec.name, ctx.run_id, ctx.events.clone())?;
        Ok(super::registry::Built::alone(provider))
    }

    fn rto_floor(&self) -> Option<(u64, &'static str)> {
        Some((60, "a Supabase branch with data is provisioned"))
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
        let expired = created
            .as_ref()
            .is_ok_and(|t| *t + chrono::Duration::from_std(spec.expires_after).unwrap_or_default() < Utc::now());
        let action = if b.persistent {
            "refused: a persistent branch (drills create only non-persistent ones)".to_string()
        } else if created.is_err() {
            format!("refused: its creation time `{}` is not a time", b.created_at)
        } else if !expired {
            "kept (not expired yet)".to_string()
        } else if !crate::supabase::valid_id(&b.id) {
            format!("refused: `{}` is not a branch id", b.id)
        } else if dry_run {
            "would remove".to_string()
        } else {
            match client.send::<serde_json::Value>(Call::DeleteBranch(&b.id), None).await {
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
}
