//! The drill report, schema `stackdrill.report/v1`. JSON is the record; Markdown renders the same content.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::drill::restore::BackupUsed;
use crate::drill::verify::CheckResult;

pub(crate) const SCHEMA: &str = "stackdrill.report/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    Passed,
    Failed,
    Error,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) schema: String,
    pub(crate) id: String,
    pub(crate) drill: String,
    pub(crate) description: Option<String>,
    pub(crate) result: Verdict,
    /// Why the result is not `passed`, in one line.
    pub(crate) reason: Option<String>,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
    pub(crate) tool: Tool,
    pub(crate) operator: String,
    pub(crate) trigger: String,
    pub(crate) drill_file: FileRef,
    pub(crate) source: Source,
    pub(crate) target: Target,
    pub(crate) objectives: Objectives,
    pub(crate) measured: Measured,
    pub(crate) phases: Vec<Phase>,
    pub(crate) checks: Vec<CheckResult>,
    pub(crate) teardown: TeardownRecord,
    pub(crate) runbook: Option<FileRef>,
    pub(crate) controls: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Tool {
    pub(crate) name: String,
    pub(crate) version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileRef {
    pub(crate) path: String,
    pub(crate) sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Source {
    pub(crate) provider: String,
    pub(crate) details: BTreeMap<String, String>,
    pub(crate) backup: Option<BackupUsed>,
    /// Where the scratch ran (no credentials).
    pub(crate) scratch: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Target {
    pub(crate) time: Option<DateTime<Utc>>,
    pub(crate) selection: String,
    pub(crate) seed: Option<u64>,
    pub(crate) recovery: String,
    pub(crate) window: Option<WindowRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WindowRecord {
    pub(crate) earliest: DateTime<Utc>,
    pub(crate) latest: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Objectives {
    pub(crate) rto_seconds: f64,
    pub(crate) rpo_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// Restore start until the scratch accepts queries as a primary.
    pub(crate) rto_seconds: Option<f64>,
    /// Target time minus the newest commit present in the restore.
    pub(crate) rpo_seconds: Option<f64>,
    /// How the RPO figure was obtained.
    pub(crate) rpo_basis: String,
    pub(crate) newest_commit: Option<DateTime<Utc>>,
    pub(crate) rto_met: bool,
    pub(crate) rpo_met: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) seconds: f64,
    /// `passed`, `failed`, `error` or `skipped`.
    pub(crate) status: String,
    pub(crate) detail: Option<String>,
    /// AWS API calls the phase made, by operation (retried attempts included).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) api_calls: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TeardownRecord {
    pub(crate) status: String,
    pub(crate) at: DateTime<Utc>,
    pub(crate) detail: String,
}
