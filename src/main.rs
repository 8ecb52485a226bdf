//! stackdrill: restore drills that prove backups come back, with reports auditors can trust.

mod aws;
mod cadence;
mod cli;
mod config;
mod crash;
mod demo;
mod drill;
mod iam;
mod lock;
#[cfg(test)]
mod module_map;
mod pg;
mod posture;
mod report;
mod schedule;
mod stack;
mod supabase;
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods,
    reason = "only ui/ prints; NO_COLOR and CI decide how it draws"
)]
mod ui;
mod userfile;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init(&args);
    let json = cli::wants_json(&args);
    // Drills run on worker threads; the SDK's deeply nested futures need more than tokio's 2 MiB default
    // in unoptimised builds (the main thread's 8 MiB, as here, is plenty).
    let runtime = match tokio::runtime::Builder::new_multi_thread().thread_stack_size(8 << 20).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            ui::print_error(&anyhow::anyhow!("cannot start the async runtime: {e}"), None);
            return ExitCode::from(cli::exit_codes::COULD_NOT_RUN);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            ui::print_error(&f.error, f.hint.as_deref());
            if json && !ui::stdout_written() {
                ui::Printer { format: ui::OutputFormat::Json }.json(&cli::error_json(&f));
            }
            ExitCode::from(f.code)
        }
    }
}
