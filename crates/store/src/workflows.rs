//! Workflows. Deleting one only marks it deleted: sessions keep pointing at the workflow they ran.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::ports::WorkflowRepository;
use handoff_domain::workflow::WorkflowSettings;
use handoff_domain::{ApplicationId, RepoError, Workflow, WorkflowId};
use sea_orm::QueryResult;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement, UpdateStatement};

use crate::Store;
use crate::rows::{get, kind, workflow_features, workflow_features_text};
use crate::schema::Workflows;
use crate::sql::{commit, fetch_all, fetch_one, run};

/// What a workflow is read with.
const COLUMNS: [Workflows; 10] = [
    Workflows::Id,
    Workflows::ApplicationId,
    Workflows::Label,
    Workflows::Kind,
    Workflows::Features,
    Workflows::IsDefault,
    Workflows::SessionExpirationTime,
    Workflows::CreatedAt,
    Workflows::Settings,
    Workflows::Version,
];

/// Settings as stored: a JSON object of Didit's names.
fn settings_text(settings: &WorkflowSettings) -> String {
    serde_json::json!({
        "status": settings.status,
        "is_white_label_enabled": settings.is_white_label_enabled,
        "is_desktop_allowed": settings.is_desktop_allowed,
        "max_retry_attempts": settings.max_retry_attempts,
        "retry_window_days": settings.retry_window_days,
        "is_auto_blocklist_enabled": settings.is_auto_blocklist_enabled,
    })
    .to_string()
}

/// Settings as stored; members missing (rows older than the column) take their default.
fn settings_of(text: &str) -> WorkflowSettings {
    let stored: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let defaults = WorkflowSettings::default();
    let flag = |name: &str, default: bool| stored[name].as_bool().unwrap_or(default);
    let number = |name: &str, default: i64| stored[name].as_i64().unwrap_or(default);
    WorkflowSettings {
        status: stored["status"].as_str().map_or_else(|| defaults.status.clone(), str::to_owned),
        is_white_label_enabled: flag("is_white_label_enabled", defaults.is_white_label_enabled),
        is_desktop_allowed: flag("is_desktop_allowed", defaults.is_desktop_allowed),
        max_retry_attempts: number("max_retry_attempts", defaults.max_retry_attempts),
        retry_window_days: number("retry_window_days", defaults.retry_window_days),
        is_auto_blocklist_enabled: flag(
            "is_auto_blocklist_enabled",
            defaults.is_auto_blocklist_enabled,
        ),
    }
}

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
        settings: settings_of(&get::<String>(row, "settings")?),
        created_at: get(row, "created_at")?,
        version: get(row, "version")?,
    })
}

#[async_trait]
impl WorkflowRepository for Store {
    async fn create_workflow(&self, w: &Workflow) -> Result<(), RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        if w.is_default {
            run(&txn, &demote_others(w)).await?;
        }
        let insert = Query::insert()
            .into_table(Workflows::Table)
            .columns(COLUMNS)
            .values([
                w.id.as_uuid().into(),
                w.application_id.as_uuid().into(),
                w.label.clone().into(),
                w.kind.as_str().into(),
                workflow_features_text(&w.features).into(),
                w.is_default.into(),
                w.session_expiration_time.into(),
                w.created_at.into(),
                settings_text(&w.settings).into(),
                w.version.into(),
            ])
            .map_err(crate::sql::insert_mismatch)?
            .to_owned();
        run(&txn, &insert).await?;
        commit(txn).await
    }

    async fn update_workflow(&self, w: &Workflow) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let update = Query::update()
            .table(Workflows::Table)
            .value(Workflows::Label, w.label.clone())
            .value(Workflows::Features, workflow_features_text(&w.features))
            .value(Workflows::IsDefault, w.is_default)
            .value(Workflows::SessionExpirationTime, w.session_expiration_time)
            .value(Workflows::Settings, settings_text(&w.settings))
            .value(Workflows::Version, Expr::col(Workflows::Version).add(1))
            .and_where(Expr::col(Workflows::Id).eq(w.id.as_uuid()))
            .and_where(Expr::col(Workflows::ApplicationId).eq(w.application_id.as_uuid()))
            .and_where(Expr::col(Workflows::DeletedAt).is_null())
            .to_owned();
        if run(&txn, &update).await? != 1 {
            return Ok(false);
        }
        if w.is_default {
            let others =
                demote_others(w).and_where(Expr::col(Workflows::Id).ne(w.id.as_uuid())).to_owned();
            run(&txn, &others).await?;
        }
        commit(txn).await?;
        Ok(true)
    }

    async fn list_workflows(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<Workflow>, RepoError> {
        let select = select_live(application_id)
            .order_by(Workflows::CreatedAt, Order::Asc)
            .order_by(Workflows::Id, Order::Asc)
            .to_owned();
        fetch_all(&self.db, &select).await?.iter().map(workflow).collect()
    }

    async fn find_workflow(
        &self, application_id: ApplicationId, id: WorkflowId,
    ) -> Result<Option<Workflow>, RepoError> {
        let select = select_live(application_id)
            .and_where(Expr::col(Workflows::Id).eq(id.as_uuid()))
            .to_owned();
        fetch_one(&self.db, &select).await?.as_ref().map(workflow).transpose()
    }

    async fn delete_workflow(
        &self, application_id: ApplicationId, id: WorkflowId, at: DateTime<Utc>,
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

/// Makes the application's other default workflow of `w`'s kind not the default.
fn demote_others(w: &Workflow) -> UpdateStatement {
    Query::update()
        .table(Workflows::Table)
        .value(Workflows::IsDefault, false)
        .and_where(Expr::col(Workflows::ApplicationId).eq(w.application_id.as_uuid()))
        .and_where(Expr::col(Workflows::Kind).eq(w.kind.as_str()))
        .and_where(Expr::col(Workflows::IsDefault).eq(true))
        .to_owned()
}
