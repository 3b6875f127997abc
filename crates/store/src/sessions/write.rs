//! Writing a session: its number, its entity, its items, its log rows and their events, and
//! the locks a write takes first.

use super::*;

impl Store {
    /// `record_results`, and with `revision` `amend_results`.
    pub(super) async fn write_results(
        &self, application_id: ApplicationId, id: SessionId, revision: Option<i64>,
        results: &RecordResults, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let large = results.item_bytes() >= LARGE_WRITE_BYTES;
        // The session's data key, which never changes but to be erased (checked below).
        let key = match fetch_one(&self.db, &select_data_key(id)).await? {
            Some(row) if get::<Uuid>(&row, "application_id")? == application_id.as_uuid() => {
                self.row_key(&self.db, &row).await?
            }
            _ => return Ok(false),
        };
        if matches!(key, SessionKey::Erased) {
            return Ok(false);
        }
        // The inserts are built (and sealed) before the writer's turn, so that the turn (on
        // SQLite, the database's one writer) is held for the writes alone; a large set off the
        // async worker, which keeps answering other requests meanwhile.
        let backend = self.backend();
        let inserts = if large {
            let blocks = results.blocks.clone();
            let key = key.clone();
            tokio::task::spawn_blocking(move || item_inserts(backend, id, &blocks, &key))
                .await
                .map_err(|_| RepoError::Internal("building the item inserts failed".into()))??
        } else {
            item_inserts(backend, id, &results.blocks, &key)?
        };
        // What lists find the session by, when a block that names it is written.
        let written: Vec<(FeatureBlock, Vec<FeatureItem>)> = results
            .blocks
            .iter()
            .filter(|(block, _)| {
                matches!(block, FeatureBlock::IdVerifications | FeatureBlock::RegistryChecks)
            })
            .map(|(block, items)| (*block, items.clone().unwrap_or_default()))
            .collect();
        let terms = (!written.is_empty()).then(|| self.listing_terms(&written));
        let _turn = if large { self.large_write_turn().await } else { self.write_turn().await };
        let txn = self.begin_write().await?;
        let Some(row) = lock_session(&txn, application_id, id).await? else {
            return Ok(false);
        };
        // Erased since the key was read.
        if get::<Option<Vec<u8>>>(&row, "data_key")?.is_some_and(|key| crate::sealing::erased(&key))
        {
            return Ok(false);
        }
        if revision.is_some_and(|expected| get::<i64>(&row, "revision").ok() != Some(expected)) {
            return Err(RepoError::Changed);
        }
        let old_status = rows::status(&get::<String>(&row, "status")?)?;
        let mut recorded = rows::recorded_blocks(&get::<String>(&row, "recorded_blocks")?)?;
        for ((block, items), inserts) in results.blocks.iter().zip(inserts) {
            // The items beyond the new ones; the others are overwritten where they are, which
            // spares the table and its index a delete and an insert a row.
            let kept = i32::try_from(items.as_ref().map_or(0, Vec::len))
                .map_err(|_| RepoError::Internal("too many items".into()))?;
            let delete = Query::delete()
                .from_table(Alias::new(block.v3_key()))
                .and_where(Expr::col(BlockItems::SessionId).eq(id.as_uuid()))
                .and_where(Expr::col(BlockItems::Position).gte(kept))
                .to_owned();
            run(&txn, &delete).await?;
            recorded.retain(|b| b != block);
            for insert in inserts {
                txn.execute_raw(insert).await.map_err(repo_error)?;
            }
            if items.is_some() {
                recorded.push(*block);
            }
        }
        recorded.sort();
        let new_status = results.status.unwrap_or(old_status);
        let mut update = Query::update()
            .table(Sessions::Table)
            .value(Sessions::Status, new_status.as_str())
            .value(Sessions::RecordedBlocks, recorded_blocks_text(&recorded))
            .value(Sessions::Revision, Expr::col(Sessions::Revision).add(1))
            .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
            .to_owned();
        if let Some(terms) = terms {
            update
                .value(Sessions::NameWords, terms.name_words)
                .value(Sessions::Country, terms.country);
        }
        if let Some(keys) = &results.blocklist_keys {
            update
                .value(Sessions::BlocklistKeys, keys.keys_json())
                .value(Sessions::BlocklistIp, keys.ip.clone());
        }
        run(&txn, &update).await?;
        let log = self.sealed_comment(&txn, &row, log.transition(old_status, new_status)).await?;
        insert_log(&txn, id, &log).await?;
        commit(txn).await?;
        Ok(true)
    }

