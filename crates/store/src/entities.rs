//! User and Business entities.

use async_trait::async_trait;
use handoff_domain::ports::EntityRepository;
use handoff_domain::{ApplicationId, Entity, EntityStatus, RepoError, SessionKind, VendorData};

use crate::Store;
use crate::rows::{get, kind};
use crate::sql::query_one;

#[async_trait]
impl EntityRepository for Store {
    async fn find_entity(
        &self,
        application_id: ApplicationId,
        entity_kind: SessionKind,
        vendor_data: &VendorData,
    ) -> Result<Option<Entity>, RepoError> {
        let Some(row) = query_one(
            &self.db,
            "SELECT e.kind, e.vendor_data, e.status, e.created_at, \
                    (SELECT COUNT(*) FROM sessions s WHERE s.entity_id = e.id) AS session_count \
             FROM entities e \
             WHERE e.application_id = ? AND e.kind = ? AND e.vendor_data_key = ?",
            vec![
                application_id.as_uuid().into(),
                entity_kind.as_str().into(),
                vendor_data.key().into(),
            ],
        )
        .await?
        else {
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
