//! `/v3/lists/` (Didit's Lists API: lists and their entries) and `/v3/blocklist/add/`,
//! `/v3/blocklist/remove/` (a session's values to or from the system blocklists).

use actix_web::{HttpRequest, HttpResponse, web};
use handoff_domain::lists::{EntryType, ListId, ListType};
use handoff_domain::services::{AddEntry, BlocklistFlags, Error, NewList};
use handoff_domain::{SessionId, ValidationErrors};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::routes::paging::PageRequest;
use crate::{ApiError, AppState, wire};

/// A list to make: an allowlist or a custom list (the system blocklists exist already).
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateListBody {
    /// 1 to 100 characters, unique in the application.
    #[schema(required = true, min_length = 1, max_length = 100)]
    name: Option<String>,
    /// `allowlist` or `custom`.
    #[schema(required = true, pattern = "^(allowlist|custom)$")]
    list_type: Option<String>,
    /// What the list holds: one of Didit's entry types.
    #[schema(
        required = true,
        pattern = "^(face|document|phone|email|ip_address|device_fingerprint|wallet_address|bank_account|user|business|country|key)$"
    )]
    entry_type: Option<String>,
    /// Up to 1,000 characters.
    #[schema(min_length = 1, max_length = 1000)]
    description: Option<String>,
}

impl RequestBody for CreateListBody {}

/// A change of a list of the application's own.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateListBody {
    /// 1 to 100 characters, unique in the application.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// Up to 1,000 characters.
    #[schema(min_length = 1, max_length = 1000)]
    description: Option<String>,
}

impl RequestBody for UpdateListBody {}

/// An entry to add: `value`, or `reference_session_id` to take the session's value of the
/// list's entry type (its most recent), or both (`value` wins).
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateEntryBody {
    /// A value of the list's entry type: a document number, email, phone (6 to 15 digits), IP
    /// address or CIDR block, `vendor_data`, country code, …
    #[schema(min_length = 1, max_length = 1024)]
    value: Option<String>,
    /// One of the caller's sessions.
    reference_session_id: Option<uuid::Uuid>,
    /// Up to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    display_label: Option<String>,
    /// Why; up to 1,000 characters.
    #[schema(min_length = 1, max_length = 1000)]
    comment: Option<String>,
}

impl RequestBody for CreateEntryBody {}

/// `POST /v3/blocklist/add/` and `…/remove/`: a session, and which of its values.
#[derive(Deserialize, ToSchema)]
pub(crate) struct BlocklistBody {
    /// One of the caller's sessions.
    #[schema(required = true)]
    session_id: Option<uuid::Uuid>,
    /// Its face template (`face_template_id`).
    blocklist_face: Option<bool>,
    /// Its document number.
    blocklist_document: Option<bool>,
    /// Its phone number.
    blocklist_phone: Option<bool>,
    /// Its email address.
    blocklist_email: Option<bool>,
}

impl RequestBody for BlocklistBody {}

/// Filters and page of `GET /v3/lists/`; any other parameter is refused.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListsQuery {
    /// `blocklist`, `allowlist` or `custom`.
    #[param(pattern = "^(blocklist|allowlist|custom)$")]
    list_type: Option<String>,
    /// One of the entry types.
    #[param(
        pattern = "^(face|document|phone|email|ip_address|device_fingerprint|wallet_address|bank_account|user|business|country|key)$"
    )]
    entry_type: Option<String>,
    /// 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
}

/// A page of entries; any other parameter is refused.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EntriesQuery {
    /// 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
}

fn list_id(raw: &str) -> Result<ListId, ApiError> {
    raw.parse().map_err(|_| ApiError::from(Error::ListNotFound))
}

/// The caller's lists: the system blocklists (one per entry type), then its own, oldest first.
#[utoipa::path(get, path = "/v3/lists/", tag = "lists", params(ListsQuery),
    responses(
        (status = 200, description = "A page of lists.", body = wire::Page<wire::List>),
        (status = 400, description = "A filter or the page is refused.", body = wire::ErrorBody),
    ))]
