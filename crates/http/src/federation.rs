//! The server-to-server exchange of sharing across deployments, `POST
//! /federation/v1/redemptions/`: the wire both sides speak, and the issuer's handler. The
//! receiver authenticates with a proof it signs (`Authorization: Bearer <proof>`); a request
//! that does not come from a partner is answered 401 `partner_unauthenticated` before anything
//! else is read. The answer is gzip-compressed JSON. `docs/federation.md`.

use std::io::{Read, Write};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use handoff_domain::action::LogAction;
use handoff_domain::federation::{PartnerSession, Redemption};
use handoff_domain::ports::PartnerDirectory;
use handoff_domain::services::FederationService;
use handoff_domain::{
    ApplicationId, FeatureBlock, FeatureItem, LogEntry, LogKind, SessionId, SessionKind,
    SessionStatus, ShareToken, VendorData,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{ApiError, AppState};

/// The exchange's path on the issuer.
pub const REDEMPTIONS_PATH: &str = "/federation/v1/redemptions/";
/// The largest exchange request read, in bytes.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// The largest exchange answer a receiver reads, compressed and decompressed, in bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Answers from this size are compressed on the blocking pool.
const OFF_WORKER_BYTES: usize = 256 * 1024;

/// What the issuer's side of the exchange needs.
#[derive(Clone)]
pub struct Federation {
    /// The issuer's checks and the hand-over.
    pub service: FederationService,
    /// The partners' keys, to authenticate who asks.
    pub directory: Arc<dyn PartnerDirectory>,
}

/// The receiver's request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedemptionRequest {
    /// The share token its caller presented.
    pub share_token: String,
    /// The receiving application.
    pub application_id: Uuid,
    /// Redeem and hand the session over, or only answer the checks with the session's summary.
    pub redeem: bool,
    /// The oldest source creation time accepted.
    #[serde(default)]
    pub source_created_after: Option<DateTime<Utc>>,
}

/// A log row as it travels.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireLog {
    kind: String,
    action: String,
    old_status: Option<String>,
    new_status: Option<String>,
    comment: Option<String>,
    details: Option<Value>,
    created_at: DateTime<Utc>,
}

/// The session as the issuer hands it over.
#[derive(Debug, Serialize, Deserialize)]
pub struct HandedSession {
    session_id: Uuid,
    session_kind: String,
    status: String,
    vendor_data: Option<String>,
    features: Vec<String>,
    contact_details: Option<Value>,
    expected_details: Option<Value>,
    created_at: DateTime<Utc>,
    /// By block (its V3 key), the items as recorded.
    blocks: serde_json::Map<String, Value>,
    log: Vec<WireLog>,
}

impl HandedSession {
    /// The wire form of a session handed over.
    pub fn from_domain(session: &PartnerSession) -> Self {
        let blocks = session
            .blocks
            .iter()
            .map(|(block, items)| {
                let items: Vec<Value> = items
                    .iter()
                    .filter_map(|item| serde_json::from_str(item.json().get()).ok())
                    .collect();
                (block.v3_key().to_owned(), Value::from(items))
            })
            .collect();
        Self {
            session_id: session.id.as_uuid(),
            session_kind: session.kind.as_str().to_owned(),
            status: session.status.as_str().to_owned(),
            vendor_data: session.vendor_data.as_ref().map(|v| v.as_str().to_owned()),
            features: session.features.clone(),
            contact_details: session.contact_details.clone(),
            expected_details: session.expected_details.clone(),
            created_at: session.created_at,
            blocks,
            log: session
                .log
                .iter()
                .map(|entry| WireLog {
                    kind: entry.kind.as_str().to_owned(),
                    action: entry.action.as_str().to_owned(),
                    old_status: entry.old_status.map(|s| s.as_str().to_owned()),
                    new_status: entry.new_status.map(|s| s.as_str().to_owned()),
                    comment: entry.comment.clone(),
                    details: entry.details.clone(),
                    created_at: entry.created_at,
                })
                .collect(),
        }
    }

