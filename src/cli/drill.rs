//! `drill validate | list | run | cleanup`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use serde::Serialize;

use super::args::IfRunning;
use super::{Failure, exit_codes};
use crate::config::{ConfigError, DrillSpec, TargetSpec, load_drill};
use crate::drill::fleet::{self, Ended, Finished, Fleet, Job, Reporter};
use crate::drill::{self, Cancel, RunOptions};
use crate::report::{Report, ReportStore, Verdict};
use crate::ui::{Printer, Progress, Summary, progress_sink};

const DRILLS_DIR: &str = "drills";

/// The drill files in the project's `drills/`, sorted.
fn all_drill_files() -> Result<Vec<PathBuf>, Failure> {
    yaml_files(&drills_dir())
}

/// `drills/` of the project the working directory is in.
pub(super) fn drills_dir() -> String {
    crate::config::project_dir().join(DRILLS_DIR).display().to_string()
}

/// The `.yaml`/`.yml` files in `dir`, sorted.
pub(super) fn yaml_files(dir: &str) -> Result<Vec<PathBuf>, Failure> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        Failure::could_not_run(
            anyhow!("cannot read `{dir}/`: {e}"),
            Some("run from the repository root, or name the files by path".into()),
        )
    })?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// A name resolves to `drills/<name>.yaml`; anything with a slash or a YAML extension is a path.
pub(super) fn resolve_drill(arg: &str) -> Result<PathBuf, Failure> {
    let p = Path::new(arg);
    if arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml") {
        return Ok(p.to_path_buf());
    }
    let candidate = Path::new(&drills_dir()).join(format!("{arg}.yaml"));
    if candidate.is_file() {
        return Ok(candidate);
    }
    let known = stems(&all_drill_files().unwrap_or_default());
    Err(Failure::could_not_run(
        anyhow!("no drill named `{arg}` (looked for `{}`)", candidate.display()),
        Some(known_names_hint(arg, &known, "drills", "drills/")),
    ))
}

/// The names of `files` (their stems), as a name argument would give them.
pub(super) fn stems(files: &[PathBuf]) -> Vec<String> {
    files.iter().filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned())).collect()
}

