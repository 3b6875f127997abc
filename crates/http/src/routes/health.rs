//! `GET /health/`: 200 when the database answers, 503 otherwise.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use serde_json::json;

use crate::{ApiError, AppState};

pub(crate) async fn health(state: web::Data<AppState>) -> HttpResponse {
    if state.readiness.ready().await {
        HttpResponse::Ok().json(json!({"status": "ok", "database": "ok"}))
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The database does not answer.",
        )
        .error_response()
    }
}
