//! `/v3/workflows/`: create, list, read and delete the caller's workflows.

use actix_web::{HttpResponse, web};
use handoff_domain::workflow::Feature;
use handoff_domain::{NewWorkflow, ValidationErrors, Workflow, WorkflowFeature, WorkflowId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::body::{JsonBody, RequestBody};
use crate::decision::timestamp;
use crate::{ApiError, AppState};

#[derive(Deserialize)]
pub(crate) struct CreateWorkflowBody {
    workflow_label: Option<String>,
    features: Option<Vec<FeatureBody>>,
    is_default: Option<bool>,
    session_expiration_time: Option<i64>,
}

impl RequestBody for CreateWorkflowBody {}

#[derive(Deserialize)]
struct FeatureBody {
    feature: String,
    config: Option<Value>,
    label: Option<String>,
}

impl CreateWorkflowBody {
    fn into_domain(self) -> Result<NewWorkflow, ApiError> {
        let mut errors = ValidationErrors::default();
        let Some(features) = self.features else {
            return Err(ApiError::invalid_field(
                "features",
                "This field is required.",
            ));
        };
        let mut steps = Vec::with_capacity(features.len());
        for (i, step) in features.into_iter().enumerate() {
            let Some(feature) = Feature::parse(&step.feature) else {
                errors.add(
                    format!("features[{i}].feature"),
                    format!("\"{}\" is not a known feature.", step.feature),
                );
                continue;
            };
            let config = match step.config {
                None | Some(Value::Null) => Value::Object(Default::default()),
                Some(object @ Value::Object(_)) => object,
                Some(_) => {
                    errors.add(format!("features[{i}].config"), "must be a JSON object.");
                    continue;
                }
            };
            if step.label.as_ref().is_some_and(|l| l.chars().count() > 100) {
                errors.add(
                    format!("features[{i}].label"),
                    "must be at most 100 characters.",
                );
            }
            steps.push(WorkflowFeature {
                feature,
                config,
                label: step.label,
            });
        }
        let parsed = NewWorkflow::parse(
            self.workflow_label,
            steps,
            self.is_default.unwrap_or(false),
            self.session_expiration_time,
        );
        match parsed {
            Ok(workflow) if errors.is_empty() => Ok(workflow),
            Ok(_) => Err(ApiError::invalid(errors)),
            Err(more) => {
                errors.merge(more);
                Err(ApiError::invalid(errors))
            }
        }
    }
}

fn workflow_json(w: &Workflow) -> Value {
    json!({
        "workflow_id": w.id.to_string(),
        "workflow_label": w.label,
        "features": w.features.iter().map(|step| json!({
            "feature": step.feature.as_str(),
            "config": step.config,
            "label": step.label,
        })).collect::<Vec<_>>(),
        "session_kind": w.kind.as_str(),
        "is_default": w.is_default,
        "session_expiration_time": w.session_expiration_time,
        "created_at": timestamp(w.created_at),
    })
}

fn workflow_id(raw: &str) -> Result<WorkflowId, ApiError> {
    raw.parse().map_err(|_| ApiError::workflow_not_found())
}

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

pub(crate) async fn list(
    Authenticated(caller): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let workflows = state.services.workflows.list(&caller).await?;
    Ok(HttpResponse::Ok().json(workflows.iter().map(workflow_json).collect::<Vec<_>>()))
}

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
