//! `/v3/workflows/`: create, list, read, change and delete the caller's workflows.

use actix_web::{HttpRequest, HttpResponse, web};
use handoff_domain::workflow::{RequestedFeature, RequestedSettings, WorkflowChange};
use handoff_domain::{NewWorkflow, ValidationErrors, Workflow, WorkflowId};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::decision::timestamp;
use crate::routes::paging::PageRequest;
use crate::{ApiError, AppState, wire};
use utoipa::ToSchema;

/// A workflow to create.
#[derive(Deserialize, ToSchema)]
pub(crate) struct CreateWorkflowBody {
    /// 1 to 50 characters; `KYC workflow` or `KYB workflow` when absent.
    workflow_label: Option<String>,
    /// The steps in execution order; a `KYB_*` feature makes a business workflow.
    #[schema(required = true)]
    features: Option<Vec<FeatureBody>>,
    /// Whether new sessions of this kind default to it.
    is_default: Option<bool>,
    /// Seconds from a session's creation to its expiry, 60 to 31,536,000 (default 604,800).
    #[serde(default, deserialize_with = "crate::body::whole_number")]
    session_expiration_time: Option<i64>,
    #[serde(flatten)]
    settings: SettingsBody,
}

impl RequestBody for CreateWorkflowBody {}

/// Didit's settings, kept and answered.
#[derive(Deserialize, ToSchema, Default)]
pub(crate) struct SettingsBody {
    /// `published` (default) or `draft`.
    status: Option<String>,
    /// Default false.
    is_white_label_enabled: Option<bool>,
    /// Default true.
    is_desktop_allowed: Option<bool>,
    /// 0 to 10 (default 3).
    #[schema(minimum = 0, maximum = 10)]
    #[serde(default, deserialize_with = "crate::body::whole_number")]
    max_retry_attempts: Option<i64>,
    /// 1 to 365 (default 7).
    #[schema(minimum = 1, maximum = 365)]
    #[serde(default, deserialize_with = "crate::body::whole_number")]
    retry_window_days: Option<i64>,
    /// A declined session's values go to the system blocklists and its entity becomes
    /// `BLOCKED` (default false; handoff's name).
    is_auto_blocklist_enabled: Option<bool>,
}

impl From<SettingsBody> for RequestedSettings {
    fn from(body: SettingsBody) -> Self {
        RequestedSettings {
            status: body.status,
            is_white_label_enabled: body.is_white_label_enabled,
            is_desktop_allowed: body.is_desktop_allowed,
            max_retry_attempts: body.max_retry_attempts,
            retry_window_days: body.retry_window_days,
            is_auto_blocklist_enabled: body.is_auto_blocklist_enabled,
        }
    }
}

/// A change of a workflow: what is given changes; `features`, when given, replaces every
/// step. Unknown members are refused.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateWorkflowBody {
    /// 1 to 50 characters.
    workflow_label: Option<String>,
    /// Every step, in order; the workflow keeps its kind.
    features: Option<Vec<FeatureBody>>,
    is_default: Option<bool>,
    /// 60 to 31,536,000 seconds.
    #[serde(default, deserialize_with = "crate::body::whole_number")]
    session_expiration_time: Option<i64>,
    /// `published` or `draft`.
    status: Option<String>,
    is_white_label_enabled: Option<bool>,
    is_desktop_allowed: Option<bool>,
    /// 0 to 10.
    #[schema(minimum = 0, maximum = 10)]
    #[serde(default, deserialize_with = "crate::body::whole_number")]
    max_retry_attempts: Option<i64>,
    /// 1 to 365.
    #[schema(minimum = 1, maximum = 365)]
    #[serde(default, deserialize_with = "crate::body::whole_number")]
    retry_window_days: Option<i64>,
    /// Blocklist a declined session's values.
    is_auto_blocklist_enabled: Option<bool>,
}

impl RequestBody for UpdateWorkflowBody {}

fn requested(features: Vec<FeatureBody>) -> Vec<RequestedFeature> {
    features
        .into_iter()
        .map(|step| RequestedFeature {
            feature: step.feature,
            config: step.config,
            label: step.label,
        })
        .collect()
}

/// One step.
#[derive(Deserialize, ToSchema)]
pub(crate) struct FeatureBody {
    /// `OCR`, `NFC`, `LIVENESS`, `FACE_MATCH`, `PROOF_OF_ADDRESS`, `QUESTIONNAIRE`,
    /// `PHONE_VERIFICATION`, `EMAIL_VERIFICATION`, `DATABASE_VALIDATION`, `AML`, `IP_ANALYSIS`,
    /// `AGE_ESTIMATION`, `KYB_REGISTRY`, `KYB_DOCUMENTS` or `KYB_KEY_PEOPLE`.
    feature: String,
    /// The engine's configuration (object).
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
    /// A label, at most 100 characters.
    label: Option<String>,
}

impl CreateWorkflowBody {
    fn into_domain(self) -> Result<NewWorkflow, ApiError> {
        let Some(features) = self.features else {
            return Err(ApiError::invalid_field("features", "This field is required."));
        };
        let checked = NewWorkflow::parse_requested(
            self.workflow_label,
            requested(features),
            self.is_default.unwrap_or(false),
            self.session_expiration_time,
        );
        let settings =
            handoff_domain::workflow::WorkflowSettings::default().with(self.settings.into());
        match (checked, settings) {
            (Ok(new), Ok(settings)) => Ok(NewWorkflow { settings, ..new }),
            (Err(mut errors), Err(more)) => {
                errors.merge(more);
                Err(ApiError::invalid(errors))
            }
            (Err(errors), _) | (_, Err(errors)) => Err(ApiError::invalid(errors)),
        }
    }
}

