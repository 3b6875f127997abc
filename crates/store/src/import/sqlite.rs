//! The import on SQLite: in a `BEGIN IMMEDIATE` transaction, shared with the imports queued
//! beside it ([`super::group`]), one query reads the checks and the source's items and
//! reviews, the domain's `first_failed_check` decides, and one command of statements writes
//! the clone, the session's row returned. The one writer holds the lock from `BEGIN`, so
//! nothing read can change before the writes; what the import answers is decoded once the
//! group has committed and let the next writer go, as on PostgreSQL.

use handoff_domain::entity::NewEntity;
use handoff_domain::idempotency::IdempotentOperation;
use handoff_domain::{
    EntityStatus, FeatureBlock, ImportAttempt, ImportCheck, ImportContext, ImportOutcome,
    RepoError, SessionId, first_failed_check,
};
use sea_orm::{ConnectionTrait, QueryResult};

use super::SourceAnswer;
use crate::Store;
use crate::outbox;
use crate::rows::{self, SESSION_COLUMNS};
use crate::sealing::SessionKey;
use crate::sessions::{log_insert, log_values};
use crate::sql::{Batch, Failure};

/// [`ShareRepository::import`](handoff_domain::ports::ShareRepository::import) on SQLite: queued
/// to be written with the imports waiting beside it ([`super::group`]), then its answer
/// decoded.
pub(super) async fn import(
    store: &Store, attempt: &ImportAttempt,
) -> Result<ImportOutcome, Failure> {
    Ok(match store.import_groups.write(store, attempt.clone()).await? {
        Written::Imported { row, answer, key } => {
            ImportOutcome::Imported(Box::new(answer.record(&row, &key)?))
        }
        Written::AlreadyImported(existing) => ImportOutcome::AlreadyImported(existing),
        Written::Refused => ImportOutcome::Refused,
    })
}

/// What an import of a group wrote, its answer not yet decoded.
pub(super) enum Written {
    /// The clone's session row, and what its answer is read from.
    Imported {
        row: QueryResult,
        answer: SourceAnswer,
        key: SessionKey,
    },
    AlreadyImported(SessionId),
    Refused,
}

/// What an import's checks, read inside the group's transaction, decide.
pub(super) enum Decision {
    /// Nothing to write: this outcome.
    Outcome(Result<Written, Failure>),
    /// The clone's statements, which return its session row (none: refused, its writes to be
    /// undone), and what its answer is read from.
    Clone { command: Batch, answer: SourceAnswer, key: SessionKey },
}

/// Decides `attempt` on what its checks read (`read`: [`super::read_context`] or
/// [`super::context_from_row`]); a clone's data key is wrapped on `txn`.
pub(super) async fn decide<C: ConnectionTrait>(
    store: &Store, txn: &C, attempt: &ImportAttempt,
    read: Result<(ImportContext, super::SourceKeys, Option<SourceAnswer>), RepoError>,
) -> Decision {
    let (context, keys, answer) = match read {
        Ok(read) => read,
        Err(error) => return Decision::Outcome(Err(error.into())),
    };
    let answer = match (first_failed_check(&context, attempt), context.existing_clone, answer) {
        (None, _, Some(answer)) => answer,
        (Some(ImportCheck::NotImported), Some(existing), _) => {
            return Decision::Outcome(Ok(Written::AlreadyImported(existing)));
        }
        _ => return Decision::Outcome(Ok(Written::Refused)),
    };
    match clone_command(store, txn, attempt, context, &keys).await {
        Ok(Some(command)) => Decision::Clone { command, answer, key: keys.source },
        Ok(None) => Decision::Outcome(Ok(Written::Refused)),
        Err(failure) => Decision::Outcome(Err(failure)),
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
                     SELECT ?, position, node_id, status, item FROM {0} WHERE session_id = ?",
                    block.v3_key()
                );
                (*block, sql)
            })
            .collect()
    });
    SQL.iter().find(|(b, _)| *b == block).map_or("", |(_, sql)| sql.as_str())
}

/// The clone's session row, `INSERT … SELECT` from the source's, its number the counter's
/// (updated just before, in the same command), returning what a decision shows (built once).
/// A token to redeem (the last parameter, or NULL) must still be unredeemed, or no row is
/// written, and the import is refused.
static CLONE_SESSION_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO sessions (id, application_id, kind, session_number, session_token, \
         session_url, status, workflow_id, features, vendor_data, entity_id, metadata, \
         callback, contact_details, expected_details, shared_from_session, recorded_blocks, \
         created_at, expires_at, blocklist_keys, blocklist_ip, data_key, name_words, country) \
         SELECT ?, ?, kind, (SELECT last_session_number FROM applications WHERE id = ?), ?, ?, \
         ?, ?, features, ?, ?, NULL, NULL, contact_details, expected_details, id, ?, ?, ?, \
         CASE WHEN ? THEN NULL ELSE blocklist_keys END, \
         CASE WHEN ? THEN NULL ELSE blocklist_ip END, ?, \
         CASE WHEN ? THEN name_words END, CASE WHEN ? THEN country END \
         FROM sessions WHERE id = ? AND (? IS NULL OR EXISTS (SELECT 1 FROM share_tokens \
         WHERE jti = ? AND redeemed_at IS NULL)) \
         RETURNING {SESSION_COLUMNS}"
    )
});

/// The source's log rows copied in their order, their actor the source application's, then the
/// row that records the import (built once).
static COPY_LOGS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO session_logs \
         (session_id, kind, actor, action, old_status, new_status, comment, details, \
         created_at) \
         SELECT ?, kind, actor, action, old_status, new_status, comment, details, created_at \
         FROM (SELECT 0 AS part, id, kind, ? AS actor, action, old_status, new_status, comment, \
         details, created_at FROM session_logs WHERE session_id = ? AND action NOT IN ({}) \
         UNION ALL SELECT 1, 0, ?, ?, ?, ?, ?, ?, ?, ?) AS logs ORDER BY part, id",
        super::source_only_actions()
    )
});

