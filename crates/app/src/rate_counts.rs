//! Rate limits on PostgreSQL: every server counts in the database, so that N servers spend one
//! budget, and old windows are deleted every minute. On SQLite each process counts in memory.

use std::sync::Arc;

use handoff_domain::RepoError;
use handoff_http::rate_limit::{RateLimiter, RateLimits, SharedCounter, WINDOW_SECONDS};
use handoff_store::{DatabaseBackend, Store};

/// Counts in the database's `rate_limit_counters`.
struct DatabaseCounter(Store);

#[async_trait::async_trait]
impl SharedCounter for DatabaseCounter {
    async fn count(&self, bucket: &str, window_start: u64) -> Result<u64, RepoError> {
        let window_start = i64::try_from(window_start)
            .map_err(|_| RepoError::Internal("a window beyond the year 292e9".into()))?;
        self.0.count_request(bucket, window_start).await
    }
}

/// The limiter for `limits`: shared through the database on PostgreSQL, with a task deleting
/// past windows; in this process on SQLite.
pub fn limiter(limits: RateLimits, store: &Store) -> RateLimiter {
    let limiter = RateLimiter::new(limits);
    if store.backend() != DatabaseBackend::Postgres {
        return limiter;
    }
    prune_periodically(store.clone());
    limiter.sharing(Arc::new(DatabaseCounter(store.clone())))
}

fn prune_periodically(store: Store) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(WINDOW_SECONDS));
        loop {
            interval.tick().await;
            let now = chrono::Utc::now().timestamp();
            // The previous window stays: a request counted at its very end may still be
            // answered after this runs.
            let keep_from = now - now % WINDOW_SECONDS as i64 - WINDOW_SECONDS as i64;
            if let Err(error) = store.prune_request_counts(keep_from).await {
                tracing::warn!(%error, "could not delete past rate-limit windows");
            }
        }
    });
}
