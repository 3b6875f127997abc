//! Sessions, their feature blocks and their log.

use async_trait::async_trait;
use handoff_domain::ports::SessionRepository;
use handoff_domain::session::{RecordResults, ReviewOutcome};
use handoff_domain::{
    ApplicationId, EntityStatus, FeatureBlock, FeatureItem, LogEntry, LogKind, NewSession,
    RepoError, Review, ReviewStatus, SessionFilter, SessionId, SessionPage, SessionRecord,
    StoredSession,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Value};
use uuid::Uuid;

use crate::Store;
use crate::rows::{
    self, ITEM_COLUMNS, REVIEW_COLUMNS, SESSION_COLUMNS, get, json_text, recorded_blocks_text,
};
use crate::sql::{begin_write, commit, execute, for_update, placeholders, query_all, query_one};

/// Rows per multi-row INSERT: 5 values a row stays far below both backends' parameter limits.
const ITEMS_PER_INSERT: usize = 500;

#[async_trait]
impl SessionRepository for Store {
    async fn create_session(
        &self,
        s: &NewSession,
        log: &LogEntry,
    ) -> Result<StoredSession, RepoError> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        // First statement writes: the counter row is the lock that serializes session numbers
        // of one application, on PostgreSQL and across processes.
        let row = query_one(
            &txn,
            "UPDATE applications SET last_session_number = last_session_number + 1 \
             WHERE id = ? RETURNING last_session_number",
            vec![s.application_id.as_uuid().into()],
        )
        .await?
        .ok_or_else(|| RepoError::Internal("session for an unknown application".into()))?;
        let session_number: i64 = get(&row, "last_session_number")?;

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

