//! Lists and their entries in memory.

use super::*;
use crate::lists::{Entry, EntrySelection, List, ListId, NewEntry};

#[async_trait]
impl ListRepository for InMemory {
    async fn lists(
        &self, application_id: ApplicationId,
    ) -> Result<(Vec<List>, Vec<(ListId, u64, DateTime<Utc>)>), RepoError> {
        let state = self.state();
        let lists =
            state.lists.iter().filter(|(a, _)| *a == application_id).map(|(_, l)| l.clone());
        let mut counts: Vec<(ListId, u64, DateTime<Utc>)> = Vec::new();
        for (_, new) in state.list_entries.iter().filter(|(a, _)| *a == application_id) {
            let entry = &new.entry;
            match counts.iter_mut().find(|(id, _, _)| *id == entry.list_id) {
                Some((_, n, at)) => {
                    *n += 1;
                    *at = (*at).max(entry.created_at);
                }
                None => counts.push((entry.list_id, 1, entry.created_at)),
            }
        }
        Ok((lists.collect(), counts))
    }

    async fn create_list(
        &self, application_id: ApplicationId, list: &List,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        if state.lists.iter().any(|(a, l)| *a == application_id && l.name == list.name) {
            return Ok(false);
        }
        state.lists.push((application_id, list.clone()));
        Ok(true)
    }

    async fn update_list(
        &self, application_id: ApplicationId, list: &List,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        if state
            .lists
            .iter()
            .any(|(a, l)| *a == application_id && l.name == list.name && l.id != list.id)
        {
            return Ok(false);
        }
        if let Some((_, stored)) =
            state.lists.iter_mut().find(|(a, l)| *a == application_id && l.id == list.id)
        {
            stored.name.clone_from(&list.name);
            stored.description.clone_from(&list.description);
        }
        Ok(true)
    }

    async fn delete_list(
        &self, application_id: ApplicationId, id: ListId,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let before = state.lists.len();
        state.lists.retain(|(a, l)| !(*a == application_id && l.id == id));
        let deleted = state.lists.len() < before;
        if deleted {
            state.list_entries.retain(|(a, e)| !(*a == application_id && e.entry.list_id == id));
        }
        Ok(deleted)
    }

    async fn entries(
        &self, application_id: ApplicationId, list_id: ListId, limit: u64, offset: u64,
    ) -> Result<(u64, Vec<Entry>), RepoError> {
        let state = self.state();
        let mut entries: Vec<Entry> = state
            .list_entries
            .iter()
            .filter(|(a, e)| *a == application_id && e.entry.list_id == list_id)
            .map(|(_, e)| e.entry.clone())
            .collect();
        entries.reverse();
        Ok(super::page(entries, offset, limit))
    }

    async fn add_entry(
        &self, application_id: ApplicationId, entry: &NewEntry,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let listed = state.list_entries.iter().any(|(a, e)| {
            *a == application_id
                && e.entry.list_id == entry.entry.list_id
                && e.match_key == entry.match_key
        });
        if !listed {
            state.list_entries.push((application_id, entry.clone()));
        }
        Ok(!listed)
    }

    async fn listed(
        &self, application_id: ApplicationId, lists: &[ListId], keys: &[String],
    ) -> Result<Vec<(crate::lists::EntryType, String)>, RepoError> {
        Ok(self
            .state()
            .list_entries
            .iter()
            .filter(|(a, e)| {
                *a == application_id
                    && lists.contains(&e.entry.list_id)
                    && (e.entry.entry_type == crate::lists::EntryType::IpAddress
                        || keys.contains(&e.match_key))
            })
            .map(|(_, e)| (e.entry.entry_type, e.match_key.clone()))
            .collect())
    }

    async fn delete_entries(
        &self, application_id: ApplicationId, list_id: ListId, which: EntrySelection<'_>,
    ) -> Result<u64, RepoError> {
        let mut state = self.state();
        let before = state.list_entries.len();
        state.list_entries.retain(|(a, e)| {
            let chosen = match which {
                EntrySelection::Id(id) => e.entry.id == id,
                EntrySelection::MatchKey(key) => e.match_key == key,
            };
            !(*a == application_id && e.entry.list_id == list_id && chosen)
        });
        Ok((before - state.list_entries.len()) as u64)
    }
}
