//! The console's queue: the application's sessions in review (or any status), imports first
//! and oldest first unless asked otherwise, filtered by kind, origin, age, assignee and a
//! search, with the count of each status; and assigning a session to oneself or to nobody.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{Duration, Utc};
use handoff_domain::{SessionFilter, SessionId, SessionKind, SessionStatus};
use serde::Deserialize;

use super::gate::ConsoleForm;
use super::{Reviewer, message, page, refusal, render, see_other};
use crate::AppState;

/// Sessions per page of the queue.
const PAGE_SIZE: u64 = 20;

/// The orders the queue offers: its value and its label; the first is the default.
const ORDERS: [(&str, &str); 3] = [
    ("imports", "imports first, oldest first"),
    ("oldest", "oldest first"),
    ("newest", "newest first"),
];

/// The ages the queue filters by: its value, its label, and how old a session must be.
const AGES: [(&str, &str, Option<i64>); 4] = [
    ("any", "any", None),
    ("1h", "over an hour", Some(60)),
    ("1d", "over a day", Some(1440)),
    ("7d", "over a week", Some(10_080)),
];

/// One row of the queue.
struct Row {
    id: String,
    number: i64,
    kind: &'static str,
    vendor_data: String,
    status: &'static str,
    imported: bool,
    created_at: String,
    /// Whom it is assigned to, by email.
    assignee: Option<String>,
    /// Whether it is assigned to the reviewer reading the queue.
    mine: bool,
}