pub(crate) async fn list(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    query: web::Query<ListsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = ValidationErrors::default();
    let list_type = query.list_type.as_deref().and_then(|t| {
        let parsed = ListType::parse(t);
        if parsed.is_none() {
            errors.add("list_type", "must be blocklist, allowlist or custom.");
        }
        parsed
    });
    let entry_type = query.entry_type.as_deref().and_then(|t| {
        let parsed = EntryType::parse(t);
        if parsed.is_none() {
            errors.add("entry_type", "must be one of Didit's entry types.");
        }
        parsed
    });
    let page = PageRequest::parse(query.limit.as_deref(), query.offset.as_deref(), &mut errors);
    errors.into_result().map_err(ApiError::invalid)?;
    let lists = state.services.lists.list(&caller, list_type, entry_type).await?;
    let count = lists.len() as u64;
    let results = lists
        .iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
        .map(wire::List::from)
        .collect();
    Ok(page.respond(&req, &state, count, results))
}

/// Make an allowlist or a custom list.
#[utoipa::path(post, path = "/v3/lists/", tag = "lists", request_body = CreateListBody,
    responses(
        (status = 201, description = "The list.", body = wire::List),
        (status = 400, description = "A member is refused, or the name is taken.", body = wire::ErrorBody),
    ))]
pub(crate) async fn create(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(body): JsonBody<CreateListBody>,
) -> Result<HttpResponse, ApiError> {
    let new = NewList {
        name: body.name,
        description: body.description,
        list_type: body.list_type,
        entry_type: body.entry_type,
    };
    let list = state.services.lists.create(&caller, new).await?;
    Ok(HttpResponse::Created().json(wire::List::from(&list)))
}

/// One list.
#[utoipa::path(get, path = "/v3/lists/{list_uuid}/", tag = "lists",
    params(("list_uuid" = Uuid, Path, description = "The list.")),
    responses(
        (status = 200, description = "The list.", body = wire::List),
        (status = 404, description = "No such list.", body = wire::ErrorBody),
    ))]
pub(crate) async fn get(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let list = state.services.lists.get(&caller, list_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(wire::List::from(&list)))
}

/// Rename a list of the application's own, or change its description.
#[utoipa::path(patch, path = "/v3/lists/{list_uuid}/", tag = "lists",
    params(("list_uuid" = Uuid, Path, description = "The list.")),
    request_body = UpdateListBody,
    responses(
        (status = 200, description = "The list.", body = wire::List),
        (status = 400, description = "A member is refused, the name is taken, or the list is a system blocklist (`system_list_immutable`).", body = wire::ErrorBody),
        (status = 404, description = "No such list.", body = wire::ErrorBody),
    ))]
pub(crate) async fn update(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateListBody>,
) -> Result<HttpResponse, ApiError> {
    let id = list_id(&path)?;
    let list = state.services.lists.update(&caller, id, body.name, body.description).await?;
    Ok(HttpResponse::Ok().json(wire::List::from(&list)))
}

/// Delete a list of the application's own, with its entries.
#[utoipa::path(delete, path = "/v3/lists/{list_uuid}/", tag = "lists",
    params(("list_uuid" = Uuid, Path, description = "The list.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "A system blocklist (`system_list_immutable`).", body = wire::ErrorBody),
        (status = 404, description = "No such list.", body = wire::ErrorBody),
    ))]
pub(crate) async fn delete(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.services.lists.delete(&caller, list_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A list's entries, newest first.
#[utoipa::path(get, path = "/v3/lists/{list_uuid}/entries/", tag = "lists",
    params(("list_uuid" = Uuid, Path, description = "The list."), EntriesQuery),
    responses(
        (status = 200, description = "A page of entries.", body = wire::Page<wire::ListEntry>),
        (status = 404, description = "No such list.", body = wire::ErrorBody),
    ))]
pub(crate) async fn entries(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    path: web::Path<String>, query: web::Query<EntriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = list_id(&path)?;
    let mut errors = ValidationErrors::default();
    let page = PageRequest::parse(query.limit.as_deref(), query.offset.as_deref(), &mut errors);
    errors.into_result().map_err(ApiError::invalid)?;
    let (count, entries) =
        state.services.lists.entries(&caller, id, page.limit, page.offset).await?;
    let results = entries.iter().map(wire::ListEntry::from).collect();
    Ok(page.respond(&req, &state, count, results))
}

