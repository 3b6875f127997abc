//! `POST /v3/session/{id}/share/` and `POST /v3/session/import-shared/`.

use actix_web::{HttpResponse, web};
use handoff_domain::services::{ImportRequest, ShareRequest};
use handoff_domain::{ApplicationId, SessionKind, ShareToken, ValidationErrors, WorkflowId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::decision::{V2Decision, V3Decision};
use crate::routes::sessions::{session_id, vendor_data_field};
use crate::{ApiError, AppState};

/// The longest `share_token` read; longer is refused with the body, before any verification.
pub const MAX_SHARE_TOKEN_CHARS: usize = 4096;

#[derive(Deserialize)]
pub(crate) struct ShareBody {
    for_application_id: Option<uuid::Uuid>,
    ttl_in_seconds: Option<Value>,
}

impl RequestBody for ShareBody {}

impl ShareBody {
    fn into_domain(self) -> Result<ShareRequest, ApiError> {
        let mut errors = ValidationErrors::default();
        if self.for_application_id.is_none() {
            errors.add("for_application_id", "This field is required.");
        }
        // An integer, or a string of digits, as Didit accepts.
        let ttl = match self.ttl_in_seconds {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_i64().or(Some(-1)),
            Some(Value::String(s))
                if !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()) =>
            {
                s.parse().ok()
            }
            Some(_) => Some(-1),
        };
        if ttl.is_some_and(|t| !(60..=86_400).contains(&t)) {
            errors.add("ttl_in_seconds", "must be an integer from 60 to 86400.");
        }
        errors.into_result().map_err(ApiError::invalid)?;
        Ok(ShareRequest {
            for_application_id: ApplicationId::from_uuid(
                self.for_application_id.unwrap_or_default(),
            ),
            ttl_in_seconds: ttl,
        })
    }
}

pub(crate) async fn share(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<ShareBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let shared = state
        .services
        .share
        .share(&caller, id, body.into_domain()?)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "share_token": shared.share_token.expose(),
        "for_application_id": shared.for_application_id.to_string(),
        "session_kind": shared.session_kind.as_str(),
    })))
}

#[derive(Deserialize)]
pub(crate) struct ImportBody {
    share_token: Option<String>,
    workflow_id: Option<uuid::Uuid>,
    trust_review: Option<bool>,
    vendor_data: Option<String>,
}

impl RequestBody for ImportBody {}

impl ImportBody {
    fn into_domain(self) -> Result<ImportRequest, ApiError> {
        let mut errors = ValidationErrors::default();
        match &self.share_token {
            None => errors.add("share_token", "This field is required."),
            Some(token) if token.is_empty() => errors.add("share_token", "must not be empty."),
            Some(token) if token.chars().count() > MAX_SHARE_TOKEN_CHARS => {
                errors.add("share_token", "must be at most 4096 characters.")
            }
            Some(_) => {}
        }
        if self.workflow_id.is_none() {
            errors.add("workflow_id", "This field is required.");
        }
        let vendor_data = vendor_data_field(self.vendor_data, &mut errors);
        errors.into_result().map_err(ApiError::invalid)?;
        Ok(ImportRequest {
            share_token: ShareToken::new(self.share_token.unwrap_or_default()),
            workflow_id: WorkflowId::from_uuid(self.workflow_id.unwrap_or_default()),
            trust_review: self.trust_review.unwrap_or(false),
            vendor_data,
        })
    }
}

pub(crate) async fn import_shared(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let clone_id = state
        .services
        .import
        .import(&caller, body.into_domain()?)
        .await?;
    let record = state.services.sessions.decision(&caller, clone_id).await?;
    Ok(match record.session.kind {
        SessionKind::User => HttpResponse::Created().json(V2Decision(&record)),
        SessionKind::Business => HttpResponse::Created().json(V3Decision(&record)),
    })
}
