//! What a running drill tells the outside world; only `ui/` turns these into text.

use std::sync::Arc;

use super::verify::CheckResult;
use crate::report::model::PhaseStatus;

#[derive(Debug, Clone)]
pub(crate) enum Event {
    PhaseStarted { drill: String, phase: &'static str },
    PhaseProgress { drill: String, phase: &'static str, message: String },
    PhaseFinished { drill: String, phase: &'static str, status: PhaseStatus, seconds: f64, detail: Option<String> },
    CheckFinished { drill: String, check: CheckResult },
}

/// Where events go; cheap to clone into tasks.
#[derive(Clone)]
pub(crate) struct EventSink(Arc<dyn Fn(Event) + Send + Sync>);

impl EventSink {
    pub(crate) fn new(f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub(crate) fn emit(&self, event: Event) {
        (self.0)(event)
    }

    /// A progress message for `phase` of `drill`.
    pub(crate) fn progress(&self, drill: &str, phase: &'static str, message: impl Into<String>) {
        self.emit(Event::PhaseProgress { drill: drill.to_string(), phase, message: message.into() });
    }
}
