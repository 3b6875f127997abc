//! Sessions, their feature blocks and their log.

use async_trait::async_trait;
use handoff_domain::idempotency::IdempotentOperation;
use handoff_domain::ports::SessionRepository;
use handoff_domain::session::{RecordResults, ReviewOutcome};
use handoff_domain::{
    ApplicationId, EntityStatus, FeatureBlock, FeatureItem, LogEntry, LogKind, NewSession,
    RepoError, Review, ReviewStatus, SessionFilter, SessionId, SessionPage, SessionRecord,
    StoredSession,
};
use sea_orm::sea_query::{
    Alias, Cond, Expr, ExprTrait, Func, LockType, OnConflict, Order, Query, SelectStatement,
    UnionType,
};
use std::collections::HashMap;

use handoff_domain::session::{Activity, ActivityPage, ActivityQuery, ListedBlock, SessionListing};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, Value};
use uuid::Uuid;

use handoff_domain::vendor_data::KEY_VERSION;

use crate::Store;
use crate::rows::{self, get, json_text, recorded_blocks_text};
use crate::schema::{Applications, BlockItems, Entities, SessionLogs, Sessions};
use crate::sql::{begin_write, commit, fetch_all, fetch_one, repo_error, run, stmt};

/// What a session row is read with (`rows::session`), in the order of `rows::SESSION_COLUMNS`.
pub(crate) const SESSION_READ: [Sessions; 20] = [
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
];

/// A session row by key alone (see `find_session`).
pub(crate) fn select_session(id: SessionId) -> SelectStatement {
    Query::select()
        .columns(SESSION_READ)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .to_owned()
}

/// Rows per multi-row INSERT: 5 values a row stays far below both backends' parameter limits.
const ITEMS_PER_INSERT: usize = 500;

/// Results of at least this many bytes of items are a large write on SQLite: small writes
/// waiting for their turn go first.
const LARGE_WRITE_BYTES: usize = 256 * 1024;

#[async_trait]
impl SessionRepository for Store {
    async fn create_session(
        &self,
        s: &NewSession,
        log: &LogEntry,
    ) -> Result<StoredSession, RepoError> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        if s.reuse_unfinished && s.vendor_data.is_some() {
            // The counter row, locked without a new number, serializes this choice with every
            // creation of the application's sessions; then an unfinished session is reused.
            lock_counter(&txn, s.application_id).await?;
            if let Some(reused) = reuse_unfinished(&txn, s).await? {
                commit(txn).await?;
                return Ok(reused);
            }
        }
        // The key first: a concurrent retry with it waits here, then writes nothing.
        crate::idempotency::claim(
            &txn,
            s.application_id,
            s.idempotency.as_ref(),
            IdempotentOperation::CreateSession,
            s.id.to_string(),
        )
        .await?;
        // The counter row is the lock that serializes session numbers of one application, on
        // PostgreSQL and across processes.
        let session_number = next_session_number(&txn, s.application_id).await?;

        let entity_id = match &s.vendor_data {
            Some(vendor_data) => Some(
                ensure_entity(
                    &txn,
                    s.entity_id,
                    s.application_id,
                    s.kind,
                    vendor_data,
                    s.created_at,
                )
                .await?
                .0,
            ),
            None => None,
        };