    /// What the listings of `sessions` read from their recorded blocks, by session: every
    /// item's status, and the first item of `id_verifications` and `registry_checks`; one
    /// statement for the page.
    pub(super) async fn listed_blocks(
        &self, sessions: &[(StoredSession, Vec<FeatureBlock>)], keys: &HashMap<Uuid, SessionKey>,
    ) -> Result<HashMap<Uuid, HashMap<FeatureBlock, ListedBlock>>, RepoError> {
        let mut parts = Vec::new();
        for block in FeatureBlock::ALL {
            let ids: Vec<Uuid> = sessions
                .iter()
                .filter(|(_, recorded)| recorded.contains(&block))
                .map(|(session, _)| session.id.as_uuid())
                .collect();
            if ids.is_empty() {
                continue;
            }
            // The first item of a block whose items name the person or company.
            let item: Expr = match block {
                FeatureBlock::IdVerifications | FeatureBlock::RegistryChecks => {
                    Expr::case(Expr::col(BlockItems::Position).eq(0), Expr::col(BlockItems::Item))
                        .into()
                }
                _ => Expr::cust("NULL"),
            };
            parts.push(
                Query::select()
                    .column(BlockItems::SessionId)
                    .expr_as(Expr::val(block.v3_key()), Alias::new("block"))
                    .columns([BlockItems::Position, BlockItems::Status])
                    .expr_as(item, Alias::new("item"))
                    .from(Alias::new(block.v3_key()))
                    .and_where(Expr::col(BlockItems::SessionId).is_in(ids))
                    .to_owned(),
            );
        }
        let mut listed: HashMap<Uuid, HashMap<FeatureBlock, ListedBlock>> = HashMap::new();
        let mut parts = parts.into_iter();
        let Some(mut all) = parts.next() else {
            return Ok(listed);
        };
        for part in parts {
            all.union(UnionType::All, part);
        }
        all.order_by(BlockItems::Position, Order::Asc);
        let rows = fetch_all(&self.db, &all).await?;
        for row in &rows {
            let key: String = get(row, "block")?;
            let Some(block) = FeatureBlock::from_v3_key(&key) else {
                continue;
            };
            let session = get::<Uuid>(row, "session_id")?;
            let entry = listed.entry(session).or_default().entry(block).or_default();
            entry.statuses.push(get(row, "status")?);
            if let Some(item) = rows::text_or_null(row, "item")? {
                let key = keys.get(&session).unwrap_or(&SessionKey::Clear);
                entry.first = serde_json::from_str(&key.open(block.v3_key(), item)?).ok();
            }
        }
        Ok(listed)
    }
}

/// Locks the application's counter row until the transaction ends, without bumping it.
pub(super) async fn lock_counter(
    txn: &DatabaseTransaction, application_id: ApplicationId,
) -> Result<(), RepoError> {
    let lock = Query::update()
        .table(Applications::Table)
        .value(Applications::LastSessionNumber, Expr::col(Applications::LastSessionNumber))
        .and_where(Expr::col(Applications::Id).eq(application_id.as_uuid()))
        .to_owned();
    run(txn, &lock).await.map(drop)
}

/// The newest unfinished session of `s`'s workflow (as its steps are now) and `vendor_data`, its `callback` and
/// `metadata` replaced by `s`'s when given, and the request's idempotency key claimed for it;
/// `None` when there is none.
pub(super) async fn reuse_unfinished(
    store: &Store, txn: &DatabaseTransaction, s: &NewSession,
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
    let select =
        Query::select()
            .columns([Sessions::Id, Sessions::DataKey])
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::ApplicationId).eq(s.application_id.as_uuid()))
            .and_where(Expr::col(Sessions::WorkflowId).eq(s.workflow_id.as_uuid()))
            // Only a session that runs the workflow's steps as they are now.
            .and_where(Expr::col(Sessions::Features).eq(features_text(&s.features)))
            .and_where(Expr::col(Sessions::Status).is_in(
                handoff_domain::SessionStatus::UNFINISHED.iter().map(|status| status.as_str()),
            ))
            .and_where(Expr::col(Sessions::EntityId).in_subquery(entity))
            .order_by(Sessions::SessionNumber, Order::Desc)
            .limit(1)
            .to_owned();
    let Some(row) = fetch_one(txn, &select).await? else {
        return Ok(None);
    };
    let id = SessionId::from_uuid(get(&row, "id")?);
    let key = store.session_key(txn, s.application_id.as_uuid(), get(&row, "data_key")?).await?;
    if matches!(key, SessionKey::Erased) {
        return Ok(None);
    }
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
        update.value(
            Sessions::Metadata,
            rows::sealed_json_text(s.metadata.as_ref(), "metadata", &key)?,
        );
        changed = true;
    }
    if changed {
        run(txn, &update).await?;
    }
    let row = fetch_one(txn, &select_session(id))
        .await?
        .ok_or_else(|| RepoError::Internal("the reused session vanished".into()))?;
    rows::session(&row, &key).map(|(session, _)| Some(session))
}

/// The application's next session number: its counter row bumped and locked until the
/// transaction ends, which serializes one application's numbers across processes.
pub(crate) async fn next_session_number(
    txn: &DatabaseTransaction, application_id: ApplicationId,
) -> Result<i64, RepoError> {
    let row = fetch_one(txn, &counter_update(application_id))
        .await?
        .ok_or_else(|| RepoError::Internal("a session for an unknown application".into()))?;
    get(&row, "last_session_number")
}

