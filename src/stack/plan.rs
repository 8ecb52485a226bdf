//! The plan: declared resources against live state, as create / update in place / replace / delete /
//! no-op steps with property-level diffs, rendered as text (Terraform-like), Markdown or JSON.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::live::{LiveState, Owner};
use super::model::{Resource, ResourceKind};
use super::resources::{forces_replacement, holds_data};

pub(crate) const FORMAT: &str = "stackdrill.plan/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
    /// Exists under the declared name but is not this stack's: never adopted silently.
    Conflict,
    /// Declared but not applicable here (Shield Advanced without a subscription).
    Skip,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Change {
    pub(crate) property: String,
    pub(crate) before: Value,
    pub(crate) after: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) forces_replacement: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Step {
    pub(crate) action: Action,
    pub(crate) kind: ResourceKind,
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) changes: Vec<Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Replacing or deleting this destroys data: apply needs `--allow-data-loss`.
    #[serde(default)]
    pub(crate) data_loss: bool,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
            Action::Conflict => "conflict",
            Action::Skip => "skip",
        }
    }
}

impl Step {
    pub(crate) fn address(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Plan {
    pub(crate) format: String,
    pub(crate) stack: String,
    pub(crate) stack_file: String,
    /// The stack file the plan was computed from: a saved plan is stale once it changes.
    pub(crate) stack_sha256: String,
    pub(crate) region: String,
    /// Live state the plan was computed from: a saved plan is stale once it changes.
    pub(crate) live_sha256: String,
    pub(crate) created_at: String,
    pub(crate) steps: Vec<Step>,
    pub(crate) notes: Vec<String>,
    /// API calls made to read live state, per operation.
    pub(crate) read_calls: std::collections::BTreeMap<String, u64>,
}

impl Plan {
    pub(crate) fn count(&self, a: Action) -> usize {
        self.steps.iter().filter(|s| s.action == a).count()
    }

    pub(crate) fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| !matches!(s.action, Action::NoOp | Action::Skip))
    }

    pub(crate) fn summary(&self) -> String {
        let mut s = format!(
            "{} to add, {} to change, {} to replace, {} to destroy, {} unchanged",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Replace),
            self.count(Action::Delete),
            self.count(Action::NoOp),
        );
        if self.count(Action::Conflict) > 0 {
            s.push_str(&format!(", {} in conflict", self.count(Action::Conflict)));
        }
        s
    }
}

/// Numbers compare by value (`50` and `50.0` are the same threshold); absent and `null` are the same.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| same(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null)))
        }
        _ => a == b,
    }
}

/// Steps in dependency order: declared resources first (as declared), then deletions in reverse.
pub(crate) fn diff(stack: &str, desired: &[Resource], live: &LiveState) -> Vec<Step> {
    let mut steps = Vec::new();
    for r in desired {
        let mut step = Step {
            action: Action::NoOp,
            kind: r.kind,
            name: r.name.clone(),
            changes: vec![],
            reason: None,
            data_loss: false,
        };
        match live.get(r) {
            None if r.kind == ResourceKind::ShieldProtection && !live.shield_subscribed => {
                step.action = Action::Skip;
                step.reason = Some(if r.props.get("mode").and_then(Value::as_str) == Some("required") {
                    "Shield Advanced is required but the account has no subscription".into()
                } else {
                    "no Shield Advanced subscription: Shield Standard (automatic) applies".into()
                });
            }
            None => {
                step.action = Action::Create;
                step.changes = r
                    .props
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| Change {
                        property: k.to_string(),
                        before: Value::Null,
                        after: v.clone(),
                        forces_replacement: None,
                    })
                    .collect();
            }
            Some(l) if l.owner != Owner::This => {
                step.action = Action::Conflict;
                step.reason = Some(match &l.owner {
                    Owner::Other(s) => format!("exists and belongs to stack `{s}`"),
                    _ => format!(
                        "`{}` exists without stackdrill's tags; it is never adopted silently: \
                         `stackdrill stack import {stack} {}` adopts it, or rename it in the file",
                        l.name,
                        r.address()
                    ),
                });
            }
            Some(l) => {
                for (k, want) in &r.props {
                    if r.kind == ResourceKind::RdsInstance && super::resources::rds::owned_elsewhere(k, l) {
                        continue;
                    }
                    let have = l.props.get(*k).unwrap_or(&Value::Null);
                    let matches = match (r.kind, *k, want, have) {
                        (ResourceKind::RdsInstance, "engine", Value::String(w), Value::String(h)) => {
                            super::resources::rds::engine_satisfies(w, h)
                        }
                        _ => same(want, have),
                    };
                    if !matches {
                        step.changes.push(Change {
                            property: k.to_string(),
                            before: have.clone(),
                            after: want.clone(),
                            forces_replacement: forces_replacement(r.kind, k).map(str::to_string),
                        });
                    }
                }
                if step.changes.iter().any(|c| c.forces_replacement.is_some()) {
                    step.action = Action::Replace;
                    step.reason = step.changes.iter().find_map(|c| c.forces_replacement.clone());
                    step.data_loss = holds_data(r.kind);
                } else if !step.changes.is_empty() {
                    step.action = Action::Update;
                    if let Some(why) = step.changes.iter().find_map(|c| lowers_retention(r.kind, c)) {
                        step.data_loss = true;
                        step.reason = Some(why);
                    }
                }
            }
        }
        steps.push(step);
    }
    let order: Vec<ResourceKind> = desired.iter().map(|r| r.kind).collect();
    let mut deletes: Vec<Step> = live
        .orphans
        .iter()
        .map(|o| Step {
            action: Action::Delete,
            kind: o.kind,
            name: o.name.clone(),
            changes: vec![],
            reason: Some("tagged for this stack and no longer declared".into()),
            data_loss: holds_data(o.kind),
        })
        .collect();
    deletes.sort_by_key(|s| std::cmp::Reverse(order.iter().position(|k| *k == s.kind).unwrap_or(usize::MAX)));
    steps.extend(deletes);
    steps
}

