//! clap structures: the command line as typed. Commands never see these; `settings` resolves them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::ui::{LogFormat, OutputFormat};

#[derive(Debug, Parser)]
#[command(name = "stackdrill", version, about = "Restore drills that prove backups come back, and the stack that keeps them", long_about = None)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Log line format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "STACKDRILL_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
    /// Only errors on stderr; no progress
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// More log detail (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// AWS region (default: the AWS config chain, else ap-southeast-1)
    #[arg(long, global = true)]
    pub(crate) region: Option<String>,
    /// AWS shared-config profile (default: AWS_PROFILE, else the default chain)
    #[arg(long, global = true)]
    pub(crate) profile: Option<String>,
    /// Send AWS API calls to this endpoint (an emulator, a VPC endpoint)
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub(crate) endpoint_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a complete point-in-time restore drill on a local demo database
    Demo(DemoArgs),
    /// Validate, list, run and clean up restore drills
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Validate and policy-check stack definitions (stacks/*.yaml)
    #[command(subcommand)]
    Stack(StackCommand),
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where the demo source, backups, archive and scratch live
    #[arg(long, default_value = ".stackdrill/demo")]
    pub(crate) dir: PathBuf,
    /// Data size: 1 is about 100k ledger rows
    #[arg(long, default_value_t = 1)]
    pub(crate) scale: u32,
    /// Leave the demo source running afterwards
    #[arg(long)]
    pub(crate) keep: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: OutputFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Report directory (default: $STACKDRILL_REPORTS, else ./reports)
    #[arg(long)]
    pub(crate) reports: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DrillCommand {
    /// Check drill files and report every problem (default: drills/*.yaml)
    Validate {
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// List the drills in drills/
    List {
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Run drills by name (drills/<NAME>.yaml) or path
    Run(RunArgs),
    /// Remove scratch environments left by crashed runs (default: the scratch roots of drills/*.yaml)
    Cleanup {
        paths: Vec<PathBuf>,
        /// Say what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
        /// Also sweep AWS when no drill file uses an AWS provider
        #[arg(long)]
        aws: bool,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StackCommand {
    /// Check stack files and report every problem (default: stacks/*.yaml)
    Validate {
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Evaluate the policy rules on a stack (a name in stacks/ or a path)
    Check {
        stack: String,
        /// Evaluate live state in AWS, not only the file
        #[arg(long)]
        live: bool,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Compare the stack with live state and show what apply would do
    Plan {
        stack: String,
        /// Save the plan (JSON) for `stack apply --plan`
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: PlanFormat,
        /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Apply a saved plan (refused if stale), or plan and apply after confirmation
    Apply {
        /// The stack (a name in stacks/ or a path); optional with --plan
        #[arg(required_unless_present = "plan")]
        stack: Option<String>,
        /// A plan saved by `stack plan --out`
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Do not ask for confirmation
        #[arg(long)]
        auto_approve: bool,
        /// Allow replacing or deleting a database, a backup vault or a KMS key
        #[arg(long)]
        allow_data_loss: bool,
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Exit 2 and show the differences when live state has drifted from the stack
    Drift {
        stack: String,
        #[arg(long, value_enum, default_value_t)]
        format: PlanFormat,
    },
    /// Adopt an existing resource into the stack by tagging it (`kind/name`, as `stack plan` names it)
    Import {
        stack: String,
        address: String,
        /// Do not ask for confirmation
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PlanFormat {
    #[default]
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Drill names or paths
    #[arg(required_unless_present = "all")]
    pub(crate) drills: Vec<String>,
    /// Run every drill in drills/
    #[arg(long, conflicts_with = "drills")]
    pub(crate) all: bool,
    /// latest | random | random:SEED | <RFC3339> | "<DURATION> ago"
    #[arg(long)]
    pub(crate) target: Option<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    /// How many drills run at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) concurrency: u16,
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: OutputFormat,
    /// Who or what started the run, recorded in the report (manual, schedule, ci)
    #[arg(long, default_value = "manual", env = "STACKDRILL_TRIGGER")]
    pub(crate) trigger: String,
}
