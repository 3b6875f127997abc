//! Users and Businesses in memory.

use super::*;
use crate::ids::EntityId;

#[async_trait]
impl EntityRepository for InMemory {
    async fn find_entity(
        &self, application_id: ApplicationId, kind: SessionKind, vendor_data: &VendorData,
    ) -> Result<Option<Entity>, RepoError> {
        let state = self.state();
        let key = vendor_data.key();
        Ok(state
            .entities
            .iter()
            .find(|(app, e)| *app == application_id && e.kind == kind && e.vendor_data.key() == key)
            .map(|(_, e)| counted(&state, application_id, e)))
    }

    async fn update_entity(
        &self, application_id: ApplicationId, kind: SessionKind, vendor_data: &VendorData,
        update: &crate::entity::EntityUpdate,
    ) -> Result<Option<Entity>, RepoError> {
        let profile = &update.profile;
        {
            let mut state = self.state();
            let key = vendor_data.key();
            let Some((_, entity)) = state.entities.iter_mut().find(|(app, e)| {
                *app == application_id && e.kind == kind && e.vendor_data.key() == key
            }) else {
                return Ok(None);
            };
            if let Some(name) = &profile.display_name {
                entity.display_name = name.clone();
            }
            if let Some(metadata) = &profile.metadata {
                entity.metadata = metadata.clone();
            }
            if let Some(change) = update.status.as_ref().filter(|c| c.status != entity.status) {
                entity.status = change.status;
                entity.status_reason = change.reason.clone();
                entity.status_updated_at = Some(update.at);
            }
        }
        self.find_entity(application_id, kind, vendor_data).await
    }

    async fn create_entity(
        &self, application_id: ApplicationId, new: &crate::entity::NewEntity,
    ) -> Result<Option<Entity>, RepoError> {
        {
            let mut state = self.state();
            let key = new.vendor_data.key();
            if state.entities.iter().any(|(app, e)| {
                *app == application_id && e.kind == new.kind && e.vendor_data.key() == key
            }) {
                return Ok(None);
            }
            state.entities.push((
                application_id,
                Entity {
                    id: new.id,
                    kind: new.kind,
                    vendor_data: new.vendor_data.clone(),
                    status: new.status,
                    display_name: new.display_name.clone(),
                    metadata: new.metadata.clone(),
                    counts: Default::default(),
                    created_at: new.created_at,
                    status_reason: None,
                    status_updated_at: None,
                },
            ));
        }
        self.find_entity(application_id, new.kind, &new.vendor_data).await
    }

    async fn list_entities(
        &self, application_id: ApplicationId, kind: SessionKind,
        filter: &crate::entity::EntityFilter,
    ) -> Result<crate::entity::EntityPage, RepoError> {
        let state = self.state();
        let mut matching: Vec<Entity> = state
            .entities
            .iter()
            .filter(|(app, e)| *app == application_id && e.kind == kind)
            .filter(|(_, e)| filter.statuses.is_empty() || filter.statuses.contains(&e.status))
            .filter(|(_, e)| {
                filter.search.as_deref().is_none_or(|needle| {
                    e.vendor_data.as_str().to_lowercase().contains(needle)
                        || e.display_name
                            .as_deref()
                            .is_some_and(|n| n.to_lowercase().contains(needle))
                })
            })
            .map(|(_, e)| counted(&state, application_id, e))
            .collect();
        matching.sort_by_key(|e| std::cmp::Reverse(e.created_at));
        let (count, results) = super::page(matching, filter.offset, filter.limit);
        Ok(crate::entity::EntityPage { count, results })
    }

    async fn delete_entities(
        &self, application_id: ApplicationId, kind: SessionKind,
        selection: Option<(&[VendorData], &[EntityId])>,
    ) -> Result<u64, RepoError> {
        let mut state = self.state();
        let chosen = |e: &Entity| {
            e.kind == kind
                && selection.is_none_or(|(names, ids)| {
                    names.iter().any(|v| v.key() == e.vendor_data.key()) || ids.contains(&e.id)
                })
        };
        let keys: Vec<String> = state
            .entities
            .iter()
            .filter(|(app, e)| *app == application_id && chosen(e))
            .map(|(_, e)| e.vendor_data.key())
            .collect();
        state.sessions.retain(|(r, _)| {
            !(r.session.application_id == application_id
                && r.session.kind == kind
                && r.session.vendor_data.as_ref().is_some_and(|v| keys.contains(&v.key())))
        });
        state.entities.retain(|(app, e)| !(*app == application_id && chosen(e)));
        Ok(keys.len() as u64)
    }
}
