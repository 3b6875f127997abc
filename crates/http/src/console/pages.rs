//! The console's pages and forms: sign-in and sign-out, the queue, a session with its blocks,
//! reviews and provenance, and the decision form.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use handoff_domain::action::LogAction;
use handoff_domain::session::{ReviewComment, ReviewDecision};
use handoff_domain::{FeatureBlock, SessionId, SessionStatus, status::ReviewStatus};
use serde::Deserialize;
use serde_json::Value;

use super::gate::{ConsoleForm, signed_in};
use super::{
    Reviewer, SIGN_IN_COOKIE, cookie, count_failure, message, page, random_token, refusal, render,
    same_token, see_other, session_cookie, spent,
};
use crate::AppState;
use crate::authorize::Reach;
use handoff_domain::services::{CONSOLE_SCOPE, Error};

#[derive(Template)]
#[template(path = "console_sign_in.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

/// Where a clone came from.
struct Provenance {
    application: String,
    session: String,
    at: String,
    source_status: String,
    trust_review: String,
    /// The partner deployment it came from, when another one issued the token.
    partner: Option<String>,
    /// The blocks the share withheld, comma-separated, when it named the others.
    withheld: Option<String>,
    /// The person's consent: its reference, when it was given, the wording's hash.
    consent: Option<(String, String, String)>,
}

/// A token issued for the session, as its ledger shows it.
struct ShareRow {
    jti: String,
    for_application: String,
    issued_at: String,
    expires_at: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "console_shared.html")]
struct SharedPage {
    csrf: String,
    signed_in_as: String,
    id: String,
    for_application: String,
    minutes: i64,
    token: String,
}

/// A block and the page of its items shown, each item as (field, value) lines.
struct BlockView {
    /// Its name in the decision, the section's anchor.
    key: &'static str,
    title: &'static str,
    items: Vec<Vec<(String, String)>>,
    /// Which items are shown, when not all of them are (`Items 21–40 of 1000`).
    shown: Option<String>,
    previous: Option<String>,
    next: Option<String>,
}

/// Items of a block shown on one page.
const ITEMS_PER_PAGE: usize = 20;
/// Fields of an item shown; the rest are counted.
const FIELDS_PER_ITEM: usize = 100;
/// Characters of a value shown; the rest are counted.
const VALUE_CHARS: usize = 300;

/// Which page of which block a session page shows (the others show their first).
#[derive(Deserialize)]
pub(crate) struct SessionQuery {
    block: Option<String>,
    page: Option<usize>,
}

/// An item's lines, cut to what a page shows; document numbers masked unless `reveal`.
fn item_lines(item: &handoff_domain::FeatureItem, reveal: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let value: Value = serde_json::from_str(item.json().get()).unwrap_or_default();
    lines("", &value, &mut out);
    if !reveal {
        for (field, text) in &mut out {
            let number = field.ends_with("document_number") || field.ends_with("personal_number");
            if number && !text.is_empty() && text != "—" {
                *text = super::evidence::masked(text);
            }
        }
    }
    let more = out.len().saturating_sub(FIELDS_PER_ITEM);
    out.truncate(FIELDS_PER_ITEM);
    for (_, text) in &mut out {
        let chars = text.chars().count();
        if chars > VALUE_CHARS {
            *text = format!(
                "{}… ({} more characters: the decision and the PDF report hold them all)",
                text.chars().take(VALUE_CHARS).collect::<String>(),
                chars - VALUE_CHARS
            );
        }
    }
    if more > 0 {
        out.push((
            "…".to_owned(),
            format!("{more} more fields: the decision and the PDF report hold them all"),
        ));
    }
    out
}

