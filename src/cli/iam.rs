//! `iam policy`: the least-privilege IAM policy for the drills, stack, schedule and store named.

use std::path::PathBuf;

use anyhow::anyhow;

use super::{Failure, exit_codes};
use crate::iam::policy::{Request, policy as make_policy};
use crate::ui::Printer;

/// The command line, resolved.
pub(super) struct Want {
    pub(super) drills: Vec<String>,
    pub(super) stack: Option<String>,
    pub(super) read_only: bool,
    pub(super) schedule: bool,
    pub(super) workflow: bool,
    pub(super) config: PathBuf,
    pub(super) report_store: Option<String>,
    pub(super) sign_kms_key: Option<String>,
    /// `--backups`: the backups file.
    pub(super) backups: Option<PathBuf>,
}

pub(super) fn policy(want: Want, region: Option<&str>, printer: Printer) -> Result<u8, Failure> {
    let Want { drills, stack, read_only, schedule, workflow, config, report_store, sign_kms_key, backups } = want;
    if drills.is_empty()
        && backups.is_none()
        && stack.is_none()
        && !schedule
        && !workflow
        && report_store.is_none()
        && sign_kms_key.is_none()
    {
        return Err(Failure::could_not_run(
            anyhow!("name what the policy is for"),
            Some("e.g. `stackdrill iam policy --drill prod-db-pitr --report-store s3://bucket/prefix`".into()),
        ));
    }
    if let Some(url) = &report_store
        && !crate::report::s3::is_url(std::path::Path::new(url))
    {
        return Err(Failure::could_not_run(anyhow!("--report-store `{url}` is not an s3:// URL"), None));
    }
    let paths = drills.iter().map(|d| super::drill::resolve_drill(d)).collect::<Result<Vec<_>, _>>()?;
    let specs = super::drill::load_all(&paths)?;
    let stack_spec = match &stack {
        Some(s) => Some(super::stack::load(&super::stack::resolve_stack(s)?)?),
        None => None,
    };
    let deploy = if schedule || workflow {
        Some(crate::config::load_deploy(&config).map_err(|errs| {
            for e in &errs {
                crate::ui::diag!("error: {e}");
            }
            Failure::could_not_run(anyhow!("{} problem(s) in `{}`", errs.len(), config.display()), None)
        })?)
    } else {
        None
    };
    let backups_spec = match &backups {
        Some(path) => Some(crate::config::load_backups(path).map_err(|errs| {
            for e in &errs {
                crate::ui::diag!("error: {e}");
            }
            Failure::could_not_run(anyhow!("{} problem(s) in `{}`", errs.len(), path.display()), None)
        })?),
        None => None,
    };
    let req = Request {
        drills: specs.iter().collect(),
        stack: stack_spec.as_ref(),
        stack_read_only: read_only,
        schedule: deploy.as_ref().filter(|_| schedule),
        workflow: deploy.as_ref().filter(|_| workflow),
        report_store,
        sign_kms_key,
        backups: backups_spec.as_ref(),
        region: region.unwrap_or(crate::aws::DEFAULT_REGION).to_string(),
    };
    let doc = make_policy(&req);
    // IAM refuses a policy without statements: say what needs no access instead of printing one.
    if doc["Statement"].as_array().is_none_or(Vec::is_empty) && backups.is_some() && specs.is_empty() {
        return Err(Failure::could_not_run(
            anyhow!("the stores named need no AWS access: there is no IAM policy to print"),
            Some("local-postgres and supabase stores are read without AWS credentials".into()),
        ));
    }
    if doc["Statement"].as_array().is_none_or(Vec::is_empty) {
        let names: Vec<String> = specs.iter().map(|d| format!("`{}`", d.name)).collect();
        let what = match names.len() {
            1 => format!("drill {} needs", names[0]),
            _ => format!("drills {} need", names.join(", ")),
        };
        return Err(Failure::could_not_run(
            anyhow!("{what} no AWS access: there is no IAM policy to print"),
            Some(
                "run it without AWS credentials; a policy is for a drill, stack, schedule or store that calls AWS"
                    .into(),
            ),
        ));
    }
    printer.json(&doc);
    Ok(exit_codes::OK)
}
