//! The webhook outbox, written where a change writes its log row: the events the row causes
//! ([`events_of`]), one statement, in the change's own transaction — those that a destination
//! of the application is subscribed to (an application without destinations writes none: its
//! events would be fanned out to nobody).

use chrono::{DateTime, Utc};
use handoff_domain::webhook::{WebhookType, events_of};
use handoff_domain::{ApplicationId, LogEntry, RepoError, SessionId};
use sea_orm::{ConnectionTrait, Value};

use crate::sql::{repo_error, stmt};

/// The `LIKE` pattern of destinations subscribed to `webhook_type`: their events are a JSON
/// array of names, quoted (`_` in a name matches itself, and no name holds `%`).
pub(crate) fn subscribed(webhook_type: &str) -> String {
    format!("%\"{webhook_type}\"%")
}

/// Writes the events `log` causes for `session_id`, owned by the session's application.
pub(crate) async fn insert_events<C: ConnectionTrait>(
    txn: &C,
    session_id: SessionId,
    log: &LogEntry,
) -> Result<(), RepoError> {
    let events = events_of(log);
    if events.is_empty() {
        return Ok(());
    }
    let one = "SELECT ?, s.application_id, ?, s.id, ?, ? FROM sessions s WHERE s.id = ? \
               AND EXISTS (SELECT 1 FROM webhook_destinations w \
               WHERE w.application_id = s.application_id AND w.enabled = ? \
               AND w.subscribed_events LIKE ?)";
    let sql = format!(
        "INSERT INTO webhook_events \
         (event_id, application_id, webhook_type, session_id, details, created_at) {}",
        vec![one; events.len()].join(" UNION ALL ")
    );
    let mut values: Vec<Value> = Vec::with_capacity(events.len() * 5);
    for (webhook_type, facts) in events {
        values.extend([
            uuid::Uuid::new_v4().into(),
            webhook_type.as_str().into(),
            facts.to_string().into(),
            log.created_at.into(),
            session_id.as_uuid().into(),
            true.into(),
            subscribed(webhook_type.as_str()).into(),
        ]);
    }
    txn.execute_raw(stmt(txn.get_database_backend(), &sql, values))
        .await
        .map(drop)
        .map_err(repo_error)
}

/// Writes an event of the application itself (no session: an entity's), if a destination of
/// the application is subscribed to it.
pub(crate) async fn insert_application_event<C: ConnectionTrait>(
    txn: &C,
    application_id: ApplicationId,
    webhook_type: WebhookType,
    facts: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), RepoError> {
    let sql = "INSERT INTO webhook_events \
               (event_id, application_id, webhook_type, session_id, details, created_at) \
               SELECT ?, ?, ?, NULL, ?, ? WHERE EXISTS (SELECT 1 FROM webhook_destinations w \
               WHERE w.application_id = ? AND w.enabled = ? AND w.subscribed_events LIKE ?)";
    let values: Vec<Value> = vec![
        uuid::Uuid::new_v4().into(),
        application_id.as_uuid().into(),
        webhook_type.as_str().into(),
        facts.to_string().into(),
        at.into(),
        application_id.as_uuid().into(),
        true.into(),
        subscribed(webhook_type.as_str()).into(),
    ];
    txn.execute_raw(stmt(txn.get_database_backend(), sql, values))
        .await
        .map(drop)
        .map_err(repo_error)
}
