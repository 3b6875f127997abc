//! Users and Businesses managed as Didit's: list, create, change and delete, under
//! `/v3/users/` and `/v3/businesses/` alike.

use actix_web::{HttpRequest, HttpResponse, web};
use handoff_domain::entity::{EntityFilter, ProfileChange, display_name};
use handoff_domain::limits::MAX_DELETE_ENTITIES;
use handoff_domain::session::MAX_SEARCH_CHARS;
use handoff_domain::{EntityId, EntityStatus, SessionKind, ValidationErrors, VendorData};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::routes::entities::{entity_status, path_vendor_data};
use crate::routes::paging::{PageRequest, comma_separated};
use crate::routes::sessions::optional_field;
use crate::{ApiError, AppState, wire};

/// Filters and page of an entity list; any other parameter is refused.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EntitiesQuery {
    /// Comma-separated: `ACTIVE`, `FLAGGED`, `BLOCKED`.
    status: Option<String>,
    /// `vendor_data` containing this, case-insensitively, or `display_name` holding each of
    /// its words whole; at most 100 characters.
    #[param(max_length = 100, pattern = "^[^\\u0000]*$")]
    search: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
}

impl EntitiesQuery {
    fn into_filter(self) -> Result<EntityFilter, ApiError> {
        let mut errors = ValidationErrors::default();
        let statuses = comma_separated(
            self.status.as_deref(),
            "status",
            "an entity status",
            EntityStatus::parse,
            &mut errors,
        );
        let search = self.search.and_then(|raw| {
            let trimmed = raw.trim();
            if trimmed.chars().count() > MAX_SEARCH_CHARS {
                errors.add("search", "must be at most 100 characters.");
                None
            } else {
                (!trimmed.is_empty()).then(|| trimmed.to_lowercase())
            }
        });
        let page = PageRequest::parse(self.limit.as_deref(), self.offset.as_deref(), &mut errors);
        errors.into_result().map_err(ApiError::invalid)?;
        Ok(EntityFilter { statuses, search, limit: page.limit, offset: page.offset })
    }
}

async fn list(
    caller: handoff_domain::Caller, state: web::Data<AppState>, req: HttpRequest,
    query: EntitiesQuery, kind: SessionKind,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_filter()?;
    let page = state.services.sessions.entities(&caller, kind, &filter).await?;
    let results = page.results.into_iter().map(wire::Entity::from).collect();
    let request = PageRequest { limit: filter.limit, offset: filter.offset };
    Ok(request.respond(&req, &state, page.count, results))
}

/// The caller's Users, newest first.
#[utoipa::path(get, path = "/v3/users/", tag = "entities", params(EntitiesQuery),
    responses(
        (status = 200, description = "A page of Users.", body = wire::Page<wire::Entity>),
        (status = 400, description = "A filter or the page is refused.", body = wire::ErrorBody),
    ))]
pub(crate) async fn list_users(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    query: web::Query<EntitiesQuery>,
) -> Result<HttpResponse, ApiError> {
    list(caller, state, req, query.into_inner(), SessionKind::User).await
}

/// The caller's Businesses, newest first.
#[utoipa::path(get, path = "/v3/businesses/", tag = "entities", params(EntitiesQuery),
    responses(
        (status = 200, description = "A page of Businesses.", body = wire::Page<wire::Entity>),
        (status = 400, description = "A filter or the page is refused.", body = wire::ErrorBody),
    ))]
pub(crate) async fn list_businesses(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    query: web::Query<EntitiesQuery>,
) -> Result<HttpResponse, ApiError> {
    list(caller, state, req, query.into_inner(), SessionKind::Business).await
}

/// A User or Business to create.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateEntityBody {
    /// Required; unique among the caller's entities of the kind (case-insensitive).
    #[schema(required = true)]
    vendor_data: Option<String>,
    /// 1 to 200 characters.
    #[schema(max_length = 200)]
    display_name: Option<String>,
    /// An object.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// `ACTIVE` (default), `FLAGGED` or `BLOCKED`.
    #[schema(value_type = Option<wire::EntityStatus>)]
    status: Option<String>,
}

impl RequestBody for CreateEntityBody {}

/// `metadata` as given: an object, or `null` (none).
fn metadata(raw: Value, errors: &mut ValidationErrors) -> Option<Value> {
    match raw {
        Value::Null => None,
        object @ Value::Object(_) => Some(object),
        _ => {
            errors.add("metadata", "must be a JSON object.");
            None
        }
    }
}

