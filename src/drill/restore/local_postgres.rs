//! `local-postgres`: restore a base backup plus archived WAL into a scratch cluster on this machine.
//!
//! Window: [end of the oldest base backup, newest commit in the archive]. The scratch gets its own
//! directory under `scratch-root`, listens on no TCP address (only a socket inside its 0700 directory),
//! never archives, and is removed on every exit path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::TeardownStatus;
use super::{BackupUsed, Endpoint, RestoreProvider, Teardown};
use crate::config::{LocalPostgresSpec, Timeouts};
use crate::drill::error::{DrillError, RestoreError, fmt_time};
use crate::drill::events::EventSink;
use crate::drill::target::{Recovery, ResolvedTarget, Window};
use crate::pg::{self, Archive, BaseBackup, Cluster, PgBin, RunAs, Segment};

pub(crate) struct LocalPostgres {
    spec: LocalPostgresSpec,
    drill: String,
    run: String,
    database: String,
    bin: PgBin,
    as_user: RunAs,
    events: EventSink,
    /// How long the scratch may live before `drill cleanup` may sweep it.
    lifetime: Duration,
    teardown_deadline: Duration,
    ready_deadline: Duration,
    /// Base backups as listed when the window was computed; `plan` chooses among these.
    backups: Vec<BaseBackup>,
    backup: Option<BaseBackup>,
    scratch: Option<Scratch>,
    /// What was switched off in the restored copy, for the report.
    neutralised: Vec<String>,
    /// The chosen base backup's bytes, and those plus the archived WAL after its start (known after `plan`).
    backup_bytes: u64,
    restored_bytes: Option<u64>,
    /// Where the restore's time went (seconds, and what was done), for the report's details.
    timings: Vec<(&'static str, String)>,
    /// When the scratch server was started (its recovery's clock starts here).
    started: Option<Instant>,
}

struct Scratch {
    cluster: Cluster,
    stop_copy: Arc<AtomicBool>,
    /// The copy into the scratch while it runs; teardown waits for it if the restore was abandoned.
    copy: Option<tokio::task::JoinHandle<Result<(), pg::CopyError>>>,
}

/// Where the prefetching restore_command keeps segments fetched ahead of replay, inside the scratch.
const AHEAD: &str = "wal-ahead";
const RESTORE_SCRIPT: &str = "restore-wal.sh";

impl LocalPostgres {
    /// Finds the binaries and the OS user; paths are made absolute against the working directory.
    pub(crate) fn new(
        spec: &LocalPostgresSpec,
        drill: &str,
        run: &str,
        default_database: Option<&str>,
        events: EventSink,
        t: &Timeouts,
        lifetime: std::time::Duration,
    ) -> Result<LocalPostgres, DrillError> {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut spec = spec.clone();
        spec.base_backups = abs(&spec.base_backups);
        spec.wal_archive = abs(&spec.wal_archive);
        spec.scratch_root = abs(&spec.scratch_root);
        let bin = PgBin::find()?;
        let as_user = RunAs::resolve(&spec.os_user)?;
        let database =
            spec.database.clone().or(default_database.map(str::to_string)).unwrap_or_else(|| "postgres".into());
        Ok(LocalPostgres {
            spec,
            drill: drill.to_string(),
            run: run.to_string(),
            database,
            bin,
            as_user,
            events,
            lifetime,
            teardown_deadline: t.teardown,
            ready_deadline: t.ready,
            backups: Vec::new(),
            backup: None,
            scratch: None,
            neutralised: Vec::new(),
            backup_bytes: 0,
            restored_bytes: None,
            timings: Vec::new(),
            started: None,
        })
    }

    /// The newest commit in the archived WAL (read with pg_waldump from the newest segments).
    async fn latest_commit(&self) -> Result<DateTime<Utc>, DrillError> {
        let dir = &self.spec.wal_archive;
        let archive = Archive::scan(dir)
            .map_err(|e| DrillError::NoWindow(format!("cannot read the WAL archive `{}`: {e}", dir.display())))?;
        let newest = archive.newest().ok_or_else(|| DrillError::NoWindow(format!("no WAL in `{}`", dir.display())))?;
        archive
            .last_commit_at_or_before(&self.bin, &self.as_user, newest, 32)
            .await
            .ok_or_else(|| DrillError::NoWindow("no commit found in the newest archived WAL".into()))
    }

