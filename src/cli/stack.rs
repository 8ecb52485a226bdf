//! `stack validate | check`: the stack file, and the policy it must keep.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Serialize;

use super::drill::{ser_errors, yaml_files};
use super::{Failure, exit_codes};
use crate::aws::{AwsError, AwsSettings};
use crate::cli::args::PlanFormat;
use crate::config::{ConfigError, StackSpec, load_stack};
use crate::stack::apply::StepResult;
use crate::stack::live::{self, Clients, LiveState, TAG_MANAGED, TAG_STACK};
use crate::stack::model::{self, Resource, ResourceKind};
use crate::stack::plan::{self as planner, Action, Plan};
use crate::stack::policy::{self, Status};
use crate::ui::Printer;

const STACKS_DIR: &str = "stacks";

/// `stacks/` of the project the working directory is in.
fn stacks_dir() -> String {
    crate::config::project_dir().join(STACKS_DIR).display().to_string()
}

fn all_stack_files() -> Result<Vec<PathBuf>, Failure> {
    yaml_files(&stacks_dir())
}

/// A name resolves to `stacks/<name>.yaml`; anything with a slash or a YAML extension is a path.
pub(super) fn resolve_stack(arg: &str) -> Result<PathBuf, Failure> {
    if arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml") {
        return Ok(PathBuf::from(arg));
    }
    let candidate = Path::new(&stacks_dir()).join(format!("{arg}.yaml"));
    if candidate.is_file() {
        return Ok(candidate);
    }
    let known = super::drill::stems(&all_stack_files().unwrap_or_default());
    Err(Failure::could_not_run(
        anyhow!("no stack named `{arg}` (looked for `{}`)", candidate.display()),
        Some(super::drill::known_names_hint(arg, &known, "stacks", "stacks/")),
    ))
}

pub(super) fn load(path: &Path) -> Result<StackSpec, Failure> {
    load_stack(path).map_err(|errors| {
        for e in &errors {
            crate::ui::diag!("error: {e}");
        }
        Failure::could_not_run(anyhow!("{} problem(s) in `{}`", errors.len(), path.display()), None)
    })
}

pub(super) fn validate(paths: &[PathBuf], printer: Printer) -> Result<u8, Failure> {
    let files = if paths.is_empty() {
        all_stack_files()?
    } else {
        paths.iter().map(|p| resolve_stack(&p.to_string_lossy())).collect::<Result<Vec<_>, _>>()?
    };
    #[derive(Serialize)]
    struct Entry {
        file: String,
        stack: Option<String>,
        /// What the stack declares, in dependency order.
        resources: Vec<crate::stack::model::Resource>,
        #[serde(serialize_with = "ser_errors")]
        errors: Vec<ConfigError>,
    }
    let entries: Vec<Entry> = files
        .iter()
        .map(|f| match load_stack(f) {
            Ok(s) => Entry {
                file: f.display().to_string(),
                resources: crate::stack::model::desired(&s),
                stack: Some(s.name),
                errors: vec![],
            },
            Err(errors) => Entry { file: f.display().to_string(), stack: None, resources: vec![], errors },
        })
        .collect();
    let bad: usize = entries.iter().map(|e| e.errors.len()).sum();
    if printer.is_json() {
        printer.json(&entries);
    } else {
        for e in &entries {
            if let Some(name) = &e.stack {
                printer.line(format!("ok    {} (stack `{name}`, {} resources)", e.file, e.resources.len()));
            }
        }
        for err in entries.iter().flat_map(|e| &e.errors) {
            crate::ui::diag!("error: {err}");
        }
    }
    if bad > 0 {
        return Err(Failure::could_not_run(
            anyhow!("{bad} problem(s) in {} file(s)", entries.iter().filter(|e| !e.errors.is_empty()).count()),
            None,
        ));
    }
    Ok(exit_codes::OK)
}