/// `block`'s items on the page the query asks for (the first unless it names this block).
fn block_view(
    id: &str, block: FeatureBlock, items: &[handoff_domain::FeatureItem], query: &SessionQuery,
    reveal: bool,
) -> BlockView {
    let pages = items.len().div_ceil(ITEMS_PER_PAGE).max(1);
    let index = match (&query.block, query.page) {
        (Some(named), Some(page)) if named == block.v3_key() => page.min(pages - 1),
        _ => 0,
    };
    let from = index * ITEMS_PER_PAGE;
    let to = (from + ITEMS_PER_PAGE).min(items.len());
    let link = |page: usize| {
        format!("/console/sessions/{id}/?block={}&page={page}#{}", block.v3_key(), block.v3_key())
    };
    BlockView {
        key: block.v3_key(),
        title: block.title(),
        items: items[from..to].iter().map(|item| item_lines(item, reveal)).collect(),
        shown: (pages > 1).then(|| format!("Items {}–{to} of {}", from + 1, items.len())),
        previous: (index > 0).then(|| link(index - 1)),
        next: (index + 1 < pages).then(|| link(index + 1)),
    }
}

#[derive(Template)]
#[template(path = "console_session.html")]
struct SessionView {
    csrf: String,
    signed_in_as: String,
    id: String,
    number: i64,
    status: &'static str,
    kind: &'static str,
    vendor_data: String,
    created_at: String,
    provenance: Option<Provenance>,
    reviewable: bool,
    steps: Vec<(&'static str, String)>,
    shareable: bool,
    shares: Vec<ShareRow>,
    blocks: Vec<BlockView>,
    reviews: Vec<(&'static str, String, String, String)>,
    /// The next session of the queue, its id.
    next_case: Option<String>,
    /// The blocks summed up, warnings first.
    evidence: super::evidence::Evidence,
    /// Whether document numbers are shown in full (after a recorded reveal).
    revealed: bool,
    /// Whom it is assigned to, by email.
    assignee: Option<String>,
}

/// The sign-in page with a fresh CSRF cookie.
pub(super) fn sign_in_page(
    state: &AppState, status: StatusCode, error: Option<&str>,
) -> HttpResponse {
    let csrf = random_token();
    let mut response = page(status, render(&SignInPage { csrf: &csrf, error }));
    let _ = response.add_cookie(&cookie(state, SIGN_IN_COOKIE, csrf, 3600));
    response
}

/// `GET /console/`: the queue, or the sign-in page.
pub(crate) async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match signed_in(&req) {
        Some(reviewer) => match super::gate::query::<super::queue::QueueQuery>(&req) {
            Some(query) => super::queue::queue(&state, reviewer, query).await,
            None => super::gate::unreadable_query(),
        },
        None => sign_in_page(&state, StatusCode::OK, None),
    }
}

/// The sign-in form.
#[derive(Deserialize)]
pub(crate) struct SignInForm {
    csrf: Option<String>,
    api_key: Option<String>,
}

/// `POST /console/sign-in/`.
pub(crate) async fn sign_in(
    req: HttpRequest, state: web::Data<AppState>, form: ConsoleForm<SignInForm>,
) -> HttpResponse {
    if let Some(expired) = expired_sign_in(&req, &state, form.csrf.as_deref()) {
        return expired;
    }
    let key = form.api_key.as_deref().unwrap_or_default().trim();
    // A valid key signs in whatever others failed from this address.
    let caller = match state.services.applications.authenticate(key).await {
        Ok(Some(caller)) => caller,
        Ok(None) if spent(&req, &state, key) => {
            return sign_in_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some(
                    "Too many failed sign-ins with this key from this address; try again in a minute.",
                ),
            );
        }
        Ok(None) if key.is_empty() => {
            return sign_in_page(&state, StatusCode::FORBIDDEN, Some("Enter an API key."));
        }
        Ok(None) => {
            count_failure(&req, &state, key).await;
            return sign_in_page(&state, StatusCode::UNAUTHORIZED, Some("That key is not valid."));
        }
        Err(error) => {
            let (status, sentence) = refusal(&error);
            return sign_in_page(&state, status, Some(sentence));
        }
    };
    let reach = Reach { scope: Some(CONSOLE_SCOPE), session: None };
    let peer = req.peer_addr().map(|a| a.ip());
    match crate::authorize::authorize(&caller, peer, reach, &state.services.sessions).await {
        Ok(()) => {}
        Err(Error::ScopeMissing(scope)) => {
            let sentence = format!("This key lacks the scope {scope}, which the console needs.");
            return sign_in_page(&state, StatusCode::FORBIDDEN, Some(&sentence));
        }
        Err(error) => {
            let (status, sentence) = refusal(&error);
            return sign_in_page(&state, status, Some(sentence));
        }
    }
    let session = match session_cookie(&state, &caller).await {
        Ok(session) => session,
        Err(error @ Error::ConsoleKeySignInOff) => {
            let (status, sentence) = refusal(&error);
            return sign_in_page(&state, status, Some(sentence));
        }
        Err(error) => {
            tracing::error!(%error, "could not open a console session");
            return sign_in_page(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The console cannot sign anyone in on this server now."),
            );
        }
    };
    signed_in_now(&state, &session)
}