    fn progress(&self, phase: &'static str, msg: impl Into<String>) {
        self.events.progress(&self.drill, phase, msg);
    }

    /// Fails with the missing segment when the archive cannot carry replay from `backup` to `recovery`.
    async fn check_wal_continuity(&self, backup: &BaseBackup, recovery: Recovery) -> Result<(), RestoreError> {
        let archive = Archive::scan(&self.spec.wal_archive)
            .map_err(|e| RestoreError::Error(format!("cannot read the WAL archive: {e}")))?;
        let Some(start) = backup.start_segment(archive.seg_size) else {
            return Err(RestoreError::Failed(format!("base backup {} names no start WAL segment", backup.id)));
        };
        // Segments shipped inside the backup (pg_wal, streamed while it ran) count as present.
        let in_backup: Vec<Segment> = std::fs::read_dir(backup.path.join("pg_wal"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| Segment::parse(&e.file_name().to_string_lossy(), archive.seg_size))
                    .collect()
            })
            .unwrap_or_default();
        let Some(newest) = archive.newest() else {
            return Err(RestoreError::Failed(format!("the WAL archive `{}` is empty", archive.dir.display())));
        };
        let mut seg = start;
        while seg <= newest {
            if !archive.contains(seg) && !in_backup.contains(&seg) {
                break;
            }
            seg.segno += 1;
        }
        if seg > newest {
            return Ok(());
        }
        let missing = seg.name(archive.seg_size);
        let before = Segment { tli: seg.tli, segno: seg.segno.saturating_sub(1) };
        let reachable = archive.last_commit_at_or_before(&self.bin, &self.as_user, before, 8).await;
        let enough = match (recovery, reachable) {
            (Recovery::Time(t), Some(r)) => r >= t,
            _ => false,
        };
        if enough {
            return Ok(());
        }
        let upto = reachable.map(|r| format!("; replay could reach only {}", fmt_time(&r))).unwrap_or_default();
        Err(RestoreError::Failed(format!(
            "WAL segment {missing} is missing from the archive `{}`: replay from base backup {} cannot reach the target{upto}",
            archive.dir.display(),
            backup.id
        )))
    }

    /// Copies the planned backup into `data` with `parallel` threads, verifying each file against the
    /// manifest in the same read, giving files to the server's OS user.
    fn spawn_copy(
        &self,
        plan: Arc<pg::CopyPlan>,
        to: PathBuf,
        stop: Arc<AtomicBool>,
        done: Arc<AtomicU64>,
    ) -> tokio::task::JoinHandle<Result<(), pg::CopyError>> {
        let jobs = self.spec.parallel;
        let as_user = self.as_user.clone();
        tokio::task::spawn_blocking(move || pg::copy_verified(&plan, &to, jobs, &as_user, &stop, &done))
    }

    /// Recovery's phases after promotion, from the server log and the restore_command's fetch log.
    fn record_recovery_times(&mut self, cluster: &Cluster) {
        if let Some(started) = self.started {
            self.timings.push(("recovery_seconds", format!("{:.3}", started.elapsed().as_secs_f64())));
        }
        let log = std::fs::read_to_string(cluster.log()).unwrap_or_default();
        if let Some(t) = pg::recovery_times(&log) {
            self.timings.push(("startup_seconds", format!("{:.3}", t.startup)));
            self.timings.push(("replay_seconds", format!("{:.3}", t.replay)));
            self.timings.push(("promotion_seconds", format!("{:.3}", t.promotion)));
        }
        let fetched = self
            .as_user
            .as_fs_user(|| std::fs::read_to_string(cluster.dir.join(AHEAD).join(pg::FETCH_LOG)))
            .unwrap_or_default();
        let (segments, waited) = pg::fetch_wait(&fetched);
        self.timings.push(("wal_segments_fetched", segments.to_string()));
        self.timings.push(("wal_fetch_wait_seconds", format!("{waited:.3}")));
    }

