//! Share tokens and imports. An import is all or nothing, in a fixed number of statements
//! whatever the number of rows: on PostgreSQL, checks included, one statement
//! ([`one_statement`]); on SQLite, the checks' read and an `INSERT … SELECT` per table in one
//! `BEGIN IMMEDIATE` transaction (here). How an import runs end to end: `docs/sharing.md`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::ports::ShareRepository;
use handoff_domain::{
    ApplicationId, FeatureBlock, ImportAttempt, ImportCheck, ImportContext, ImportOutcome,
    ImportWorkflow, IssuedShareToken, LogEntry, RepoError, SessionId, SessionKind, SessionRecord,
    StoredSession, first_failed_check,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult, Value};
use uuid::Uuid;

use crate::Store;
use crate::one_statement;
use crate::rows::{self, ITEM_COLUMNS, REVIEW_COLUMNS, SESSION_COLUMNS, get};
use crate::sessions::{ensure_entity, log_values};
use crate::sql::{
    Failure, begin_write, commit, execute, is_unique_violation, query_one, repo_error, stmt,
};

#[async_trait]
impl ShareRepository for Store {
    async fn find_source(
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, RepoError> {
        // By key alone, then the application (see `find_session`).
        Ok(query_one(
            &self.db,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"),
            vec![id.as_uuid().into()],
        )
        .await?
        .map(|row| rows::session(&row).map(|(session, _)| session))
        .transpose()?
        .filter(|session| session.application_id == application_id))
    }

    async fn record_share_token(&self, token: &IssuedShareToken) -> Result<(), RepoError> {
        let c = &token.claims;
        execute(
            &self.db,
            "INSERT INTO share_tokens \
             (jti, session_id, session_kind, from_application_id, for_application_id, issued_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            vec![
                token.jti.clone().into(),
                c.session_id.as_uuid().into(),
                c.session_kind.as_str().into(),
                c.from_application_id.as_uuid().into(),
                c.for_application_id.as_uuid().into(),
                c.issued_at.into(),
                c.expires_at.into(),
            ],
        )
        .await
        .map(drop)
    }

    async fn import_context(&self, attempt: &ImportAttempt) -> Result<ImportContext, RepoError> {
        read_context(&self.db, attempt).await
    }

    async fn revoke_share_token(
        &self,
        application_id: ApplicationId,
        jti: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let changed = execute(
            &self.db,
            "UPDATE share_tokens SET revoked_at = COALESCE(revoked_at, ?) \
             WHERE jti = ? AND from_application_id = ?",
            vec![at.into(), jti.into(), application_id.as_uuid().into()],
        )
        .await?;
        Ok(changed == 1)
    }

    /// On PostgreSQL, where each statement is a round trip, the checks and the clone are one
    /// statement; SQLite, in-process, reads the checks inside its write transaction.
    async fn import(&self, attempt: &ImportAttempt) -> Result<ImportOutcome, RepoError> {
        let outcome = match self.backend() {
            sea_orm::DatabaseBackend::Postgres => one_statement::import(&self.db, attempt).await,
            _ => self.import_in_transaction(attempt).await,
        };
        match outcome {
            Ok(outcome) => Ok(outcome),
            Err(Failure::Db(error)) if is_unique_violation(&error) => {
                self.already_imported(attempt).await
            }
            Err(Failure::Db(error)) => Err(repo_error(error)),
            Err(Failure::Repo(error)) => Err(error),
        }
    }
}

impl Store {
    /// [`ShareRepository::import`] on SQLite: the checks read and decided inside the write
    /// transaction, then the copies.
    async fn import_in_transaction(
        &self,
        attempt: &ImportAttempt,
    ) -> Result<ImportOutcome, Failure> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        let context = read_context(&txn, attempt).await?;
        let outcome = match (
            first_failed_check(&context, attempt),
            context.existing_clone,
        ) {
            (None, _) => copy(&txn, attempt, context).await?,
            (Some(ImportCheck::NotImported), Some(existing)) => {
                ImportOutcome::AlreadyImported(existing)
            }
            (Some(_), _) => ImportOutcome::Refused,
        };
        if let ImportOutcome::Imported(_) = outcome {
            commit(txn).await?;
        } else {
            txn.rollback().await.map_err(repo_error)?;
        }
        Ok(outcome)
    }

    /// After a unique violation on the clone (its transaction rolled back): another import of
    /// this source by this receiver committed first; its clone is the answer, or, when it was
    /// deleted since, a refusal that the service reads again.
    async fn already_imported(&self, attempt: &ImportAttempt) -> Result<ImportOutcome, RepoError> {
        Ok(
            match self
                .existing_clone(attempt.application_id, attempt.claims.session_id)
                .await?
            {
                Some(existing) => ImportOutcome::AlreadyImported(existing),
                None => ImportOutcome::Refused,
            },
        )
    }

    async fn existing_clone(
        &self,
        application_id: ApplicationId,
        source: SessionId,
    ) -> Result<Option<SessionId>, RepoError> {
        query_one(
            &self.db,
            "SELECT id FROM sessions WHERE application_id = ? AND shared_from_session = ?",
            vec![application_id.as_uuid().into(), source.as_uuid().into()],
        )
        .await?
        .map(|row| get::<Uuid>(&row, "id").map(SessionId::from_uuid))
        .transpose()
    }
}

