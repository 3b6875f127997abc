//! Reviewers as people in the console: signing in with an email, a password and, for an
//! account that has one, a one-time code; and changing one's password.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use handoff_domain::reviewer::SignInRefusal;
use handoff_domain::services::Error;
use serde::Deserialize;

use super::gate::{ConsoleForm, signed_in};
use super::pages::{expired_sign_in, sign_in_page, signed_in_now};
use super::{cookie, count_failure, id_cookie, message, page, refusal, render, see_other, spent};
use crate::AppState;

/// What failed reviewer sign-ins from an address are counted under (beside each account's own
/// lock), so that guessing many accounts' passwords is slowed too.
const REVIEWER_BUCKET: &str = "reviewer sign-in";

/// The reviewer sign-in form.
#[derive(Deserialize)]
pub(crate) struct ReviewerSignInForm {
    csrf: Option<String>,
    email: Option<String>,
    password: Option<String>,
    code: Option<String>,
}

/// `POST /console/sign-in/reviewer/`.
pub(crate) async fn sign_in_reviewer(
    req: HttpRequest, state: web::Data<AppState>, form: ConsoleForm<ReviewerSignInForm>,
) -> HttpResponse {
    if let Some(expired) = expired_sign_in(&req, &state, form.csrf.as_deref()) {
        return expired;
    }
    if spent(&req, &state, REVIEWER_BUCKET) {
        return sign_in_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed sign-ins from this address; try again in a minute."),
        );
    }
    let field = |value: &Option<String>| value.as_deref().unwrap_or_default().to_owned();
    let (email, password, code) = (field(&form.email), field(&form.password), field(&form.code));
    let outcome = state.services.reviewers.sign_in(&email, &password, &code).await;
    let id = match outcome {
        Ok(Ok((id, _))) => id,
        Ok(Err(SignInRefusal::Wrong)) => {
            count_failure(&req, &state, REVIEWER_BUCKET).await;
            return sign_in_page(
                &state,
                StatusCode::UNAUTHORIZED,
                Some("That email, password or code is not right."),
            );
        }
        Ok(Err(SignInRefusal::Locked(until))) => {
            count_failure(&req, &state, REVIEWER_BUCKET).await;
            let sentence = format!(
                "Too many wrong attempts: this account is locked until {} UTC.",
                until.format("%H:%M")
            );
            return sign_in_page(&state, StatusCode::TOO_MANY_REQUESTS, Some(&sentence));
        }
        Err(error) => {
            tracing::error!(%error, "a reviewer sign-in failed");
            let (status, sentence) = refusal(&error);
            return sign_in_page(&state, status, Some(sentence));
        }
    };
    match id_cookie(&state, id) {
        Ok(session) => signed_in_now(&state, &session),
        Err(error) => {
            tracing::error!(%error, "could not seal a console cookie");
            sign_in_page(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The console cannot sign anyone in on this server now."),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "console_password.html")]
struct AccountPage<'a> {
    csrf: &'a str,
    signed_in_as: String,
    reviewer: bool,
    error: Option<&'a str>,
    /// For an admin: whether the application's API keys may sign in to the console.
    api_keys: Option<bool>,
    /// The reviewer's time zone, by name (empty: UTC).
    time_zone: String,
}

/// For an admin reviewer, whether its application's keys may sign in (what it may change).
async fn api_keys_setting(state: &AppState, reviewer: &super::Reviewer) -> Option<bool> {
    let id = reviewer.reviewer_id?;
    match state.services.reviewers.console_api_keys(id).await {
        Ok((allowed, true)) => Some(allowed),
        _ => None,
    }
}

/// `GET /console/account/`: who is signed in, the password form, and for an admin whether
/// API keys may sign in.
pub(crate) async fn account(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(reviewer) = signed_in(&req) else {
        return see_other("/console/");
    };
    let api_keys = api_keys_setting(&state, &reviewer).await;
    page(
        StatusCode::OK,
        render(&AccountPage {
            csrf: &reviewer.csrf,
            signed_in_as: reviewer.signed_in_as(),
            reviewer: reviewer.reviewer_id.is_some(),
            error: None,
            api_keys,
            time_zone: zone_name(&reviewer),
        }),
    )
}

/// The name of the reviewer's time zone, empty for UTC.
fn zone_name(reviewer: &super::Reviewer) -> String {
    reviewer.zone.map(|zone| zone.name().to_owned()).unwrap_or_default()
}

/// The time-zone form.
#[derive(Deserialize)]
pub(crate) struct TimeZoneForm {
    csrf: Option<String>,
    time_zone: Option<String>,
}

/// `POST /console/account/time-zone/`: the zone the reviewer reads times in.
pub(crate) async fn set_time_zone(
    req: HttpRequest, state: web::Data<AppState>, form: ConsoleForm<TimeZoneForm>,
) -> HttpResponse {
    let reviewer = match super::gate::form_reviewer(&req, form.csrf.as_deref()) {
        Ok(reviewer) => reviewer,
        Err(answer) => return *answer,
    };
    let Some(id) = reviewer.reviewer_id else {
        return message(StatusCode::BAD_REQUEST, "An API key has no time zone; times are in UTC.");
    };
    let raw = form.time_zone.as_deref().unwrap_or_default();
    match state.services.reviewers.set_time_zone(id, raw).await {
        Ok(()) => see_other("/console/account/"),
        Err(Error::Invalid(_)) => message(
            StatusCode::BAD_REQUEST,
            "That is not a time zone: give an IANA name, such as Europe/Madrid.",
        ),
        Err(error) => {
            let (status, sentence) = refusal(&error);
            message(status, sentence)
        }
    }
}

/// The API-keys form.
#[derive(Deserialize)]
pub(crate) struct ApiKeysForm {
    csrf: Option<String>,
    allow: Option<String>,
}

/// `POST /console/account/api-keys/`: an admin lets the application's API keys sign in to the
/// console, or stops them.
pub(crate) async fn set_api_keys(
    req: HttpRequest, state: web::Data<AppState>, form: ConsoleForm<ApiKeysForm>,
) -> HttpResponse {
    let reviewer = match super::gate::form_reviewer(&req, form.csrf.as_deref()) {
        Ok(reviewer) => reviewer,
        Err(answer) => return *answer,
    };
    let allow = match form.allow.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => return message(StatusCode::BAD_REQUEST, "Allow or stop them?"),
    };
    let Some(id) = reviewer.reviewer_id else {
        return message(StatusCode::FORBIDDEN, "Only an admin of the application may change that.");
    };
    match state.services.reviewers.set_console_api_keys(id, allow).await {
        Ok(()) => see_other("/console/account/"),
        Err(Error::ScopeMissing(_)) => {
            message(StatusCode::FORBIDDEN, "Only an admin of the application may change that.")
        }
        Err(error) => {
            let (status, sentence) = refusal(&error);
            message(status, sentence)
        }
    }
}

/// The password form.
#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    csrf: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
}

