//! Rate-limit counters in the database, so that every server on one PostgreSQL database spends
//! one budget: a request is one upsert of its bucket's row for the window.

use handoff_domain::RepoError;
use sea_orm::ConnectionTrait;

use crate::Store;
use crate::sql::{repo_error, stmt};

impl Store {
    /// Counts one request of `bucket` in the window starting at `window_start` (epoch seconds)
    /// and answers the window's count, this request included. Atomic across servers.
    pub async fn count_request(&self, bucket: &str, window_start: i64) -> Result<u64, RepoError> {
        let row = self
            .connection()
            .query_one_raw(stmt(
                self.backend(),
                "INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES (?, ?, 1) \
                 ON CONFLICT (bucket, window_start) \
                 DO UPDATE SET hits = rate_limit_counters.hits + 1 RETURNING hits",
                vec![bucket.into(), window_start.into()],
            ))
            .await
            .map_err(repo_error)?
            .ok_or_else(|| RepoError::Internal("the counter's upsert returned no row".into()))?;
        let hits: i64 = row.try_get("", "hits").map_err(repo_error)?;
        Ok(u64::try_from(hits).unwrap_or_default())
    }

    /// Deletes the counters of windows that started before `window_start`; answers how many.
    pub async fn prune_request_counts(&self, window_start: i64) -> Result<u64, RepoError> {
        self.connection()
            .execute_raw(stmt(
                self.backend(),
                "DELETE FROM rate_limit_counters WHERE window_start < ?",
                vec![window_start.into()],
            ))
            .await
            .map(|done| done.rows_affected())
            .map_err(repo_error)
    }
}
