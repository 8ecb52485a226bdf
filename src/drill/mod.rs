//! The drill engine: restore a backup to a point in time into scratch, verify it, tear it down, report.

pub(crate) mod cleanup;
mod error;
pub(crate) mod events;
pub(crate) mod fleet;
pub(crate) mod guard;
mod judge;
pub(crate) mod metrics;
mod phase;
mod record;
pub(crate) mod restore;
pub(crate) mod runner;
pub(crate) mod source;
mod target;
pub(crate) mod verify;

pub(crate) use error::DrillError;
pub(crate) use runner::{RunOptions, run};

/// Cancellation shared by a run and its signal handler.
#[derive(Clone)]
pub(crate) struct Cancel(tokio::sync::watch::Receiver<bool>);

impl Cancel {
    pub(crate) fn new() -> (tokio::sync::watch::Sender<bool>, Cancel) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Cancel(rx))
    }

    /// Resolves once cancellation is requested; never, if the sender is gone without requesting it.
    pub(crate) async fn cancelled(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|v| *v).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
