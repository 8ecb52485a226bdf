//! Logical backups as pg_dump and pg_dumpall write them: which format a file is, when it was taken, and
//! what it needs from the server it is restored into (roles it does not create, extensions). Reads files
//! only; restoring is the `pg-dump` provider's job.

use std::collections::BTreeSet;
use std::io::{BufRead, Read};
use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// How a logical backup is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DumpFormat {
    /// `pg_dump -Fc`: one file, restored by `pg_restore` (in parallel).
    Custom,
    /// `pg_dump -Fd`: a directory with `toc.dat`, restored by `pg_restore` (in parallel).
    Directory,
    /// `pg_dump -Ft`: a tar archive, restored by `pg_restore` (one job: tar cannot be read in parallel).
    Tar,
    /// SQL text from `pg_dump` (`-Fp`), possibly gzip-compressed, run by `psql`.
    Plain,
    /// SQL text from `pg_dumpall` (roles, then every database), possibly gzip-compressed, run by `psql`.
    Cluster,
}

impl DumpFormat {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DumpFormat::Custom => "custom",
            DumpFormat::Directory => "directory",
            DumpFormat::Tar => "tar",
            DumpFormat::Plain => "plain",
            DumpFormat::Cluster => "pg_dumpall",
        }
    }

    /// Restored by `pg_restore` (an archive with a table of contents), not by `psql`.
    pub(crate) fn is_archive(self) -> bool {
        matches!(self, DumpFormat::Custom | DumpFormat::Directory | DumpFormat::Tar)
    }
}

/// What the header of a pg_dump archive says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArchiveHeader {
    /// When pg_dump started, as the wall clock of the machine it ran on (the header has no zone).
    pub(crate) created: chrono::NaiveDateTime,
    pub(crate) dbname: String,
    pub(crate) server_version: String,
    pub(crate) dump_version: String,
}

/// What a dump file is, read from its first bytes.
#[derive(Debug, Clone)]
pub(crate) struct Inspected {
    pub(crate) format: DumpFormat,
    pub(crate) gzip: bool,
    pub(crate) header: Option<ArchiveHeader>,
    /// `-- Started on …` of a verbose plain dump, already in UTC when its zone was readable.
    pub(crate) started_on: Option<StartedOn>,
    /// `-- Dumped from database version …` of a plain dump.
    pub(crate) plain_server_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartedOn {
    Utc(DateTime<Utc>),
    /// A zone abbreviation stackdrill cannot place (`SGT`): the wall clock only.
    Local(chrono::NaiveDateTime),
}

/// Reads the first bytes of `path` (a file or a directory-format dump) and says what it is; `None` when it
/// is not a pg_dump or pg_dumpall output at all.
pub(crate) fn inspect(path: &Path) -> std::io::Result<Option<Inspected>> {
    if path.is_dir() {
        let toc = path.join("toc.dat");
        if !toc.is_file() {
            return Ok(None);
        }
        let head = read_head(&toc, 64 * 1024)?;
        return Ok(Some(Inspected {
            format: DumpFormat::Directory,
            gzip: false,
            header: parse_archive_header(&head),
            started_on: None,
            plain_server_version: None,
        }));
    }
    let head = read_head(path, 64 * 1024)?;
    Ok(inspect_bytes(&head))
}

/// [`inspect`] on the first bytes of a file (an S3 object's first range, say).
pub(crate) fn inspect_bytes(head: &[u8]) -> Option<Inspected> {
    if head.starts_with(b"PGDMP") {
        return Some(Inspected {
            format: DumpFormat::Custom,
            gzip: false,
            header: parse_archive_header(head),
            started_on: None,
            plain_server_version: None,
        });
    }
    if head.len() >= 512 && &head[257..262] == b"ustar" {
        // pg_dump's tar format starts with toc.dat, whose bytes are the archive header.
        let name = String::from_utf8_lossy(&head[..100]);
        if name.trim_end_matches('\0') != "toc.dat" {
            return None;
        }
        return Some(Inspected {
            format: DumpFormat::Tar,
            gzip: false,
            header: parse_archive_header(&head[512..]),
            started_on: None,
            plain_server_version: None,
        });
    }
    let (text, gzip) = if head.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        // A truncated head ends the stream early: what was inflated is enough for the first lines.
        let _ = flate2::read::MultiGzDecoder::new(head).take(16 * 1024).read_to_end(&mut out);
        (out, true)
    } else {
        (head.to_vec(), false)
    };
    let text = String::from_utf8_lossy(&text);
    let first: Vec<&str> = text.lines().take(40).collect();
    let format = if first.iter().any(|l| l.starts_with("-- PostgreSQL database cluster dump")) {
        DumpFormat::Cluster
    } else if first.iter().any(|l| l.starts_with("-- PostgreSQL database dump")) {
        DumpFormat::Plain
    } else {
        return None;
    };
    let started_on = first.iter().find_map(|l| l.strip_prefix("-- Started on ")).and_then(parse_started_on);
    let plain_server_version =
        first.iter().find_map(|l| l.strip_prefix("-- Dumped from database version ")).map(|v| v.trim().to_string());
    Some(Inspected { format, gzip, header: None, started_on, plain_server_version })
}

