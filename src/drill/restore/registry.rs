//! The provider registry: the one place a drill file's `restore:` block becomes a provider.
//!
//! Each provider's file implements two traits: [`ProviderKind`] on its config block (what it is before it
//! is built: how to build it, its RTO floor, the scratch `drill plan` shows, how long its plan phase may
//! take) and [`RestoreProvider`] on the built provider (window, plan, restore, ready, teardown, what the
//! report says about it). [`kind`] is the registry: one line per provider. Nothing else in `drill/`
//! matches over providers (ARCHITECTURE.md, "Add a provider").

use std::time::Duration;

use super::RestoreProvider;
use crate::config::{DrillSpec, RestoreSpec};
use crate::drill::error::DrillError;
use crate::drill::events::EventSink;
use crate::drill::runner::RunOptions;

/// The registry: the provider kind of a drill's `restore:` block. One line per provider.
pub(crate) fn kind(restore: &RestoreSpec) -> &dyn ProviderKind {
    match restore {
        RestoreSpec::LocalPostgres(s) => s,
        RestoreSpec::PgDump(s) => s,
        RestoreSpec::ExistingPostgres(s) => s,
        RestoreSpec::SupabaseBranch(s) => s,
        RestoreSpec::SupabaseNewProject(s) => s,
        RestoreSpec::AwsRdsInstance(s) => s,
        RestoreSpec::AwsAuroraCluster(s) => s,
        RestoreSpec::AwsBackup(s) => s,
        RestoreSpec::AwsS3Bucket(s) => s,
    }
}

/// Builds the provider `spec` names: credentials checked, residency enforced, nothing created yet.
pub(crate) async fn build(
    spec: &DrillSpec,
    opts: &RunOptions,
    run_id: &str,
    events: EventSink,
) -> Result<Built, DrillError> {
    let ctx = BuildCtx { spec, opts, run_id, events, lifetime: crate::drill::runner::scratch_lifetime(spec) };
    kind(&spec.restore).build(&ctx).await
}

/// What a provider is built from besides its own config block.
pub(crate) struct BuildCtx<'a> {
    pub(crate) spec: &'a DrillSpec,
    pub(crate) opts: &'a RunOptions,
    pub(crate) run_id: &'a str,
    pub(crate) events: EventSink,
    /// How long the run's scratch may live (every phase's deadline).
    pub(crate) lifetime: Duration,
}

impl BuildCtx<'_> {
    /// The database a scratch is named after when the provider's block does not say: the source's.
    pub(crate) fn default_db(&self) -> Option<&str> {
        self.spec.source.as_ref().map(|s| s.dbname.as_str())
    }
}

/// A built provider, and the drill's checked AWS config when the provider is on AWS (the source login
/// reuses it: its region, the checked credentials).
pub(crate) struct Built {
    pub(crate) provider: Box<dyn RestoreProvider>,
    pub(crate) aws: Option<aws_types::SdkConfig>,
}

impl Built {
    /// A provider that hands the run no AWS config.
    pub(crate) fn alone(provider: impl RestoreProvider + 'static) -> Built {
        Built { provider: Box::new(provider), aws: None }
    }
}

/// What a provider is before it is built, implemented on its config block.
#[async_trait::async_trait]
pub(crate) trait ProviderKind: Sync {
    /// Builds the provider (credentials, residency; nothing created).
    async fn build(&self, ctx: &BuildCtx<'_>) -> Result<Built, DrillError>;
    /// The least a restore by this provider has taken, where it is known, and why: an RTO objective below
    /// it cannot be met (`drill plan`).
    fn rto_floor(&self) -> Option<(u64, &'static str)> {
        None
    }
    /// What a run would create, named `name` (`sd-<drill>-<run>`), for `drill plan`; `region` is the drill's
    /// AWS region when the provider is on AWS.
    fn scratch_text(&self, name: &str, spec: &DrillSpec, run_id: &str, region: Option<&str>) -> String;
    /// How long the plan phase may take when the drill file does not say.
    fn plan_timeout(&self) -> Duration {
        // On AWS, RDS's LatestRestorableTime trails commits by up to ~5 minutes, and a canary's target must
        // become restorable within the phase.
        Duration::from_secs(20 * 60)
    }
    /// The RDS instance or Aurora cluster the restore starts from, when a `source` block with
    /// `from-instance` may read its endpoint and master user there.
    fn source_instance(&self) -> Option<SourceInstance<'_>> {
        None
    }
    /// The local directory the provider makes its scratch clusters under, and the OS user that owns them,
    /// for `drill cleanup`.
    fn local_scratch(&self) -> Option<(&std::path::Path, &str)> {
        None
    }
    /// What the drill's IAM role needs for this provider (`stackdrill iam policy`): the IAM module asks,
    /// `region` is the drill's AWS region. Nothing by default (a provider that calls no AWS API).
    fn iam(&self, needs: &mut dyn IamNeeds, region: &str) {
        let _ = (needs, region);
    }
    /// Sweeps what `drill cleanup` finds outside AWS and the local scratch roots (a Supabase branch) that
    /// drill `drill` may have left behind.
    async fn sweep(&self, drill: &str, dry_run: bool) -> Vec<crate::drill::cleanup::Swept> {
        let _ = (drill, dry_run);
        Vec::new()
    }
}

