//! The WAL archive: segment names, gaps, commit times read with `pg_waldump`, and the restore_command
//! that fetches segments ahead of replay (with what it and the server log say about where recovery's
//! time went).

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::bin::PgBin;
use super::user::RunAs;

/// A WAL segment: timeline and segment number (independent of the segment size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Segment {
    pub(crate) tli: u32,
    pub(crate) segno: u64,
}

impl Segment {
    /// Parses `TTTTTTTTXXXXXXXXYYYYYYYY`.
    pub(crate) fn parse(name: &str, seg_size: u64) -> Option<Segment> {
        if name.len() != 24 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let tli = u32::from_str_radix(&name[0..8], 16).ok()?;
        let hi = u64::from_str_radix(&name[8..16], 16).ok()?;
        let lo = u64::from_str_radix(&name[16..24], 16).ok()?;
        Some(Segment { tli, segno: hi * segments_per_id(seg_size) + lo })
    }

    pub(crate) fn name(&self, seg_size: u64) -> String {
        let per = segments_per_id(seg_size);
        format!("{:08X}{:08X}{:08X}", self.tli, self.segno / per, self.segno % per)
    }
}

fn segments_per_id(seg_size: u64) -> u64 {
    0x1_0000_0000 / seg_size
}

/// The segments present in an archive directory, sorted, with the segment size (from the files).
#[derive(Debug, Clone)]
pub(crate) struct Archive {
    pub(crate) dir: PathBuf,
    pub(crate) seg_size: u64,
    pub(crate) segments: Vec<Segment>,
}

impl Archive {
    pub(crate) fn scan(dir: &Path) -> std::io::Result<Archive> {
        let mut names = Vec::new();
        let mut seg_size = 16 * 1024 * 1024;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 24 && name.chars().all(|c| c.is_ascii_hexdigit()) {
                let len = entry.metadata()?.len();
                if len.is_power_of_two() && len >= 1024 * 1024 {
                    seg_size = len;
                }
                names.push(name);
            }
        }
        let mut segments: Vec<Segment> = names.iter().filter_map(|n| Segment::parse(n, seg_size)).collect();
        segments.sort();
        Ok(Archive { dir: dir.to_path_buf(), seg_size, segments })
    }

    pub(crate) fn newest(&self) -> Option<Segment> {
        self.segments.last().copied()
    }

    pub(crate) fn contains(&self, s: Segment) -> bool {
        self.segments.binary_search(&s).is_ok()
    }

    /// The newest commit time in segments at or before `upto`, scanning back at most `limit` segments.
    pub(crate) async fn last_commit_at_or_before(
        &self,
        bin: &PgBin,
        as_user: &RunAs,
        upto: Segment,
        limit: usize,
    ) -> Option<DateTime<Utc>> {
        let candidates: Vec<Segment> =
            self.segments.iter().rev().filter(|s| **s <= upto).take(limit).copied().collect();
        for seg in candidates {
            if let Some(t) = self.last_commit_in(bin, as_user, seg).await {
                return Some(t);
            }
        }
        None
    }

    async fn last_commit_in(&self, bin: &PgBin, as_user: &RunAs, seg: Segment) -> Option<DateTime<Utc>> {
        let mut cmd = as_user.command(&bin.path("pg_waldump"));
        cmd.arg("--rmgr=Transaction").arg("-p").arg(&self.dir).arg(seg.name(self.seg_size));
        // pg_waldump exits non-zero at the zero-filled end of a switched segment; its stdout is still valid.
        let out = cmd.output().await.ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().filter_map(commit_time).next_back()
    }
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The log a prefetching restore_command appends to, one line per segment asked for.
pub(crate) const FETCH_LOG: &str = "fetch.log";