fn workflow_json(w: &Workflow) -> wire::Workflow {
    wire::Workflow {
        workflow_id: w.id.as_uuid(),
        workflow_label: w.label.clone(),
        features: w
            .features
            .iter()
            .map(|step| wire::WorkflowStep {
                feature: step.feature.as_str().to_owned(),
                config: step.config.clone(),
                label: step.label.clone(),
            })
            .collect(),
        session_kind: w.kind.as_str().to_owned(),
        is_default: w.is_default,
        session_expiration_time: w.session_expiration_time,
        status: w.settings.status.clone(),
        is_white_label_enabled: w.settings.is_white_label_enabled,
        is_desktop_allowed: w.settings.is_desktop_allowed,
        max_retry_attempts: w.settings.max_retry_attempts,
        retry_window_days: w.settings.retry_window_days,
        is_auto_blocklist_enabled: w.settings.is_auto_blocklist_enabled,
        created_at: timestamp(w.created_at),
    }
}

fn workflow_id(raw: &str) -> Result<WorkflowId, ApiError> {
    raw.parse().map_err(|_| ApiError::workflow_not_found())
}

/// Create a workflow.
#[utoipa::path(post, path = "/v3/workflows/", tag = "workflows", request_body = CreateWorkflowBody,
    responses((status = 201, description = "The new workflow.", body = wire::Workflow)))]
pub(crate) async fn create(
    Authenticated(caller): Authenticated, state: web::Data<AppState>,
    JsonBody(body): JsonBody<CreateWorkflowBody>,
) -> Result<HttpResponse, ApiError> {
    let workflow = state.services.workflows.create(&caller, body.into_domain()?).await?;
    Ok(HttpResponse::Created().json(workflow_json(&workflow)))
}

/// The page of the workflow list; any other parameter is refused.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct WorkflowsQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Rows to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    offset: Option<String>,
}

/// The caller's workflows, oldest first, paged as Didit's.
#[utoipa::path(get, path = "/v3/workflows/", tag = "workflows", params(WorkflowsQuery),
    responses(
        (status = 200, description = "A page of workflows.", body = wire::Page<wire::Workflow>),
        (status = 400, description = "The page is refused.", body = wire::ErrorBody),
    ))]
pub(crate) async fn list(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, req: HttpRequest,
    query: web::Query<WorkflowsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = ValidationErrors::default();
    let page = PageRequest::parse(query.limit.as_deref(), query.offset.as_deref(), &mut errors);
    errors.into_result().map_err(ApiError::invalid)?;
    let workflows = state.services.workflows.list(&caller).await?;
    let count = workflows.len() as u64;
    let results = workflows
        .iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
        .map(workflow_json)
        .collect();
    Ok(page.respond(&req, &state, count, results))
}

/// Change a workflow: what the body gives changes.
#[utoipa::path(patch, path = "/v3/workflows/{workflow_id}/", tag = "workflows",
    params(("workflow_id" = Uuid, Path, description = "The workflow.")),
    request_body = UpdateWorkflowBody,
    responses(
        (status = 200, description = "The workflow, changed.", body = wire::Workflow),
        (status = 400, description = "A member is refused, or unknown.", body = wire::ErrorBody),
        (status = 404, description = "No such workflow.", body = wire::ErrorBody),
    ))]
pub(crate) async fn update(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateWorkflowBody>,
) -> Result<HttpResponse, ApiError> {
    let change = WorkflowChange {
        label: body.workflow_label,
        features: body.features.map(requested),
        is_default: body.is_default,
        session_expiration_time: body.session_expiration_time,
        settings: RequestedSettings {
            status: body.status,
            is_white_label_enabled: body.is_white_label_enabled,
            is_desktop_allowed: body.is_desktop_allowed,
            max_retry_attempts: body.max_retry_attempts,
            retry_window_days: body.retry_window_days,
            is_auto_blocklist_enabled: body.is_auto_blocklist_enabled,
        },
    };
    let workflow = state.services.workflows.update(&caller, workflow_id(&path)?, change).await?;
    Ok(HttpResponse::Ok().json(workflow_json(&workflow)))
}

/// One workflow.
#[utoipa::path(get, path = "/v3/workflows/{workflow_id}/", tag = "workflows",
    params(("workflow_id" = Uuid, Path, description = "The workflow.")),
    responses((status = 200, description = "The workflow.", body = wire::Workflow)))]
pub(crate) async fn get(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let workflow = state.services.workflows.get(&caller, workflow_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(workflow_json(&workflow)))
}

/// Delete a workflow; sessions keep their `workflow_id`.
#[utoipa::path(delete, path = "/v3/workflows/{workflow_id}/", tag = "workflows",
    params(("workflow_id" = Uuid, Path, description = "The workflow.")),
    responses((status = 204, description = "Deleted.")))]
pub(crate) async fn delete(
    Authenticated(caller): Authenticated, state: web::Data<AppState>, path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.services.workflows.delete(&caller, workflow_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
