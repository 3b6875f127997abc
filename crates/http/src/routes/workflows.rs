//! `/v3/workflows/`: create, list, read and delete the caller's workflows.

use actix_web::{HttpResponse, web};
use handoff_domain::workflow::RequestedFeature;
use handoff_domain::{NewWorkflow, Workflow, WorkflowId};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::decision::timestamp;
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
    session_expiration_time: Option<i64>,
}

impl RequestBody for CreateWorkflowBody {}

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
            return Err(ApiError::invalid_field(
                "features",
                "This field is required.",
            ));
        };
        let requested = features
            .into_iter()
            .map(|step| RequestedFeature {
                feature: step.feature,
                config: step.config,
                label: step.label,
            })
            .collect();
        NewWorkflow::parse_requested(
            self.workflow_label,
            requested,
            self.is_default.unwrap_or(false),
            self.session_expiration_time,
        )
        .map_err(ApiError::invalid)
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
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<CreateWorkflowBody>,
) -> Result<HttpResponse, ApiError> {
    let workflow = state
        .services
        .workflows
        .create(&caller, body.into_domain()?)
        .await?;
    Ok(HttpResponse::Created().json(workflow_json(&workflow)))
}

/// The caller's workflows, oldest first.
#[utoipa::path(get, path = "/v3/workflows/", tag = "workflows",
    responses((status = 200, description = "The workflows.", body = Vec<wire::Workflow>)))]
pub(crate) async fn list(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let workflows = state.services.workflows.list(&caller).await?;
    Ok(HttpResponse::Ok().json(workflows.iter().map(workflow_json).collect::<Vec<_>>()))
}

/// One workflow.
#[utoipa::path(get, path = "/v3/workflows/{workflow_id}/", tag = "workflows",
    params(("workflow_id" = Uuid, Path, description = "The workflow.")),
    responses((status = 200, description = "The workflow.", body = wire::Workflow)))]
pub(crate) async fn get(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let workflow = state
        .services
        .workflows
        .get(&caller, workflow_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(workflow_json(&workflow)))
}

/// Delete a workflow; sessions keep their `workflow_id`.
#[utoipa::path(delete, path = "/v3/workflows/{workflow_id}/", tag = "workflows",
    params(("workflow_id" = Uuid, Path, description = "The workflow.")),
    responses((status = 204, description = "Deleted.")))]
pub(crate) async fn delete(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .services
        .workflows
        .delete(&caller, workflow_id(&path)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
