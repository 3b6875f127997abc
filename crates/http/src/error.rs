//! `ApiError`: every error answer of the contract, as `{"detail", "code"}` JSON, and the one
//! exhaustive mapping from domain errors.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use handoff_domain::services::Error;
use handoff_domain::{ImportCheck, ValidationErrors};
use serde_json::{Map, Value, json};

/// An error answer: status, machine `code`, human `detail`, and optional field errors.
/// Boxed, so that `Result<T, ApiError>` stays small on the happy path.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Parts>);

#[derive(Debug, Clone)]
struct Parts {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Option<ValidationErrors>,
    extra: Map<String, Value>,
}

impl ApiError {
    /// An error with no field errors.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(Parts {
            status,
            code,
            detail: detail.into(),
            errors: None,
            extra: Map::new(),
        }))
    }

    /// 400 `invalid_request` with field errors.
    pub fn invalid(errors: ValidationErrors) -> Self {
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is not valid; see errors.",
        );
        error.0.errors = Some(errors);
        error
    }

    /// 400 `invalid_request` for one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(ValidationErrors::single(field, message))
    }

    /// 500 `internal_error`: a bug, logged where it happened.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An internal error occurred.",
        )
    }

    /// 403 `authentication_failed`: no API key was sent.
    pub fn no_api_key() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "authentication_failed",
            "Authentication credentials were not provided: send the application's API key in \
             x-api-key.",
        )
    }

    /// 401 `authentication_failed`: the API key sent is wrong, malformed, revoked or expired.
    pub fn api_key_refused() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "The API key is not valid: it is wrong, malformed, revoked or expired.",
        )
    }

    /// 403 `missing_scope`: the API key lacks `scope`, which the body names.
    pub fn scope_missing(scope: handoff_domain::Scope) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "missing_scope",
            format!("This API key lacks the scope {scope}, which this request needs."),
        )
        .with("scope", Value::String(scope.to_string()))
    }

    /// 404 `not_found` for a path that names nothing.
    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This method is not allowed on this path.",
        )
    }

    /// 404 `session_not_found`.
    pub fn session_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "session_not_found", "Session not found.")
    }

    /// 404 `workflow_not_found`.
    pub fn workflow_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "workflow_not_found", "Workflow not found.")
    }

    /// Adds a top-level member to the body (for example the existing clone's `session_id`).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.0.extra.insert(key.to_owned(), value);
        self
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("detail".into(), Value::String(self.0.detail.clone()));
        body.insert("code".into(), Value::String(self.0.code.into()));
        if let Some(errors) = &self.0.errors {
            let fields: Map<String, Value> = errors
                .iter()
                .map(|(field, messages)| (field.to_owned(), json!(messages)))
                .collect();
            body.insert("errors".into(), Value::Object(fields));
        }
        body.extend(self.0.extra.clone());
        Value::Object(body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0.status.as_u16(), self.0.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.0.status).json(self.body());
        response.extensions_mut().insert(crate::metrics::ErrorCode(self.0.code));
        response
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::SessionNotFound => ApiError::session_not_found(),
            Error::WorkflowNotFound => ApiError::workflow_not_found(),
            Error::EntityNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "entity_not_found", "Not found.")
            }
            // Operator-only errors; over HTTP an unknown application looks like any unknown id.
            Error::ApplicationNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "application_not_found",
                "Application not found.",
            ),
            Error::ApiKeyNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "api_key_not_found", "API key not found.")
            }
            Error::ReviewerNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "reviewer_not_found", "Reviewer not found.")
            }
            // The console's only; its page says so in words.
            Error::ConsoleKeySignInOff => ApiError::new(
                StatusCode::FORBIDDEN,
                "console_key_sign_in_off",
                "This application's console takes no API keys; reviewers sign in as themselves.",
            ),
            Error::WrongCurrentStatus(current) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "wrong_current_status",
                format!("A session in status {current} cannot be reviewed."),
            ),
            Error::SessionNotShareable(status) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "session_not_shareable",
                format!(
                    "A session in status {status} cannot be shared; only Approved, Declined and In Review sessions can."
                ),
            ),
            Error::UnknownApplication => ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_application",
                "for_application_id names no application.",
            ),
            Error::CannotShareWithSelf => ApiError::new(
                StatusCode::BAD_REQUEST,
                "cannot_share_with_self",
                "A session cannot be shared with the application that holds it.",
            ),
            Error::ConsentRequired => ApiError::new(
                StatusCode::BAD_REQUEST,
                "consent_required",
                "This application requires the person's consent for every share: send `consent`.",
            ),
            Error::SigningUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "signing_unavailable",
                "No share-token signing key is available; the operator must add one.",
            ),
            Error::DestinationNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "webhook_destination_not_found",
                "Webhook destination not found.",
            ),
            Error::DeliveryNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "webhook_delivery_not_found",
                "Webhook delivery not found.",
            ),
            Error::ShareTokenNotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "share_token_not_found",
                "Share token not found.",
            ),
            Error::ImportRefused { check, existing_clone } => {
                let refused = import_refused(check);
                match existing_clone {
                    Some(existing) if check == ImportCheck::NotImported => {
                        refused.with("session_id", Value::String(existing.to_string()))
                    }
                    _ => refused,
                }
            }
            Error::ListNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "list_not_found", "List not found.")
            }
            Error::EntryNotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "entry_not_found", "List entry not found.")
            }
            Error::SystemList => ApiError::new(
                StatusCode::BAD_REQUEST,
                "system_list_immutable",
                "System blocklists cannot be renamed, changed or deleted.",
            ),
            Error::ScopeMissing(scope) => ApiError::scope_missing(scope),
            Error::AddressNotAllowed => ApiError::new(
                StatusCode::FORBIDDEN,
                "address_not_allowed",
                "This API key is not accepted from this address.",
            ),
            Error::LimitedToWorkflows => ApiError::new(
                StatusCode::FORBIDDEN,
                "key_limited_to_workflows",
                "This API key sees only some workflows' sessions, and this request reaches beyond \
                 them.",
            ),
            Error::PartnerUnavailable(why) => {
                tracing::warn!(reason = %why, "partner unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "partner_unavailable",
                    "The deployment that issued this share token cannot be reached now; \
                     nothing was written. Try again later.",
                )
            }
            Error::Invalid(errors) => ApiError::invalid(errors),
            Error::Repo(repo) => {
                // The cause goes to the log, never to the client.
                if !matches!(
                    repo,
                    handoff_domain::RepoError::IdempotencyKeyTaken
                        | handoff_domain::RepoError::Changed
                ) {
                    tracing::error!(error = %repo, "storage failure");
                }
                match repo {
                    handoff_domain::RepoError::Unavailable(_) => ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "service_unavailable",
                        "The service is temporarily unavailable; try again.",
                    ),
                    handoff_domain::RepoError::Internal(_) => ApiError::internal(),
                    handoff_domain::RepoError::IdempotencyKeyTaken => ApiError::new(
                        StatusCode::CONFLICT,
                        "idempotency_key_in_use",
                        "A request with this Idempotency-Key is still running; retry later.",
                    ),
                    handoff_domain::RepoError::Changed => ApiError::new(
                        StatusCode::CONFLICT,
                        "session_changed",
                        "The session kept changing while this request ran; retry it.",
                    ),
                }
            }
        }
    }
}

