//! An import in one statement, on PostgreSQL: the checks and the clone together.
//!
//! Data-modifying `WITH` lets one statement — one round trip, its own transaction — check that
//! the token is not revoked, that the source is there with the token's kind and that the
//! workflow is the receiver's and of that kind (that the receiver holds no clone of it yet, its
//! unique key checks as the session row is written), and then write the receiver's entity,
//! every block, the log rows, the token's redemption, the counter and the session row.
//!
//! When a check fails, nothing is written and the import answers `Refused`; the service then
//! reads the checks to answer the first that failed. The entity, the redemption, the counter and the session row
//! hang on the row that passed the checks, so they are not written. The copies of the blocks
//! and of the logs are not held back (a gate on each would cost every import a sub-plan per
//! table): without a session row, the rows they wrote break their foreign key when the
//! statement ends, and the statement fails whole — a foreign-key violation here means "a check
//! failed". A source without any block or log row copies nothing and returns no row. When the
//! session row fails (already imported), the statement fails whole too.
//!
//! What only the source can tell comes from its row: its status, `vendor_data` (unless
//! overridden) with the matching key of its entity, its recorded blocks (every block table of
//! the kind is copied; the empty ones copy nothing). The clone's status stays the domain's
//! rule: the statement is given the rule's answer for each entity status and picks the one for
//! the entity it reads ([`status_rule`]).
//!
//! The statement answers with the clone as written — its session row, its items and its reviews,
//! from the rows the writes return — so that nothing is read after it.
//!
//! Parts are chained through the rows they return, which fixes their order and so that of the
//! row locks: the receiver's entity first, the application's counter row last (imports into
//! one application queue on it until they commit, so the less comes after it, the better), so
//! that two imports into one application cannot deadlock. Foreign keys are checked at the end
//! of the statement, when every row is there.

use std::sync::OnceLock;

use handoff_domain::action::LogAction;
use handoff_domain::idempotency::IdempotentOperation;
use handoff_domain::share::clone_status_rule;
use handoff_domain::vendor_data::KEY_VERSION;
use handoff_domain::webhook::{WebhookType, events_of};
use handoff_domain::{
    CloneStatus, EntityStatus, FeatureBlock, ImportAttempt, ImportOutcome, LogKind, RepoError,
    SessionKind, SessionRecord, SessionStatus,
};
use sea_orm::{ConnectionTrait, QueryResult, Value};

use crate::Store;

use super::source_only_actions;
use crate::outbox::{self, INSERT_EVENTS};
use crate::rows::{self, ITEM_COLUMNS, REVIEW_COLUMNS, SESSION_COLUMNS};
use crate::sql::{Failure, is_foreign_key_violation, stmt};

/// [`ShareRepository::import`](handoff_domain::ports::ShareRepository::import) in one
/// statement: the clone as written, or `Refused` when a check failed and nothing was written.
/// A unique violation (the receiver holds a clone) is the caller's to read.
pub(crate) async fn import(
    store: &Store, attempt: &ImportAttempt,
) -> Result<ImportOutcome, Failure> {
    let db = &store.db;
    // Check 6 needs no read; an unlisted token is the deployment's policy.
    if attempt.claims.for_application_id != attempt.application_id
        || (!attempt.listed && !attempt.accept_unlisted_tokens)
        || (attempt.listed && attempt.claims.jti.is_none())
    {
        return Ok(ImportOutcome::Refused);
    }
    let sql = cached_sql(
        attempt.claims.session_kind,
        attempt.listed,
        attempt.idempotency.is_some(),
        attempt.claims.blocks.is_some(),
    );
    // An unlisted token has no ledger row to hold the clone's data key: it is made here.
    let clone_data_key = if attempt.listed {
        None
    } else {
        store.clone_data_key(db, attempt.claims.session_id, attempt.application_id).await?
    };
    let values = values(attempt, status_rule(attempt.trust_review), clone_data_key);
    let row = match db.query_one_raw(stmt(db.get_database_backend(), sql, values)).await {
        // Copies without a session row: a check failed, and the statement wrote nothing.
        Err(error) if is_foreign_key_violation(&error) => return Ok(ImportOutcome::Refused),
        row => row.map_err(Failure::Db)?,
    };
    match row {
        Some(row) => Ok(ImportOutcome::Imported(Box::new(record(store, &row).await?))),
        None => Ok(ImportOutcome::Refused),
    }
}