/// The `INSERT … SELECT` that copies one block table, built once per block. Positions are copied
/// as they are, so the rows need no order.
fn copy_block_sql(block: FeatureBlock) -> &'static str {
    static SQL: std::sync::LazyLock<Vec<(FeatureBlock, String)>> = std::sync::LazyLock::new(|| {
        FeatureBlock::ALL
            .iter()
            .map(|block| {
                let sql = format!(
                    "INSERT INTO {0} (session_id, position, node_id, status, item) \
                     SELECT ?, position, node_id, status, item FROM {0} WHERE session_id = ? \
                     RETURNING '{0}' AS block, {ITEM_COLUMNS}",
                    block.v3_key()
                );
                (*block, sql)
            })
            .collect()
    });
    SQL.iter()
        .find(|(b, _)| *b == block)
        .map_or("", |(_, sql)| sql.as_str())
}

/// [`ShareRepository::import_context`], on a connection or inside a transaction: one query.
async fn read_context<C: ConnectionTrait>(
    db: &C,
    attempt: &ImportAttempt,
) -> Result<ImportContext, RepoError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let columns: Vec<String> = SESSION_COLUMNS
            .split(',')
            .map(|c| format!("s.{}", c.trim()))
            .collect();
        format!(
            "SELECT (SELECT revoked_at FROM share_tokens WHERE jti = ?) AS revoked_at, \
             (SELECT c.id FROM sessions c WHERE c.application_id = ? AND c.shared_from_session = ?) AS clone_id, \
             w.kind AS workflow_kind, w.session_expiration_time AS workflow_expiration, {}, \
             w.application_id AS workflow_application_id \
             FROM (SELECT 1 AS probe) AS probe \
             LEFT JOIN sessions s ON s.id = ? \
             LEFT JOIN workflows w ON w.id = ? AND w.deleted_at IS NULL",
            columns.join(", ")
        )
    });
    let claims = &attempt.claims;
    let receiver = attempt.application_id;
    let row = query_one(
        db,
        &SQL,
        vec![
            claims.jti.clone().into(),
            receiver.as_uuid().into(),
            claims.session_id.as_uuid().into(),
            claims.session_id.as_uuid().into(),
            attempt.workflow_id.as_uuid().into(),
        ],
    )
    .await?
    .ok_or_else(|| RepoError::Internal("the import context query returned no row".into()))?;
    let revoked = get::<Option<DateTime<Utc>>>(&row, "revoked_at")?.is_some();
    let existing_clone = get::<Option<Uuid>>(&row, "clone_id")?.map(SessionId::from_uuid);
    // Both rows are looked up by key alone, so that no planner statistics can turn the lookup
    // into a scan of the application's rows; their application is checked here.
    let source_found =
        get::<Option<Uuid>>(&row, "application_id")? == Some(claims.from_application_id.as_uuid());
    let workflow_found =
        get::<Option<Uuid>>(&row, "workflow_application_id")? == Some(receiver.as_uuid());
    let (source, recorded_blocks) = if source_found {
        let (session, blocks) = rows::session(&row)?;
        (Some(session), blocks)
    } else {
        (None, Vec::new())
    };
    let workflow = match get::<Option<String>>(&row, "workflow_kind")? {
        Some(kind) if workflow_found => Some(ImportWorkflow {
            kind: SessionKind::parse(&kind).ok_or_else(|| {
                RepoError::Internal(format!("stored workflow kind {kind:?}").into())
            })?,
            session_expiration_time: get(&row, "workflow_expiration")?,
        }),
        _ => None,
    };
    Ok(ImportContext {
        revoked,
        source,
        recorded_blocks,
        existing_clone,
        workflow,
    })
}

async fn run(txn: &DatabaseTransaction, sql: &str, values: Vec<Value>) -> Result<u64, Failure> {
    txn.execute_raw(stmt(txn.get_database_backend(), sql, values))
        .await
        .map(|r| r.rows_affected())
        .map_err(Failure::Db)
}

/// [`run`] for a statement that returns rows (`RETURNING`).
async fn fetch(
    txn: &DatabaseTransaction,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, Failure> {
    txn.query_all_raw(stmt(txn.get_database_backend(), sql, values))
        .await
        .map_err(Failure::Db)
}

/// The clone's session row, `INSERT … SELECT` from the source's, returning what a decision
/// shows (built once).
static CLONE_SESSION_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO sessions (id, application_id, kind, session_number, session_token, \
         session_url, status, workflow_id, features, vendor_data, entity_id, metadata, \
         callback, contact_details, expected_details, shared_from_session, recorded_blocks, \
         created_at, expires_at) \
         SELECT ?, ?, kind, ?, ?, ?, ?, ?, features, ?, ?, NULL, NULL, contact_details, \
         expected_details, id, ?, ?, ? \
         FROM sessions WHERE id = ? \
         RETURNING {SESSION_COLUMNS}"
    )
});