/// The RDS resource a restore starts from (`source: { from-instance: true }`).
pub(crate) enum SourceInstance<'a> {
    Instance(&'a str),
    Cluster(&'a str),
}

/// How a provider states its IAM needs: `iam/policy.rs` implements it (statements keyed by Sid merge) and
/// asks each drill's provider through `ProviderKind::iam`.
pub(crate) trait IamNeeds {
    /// Allows `actions` on `resources` in the statement `sid`.
    fn allow(&mut self, sid: &str, actions: &[&str], resources: &[String], condition: Option<serde_json::Value>);
    /// Reading RDS: instances, clusters, automated backups, parameter groups, tags.
    fn read_rds(&mut self);
    /// What every restore into an RDS scratch needs (reading RDS, the parameter-group copies, tagging on
    /// create, changing and deleting only what carries the scratch tag, key grants for an encrypted
    /// source), with what this provider's restore adds.
    fn rds_scratch(&mut self, scratch: &crate::config::AwsScratchSpec, region: &str, extra: RdsScratch);
}

/// What a provider's restore adds to the RDS scratch statements.
#[derive(Default)]
pub(crate) struct RdsScratch {
    /// Scratch resources (named sd-*) it creates tagged, beyond the instance and its parameter group.
    pub(crate) scratch_tagged: Vec<String>,
    /// Other resources its create requests name, which never receive a `stackdrill:` tag.
    pub(crate) tagged: Vec<String>,
    /// It makes a cluster: the cluster's change and delete rights.
    pub(crate) cluster: bool,
}

/// An RDS resource's ARN pattern in `region` (any account).
pub(crate) fn rds_arn(region: &str, kind: &str, name: &str) -> String {
    format!("arn:aws:rds:{region}:*:{kind}:{name}")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::module_map::{rust_files, test_only_files, without_test_code};

    /// Outside the registry, no engine or IAM code matches over providers: a new provider is its file, its
    /// line in `kind` and its config block. (Before the registry, `runner.rs`, `plan.rs`, `source.rs`,
    /// `cleanup.rs`, `provider.rs` and `iam/policy.rs` each matched `RestoreSpec::…`, with `unreachable!`
    /// arms.) A provider's own file may name its own variant (`existing-postgres` builds its spec for the
    /// source login).
    #[test]
    fn only_the_registry_matches_over_providers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let tests = test_only_files(&src);
        let own = [("existing_postgres.rs", "RestoreSpec::ExistingPostgres(")];
        let mut found = Vec::new();
        for dir in ["drill", "iam"] {
            for file in rust_files(&src.join(dir)) {
                let test_file = file.file_stem().is_some_and(|s| s.to_string_lossy().ends_with("tests"));
                if test_file || tests.iter().any(|t| file.starts_with(t)) || file.ends_with("restore/registry.rs") {
                    continue;
                }
                let text = without_test_code(&std::fs::read_to_string(&file).unwrap());
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                for (i, line) in text.lines().enumerate() {
                    let allowed = own.iter().any(|(f, v)| name == *f && line.contains(v));
                    if (line.contains("RestoreSpec::") && !allowed)
                        || line.contains("unreachable!(\"every other provider")
                    {
                        found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
                    }
                }
            }
        }
        assert!(found.is_empty(), "providers matched outside drill/restore/registry.rs:\n{}", found.join("\n"));
    }
}
