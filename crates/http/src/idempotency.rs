//! `Idempotency-Key` on the guarded writes (session creation, share, import): a retry with the
//! same key and the same request gets the first answer again, byte for byte, instead of a
//! second write; the same key with another request is 422 `idempotency_key_reused`; a retry
//! that arrives while the first is still running waits for its answer, up to
//! [`WAIT_FOR_FIRST`], then gets 409 `idempotency_key_in_use`. The rules and the transaction
//! they rest on: [`handoff_domain::idempotency`].

use std::future::Future;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use handoff_domain::Caller;
use handoff_domain::idempotency::{
    IdempotencyClaim, IdempotencyKey, NextStep, RecordedAnswer, StoredIdempotency,
};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, IntoResponses};

use crate::{ApiError, AppState, wire};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";

/// How long a retry waits for the first request's answer.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

const POLL: Duration = Duration::from_millis(50);

/// The SHA-256 of a request body, kept by the JSON extractor when the request carries a key.
#[derive(Clone, Copy)]
pub(crate) struct BodyDigest(pub [u8; 32]);

/// Whether a request carries a key (its body's digest is then kept).
pub(crate) fn requested(req: &HttpRequest) -> bool {
    req.headers().contains_key(HEADER)
}

/// The `Idempotency-Key` header of the guarded writes (extension).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct IdempotencyHeader {
    /// 1 to 255 visible ASCII characters (a UUID, say). The same key and the same request
    /// within 24 hours get the first answer again (with `Idempotent-Replayed: true`); the same
    /// key with another request is 422 `idempotency_key_reused`; while the first is running,
    /// a retry waits up to 10 s, then 409 `idempotency_key_in_use`.
    #[param(rename = "Idempotency-Key")]
    #[expect(
        dead_code,
        reason = "the OpenAPI document names it; the header is read by the idempotency guard"
    )]
    idempotency_key: Option<String>,
}

/// The answers only a guarded write gives (extension).
#[derive(IntoResponses)]
#[expect(dead_code, reason = "the OpenAPI document names them; `reused` and `in_use` answer them")]
pub(crate) enum IdempotencyRefusals {
    /// A request with this Idempotency-Key is still running.
    #[response(
        status = 409,
        description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running."
    )]
    InUse(wire::ErrorBody),
    /// This Idempotency-Key was used with another request.
    #[response(
        status = 422,
        description = "`idempotency_key_reused`: this Idempotency-Key was used with another request."
    )]
    Reused(wire::ErrorBody),
}

/// A request's key and hash.
struct Guard {
    key: IdempotencyKey,
    request_hash: String,
}

/// The key of a request, if it has one: 400 when it is malformed.
fn guard(req: &HttpRequest) -> Result<Option<Guard>, ApiError> {
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .map_err(|_| "An Idempotency-Key must be visible ASCII characters, without spaces.")
        .and_then(IdempotencyKey::parse)
        .map_err(|message| ApiError::invalid_field(HEADER, message))?;
    let body = req.extensions().get::<BodyDigest>().map_or([0; 32], |digest| digest.0);
    let hash = Sha256::new()
        .chain_update(req.method().as_str())
        .chain_update(b" ")
        .chain_update(req.path())
        .chain_update(b"\n")
        .chain_update(body)
        .finalize();
    Ok(Some(Guard { key, request_hash: hash.iter().map(|b| format!("{b:02x}")).collect() }))
}

/// An answer to send, and to record.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    /// `value` as JSON with `status`.
    pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(value).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "An internal error occurred.",
            )
        })?;
        Ok(Self { status, body })
    }

    fn respond(self, replayed: bool) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.content_type("application/json");
        if replayed {
            response.insert_header(("Idempotent-Replayed", "true"));
        }
        response.body(self.body)
    }

    fn recorded(&self) -> RecordedAnswer {
        RecordedAnswer {
            status: self.status.as_u16(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }

    fn replay(recorded: RecordedAnswer) -> HttpResponse {
        Answer {
            status: StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK),
            body: recorded.body.into_bytes(),
        }
        .respond(true)
    }
}

fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "This Idempotency-Key was used with another request; use a new key.",
    )
}

fn in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still running; retry later.",
    )
}

/// Runs a guarded write under the request's key, if it has one (400 when it is malformed):
/// `execute` makes the write (its key stored in its transaction); `render_again` answers from a stored key's resource when the first answer was
/// lost. Only successful answers are recorded: an error wrote nothing, and a retry runs again.
pub(crate) async fn run<E, EF, R, RF>(
    req: &HttpRequest, state: &AppState, caller: &Caller, execute: E, render_again: R,
) -> Result<HttpResponse, ApiError>
where
    E: FnOnce(Option<IdempotencyClaim>) -> EF,
    EF: Future<Output = Result<Answer, ApiError>>,
    R: FnOnce(StoredIdempotency) -> RF,
    RF: Future<Output = Result<Answer, ApiError>>,
{
    let Some(guard) = guard(req)? else {
        return Ok(execute(None).await?.respond(false));
    };
    let service = &state.services.idempotency;
    let started = std::time::Instant::now();
    let mut execute = Some(execute);
    let mut render_again = Some(render_again);
    loop {
        match service.next_step(caller, &guard.key, &guard.request_hash).await? {
            NextStep::Reused => return Err(reused()),
            NextStep::Replay(answer) => return Ok(Answer::replay(answer)),
            NextStep::RenderAgain(stored) => {
                if let Some(render_again) = render_again.take() {
                    let answer = render_again(stored).await?;
                    record(state, caller, &guard.key, &answer).await;
                    return Ok(answer.respond(true));
                }
            }
            NextStep::Wait => {}
            NextStep::Execute => match execute.take() {
                Some(execute) => {
                    let claim = service.claim(guard.key.clone(), guard.request_hash.clone());
                    match execute(Some(claim)).await {
                        Ok(answer) => {
                            record(state, caller, &guard.key, &answer).await;
                            return Ok(answer.respond(false));
                        }
                        // Another request took the key first: wait for its answer.
                        Err(error) if error.code() == "idempotency_key_in_use" => {}
                        // Nothing written under this key; unless a concurrent request with it
                        // made its write meanwhile (then its answer is the one), the error is.
                        Err(error) => {
                            if service.find(caller, &guard.key).await?.is_none() {
                                return Err(error);
                            }
                            continue;
                        }
                    }
                }
                None => return Err(in_use()),
            },
        }
        if started.elapsed() > WAIT_FOR_FIRST {
            return Err(in_use());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Records an answer; a failure leaves the key without one, which a retry renders again.
async fn record(state: &AppState, caller: &Caller, key: &IdempotencyKey, answer: &Answer) {
    if let Err(error) = state.services.idempotency.record(caller, key, &answer.recorded()).await {
        tracing::warn!(%error, "could not record an idempotent answer");
    }
}
