//! Settings resolved from the parsed command line, then the command that runs: one arm per subcommand.

use super::args::{
    BackupsCommand, Cli, Command, DrillCommand, HeartbeatCommand, IamCommand, KeysCommand, RunbookCommand,
    ScheduleCommand, StackCommand,
};
use anyhow::anyhow;
use clap::CommandFactory;

use crate::ui::{self, OutputFormat, Printer};

/// A command that failed: what to print, a hint, and the exit code.
pub(crate) struct Failure {
    pub(crate) error: anyhow::Error,
    pub(crate) hint: Option<String>,
    pub(crate) code: u8,
}

impl Failure {
    pub(crate) fn could_not_run(error: impl Into<anyhow::Error>, hint: Option<String>) -> Self {
        Failure { error: error.into(), hint, code: super::exit_codes::COULD_NOT_RUN }
    }
}

impl From<crate::drill::DrillError> for Failure {
    fn from(e: crate::drill::DrillError) -> Self {
        let hint = e.hint();
        Failure::could_not_run(e, hint)
    }
}

/// The report signer: a KMS key when named, else a local Ed25519 key (flag, environment, default file).
pub(crate) async fn signer(
    file: Option<&std::path::Path>,
    kms: Option<&str>,
    aws: &crate::aws::AwsSettings,
) -> Result<Option<std::sync::Arc<crate::report::Signer>>, Failure> {
    let s = match kms {
        Some(k) => crate::report::Signer::kms(k, aws).await.map(Some),
        None => crate::report::Signer::configured(super::settings::signing_key(file)),
    };
    s.map(|s| s.map(std::sync::Arc::new))
        .map_err(|e| Failure::could_not_run(e, Some("create a key with `stackdrill keys generate`".into())))
}

/// Whether the command asked for JSON on stdout (`--output json`): a failure before it printed anything is
/// then a JSON error object on stdout too, never an empty stdout a tool cannot parse.
pub(crate) fn wants_json(cli: &Cli) -> bool {
    use super::args::ReportCommand;
    let output = match &cli.command {
        Command::Demo(a) => a.output,
        Command::Drill(DrillCommand::Run(a)) => a.output,
        Command::Drill(
            DrillCommand::Validate { output, .. }
            | DrillCommand::List { output }
            | DrillCommand::Plan { output, .. }
            | DrillCommand::Cleanup { output, .. },
        ) => *output,
        Command::Stack(
            StackCommand::Validate { output, .. }
            | StackCommand::Check { output, .. }
            | StackCommand::Apply { output, .. },
        ) => *output,
        Command::Report(
            ReportCommand::Verify { output, .. }
            | ReportCommand::List { output, .. }
            | ReportCommand::History { output, .. },
        ) => *output,
        Command::Runbook(RunbookCommand::Check { output, .. }) => *output,
        Command::Schedule(ScheduleCommand::List { output, .. }) => *output,
        Command::Keys(KeysCommand::List { output }) => *output,
        Command::Heartbeat(
            HeartbeatCommand::Install { output, .. }
            | HeartbeatCommand::Status { output, .. }
            | HeartbeatCommand::Remove { output, .. },
        ) => *output,
        Command::Backups(BackupsCommand::Check(a)) => a.output,
        _ => OutputFormat::Text,
    };
    output == OutputFormat::Json
}

/// The JSON error object a failed `--output json` command prints on stdout when it printed nothing else.
pub(crate) fn error_json(f: &Failure) -> serde_json::Value {
    let caused_by: Vec<String> = f.error.chain().skip(1).map(ToString::to_string).collect();
    serde_json::json!({
        "schema": "stackdrill.error/v1",
        "error": f.error.to_string(),
        "caused_by": caused_by,
        "hint": f.hint,
        "exit_code": f.code,
    })
}

pub(crate) fn init(cli: &Cli) {
    ui::color::set_choice(cli.global.color);
    super::settings::init_process();
    // The scheduler's output is its log: info by default.
    let daemon = matches!(cli.command, Command::Schedule(ScheduleCommand::Run(_)));
    ui::init_logging(cli.global.log_format, cli.global.verbose.max(u8::from(daemon)), cli.global.quiet);
}

