//! `x-api-key` authentication: a middleware in front of every API scope, so that a request
//! without a valid key is refused before its body or path is looked at.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use handoff_domain::Caller;
use handoff_domain::api_key::ApiKey;
use handoff_domain::services::Error;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::AppState;
use crate::error::ApiError;
use crate::rate_limit::{Budget, Decision};

/// The budget a request spends: reads are GET, and the preview of an import, which writes
/// nothing; every other request is a write.
pub(crate) fn budget(method: &actix_web::http::Method, path: &str) -> Budget {
    if method == actix_web::http::Method::GET || path == "/v3/session/import-shared/preview/" {
        Budget::Read
    } else {
        Budget::Write
    }
}

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Authenticates the request and stores the [`Caller`] for the handler; otherwise 403 when no
/// key was sent (an empty header is none) and 401 when the key sent is not valid.
pub async fn authenticate(
    req: ServiceRequest, next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let limiter = state.as_ref().and_then(|state| state.rate_limiter.clone());
    let header = req.headers().get(API_KEY_HEADER).filter(|v| !v.is_empty());
    let sent = header.is_some();
    let presented = header.and_then(|v| v.to_str().ok()).map(str::to_owned);
    let failures = failure_bucket(&client_address(req.request()), presented.as_deref());
    let spent = limiter.as_ref().and_then(|l| l.spent(&failures, Budget::Unauthenticated));
    // A spent budget refuses at once what cannot be a valid key; a key that may be valid is
    // looked up, since a valid key is never refused for others' failures.
    if let Some(spent) = &spent
        && presented.as_deref().and_then(ApiKey::presented).is_none()
    {
        return Ok(refused(req, spent, Budget::Unauthenticated).map_into_right_body());
    }
    let outcome = match (state, presented) {
        (Some(state), Some(key)) => state
            .services
            .applications
            .authenticate(&key)
            .await
            .map_err(ApiError::from)
            .and_then(|caller| caller.ok_or_else(ApiError::api_key_refused)),
        _ if sent => Err(ApiError::api_key_refused()),
        _ => Err(ApiError::no_api_key()),
    };
    match outcome {
        Ok(caller) => {
            let spent_budget = budget(req.method(), req.path());
            let decision = match &limiter {
                Some(limiter) => match limiter.check(&caller.key_prefix, spent_budget).await {
                    Ok(decision) => Some(decision),
                    Err(error) => {
                        let response = ApiError::from(Error::Repo(error)).error_response();
                        return Ok(req.into_response(response).map_into_right_body());
                    }
                },
                None => None,
            };
            if let Some(decision) = decision.filter(|d| !d.allowed) {
                return Ok(refused(req, &decision, spent_budget).map_into_right_body());
            }
            if let Some(state) = req.app_data::<web::Data<AppState>>()
                && let Err(error) = crate::authorize::authorize(
                    &caller,
                    req.peer_addr().map(|a| a.ip()),
                    crate::authorize::Reach::of_api(req.method(), req.path()),
                    &state.services.sessions,
                )
                .await
            {
                let mut response = ApiError::from(error).error_response();
                if let Some(decision) = &decision {
                    rate_limit_headers(response.headers_mut(), decision, false);
                }
                return Ok(req.into_response(response).map_into_right_body());
            }
            req.extensions_mut().insert(caller);
            let mut response = next.call(req).await?;
            if let Some(decision) = decision {
                rate_limit_headers(response.headers_mut(), &decision, false);
            }
            Ok(response.map_into_left_body())
        }
        Err(error) => {
            // A storage failure is not the client's; a missing or wrong key is.
            if error.status_code().is_client_error()
                && let Some(limiter) = limiter
            {
                if let Some(spent) = &spent {
                    return Ok(refused(req, spent, Budget::Unauthenticated).map_into_right_body());
                }
                // Counting is best effort here: the request is refused either way.
                if let Err(error) = limiter.check(&failures, Budget::Unauthenticated).await {
                    tracing::warn!(%error, "could not count a request without a valid key");
                }
            }
            let mut response = error.error_response();
            if response.status() == actix_web::http::StatusCode::UNAUTHORIZED {
                // RFC 9110: a 401 names the scheme that would succeed.
                response.headers_mut().insert(
                    actix_web::http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("ApiKey header=\"x-api-key\""),
                );
            }
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// The client's address: the TCP peer's, never a forwarding header (a client writes those).
pub(crate) fn client_address(req: &actix_web::HttpRequest) -> String {
    req.peer_addr().map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
}

/// The budget that failed authentications from `address` with `presented` spend: one per
/// address and key prefix (`none` without a key, `malformed` for what is no key of ours), so
/// that failures with one key, or none, never shut out the other keys used from that address
/// (a NAT, a balancer).
pub(crate) fn failure_bucket(address: &str, presented: Option<&str>) -> String {
    let prefix = match presented.map(ApiKey::presented) {
        None => "none".to_owned(),
        Some(None) => "malformed".to_owned(),
        // The prefix is public: it names a key and is safe to count under.
        Some(Some(key)) => key.prefix().to_owned(),
    };
    format!("{address} {prefix}")
}

/// 429 `rate_limited` with the budget's headers, counted in the metrics.
fn refused(req: ServiceRequest, decision: &Decision, budget: Budget) -> ServiceResponse {
    if let Some(metrics) =
        req.app_data::<web::Data<AppState>>().and_then(|state| state.metrics.as_ref())
    {
        metrics.rate_limited(budget);
    }
    let mut response = ApiError::new(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("Too many requests; try again in {} seconds.", decision.retry_after),
    )
    .error_response();
    rate_limit_headers(response.headers_mut(), decision, true);
    req.into_response(response)
}

fn rate_limit_headers(headers: &mut HeaderMap, decision: &Decision, refused: bool) {
    let mut set = |name: &'static str, value: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    set("x-ratelimit-limit", u64::from(decision.limit));
    set("x-ratelimit-remaining", u64::from(decision.remaining));
    set("x-ratelimit-reset", decision.reset);
    if refused {
        set("retry-after", decision.retry_after);
    }
}

/// The authenticated caller, for handlers.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Caller);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .map(Authenticated)
                .ok_or_else(ApiError::no_api_key),
        )
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;

    use super::budget;
    use crate::rate_limit::Budget;

    #[test]
    fn a_preview_spends_the_read_budget() {
        let cases = [
            (Method::GET, "/v3/sessions/", Budget::Read),
            (Method::POST, "/v3/session/import-shared/preview/", Budget::Read),
            (Method::POST, "/v3/session/import-shared/", Budget::Write),
            (Method::POST, "/v3/session/s/shares/j/revoke/", Budget::Write),
            (Method::PUT, "/v3/session/s/decision/", Budget::Write),
        ];
        for (method, path, expected) in cases {
            assert_eq!(budget(&method, path), expected, "{method} {path}");
        }
    }
}
