//! SQLite has one writer at a time. Write transactions of this process queue here, in order and
//! without polling, instead of in SQLite's busy handler, which sleeps and retries and turns
//! contention into long tail latencies. Readers never wait on it.
//!
//! A large write (megabytes of recorded results) lets the small writes waiting when its turn
//! comes go first, a bounded number of times, so that one tenant's uploads do not put a whole
//! upload's transaction in front of every other tenant's session creation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, MutexGuard};

/// How many times a large write lets waiting small writes go first before it takes its turn.
const LARGE_WRITE_YIELDS: usize = 8;

/// The queue of this process's writers.
#[derive(Debug, Default)]
pub(crate) struct WriteGate {
    turn: Mutex<()>,
    /// Small writes waiting for their turn.
    small_waiting: AtomicUsize,
}

/// A small write counted as waiting until it has its turn or gives up.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WriteGate {
    /// The turn of a small write.
    pub(crate) async fn small(self: &Arc<Self>) -> MutexGuard<'_, ()> {
        self.small_waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.small_waiting);
        self.turn.lock().await
    }

    /// The turn of a large write: when small writes wait as it gets the turn, it queues again
    /// behind them, up to [`LARGE_WRITE_YIELDS`] times.
    pub(crate) async fn large(self: &Arc<Self>) -> MutexGuard<'_, ()> {
        for _ in 0..LARGE_WRITE_YIELDS {
            let turn = self.turn.lock().await;
            if self.small_waiting.load(Ordering::SeqCst) == 0 {
                return turn;
            }
            drop(turn);
            tokio::task::yield_now().await;
        }
        self.turn.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_large_write_lets_small_ones_waiting_go_first() {
        let gate = Arc::new(WriteGate::default());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let holder = gate.small().await;
        let writer = |large: bool| {
            let (gate, order) = (gate.clone(), order.clone());
            tokio::spawn(async move {
                let _turn = if large { gate.large().await } else { gate.small().await };
                order.lock().unwrap().push(if large { "large" } else { "small" });
            })
        };
        // The large write queues first, the small one after it.
        let large = writer(true);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let small = writer(false);
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(holder);
        large.await.unwrap();
        small.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["small", "large"]);
    }
}
