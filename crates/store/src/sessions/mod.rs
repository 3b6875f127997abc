//! Sessions, their feature blocks and their log.

use async_trait::async_trait;
use handoff_domain::idempotency::IdempotentOperation;
use handoff_domain::ports::SessionRepository;
use handoff_domain::session::{RecordResults, ReviewOutcome};
use handoff_domain::{
    ApplicationId, EntityId, EntityStatus, FeatureBlock, FeatureItem, LogEntry, LogKind,
    NewSession, RepoError, Review, ReviewStatus, SessionFilter, SessionId, SessionPage,
    SessionRecord, StoredSession,
};
use sea_orm::sea_query::{
    Alias, Cond, Expr, ExprTrait, Func, LikeExpr, LockType, OnConflict, Order, Query,
    SelectStatement, UnionType, UpdateStatement,
};
use std::collections::HashMap;

use handoff_domain::session::{Activity, ActivityPage, ActivityQuery, ListedBlock, SessionListing};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, Statement, Value};
use uuid::Uuid;

use handoff_domain::entity::NewEntity;

use crate::Store;
use crate::rows::{self, get, json_text, recorded_blocks_text};
use crate::schema::{Applications, BlockItems, Entities, SessionLogs, Sessions};
use crate::sealing::SessionKey;
use crate::sql::{commit, fetch_all, fetch_one, repo_error, run};

mod assignments;
mod create;
mod list;
mod read;
mod retention;
mod write;

use list::*;
pub(crate) use read::read_blocks;
use read::*;
use write::*;
pub(crate) use write::{
    LOG_COLUMNS, ensure_entity, features_text, insert_log, item_inserts, log_insert, log_values,
    next_session_number,
};

/// What a session row is read with (`rows::session`), in the order of `rows::SESSION_COLUMNS`.
pub(crate) const SESSION_READ: [Sessions; 21] = [
    Sessions::Id,
    Sessions::ApplicationId,
    Sessions::Kind,
    Sessions::SessionNumber,
    Sessions::SessionToken,
    Sessions::SessionUrl,
    Sessions::Status,
    Sessions::WorkflowId,
    Sessions::Features,
    Sessions::VendorData,
    Sessions::Metadata,
    Sessions::Callback,
    Sessions::ContactDetails,
    Sessions::ExpectedDetails,
    Sessions::SharedFromSession,
    Sessions::RecordedBlocks,
    Sessions::CreatedAt,
    Sessions::ExpiresAt,
    Sessions::Options,
    Sessions::Revision,
    Sessions::DataKey,
];

/// A session row by key alone (see `find_session`).
pub(crate) fn select_session(id: SessionId) -> SelectStatement {
    Query::select()
        .columns(SESSION_READ)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .to_owned()
}

impl Store {
    /// The data key of the application's session `id`; `None` when it holds no such session,
    /// or it was erased.
    async fn key_of(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<SessionKey>, RepoError> {
        let select = Query::select()
            .columns([Sessions::ApplicationId, Sessions::DataKey])
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
            .to_owned();
        let Some(row) = fetch_one(&self.db, &select).await? else {
            return Ok(None);
        };
        if get::<Uuid>(&row, "application_id")? != application_id.as_uuid() {
            return Ok(None);
        }
        match self.row_key(&self.db, &row).await? {
            SessionKey::Erased => Ok(None),
            key => Ok(Some(key)),
        }
    }

    /// `log` with its comment sealed under the data key of the session whose locked row
    /// (with `application_id` and `data_key`) is `row`.
    pub(crate) async fn sealed_comment<C: ConnectionTrait>(
        &self, db: &C, row: &sea_orm::QueryResult, log: LogEntry,
    ) -> Result<LogEntry, RepoError> {
        let Some(comment) = &log.comment else {
            return Ok(log);
        };
        let comment = self.row_key(db, row).await?.seal("comment", comment)?;
        Ok(LogEntry { comment: Some(comment), ..log })
    }

    /// A session row read with [`SESSION_READ`], opened; `None` when it was erased.
    pub(crate) async fn open_session(
        &self, row: &sea_orm::QueryResult,
    ) -> Result<Option<StoredSession>, RepoError> {
        let key = self.row_key(&self.db, row).await?;
        if matches!(key, SessionKey::Erased) {
            return Ok(None);
        }
        rows::session(row, &key).map(|(session, _)| Some(session))
    }
}

/// Rows per multi-row INSERT: 5 values a row stays far below both backends' parameter limits.
const ITEMS_PER_INSERT: usize = 500;

/// Results of at least this many bytes of items are a large write on SQLite: small writes
/// waiting for their turn go first.
const LARGE_WRITE_BYTES: usize = 256 * 1024;

#[async_trait]
impl SessionRepository for Store {
    async fn create_session(
        &self, s: &NewSession, log: &LogEntry,
    ) -> Result<StoredSession, RepoError> {
        self.create(s, log).await
    }

