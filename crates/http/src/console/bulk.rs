//! Bulk approval: the imported cases in review whose source approved them, listed for the
//! reviewer to confirm, then approved at once — each a review of its own, naming the reviewer,
//! with the same checks and webhooks as one approved alone.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use handoff_domain::action::LogAction;
use handoff_domain::services::Error;
use handoff_domain::session::ReviewComment;
use handoff_domain::status::ReviewStatus;
use handoff_domain::{Caller, SessionFilter, SessionId, SessionKind, SessionStatus};
use serde::Deserialize;

use super::gate::{ConsoleForm, signed_in};
use super::{message, page, refusal, render, see_other};
use crate::AppState;

/// The most cases one bulk approval takes (the oldest first).
pub const MAX_BULK_APPROVALS: u64 = 50;

/// A case that may be approved in bulk: its id, number and `vendor_data`.
struct Case {
    id: SessionId,
    number: i64,
    vendor_data: String,
}

/// The imported cases in review whose source was `Approved` when they were imported, oldest
/// first, at most [`MAX_BULK_APPROVALS`].
async fn candidates(state: &AppState, caller: &Caller) -> Result<Vec<Case>, Error> {
    let filter = SessionFilter {
        statuses: vec![SessionStatus::InReview],
        imported: Some(true),
        oldest_first: true,
        ..SessionFilter::of_kinds(
            vec![SessionKind::User, SessionKind::Business],
            MAX_BULK_APPROVALS,
        )
    };
    let sessions = &state.services.sessions;
    let mut cases = Vec::new();
    for listing in sessions.list(caller, &filter).await?.results {
        let s = listing.session;
        let events = sessions.events(caller, s.id).await?;
        let approved_at_source = events.iter().any(|e| {
            e.action == LogAction::Imported && e.old_status == Some(SessionStatus::Approved)
        });
        if approved_at_source {
            cases.push(Case {
                id: s.id,
                number: s.session_number,
                vendor_data: s.vendor_data.map(|v| v.as_str().to_owned()).unwrap_or_default(),
            });
        }
    }
    Ok(cases)
}

#[derive(Template)]
#[template(path = "console_bulk.html")]
struct BulkPage {
    csrf: String,
    signed_in_as: String,
    cases: Vec<Case>,
    most: u64,
}

/// `GET /console/bulk-approve/`: the cases, and the form that confirms.
pub(crate) async fn confirm(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(reviewer) = signed_in(&req) else {
        return see_other("/console/");
    };
    match candidates(&state, &reviewer.caller).await {
        Ok(cases) => page(
            StatusCode::OK,
            render(&BulkPage {
                signed_in_as: reviewer.signed_in_as(),
                csrf: reviewer.csrf,
                cases,
                most: MAX_BULK_APPROVALS,
            }),
        ),
        Err(error) => {
            let (status, sentence) = refusal(&error);
            message(status, sentence)
        }
    }
}

/// The confirmation form.
#[derive(Deserialize)]
pub(crate) struct BulkForm {
    csrf: Option<String>,
    comment: Option<String>,
}

/// `POST /console/bulk-approve/`: approves the cases as they stand now (one decided meanwhile
/// is left as it is), and says how many.
pub(crate) async fn approve(
    req: HttpRequest, state: web::Data<AppState>, form: ConsoleForm<BulkForm>,
) -> HttpResponse {
    let reviewer = match super::gate::form_reviewer(&req, form.csrf.as_deref()) {
        Ok(reviewer) => reviewer,
        Err(answer) => return *answer,
    };
    let comment = match form.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => match ReviewComment::parse(text.to_owned()) {
            Ok(comment) => Some(comment),
            Err(problem) => {
                return message(StatusCode::BAD_REQUEST, &format!("The comment {problem}"));
            }
        },
    };
    let cases = match candidates(&state, &reviewer.caller).await {
        Ok(cases) => cases,
        Err(error) => {
            let (status, sentence) = refusal(&error);
            return message(status, sentence);
        }
    };
    let mut approved = 0;
    for case in &cases {
        let review = state
            .services
            .sessions
            .review(&reviewer.caller, case.id, ReviewStatus::Approved, comment.clone())
            .await;
        match review {
            Ok(()) => approved += 1,
            // Decided by someone else since it was listed.
            Err(Error::WrongCurrentStatus(_)) => {}
            Err(error) => {
                let (status, sentence) = refusal(&error);
                return message(status, &format!("{approved} approved, then: {sentence}"));
            }
        }
    }
    see_other("/console/?status=Approved&origin=imported")
}
