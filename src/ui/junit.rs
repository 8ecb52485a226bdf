//! `drill run --junit PATH`: the drills as JUnit XML for CI test-report views. Each drill is a test
//! suite; each check, each objective and the teardown a test case (failed → `<failure>`, error →
//! `<error>`, skipped → `<skipped>`); the report's path, id and verdict are suite properties. A drill that
//! could not run is a suite with one errored case. Written atomically when the fleet is done.

use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::drill::fleet::{Ended, Finished, Reporter, Stats};
use crate::report::Report;
use crate::report::model::CheckStatus;

pub(crate) struct Junit {
    path: PathBuf,
    suites: Mutex<Vec<(usize, Suite)>>,
}

/// One `<testsuite>`, rendered, with its counts.
struct Suite {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    seconds: f64,
    xml: String,
}

/// Escapes text for XML attributes and content as the HTML reports do: every control character XML 1.0
/// cannot carry or a CI view would obey, and every bidi override, is shown as an escape (`\u{1b}`).
fn esc(s: &str) -> String {
    crate::report::html::esc(s)
}

enum Outcome {
    Passed,
    Failed(String),
    Error(String),
    Skipped(String),
}

struct Case {
    class: String,
    name: String,
    seconds: f64,
    outcome: Outcome,
}

fn cases(r: &Report) -> Vec<Case> {
    let class = |what: &str| format!("{}.{what}", r.drill);
    let mut out: Vec<Case> = r
        .checks
        .iter()
        .map(|c| Case {
            class: class("checks"),
            name: format!("{} ({})", c.name, c.kind),
            seconds: c.seconds,
            outcome: match c.status {
                CheckStatus::Passed => Outcome::Passed,
                CheckStatus::Failed => Outcome::Failed(c.detail.clone()),
                CheckStatus::Error => Outcome::Error(c.detail.clone()),
                CheckStatus::Skipped => Outcome::Skipped(c.detail.clone()),
            },
        })
        .collect();
    let objective = |what: &str, measured: Option<f64>, met: bool, objective: f64| {
        let name = format!("{what} within {}", crate::config::human_seconds(objective));
        let outcome = match measured {
            Some(_) if met => Outcome::Passed,
            Some(v) => Outcome::Failed(format!("{what} {} exceeds the objective", crate::config::human_seconds(v))),
            None => Outcome::Failed(format!("{what} not measured")),
        };
        Case { class: class("objectives"), name, seconds: 0.0, outcome }
    };
    out.push(objective("RTO", r.measured.rto_seconds, r.measured.rto_met, r.objectives.rto_seconds));
    out.push(objective("RPO", r.measured.rpo_seconds, r.measured.rpo_met, r.objectives.rpo_seconds));
    let teardown = match r.teardown.status {
        crate::report::model::TeardownStatus::Failed => Outcome::Error(r.teardown.detail.clone()),
        _ => Outcome::Passed,
    };
    let seconds = r.phases.iter().find(|p| p.name == "teardown").map_or(0.0, |p| p.seconds);
    out.push(Case { class: class("teardown"), name: "scratch torn down".into(), seconds, outcome: teardown });
    out
}

/// The suite of a report, with `files` (where the store keeps it, or why it does not) as properties: named
/// `name`, stamped with the run's start and carrying its run id (`id`, and the `report_id` property).
fn report_suite(report: &Report, name: &str, files: Vec<(&'static str, String)>) -> Suite {
    let mut props = vec![
        ("result", report.result.as_str().to_string()),
        ("report_id", report.id.clone()),
        ("started_at", crate::report::view::json_time(report.started_at)),
    ];
    props.extend(files);
    if let Some(reason) = &report.reason {
        props.push(("reason", reason.clone()));
    }
    let secs = (report.finished_at - report.started_at).num_milliseconds() as f64 / 1000.0;
    let run = Run { name, id: Some(&report.id), timestamp: report.started_at };
    render(run, cases(report), secs, props)
}

/// What names a suite: its name, the run's id (none for a drill that did not run) and when it ran.
struct Run<'a> {
    name: &'a str,
    id: Option<&'a str>,
    timestamp: chrono::DateTime<chrono::Utc>,
}

fn suite(f: &Finished) -> Suite {
    let (cases, seconds, properties) = match &f.ended {
        Ended::Ran { report, written } => {
            let files = match written {
                Ok(w) => vec![("report", w.json.display().to_string()), ("report_html", w.html.display().to_string())],
                Err(e) => vec![("report_not_written", e.to_string())],
            };
            return report_suite(report, &report.drill, files);
        }
        Ended::CouldNotRun(e) => {
            let case = Case {
                class: format!("{}.run", f.drill()),
                name: "the drill ran".into(),
                seconds: 0.0,
                outcome: Outcome::Error(e.to_string()),
            };
            (vec![case], 0.0, vec![("result", "could not run".to_string())])
        }
        Ended::NotStarted => {
            let case = Case {
                class: format!("{}.run", f.drill()),
                name: "the drill ran".into(),
                seconds: 0.0,
                outcome: Outcome::Skipped("stopped before it started".into()),
            };
            (vec![case], 0.0, vec![("result", "not started".to_string())])
        }
    };
    render(Run { name: f.drill(), id: None, timestamp: chrono::Utc::now() }, cases, seconds, properties)
}

