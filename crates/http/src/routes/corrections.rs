//! The routes of a reviewer's corrections of extracted data, Didit's `update-data` and
//! `update-poa-data`; what each takes is the domain's `correction` module. The members given
//! replace those of the block's first item; `null` clears one.

use actix_web::{HttpResponse, web};
use handoff_domain::ValidationErrors;
use handoff_domain::correction::Correction;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::routes::sessions::session_id;
use crate::{ApiError, AppState, wire};

/// Corrections of the ID document's data; at least one member.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
#[expect(dead_code, reason = "a schema of the OpenAPI document only: never built or read")]
pub(crate) struct DataCorrection {
    #[schema(value_type = Option<wire::DocumentType>)]
    document_type: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    document_subtype: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    document_number: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    personal_number: Option<Value>,
    #[schema(value_type = Option<String>, format = Date)]
    date_of_birth: Option<Value>,
    #[schema(value_type = Option<String>, format = Date)]
    date_of_issue: Option<Value>,
    #[schema(value_type = Option<String>, format = Date)]
    expiration_date: Option<Value>,
    /// ISO 3166-1 alpha-3.
    #[schema(value_type = Option<String>, pattern = "^[A-Z]{3}$")]
    issuing_state: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    first_name: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    last_name: Option<Value>,
    #[schema(value_type = Option<wire::Gender>)]
    gender: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    address: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    place_of_birth: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    nationality: Option<Value>,
    #[schema(value_type = Option<wire::MaritalStatus>)]
    marital_status: Option<Value>,
    #[schema(value_type = Option<Object>)]
    extra_fields: Option<Value>,
    #[schema(value_type = Option<Object>)]
    parsed_address: Option<Value>,
}

/// Corrections of the proof of address's data; at least one member.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
#[expect(dead_code, reason = "a schema of the OpenAPI document only: never built or read")]
pub(crate) struct PoaCorrection {
    /// ISO 3166-1 alpha-3.
    #[schema(value_type = Option<String>, pattern = "^[A-Z]{3}$")]
    issuing_state: Option<Value>,
    #[schema(value_type = Option<wire::PoaDocumentType>)]
    document_type: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    document_language: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    issuer: Option<Value>,
    #[schema(value_type = Option<String>, format = Date)]
    issue_date: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    poa_address: Option<Value>,
    #[schema(value_type = Option<String>, max_length = 1000)]
    name_on_document: Option<Value>,
    #[schema(value_type = Option<Object>)]
    extra_fields: Option<Value>,
    #[schema(value_type = Option<Object>)]
    poa_parsed_address: Option<Value>,
}

/// A correction body as given: its members, each checked by the route's rules.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct Members(Map<String, Value>);

impl RequestBody for Members {}

async fn correct(
    caller: &handoff_domain::Caller, state: &AppState, path: &str,
    correction: Result<Correction, ValidationErrors>,
) -> Result<HttpResponse, ApiError> {
    let correction = correction.map_err(ApiError::invalid)?;
    let id = session_id(path)?;
    let record = state.services.sessions.correct(caller, id, &correction).await?;
    Ok(crate::decision::answer(record, crate::decision::Form::V3))
}

/// Correct the ID document's extracted data (the first `id_verifications` item); the session's
/// V3 decision as it then stands. Sends `data.updated`.
#[utoipa::path(patch, path = "/v3/session/{session_id}/update-data/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    request_body = DataCorrection,
    responses((status = 200, description = "Corrected.", body = wire::DecisionV3)))]
pub(crate) async fn update_data(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(Members(body)): JsonBody<Members>,
) -> Result<HttpResponse, ApiError> {
    correct(&caller, &state, &path, Correction::of_id_document(body)).await
}

/// Correct the proof of address's extracted data (the first `poa_verifications` item); the
/// session's V3 decision as it then stands. Sends `data.updated`.
#[utoipa::path(patch, path = "/v3/session/{session_id}/update-poa-data/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    request_body = PoaCorrection,
    responses((status = 200, description = "Corrected.", body = wire::DecisionV3)))]
pub(crate) async fn update_poa_data(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(Members(body)): JsonBody<Members>,
) -> Result<HttpResponse, ApiError> {
    correct(&caller, &state, &path, Correction::of_proof_of_address(body)).await
}
