//! Share tokens and imports: the clone of a session, with every related row, all or nothing, in
//! a fixed number of statements whatever the number of rows: an `INSERT … SELECT` per table in
//! one transaction, or on PostgreSQL, checks included, one statement ([`one_statement`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::ports::ShareRepository;
use handoff_domain::{
    ApplicationId, ClonePlan, FeatureBlock, ImportAttempt, ImportContext, ImportOutcome,
    ImportWorkflow, IssuedShareToken, LogEntry, RepoError, SessionId, SessionKind, SessionRecord,
    StoredSession, WorkflowId,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, QueryResult, Value};
use uuid::Uuid;

use crate::Store;
use crate::one_statement;
use crate::rows::{self, ITEM_COLUMNS, REVIEW_COLUMNS, SESSION_COLUMNS, get};
use crate::sessions::{ensure_entity, log_values};
use crate::sql::{begin_write, commit, execute, is_unique_violation, query_one, repo_error, stmt};

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

    async fn import_context(
        &self,
        jti: Option<&str>,
        receiver: ApplicationId,
        source_application_id: ApplicationId,
        source: SessionId,
        workflow_id: WorkflowId,
    ) -> Result<ImportContext, RepoError> {
        let columns: Vec<String> = SESSION_COLUMNS
            .split(',')
            .map(|c| format!("s.{}", c.trim()))
            .collect();
        let row = query_one(
            &self.db,
            &format!(
                "SELECT (SELECT revoked_at FROM share_tokens WHERE jti = ?) AS revoked_at, \
                 (SELECT c.id FROM sessions c WHERE c.application_id = ? AND c.shared_from_session = ?) AS clone_id, \
                 w.kind AS workflow_kind, w.session_expiration_time AS workflow_expiration, {}, \
                 w.application_id AS workflow_application_id \
                 FROM (SELECT 1 AS probe) AS probe \
                 LEFT JOIN sessions s ON s.id = ? \
                 LEFT JOIN workflows w ON w.id = ? AND w.deleted_at IS NULL",
                columns.join(", ")
            ),
            vec![
                jti.map(str::to_owned).into(),
                receiver.as_uuid().into(),
                source.as_uuid().into(),
                source.as_uuid().into(),
                workflow_id.as_uuid().into(),
            ],
        )
        .await?
        .ok_or_else(|| RepoError::Internal("the import context query returned no row".into()))?;
        let revoked = get::<Option<DateTime<Utc>>>(&row, "revoked_at")?.is_some();
        let existing_clone = get::<Option<Uuid>>(&row, "clone_id")?.map(SessionId::from_uuid);
        // Both rows are looked up by key alone, so that no planner statistics can turn the
        // lookup into a scan of the application's rows; their application is checked here.
        let source_found =
            get::<Option<Uuid>>(&row, "application_id")? == Some(source_application_id.as_uuid());
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
                kind: SessionKind::parse(&kind)
                    .ok_or_else(|| RepoError::Internal(format!("stored workflow kind {kind:?}")))?,
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
    /// statement ([`one_statement`]); SQLite, in-process, reads the checks first.
    async fn try_import(
        &self,
        attempt: &ImportAttempt,
    ) -> Result<Option<ImportOutcome>, RepoError> {
        match self.backend() {
            sea_orm::DatabaseBackend::Postgres => self.try_import_in_one_statement(attempt).await,
            _ => Ok(None),
        }
    }

    async fn import_clone(&self, plan: &ClonePlan) -> Result<ImportOutcome, RepoError> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        match copy(&txn, plan).await {
            Ok(Copied::Done(clone)) => {
                commit(txn).await?;
                Ok(ImportOutcome::Imported(clone))
            }
            Ok(Copied::SourceGone) => {
                txn.rollback().await.map_err(repo_error)?;
                Ok(ImportOutcome::SourceGone)
            }
            Err(Failure::Db(error)) if is_unique_violation(&error) => {
                // The failed transaction is rolled back before the winner is read.
                txn.rollback().await.map_err(repo_error)?;
                self.already_imported(plan.application_id, plan.source_session_id, error)
                    .await
            }
            Err(Failure::Db(error)) => Err(repo_error(error)),
            Err(Failure::Repo(error)) => Err(error),
        }
    }
}

impl Store {
    /// [`ShareRepository::try_import`] on PostgreSQL: one statement.
    async fn try_import_in_one_statement(
        &self,
        attempt: &ImportAttempt,
    ) -> Result<Option<ImportOutcome>, RepoError> {
        match one_statement::try_import(&self.db, attempt).await {
            Ok(clone) => Ok(clone.map(|clone| ImportOutcome::Imported(Box::new(clone)))),
            Err(one_statement::Failure::Db(error)) if is_unique_violation(&error) => self
                .already_imported(attempt.application_id, attempt.source_session_id, error)
                .await
                .map(Some),
            Err(one_statement::Failure::Db(error)) => Err(repo_error(error)),
            Err(one_statement::Failure::Repo(error)) => Err(error),
        }
    }

