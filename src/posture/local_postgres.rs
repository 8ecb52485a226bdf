//! The local PostgreSQL reader: the newest base backup's age and the oldest's (retention) from the
//! base-backup directory; archiving alive or failing (`pg_stat_archiver`: the last archived against the
//! last failed), the `.ready` backlog and its age (the point-in-time recovery lag) over the cluster's unix
//! socket in a read-only, time-bounded session; encryption recorded as not applicable.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::figure::{at_least, at_most, count_at_most, unread};
use super::reader::PostureError;
use crate::config::{LocalPostureSpec, PostureObjectives};
use crate::report::posture::{Figure, Status};

pub(super) async fn read(spec: &LocalPostureSpec, o: &PostureObjectives, now: DateTime<Utc>) -> Vec<Figure> {
    let mut figures = backups(spec, o, now).await;
    figures.extend(archiver(spec, o).await);
    figures.push(Figure {
        name: "encryption".into(),
        value: "not applicable".into(),
        number: None,
        objective: None,
        status: Status::NotApplicable,
        detail: Some(format!("base backups are plain files in `{}`", spec.base_backups.display())),
    });
    figures
}

fn human(o: Option<Duration>) -> Option<String> {
    o.map(|d| humantime::format_duration(d).to_string())
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `backup-age` (the newest base backup's) and `retention` (the oldest's).
async fn backups(spec: &LocalPostureSpec, o: &PostureObjectives, now: DateTime<Utc>) -> Vec<Figure> {
    let dir = spec.base_backups.clone();
    let listed = tokio::task::spawn_blocking(move || crate::pg::list_backups(&dir)).await;
    let listed = match listed {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            let why = PostureError::from(e).detail();
            let mut f =
                vec![unread("backup-age", human(Some(o.max_backup_age)).map(|h| format!("≤ {h}")), why.clone())];
            if o.min_retention.is_some() {
                f.push(unread("retention", human(o.min_retention).map(|h| format!("≥ {h}")), why));
            }
            return f;
        }
        Err(e) => return vec![unread("backup-age", None, format!("the backup listing did not finish: {e}"))],
    };
    let (Some(newest), Some(oldest)) = (listed.last(), listed.first()) else {
        let mut f = at_most("backup-age", f64::INFINITY, Some(o.max_backup_age), None);
        f.value = "none".into();
        f.number = None;
        f.status = Status::NotMet;
        f.detail = Some(format!("no complete base backup in `{}`", spec.base_backups.display()));
        return vec![f];
    };
    let age = |t: DateTime<Utc>| (now - t).num_milliseconds() as f64 / 1000.0;
    let mut f = vec![at_most(
        "backup-age",
        age(newest.finished_at),
        Some(o.max_backup_age),
        Some(format!("newest base backup `{}` finished {}", newest.id, when(newest.finished_at))),
    )];
    f.push(at_least(
        "retention",
        age(oldest.finished_at),
        o.min_retention,
        Some(format!(
            "{} base backups; the oldest, `{}`, finished {}",
            listed.len(),
            oldest.id,
            when(oldest.finished_at)
        )),
    ));
    f
}

/// What `pg_stat_archiver` and the archive status directory say.
struct Archiver {
    mode: String,
    last_archived: Option<(String, DateTime<Utc>)>,
    last_failed: Option<(String, DateTime<Utc>)>,
    failed_count: i64,
}

/// `archiving`, `wal-backlog` and `pitr-lag`.
async fn archiver(spec: &LocalPostureSpec, o: &PostureObjectives) -> Vec<Figure> {
    let names = ["archiving", "wal-backlog", "pitr-lag"];
    let client = match connect(spec).await {
        Ok(c) => c,
        Err(e) => return names.iter().map(|n| unread(n, None, e.detail())).collect(),
    };
    let mut out = Vec::new();
    match archiver_stats(&client).await {
        Ok(a) => out.push(stored(archiving(&a), &a, spec.wal_archive.as_deref())),
        Err(e) => out.push(unread("archiving", None, e.detail())),
    }
    let backlog = client
        .query_one(
            "select count(*)::int8, coalesce(extract(epoch from now() - min(modification))::float8, 0) \
             from pg_ls_archive_statusdir() where name like '%.ready'",
            &[],
        )
        .await
        .map_err(|source| PostureError::Query { what: "the archive status directory", source });
    match backlog {
        Ok(row) => {
            let n: i64 = row.get(0);
            let lag: f64 = row.get(1);
            out.push(count_at_most(
                "wal-backlog",
                n.max(0) as u64,
                ("segment", "segments"),
                o.max_wal_backlog,
                Some("WAL segments waiting to be archived (.ready in pg_wal/archive_status)".into()),
            ));
            out.push(at_most(
                "pitr-lag",
                lag,
                o.max_pitr_lag,
                Some(if n == 0 {
                    "every finished WAL segment is archived".into()
                } else {
                    "the oldest WAL segment waiting to be archived was written this long ago".into()
                }),
            ));
        }
        Err(e) => {
            out.push(unread("wal-backlog", None, e.detail()));
            out.push(unread("pitr-lag", human(o.max_pitr_lag).map(|h| format!("≤ {h}")), e.detail()));
        }
    }
    out
}