fn render(run: Run<'_>, cases: Vec<Case>, seconds: f64, properties: Vec<(&'static str, String)>) -> Suite {
    let count = |p: fn(&Outcome) -> bool| cases.iter().filter(|c| p(&c.outcome)).count();
    let mut s = Suite {
        tests: cases.len(),
        failures: count(|o| matches!(o, Outcome::Failed(_))),
        errors: count(|o| matches!(o, Outcome::Error(_))),
        skipped: count(|o| matches!(o, Outcome::Skipped(_))),
        seconds,
        xml: String::new(),
    };
    let _ = write!(
        s.xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\"{}>\n    <properties>\n",
        esc(run.name),
        s.tests,
        s.failures,
        s.errors,
        s.skipped,
        s.seconds,
        run.timestamp.format("%Y-%m-%dT%H:%M:%S"),
        run.id.map(|id| format!(" id=\"{}\"", esc(id))).unwrap_or_default()
    );
    for (k, v) in &properties {
        let _ = writeln!(s.xml, "      <property name=\"{k}\" value=\"{}\"/>", esc(v));
    }
    s.xml.push_str("    </properties>\n");
    for c in &cases {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            esc(&c.class),
            esc(&c.name),
            c.seconds
        );
        let _ = match &c.outcome {
            Outcome::Passed => writeln!(s.xml, "{open}/>"),
            Outcome::Failed(m) => {
                writeln!(s.xml, "{open}>\n      <failure message=\"{0}\">{0}</failure>\n    </testcase>", esc(m))
            }
            Outcome::Error(m) => {
                writeln!(s.xml, "{open}>\n      <error message=\"{0}\">{0}</error>\n    </testcase>", esc(m))
            }
            Outcome::Skipped(m) => writeln!(s.xml, "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>", esc(m)),
        };
    }
    s.xml.push_str("  </testsuite>\n");
    s
}

/// The JUnit document of stored reports (`report junit`): each a suite named after its drill and run
/// (`orders-pitr run 0123456789ab`: one drill's runs are told apart), stamped with the run's start, with the
/// file it is stored in.
pub(crate) fn document_of(reports: &[(&Report, String)]) -> String {
    let suites: Vec<(usize, Suite)> = reports
        .iter()
        .enumerate()
        .map(|(i, (r, file))| {
            (i, report_suite(r, &format!("{} run {}", r.drill, r.id), vec![("report", file.clone())]))
        })
        .collect();
    document(&suites)
}

fn document(suites: &[(usize, Suite)]) -> String {
    let sum = |f: fn(&Suite) -> usize| suites.iter().map(|(_, s)| f(s)).sum::<usize>();
    let mut o = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"stackdrill\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">\n",
        sum(|s| s.tests),
        sum(|s| s.failures),
        sum(|s| s.errors),
        suites.iter().map(|(_, s)| s.seconds).sum::<f64>()
    );
    for (_, s) in suites.iter() {
        o.push_str(&s.xml);
    }
    o.push_str("</testsuites>\n");
    o
}

impl Junit {
    pub(crate) fn new(path: PathBuf) -> Junit {
        Junit { path, suites: Mutex::new(Vec::new()) }
    }

    /// The whole document, drills in the order they were given.
    fn document(&self) -> String {
        let Ok(mut suites) = self.suites.lock() else { return String::new() };
        suites.sort_by_key(|(i, _)| *i);
        document(&suites)
    }
}

impl Reporter for Junit {
    fn finished<'a>(&'a self, f: &'a Finished) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(mut s) = self.suites.lock() {
                s.push((f.index, suite(f)));
            }
        })
    }

    fn done(&self, _stats: &Stats) {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = crate::report::atomic_write(&self.path, self.document().as_bytes()) {
            crate::ui::diag!("warning: cannot write the JUnit report `{}`: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `report junit` stamps each suite with its run's start (not the export time) and names the run; a
    /// control character in a check's detail is shown, not carried.
    #[test]
    fn stored_reports_are_stamped_with_their_run_and_named_by_it() {
        let mut r = crate::report::golden_tests::fixed();
        r.checks[0].detail = "2 rows missing\u{1b}[2K\u{202e}".into();
        let xml = document_of(&[(&r, "reports/r.json".to_string())]);
        let stamp = r.started_at.format("%Y-%m-%dT%H:%M:%S").to_string();
        assert!(xml.contains(&format!("timestamp=\"{stamp}\"")), "{xml}");
        // A case per check, RTO, RPO and the teardown.
        let cases = r.checks.len() + 3;
        assert!(xml.contains(&format!("<testsuite name=\"{} run {}\" tests=\"{cases}\"", r.drill, r.id)), "{xml}");
        assert!(xml.contains(&format!("timestamp=\"{stamp}\" id=\"{}\">", r.id)), "{xml}");
        assert!(xml.contains("2 rows missing\\u{1b}[2K\\u{202e}") && !xml.contains('\u{1b}'), "{xml}");
    }
}
