//! The end user's page at a session's `url` (`/session/{session_token}`): the session's state
//! in words, and nothing personal — no name, no id, no `vendor_data`. The verification capture
//! itself is not part of handoff; the page says so while there is something left to do. Pages
//! are rendered with askama (escaped), carry `noindex`, send no referrer (the token is in the
//! address) and load nothing but handoff's own stylesheet.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use handoff_domain::UserFacingState;

use crate::AppState;
use crate::rate_limit::Budget;

/// A page of a title and paragraphs.
#[derive(Template)]
#[template(path = "page.html")]
struct Page<'a> {
    title: &'a str,
    paragraphs: &'a [&'a str],
}

/// What the capture's absence means for the user, said on pages with something left to do.
const NO_CAPTURE: &str = "The verification steps themselves (photographing a document, taking \
     a selfie) are not done on this page. The service that sent you this link guides you \
     through them.";

/// The title and paragraphs of a state.
fn words(state: UserFacingState) -> (&'static str, Vec<&'static str>) {
    match state {
        UserFacingState::NotStarted => (
            "Your verification has not started",
            vec!["Nothing has been submitted for this verification yet.", NO_CAPTURE],
        ),
        UserFacingState::InProgress => (
            "Your verification is in progress",
            vec!["This verification has started and is not finished yet.", NO_CAPTURE],
        ),
        UserFacingState::Finished => (
            "Your verification is finished",
            vec![
                "There is nothing more for you to do here.",
                "The service that asked for it will tell you what happens next.",
            ],
        ),
        UserFacingState::Imported => (
            "Nothing for you to do",
            vec![
                "This verification was completed with another provider and shared with this \
                 one. There is nothing for you to do here.",
            ],
        ),
        UserFacingState::Expired => (
            "This verification link has expired",
            vec!["Ask the service that sent it to you for a new one."],
        ),
    }
}

/// `template` rendered, or a bare error page when it cannot be (logged).
pub(crate) fn render(template: &impl Template) -> String {
    template.render().unwrap_or_else(|error| {
        tracing::error!(%error, "a page could not be rendered");
        String::from("<!doctype html><title>Error</title><p>An internal error occurred.</p>")
    })
}

/// Whom a page's forms may post to and its links may tell where they came from.
#[derive(Clone, Copy)]
pub(crate) enum Origin {
    /// No form, no referrer: the end user's page, whose address holds its token.
    Closed,
    /// Forms and referrers to this origin only: the console.
    Same,
}

/// An HTML answer with every page's headers: not indexed, no script, nothing loaded but the
/// stylesheet, never framed.
pub(crate) fn html_page(status: StatusCode, body: String, origin: Origin) -> HttpResponse {
    let (referrer, form_action) = match origin {
        Origin::Closed => ("no-referrer", "'none'"),
        Origin::Same => ("same-origin", "'self'"),
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("X-Robots-Tag", "noindex, nofollow"))
        .insert_header(("Referrer-Policy", referrer))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            format!(
                "default-src 'none'; style-src 'self'; form-action {form_action}; \
                 frame-ancestors 'none'; base-uri 'none'"
            ),
        ))
        .body(body)
}

/// The end user's page of a title and paragraphs.
fn html(status: StatusCode, title: &str, paragraphs: &[&str]) -> HttpResponse {
    html_page(status, render(&Page { title, paragraphs }), Origin::Closed)
}

/// `GET /session/{session_token}`. An unknown token spends its address's budget of requests
/// without credentials, as a wrong API key does.
pub(crate) async fn session_page(
    req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>,
) -> HttpResponse {
    let address = req.peer_addr().map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    let limiter = state.rate_limiter.as_ref();
    if let Some(spent) = limiter.and_then(|l| l.spent(&address, Budget::Unauthenticated)) {
        let mut response = html(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &["Please try again in a minute."],
        );
        if let Ok(value) = spent.retry_after.to_string().parse() {
            response.headers_mut().insert(actix_web::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    match state.services.sessions.user_facing_state(&path).await {
        Ok(Some(found)) => {
            let (title, paragraphs) = words(found);
            html(StatusCode::OK, title, &paragraphs)
        }
        Ok(None) => {
            if let Some(limiter) = limiter
                && let Err(error) = limiter.check(&address, Budget::Unauthenticated).await
            {
                tracing::warn!(%error, "could not count a request for an unknown session page");
            }
            html(
                StatusCode::NOT_FOUND,
                "This verification link is not valid",
                &["Check that you opened the whole link you were sent."],
            )
        }
        Err(error) => {
            tracing::warn!(%error, "a session page could not be read");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                &["This page is not available right now. Please try again in a moment."],
            )
        }
    }
}

/// `GET /assets/handoff.css`: the one stylesheet.
pub(crate) async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("../assets/handoff.css"))
}
