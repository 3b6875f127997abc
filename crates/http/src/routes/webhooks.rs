//! `/v3/webhook/destinations/`: each application's webhook destinations, Didit's shape, their
//! secret rotation, and their deliveries (extensions: the list and the resend).

use actix_web::{HttpResponse, web};
use handoff_domain::services::NewDestination;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::{ApiError, AppState, wire};

/// A destination to create, or the members to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationBody {
    /// A name for people, 1 to 100 characters (default `Webhook`).
    label: Option<String>,
    /// Where events are POSTed: `https` (`http` only to private addresses, when the operator
    /// allows them). Required on creation.
    url: Option<String>,
    /// Whether events are sent (default true).
    enabled: Option<bool>,
    /// `v1`, `v2` or `v3` (default `v3`): kept as given; every version is sent v3 payloads.
    webhook_version: Option<String>,
    /// The event types: Didit's (`status.updated` and `data.updated` are the default;
    /// `activity.created`, `transaction.created` and `transaction.status.updated` are accepted
    /// and never sent), and the extensions `session.imported`, `share.created`,
    /// `share.redeemed`, `share.revoked`.
    subscribed_events: Option<Vec<String>>,
}

impl RequestBody for DestinationBody {}

impl DestinationBody {
    fn into_domain(self) -> NewDestination {
        NewDestination {
            label: self.label,
            url: self.url,
            enabled: self.enabled,
            webhook_version: self.webhook_version,
            subscribed_events: self.subscribed_events,
        }
    }
}

fn destination_id(raw: &str) -> Result<handoff_domain::DestinationId, ApiError> {
    raw.parse().map_err(|_| ApiError::from(handoff_domain::services::Error::DestinationNotFound))
}

/// Create a webhook destination; its `secret_shared_key` is shown only in this answer.
#[utoipa::path(post, path = "/v3/webhook/destinations/", tag = "webhooks", request_body = DestinationBody,
    responses((status = 201, description = "The destination, with its secret.", body = wire::WebhookDestination)))]
pub(crate) async fn create(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(body): JsonBody<DestinationBody>,
) -> Result<HttpResponse, ApiError> {
    let (destination, secret) = state.services.webhooks.create(&caller, body.into_domain()).await?;
    Ok(HttpResponse::Created().json(wire::WebhookDestination::new(&destination, Some(secret))))
}

/// The caller's webhook destinations, oldest first.
#[utoipa::path(get, path = "/v3/webhook/destinations/", tag = "webhooks",
    responses((status = 200, description = "The destinations.", body = wire::WebhookDestinationList)))]
pub(crate) async fn list(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let destinations = state.services.webhooks.list(&caller).await?;
    Ok(HttpResponse::Ok().json(wire::WebhookDestinationList {
        count: destinations.len() as u64,
        results: destinations.iter().map(|d| wire::WebhookDestination::new(d, None)).collect(),
    }))
}

/// One webhook destination.
#[utoipa::path(get, path = "/v3/webhook/destinations/{destination_id}/", tag = "webhooks",
    params(("destination_id" = Uuid, Path, description = "The destination.")),
    responses((status = 200, description = "The destination.", body = wire::WebhookDestination)))]
pub(crate) async fn get(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let destination = state.services.webhooks.get(&caller, destination_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(wire::WebhookDestination::new(&destination, None)))
}

/// Change a webhook destination: the members given change.
#[utoipa::path(patch, path = "/v3/webhook/destinations/{destination_id}/", tag = "webhooks",
    params(("destination_id" = Uuid, Path, description = "The destination.")),
    request_body = DestinationBody,
    responses((status = 200, description = "The destination.", body = wire::WebhookDestination)))]
pub(crate) async fn update(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(body): JsonBody<DestinationBody>,
) -> Result<HttpResponse, ApiError> {
    let id = destination_id(&path)?;
    let destination = state.services.webhooks.update(&caller, id, body.into_domain()).await?;
    Ok(HttpResponse::Ok().json(wire::WebhookDestination::new(&destination, None)))
}

/// Delete a webhook destination and its deliveries.
#[utoipa::path(delete, path = "/v3/webhook/destinations/{destination_id}/", tag = "webhooks",
    params(("destination_id" = Uuid, Path, description = "The destination.")),
    responses((status = 204, description = "Deleted.")))]
pub(crate) async fn delete(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.services.webhooks.delete(&caller, destination_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new secret for a destination (extension), shown only in this answer. Deliveries are signed
/// with the new secret at once; until `previous_secret_valid_until` (24 hours) the receiver
/// should accept either.
#[utoipa::path(post, path = "/v3/webhook/destinations/{destination_id}/rotate-secret/", tag = "webhooks",
    params(("destination_id" = Uuid, Path, description = "The destination.")),
    responses((status = 200, description = "The destination, with its new secret.", body = wire::WebhookDestination)))]
pub(crate) async fn rotate_secret(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (destination, secret) =
        state.services.webhooks.rotate_secret(&caller, destination_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(wire::WebhookDestination::new(&destination, Some(secret))))
}

/// A page of deliveries.
#[derive(Deserialize, IntoParams)]
pub(crate) struct DeliveriesQuery {
    /// 1 to 200 (default 50).
    limit: Option<u64>,
    /// Deliveries to skip (default 0).
    offset: Option<u64>,
}

/// A destination's deliveries, newest first (extension).
#[utoipa::path(get, path = "/v3/webhook/destinations/{destination_id}/deliveries/", tag = "webhooks",
    params(("destination_id" = Uuid, Path, description = "The destination."), DeliveriesQuery),
    responses((status = 200, description = "The deliveries.", body = [wire::WebhookDelivery])))]
pub(crate) async fn deliveries(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "limit must be 1 to 200."));
    }
    let deliveries = state
        .services
        .webhooks
        .deliveries(&caller, destination_id(&path)?, limit, query.offset.unwrap_or(0))
        .await?;
    Ok(HttpResponse::Ok()
        .json(deliveries.iter().map(wire::WebhookDelivery::from).collect::<Vec<_>>()))
}

/// Send a delivery again, now (extension). No body.
#[utoipa::path(post, path = "/v3/webhook/destinations/{destination_id}/deliveries/{delivery_id}/resend/", tag = "webhooks",
    params(("destination_id" = Uuid, Path, description = "The destination."),
        ("delivery_id" = Uuid, Path, description = "The delivery.")),
    responses((status = 202, description = "Due now.")))]
pub(crate) async fn resend(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (destination, delivery) = path.into_inner();
    let delivery: handoff_domain::DeliveryId = delivery
        .parse()
        .map_err(|_| ApiError::from(handoff_domain::services::Error::DeliveryNotFound))?;
    state.services.webhooks.resend(&caller, destination_id(&destination)?, delivery).await?;
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({"delivery_id": delivery.as_uuid(), "state": "pending"})))
}