    /// After a unique violation on the clone: another import of this source by this receiver
    /// committed first; its clone is the answer.
    async fn already_imported(
        &self,
        application_id: ApplicationId,
        source: SessionId,
        error: DbErr,
    ) -> Result<ImportOutcome, RepoError> {
        match self.existing_clone(application_id, source).await? {
            Some(existing) => Ok(ImportOutcome::AlreadyImported(existing)),
            None => Err(repo_error(error)),
        }
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

enum Copied {
    /// The clone as written.
    Done(Box<SessionRecord>),
    SourceGone,
}

enum Failure {
    Db(DbErr),
    Repo(RepoError),
}

impl From<RepoError> for Failure {
    fn from(error: RepoError) -> Self {
        Failure::Repo(error)
    }
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
         FROM sessions WHERE id = ? AND application_id = ? AND kind = ? \
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

/// A session number no real session has (real ones are positive), unique per clone: the clone's
/// row holds it until the transaction takes its real number, last.
fn placeholder_number(clone: SessionId) -> i64 {
    let bits = clone.as_uuid().as_u64_pair().0 >> 1;
    -i64::try_from(bits).unwrap_or(i64::MAX) - 1
}

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

/// The clone's statements, in order. On PostgreSQL (its long way) the application's counter row
/// is taken last, just before `COMMIT`: concurrent imports into one application serialize on
/// that row lock, so the less of the transaction runs under it, the more of them overlap; the
/// session row holds a placeholder number until then. SQLite's immediate transaction holds the
/// write lock from `BEGIN`, so there the counter comes first and the session row is written
/// with its number: one statement fewer.
async fn copy(txn: &DatabaseTransaction, plan: &ClonePlan) -> Result<Copied, Failure> {
    // The receiver's entity, read (or created) inside the transaction: its status decides the
    // clone's, with no window for it to change in between.
    let (entity_id, entity_status) = match &plan.vendor_data {
        Some(vendor_data) => {
            let (id, status) = ensure_entity(
                txn,
                plan.application_id,
                plan.kind,
                vendor_data,
                plan.created_at,
            )
            .await?;
            (Some(id), Some(status))
        }
        None => (None, None),
    };
    let status = plan.status(entity_status);
    let counter_first = txn.get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
    let number = if counter_first {
        next_session_number(txn, plan.application_id).await?
    } else {
        placeholder_number(plan.clone_id)
    };

    // The session row, from the source's. The source application's own metadata and callback
    // stay behind; what the verification was about (contact and expected details) comes along.
    // Every write returns what it wrote: the clone is answered without reading it back.
    let inserted = fetch(
        txn,
        &CLONE_SESSION_SQL,
        vec![
            plan.clone_id.as_uuid().into(),
            plan.application_id.as_uuid().into(),
            number.into(),
            plan.session_token.clone().into(),
            plan.session_url.clone().into(),
            status.as_str().into(),
            plan.workflow_id.as_uuid().into(),
            plan.vendor_data
                .as_ref()
                .map(|v| v.as_str().to_owned())
                .into(),
            entity_id.into(),
            rows::recorded_blocks_text(&plan.blocks).into(),
            plan.created_at.into(),
            plan.expires_at.into(),
            plan.source_session_id.as_uuid().into(),
            plan.source_application_id.as_uuid().into(),
            plan.kind.as_str().into(),
        ],
    )
    .await?;
    let Some(row) = inserted.first() else {
        return Ok(Copied::SourceGone);
    };
    let (mut session, recorded) = rows::session(row)?;

    // Only the blocks the source recorded: an empty table costs a statement and copies nothing.
    let mut items = Vec::new();
    for (step, block) in plan.blocks.iter().enumerate() {
        #[cfg(feature = "test-support")]
        if crate::testing::take_import_fault(plan.application_id, step) {
            return Err(Failure::Repo(RepoError::Internal("injected fault".into())));
        }
        let _ = step;
        let copied = fetch(
            txn,
            copy_block_sql(*block),
            vec![
                plan.clone_id.as_uuid().into(),
                plan.source_session_id.as_uuid().into(),
            ],
        )
        .await?;
        for row in &copied {
            items.push(rows::item(row)?);
        }
    }
    let log = LogEntry {
        new_status: Some(status),
        ..plan.log.clone()
    };
    let mut reviews = Vec::new();
    for row in &fetch(
        txn,
        &COPY_LOGS_SQL,
        [
            plan.clone_id.as_uuid().into(),
            plan.source_session_id.as_uuid().into(),
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
    if let Some(jti) = &plan.jti {
        run(
            txn,
            "UPDATE share_tokens SET redeemed_at = ?, redeemed_session_id = ? \
             WHERE jti = ? AND redeemed_at IS NULL",
            vec![
                plan.created_at.into(),
                plan.clone_id.as_uuid().into(),
                jti.clone().into(),
            ],
        )
        .await?;
    }
    let session_number = if counter_first {
        number
    } else {
        let number = next_session_number(txn, plan.application_id).await?;
        run(
            txn,
            "UPDATE sessions SET session_number = ? WHERE id = ?",
            vec![number.into(), plan.clone_id.as_uuid().into()],
        )
        .await?;
        number
    };
    session.session_number = session_number;
    Ok(Copied::Done(Box::new(SessionRecord {
        session,
        blocks: rows::blocks(&recorded, items),
        reviews: reviews.into_iter().map(|(_, review)| review).collect(),
    })))
}