    /// The session a partner handed over, every field read as the contract reads it; what is
    /// wrong with it otherwise.
    pub fn into_domain(self) -> Result<PartnerSession, String> {
        let status = |raw: &str| SessionStatus::parse(raw).ok_or_else(|| format!("status {raw:?}"));
        let kind = SessionKind::parse(&self.session_kind)
            .ok_or_else(|| format!("session_kind {:?}", self.session_kind))?;
        let mut blocks = Vec::new();
        for (key, items) in self.blocks {
            let block = FeatureBlock::from_v3_key(&key)
                .filter(|block| block.belongs_to(kind))
                .ok_or_else(|| format!("block {key:?}"))?;
            let Value::Array(items) = items else {
                return Err(format!("block {key:?} is not an array"));
            };
            let items = items
                .iter()
                .map(|item| {
                    let raw = RawValue::from_string(item.to_string()).map_err(|e| e.to_string())?;
                    FeatureItem::parse(&raw).map_err(|e| format!("an item of {key}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            blocks.push((block, items));
        }
        blocks.sort_by_key(|(block, _)| *block);
        let log = self
            .log
            .into_iter()
            .map(|entry| {
                Ok(LogEntry {
                    kind: LogKind::parse(&entry.kind)
                        .ok_or_else(|| format!("log kind {:?}", entry.kind))?,
                    action: LogAction::parse(&entry.action)
                        .filter(|action| action.copied_to_clones())
                        .ok_or_else(|| format!("log action {:?}", entry.action))?,
                    actor: String::new(),
                    old_status: entry.old_status.as_deref().map(status).transpose()?,
                    new_status: entry.new_status.as_deref().map(status).transpose()?,
                    comment: entry.comment,
                    details: entry.details,
                    created_at: entry.created_at,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(PartnerSession {
            id: SessionId::from_uuid(self.session_id),
            kind,
            status: status(&self.status)?,
            vendor_data: self
                .vendor_data
                .map(|v| VendorData::parse(&v).map_err(|e| format!("vendor_data: {e}")))
                .transpose()?,
            features: self.features,
            contact_details: self.contact_details,
            expected_details: self.expected_details,
            created_at: self.created_at,
            blocks,
            log,
        })
    }
}

/// The issuer's answer: the session (its summary when not redeeming).
#[derive(Debug, Serialize, Deserialize)]
pub struct RedemptionAnswer {
    /// The session.
    pub session: HandedSession,
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "partner_unauthenticated",
        "This request does not come from a partner deployment.",
    )
}

/// Gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// `bytes` gunzipped, at most [`MAX_ANSWER_BYTES`] of them.
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_ANSWER_BYTES).unwrap_or(u64::MAX);
    flate2::read::GzDecoder::new(bytes).take(limit + 1).read_to_end(&mut out)?;
    if out.len() > MAX_ANSWER_BYTES {
        return Err(std::io::Error::other("the answer is larger than allowed"));
    }
    Ok(out)
}

/// The request's body, at most [`MAX_REQUEST_BYTES`] of it (413 JSON beyond).
async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::invalid_field("body", "The body could not be read."))?;
        if body.len() + chunk.len() > MAX_REQUEST_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "The body is larger than this endpoint's limit of {MAX_REQUEST_BYTES} bytes."
                ),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `POST /federation/v1/redemptions/`: a partner redeems a token this deployment issued.
pub(crate) async fn redemptions(
    request: HttpRequest, payload: web::Payload, state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload).await?;
    let Some(federation) = &state.federation else {
        return Err(unauthenticated());
    };
    let proof = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(unauthenticated)?;
    let partner =
        federation.directory.authenticate(proof, &body).await.ok_or_else(unauthenticated)?;
    let asked: RedemptionRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid_field("body", format!("The redemption is not valid: {e}."))
    })?;
    let share_token = ShareToken::parse(asked.share_token)
        .map_err(|why| ApiError::invalid_field("share_token", why))?;
    let redemption = Redemption {
        share_token,
        application_id: ApplicationId::from_uuid(asked.application_id),
        redeem: asked.redeem,
        source_created_after: asked.source_created_after,
    };
    let session = federation.service.hand_over(&partner, redemption).await?;
    let answer = RedemptionAnswer { session: HandedSession::from_domain(&session) };
    let json = serde_json::to_vec(&answer).map_err(|_| ApiError::internal())?;
    // A large session is compressed off the async worker, which keeps answering meanwhile.
    let compressed = if json.len() < OFF_WORKER_BYTES {
        gzip(&json).map_err(|_| ApiError::internal())?
    } else {
        web::block(move || gzip(&json))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|_| ApiError::internal())?
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Content-Encoding", "gzip"))
        .body(compressed))
}
