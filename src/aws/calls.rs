//! Counts the API calls a client makes, per operation, including retried attempts, so reports can say
//! what each drill phase cost and benchmarks can count describe calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// `Operation` → attempts so far.
pub(crate) type Calls = BTreeMap<String, u64>;

/// An interceptor to add to each client config; clones share one tally.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallCounter {
    tally: Arc<Mutex<Calls>>,
}

impl CallCounter {
    pub(crate) fn snapshot(&self) -> Calls {
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The calls made since `before` was taken.
    pub(crate) fn since(&self, before: &Calls) -> Calls {
        let mut out = Calls::new();
        for (op, n) in self.snapshot() {
            let d = n - before.get(&op).copied().unwrap_or(0);
            if d > 0 {
                out.insert(op, d);
            }
        }
        out
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "stackdrill-call-counter"
    }

    fn read_before_attempt(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map(|m| m.name().to_string()).unwrap_or_else(|| "unknown".into());
        if let Ok(mut t) = self.tally.lock() {
            *t.entry(op).or_insert(0) += 1;
        }
        Ok(())
    }
}