/// Lowering how long backups are kept is data loss: RDS deletes automated backups past the new
/// retention at once (0 deletes them all), and AWS Backup expires recovery points sooner.
fn lowers_retention(kind: ResourceKind, c: &Change) -> Option<String> {
    let days = |v: &Value| v.as_i64();
    match (kind, c.property.as_str()) {
        (ResourceKind::RdsInstance, "backup-retention-days") => match (days(&c.before), days(&c.after)) {
            (Some(before), Some(after)) if after < before => Some(format!(
                "lowers backup retention from {before} to {after} days: RDS deletes the automated backups past it"
            )),
            _ => None,
        },
        (ResourceKind::BackupPlan, "rules") => {
            let rules = |v: &Value| -> Vec<(String, Option<i64>)> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|r| (r["name"].as_str().unwrap_or("").to_string(), r["retention-days"].as_i64()))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let before = rules(&c.before);
            rules(&c.after).into_iter().find_map(|(name, after)| {
                let (_, was) = before.iter().find(|(n, _)| *n == name)?;
                // `None` keeps recovery points forever: any number is lower.
                let lower = match (was, after) {
                    (None, Some(_)) => true,
                    (Some(w), Some(a)) => a < *w,
                    _ => false,
                };
                lower.then(|| {
                    let show = |d: Option<i64>| d.map_or("forever".to_string(), |d| format!("{d} days"));
                    format!("lowers retention of backup rule `{name}` from {} to {}", show(*was), show(after))
                })
            })
        }
        _ => None,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

fn symbol(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Create => ("+", "will be created"),
        Action::Update => ("~", "will be updated in place"),
        Action::Replace => ("-/+", "must be replaced"),
        Action::Delete => ("-", "will be destroyed"),
        Action::Conflict => ("!", "is in conflict"),
        Action::Skip => ("·", "is skipped"),
        Action::NoOp => (" ", "is unchanged"),
    }
}

/// Terraform-like text: one block per step that does something.
pub(crate) fn render_text(p: &Plan) -> String {
    let mut out = String::new();
    for s in p.steps.iter().filter(|s| s.action != Action::NoOp) {
        let (sym, what) = symbol(s.action);
        let why = s.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
        let loss = if s.data_loss { " [DATA LOSS: needs --allow-data-loss]" } else { "" };
        out.push_str(&format!("  # {} {what}{why}{loss}\n", s.address()));
        out.push_str(&format!("{sym:>3} {} \"{}\" {{\n", s.kind, s.name));
        for c in &s.changes {
            let line = match s.action {
                Action::Create => format!("      + {} = {}", c.property, show(&c.after)),
                _ => format!("      ~ {} = {} -> {}", c.property, show(&c.before), show(&c.after)),
            };
            out.push_str(&line);
            if c.forces_replacement.is_some() {
                out.push_str("  # forces replacement");
            }
            out.push('\n');
        }
        out.push_str("    }\n\n");
    }
    for n in &p.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!("Plan for stack `{}` in {}: {}.\n", p.stack, p.region, p.summary()));
    out
}