/// The hint for an unknown name: the closest known one, then every known one (`did you mean
/// `production`? known stacks: production, staging`), or that `dir` has none.
pub(super) fn known_names_hint(arg: &str, known: &[String], what: &str, dir: &str) -> String {
    if known.is_empty() {
        return format!("no {what} in {dir}");
    }
    let closest = known
        .iter()
        .map(|k| (strsim::jaro_winkler(arg, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    format!("{closest}known {what}: {}", known.join(", "))
}

#[derive(Serialize)]
pub(super) struct JsonConfigError {
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    key: String,
    message: String,
    hint: Option<String>,
}

impl From<&ConfigError> for JsonConfigError {
    fn from(e: &ConfigError) -> Self {
        JsonConfigError {
            file: e.file.display().to_string(),
            line: e.line,
            column: e.column,
            key: e.key.clone(),
            message: e.message.clone(),
            hint: e.hint.clone(),
        }
    }
}

/// Loads every file, printing all problems; fails (exit 2) if any file has one.
pub(super) fn load_all(files: &[PathBuf]) -> Result<Vec<DrillSpec>, Failure> {
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_drill(f) {
            Ok(s) => specs.push(s),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        return Ok(specs);
    }
    for e in &errors {
        crate::ui::diag!("error: {e}");
    }
    Err(Failure::could_not_run(anyhow!("{} problem(s) in drill files; nothing was started", errors.len()), None))
}

pub(super) fn ser_errors<S: serde::Serializer>(errors: &[ConfigError], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(errors.iter().map(JsonConfigError::from))
}

pub(super) fn validate(paths: &[PathBuf], strict: bool, printer: Printer) -> Result<u8, Failure> {
    let files = if paths.is_empty() {
        all_drill_files()?
    } else {
        paths.iter().map(|p| resolve_drill(&p.to_string_lossy())).collect::<Result<Vec<_>, _>>()?
    };
    #[derive(Serialize)]
    struct Entry {
        file: String,
        drill: Option<String>,
        #[serde(serialize_with = "ser_errors")]
        errors: Vec<ConfigError>,
        /// Files the drill names that are not on this machine (errors with `--strict`).
        #[serde(serialize_with = "ser_errors")]
        missing: Vec<ConfigError>,
        /// What loads but weakens a safety (sslmode require): warnings, even with `--strict`.
        #[serde(serialize_with = "ser_errors")]
        warnings: Vec<ConfigError>,
    }
    let mut entries = Vec::new();
    for f in &files {
        let file = f.display().to_string();
        match load_drill(f) {
            Ok(s) => {
                let missing = crate::config::missing_files(&s);
                let warnings = crate::config::advice(&s);
                entries.push(Entry { file, drill: Some(s.name), errors: vec![], missing, warnings })
            }
            Err(errors) => entries.push(Entry { file, drill: None, errors, missing: vec![], warnings: vec![] }),
        }
    }
    let missing: usize = entries.iter().map(|e| e.missing.len()).sum();
    let bad: usize = entries.iter().map(|e| e.errors.len()).sum::<usize>() + if strict { missing } else { 0 };
    if printer.is_json() {
        printer.json(&entries);
    } else {
        // `ok` only for a file with nothing to report as an error (with `--strict`, a missing file is one).
        for e in entries.iter().filter(|e| !strict || e.missing.is_empty()) {
            if let Some(name) = &e.drill {
                printer.line(format!("ok    {} (drill `{name}`)", e.file));
            }
        }
        for err in entries.iter().flat_map(|e| &e.errors) {
            crate::ui::diag!("error: {err}");
        }
        let level = if strict { "error" } else { "warning" };
        for err in entries.iter().flat_map(|e| &e.missing) {
            crate::ui::diag!("{level}: {err}");
        }
        for w in entries.iter().flat_map(|e| &e.warnings) {
            crate::ui::diag!("warning: {w}");
        }
    }
    if bad > 0 {
        let files = entries.iter().filter(|e| !e.errors.is_empty() || (strict && !e.missing.is_empty())).count();
        return Err(Failure::could_not_run(anyhow!("{bad} problem(s) in {files} file(s)"), None));
    }
    Ok(exit_codes::OK)
}

fn target_text(t: &TargetSpec) -> String {
    match t {
        TargetSpec::Latest => "latest".into(),
        TargetSpec::Random { seed: None } => "random".into(),
        TargetSpec::Random { seed: Some(s) } => format!("random:{s}"),
        TargetSpec::At(t) => t.to_rfc3339(),
        TargetSpec::Ago(d) => format!("{} ago", humantime::format_duration(*d)),
    }
}

pub(super) fn list(printer: Printer) -> Result<u8, Failure> {
    #[derive(Serialize)]
    struct Row {
        name: String,
        file: String,
        provider: String,
        target: String,
        schedule: Option<String>,
        checks: usize,
        valid: bool,
    }
    let mut rows = Vec::new();
    for f in all_drill_files()? {
        match load_drill(&f) {
            Ok(s) => rows.push(Row {
                name: s.name.clone(),
                file: f.display().to_string(),
                provider: s.restore.provider().into(),
                target: target_text(&s.target),
                schedule: s.schedule.as_ref().map(|sc| format!("{} ({})", sc.cron, sc.timezone)),
                checks: s.verify.len(),
                valid: true,
            }),
            Err(_) => rows.push(Row {
                name: f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                file: f.display().to_string(),
                provider: "-".into(),
                target: "-".into(),
                schedule: None,
                checks: 0,
                valid: false,
            }),
        }
    }
    if printer.is_json() {
        printer.json(&rows);
        return Ok(exit_codes::OK);
    }
    printer.line(format!(
        "{:<24} {:<18} {:<10} {:>6}  {:<36} {}",
        "NAME", "PROVIDER", "TARGET", "CHECKS", "SCHEDULE", "FILE"
    ));
    for r in &rows {
        let name = if r.valid { r.name.clone() } else { format!("{} (invalid)", r.name) };
        printer.line(format!(
            "{:<24} {:<18} {:<10} {:>6}  {:<36} {}",
            name,
            r.provider,
            r.target,
            r.checks,
            r.schedule.as_deref().unwrap_or("-"),
            r.file
        ));
    }
    Ok(exit_codes::OK)
}

pub(crate) struct RunSettings {
    pub(crate) drills: Vec<String>,
    pub(crate) all: bool,
    pub(crate) due: bool,
    pub(crate) target: Option<TargetSpec>,
    pub(crate) reports: PathBuf,
    pub(crate) concurrency: usize,
    pub(crate) trigger: String,
    pub(crate) quiet: bool,
    pub(crate) aws: crate::aws::AwsSettings,
    pub(crate) signer: Option<std::sync::Arc<crate::report::Signer>>,
    pub(crate) participants: Vec<String>,
    pub(crate) restore_started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) restored_project: Option<String>,
    pub(crate) retain: std::time::Duration,
    pub(crate) if_running: super::args::IfRunning,
    pub(crate) junit: Option<PathBuf>,
    pub(crate) metrics_file: Option<PathBuf>,
}

/// `drill plan`: each drill planned in turn (a file that does not load is a plan that could not be made);
/// the exit code is the worst plan's.
pub(super) async fn plan(
    drills: &[String],
    target: Option<TargetSpec>,
    reports: Option<PathBuf>,
    format: super::args::PlanFormat,
    aws: &crate::aws::AwsSettings,
    printer: Printer,
) -> Result<u8, Failure> {
    use crate::drill::plan::{History, Plan};
    let files = if drills.is_empty() {
        all_drill_files()?
    } else {
        drills.iter().map(|d| resolve_drill(d)).collect::<Result<Vec<_>, _>>()?
    };
    let store_dir = super::settings::reports(reports.as_deref());
    let store = if crate::report::s3::is_url(&store_dir) || store_dir.join("ledger.jsonl").is_file() {
        let args = super::args::StoreArgs { reports: Some(store_dir), ..Default::default() };
        let view = super::report::open(&args, aws).await?;
        Some(super::report::store(&view)?)
    } else {
        None
    };
    let opts = RunOptions { target, ..RunOptions::new("plan", aws) };
    let mut plans = Vec::new();
    for f in &files {
        let spec = match load_drill(f) {
            Ok(s) => s,
            Err(errors) => {
                plans.push(Plan::invalid(f, errors.iter().map(ToString::to_string).collect()));
                continue;
            }
        };
        // Demo runs forecast nothing: their source is a throwaway.
        let reports: Vec<&Report> =
            store.iter().flat_map(|s| s.reports().filter(|r| !r.is_demo()).filter_map(|r| r.report())).collect();
        let history = History {
            own: reports.iter().copied().filter(|r| r.drill == spec.name).collect(),
            same_provider: reports.iter().copied().filter(|r| r.source.provider == spec.restore.provider()).collect(),
        };
        plans.push(crate::drill::plan::plan(&spec, &opts, history).await);
    }
    match format {
        super::args::PlanFormat::Json => printer.json(&plans),
        super::args::PlanFormat::Markdown => printer.line(crate::ui::plan::markdown(&plans)),
        super::args::PlanFormat::Text => printer.line(crate::ui::plan::text(&plans)),
    }
    Ok(plans.iter().map(Plan::exit_code).max().unwrap_or(0))
}

/// Cancels on SIGINT or SIGTERM; the runs then tear down and write `error` reports.
pub(crate) fn cancel_on_signals() -> Cancel {
    let (tx, cancel) = Cancel::new();
    // Registered now, not inside the task: a task may not have run yet when the first signal comes (a
    // loaded machine), and an unregistered SIGTERM kills the process without a teardown.
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = signals else { return };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::warn!("signal received: tearing down and writing reports");
        let _ = tx.send(true);
        // Keep the sender alive so `cancelled()` stays resolved.
        std::future::pending::<()>().await;
    });
    cancel
}

