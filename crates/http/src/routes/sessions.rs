//! Sessions: create, record results, the V3 and V2 decisions, reviews, delete and list.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use handoff_domain::json::RawObject;
use handoff_domain::services::CreateSession;
use handoff_domain::session::{CallbackUrl, RecordResults, ReviewComment, ReviewDecision};
use handoff_domain::session_options::{
    CallbackMethod, LANGUAGES, PORTRAIT_IMAGE_MAX_BYTES, SessionOptions,
};
use handoff_domain::{
    FeatureBlock, FeatureItem, ReviewStatus, SessionId, SessionStatus, StoredSession,
    ValidationErrors, VendorData, WorkflowId,
};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::auth::Authenticated;
use crate::body::{BodyLimit, JsonBody, RequestBody};
use crate::decision::{self, Form};
use crate::idempotency::{self, Answer, IdempotencyHeader, IdempotencyRefusals};
use crate::{ApiError, AppState, wire};
use utoipa::{IntoParams, ToSchema};

pub(crate) fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    raw.parse().map_err(|_| ApiError::session_not_found())
}

/// Parses an optional member with the domain's `parse`, its refusal filed under `field`.
pub(crate) fn optional_field<T>(
    field: &str, raw: Option<String>, parse: impl FnOnce(String) -> Result<T, &'static str>,
    errors: &mut ValidationErrors,
) -> Option<T> {
    match raw.map(parse) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(message)) => {
            errors.add(field, message);
            None
        }
    }
}

/// Parses a required member with `parse`: its absence, or `refused` when `parse` refuses it,
/// filed under `field`.
pub(crate) fn required_field<T>(
    field: &str, raw: Option<String>, parse: impl FnOnce(&str) -> Option<T>, refused: &'static str,
    errors: &mut ValidationErrors,
) -> Option<T> {
    match raw.as_deref().map(parse) {
        Some(Some(value)) => Some(value),
        Some(None) => {
            errors.add(field, refused);
            None
        }
        None => {
            errors.add(field, "This field is required.");
            None
        }
    }
}

/// Parses an optional `vendor_data` member into `errors`.
pub(crate) fn vendor_data_field(
    raw: Option<String>, errors: &mut ValidationErrors,
) -> Option<VendorData> {
    optional_field("vendor_data", raw, |v| VendorData::parse(&v), errors)
}

/// The largest `metadata`, `contact_details` or `expected_details` object, serialized.
const OBJECT_FIELD_MAX_BYTES: usize = 64 * 1024;

fn object_field(name: &str, value: Option<Value>, errors: &mut ValidationErrors) -> Option<Value> {
    match value {
        None | Some(Value::Null) => None,
        Some(object @ Value::Object(_)) if object.to_string().len() > OBJECT_FIELD_MAX_BYTES => {
            errors.add(name, "is larger than 65536 bytes once serialized.");
            None
        }
        Some(object @ Value::Object(_)) => Some(object),
        Some(_) => {
            errors.add(name, "must be a JSON object.");
            None
        }
    }
}

/// A session to create.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateSessionBody {
    /// The caller's workflow.
    #[schema(required = true)]
    workflow_id: Option<uuid::Uuid>,
    /// The caller's reference for the person or company: 1 to 1,024 characters, no control or invisible formatting characters.
    vendor_data: Option<String>,
    /// Where to send the user when done: an http(s) URL.
    callback: Option<String>,
    /// Free JSON object.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// Contact details (object).
    #[schema(value_type = Option<Object>)]
    contact_details: Option<Value>,
    /// Details the documents should show (object).
    #[schema(value_type = Option<Object>)]
    expected_details: Option<Value>,
    /// Which device the callback applies to when the verification moves between devices.
    #[schema(value_type = Option<wire::CallbackMethod>)]
    callback_method: Option<String>,
    /// The verification pages' language, one of Didit's codes.
    language: Option<String>,
    /// A reference portrait for face matching: standard base64, at most 1 MiB decoded.
    portrait_image: Option<String>,
}

impl RequestBody for CreateSessionBody {
    const LIMIT: BodyLimit = BodyLimit::Session;
}