/// For a pull-request comment or `$GITHUB_STEP_SUMMARY`.
pub(crate) fn render_markdown(p: &Plan) -> String {
    let mut out = format!("### stackdrill plan: `{}` ({})\n\n**{}**\n\n", p.stack, p.region, p.summary());
    let acting: Vec<&Step> = p.steps.iter().filter(|s| s.action != Action::NoOp).collect();
    if !acting.is_empty() {
        out.push_str("| | resource | action | why |\n|---|---|---|---|\n");
        for s in &acting {
            let (sym, what) = symbol(s.action);
            let loss = if s.data_loss { " ⚠ data loss" } else { "" };
            out.push_str(&format!(
                "| `{sym}` | `{}` | {what}{loss} | {} |\n",
                s.address(),
                s.reason.clone().unwrap_or_default().replace('|', "\\|")
            ));
        }
        out.push_str("\n<details><summary>Property changes</summary>\n\n```diff\n");
        for s in acting.iter().filter(|s| !s.changes.is_empty()) {
            out.push_str(&format!("# {}\n", s.address()));
            for c in &s.changes {
                if !c.before.is_null() {
                    out.push_str(&format!("- {} = {}\n", c.property, show(&c.before)));
                }
                out.push_str(&format!("+ {} = {}\n", c.property, show(&c.after)));
            }
        }
        out.push_str("```\n\n</details>\n\n");
    }
    for n in &p.notes {
        out.push_str(&format!("> {n}\n"));
    }
    out.push_str(&format!(
        "\n<sub>live state sha256 `{}` · stack file sha256 `{}`</sub>\n",
        crate::report::chain::short_hash(&p.live_sha256),
        crate::report::chain::short_hash(&p.stack_sha256)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(property: &str, before: Value, after: Value) -> Change {
        Change { property: property.into(), before, after, forces_replacement: None }
    }

    /// With AwsBackupRecoveryPointArn set, AWS Backup owns the retention: a different value is no change.
    #[test]
    fn retention_aws_backup_owns_is_not_planned() {
        use crate::stack::live::{Live, LiveState, Owner};
        let r = Resource::new(ResourceKind::RdsInstance, "db").prop("backup-retention-days", 14).prop("multi-az", true);
        let live = |managed: bool| {
            let mut l = Live::new(ResourceKind::RdsInstance, "db", "arn:aws:rds:ap-southeast-1:1:db:db")
                .prop("backup-retention-days", 35)
                .prop("multi-az", true)
                .prop(crate::stack::resources::rds::BACKUP_MANAGED, managed);
            l.owner = Owner::This;
            let mut st = LiveState::default();
            st.found.insert(r.address(), l);
            st
        };
        let steps = diff("s", std::slice::from_ref(&r), &live(true));
        assert_eq!(steps[0].action, Action::NoOp, "{:?}", steps[0]);
        let steps = diff("s", std::slice::from_ref(&r), &live(false));
        assert_eq!(steps[0].action, Action::Update);
        assert_eq!(steps[0].changes[0].property, "backup-retention-days");
    }

    #[test]
    fn lowering_backup_retention_is_data_loss_raising_it_is_not() {
        let rds =
            |b, a| lowers_retention(ResourceKind::RdsInstance, &change("backup-retention-days", json!(b), json!(a)));
        assert!(rds(14, 7).unwrap().contains("from 14 to 7 days"));
        assert!(rds(7, 0).is_some(), "0 deletes every automated backup");
        assert!(rds(7, 14).is_none() && rds(7, 7).is_none());
        let plan = |b: Value, a: Value| lowers_retention(ResourceKind::BackupPlan, &change("rules", b, a));
        let rules = |d: Option<i64>| json!([{ "name": "daily", "schedule": "cron(0 1 * * ? *)", "retention-days": d }]);
        assert!(plan(rules(Some(35)), rules(Some(7))).unwrap().contains("`daily` from 35 days to 7 days"));
        assert!(plan(rules(None), rules(Some(400))).unwrap().contains("from forever"));
        assert!(plan(rules(Some(7)), rules(Some(35))).is_none());
        assert!(plan(rules(Some(7)), json!([{ "name": "other", "retention-days": 1 }])).is_none());
        assert!(lowers_retention(ResourceKind::RdsInstance, &change("multi-az", json!(true), json!(false))).is_none());
    }

    /// The plan text and Markdown a reviewer reads, pinned: a create, an update that loses data, a no-op.
    #[test]
    fn plan_text_and_markdown_snapshot() {
        use crate::stack::live::{Live, LiveState, Owner};
        let db = Resource::new(ResourceKind::RdsInstance, "db").prop("backup-retention-days", 7).prop("multi-az", true);
        let topic = Resource::new(ResourceKind::SnsTopic, "alerts").prop("kms-key", "alias/app");
        let mut live = LiveState::default();
        let mut l = Live::new(ResourceKind::RdsInstance, "db", "arn:aws:rds:ap-southeast-1:1:db:db")
            .prop("backup-retention-days", 35)
            .prop("multi-az", true);
        l.owner = Owner::This;
        live.found.insert(db.address(), l);
        let plan = Plan {
            format: "stackdrill.plan/v1".into(),
            stack: "prod".into(),
            stack_file: "stacks/prod.yaml".into(),
            stack_sha256: "0".repeat(64),
            region: "ap-southeast-1".into(),
            live_sha256: "1".repeat(64),
            created_at: "2026-11-30T03:00:00Z".into(),
            steps: diff("prod", &[db, topic], &live),
            notes: vec!["a note for the reviewer".into()],
            read_calls: Default::default(),
        };
        insta::assert_snapshot!("plan_text", render_text(&plan));
        insta::assert_snapshot!("plan_markdown", render_markdown(&plan));
    }
}
