//! handoff's HTTP delivery on actix-web: routes, wire DTOs, authentication and error rendering.
//!
//! [`configure`] mounts everything on an `App`; [`AppState`] carries the services and limits.
//! Every answer that is not a success is an [`ApiError`] rendered as `{"detail", "code"}` JSON:
//! unknown routes, wrong methods, bad bodies, bad paths and bad queries included.

pub mod auth;
mod authorize;
pub mod body;
pub mod console;
mod constraints;
pub mod decision;
pub mod error;
pub mod federation;
mod head;
pub mod heavy;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
mod pages;
pub mod rate_limit;
pub mod report;
mod routes;
pub mod streamed;
pub mod wire;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use handoff_domain::ports::Readiness;
use handoff_domain::services::Services;

pub use error::ApiError;
pub use head::{MAX_HEADER_BYTES, MAX_TARGET_BYTES, head_limits, method_label};

/// Size limits of request bodies, in bytes, and how long a request may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Sessions, workflows, reviews, shares and imports.
    pub small_body_bytes: usize,
    /// Recorded results (`PUT /v3/session/{id}/decision/`).
    pub results_body_bytes: usize,
    /// A session to create (`POST /v3/session/`): room for a 1 MiB `portrait_image` in base64.
    pub session_body_bytes: usize,
    /// How long a body may take to arrive once its head has (408 `request_timeout`).
    pub body_timeout: std::time::Duration,
    /// How long a request may take in all, body included (503 `deadline_exceeded`); its
    /// transaction, if any, is rolled back.
    pub deadline: std::time::Duration,
    /// Concurrent heavy requests per application (results, decisions, reports).
    pub heavy: heavy::HeavyLimits,
}

/// How long a body may take to arrive once its head has, unless configured.
pub const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a request may take in all, unless configured.
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

impl Default for Limits {
    fn default() -> Self {
        Self {
            small_body_bytes: 64 * 1024,
            results_body_bytes: 2 * 1024 * 1024,
            session_body_bytes: 1536 * 1024,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            heavy: heavy::HeavyLimits::default(),
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
    /// The slots of heavy requests, per application ([`Limits::heavy`]).
    pub heavy: heavy::HeavyGate,
    /// Seals the review console's cookies; `None` leaves the console unable to sign anyone in.
    pub console: Option<Arc<dyn console::CookieSealer>>,
    /// The Prometheus metrics; `None` when they are off.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// Request budgets per API key; `None` when rate limiting is off.
    pub rate_limiter: Option<Arc<rate_limit::RateLimiter>>,
    /// The deployment's public URL (`HANDOFF_PUBLIC_URL`), the base of page links; without
    /// it they are relative.
    pub public_url: Option<String>,
    /// The issuer's side of sharing across deployments; `None` answers every exchange 401.
    pub federation: Option<federation::Federation>,
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

/// Stops a request that runs past [`Limits::deadline`] ([`DEFAULT_DEADLINE`] without state)
/// with a 503 `deadline_exceeded`: what it was doing is dropped, a transaction with it. Wrap
/// the app in it (`from_fn(deadline)`).
pub async fn deadline(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(DEFAULT_DEADLINE, |state| state.limits.deadline);
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(response) => response.map(actix_web::dev::ServiceResponse::map_into_boxed_body),
        // Answered as the error's own JSON response (the request cannot be cloned before it
        // is routed).
        Err(_) => Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "deadline_exceeded",
            format!("The request took longer than {} seconds and was stopped.", limit.as_secs()),
        )
        .into()),
    }
}

/// The headers every answer carries: nothing is cached (answers hold personal data), and a
/// browser never sniffs a type other than the one declared. Wrap the app in it.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("Cache-Control", "no-store"))
        .add(("X-Content-Type-Options", "nosniff"))
}

/// The fallback of unknown paths: 404 JSON.
pub async fn not_found(_: HttpRequest) -> HttpResponse {
    ApiError::route_not_found().error_response()
}

/// The fallback of known paths with another method: 405 JSON.
pub async fn method_not_allowed(_: HttpRequest) -> HttpResponse {
    ApiError::method_not_allowed().error_response()
}