    /// Settings that make the restored copy inert before it starts: it archives nothing, runs none of
    /// the backup's archive or recovery commands, starts no logical replication worker (a subscription
    /// would connect to the real publisher and consume its slot), listens on no TCP address, follows no
    /// primary, and preloads only allow-listed libraries (no pg_cron or other job runner). Returns the
    /// settings and what they neutralise, in words.
    fn inert_settings(&self, data: &Path) -> (Vec<(&'static str, String)>, Vec<String>) {
        // Read as the OS user: the files are its own, and a symlink it planted reaches nothing more.
        let configured = self.as_user.as_fs_user(|| Ok(preload_libraries(data))).unwrap_or_default();
        let (kept, dropped): (Vec<String>, Vec<String>) =
            configured.into_iter().partition(|l| self.spec.allow_preload.iter().any(|a| a == l));
        let mut said = vec![
            "archive_mode off, archive_command empty: the copy archives nothing".to_string(),
            "archive_cleanup_command and recovery_end_command empty: none of the backup's commands run; \
             restore_command is stackdrill's own (copy from the WAL archive)"
                .to_string(),
            "max_logical_replication_workers = 0: no subscription connects to its publisher".to_string(),
            "primary_conninfo and primary_slot_name empty, listen_addresses empty: no network peer".to_string(),
        ];
        if dropped.is_empty() {
            said.push(format!("shared_preload_libraries = '{}' (allow-listed)", kept.join(",")));
        } else {
            said.push(format!(
                "shared_preload_libraries: {} not loaded (kept: {})",
                dropped.join(", "),
                if kept.is_empty() { "none".to_string() } else { kept.join(", ") }
            ));
        }
        let settings = vec![
            ("archive_mode", "off".to_string()),
            ("archive_command", String::new()),
            ("archive_cleanup_command", String::new()),
            ("recovery_end_command", String::new()),
            ("max_logical_replication_workers", "0".into()),
            ("primary_conninfo", String::new()),
            ("primary_slot_name", String::new()),
            ("shared_preload_libraries", kept.join(",")),
        ];
        (settings, said)
    }

    /// After promotion, before anything else connects: every subscription is disabled and detached from
    /// its slot (`slot_name = NONE`), so even a later `DROP SUBSCRIPTION` cannot drop the publisher's
    /// slot. Never `DROP SUBSCRIPTION` here: that would connect to the publisher and drop its slot.
    async fn disable_subscriptions(&mut self, cluster: &Cluster) -> Result<(), RestoreError> {
        let admin = pg::connect(&cluster.client_config(&self.spec.user, &self.database))
            .await
            .map_err(|e| RestoreError::Error(format!("cannot connect to the scratch to neutralise it: {e}")))?;
        let subs = admin
            .query(
                "select s.subname, d.datname from pg_subscription s join pg_database d on d.oid = s.subdbid \
                 order by 2, 1",
                &[],
            )
            .await
            .map_err(|e| RestoreError::Error(format!("cannot list subscriptions in the scratch: {e}")))?;
        for row in subs {
            let (sub, db): (String, String) = (row.get(0), row.get(1));
            let client = pg::connect(&cluster.client_config(&self.spec.user, &db))
                .await
                .map_err(|e| RestoreError::Error(format!("cannot connect to database `{db}` in the scratch: {e}")))?;
            let name = sub.replace('"', "\"\"");
            client
                .batch_execute(&format!(
                    "alter subscription \"{name}\" disable; alter subscription \"{name}\" set (slot_name = none)"
                ))
                .await
                .map_err(|e| {
                    let e = crate::drill::verify::db_error(&e);
                    RestoreError::Error(format!("cannot disable subscription `{sub}` in `{db}`: {e}"))
                })?;
            self.neutralised.push(format!(
                "subscription `{sub}` in database `{db}` disabled and detached from its slot (the publisher's slot \
                 was not touched)"
            ));
        }
        Ok(())
    }

    fn recovery_failure(&self, cluster: &Cluster) -> String {
        let tail = cluster.log_tail(60);
        let missing = tail.iter().rev().find_map(|l| {
            let rest = l.split("cannot stat '").nth(1)?;
            let path = rest.split('\'').next()?;
            let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
            (name.len() == 24 && name.chars().all(|c| c.is_ascii_hexdigit())).then_some(name)
        });
        let fatal = tail.iter().rev().find(|l| l.contains("FATAL:") || l.contains("PANIC:")).map(|l| {
            l.split_once("FATAL:").or_else(|| l.split_once("PANIC:")).map_or(l.as_str(), |(_, m)| m).trim().to_string()
        });
        let mut reason = format!(
            "the scratch server stopped during recovery: {}",
            fatal.unwrap_or_else(|| "no FATAL line in its log".into())
        );
        if let Some(m) = missing {
            reason.push_str(&format!("; the last WAL segment requested from the archive and not found was {m}"));
        }
        reason
    }
}

#[async_trait::async_trait]
impl RestoreProvider for LocalPostgres {
    fn name(&self) -> &'static str {
        "local-postgres"
    }

    fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("base_backups", self.spec.base_backups.display().to_string()),
            ("wal_archive", self.spec.wal_archive.display().to_string()),
            ("server_version", self.bin.version.clone()),
            ("os_user", self.as_user.name()),
        ];
        if let Some(b) = self.restored_bytes {
            v.push((crate::drill::forecast::RESTORED_BYTES, b.to_string()));
        }
        v.extend(self.timings.iter().cloned());
        v
    }

    fn restored_bytes(&self) -> Option<u64> {
        self.restored_bytes
    }

    async fn window(&mut self) -> Result<Window, DrillError> {
        self.backups = pg::list_backups(&self.spec.base_backups)?;
        let earliest = self.backups.first().map(|b| b.finished_at).ok_or_else(|| {
            DrillError::NoWindow(format!("no base backups in `{}`", self.spec.base_backups.display()))
        })?;
        let latest = self.latest_commit().await?;
        Ok(Window { earliest, latest: latest.max(earliest) })
    }

    async fn wait_recoverable(&mut self, t: DateTime<Utc>, source: &tokio_postgres::Client) -> Result<(), DrillError> {
        // Close the current segment so it is archived now rather than at archive_timeout.
        if let Err(e) = source.simple_query("select pg_switch_wal()").await {
            tracing::info!(error = %e, "cannot switch WAL on the source; waiting for archive_timeout");
        }
        while self.latest_commit().await? <= t {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    fn plan(&mut self, target: &ResolvedTarget) -> Result<BackupUsed, DrillError> {
        let chosen = match target.recovery {
            Recovery::End => self.backups.last(),
            Recovery::Time(t) => self.backups.iter().rev().find(|b| b.finished_at <= t),
        }
        .cloned()
        .ok_or_else(|| DrillError::NoWindow(format!("no base backup finished before {}", fmt_time(&target.time))))?;
        let used = BackupUsed {
            id: chosen.id.clone(),
            location: chosen.path.display().to_string(),
            started_at: chosen.started_at,
            finished_at: chosen.finished_at,
        };
        let wal = Archive::scan(&self.spec.wal_archive).ok().and_then(|a| {
            let start = chosen.start_segment(a.seg_size)?;
            Some(a.segments.iter().filter(|s| **s >= start).count() as u64 * a.seg_size)
        });
        self.backup_bytes = dir_size(&chosen.path);
        self.restored_bytes = Some(self.backup_bytes + wal.unwrap_or(0));
        self.backup = Some(chosen);
        Ok(used)
    }

    async fn restore(&mut self, target: &ResolvedTarget) -> Result<(), RestoreError> {
        let backup = self.backup.clone().ok_or_else(|| RestoreError::Error("restore before plan".into()))?;
        let failed = |e: &dyn std::fmt::Display| {
            RestoreError::Failed(format!("base backup {} failed verification: {e}", backup.id))
        };
        // Before anything is written: the manifest read, and the files present against those it lists
        // (names and sizes, metadata only). A file added, removed or resized fails here, with no scratch.
        self.progress("restore", format!("checking base backup {} against its backup_manifest", backup.id));
        let (as_user, path) = (self.as_user.clone(), backup.path.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let manifest = pg::Manifest::read(&as_user, &path).map_err(|e| (true, e))?;
            let plan = pg::CopyPlan::new(&path, &manifest).map_err(|e| match e {
                pg::CopyError::Mismatch(_) => (true, e.to_string()),
                _ => (false, e.to_string()),
            })?;
            Ok::<_, (bool, String)>((manifest.algorithms(), plan))
        })
        .await
        .map_err(|e| RestoreError::Error(format!("the manifest check ended unexpectedly: {e}")))?;
        let (algorithms, plan) = match checked {
            Ok(v) => v,
            Err((true, e)) => return Err(failed(&e)),
            Err((false, e)) => return Err(RestoreError::Error(format!("copying the base backup failed: {e}"))),
        };
        self.check_wal_continuity(&backup, target.recovery).await?;

        let short: String = self.run.chars().take(8).collect();
        let cluster =
            super::make_scratch_dir(&self.spec.scratch_root, &self.drill, &self.run, self.lifetime, &self.as_user)?;
        let stop_copy = Arc::new(AtomicBool::new(false));
        self.scratch = Some(Scratch { cluster: cluster.clone(), stop_copy: stop_copy.clone(), copy: None });

        // One read of each data file: copied and checksummed together, in parallel. Meanwhile
        // pg_verifybackup checks the rest (the manifest's own checksum, the WAL the backup needs, parsed)
        // without reading the data files.
        let copy_clock = Instant::now();
        let (bin, as_user, path) = (self.bin.clone(), self.as_user.clone(), backup.path.clone());
        let mut wal_check = tokio::spawn(async move {
            let clock = Instant::now();
            let r = pg::verify_wal(&bin, &as_user, &path).await;
            (r, clock.elapsed())
        });
        let done = Arc::new(AtomicU64::new(0));
        let total = plan.bytes;
        let workers = self.spec.parallel;
        let handle = self.spawn_copy(Arc::new(plan), cluster.data(), stop_copy.clone(), done.clone());
        let (events, drill) = (self.events.clone(), self.drill.clone());
        let Some(scratch) = self.scratch.as_mut() else {
            return Err(RestoreError::Error("the scratch was not recorded before the copy".into()));
        };
        let copy = scratch.copy.insert(handle);
        let mut wal_result = None;
        let result = loop {
            tokio::select! {
                r = &mut *copy => break r,
                r = &mut wal_check, if wal_result.is_none() => {
                    // A WAL check that fails ends the copy: the backup is not restorable either way.
                    if matches!(&r, Ok((Err(_), _)) | Err(_)) {
                        stop_copy.store(true, Ordering::Relaxed);
                    }
                    wal_result = Some(r);
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    let copied = format!(
                        "copying and verifying base backup ({workers} workers, {algorithms}): {} of {}",
                        bytes(done.load(Ordering::Relaxed)),
                        bytes(total)
                    );
                    events.progress(&drill, "restore", copied);
                }
            }
        };
        scratch.copy = None;
        let copy_seconds = copy_clock.elapsed().as_secs_f64();
        let wal_result = match wal_result {
            Some(r) => r,
            None => wal_check.await,
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e @ pg::CopyError::Mismatch(_))) => return Err(failed(&e)),
            // Stopped because the WAL check failed: that failure is the reason.
            Ok(Err(pg::CopyError::Interrupted)) if matches!(&wal_result, Ok((Err(_), _))) => {}
            Ok(Err(e)) => return Err(RestoreError::Error(format!("copying the base backup failed: {e}"))),
            Err(e) => return Err(RestoreError::Error(format!("the copy task ended unexpectedly: {e}"))),
        }
        let wal_seconds = match wal_result {
            Ok((Ok(()), took)) => took.as_secs_f64(),
            Ok((Err(e), _)) => return Err(failed(&e)),
            Err(e) => return Err(RestoreError::Error(format!("the WAL check ended unexpectedly: {e}"))),
        };
        self.timings = vec![
            ("parallel", workers.to_string()),
            ("checksums", algorithms),
            ("copy_verify_seconds", format!("{copy_seconds:.3}")),
            ("wal_check_seconds", format!("{wal_seconds:.3}")),
        ];

        let data = cluster.data();
        for stale in ["postmaster.pid", "standby.signal", "backup_manifest"] {
            let _ = std::fs::remove_file(data.join(stale));
        }
        self.as_user.create_file(&data.join("recovery.signal"), b"", 0o600)?;
        // restore_command: stackdrill's script in the scratch, which copies the next segments ahead of
        // replay (`parallel` at a time). The archive path is quoted inside the script; the script's path
        // goes into restore_command, where `%` and quotes would change its meaning.
        let script = cluster.dir.join(RESTORE_SCRIPT);
        let script_text = script.display().to_string();
        if script_text.contains(['"', '\'', '%', '\n', '\\', '$', '`']) {
            return Err(RestoreError::Error(format!(
                "the scratch path `{}` has characters unsafe in restore_command",
                cluster.dir.display()
            )));
        }
        let seg_size = Archive::scan(&self.spec.wal_archive).map(|a| a.seg_size).unwrap_or(16 * 1024 * 1024);
        let ahead = cluster.dir.join(AHEAD);
        self.as_user.make_private_dir(&ahead)?;
        let body = pg::prefetching_restore_script(&self.spec.wal_archive, &ahead, self.spec.parallel, seg_size);
        self.as_user.create_file(&script, body.as_bytes(), 0o700)?;
        let mut settings = cluster.base_settings("");
        settings.extend([
            ("restore_command", format!("/bin/sh \"{script_text}\" %f %p")),
            ("recovery_target_action", "promote".into()),
            ("recovery_target_timeline", "latest".into()),
            ("cluster_name", format!("stackdrill-scratch-{short}")),
            ("logging_collector", "off".into()),
            // Millisecond timestamps: the report's replay and promotion times are read from this log.
            ("log_line_prefix", "%m [%p] ".into()),
            // A scratch is thrown away after the drill: nothing in it needs to survive a crash of this
            // machine. Without fsync the server skips syncing the whole copied data directory at start-up
            // and its checkpoints do not wait on the disk; what is verified (the bytes, the replay) is the same.
            ("fsync", "off".into()),
        ]);
        let (inert, neutralised) = self.inert_settings(&data);
        settings.extend(inert);
        self.neutralised = neutralised;
        if let Recovery::Time(t) = target.recovery {
            settings.push(("recovery_target_time", t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()));
            settings.push(("recovery_target_inclusive", "true".into()));
        }
        cluster.apply_settings(&self.as_user, &settings)?;
        self.progress("restore", "starting the scratch server in recovery");
        self.started = Some(Instant::now());
        cluster.start(&self.bin, &self.as_user).await?;
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<super::Restored, RestoreError> {
        self.wait_endpoint().await.map(|ep| super::Restored::Postgres(Box::new(ep)))
    }

    fn neutralised(&self) -> Vec<String> {
        self.neutralised.clone()
    }

    fn rpo_floor(&self) -> Option<(DateTime<Utc>, &'static str)> {
        let basis = "upper bound: no transaction was replayed after the base backup, so the target minus the \
                     backup's start";
        self.backup.as_ref().map(|b| (b.started_at, basis))
    }

    async fn teardown(&mut self) -> Teardown {
        let Some(mut scratch) = self.scratch.take() else {
            return Teardown {
                status: TeardownStatus::NothingToDo,
                at: Utc::now(),
                detail: "no scratch was created".into(),
            };
        };
        scratch.stop_copy.store(true, Ordering::Relaxed);
        if let Some(copy) = scratch.copy.take() {
            let _ = copy.await;
        }
        super::remove_scratch_cluster(
            &scratch.cluster,
            &self.bin,
            &self.as_user,
            &self.drill,
            &self.run,
            self.teardown_deadline,
        )
        .await
    }
}

