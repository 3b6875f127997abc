//! What every console request passes before its page: the signed-in reviewer is found once and
//! spends the key's rate budget as the API's requests do (reads and writes); forms are read
//! under the API's body timeout and a size that fits the longest comment, and every refusal is
//! a page.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use handoff_domain::services::CONSOLE_SCOPE;
use handoff_domain::{Resource, Scope};

use super::{Reviewer, message, reviewer};
use crate::AppState;
use crate::authorize::{Reach, session_id};
use crate::rate_limit::Budget;

/// The largest console form read: a 10,000-character comment in any script, percent-encoded
/// (up to 12 bytes a character), with room for the rest of the form.
pub const CONSOLE_FORM_BYTES: usize = 160 * 1024;

/// Finds the signed-in reviewer (kept in the request for the handler) and charges the key's
/// rate budget; a spent budget is a 429 page. Wrap the console's scope in it.
pub(crate) async fn console_gate(
    req: ServiceRequest, next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    if let Some(reviewer) = reviewer(req.request(), &state).await {
        if let Some(limiter) = &state.rate_limiter {
            let budget = if req.method() == actix_web::http::Method::GET {
                Budget::Read
            } else {
                Budget::Write
            };
            match limiter.check(&reviewer.caller.key_prefix, budget).await {
                Ok(decision) if !decision.allowed => {
                    if let Some(metrics) = &state.metrics {
                        metrics.rate_limited(budget);
                    }
                    let mut page = message(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!(
                            "Too many requests with this key; try again in {} seconds.",
                            decision.retry_after
                        ),
                    );
                    page.headers_mut().insert(RETRY_AFTER, HeaderValue::from(decision.retry_after));
                    return Ok(req.into_response(page).map_into_right_body());
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "could not count a console request");
                    let page = message(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Something went wrong; please try again.",
                    );
                    return Ok(req.into_response(page).map_into_right_body());
                }
            }
        }
        let peer = req.peer_addr().map(|a| a.ip());
        let reach = reach(req.path());
        if let Err(error) =
            crate::authorize::authorize(&reviewer.caller, peer, reach, &state.services.sessions)
                .await
        {
            let (status, sentence) = super::refusal(&error);
            return Ok(req.into_response(message(status, sentence)).map_into_right_body());
        }
        req.extensions_mut().insert(reviewer.caller.clone());
        req.extensions_mut().insert(reviewer);
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// What a console request asks of the signed-in key: sharing and revoking need
/// `shares:write`, the rest [`CONSOLE_SCOPE`]; a session's pages, that the key sees the session.
fn reach(path: &str) -> Reach {
    let rest = path.strip_prefix("/console/sessions/").unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').collect();
    let scope = match segments.as_slice() {
        [_, "share" | "shares", ..] => {
            Scope { resource: Resource::Shares, access: handoff_domain::Access::Write }
        }
        _ => CONSOLE_SCOPE,
    };
    Reach { scope: Some(scope), session: segments.first().and_then(|id| session_id(id)) }
}

/// The reviewer [`console_gate`] found for this request.
pub(crate) fn signed_in(req: &HttpRequest) -> Option<Reviewer> {
    req.extensions().get::<Reviewer>().cloned()
}

/// The signed-in reviewer of a form, its CSRF token checked; or the answer to give instead
/// (to the sign-in page, or a 403 page).
pub(crate) fn form_reviewer(
    req: &HttpRequest, csrf: Option<&str>,
) -> Result<Reviewer, Box<HttpResponse>> {
    let Some(reviewer) = signed_in(req) else {
        return Err(Box::new(super::see_other("/console/")));
    };
    if !super::same_token(csrf, &reviewer.csrf) {
        return Err(Box::new(message(
            actix_web::http::StatusCode::FORBIDDEN,
            "The form had expired; go back, reload the page and try again.",
        )));
    }
    Ok(reviewer)
}

/// A form of the console (`application/x-www-form-urlencoded`), read within the body timeout
/// and [`CONSOLE_FORM_BYTES`]; a value holding NUL is refused.
pub(crate) struct ConsoleForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ConsoleForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let timeout = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.limits.body_timeout)
            .unwrap_or_default();
        let form_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let refuse = |status, sentence: &str| {
                actix_web::error::InternalError::from_response(
                    sentence.to_owned(),
                    message(status, sentence),
                )
                .into()
            };
            if !form_type {
                return Err(refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "The form was not sent as a form.",
                ));
            }
            let too_large = || {
                refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is too large; a comment holds at most 10,000 characters.",
                )
            };
            if declared.is_some_and(|n| n > CONSOLE_FORM_BYTES) {
                return Err(too_large());
            }
            let read = async {
                let mut body = web::BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|_| {
                        refuse(StatusCode::BAD_REQUEST, "The form could not be read.")
                    })?;
                    if body.len() + chunk.len() > CONSOLE_FORM_BYTES {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            };
            let body = tokio::time::timeout(timeout, read).await.map_err(|_| {
                refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    "The form did not arrive in time; please send it again.",
                )
            })??;
            if form_urlencoded::parse(&body).any(|(k, v)| k.contains('\0') || v.contains('\0')) {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "The form holds a character that no field may hold.",
                ));
            }
            serde_urlencoded::from_bytes(&body).map(ConsoleForm).map_err(|_| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "The form could not be read; reload the page and try again.",
                )
            })
        })
    }
}

impl<T> std::ops::Deref for ConsoleForm<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A console page's query string as `T`; `None` when it cannot be read.
pub(crate) fn query<T: DeserializeOwned>(req: &HttpRequest) -> Option<T> {
    serde_urlencoded::from_str(req.query_string()).ok()
}

/// The page that says a query could not be read.
pub(crate) fn unreadable_query() -> HttpResponse {
    message(StatusCode::BAD_REQUEST, "That address asks for something this page cannot show.")
}
