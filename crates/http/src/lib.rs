//! handoff's HTTP delivery on actix-web: routes, wire DTOs, authentication and error rendering.
//!
//! [`configure`] mounts everything on an `App`; [`AppState`] carries the services and limits.
//! Every answer that is not a success is an [`ApiError`] rendered as `{"detail", "code"}` JSON:
//! unknown routes, wrong methods, bad bodies, bad paths and bad queries included.

pub mod auth;
pub mod body;
mod constraints;
pub mod decision;
pub mod error;
pub mod idempotency;
pub mod openapi;
pub mod rate_limit;
pub mod report;
mod routes;
pub mod wire;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use handoff_domain::ports::Readiness;
use handoff_domain::services::Services;

pub use error::ApiError;

/// Size limits of request bodies, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Sessions, workflows, reviews, shares and imports.
    pub small_body_bytes: usize,
    /// Recorded results (`PUT /v3/session/{id}/decision/`).
    pub results_body_bytes: usize,
    /// A session to create (`POST /v3/session/`): room for a 1 MiB `portrait_image` in base64.
    pub session_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            small_body_bytes: 64 * 1024,
            results_body_bytes: 2 * 1024 * 1024,
            session_body_bytes: 1536 * 1024,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub services: Services,
    /// Whether the database answers.
    pub readiness: Arc<dyn Readiness>,
    /// Body limits.
    pub limits: Limits,
    /// Request budgets per API key; `None` when rate limiting is off.
    pub rate_limiter: Option<Arc<rate_limit::RateLimiter>>,
    /// The deployment's public URL (`HANDOFF_PUBLIC_URL`), the base of page links; without
    /// it they are relative.
    pub public_url: Option<String>,
}

/// Mounts every route of the API, its error handlers and its JSON fallbacks. The routes are
/// declared with their trailing slash: wrap the app in
/// `NormalizePath::new(TrailingSlash::Always)` for clients that omit it.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .app_data(
                web::PathConfig::default().error_handler(|_, _| ApiError::route_not_found().into()),
            )
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                ApiError::invalid_field("query", format!("The query string is not valid: {err}."))
                    .into()
            }));
        routes::configure(cfg);
    }
}

/// The fallback of unknown paths: 404 JSON.
pub async fn not_found(_: HttpRequest) -> HttpResponse {
    ApiError::route_not_found().error_response()
}

/// The fallback of known paths with another method: 405 JSON.
pub async fn method_not_allowed(_: HttpRequest) -> HttpResponse {
    ApiError::method_not_allowed().error_response()
}
