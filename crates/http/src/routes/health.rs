//! `GET /health/`: 200 when the database answers, 503 otherwise.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};

use crate::{ApiError, AppState, wire};

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/health/", tag = "operations",
    responses((status = 200, description = "Healthy.", body = wire::Health)))]
pub(crate) async fn health(state: web::Data<AppState>) -> HttpResponse {
    if state.readiness.ready().await {
        HttpResponse::Ok().json(wire::Health { status: "ok".into(), database: "ok".into() })
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The database does not answer.",
        )
        .error_response()
    }
}