    async fn find_session(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<SessionRecord>, RepoError> {
        let Some(row) = fetch_one(&self.db, &select_session(id)).await? else {
            return Ok(None);
        };
        // Looked up by key alone (no planner statistics can turn it into a scan of the
        // application's sessions); another application's session is not there.
        if get::<Uuid>(&row, "application_id")? != application_id.as_uuid() {
            return Ok(None);
        }
        let key = self.row_key(&self.db, &row).await?;
        if matches!(key, SessionKey::Erased) {
            return Ok(None);
        }
        let (session, recorded) = rows::session(&row, &key)?;
        let blocks = read_blocks(&self.db, id, &recorded, &key).await?;
        let reviews = read_reviews(&self.db, id, &key).await?;
        Ok(Some(SessionRecord { session, blocks, reviews }))
    }

    async fn find_session_by_token(&self, token: &str) -> Result<Option<StoredSession>, RepoError> {
        let select = Query::select()
            .columns(SESSION_READ)
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::SessionToken).eq(token))
            .to_owned();
        let Some(row) = fetch_one(&self.db, &select).await? else {
            return Ok(None);
        };
        self.open_session(&row).await
    }

    async fn session_events(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<Vec<LogEntry>>, RepoError> {
        let Some(key) = self.key_of(application_id, id).await? else {
            return Ok(None);
        };
        let select = Query::select()
            .columns(LOG_COLUMNS)
            .from(SessionLogs::Table)
            .and_where(Expr::col(SessionLogs::SessionId).eq(id.as_uuid()))
            .and_where(Expr::col(SessionLogs::Kind).eq(LogKind::Event.as_str()))
            .order_by(SessionLogs::Id, Order::Asc)
            .to_owned();
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| rows::log_entry(row, &key))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    async fn session_activity(
        &self, application_id: ApplicationId, id: SessionId, query: ActivityQuery,
    ) -> Result<Option<ActivityPage>, RepoError> {
        let Some(key) = self.key_of(application_id, id).await? else {
            return Ok(None);
        };
        // `LogEntry::is_activity`: every review, and the events that set a status.
        let activity =
            Cond::any().add(Expr::col(SessionLogs::Kind).eq(LogKind::Review.as_str())).add(
                Cond::all().add(Expr::col(SessionLogs::NewStatus).is_not_null()).add(
                    Cond::any().add(Expr::col(SessionLogs::OldStatus).is_null()).add(
                        Expr::col(SessionLogs::OldStatus).ne(Expr::col(SessionLogs::NewStatus)),
                    ),
                ),
            );
        let mut matching = Query::select()
            .from(SessionLogs::Table)
            .and_where(Expr::col(SessionLogs::SessionId).eq(id.as_uuid()))
            .cond_where(activity)
            .to_owned();
        let counted = matching
            .clone()
            .expr_as(Func::count(Expr::col(SessionLogs::Id)), Alias::new("n"))
            .to_owned();
        let count: i64 = match fetch_one(&self.db, &counted).await? {
            Some(row) => get(&row, "n")?,
            None => 0,
        };
        let page = matching
            .columns(std::iter::once(SessionLogs::Id).chain(LOG_COLUMNS))
            .order_by(SessionLogs::Id, if query.newest_first { Order::Desc } else { Order::Asc })
            .limit(query.limit)
            .offset(query.offset)
            .to_owned();
        let results = fetch_all(&self.db, &page)
            .await?
            .iter()
            .map(|row| Ok(Activity { row: get(row, "id")?, entry: rows::log_entry(row, &key)? }))
            .collect::<Result<_, RepoError>>()?;
        Ok(Some(ActivityPage { count: u64::try_from(count).unwrap_or(0), results }))
    }

    async fn record_results(
        &self, application_id: ApplicationId, id: SessionId, results: &RecordResults,
        log: &LogEntry,
    ) -> Result<bool, RepoError> {
        self.write_results(application_id, id, None, results, log).await
    }

    async fn amend_results(
        &self, application_id: ApplicationId, id: SessionId, revision: i64,
        results: &RecordResults, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        self.write_results(application_id, id, Some(revision), results, log).await
    }

    async fn apply_review(
        &self, application_id: ApplicationId, id: SessionId, review: ReviewStatus, log: &LogEntry,
    ) -> Result<ReviewOutcome, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let Some(row) = lock_session(&txn, application_id, id).await? else {
            return Ok(ReviewOutcome::NotFound);
        };
        let current = rows::status(&get::<String>(&row, "status")?)?;
        let log = match log.review(current, review) {
            Ok(log) => log,
            Err(refused) => return Ok(refused),
        };
        let log = self.sealed_comment(&txn, &row, log).await?;
        let update = Query::update()
            .table(Sessions::Table)
            .value(Sessions::Status, review.status().as_str())
            .value(Sessions::Revision, Expr::col(Sessions::Revision).add(1))
            .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
            .to_owned();
        run(&txn, &update).await?;
        insert_log(&txn, id, &log).await?;
        commit(txn).await?;
        Ok(ReviewOutcome::Applied)
    }

