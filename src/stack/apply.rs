//! Applying a plan: dependency levels in order, the steps of one level at once (bounded), deletions last
//! in reverse. Each step reports applied / failed / not attempted, so a partial failure says exactly what
//! changed, and a re-run converges (create and update read live state afresh).

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use super::live::{Clients, LiveState};
use super::model::Resource;
use super::plan::{Action, Plan, Step};
use super::resources::{self, Ctx};

/// Steps of one level run this many at a time.
const PARALLEL: usize = 8;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result", content = "error")]
pub(crate) enum StepResult {
    Applied,
    Failed(String),
    NotAttempted,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    pub(crate) address: String,
    pub(crate) action: Action,
    #[serde(flatten)]
    pub(crate) result: StepResult,
    pub(crate) seconds: f64,
}

/// How deep each declared resource sits: 0 needs nothing, n needs something at n-1.
fn levels(desired: &[Resource]) -> HashMap<String, usize> {
    let mut level: HashMap<String, usize> = HashMap::new();
    for r in desired {
        let l = r.depends_on.iter().filter_map(|d| level.get(d)).map(|l| l + 1).max().unwrap_or(0);
        level.insert(r.address(), l);
    }
    level
}

async fn run_step(
    c: &Clients,
    ctx: &Ctx,
    step: &Step,
    desired: &HashMap<String, &Resource>,
    live: &LiveState,
) -> StepResult {
    let key = format!("{}/{}", step.kind, step.name);
    let r = desired.get(&key);
    let l = live.found.get(&key).or_else(|| live.orphans.iter().find(|o| o.kind == step.kind && o.name == step.name));
    let res = match (step.action, r, l) {
        (Action::Create, Some(r), _) => resources::create(c, r, ctx).await,
        (Action::Update, Some(r), Some(l)) => resources::update(c, r, l, ctx).await,
        (Action::Replace, Some(r), Some(l)) => match resources::delete(c, l, ctx).await {
            Ok(()) => resources::create(c, r, ctx).await,
            Err(e) => Err(e.into()),
        },
        (Action::Delete, _, Some(l)) => resources::delete(c, l, ctx).await.map_err(Into::into),
        _ => return StepResult::Applied,
    };
    match res {
        Ok(()) => StepResult::Applied,
        Err(e) => StepResult::Failed(e.to_string()),
    }
}

/// Runs the plan's acting steps; `progress` hears one line per step.
#[tracing::instrument(skip_all, fields(stack = %plan.stack))]
pub(crate) async fn apply(
    c: &Clients,
    plan: &Plan,
    desired: &[Resource],
    live: &LiveState,
    progress: &(dyn Fn(String) + Sync),
) -> Vec<Outcome> {
    let ctx = Ctx { stack: plan.stack.clone(), ids: std::sync::Mutex::new(live.ids.clone()) };
    let by_addr: HashMap<String, &Resource> = desired.iter().map(|r| (r.address(), r)).collect();
    let level = levels(desired);
    let acting: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Create | Action::Update | Action::Replace | Action::Delete))
        .collect();
    let max = level.values().copied().max().unwrap_or(0);
    // Declared steps by level, then deletions (already in reverse dependency order) one at a time.
    let mut batches: Vec<Vec<&Step>> = (0..=max)
        .map(|l| {
            acting
                .iter()
                .filter(|s| s.action != Action::Delete && level.get(&format!("{}/{}", s.kind, s.name)) == Some(&l))
                .copied()
                .collect()
        })
        .collect();
    batches.extend(acting.iter().filter(|s| s.action == Action::Delete).map(|s| vec![*s]));
    let mut outcomes = Vec::new();
    let mut failed = false;
    for batch in batches {
        if batch.is_empty() {
            continue;
        }
        if failed {
            outcomes.extend(batch.iter().map(|s| Outcome {
                address: s.address(),
                action: s.action,
                result: StepResult::NotAttempted,
                seconds: 0.0,
            }));
            continue;
        }
        let done: Vec<Outcome> = stream::iter(batch)
            .map(|s| {
                let (ctx, by_addr) = (&ctx, &by_addr);
                async move {
                    let started = std::time::Instant::now();
                    let result = run_step(c, ctx, s, by_addr, live).await;
                    let seconds = started.elapsed().as_secs_f64();
                    let what = match &result {
                        StepResult::Applied => "done".to_string(),
                        StepResult::Failed(e) => format!("FAILED: {e}"),
                        StepResult::NotAttempted => "not attempted".into(),
                    };
                    progress(format!("{} {}: {what} ({seconds:.1}s)", s.action.as_str(), s.address()));
                    Outcome { address: s.address(), action: s.action, result, seconds }
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        failed = done.iter().any(|o| matches!(o.result, StepResult::Failed(_)));
        outcomes.extend(done);
    }
    outcomes
}
