//! `POST /v3/session/{id}/share/`, `POST /v3/session/import-shared/`, their extensions (the
//! ledger, revocation, preview) and the public keys at `GET /.well-known/jwks.json`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use handoff_domain::services::{EntityEffect, ImportRequest, ShareRequest, SharedSession};
use handoff_domain::share::{MaxSourceAge, ShareTtl};
use handoff_domain::{
    ApplicationId, FeatureBlock, SessionKind, SessionRecord, ShareToken, ValidationErrors,
    WorkflowId,
};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::decision::{V2Decision, V3Decision};
use crate::idempotency::{self, Answer, IdempotencyHeader, IdempotencyRefusals};

use crate::routes::sessions::{optional_field, session_id, vendor_data_field};
use crate::{ApiError, AppState, wire};
use utoipa::ToSchema;

/// A share.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ShareBody {
    /// The only application that may import the session (required, or `partner_client_id`).
    for_application_id: Option<uuid::Uuid>,
    /// Another name for `for_application_id`, as Didit's MCP server sends it; when both are
    /// given they must be equal.
    partner_client_id: Option<uuid::Uuid>,
    /// The token's lifetime, 60 to 86,400 seconds (default 3,600): an integer or a string of digits.
    #[schema(value_type = Option<u32>)]
    ttl_in_seconds: Option<Value>,
    /// The blocks the share carries, by their decision-payload names (`aml_screenings`, …), of
    /// the session's kind (an extension); absent: every block.
    #[schema(min_items = 1)]
    blocks: Option<Vec<String>>,
    /// The person's consent to the share (an extension): required when the application
    /// requires it.
    consent: Option<ConsentBody>,
}

/// A person's consent to a share, as the sharer keeps it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentBody {
    /// The sharer's id for its consent record, 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256)]
    reference: String,
    /// When the person gave it (RFC 3339), not in the future.
    #[schema(format = DateTime)]
    given_at: String,
    /// The SHA-256 of the wording the person agreed to, 64 hexadecimal digits.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    text_sha256: String,
}

impl RequestBody for ShareBody {}

impl ShareBody {
    fn into_domain(self) -> Result<ShareRequest, ApiError> {
        let mut errors = ValidationErrors::default();
        let for_application_id = match (self.for_application_id, self.partner_client_id) {
            (Some(id), Some(other)) if id != other => {
                errors
                    .add("partner_client_id", "must equal for_application_id when both are given.");
                None
            }
            (Some(id), _) | (None, Some(id)) => Some(id),
            (None, None) => {
                errors.add("for_application_id", "This field is required.");
                None
            }
        };
        // An integer, or a string of digits, as Didit accepts.
        let ttl = match self.ttl_in_seconds {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => crate::body::whole(&n).or(Some(-1)),
            Some(Value::String(s))
                if !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()) =>
            {
                s.parse().ok()
            }
            Some(_) => Some(-1),
        };
        let ttl = match ttl.map(ShareTtl::parse) {
            None => ShareTtl::DEFAULT,
            Some(Ok(ttl)) => ttl,
            Some(Err(message)) => {
                errors.add("ttl_in_seconds", message);
                ShareTtl::DEFAULT
            }
        };
        let blocks = match self.blocks {
            None => None,
            Some(names) if names.is_empty() => {
                errors.add("blocks", "must name at least one block.");
                None
            }
            Some(names) => {
                let unknown: Vec<&str> = names
                    .iter()
                    .filter(|name| FeatureBlock::from_v3_key(name).is_none())
                    .map(String::as_str)
                    .collect();
                if !unknown.is_empty() {
                    errors.add("blocks", format!("unknown blocks: {}.", unknown.join(", ")));
                }
                Some(names.iter().filter_map(|name| FeatureBlock::from_v3_key(name)).collect())
            }
        };
        let consent = self.consent.and_then(|consent| {
            let Ok(given_at) = chrono::DateTime::parse_from_rfc3339(&consent.given_at) else {
                errors.add("consent.given_at", "must be an RFC 3339 time.");
                return None;
            };
            let given_at = given_at.with_timezone(&chrono::Utc);
            handoff_domain::share::Consent::parse(
                consent.reference,
                given_at,
                &consent.text_sha256,
                chrono::Utc::now(),
            )
            .map_err(|invalid| errors.merge(invalid))
            .ok()
        });
        errors.into_result().map_err(ApiError::invalid)?;
        Ok(ShareRequest {
            for_application_id: ApplicationId::from_uuid(for_application_id.unwrap_or_default()),
            ttl,
            blocks,
            consent,
        })
    }
}