/// Exit 0 when every applicable rule passes, 1 when any fails (as Checkov does), 2 when the file is bad.
/// With `aws`, the rules are evaluated on live state.
pub(super) async fn check(stack: &str, aws: Option<&AwsSettings>, printer: Printer) -> Result<u8, Failure> {
    let path = resolve_stack(stack)?;
    let spec = load(&path)?;
    let findings = match aws {
        None => policy::check(&spec),
        Some(aws) => {
            let c = connect(&spec, aws).await?;
            let desired = model::desired(&spec);
            let live = live::read(&c, &spec.name, &desired).await.map_err(aws_failure)?;
            policy::check_live(&spec, &desired, &live, &c.region)
        }
    };
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if printer.is_json() {
        #[derive(Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            finding: &'a policy::Finding,
            title: &'static str,
            soc2: &'static [&'static str],
            checkov: &'static str,
            aws_config: &'static str,
        }
        let rows: Vec<Row<'_>> = findings
            .iter()
            .filter_map(|f| {
                policy::rule(f.rule).map(|r| Row {
                    finding: f,
                    title: r.title,
                    soc2: r.soc2,
                    checkov: r.checkov,
                    aws_config: r.aws_config,
                })
            })
            .collect();
        printer.json(&rows);
    } else {
        for f in &findings {
            let status = match f.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::NotApplicable => "n/a ",
            };
            let soc2 = policy::rule(f.rule).map(|r| r.soc2.join(",")).unwrap_or_default();
            let resource = if f.resource.is_empty() { String::new() } else { format!("{}: ", f.resource) };
            printer.line(format!("{status}  {:<28} {resource}{}  [SOC2 {soc2}]", f.rule, f.message));
        }
        let passed = findings.iter().filter(|f| f.status == Status::Pass).count();
        let source = if aws.is_some() { "live state" } else { "the file" };
        printer.line(format!("stack `{}` ({source}): {passed} passed, {failed} failed", spec.name));
    }
    Ok(if failed > 0 { exit_codes::NOT_VERIFIED } else { exit_codes::OK })
}

fn aws_failure(e: AwsError) -> Failure {
    Failure { error: anyhow!(e), hint: None, code: exit_codes::NOT_VERIFIED }
}

/// An SDK config in the stack's region; `--region` may only repeat it.
async fn connect(spec: &StackSpec, aws: &AwsSettings) -> Result<Clients, Failure> {
    if let Some(r) = &aws.region
        && r != &spec.region
    {
        return Err(Failure::could_not_run(
            anyhow!("stack `{}` is declared in {}; --region says {r}", spec.name, spec.region),
            None,
        ));
    }
    let settings = AwsSettings { region: Some(spec.region.clone()), ..aws.clone() };
    let sdk = crate::aws::load(&settings).await;
    crate::aws::check_credentials(&sdk).await.map_err(|e| {
        let hint = e.hint();
        Failure::could_not_run(e, hint)
    })?;
    Ok(Clients::new(&sdk))
}

fn sha256_file(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::could_not_run(anyhow!("cannot read `{}`: {e}", path.display()), None))?;
    Ok(crate::report::chain::sha256_hex(&bytes))
}

struct Computed {
    plan: Plan,
    desired: Vec<Resource>,
    live: LiveState,
    clients: Clients,
    spec: StackSpec,
}