pub(crate) async fn run(cli: Cli) -> Result<u8, Failure> {
    let quiet = cli.global.quiet;
    let aws = crate::aws::AwsSettings {
        region: cli.global.region.clone(),
        profile: cli.global.profile.clone(),
        endpoint_url: cli.global.endpoint_url.clone(),
    };
    match cli.command {
        Command::Demo(a) if a.stop => super::demo::stop(&a.dir, Printer { format: a.output }).await,
        Command::Demo(a) => {
            let settings = super::demo::DemoSettings {
                dir: a.dir,
                scale: a.scale,
                keep: a.keep,
                posture: !a.no_posture,
                reports: super::settings::reports(a.report.reports.as_deref()),
                quiet,
                signer: signer(a.report.signing_key.as_deref(), a.report.sign_kms_key.as_deref(), &aws).await?,
                aws,
                retain: a.report.retain,
            };
            super::demo::demo(settings, Printer { format: a.output }).await
        }
        Command::Drill(cmd) => drill(cmd, aws, quiet).await,
        Command::Stack(cmd) => stack(cmd, &aws).await,
        Command::Schedule(cmd) => schedule(cmd, aws, quiet).await,
        Command::Keys(KeysCommand::Generate { out, role, name }) => {
            super::report::keys_generate(out.as_deref(), role, name.as_deref())
        }
        Command::Keys(KeysCommand::Trust { public, name, role }) => {
            super::report::keys_trust(&public, name.as_deref(), role)
        }
        Command::Keys(KeysCommand::List { output }) => super::report::keys_list(Printer { format: output }),
        Command::Iam(IamCommand::Policy {
            drills,
            stack,
            read_only,
            schedule,
            workflow,
            config,
            report_store,
            sign_kms_key,
            backups,
            backups_file,
        }) => {
            let want = super::iam::Want {
                drills,
                stack,
                read_only,
                schedule,
                workflow,
                config,
                report_store,
                sign_kms_key,
                backups: backups.then_some(backups_file),
            };
            super::iam::policy(want, aws.region.as_deref(), Printer { format: OutputFormat::Json })
        }
        Command::Report(cmd) => super::report::run(cmd, &aws).await,
        Command::Heartbeat(cmd) => super::heartbeat::run(cmd, &aws).await,
        Command::Backups(BackupsCommand::Check(a)) => {
            let signer = signer(a.report.signing_key.as_deref(), a.report.sign_kms_key.as_deref(), &aws).await?;
            let printer = Printer { format: a.output };
            super::backups::check(a, signer, &aws, printer).await
        }
        Command::Runbook(RunbookCommand::Check { store, output }) => {
            let view = super::report::open(&store, &aws).await?;
            super::report::runbook_check(&view, Printer { format: output })
        }
        Command::Manpages { dir } => {
            let written = manpages(&dir).map_err(|e| {
                Failure::could_not_run(anyhow!("cannot write man pages into `{}`: {e}", dir.display()), None)
            })?;
            crate::ui::outln!(
                "wrote {} into {}",
                crate::config::count(written as u64, "man page", "man pages"),
                dir.display()
            );
            Ok(super::exit_codes::OK)
        }
        Command::Completions { shell } => {
            // Generated into memory, then written through the printer: `completions bash | head` ends quietly.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "stackdrill", &mut script);
            crate::ui::write_raw(&String::from_utf8_lossy(&script));
            Ok(super::exit_codes::OK)
        }
    }
}