/// Share Session: a share token for one of the caller's finished sessions, for one other application.
#[utoipa::path(post, path = "/v3/session/{session_id}/share/", tag = "sharing",
    params(("session_id" = Uuid, Path, description = "The session."), IdempotencyHeader),
    request_body = ShareBody,
    responses((status = 200, description = "The share token.", body = wire::Shared), IdempotencyRefusals))]
pub(crate) async fn share(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    path: web::Path<String>, JsonBody(body): JsonBody<ShareBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let request = body.into_domain()?;
    let (state, caller) = (&state, &caller);
    idempotency::run(
        &req,
        state,
        caller,
        |claim| async move {
            let shared = state.services.share.share_guarded(caller, id, request, claim).await?;
            Answer::json(StatusCode::OK, &shared_answer(&shared))
        },
        |stored| async move {
            let jti = stored.resource_id.rsplit_once('/').map_or("", |(_, jti)| jti);
            let shared = state.services.share.reissue(caller, id, jti).await?;
            Answer::json(StatusCode::OK, &shared_answer(&shared))
        },
    )
    .await
}

fn shared_answer(shared: &SharedSession) -> wire::Shared {
    wire::Shared {
        share_token: shared.share_token.expose().to_owned(),
        for_application_id: shared.for_application_id.as_uuid(),
        session_kind: shared.session_kind.as_str().to_owned(),
    }
}

/// An import.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ImportBody {
    /// A token from Share Session (at most 4,096 characters).
    #[schema(required = true)]
    share_token: Option<String>,
    /// The caller's workflow, of the token's kind. Extension: absent, the caller's default
    /// workflow (`is_default`) of the token's kind; without one, 400 naming `workflow_id`.
    workflow_id: Option<uuid::Uuid>,
    /// `true`: keep the source's status; `false` (default): `In Review`.
    trust_review: Option<bool>,
    /// The clone's `vendor_data`; absent: the source's.
    vendor_data: Option<String>,
    /// Extension: refuse (400 `source_too_old`) a shared session created longer ago than this
    /// many seconds, 1 to 315,360,000 (ten years).
    #[schema(minimum = 1, maximum = 315_360_000)]
    #[serde(default, deserialize_with = "crate::body::whole_number")]
    max_source_age_seconds: Option<i64>,
}

impl RequestBody for ImportBody {}

impl ImportBody {
    fn into_domain(self) -> Result<ImportRequest, ApiError> {
        let mut errors = ValidationErrors::default();
        if self.share_token.is_none() {
            errors.add("share_token", "This field is required.");
        }
        let share_token =
            optional_field("share_token", self.share_token, ShareToken::parse, &mut errors);
        let vendor_data = vendor_data_field(self.vendor_data, &mut errors);
        let max_source_age_seconds = self.max_source_age_seconds.and_then(|seconds| {
            MaxSourceAge::parse(seconds)
                .map_err(|reason| errors.add("max_source_age_seconds", reason))
                .ok()
        });
        errors.into_result().map_err(ApiError::invalid)?;
        let Some(share_token) = share_token else {
            return Err(ApiError::invalid_field("share_token", "This field is required."));
        };
        Ok(ImportRequest {
            share_token,
            workflow_id: self.workflow_id.map(WorkflowId::from_uuid),
            trust_review: self.trust_review.unwrap_or(false),
            vendor_data,
            max_source_age_seconds,
        })
    }
}

/// Import Shared Session: clone the shared session into the caller's application.
#[utoipa::path(post, path = "/v3/session/import-shared/", tag = "sharing", request_body = ImportBody,
    params(IdempotencyHeader),
    responses((status = 201, description = "The clone: the V2 payload for a user session, the V3 payload for a business session.",
        body = wire::DecisionV3), IdempotencyRefusals))]