    async fn delete_sessions(
        &self, application_id: ApplicationId, numbers: Option<&[i64]>,
    ) -> Result<Vec<(SessionId, i64)>, RepoError> {
        // Every related row goes with them by ON DELETE CASCADE, in the same statement.
        let mut delete = Query::delete()
            .from_table(Sessions::Table)
            .and_where(Expr::col(Sessions::ApplicationId).eq(application_id.as_uuid()))
            .returning(Query::returning().columns([Sessions::Id, Sessions::SessionNumber]))
            .to_owned();
        if let Some(numbers) = numbers {
            delete.and_where(Expr::col(Sessions::SessionNumber).is_in(numbers.iter().copied()));
        }
        let _turn = self.write_turn().await;
        fetch_all(&self.db, &delete)
            .await?
            .iter()
            .map(|row| Ok((SessionId::from_uuid(get(row, "id")?), get(row, "session_number")?)))
            .collect()
    }

    async fn delete_session(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<bool, RepoError> {
        // Every related row goes with it by ON DELETE CASCADE, in the same statement.
        let delete = Query::delete()
            .from_table(Sessions::Table)
            .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
            .and_where(Expr::col(Sessions::ApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        let deleted = run(&self.db, &delete).await?;
        Ok(deleted == 1)
    }

    async fn append_event(
        &self, application_id: ApplicationId, id: SessionId, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        self.append(application_id, id, log).await
    }

    async fn count_by_status(
        &self, application_id: ApplicationId, workflows: Option<&[handoff_domain::WorkflowId]>,
    ) -> Result<Vec<(handoff_domain::SessionStatus, u64)>, RepoError> {
        self.status_counts(application_id, workflows).await
    }

    async fn assign_session(
        &self, application_id: ApplicationId, id: SessionId,
        reviewer: Option<handoff_domain::ReviewerId>, at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RepoError> {
        self.assign(application_id, id, reviewer, at).await
    }

    async fn assignees(
        &self, application_id: ApplicationId, ids: &[SessionId],
    ) -> Result<Vec<(SessionId, String)>, RepoError> {
        self.assigned_to(application_id, ids).await
    }

    async fn delete_finished_before(
        &self, application_id: ApplicationId, finished_before: chrono::DateTime<chrono::Utc>,
        batch: u32, at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<handoff_domain::retention::DeletedSession>, RepoError> {
        self.delete_due(application_id, finished_before, batch, at).await
    }

    async fn list_sessions(
        &self, application_id: ApplicationId, filter: &SessionFilter,
    ) -> Result<SessionPage, RepoError> {
        let condition = list_condition(self, application_id, filter);
        let counted = Query::select()
            .expr_as(Func::count(Expr::col(Sessions::Id)), Alias::new("n"))
            .from(Sessions::Table)
            .cond_where(condition.clone())
            .to_owned();
        let count: i64 = match fetch_one(&self.db, &counted).await? {
            Some(row) => get(&row, "n")?,
            None => 0,
        };
        let mut page = Query::select()
            .columns(SESSION_READ)
            .from(Sessions::Table)
            .cond_where(condition)
            .to_owned();
        // Imports first: `shared_from_session IS NULL` is false (0) for a clone on both
        // backends, and false sorts first.
        if filter.imports_first {
            page.order_by_expr(Expr::col(Sessions::SharedFromSession).is_null(), Order::Asc);
        }
        let order = if filter.oldest_first { Order::Asc } else { Order::Desc };
        page.order_by(Sessions::SessionNumber, order).limit(filter.limit).offset(filter.offset);
        let rows = fetch_all(&self.db, &page).await?;
        let mut sessions = Vec::with_capacity(rows.len());
        let mut keys = HashMap::new();
        for row in &rows {
            let key = self.row_key(&self.db, row).await?;
            let (session, recorded) = rows::session(row, &key)?;
            keys.insert(session.id.as_uuid(), key);
            sessions.push((session, recorded));
        }
        let mut listed = self.listed_blocks(&sessions, &keys).await?;
        let results = sessions
            .into_iter()
            .map(|(session, _)| {
                let blocks = listed.remove(&session.id.as_uuid()).unwrap_or_default();
                SessionListing::new(session, &blocks)
            })
            .collect();
        Ok(SessionPage { count: u64::try_from(count).unwrap_or(0), results })
    }
}
