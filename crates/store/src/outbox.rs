//! The webhook outbox, written where a change writes its log row: the events the row causes
//! ([`events_of`]), in the change's own statement or transaction — those that an enabled
//! destination of the application is subscribed to (an application without one writes none:
//! its events would be fanned out to nobody). The one place that knows how an event row is
//! written and who is subscribed: every write but one runs [`insert_events`] or
//! [`insert_application_event`] (built statements); the PostgreSQL import, hand-written SQL in
//! one statement, takes the same row and test as text, [`INSERT_EVENTS`] and [`subscribed`];
//! the worker's fan-out joins [`join_subscribers`].

use chrono::{DateTime, Utc};
use handoff_domain::webhook::{WebhookType, events_of};
use handoff_domain::{ApplicationId, LogEntry, RepoError, SessionId};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{
    Cond, Expr, ExprTrait, InsertStatement, Query, SelectStatement, UnionType,
};

use crate::schema::{Sessions, WebhookDestinations, WebhookEvents, WebhookSubscriptions};
use crate::sql::run;

/// The head of the PostgreSQL import's outbox write; a `SELECT` of these columns follows.
pub(crate) const INSERT_EVENTS: &str = "INSERT INTO webhook_events \
     (event_id, application_id, webhook_type, session_id, details, created_at)";

/// The condition that an enabled destination of `application` is subscribed to
/// `webhook_type` (both SQL expressions), for the PostgreSQL import's statement.
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
    let (events, subscriptions, destinations) =
        (WebhookEvents::Table, WebhookSubscriptions::Table, WebhookDestinations::Table);
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

/// `application` (an expression) has an enabled destination subscribed to `webhook_type`.
fn subscribed_to(application: Expr, webhook_type: WebhookType) -> Expr {
    let (subscriptions, destinations) = (WebhookSubscriptions::Table, WebhookDestinations::Table);
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(subscriptions)
            .inner_join(
                destinations,
                Expr::col((destinations, WebhookDestinations::Id))
                    .equals((subscriptions, WebhookSubscriptions::DestinationId)),
            )
            .and_where(
                Expr::col((subscriptions, WebhookSubscriptions::ApplicationId)).eq(application),
            )
            .and_where(
                Expr::col((subscriptions, WebhookSubscriptions::WebhookType))
                    .eq(webhook_type.as_str()),
            )
            .and_where(Expr::col((destinations, WebhookDestinations::Enabled)).eq(true))
            .to_owned(),
    )
}

/// `INSERT INTO webhook_events` of what `rows` selects, in the order of [`INSERT_EVENTS`].
fn insert_events_from(rows: SelectStatement) -> Result<InsertStatement, RepoError> {
    Ok(Query::insert()
        .into_table(WebhookEvents::Table)
        .columns([
            WebhookEvents::EventId,
            WebhookEvents::ApplicationId,
            WebhookEvents::WebhookType,
            WebhookEvents::SessionId,
            WebhookEvents::Details,
            WebhookEvents::CreatedAt,
        ])
        .select_from(rows)
        .map_err(|e| RepoError::Internal(e.into()))?
        .to_owned())
}

/// Writes the events `log` causes for `session_id`, owned by the session's application.
pub(crate) async fn insert_events<C: ConnectionTrait>(
    txn: &C, session_id: SessionId, log: &LogEntry,
) -> Result<(), RepoError> {
    match events_insert(session_id, log)? {
        Some(insert) => run(txn, &insert).await.map(drop),
        None => Ok(()),
    }
}

/// The statement of [`insert_events`]; `None` when `log` causes no event.
pub(crate) fn events_insert(
    session_id: SessionId, log: &LogEntry,
) -> Result<Option<InsertStatement>, RepoError> {
    event_rows(None, session_id, log)
}

/// [`events_insert`] for a session of `application_id` that the same statement or command
/// writes: the session's row is not read.
pub(crate) fn events_insert_of(
    application_id: ApplicationId, session_id: SessionId, log: &LogEntry,
) -> Result<Option<InsertStatement>, RepoError> {
    event_rows(Some(application_id), session_id, log)
}

/// The events `log` causes for `session_id`, its application read from its row unless given.
fn event_rows(
    application: Option<ApplicationId>, session_id: SessionId, log: &LogEntry,
) -> Result<Option<InsertStatement>, RepoError> {
    let sessions = Sessions::Table;
    let mut rows = events_of(log).into_iter().map(|(webhook_type, facts)| {
        let mut row = Query::select();
        row.expr(Expr::val(uuid::Uuid::new_v4()));
        let owner = match application {
            Some(application) => {
                row.expr(Expr::val(application.as_uuid()))
                    .expr(Expr::val(webhook_type.as_str()))
                    .expr(Expr::val(session_id.as_uuid()));
                Expr::val(application.as_uuid())
            }
            None => {
                row.column((sessions, Sessions::ApplicationId))
                    .expr(Expr::val(webhook_type.as_str()))
                    .column((sessions, Sessions::Id))
                    .from(sessions)
                    .and_where(Expr::col((sessions, Sessions::Id)).eq(session_id.as_uuid()));
                Expr::col((sessions, Sessions::ApplicationId))
            }
        };
        row.expr(Expr::val(facts.to_string()))
            .expr(Expr::val(log.created_at))
            .and_where(subscribed_to(owner, webhook_type))
            .to_owned()
    });
    let Some(mut all) = rows.next() else {
        return Ok(None);
    };
    for row in rows {
        all.union(UnionType::All, row);
    }
    insert_events_from(all).map(Some)
}

/// Writes an event of the application that no log row causes — an entity's (no session), or a
/// deleted session's — if a destination of the application is subscribed to it.
pub(crate) async fn insert_application_event<C: ConnectionTrait>(
    txn: &C, application_id: ApplicationId, session_id: Option<SessionId>,
    webhook_type: WebhookType, facts: &str, at: DateTime<Utc>,
) -> Result<(), RepoError> {
    let row = Query::select()
        .expr(Expr::val(uuid::Uuid::new_v4()))
        .expr(Expr::val(application_id.as_uuid()))
        .expr(Expr::val(webhook_type.as_str()))
        .expr(Expr::val(session_id.map(|id| id.as_uuid())))
        .expr(Expr::val(facts))
        .expr(Expr::val(at))
        .and_where(subscribed_to(Expr::val(application_id.as_uuid()), webhook_type))
        .to_owned();
    run(txn, &insert_events_from(row)?).await.map(drop)
}
