//! The import (`ShareRepository::import` and `import_context`): the one place where the store
//! writes SQL by hand, because there a statement per table, or one statement in all, is the
//! whole cost (`docs/performance.md`). On PostgreSQL one statement ([`postgres`]); on SQLite one
//! transaction ([`sqlite`]). How an import runs end to end: `docs/sharing.md`.

mod group;
mod postgres;
mod sqlite;

pub(crate) use group::ImportGroups;

use chrono::{DateTime, Utc};
use handoff_domain::action::LogAction;
use handoff_domain::lists::{EntryType, ListType};
use handoff_domain::vendor_data::VendorData;
use handoff_domain::{
    ApplicationId, EntityId, EntityStatus, ImportAttempt, ImportContext, ImportOutcome,
    ImportWorkflow, RecordedToken, RepoError, SessionId, SessionKind, SessionRecord, ShareClaims,
};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult, Value};
use uuid::Uuid;

use crate::Store;
use crate::rows::{self, SESSION_COLUMNS, get};
use crate::schema::Sessions;
use crate::sealing::SessionKey;
use crate::sql::{Failure, fetch_one, is_unique_violation, repo_error, stmt};

/// Runs a hand-written statement (`?` placeholders) and returns its rows; the database's
/// refusal stays a `Failure::Db`, for the caller to read which constraint it was.
pub(super) async fn fetch<C: ConnectionTrait>(
    db: &C, sql: &str, values: Vec<Value>,
) -> Result<Vec<QueryResult>, Failure> {
    db.query_all_raw(stmt(db.get_database_backend(), sql, values)).await.map_err(Failure::Db)
}