/// Didit's `callback_method`, `language` and `portrait_image`, each checked into `errors`.
fn session_options(
    callback_method: Option<String>, language: Option<String>, portrait_image: Option<String>,
    errors: &mut ValidationErrors,
) -> SessionOptions {
    use base64::Engine;
    use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
    // Padded standard base64, as the OpenAPI document's pattern says; unused trailing bits allowed.
    const BASE64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let callback_method = optional_field(
        "callback_method",
        callback_method,
        |raw| CallbackMethod::parse(&raw).ok_or("must be initiator, completer or both."),
        errors,
    );
    let language = optional_field(
        "language",
        language,
        |raw| {
            if LANGUAGES.contains(&raw.as_str()) {
                Ok(raw)
            } else {
                Err("is not a language the verification pages offer (see docs/api.md).")
            }
        },
        errors,
    );
    let portrait_image = optional_field(
        "portrait_image",
        portrait_image,
        |raw| match BASE64.decode(&raw) {
            Err(_) => Err("must be standard base64."),
            Ok(bytes) if bytes.is_empty() => Err("must not be empty."),
            Ok(bytes) if bytes.len() > PORTRAIT_IMAGE_MAX_BYTES => {
                Err("is larger than 1 MiB once decoded.")
            }
            Ok(_) => Ok(raw),
        },
        errors,
    );
    SessionOptions { callback_method, language, portrait_image }
}

impl CreateSessionBody {
    fn into_domain(self) -> Result<CreateSession, ApiError> {
        let mut errors = ValidationErrors::default();
        if self.workflow_id.is_none() {
            errors.add("workflow_id", "This field is required.");
        }
        let vendor_data = vendor_data_field(self.vendor_data, &mut errors);
        let callback = optional_field("callback", self.callback, CallbackUrl::parse, &mut errors);
        let metadata = object_field("metadata", self.metadata, &mut errors);
        let contact_details = object_field("contact_details", self.contact_details, &mut errors);
        let expected_details = object_field("expected_details", self.expected_details, &mut errors);
        let options =
            session_options(self.callback_method, self.language, self.portrait_image, &mut errors);
        errors.into_result().map_err(ApiError::invalid)?;
        Ok(CreateSession {
            workflow_id: WorkflowId::from_uuid(self.workflow_id.unwrap_or_default()),
            vendor_data,
            callback,
            options,
            metadata,
            contact_details,
            expected_details,
        })
    }
}

/// Create a session. With an `Idempotency-Key` header (extension), a retry within 24 hours
/// gets the first answer again instead of a second session.
#[utoipa::path(post, path = "/v3/session/", tag = "sessions", request_body = CreateSessionBody,
    params(IdempotencyHeader),
    responses((status = 201, description = "The new session.", body = wire::SessionCreated), IdempotencyRefusals))]
pub(crate) async fn create(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    JsonBody(body): JsonBody<CreateSessionBody>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_domain()?;
    let (state, caller) = (&state, &caller);
    idempotency::run(
        &req,
        state,
        caller,
        |claim| async move {
            let (session, version) =
                state.services.sessions.create_guarded(caller, request, claim).await?;
            Answer::json(StatusCode::CREATED, &created(&session, Some(version)))
        },
        |stored| async move {
            let id = session_id(&stored.resource_id)?;
            let record = state.services.sessions.decision(caller, id).await?;
            // The workflow as it is now; `null` once it was deleted.
            let version =
                match state.services.workflows.get(caller, record.session.workflow_id).await {
                    Ok(workflow) => Some(workflow.version),
                    Err(handoff_domain::services::Error::WorkflowNotFound) => None,
                    Err(error) => return Err(error.into()),
                };
            Answer::json(StatusCode::CREATED, &created(&record.session, version))
        },
    )
    .await
}

/// The answer of session creation.
fn created(session: &StoredSession, workflow_version: Option<i64>) -> wire::SessionCreated {
    let session = session.clone();
    wire::SessionCreated {
        workflow_version,
        session_id: session.id.as_uuid(),
        session_number: session.session_number,
        session_token: session.session_token,
        url: session.session_url,
        vendor_data: session.vendor_data.map(|v| v.as_str().to_owned()),
        metadata: session.metadata,
        status: session.status.as_str().to_owned(),
        workflow_id: session.workflow_id.as_uuid(),
        callback: session.callback,
        session_kind: session.kind.as_str().to_owned(),
    }
}

