//! The import on SQLite: one `BEGIN IMMEDIATE` transaction that reads the checks, decides them
//! with the domain's `first_failed_check`, then writes the clone a statement per step, each
//! returning what it wrote. SQLite is in-process: a statement costs no round trip, and the one
//! writer holds the lock from `BEGIN`, so no check can change before the writes.

use handoff_domain::idempotency::IdempotentOperation;
use handoff_domain::{
    FeatureBlock, ImportAttempt, ImportCheck, ImportContext, ImportOutcome, SessionRecord,
    first_failed_check,
};
use sea_orm::DatabaseTransaction;

use super::fetch;
use crate::Store;
use crate::rows::{self, ITEM_COLUMNS, REVIEW_COLUMNS, SESSION_COLUMNS};
use crate::sessions::{ensure_entity, insert_log, log_values, next_session_number};
use crate::sql::{Failure, begin_write, commit, repo_error};

/// [`ShareRepository::import`](handoff_domain::ports::ShareRepository::import) on SQLite: the
/// checks read and decided inside the write transaction, then the copies.
pub(super) async fn import(
    store: &Store, attempt: &ImportAttempt,
) -> Result<ImportOutcome, Failure> {
    let _turn = store.write_turn().await;
    let txn = begin_write(&store.db).await?;
    let context = super::read_context(&txn, attempt).await?;
    let outcome = match (first_failed_check(&context, attempt), context.existing_clone) {
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
    SQL.iter().find(|(b, _)| *b == block).map_or("", |(_, sql)| sql.as_str())
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

/// The source's log rows copied in their order, their actor the source application's, then the
/// row that records the import, returning what `reviews` shows (built once).
static COPY_LOGS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO session_logs \
         (session_id, kind, actor, action, old_status, new_status, comment, details, \
         created_at) \
         SELECT ?, kind, actor, action, old_status, new_status, comment, details, created_at \
         FROM (SELECT 0 AS part, id, kind, ? AS actor, action, old_status, new_status, comment, \
         details, created_at FROM session_logs WHERE session_id = ? AND action NOT IN ({}) \
         UNION ALL SELECT 1, 0, ?, ?, ?, ?, ?, ?, ?, ?) AS logs ORDER BY part, id \
         RETURNING {REVIEW_COLUMNS}",
        super::source_only_actions()
    )
});

/// The clone's statements, in order, once the checks passed inside the write transaction. The
/// counter comes first: the immediate transaction holds the write lock from `BEGIN` anyway, and
/// the session row is then written with its number.
async fn copy(
    txn: &DatabaseTransaction, attempt: &ImportAttempt, context: ImportContext,
) -> Result<ImportOutcome, Failure> {
    // A token expected in the ledger must be there, to be redeemed.
    if attempt.listed && context.token.is_none() {
        return Ok(ImportOutcome::Refused);
    }
    let (Some(source), Some(workflow)) = (context.source, context.workflow) else {
        return Ok(ImportOutcome::Refused);
    };
    crate::idempotency::claim(
        txn,
        attempt.application_id,
        attempt.idempotency.as_ref(),
        IdempotentOperation::Import,
        attempt.clone_id.to_string(),
    )
    .await?;
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
            vec![attempt.clone_id.as_uuid().into(), source.id.as_uuid().into()],
        )
        .await?;
        for row in &copied {
            items.push(rows::item(row)?);
        }
    }
    let log = attempt.log.transition(source.status, status);
    let mut reviews = Vec::new();
    for row in &fetch(
        txn,
        &COPY_LOGS_SQL,
        [
            attempt.clone_id.as_uuid().into(),
            attempt.copied_actor().into(),
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
    crate::outbox::insert_events(txn, attempt.clone_id, &log).await?;
    // The redemption must change the token's row, or nothing commits.
    if let (true, Some(jti)) = (attempt.listed, &attempt.claims.jti) {
        let redeemed = fetch(
            txn,
            "UPDATE share_tokens SET redeemed_at = ?, redeemed_session_id = ? \
             WHERE jti = ? AND redeemed_at IS NULL RETURNING jti",
            vec![attempt.created_at.into(), attempt.clone_id.as_uuid().into(), jti.clone().into()],
        )
        .await?;
        if redeemed.len() != 1 {
            return Ok(ImportOutcome::Refused);
        }
    }
    insert_log(txn, source.id, &attempt.source_log).await?;
    Ok(ImportOutcome::Imported(Box::new(SessionRecord {
        session,
        blocks: rows::blocks(&recorded, items),
        reviews: reviews.into_iter().map(|(_, review)| review).collect(),
    })))
}
