//! Workflows in memory.

use super::*;

#[async_trait]
impl WorkflowRepository for InMemory {
    async fn create_workflow(&self, workflow: &Workflow) -> Result<(), RepoError> {
        let mut state = self.state();
        if workflow.is_default {
            for (w, _) in &mut state.workflows {
                if w.application_id == workflow.application_id && w.kind == workflow.kind {
                    w.is_default = false;
                }
            }
        }
        state.workflows.push((workflow.clone(), false));
        Ok(())
    }

    async fn update_workflow(&self, workflow: &Workflow) -> Result<bool, RepoError> {
        let mut state = self.state();
        let live = |w: &Workflow, deleted: bool| {
            w.application_id == workflow.application_id && w.id == workflow.id && !deleted
        };
        if !state.workflows.iter().any(|(w, deleted)| live(w, *deleted)) {
            return Ok(false);
        }
        for (w, deleted) in &mut state.workflows {
            if live(w, *deleted) {
                *w = Workflow { version: w.version + 1, ..workflow.clone() };
            } else if w.application_id == workflow.application_id
                && workflow.is_default
                && w.kind == workflow.kind
            {
                w.is_default = false;
            }
        }
        Ok(true)
    }

    async fn list_workflows(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<Workflow>, RepoError> {
        Ok(self
            .state()
            .workflows
            .iter()
            .filter(|(w, deleted)| w.application_id == application_id && !deleted)
            .map(|(w, _)| w.clone())
            .collect())
    }

    async fn find_workflow(
        &self, application_id: ApplicationId, id: WorkflowId,
    ) -> Result<Option<Workflow>, RepoError> {
        Ok(self
            .state()
            .workflows
            .iter()
            .find(|(w, deleted)| w.application_id == application_id && w.id == id && !deleted)
            .map(|(w, _)| w.clone()))
    }

    async fn delete_workflow(
        &self, application_id: ApplicationId, id: WorkflowId, _: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state
            .workflows
            .iter_mut()
            .find(|(w, deleted)| w.application_id == application_id && w.id == id && !deleted)
        {
            Some((w, deleted)) => {
                *deleted = true;
                w.is_default = false;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