async fn compute(path: &Path, aws: &AwsSettings) -> Result<Computed, Failure> {
    let spec = load(path)?;
    let clients = connect(&spec, aws).await?;
    let desired = model::desired(&spec);
    let live = live::read(&clients, &spec.name, &desired).await.map_err(aws_failure)?;
    let plan = Plan {
        format: planner::FORMAT.into(),
        stack: spec.name.clone(),
        stack_file: path.display().to_string(),
        stack_sha256: sha256_file(path)?,
        region: clients.region.clone(),
        live_sha256: live.sha256(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        steps: planner::diff(&spec.name, &desired, &live),
        notes: live.notes.clone(),
        read_calls: clients.calls.snapshot(),
    };
    Ok(Computed { plan, desired, live, clients, spec })
}

fn print_plan(plan: &Plan, format: PlanFormat) {
    match format {
        PlanFormat::Text => crate::ui::out!("{}", planner::render_text(plan)),
        PlanFormat::Markdown => crate::ui::out!("{}", planner::render_markdown(plan)),
        PlanFormat::Json => crate::ui::outln!("{}", serde_json::to_string_pretty(plan).unwrap_or_default()),
    }
}

/// `--detailed-exitcode`: 0 nothing to do, 2 changes, 1 any error — a broken stack file and missing
/// credentials included, so a CI gate never reads an error as "changes" (a conflict is an error too:
/// apply would refuse).
pub(super) async fn plan(
    stack: &str,
    aws: &AwsSettings,
    out: Option<&Path>,
    format: PlanFormat,
    detailed: bool,
) -> Result<u8, Failure> {
    let res = plan_inner(stack, aws, out, format, detailed).await;
    match res {
        Err(mut f) if detailed => {
            f.code = exit_codes::PLAN_ERROR;
            Err(f)
        }
        other => other,
    }
}

async fn plan_inner(
    stack: &str,
    aws: &AwsSettings,
    out: Option<&Path>,
    format: PlanFormat,
    detailed: bool,
) -> Result<u8, Failure> {
    let started = std::time::Instant::now();
    let c = compute(&resolve_stack(stack)?, aws).await?;
    print_plan(&c.plan, format);
    let reads: u64 = c.plan.read_calls.values().sum();
    crate::ui::diag!("read live state: {reads} API calls in {:.2}s", started.elapsed().as_secs_f64());
    if let Some(out) = out {
        let json = serde_json::to_string_pretty(&c.plan).unwrap_or_default();
        crate::report::atomic_write(out, json.as_bytes())
            .map_err(|e| Failure::could_not_run(anyhow!("cannot write `{}`: {e}", out.display()), None))?;
        crate::ui::diag!(
            "saved the plan to {}: apply it with `stackdrill stack apply --plan {}`",
            out.display(),
            out.display()
        );
    }
    if c.plan.count(Action::Conflict) > 0 {
        return Err(Failure {
            error: anyhow!("{} resource(s) in conflict: stackdrill does not own them", c.plan.count(Action::Conflict)),
            hint: Some("adopt one with `stackdrill stack import <STACK> <kind/name>`, or rename it in the file".into()),
            code: exit_codes::NOT_VERIFIED,
        });
    }
    Ok(if detailed && c.plan.has_changes() { exit_codes::PLAN_CHANGES } else { exit_codes::OK })
}

pub(crate) struct ApplyOptions {
    pub(crate) auto_approve: bool,
    pub(crate) allow_data_loss: bool,
    /// Policy rule ids waived for this apply (recorded in its output).
    pub(crate) skip_policy: Vec<String>,
}

/// Runs the policy rules on the stack file before anything is applied: a failing rule refuses the apply
/// unless `--skip-policy` names it. Returns the waived failures, to be recorded in the apply's output.
fn policy_gate(spec: &StackSpec, waived: &[String]) -> Result<Vec<policy::Finding>, Failure> {
    if let Some(unknown) = waived.iter().find(|w| policy::rule(w).is_none()) {
        return Err(Failure::could_not_run(
            anyhow!("--skip-policy names `{unknown}`, which is not a policy rule"),
            Some("`stackdrill stack check <STACK>` lists the rule ids".into()),
        ));
    }
    let failing: Vec<policy::Finding> = policy::check(spec).into_iter().filter(|f| f.status == Status::Fail).collect();
    let (skipped, blocking): (Vec<_>, Vec<_>) = failing.into_iter().partition(|f| waived.iter().any(|w| w == f.rule));
    if !blocking.is_empty() {
        let list: Vec<String> = blocking.iter().map(|f| format!("{} ({})", f.rule, f.message)).collect();
        return Err(refuse(
            format!("refusing to apply: the stack fails policy: {}", list.join("; ")),
            Some(
                "fix the stack file, or waive a rule on purpose with --skip-policy RULE (recorded in the output)"
                    .into(),
            ),
        ));
    }
    Ok(skipped)
}

fn refuse(msg: String, hint: Option<String>) -> Failure {
    Failure { error: anyhow!(msg), hint, code: exit_codes::NOT_VERIFIED }
}

/// Applies a saved plan (only while the stack file and live state are as they were), or plans afresh and
/// asks. Exit 0 applied (or nothing to do), 1 refused or partly failed, 2 could not start.
pub(super) async fn apply(
    stack: Option<&str>,
    saved: Option<&Path>,
    aws: &AwsSettings,
    opts: ApplyOptions,
    printer: Printer,
) -> Result<u8, Failure> {
    let saved_plan = saved.map(read_saved_plan).transpose()?;
    let path = match (&saved_plan, stack) {
        (_, Some(s)) => resolve_stack(s)?,
        (Some(p), None) => PathBuf::from(&p.stack_file),
        (None, None) => unreachable!("clap requires a stack or --plan"),
    };
    let spec = load(&path)?;
    let waived = policy_gate(&spec, &opts.skip_policy)?;
    for f in &waived {
        crate::ui::diag!("policy rule {} waived by --skip-policy: {}", f.rule, f.message);
    }
    let spec_name = spec.name;
    let what = format!("a `stack apply` of `{spec_name}`");
    let _lock = crate::lock::acquire("stack", &spec_name, &what, false)
        .map_err(|e| refuse(e.to_string(), Some("wait for it to finish".into())))?;
    let c = compute(&path, aws).await?;
    if let Some(p) = &saved_plan {
        check_saved_plan(p, &c.plan, &path)?;
    }
    if !printer.is_json() {
        crate::ui::out!("{}", planner::render_text(&c.plan));
    }
    refuse_unsafe(&c.plan, opts.allow_data_loss)?;
    let waived_ids: Vec<&str> = waived.iter().map(|f| f.rule).collect();
    if !c.plan.has_changes() {
        if printer.is_json() {
            printer.json(&serde_json::json!({ "stack": c.plan.stack, "outcomes": [], "policy_waived": waived_ids }));
        }
        return Ok(exit_codes::OK);
    }
    if saved_plan.is_none() && !opts.auto_approve && !confirm(&c.plan)? {
        return Err(refuse("not applied: not confirmed".into(), None));
    }
    let outcomes =
        crate::stack::apply::apply(&c.clients, &c.plan, &c.desired, &c.live, &|line| crate::ui::diag!("{line}")).await;
    let failed = outcomes.iter().filter(|o| matches!(o.result, StepResult::Failed(_))).count();
    print_outcomes(&c.spec.name, &c.plan.stack, &outcomes, &waived_ids, printer);
    if failed == 0 {
        Ok(exit_codes::OK)
    } else {
        Err(refuse(
            format!("{failed} step(s) failed; what was applied is listed above"),
            Some("fix the cause and run apply again: it plans afresh and converges".into()),
        ))
    }
}

/// A plan saved by `stack plan --out`, of this version's format.
fn read_saved_plan(p: &Path) -> Result<Plan, Failure> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| Failure::could_not_run(anyhow!("cannot read `{}`: {e}", p.display()), None))?;
    let plan: Plan = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text)).map_err(|e| {
        let at = e.path().to_string();
        Failure::could_not_run(
            anyhow!("`{}` is not a stackdrill plan: key `{at}`: {}", p.display(), e.into_inner()),
            Some("save a fresh one with `stackdrill stack plan <STACK> --out FILE`".into()),
        )
    })?;
    if plan.format != planner::FORMAT {
        return Err(Failure::could_not_run(
            anyhow!("`{}` is a `{}` plan; this stackdrill reads `{}`", p.display(), plan.format, planner::FORMAT),
            None,
        ));
    }
    Ok(plan)
}