/// The clone from the statement's one row: the session's columns, its items packed into one
/// text column and its reviews aggregated into one JSON column (one row to send and to read,
/// whatever the rows).
async fn record(store: &Store, row: &QueryResult) -> Result<SessionRecord, RepoError> {
    let key = store.row_key(&store.db, row).await?;
    let (session, recorded) = rows::session(row, &key)?;
    let items = rows::items_packed(rows::text_or_null(row, "items")?.as_deref(), &key)?;
    let reviews = rows::reviews_json(rows::text_or_null(row, "reviews")?.as_deref(), &key)?;
    Ok(SessionRecord { session, blocks: rows::blocks(&recorded, items), reviews })
}

/// The statement's parameters, in their order: `$1` is `Source`. The ledger's (the token's id
/// and expiry) come last, so that the others keep their numbers whether the token is listed
/// or not.
#[derive(Clone, Copy)]
enum P {
    Source,
    SourceApplication,
    Kind,
    Application,
    Workflow,
    Clone,
    CreatedAt,
    VendorData,
    VendorDataKey,
    EntityId,
    Active,
    Rule,
    SessionToken,
    SessionUrl,
    LogKind,
    Actor,
    Action,
    Comment,
    Details,
    LoggedAt,
    Review,
    CopiedActor,
    SourceActor,
    SourceAction,
    SourceDetails,
    SourceNotBefore,
    SourceFacts,
    /// The clone's data key when the ledger holds none for it (an unlisted token).
    CloneDataKey,
    Jti,
    Expires,
}

impl P {
    /// Its placeholder, `$n`.
    fn ph(self) -> String {
        format!("${}", self as usize + 1)
    }
}

/// The values of the parameters, in [`P`]'s order.
fn values(a: &ImportAttempt, rule: &str, clone_data_key: Option<Vec<u8>>) -> Vec<Value> {
    let log = &a.log;
    let claims = &a.claims;
    let mut values: Vec<Value> = vec![
        claims.session_id.as_uuid().into(),
        claims.from_application_id.as_uuid().into(),
        claims.session_kind.as_str().into(),
        a.application_id.as_uuid().into(),
        a.workflow_id.as_uuid().into(),
        a.clone_id.as_uuid().into(),
        a.created_at.into(),
        a.vendor_data.as_ref().map(|v| v.as_str().to_owned()).into(),
        a.vendor_data.as_ref().map(|v| v.key()).into(),
        a.entity_id.as_uuid().into(),
        EntityStatus::Active.as_str().into(),
        rule.into(),
        a.session_token.clone().into(),
        a.session_url.clone().into(),
        log.kind.as_str().into(),
        log.actor.clone().into(),
        log.action.as_str().into(),
        log.comment.clone().into(),
        log.details.as_ref().map(ToString::to_string).into(),
        log.created_at.into(),
        LogKind::Review.as_str().into(),
        a.copied_actor().into(),
        a.source_log.actor.clone().into(),
        a.source_log.action.as_str().into(),
        a.source_log.details.as_ref().map(ToString::to_string).into(),
        a.source_created_after.into(),
        source_facts(a).into(),
        clone_data_key.into(),
    ];
    if let (true, Some(jti)) = (a.listed, &claims.jti) {
        values.push(jti.clone().into());
        values.push(claims.expires_at.into());
    }
    if let Some(claim) = &a.idempotency {
        values.push(claim.key.as_str().into());
        values.push(claim.request_hash.clone().into());
        values.push(claim.created_at.into());
    }
    if let Some(blocks) = &claims.blocks {
        values.push(crate::rows::recorded_blocks_text(blocks).into());
    }
    values
}

/// The facts of the source's events (`share.redeemed`): all known before the statement.
fn source_facts(a: &ImportAttempt) -> String {
    events_of(&a.source_log).first().map_or_else(|| "{}".to_owned(), |(_, facts)| facts.to_string())
}

/// The statement's text depends on the kind, on whether the token is listed in the ledger and
/// on whether an idempotency key comes along: built once per shape, on first use.
fn cached_sql(kind: SessionKind, with_jti: bool, with_key: bool, selective: bool) -> &'static str {
    static SQL: [OnceLock<String>; 16] = [const { OnceLock::new() }; 16];
    let slot = match kind {
        SessionKind::User => 0,
        SessionKind::Business => 8,
    } + 4 * usize::from(selective)
        + 2 * usize::from(with_jti)
        + usize::from(with_key);
    SQL[slot].get_or_init(|| sql(kind, with_jti, with_key, selective))
}

