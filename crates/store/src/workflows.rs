//! Workflows. Deleting one only marks it deleted: sessions keep pointing at the workflow they ran.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::ports::WorkflowRepository;
use handoff_domain::{ApplicationId, RepoError, Workflow, WorkflowId};
use sea_orm::QueryResult;

use crate::Store;
use crate::rows::{get, kind, workflow_features, workflow_features_text};
use crate::sql::{begin_write, commit, execute, query_all, query_one};

const COLUMNS: &str =
    "id, application_id, label, kind, features, is_default, session_expiration_time, created_at";

fn workflow(row: &QueryResult) -> Result<Workflow, RepoError> {
    let features: String = get(row, "features")?;
    Ok(Workflow {
        id: WorkflowId::from_uuid(get(row, "id")?),
        application_id: ApplicationId::from_uuid(get(row, "application_id")?),
        label: get(row, "label")?,
        kind: kind(row, "kind")?,
        features: workflow_features(&features)?,
        is_default: get(row, "is_default")?,
        session_expiration_time: get(row, "session_expiration_time")?,
        created_at: get(row, "created_at")?,
    })
}

#[async_trait]
impl WorkflowRepository for Store {
    async fn create_workflow(&self, w: &Workflow) -> Result<(), RepoError> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        if w.is_default {
            execute(
                &txn,
                "UPDATE workflows SET is_default = ? WHERE application_id = ? AND kind = ? AND is_default = ?",
                vec![false.into(), w.application_id.as_uuid().into(), w.kind.as_str().into(), true.into()],
            )
            .await?;
        }
        execute(
            &txn,
            &format!("INSERT INTO workflows ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            vec![
                w.id.as_uuid().into(),
                w.application_id.as_uuid().into(),
                w.label.clone().into(),
                w.kind.as_str().into(),
                workflow_features_text(&w.features).into(),
                w.is_default.into(),
                w.session_expiration_time.into(),
                w.created_at.into(),
            ],
        )
        .await?;
        commit(txn).await
    }

    async fn list_workflows(
        &self,
        application_id: ApplicationId,
    ) -> Result<Vec<Workflow>, RepoError> {
        query_all(
            &self.db,
            &format!(
                "SELECT {COLUMNS} FROM workflows WHERE application_id = ? AND deleted_at IS NULL \
                 ORDER BY created_at, id"
            ),
            vec![application_id.as_uuid().into()],
        )
        .await?
        .iter()
        .map(workflow)
        .collect()
    }

    async fn find_workflow(
        &self,
        application_id: ApplicationId,
        id: WorkflowId,
    ) -> Result<Option<Workflow>, RepoError> {
        query_one(
            &self.db,
            &format!(
                "SELECT {COLUMNS} FROM workflows \
                 WHERE id = ? AND application_id = ? AND deleted_at IS NULL"
            ),
            vec![id.as_uuid().into(), application_id.as_uuid().into()],
        )
        .await?
        .as_ref()
        .map(workflow)
        .transpose()
    }

    async fn delete_workflow(
        &self,
        application_id: ApplicationId,
        id: WorkflowId,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let changed = execute(
            &self.db,
            "UPDATE workflows SET deleted_at = ?, is_default = ? \
             WHERE id = ? AND application_id = ? AND deleted_at IS NULL",
            vec![
                at.into(),
                false.into(),
                id.as_uuid().into(),
                application_id.as_uuid().into(),
            ],
        )
        .await?;
        Ok(changed == 1)
    }
}