/// Archiving is alive when `archive_mode` is on and no failure came after the last archived segment.
fn archiving(a: &Archiver) -> Figure {
    let last = match &a.last_archived {
        Some((wal, t)) => format!("last archived `{wal}` at {}", when(*t)),
        None => "nothing archived yet".into(),
    };
    let objective = "archive_mode on, no failure since the last archived segment";
    if a.mode == "off" {
        return super::figure::state("archiving", "off", objective, false, Some("archive_mode is off".into()));
    }
    match &a.last_failed {
        Some((wal, failed)) if a.last_archived.as_ref().is_none_or(|(_, t)| failed > t) => super::figure::state(
            "archiving",
            &format!("failing since {}", when(*failed)),
            objective,
            false,
            Some(format!(
                "last failure at {} archiving `{wal}` ({} failures in all); {last}",
                when(*failed),
                a.failed_count
            )),
        ),
        _ => super::figure::state("archiving", "alive", objective, true, Some(last)),
    }
}

/// An archiver that reports success is alive only if what it archived is in the archive: an
/// `archive_command` of `/bin/true` succeeds and stores nothing. Checked when the file names the archive.
fn stored(f: Figure, a: &Archiver, archive: Option<&std::path::Path>) -> Figure {
    let (Some(dir), Some((wal, _)), Status::Met) = (archive, &a.last_archived, f.status) else { return f };
    let present = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with(wal.as_str())))
        .unwrap_or(false);
    if present {
        return f;
    }
    super::figure::state(
        "archiving",
        "not stored",
        "archive_mode on, no failure since the last archived segment",
        false,
        Some(format!(
            "pg_stat_archiver says `{wal}` was archived, but it is not in `{}`: the archive_command reports \
             success without storing the segment",
            dir.display()
        )),
    )
}

async fn archiver_stats(client: &tokio_postgres::Client) -> Result<Archiver, PostureError> {
    let row = client
        .query_one(
            "select current_setting('archive_mode'), last_archived_wal, last_archived_time, last_failed_wal, \
             last_failed_time, failed_count from pg_stat_archiver",
            &[],
        )
        .await
        .map_err(|source| PostureError::Query { what: "pg_stat_archiver", source })?;
    let pair = |w: Option<String>, t: Option<DateTime<Utc>>| w.zip(t);
    Ok(Archiver {
        mode: row.get(0),
        last_archived: pair(row.get(1), row.get(2)),
        last_failed: pair(row.get(3), row.get(4)),
        failed_count: row.get(5),
    })
}

/// A read-only, time-bounded session over the cluster's unix socket.
async fn connect(spec: &LocalPostureSpec) -> Result<tokio_postgres::Client, PostureError> {
    let mut c = tokio_postgres::Config::new();
    c.host_path(&spec.socket_dir)
        .port(spec.port)
        .user(&spec.user)
        .dbname(&spec.database)
        .application_name("stackdrill backups check")
        .options("-c default_transaction_read_only=on -c statement_timeout=30000")
        .connect_timeout(Duration::from_secs(10));
    crate::pg::connect(&c).await.map_err(|source| PostureError::Connect {
        socket: spec.socket_dir.display().to_string(),
        port: spec.port,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// `archive_command = '/bin/true'` succeeds and stores nothing: with the archive named, the segment the
    /// archiver last reports must be in it, or archiving is not met, naming the segment and the directory.
    #[test]
    fn a_segment_reported_archived_but_not_in_the_archive_is_not_stored() {
        let a = Archiver {
            mode: "on".into(),
            last_archived: Some(("000000010000000000000003".into(), t("2026-03-01T10:00:00Z"))),
            last_failed: None,
            failed_count: 0,
        };
        let dir = tempfile::tempdir().unwrap();
        let f = stored(archiving(&a), &a, Some(dir.path()));
        assert_eq!((f.status, f.value.as_str()), (Status::NotMet, "not stored"));
        let detail = f.detail.unwrap();
        assert!(detail.contains("000000010000000000000003") && detail.contains("reports success"), "{detail}");
        std::fs::write(dir.path().join("000000010000000000000003"), b"wal").unwrap();
        assert_eq!(stored(archiving(&a), &a, Some(dir.path())).status, Status::Met);
        // Without the archive named, the archiver's word is all there is.
        assert_eq!(stored(archiving(&a), &a, None).status, Status::Met);
    }

    /// A failure after the last archived segment is archiving that stopped, and the figure names the time
    /// of the last failure; a success after it is archiving alive again.
    #[test]
    fn a_failure_after_the_last_archived_segment_fails_naming_its_time() {
        let mut a = Archiver {
            mode: "on".into(),
            last_archived: Some(("000000010000000000000003".into(), t("2026-03-01T10:00:00Z"))),
            last_failed: Some(("000000010000000000000004".into(), t("2026-03-01T10:05:00Z"))),
            failed_count: 7,
        };
        let f = archiving(&a);
        assert_eq!(f.status, Status::NotMet);
        assert_eq!(f.value, "failing since 2026-03-01T10:05:00Z");
        assert!(f.detail.as_deref().unwrap().contains("last failure at 2026-03-01T10:05:00Z"), "{f:?}");
        a.last_archived = Some(("000000010000000000000004".into(), t("2026-03-01T10:06:00Z")));
        assert_eq!(archiving(&a).status, Status::Met);
        a.mode = "off".into();
        assert_eq!(archiving(&a).status, Status::NotMet);
    }
}
