//! `heartbeat install | status | remove | run <drill>`: the source's heartbeat, through the drill's own source
//! login (TLS, bounded sessions). See `drill/heartbeat.rs`.

use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::args::HeartbeatCommand;
use super::{Failure, exit_codes};
use crate::config::DrillSpec;
use crate::drill::heartbeat::{self, HeartbeatError, Writer};
use crate::drill::source::Session;
use crate::drill::{RunOptions, runner};
use crate::ui::Printer;

/// Rows older than `keep` are pruned this often by `heartbeat run`.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

pub(super) async fn run(cmd: HeartbeatCommand, aws: &crate::aws::AwsSettings) -> Result<u8, Failure> {
    match cmd {
        HeartbeatCommand::Install { drill, every, keep, output } => {
            let printer = Printer { format: output };
            let spec = load(&drill)?;
            // The interval is checked before anything is written.
            if every.is_zero() || keep.is_zero() {
                return Err(Failure::could_not_run(anyhow!("--every and --keep must be more than 0"), None));
            }
            let s = connect(&spec, aws).await?;
            let done = heartbeat::install(&s.client, every, keep).await.map_err(failure)?;
            if printer.is_json() {
                printer.json(&done);
            } else {
                printer.line(format!("{}: {} exists on {}", spec.name, done.table, s.record.endpoint));
                match &done.writer {
                    Writer::PgCron { version, schedule } => printer.line(format!(
                        "pg_cron {version}: job `{}` writes a row every {schedule} and prunes rows older than {}",
                        crate::drill::inert::HEARTBEAT_JOB,
                        humantime::format_duration(keep)
                    )),
                    Writer::Stackdrill { why } => printer.line(format!(
                        "{why}: `stackdrill heartbeat run {drill} --every {}` writes the rows",
                        humantime::format_duration(every)
                    )),
                }
            }
            Ok(exit_codes::OK)
        }
        HeartbeatCommand::Status { drill, output } => {
            let printer = Printer { format: output };
            let spec = load(&drill)?;
            let s = connect(&spec, aws).await?;
            let st = heartbeat::status(&s.client).await.map_err(failure)?;
            if printer.is_json() {
                printer.json(&st);
            } else if !st.table {
                printer.line(format!(
                    "{}: no heartbeat on {} (`stackdrill heartbeat install`)",
                    spec.name, s.record.endpoint
                ));
            } else {
                let newest = match (st.newest, st.age_seconds) {
                    (Some(n), Some(age)) => {
                        format!("newest {} ({age:.1}s ago)", n.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    }
                    _ => "no rows yet".into(),
                };
                printer.line(format!("{}: {} rows, {newest}", spec.name, st.rows));
                let writer = match (&st.pg_cron, &st.job) {
                    (Some(v), Some(j)) => format!(
                        "pg_cron {v}: job {} every {}, {}",
                        j.jobid,
                        j.schedule,
                        if j.active { "active" } else { "INACTIVE" }
                    ),
                    (Some(v), None) => format!("pg_cron {v}, no heartbeat job: `stackdrill heartbeat run` writes it"),
                    (None, _) => "no pg_cron here: `stackdrill heartbeat run` writes it".into(),
                };
                printer.line(writer);
            }
            Ok(exit_codes::OK)
        }
        HeartbeatCommand::Remove { drill, output } => {
            let printer = Printer { format: output };
            let spec = load(&drill)?;
            let s = connect(&spec, aws).await?;
            let r = heartbeat::remove(&s.client).await.map_err(failure)?;
            if printer.is_json() {
                printer.json(&r);
            } else {
                let what = match (r.job_unscheduled, r.table_dropped) {
                    (true, true) => "pg_cron job unscheduled, stackdrill.heartbeat dropped",
                    (false, true) => "stackdrill.heartbeat dropped",
                    (true, false) => "pg_cron job unscheduled (there was no table)",
                    (false, false) => "nothing to remove",
                };
                printer.line(format!("{}: {what}", spec.name));
                if let Some(why) = &r.schema_kept {
                    printer.line(format!("schema stackdrill kept: {why}"));
                }
            }
            Ok(exit_codes::OK)
        }
        HeartbeatCommand::Run { drill, every, keep } => {
            let spec = load(&drill)?;
            if every.is_zero() || keep.is_zero() {
                return Err(Failure::could_not_run(anyhow!("--every and --keep must be more than 0"), None));
            }
            write_until_stopped(&spec, aws, every, keep).await
        }
    }
}

fn failure(e: HeartbeatError) -> Failure {
    let hint = e.hint();
    Failure::could_not_run(e, hint)
}

fn load(drill: &str) -> Result<DrillSpec, Failure> {
    let path = super::drill::resolve_drill(drill)?;
    super::drill::load_all(&[path])?.pop().ok_or_else(|| Failure::could_not_run(anyhow!("no drill loaded"), None))
}

/// The drill's source session (its `source` block: credentials, TLS, bounds), named `stackdrill/<id>`.
async fn connect(spec: &DrillSpec, aws: &crate::aws::AwsSettings) -> Result<Session, Failure> {
    let opts = RunOptions::new("heartbeat", aws);
    let id = runner::new_run_id();
    match runner::connect_source(spec, &opts, None, &id).await? {
        Some((primary, _)) => Ok(primary),
        None => Err(Failure::could_not_run(
            anyhow!("drill `{}` has no `source` block: the heartbeat lives on the source", spec.name),
            Some("add `source:` (the live database the backups are of)".into()),
        )),
    }
}

/// `heartbeat run`: a row every `every` until SIGINT/SIGTERM; a lost session is reconnected at the next tick,
/// each failure logged (a gap in the heartbeat shows as a larger RPO, never as a smaller one).
async fn write_until_stopped(
    spec: &DrillSpec,
    aws: &crate::aws::AwsSettings,
    every: Duration,
    keep: Duration,
) -> Result<u8, Failure> {
    let cancel = super::drill::cancel_on_signals();
    // The first connection must work: a wrong file or login is an error now, not a log line forever.
    let mut session = Some(connect(spec, aws).await?);
    if let Some(s) = &session {
        heartbeat::beat(&s.client, keep, true).await.map_err(failure)?;
    }
    tracing::info!(drill = %spec.name, every = %humantime::format_duration(every), "writing the heartbeat");
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut pruned = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        if session.is_none() {
            match connect(spec, aws).await {
                Ok(s) => session = Some(s),
                Err(f) => {
                    tracing::warn!(drill = %spec.name, error = %f.error, "cannot reach the source; retrying");
                    continue;
                }
            }
        }
        let Some(s) = &session else { continue };
        let prune = pruned.elapsed() >= PRUNE_EVERY;
        match heartbeat::beat(&s.client, keep, prune).await {
            Ok(()) if prune => pruned = Instant::now(),
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(drill = %spec.name, error = %e, "heartbeat not written; reconnecting");
                session = None;
            }
        }
    }
    tracing::info!(drill = %spec.name, "heartbeat writer stopped");
    Ok(exit_codes::OK)
}
