//! One phase of a run: bounded by its deadline, interruptible by a signal, and a panic inside it becomes
//! the phase's error, so a bug in a provider or a verifier never skips the teardown.

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;

use super::Cancel;
use super::error::RestoreError;
use crate::report::Verdict;

/// A panic caught in a phase: the text is the panic's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Panicked(pub(super) String);

/// How a phase ended when it did not return a value.
pub(super) enum Stop<E> {
    Interrupted,
    TimedOut(Duration),
    Failed(E),
    /// The phase's code panicked; the text is the panic's message.
    Panicked(String),
}

/// Runs `fut` until it finishes, `timeout` passes, or a signal cancels the run; a panic is caught.
pub(super) async fn bounded<T, E>(
    cancel: &Cancel,
    timeout: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Stop<E>> {
    let caught = std::panic::AssertUnwindSafe(fut).catch_unwind();
    tokio::select! {
        r = tokio::time::timeout(timeout, caught) => match r {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(Stop::Failed(e)),
            Ok(Err(panic)) => Err(Stop::Panicked(panic_text(panic))),
            Err(_) => Err(Stop::TimedOut(timeout)),
        },
        _ = cancel.cancelled() => Err(Stop::Interrupted),
    }
}

/// Awaits `fut`, turning a panic into `Err` with its message (for the teardown, which is not bounded by
/// a cancel and must still produce a record).
pub(super) async fn unwinding<T>(fut: impl Future<Output = T>) -> Result<T, Panicked> {
    std::panic::AssertUnwindSafe(fut).catch_unwind().await.map_err(|p| Panicked(panic_text(p)))
}

/// The message a panic carried.
pub(super) fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// The verdict and reason a phase that ended early stands for.
pub(super) fn stop_reason(phase: &str, stop: Stop<RestoreError>) -> (Verdict, String) {
    match stop {
        Stop::Interrupted => (
            Verdict::Error,
            format!("interrupted by the operator (a stop signal) during the {phase} phase; the scratch was torn down"),
        ),
        Stop::TimedOut(d) => {
            (Verdict::Failed, format!("the {phase} phase did not finish within {}", humantime::format_duration(d)))
        }
        Stop::Panicked(what) => (Verdict::Error, format!("the {phase} phase panicked (a bug): {what}")),
        Stop::Failed(e) => {
            if let Some(hint) = e.hint() {
                tracing::info!(phase, hint = %hint, "what to do about the {phase} phase's error");
            }
            (if e.is_failed() { Verdict::Failed } else { Verdict::Error }, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_phase_that_panics_stops_with_the_panic_not_the_process() {
        let (_tx, cancel) = Cancel::new();
        let r: Result<(), Stop<RestoreError>> =
            bounded(&cancel, Duration::from_secs(5), async { panic!("provider bug") }).await;
        assert!(matches!(r, Err(Stop::Panicked(ref m)) if m == "provider bug"));
        let (v, why) = stop_reason("restore", Stop::<RestoreError>::Panicked("provider bug".into()));
        assert_eq!(v, Verdict::Error);
        assert!(why.contains("restore phase panicked") && why.contains("provider bug"), "{why}");
    }

    #[tokio::test]
    async fn a_phase_times_out_or_is_interrupted() {
        let (tx, cancel) = Cancel::new();
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), RestoreError>(())
        };
        assert!(matches!(bounded(&cancel, Duration::from_millis(20), slow()).await, Err(Stop::TimedOut(_))));
        tx.send(true).unwrap();
        assert!(matches!(bounded(&cancel, Duration::from_secs(60), slow()).await, Err(Stop::Interrupted)));
    }

    #[tokio::test]
    async fn a_teardown_that_panics_is_an_error_not_a_lost_record() {
        let r = unwinding(async { panic!("teardown bug") }).await;
        assert_eq!(r.err().map(|p| p.0).as_deref(), Some("teardown bug"));
    }
}