/// `POST /console/account/password/`: changes the password; every console session of the
/// reviewer ends, and the browser is sent to sign in again.
pub(crate) async fn change_password(
    req: HttpRequest, state: web::Data<AppState>, form: ConsoleForm<PasswordForm>,
) -> HttpResponse {
    let reviewer = match super::gate::form_reviewer(&req, form.csrf.as_deref()) {
        Ok(reviewer) => reviewer,
        Err(answer) => return *answer,
    };
    let Some(id) = reviewer.reviewer_id else {
        return message(StatusCode::BAD_REQUEST, "An API key has no password to change.");
    };
    let current = form.current_password.as_deref().unwrap_or_default();
    let new = form.new_password.as_deref().unwrap_or_default();
    match state.services.reviewers.change_password(id, current, new).await {
        Ok(()) => {
            let mut response = see_other("/console/");
            let _ = response.add_removal_cookie(&cookie(
                &state,
                super::SESSION_COOKIE,
                String::new(),
                0,
            ));
            response
        }
        Err(Error::Invalid(errors)) => {
            let sentence = errors
                .iter()
                .flat_map(|(_, messages)| messages.iter())
                .next()
                .map(|m| format!("Not changed: {m}."))
                .unwrap_or_else(|| "Not changed.".to_owned());
            page(
                StatusCode::BAD_REQUEST,
                render(&AccountPage {
                    csrf: &reviewer.csrf,
                    signed_in_as: reviewer.signed_in_as(),
                    reviewer: true,
                    error: Some(&sentence),
                    api_keys: api_keys_setting(&state, &reviewer).await,
                    time_zone: zone_name(&reviewer),
                }),
            )
        }
        Err(error) => {
            let (status, sentence) = refusal(&error);
            message(status, sentence)
        }
    }
}
