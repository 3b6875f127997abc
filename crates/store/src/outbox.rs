//! The webhook outbox, written where a change writes its log row: the events the row causes
//! ([`events_of`]), in the change's own statement or transaction — those that an enabled
//! destination of the application is subscribed to (an application without one writes none:
//! its events would be fanned out to nobody). The one place that knows how an event row is
//! written and who is subscribed: the SQLite paths run [`insert_events`] and
//! [`insert_application_event`]; the PostgreSQL import builds its own statement from
//! [`INSERT_EVENTS`] and [`subscribed`]; the worker's fan-out joins [`join_subscribers`].

use chrono::{DateTime, Utc};
use handoff_domain::webhook::{WebhookType, events_of};
use handoff_domain::{ApplicationId, LogEntry, RepoError, SessionId};
use sea_orm::sea_query::{Cond, Expr, ExprTrait, SelectStatement};
use sea_orm::{ConnectionTrait, Value};

use crate::schema::{WebhookDestinations, WebhookEvents, WebhookSubscriptions};
use crate::sql::{repo_error, stmt};

/// The head of every outbox write; a `SELECT` of these columns follows.
pub(crate) const INSERT_EVENTS: &str = "INSERT INTO webhook_events \
     (event_id, application_id, webhook_type, session_id, details, created_at)";

/// The condition that an enabled destination of `application` is subscribed to
/// `webhook_type` (both SQL expressions).
pub(crate) fn subscribed(application: &str, webhook_type: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM webhook_subscriptions sub JOIN webhook_destinations dst \
         ON dst.id = sub.destination_id WHERE sub.application_id = {application} \
         AND sub.webhook_type = {webhook_type} AND dst.enabled)"
    )
}

/// Joins to `select` over `webhook_events` the enabled destinations subscribed to each event
/// (`webhook_destinations`): the worker's fan-out.
pub(crate) fn join_subscribers(select: &mut SelectStatement) {
    let (events, subscriptions, destinations) = (
        WebhookEvents::Table,
        WebhookSubscriptions::Table,
        WebhookDestinations::Table,
    );
    select
        .inner_join(
            subscriptions,
            Cond::all()
                .add(
                    Expr::col((subscriptions, WebhookSubscriptions::ApplicationId))
                        .equals((events, WebhookEvents::ApplicationId)),
                )
                .add(
                    Expr::col((subscriptions, WebhookSubscriptions::WebhookType))
                        .equals((events, WebhookEvents::WebhookType)),
                ),
        )
        .inner_join(
            destinations,
            Cond::all()
                .add(
                    Expr::col((destinations, WebhookDestinations::Id))
                        .equals((subscriptions, WebhookSubscriptions::DestinationId)),
                )
                .add(Expr::col((destinations, WebhookDestinations::Enabled)).eq(true)),
        );
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
    let one = format!(
        "SELECT ?, s.application_id, ?, s.id, ?, ? FROM sessions s WHERE s.id = ? AND {}",
        subscribed("s.application_id", "?")
    );
    let sql = format!(
        "{INSERT_EVENTS} {}",
        vec![one; events.len()].join(" UNION ALL ")
    );
    let mut values: Vec<Value> = Vec::with_capacity(events.len() * 6);
    for (webhook_type, facts) in events {
        values.extend([
            uuid::Uuid::new_v4().into(),
            webhook_type.as_str().into(),
            facts.to_string().into(),
            log.created_at.into(),
            session_id.as_uuid().into(),
            webhook_type.as_str().into(),
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
    let sql = format!(
        "{INSERT_EVENTS} SELECT ?, ?, ?, NULL, ?, ? WHERE {}",
        subscribed("?", "?")
    );
    let values: Vec<Value> = vec![
        uuid::Uuid::new_v4().into(),
        application_id.as_uuid().into(),
        webhook_type.as_str().into(),
        facts.to_string().into(),
        at.into(),
        application_id.as_uuid().into(),
        webhook_type.as_str().into(),
    ];
    txn.execute_raw(stmt(txn.get_database_backend(), &sql, values))
        .await
        .map(drop)
        .map_err(repo_error)
}