/// The answer of each import check of the contract's table, when it fails.
fn import_refused(check: ImportCheck) -> ApiError {
    match check {
        ImportCheck::TokenValid | ImportCheck::TokenIssuedHere => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "share_token_invalid",
            "The share token is invalid.",
        ),
        ImportCheck::TokenNotExpired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "share_token_expired",
            "The share token has expired.",
        ),
        ImportCheck::TokenNotRevoked => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "share_token_revoked",
            "The share token has been revoked.",
        ),
        ImportCheck::AddressedToCaller => ApiError::new(
            StatusCode::FORBIDDEN,
            "share_token_wrong_application",
            "The share token is addressed to another application.",
        ),
        ImportCheck::SourceExists => ApiError::new(
            StatusCode::NOT_FOUND,
            "source_session_not_found",
            "The shared session no longer exists.",
        ),
        ImportCheck::NotImported => ApiError::new(
            StatusCode::FORBIDDEN,
            "already_imported",
            "This session was already imported by this application.",
        ),
        ImportCheck::WorkflowExists => ApiError::workflow_not_found(),
        ImportCheck::WorkflowKind => ApiError::new(
            StatusCode::BAD_REQUEST,
            "workflow_kind_mismatch",
            "The workflow's kind is not the shared session's kind.",
        ),
        ImportCheck::SourceRecentEnough => ApiError::new(
            StatusCode::BAD_REQUEST,
            "source_too_old",
            "The shared session was created longer ago than max_source_age_seconds.",
        ),
    }
}