/// The domain's status rule ([`clone_status_rule`]) for `trust_review` as a JSON object:
/// receiver entity status (`""`: none) → the clone's status, or `null` where the clone keeps
/// the source's. Built once for each value of `trust_review`.
fn status_rule(trust_review: bool) -> &'static str {
    static RULE: [OnceLock<String>; 2] = [const { OnceLock::new() }; 2];
    RULE[usize::from(trust_review)].get_or_init(|| {
        let entities = std::iter::once(None).chain(EntityStatus::ALL.into_iter().map(Some));
        let rule: serde_json::Map<String, serde_json::Value> = entities
            .map(|entity| {
                let answer = match clone_status_rule(trust_review, entity) {
                    CloneStatus::Source => serde_json::Value::Null,
                    CloneStatus::Fixed(status) => status.as_str().into(),
                };
                (entity.map_or("", |e| e.as_str()).to_owned(), answer)
            })
            .collect();
        serde_json::Value::Object(rule).to_string()
    })
}

/// The webhook types an import causes, for the clone (whose status it sets) and for the
/// source, as SQL `VALUES` rows (the domain's names, literals of the code).
fn import_event_types() -> (String, String) {
    let rows = |types: &[WebhookType]| {
        types.iter().map(|t| format!("('{}')", t.as_str())).collect::<Vec<_>>().join(", ")
    };
    (
        rows(LogAction::Imported.events(true, false)),
        rows(LogAction::ImportedBy.events(false, false)),
    )
}