#[derive(Template)]
#[template(path = "console_queue.html")]
struct QueuePage {
    csrf: String,
    signed_in_as: String,
    heading: String,
    /// Each status some session is in, its count, and the queue's address for it.
    counts: Vec<(&'static str, u64, String)>,
    status_options: Vec<(&'static str, bool)>,
    kind_options: Vec<(&'static str, bool)>,
    origin_options: Vec<(&'static str, bool)>,
    age_options: Vec<(&'static str, &'static str, bool)>,
    assignee_options: Vec<(&'static str, bool)>,
    order_options: Vec<(&'static str, &'static str, bool)>,
    search: String,
    count: u64,
    first: u64,
    last: u64,
    rows: Vec<Row>,
    /// Whether a person is signed in (who can take sessions), not an API key.
    person: bool,
    /// This page's address, where assigning returns.
    here: String,
    previous: Option<String>,
    next: Option<String>,
}

/// The queue's filters (all optional).
#[derive(Deserialize)]
pub(crate) struct QueueQuery {
    status: Option<String>,
    kind: Option<String>,
    origin: Option<String>,
    age: Option<String>,
    assignee: Option<String>,
    order: Option<String>,
    search: Option<String>,
    page: Option<u64>,
}

/// One of `allowed`, or the first.
fn one_of(value: Option<String>, allowed: &[&'static str]) -> &'static str {
    value.and_then(|v| allowed.iter().find(|a| **a == v).copied()).unwrap_or(allowed[0])
}

pub(super) async fn queue(state: &AppState, reviewer: Reviewer, query: QueueQuery) -> HttpResponse {
    let status = query.status.unwrap_or_else(|| "In Review".into());
    let statuses = match SessionStatus::parse(&status) {
        Some(one) => vec![one],
        None => Vec::new(),
    };
    let kind = one_of(query.kind, &["any", "user", "business"]);
    let kinds = match kind {
        "user" => vec![SessionKind::User],
        "business" => vec![SessionKind::Business],
        _ => vec![SessionKind::User, SessionKind::Business],
    };
    let origin = one_of(query.origin, &["any", "imported", "own"]);
    let age = one_of(query.age, &AGES.map(|(value, _, _)| value));
    let order = one_of(query.order, &ORDERS.map(|(value, _)| value));
    let assignee = one_of(query.assignee, &["any", "me", "nobody"]);
    let search: String = query
        .search
        .unwrap_or_default()
        .trim()
        .chars()
        .take(handoff_domain::session::MAX_SEARCH_CHARS)
        .collect();
    let page_index = query.page.unwrap_or(0).min(100_000);
    let now = Utc::now();
    let older_than = AGES.iter().find(|(value, _, _)| *value == age).and_then(|(_, _, m)| *m);
    let filter = SessionFilter {
        statuses,
        search: (!search.is_empty()).then(|| search.to_lowercase()),
        created_before: older_than.map(|minutes| now - Duration::minutes(minutes)),
        imported: match origin {
            "imported" => Some(true),
            "own" => Some(false),
            _ => None,
        },
        imports_first: order == "imports",
        oldest_first: order != "newest",
        assignee: match assignee {
            // An API key is nobody: it has no sessions of its own.
            "me" => Some(reviewer.reviewer_id),
            "nobody" => Some(None),
            _ => None,
        },
        offset: page_index * PAGE_SIZE,
        ..SessionFilter::of_kinds(kinds, PAGE_SIZE)
    };
    let sessions = &state.services.sessions;
    let (listed, counts) = match (
        sessions.list(&reviewer.caller, &filter).await,
        sessions.status_counts(&reviewer.caller).await,
    ) {
        (Ok(listed), Ok(counts)) => (listed, counts),
        (Err(error), _) | (_, Err(error)) => {
            let (status, sentence) = refusal(&error);
            return message(status, sentence);
        }
    };
    let ids: Vec<SessionId> = listed.results.iter().map(|l| l.session.id).collect();
    let assignees = match sessions.assignees(&reviewer.caller, &ids).await {
        Ok(assignees) => assignees,
        Err(error) => {
            let (status, sentence) = refusal(&error);
            return message(status, sentence);
        }
    };
    let link = |status: &str, index: u64| {
        let query = serde_urlencoded_pairs(&[
            ("status", status),
            ("kind", kind),
            ("origin", origin),
            ("age", age),
            ("assignee", assignee),
            ("order", order),
            ("search", search.as_str()),
            ("page", &index.to_string()),
        ]);
        format!("/console/?{query}")
    };
    let shown = listed.results.len() as u64;
    let me = reviewer.caller.reviewer.as_deref();
    let rows = listed
        .results
        .iter()
        .map(|listing| {
            let s = &listing.session;
            let assigned = assignees.get(&s.id).cloned();
            Row {
                id: s.id.to_string(),
                number: s.session_number,
                kind: s.kind.as_str(),
                vendor_data: s
                    .vendor_data
                    .as_ref()
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
                status: s.status.as_str(),
                imported: s.shared_from_session.is_some(),
                created_at: reviewer.time(s.created_at, now),
                mine: assigned.is_some() && assigned.as_deref() == me,
                assignee: assigned,
            }
        })
        .collect();
    let counts = SessionStatus::ALL
        .iter()
        .filter_map(|s| {
            let n = counts.iter().find(|(c, _)| c == s)?.1;
            Some((s.as_str(), n, link(s.as_str(), 0)))
        })
        .collect();
    let mut status_options: Vec<(&'static str, bool)> =
        SessionStatus::ALL.iter().map(|s| (s.as_str(), s.as_str() == status)).collect();
    status_options.insert(0, ("any", SessionStatus::parse(&status).is_none()));
    let heading = if status == "In Review" {
        "Sessions in review".to_owned()
    } else {
        format!("Sessions: {status}")
    };
    let view = QueuePage {
        signed_in_as: reviewer.signed_in_as(),
        csrf: reviewer.csrf,
        heading,
        counts,
        status_options,
        kind_options: ["any", "user", "business"].into_iter().map(|k| (k, k == kind)).collect(),
        origin_options: ["any", "imported", "own"].into_iter().map(|o| (o, o == origin)).collect(),
        age_options: AGES.iter().map(|(v, label, _)| (*v, *label, *v == age)).collect(),
        assignee_options: ["any", "me", "nobody"].into_iter().map(|a| (a, a == assignee)).collect(),
        order_options: ORDERS.iter().map(|(v, label)| (*v, *label, *v == order)).collect(),
        search: search.clone(),
        count: listed.count,
        first: page_index * PAGE_SIZE + 1,
        last: page_index * PAGE_SIZE + shown,
        rows,
        person: reviewer.reviewer_id.is_some(),
        here: link(&status, page_index),
        previous: (page_index > 0).then(|| link(&status, page_index - 1)),
        next: ((page_index + 1) * PAGE_SIZE < listed.count).then(|| link(&status, page_index + 1)),
    };
    page(StatusCode::OK, render(&view))
}

/// The first session of the queue as it opens (in review, imports first, oldest first) that
/// is not `current`: where "next case" goes.
pub(super) async fn next_case(
    state: &AppState, caller: &handoff_domain::Caller, current: SessionId,
) -> Option<SessionId> {
    let filter = SessionFilter {
        statuses: vec![SessionStatus::InReview],
        imports_first: true,
        oldest_first: true,
        ..SessionFilter::of_kinds(vec![SessionKind::User, SessionKind::Business], 2)
    };
    let page = state.services.sessions.list(caller, &filter).await.ok()?;
    page.results.iter().map(|l| l.session.id).find(|id| *id != current)
}

/// The assignment form: `to` is `me` or `nobody`; `back`, the queue page to return to.
#[derive(Deserialize)]
pub(crate) struct AssignForm {
    csrf: Option<String>,
    to: Option<String>,
    back: Option<String>,
}

/// `POST /console/sessions/{id}/assign/`: takes the session, or lets it go.
pub(crate) async fn assign(
    req: HttpRequest, state: web::Data<AppState>, path: web::Path<String>,
    form: ConsoleForm<AssignForm>,
) -> HttpResponse {
    let reviewer = match super::gate::form_reviewer(&req, form.csrf.as_deref()) {
        Ok(reviewer) => reviewer,
        Err(answer) => return *answer,
    };
    let Some(id) = uuid::Uuid::parse_str(&path.into_inner()).ok().map(SessionId::from_uuid) else {
        return message(StatusCode::NOT_FOUND, "There is no such session.");
    };
    let to = match (form.to.as_deref(), reviewer.reviewer_id) {
        (Some("me"), Some(me)) => Some(me),
        (Some("nobody"), _) => None,
        (Some("me"), None) => {
            return message(StatusCode::BAD_REQUEST, "An API key cannot take a session.");
        }
        _ => return message(StatusCode::BAD_REQUEST, "Assign to whom?"),
    };
    if let Err(error) = state.services.sessions.assign(&reviewer.caller, id, to).await {
        let (status, sentence) = refusal(&error);
        return message(status, sentence);
    }
    // Back to the queue page the form was on, never elsewhere.
    let back = form.back.as_deref().filter(|b| b.starts_with("/console/") && !b.starts_with("//"));
    see_other(back.unwrap_or("/console/"))
}

/// `a=b&c=d`, percent-encoded.
fn serde_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", percent(v))).collect::<Vec<_>>().join("&")
}

fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
