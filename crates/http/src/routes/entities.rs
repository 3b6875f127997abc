//! `GET /v3/users/{vendor_data}/` and `GET /v3/businesses/{vendor_data}/`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use handoff_domain::{SessionKind, VendorData};

use crate::auth::Authenticated;
use crate::decision::timestamp;
use crate::{ApiError, AppState, wire};

/// The caller's User with this `vendor_data` (case-insensitive).
#[utoipa::path(get, path = "/v3/users/{vendor_data}/", tag = "entities",
    params(("vendor_data" = String, Path, description = "The User's vendor_data.")),
    responses((status = 200, description = "The User.", body = wire::Entity)))]
pub(crate) async fn user(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    entity(caller, state, path.into_inner(), SessionKind::User).await
}

/// The caller's Business with this `vendor_data` (case-insensitive).
#[utoipa::path(get, path = "/v3/businesses/{vendor_data}/", tag = "entities",
    params(("vendor_data" = String, Path, description = "The Business's vendor_data.")),
    responses((status = 200, description = "The Business.", body = wire::Entity)))]
pub(crate) async fn business(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    entity(caller, state, path.into_inner(), SessionKind::Business).await
}

async fn entity(
    caller: handoff_domain::Caller,
    state: web::Data<AppState>,
    raw: String,
    kind: SessionKind,
) -> Result<HttpResponse, ApiError> {
    // A vendor_data that could never have been stored names nothing: 404, like any unknown one.
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "entity_not_found", "Not found.");
    let vendor_data = VendorData::parse(&raw).map_err(|_| not_found())?;
    let entity = state
        .services
        .sessions
        .entity(&caller, kind, &vendor_data)
        .await?;
    Ok(HttpResponse::Ok().json(wire::Entity {
        vendor_data: entity.vendor_data.as_str().to_owned(),
        entity_kind: entity.kind.as_str().to_owned(),
        status: entity.status.as_str().to_owned(),
        session_count: entity.session_count,
        created_at: timestamp(entity.created_at),
    }))
}
