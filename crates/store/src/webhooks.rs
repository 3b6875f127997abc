//! Webhooks in the database: destinations ([`WebhookRepository`]), and what the delivery worker
//! of every server asks: fan events out to the destinations subscribed to them, claim due
//! deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so that several servers deliver each
//! once), record each attempt, prune what is done.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::delivery::{AttemptOutcome, Claim, DueDelivery};
use handoff_domain::ports::{DeliveryQueue, WebhookRepository};
use handoff_domain::webhook::{
    Delivery, DeliveryState, Destination, DestinationUrl, SealedSecret, WebhookType,
};
use handoff_domain::{ApplicationId, DeliveryId, DestinationId, EventId, RepoError, SessionId};
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, Func, InsertStatement, LockBehavior, LockType, Order, Query,
    SelectStatement, UpdateStatement,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult};
use uuid::Uuid;

use crate::Store;
use crate::rows::{get, text_or_null};
use crate::schema::{WebhookDeliveries, WebhookDestinations, WebhookEvents, WebhookSubscriptions};
use crate::sql::{commit, fetch_all, fetch_one, repo_error, run};

const DESTINATION_COLUMNS: [WebhookDestinations; 9] = [
    WebhookDestinations::Id,
    WebhookDestinations::ApplicationId,
    WebhookDestinations::Label,
    WebhookDestinations::Url,
    WebhookDestinations::Enabled,
    WebhookDestinations::WebhookVersion,
    WebhookDestinations::CreatedAt,
    WebhookDestinations::UpdatedAt,
    WebhookDestinations::PreviousSecretUntil,
];

/// The subscription rows of `d`.
fn subscription_rows(d: &Destination) -> Result<Option<InsertStatement>, RepoError> {
    if d.subscribed_events.is_empty() {
        return Ok(None);
    }
    let mut insert = Query::insert()
        .into_table(WebhookSubscriptions::Table)
        .columns(WebhookSubscriptions::COLUMNS.iter().copied())
        .to_owned();
    for webhook_type in &d.subscribed_events {
        insert
            .values([
                d.id.as_uuid().into(),
                d.application_id.as_uuid().into(),
                webhook_type.as_str().into(),
            ])
            .map_err(|e| RepoError::Internal(e.to_string().into()))?;
    }
    Ok(Some(insert))
}

/// The event types each destination of `application_id` (or only `id`) receives, in the
/// order of [`WebhookType::ALL`].
async fn subscriptions<C: ConnectionTrait>(
    db: &C, application_id: ApplicationId, id: Option<Uuid>,
) -> Result<HashMap<Uuid, Vec<WebhookType>>, RepoError> {
    let mut select = Query::select()
        .columns([WebhookSubscriptions::DestinationId, WebhookSubscriptions::WebhookType])
        .from(WebhookSubscriptions::Table)
        .and_where(Expr::col(WebhookSubscriptions::ApplicationId).eq(application_id.as_uuid()))
        .to_owned();
    if let Some(id) = id {
        select.and_where(Expr::col(WebhookSubscriptions::DestinationId).eq(id));
    }
    let mut found: HashMap<Uuid, Vec<WebhookType>> = HashMap::new();
    for row in fetch_all(db, &select).await? {
        let name: String = get(&row, "webhook_type")?;
        let webhook_type = WebhookType::parse(&name)
            .ok_or_else(|| RepoError::Internal(format!("stored webhook type {name:?}").into()))?;
        found.entry(get(&row, "destination_id")?).or_default().push(webhook_type);
    }
    for types in found.values_mut() {
        types.sort_by_key(|t| WebhookType::ALL.iter().position(|a| a == t));
    }
    Ok(found)
}