/// The first `n` bytes of a dump: opened without blocking (a FIFO among the dumps is refused, not waited on)
/// and only when it is a regular file.
fn read_head(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC | nix::libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut buf = Vec::new();
    file.take(n).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The header pg_dump's archiver writes (`WriteHead` in pg_backup_archiver.c): magic, version, int and
/// offset sizes, format, compression, the creation time as seven ints, then three strings.
pub(crate) fn parse_archive_header(b: &[u8]) -> Option<ArchiveHeader> {
    let mut r = HeaderReader { b, at: 0, int_size: 0 };
    if r.bytes(5)? != b"PGDMP" {
        return None;
    }
    let (vmaj, vmin) = (r.byte()?, r.byte()?);
    r.byte()?; // revision
    r.int_size = r.byte()? as usize;
    if !(1..=8).contains(&r.int_size) {
        return None;
    }
    r.byte()?; // offset size
    r.byte()?; // format
    // 1.15 (PostgreSQL 16) stores the compression algorithm as a byte; older archives a level as an int.
    if (vmaj, vmin) >= (1, 15) {
        r.byte()?;
    } else {
        r.int()?;
    }
    let mut tm = [0i64; 7];
    for v in &mut tm {
        *v = r.int()?;
    }
    let [sec, min, hour, mday, mon, year, _isdst] = tm;
    let num = |v: i64| u32::try_from(v).ok();
    let year = i32::try_from(year.checked_add(1900)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(mon.checked_add(1)?)?, num(mday)?)?;
    let created = date.and_hms_opt(num(hour)?, num(min)?, num(sec.min(59))?)?;
    Some(ArchiveHeader { created, dbname: r.string()?, server_version: r.string()?, dump_version: r.string()? })
}

struct HeaderReader<'a> {
    b: &'a [u8],
    at: usize,
    int_size: usize,
}

impl HeaderReader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    /// A sign byte, then `int_size` bytes, least significant first.
    fn int(&mut self) -> Option<i64> {
        let sign = self.byte()?;
        let mut v: i64 = 0;
        for (i, b) in self.bytes(self.int_size)?.iter().enumerate() {
            v |= (*b as i64) << (8 * i);
        }
        Some(if sign == 0 { v } else { v.wrapping_neg() })
    }

    /// An int length (-1 for none), then that many bytes.
    fn string(&mut self) -> Option<String> {
        let n = self.int()?;
        if n < 0 {
            return Some(String::new());
        }
        let n = usize::try_from(n).ok().filter(|n| *n < 1 << 16)?;
        Some(String::from_utf8_lossy(self.bytes(n)?).into_owned())
    }
}

/// `2026-11-30 02:00:01 UTC` (strftime `%Y-%m-%d %H:%M:%S %Z` as pg_dump writes it).
fn parse_started_on(s: &str) -> Option<StartedOn> {
    let s = s.trim();
    let (wall, zone) = match s.get(..19) {
        Some(w) => (w, s[19..].trim()),
        None => return None,
    };
    let wall = chrono::NaiveDateTime::parse_from_str(wall, "%Y-%m-%d %H:%M:%S").ok()?;
    if matches!(zone, "UTC" | "GMT" | "Z" | "+00" | "+0000" | "+00:00") {
        return Some(StartedOn::Utc(Utc.from_utc_datetime(&wall)));
    }
    // A numeric zone (`+08`, `-0530`): exact.
    if let Some(sign) = zone.chars().next().filter(|c| *c == '+' || *c == '-') {
        let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
        let (h, m) = match digits.len() {
            2 => (digits.parse::<i32>().ok()?, 0),
            4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
            _ => return Some(StartedOn::Local(wall)),
        };
        let secs = (h * 3600 + m * 60) * if sign == '-' { -1 } else { 1 };
        let offset = chrono::FixedOffset::east_opt(secs)?;
        return offset.from_local_datetime(&wall).single().map(|t| StartedOn::Utc(t.with_timezone(&Utc)));
    }
    Some(StartedOn::Local(wall))
}

