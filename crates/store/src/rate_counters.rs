//! Rate-limit counters in the database, so that every server on one PostgreSQL database spends
//! one budget: a request is one upsert of its bucket's row for the window.

use handoff_domain::RepoError;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};

use crate::Store;
use crate::rows::get;
use crate::schema::RateLimitCounters;
use crate::sql::{fetch_one, insert_mismatch, run};

impl Store {
    /// Counts one request of `bucket` in the window starting at `window_start` (epoch seconds)
    /// and answers the window's count, this request included. Atomic across servers.
    pub async fn count_request(&self, bucket: &str, window_start: i64) -> Result<u64, RepoError> {
        let upsert = Query::insert()
            .into_table(RateLimitCounters::Table)
            .columns(RateLimitCounters::COLUMNS.iter().copied())
            .values([bucket.into(), window_start.into(), 1i64.into()])
            .map_err(insert_mismatch)?
            .on_conflict(
                OnConflict::columns([RateLimitCounters::Bucket, RateLimitCounters::WindowStart])
                    .value(
                        RateLimitCounters::Hits,
                        Expr::col((RateLimitCounters::Table, RateLimitCounters::Hits)).add(1),
                    )
                    .to_owned(),
            )
            .returning_col(RateLimitCounters::Hits)
            .to_owned();
        let row = fetch_one(self.connection(), &upsert)
            .await?
            .ok_or_else(|| RepoError::Internal("the counter's upsert returned no row".into()))?;
        let hits: i64 = get(&row, "hits")?;
        Ok(u64::try_from(hits).unwrap_or_default())
    }

    /// Deletes the counters of windows that started before `window_start`; answers how many.
    pub async fn prune_request_counts(&self, window_start: i64) -> Result<u64, RepoError> {
        let delete = Query::delete()
            .from_table(RateLimitCounters::Table)
            .and_where(Expr::col(RateLimitCounters::WindowStart).lt(window_start))
            .to_owned();
        run(self.connection(), &delete).await
    }
}
