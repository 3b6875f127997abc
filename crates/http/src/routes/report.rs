//! `GET /v3/session/{id}/generate-pdf/`: the PDF report of a finished session.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use handoff_domain::action::LogAction;
use handoff_domain::{SessionKind, SessionStatus};

use crate::auth::Authenticated;
use crate::routes::sessions::session_id;
use crate::{ApiError, AppState};

/// The PDF report of a finished session: the session, a clone's provenance, every recorded
/// block and the reviews. 403 `session_not_finished` while the session is unfinished.
#[utoipa::path(get, path = "/v3/session/{session_id}/generate-pdf/", tag = "sessions",
    params(("session_id" = Uuid, Path, description = "The session.")),
    responses((status = 200, description = "The report, as an attachment `session_<id>.pdf` (`business_<id>.pdf`).",
        content_type = "application/pdf", body = Vec<u8>)))]
pub(crate) async fn generate_pdf(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let sessions = &state.services.sessions;
    let record = sessions.decision(&caller, id).await?;
    let status = record.session.status;
    if SessionStatus::UNFINISHED.contains(&status) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "session_not_finished",
            "The report is made once the session is finished.",
        ));
    }
    let import = match record.session.shared_from_session {
        Some(_) => sessions
            .events(&caller, id)
            .await?
            .into_iter()
            .rfind(|event| event.action == LogAction::Imported),
        None => None,
    };
    let kind = record.session.kind;
    // Laying out a large decision takes a while: off the request threads.
    let pdf = web::block(move || crate::report::render(&record, import.as_ref())).await.map_err(
        |_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "An internal error occurred.",
            )
        },
    )?;
    let prefix = match kind {
        SessionKind::User => "session",
        SessionKind::Business => "business",
    };
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/pdf"))
        .insert_header((CONTENT_DISPOSITION, format!("attachment; filename={prefix}_{id}.pdf")))
        .body(pdf))
}
