//! `existing-postgres`: a database someone else restored (Supabase's restore to a new project, an RDS
//! restore made during an incident), verified where it is. stackdrill restores nothing and removes
//! nothing; it only reads, in read-only sessions, with the same TLS and credential rules as a source.

use chrono::{DateTime, Utc};

use super::{BackupUsed, Endpoint, RestoreProvider, Teardown, TeardownStatus};
use crate::config::{ExistingPostgresSpec, RestoreSpec};
use crate::drill::error::{DrillError, RestoreError};
use crate::drill::source::Login;
use crate::drill::target::{ResolvedTarget, Window};

pub(crate) struct ExistingPostgres {
    spec: ExistingPostgresSpec,
    /// The drill's restore block, which `source::login` reads.
    restore: RestoreSpec,
    login: Option<Login>,
    aws: Option<aws_types::SdkConfig>,
    /// `--restore-started-at` over the file's key.
    started_at: Option<DateTime<Utc>>,
    /// What every session carries: read-only, and the source's statement and lock timeouts.
    bounds: crate::drill::source::Bounds,
    planned_at: DateTime<Utc>,
}

impl ExistingPostgres {
    pub(crate) fn new(
        spec: &ExistingPostgresSpec,
        started_at: Option<DateTime<Utc>>,
        aws: Option<aws_types::SdkConfig>,
        check_timeout: std::time::Duration,
    ) -> ExistingPostgres {
        ExistingPostgres {
            bounds: crate::drill::source::Bounds::of(&spec.connection, check_timeout),
            started_at: started_at.or(spec.restore_started_at),
            spec: spec.clone(),
            restore: RestoreSpec::ExistingPostgres(spec.clone()),
            login: None,
            aws,
            planned_at: Utc::now(),
        }
    }
}

#[async_trait::async_trait]
impl RestoreProvider for ExistingPostgres {
    fn name(&self) -> &'static str {
        "existing-postgres"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("restore", "manual".to_string())];
        if let Some(b) = &self.spec.backup {
            v.push(("backup", b.clone()));
        }
        if let Some(l) = &self.login {
            v.push(("endpoint", l.display()));
        }
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if let Some(t) = &self.started_at {
            v.push(("restore_started_at", time(t)));
        }
        if let Some(t) = &self.spec.restore_finished_at {
            v.push(("restore_finished_at", time(t)));
        }
        if let Some(t) = &self.spec.restored_to {
            v.push(("restored_to", time(t)));
        }
        v
    }

    /// The one moment the copy holds: `restored-to` when given, else now (whatever it holds).
    async fn window(&mut self) -> Result<Window, DrillError> {
        let t = self.spec.restored_to.unwrap_or(self.planned_at);
        Ok(Window { earliest: t, latest: t.max(self.planned_at) })
    }

    async fn wait_recoverable(
        &mut self,
        _t: DateTime<Utc>,
        _source: &tokio_postgres::Client,
    ) -> Result<(), DrillError> {
        Err(DrillError::NoWindow("a database restored by hand cannot hold a canary written during the drill".into()))
    }

    fn plan(&mut self, _target: &ResolvedTarget) -> Result<BackupUsed, DrillError> {
        let at = self.spec.restored_to.or(self.started_at).unwrap_or(self.planned_at);
        Ok(BackupUsed {
            id: "manual".into(),
            location: self.spec.backup.clone().unwrap_or_else(|| "not recorded (set `backup`)".into()),
            started_at: at,
            finished_at: at,
        })
    }

    /// Nothing to restore: the login is resolved (password from its env or file) for `wait_ready`.
    async fn restore(&mut self, _target: &ResolvedTarget) -> Result<(), RestoreError> {
        let login = crate::drill::source::login(&self.spec.connection, &self.restore, self.aws.as_ref())
            .await
            .map_err(|e| RestoreError::Error(e.to_string()))?;
        self.login = Some(login);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.wait_endpoint().await.map(|ep| super::Restored::Postgres(Box::new(ep)))
    }

    fn neutralised(&self) -> Vec<String> {
        vec!["nothing changed: a database restored by hand is only read (default_transaction_read_only = on)".into()]
    }

    fn data_as_of(&self) -> Option<DateTime<Utc>> {
        self.spec.restored_to
    }

    fn rpo_floor(&self) -> Option<(DateTime<Utc>, &'static str)> {
        self.spec.restored_to.map(|t| (t, "`restored-to`: the moment the restore was made to, as recorded"))
    }

    fn recovery(&self) -> Option<String> {
        Some("restored by hand (restore: manual); stackdrill verified it where it is".into())
    }

    fn rto_seconds(&self, ready_at: DateTime<Utc>) -> Option<f64> {
        let start = self.started_at?;
        let end = self.spec.restore_finished_at.unwrap_or(ready_at);
        Some((end - start).num_milliseconds().max(0) as f64 / 1000.0)
    }

    async fn teardown(&mut self) -> Teardown {
        Teardown {
            status: TeardownStatus::NothingToDo,
            at: Utc::now(),
            detail: "restore: manual; stackdrill created nothing, so it removes nothing (the copy is its owner's)"
                .into(),
        }
    }
}

impl ExistingPostgres {
    /// Waits until the restored database accepts queries as a primary: how to reach it.
    /// Connects once (TLS as configured, read-only) to prove the copy answers; every later session of the
    /// verify phase carries `default_transaction_read_only`.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        let login = self.login.as_ref().ok_or_else(|| RestoreError::Error("ready before restore".into()))?;
        let mut config = login.config("ready");
        config.options(self.bounds.read_only_options());
        let client = crate::pg::connect_tls(&config, &login.tls, None).await.map_err(|e| {
            RestoreError::Failed(format!("cannot connect to the restored database {}: {e}", login.display()))
        })?;
        let read_only: String = client
            .query_one("show default_transaction_read_only", &[])
            .await
            .map_err(|e| RestoreError::Failed(crate::drill::verify::db_error(&e)))?
            .get(0);
        if read_only != "on" {
            return Err(RestoreError::Error(format!(
                "the restored database did not accept read-only sessions (default_transaction_read_only = {read_only})"
            )));
        }
        Ok(Endpoint {
            config,
            tls: login.tls.clone(),
            server_name: None,
            credential: Some(login.credential),
            display: format!("{} (restored by hand; read-only sessions, {})", login.display(), self.bounds.describe()),
        })
    }
}

#[async_trait::async_trait]
impl super::registry::ProviderKind for ExistingPostgresSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        use crate::config::SecretRef;
        let aws = match &self.connection.password {
            SecretRef::Secret(_) | SecretRef::IamAuth => {
                let config = crate::aws::load(&ctx.opts.aws).await;
                crate::aws::check_credentials(&config).await?;
                Some(config)
            }
            _ => None,
        };
        let provider = ExistingPostgres::new(self, ctx.opts.restore_started_at, aws, ctx.spec.timeouts.check);
        Ok(super::registry::Built::alone(provider))
    }

    fn scratch_text(&self, _: &str, _: &crate::config::DrillSpec, _: &str, _: Option<&str>) -> String {
        "none: the database was restored by hand; it is only read".into()
    }
}
