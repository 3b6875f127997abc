//! The review console at `/console/`: server-rendered pages (askama, escaped; no script), for
//! a person who decides the sessions in review. Sign-in takes an application's API key and
//! gives a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` over https) that holds only
//! the id of a console session kept on the server (8 hours at most, 30 minutes idle, ended for
//! every copy of the cookie by signing out), sealed with the deployment's key-encryption key;
//! the key itself is never put in a page, an address or a log. Every form carries the
//! session's CSRF token. Decisions go through the same domain service as the API.

mod bulk;
mod evidence;
mod gate;
mod pages;
mod people;
mod queue;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use handoff_domain::Caller;
use handoff_domain::console::CONSOLE_SESSION_LIFETIME;
use handoff_domain::services::Error;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::pages::render;
use crate::rate_limit::Budget;

pub(crate) use bulk::{approve as bulk_approve, confirm as bulk_confirm};
pub use gate::CONSOLE_FORM_BYTES;
pub(crate) use gate::console_gate;
pub(crate) use pages::{index, reveal, review, revoke, session, share, sign_in, sign_out};
pub(crate) use people::{account, change_password, set_api_keys, set_time_zone, sign_in_reviewer};
pub(crate) use queue::assign;

/// Seals and opens the console's cookies: authenticated encryption under a key only the
/// deployment holds, so that a cookie can be neither read nor forged.
pub trait CookieSealer: Send + Sync {
    /// `bytes` sealed.
    fn seal(&self, bytes: &[u8]) -> Option<Vec<u8>>;
    /// The bytes sealed, when `sealed` is genuine.
    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>>;
}

/// The signed-in session's cookie.
const SESSION_COOKIE: &str = "handoff_console";
/// The sign-in form's CSRF cookie (before a session exists).
const SIGN_IN_COOKIE: &str = "handoff_console_csrf";

/// What the session cookie holds: the console session's id, sealed (the server keeps only its
/// hash).
#[derive(Serialize, Deserialize)]
struct Sealed {
    session: String,
}

/// A signed-in reviewer.
#[derive(Clone)]
pub(crate) struct Reviewer {
    caller: Caller,
    csrf: String,
    /// The console session's id, to sign it out.
    session: String,
    /// The reviewer signed in as a person; `None`: with an API key.
    reviewer_id: Option<handoff_domain::ReviewerId>,
    /// The time zone the reviewer reads times in; `None`: UTC.
    zone: Option<chrono_tz::Tz>,
}

impl Reviewer {
    /// Who is signed in, as the page header says it: the reviewer's email, or the key.
    /// `at` as the reviewer reads it ([`human_time`]).
    fn time(
        &self, at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        human_time(at, now, self.zone)
    }

    fn signed_in_as(&self) -> String {
        match &self.caller.reviewer {
            Some(email) => email.clone(),
            None => format!("key {}", self.caller.key_prefix),
        }
    }
}

/// A fresh random token (128 bits), for CSRF.
fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether a presented CSRF token is the expected one, compared in constant time.
fn same_token(presented: Option<&str>, expected: &str) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())))
}

/// Whether cookies must be `Secure`: the deployment is served over https.
fn secure(state: &AppState) -> bool {
    state.public_url.as_deref().is_some_and(|url| url.starts_with("https://"))
}

fn cookie<'a>(state: &AppState, name: &'a str, value: String, max_age: i64) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/console")
        .http_only(true)
        .secure(secure(state))
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age))
        .finish()
}

/// The reviewer signed in on this request, if the cookie is genuine and names a console
/// session that is current (not signed out, idle, past its lifetime, nor of a revoked key).
async fn reviewer(req: &HttpRequest, state: &AppState) -> Option<Reviewer> {
    let sealer = state.console.as_ref()?;
    let raw = req.cookie(SESSION_COOKIE)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.value()).ok()?;
    let sealed: Sealed = serde_json::from_slice(&sealer.open(&bytes)?).ok()?;
    let session = state.services.applications.console_session(&sealed.session).await.ok()??;
    Some(Reviewer {
        caller: session.caller,
        csrf: session.csrf,
        session: sealed.session,
        reviewer_id: session.reviewer,
        zone: session.time_zone.as_deref().and_then(|z| z.parse().ok()),
    })
}

/// Signs `caller` in with its API key: a console session on the server, and its cookie.
async fn session_cookie(state: &AppState, caller: &Caller) -> Result<Cookie<'static>, Error> {
    let (id, _) = state.services.applications.open_console_session(caller).await?;
    id_cookie(state, id)
}

/// The cookie of the console session `id`.
fn id_cookie(state: &AppState, id: String) -> Result<Cookie<'static>, Error> {
    let unavailable = || {
        Error::Repo(handoff_domain::RepoError::Internal(
            "the console cannot seal cookies on this server".into(),
        ))
    };
    let sealer = state.console.as_ref().ok_or_else(unavailable)?;
    let sealed = serde_json::to_vec(&Sealed { session: id }).map_err(|_| unavailable())?;
    let bytes = sealer.seal(&sealed).ok_or_else(unavailable)?;
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(cookie(state, SESSION_COOKIE, value, CONSOLE_SESSION_LIFETIME.num_seconds()))
}

