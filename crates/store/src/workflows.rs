//! Workflows. Deleting one only marks it deleted: sessions keep pointing at the workflow they ran.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::ports::WorkflowRepository;
use handoff_domain::{ApplicationId, RepoError, Workflow, WorkflowId};
use sea_orm::QueryResult;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};

use crate::Store;
use crate::rows::{get, kind, workflow_features, workflow_features_text};
use crate::schema::Workflows;
use crate::sql::{begin_write, commit, fetch_all, fetch_one, run};

/// What a workflow is read with.
const COLUMNS: [Workflows; 8] = [
    Workflows::Id,
    Workflows::ApplicationId,
    Workflows::Label,
    Workflows::Kind,
    Workflows::Features,
    Workflows::IsDefault,
    Workflows::SessionExpirationTime,
    Workflows::CreatedAt,
];

/// The application's workflows that are not deleted.
fn select_live(application_id: ApplicationId) -> SelectStatement {
    Query::select()
        .columns(COLUMNS)
        .from(Workflows::Table)
        .and_where(Expr::col(Workflows::ApplicationId).eq(application_id.as_uuid()))
        .and_where(Expr::col(Workflows::DeletedAt).is_null())
        .to_owned()
}

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
            let others = Query::update()
                .table(Workflows::Table)
                .value(Workflows::IsDefault, false)
                .and_where(Expr::col(Workflows::ApplicationId).eq(w.application_id.as_uuid()))
                .and_where(Expr::col(Workflows::Kind).eq(w.kind.as_str()))
                .and_where(Expr::col(Workflows::IsDefault).eq(true))
                .to_owned();
            run(&txn, &others).await?;
        }
        let insert = Query::insert()
            .into_table(Workflows::Table)
            .columns(COLUMNS)
            .values_panic([
                w.id.as_uuid().into(),
                w.application_id.as_uuid().into(),
                w.label.clone().into(),
                w.kind.as_str().into(),
                workflow_features_text(&w.features).into(),
                w.is_default.into(),
                w.session_expiration_time.into(),
                w.created_at.into(),
            ])
            .to_owned();
        run(&txn, &insert).await?;
        commit(txn).await
    }

    async fn list_workflows(
        &self,
        application_id: ApplicationId,
    ) -> Result<Vec<Workflow>, RepoError> {
        let select = select_live(application_id)
            .order_by(Workflows::CreatedAt, Order::Asc)
            .order_by(Workflows::Id, Order::Asc)
            .to_owned();
        fetch_all(&self.db, &select)
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
        let select = select_live(application_id)
            .and_where(Expr::col(Workflows::Id).eq(id.as_uuid()))
            .to_owned();
        fetch_one(&self.db, &select)
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
        let update = Query::update()
            .table(Workflows::Table)
            .value(Workflows::DeletedAt, at)
            .value(Workflows::IsDefault, false)
            .and_where(Expr::col(Workflows::Id).eq(id.as_uuid()))
            .and_where(Expr::col(Workflows::ApplicationId).eq(application_id.as_uuid()))
            .and_where(Expr::col(Workflows::DeletedAt).is_null())
            .to_owned();
        let changed = run(&self.db, &update).await?;
        Ok(changed == 1)
    }
}