/// Add an entry to a list: a value, or a session's value of the list's entry type.
#[utoipa::path(post, path = "/v3/lists/{list_uuid}/entries/", tag = "lists",
    params(("list_uuid" = Uuid, Path, description = "The list.")),
    request_body = CreateEntryBody,
    responses(
        (status = 201, description = "The entry.", body = wire::ListEntry),
        (status = 400, description = "No value of the list's type, or one it holds already.", body = wire::ErrorBody),
        (status = 404, description = "No such list or session.", body = wire::ErrorBody),
    ))]
pub(crate) async fn create_entry(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(body): JsonBody<CreateEntryBody>,
) -> Result<HttpResponse, ApiError> {
    let id = list_id(&path)?;
    let add = AddEntry {
        value: body.value,
        reference_session_id: body.reference_session_id.map(SessionId::from_uuid),
        display_label: body.display_label,
        comment: body.comment,
    };
    let entry = state.services.lists.add_entry(&caller, id, add).await?;
    Ok(HttpResponse::Created().json(wire::ListEntry::from(&entry)))
}

/// Remove an entry from a list.
#[utoipa::path(delete, path = "/v3/lists/{list_uuid}/entries/{entry_uuid}/", tag = "lists",
    params(
        ("list_uuid" = Uuid, Path, description = "The list."),
        ("entry_uuid" = Uuid, Path, description = "The entry."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "No such list or entry.", body = wire::ErrorBody),
    ))]
pub(crate) async fn delete_entry(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (list, entry) = path.into_inner();
    let entry = entry.parse().map_err(|_| ApiError::from(Error::EntryNotFound))?;
    state.services.lists.delete_entry(&caller, list_id(&list)?, entry).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn flags(body: &BlocklistBody) -> BlocklistFlags {
    BlocklistFlags {
        face: body.blocklist_face.unwrap_or(false),
        document: body.blocklist_document.unwrap_or(false),
        phone: body.blocklist_phone.unwrap_or(false),
        email: body.blocklist_email.unwrap_or(false),
    }
}

fn session_of(body: &BlocklistBody) -> Result<SessionId, ApiError> {
    body.session_id
        .map(SessionId::from_uuid)
        .ok_or_else(|| ApiError::invalid_field("session_id", "is required."))
}

/// Add a session's flagged values (its most recent of each) to the system blocklists.
#[utoipa::path(post, path = "/v3/blocklist/add/", tag = "lists", request_body = BlocklistBody,
    responses(
        (status = 200, description = "What was blocklisted.", body = wire::BlocklistAnswer),
        (status = 400, description = "No flag set.", body = wire::ErrorBody),
        (status = 404, description = "No such session.", body = wire::ErrorBody),
    ))]
pub(crate) async fn blocklist_add(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(body): JsonBody<BlocklistBody>,
) -> Result<HttpResponse, ApiError> {
    let session = session_of(&body)?;
    let added = state.services.lists.blocklist_session(&caller, session, flags(&body)).await?;
    Ok(HttpResponse::Ok().json(answer("Blocklisted.", session, &added)))
}

/// Remove a session's flagged values from the system blocklists.
#[utoipa::path(post, path = "/v3/blocklist/remove/", tag = "lists", request_body = BlocklistBody,
    responses(
        (status = 200, description = "What was removed.", body = wire::BlocklistAnswer),
        (status = 400, description = "No flag set.", body = wire::ErrorBody),
        (status = 404, description = "No such session.", body = wire::ErrorBody),
    ))]
pub(crate) async fn blocklist_remove(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(body): JsonBody<BlocklistBody>,
) -> Result<HttpResponse, ApiError> {
    let session = session_of(&body)?;
    let removed = state.services.lists.unblocklist_session(&caller, session, flags(&body)).await?;
    Ok(HttpResponse::Ok().json(answer("Removed from the blocklist.", session, &removed)))
}

fn answer(message: &str, session: SessionId, types: &[EntryType]) -> wire::BlocklistAnswer {
    wire::BlocklistAnswer {
        message: message.to_owned(),
        session_id: session.as_uuid(),
        entry_types: types.iter().map(|t| t.as_str().to_owned()).collect(),
    }
}
