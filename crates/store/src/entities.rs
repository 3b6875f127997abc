//! User and Business entities.

use async_trait::async_trait;
use handoff_domain::entity::EntityStatusChange;
use handoff_domain::ports::EntityRepository;
use handoff_domain::webhook::WebhookType;
use handoff_domain::{ApplicationId, Entity, EntityStatus, RepoError, SessionKind, VendorData};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, LockType, Query};

use handoff_domain::vendor_data::KEY_VERSION;
use sea_orm::{ConnectionTrait, DatabaseBackend};
use uuid::Uuid;

use crate::Store;
use crate::rows::{get, kind, text_or_null};
use crate::schema::{Entities, Sessions};
use crate::sql::{begin_write, commit, fetch_all, fetch_one, is_unique_violation, repo_error, run};

#[async_trait]
impl EntityRepository for Store {
    async fn find_entity(
        &self,
        application_id: ApplicationId,
        entity_kind: SessionKind,
        vendor_data: &VendorData,
    ) -> Result<Option<Entity>, RepoError> {
        let session_count = Query::select()
            .expr(Func::count(Expr::col(Sessions::Id)))
            .from(Sessions::Table)
            .and_where(
                Expr::col((Sessions::Table, Sessions::EntityId))
                    .equals((Entities::Table, Entities::Id)),
            )
            .to_owned();
        let select = Query::select()
            .columns([
                Entities::Kind,
                Entities::VendorData,
                Entities::Status,
                Entities::CreatedAt,
                Entities::StatusReason,
                Entities::StatusUpdatedAt,
            ])
            .expr_as(
                Expr::SubQuery(None, Box::new(session_count.into())),
                Alias::new("session_count"),
            )
            .from(Entities::Table)
            .and_where(Expr::col(Entities::ApplicationId).eq(application_id.as_uuid()))
            .and_where(Expr::col(Entities::Kind).eq(entity_kind.as_str()))
            .and_where(Expr::col(Entities::VendorDataKey).eq(vendor_data.key()))
            .to_owned();
        let Some(row) = fetch_one(&self.db, &select).await? else {
            return Ok(None);
        };
        let status: String = get(&row, "status")?;
        let stored_vendor_data: String = get(&row, "vendor_data")?;
        Ok(Some(Entity {
            kind: kind(&row, "kind")?,
            vendor_data: VendorData::parse(&stored_vendor_data)
                .map_err(|_| RepoError::Internal("stored vendor_data is not valid".into()))?,
            status: EntityStatus::parse(&status).ok_or_else(|| {
                RepoError::Internal(format!("stored entity status {status:?}").into())
            })?,
            session_count: get(&row, "session_count")?,
            created_at: get(&row, "created_at")?,
            status_reason: text_or_null(&row, "status_reason")?,
            status_updated_at: get(&row, "status_updated_at")?,
        }))
    }

    async fn set_entity_status(
        &self,
        application_id: ApplicationId,
        entity_kind: SessionKind,
        vendor_data: &VendorData,
        change: &EntityStatusChange,
    ) -> Result<Option<Entity>, RepoError> {
        {
            let _turn = self.write_turn().await;
            let txn = begin_write(&self.db).await?;
            let mut select = Query::select()
                .columns([Entities::Id, Entities::Status, Entities::VendorData])
                .from(Entities::Table)
                .and_where(Expr::col(Entities::ApplicationId).eq(application_id.as_uuid()))
                .and_where(Expr::col(Entities::Kind).eq(entity_kind.as_str()))
                .and_where(Expr::col(Entities::VendorDataKey).eq(vendor_data.key()))
                .to_owned();
            if self.backend() == DatabaseBackend::Postgres {
                select.lock(LockType::Update);
            }
            let Some(row) = fetch_one(&txn, &select).await? else {
                return Ok(None);
            };
            let previous: String = get(&row, "status")?;
            if previous != change.status.as_str() {
                let update = Query::update()
                    .table(Entities::Table)
                    .value(Entities::Status, change.status.as_str())
                    .value(Entities::StatusReason, change.reason.clone())
                    .value(Entities::StatusUpdatedAt, change.at)
                    .and_where(Expr::col(Entities::Id).eq(get::<Uuid>(&row, "id")?))
                    .to_owned();
                run(&txn, &update).await?;
                let facts = serde_json::json!({
                    "vendor_data": get::<String>(&row, "vendor_data")?,
                    "status": change.status.as_str(),
                    "previous_status": previous,
                });
                crate::outbox::insert_application_event(
                    &txn,
                    application_id,
                    WebhookType::entity_status(entity_kind),
                    &facts,
                    change.at,
                )
                .await?;
            }
            commit(txn).await?;
        }
        self.find_entity(application_id, entity_kind, vendor_data)
            .await
    }
}

/// What re-keying the entities did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// Rows that took their new key.
    pub rekeyed: usize,
    /// Rows whose new key another row of their application and kind already holds, with that
    /// row: left as they were (old key, old version), for the operator to resolve.
    pub collisions: Vec<(Uuid, Uuid)>,
}

impl Store {
    /// Gives every entity keyed under an older rule than [`KEY_VERSION`] its key under
    /// today's ([`VendorData::key_of`]), one row at a time. A row whose new key is already
    /// another row's is not merged into it: it is left as it was and reported, and tried again
    /// at the next start.
    pub async fn rekey_entities(&self) -> Result<Rekeyed, RepoError> {
        let stale = Query::select()
            .columns([
                Entities::Id,
                Entities::ApplicationId,
                Entities::Kind,
                Entities::VendorData,
            ])
            .from(Entities::Table)
            .and_where(Expr::col(Entities::KeyVersion).lt(KEY_VERSION))
            .to_owned();
        let mut report = Rekeyed::default();
        for row in fetch_all(&self.db, &stale).await? {
            let id: Uuid = get(&row, "id")?;
            let application_id: Uuid = get(&row, "application_id")?;
            let entity_kind: String = get(&row, "kind")?;
            let key = VendorData::key_of(&get::<String>(&row, "vendor_data")?);
            let update = Query::update()
                .table(Entities::Table)
                .value(Entities::VendorDataKey, key.clone())
                .value(Entities::KeyVersion, KEY_VERSION)
                .and_where(Expr::col(Entities::Id).eq(id))
                .to_owned();
            match self.db.execute(&update).await {
                Ok(_) => report.rekeyed += 1,
                Err(error) if is_unique_violation(&error) => {
                    let holder = Query::select()
                        .column(Entities::Id)
                        .from(Entities::Table)
                        .and_where(Expr::col(Entities::ApplicationId).eq(application_id))
                        .and_where(Expr::col(Entities::Kind).eq(entity_kind))
                        .and_where(Expr::col(Entities::VendorDataKey).eq(key))
                        .to_owned();
                    if let Some(other) = fetch_one(&self.db, &holder).await? {
                        report.collisions.push((id, get(&other, "id")?));
                    }
                }
                Err(error) => return Err(repo_error(error)),
            }
        }
        Ok(report)
    }
}
