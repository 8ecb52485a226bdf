//! `supabase-new-project`: a Supabase project's point-in-time recovery to T, drilled end to end.
//!
//! The v1 Management API has only in-place restores (`…/restore-pitr`, `…/restore`), which a drill never
//! calls; restoring to a *new* project exists only in the dashboard. So the drill reads the PITR window
//! (`GET …/database/backups`), picks T inside it, and asks a person for the one dashboard step — restore
//! to a new project at exactly T, named `sd-<drill>-<run>` — then waits (bounded by `wait-restored`) for
//! that project to appear among the token's projects (or takes `--restored-project REF`), checks its
//! region against the residency, waits until it is healthy, and hands it to the checks. RTO runs from the
//! moment the person was asked. Teardown deletes the project only through `crate::supabase::deletable`:
//! its name is exactly this run's, its ref is not the source's, and it was created after the run began;
//! otherwise it says what to delete.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use super::{BackupUsed, Endpoint, RestoreProvider, Teardown, TeardownStatus};
use crate::config::{SupabaseConnect, SupabaseNewProjectSpec};
use crate::drill::error::{DrillError, RestoreError};
use crate::drill::events::EventSink;
use crate::drill::target::{ResolvedTarget, Window};
use crate::drill::verify::CheckResult;
use crate::supabase::{Backups, Call, Client, Health, Pooler, Project, deletable, valid_ref};

pub(crate) struct SupabaseNewProject {
    spec: SupabaseNewProjectSpec,
    client: Client,
    drill: String,
    run: String,
    events: EventSink,
    facts: Vec<(&'static str, String)>,
    /// When this run began: a project created before it is never this run's.
    run_started: DateTime<Utc>,
    /// `--restored-project`: the project a person already restored.
    given: Option<String>,
    /// The new project's database password (`password-env`), in memory only.
    password: Option<String>,
    region: String,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    target: Option<DateTime<Utc>>,
    /// When the person was asked: the RTO runs from here.
    asked_at: Option<DateTime<Utc>>,
    /// The project found (this run's, or the one given).
    project: Option<Project>,
    gate: Vec<CheckResult>,
}

/// The name the person gives the new project: what the drill waits for and the teardown's guard demands.
pub(crate) fn project_name(drill: &str, run: &str) -> String {
    super::supabase_branch::branch_name(drill, run)
}

fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A project given with `--restored-project` must be one a run of this drill asked for (`sd-<drill>-<run>`) and
/// created after the target it is checked at: a staging project, or a copy restored before T, is refused.
fn given_is_a_restore_of(p: &Project, drill: &str, t: DateTime<Utc>) -> Result<(), RestoreError> {
    if !super::supabase_branch::is_drill_branch(&p.name, drill) {
        return Err(RestoreError::Failed(format!(
            "project {} is named `{}`: not one a run of drill {drill} asked for (sd-{drill}-<run>)",
            p.project_ref, p.name
        )));
    }
    match crate::supabase::parse_time(&p.created_at) {
        Some(c) if c > t => Ok(()),
        Some(c) => Err(RestoreError::Failed(format!(
            "project {} was created at {}, before the target {}: it cannot be a restore to it",
            p.project_ref,
            secs(c),
            secs(t)
        ))),
        None => Err(RestoreError::Failed(format!(
            "project {}'s creation time `{}` is not a time",
            p.project_ref, p.created_at
        ))),
    }
}

impl SupabaseNewProject {
    pub(crate) fn new(
        spec: &SupabaseNewProjectSpec,
        drill: &str,
        run: &str,
        events: EventSink,
        given: Option<String>,
    ) -> Result<SupabaseNewProject, DrillError> {
        if let Some(r) = given.as_deref().filter(|r| !valid_ref(r)) {
            return Err(DrillError::Refused(format!(
                "--restored-project `{r}` is not a project ref (20 lowercase letters)"
            )));
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "a supabase-new-project drill's `password-env` names its variable (documented)"
        )]
        let password = std::env::var(&spec.password_env).ok().filter(|p| !p.is_empty());
        Ok(SupabaseNewProject {
            client: Client::new(&spec.api_url, &spec.token_env)?,
            spec: spec.clone(),
            drill: drill.into(),
            run: run.into(),
            events,
            facts: Vec::new(),
            run_started: Utc::now(),
            given,
            password,
            region: String::new(),
            window: None,
            target: None,
            asked_at: None,
            project: None,
            gate: Vec::new(),
        })
    }

    fn progress(&self, phase: &'static str, msg: impl Into<String>) {
        self.events.progress(&self.drill, phase, msg);
    }

    async fn backups(&self) -> Result<Backups, crate::supabase::ApiError> {
        self.client.send(Call::ListBackups(&self.spec.project_ref), None).await
    }