pub(crate) async fn import_shared(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_domain()?;
    let (state, caller) = (&state, &caller);
    idempotency::run(
        &req,
        state,
        caller,
        // The import answers with the clone as it wrote it: no read after the write.
        |claim| async move {
            let record = state.services.import.import_guarded(caller, request, claim).await?;
            clone_answer(&record)
        },
        |stored| async move {
            let id = session_id(&stored.resource_id)?;
            clone_answer(&state.services.sessions.decision(caller, id).await?)
        },
    )
    .await
}

/// The import's answer: the clone's V2 payload for a user session, V3 for a business one.
fn clone_answer(record: &SessionRecord) -> Result<Answer, ApiError> {
    match record.session.kind {
        SessionKind::User => Answer::json(StatusCode::CREATED, &V2Decision(record)),
        SessionKind::Business => Answer::json(StatusCode::CREATED, &V3Decision(record)),
    }
}

/// The share ledger of a session (extension): every token the caller issued for it, oldest
/// first, with where each stands.
#[utoipa::path(get, path = "/v3/session/{session_id}/shares/", tag = "sharing",
    params(("session_id" = Uuid, Path, description = "The session.")),
    responses((status = 200, description = "The session's share tokens.", body = [wire::ShareLedgerEntry])))]
pub(crate) async fn ledger(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let entries = state.services.share.ledger(&caller, session_id(&path)?).await?;
    Ok(HttpResponse::Ok()
        .json(entries.iter().map(wire::ShareLedgerEntry::from).collect::<Vec<_>>()))
}

/// Revoke one of the session's share tokens (extension); a token already redeemed stays
/// redeemed. No body.
#[utoipa::path(post, path = "/v3/session/{session_id}/shares/{jti}/revoke/", tag = "sharing",
    params(("session_id" = Uuid, Path, description = "The session."),
        ("jti" = String, Path, description = "The token's id.")),
    responses((status = 200, description = "The token as it stands now.", body = wire::ShareLedgerEntry)))]
pub(crate) async fn revoke(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (session, jti) = path.into_inner();
    let entry = state.services.share.revoke(&caller, session_id(&session)?, &jti).await?;
    Ok(HttpResponse::Ok().json(wire::ShareLedgerEntry::from(&entry)))
}

/// Preview an import (extension): every check of Import Shared Session, in its order, and
/// either the error the import would give or what it would create. Writes nothing, redeems
/// nothing, and counts against the read budget.
#[utoipa::path(post, path = "/v3/session/import-shared/preview/", tag = "sharing", request_body = ImportBody,
    responses((status = 200, description = "What the import would create.", body = wire::ImportPreview)))]
pub(crate) async fn preview(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let preview = state.services.import.preview(&caller, body.into_domain()?).await?;
    Ok(HttpResponse::Ok().json(wire::ImportPreview {
        session_kind: preview.session_kind.as_str().to_owned(),
        shared_from_session: preview.source_session.as_uuid(),
        source_status: preview.source_status.as_str().to_owned(),
        status: preview.status.as_str().to_owned(),
        vendor_data: preview.vendor_data.map(|v| v.as_str().to_owned()),
        entity: preview.entity.map(|effect| {
            match effect {
                EntityEffect::Created => "created",
                EntityEffect::Joined(_) => "joined",
            }
            .to_owned()
        }),
        entity_status: preview.entity.and_then(|effect| match effect {
            EntityEffect::Created => None,
            EntityEffect::Joined(status) => Some(status.as_str().to_owned()),
        }),
        blocks: preview.blocks.iter().map(|block| block.v3_key().to_owned()).collect(),
        withheld: preview.withheld.iter().map(|block| block.v3_key().to_owned()).collect(),
        blocklisted: preview.blocklisted.iter().map(|t| t.as_str().to_owned()).collect(),
    }))
}

/// The public keys of share tokens (extension), as a JWK Set: with `HANDOFF_TOKEN_ALG=EdDSA`,
/// a receiver verifies a token with them before presenting it. HS256 keys are secrets and never
/// listed, so the set is empty under HS256. No API key needed.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "sharing",
    responses((status = 200, description = "The JWK Set.", body = wire::Jwks)))]
pub(crate) async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=60"))
        .json(state.services.share.published_keys())
}
