//! `stack validate | check`: the stack file, and the policy it must keep.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Serialize;

use super::drill::{ser_errors, yaml_files};
use super::{Failure, exit_codes};
use crate::config::{ConfigError, StackSpec, load_stack};
use crate::stack::policy::{self, Status};
use crate::ui::Printer;

const STACKS_DIR: &str = "stacks";

fn all_stack_files() -> Result<Vec<PathBuf>, Failure> {
    yaml_files(STACKS_DIR)
}

/// A name resolves to `stacks/<name>.yaml`; anything with a slash or a YAML extension is a path.
fn resolve_stack(arg: &str) -> Result<PathBuf, Failure> {
    if arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml") {
        return Ok(PathBuf::from(arg));
    }
    let candidate = Path::new(STACKS_DIR).join(format!("{arg}.yaml"));
    if candidate.is_file() {
        return Ok(candidate);
    }
    Err(Failure::could_not_run(anyhow!("no stack named `{arg}` (looked for `{}`)", candidate.display()), None))
}

fn load(path: &Path) -> Result<StackSpec, Failure> {
    load_stack(path).map_err(|errors| {
        for e in &errors {
            eprintln!("error: {e}");
        }
        Failure::could_not_run(anyhow!("{} problem(s) in `{}`", errors.len(), path.display()), None)
    })
}

pub(super) fn validate(paths: &[PathBuf], printer: Printer) -> Result<u8, Failure> {
    let files = if paths.is_empty() { all_stack_files()? } else { paths.to_vec() };
    #[derive(Serialize)]
    struct Entry {
        file: String,
        stack: Option<String>,
        /// What the stack declares, in dependency order.
        resources: Vec<crate::stack::model::Resource>,
        #[serde(serialize_with = "ser_errors")]
        errors: Vec<ConfigError>,
    }
    let entries: Vec<Entry> = files
        .iter()
        .map(|f| match load_stack(f) {
            Ok(s) => Entry {
                file: f.display().to_string(),
                resources: crate::stack::model::desired(&s),
                stack: Some(s.name),
                errors: vec![],
            },
            Err(errors) => Entry { file: f.display().to_string(), stack: None, resources: vec![], errors },
        })
        .collect();
    let bad: usize = entries.iter().map(|e| e.errors.len()).sum();
    if printer.is_json() {
        printer.json(&entries);
    } else {
        for e in &entries {
            if let Some(name) = &e.stack {
                printer.line(format!("ok    {} (stack `{name}`, {} resources)", e.file, e.resources.len()));
            }
        }
        for err in entries.iter().flat_map(|e| &e.errors) {
            eprintln!("error: {err}");
        }
    }
    if bad > 0 {
        return Err(Failure::could_not_run(
            anyhow!("{bad} problem(s) in {} file(s)", entries.iter().filter(|e| !e.errors.is_empty()).count()),
            None,
        ));
    }
    Ok(exit_codes::OK)
}

/// Exit 0 when every applicable rule passes, 1 when any fails (as Checkov does), 2 when the file is bad.
pub(super) fn check(stack: &str, printer: Printer) -> Result<u8, Failure> {
    let spec = load(&resolve_stack(stack)?)?;
    let findings = policy::check(&spec);
    let failed = findings.iter().filter(|f| f.status == Status::Fail).count();
    if printer.is_json() {
        #[derive(Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            finding: &'a policy::Finding,
            title: &'static str,
            soc2: &'static [&'static str],
            checkov: &'static str,
            aws_config: &'static str,
        }
        let rows: Vec<Row<'_>> = findings
            .iter()
            .filter_map(|f| {
                policy::rule(f.rule).map(|r| Row {
                    finding: f,
                    title: r.title,
                    soc2: r.soc2,
                    checkov: r.checkov,
                    aws_config: r.aws_config,
                })
            })
            .collect();
        printer.json(&rows);
    } else {
        for f in &findings {
            let status = match f.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::NotApplicable => "n/a ",
            };
            let soc2 = policy::rule(f.rule).map(|r| r.soc2.join(",")).unwrap_or_default();
            let resource = if f.resource.is_empty() { String::new() } else { format!("{}: ", f.resource) };
            printer.line(format!("{status}  {:<28} {resource}{}  [SOC2 {soc2}]", f.rule, f.message));
        }
        let passed = findings.iter().filter(|f| f.status == Status::Pass).count();
        printer.line(format!("stack `{}`: {passed} passed, {failed} failed", spec.name));
    }
    Ok(if failed > 0 { exit_codes::NOT_VERIFIED } else { exit_codes::OK })
}