    /// Waits until a project named this run's appears (not the source, created after the run began).
    async fn wait_for_project(&self, name: &str) -> Result<Project, RestoreError> {
        let start = Instant::now();
        loop {
            let projects: Vec<Project> =
                self.client.send(Call::ListProjects, None).await.map_err(|e| RestoreError::Error(e.to_string()))?;
            if let Some(p) = projects.into_iter().find(|p| p.name == name && p.project_ref != self.spec.project_ref) {
                return Ok(p);
            }
            let wait = Duration::from_secs(5);
            if start.elapsed() + wait > self.spec.wait_restored {
                return Err(RestoreError::Error(format!(
                    "no project named `{name}` appeared within {} of asking: nothing was restored (run again with \
                     --restored-project REF once it exists)",
                    humantime::format_duration(self.spec.wait_restored)
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Polls the new project until `ACTIVE_HEALTHY`; a status that will not become healthy ends at once.
    async fn wait_healthy(&self, project_ref: &str) -> Result<Project, RestoreError> {
        let start = Instant::now();
        let mut wait = Duration::from_millis(500);
        loop {
            let p: Project = self
                .client
                .send(Call::GetProject(project_ref), None)
                .await
                .map_err(|e| RestoreError::Error(e.to_string()))?;
            match p.status.health() {
                Health::Healthy => return Ok(p),
                Health::Stop => {
                    return Err(RestoreError::Failed(format!(
                        "the restored project {project_ref} went to {}: it will not become healthy",
                        p.status.as_str()
                    )));
                }
                Health::Wait => {
                    self.progress("ready", format!("project {project_ref} {}", p.status.as_str()));
                }
            }
            if start.elapsed() + wait > self.spec.wait_healthy {
                return Err(RestoreError::Error(format!(
                    "the restored project {project_ref} did not become healthy within {} (last status {})",
                    humantime::format_duration(self.spec.wait_healthy),
                    p.status.as_str()
                )));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(15));
        }
    }
}

#[async_trait::async_trait]
impl RestoreProvider for SupabaseNewProject {
    fn name(&self) -> &'static str {
        "supabase-new-project"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("project_ref", self.spec.project_ref.clone()), ("api", self.spec.api_url.clone())];
        v.extend(self.facts.iter().cloned());
        v
    }

    /// The source's region (in the residency), the backup-health gate, and the PITR window
    /// (`physical_backup_data`); without PITR there is no point in time to restore to.
    async fn window(&mut self) -> Result<Window, DrillError> {
        let r = self.spec.project_ref.clone();
        let project: Project = self.client.send(Call::GetProject(&r), None).await?;
        if !self.spec.residency.contains(&project.region) {
            return Err(DrillError::Refused(format!(
                "Supabase project `{r}` is in `{}`, outside the drill's residency ({})",
                project.region,
                self.spec.residency.join(", ")
            )));
        }
        self.region = project.region.clone();
        let backups = self.backups().await?;
        let now = Utc::now();
        self.gate = vec![super::supabase_branch::health_check(&backups, &self.spec.backup_health, now)];
        self.facts.extend([
            ("project_name", project.name.clone()),
            ("region", project.region.clone()),
            ("pitr_enabled", backups.pitr_enabled.to_string()),
            ("walg_enabled", backups.walg_enabled.to_string()),
        ]);
        let Some((earliest, latest)) = backups.physical_backup_data.window().filter(|_| backups.pitr_enabled) else {
            return Err(DrillError::NoWindow(format!(
                "project `{r}` has no point-in-time window (pitr_enabled {}, physical_backup_data without both ends): \
                 enable PITR (Database → Backups) — restoring to a new project at a chosen time needs it",
                backups.pitr_enabled
            )));
        };
        self.facts.push(("pitr_window", format!("{} .. {}", secs(earliest), secs(latest))));
        self.window = Some((earliest, latest));
        Ok(Window { earliest, latest })
    }

    /// Waits until the window's latest point passes `t`.
    async fn wait_recoverable(&mut self, t: DateTime<Utc>, _source: &tokio_postgres::Client) -> Result<(), DrillError> {
        loop {
            let b = self.backups().await?;
            if let Some((earliest, latest)) = b.physical_backup_data.window()
                && latest >= t
            {
                self.window = Some((earliest, latest));
                return Ok(());
            }
            self.progress("plan", format!("waiting for the PITR window to reach {}", secs(t)));
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }

    fn plan(&mut self, target: &ResolvedTarget) -> Result<BackupUsed, DrillError> {
        let (earliest, latest) =
            self.window.ok_or_else(|| DrillError::NoWindow("the PITR window was not read".into()))?;
        // `latest` is the window's end; whole seconds: the dashboard's picker takes no fractions, and T must be
        // what the person enters.
        let t = match target.recovery {
            crate::drill::target::Recovery::End => latest,
            crate::drill::target::Recovery::Time(t) => t,
        };
        let t = DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
        if t < earliest || t > latest {
            return Err(DrillError::NoWindow(format!(
                "{} is outside the PITR window {} .. {}",
                secs(t),
                secs(earliest),
                secs(latest)
            )));
        }
        self.target = Some(t);
        self.facts.push(("target", secs(t)));
        Ok(BackupUsed {
            id: format!("PITR of {} at {}", self.spec.project_ref, secs(t)),
            location: format!(
                "supabase project {} (WAL-G, window {} .. {}), restored to a new project",
                self.spec.project_ref,
                secs(earliest),
                secs(latest)
            ),
            started_at: earliest,
            finished_at: t,
        })
    }

    fn operator_step(&self, t: DateTime<Utc>) -> Option<String> {
        let t = self.target.unwrap_or(t);
        Some(format!(
            "in the Supabase dashboard of project {}: Database → Backups → Point in time → Restore to a new project; \
             restore to {} (UTC); name the new project `{}`; keep region {}",
            self.spec.project_ref,
            secs(t),
            project_name(&self.drill, &self.run),
            if self.region.is_empty() { "as the source's" } else { &self.region }
        ))
    }

    async fn restore(&mut self, target: &ResolvedTarget) -> Result<(), RestoreError> {
        let name = project_name(&self.drill, &self.run);
        let t = self.target.unwrap_or(target.time);
        let asked = Utc::now();
        self.asked_at = Some(asked);
        self.facts.push(("asked_at", secs(asked)));
        let project = match self.given.clone() {
            Some(r) => {
                self.progress("restore", format!("taking the restored project {r} (--restored-project)"));
                let p: Project = self
                    .client
                    .send(Call::GetProject(&r), None)
                    .await
                    .map_err(|e| RestoreError::Error(e.to_string()))?;
                if let Err(e) = given_is_a_restore_of(&p, &self.drill, t) {
                    // Kept for the teardown, whose guard refuses it and says what to delete.
                    self.project = Some(p);
                    return Err(e);
                }
                // The ask was in an earlier run: the RTO runs from the project's creation, a lower bound.
                self.asked_at = crate::supabase::parse_time(&p.created_at);
                self.facts.push(("rto_basis", "the given project's creation (the ask was in an earlier run)".into()));
                p
            }
            None => {
                let step = self.operator_step(t).unwrap_or_default();
                tracing::warn!(drill = %self.drill, "DASHBOARD STEP: {step}");
                self.progress(
                    "restore",
                    format!(
                        "DASHBOARD STEP: {step}. Waiting up to {} for it to appear (or run again with --restored-project REF)",
                        humantime::format_duration(self.spec.wait_restored)
                    ),
                );
                self.wait_for_project(&name).await?
            }
        };
        if project.project_ref == self.spec.project_ref {
            return Err(RestoreError::Failed(format!(
                "{} is the source project, not a restored copy",
                project.project_ref
            )));
        }
        self.facts.push(("restored_project", format!("{} ({})", project.project_ref, project.name)));
        self.facts.push(("restored_project_created_at", project.created_at.clone()));
        self.facts.push(("restored_project_region", project.region.clone()));
        let region = project.region.clone();
        let r = project.project_ref.clone();
        self.project = Some(project);
        if !self.spec.residency.contains(&region) {
            return Err(RestoreError::Failed(format!(
                "the restored project {r} is in `{region}`, outside the drill's residency ({}): the copy is where it must \
                 not be; delete it",
                self.spec.residency.join(", ")
            )));
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.wait_endpoint().await.map(|ep| super::Restored::Postgres(Box::new(ep)))
    }

    fn neutralised(&self) -> Vec<String> {
        vec![
            "the drill never calls Supabase's in-place restore endpoints (the client cannot reach them)".into(),
            "the new project copies the database only: Storage objects, Edge Functions, Auth settings and API keys \
             are not in it"
                .into(),
        ]
    }

    /// The restored data stands at T (the whole second the person entered): checks against the source cut
    /// there.
    fn data_as_of(&self) -> Option<DateTime<Utc>> {
        self.target
    }

    fn gate_checks(&self) -> Vec<CheckResult> {
        self.gate.clone()
    }

    fn recovery(&self) -> Option<String> {
        Some("Supabase point-in-time recovery to a new project (dashboard), WAL-G replay to the target".into())
    }

    /// From the moment the person was asked (the restore's own creation time is in the facts).
    fn rto_seconds(&self, ready_at: DateTime<Utc>) -> Option<f64> {
        self.asked_at.map(|a| (ready_at - a).num_milliseconds() as f64 / 1000.0)
    }

    async fn teardown(&mut self) -> Teardown {
        let Some(project) = self.project.take() else {
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: "no restored project was found".into(),
            };
        };
        let name = project_name(&self.drill, &self.run);
        let guarded = match deletable(&project, &name, &self.spec.project_ref, self.run_started) {
            Ok(d) => d,
            Err(why) => {
                return Teardown {
                    status: TeardownStatus::Failed,
                    at: Utc::now(),
                    detail: format!(
                        "not deleted: {why}; delete project {} ({}) in the dashboard yourself once you are sure it is \
                         the restored copy",
                        project.project_ref, project.name
                    ),
                };
            }
        };
        let deleted: Result<serde_json::Value, _> = self.client.send(Call::DeleteProject(&guarded), None).await;
        let r = guarded.project_ref();
        let result = match deleted {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(format!("cannot delete project {name} ({r}): {e}; delete it in the dashboard")),
        };
        Teardown::from_delete(
            result,
            format!("project {name} ({r}) deleted"),
            format!("project {name} ({r}) was already gone"),
        )
    }
}

impl SupabaseNewProject {
    /// Waits until the restored project is healthy and accepts connections: how to reach it.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        let r = self
            .project
            .as_ref()
            .map(|p| p.project_ref.clone())
            .ok_or_else(|| RestoreError::Error("ready before restore".into()))?;
        self.wait_healthy(&r).await?;
        let (host, port, user) = match self.spec.connect {
            SupabaseConnect::Direct => (format!("db.{r}.supabase.co"), 5432, "postgres".to_string()),
            SupabaseConnect::Pooler => {
                let poolers: Vec<Pooler> = self
                    .client
                    .send(Call::GetPooler(&r), None)
                    .await
                    .map_err(|e| RestoreError::Error(e.to_string()))?;
                let p = poolers.into_iter().find(|p| p.database_type == "PRIMARY").ok_or_else(|| {
                    RestoreError::Failed(format!(
                        "project {r} has no PRIMARY pooler: use `connect: direct` from a network with IPv6"
                    ))
                })?;
                let port = if p.pool_mode == "session" { p.db_port } else { 5432 };
                (p.db_host, port, p.db_user)
            }
        };
        self.facts.push(("connected_via", format!("{host}:{port}")));
        let mut pg = tokio_postgres::Config::new();
        pg.host(&host)
            .port(port)
            .user(&user)
            .dbname(&self.spec.database)
            .application_name("stackdrill")
            .connect_timeout(Duration::from_secs(15));
        if let Some(p) = &self.password {
            pg.password(p);
        }
        let ep = Endpoint {
            config: pg,
            tls: self.spec.tls.clone(),
            server_name: None,
            credential: Some("the restored project's password (`password-env`, in memory only)"),
            display: format!(
                "{user}@{host}:{port}/{} (project {r}) sslmode={}",
                self.spec.database,
                self.spec.tls.sslmode()
            ),
        };
        super::supabase_branch::accepting(ep, &host, port, "the restored project").await
    }
}

#[async_trait::async_trait]
impl super::registry::ProviderKind for SupabaseNewProjectSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let given = ctx.opts.restored_project.clone();
        let provider = SupabaseNewProject::new(self, &ctx.spec.name, ctx.run_id, ctx.events.clone(), given)?;
        Ok(super::registry::Built::alone(provider))
    }

    fn scratch_text(&self, name: &str, _: &crate::config::DrillSpec, _: &str, _: Option<&str>) -> String {
        format!(
            "project {name}, restored by a person from project {}'s PITR in the dashboard (the step below), \
             deleted afterwards",
            self.project_ref
        )
    }
}

#[cfg(test)]
mod given_tests {
    use super::*;

    /// `--restored-project` takes only a project a run of this drill asked for, created after the target.
    #[test]
    fn a_given_project_must_be_a_restore_this_drill_asked_for_after_t() {
        let t = DateTime::parse_from_rfc3339("2026-12-06T07:00:00Z").unwrap().to_utc();
        let project = |name: &str, created: &str| Project {
            project_ref: "zyxwvutsrqponmlkjihg".into(),
            region: "ap-southeast-1".into(),
            status: crate::supabase::ProjectStatus::ActiveHealthy,
            name: name.into(),
            created_at: created.into(),
        };
        assert!(given_is_a_restore_of(&project("sd-supa-0123abcd", "2026-12-06T07:05:00Z"), "supa", t).is_ok());
        let refused = |p: Project| match given_is_a_restore_of(&p, "supa", t) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("{p:?} taken"),
        };
        assert!(refused(project("staging", "2026-12-06T07:05:00Z")).contains("not one a run of drill supa"));
        assert!(refused(project("sd-supa-other-0123abcd", "2026-12-06T07:05:00Z")).contains("not one a run"));
        assert!(refused(project("sd-supa-0123abcd", "2026-12-06T06:00:00Z")).contains("before the target"));
        assert!(refused(project("sd-supa-0123abcd", "yesterday")).contains("is not a time"));
    }
}