async fn create(
    caller: handoff_domain::Caller, state: web::Data<AppState>, new: CreateEntityBody,
    kind: SessionKind,
) -> Result<HttpResponse, ApiError> {
    let mut errors = ValidationErrors::default();
    if new.vendor_data.is_none() {
        errors.add("vendor_data", "This field is required.");
    }
    let vendor_data =
        optional_field("vendor_data", new.vendor_data, |v| VendorData::parse(&v), &mut errors);
    let name = optional_field("display_name", new.display_name, display_name, &mut errors);
    let meta = new.metadata.and_then(|raw| metadata(raw, &mut errors));
    let status = entity_status(new.status, &mut errors);
    errors.into_result().map_err(ApiError::invalid)?;
    let Some(vendor_data) = vendor_data else {
        return Err(ApiError::invalid_field("vendor_data", "This field is required."));
    };
    let entity = state
        .services
        .sessions
        .create_entity(
            &caller,
            kind,
            vendor_data,
            status.unwrap_or(EntityStatus::Active),
            name,
            meta,
        )
        .await?;
    Ok(HttpResponse::Created().json(wire::Entity::from(entity)))
}

/// Create a User.
#[utoipa::path(post, path = "/v3/users/create/", tag = "entities", request_body = CreateEntityBody,
    responses(
        (status = 201, description = "The User.", body = wire::Entity),
        (status = 400, description = "A field is refused, or the vendor_data is taken.", body = wire::ErrorBody),
    ))]
pub(crate) async fn create_user(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(new): JsonBody<CreateEntityBody>,
) -> Result<HttpResponse, ApiError> {
    create(caller, state, new, SessionKind::User).await
}

/// Create a Business.
#[utoipa::path(post, path = "/v3/businesses/create/", tag = "entities", request_body = CreateEntityBody,
    responses(
        (status = 201, description = "The Business.", body = wire::Entity),
        (status = 400, description = "A field is refused, or the vendor_data is taken.", body = wire::ErrorBody),
    ))]
pub(crate) async fn create_business(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(new): JsonBody<CreateEntityBody>,
) -> Result<HttpResponse, ApiError> {
    create(caller, state, new, SessionKind::Business).await
}

/// A change of a User or Business: what is given changes; `metadata` is replaced whole.
#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateEntityBody {
    /// 1 to 200 characters, or `null` to clear it.
    #[schema(max_length = 200)]
    #[serde(default, deserialize_with = "present")]
    display_name: Option<Option<String>>,
    /// An object, or `null` to clear it.
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "present")]
    metadata: Option<Option<Value>>,
    /// `ACTIVE`, `FLAGGED` or `BLOCKED` (as `update-status/`, without a reason).
    #[schema(value_type = Option<wire::EntityStatus>)]
    status: Option<String>,
}

/// A member that is present (`Some`), possibly `null` (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl RequestBody for UpdateEntityBody {}

async fn update(
    caller: handoff_domain::Caller, state: web::Data<AppState>, raw: String,
    change: UpdateEntityBody, kind: SessionKind,
) -> Result<HttpResponse, ApiError> {
    let vendor_data = path_vendor_data(&raw)?;
    let mut errors = ValidationErrors::default();
    let name = change.display_name.map(|name| {
        name.and_then(|n| optional_field("display_name", Some(n), display_name, &mut errors))
    });
    let meta = change.metadata.map(|m| m.and_then(|raw| metadata(raw, &mut errors)));
    let status = entity_status(change.status, &mut errors);
    errors.into_result().map_err(ApiError::invalid)?;
    let profile = ProfileChange { display_name: name, metadata: meta };
    let entity = state
        .services
        .sessions
        .update_entity(&caller, kind, &vendor_data, profile, status.map(|s| (s, None)))
        .await?;
    Ok(HttpResponse::Ok().json(wire::Entity::from(entity)))
}

/// Change the caller's User with this `vendor_data`.
#[utoipa::path(patch, path = "/v3/users/{vendor_data}/", tag = "entities",
    params(("vendor_data" = String, Path, description = "The User's vendor_data.")),
    request_body = UpdateEntityBody,
    responses(
        (status = 200, description = "The User, changed.", body = wire::Entity),
        (status = 400, description = "A field is refused.", body = wire::ErrorBody),
        (status = 404, description = "No such User.", body = wire::ErrorBody),
    ))]