/// The source's log rows copied in their order, then the row that records the import,
/// returning what `reviews` shows (built once).
static COPY_LOGS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO session_logs \
         (session_id, kind, actor, action, old_status, new_status, comment, details, \
         created_at) \
         SELECT ?, kind, actor, action, old_status, new_status, comment, details, created_at \
         FROM (SELECT 0 AS part, id, kind, actor, action, old_status, new_status, comment, \
         details, created_at FROM session_logs WHERE session_id = ? \
         UNION ALL SELECT 1, 0, ?, ?, ?, ?, ?, ?, ?, ?) AS logs ORDER BY part, id \
         RETURNING {REVIEW_COLUMNS}"
    )
});

/// The application's next session number (its counter row, locked until the transaction ends).
async fn next_session_number(
    txn: &DatabaseTransaction,
    application_id: ApplicationId,
) -> Result<i64, Failure> {
    let counter = query_one(
        txn,
        "UPDATE applications SET last_session_number = last_session_number + 1 \
         WHERE id = ? RETURNING last_session_number",
        vec![application_id.as_uuid().into()],
    )
    .await?
    .ok_or_else(|| RepoError::Internal("import into an unknown application".into()))?;
    Ok(get(&counter, "last_session_number")?)
}

/// The clone's statements, in order, once the checks passed inside the write transaction. The
/// counter comes first: the immediate transaction holds the write lock from `BEGIN` anyway, and
/// the session row is then written with its number.
async fn copy(
    txn: &DatabaseTransaction,
    attempt: &ImportAttempt,
    context: ImportContext,
) -> Result<ImportOutcome, Failure> {
    let (Some(source), Some(workflow)) = (context.source, context.workflow) else {
        return Ok(ImportOutcome::Refused);
    };
    let vendor_data = attempt.clone_vendor_data(&source);
    // The receiver's entity, read (or created) inside the transaction: its status decides the
    // clone's, with no window for it to change in between.
    let (entity_id, entity_status) = match vendor_data {
        Some(vendor_data) => {
            let (id, status) = ensure_entity(
                txn,
                attempt.entity_id,
                attempt.application_id,
                source.kind,
                vendor_data,
                attempt.created_at,
            )
            .await?;
            (Some(id), Some(status))
        }
        None => (None, None),
    };
    let status = attempt.status(source.status, entity_status);
    let number = next_session_number(txn, attempt.application_id).await?;

    // The session row, from the source's. The source application's own metadata and callback
    // stay behind; what the verification was about (contact and expected details) comes along.
    // Every write returns what it wrote: the clone is answered without reading it back.
    let inserted = fetch(
        txn,
        &CLONE_SESSION_SQL,
        vec![
            attempt.clone_id.as_uuid().into(),
            attempt.application_id.as_uuid().into(),
            number.into(),
            attempt.session_token.clone().into(),
            attempt.session_url.clone().into(),
            status.as_str().into(),
            attempt.workflow_id.as_uuid().into(),
            vendor_data.map(|v| v.as_str().to_owned()).into(),
            entity_id.into(),
            rows::recorded_blocks_text(&context.recorded_blocks).into(),
            attempt.created_at.into(),
            attempt.expires_at(workflow).into(),
            source.id.as_uuid().into(),
        ],
    )
    .await?;
    let Some(row) = inserted.first() else {
        return Ok(ImportOutcome::Refused);
    };
    let (session, recorded) = rows::session(row)?;

    // Only the blocks the source recorded: an empty table costs a statement and copies nothing.
    let mut items = Vec::new();
    for block in &context.recorded_blocks {
        let copied = fetch(
            txn,
            copy_block_sql(*block),
            vec![
                attempt.clone_id.as_uuid().into(),
                source.id.as_uuid().into(),
            ],
        )
        .await?;
        for row in &copied {
            items.push(rows::item(row)?);
        }
    }
    let log = LogEntry {
        old_status: Some(source.status),
        new_status: Some(status),
        ..attempt.log.clone()
    };
    let mut reviews = Vec::new();
    for row in &fetch(
        txn,
        &COPY_LOGS_SQL,
        [
            attempt.clone_id.as_uuid().into(),
            source.id.as_uuid().into(),
        ]
        .into_iter()
        .chain(log_values(&log))
        .collect(),
    )
    .await?
    {
        reviews.extend(rows::review(row)?);
    }
    reviews.sort_by_key(|(id, _)| *id);
    if let Some(jti) = &attempt.claims.jti {
        run(
            txn,
            "UPDATE share_tokens SET redeemed_at = ?, redeemed_session_id = ? \
             WHERE jti = ? AND redeemed_at IS NULL",
            vec![
                attempt.created_at.into(),
                attempt.clone_id.as_uuid().into(),
                jti.clone().into(),
            ],
        )
        .await?;
    }
    Ok(ImportOutcome::Imported(Box::new(SessionRecord {
        session,
        blocks: rows::blocks(&recorded, items),
        reviews: reviews.into_iter().map(|(_, review)| review).collect(),
    })))
}
