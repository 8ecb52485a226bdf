//! Schedule expressions as drill files write them: a 5-field cron, an AWS `cron(...)` (6 fields, `?`, a year
//! field, weekdays 1–7 = SUN–SAT) or an AWS `rate(...)`. One parser, local evaluation in an IANA time zone, and
//! the AWS form EventBridge Scheduler takes.

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// A parsed schedule expression.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// A cron in the drill's time zone. `aws` keeps how it was written, for `to_aws`.
    Cron { cron: Box<croner::Cron>, fields: [String; 5], years: Option<Vec<(i32, i32)>>, aws: bool },
    /// Every `every`, counted from the Unix epoch, so a local scheduler and a deployed schedule agree.
    Rate { every: chrono::Duration, text: String },
}

impl Expr {
    pub(crate) fn parse(text: &str) -> Result<Expr, String> {
        let e = text.trim();
        if let Some(inner) = e.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
            return parse_rate(e, inner);
        }
        if let Some(inner) = e.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
            return parse_aws_cron(e, inner);
        }
        let f: Vec<&str> = e.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "invalid cron `{e}`: use 5 fields (minute hour day-of-month month day-of-week), `cron(...)` or `rate(...)`"
            ));
        }
        let cron = croner::Cron::new(e).parse().map_err(|err| format!("invalid cron `{e}`: {err}"))?;
        Ok(Expr::Cron { cron: Box::new(cron), fields: fields5(&f), years: None, aws: false })
    }

    /// The first occurrence strictly after `t`. A wall-clock time a DST change skips runs at the first valid
    /// time after it; one it repeats runs once (the first).
    pub(crate) fn next_after(&self, tz: &chrono_tz::Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Expr::Rate { every, .. } => {
                let step = every.num_seconds().max(60);
                let n = t.timestamp().div_euclid(step) + 1;
                DateTime::from_timestamp(n * step, 0)
            }
            Expr::Cron { cron, years, .. } => {
                let mut from = t.with_timezone(tz);
                for _ in 0..100 {
                    let next = cron.find_next_occurrence(&from, false).ok()?;
                    let Some(years) = years else { return Some(next.with_timezone(&Utc)) };
                    let y = next.year();
                    if years.iter().any(|(a, b)| (*a..=*b).contains(&y)) {
                        return Some(next.with_timezone(&Utc));
                    }
                    // Jump to the start of the next allowed year, if there is one.
                    let ny = years.iter().filter(|(_, b)| *b > y).map(|(a, _)| (*a).max(y + 1)).min()?;
                    from = tz.with_ymd_and_hms(ny, 1, 1, 0, 0, 0).earliest()? - chrono::Duration::seconds(1);
                }
                None
            }
        }
    }

    /// The expression EventBridge Scheduler takes: `cron(...)` or `rate(...)`.
    pub(crate) fn to_aws(&self) -> Result<String, String> {
        match self {
            Expr::Rate { text, .. } => Ok(text.clone()),
            Expr::Cron { fields, years, aws, .. } => {
                let [m, h, dom, mon, dow] = fields.clone();
                let year = match years {
                    None => "*".to_string(),
                    Some(ys) => ys
                        .iter()
                        .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                        .collect::<Vec<_>>()
                        .join(","),
                };
                if *aws {
                    return Ok(format!("cron({m} {h} {dom} {mon} {dow} {year})"));
                }
                let (dom, dow) = match (dom.as_str(), dow.as_str()) {
                    (_, "*" | "?") => (dom.replace('?', "*"), "?".to_string()),
                    ("*" | "?", _) => ("?".to_string(), aws_weekdays(&dow)?),
                    _ => {
                        return Err(format!(
                            "AWS cron cannot restrict both day-of-month (`{dom}`) and day-of-week (`{dow}`); \
                             use one of them"
                        ));
                    }
                };
                let step0 =
                    |f: &str, first: &str| f.strip_prefix("*/").map(|s| format!("{first}/{s}")).unwrap_or(f.into());
                Ok(format!(
                    "cron({} {} {} {} {dow} {year})",
                    step0(&m, "0"),
                    step0(&h, "0"),
                    step0(&dom, "1"),
                    step0(&mon, "1")
                ))
            }
        }
    }

    /// A fixed interval, if the expression is a rate.
    pub(crate) fn rate(&self) -> Option<chrono::Duration> {
        match self {
            Expr::Rate { every, .. } => Some(*every),
            Expr::Cron { .. } => None,
        }
    }
}

fn fields5(f: &[&str]) -> [String; 5] {
    [f[0].into(), f[1].into(), f[2].into(), f[3].into(), f[4].into()]
}