/// A saved plan applies only to the stack and live state it was computed from.
fn check_saved_plan(saved: &Plan, now: &Plan, path: &Path) -> Result<(), Failure> {
    if saved.stack != now.stack {
        return Err(refuse(format!("the saved plan is for stack `{}`, not `{}`", saved.stack, now.stack), None));
    }
    if saved.stack_sha256 != now.stack_sha256 {
        return Err(refuse(
            format!("stale plan: `{}` changed since the plan was made", path.display()),
            Some("run `stackdrill stack plan` again and review the new plan".into()),
        ));
    }
    if saved.live_sha256 != now.live_sha256 {
        return Err(refuse(
            format!(
                "stale plan: live state changed since the plan was made (sha256 {} then, {} now)",
                crate::report::chain::short_hash(&saved.live_sha256),
                crate::report::chain::short_hash(&now.live_sha256)
            ),
            Some("run `stackdrill stack plan` again and review the new plan".into()),
        ));
    }
    Ok(())
}

/// No apply touches what stackdrill does not own, or destroys data without --allow-data-loss.
fn refuse_unsafe(plan: &Plan, allow_data_loss: bool) -> Result<(), Failure> {
    let conflicts: Vec<String> =
        plan.steps.iter().filter(|s| s.action == Action::Conflict).map(|s| s.address()).collect();
    if !conflicts.is_empty() {
        return Err(refuse(
            format!("refusing to apply: {} is not stackdrill's", conflicts.join(", ")),
            Some("adopt with `stackdrill stack import`, or rename it in the file".into()),
        ));
    }
    let lossy: Vec<String> =
        plan.steps.iter().filter(|s| s.data_loss).map(|s| format!("{} {}", s.action.as_str(), s.address())).collect();
    if !lossy.is_empty() && !allow_data_loss {
        return Err(refuse(
            format!("refusing to apply: {} would destroy data", lossy.join(", ")),
            Some(
                "if this is intended, re-run with --allow-data-loss (a replaced RDS instance leaves a final snapshot, \
                 a KMS key waits 30 days, a lowered retention deletes older backups at once)"
                    .into(),
            ),
        ));
    }
    Ok(())
}