/// The source's log rows a clone does not copy ([`LogAction::SOURCE_ONLY`]), as an SQL list of
/// literals (the code's own words).
fn source_only_actions() -> String {
    LogAction::SOURCE_ONLY
        .iter()
        .map(|action| format!("'{}'", action.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The receiver's blocklisted entry types among the source's values — the keys of its
/// personal values and its IP address, kept on its row ([`SessionKeys`]), and the clone's
/// `vendor_data` (its key `vendor_key`, in the blocklist of the kind's entities) — as one
/// text, comma-separated, or NULL: a scalar subquery, `source` naming the source's row and
/// `receiver` the receiver's id.
///
/// [`SessionKeys`]: handoff_domain::lists::SessionKeys
fn blocklisted_sql(
    backend: DatabaseBackend, source: &str, receiver: &str, vendor_key: &str,
) -> String {
    let (keys, types) = match backend {
        DatabaseBackend::Postgres => (
            format!("SELECT jsonb_array_elements_text(CAST({source}.blocklist_keys AS jsonb))"),
            "string_agg(DISTINCT le.entry_type, ',')",
        ),
        _ => (
            format!("SELECT value FROM json_each({source}.blocklist_keys)"),
            "group_concat(DISTINCT le.entry_type)",
        ),
    };
    format!(
        "(SELECT {types} FROM list_entries le WHERE le.application_id = {receiver} \
         AND le.list_type = '{blocklist}' AND (le.match_key IN ({keys}) \
         OR (le.entry_type = '{ip}' AND {source}.blocklist_ip BETWEEN le.range_start \
         AND le.range_end) OR (le.entry_type = {source}.kind AND le.match_key = {vendor_key})))",
        blocklist = ListType::Blocklist.as_str(),
        ip = EntryType::IpAddress.as_str(),
    )
}

/// The entry types of [`blocklisted_sql`]'s text.
fn blocklisted_types(text: Option<String>) -> Result<Vec<EntryType>, RepoError> {
    let mut types = text
        .iter()
        .flat_map(|text| text.split(','))
        .map(|t| {
            EntryType::parse(t)
                .ok_or_else(|| RepoError::Internal(format!("stored entry type {t:?}").into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // In the order of their names, as PostgreSQL's statement writes them.
    types.sort_by_key(|t| t.as_str());
    Ok(types)
}

/// Makes the import on this store's backend.
pub(crate) async fn import(
    store: &Store, attempt: &ImportAttempt,
) -> Result<ImportOutcome, RepoError> {
    let outcome = match store.backend() {
        sea_orm::DatabaseBackend::Postgres => postgres::import(store, attempt).await,
        _ => sqlite::import(store, attempt).await,
    };
    match outcome {
        Ok(outcome) => Ok(outcome),
        Err(Failure::Db(error)) if crate::idempotency::is_idempotency_violation(&error) => {
            Err(RepoError::IdempotencyKeyTaken)
        }
        Err(Failure::Db(error)) if is_unique_violation(&error) => {
            already_imported(store, attempt).await
        }
        Err(Failure::Db(error)) => Err(repo_error(error)),
        Err(Failure::Repo(error)) => Err(error),
    }
}

/// After a unique violation on the clone (its transaction rolled back): another import of
/// this source by this receiver committed first; its clone is the answer, or, when it was
/// deleted since, a refusal that the service reads again.
async fn already_imported(
    store: &Store, attempt: &ImportAttempt,
) -> Result<ImportOutcome, RepoError> {
    let select = Query::select()
        .column(Sessions::Id)
        .from(Sessions::Table)
        .and_where(Expr::col(Sessions::ApplicationId).eq(attempt.application_id.as_uuid()))
        .and_where(Expr::col(Sessions::SharedFromSession).eq(attempt.claims.session_id.as_uuid()))
        .to_owned();
    Ok(match fetch_one(&store.db, &select).await? {
        Some(row) => ImportOutcome::AlreadyImported(SessionId::from_uuid(get::<Uuid>(&row, "id")?)),
        None => ImportOutcome::Refused,
    })
}

/// The source's data key, read with an import's context, and the one the ledger made for the
/// clone.
pub(crate) struct SourceKeys {
    pub(crate) source: SessionKey,
    pub(crate) clone: Option<Vec<u8>>,
}

/// The source's items and reviews, read on SQLite with an import's checks so that the clone's
/// answer needs no rows back from its copies (each row crosses sqlx's worker thread): they are
/// the clone's, which copies them under the same data key. Reviews carry the clone's `actor`.
/// Kept as read (packed, sealed) until [`SourceAnswer::record`], which the import calls once it
/// has committed and given up the writer's turn.
pub(crate) struct SourceAnswer {
    items: Option<String>,
    reviews: Option<String>,
}

impl SourceAnswer {
    /// The clone's record: its session row (written by the import) with these items and
    /// reviews, opened with the source's data key.
    pub(crate) fn record(
        self, row: &QueryResult, key: &SessionKey,
    ) -> Result<SessionRecord, RepoError> {
        let (session, recorded) = rows::session(row, key)?;
        let items = rows::items_packed(self.items.as_deref(), key)?;
        let reviews = rows::reviews_json(self.reviews.as_deref(), key)?;
        Ok(SessionRecord { session, blocks: rows::blocks(&recorded, items), reviews })
    }
}

/// A session's items and reviews as SQLite's import answers them, in one row: `items` packed as
/// the store's `rows::items_packed` reads them, `reviews` as its `rows::reviews_json` does; its
/// parameters: the session's id once per block table, the reviews' `actor`, the session's id.
/// Public so that the benchmark's diagnostic answers as the import does. Built once.
pub fn sqlite_answer_select() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(answer_select);
    &SQL
}

/// The text of [`sqlite_answer_select`].
fn answer_select() -> String {
    let items = handoff_domain::FeatureBlock::ALL
        .iter()
        .map(|block| {
            format!(
                "SELECT '{0}' AS block, position, node_id, status, item FROM {0} \
                 WHERE session_id = ?",
                block.v3_key()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!(
        "SELECT (SELECT group_concat(block || char(31) || position || char(31) \
         || length(CAST(node_id AS BLOB)) || char(31) || length(CAST(status AS BLOB)) \
         || char(31) || node_id || status || item, char(30)) FROM ({items})) AS items, \
         (SELECT json_group_array(json_array(id, ?, new_status, comment, created_at)) \
         FROM session_logs WHERE session_id = ? AND kind = '{review}' \
         AND action NOT IN ({source_only})) AS reviews",
        review = handoff_domain::LogKind::Review.as_str(),
        source_only = source_only_actions(),
    )
}

/// What SQLite's context query joins to read the [`SourceAnswer`] of the source
/// ([`sqlite_answer_select`]).
fn source_answer_join() -> String {
    format!(" CROSS JOIN ({}) AS answer", sqlite_answer_select())
}

/// [`ShareRepository::import_context`](handoff_domain::ports::ShareRepository::import_context),
/// on a connection or inside a transaction: one query. An erased source is not there. With
/// `answer` (SQLite's import) it also reads the [`SourceAnswer`].
pub(crate) async fn read_context<C: ConnectionTrait>(
    store: &Store, db: &C, attempt: &ImportAttempt, answer: bool,
) -> Result<(ImportContext, SourceKeys, Option<SourceAnswer>), RepoError> {
    let answer = answer && db.get_database_backend() == DatabaseBackend::Sqlite;
    let (sql, values) = context_query(db.get_database_backend(), attempt, answer);
    let row = fetch(db, sql, values)
        .await
        .map_err(|failure| match failure {
            Failure::Db(error) => repo_error(error),
            Failure::Repo(error) => error,
        })?
        .into_iter()
        .next()
        .ok_or_else(|| RepoError::Internal("the import context query returned no row".into()))?;
    context_from_row(store, db, &row, attempt, answer).await
}

/// The query of [`read_context`] (`answer` on SQLite only), its one row decoded by
/// [`context_from_row`].
pub(crate) fn context_query(
    backend: DatabaseBackend, attempt: &ImportAttempt, answer: bool,
) -> (&'static str, Vec<Value>) {
    static SQL: [std::sync::OnceLock<String>; 3] = [const { std::sync::OnceLock::new() }; 3];
    let variant = if answer { 2 } else { usize::from(backend == DatabaseBackend::Postgres) };
    let sql = SQL[variant].get_or_init(|| {
        let columns: Vec<String> =
            SESSION_COLUMNS.split(',').map(|c| format!("s.{}", c.trim())).collect();
        format!(
            "SELECT t.jti AS token_jti, t.session_id AS token_session_id, \
             t.session_kind AS token_session_kind, t.from_application_id AS token_from, \
             t.for_application_id AS token_for, t.issued_at AS token_issued_at, \
             t.expires_at AS token_expires_at, t.revoked_at AS token_revoked_at, \
             t.redeemed_at AS token_redeemed_at, t.blocks AS token_blocks, \
             t.consent AS token_consent, t.clone_data_key AS token_clone_data_key, \
             (SELECT c.id FROM sessions c WHERE c.application_id = ? AND c.shared_from_session = ?) AS clone_id, \
             {} AS blocklisted, \
             w.kind AS workflow_kind, w.session_expiration_time AS workflow_expiration, {}, \
             w.application_id AS workflow_application_id, \
             r.id AS receiver_entity_id, r.status AS receiver_entity_status{} \
             FROM (SELECT 1 AS probe) AS probe \
             LEFT JOIN share_tokens t ON t.jti = ? \
             LEFT JOIN sessions s ON s.id = ? \
             LEFT JOIN workflows w ON w.id = ? AND w.deleted_at IS NULL \
             LEFT JOIN entities se ON se.id = s.entity_id \
             LEFT JOIN entities r ON r.application_id = ? AND r.kind = s.kind \
             AND r.vendor_data_key = COALESCE(?, se.vendor_data_key){}",
            blocklisted_sql(backend, "s", "?", "COALESCE(?, se.vendor_data_key)"),
            columns.join(", "),
            if answer { ", answer.items AS source_items, answer.reviews AS source_reviews" } else { "" },
            if answer { source_answer_join() } else { String::new() }
        )
    });
    let claims = &attempt.claims;
    let receiver = attempt.application_id;
    let mut values: Vec<Value> = vec![
        receiver.as_uuid().into(),
        claims.session_id.as_uuid().into(),
        receiver.as_uuid().into(),
        attempt.vendor_data.as_ref().map(VendorData::key).into(),
        claims.jti.clone().into(),
        claims.session_id.as_uuid().into(),
        attempt.workflow_id.as_uuid().into(),
        receiver.as_uuid().into(),
        attempt.vendor_data.as_ref().map(VendorData::key).into(),
    ];
    if answer {
        let source = Value::from(claims.session_id.as_uuid());
        values.extend(std::iter::repeat_n(source.clone(), handoff_domain::FeatureBlock::ALL.len()));
        values.extend([attempt.copied_actor().into(), source]);
    }
    (sql, values)
}

/// What the row of [`context_query`] says, the source's data key opened on `db`.
pub(crate) async fn context_from_row<C: ConnectionTrait>(
    store: &Store, db: &C, row: &QueryResult, attempt: &ImportAttempt, answer: bool,
) -> Result<(ImportContext, SourceKeys, Option<SourceAnswer>), RepoError> {
    let (claims, receiver) = (&attempt.claims, attempt.application_id);
    let token = recorded_token(row)?;
    let existing_clone = get::<Option<Uuid>>(row, "clone_id")?.map(SessionId::from_uuid);
    // Both rows are looked up by key alone, so that no planner statistics can turn the lookup
    // into a scan of the application's rows; their application is checked here.
    let mut source_found =
        get::<Option<Uuid>>(row, "application_id")? == Some(claims.from_application_id.as_uuid());
    let source_key = if source_found { store.row_key(db, row).await? } else { SessionKey::Clear };
    if matches!(source_key, SessionKey::Erased) {
        source_found = false;
    }
    let workflow_found =
        get::<Option<Uuid>>(row, "workflow_application_id")? == Some(receiver.as_uuid());
    let (source, recorded_blocks) = if source_found {
        let (session, blocks) = rows::session(row, &source_key)?;
        (Some(session), blocks)
    } else {
        (None, Vec::new())
    };
    let workflow = match get::<Option<String>>(row, "workflow_kind")? {
        Some(kind) if workflow_found => Some(ImportWorkflow {
            kind: SessionKind::parse(&kind).ok_or_else(|| {
                RepoError::Internal(format!("stored workflow kind {kind:?}").into())
            })?,
            session_expiration_time: get(row, "workflow_expiration")?,
        }),
        _ => None,
    };
    // The receiver's entity for the clone's vendor_data: the source's entity carries the key
    // of the source's (a source with vendor_data always has its entity).
    let receiver_entity = match get::<Option<Uuid>>(row, "receiver_entity_id")? {
        Some(id) if source_found => {
            let status: String = get(row, "receiver_entity_status")?;
            let status = EntityStatus::parse(&status).ok_or_else(|| {
                RepoError::Internal(format!("stored entity status {status:?}").into())
            })?;
            Some((EntityId::from_uuid(id), status))
        }
        _ => None,
    };
    let mut blocklisted =
        if source_found { blocklisted_types(get(row, "blocklisted")?)? } else { Vec::new() };
    // A share that names its blocks is matched by its vendor_data only: the source's value
    // keys do not say which block each came from, and a withheld block must not decide.
    if claims.blocks.is_some() {
        blocklisted.retain(|t| matches!(t, EntryType::User | EntryType::Business));
    }
    let answer = if answer && source_found {
        Some(SourceAnswer {
            items: rows::text_or_null(row, "source_items")?,
            reviews: rows::text_or_null(row, "source_reviews")?,
        })
    } else {
        None
    };
    let keys = SourceKeys { source: source_key, clone: get(row, "token_clone_data_key")? };
    let context = ImportContext {
        token,
        source,
        recorded_blocks,
        existing_clone,
        workflow,
        receiver_entity,
        blocklisted,
    };
    Ok((context, keys, answer))
}

impl Store {
    /// The data key of a clone of `source` in `receiver`: the source's, wrapped for the
    /// receiver; `None` when the source is in clear, erased or not there, or the receiver is
    /// not an application of this deployment.
    pub(crate) async fn clone_data_key<C: ConnectionTrait>(
        &self, db: &C, source: SessionId, receiver: ApplicationId,
    ) -> Result<Option<Vec<u8>>, RepoError> {
        let select = Query::select()
            .columns([Sessions::ApplicationId, Sessions::DataKey])
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::Id).eq(source.as_uuid()))
            .to_owned();
        let Some(row) = fetch_one(db, &select).await? else {
            return Ok(None);
        };
        let key = self.row_key(db, &row).await?;
        self.wrap_for(db, &key, receiver).await
    }
}

/// The ledger's row of the presented token, read with the context; `None` when there is none.
fn recorded_token(row: &QueryResult) -> Result<Option<RecordedToken>, RepoError> {
    let Some(jti) = get::<Option<String>>(row, "token_jti")? else {
        return Ok(None);
    };
    let kind: String = get(row, "token_session_kind")?;
    Ok(Some(RecordedToken {
        claims: ShareClaims {
            session_id: SessionId::from_uuid(get(row, "token_session_id")?),
            session_kind: SessionKind::parse(&kind)
                .ok_or_else(|| RepoError::Internal(format!("stored token kind {kind:?}").into()))?,
            from_application_id: ApplicationId::from_uuid(get(row, "token_from")?),
            for_application_id: ApplicationId::from_uuid(get(row, "token_for")?),
            issued_at: get(row, "token_issued_at")?,
            expires_at: get(row, "token_expires_at")?,
            jti: Some(jti),
            blocks: crate::rows::share_blocks(row, "token_blocks")?,
            consent: crate::rows::share_consent(row, "token_consent")?,
        },
        revoked: get::<Option<DateTime<Utc>>>(row, "token_revoked_at")?.is_some(),
        redeemed: get::<Option<DateTime<Utc>>>(row, "token_redeemed_at")?.is_some(),
    }))
}