/// The SQL for an attempt of `session_kind`, with or without a token id to check and redeem,
/// an idempotency key, and the blocks the share names (`selective`: the last parameter, their
/// keys comma-separated; the copies of the others write nothing).
fn sql(session_kind: SessionKind, with_jti: bool, with_key: bool, selective: bool) -> String {
    let source = P::Source.ph();
    let source_application = P::SourceApplication.ph();
    let kind = P::Kind.ph();
    let application = P::Application.ph();
    let workflow = P::Workflow.ph();
    let clone = P::Clone.ph();
    let created_at = P::CreatedAt.ph();
    let vendor_data = P::VendorData.ph();
    let vendor_data_key = P::VendorDataKey.ph();
    let jti = P::Jti.ph();
    let expires = P::Expires.ph();
    let not_before = P::SourceNotBefore.ph();
    // After the fixed parameters, the ledger's and the idempotency key's, when there are any.
    let blocks = format!(
        "${}",
        P::Jti as usize + 1 + if with_jti { 2 } else { 0 } + if with_key { 3 } else { 0 }
    );
    let named = format!("string_to_array(CAST({blocks} AS text), ',')");

    // Checks 5, 7, 9 and 10. Rows are looked up by key alone (whatever the planner's statistics
    // say), then compared. Check 8 is the session row's `UNIQUE (application_id,
    // shared_from_session)` and the ledger row's `redeemed_at`: an existing clone fails the
    // statement, which then wrote nothing. (A lookup of the clone here would rest on the
    // planner's choice between the application's indexes, which statistics that lag a
    // fast-growing table get wrong.) A listed token must be the ledger's row, with the claims
    // it was issued with, neither revoked nor redeemed.
    // The ledger's row by its key alone, then compared: with the comparisons beside the key,
    // a planner without statistics may take another index of `share_tokens` and scan the
    // receiver's tokens.
    let issued_here = if with_jti {
        format!(
            " AND EXISTS (SELECT 1 FROM ledger t WHERE \
             t.revoked_at IS NULL AND t.redeemed_at IS NULL AND t.session_id = {source} \
             AND t.session_kind = {kind} AND t.from_application_id = {source_application} \
             AND t.for_application_id = {application} AND t.expires_at = {expires} \
             AND t.blocks {})",
            if selective { format!("= {blocks}") } else { "IS NULL".to_owned() }
        )
    } else {
        String::new()
    };
    let shareable = SessionStatus::ALL
        .iter()
        .filter(|status| status.is_shareable())
        .map(|status| format!("'{}'", status.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    // A share that names its blocks: the clone records those of the source's, and takes none
    // of the source's value keys (they do not say which block each came from).
    let (recorded, keys) = if selective {
        (
            format!(
                "array_to_string(ARRAY(SELECT r.b FROM unnest(string_to_array(s.recorded_blocks, \
                 ',')) WITH ORDINALITY AS r(b, n) WHERE r.b = ANY({named}) ORDER BY r.n), ',')"
            ),
            "CAST(NULL AS text) AS blocklist_keys, CAST(NULL AS text) AS blocklist_ip",
        )
    } else {
        ("s.recorded_blocks".to_owned(), "s.blocklist_keys, s.blocklist_ip")
    };
    // What a list finds the clone by, when the share carries the block that names it.
    let name_block = match session_kind {
        SessionKind::User => FeatureBlock::IdVerifications,
        SessionKind::Business => FeatureBlock::RegistryChecks,
    };
    let (names, names_country) = if selective {
        let carried = format!("'{}' = ANY({named})", name_block.v3_key());
        (
            format!("CASE WHEN {carried} THEN s.name_words END"),
            format!("CASE WHEN {carried} THEN s.country END"),
        )
    } else {
        ("s.name_words".to_owned(), "s.country".to_owned())
    };
    // A sealed source's clone holds its data key wrapped for the receiver: the ledger's, made
    // at the share, or for an unlisted token the parameter. A sealed source without it fails
    // the checks: its copies would open for nobody.
    let clone_data_key = if with_jti {
        format!("COALESCE((SELECT clone_data_key FROM ledger), {})", P::CloneDataKey.ph())
    } else {
        format!("CAST({} AS bytea)", P::CloneDataKey.ph())
    };
    let mut parts = Vec::new();
    if with_jti {
        parts.push(format!(
            "ledger AS MATERIALIZED (SELECT revoked_at, redeemed_at, session_id, session_kind, \
             from_application_id, for_application_id, expires_at, blocks, clone_data_key \
             FROM share_tokens WHERE jti = {jti})"
        ));
    }
    parts.extend([
        // The source's row, with the key of its entity's vendor_data (looked up once).
        format!(
            "row AS MATERIALIZED (SELECT s.id, s.application_id, s.kind, s.status, s.features, \
             s.created_at, s.vendor_data, s.entity_id, s.contact_details, s.expected_details, \
             {recorded} AS recorded_blocks, {keys}, s.data_key AS source_data_key, \
             {names} AS name_words, {names_country} AS country, \
             e.vendor_data_key AS source_vendor_data_key FROM sessions s \
             LEFT JOIN entities e ON e.id = s.entity_id WHERE s.id = {source})"
        ),
        format!(
            "wf AS MATERIALIZED (SELECT application_id, kind, deleted_at, session_expiration_time \
             FROM workflows WHERE id = {workflow})"
        ),
        // A source with `vendor_data` always has its entity (entities are never deleted), so
        // the clone's matching key is the override's or that entity's.
        format!(
            "src AS (SELECT row.*, wf.session_expiration_time, \
             COALESCE({vendor_data}, row.vendor_data) AS clone_vendor_data, \
             COALESCE({vendor_data_key}, row.source_vendor_data_key) AS clone_vendor_data_key \
             FROM row, wf \
             WHERE row.application_id = {source_application} AND row.kind = {kind} \
             AND row.status IN ({shareable}) \
             AND (CAST({not_before} AS timestamptz) IS NULL OR row.created_at >= {not_before}) \
             AND wf.application_id = {application} AND wf.kind = {kind} \
             AND wf.deleted_at IS NULL{issued_here} \
             AND (row.source_data_key IS NULL OR (octet_length(row.source_data_key) > 0 \
             AND {clone_data_key} IS NOT NULL)))"
        ),
    ]);

    // The receiver's entity for the clone's vendor_data, created or read (and locked).
    let entity_id = P::EntityId.ph();
    let active = P::Active.ph();
    parts.push(format!(
        "entity AS (INSERT INTO entities \
         (id, application_id, kind, vendor_data, vendor_data_key, status, created_at, key_version) \
         SELECT {entity_id}, {application}, {kind}, clone_vendor_data, clone_vendor_data_key, \
         {active}, {created_at}, {KEY_VERSION} FROM src WHERE clone_vendor_data IS NOT NULL \
         ON CONFLICT (application_id, kind, vendor_data_key) DO UPDATE SET status = entities.status \
         RETURNING id, status)"
    ));

    // The entry types of the source's values the receiver blocklisted, as one text or NULL.
    parts.push(format!(
        "blocked AS (SELECT {} AS types FROM src)",
        super::blocklisted_sql(
            sea_orm::DatabaseBackend::Postgres,
            "src",
            &application,
            "src.clone_vendor_data_key"
        )
    ));

    // The clone's status: `Declined` when the receiver blocklisted a value of the source's,
    // else the rule's answer for the source's status and the entity's.
    let rule = P::Rule.ph();
    let declined = SessionStatus::Declined.as_str();
    parts.push(format!(
        "decided AS (SELECT COALESCE((SELECT CASE WHEN types IS NULL THEN NULL ELSE \
         '{declined}' END FROM blocked), CAST({rule} AS json) ->> \
         COALESCE((SELECT status FROM entity), ''), src.status) AS status FROM src)"
    ));

    // Every block table of the kind, each with one INSERT … SELECT. Not gated on the checks:
    // when they fail, the session row is missing and these rows fail the statement (above).
    for block in FeatureBlock::for_kind(session_kind) {
        let carried = if selective {
            format!(" AND '{}' = ANY({named})", block.v3_key())
        } else {
            String::new()
        };
        parts.push(format!(
            "copy_{0} AS (INSERT INTO {0} (session_id, position, node_id, status, item) \
             SELECT {clone}, position, node_id, status, item FROM {0} \
             WHERE session_id = {source}{carried} RETURNING {ITEM_COLUMNS})",
            block.v3_key()
        ));
    }

    // The source's log rows in their order (not gated either), their actor the source
    // application's, then the row that records the import.
    let log_kind = P::LogKind.ph();
    let actor = P::Actor.ph();
    let action = P::Action.ph();
    let comment = P::Comment.ph();
    let details = P::Details.ph();
    let logged_at = P::LoggedAt.ph();
    let copied_actor = P::CopiedActor.ph();
    let source_only = source_only_actions();
    parts.push(format!(
        "logs AS (INSERT INTO session_logs \
         (session_id, kind, actor, action, old_status, new_status, comment, details, created_at) \
         SELECT {clone}, kind, actor, action, old_status, new_status, comment, details, created_at \
         FROM (SELECT 0 AS part, id, kind, CAST({copied_actor} AS text) AS actor, action, \
         old_status, new_status, comment, details, \
         created_at FROM session_logs WHERE session_id = {source} \
         AND action NOT IN ({source_only}) \
         UNION ALL SELECT 1, 0, {log_kind}, {actor}, {action}, src.status, decided.status, \
         {comment}, CASE WHEN blocked.types IS NULL THEN {details} ELSE \
         CAST(CAST({details} AS jsonb) || jsonb_build_object('blocklisted', \
         to_jsonb(string_to_array(blocked.types, ','))) AS text) END, {logged_at} \
         FROM src, decided, blocked) AS rows ORDER BY part, id \
         RETURNING {REVIEW_COLUMNS})"
    ));

    if with_jti {
        parts.push(format!(
            "redeemed AS (UPDATE share_tokens SET redeemed_at = {created_at}, \
             redeemed_session_id = {clone} \
             WHERE jti = {jti} AND redeemed_at IS NULL AND EXISTS (SELECT 1 FROM decided) \
             RETURNING jti)"
        ));
    }
    // The application's counter, last: concurrent imports into one application queue on its
    // row from here to their commit, so everything that can runs before — the entity, the
    // copies, the logs, the redemption. Its row reads the clone's items and reviews, aggregated
    // from what the copies and the logs return (the answer; see below), and the redemption's
    // count: PostgreSQL computes them, and so runs those parts, before it calls the function. A
    // failure later still undoes them with the statement. A function: see the migration
    // `m20261126_000003_session_numbers`.
    //
    // Items are packed as plain text (`rows::items_packed`): per item its block, position and
    // the byte lengths of `node_id` and `status`, each ended by U+001F, then `node_id`, `status`
    // and the item as stored; items joined by U+001E, which valid JSON never holds unescaped.
    // The database neither parses the items nor builds JSON per item.
    let review = P::Review.ph();
    let items = FeatureBlock::for_kind(session_kind)
        .iter()
        .map(|block| {
            format!(
                "SELECT '{0}' AS block, position, node_id, item_status, item FROM copy_{0}",
                block.v3_key()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    // A listed token's redemption must change its row, or the clone is not written (and the
    // copies, without it, fail the statement).
    let redeemed = if with_jti {
        ", (SELECT count(*) AS n FROM redeemed) AS redemption WHERE redemption.n = 1"
    } else {
        ""
    };
    let packed = "block || chr(31) || CAST(position AS text) || chr(31) \
         || CAST(octet_length(node_id) AS text) || chr(31) \
         || CAST(octet_length(item_status) AS text) || chr(31) || node_id || item_status || item";
    parts.push(format!(
        "counter AS (SELECT next_session_number({application}) AS last_session_number, \
         answer_items.items, answer_reviews.reviews FROM decided, \
         (SELECT string_agg({packed}, chr(30)) AS items FROM ({items}) AS i) AS answer_items, \
         (SELECT CAST(json_agg(json_build_array(log_id, actor, new_status, comment, logged_at)) \
         AS text) AS reviews FROM logs WHERE log_kind = {review}) AS answer_reviews{redeemed})"
    ));

    // The session row, from the source's. The source application's own metadata and callback
    // stay behind; what the verification was about (contact and expected details) comes along.
    let session_token = P::SessionToken.ph();
    let session_url = P::SessionUrl.ph();
    parts.push(format!(
        "clone AS (INSERT INTO sessions (id, application_id, kind, session_number, session_token, \
         session_url, status, workflow_id, features, vendor_data, entity_id, metadata, callback, \
         contact_details, expected_details, shared_from_session, recorded_blocks, created_at, \
         expires_at, blocklist_keys, blocklist_ip, data_key, name_words, country) \
         SELECT {clone}, {application}, src.kind, counter.last_session_number, {session_token}, \
         {session_url}, decided.status, {workflow}, src.features, src.clone_vendor_data, \
         (SELECT id FROM entity), NULL, NULL, src.contact_details, src.expected_details, src.id, \
         src.recorded_blocks, {created_at}, \
         {created_at} + src.session_expiration_time * INTERVAL '1 second', \
         src.blocklist_keys, src.blocklist_ip, {clone_data_key}, src.name_words, src.country \
         FROM src, counter, decided RETURNING {SESSION_COLUMNS})"
    ));

    // The source's own record of the import, hanging on the clone's row: written only with it.
    let source_actor = P::SourceActor.ph();
    let source_action = P::SourceAction.ph();
    let source_details = P::SourceDetails.ph();
    parts.push(format!(
        "source_logged AS (INSERT INTO session_logs \
         (session_id, kind, actor, action, comment, details, created_at) \
         SELECT {source}, {log_kind}, {source_actor}, {source_action}, NULL, {source_details}, \
         {logged_at} FROM clone RETURNING id)"
    ));

    // The webhook events of both sides, hanging on the clone's row: the receiver's (the clone's
    // status and the import's details) and the sharer's (`share.redeemed`).
    let source_facts = P::SourceFacts.ph();
    let (clone_types, source_types) = import_event_types();
    let (clone_subscribed, source_subscribed) = (
        outbox::subscribed(&application, "t.webhook_type"),
        outbox::subscribed(&source_application, "t.webhook_type"),
    );
    parts.push(format!(
        "clone_events AS ({INSERT_EVENTS} \
         SELECT gen_random_uuid(), {application}, t.webhook_type, {clone}, \
         CAST(COALESCE(CAST({details} AS jsonb), CAST('{{}}' AS jsonb)) \
         || jsonb_build_object('status', clone.status) AS text), {logged_at} \
         FROM clone, (VALUES {clone_types}) AS t(webhook_type) \
         WHERE {clone_subscribed} RETURNING 1)"
    ));
    parts.push(format!(
        "source_events AS ({INSERT_EVENTS} \
         SELECT gen_random_uuid(), {source_application}, t.webhook_type, {source}, \
         {source_facts}, {logged_at} \
         FROM clone, (VALUES {source_types}) AS t(webhook_type) \
         WHERE {source_subscribed} RETURNING 1)"
    ));

    // The request's idempotency key, hanging on the clone's row too: a key another request of
    // the application holds fails the statement whole (a unique violation the store tells
    // apart from a clone's).
    if with_key {
        // Its parameters follow the fixed ones and the ledger's, when there are any.
        let first = P::Jti as usize + 1 + if with_jti { 2 } else { 0 };
        let (key, hash, at) =
            (format!("${first}"), format!("${}", first + 1), format!("${}", first + 2));
        let operation = IdempotentOperation::Import.as_str();
        parts.push(format!(
            "claimed AS (INSERT INTO idempotency_keys (application_id, idempotency_key, \
             request_hash, operation, resource_id, created_at) \
             SELECT {application}, {key}, {hash}, '{operation}', CAST({clone} AS text), {at} \
             FROM clone RETURNING 1)"
        ));
    }

    // What the clone's decision shows, from the rows written, as one row: the session's
    // columns, its items and its reviews.
    let answer =
        format!("SELECT {SESSION_COLUMNS}, counter.items, counter.reviews FROM clone, counter");

    format!("WITH {} {answer}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use handoff_domain::share::clone_status;
    use handoff_domain::{
        ApplicationId, LogEntry, SessionId, SessionStatus, ShareClaims, VendorData, WorkflowId,
    };

    fn attempt(kind: SessionKind, vendor_data: Option<&str>, jti: Option<&str>) -> ImportAttempt {
        let now = Utc::now();
        let receiver = ApplicationId::from_uuid(uuid::Uuid::new_v4());
        ImportAttempt {
            claims: ShareClaims {
                session_id: SessionId::from_uuid(uuid::Uuid::new_v4()),
                session_kind: kind,
                from_application_id: ApplicationId::from_uuid(uuid::Uuid::new_v4()),
                for_application_id: receiver,
                issued_at: now,
                expires_at: now,
                jti: jti.map(str::to_owned),
                blocks: None,
                consent: None,
            },
            application_id: receiver,
            accept_unlisted_tokens: true,
            listed: jti.is_some(),
            workflow_id: WorkflowId::from_uuid(uuid::Uuid::new_v4()),
            clone_id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            session_token: "t".into(),
            session_url: "u".into(),
            trust_review: false,
            vendor_data: vendor_data.map(|v| VendorData::parse(v).unwrap()),
            entity_id: handoff_domain::EntityId::from_uuid(uuid::Uuid::new_v4()),
            created_at: now,
            log: LogEntry {
                kind: LogKind::Event,
                actor: "a".into(),
                action: LogAction::Imported,
                old_status: None,
                new_status: None,
                comment: None,
                details: None,
                created_at: now,
            },
            source_log: LogEntry::event("b", LogAction::ImportedBy, None, now),
            source_created_after: None,
            idempotency: None,
        }
    }

    /// Every `$n` the SQL names is bound, and every bound value is used.
    fn assert_parameters_match(sql: &str, values: usize) {
        let mut used = std::collections::BTreeSet::new();
        let bytes = sql.as_bytes();
        for (i, _) in sql.match_indices('$') {
            let digits: String = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|b| *b as char)
                .collect();
            used.insert(digits.parse::<usize>().unwrap());
        }
        assert_eq!(used, (1..=values).collect(), "{sql}");
    }

    #[test]
    fn binds_what_it_uses_with_and_without_override_and_token() {
        for (kind, selective) in [SessionKind::User, SessionKind::Business]
            .into_iter()
            .flat_map(|kind| [(kind, false), (kind, true)])
        {
            for ((vendor_data, jti), with_key) in
                [(Some("p-1"), Some("j")), (None, None), (Some("p"), None)]
                    .into_iter()
                    .flat_map(|shape| [(shape, false), (shape, true)])
            {
                let mut attempt = attempt(kind, vendor_data, jti);
                let named = FeatureBlock::for_kind(kind)[..1].to_vec();
                attempt.claims.blocks = selective.then(|| named.clone());
                if with_key {
                    attempt.idempotency = Some(handoff_domain::idempotency::IdempotencyClaim {
                        key: handoff_domain::idempotency::IdempotencyKey::parse("k").unwrap(),
                        request_hash: "h".into(),
                        created_at: Utc::now(),
                    });
                }
                let sql = cached_sql(kind, jti.is_some(), with_key, selective);
                let values = values(&attempt, status_rule(false), None);
                assert_parameters_match(sql, values.len());
                assert_eq!(
                    sql,
                    super::sql(kind, jti.is_some(), with_key, selective),
                    "the cache holds the shape's text"
                );
                if selective {
                    let key = named[0].v3_key();
                    assert_eq!(values.last(), Some(&Value::from(key.to_owned())));
                    assert_eq!(
                        sql.matches("= ANY(string_to_array").count(),
                        FeatureBlock::for_kind(kind).len() + 3,
                        "every copy, the clone's recorded blocks and what lists find it by keep \
                         to the named blocks"
                    );
                    assert!(sql.contains("CAST(NULL AS text) AS blocklist_keys"));
                }
                assert_eq!(sql.contains("INSERT INTO idempotency_keys"), with_key);
                assert_eq!(sql.contains("UPDATE share_tokens"), jti.is_some());
                assert_eq!(
                    sql.matches("EXISTS (SELECT 1 FROM decided)").count(),
                    usize::from(jti.is_some()),
                    "only the redemption waits on the checks; copies fail on their foreign key"
                );
                assert_eq!(
                    sql.contains("t.revoked_at IS NULL AND t.redeemed_at IS NULL"),
                    jti.is_some(),
                    "a listed token must be the ledger's, neither revoked nor redeemed"
                );
                assert_eq!(
                    sql.contains("WHERE redemption.n = 1"),
                    jti.is_some(),
                    "the clone waits on the redemption of a listed token"
                );
                let shareable = &sql[sql.find("row.status IN (").unwrap()..];
                let shareable = &shareable[..shareable.find(')').unwrap()];
                for status in SessionStatus::ALL {
                    assert_eq!(
                        shareable.contains(&format!("'{}'", status.as_str())),
                        status.is_shareable(),
                        "{status}: the source must still be finished"
                    );
                }
                for block in FeatureBlock::for_kind(kind) {
                    assert_eq!(sql.matches(&format!("INSERT INTO {} ", block.v3_key())).count(), 1);
                }
                assert!(
                    sql.find("counter AS").unwrap() > sql.find("entity AS").unwrap()
                        && sql.find("clone AS").unwrap() > sql.find("counter AS").unwrap(),
                    "the counter row is taken after the entity's"
                );
                let counter = &sql[sql.find("counter AS").unwrap()..sql.find("clone AS").unwrap()];
                for part in ["logs", "copy_aml_screenings"] {
                    assert!(
                        counter.contains(&format!("FROM {part}")),
                        "{part} is written before the counter"
                    );
                }
                assert_eq!(counter.contains("FROM redeemed"), jti.is_some());
                // Values sit where their placeholders say.
                assert_eq!(values[P::Clone as usize], attempt.clone_id.as_uuid().into());
                assert_eq!(values[P::Workflow as usize], attempt.workflow_id.as_uuid().into());
                assert_eq!(values[P::Kind as usize], kind.as_str().into());
                assert_eq!(values[P::Review as usize], LogKind::Review.as_str().into());
                if jti.is_some() {
                    assert_eq!(values[P::Jti as usize], Value::from(jti.map(str::to_owned)));
                    assert_eq!(values[P::Expires as usize], Value::from(attempt.claims.expires_at));
                }
                let key_at = P::Jti as usize + if jti.is_some() { 2 } else { 0 };
                if with_key || !selective {
                    assert_eq!(
                        values.get(key_at),
                        with_key.then(|| Value::from("k")).as_ref(),
                        "the key follows the ledger's parameters"
                    );
                }
                assert_eq!(values[P::CopiedActor as usize], attempt.copied_actor().into());
            }
        }
    }

    #[test]
    fn the_status_rule_is_the_domains_for_every_pair() {
        for trust_review in [false, true] {
            let rule: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(status_rule(trust_review)).unwrap();
            assert_eq!(rule.len(), EntityStatus::ALL.len() + 1);
            let entities = std::iter::once(None).chain(EntityStatus::ALL.into_iter().map(Some));
            for entity in entities {
                let answer = &rule[entity.map_or("", |e| e.as_str())];
                for source in SessionStatus::ALL {
                    // What the statement computes: the entry, or the source's status for null.
                    let clone = answer.as_str().unwrap_or(source.as_str());
                    assert_eq!(clone, clone_status(source, trust_review, entity).as_str());
                }
            }
        }
    }
}
