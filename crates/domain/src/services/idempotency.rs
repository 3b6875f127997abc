//! Safe retries, the service side: what a key holds, its answer recorded, expired keys
//! forgotten. The rules are in [`crate::idempotency`].

use chrono::Duration;

use super::{Error, Ports};
use crate::application::Caller;
use crate::idempotency::{
    ANSWER_LOST_AFTER_SECONDS, IDEMPOTENCY_WINDOW_SECONDS, IdempotencyClaim, IdempotencyKey,
    NextStep, RecordedAnswer, StoredIdempotency,
};

/// Reads and records idempotency keys.
#[derive(Clone)]
pub struct IdempotencyService {
    ports: Ports,
}

impl IdempotencyService {
    pub(super) fn new(ports: Ports) -> Self {
        Self { ports }
    }

    /// What the caller's `key` holds, when it is still remembered; an expired key is forgotten
    /// on the way, so that it can be used again.
    pub async fn find(
        &self, caller: &Caller, key: &IdempotencyKey,
    ) -> Result<Option<StoredIdempotency>, Error> {
        let now = self.ports.clock.now();
        match self.ports.idempotency.find_idempotency(caller.application_id, key).await? {
            Some(stored) if stored.live_at(now) => Ok(Some(stored)),
            Some(_) => {
                self.ports
                    .idempotency
                    .forget_idempotency(Some(caller.application_id), Some(key), now - window())
                    .await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// What a request with `key` and the body hash `request_hash` does next: replay the first
    /// answer, refuse a key reused with another request, render a lost answer again, wait for
    /// the first request, or make the write.
    pub async fn next_step(
        &self, caller: &Caller, key: &IdempotencyKey, request_hash: &str,
    ) -> Result<NextStep, Error> {
        let Some(stored) = self.find(caller, key).await? else {
            return Ok(NextStep::Execute);
        };
        if stored.request_hash != request_hash {
            return Ok(NextStep::Reused);
        }
        if let Some(answer) = stored.answer {
            return Ok(NextStep::Replay(answer));
        }
        let age = self.ports.clock.now() - stored.created_at;
        if age > Duration::seconds(ANSWER_LOST_AFTER_SECONDS) {
            Ok(NextStep::RenderAgain(stored))
        } else {
            Ok(NextStep::Wait)
        }
    }

    /// A claim on `key` for a request of this hash, made now.
    pub fn claim(&self, key: IdempotencyKey, request_hash: String) -> IdempotencyClaim {
        IdempotencyClaim { key, request_hash, created_at: self.ports.clock.now() }
    }

    /// Records the answer of the write `key` guards (the first recorded stays).
    pub async fn record(
        &self, caller: &Caller, key: &IdempotencyKey, answer: &RecordedAnswer,
    ) -> Result<(), Error> {
        Ok(self.ports.idempotency.record_answer(caller.application_id, key, answer).await?)
    }

    /// Forgets every key older than the window; how many.
    pub async fn prune(&self) -> Result<u64, Error> {
        let before = self.ports.clock.now() - window();
        Ok(self.ports.idempotency.forget_idempotency(None, None, before).await?)
    }
}

fn window() -> Duration {
    Duration::seconds(IDEMPOTENCY_WINDOW_SECONDS)
}