/// The time in a backup's file name, in the forms tools write: ISO-like `2026-11-30T02-00-00` (`:`,
/// `-`, `_`, `T` or a space between the parts) or Supabase's `30-11-2026@02-00-00`. Read as UTC.
pub(crate) fn time_in_name(name: &str) -> Option<DateTime<Utc>> {
    let digits_at = |s: &str, i: usize, n: usize| -> Option<u32> {
        let part = s.get(i..i + n)?;
        part.chars().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let sep = |s: &str, i: usize| s.get(i..=i).is_some_and(|c| "-:_T @.".contains(c));
    for (i, _) in name.char_indices() {
        let s = &name[i..];
        // YYYY-MM-DD?HH-MM-SS
        if let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) = (
            digits_at(s, 0, 4),
            digits_at(s, 5, 2),
            digits_at(s, 8, 2),
            digits_at(s, 11, 2),
            digits_at(s, 14, 2),
            digits_at(s, 17, 2),
        ) && [4, 7, 10, 13, 16].iter().all(|j| sep(s, *j))
            && let Some(t) = NaiveDate::from_ymd_opt(y as i32, mo, d).and_then(|d| d.and_hms_opt(h, mi, se))
        {
            return Some(Utc.from_utc_datetime(&t));
        }
        // DD-MM-YYYY@HH-MM-SS (Supabase's downloadable daily backups)
        if let (Some(d), Some(mo), Some(y), Some(h), Some(mi), Some(se)) = (
            digits_at(s, 0, 2),
            digits_at(s, 3, 2),
            digits_at(s, 6, 4),
            digits_at(s, 11, 2),
            digits_at(s, 14, 2),
            digits_at(s, 17, 2),
        ) && [2, 5, 10, 13, 16].iter().all(|j| sep(s, *j))
            && let Some(t) = NaiveDate::from_ymd_opt(y as i32, mo, d).and_then(|d| d.and_hms_opt(h, mi, se))
        {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// What a dump's SQL needs and makes, found by reading its statements (never its COPY data).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Needs {
    /// Roles named as owner, grantee, policy target, or session role.
    pub(crate) roles: BTreeSet<String>,
    /// Roles the dump creates itself (pg_dumpall).
    pub(crate) creates_roles: BTreeSet<String>,
    pub(crate) extensions: BTreeSet<String>,
    /// The dump switches databases (`\connect`): it creates its own and runs from `postgres`.
    pub(crate) connects: bool,
    /// A psql meta-command other than those pg_dump writes (`\connect`, `\restrict`, `\unrestrict`):
    /// line number and text. `\!` would run a shell command; such a dump is refused.
    pub(crate) foreign_meta: Option<(usize, String)>,
}

impl Needs {
    /// Roles the dump uses but neither creates nor finds among `existing`.
    pub(crate) fn missing_roles(&self, existing: &BTreeSet<String>) -> Vec<String> {
        self.roles.iter().filter(|r| !self.creates_roles.contains(*r) && !existing.contains(*r)).cloned().collect()
    }
}

/// Streams the SQL of a dump through `each` line by line, telling it whether the line is COPY data.
pub(crate) fn for_each_sql_line(
    reader: impl BufRead,
    mut each: impl FnMut(&str, bool) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut in_copy = false;
    for line in reader.split(b'\n') {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        if in_copy {
            each(text, true)?;
            if text == "\\." {
                in_copy = false;
            }
            continue;
        }
        each(text, false)?;
        if text.starts_with("COPY ") && text.trim_end().ends_with("FROM stdin;") {
            in_copy = true;
        }
    }
    Ok(())
}

/// Reads a dump's SQL (outside COPY data) for what it needs. Statements pg_dump writes one per line for
/// these (`ALTER … OWNER TO`, `GRANT … TO`, `REVOKE … FROM`, `CREATE EXTENSION`); a policy's roles
/// follow ` TO ` on its first lines.
pub(crate) fn scan(reader: impl BufRead) -> std::io::Result<Needs> {
    let mut needs = Needs::default();
    let mut n = 0usize;
    let mut in_policy = false;
    for_each_sql_line(reader, |line, data| {
        n += 1;
        if data {
            return Ok(());
        }
        if let Some(meta) = line.strip_prefix('\\') {
            let cmd = meta.split_whitespace().next().unwrap_or("");
            match cmd {
                "connect" | "c" => needs.connects = true,
                "restrict" | "unrestrict" | "." => {}
                _ if needs.foreign_meta.is_none() => needs.foreign_meta = Some((n, line.chars().take(80).collect())),
                _ => {}
            }
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if let Some(i) = upper.find(" OWNER TO ") {
            needs.roles.extend(role_list(&line[i + 10..]));
        }
        let default_privileges = upper.starts_with("ALTER DEFAULT PRIVILEGES ");
        if (upper.starts_with("GRANT ") || default_privileges && upper.contains(" GRANT "))
            && let Some(i) = upper.rfind(" TO ")
        {
            needs.roles.extend(role_list(&line[i + 4..]));
        }
        if (upper.starts_with("REVOKE ") || default_privileges && upper.contains(" REVOKE "))
            && let Some(i) = upper.rfind(" FROM ")
        {
            needs.roles.extend(role_list(&line[i + 6..]));
        }
        if let Some(rest) = upper.strip_prefix("ALTER DEFAULT PRIVILEGES FOR ROLE ") {
            needs.roles.extend(role_list(&line[line.len() - rest.len()..]).take(1));
        }
        if let Some(rest) = upper.strip_prefix("SET SESSION AUTHORIZATION ").or(upper.strip_prefix("SET ROLE ")) {
            let name = &line[line.len() - rest.len()..];
            needs.roles.extend(role_list(name.trim_matches(|c| c == '\'' || c == ';' || c == ' ')));
        }
        if let Some(rest) = upper.strip_prefix("CREATE ROLE ") {
            needs.creates_roles.extend(role_list(&line[line.len() - rest.len()..]).take(1));
        }
        if upper.starts_with("CREATE POLICY ") {
            in_policy = true;
        }
        if in_policy {
            if let Some(i) = upper.find(" TO ") {
                let rest = &line[i + 4..];
                let end = ["USING", "WITH CHECK", ";"]
                    .iter()
                    .filter_map(|w| rest.to_ascii_uppercase().find(w))
                    .min()
                    .unwrap_or(rest.len());
                needs.roles.extend(role_list(&rest[..end]));
            }
            if line.trim_end().ends_with(';') {
                in_policy = false;
            }
        }
        if let Some(rest) = upper.strip_prefix("CREATE EXTENSION ") {
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            let start = line.len() - rest.len();
            needs.extensions.extend(role_list(&line[start..]).take(1));
        }
        Ok(())
    })?;
    Ok(needs)
}

/// Role names from `a, "B c", PUBLIC;` up to a keyword that ends the list; PUBLIC and the
/// CURRENT_/SESSION_ pseudo-roles are not roles to create.
fn role_list(s: &str) -> impl Iterator<Item = String> {
    const STOP: [&str; 6] = ["with", "granted", "cascade", "restrict", "in", "using"];
    const PSEUDO: [&str; 4] = ["public", "current_user", "session_user", "current_role"];
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        let (name, quoted, after) = match rest.strip_prefix('"') {
            Some(q) => {
                let (mut name, mut end, mut chars) = (String::new(), q.len(), q.char_indices().peekable());
                while let Some((i, c)) = chars.next() {
                    if c != '"' {
                        name.push(c);
                    } else if chars.peek().is_some_and(|(_, n)| *n == '"') {
                        name.push('"');
                        chars.next();
                    } else {
                        end = i + 1;
                        break;
                    }
                }
                (name, true, &q[end..])
            }
            None => {
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(rest.len());
                (rest[..end].to_ascii_lowercase(), false, &rest[end..])
            }
        };
        if name.is_empty() || (!quoted && STOP.contains(&name.as_str())) {
            break;
        }
        if quoted || !PSEUDO.contains(&name.as_str()) {
            out.push(name);
        }
        match after.trim_start().strip_prefix(',') {
            Some(r) => rest = r,
            None => break,
        }
    }
    out.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_extensions_are_read_from_statements_not_from_copy_data() {
        let sql = "\
-- PostgreSQL database dump
CREATE EXTENSION IF NOT EXISTS pg_graphql WITH SCHEMA graphql;
ALTER TABLE public.files OWNER TO app_owner;
COPY public.files (id, name) FROM stdin;
1\tGRANT ALL ON TABLE x TO intruder;
\\.
GRANT ALL ON TABLE public.files TO authenticated;
GRANT SELECT ON TABLE public.files TO anon, \"Service Role\" WITH GRANT OPTION;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO service_role;
CREATE POLICY \"own rows\" ON public.files
  TO authenticated_users
  USING (owner = auth.uid());
SET SESSION AUTHORIZATION 'supabase_admin';
CREATE ROLE anon;
";
        let needs = scan(sql.as_bytes()).unwrap();
        let roles: Vec<&str> = needs.roles.iter().map(String::as_str).collect();
        assert_eq!(
            roles,
            [
                "Service Role",
                "anon",
                "app_owner",
                "authenticated",
                "authenticated_users",
                "postgres",
                "service_role",
                "supabase_admin"
            ]
        );
        assert!(needs.creates_roles.contains("anon"));
        assert_eq!(needs.extensions.iter().collect::<Vec<_>>(), ["pg_graphql"]);
        let existing: BTreeSet<String> = ["postgres".to_string()].into();
        assert_eq!(needs.missing_roles(&existing).len(), 6);
        assert!(needs.foreign_meta.is_none() && !needs.connects);
    }

    proptest::proptest! {
        /// Whatever the bytes (an archive header, a plain dump's lines), reading them never panics.
        #[test]
        fn any_bytes_read_without_a_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut head = b"PGDMP".to_vec();
            head.extend(&tail);
            let _ = parse_archive_header(&head);
            let _ = inspect_bytes(&head);
            let _ = inspect_bytes(&tail);
            let _ = scan(&tail[..]);
            let text = String::from_utf8_lossy(&tail);
            let _ = time_in_name(&text);
            let _ = parse_started_on(&text);
        }
    }

    #[test]
    fn a_shell_escape_is_found_and_named_by_line() {
        let sql = "-- PostgreSQL database dump\n\\connect app\n\\restrict abc\nSELECT 1;\n\\! touch /tmp/x\n";
        let needs = scan(sql.as_bytes()).unwrap();
        assert!(needs.connects);
        assert_eq!(needs.foreign_meta, Some((5, "\\! touch /tmp/x".to_string())));
    }

    #[test]
    fn times_in_headers_and_names() {
        assert_eq!(
            parse_started_on("2026-11-30 02:00:01 UTC"),
            Some(StartedOn::Utc(Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 1).unwrap()))
        );
        assert_eq!(
            parse_started_on("2026-11-30 10:00:01 +08"),
            Some(StartedOn::Utc(Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 1).unwrap()))
        );
        assert!(matches!(parse_started_on("2026-11-30 10:00:01 SGT"), Some(StartedOn::Local(_))));
        assert_eq!(parse_started_on("yesterday"), None);
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 0).unwrap();
        assert_eq!(time_in_name("db_cluster-30-11-2026@02-00-00.backup.gz"), Some(t));
        assert_eq!(time_in_name("app-2026-11-30T02:00:00Z.dump"), Some(t));
        assert_eq!(time_in_name("app_2026-11-30_02-00-00.sql"), Some(t));
        assert_eq!(time_in_name("app-2026-13-30T02:00:00.dump"), None);
        assert_eq!(time_in_name("app.dump"), None);
        assert_eq!(time_in_name("ünïcode-2026-11-30T02:00:00"), Some(t));
    }

    #[test]
    fn an_archive_header_is_parsed_and_garbage_is_not() {
        // PGDMP 1.14.0, int size 4, offset size 8, custom, compression -1, 2026-11-30 02:00:05, then strings.
        let int = |v: i32| {
            let mut b = vec![u8::from(v < 0)];
            b.extend(v.unsigned_abs().to_le_bytes());
            b
        };
        let string = |s: &str| {
            let mut b = int(s.len() as i32);
            b.extend(s.as_bytes());
            b
        };
        let mut h = b"PGDMP".to_vec();
        h.extend([1, 14, 0, 4, 8, 1]);
        h.extend(int(-1));
        for v in [5, 0, 2, 30, 10, 126, 0] {
            h.extend(int(v));
        }
        h.extend(string("app"));
        h.extend(string("15.8"));
        h.extend(string("15.8"));
        let parsed = parse_archive_header(&h).unwrap();
        assert_eq!(parsed.created.to_string(), "2026-11-30 02:00:05");
        assert_eq!((parsed.dbname.as_str(), parsed.server_version.as_str()), ("app", "15.8"));
        for cut in 0..h.len() {
            assert!(parse_archive_header(&h[..cut]).is_none(), "a header cut at {cut} parsed");
        }
        assert!(inspect_bytes(b"hello").is_none());
        let mut huge = h[..h.len() - 13].to_vec();
        huge.extend(int(i32::MAX));
        assert!(parse_archive_header(&huge).is_none());
    }
}
