//! clap structures: the command line as typed. Commands never see these; `settings` resolves them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::ui::color::ColorChoice;
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
    /// Colour verdicts and failed checks: auto (on a terminal, unless NO_COLOR is set), always, never
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub(crate) color: ColorChoice,
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
    /// Provision and policy-check stacks (stacks/*.yaml): validate, plan, apply, drift, import, check
    #[command(subcommand)]
    Stack(StackCommand),
    /// Verify, list and read drill reports; the controls matrix; sign-offs
    #[command(subcommand)]
    Report(ReportCommand),
    /// Drill schedules: next runs and overdue drills, a local scheduler, EventBridge Scheduler deployment
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Report signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The least-privilege IAM policy each use of stackdrill needs
    #[command(subcommand)]
    Iam(IamCommand),
    /// Runbooks: which are overdue or missing
    #[command(subcommand)]
    Runbook(RunbookCommand),
    /// The source's heartbeat: a row every few seconds, so each restore's real recovery point is measured
    #[command(subcommand)]
    Heartbeat(HeartbeatCommand),
    /// Backup posture: whether each data store's backups meet their objectives today, as signed evidence
    #[command(subcommand)]
    Backups(BackupsCommand),
    /// Write man pages (stackdrill.1 and one per subcommand, stackdrill-drill-run.1, ...) into DIR
    Manpages {
        /// The directory to write them into (created if missing)
        dir: PathBuf,
    },
    /// Print shell completions
    Completions {
        /// The shell to generate completions for
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
    #[arg(long, conflicts_with = "stop")]
    pub(crate) keep: bool,
    /// Stop the demo source an earlier `demo --keep` left running (and every scratch of it), and remove
    /// its directory; the reports stay
    #[arg(long)]
    pub(crate) stop: bool,
    /// Do not record the demo source's backup posture (by default one `backups check` record follows the
    /// drill's report, so `report controls` shows the backup control)
    #[arg(long)]
    pub(crate) no_posture: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    /// Output: text for people, or json for tools
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: OutputFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Report store: a directory, or s3://bucket/prefix (a bucket with Object Lock) (default:
    /// $STACKDRILL_REPORTS, else ./reports)
    #[arg(long, env = "STACKDRILL_REPORTS")]
    pub(crate) reports: Option<PathBuf>,
    /// How long an s3:// store locks each report (Object Lock, compliance mode)
    #[arg(long, default_value = "400d", env = "STACKDRILL_REPORTS_RETAIN", value_parser = humantime::parse_duration)]
    pub(crate) retain: std::time::Duration,
    /// Ed25519 key that signs reports (default: $STACKDRILL_SIGNING_KEY (PEM), $STACKDRILL_SIGNING_KEY_FILE,
    /// else .stackdrill/keys/signing.key if it exists)
    #[arg(long)]
    pub(crate) signing_key: Option<PathBuf>,
    /// Sign with an AWS KMS asymmetric key instead (ECC_NIST_P256; id, ARN or alias/...)
    #[arg(long, env = "STACKDRILL_SIGNING_KMS_KEY", conflicts_with = "signing_key")]
    pub(crate) sign_kms_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DrillCommand {
    /// Check drill files and report every problem (default: drills/*.yaml)
    Validate {
        /// Drills to check, by name (drills/<NAME>.yaml) or path (default: drills/*.yaml)
        paths: Vec<PathBuf>,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
        /// Treat files the drill names that do not exist on this machine (runbook, password file, CA
        /// bundle, backup and archive directories) as errors, not warnings
        #[arg(long)]
        strict: bool,
    },
    /// List the drills in drills/
    List {
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Everything a run would check before restoring, without creating anything: the file, credentials,
    /// the source over TLS, the window, target and backup, the scratch, and the RTO forecast from past
    /// reports (exit 0 ready, 1 would fail or forecast misses the RTO, 2 could not plan)
    Plan {
        /// Drills by name (drills/<NAME>.yaml) or path (default: drills/*.yaml)
        drills: Vec<String>,
        /// Plan for this target instead of the file's (as `drill run --target`)
        #[arg(long)]
        target: Option<String>,
        /// Report store whose past runs the forecast is fitted on (default: $STACKDRILL_REPORTS, else ./reports)
        #[arg(long, env = "STACKDRILL_REPORTS")]
        reports: Option<PathBuf>,
        /// text for people, json for tools, markdown for a pull-request comment
        #[arg(long, value_enum, default_value_t)]
        format: PlanFormat,
        /// Output: text, or json (the same as --format json)
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Run drills by name (drills/<NAME>.yaml) or path
    Run(Box<RunArgs>),
    /// Remove scratch environments left by crashed runs (default: the scratch roots of drills/*.yaml)
    Cleanup {
        /// Drill files whose scratch roots to sweep (default: drills/*.yaml)
        paths: Vec<PathBuf>,
        /// Say what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
        /// Sweep AWS even when no drill file uses an AWS provider, and fail without credentials (else an AWS
        /// sweep without credentials is skipped with a note)
        #[arg(long)]
        aws: bool,
        /// The report store whose interrupted writes to finish or undo (default: $STACKDRILL_REPORTS, else
        /// ./reports)
        #[arg(long, env = "STACKDRILL_REPORTS")]
        reports: Option<PathBuf>,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StackCommand {
    /// Check stack files and report every problem (default: stacks/*.yaml)
    Validate {
        /// Stacks to check, by name (stacks/<NAME>.yaml) or path (default: stacks/*.yaml)
        paths: Vec<PathBuf>,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Evaluate the policy rules on a stack (a name in stacks/ or a path)
    Check {
        /// The stack: a name (stacks/<NAME>.yaml) or a path
        stack: String,
        /// Evaluate live state in AWS, not only the file
        #[arg(long)]
        live: bool,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Compare the stack with live state and show what apply would do
    Plan {
        /// The stack: a name (stacks/<NAME>.yaml) or a path
        stack: String,
        /// Save the plan (JSON) for `stack apply --plan`
        #[arg(long)]
        out: Option<PathBuf>,
        /// The rendering to print
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
        /// Allow replacing or deleting a database, a backup vault or a KMS key, or lowering backup retention
        #[arg(long)]
        allow_data_loss: bool,
        /// Waive these policy rules (ids as `stack check` prints them); every other failing rule refuses the apply
        #[arg(long, value_delimiter = ',', value_name = "RULE")]
        skip_policy: Vec<String>,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Exit 2 and show the differences when live state has drifted from the stack
    Drift {
        /// The stack: a name (stacks/<NAME>.yaml) or a path
        stack: String,
        /// The rendering to print
        #[arg(long, value_enum, default_value_t)]
        format: PlanFormat,
    },
    /// Adopt an existing resource into the stack by tagging it (`kind/name`, as `stack plan` names it)
    Import {
        /// The stack: a name (stacks/<NAME>.yaml) or a path
        stack: String,
        /// The resource address in the stack file, as `stack plan` names it
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
    #[arg(required_unless_present_any = ["all", "due"])]
    pub(crate) drills: Vec<String>,
    /// Run every drill in drills/
    #[arg(long, conflicts_with_all = ["drills", "due"])]
    pub(crate) all: bool,
    /// Run the drills in drills/ whose latest scheduled occurrence has no run in the report store yet (for a
    /// CI cron that wakes more often than the drills are due)
    #[arg(long, conflicts_with = "drills")]
    pub(crate) due: bool,
    /// latest | random | random:SEED | <RFC3339> | "<DURATION> ago"
    #[arg(long)]
    pub(crate) target: Option<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    /// How many drills run at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) concurrency: u16,
    /// Output: text for people, or json for tools
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: OutputFormat,
    /// Who or what started the run, recorded in the report (manual, schedule, ci)
    #[arg(long, default_value = "manual", env = "STACKDRILL_TRIGGER")]
    pub(crate) trigger: String,
    /// When a run of the same drill is in progress (here or in another process on this machine): refuse,
    /// wait for it, or run a second scratch restore alongside
    #[arg(long, value_enum, default_value_t = IfRunning::Refuse)]
    pub(crate) if_running: IfRunning,
    /// Someone who took part, recorded in the report (repeatable)
    #[arg(long = "participant")]
    pub(crate) participants: Vec<String>,
    /// When a restore made by hand began (RFC 3339), for an `existing-postgres` drill's RTO; overrides the
    /// file's `restore-started-at`
    #[arg(long, value_name = "TIME")]
    pub(crate) restore_started_at: Option<String>,
    /// The ref of the project a person restored in the dashboard for a `supabase-new-project` drill: the
    /// run takes it instead of waiting for the project to appear (non-interactive)
    #[arg(long, value_name = "REF")]
    pub(crate) restored_project: Option<String>,
    /// Also write the results as JUnit XML here (each drill a suite; each check, objective and the
    /// teardown a test case), for CI test reports
    #[arg(long, value_name = "PATH")]
    pub(crate) junit: Option<PathBuf>,
    /// Afterwards write the store's state as OpenMetrics text here, atomically (for node_exporter's textfile
    /// collector): per drill last result, last success, restore/RTO/RPO seconds, checks, overdue
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub(crate) struct StoreArgs {
    /// Report store: a directory or s3://bucket/prefix (default: $STACKDRILL_REPORTS, else ./reports)
    #[arg(long, env = "STACKDRILL_REPORTS")]
    pub(crate) reports: Option<PathBuf>,
    /// Trust exactly this public key (PEM; repeatable): the keys in .stackdrill/keys/trusted/ are then not
    /// trusted, and the chain must be signed (required with --pack)
    #[arg(long = "key", value_name = "PUB")]
    pub(crate) keys: Vec<PathBuf>,
    /// Trust this AWS KMS signing key (id, ARN or alias; its public key is fetched), as --key (repeatable)
    #[arg(long, value_name = "KEY")]
    pub(crate) trust_kms_key: Vec<String>,
    /// How long each object of an s3:// store must be locked after it was written (COMPLIANCE mode)
    #[arg(long, default_value = "400d", env = "STACKDRILL_REPORTS_RETAIN", value_parser = humantime::parse_duration)]
    pub(crate) retain: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Check the hash chain and every signature; exit 1 naming the first broken link
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Accept unsigned entries: after signed ones, or in a store whose operator key is trusted (signing
        /// switched off on purpose)
        #[arg(long, conflicts_with_all = ["keys", "trust_kms_key"])]
        allow_unsigned: bool,
        /// Verify an evidence pack (a folder or .tar.gz from `report export`) instead of a store, offline
        #[arg(long, value_name = "PACK")]
        pack: Option<PathBuf>,
        /// The pack exported before this one: it must verify, and --pack must continue the chain from the
        /// entry it ended at (entries deleted from the store's end in between are named)
        #[arg(long, value_name = "OLD_PACK", requires = "pack")]
        previous: Option<PathBuf>,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Every report in the store, oldest first
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// The runs of one drill (or all) with an RTO trend
    History {
        /// Only this drill (default: every drill in the store)
        drill: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Print one report (by id, or a unique prefix of it)
    Show {
        /// The report id, or a unique prefix of it
        id: String,
        #[command(flatten)]
        store: StoreArgs,
        /// The rendering to print
        #[arg(long, value_enum, default_value_t = ShowFormat::Md)]
        format: ShowFormat,
    },
    /// Per control: every run, its result, RTO/RPO, signature and chain status, and missed cadences
    Controls {
        #[command(flatten)]
        store: StoreArgs,
        /// The rendering to print
        #[arg(long, value_enum, default_value_t = ControlsFormat::Md, alias = "output")]
        format: ControlsFormat,
        /// The period's start: a date (UTC) or an RFC 3339 time; with --since/--until the matrix covers the
        /// period and per-drill figures follow (occurrences passed/failed/missed, median and worst RTO/RPO)
        #[arg(long)]
        since: Option<String>,
        /// The period's end: a date (that whole day is included) or an RFC 3339 time (default: now)
        #[arg(long)]
        until: Option<String>,
    },
    /// Write an evidence pack for a period: a self-contained, signed folder an auditor opens and checks
    /// offline (index.html, every report, the ledger slice, public keys, VERIFY.md, a signed manifest)
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// The period's start: a date (UTC) or an RFC 3339 time (default: the store's first report)
        #[arg(long)]
        since: Option<String>,
        /// The period's end: a date (that whole day is included) or an RFC 3339 time (default: now)
        #[arg(long)]
        until: Option<String>,
        /// Only these drills in the index (repeatable); the ledger slice keeps every entry between its ends
        #[arg(long = "drill", value_name = "NAME")]
        drills: Vec<String>,
        /// The pack's directory (new or empty); with --tar, the .tar.gz file to write
        #[arg(long)]
        out: PathBuf,
        /// Write one .tar.gz instead of a folder
        #[arg(long)]
        tar: bool,
        /// The key that signs the pack's manifest (default: as for drill reports)
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// Sign with an AWS KMS asymmetric key (ECC_NIST_P256) instead
        #[arg(long, env = "STACKDRILL_SIGNING_KMS_KEY", conflicts_with = "signing_key")]
        sign_kms_key: Option<String>,
    },
    /// Write stored reports as JUnit XML (each drill run a suite; its checks, objectives and teardown test
    /// cases), for CI test-report views of drills that ran elsewhere (an ECS task); reads the verified store
    Junit {
        #[command(flatten)]
        store: StoreArgs,
        /// Only runs started at or after this: a date (UTC) or an RFC 3339 time (default: every run)
        #[arg(long)]
        since: Option<String>,
        /// Only these drills (repeatable)
        #[arg(long = "drill", value_name = "NAME")]
        drills: Vec<String>,
        /// The file to write (atomically)
        #[arg(long)]
        out: PathBuf,
    },
    /// Record a reviewer's decision on a report as a new signed, chained entry
    SignOff {
        /// The report id, or a unique prefix of it
        id: String,
        /// Who reviews: with `keys generate --role reviewer --name <REVIEWER>` done, their own key signs
        #[arg(long)]
        reviewer: String,
        /// The reviewer's decision
        #[arg(long, value_enum)]
        decision: Decision,
        /// Remediation or remarks
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        /// The reviewer's key (default: .stackdrill/keys/reviewers/<REVIEWER>.key when it exists, from
        /// `keys generate --role reviewer --name <REVIEWER>`); it must be the trusted reviewer key of that name
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// Sign with an AWS KMS asymmetric key (ECC_NIST_P256) instead
        #[arg(long, env = "STACKDRILL_SIGNING_KMS_KEY", conflicts_with = "signing_key")]
        sign_kms_key: Option<String>,
    },
    /// Record, in a new entry signed by a trusted operator key, that an entry's document was lost: `report
    /// verify` then names it as lost (by whom, why) instead of as a broken link. The ledger is never edited
    RecordLoss {
        /// The lost entry's sequence number (as `report verify` names it)
        seq: u64,
        /// What happened, for the auditor
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        store: StoreArgs,
        /// The operator's signing key (default: as `drill run`)
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// Sign with an AWS KMS asymmetric key (ECC_NIST_P256) instead
        #[arg(long, env = "STACKDRILL_SIGNING_KMS_KEY", conflicts_with = "signing_key")]
        sign_kms_key: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ShowFormat {
    Md,
    Html,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ControlsFormat {
    Md,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Decision {
    Approved,
    Rejected,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IamCommand {
    /// Print the IAM policy (JSON) a role needs for these drills, this stack, schedule deployment, the drills
    /// workflow and the report store together
    Policy {
        /// A drill (name in drills/ or path); repeat for several
        #[arg(long = "drill", value_name = "NAME|PATH")]
        drills: Vec<String>,
        /// A stack (name in stacks/ or path): what `stack apply` needs
        #[arg(long)]
        stack: Option<String>,
        /// With --stack: only what `stack plan`, `drift` and `check --live` read (the plan role)
        #[arg(long, requires = "stack")]
        read_only: bool,
        /// What `schedule deploy` needs (from --config)
        #[arg(long)]
        schedule: bool,
        /// What the drills workflow needs: start the schedules' task and read the report store
        #[arg(long)]
        workflow: bool,
        /// The schedule deploy file, for --schedule and --workflow
        #[arg(long, default_value = "schedule.yaml")]
        config: PathBuf,
        /// The report store (s3://bucket/prefix) written to (read, with only --workflow)
        #[arg(long)]
        report_store: Option<String>,
        /// The KMS key that signs reports (ARN or alias)
        #[arg(long)]
        sign_kms_key: Option<String>,
        /// What `backups check` reads for the AWS stores of --file (read-only)
        #[arg(long)]
        backups: bool,
        /// The backups file, for --backups
        #[arg(long = "file", value_name = "PATH", default_value = "backups.yaml")]
        backups_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create an Ed25519 signing key (mode 0600) and its public key (`<out>.pub`), and trust the public key
    /// (a copy in .stackdrill/keys/trusted/)
    Generate {
        /// Default: .stackdrill/keys/signing.key, or keys/reviewers/<NAME>.key for a reviewer (under
        /// $STACKDRILL_STATE_DIR when set)
        #[arg(long)]
        out: Option<PathBuf>,
        /// An operator's key signs reports; a reviewer's signs their sign-offs
        #[arg(long, value_enum, default_value_t)]
        role: crate::report::trust::Role,
        /// The key's name as verification shows it (required for a reviewer: their name)
        #[arg(long, required_if_eq("role", "reviewer"))]
        name: Option<String>,
    },
    /// Trust a public key (PEM): copy it into .stackdrill/keys/trusted/ under a name
    Trust {
        /// The public key file (SPKI PEM, as `keys generate` writes `<key>.pub`)
        public: PathBuf,
        /// Its name as verification shows it (default: the file's name)
        #[arg(long)]
        name: Option<String>,
        /// An operator key signs reports; a reviewer key signs sign-offs
        #[arg(long, value_enum, default_value_t)]
        role: crate::report::trust::Role,
    },
    /// The trusted keys: name, role, fingerprint
    List {
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum HeartbeatCommand {
    /// Create stackdrill.heartbeat on the drill's source and, with pg_cron 1.5+ there, a job writing it
    /// (idempotent)
    Install {
        /// The drill whose source gets the heartbeat, by name (drills/<NAME>.yaml) or path
        drill: String,
        /// How often the pg_cron job writes a row (whole seconds, 1 to 59)
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        every: std::time::Duration,
        /// Rows older than this are pruned: the backup window (retention) of the source
        #[arg(long, default_value = "35d", value_parser = humantime::parse_duration)]
        keep: std::time::Duration,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// The heartbeat on the drill's source: table, rows, newest row's age, the pg_cron job
    Status {
        /// The drill, by name or path
        drill: String,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Unschedule the pg_cron job and drop stackdrill.heartbeat from the drill's source (idempotent)
    Remove {
        /// The drill, by name or path
        drill: String,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Write the heartbeat from here until stopped (SIGINT/SIGTERM): the writer where the source has no
    /// pg_cron 1.5+ (reconnects on failure)
    Run {
        /// The drill, by name or path
        drill: String,
        /// How often to write a row
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        every: std::time::Duration,
        /// Rows older than this are pruned (once a minute): the backup window of the source
        #[arg(long, default_value = "35d", value_parser = humantime::parse_duration)]
        keep: std::time::Duration,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BackupsCommand {
    /// Read each store in backups.yaml (newest backup's age, point-in-time recovery, retention,
    /// encryption), measure it against its objectives, and append one signed, chained
    /// `stackdrill.backup-posture/v1` record to the report store (exit 0 met, 1 not met, 2 could not read)
    Check(BackupsCheckArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BackupsCheckArgs {
    /// The stores and their objectives
    #[arg(long, default_value = "backups.yaml")]
    pub(crate) file: PathBuf,
    /// Only these stores, by name (repeatable; default: every store in the file)
    #[arg(long = "store", value_name = "NAME")]
    pub(crate) stores: Vec<String>,
    /// Afterwards write the store's state as OpenMetrics text here, atomically (node_exporter's textfile
    /// collector): with the drills' series, per store backup posture met, backup age, PITR lag
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Also publish each store's BackupPostureMet, BackupAgeSeconds and PitrLagSeconds (dimension Store)
    /// to CloudWatch in this namespace, beside the drill metrics (best effort: a failure is a warning)
    #[arg(long, value_name = "NAMESPACE")]
    pub(crate) cloudwatch_namespace: Option<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    /// Output: text for people, or json for tools
    #[arg(long, value_enum, default_value_t)]
    pub(crate) output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunbookCommand {
    /// Runbooks whose drills have not passed within their cadence, and drills citing a missing runbook
    Check {
        #[command(flatten)]
        store: StoreArgs,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Each scheduled drill's next runs, last result, and whether it is overdue (no pass within its cadence)
    List {
        /// Drill names or paths (default: every drill in drills/ with a `schedule:`)
        drills: Vec<String>,
        /// How many upcoming runs to show
        #[arg(long, default_value_t = 3)]
        count: usize,
        #[command(flatten)]
        store: StoreArgs,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Run due drills on this machine until stopped. SIGTERM/SIGINT: no new runs; running drills tear down
    /// and write their reports, then it exits
    Run(ScheduleRunArgs),
    /// Create, update and delete EventBridge Scheduler schedules, one per scheduled drill, each starting
    /// `stackdrill drill run <name>` as an ECS task
    Deploy {
        /// Where the schedules go and what they start (group, role, ECS cluster, task definition, subnets)
        #[arg(long, default_value = "schedule.yaml")]
        config: PathBuf,
        /// Show what would change; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Output: text for people, or json for tools
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Print the ECS RunTask input (for `aws ecs run-task --cli-input-json`) that runs `drill run <ARGS>` now in
    /// the schedules' task definition and private network: how CI runs drills inside the VPC
    TaskInput {
        /// The schedules' deployment file
        #[arg(long, default_value = "schedule.yaml")]
        config: PathBuf,
        /// What follows `drill run` in the task (drill names, `--due`, `--trigger ci`, ...)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        run_args: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ScheduleRunArgs {
    /// Drill names or paths (default: every drill in drills/ with a `schedule:`; files are re-read each minute)
    pub(crate) drills: Vec<String>,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    /// How many drills run at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) concurrency: u16,
    /// Start each run after a random delay up to this long (spreads load when many drills share a minute)
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) jitter: std::time::Duration,
    /// After downtime or an interrupted run: run once for what was missed, or skip to the next occurrence
    #[arg(long, value_enum, default_value_t = CatchUp::RunOnce)]
    pub(crate) catch_up: CatchUp,
    /// An occurrence this late still counts as on time (not missed)
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) grace: std::time::Duration,
    /// How often to log that the scheduler is alive
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub(crate) heartbeat: std::time::Duration,
    /// Serve the store's state and the scheduler's heartbeat as OpenMetrics on http://ADDR/metrics
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_listen: Option<String>,
}

/// `--catch-up`: what to do about occurrences missed while no scheduler was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CatchUp {
    /// Run once for everything missed, then keep the cadence
    RunOnce,
    /// Forget what was missed; wait for the next occurrence
    Skip,
}

impl From<CatchUp> for crate::schedule::daemon::CatchUp {
    fn from(c: CatchUp) -> Self {
        match c {
            CatchUp::RunOnce => Self::RunOnce,
            CatchUp::Skip => Self::Skip,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum IfRunning {
    Refuse,
    Wait,
    Parallel,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// The CLI as clap sees it is consistent, and every subcommand and every flag says what it is for in
    /// `--help` (a flag without a description is a flag nobody can use without reading the source).
    #[test]
    fn every_command_and_flag_has_a_description() {
        let cmd = super::Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        let mut stack = vec![(String::from("stackdrill"), cmd)];
        while let Some((path, c)) = stack.pop() {
            if path != "stackdrill" && c.get_about().is_none() {
                missing.push(format!("`{path}` (the command)"));
            }
            for a in c.get_arguments() {
                let builtin = matches!(a.get_id().as_str(), "help" | "version");
                if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!(
                        "`{path}` {}",
                        a.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| format!("<{}>", a.get_id()))
                    ));
                }
            }
            for sub in c.get_subcommands() {
                stack.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
        }
        missing.sort();
        assert!(missing.is_empty(), "without a description:\n{}", missing.join("\n"));
    }
}