/// A destination's row, with the event types it receives.
fn destination(
    row: &QueryResult, subscribed: &HashMap<Uuid, Vec<WebhookType>>,
) -> Result<Destination, RepoError> {
    let id: Uuid = get(row, "id")?;
    Ok(Destination {
        id: DestinationId::from_uuid(id),
        application_id: ApplicationId::from_uuid(get(row, "application_id")?),
        label: get(row, "label")?,
        url: DestinationUrl::from_stored(get(row, "url")?),
        enabled: get(row, "enabled")?,
        webhook_version: get(row, "webhook_version")?,
        subscribed_events: subscribed.get(&id).cloned().unwrap_or_default(),
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        previous_secret_until: get(row, "previous_secret_until")?,
    })
}

fn delivery(row: &QueryResult) -> Result<Delivery, RepoError> {
    let state: String = get(row, "state")?;
    let webhook_type: String = get(row, "webhook_type")?;
    let state = DeliveryState::parse(&state)
        .ok_or_else(|| RepoError::Internal(format!("stored delivery state {state:?}").into()))?;
    Ok(Delivery {
        id: DeliveryId::from_uuid(get(row, "id")?),
        event_id: EventId::from_uuid(get(row, "event_id")?),
        webhook_type: WebhookType::parse(&webhook_type).ok_or_else(|| {
            RepoError::Internal(format!("stored webhook type {webhook_type:?}").into())
        })?,
        session_id: get::<Option<Uuid>>(row, "session_id")?.map(SessionId::from_uuid),
        state,
        attempts: get(row, "attempts")?,
        last_status_code: get(row, "last_status_code")?,
        last_error: text_or_null(row, "last_error")?,
        next_attempt_at: match state {
            DeliveryState::Pending => Some(get(row, "next_attempt_at")?),
            _ => None,
        },
        delivered_at: get(row, "delivered_at")?,
        created_at: get(row, "created_at")?,
    })
}

#[async_trait]
impl WebhookRepository for Store {
    async fn create_destination(
        &self, d: &Destination, secret: &SealedSecret,
    ) -> Result<(), RepoError> {
        let insert = Query::insert()
            .into_table(WebhookDestinations::Table)
            .columns(
                DESTINATION_COLUMNS
                    .into_iter()
                    .chain([WebhookDestinations::Secret, WebhookDestinations::SealedWith]),
            )
            .values([
                d.id.as_uuid().into(),
                d.application_id.as_uuid().into(),
                d.label.clone().into(),
                d.url.as_str().into(),
                d.enabled.into(),
                d.webhook_version.clone().into(),
                d.created_at.into(),
                d.updated_at.into(),
                d.previous_secret_until.into(),
                secret.bytes.clone().into(),
                secret.sealed_with.clone().into(),
            ])
            .map_err(|e| RepoError::Internal(e.to_string().into()))?
            .to_owned();
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        run(&txn, &insert).await?;
        if let Some(rows) = subscription_rows(d)? {
            run(&txn, &rows).await?;
        }
        commit(txn).await
    }

    async fn destinations(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<Destination>, RepoError> {
        let select = Query::select()
            .columns(DESTINATION_COLUMNS)
            .from(WebhookDestinations::Table)
            .and_where(Expr::col(WebhookDestinations::ApplicationId).eq(application_id.as_uuid()))
            .order_by(WebhookDestinations::CreatedAt, Order::Asc)
            .order_by(WebhookDestinations::Id, Order::Asc)
            .to_owned();
        let subscribed = subscriptions(&self.db, application_id, None).await?;
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| destination(row, &subscribed))
            .collect()
    }

