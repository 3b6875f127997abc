//! A reviewer's corrections of extracted data, Didit's `update-data` (the ID document's
//! fields, `id_verifications`) and `update-poa-data` (the proof of address's,
//! `poa_verifications`): the members given replace those of the block's first item; `null`
//! clears one.

use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use handoff_domain::{FeatureBlock, ValidationErrors};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::routes::sessions::session_id;
use crate::{ApiError, AppState, wire};

/// The longest corrected text member.
const TEXT_MAX: usize = 1000;

/// Didit's document types (`document_type` of `update-data`).
const DOCUMENT_TYPES: [&str; 12] = [
    "P", "DL", "ID", "RP", "SSC", "HIC", "WP", "TC", "VISA", "PSC", "BC", "OTHER",
];
const GENDERS: [&str; 3] = ["M", "F", "U"];
const MARITAL_STATUSES: [&str; 5] = ["SINGLE", "MARRIED", "DIVORCED", "WIDOWED", "UNKNOWN"];
const POA_DOCUMENT_TYPES: [&str; 5] = [
    "UTILITY_BILL",
    "BANK_STATEMENT",
    "GOVERNMENT_ISSUED_DOCUMENT",
    "OTHER_POA_DOCUMENT",
    "UNKNOWN",
];

/// What a member may hold.
enum Rule {
    Text,
    Date,
    Country,
    OneOf(&'static [&'static str]),
    Object,
}

fn check(name: &str, value: &Value, rule: &Rule, errors: &mut ValidationErrors) {
    let text = value.as_str();
    let refused = match (rule, text) {
        // `null` clears the member.
        _ if value.is_null() => None,
        (Rule::Object, _) => (!value.is_object()).then_some("must be a JSON object."),
        (_, None) => Some("must be a string."),
        (Rule::Text, Some(t)) => {
            (t.chars().count() > TEXT_MAX).then_some("must be at most 1,000 characters.")
        }
        (Rule::Date, Some(t)) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .is_err()
            .then_some("must be a date, YYYY-MM-DD."),
        (Rule::Country, Some(t)) => (t.len() != 3 || !t.bytes().all(|b| b.is_ascii_uppercase()))
            .then_some("must be an ISO 3166-1 alpha-3 code (ESP)."),
        (Rule::OneOf(allowed), Some(t)) => {
            (!allowed.contains(&t)).then_some("is not one of the values the document lists.")
        }
    };
    if let Some(message) = refused {
        errors.add(name, message);
    }
}

/// The members given, checked against `rules`; a 400 naming each refused one.
fn changes(
    body: Map<String, Value>,
    rules: &[(&str, Rule)],
) -> Result<Map<String, Value>, ApiError> {
    let mut errors = ValidationErrors::default();
    if body.is_empty() {
        errors.add("body", "Name at least one member to correct.");
    }
    for (name, value) in &body {
        match rules.iter().find(|(known, _)| known == name) {
            Some((_, rule)) => check(name, value, rule, &mut errors),
            None => errors.add(name.as_str(), "is not a member this correction takes."),
        }
    }
    errors.into_result().map_err(ApiError::invalid)?;
    Ok(body)
}

/// Corrections of the ID document's data; at least one member.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
#[expect(
    dead_code,
    reason = "a schema of the OpenAPI document only: never built or read"
)]
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
#[expect(
    dead_code,
    reason = "a schema of the OpenAPI document only: never built or read"
)]
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

const DATA_RULES: [(&str, Rule); 17] = [
    ("document_type", Rule::OneOf(&DOCUMENT_TYPES)),
    ("document_subtype", Rule::Text),
    ("document_number", Rule::Text),
    ("personal_number", Rule::Text),
    ("date_of_birth", Rule::Date),
    ("date_of_issue", Rule::Date),
    ("expiration_date", Rule::Date),
    ("issuing_state", Rule::Country),
    ("first_name", Rule::Text),
    ("last_name", Rule::Text),
    ("gender", Rule::OneOf(&GENDERS)),
    ("address", Rule::Text),
    ("place_of_birth", Rule::Text),
    ("nationality", Rule::Text),
    ("marital_status", Rule::OneOf(&MARITAL_STATUSES)),
    ("extra_fields", Rule::Object),
    ("parsed_address", Rule::Object),
];

const POA_RULES: [(&str, Rule); 9] = [
    ("issuing_state", Rule::Country),
    ("document_type", Rule::OneOf(&POA_DOCUMENT_TYPES)),
    ("document_language", Rule::Text),
    ("issuer", Rule::Text),
    ("issue_date", Rule::Date),
    ("poa_address", Rule::Text),
    ("name_on_document", Rule::Text),
    ("extra_fields", Rule::Object),
    ("poa_parsed_address", Rule::Object),
];

async fn correct(
    caller: &handoff_domain::Caller,
    state: &AppState,
    path: &str,
    block: FeatureBlock,
    changes: Map<String, Value>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(path)?;
    let record = state
        .services
        .sessions
        .correct(caller, id, block, &changes)
        .await?;
    Ok(crate::decision::answer(record, crate::decision::Form::V3))
}

/// Correct the ID document's extracted data (the first `id_verifications` item); the session's
/// V3 decision as it then stands. Sends `data.updated`.
#[utoipa::path(patch, path = "/v3/session/{session_id}/update-data/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    request_body = DataCorrection,
    responses((status = 200, description = "Corrected.", body = wire::DecisionV3)))]
pub(crate) async fn update_data(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(Members(body)): JsonBody<Members>,
) -> Result<HttpResponse, ApiError> {
    let changes = changes(body, &DATA_RULES)?;
    correct(
        &caller,
        &state,
        &path,
        FeatureBlock::IdVerifications,
        changes,
    )
    .await
}

/// Correct the proof of address's extracted data (the first `poa_verifications` item); the
/// session's V3 decision as it then stands. Sends `data.updated`.
#[utoipa::path(patch, path = "/v3/session/{session_id}/update-poa-data/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    request_body = PoaCorrection,
    responses((status = 200, description = "Corrected.", body = wire::DecisionV3)))]
pub(crate) async fn update_poa_data(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(Members(body)): JsonBody<Members>,
) -> Result<HttpResponse, ApiError> {
    let changes = changes(body, &POA_RULES)?;
    correct(
        &caller,
        &state,
        &path,
        FeatureBlock::PoaVerifications,
        changes,
    )
    .await
}
