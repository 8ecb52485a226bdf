//! The WAL archive: segment names, gaps, and commit times read with `pg_waldump`.

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
    fn reads_commit_times() {
        let line = "rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/0301A2B8, prev 0/0301A280, desc: COMMIT 2026-11-28 17:45:01.123456 UTC";
        assert_eq!(commit_time(line).unwrap().to_rfc3339(), "2026-11-28T17:45:01.123456+00:00");
        let with_inval = "desc: COMMIT 2026-11-28 17:45:01.5 UTC; inval msgs: catcache 7";
        assert!(commit_time(with_inval).is_some());
        assert!(commit_time("desc: ABORT 2026-11-28 17:45:01.5 UTC").is_none());
    }
}