        execute(
            &txn,
            &format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}, entity_id) \
                 VALUES ({})",
                placeholders(19)
            ),
            vec![
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
                json_text(s.metadata.as_ref()),
                s.callback.clone().into(),
                json_text(s.contact_details.as_ref()),
                json_text(s.expected_details.as_ref()),
                Option::<Uuid>::None.into(),
                String::new().into(),
                s.created_at.into(),
                s.expires_at.into(),
                entity_id.into(),
            ],
        )
        .await?;
        insert_log(&txn, s.id, log).await?;
        commit(txn).await?;
        Ok(StoredSession {
            id: s.id,
            application_id: s.application_id,
            kind: s.kind,
            session_number,
            session_token: s.session_token.clone(),
            session_url: s.session_url.clone(),
            status: s.status,
            workflow_id: s.workflow_id,
            features: s.features.clone(),
            vendor_data: s.vendor_data.clone(),
            metadata: s.metadata.clone(),
            callback: s.callback.clone(),
            contact_details: s.contact_details.clone(),
            expected_details: s.expected_details.clone(),
            shared_from_session: None,
            created_at: s.created_at,
            expires_at: s.expires_at,
        })
    }

    async fn find_session(
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<Option<SessionRecord>, RepoError> {
        let Some(row) = query_one(
            &self.db,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"),
            vec![id.as_uuid().into()],
        )
        .await?
        else {
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

    async fn record_results(
        &self,
        application_id: ApplicationId,
        id: SessionId,
        results: &RecordResults,
        log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        let Some(row) = lock_session(&txn, application_id, id).await? else {
            return Ok(false);
        };
        let old_status = rows::status(&get::<String>(&row, "status")?)?;
        let mut recorded = rows::recorded_blocks(&get::<String>(&row, "recorded_blocks")?)?;
        for (block, items) in &results.blocks {
            execute(
                &txn,
                &format!("DELETE FROM {} WHERE session_id = ?", block.v3_key()),
                vec![id.as_uuid().into()],
            )
            .await?;
            recorded.retain(|b| b != block);
            if let Some(items) = items {
                insert_items(&txn, id, *block, items).await?;
                recorded.push(*block);
            }
        }
        recorded.sort();
        let new_status = results.status.unwrap_or(old_status);
        execute(
            &txn,
            "UPDATE sessions SET status = ?, recorded_blocks = ? WHERE id = ?",
            vec![
                new_status.as_str().into(),
                recorded_blocks_text(&recorded).into(),
                id.as_uuid().into(),
            ],
        )
        .await?;
        let log = LogEntry {
            old_status: Some(old_status),
            new_status: Some(new_status),
            ..log.clone()
        };
        insert_log(&txn, id, &log).await?;
        commit(txn).await?;
        Ok(true)
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
        if !current.is_reviewable() {
            return Ok(ReviewOutcome::WrongCurrentStatus(current));
        }
        execute(
            &txn,
            "UPDATE sessions SET status = ? WHERE id = ?",
            vec![review.status().as_str().into(), id.as_uuid().into()],
        )
        .await?;
        let log = LogEntry {
            old_status: Some(current),
            new_status: Some(review.status()),
            ..log.clone()
        };
        insert_log(&txn, id, &log).await?;
        commit(txn).await?;
        Ok(ReviewOutcome::Applied)
    }

    async fn delete_session(
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<bool, RepoError> {
        // Every related row goes with it by ON DELETE CASCADE, in the same statement.
        let deleted = execute(
            &self.db,
            "DELETE FROM sessions WHERE id = ? AND application_id = ?",
            vec![id.as_uuid().into(), application_id.as_uuid().into()],
        )
        .await?;
        Ok(deleted == 1)
    }

    async fn list_sessions(
        &self,
        application_id: ApplicationId,
        filter: &SessionFilter,
    ) -> Result<SessionPage, RepoError> {
        let mut conditions = format!(
            "application_id = ? AND kind IN ({})",
            placeholders(filter.kinds.len())
        );
        let mut values: Vec<Value> = vec![application_id.as_uuid().into()];
        values.extend(filter.kinds.iter().map(|k| Value::from(k.as_str())));
        if !filter.statuses.is_empty() {
            conditions.push_str(&format!(
                " AND status IN ({})",
                placeholders(filter.statuses.len())
            ));
            values.extend(filter.statuses.iter().map(|s| Value::from(s.as_str())));
        }
        if let Some(vendor_data) = &filter.vendor_data {
            conditions.push_str(
                " AND entity_id IN (SELECT id FROM entities WHERE application_id = ? AND vendor_data_key = ?)",
            );
            values.push(application_id.as_uuid().into());
            values.push(vendor_data.key().into());
        }
        let count_row = query_one(
            &self.db,
            &format!("SELECT COUNT(*) AS n FROM sessions WHERE {conditions}"),
            values.clone(),
        )
        .await?;
        let count: i64 = match count_row {
            Some(row) => get(&row, "n")?,
            None => 0,
        };
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        values.push(limit.into());
        values.push(offset.into());
        let results = query_all(
            &self.db,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE {conditions} \
                 ORDER BY session_number DESC LIMIT ? OFFSET ?"
            ),
            values,
        )
        .await?
        .iter()
        .map(|row| rows::session(row).map(|(session, _)| session))
        .collect::<Result<Vec<_>, _>>()?;
        Ok(SessionPage {
            count: u64::try_from(count).unwrap_or(0),
            results,
        })
    }
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
    let Some(row) = query_one(
        txn,
        &format!(
            "SELECT status, recorded_blocks, application_id FROM sessions WHERE id = ?{}",
            for_update(txn.get_database_backend())
        ),
        vec![id.as_uuid().into()],
    )
    .await?
    else {
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
    let row = query_one(
        txn,
        "INSERT INTO entities (id, application_id, kind, vendor_data, vendor_data_key, status, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (application_id, kind, vendor_data_key) DO UPDATE SET status = entities.status \
         RETURNING id, status",
        vec![
            id.into(),
            application_id.as_uuid().into(),
            kind.as_str().into(),
            vendor_data.as_str().into(),
            vendor_data.key().into(),
            EntityStatus::Active.as_str().into(),
            at.into(),
        ],
    )
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
        let mut values = Vec::with_capacity(chunk.len() * 5);
        for (i, item) in chunk.iter().enumerate() {
            let position = i32::try_from(chunk_index * ITEMS_PER_INSERT + i)
                .map_err(|_| RepoError::Internal("too many items".into()))?;
            values.push(session_id.as_uuid().into());
            values.push(position.into());
            values.push(item.node_id().into());
            values.push(item.status().into());
            values.push(item.json().get().into());
        }
        let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        execute(
            txn,
            &format!(
                "INSERT INTO {} (session_id, position, node_id, status, item) VALUES {rows}",
                block.v3_key()
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

/// Appends a log row.
pub(crate) async fn insert_log(
    txn: &DatabaseTransaction,
    session_id: SessionId,
    log: &LogEntry,
) -> Result<(), RepoError> {
    execute(
        txn,
        "INSERT INTO session_logs \
         (session_id, kind, actor, action, old_status, new_status, comment, details, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        std::iter::once(session_id.as_uuid().into())
            .chain(log_values(log))
            .collect(),
    )
    .await
    .map(drop)
}

/// A log row's columns after `session_id`, in the order `kind, actor, action, old_status,
/// new_status, comment, details, created_at`.
pub(crate) fn log_values(log: &LogEntry) -> Vec<Value> {
    vec![
        log.kind.as_str().into(),
        log.actor.clone().into(),
        log.action.clone().into(),
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
    let sql = recorded
        .iter()
        .map(|block| {
            format!(
                "SELECT '{0}' AS block, {ITEM_COLUMNS} FROM {0} WHERE session_id = ?",
                block.v3_key()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let items = query_all(db, &sql, vec![Value::from(id.as_uuid()); recorded.len()])
        .await?
        .iter()
        .map(rows::item)
        .collect::<Result<_, _>>()?;
    Ok(rows::blocks(recorded, items))
}

async fn read_reviews<C: ConnectionTrait>(db: &C, id: SessionId) -> Result<Vec<Review>, RepoError> {
    let rows = query_all(
        db,
        &format!(
            "SELECT {REVIEW_COLUMNS} FROM session_logs \
             WHERE session_id = ? AND kind = ? ORDER BY id"
        ),
        vec![id.as_uuid().into(), LogKind::Review.as_str().into()],
    )
    .await?;
    rows.iter()
        .filter_map(|row| rows::review(row).transpose())
        .map(|review| review.map(|(_, review)| review))
        .collect()
}