    async fn find_destination(
        &self, application_id: ApplicationId, id: DestinationId,
    ) -> Result<Option<Destination>, RepoError> {
        let select = Query::select()
            .columns(DESTINATION_COLUMNS)
            .from(WebhookDestinations::Table)
            .and_where(Expr::col(WebhookDestinations::Id).eq(id.as_uuid()))
            .and_where(Expr::col(WebhookDestinations::ApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        let Some(row) = fetch_one(&self.db, &select).await? else {
            return Ok(None);
        };
        let subscribed = subscriptions(&self.db, application_id, Some(id.as_uuid())).await?;
        destination(&row, &subscribed).map(Some)
    }

    async fn update_destination(&self, d: &Destination) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(WebhookDestinations::Table)
            .value(WebhookDestinations::Label, d.label.clone())
            .value(WebhookDestinations::Url, d.url.as_str())
            .value(WebhookDestinations::Enabled, d.enabled)
            .value(WebhookDestinations::WebhookVersion, d.webhook_version.clone())
            .value(WebhookDestinations::UpdatedAt, d.updated_at)
            .and_where(Expr::col(WebhookDestinations::Id).eq(d.id.as_uuid()))
            .and_where(Expr::col(WebhookDestinations::ApplicationId).eq(d.application_id.as_uuid()))
            .to_owned();
        let forget = Query::delete()
            .from_table(WebhookSubscriptions::Table)
            .and_where(Expr::col(WebhookSubscriptions::DestinationId).eq(d.id.as_uuid()))
            .to_owned();
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        if run(&txn, &update).await? != 1 {
            return Ok(false);
        }
        run(&txn, &forget).await?;
        if let Some(rows) = subscription_rows(d)? {
            run(&txn, &rows).await?;
        }
        commit(txn).await?;
        Ok(true)
    }

    async fn rotate_destination_secret(
        &self, application_id: ApplicationId, id: DestinationId, secret: &SealedSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(WebhookDestinations::Table)
            .value(WebhookDestinations::PreviousSecret, Expr::col(WebhookDestinations::Secret))
            .value(WebhookDestinations::PreviousSecretUntil, previous_until)
            .value(WebhookDestinations::Secret, secret.bytes.clone())
            .value(WebhookDestinations::SealedWith, secret.sealed_with.clone())
            .and_where(Expr::col(WebhookDestinations::Id).eq(id.as_uuid()))
            .and_where(Expr::col(WebhookDestinations::ApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        let _turn = self.write_turn().await;
        Ok(run(&self.db, &update).await? == 1)
    }

    async fn delete_destination(
        &self, application_id: ApplicationId, id: DestinationId,
    ) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let found = Query::select()
            .column(WebhookDestinations::Id)
            .from(WebhookDestinations::Table)
            .and_where(Expr::col(WebhookDestinations::Id).eq(id.as_uuid()))
            .and_where(Expr::col(WebhookDestinations::ApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        if fetch_one(&txn, &found).await?.is_none() {
            return Ok(false);
        }
        let deliveries = Query::delete()
            .from_table(WebhookDeliveries::Table)
            .and_where(Expr::col(WebhookDeliveries::DestinationId).eq(id.as_uuid()))
            .to_owned();
        run(&txn, &deliveries).await?;
        let destination = Query::delete()
            .from_table(WebhookDestinations::Table)
            .and_where(Expr::col(WebhookDestinations::Id).eq(id.as_uuid()))
            .to_owned();
        run(&txn, &destination).await?;
        commit(txn).await?;
        Ok(true)
    }

    async fn deliveries(
        &self, application_id: ApplicationId, destination_id: DestinationId, limit: u64,
        offset: u64,
    ) -> Result<Vec<Delivery>, RepoError> {
        use WebhookDeliveries as D;
        let select = Query::select()
            .columns([(D::Table, D::Id), (D::Table, D::EventId)])
            .columns([
                (WebhookEvents::Table, WebhookEvents::WebhookType),
                (WebhookEvents::Table, WebhookEvents::SessionId),
            ])
            .columns([
                D::State,
                D::Attempts,
                D::LastStatusCode,
                D::LastError,
                D::NextAttemptAt,
                D::DeliveredAt,
            ])
            .column((D::Table, D::CreatedAt))
            .from(D::Table)
            .inner_join(
                WebhookDestinations::Table,
                Expr::col((WebhookDestinations::Table, WebhookDestinations::Id))
                    .equals((D::Table, D::DestinationId)),
            )
            .inner_join(WebhookEvents::Table, event_of_delivery())
            .and_where(Expr::col(D::DestinationId).eq(destination_id.as_uuid()))
            .and_where(
                Expr::col((WebhookDestinations::Table, WebhookDestinations::ApplicationId))
                    .eq(application_id.as_uuid()),
            )
            .order_by((D::Table, D::CreatedAt), Order::Desc)
            .order_by((D::Table, D::Id), Order::Desc)
            .limit(limit)
            .offset(offset)
            .to_owned();
        fetch_all(&self.db, &select).await?.iter().map(delivery).collect()
    }

    async fn resend_delivery(
        &self, application_id: ApplicationId, destination_id: DestinationId,
        delivery_id: DeliveryId, at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        if self.find_destination(application_id, destination_id).await?.is_none() {
            return Ok(false);
        }
        let update = Query::update()
            .table(WebhookDeliveries::Table)
            .value(WebhookDeliveries::State, DeliveryState::Pending.as_str())
            .value(WebhookDeliveries::NextAttemptAt, at)
            .value(WebhookDeliveries::Attempts, 0)
            .and_where(Expr::col(WebhookDeliveries::Id).eq(delivery_id.as_uuid()))
            .and_where(Expr::col(WebhookDeliveries::DestinationId).eq(destination_id.as_uuid()))
            .to_owned();
        let _turn = self.write_turn().await;
        Ok(run(&self.db, &update).await? == 1)
    }
}

#[async_trait]
impl DeliveryQueue for Store {
    async fn dispatch_webhook_events(
        &self, limit: u64, now: DateTime<Utc>,
    ) -> Result<usize, RepoError> {
        self.dispatch_events(limit, now).await
    }

    async fn claim_webhook_deliveries(
        &self, claim: &Claim<'_>, now: DateTime<Utc>,
    ) -> Result<Vec<DueDelivery>, RepoError> {
        self.claim_deliveries(claim, now).await
    }

    async fn keep_webhook_payloads(
        &self, rendered: &[(EventId, String)],
    ) -> Result<HashMap<EventId, String>, RepoError> {
        self.keep_payloads(rendered).await
    }

    async fn record_webhook_attempts(
        &self, attempts: &[(DeliveryId, AttemptOutcome)], now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.record_attempts(attempts, now).await
    }

    async fn prune_webhooks(&self, before: DateTime<Utc>) -> Result<u64, RepoError> {
        self.prune(before).await
    }
}

impl Store {
    /// Whether `select` finds no row yet, read outside any transaction: the worker's poll of
    /// an idle queue neither waits for nor takes the write turn (on SQLite, the database's one
    /// writer). A row found is read again, locked, in the write transaction.
    async fn none_yet(&self, select: &SelectStatement) -> Result<bool, RepoError> {
        let first = select.clone().limit(1).to_owned();
        Ok(fetch_one(&self.db, &first).await?.is_none())
    }

    /// Fans up to `limit` undispatched events out to the destinations of their application
    /// that are enabled and subscribed to their type, as pending deliveries due now; marks them
    /// dispatched. On PostgreSQL the events are locked `SKIP LOCKED`: servers dispatch
    /// disjoint batches. How many events it dispatched.
    async fn dispatch_events(&self, limit: u64, now: DateTime<Utc>) -> Result<usize, RepoError> {
        let backend = self.backend();
        let mut undispatched = Query::select()
            .column(WebhookEvents::EventId)
            .from(WebhookEvents::Table)
            .and_where(Expr::col(WebhookEvents::DispatchedAt).is_null())
            .order_by(WebhookEvents::Id, Order::Asc)
            .limit(limit)
            .to_owned();
        if self.none_yet(&undispatched).await? {
            return Ok(0);
        }
        // PostgreSQL only: SQLite writes one transaction at a time and has no row locks.
        undispatched.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let events = fetch_all(&txn, &undispatched).await?;
        if events.is_empty() {
            // Ended here, not dropped: a dropped transaction's connection is rolled back
            // in the background, at some cost, instead of going straight back to the pool.
            txn.rollback().await.map_err(repo_error)?;
            return Ok(0);
        }
        let ids = events
            .iter()
            .map(|event| get::<Uuid>(event, "event_id"))
            .collect::<Result<Vec<_>, _>>()?;
        let new_id = match backend {
            DatabaseBackend::Postgres => "gen_random_uuid()",
            _ => "randomblob(16)",
        };
        // Every event of the batch to every destination subscribed to it, in one statement.
        let mut fan_out = Query::select()
            .expr(Expr::cust(new_id))
            .column((WebhookEvents::Table, WebhookEvents::EventId))
            .column((WebhookDestinations::Table, WebhookDestinations::Id))
            .expr(Expr::val(DeliveryState::Pending.as_str()))
            .expr(Expr::val(0))
            .expr(Expr::val(now))
            .expr(Expr::val(now))
            .from(WebhookEvents::Table)
            .and_where(Expr::col((WebhookEvents::Table, WebhookEvents::EventId)).is_in(ids.clone()))
            .to_owned();
        crate::outbox::join_subscribers(&mut fan_out);
        let insert = Query::insert()
            .into_table(WebhookDeliveries::Table)
            .columns([
                WebhookDeliveries::Id,
                WebhookDeliveries::EventId,
                WebhookDeliveries::DestinationId,
                WebhookDeliveries::State,
                WebhookDeliveries::Attempts,
                WebhookDeliveries::NextAttemptAt,
                WebhookDeliveries::CreatedAt,
            ])
            .select_from(fan_out)
            .map_err(|e| RepoError::Internal(e.into()))?
            .to_owned();
        run(&txn, &insert).await?;
        let dispatched = Query::update()
            .table(WebhookEvents::Table)
            .value(WebhookEvents::DispatchedAt, now)
            .and_where(Expr::col(WebhookEvents::EventId).is_in(ids))
            .to_owned();
        run(&txn, &dispatched).await?;
        commit(txn).await?;
        Ok(events.len())
    }

    /// Claims due deliveries as `claim` bounds them: each gets its attempt counted and its next
    /// attempt put `lease` later, so that if this process dies while sending, the delivery
    /// comes due again then (at least once). `SKIP LOCKED` on PostgreSQL: servers claim
    /// disjoint sets. With each, what sending it needs.
    async fn claim_deliveries(
        &self, claim: &Claim<'_>, now: DateTime<Utc>,
    ) -> Result<Vec<DueDelivery>, RepoError> {
        use WebhookDeliveries as D;
        // The earliest due rows (locked on PostgreSQL; rows other servers hold are skipped),
        // a few claims' worth, from which each destination's share is taken here: the index
        // on (state, next_attempt_at) bounds the work by the claim, not by the backlog.
        let mut candidates = Query::select()
            .columns([D::Id, D::DestinationId])
            .from(D::Table)
            .and_where(Expr::col(D::State).eq(DeliveryState::Pending.as_str()))
            .and_where(Expr::col(D::NextAttemptAt).lte(now))
            .order_by(D::NextAttemptAt, Order::Asc)
            .limit(u64::try_from(claim.limit.saturating_mul(4)).unwrap_or(u64::MAX))
            .to_owned();
        if !claim.busy.is_empty() {
            candidates.and_where(
                Expr::col(D::DestinationId)
                    .is_not_in(claim.busy.iter().map(DestinationId::as_uuid)),
            );
        }
        if self.none_yet(&candidates).await? {
            return Ok(Vec::new());
        }
        candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let rows = fetch_all(&txn, &candidates).await?;
        let mut taken: HashMap<Uuid, usize> = HashMap::new();
        let mut chosen = Vec::new();
        for row in &rows {
            let share = taken.entry(get::<Uuid>(row, "destination_id")?).or_default();
            if *share < claim.per_destination && chosen.len() < claim.limit {
                *share += 1;
                chosen.push(get::<Uuid>(row, "id")?);
            }
        }
        if chosen.is_empty() {
            commit(txn).await?;
            return Ok(Vec::new());
        }
        let counted = Query::update()
            .table(D::Table)
            .value(D::Attempts, Expr::col(D::Attempts).add(1))
            .value(D::NextAttemptAt, now + claim.lease)
            .and_where(Expr::col(D::Id).is_in(chosen))
            .returning(Query::returning().columns([D::Id, D::Attempts]))
            .to_owned();
        let claimed = fetch_all(&txn, &counted).await?;
        commit(txn).await?;
        drop(_turn);
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempts = HashMap::with_capacity(claimed.len());
        for row in &claimed {
            attempts.insert(get::<Uuid>(row, "id")?, get::<i32>(row, "attempts")?);
        }
        let (e, w) = (WebhookEvents::Table, WebhookDestinations::Table);
        let detail = Query::select()
            .column((D::Table, D::Id))
            .columns([
                (e, WebhookEvents::EventId),
                (e, WebhookEvents::ApplicationId),
                (e, WebhookEvents::WebhookType),
                (e, WebhookEvents::SessionId),
                (e, WebhookEvents::Details),
                (e, WebhookEvents::CreatedAt),
                (e, WebhookEvents::Payload),
            ])
            .expr_as(Expr::col((w, WebhookDestinations::Id)), Alias::new("destination_id"))
            .columns([
                (w, WebhookDestinations::Url),
                (w, WebhookDestinations::Secret),
                (w, WebhookDestinations::SealedWith),
                (w, WebhookDestinations::PreviousSecret),
                (w, WebhookDestinations::PreviousSecretUntil),
            ])
            .from(D::Table)
            .inner_join(e, event_of_delivery())
            .inner_join(
                w,
                Expr::col((w, WebhookDestinations::Id)).equals((D::Table, D::DestinationId)),
            )
            .and_where(Expr::col((D::Table, D::Id)).is_in(attempts.keys().copied()))
            .order_by((D::Table, D::NextAttemptAt), Order::Asc)
            .to_owned();
        let rows = fetch_all(&self.db, &detail).await?;
        let mut due = Vec::with_capacity(rows.len());
        for detail in &rows {
            let id: Uuid = get(detail, "id")?;
            let previous_until: Option<DateTime<Utc>> = get(detail, "previous_secret_until")?;
            let previous: Option<Vec<u8>> = get(detail, "previous_secret")?;
            let sealed_with: String = get(detail, "sealed_with")?;
            let application: Uuid = get(detail, "application_id")?;
            let facts = match text_or_null(detail, "details")? {
                Some(text) => {
                    let text =
                        self.open_for_application(&self.db, application, "details", text).await?;
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
                }
                None => serde_json::Value::Null,
            };
            due.push(DueDelivery {
                id: DeliveryId::from_uuid(id),
                attempt: attempts.get(&id).copied().unwrap_or(1),
                event_id: EventId::from_uuid(get(detail, "event_id")?),
                application_id: ApplicationId::from_uuid(get(detail, "application_id")?),
                webhook_type: get(detail, "webhook_type")?,
                session_id: get::<Option<Uuid>>(detail, "session_id")?.map(SessionId::from_uuid),
                facts,
                created_at: get(detail, "created_at")?,
                payload: match text_or_null(detail, "payload")? {
                    Some(payload) => Some(
                        self.open_for_application(
                            &self.db,
                            get(detail, "application_id")?,
                            "payload",
                            payload,
                        )
                        .await?,
                    ),
                    None => None,
                },
                url: get(detail, "url")?,
                destination_id: DestinationId::from_uuid(get(detail, "destination_id")?),
                secret: SealedSecret {
                    bytes: get(detail, "secret")?,
                    sealed_with: sealed_with.clone(),
                },
                previous_secret: match (previous, previous_until) {
                    (Some(bytes), Some(until)) if until > now => {
                        Some(SealedSecret { bytes, sealed_with })
                    }
                    _ => None,
                },
            });
        }
        Ok(due)
    }

    /// Keeps each event's first rendered payload, so that every attempt and every worker sends
    /// the same body: the payload kept for each of `rendered`'s events (another worker's when it
    /// kept one first), in one transaction.
    async fn keep_payloads(
        &self, rendered: &[(EventId, String)],
    ) -> Result<HashMap<EventId, String>, RepoError> {
        if rendered.is_empty() {
            return Ok(HashMap::new());
        }
        // Sealed under each event's application's key: a payload may hold a decision.
        let applications = Query::select()
            .columns([WebhookEvents::EventId, WebhookEvents::ApplicationId])
            .from(WebhookEvents::Table)
            .and_where(
                Expr::col(WebhookEvents::EventId)
                    .is_in(rendered.iter().map(|(id, _)| id.as_uuid())),
            )
            .to_owned();
        let mut application_of = HashMap::with_capacity(rendered.len());
        for row in fetch_all(&self.db, &applications).await? {
            application_of
                .insert(get::<Uuid>(&row, "event_id")?, get::<Uuid>(&row, "application_id")?);
        }
        let mut sealed = Vec::with_capacity(rendered.len());
        for (event_id, payload) in rendered {
            let Some(application) = application_of.get(&event_id.as_uuid()) else {
                continue;
            };
            let payload =
                self.seal_for_application(&self.db, *application, "payload", payload).await?;
            sealed.push((event_id, payload));
        }
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        for (event_id, payload) in sealed {
            let update = Query::update()
                .table(WebhookEvents::Table)
                .value(WebhookEvents::Payload, payload)
                .and_where(Expr::col(WebhookEvents::EventId).eq(event_id.as_uuid()))
                .and_where(Expr::col(WebhookEvents::Payload).is_null())
                .to_owned();
            run(&txn, &update).await?;
        }
        let select = Query::select()
            .columns([WebhookEvents::EventId, WebhookEvents::ApplicationId, WebhookEvents::Payload])
            .from(WebhookEvents::Table)
            .and_where(
                Expr::col(WebhookEvents::EventId)
                    .is_in(rendered.iter().map(|(id, _)| id.as_uuid())),
            )
            .to_owned();
        let mut kept = HashMap::with_capacity(rendered.len());
        for row in fetch_all(&txn, &select).await? {
            if let Some(payload) = text_or_null(&row, "payload")? {
                kept.insert(
                    EventId::from_uuid(get(&row, "event_id")?),
                    (get::<Uuid>(&row, "application_id")?, payload),
                );
            }
        }
        commit(txn).await?;
        let mut opened = HashMap::with_capacity(kept.len());
        for (event_id, (application, payload)) in kept {
            let payload =
                self.open_for_application(&self.db, application, "payload", payload).await?;
            opened.insert(event_id, payload);
        }
        let kept = opened;
        Ok(kept)
    }

    /// Records what attempts gave, in one transaction.
    async fn record_attempts(
        &self, attempts: &[(DeliveryId, AttemptOutcome)], now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        for (delivery_id, outcome) in attempts {
            run(&txn, &attempt_update(*delivery_id, outcome, now)).await?;
        }
        commit(txn).await
    }

    /// How many deliveries are in each state (`pending`, `delivered`, `failed`).
    pub async fn webhook_deliveries_by_state(&self) -> Result<Vec<(String, i64)>, RepoError> {
        let counted = Query::select()
            .column(WebhookDeliveries::State)
            .expr_as(Func::count(Expr::col(WebhookDeliveries::Id)), Alias::new("n"))
            .from(WebhookDeliveries::Table)
            .group_by_col(WebhookDeliveries::State)
            .to_owned();
        fetch_all(&self.db, &counted)
            .await?
            .iter()
            .map(|row| Ok((get::<String>(row, "state")?, get::<i64>(row, "n")?)))
            .collect()
    }

    /// Deliveries due at `now` and not yet sent, and when the earliest of them fell due.
    pub async fn webhook_backlog(
        &self, now: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), RepoError> {
        let due = Query::select()
            .from(WebhookDeliveries::Table)
            .and_where(Expr::col(WebhookDeliveries::State).eq(DeliveryState::Pending.as_str()))
            .and_where(Expr::col(WebhookDeliveries::NextAttemptAt).lte(now))
            .to_owned();
        let counted = due
            .clone()
            .expr_as(Func::count(Expr::col(WebhookDeliveries::Id)), Alias::new("due"))
            .to_owned();
        let count = fetch_one(&self.db, &counted)
            .await?
            .map(|row| get::<i64>(&row, "due"))
            .transpose()?
            .unwrap_or(0);
        let first = due
            .clone()
            .column(WebhookDeliveries::NextAttemptAt)
            .order_by(WebhookDeliveries::NextAttemptAt, Order::Asc)
            .limit(1)
            .to_owned();
        let earliest = fetch_one(&self.db, &first)
            .await?
            .map(|row| get::<DateTime<Utc>>(&row, "next_attempt_at"))
            .transpose()?;
        Ok((count, earliest))
    }

    /// Deletes delivered deliveries created before `before`, and events dispatched before it
    /// that no delivery waits on any more; how many rows.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, RepoError> {
        let _turn = self.write_turn().await;
        let delivered = Query::delete()
            .from_table(WebhookDeliveries::Table)
            .and_where(Expr::col(WebhookDeliveries::State).eq(DeliveryState::Delivered.as_str()))
            .and_where(Expr::col(WebhookDeliveries::CreatedAt).lt(before))
            .to_owned();
        let deliveries = run(&self.db, &delivered).await?;
        let waited_on = Query::select()
            .expr(Expr::val(1))
            .from(WebhookDeliveries::Table)
            .and_where(event_of_delivery())
            .to_owned();
        let done = Query::delete()
            .from_table(WebhookEvents::Table)
            .and_where(Expr::col(WebhookEvents::DispatchedAt).lt(before))
            .and_where(Expr::exists(waited_on).not())
            .to_owned();
        let events = run(&self.db, &done).await?;
        Ok(deliveries + events)
    }
}

/// A delivery's event: the join of `webhook_events` on `webhook_deliveries`.
fn event_of_delivery() -> Expr {
    Expr::col((WebhookEvents::Table, WebhookEvents::EventId))
        .equals((WebhookDeliveries::Table, WebhookDeliveries::EventId))
}

/// The change an attempt's outcome makes to its delivery.
fn attempt_update(
    delivery_id: DeliveryId, outcome: &AttemptOutcome, now: DateTime<Utc>,
) -> UpdateStatement {
    let mut update = Query::update()
        .table(WebhookDeliveries::Table)
        .and_where(Expr::col(WebhookDeliveries::Id).eq(delivery_id.as_uuid()))
        .to_owned();
    match outcome {
        AttemptOutcome::Delivered { status } => {
            update
                .value(WebhookDeliveries::State, DeliveryState::Delivered.as_str())
                .value(WebhookDeliveries::LastStatusCode, i32::from(*status))
                .value(WebhookDeliveries::LastError, Option::<String>::None)
                .value(WebhookDeliveries::DeliveredAt, now);
        }
        AttemptOutcome::Failed { status, error, retry_at } => {
            let state = match retry_at {
                Some(_) => DeliveryState::Pending,
                None => DeliveryState::Failed,
            };
            update
                .value(WebhookDeliveries::State, state.as_str())
                .value(WebhookDeliveries::LastStatusCode, status.map(i32::from))
                .value(WebhookDeliveries::LastError, error.clone())
                .value(WebhookDeliveries::NextAttemptAt, retry_at.unwrap_or(now));
        }
    }
    update
}