fn parse_rate(e: &str, inner: &str) -> Result<Expr, String> {
    let bad = || format!("invalid rate expression `{e}`: use e.g. `rate(1 day)`, `rate(12 hours)`, `rate(30 minutes)`");
    let mut parts = inner.split_whitespace();
    let n = parts.next().and_then(|n| n.parse::<i64>().ok()).filter(|n| (1..=100_000).contains(n)).ok_or_else(bad)?;
    let (unit, secs) = match parts.next() {
        Some("minute" | "minutes") => ("minute", 60),
        Some("hour" | "hours") => ("hour", 3600),
        Some("day" | "days") => ("day", 86_400),
        _ => return Err(bad()),
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    // AWS wants the singular for 1 and the plural otherwise.
    let text = if n == 1 { format!("rate(1 {unit})") } else { format!("rate({n} {unit}s)") };
    Ok(Expr::Rate { every: chrono::Duration::seconds(n * secs), text })
}

fn parse_aws_cron(e: &str, inner: &str) -> Result<Expr, String> {
    let f: Vec<&str> = inner.split_whitespace().collect();
    if f.len() != 6 {
        return Err(format!(
            "invalid AWS cron expression `{e}`: it has 6 fields (minutes hours day-of-month month day-of-week year)"
        ));
    }
    if (f[2] == "?") == (f[4] == "?") {
        return Err(format!(
            "invalid AWS cron expression `{e}`: exactly one of day-of-month and day-of-week must be `?`"
        ));
    }
    let years = parse_years(f[5]).map_err(|m| format!("invalid AWS cron expression `{e}`: {m}"))?;
    let five = f[..5].join(" ");
    let cron = croner::Cron::new(&five)
        .with_alternative_weekdays()
        .parse()
        .map_err(|err| format!("invalid AWS cron expression `{e}`: {err}"))?;
    Ok(Expr::Cron { cron: Box::new(cron), fields: fields5(&f), years, aws: true })
}

/// `*`, or years and ranges of years: `2026`, `2026-2028`, `2026,2028`.
fn parse_years(f: &str) -> Result<Option<Vec<(i32, i32)>>, String> {
    if f == "*" || f == "?" {
        return Ok(None);
    }
    let year = |s: &str| s.parse::<i32>().ok().filter(|y| (1970..=2199).contains(y));
    f.split(',')
        .map(|item| {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            match (year(a), year(b)) {
                (Some(a), Some(b)) if a <= b => Ok((a, b)),
                _ => Err(format!("year `{item}` is not a year 1970–2199 or a range of them")),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// 5-field weekdays (0–7, 0 and 7 = Sunday) to AWS's (1–7 = SUN–SAT); names stay.
fn aws_weekdays(dow: &str) -> Result<String, String> {
    let day = |s: &str| -> Result<String, String> {
        match s.parse::<u8>() {
            Ok(n @ 0..=7) => Ok((n % 7 + 1).to_string()),
            Ok(n) => Err(format!("day-of-week {n} is out of range")),
            Err(_) => Ok(s.to_string()),
        }
    };
    dow.split(',')
        .map(|item| {
            if item.contains('/') {
                return Err(format!("AWS cron has no step (`{item}`) in day-of-week; list the days"));
            }
            let (body, suffix) = match item.find(['#', 'L']) {
                Some(i) if i > 0 => item.split_at(i),
                _ => (item, ""),
            };
            let body = match body.split_once('-') {
                Some((a, b)) => format!("{}-{}", day(a)?, day(b)?),
                None => day(body)?,
            };
            Ok(format!("{body}{suffix}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next_n(e: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
        let x = Expr::parse(e).unwrap();
        let mut t = at(from);
        (0..n)
            .map(|_| {
                t = x.next_after(&tz, t).unwrap();
                t.with_timezone(&tz).to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn singapore_has_no_dst_03_00_every_day_is_19_00_utc() {
        let got = next_n("0 3 * * *", chrono_tz::Asia::Singapore, "2026-11-28T18:00:00Z", 3);
        assert_eq!(got, ["2026-11-29T03:00:00+08:00", "2026-11-30T03:00:00+08:00", "2026-12-01T03:00:00+08:00"]);
        let x = Expr::parse("0 3 * * *").unwrap();
        assert_eq!(
            x.next_after(&chrono_tz::Asia::Singapore, at("2026-11-28T18:59:59Z")).unwrap(),
            at("2026-11-28T19:00:00Z")
        );
    }

    #[test]
    fn dst_spring_forward_runs_once_after_the_gap_and_fall_back_runs_once() {
        let ny = chrono_tz::America::New_York;
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day.
        let got = next_n("30 2 * * *", ny, "2026-03-07T12:00:00Z", 3);
        assert_eq!(got[0], "2026-03-08T03:00:00-04:00", "the skipped time runs at the first valid time after it");
        assert_eq!(got[1], "2026-03-09T02:30:00-04:00");
        // 2026-11-01: 01:30 happens twice (EDT, then EST); the drill runs once, at the first.
        let got = next_n("30 1 * * *", ny, "2026-10-31T12:00:00Z", 3);
        assert_eq!(got, ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00", "2026-11-03T01:30:00-05:00"]);
        // Hourly across the fall-back: a wall time runs once, so the repeated 01:00 (EST) is not run again.
        let x = Expr::parse("0 * * * *").unwrap();
        let from = at("2026-11-01T04:30:00Z"); // 00:30 EDT
        let a = x.next_after(&ny, from).unwrap();
        let b = x.next_after(&ny, a).unwrap();
        assert_eq!((a, b), (at("2026-11-01T05:00:00Z"), at("2026-11-01T07:00:00Z")), "01:00 EDT, then 02:00 EST");
    }

    #[test]
    fn last_day_of_the_month() {
        let sg = chrono_tz::Asia::Singapore;
        let got = next_n("0 3 L * *", sg, "2027-01-15T00:00:00Z", 3);
        assert_eq!(got, ["2027-01-31T03:00:00+08:00", "2027-02-28T03:00:00+08:00", "2027-03-31T03:00:00+08:00"]);
        let got = next_n("cron(0 3 L * ? *)", sg, "2028-02-01T00:00:00Z", 1);
        assert_eq!(got, ["2028-02-29T03:00:00+08:00"], "leap year");
    }

    #[test]
    fn aws_cron_weekdays_are_one_to_seven_from_sunday_and_years_limit() {
        let sg = chrono_tz::Asia::Singapore;
        // 2026-11-29 is a Sunday; AWS 2 = Monday.
        let got = next_n("cron(0 4 ? * 2 *)", sg, "2026-11-29T00:00:00Z", 2);
        assert_eq!(got, ["2026-11-30T04:00:00+08:00", "2026-12-07T04:00:00+08:00"]);
        assert_eq!(next_n("cron(0 4 ? * MON *)", sg, "2026-11-29T00:00:00Z", 1), got[..1]);
        assert_eq!(
            next_n("cron(0 0 1 1 ? 2028-2029)", sg, "2026-11-29T00:00:00Z", 2),
            ["2028-01-01T00:00:00+08:00", "2029-01-01T00:00:00+08:00"]
        );
        let x = Expr::parse("cron(0 0 1 1 ? 2027)").unwrap();
        let first = x.next_after(&sg, at("2026-01-01T00:00:00Z")).unwrap();
        assert!(x.next_after(&sg, first).is_none(), "no occurrence after the last year");
        for bad in ["cron(0 3 * * * *)", "cron(0 3 ? * ? *)", "cron(0 3 * *)", "cron(0 3 1 * ? 1900)"] {
            assert!(Expr::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn rate_counts_from_the_epoch() {
        let x = Expr::parse("rate(6 hours)").unwrap();
        let got = x.next_after(&chrono_tz::Asia::Singapore, at("2026-11-29T01:27:00Z")).unwrap();
        assert_eq!(got, at("2026-11-29T06:00:00Z"));
        assert_eq!(x.next_after(&chrono_tz::UTC, got).unwrap() - got, chrono::Duration::hours(6));
        assert_eq!(Expr::parse("rate(1 days)").unwrap().to_aws().unwrap(), "rate(1 day)");
        assert_eq!(Expr::parse("rate(30 minute)").unwrap().to_aws().unwrap(), "rate(30 minutes)");
        for bad in ["rate(0 days)", "rate(1 week)", "rate(day)", "rate(1 day now)"] {
            assert!(Expr::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn five_field_cron_converts_to_aws() {
        let aws = |e: &str| Expr::parse(e).unwrap().to_aws();
        assert_eq!(aws("0 3 * * *").unwrap(), "cron(0 3 * * ? *)");
        assert_eq!(aws("0 4 * * 1").unwrap(), "cron(0 4 ? * 2 *)");
        assert_eq!(aws("0 5 * * 0").unwrap(), "cron(0 5 ? * 1 *)");
        assert_eq!(aws("0 5 * * 7").unwrap(), "cron(0 5 ? * 1 *)");
        assert_eq!(aws("*/15 1-5 * * 1-5").unwrap(), "cron(0/15 1-5 ? * 2-6 *)");
        assert_eq!(aws("0 3 * * 5L").unwrap(), "cron(0 3 ? * 6L *)");
        assert_eq!(aws("0 3 * * MON#2").unwrap(), "cron(0 3 ? * MON#2 *)");
        assert_eq!(aws("0 3 1 * *").unwrap(), "cron(0 3 1 * ? *)");
        assert_eq!(aws("cron(0 3 ? * 2 2027)").unwrap(), "cron(0 3 ? * 2 2027)");
        assert!(aws("0 3 1 * 1").unwrap_err().contains("both day-of-month"));
        // The conversion keeps the meaning: both forms give the same occurrences.
        let sg = chrono_tz::Asia::Singapore;
        for e in ["0 4 * * 1", "0 5 * * 0", "30 2 * * 1-5", "0 3 * * 5L"] {
            let (a, b) = (Expr::parse(e).unwrap(), Expr::parse(&Expr::parse(e).unwrap().to_aws().unwrap()).unwrap());
            let mut t = at("2026-11-29T00:00:00Z");
            for _ in 0..20 {
                let n = a.next_after(&sg, t).unwrap();
                assert_eq!(Some(n), b.next_after(&sg, t), "{e}");
                t = n;
            }
        }
    }
}