/// The body of `PUT /v3/session/{id}/decision/`: `status` and blocks, read member by member so
/// that items keep their exact text.
pub(crate) struct RecordResultsBody(RawObject);

impl<'de> Deserialize<'de> for RecordResultsBody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawObject::deserialize(deserializer).map(RecordResultsBody)
    }
}

impl RequestBody for RecordResultsBody {
    const LIMIT: BodyLimit = BodyLimit::Results;
}

impl RecordResultsBody {
    fn into_domain(self) -> Result<RecordResults, ApiError> {
        let mut errors = ValidationErrors::default();
        let mut results = RecordResults::default();
        if let Some(key) = self.0.duplicate_key() {
            errors.add(key, "appears more than once.");
        }
        for (key, raw) in self.0.0 {
            if key == "status" {
                match serde_json::from_str::<String>(raw.get())
                    .ok()
                    .and_then(|s| SessionStatus::parse(&s))
                {
                    Some(status) => results.status = Some(status),
                    None => errors.add(
                        "status",
                        "must be one of the session statuses, e.g. \"Approved\" or \"In Review\".",
                    ),
                }
            } else if let Some(block) = FeatureBlock::from_v3_key(&key) {
                match parse_block(&key, &raw, &mut errors) {
                    Some(items) => results.blocks.push((block, items)),
                    None => continue,
                }
            } else {
                errors.add(key, "is not a field of recorded results.");
            }
        }
        errors.into_result().map_err(ApiError::invalid)?;
        Ok(results)
    }
}

/// `Some(None)` for null, `Some(Some(items))` for a valid array, `None` after adding errors.
fn parse_block(
    key: &str, raw: &RawValue, errors: &mut ValidationErrors,
) -> Option<Option<Vec<FeatureItem>>> {
    if raw.get() == "null" {
        return Some(None);
    }
    let Ok(raw_items) = serde_json::from_str::<Vec<Box<RawValue>>>(raw.get()) else {
        errors.add(key, "must be an array of items, or null.");
        return None;
    };
    let mut items = Vec::with_capacity(raw_items.len());
    let mut valid = true;
    for (i, raw_item) in raw_items.into_iter().enumerate() {
        match FeatureItem::parse(&raw_item) {
            Ok(item) => items.push(item),
            Err(error) => {
                errors.add(format!("{key}[{i}]"), error.to_string());
                valid = false;
            }
        }
    }
    valid.then_some(Some(items))
}

/// Record the verification engine's results (extension): replaces the blocks named.
#[utoipa::path(put, path = "/v3/session/{session_id}/decision/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    request_body = wire::RecordResults,
    responses((status = 200, description = "The V3 decision payload.", body = wire::DecisionV3)))]
pub(crate) async fn record_results(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(body): JsonBody<RecordResultsBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    // Thousands of items to check: on the blocking pool, not the worker.
    let results =
        web::block(move || body.into_domain()).await.map_err(|_| ApiError::internal())??;
    let record = state.services.sessions.record_results(&caller, id, results).await?;
    Ok(decision::answer(record, Form::V3))
}

/// The query of the V3 decision.
#[derive(Deserialize, IntoParams)]
pub(crate) struct DecisionQuery {
    /// `events` (extension): add the session's `events` — what happened to it besides reviews,
    /// such as `shared` and `imported_by` on a source, `imported` on a clone.
    include: Option<String>,
}

/// The V3 decision payload, for both kinds.
#[utoipa::path(get, path = "/v3/session/{session_id}/decision/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session."), DecisionQuery),
    responses((status = 200, description = "The V3 decision payload (with `events` when asked).", body = wire::DecisionV3)))]
pub(crate) async fn decision_v3(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    query: web::Query<DecisionQuery>,
) -> Result<HttpResponse, ApiError> {
    let with_events = match query.include.as_deref() {
        None => false,
        Some("events") => true,
        Some(_) => {
            return Err(ApiError::invalid_field("include", "The only value accepted is events."));
        }
    };
    let id = session_id(&path)?;
    let record = state.services.sessions.decision(&caller, id).await?;
    if !with_events {
        return Ok(decision::answer(record, Form::V3));
    }
    let events: Vec<wire::SessionEvent> = state
        .services
        .sessions
        .events(&caller, id)
        .await?
        .iter()
        .map(wire::SessionEvent::from)
        .collect();
    Ok(decision::answer(record, Form::V3WithEvents(events)))
}