pub(crate) async fn update_user(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(change): JsonBody<UpdateEntityBody>,
) -> Result<HttpResponse, ApiError> {
    update(caller, state, path.into_inner(), change, SessionKind::User).await
}

/// Change the caller's Business with this `vendor_data`.
#[utoipa::path(patch, path = "/v3/businesses/{vendor_data}/", tag = "entities",
    params(("vendor_data" = String, Path, description = "The Business's vendor_data.")),
    request_body = UpdateEntityBody,
    responses(
        (status = 200, description = "The Business, changed.", body = wire::Entity),
        (status = 400, description = "A field is refused.", body = wire::ErrorBody),
        (status = 404, description = "No such Business.", body = wire::ErrorBody),
    ))]
pub(crate) async fn update_business(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(change): JsonBody<UpdateEntityBody>,
) -> Result<HttpResponse, ApiError> {
    update(caller, state, path.into_inner(), change, SessionKind::Business).await
}

/// Which entities to delete: by `vendor_data`, by id, or all.
#[derive(Deserialize, ToSchema)]
pub(crate) struct DeleteEntitiesBody {
    /// At most 1,000.
    vendor_data_list: Option<Vec<String>>,
    /// Ids (`didit_internal_id`), at most 1,000.
    didit_internal_id_list: Option<Vec<uuid::Uuid>>,
    /// `true` deletes every entity of the kind; then the lists must be absent or empty.
    delete_all: Option<bool>,
}

impl RequestBody for DeleteEntitiesBody {}

/// What a deletion deleted.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeletedEntities {
    /// How many entities (each with its sessions).
    deleted: u64,
}

async fn delete(
    caller: handoff_domain::Caller, state: web::Data<AppState>, selection: DeleteEntitiesBody,
    kind: SessionKind,
) -> Result<HttpResponse, ApiError> {
    let mut errors = ValidationErrors::default();
    let names = selection.vendor_data_list.unwrap_or_default();
    let ids: Vec<EntityId> = selection
        .didit_internal_id_list
        .unwrap_or_default()
        .into_iter()
        .map(EntityId::from_uuid)
        .collect();
    if names.len() > MAX_DELETE_ENTITIES || ids.len() > MAX_DELETE_ENTITIES {
        errors.add("vendor_data_list", format!("must hold at most {MAX_DELETE_ENTITIES} entries."));
    }
    // What the document refuses is refused (a valid vendor_data that names nothing is skipped).
    let names: Vec<VendorData> = names
        .iter()
        .filter_map(|v| match VendorData::parse(v) {
            Ok(name) => Some(name),
            Err(why) => {
                errors.add("vendor_data_list", why);
                None
            }
        })
        .collect();
    let all = selection.delete_all.unwrap_or(false);
    let named = !names.is_empty() || !ids.is_empty();
    match (all, named) {
        (true, true) => errors.add("delete_all", "Give either the lists or delete_all, not both."),
        (false, false) => errors
            .add("vendor_data_list", "Give at least one vendor_data or id, or delete_all: true."),
        _ => {}
    }
    errors.into_result().map_err(ApiError::invalid)?;
    let deleted = state
        .services
        .sessions
        .delete_entities(&caller, kind, (!all).then_some((names.as_slice(), ids.as_slice())))
        .await?;
    Ok(HttpResponse::Ok().json(DeletedEntities { deleted }))
}

/// Delete Users, each with its sessions.
#[utoipa::path(post, path = "/v3/users/delete/", tag = "entities", request_body = DeleteEntitiesBody,
    responses(
        (status = 200, description = "How many were deleted.", body = DeletedEntities),
        (status = 400, description = "Neither or both of the selections.", body = wire::ErrorBody),
    ))]
pub(crate) async fn delete_users(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(selection): JsonBody<DeleteEntitiesBody>,
) -> Result<HttpResponse, ApiError> {
    delete(caller, state, selection, SessionKind::User).await
}

/// Delete Businesses, each with its sessions.
#[utoipa::path(post, path = "/v3/businesses/delete/", tag = "entities", request_body = DeleteEntitiesBody,
    responses(
        (status = 200, description = "How many were deleted.", body = DeletedEntities),
        (status = 400, description = "Neither or both of the selections.", body = wire::ErrorBody),
    ))]
pub(crate) async fn delete_businesses(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(selection): JsonBody<DeleteEntitiesBody>,
) -> Result<HttpResponse, ApiError> {
    delete(caller, state, selection, SessionKind::Business).await
}