/// A POSIX `sh` restore_command script: serves segment `$1` into `$2` — from `ahead` when it was fetched
/// there already, else from `archive` — then copies the next `depth` segments from the archive into `ahead`
/// in the background, each to a temporary name renamed when whole (a `mkdir` lock per segment, so no two
/// copies of one segment run and a half-written segment is never served). Replay then finds the next
/// segment waiting instead of waiting for its copy. Each call's wait is logged in `ahead/fetch.log`.
pub(crate) fn prefetching_restore_script(archive: &Path, ahead: &Path, depth: usize, seg_size: u64) -> String {
    let hex24 = "[0-9A-F]".repeat(24);
    format!(
        r#"#!/bin/sh
# stackdrill's restore_command for this scratch (written per run; removed with the scratch).
archive={archive}
ahead={ahead}
depth={depth}
per={per}
f=$1
p=$2
t0=$(date +%s%N 2>/dev/null)
i=0
while [ -d "$ahead/$f.lock" ] && [ $i -lt 3000 ]; do sleep 0.01 2>/dev/null || sleep 1; i=$((i + 1)); done
if [ -f "$ahead/$f" ] && mv -f "$ahead/$f" "$p"; then rc=0; else cp "$archive/$f" "$p"; rc=$?; fi
t1=$(date +%s%N 2>/dev/null)
echo "$f $rc $t0 $t1" >> "$ahead/{log}"
case $f in {hex24}) ;; *) exit $rc ;; esac
[ $rc -eq 0 ] || exit $rc
tli=${{f%????????????????}}
rest=${{f#????????}}
hi=$((0x${{rest%????????}}))
lo=$((0x${{rest#????????}}))
n=1
while [ $n -le $depth ]; do
  s=$((lo + n))
  next=$(printf '%s%08X%08X' "$tli" $((hi + s / per)) $((s % per)))
  if [ -f "$archive/$next" ] && [ ! -e "$ahead/$next" ] && mkdir "$ahead/$next.lock" 2>/dev/null; then
    ( cp "$archive/$next" "$ahead/$next.part" && mv -f "$ahead/$next.part" "$ahead/$next"; rmdir "$ahead/$next.lock" ) </dev/null >/dev/null 2>&1 &
  fi
  n=$((n + 1))
done
exit 0
"#,
        archive = shell_quote(&archive.to_string_lossy()),
        ahead = shell_quote(&ahead.to_string_lossy()),
        depth = depth.max(1),
        per = segments_per_id(seg_size),
        log = FETCH_LOG,
    )
}

/// From the fetch log: segments served, and the seconds replay waited on restore_command in all.
pub(crate) fn fetch_wait(log: &str) -> (usize, f64) {
    let mut served = 0;
    let mut nanos: u128 = 0;
    for line in log.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_, rc, t0, t1] = f[..] else { continue };
        if rc == "0" {
            served += 1;
        }
        if let (Ok(a), Ok(b)) = (t0.parse::<u128>(), t1.parse::<u128>()) {
            nanos += b.saturating_sub(a);
        }
    }
    (served, nanos as f64 / 1e9)
}

/// Where recovery's time went, read from a server log written with `log_line_prefix = '%m '`: from
/// start-up to the first record replayed, replaying, and from the end of replay (target reached or WAL
/// exhausted) to accepting read-write connections (the end-of-recovery checkpoint and promotion).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RecoveryTimes {
    pub(crate) startup: f64,
    pub(crate) replay: f64,
    pub(crate) promotion: f64,
}

pub(crate) fn recovery_times(log: &str) -> Option<RecoveryTimes> {
    let at = |needle: &str, last: bool| {
        let mut hits = log.lines().filter(|l| l.contains(needle)).filter_map(|l| {
            let stamp = l.get(..23)?;
            NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f").ok()
        });
        if last { hits.next_back() } else { hits.next() }
    };
    let start = at("starting PostgreSQL", true)?;
    let redo = at("redo starts at", true)?;
    let done = at("redo done at", true)?;
    let ready = at("database system is ready to accept connections", true)?;
    let secs = |a: NaiveDateTime, b: NaiveDateTime| (b - a).num_milliseconds().max(0) as f64 / 1000.0;
    Some(RecoveryTimes { startup: secs(start, redo), replay: secs(redo, done), promotion: secs(done, ready) })
}

/// The commit timestamp of a `pg_waldump` line describing a COMMIT record.
fn commit_time(line: &str) -> Option<DateTime<Utc>> {
    let rest = line.split("desc: COMMIT ").nth(1)?;
    let stamp: String = rest.chars().take_while(|c| *c != ';').collect();
    let stamp = stamp.trim().trim_end_matches(" UTC");
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.f").ok().map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        let s = Segment::parse("0000000100000002000000FF", 16 * 1024 * 1024).unwrap();
        assert_eq!(s.segno, 2 * 256 + 255);
        assert_eq!(s.name(16 * 1024 * 1024), "0000000100000002000000FF");
        assert!(Segment::parse("00000001.history", 16 * 1024 * 1024).is_none());
    }

    #[test]
    fn fetch_waits_and_recovery_phases_are_read_from_the_logs() {
        let log = "000000010000000000000003 0 1000000000 1250000000\n00000002.history 1 1300000000 1310000000\n\
                   000000010000000000000004 0 2000000000 2500000000\ngarbage\n";
        let (served, secs) = fetch_wait(log);
        assert_eq!(served, 2);
        assert!((secs - 0.76).abs() < 1e-9, "{secs}");
        let server = "2026-12-06 07:30:00.100 UTC [9] LOG:  starting PostgreSQL 15.18\n\
                      2026-12-06 07:30:00.400 UTC [10] LOG:  redo starts at 0/2000028\n\
                      2026-12-06 07:30:00.500 UTC [10] LOG:  database system is ready to accept read-only connections\n\
                      2026-12-06 07:30:02.900 UTC [10] LOG:  redo done at 0/5000100 system usage: CPU: user: 1.0 s\n\
                      2026-12-06 07:30:03.150 UTC [9] LOG:  database system is ready to accept connections\n";
        let t = recovery_times(server).unwrap();
        assert_eq!(t, RecoveryTimes { startup: 0.3, replay: 2.5, promotion: 0.25 });
        assert!(recovery_times("no timestamps here").is_none());
    }

    /// The script, run by `sh` against a real directory: serves the segment asked for, prefetches the next
    /// ones (across the 0xFF → next id boundary), serves a prefetched one from `ahead`, and fails for a
    /// segment the archive lacks.
    #[test]
    fn the_prefetching_restore_command_serves_and_prefetches_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (archive, ahead, pg) = (dir.path().join("arch'ive"), dir.path().join("ahead"), dir.path().join("pg_wal"));
        for d in [&archive, &ahead, &pg] {
            std::fs::create_dir(d).unwrap();
        }
        let seg = 16 * 1024 * 1024;
        for name in ["0000000100000000000000FE", "0000000100000000000000FF", "000000010000000100000000"] {
            std::fs::write(archive.join(name), name).unwrap();
        }
        let script = dir.path().join("restore-wal.sh");
        std::fs::write(&script, prefetching_restore_script(&archive, &ahead, 2, seg)).unwrap();
        let run = |f: &str| {
            std::process::Command::new("sh")
                .arg(&script)
                .arg(f)
                .arg(pg.join("RECOVERYXLOG"))
                .status()
                .unwrap()
                .success()
        };
        assert!(run("0000000100000000000000FE"));
        assert_eq!(std::fs::read_to_string(pg.join("RECOVERYXLOG")).unwrap(), "0000000100000000000000FE");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !(ahead.join("0000000100000000000000FF").is_file() && ahead.join("000000010000000100000000").is_file()) {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing prefetched: {:?}",
                std::fs::read_dir(&ahead).unwrap().collect::<Vec<_>>()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(run("0000000100000000000000FF"));
        assert_eq!(std::fs::read_to_string(pg.join("RECOVERYXLOG")).unwrap(), "0000000100000000000000FF");
        assert!(!ahead.join("0000000100000000000000FF").exists(), "served from ahead, not copied again");
        assert!(!run("000000010000000100000009"));
        let (served, _) = fetch_wait(&std::fs::read_to_string(ahead.join(FETCH_LOG)).unwrap());
        assert_eq!(served, 2);
    }

    #[test]
    fn reads_commit_times() {
        let line = "rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/0301A2B8, prev 0/0301A280, desc: COMMIT 2026-11-28 17:45:01.123456 UTC";
        assert_eq!(commit_time(line).unwrap().to_rfc3339(), "2026-11-28T17:45:01.123456+00:00");
        let with_inval = "desc: COMMIT 2026-11-28 17:45:01.5 UTC; inval msgs: catcache 7";
        assert!(commit_time(with_inval).is_some());
        assert!(commit_time("desc: ABORT 2026-11-28 17:45:01.5 UTC").is_none());
    }
}
