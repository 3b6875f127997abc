//! The caller's sessions as a collection: `GET /v3/sessions/` (newest first, filtered and
//! paged as Didit's) and `POST /v3/sessions/delete/` (several at once).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use handoff_domain::limits::MAX_DELETE_SESSIONS;
use handoff_domain::session::{MAX_SEARCH_CHARS, SessionListing};
use handoff_domain::{SessionFilter, SessionKind, SessionStatus, ValidationErrors, WorkflowId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::decision::timestamp;
use crate::routes::paging::{PageRequest, comma_separated};
use crate::routes::sessions::vendor_data_field;
use crate::{ApiError, AppState, wire};

/// Filters and page of the session list; any other parameter is refused.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this `vendor_data` (case-insensitive).
    vendor_data: Option<String>,
    /// Comma-separated statuses, e.g. `Approved,In Review`.
    status: Option<String>,
    /// `user` (default), `business` or `all`.
    session_kind: Option<String>,
    /// Only sessions of this workflow.
    #[param(value_type = Option<uuid::Uuid>)]
    workflow_id: Option<String>,
    /// Only sessions whose document was issued by this country (KYC, `issuing_state`, e.g.
    /// `ESP`) or whose company is registered in it (KYB, `country_code`, e.g. `ES`); 2 or 3
    /// letters, any case.
    #[param(pattern = "^[A-Za-z]{2,3}$")]
    country: Option<String>,
    /// Sessions whose `vendor_data` contains this, case-insensitively, whose name (the
    /// document's full name, the company's name) holds each of its words whole, or whose
    /// number it is; at most 100 characters.
    #[param(max_length = 100, pattern = "^[^\\u0000]*$")]
    search: Option<String>,
    /// Created on or after this: a date (`2026-06-01`, from its start, UTC) or an RFC 3339
    /// time.
    date_from: Option<String>,
    /// Created on or before this: a date (to its end, UTC) or an RFC 3339 time.
    date_to: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
}

/// A moment of `date_from`/`date_to`: an RFC 3339 time, or a date's start (`end`: the next
/// day's start, to compare with `<`).
fn moment(raw: &str, end: bool) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        let time = time.with_timezone(&Utc);
        return Some(if end { time + chrono::Duration::microseconds(1) } else { time });
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    let date = if end { date.succ_opt()? } else { date };
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

impl ListQuery {
    fn into_filter(self) -> Result<SessionFilter, ApiError> {
        let mut errors = ValidationErrors::default();
        let vendor_data = vendor_data_field(self.vendor_data, &mut errors);
        let statuses = comma_separated(
            self.status.as_deref(),
            "status",
            "a session status",
            SessionStatus::parse,
            &mut errors,
        );
        let kinds = match self.session_kind.as_deref() {
            None | Some("user") => vec![SessionKind::User],
            Some("business") => vec![SessionKind::Business],
            Some("all") => SessionKind::ALL.to_vec(),
            Some(_) => {
                errors.add("session_kind", "must be \"user\", \"business\" or \"all\".");
                Vec::new()
            }
        };
        let workflow_id = self.workflow_id.and_then(|raw| {
            raw.parse::<WorkflowId>()
                .map_err(|_| errors.add("workflow_id", "must be a workflow's UUID."))
                .ok()
        });
        let country = self.country.and_then(|raw| {
            let valid =
                (2..=3).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_alphabetic());
            if valid {
                Some(raw.to_ascii_uppercase())
            } else {
                errors.add("country", "must be a country code of 2 or 3 letters.");
                None
            }
        });
        let search = self.search.and_then(|raw| {
            let trimmed = raw.trim();
            if trimmed.chars().count() > MAX_SEARCH_CHARS {
                errors.add("search", format!("must be at most {MAX_SEARCH_CHARS} characters."));
                None
            } else {
                (!trimmed.is_empty()).then(|| trimmed.to_lowercase())
            }
        });
        let mut date = |field: &str, raw: Option<String>, end: bool| {
            raw.and_then(|raw| {
                let parsed = moment(&raw, end);
                if parsed.is_none() {
                    errors.add(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time.");
                }
                parsed
            })
        };
        let created_from = date("date_from", self.date_from, false);
        let created_before = date("date_to", self.date_to, true);
        let page = PageRequest::parse(self.limit.as_deref(), self.offset.as_deref(), &mut errors);
        errors.into_result().map_err(ApiError::invalid)?;
        Ok(SessionFilter {
            vendor_data,
            statuses,
            kinds,
            workflow_id,
            workflows: None,
            country,
            search,
            created_from,
            created_before,
            imported: None,
            imports_first: false,
            oldest_first: false,
            assignee: None,
            limit: page.limit,
            offset: page.offset,
        })
    }
}