/// The application's session counter moved on, returning the new `last_session_number`.
pub(super) fn counter_update(application_id: ApplicationId) -> UpdateStatement {
    Query::update()
        .table(Applications::Table)
        .value(Applications::LastSessionNumber, Expr::col(Applications::LastSessionNumber).add(1))
        .and_where(Expr::col(Applications::Id).eq(application_id.as_uuid()))
        .returning_col(Applications::LastSessionNumber)
        .to_owned()
}

/// The application and data key of a session, by key alone.
fn select_data_key(id: SessionId) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([Sessions::ApplicationId, Sessions::DataKey])
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
        .to_owned()
}

/// The session's `status`, `recorded_blocks` and data key, its row locked for the rest of the transaction
/// (`FOR UPDATE` on PostgreSQL; SQLite's immediate transaction already holds the write lock).
/// `None` when the application holds no such session.
pub(super) async fn lock_session(
    txn: &DatabaseTransaction, application_id: ApplicationId, id: SessionId,
) -> Result<Option<sea_orm::QueryResult>, RepoError> {
    // By key alone, then the application (see `find_session`); the transaction of a caller
    // that finds another application's row ends without writing.
    let mut select = Query::select()
        .columns([
            Sessions::Status,
            Sessions::RecordedBlocks,
            Sessions::ApplicationId,
            Sessions::Revision,
            Sessions::DataKey,
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
    txn: &DatabaseTransaction, id: EntityId, application_id: ApplicationId,
    kind: handoff_domain::SessionKind, vendor_data: &handoff_domain::VendorData,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(Uuid, EntityStatus), RepoError> {
    let new = NewEntity {
        id,
        kind,
        vendor_data: vendor_data.clone(),
        status: EntityStatus::Active,
        display_name: None,
        metadata: None,
        created_at: at,
    };
    let upsert = crate::entities::entity_insert(application_id, &new)?
        .on_conflict(
            OnConflict::columns([Entities::ApplicationId, Entities::Kind, Entities::VendorDataKey])
                .value(Entities::Status, Expr::col((Entities::Table, Entities::Status)))
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

/// The inserts of each block's items, by block in `blocks`' order (none for a block cleared),
/// [`ITEMS_PER_INSERT`] rows each; an item at a position the session's block holds already
/// overwrites it.
pub(crate) fn item_inserts(
    backend: DatabaseBackend, session_id: SessionId,
    blocks: &[(FeatureBlock, Option<Vec<FeatureItem>>)], key: &SessionKey,
) -> Result<Vec<Vec<Statement>>, RepoError> {
    blocks
        .iter()
        .map(|(block, items)| {
            let Some(items) = items else {
                return Ok(Vec::new());
            };
            items
                .chunks(ITEMS_PER_INSERT)
                .enumerate()
                .map(|(chunk_index, chunk)| {
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
                        insert
                            .values([
                                session_id.as_uuid().into(),
                                position.into(),
                                item.node_id().into(),
                                item.status().into(),
                                key.seal(block.v3_key(), item.json().get())?.into(),
                            ])
                            .map_err(crate::sql::insert_mismatch)?;
                    }
                    insert.on_conflict(
                        OnConflict::columns([BlockItems::SessionId, BlockItems::Position])
                            .update_columns([
                                BlockItems::NodeId,
                                BlockItems::Status,
                                BlockItems::Item,
                            ])
                            .to_owned(),
                    );
                    Ok(backend.build(&insert))
                })
                .collect()
        })
        .collect()
}

/// Appends a log row, and the webhook events it causes.
pub(crate) async fn insert_log(
    txn: &DatabaseTransaction, session_id: SessionId, log: &LogEntry,
) -> Result<(), RepoError> {
    run(txn, &log_insert(session_id, log)?).await?;
    crate::outbox::insert_events(txn, session_id, log).await
}

/// The log row's statement of [`insert_log`] (without its events).
pub(crate) fn log_insert(
    session_id: SessionId, log: &LogEntry,
) -> Result<sea_orm::sea_query::InsertStatement, RepoError> {
    Ok(Query::insert()
        .into_table(SessionLogs::Table)
        .columns(std::iter::once(SessionLogs::SessionId).chain(LOG_COLUMNS))
        .values(std::iter::once(session_id.as_uuid().into()).chain(log_values(log)).map(Expr::val))
        .map_err(crate::sql::insert_mismatch)?
        .to_owned())
}

/// A log row's columns after `session_id`: what [`log_values`] gives and
/// [`rows::log_entry`](crate::rows::log_entry) reads.
pub(crate) const LOG_COLUMNS: [SessionLogs; 8] = [
    SessionLogs::Kind,
    SessionLogs::Actor,
    SessionLogs::Action,
    SessionLogs::OldStatus,
    SessionLogs::NewStatus,
    SessionLogs::Comment,
    SessionLogs::Details,
    SessionLogs::CreatedAt,
];

/// A log row's values in the order of [`LOG_COLUMNS`].
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

/// A session's `features` column: the decision names as a JSON array.
pub(crate) fn features_text(features: &[String]) -> String {
    serde_json::to_string(features).unwrap_or_else(|_| "[]".into())
}
