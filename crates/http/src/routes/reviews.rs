//! A session's reviews, as Didit's: `GET /v3/sessions/{id}/reviews/` (its activity: every
//! review and each event that set its status, paged) and `POST` the same path (a review).

use actix_web::{HttpRequest, HttpResponse, web};
use handoff_domain::session::{Activity, ActivityQuery, ReviewComment};
use handoff_domain::{LogKind, ReviewStatus, SessionId, ValidationErrors};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::decision::timestamp;
use crate::routes::paging::PageRequest;
use crate::routes::sessions::{optional_field, required_field, session_id};
use crate::{ApiError, AppState};

/// The page of a session's activity; any other parameter is refused.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReviewsQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
    /// `-created_at` (newest first, the default) or `created_at`.
    #[param(pattern = "^-?created_at$")]
    ordering: Option<String>,
}

/// One row of a session's activity.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReviewItem {
    /// Stable: derived from the session and the row.
    uuid: uuid::Uuid,
    /// `STATUS_UPDATED`, or `COMMENT` for a review that set no new status.
    activity_type: &'static str,
    /// `API_KEY` (a review through the API) or `SYSTEM` (results, an import).
    actor_type: &'static str,
    /// Which: `api-key:<prefix>`, `engine`, …
    actor_display: String,
    new_status: Option<String>,
    previous_status: Option<String>,
    comment: Option<String>,
    /// The event's details, if any.
    metadata: Option<serde_json::Value>,
    created_at: String,
}

fn item(session: SessionId, activity: Activity) -> ReviewItem {
    let entry = activity.entry;
    let changed = entry.new_status.is_some() && entry.new_status != entry.old_status;
    ReviewItem {
        uuid: uuid::Uuid::new_v5(&session.as_uuid(), activity.row.to_string().as_bytes()),
        activity_type: if entry.kind == LogKind::Review && !changed {
            "COMMENT"
        } else {
            "STATUS_UPDATED"
        },
        actor_type: if entry.actor.starts_with("api-key:") {
            "API_KEY"
        } else if entry.actor.starts_with("reviewer:") {
            "USER"
        } else {
            "SYSTEM"
        },
        actor_display: entry.actor,
        new_status: entry.new_status.map(|s| s.as_str().to_owned()),
        previous_status: entry.old_status.map(|s| s.as_str().to_owned()),
        comment: entry.comment,
        metadata: entry.details,
        created_at: timestamp(entry.created_at),
    }
}

impl ReviewsQuery {
    fn into_query(self) -> Result<ActivityQuery, ApiError> {
        let mut errors = ValidationErrors::default();
        let page = PageRequest::parse(self.limit.as_deref(), self.offset.as_deref(), &mut errors);
        let newest_first = match self.ordering.as_deref() {
            None | Some("-created_at") => true,
            Some("created_at") => false,
            Some(_) => {
                errors.add("ordering", "must be \"created_at\" or \"-created_at\".");
                true
            }
        };
        errors.into_result().map_err(ApiError::invalid)?;
        Ok(ActivityQuery { limit: page.limit, offset: page.offset, newest_first })
    }
}

/// The session's activity: its reviews and the events that set its status, newest first.
#[utoipa::path(get, path = "/v3/sessions/{session_id}/reviews/", tag = "sessions",
    params(("session_id" = uuid::Uuid, Path, description = "The session."), ReviewsQuery),
    responses(
        (status = 200, description = "A page of the session's activity.", body = crate::wire::Page<ReviewItem>),
        (status = 400, description = "The page is refused.", body = crate::wire::ErrorBody),
        (status = 404, description = "No such session.", body = crate::wire::ErrorBody),
    ))]
pub(crate) async fn list(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    path: web::Path<String>, query: web::Query<ReviewsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let query = query.into_inner().into_query()?;
    let page = state.services.sessions.activity(&caller, id, query).await?;
    let results = page.results.into_iter().map(|a| item(id, a)).collect();
    let request = PageRequest { limit: query.limit, offset: query.offset };
    Ok(request.respond(&req, &state, page.count, results))
}

/// A review.
#[derive(Deserialize, ToSchema)]
pub(crate) struct ReviewBody {
    /// `Approved`, `Declined` or `In Review`.
    #[schema(value_type = String)]
    new_status: Option<String>,
    /// At most 10,000 characters.
    #[schema(max_length = 10000)]
    comment: Option<String>,
}

impl RequestBody for ReviewBody {}

/// Reviews the session: sets `Approved`, `Declined` or `In Review` with a comment, as
/// `update-status` does; answers the review's activity row.
#[utoipa::path(post, path = "/v3/sessions/{session_id}/reviews/", tag = "sessions",
    params(("session_id" = uuid::Uuid, Path, description = "The session.")),
    request_body = ReviewBody,
    responses(
        (status = 201, description = "The review.", body = ReviewItem),
        (status = 400, description = "A field is refused, or the session's status cannot be reviewed.", body = crate::wire::ErrorBody),
        (status = 404, description = "No such session.", body = crate::wire::ErrorBody),
    ))]
pub(crate) async fn create(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let mut errors = ValidationErrors::default();
    let new_status = required_field(
        "new_status",
        body.new_status,
        ReviewStatus::parse_review,
        "must be \"Approved\", \"Declined\" or \"In Review\".",
        &mut errors,
    );
    let comment = optional_field("comment", body.comment, ReviewComment::parse, &mut errors);
    errors.into_result().map_err(ApiError::invalid)?;
    let Some(new_status) = new_status else {
        return Err(ApiError::invalid_field("new_status", "This field is required."));
    };
    let sessions = &state.services.sessions;
    sessions.review(&caller, id, new_status, comment).await?;
    let newest = ActivityQuery { limit: 1, offset: 0, newest_first: true };
    let review = sessions
        .activity(&caller, id, newest)
        .await?
        .results
        .into_iter()
        .next()
        .ok_or_else(ApiError::session_not_found)?;
    Ok(HttpResponse::Created().json(item(id, review)))
}