/// The exit code a report stands for.
pub(crate) fn exit_code(v: Verdict) -> u8 {
    match v {
        Verdict::Passed => exit_codes::OK,
        Verdict::Failed => exit_codes::NOT_VERIFIED,
        Verdict::Error => exit_codes::COULD_NOT_RUN,
    }
}

/// The exit code of a fleet run: the worst of its drills; a report the store did not take, or a drill
/// that could not run, is `could not run`.
pub(crate) fn fleet_exit_code(finished: &[Finished]) -> u8 {
    finished
        .iter()
        .map(|f| match &f.ended {
            Ended::Ran { written: Err(_), .. } | Ended::CouldNotRun(_) | Ended::NotStarted => exit_codes::COULD_NOT_RUN,
            Ended::Ran { report, .. } => exit_code(report.result),
        })
        .max()
        .unwrap_or(exit_codes::OK)
}

impl From<IfRunning> for fleet::IfRunning {
    fn from(m: IfRunning) -> Self {
        match m {
            IfRunning::Refuse => fleet::IfRunning::Refuse,
            IfRunning::Wait => fleet::IfRunning::Wait,
            IfRunning::Parallel => fleet::IfRunning::Parallel,
        }
    }
}

pub(super) async fn run(settings: RunSettings, printer: Printer) -> Result<u8, Failure> {
    let files = if settings.all || settings.due {
        all_drill_files()?
    } else {
        settings.drills.iter().map(|d| resolve_drill(d)).collect::<Result<Vec<_>, _>>()?
    };
    let mut specs = load_all(&files)?;
    let run_files = files;
    if settings.due {
        specs = due(specs, &settings).await?;
        if specs.is_empty() {
            if let Some(path) = &settings.junit {
                // No drill was due: CI still gets a (empty) test report to publish.
                crate::ui::Junit::new(path.clone()).done(&fleet::Stats::default());
            }
            if printer.is_json() {
                printer.json(&Vec::<Report>::new());
            } else {
                printer.line("no drill is due: every scheduled drill has run since its latest occurrence");
            }
            return Ok(exit_codes::OK);
        }
        crate::ui::diag!("due: {}", specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    let opts = RunOptions {
        target: settings.target.clone(),
        participants: settings.participants.clone(),
        restore_started_at: settings.restore_started_at,
        restored_project: settings.restored_project.clone(),
        ..RunOptions::new(&settings.trigger, &settings.aws)
    };
    let mut reporters: Vec<Arc<dyn Reporter>> = vec![
        Arc::new(crate::drill::metrics::CloudWatch { aws: settings.aws.clone() }),
        Arc::new(Progress(progress_sink(settings.quiet || printer.is_json()))),
        Summary::new(printer),
    ];
    if let Some(path) = &settings.junit {
        reporters.push(Arc::new(crate::ui::Junit::new(path.clone())));
    }
    let fleet = Fleet::new(
        fleet::Settings {
            store: ReportStore::new(&settings.reports, settings.retain),
            signer: settings.signer.clone(),
            aws: settings.aws.clone(),
            concurrency: settings.concurrency,
            if_running: settings.if_running.into(),
            cancel: cancel_on_signals(),
        },
        reporters,
    );
    let jobs = specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| Job { index, spec, opts: opts.clone(), delay: Duration::ZERO })
        .collect();
    let (finished, _) = fleet.run(jobs).await;
    if let Some(path) = &settings.metrics_file {
        let mut files = all_drill_files().unwrap_or_default();
        files.extend(run_files);
        let source = super::metrics::Source {
            reports: settings.reports.clone(),
            retain: settings.retain,
            aws: settings.aws.clone(),
            files,
            heartbeat: Default::default(),
            served: Default::default(),
        };
        source.write(path).await;
    }
    Ok(fleet_exit_code(&finished))
}

/// The scheduled drills whose latest occurrence at or before now has no run (of any result) in the store
/// since; a drill never run is due once its first occurrence has passed.
async fn due(specs: Vec<DrillSpec>, settings: &RunSettings) -> Result<Vec<DrillSpec>, Failure> {
    let store = super::args::StoreArgs {
        reports: Some(settings.reports.clone()),
        retain: settings.retain,
        ..Default::default()
    };
    let view = super::report::open(&store, &settings.aws).await?;
    let store = super::report::store(&view)?;
    let now = chrono::Utc::now();
    Ok(specs
        .into_iter()
        .filter(|s| {
            let Some(sched) = &s.schedule else { return false };
            let Some(latest) = crate::cadence::last_at_or_before(sched, now) else { return false };
            let last_run = store.last_run(&s.name).and_then(|r| r.started_at());
            last_run.is_none_or(|t| t < latest)
        })
        .collect())
}

/// One line of `drill cleanup`: what was done to what, and whose it was when known (an empty or `-` drill
/// or run is left out rather than printed as `(drill , run )`).
fn swept_line(s: &drill::cleanup::Swept) -> String {
    let known = |v: &str| !v.trim().is_empty() && v != "-";
    let owner: Vec<String> = [("drill", s.drill.as_str()), ("run", s.run.as_str())]
        .into_iter()
        .filter(|(_, v)| known(v))
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let owner = if owner.is_empty() { String::new() } else { format!(" ({})", owner.join(", ")) };
    format!("{}  {} {}{owner}", s.action, s.kind, s.resource)
}

pub(super) async fn cleanup(
    paths: &[PathBuf],
    dry_run: bool,
    aws: &crate::aws::AwsSettings,
    force_aws: bool,
    reports: &Path,
    printer: Printer,
) -> Result<u8, Failure> {
    let files = if paths.is_empty() { all_drill_files()? } else { paths.to_vec() };
    let specs = load_all(&files)?;
    let mut swept = drill::cleanup::sweep(&specs, dry_run, aws, force_aws).await;
    // A report write a crash interrupted: finished if its ledger line was written, else undone.
    if !dry_run && !crate::report::s3::is_url(reports) {
        let store = reports.display().to_string();
        match crate::report::store::recover(reports) {
            Ok(done) => swept.extend(done.into_iter().map(|d| drill::cleanup::Swept {
                kind: "report-file",
                resource: store.clone(),
                drill: "-".into(),
                run: "-".into(),
                action: d,
            })),
            Err(e) => swept.push(drill::cleanup::Swept {
                kind: "report-file",
                resource: store.clone(),
                drill: "-".into(),
                run: "-".into(),
                action: format!("failed: {e}"),
            }),
        }
    }
    if printer.is_json() {
        printer.json(&swept);
    } else if swept.is_empty() {
        printer.line("nothing to clean up");
    } else {
        for s in &swept {
            printer.line(swept_line(s));
        }
    }
    let failed = swept.iter().any(|s| s.action.starts_with("failed"));
    Ok(if failed { exit_codes::NOT_VERIFIED } else { exit_codes::OK })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_hints_the_closest_and_lists_the_known() {
        let known = vec!["production".to_string(), "staging".to_string()];
        assert_eq!(
            known_names_hint("prodution", &known, "stacks", "stacks/"),
            "did you mean `production`? known stacks: production, staging"
        );
        assert_eq!(known_names_hint("zzz", &known, "stacks", "stacks/"), "known stacks: production, staging");
        assert_eq!(known_names_hint("x", &[], "drills", "drills/"), "no drills in drills/");
    }

    #[test]
    fn a_cleanup_line_leaves_out_an_unknown_drill_or_run() {
        let swept = |drill: &str, run: &str| drill::cleanup::Swept {
            kind: "local",
            resource: "/tmp/s/x".into(),
            drill: drill.into(),
            run: run.into(),
            action: "would remove".into(),
        };
        assert_eq!(swept_line(&swept("", "")), "would remove  local /tmp/s/x");
        assert_eq!(swept_line(&swept("-", "-")), "would remove  local /tmp/s/x");
        assert_eq!(swept_line(&swept("orders", "")), "would remove  local /tmp/s/x (drill orders)");
        assert_eq!(swept_line(&swept("orders", "ab12")), "would remove  local /tmp/s/x (drill orders, run ab12)");
    }
}
