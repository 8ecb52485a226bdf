//! Polling with exponential backoff and full jitter: long waits (an RDS restore takes many minutes) cost
//! few describe calls, and concurrent drills do not poll in lockstep.

use std::time::Duration;

use rand::Rng;

pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `first` and grows by half each step up to `max`.
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self { next: first, max }
    }

    /// The standard describe-polling cadence: 2 s growing to 30 s.
    pub(crate) fn describe() -> Self {
        Self::new(Duration::from_secs(2), Duration::from_secs(30))
    }

    /// Sleeps for a random time in [next/2, next], then grows `next`.
    pub(crate) async fn wait(&mut self) {
        let ceiling = self.next.as_millis().max(2) as u64;
        let ms = rand::thread_rng().gen_range(ceiling / 2..=ceiling);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.next = (self.next * 3 / 2).min(self.max);
    }
}