fn summary(listing: &SessionListing) -> wire::SessionSummary {
    let s = &listing.session;
    wire::SessionSummary {
        session_id: s.id.as_uuid(),
        session_number: s.session_number,
        session_kind: s.kind.as_str().to_owned(),
        status: s.status.as_str().to_owned(),
        workflow_id: s.workflow_id.as_uuid(),
        vendor_data: s.vendor_data.as_ref().map(|v| v.as_str().to_owned()),
        session_url: s.session_url.clone(),
        full_name: listing.full_name.clone(),
        document_type: listing.document_type.clone(),
        company_name: listing.company_name.clone(),
        registration_number: listing.registration_number.clone(),
        country: listing.country.clone(),
        features: listing
            .features
            .iter()
            .map(|(feature, status)| wire::FeatureStatus {
                feature: feature.clone(),
                status: status.clone(),
            })
            .collect(),
        shared_from_session: s.shared_from_session.map(|id| id.as_uuid()),
        created_at: timestamp(s.created_at),
        expires_at: timestamp(s.expires_at),
    }
}

/// The caller's sessions, newest first (by `session_number`; with `session_kind=all`, both
/// kinds in one order).
#[utoipa::path(get, path = "/v3/sessions/", tag = "sessions", params(ListQuery),
    responses(
        (status = 200, description = "A page of sessions.", body = wire::Page<wire::SessionSummary>),
        (status = 400, description = "A filter, the page or an unknown parameter is refused.", body = wire::ErrorBody),
    ))]
pub(crate) async fn list(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_inner().into_filter()?;
    let page = state.services.sessions.list(&caller, &filter).await?;
    let results = page.results.iter().map(summary).collect();
    let request = PageRequest { limit: filter.limit, offset: filter.offset };
    Ok(request.respond(&req, &state, page.count, results))
}

/// Which sessions to delete: `session_numbers`, or `delete_all`.
#[derive(Deserialize, ToSchema)]
pub(crate) struct DeleteSessionsBody {
    /// Numbers of the caller's sessions (integers, or strings of digits), 1 to 1,000.
    #[schema(value_type = Option<Vec<i64>>)]
    session_numbers: Option<Value>,
    /// `true` deletes every session of the caller; then `session_numbers` must be absent or
    /// empty.
    delete_all: Option<bool>,
}

impl crate::body::RequestBody for DeleteSessionsBody {}

/// A deleted session.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeletedSession {
    session_id: uuid::Uuid,
    session_number: i64,
    /// `deleted`.
    status: &'static str,
}

/// What a deletion deleted.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeletedSessions {
    /// How many.
    deleted: usize,
    /// Each, by number; numbers that name none of the caller's sessions are not listed.
    results: Vec<DeletedSession>,
}

/// The numbers of `session_numbers`: integers or strings of digits, each positive.
fn session_numbers(raw: Value, errors: &mut ValidationErrors) -> Vec<i64> {
    let Value::Array(items) = raw else {
        errors.add("session_numbers", "must be a list of session numbers.");
        return Vec::new();
    };
    if items.len() > MAX_DELETE_SESSIONS {
        errors.add("session_numbers", format!("must hold at most {MAX_DELETE_SESSIONS} numbers."));
        return Vec::new();
    }
    let mut numbers = Vec::with_capacity(items.len());
    for item in items {
        let number = match &item {
            Value::Number(n) => crate::body::whole(n),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        };
        match number.filter(|n| *n > 0) {
            Some(n) => numbers.push(n),
            None => {
                errors.add("session_numbers", format!("{item} is not a session number."));
                return Vec::new();
            }
        }
    }
    numbers
}

/// Deletes several of the caller's sessions, by number or all, with every related row, at
/// once; answers what it deleted.
#[utoipa::path(post, path = "/v3/sessions/delete/", tag = "sessions",
    request_body = DeleteSessionsBody,
    responses(
        (status = 200, description = "What was deleted.", body = DeletedSessions),
        (status = 400, description = "Neither or both of the selections, or a bad number.", body = wire::ErrorBody),
    ))]
pub(crate) async fn delete_many(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    crate::body::JsonBody(body): crate::body::JsonBody<DeleteSessionsBody>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = ValidationErrors::default();
    let numbers = body
        .session_numbers
        .filter(|v| !v.is_null())
        .map(|raw| session_numbers(raw, &mut errors))
        .unwrap_or_default();
    let all = body.delete_all.unwrap_or(false);
    if errors.is_empty() {
        match (all, numbers.is_empty()) {
            (true, false) => {
                errors.add("delete_all", "Give either session_numbers or delete_all, not both.")
            }
            (false, true) => errors
                .add("session_numbers", "Give at least one session number, or delete_all: true."),
            _ => {}
        }
    }
    errors.into_result().map_err(ApiError::invalid)?;
    let deleted =
        state.services.sessions.delete_many(&caller, (!all).then_some(numbers.as_slice())).await?;
    Ok(HttpResponse::Ok().json(DeletedSessions {
        deleted: deleted.len(),
        results: deleted
            .into_iter()
            .map(|(id, number)| DeletedSession {
                session_id: id.as_uuid(),
                session_number: number,
                status: "deleted",
            })
            .collect(),
    }))
}