/// What the apply did, as JSON or a summary and a line per step that was not applied.
fn print_outcomes(
    name: &str,
    stack: &str,
    outcomes: &[crate::stack::apply::Outcome],
    waived_ids: &[&str],
    printer: Printer,
) {
    let applied = outcomes.iter().filter(|o| matches!(o.result, StepResult::Applied)).count();
    let failed: Vec<&crate::stack::apply::Outcome> =
        outcomes.iter().filter(|o| matches!(o.result, StepResult::Failed(_))).collect();
    let skipped = outcomes.iter().filter(|o| matches!(o.result, StepResult::NotAttempted)).count();
    if printer.is_json() {
        printer.json(&serde_json::json!({ "stack": stack, "outcomes": outcomes, "policy_waived": waived_ids }));
    } else {
        printer.line(format!(
            "Apply of `{}`: {applied} applied, {} failed, {skipped} not attempted.",
            name,
            failed.len()
        ));
        for o in outcomes {
            if !matches!(o.result, StepResult::Applied) {
                let what = match &o.result {
                    StepResult::Failed(e) => format!("FAILED: {e}"),
                    _ => "not attempted".into(),
                };
                printer.line(format!("  {} {}: {what}", o.action.as_str(), o.address));
            }
        }
    }
}

fn confirm(plan: &Plan) -> Result<bool, Failure> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Failure::could_not_run(
            anyhow!("no terminal to confirm on"),
            Some(
                "review `stack plan --out plan.json` and apply it with `--plan plan.json`, or pass --auto-approve"
                    .into(),
            ),
        ));
    }
    crate::ui::prompt(&format!("Apply {} to stack `{}`? Type `yes` to continue: ", plan.summary(), plan.stack));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok();
    Ok(answer.trim() == "yes")
}

/// Exit 0 in sync, 2 drifted: a declared resource that changed or vanished, or one in conflict.
pub(super) async fn drift(stack: &str, aws: &AwsSettings, format: PlanFormat) -> Result<u8, Failure> {
    let mut c = compute(&resolve_stack(stack)?, aws).await?;
    // Drift is about what exists: declared resources never created are the plan's business.
    c.plan.steps.retain(|s| !matches!(s.action, Action::NoOp | Action::Skip));
    print_plan(&c.plan, format);
    Ok(if c.plan.steps.is_empty() { exit_codes::OK } else { exit_codes::DRIFTED })
}

/// Adopts a resource that exists under a declared name but carries no stackdrill tags.
pub(super) async fn import(stack: &str, address: &str, aws: &AwsSettings, yes: bool) -> Result<u8, Failure> {
    let c = compute(&resolve_stack(stack)?, aws).await?;
    let key = address.replacen('.', "/", 1);
    let Some(r) = c.desired.iter().find(|r| r.address() == key) else {
        let known: Vec<String> = c.desired.iter().map(Resource::address).collect();
        return Err(Failure::could_not_run(
            anyhow!("stack `{}` declares no `{address}`; it declares: {}", c.spec.name, known.join(", ")),
            None,
        ));
    };
    let Some(l) = c.live.get(r) else {
        return Err(refuse(format!("`{address}` does not exist in {}: nothing to import", c.clients.region), None));
    };
    match &l.owner {
        live::Owner::This => {
            crate::ui::diag!("`{address}` already belongs to stack `{}`", c.spec.name);
            return Ok(exit_codes::OK);
        }
        live::Owner::Other(s) => return Err(refuse(format!("`{address}` belongs to stack `{s}`"), None)),
        live::Owner::Untagged => {}
    }
    if !matches!(r.kind, ResourceKind::MetricFilter | ResourceKind::BackupSelection) && l.arn.is_empty() {
        return Err(refuse(format!("no ARN known for `{address}`"), None));
    }
    if !yes {
        crate::ui::diag!("import tags {} ({}) with {TAG_MANAGED}=true and {TAG_STACK}={}", address, l.arn, c.spec.name);
        let plan = Plan { steps: vec![], ..c.plan.clone() };
        if !confirm(&plan)? {
            return Err(refuse("not imported: not confirmed".into(), None));
        }
    }
    crate::stack::resources::tag(&c.clients, l, &c.spec.name).await.map_err(aws_failure)?;
    crate::ui::outln!(
        "imported {address} ({}) into stack `{}`; `stack plan` shows what differs from the file",
        l.arn,
        c.spec.name
    );
    Ok(exit_codes::OK)
}
