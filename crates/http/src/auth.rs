//! `x-api-key` authentication: a middleware in front of every API scope, so that a request
//! without a valid key is refused before its body or path is looked at.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};
use handoff_domain::Caller;

use crate::AppState;
use crate::error::ApiError;

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Authenticates the request and stores the [`Caller`] for the handler; 403 otherwise.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let presented = req
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let outcome = match (state, presented) {
        (Some(state), Some(key)) => state
            .services
            .applications
            .authenticate(&key)
            .await
            .map_err(ApiError::from)
            .and_then(|caller| caller.ok_or_else(ApiError::authentication_failed)),
        _ => Err(ApiError::authentication_failed()),
    };
    match outcome {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(error) => Ok(req
            .into_response(error.error_response())
            .map_into_right_body()),
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
                .ok_or_else(ApiError::authentication_failed),
        )
    }
}