/// A time as a person reads it: the minute, in the reader's time zone (UTC without one), and
/// how long ago (or how soon) it is from `now` — `6 Dec 2026, 14:27 CET (3 hours ago)`.
pub(crate) fn human_time(
    at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>,
    zone: Option<chrono_tz::Tz>,
) -> String {
    let span = now.signed_duration_since(at);
    let (future, span) =
        if span < chrono::Duration::zero() { (true, -span) } else { (false, span) };
    let amount = |n: i64, unit: &str| {
        let unit = if n == 1 { unit.to_owned() } else { format!("{unit}s") };
        if future { format!("in {n} {unit}") } else { format!("{n} {unit} ago") }
    };
    let relative = match span.num_minutes() {
        0 => "just now".to_owned(),
        m @ 1..=59 => amount(m, "minute"),
        m @ 60..=2879 => amount(m / 60, "hour"),
        m => amount(m / 1440, "day"),
    };
    let shown = match zone {
        Some(zone) => at.with_timezone(&zone).format("%-d %b %Y, %H:%M %Z").to_string(),
        None => at.format("%-d %b %Y, %H:%M UTC").to_string(),
    };
    format!("{shown} ({relative})")
}

/// An HTML page with the console's headers: forms only to this origin.
fn page(status: StatusCode, body: String) -> HttpResponse {
    crate::pages::html_page(status, body, crate::pages::Origin::Same)
}

/// A page of one sentence: why something was not done.
#[derive(askama::Template)]
#[template(path = "console_message.html")]
struct Message<'a> {
    message: &'a str,
}

/// `message` as a page with `status`.
pub(crate) fn message(status: StatusCode, message: &str) -> HttpResponse {
    page(status, render(&Message { message }))
}

/// 303 to `location`.
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_owned())).finish()
}

/// Whether failed sign-ins with `key` from this client have spent their budget.
fn spent(req: &HttpRequest, state: &AppState, key: &str) -> bool {
    let bucket = crate::auth::failure_bucket(&crate::auth::client_address(req), Some(key));
    state.rate_limiter.as_ref().is_some_and(|l| l.spent(&bucket, Budget::Unauthenticated).is_some())
}

/// Counts a failed sign-in with `key` against its budget.
async fn count_failure(req: &HttpRequest, state: &AppState, key: &str) {
    let bucket = crate::auth::failure_bucket(&crate::auth::client_address(req), Some(key));
    if let Some(limiter) = &state.rate_limiter
        && let Err(error) = limiter.check(&bucket, Budget::Unauthenticated).await
    {
        tracing::warn!(%error, "could not count a failed console sign-in");
    }
}

/// A domain refusal in a sentence for a person.
fn refusal(error: &Error) -> (StatusCode, &'static str) {
    match error {
        Error::SessionNotFound => (StatusCode::NOT_FOUND, "There is no such session."),
        Error::WrongCurrentStatus(_) => (
            StatusCode::BAD_REQUEST,
            "This session's status does not allow that decision any more.",
        ),
        Error::SessionNotShareable(_) => (
            StatusCode::BAD_REQUEST,
            "Only a finished session of this application's own can be shared.",
        ),
        Error::UnknownApplication => (StatusCode::BAD_REQUEST, "There is no such application."),
        Error::CannotShareWithSelf => {
            (StatusCode::BAD_REQUEST, "A session cannot be shared with its own application.")
        }
        Error::ShareTokenNotFound => (StatusCode::NOT_FOUND, "There is no such share token."),
        Error::ConsentRequired => (
            StatusCode::BAD_REQUEST,
            "This application shares only with the person's consent on record: share through \
             the API, with `consent`.",
        ),
        Error::ScopeMissing(_) => {
            (StatusCode::FORBIDDEN, "This API key's scopes do not allow that.")
        }
        Error::AddressNotAllowed => {
            (StatusCode::FORBIDDEN, "This API key is not accepted from this address.")
        }
        Error::ConsoleKeySignInOff => (
            StatusCode::FORBIDDEN,
            "This application's console takes no API keys: sign in with your email and password.",
        ),
        Error::Invalid(_) => (
            StatusCode::BAD_REQUEST,
            "That is not something this session allows; reload the page and try again.",
        ),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "Something went wrong; please try again."),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::human_time;

    #[test]
    fn times_read_as_a_person_says_them() {
        let now: DateTime<Utc> = "2026-12-06T16:30:00Z".parse().unwrap();
        let at = |d: Duration| human_time(now - d, now, None);
        assert_eq!(at(Duration::seconds(20)), "6 Dec 2026, 16:29 UTC (just now)");
        assert_eq!(at(Duration::minutes(1)), "6 Dec 2026, 16:29 UTC (1 minute ago)");
        assert_eq!(at(Duration::minutes(45)), "6 Dec 2026, 15:45 UTC (45 minutes ago)");
        assert_eq!(at(Duration::hours(3)), "6 Dec 2026, 13:30 UTC (3 hours ago)");
        assert_eq!(at(Duration::days(9)), "27 Nov 2026, 16:30 UTC (9 days ago)");
        assert_eq!(at(-Duration::hours(1)), "6 Dec 2026, 17:30 UTC (in 1 hour)");
        let madrid = Some(chrono_tz::Europe::Madrid);
        assert_eq!(human_time(now, now, madrid), "6 Dec 2026, 17:30 CET (just now)");
        let summer: DateTime<Utc> = "2026-07-01T12:00:00Z".parse().unwrap();
        assert_eq!(human_time(summer, summer, madrid), "1 Jul 2026, 14:00 CEST (just now)");
    }
}