/// The V2 decision payload, user sessions only.
#[utoipa::path(get, path = "/v2/session/{session_id}/decision/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    responses((status = 200, description = "The V2 decision payload.", body = wire::DecisionV2)))]
pub(crate) async fn decision_v2(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = state.services.sessions.decision_v2(&caller, session_id(&path)?).await?;
    Ok(decision::answer(record, Form::V2))
}

/// A review.
#[derive(Deserialize, ToSchema)]
pub(crate) struct UpdateStatusBody {
    /// `Approved`, `Declined` or `Resubmitted`.
    #[schema(required = true)]
    new_status: Option<String>,
    /// At most 10,000 characters.
    comment: Option<String>,
    /// With `Resubmitted`: the steps to send back, by their items' `node_id`, each as
    /// `{"node_id", "feature"}` or the bare `node_id`; at most 50. Their results are removed.
    #[schema(value_type = Option<Vec<wire::NodeToResubmit>>, max_items = 50)]
    nodes_to_resubmit: Option<Value>,
}

/// The `node_id`s `nodes_to_resubmit` names, in Didit's two shapes (a bare `node_id`, or
/// `{"node_id", "feature"}`); empty when absent. The count and each id's length are the
/// domain's to check ([`NodesToResubmit`](handoff_domain::session::NodesToResubmit)).
fn named_nodes(raw: Option<Value>, errors: &mut ValidationErrors) -> Vec<String> {
    const FIELD: &str = "nodes_to_resubmit";
    let items = match raw {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.add(FIELD, "must be an array.");
            return Vec::new();
        }
    };
    let mut nodes = Vec::with_capacity(items.len());
    for item in items {
        let node = match &item {
            Value::String(node) => Some(node.clone()),
            Value::Object(object)
                if object.keys().all(|k| k == "node_id" || k == "feature")
                    && object.get("feature").is_none_or(Value::is_string) =>
            {
                object.get("node_id").and_then(Value::as_str).map(str::to_owned)
            }
            _ => None,
        };
        match node {
            Some(node) => nodes.push(node),
            None => errors.add(
                FIELD,
                "each step is a node_id (1 to 100 characters) or {\"node_id\", \"feature\"}.",
            ),
        }
    }
    nodes
}

impl RequestBody for UpdateStatusBody {}

/// Review a session: set `Approved`, `Declined` or `Resubmitted`.
#[utoipa::path(patch, path = "/v3/session/{session_id}/update-status/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    request_body = UpdateStatusBody,
    responses((status = 200, description = "Reviewed.", body = wire::Reviewed)))]
pub(crate) async fn update_status(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateStatusBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let mut errors = ValidationErrors::default();
    let new_status = required_field(
        "new_status",
        body.new_status,
        ReviewStatus::parse,
        "must be \"Approved\", \"Declined\" or \"Resubmitted\".",
        &mut errors,
    );
    let comment = optional_field("comment", body.comment, ReviewComment::parse, &mut errors);
    let nodes = named_nodes(body.nodes_to_resubmit, &mut errors);
    let decision = new_status.and_then(|status| {
        ReviewDecision::parse(status, nodes)
            .map_err(|reason| errors.add("nodes_to_resubmit", reason))
            .ok()
    });
    errors.into_result().map_err(ApiError::invalid)?;
    let Some(decision) = decision else {
        return Err(ApiError::invalid_field("new_status", "This field is required."));
    };
    state.services.sessions.decide(&caller, id, decision, comment).await?;
    Ok(HttpResponse::Ok().json(wire::Reviewed { session_id: id.as_uuid() }))
}

/// Delete a session and every related row.
#[utoipa::path(delete, path = "/v3/session/{session_id}/delete/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    responses((status = 204, description = "Deleted.")))]
pub(crate) async fn delete(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.services.sessions.delete(&caller, session_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