async fn drill(cmd: DrillCommand, aws: crate::aws::AwsSettings, quiet: bool) -> Result<u8, Failure> {
    match cmd {
        DrillCommand::Validate { paths, output, strict } => {
            super::drill::validate(&paths, strict, Printer { format: output })
        }
        DrillCommand::List { output } => super::drill::list(Printer { format: output }),
        DrillCommand::Plan { drills, target, reports, format, output } => {
            let target = target
                .as_deref()
                .map(crate::config::parse_target_flag)
                .transpose()
                .map_err(|e| Failure::could_not_run(anyhow!("--target: {e}"), None))?;
            let json = output == crate::ui::OutputFormat::Json || format == super::args::PlanFormat::Json;
            let format = if json { super::args::PlanFormat::Json } else { format };
            super::drill::plan(&drills, target, reports, format, &aws, Printer { format: output }).await
        }
        DrillCommand::Run(a) => {
            let target = a
                .target
                .as_deref()
                .map(crate::config::parse_target_flag)
                .transpose()
                .map_err(|e| Failure::could_not_run(anyhow!("--target: {e}"), None))?;
            let settings = super::drill::RunSettings {
                drills: a.drills,
                all: a.all,
                due: a.due,
                target,
                reports: super::settings::reports(a.report.reports.as_deref()),
                concurrency: a.concurrency as usize,
                trigger: a.trigger,
                quiet,
                signer: signer(a.report.signing_key.as_deref(), a.report.sign_kms_key.as_deref(), &aws).await?,
                aws,
                participants: a.participants,
                restore_started_at: match a.restore_started_at.as_deref() {
                    Some(t) => Some(
                        crate::config::parse_target_time(t)
                            .map_err(|e| Failure::could_not_run(anyhow!("--restore-started-at: {e}"), None))?,
                    ),
                    None => None,
                },
                restored_project: a.restored_project,
                retain: a.report.retain,
                if_running: a.if_running,
                junit: a.junit,
                metrics_file: a.metrics_file,
            };
            super::drill::run(settings, Printer { format: a.output }).await
        }
        DrillCommand::Cleanup { paths, dry_run, aws: force_aws, reports, output } => {
            let reports = super::settings::reports(reports.as_deref());
            super::drill::cleanup(&paths, dry_run, &aws, force_aws, &reports, Printer { format: output }).await
        }
    }
}

async fn stack(cmd: StackCommand, aws: &crate::aws::AwsSettings) -> Result<u8, Failure> {
    match cmd {
        StackCommand::Validate { paths, output } => super::stack::validate(&paths, Printer { format: output }),
        StackCommand::Check { stack, live, output } => {
            super::stack::check(&stack, live.then_some(aws), Printer { format: output }).await
        }
        StackCommand::Plan { stack, out, format, detailed_exitcode } => {
            super::stack::plan(&stack, aws, out.as_deref(), format, detailed_exitcode).await
        }
        StackCommand::Apply { stack, plan, auto_approve, allow_data_loss, skip_policy, output } => {
            let opts = super::stack::ApplyOptions { auto_approve, allow_data_loss, skip_policy };
            super::stack::apply(stack.as_deref(), plan.as_deref(), aws, opts, Printer { format: output }).await
        }
        StackCommand::Drift { stack, format } => super::stack::drift(&stack, aws, format).await,
        StackCommand::Import { stack, address, yes } => super::stack::import(&stack, &address, aws, yes).await,
    }
}

async fn schedule(cmd: ScheduleCommand, aws: crate::aws::AwsSettings, quiet: bool) -> Result<u8, Failure> {
    match cmd {
        ScheduleCommand::List { drills, count, store, output } => {
            super::schedule::list(&drills, count, &store, &aws, Printer { format: output }).await
        }
        ScheduleCommand::Run(args) => {
            let settings = super::schedule::DaemonSettings {
                reports: super::settings::reports(args.report.reports.as_deref()),
                signer: signer(args.report.signing_key.as_deref(), args.report.sign_kms_key.as_deref(), &aws).await?,
                aws,
                quiet,
                args,
            };
            super::schedule::run(settings).await
        }
        ScheduleCommand::Deploy { config, dry_run, output } => {
            super::schedule::deploy(&config, dry_run, &aws, Printer { format: output }).await
        }
        ScheduleCommand::TaskInput { config, run_args } => {
            super::schedule::task_input(&config, &run_args, Printer { format: OutputFormat::Json })
        }
    }
}

/// Writes `stackdrill.1` and a page for every subcommand, named by its path (`stackdrill-drill-run.1`).
fn manpages(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut stack = vec![(cmd, "stackdrill".to_string())];
    let mut written = 0;
    while let Some((cmd, name)) = stack.pop() {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            stack.push((sub.clone(), format!("{name}-{}", sub.get_name())));
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone()).title(name.to_uppercase()).render(&mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
        written += 1;
    }
    Ok(written)
}
