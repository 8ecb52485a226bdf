//! Cancellation shared by the runs of a fleet and its signal handler.

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