/// The clone's statements once the checks passed inside the write transaction, to be sent as
/// one command (none: refused); they return the clone's session row:
/// each command crosses to sqlx's SQLite worker thread and back, which costs more than a
/// statement. What the statements depend on was read with the checks (the receiver's entity
/// too), and the immediate transaction holds the write lock from `BEGIN`, so nothing of it
/// can change in between. Each row back crosses the worker thread too: only the session's row
/// comes back; the items and reviews answered are the source's, read with the checks, which
/// the clone copies under the same data key.
async fn clone_command<C: ConnectionTrait>(
    store: &Store, txn: &C, attempt: &ImportAttempt, context: ImportContext,
    keys: &super::SourceKeys,
) -> Result<Option<Batch>, Failure> {
    // A token expected in the ledger must be there, to be redeemed.
    if attempt.listed && context.token.is_none() {
        return Ok(None);
    }
    let (Some(source), Some(workflow)) = (context.source, context.workflow) else {
        return Ok(None);
    };
    let (clone_id, source_id) = (attempt.clone_id.as_uuid(), source.id.as_uuid());
    let receiver = attempt.application_id;
    let mut batch = Batch::default();
    if let Some(claim) = &attempt.idempotency {
        batch.push_built(Some(crate::idempotency::insert_claim(
            receiver,
            claim,
            IdempotentOperation::Import,
            attempt.clone_id.to_string(),
        )?));
    }
    // The receiver's entity for the clone's vendor_data: the one it holds, or a new one.
    let vendor_data = attempt.clone_vendor_data(&source);
    let entity = match (vendor_data, context.receiver_entity) {
        (None, _) => None,
        (Some(_), Some((id, status))) => Some((id, status)),
        (Some(vendor_data), None) => {
            let new = NewEntity {
                id: attempt.entity_id,
                kind: source.kind,
                vendor_data: vendor_data.clone(),
                status: EntityStatus::Active,
                display_name: None,
                metadata: None,
                created_at: attempt.created_at,
            };
            batch.push_built(Some(crate::entities::entity_insert(receiver, &new)?));
            Some((attempt.entity_id, EntityStatus::Active))
        }
    };
    let status =
        attempt.status(source.status, entity.map(|(_, status)| status), &context.blocklisted);
    batch.push(
        "UPDATE applications SET last_session_number = last_session_number + 1 WHERE id = ?",
        [receiver.as_uuid().into()],
    );
    // The source application's own metadata and callback stay behind; what the verification
    // was about (contact and expected details) comes along, in the blocks the share carries
    // (without the source's value keys when it names them: they may come from the others).
    let (carried, _) = attempt.claims.split(&context.recorded_blocks);
    let selective = attempt.claims.blocks.is_some();
    // The clone holds the source's data key wrapped for the receiver: the ledger's, made at
    // the share, or made now for a token without one.
    let clone_data_key = match &keys.clone {
        Some(key) => Some(key.clone()),
        None => store.wrap_for(txn, &keys.source, receiver).await?,
    };
    let names_carried = attempt.claims.blocks.as_ref().is_none_or(|blocks| {
        blocks
            .iter()
            .any(|b| matches!(b, FeatureBlock::IdVerifications | FeatureBlock::RegistryChecks))
    });
    // A listed token is redeemed by this import.
    let redeemed_jti = attempt.claims.jti.as_deref().filter(|_| attempt.listed);
    batch.push(
        &CLONE_SESSION_SQL,
        [
            clone_id.into(),
            receiver.as_uuid().into(),
            receiver.as_uuid().into(),
            attempt.session_token.clone().into(),
            attempt.session_url.clone().into(),
            status.as_str().into(),
            attempt.workflow_id.as_uuid().into(),
            vendor_data.map(|v| v.as_str().to_owned()).into(),
            entity.map(|(id, _)| id.as_uuid()).into(),
            rows::recorded_blocks_text(&carried).into(),
            attempt.created_at.into(),
            attempt.expires_at(workflow).into(),
            selective.into(),
            selective.into(),
            clone_data_key.into(),
            names_carried.into(),
            names_carried.into(),
            source_id.into(),
            redeemed_jti.map(str::to_owned).into(),
            redeemed_jti.map(str::to_owned).into(),
        ],
    );
    // Only the blocks the source recorded and the share carries: an empty table copies
    // nothing.
    for block in &carried {
        batch.push(copy_block_sql(*block), [clone_id.into(), source_id.into()]);
    }
    let log = attempt.import_log(source.status, status, &context.blocklisted);
    batch.push(
        &COPY_LOGS_SQL,
        [clone_id.into(), attempt.copied_actor().into(), source_id.into()]
            .into_iter()
            .chain(log_values(&log)),
    );
    batch.push_built(outbox::events_insert(attempt.clone_id, &log)?);
    // The redemption (the session's row above was written only if it is still to be made).
    if let Some(jti) = redeemed_jti {
        batch.push(
            "UPDATE share_tokens SET redeemed_at = ?, redeemed_session_id = ? \
             WHERE jti = ? AND redeemed_at IS NULL",
            [attempt.created_at.into(), clone_id.into(), jti.to_owned().into()],
        );
    }
    batch.push_built(Some(log_insert(source.id, &attempt.source_log)?));
    batch.push_built(outbox::events_insert(source.id, &attempt.source_log)?);

    Ok(Some(batch))
}