/// The sign-in page again when a sign-in form lacks the token its page was given (posted from
/// elsewhere, or expired); `None` when it carries it.
pub(super) fn expired_sign_in(
    req: &HttpRequest, state: &AppState, csrf: Option<&str>,
) -> Option<HttpResponse> {
    let expected = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_owned());
    (!expected.is_some_and(|e| same_token(csrf, &e))).then(|| {
        sign_in_page(
            state,
            StatusCode::FORBIDDEN,
            Some("The form had expired; please sign in again."),
        )
    })
}

/// To the queue, with the new session's cookie and without the sign-in form's.
pub(super) fn signed_in_now(
    state: &AppState, session: &actix_web::cookie::Cookie<'static>,
) -> HttpResponse {
    let mut response = see_other("/console/");
    let _ = response.add_cookie(session);
    let _ = response.add_removal_cookie(&cookie(state, SIGN_IN_COOKIE, String::new(), 0));
    response
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /console/sign-out/`.
pub(crate) async fn sign_out(
    req: HttpRequest, state: web::Data<AppState>, form: ConsoleForm<CsrfForm>,
) -> HttpResponse {
    match signed_in(&req) {
        Some(reviewer) if same_token(form.csrf.as_deref(), &reviewer.csrf) => {
            if let Err(error) =
                state.services.applications.close_console_session(&reviewer.session).await
            {
                tracing::error!(%error, "could not end a console session");
                return message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "You could not be signed out; please try again.",
                );
            }
            let mut response = see_other("/console/");
            let _ = response.add_removal_cookie(&cookie(
                &state,
                super::SESSION_COOKIE,
                String::new(),
                0,
            ));
            response
        }
        Some(_) => message(StatusCode::FORBIDDEN, "The form had expired."),
        None => see_other("/console/"),
    }
}

fn session_id(raw: &str) -> Option<SessionId> {
    uuid::Uuid::parse_str(raw).ok().map(SessionId::from_uuid)
}

/// The signed-in reviewer of a form about the session `raw_id`, its CSRF token checked; or
/// the answer to give instead.
fn session_form(
    req: &HttpRequest, csrf: Option<&str>, raw_id: &str,
) -> Result<(Reviewer, SessionId), Box<HttpResponse>> {
    let reviewer = super::gate::form_reviewer(req, csrf)?;
    let Some(id) = session_id(raw_id) else {
        return Err(Box::new(message(StatusCode::NOT_FOUND, "There is no such session.")));
    };
    Ok((reviewer, id))
}

/// An item's fields as (path, value) lines, nested members joined with dots.
fn lines(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                lines(&path, member, out);
            }
        }
        Value::Array(elements) if !elements.is_empty() => {
            for (i, element) in elements.iter().enumerate() {
                lines(&format!("{prefix}[{}]", i + 1), element, out);
            }
        }
        Value::Array(_) => out.push((prefix.to_owned(), "none".into())),
        Value::Null => out.push((prefix.to_owned(), "—".into())),
        Value::String(text) => out.push((prefix.to_owned(), text.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// `GET /console/sessions/{session_id}/`.
pub(crate) async fn session(
    req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>,
) -> HttpResponse {
    let Some(reviewer) = signed_in(&req) else {
        return see_other("/console/");
    };
    let Some(id) = session_id(&path) else {
        return message(StatusCode::NOT_FOUND, "There is no such session.");
    };
    let Some(query) = super::gate::query::<SessionQuery>(&req) else {
        return super::gate::unreadable_query();
    };
    session_page(&state, reviewer, id, &query, false).await
}

/// `POST /console/sessions/{id}/reveal/`: the session's page with its document numbers in
/// full, the look recorded in its log (`revealed`, by the reviewer).
pub(crate) async fn reveal(
    req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>,
    form: ConsoleForm<CsrfForm>,
) -> HttpResponse {
    let (reviewer, id) = match session_form(&req, form.csrf.as_deref(), &path) {
        Ok(found) => found,
        Err(answer) => return *answer,
    };
    if let Err(error) =
        state.services.sessions.note_reveal(&reviewer.caller, id, "document_number").await
    {
        let (status, sentence) = refusal(&error);
        return message(status, sentence);
    }
    let query = SessionQuery { block: None, page: None };
    session_page(&state, reviewer, id, &query, true).await
}

/// The page of session `id`; with `reveal`, its document numbers in full.
async fn session_page(
    state: &AppState, reviewer: Reviewer, id: SessionId, query: &SessionQuery, reveal: bool,
) -> HttpResponse {
    let sessions = &state.services.sessions;
    let (record, events, ledger) = match (
        sessions.decision(&reviewer.caller, id).await,
        sessions.events(&reviewer.caller, id).await,
        state.services.share.ledger(&reviewer.caller, id).await,
    ) {
        (Ok(record), Ok(events), Ok(ledger)) => (record, events, ledger),
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
            let (status, sentence) = refusal(&error);
            return message(status, sentence);
        }
    };
    let now = chrono::Utc::now();
    let source_application = events
        .iter()
        .find(|e| e.action == LogAction::Imported)
        .and_then(|e| e.details.as_ref()?.get("source_application_id")?.as_str()?.parse().ok())
        .map(handoff_domain::ApplicationId::from_uuid);
    let named: Vec<handoff_domain::ApplicationId> = ledger
        .iter()
        .map(|(entry, _)| entry.claims.for_application_id)
        .chain(source_application)
        .collect();
    // A name is for people; an application's id stands in where it has none here (a partner's).
    let names = state.services.applications.names(&named).await.unwrap_or_default();
    let name_of = |id: handoff_domain::ApplicationId| {
        names.get(&id).map_or_else(|| id.to_string(), |name| format!("{name} ({id})"))
    };
    let shares = ledger
        .iter()
        .map(|(entry, token)| ShareRow {
            jti: entry.jti.clone(),
            for_application: name_of(entry.claims.for_application_id),
            issued_at: reviewer.time(entry.claims.issued_at, now),
            expires_at: reviewer.time(entry.claims.expires_at, now),
            state: token.as_str(),
        })
        .collect();
    let provenance = events.iter().find(|e| e.action == LogAction::Imported).map(|e| {
        let detail = |key: &str| {
            e.details
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default()
        };
        let details = e.details.as_ref();
        let consent = details
            .and_then(|d| d.get("consent"))
            .and_then(handoff_domain::share::Consent::from_json)
            .map(|c| (c.reference, reviewer.time(c.given_at, now), c.text_sha256));
        let withheld = details.and_then(|d| d.get("withheld_blocks")).and_then(|w| {
            let names: Vec<&str> = w.as_array()?.iter().filter_map(|n| n.as_str()).collect();
            Some(names.join(", "))
        });
        Provenance {
            application: source_application
                .map_or_else(|| detail("source_application_id"), name_of),
            session: detail("source_session_id"),
            at: reviewer.time(e.created_at, now),
            source_status: e.old_status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            trust_review: if detail("trust_review") == "true" {
                "kept (trust_review)".to_owned()
            } else {
                "sent to review".to_owned()
            },
            partner: details
                .and_then(|d| d.get("partner"))
                .map(|_| format!("{} ({})", detail("partner"), detail("partner_url"))),
            withheld,
            consent,
        }
    });
    let path = id.to_string();
    let recorded: Vec<(FeatureBlock, &[handoff_domain::FeatureItem])> =
        FeatureBlock::for_kind(record.session.kind)
            .iter()
            .filter_map(|block| record.block(*block).map(|items| (*block, items)))
            .collect();
    // The workflow's score thresholds, when it still exists and sets them.
    let workflow = state.services.workflows.get(&reviewer.caller, record.session.workflow_id).await;
    let thresholds: Vec<(FeatureBlock, super::evidence::Thresholds)> = workflow
        .iter()
        .flat_map(|w| &w.features)
        .flat_map(|step| {
            [FeatureBlock::FaceMatches, FeatureBlock::LivenessChecks]
                .into_iter()
                .map(|block| (block, super::evidence::Thresholds::of(block, &step.config)))
        })
        .filter(|(_, t)| t.review.is_some() || t.decline.is_some())
        .collect();
    let evidence = super::evidence::evidence(&recorded, now.date_naive(), reveal, &thresholds);
    let blocks = recorded
        .iter()
        .map(|(block, items)| block_view(&path, *block, items, query, reveal))
        .collect();
    // Each recorded step once, by its block's title and its node id.
    let mut steps: Vec<(&'static str, String)> = Vec::new();
    for (block, items) in &record.blocks {
        for item in items {
            if !steps.iter().any(|(_, node)| node == item.node_id()) {
                steps.push((block.title(), item.node_id().to_owned()));
            }
        }
    }
    let s = &record.session;
    let next_case = super::queue::next_case(state, &reviewer.caller, s.id).await;
    let assignee = state
        .services
        .sessions
        .assignees(&reviewer.caller, &[s.id])
        .await
        .ok()
        .and_then(|mut found| found.remove(&s.id));
    let created_at = reviewer.time(s.created_at, now);
    let reviews: Vec<(&'static str, String, String, String)> = record
        .reviews
        .iter()
        .map(|r| {
            (
                r.new_status.as_str(),
                r.user.clone(),
                reviewer.time(r.created_at, now),
                r.comment.clone().unwrap_or_default(),
            )
        })
        .collect();
    let view = SessionView {
        evidence,
        revealed: reveal,
        next_case: next_case.map(|id| id.to_string()),
        assignee,
        signed_in_as: reviewer.signed_in_as(),
        csrf: reviewer.csrf,
        id: s.id.to_string(),
        number: s.session_number,
        status: s.status.as_str(),
        kind: s.kind.as_str(),
        vendor_data: s.vendor_data.as_ref().map(|v| v.as_str().to_owned()).unwrap_or_default(),
        created_at,
        provenance,
        reviewable: s.status == SessionStatus::InReview,
        steps,
        shareable: s.shared_from_session.is_none()
            && matches!(s.status, SessionStatus::Approved | SessionStatus::Declined),
        shares,
        blocks,
        reviews,
    };
    page(StatusCode::OK, render(&view))
}

/// `POST /console/sessions/{session_id}/review/`: approve or decline, or ask to redo the
/// checked steps (`node`, repeated), with a comment.
pub(crate) async fn review(
    req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>,
    form: ConsoleForm<Vec<(String, String)>>,
) -> HttpResponse {
    let field =
        |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    let (reviewer, id) = match session_form(&req, field("csrf"), &path) {
        Ok(signed) => signed,
        Err(answer) => return *answer,
    };
    let comment = match field("comment").map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => match ReviewComment::parse(text.to_owned()) {
            Ok(comment) => Some(comment),
            Err(reason) => return message(StatusCode::BAD_REQUEST, reason),
        },
    };
    let nodes: Vec<String> =
        form.iter().filter(|(key, _)| key == "node").map(|(_, node)| node.clone()).collect();
    let decision = match field("new_status").and_then(ReviewStatus::parse) {
        // Asking to redo means checking the steps to redo.
        Some(ReviewStatus::Resubmitted) if nodes.is_empty() => {
            return message(StatusCode::BAD_REQUEST, "Check the steps to redo.");
        }
        // Steps checked beside Approve or Decline are not part of that decision.
        Some(ReviewStatus::Resubmitted) => {
            match ReviewDecision::parse(ReviewStatus::Resubmitted, nodes) {
                Ok(decision) => decision,
                Err(reason) => {
                    return message(
                        StatusCode::BAD_REQUEST,
                        &format!("The steps to redo: {reason}"),
                    );
                }
            }
        }
        Some(status) => ReviewDecision::Status(status),
        None => {
            return message(StatusCode::BAD_REQUEST, "Choose Approve, Decline or Ask to redo.");
        }
    };
    let decided = state.services.sessions.decide(&reviewer.caller, id, decision, comment).await;
    match decided {
        Ok(()) => see_other(&format!("/console/sessions/{id}/")),
        Err(error) => {
            let (status, sentence) = refusal(&error);
            message(status, sentence)
        }
    }
}

/// The share form.
#[derive(Deserialize)]
pub(crate) struct ShareForm {
    csrf: Option<String>,
    for_application_id: Option<String>,
}

/// `POST /console/sessions/{session_id}/share/`: a token for another application, shown once.
pub(crate) async fn share(
    req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>,
    form: ConsoleForm<ShareForm>,
) -> HttpResponse {
    let (reviewer, id) = match session_form(&req, form.csrf.as_deref(), &path) {
        Ok(signed) => signed,
        Err(answer) => return *answer,
    };
    let Some(receiver) = form
        .for_application_id
        .as_deref()
        .and_then(|raw| uuid::Uuid::parse_str(raw.trim()).ok())
        .map(handoff_domain::ApplicationId::from_uuid)
    else {
        return message(StatusCode::BAD_REQUEST, "That is not an application id.");
    };
    let request = handoff_domain::services::ShareRequest {
        for_application_id: receiver,
        ttl: handoff_domain::share::ShareTtl::DEFAULT,
        blocks: None,
        consent: None,
    };
    match state.services.share.share(&reviewer.caller, id, request).await {
        Ok(shared) => {
            let view = SharedPage {
                signed_in_as: reviewer.signed_in_as(),
                csrf: reviewer.csrf,
                id: id.to_string(),
                for_application: receiver.to_string(),
                minutes: handoff_domain::share::ShareTtl::DEFAULT.seconds() / 60,
                token: shared.share_token.expose().to_owned(),
            };
            page(StatusCode::OK, render(&view))
        }
        Err(error) => {
            let (status, sentence) = refusal(&error);
            message(status, sentence)
        }
    }
}

/// `POST /console/sessions/{session_id}/shares/{jti}/revoke/`.
pub(crate) async fn revoke(
    req: HttpRequest, state: web::Data<AppState>, path: web::Path<(String, String)>,
    form: ConsoleForm<CsrfForm>,
) -> HttpResponse {
    let (raw_id, jti) = path.into_inner();
    let (reviewer, id) = match session_form(&req, form.csrf.as_deref(), &raw_id) {
        Ok(signed) => signed,
        Err(answer) => return *answer,
    };
    match state.services.share.revoke(&reviewer.caller, id, &jti).await {
        Ok(_) => see_other(&format!("/console/sessions/{id}/")),
        Err(error) => {
            let (status, sentence) = refusal(&error);
            message(status, sentence)
        }
    }
}
