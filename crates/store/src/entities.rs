//! User and Business entities.

use async_trait::async_trait;
use handoff_domain::ports::EntityRepository;
use handoff_domain::{ApplicationId, Entity, EntityStatus, RepoError, SessionKind, VendorData};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query};

use crate::Store;
use crate::rows::{get, kind};
use crate::schema::{Entities, Sessions};
use crate::sql::fetch_one;

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
        }))
    }
}