        let insert = Query::insert()
            .into_table(Sessions::Table)
            .columns(SESSION_READ.into_iter().chain([Sessions::EntityId]))
            .values_panic([
                s.id.as_uuid().into(),
                s.application_id.as_uuid().into(),
                s.kind.as_str().into(),
                session_number.into(),
                s.session_token.clone().into(),
                s.session_url.clone().into(),
                s.status.as_str().into(),
                s.workflow_id.as_uuid().into(),
                serde_json::to_string(&s.features)
                    .unwrap_or_else(|_| "[]".into())
                    .into(),
                s.vendor_data.as_ref().map(|v| v.as_str().to_owned()).into(),
                json_text(s.metadata.as_ref()).into(),
                s.callback.clone().into(),
                json_text(s.contact_details.as_ref()).into(),
                json_text(s.expected_details.as_ref()).into(),
                Option::<Uuid>::None.into(),
                String::new().into(),
                s.created_at.into(),
                s.expires_at.into(),
                rows::options_text(&s.options).into(),
                0i64.into(),
                entity_id.into(),
            ])
            .to_owned();
        run(&txn, &insert).await?;
        insert_log(&txn, s.id, log).await?;
        commit(txn).await?;
        Ok(s.stored(session_number))
    }

    async fn find_session(
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<Option<SessionRecord>, RepoError> {
        let Some(row) = fetch_one(&self.db, &select_session(id)).await? else {
            return Ok(None);
        };
        let (session, recorded) = rows::session(&row)?;
        // Looked up by key alone (no planner statistics can turn it into a scan of the
        // application's sessions); another application's session is not there.
        if session.application_id != application_id {
            return Ok(None);
        }
        let blocks = read_blocks(&self.db, id, &recorded).await?;
        let reviews = read_reviews(&self.db, id).await?;
        Ok(Some(SessionRecord {
            session,
            blocks,
            reviews,
        }))
    }

    async fn find_session_by_token(&self, token: &str) -> Result<Option<StoredSession>, RepoError> {
        let select = Query::select()
            .columns(SESSION_READ)
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::SessionToken).eq(token))
            .to_owned();
        fetch_one(&self.db, &select)
            .await?
            .map(|row| rows::session(&row).map(|(session, _)| session))
            .transpose()
    }

    async fn session_events(
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<Option<Vec<LogEntry>>, RepoError> {
        if handoff_domain::ports::ShareRepository::find_source(self, application_id, id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let select = Query::select()
            .columns([
                SessionLogs::Kind,
                SessionLogs::Actor,
                SessionLogs::Action,
                SessionLogs::OldStatus,
                SessionLogs::NewStatus,
                SessionLogs::Comment,
                SessionLogs::Details,
                SessionLogs::CreatedAt,
            ])
            .from(SessionLogs::Table)
            .and_where(Expr::col(SessionLogs::SessionId).eq(id.as_uuid()))
            .and_where(Expr::col(SessionLogs::Kind).eq(LogKind::Event.as_str()))
            .order_by(SessionLogs::Id, Order::Asc)
            .to_owned();
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(rows::log_entry)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    async fn session_activity(
        &self,
        application_id: ApplicationId,
        id: SessionId,
        query: ActivityQuery,
    ) -> Result<Option<ActivityPage>, RepoError> {
        if handoff_domain::ports::ShareRepository::find_source(self, application_id, id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        // `LogEntry::is_activity`: every review, and the events that set a status.
        let activity = Cond::any()
            .add(Expr::col(SessionLogs::Kind).eq(LogKind::Review.as_str()))
            .add(
                Cond::all()
                    .add(Expr::col(SessionLogs::NewStatus).is_not_null())
                    .add(
                        Cond::any()
                            .add(Expr::col(SessionLogs::OldStatus).is_null())
                            .add(
                                Expr::col(SessionLogs::OldStatus)
                                    .ne(Expr::col(SessionLogs::NewStatus)),
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
            .columns([
                SessionLogs::Id,
                SessionLogs::Kind,
                SessionLogs::Actor,
                SessionLogs::Action,
                SessionLogs::OldStatus,
                SessionLogs::NewStatus,
                SessionLogs::Comment,
                SessionLogs::Details,
                SessionLogs::CreatedAt,
            ])
            .order_by(
                SessionLogs::Id,
                if query.newest_first {
                    Order::Desc
                } else {
                    Order::Asc
                },
            )
            .limit(query.limit)
            .offset(query.offset)
            .to_owned();
        let results = fetch_all(&self.db, &page)
            .await?
            .iter()
            .map(|row| {
                Ok(Activity {
                    row: get(row, "id")?,
                    entry: rows::log_entry(row)?,
                })
            })
            .collect::<Result<_, RepoError>>()?;
        Ok(Some(ActivityPage {
            count: u64::try_from(count).unwrap_or(0),
            results,
        }))
    }

    async fn record_results(
        &self,
        application_id: ApplicationId,
        id: SessionId,
        results: &RecordResults,
        log: &LogEntry,
    ) -> Result<bool, RepoError> {
        self.write_results(application_id, id, None, results, log)
            .await
    }

    async fn amend_results(
        &self,
        application_id: ApplicationId,
        id: SessionId,
        revision: i64,
        results: &RecordResults,
        log: &LogEntry,
    ) -> Result<bool, RepoError> {
        self.write_results(application_id, id, Some(revision), results, log)
            .await
    }

    async fn apply_review(
        &self,
        application_id: ApplicationId,
        id: SessionId,
        review: ReviewStatus,
        log: &LogEntry,
    ) -> Result<ReviewOutcome, RepoError> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        let Some(row) = lock_session(&txn, application_id, id).await? else {
            return Ok(ReviewOutcome::NotFound);
        };
        let current = rows::status(&get::<String>(&row, "status")?)?;
        let log = match log.review(current, review) {
            Ok(log) => log,
            Err(refused) => return Ok(refused),
        };
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
        &self,
        application_id: ApplicationId,
        numbers: Option<&[i64]>,
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
            .map(|row| {
                Ok((
                    SessionId::from_uuid(get(row, "id")?),
                    get(row, "session_number")?,
                ))
            })
            .collect()
    }

    async fn delete_session(
        &self,
        application_id: ApplicationId,
        id: SessionId,
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

    async fn list_sessions(
        &self,
        application_id: ApplicationId,
        filter: &SessionFilter,
    ) -> Result<SessionPage, RepoError> {
        let backend = self.backend();
        let (conditions, values) = list_conditions(backend, application_id, filter);
        let counted = format!("SELECT COUNT(*) AS n FROM sessions WHERE {conditions}");
        let count: i64 = match self
            .db
            .query_one_raw(stmt(backend, &counted, values.clone()))
            .await
            .map_err(repo_error)?
        {
            Some(row) => get(&row, "n")?,
            None => 0,
        };
        let columns: Vec<String> = SESSION_READ
            .iter()
            .map(|c| sea_orm::sea_query::Iden::unquoted(c).to_owned())
            .collect();
        // Imports first: `shared_from_session IS NULL` is false (0) for a clone on both
        // backends, and false sorts first.
        let order = if filter.imports_first {
            "(shared_from_session IS NULL), session_number DESC"
        } else {
            "session_number DESC"
        };
        let page = format!(
            "SELECT {} FROM sessions WHERE {conditions} ORDER BY {order} LIMIT ? OFFSET ?",
            columns.join(", ")
        );
        let mut paged = values;
        paged.push(i64::try_from(filter.limit).unwrap_or(i64::MAX).into());
        paged.push(i64::try_from(filter.offset).unwrap_or(i64::MAX).into());
        let rows = self
            .db
            .query_all_raw(stmt(backend, &page, paged))
            .await
            .map_err(repo_error)?;
        let sessions = rows
            .iter()
            .map(rows::session)
            .collect::<Result<Vec<_>, _>>()?;
        let mut listed = self.listed_blocks(&sessions).await?;
        let results = sessions
            .into_iter()
            .map(|(session, _)| {
                let blocks = listed.remove(&session.id.as_uuid()).unwrap_or_default();
                SessionListing::new(session, &blocks)
            })
            .collect();
        Ok(SessionPage {
            count: u64::try_from(count).unwrap_or(0),
            results,
        })
    }
}

/// The `WHERE` of a session list, and its values (`?` placeholders).
fn list_conditions(
    backend: DatabaseBackend,
    application_id: ApplicationId,
    filter: &SessionFilter,
) -> (String, Vec<Value>) {
    let marks = |n: usize| vec!["?"; n].join(", ");
    let mut conditions = vec![
        "application_id = ?".to_owned(),
        format!("kind IN ({})", marks(filter.kinds.len())),
    ];
    let mut values: Vec<Value> = vec![application_id.as_uuid().into()];
    values.extend(filter.kinds.iter().map(|k| Value::from(k.as_str())));
    match filter.imported {
        Some(true) => conditions.push("shared_from_session IS NOT NULL".to_owned()),
        Some(false) => conditions.push("shared_from_session IS NULL".to_owned()),
        None => {}
    }
    if !filter.statuses.is_empty() {
        conditions.push(format!("status IN ({})", marks(filter.statuses.len())));
        values.extend(filter.statuses.iter().map(|s| Value::from(s.as_str())));
    }
    if let Some(vendor_data) = &filter.vendor_data {
        conditions.push(
            "entity_id IN (SELECT id FROM entities WHERE application_id = ? \
             AND vendor_data_key = ?)"
                .to_owned(),
        );
        values.push(application_id.as_uuid().into());
        values.push(vendor_data.key().into());
    }
    if let Some(workflow) = filter.workflow_id {
        conditions.push("workflow_id = ?".to_owned());
        values.push(workflow.as_uuid().into());
    }
    if let Some(from) = filter.created_from {
        conditions.push("created_at >= ?".to_owned());
        values.push(from.into());
    }
    if let Some(before) = filter.created_before {
        conditions.push("created_at < ?".to_owned());
        values.push(before.into());
    }
    let field = |path: &[&str]| json_field(backend, "b.item", path);
    let in_block = |block: FeatureBlock, condition: String| {
        format!(
            "EXISTS (SELECT 1 FROM {} b WHERE b.session_id = sessions.id AND {condition})",
            block.v3_key()
        )
    };
    if let Some(country) = &filter.country {
        conditions.push(format!(
            "({} OR {})",
            in_block(
                FeatureBlock::IdVerifications,
                format!("UPPER({}) = ?", field(&["issuing_state"]))
            ),
            in_block(
                FeatureBlock::RegistryChecks,
                format!("UPPER({}) = ?", field(&["company", "country_code"]))
            ),
        ));
        values.push(country.clone().into());
        values.push(country.clone().into());
    }
    if let Some(search) = &filter.search {
        let pattern = crate::sql::like_pattern(search);
        let like = |expression: String| format!("LOWER({expression}) LIKE ? ESCAPE '\\'");
        conditions.push(format!(
            "({} OR CAST(session_number AS TEXT) = ? OR {} OR {})",
            like("vendor_data".to_owned()),
            in_block(FeatureBlock::IdVerifications, like(field(&["full_name"]))),
            in_block(
                FeatureBlock::RegistryChecks,
                like(field(&["company", "company_name"]))
            ),
        ));
        values.push(pattern.clone().into());
        values.push(search.clone().into());
        values.push(pattern.clone().into());
        values.push(pattern.into());
    }
    (conditions.join(" AND "), values)
}

/// A text field of a JSON item column, by path.
fn json_field(backend: DatabaseBackend, column: &str, path: &[&str]) -> String {
    match backend {
        DatabaseBackend::Postgres => {
            let (last, rest) = path.split_last().unwrap_or((&"", &[]));
            let mut expression = format!("({column}::jsonb");
            for key in rest {
                expression.push_str(&format!(" -> '{key}'"));
            }
            expression.push_str(&format!(" ->> '{last}')"));
            expression
        }
        _ => format!("json_extract({column}, '$.{}')", path.join(".")),
    }
}

impl Store {
    /// `record_results`, and with `revision` `amend_results`.
    async fn write_results(
        &self,
        application_id: ApplicationId,
        id: SessionId,
        revision: Option<i64>,
        results: &RecordResults,
        log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let _turn = if results.item_bytes() >= LARGE_WRITE_BYTES {
            self.large_write_turn().await
        } else {
            self.write_turn().await
        };
        let txn = begin_write(&self.db).await?;
        let Some(row) = lock_session(&txn, application_id, id).await? else {
            return Ok(false);
        };
        if revision.is_some_and(|expected| get::<i64>(&row, "revision").ok() != Some(expected)) {
            return Err(RepoError::Changed);
        }
        let old_status = rows::status(&get::<String>(&row, "status")?)?;
        let mut recorded = rows::recorded_blocks(&get::<String>(&row, "recorded_blocks")?)?;
        for (block, items) in &results.blocks {
            let delete = Query::delete()
                .from_table(Alias::new(block.v3_key()))
                .and_where(Expr::col(BlockItems::SessionId).eq(id.as_uuid()))
                .to_owned();
            run(&txn, &delete).await?;
            recorded.retain(|b| b != block);
            if let Some(items) = items {
                insert_items(&txn, id, *block, items).await?;
                recorded.push(*block);
            }
        }
        recorded.sort();
        let new_status = results.status.unwrap_or(old_status);
        let update = Query::update()
            .table(Sessions::Table)
            .value(Sessions::Status, new_status.as_str())
            .value(Sessions::RecordedBlocks, recorded_blocks_text(&recorded))
            .value(Sessions::Revision, Expr::col(Sessions::Revision).add(1))
            .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
            .to_owned();
        run(&txn, &update).await?;
        insert_log(&txn, id, &log.transition(old_status, new_status)).await?;
        commit(txn).await?;
        Ok(true)
    }

    /// What the listings of `sessions` read from their recorded blocks, by session: every
    /// item's status, and the first item of `id_verifications` and `registry_checks`; one
    /// statement for the page.
    async fn listed_blocks(
        &self,
        sessions: &[(StoredSession, Vec<FeatureBlock>)],
    ) -> Result<HashMap<Uuid, HashMap<FeatureBlock, ListedBlock>>, RepoError> {
        let mut parts = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        for block in FeatureBlock::ALL {
            let ids: Vec<Value> = sessions
                .iter()
                .filter(|(_, recorded)| recorded.contains(&block))
                .map(|(session, _)| session.id.as_uuid().into())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let item = match block {
                FeatureBlock::IdVerifications | FeatureBlock::RegistryChecks => {
                    "CASE WHEN position = 0 THEN item END"
                }
                _ => "NULL",
            };
            parts.push(format!(
                "SELECT session_id, '{key}' AS block, position, status, {item} AS item \
                 FROM {key} WHERE session_id IN ({})",
                vec!["?"; ids.len()].join(", "),
                key = block.v3_key(),
            ));
            values.extend(ids);
        }
        let mut listed: HashMap<Uuid, HashMap<FeatureBlock, ListedBlock>> = HashMap::new();
        if parts.is_empty() {
            return Ok(listed);
        }
        let sql = format!("{} ORDER BY position", parts.join(" UNION ALL "));
        let rows = self
            .db
            .query_all_raw(stmt(self.backend(), &sql, values))
            .await
            .map_err(repo_error)?;
        for row in &rows {
            let key: String = get(row, "block")?;
            let Some(block) = FeatureBlock::from_v3_key(&key) else {
                continue;
            };
            let entry = listed
                .entry(get::<Uuid>(row, "session_id")?)
                .or_default()
                .entry(block)
                .or_default();
            entry.statuses.push(get(row, "status")?);
            if let Some(item) = rows::text_or_null(row, "item")? {
                entry.first = serde_json::from_str(&item).ok();
            }
        }
        Ok(listed)
    }
}

/// Locks the application's counter row until the transaction ends, without bumping it.
async fn lock_counter(
    txn: &DatabaseTransaction,
    application_id: ApplicationId,
) -> Result<(), RepoError> {
    let lock = Query::update()
        .table(Applications::Table)
        .value(
            Applications::LastSessionNumber,
            Expr::col(Applications::LastSessionNumber),
        )
        .and_where(Expr::col(Applications::Id).eq(application_id.as_uuid()))
        .to_owned();
    run(txn, &lock).await.map(drop)
}

/// The newest unfinished session of `s`'s workflow and `vendor_data`, its `callback` and
/// `metadata` replaced by `s`'s when given, and the request's idempotency key claimed for it;
/// `None` when there is none.
async fn reuse_unfinished(
    txn: &DatabaseTransaction,
    s: &NewSession,
) -> Result<Option<StoredSession>, RepoError> {
    let Some(vendor_data) = &s.vendor_data else {
        return Ok(None);
    };
    let entity = Query::select()
        .column(Entities::Id)
        .from(Entities::Table)
        .and_where(Expr::col(Entities::ApplicationId).eq(s.application_id.as_uuid()))
        .and_where(Expr::col(Entities::Kind).eq(s.kind.as_str()))
        .and_where(Expr::col(Entities::VendorDataKey).eq(vendor_data.key()))
        .to_owned();
    let select = Query::select()
        .column(Sessions::Id)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::ApplicationId).eq(s.application_id.as_uuid()))
        .and_where(Expr::col(Sessions::WorkflowId).eq(s.workflow_id.as_uuid()))
        .and_where(
            Expr::col(Sessions::Status).is_in(
                handoff_domain::SessionStatus::UNFINISHED
                    .iter()
                    .map(|status| status.as_str()),
            ),
        )
        .and_where(Expr::col(Sessions::EntityId).in_subquery(entity))
        .order_by(Sessions::SessionNumber, Order::Desc)
        .limit(1)
        .to_owned();
    let Some(row) = fetch_one(txn, &select).await? else {
        return Ok(None);
    };
    let id = SessionId::from_uuid(get(&row, "id")?);
    crate::idempotency::claim(
        txn,
        s.application_id,
        s.idempotency.as_ref(),
        IdempotentOperation::CreateSession,
        id.to_string(),
    )
    .await?;
    let mut update = Query::update()
        .table(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .to_owned();
    let mut changed = false;
    if let Some(callback) = &s.callback {
        update.value(Sessions::Callback, callback.clone());
        changed = true;
    }
    if s.metadata.is_some() {
        update.value(Sessions::Metadata, json_text(s.metadata.as_ref()));
        changed = true;
    }
    if changed {
        run(txn, &update).await?;
    }
    let row = fetch_one(txn, &select_session(id))
        .await?
        .ok_or_else(|| RepoError::Internal("the reused session vanished".into()))?;
    rows::session(&row).map(|(session, _)| Some(session))
}

/// The application's next session number: its counter row bumped and locked until the
/// transaction ends, which serializes one application's numbers across processes.
pub(crate) async fn next_session_number(
    txn: &DatabaseTransaction,
    application_id: ApplicationId,
) -> Result<i64, RepoError> {
    let counter = Query::update()
        .table(Applications::Table)
        .value(
            Applications::LastSessionNumber,
            Expr::col(Applications::LastSessionNumber).add(1),
        )
        .and_where(Expr::col(Applications::Id).eq(application_id.as_uuid()))
        .returning_col(Applications::LastSessionNumber)
        .to_owned();
    let row = fetch_one(txn, &counter)
        .await?
        .ok_or_else(|| RepoError::Internal("a session for an unknown application".into()))?;
    get(&row, "last_session_number")
}

/// The session's `status` and `recorded_blocks`, its row locked for the rest of the transaction
/// (`FOR UPDATE` on PostgreSQL; SQLite's immediate transaction already holds the write lock).
/// `None` when the application holds no such session.
async fn lock_session(
    txn: &DatabaseTransaction,
    application_id: ApplicationId,
    id: SessionId,
) -> Result<Option<sea_orm::QueryResult>, RepoError> {
    // By key alone, then the application (see `find_session`); the transaction of a caller
    // that finds another application's row ends without writing.
    let mut select = Query::select()
        .columns([
            Sessions::Status,
            Sessions::RecordedBlocks,
            Sessions::ApplicationId,
            Sessions::Revision,
        ])
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .to_owned();
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        select.lock(LockType::Update);
    }
    let Some(row) = fetch_one(txn, &select).await? else {
        return Ok(None);
    };
    Ok((get::<Uuid>(&row, "application_id")? == application_id.as_uuid()).then_some(row))
}

/// The id and status of the application's entity for `vendor_data`, created `ACTIVE` when
/// missing, in one statement: the unique key decides between concurrent creators, and the no-op
/// `DO UPDATE` lets `RETURNING` give the existing row (and locks it for the transaction).
pub(crate) async fn ensure_entity(
    txn: &DatabaseTransaction,
    id: Uuid,
    application_id: ApplicationId,
    kind: handoff_domain::SessionKind,
    vendor_data: &handoff_domain::VendorData,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(Uuid, EntityStatus), RepoError> {
    let upsert = Query::insert()
        .into_table(Entities::Table)
        .columns([
            Entities::Id,
            Entities::ApplicationId,
            Entities::Kind,
            Entities::VendorData,
            Entities::VendorDataKey,
            Entities::Status,
            Entities::CreatedAt,
            Entities::KeyVersion,
        ])
        .values_panic([
            id.into(),
            application_id.as_uuid().into(),
            kind.as_str().into(),
            vendor_data.as_str().into(),
            vendor_data.key().into(),
            EntityStatus::Active.as_str().into(),
            at.into(),
            KEY_VERSION.into(),
        ])
        .on_conflict(
            OnConflict::columns([
                Entities::ApplicationId,
                Entities::Kind,
                Entities::VendorDataKey,
            ])
            .value(
                Entities::Status,
                Expr::col((Entities::Table, Entities::Status)),
            )
            .to_owned(),
        )
        .returning(Query::returning().columns([Entities::Id, Entities::Status]))
        .to_owned();
    let row = fetch_one(txn, &upsert)
        .await?
        .ok_or_else(|| RepoError::Internal("entity upsert returned no row".into()))?;
    let status: String = get(&row, "status")?;
    let status = EntityStatus::parse(&status)
        .ok_or_else(|| RepoError::Internal(format!("stored entity status {status:?}").into()))?;
    Ok((get(&row, "id")?, status))
}

async fn insert_items(
    txn: &DatabaseTransaction,
    session_id: SessionId,
    block: FeatureBlock,
    items: &[FeatureItem],
) -> Result<(), RepoError> {
    for (chunk_index, chunk) in items.chunks(ITEMS_PER_INSERT).enumerate() {
        let mut insert = Query::insert()
            .into_table(Alias::new(block.v3_key()))
            .columns([
                BlockItems::SessionId,
                BlockItems::Position,
                BlockItems::NodeId,
                BlockItems::Status,
                BlockItems::Item,
            ])
            .to_owned();
        for (i, item) in chunk.iter().enumerate() {
            let position = i32::try_from(chunk_index * ITEMS_PER_INSERT + i)
                .map_err(|_| RepoError::Internal("too many items".into()))?;
            insert.values_panic([
                session_id.as_uuid().into(),
                position.into(),
                item.node_id().into(),
                item.status().into(),
                item.json().get().into(),
            ]);
        }
        run(txn, &insert).await?;
    }
    Ok(())
}

/// Appends a log row, and the webhook events it causes.
pub(crate) async fn insert_log(
    txn: &DatabaseTransaction,
    session_id: SessionId,
    log: &LogEntry,
) -> Result<(), RepoError> {
    let insert = Query::insert()
        .into_table(SessionLogs::Table)
        .columns([
            SessionLogs::SessionId,
            SessionLogs::Kind,
            SessionLogs::Actor,
            SessionLogs::Action,
            SessionLogs::OldStatus,
            SessionLogs::NewStatus,
            SessionLogs::Comment,
            SessionLogs::Details,
            SessionLogs::CreatedAt,
        ])
        .values_panic(
            std::iter::once(session_id.as_uuid().into())
                .chain(log_values(log))
                .map(Expr::val),
        )
        .to_owned();
    run(txn, &insert).await?;
    crate::outbox::insert_events(txn, session_id, log).await
}

/// A log row's columns after `session_id`, in the order `kind, actor, action, old_status,
/// new_status, comment, details, created_at`.
pub(crate) fn log_values(log: &LogEntry) -> Vec<Value> {
    vec![
        log.kind.as_str().into(),
        log.actor.clone().into(),
        log.action.as_str().into(),
        log.old_status.map(|s| s.as_str().to_owned()).into(),
        log.new_status.map(|s| s.as_str().to_owned()).into(),
        log.comment.clone().into(),
        json_text(log.details.as_ref()),
        log.created_at.into(),
    ]
}

/// The recorded blocks of a session, read in one statement.
async fn read_blocks<C: ConnectionTrait>(
    db: &C,
    id: SessionId,
    recorded: &[FeatureBlock],
) -> Result<Vec<(FeatureBlock, Vec<FeatureItem>)>, RepoError> {
    if recorded.is_empty() {
        return Ok(Vec::new());
    }
    // One SELECT per recorded block, each naming its table in a `block` column (a literal:
    // the keys are the code's own), joined by UNION ALL.
    let select_block = |block: &FeatureBlock| {
        Query::select()
            .expr_as(
                Expr::cust(format!("'{}'", block.v3_key())),
                Alias::new("block"),
            )
            .column(BlockItems::Position)
            .column(BlockItems::NodeId)
            .expr_as(Expr::col(BlockItems::Status), Alias::new("item_status"))
            .column(BlockItems::Item)
            .from(Alias::new(block.v3_key()))
            .and_where(Expr::col(BlockItems::SessionId).eq(id.as_uuid()))
            .to_owned()
    };
    let mut blocks = recorded.iter();
    let Some(first) = blocks.next() else {
        return Ok(Vec::new());
    };
    let select = select_block(first)
        .unions(blocks.map(|block| (UnionType::All, select_block(block))))
        .to_owned();
    let items = fetch_all(db, &select)
        .await?
        .iter()
        .map(rows::item)
        .collect::<Result<_, _>>()?;
    Ok(rows::blocks(recorded, items))
}

async fn read_reviews<C: ConnectionTrait>(db: &C, id: SessionId) -> Result<Vec<Review>, RepoError> {
    let select = Query::select()
        .expr_as(Expr::col(SessionLogs::Id), Alias::new("log_id"))
        .expr_as(Expr::col(SessionLogs::Kind), Alias::new("log_kind"))
        .column(SessionLogs::Actor)
        .column(SessionLogs::NewStatus)
        .column(SessionLogs::Comment)
        .expr_as(Expr::col(SessionLogs::CreatedAt), Alias::new("logged_at"))
        .from(SessionLogs::Table)
        .and_where(Expr::col(SessionLogs::SessionId).eq(id.as_uuid()))
        .and_where(Expr::col(SessionLogs::Kind).eq(LogKind::Review.as_str()))
        .order_by(SessionLogs::Id, Order::Asc)
        .to_owned();
    let rows = fetch_all(db, &select).await?;
    rows.iter()
        .filter_map(|row| rows::review(row).transpose())
        .map(|review| review.map(|(_, review)| review))
        .collect()
}
