//! Workflows of the caller.

use super::{Error, Ports};
use crate::application::Caller;
use crate::ids::WorkflowId;
use crate::workflow::{NewWorkflow, Workflow, WorkflowChange};

/// Creates, lists, reads and deletes the caller's workflows.
#[derive(Clone)]
pub struct WorkflowService {
    ports: Ports,
}

impl WorkflowService {
    pub(super) fn new(ports: Ports) -> Self {
        Self { ports }
    }

    /// Creates a workflow; its kind follows from its features. A key limited to some workflows
    /// may not add one.
    pub async fn create(&self, caller: &Caller, new: NewWorkflow) -> Result<Workflow, Error> {
        if caller.grant.workflows.is_some() {
            return Err(Error::LimitedToWorkflows);
        }
        let workflow = Workflow {
            id: WorkflowId::from_uuid(self.ports.ids.uuid()),
            application_id: caller.application_id,
            kind: new.kind(),
            label: new.label,
            features: new.features,
            is_default: new.is_default,
            session_expiration_time: new.session_expiration_time,
            settings: new.settings,
            created_at: self.ports.clock.now(),
            version: 1,
        };
        self.ports.workflows.create_workflow(&workflow).await?;
        Ok(workflow)
    }

    /// Changes one of the caller's workflows; answers it changed.
    pub async fn update(
        &self, caller: &Caller, id: WorkflowId, change: WorkflowChange,
    ) -> Result<Workflow, Error> {
        let workflow = self.get(caller, id).await?.changed(change).map_err(Error::Invalid)?;
        if !self.ports.workflows.update_workflow(&workflow).await? {
            return Err(Error::WorkflowNotFound);
        }
        // Read back: the store numbered the version.
        self.get(caller, id).await
    }

    /// The caller's workflows that its key sees.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Workflow>, Error> {
        let mut workflows = self.ports.workflows.list_workflows(caller.application_id).await?;
        workflows.retain(|w| caller.grant.sees_workflow(w.id));
        Ok(workflows)
    }

    /// One of the caller's workflows that its key sees.
    pub async fn get(&self, caller: &Caller, id: WorkflowId) -> Result<Workflow, Error> {
        self.ports
            .workflows
            .find_workflow(caller.application_id, id)
            .await?
            .filter(|w| caller.grant.sees_workflow(w.id))
            .ok_or(Error::WorkflowNotFound)
    }

    /// Deletes one of the caller's workflows. Sessions that ran it keep their `workflow_id`.
    pub async fn delete(&self, caller: &Caller, id: WorkflowId) -> Result<(), Error> {
        if !caller.grant.sees_workflow(id) {
            return Err(Error::WorkflowNotFound);
        }
        if self
            .ports
            .workflows
            .delete_workflow(caller.application_id, id, self.ports.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::WorkflowNotFound)
        }
    }
}
