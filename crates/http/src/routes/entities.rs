//! Users and Businesses: `GET /v3/users/{vendor_data}/`, `PATCH …/update-status/`, and the
//! same under `/v3/businesses/`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use handoff_domain::entity::{ProfileChange, status_reason};
use handoff_domain::{EntityStatus, SessionKind, ValidationErrors, VendorData};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::routes::sessions::optional_field;
use crate::{ApiError, AppState, wire};

/// The caller's User with this `vendor_data` (case-insensitive).
#[utoipa::path(get, path = "/v3/users/{vendor_data}/", tag = "entities",
    params(("vendor_data" = String, Path, description = "The User's vendor_data.")),
    responses((status = 200, description = "The User.", body = wire::Entity)))]
pub(crate) async fn user(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    entity(caller, state, path.into_inner(), SessionKind::User).await
}

/// The caller's Business with this `vendor_data` (case-insensitive).
#[utoipa::path(get, path = "/v3/businesses/{vendor_data}/", tag = "entities",
    params(("vendor_data" = String, Path, description = "The Business's vendor_data.")),
    responses((status = 200, description = "The Business.", body = wire::Entity)))]
pub(crate) async fn business(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    entity(caller, state, path.into_inner(), SessionKind::Business).await
}

/// A `vendor_data` from a path: one that could never have been stored names nothing (404,
/// like any unknown one).
pub(crate) fn path_vendor_data(raw: &str) -> Result<VendorData, ApiError> {
    VendorData::parse(raw)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "entity_not_found", "Not found."))
}

async fn entity(
    caller: handoff_domain::Caller, state: web::Data<AppState>, raw: String, kind: SessionKind,
) -> Result<HttpResponse, ApiError> {
    let vendor_data = path_vendor_data(&raw)?;
    let entity = state.services.sessions.entity(&caller, kind, &vendor_data).await?;
    Ok(HttpResponse::Ok().json(wire::Entity::from(entity)))
}

/// A status change of a User or Business.
#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateEntityStatusBody {
    /// `ACTIVE`, `FLAGGED` or `BLOCKED`.
    #[schema(value_type = wire::EntityStatus)]
    status: Option<String>,
    /// Why, at most 1,000 characters; kept with the entity (`status_reason`), not sent in
    /// webhooks.
    #[schema(max_length = 1000)]
    reason: Option<String>,
}

impl RequestBody for UpdateEntityStatusBody {}

/// Sets the status of the caller's User with this `vendor_data`: `FLAGGED` makes its imports
/// land `In Review`, `BLOCKED` `Declined`. A change writes a `user.status.updated` event.
#[utoipa::path(patch, path = "/v3/users/{vendor_data}/update-status/", tag = "entities",
    params(("vendor_data" = String, Path, description = "The User's vendor_data.")),
    request_body = UpdateEntityStatusBody,
    responses(
        (status = 200, description = "The User after the change.", body = wire::Entity),
        (status = 400, description = "A field is refused.", body = wire::ErrorBody),
        (status = 404, description = "No such User.", body = wire::ErrorBody),
    ))]
pub(crate) async fn update_user_status(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(change): JsonBody<UpdateEntityStatusBody>,
) -> Result<HttpResponse, ApiError> {
    update_status(caller, state, path.into_inner(), SessionKind::User, change).await
}

/// The same for the caller's Business (`business.status.updated`).
#[utoipa::path(patch, path = "/v3/businesses/{vendor_data}/update-status/", tag = "entities",
    params(("vendor_data" = String, Path, description = "The Business's vendor_data.")),
    request_body = UpdateEntityStatusBody,
    responses(
        (status = 200, description = "The Business after the change.", body = wire::Entity),
        (status = 400, description = "A field is refused.", body = wire::ErrorBody),
        (status = 404, description = "No such Business.", body = wire::ErrorBody),
    ))]
pub(crate) async fn update_business_status(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(change): JsonBody<UpdateEntityStatusBody>,
) -> Result<HttpResponse, ApiError> {
    update_status(caller, state, path.into_inner(), SessionKind::Business, change).await
}

async fn update_status(
    caller: handoff_domain::Caller, state: web::Data<AppState>, raw: String, kind: SessionKind,
    change: UpdateEntityStatusBody,
) -> Result<HttpResponse, ApiError> {
    let vendor_data = path_vendor_data(&raw)?;
    let mut errors = ValidationErrors::default();
    if change.status.is_none() {
        errors.add("status", "This field is required.");
    }
    let status = entity_status(change.status, &mut errors);
    let reason = optional_field("reason", change.reason, status_reason, &mut errors);
    errors.into_result().map_err(ApiError::invalid)?;
    let Some(status) = status else {
        return Err(ApiError::invalid_field("status", "This field is required."));
    };
    let entity = state
        .services
        .sessions
        .update_entity(
            &caller,
            kind,
            &vendor_data,
            ProfileChange::default(),
            Some((status, reason)),
        )
        .await?;
    Ok(HttpResponse::Ok().json(wire::Entity::from(entity)))
}

/// Parses an optional `status` into `errors`.
pub(crate) fn entity_status(
    raw: Option<String>, errors: &mut ValidationErrors,
) -> Option<EntityStatus> {
    optional_field(
        "status",
        raw,
        |raw| EntityStatus::parse(&raw).ok_or("must be \"ACTIVE\", \"FLAGGED\" or \"BLOCKED\"."),
        errors,
    )
}