impl LocalPostgres {
    /// Waits until the restored database accepts queries as a primary: how to reach it.
    async fn wait_endpoint(&mut self) -> Result<Endpoint, RestoreError> {
        let cluster =
            self.scratch.as_ref().map(|s| s.cluster.clone()).ok_or_else(|| RestoreError::Error("no scratch".into()))?;
        let config = cluster.client_config(&self.spec.user, &self.database);
        let start = Instant::now();
        let mut seen_running = false;
        let mut last_note = Instant::now();
        let mut client: Option<tokio_postgres::Client> = None;
        loop {
            let running = cluster.is_running();
            seen_running |= running;
            if !running && (seen_running || start.elapsed() > Duration::from_secs(10)) {
                return Err(RestoreError::Failed(self.recovery_failure(&cluster)));
            }
            if running && client.is_none() {
                // Connections are accepted once recovery is consistent (hot standby); keep the one we get.
                client =
                    tokio::time::timeout(Duration::from_secs(5), pg::connect(&config)).await.ok().and_then(Result::ok);
            }
            if let Some(c) = &client {
                match c.query_one("select pg_is_in_recovery()", &[]).await {
                    Err(_) => client = None,
                    Ok(row) => {
                        if !row.get::<_, bool>(0) {
                            self.record_recovery_times(&cluster);
                            self.disable_subscriptions(&cluster).await?;
                            let outbound = super::outbound::neutralise_cluster(&cluster, &self.spec.user).await?;
                            self.neutralised.extend(outbound);
                            return Ok(Endpoint {
                                config: config.clone(),
                                tls: crate::config::TlsSpec::Disable,
                                server_name: None,
                                credential: None,
                                display: format!(
                                    "{}/.s.PGSQL.{} (database {})",
                                    cluster.dir.display(),
                                    cluster.port,
                                    self.database
                                ),
                            });
                        }
                    }
                }
            }
            if start.elapsed() > self.ready_deadline {
                return Err(RestoreError::Failed(format!(
                    "recovery did not finish within {}",
                    humantime::format_duration(self.ready_deadline)
                )));
            }
            if last_note.elapsed() > Duration::from_secs(2) {
                self.progress("ready", format!("replaying WAL ({:.0}s)", start.elapsed().as_secs_f64()));
                last_note = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(e.path()),
                    Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                    Err(_) => {}
                }
            }
        }
    }
    total
}

/// The libraries `shared_preload_libraries` names in the restored configuration: the last setting in
/// `postgresql.conf`, then `postgresql.auto.conf` (later lines win, as the server reads them).
fn preload_libraries(data: &Path) -> Vec<String> {
    let mut value = String::new();
    for file in ["postgresql.conf", "postgresql.auto.conf"] {
        let text = std::fs::read_to_string(data.join(file)).unwrap_or_default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some(rest) = line.strip_prefix("shared_preload_libraries") else { continue };
            let rest = rest.trim_start();
            let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
            value = rest.trim_matches('\'').to_string();
        }
    }
    value.split(',').map(|l| l.trim().trim_matches('"').to_string()).filter(|l| !l.is_empty()).collect()
}

#[async_trait::async_trait]
impl super::registry::ProviderKind for LocalPostgresSpec {
    async fn build(&self, ctx: &super::registry::BuildCtx<'_>) -> Result<super::registry::Built, DrillError> {
        let (spec, t) = (ctx.spec, &ctx.spec.timeouts);
        let provider =
            LocalPostgres::new(self, &spec.name, ctx.run_id, ctx.default_db(), ctx.events.clone(), t, ctx.lifetime)?;
        Ok(super::registry::Built::alone(provider))
    }

    fn local_scratch(&self) -> Option<(&std::path::Path, &str)> {
        Some((&self.scratch_root, &self.os_user))
    }

    fn scratch_text(&self, name: &str, _: &crate::config::DrillSpec, _: &str, _: Option<&str>) -> String {
        format!("{name} under {} (socket only)", self.scratch_root.display())
    }

    fn plan_timeout(&self) -> Duration {
        Duration::from_secs(5 * 60)
    }
}
