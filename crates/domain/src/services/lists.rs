//! Lists and blocklists of the caller: Didit's Lists API (`/v3/lists/`) and its blocklist
//! shortcut (`/v3/blocklist/add/`, `/v3/blocklist/remove/`).

use chrono::{DateTime, Utc};

use super::{Error, Ports};
use crate::application::Caller;
use crate::error::ValidationErrors;
use crate::ids::SessionId;
use crate::lists::{
    Entry, EntrySelection, EntryType, List, ListId, ListType, MAX_LISTS, system_list_id,
};
use crate::session::SessionRecord;

/// A list to make.
#[derive(Clone, Debug, Default)]
pub struct NewList {
    /// 1 to 100 characters, unique in the application.
    pub name: Option<String>,
    /// Up to 1,000 characters.
    pub description: Option<String>,
    /// `allowlist` or `custom`.
    pub list_type: Option<String>,
    /// One of Didit's entry types.
    pub entry_type: Option<String>,
}

/// An entry to add: a value, or the session to take it from, or both.
#[derive(Clone, Debug, Default)]
pub struct AddEntry {
    /// The value, of the list's entry type.
    pub value: Option<String>,
    /// The caller's session whose value of the list's entry type is added.
    pub reference_session_id: Option<SessionId>,
    /// Up to 200 characters.
    pub display_label: Option<String>,
    /// Up to 1,000 characters.
    pub comment: Option<String>,
}

/// The flags of `POST /v3/blocklist/add/` and `…/remove/`: which of the session's values.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlocklistFlags {
    /// Its face template.
    pub face: bool,
    /// Its document number.
    pub document: bool,
    /// Its phone number.
    pub phone: bool,
    /// Its email address.
    pub email: bool,
}

impl BlocklistFlags {
    /// The flagged entry types.
    pub(super) fn types(self) -> Vec<EntryType> {
        [
            (self.face, EntryType::Face),
            (self.document, EntryType::Document),
            (self.phone, EntryType::Phone),
            (self.email, EntryType::Email),
        ]
        .into_iter()
        .filter_map(|(on, entry_type)| on.then_some(entry_type))
        .collect()
    }
}

/// Makes, reads, changes and deletes lists, and adds and removes their entries.
#[derive(Clone)]
pub struct ListService {
    ports: Ports,
}

impl ListService {
    pub(super) fn new(ports: Ports) -> Self {
        Self { ports }
    }

    /// Every list of the caller, its system blocklists first (one per entry type), then its
    /// own lists, oldest first; of a type and an entry type when given.
    pub async fn list(
        &self, caller: &Caller, list_type: Option<ListType>, entry_type: Option<EntryType>,
    ) -> Result<Vec<List>, Error> {
        let mut lists = self.all(caller).await?;
        lists.retain(|l| {
            list_type.is_none_or(|t| l.list_type == t)
                && entry_type.is_none_or(|t| l.entry_type == t)
        });
        Ok(lists)
    }

    /// One of the caller's lists.
    pub async fn get(&self, caller: &Caller, id: ListId) -> Result<List, Error> {
        self.all(caller).await?.into_iter().find(|l| l.id == id).ok_or(Error::ListNotFound)
    }

    /// Makes an allowlist or a custom list (system blocklists exist already).
    pub async fn create(&self, caller: &Caller, new: NewList) -> Result<List, Error> {
        let mut errors = ValidationErrors::default();
        let name = text(&mut errors, "name", new.name.as_deref(), 100, true);
        let description = text(&mut errors, "description", new.description.as_deref(), 1000, false);
        let list_type = match new.list_type.as_deref().map(ListType::parse) {
            Some(Some(t @ (ListType::Allowlist | ListType::Custom))) => Some(t),
            Some(Some(ListType::Blocklist)) => {
                errors.add(
                    "list_type",
                    "blocklists are the system's, one per entry type; make an allowlist or a \
                     custom list.",
                );
                None
            }
            _ => {
                errors.add("list_type", "must be allowlist or custom.");
                None
            }
        };
        let entry_type = match new.entry_type.as_deref().map(EntryType::parse) {
            Some(Some(t)) => Some(t),
            _ => {
                errors.add("entry_type", "must be one of Didit's entry types.");
                None
            }
        };
        errors.into_result().map_err(Error::Invalid)?;
        let (Some(name), Some(list_type), Some(entry_type)) = (name, list_type, entry_type) else {
            return Err(Error::Invalid(ValidationErrors::single("name", "is required.")));
        };
        let lists = self.all(caller).await?;
        if lists.iter().filter(|l| !l.is_system).count() >= MAX_LISTS {
            return Err(Error::Invalid(ValidationErrors::single(
                "name",
                format!("an application holds at most {MAX_LISTS} lists of its own."),
            )));
        }
        if lists.iter().any(|l| l.name == name) {
            return Err(name_taken());
        }
        let list = List {
            id: self.ports.ids.uuid(),
            name,
            description,
            list_type,
            entry_type,
            is_system: false,
            entry_count: 0,
            last_entry_added_at: None,
            created_at: self.ports.clock.now(),
        };
        if !self.ports.lists.create_list(caller.application_id, &list).await? {
            return Err(name_taken());
        }
        Ok(list)
    }

    /// Renames one of the caller's own lists or changes its description.
    pub async fn update(
        &self, caller: &Caller, id: ListId, name: Option<String>, description: Option<String>,
    ) -> Result<List, Error> {
        let mut list = self.own(caller, id).await?;
        let mut errors = ValidationErrors::default();
        let name = text(&mut errors, "name", name.as_deref(), 100, false);
        let description = text(&mut errors, "description", description.as_deref(), 1000, false);
        errors.into_result().map_err(Error::Invalid)?;
        if let Some(name) = name {
            if system_names().any(|n| n == name) {
                return Err(name_taken());
            }
            list.name = name;
        }
        if description.is_some() {
            list.description = description;
        }
        if !self.ports.lists.update_list(caller.application_id, &list).await? {
            return Err(name_taken());
        }
        Ok(list)
    }

    /// Deletes one of the caller's own lists with its entries.
    pub async fn delete(&self, caller: &Caller, id: ListId) -> Result<(), Error> {
        self.own(caller, id).await?;
        if self.ports.lists.delete_list(caller.application_id, id).await? {
            Ok(())
        } else {
            Err(Error::ListNotFound)
        }
    }

    /// A page of a list's entries, newest first, and how many it holds.
    pub async fn entries(
        &self, caller: &Caller, id: ListId, limit: u64, offset: u64,
    ) -> Result<(u64, Vec<Entry>), Error> {
        self.get(caller, id).await?;
        Ok(self.ports.lists.entries(caller.application_id, id, limit, offset).await?)
    }

    /// Adds a value to one of the caller's lists: the one given, or the referenced session's
    /// of the list's entry type.
    pub async fn add_entry(
        &self, caller: &Caller, id: ListId, add: AddEntry,
    ) -> Result<Entry, Error> {
        let list = self.get(caller, id).await?;
        let mut errors = ValidationErrors::default();
        let display_label =
            text(&mut errors, "display_label", add.display_label.as_deref(), 200, false);
        let comment = text(&mut errors, "comment", add.comment.as_deref(), 1000, false);
        errors.into_result().map_err(Error::Invalid)?;
        let value = match (add.value, add.reference_session_id) {
            (Some(value), _) => value,
            (None, Some(session)) => {
                let record = self.session(caller, session).await?;
                list.entry_type.value_in(&record).ok_or_else(|| {
                    Error::Invalid(ValidationErrors::single(
                        "reference_session_id",
                        format!("the session holds no {}.", list.entry_type.as_str()),
                    ))
                })?
            }
            (None, None) => {
                return Err(Error::Invalid(ValidationErrors::single(
                    "value",
                    "is required without reference_session_id.",
                )));
            }
        };
        let entry = Entry {
            id: self.ports.ids.uuid(),
            list_id: list.id,
            entry_type: list.entry_type,
            value: None,
            display_label,
            comment,
            reference_session_id: add.reference_session_id,
            added_by: "api".into(),
            created_at: self.ports.clock.now(),
        };
        let new = super::blocklists::new_entry(&self.ports, entry, &value, list.list_type)?;
        if !self.ports.lists.add_entry(caller.application_id, &new).await? {
            return Err(Error::Invalid(ValidationErrors::single(
                "value",
                "is in this list already.",
            )));
        }
        Ok(new.entry)
    }

    /// Deletes an entry of one of the caller's lists.
    pub async fn delete_entry(
        &self, caller: &Caller, id: ListId, entry: crate::lists::EntryId,
    ) -> Result<(), Error> {
        self.get(caller, id).await?;
        match self
            .ports
            .lists
            .delete_entries(caller.application_id, id, EntrySelection::Id(entry))
            .await?
        {
            0 => Err(Error::EntryNotFound),
            _ => Ok(()),
        }
    }

    /// Adds the session's values of the flagged types to the caller's system blocklists (its
    /// most recent of each; a value listed already stays as it is); the types added.
    pub async fn blocklist_session(
        &self, caller: &Caller, session: SessionId, flags: BlocklistFlags,
    ) -> Result<Vec<EntryType>, Error> {
        let (record, values) = self.flagged(caller, session, flags).await?;
        super::blocklists::add_to_blocklists(&self.ports, &record, values, "blocklist").await
    }

    /// Removes the session's values of the flagged types from the caller's system blocklists;
    /// the types it found listed.
    pub async fn unblocklist_session(
        &self, caller: &Caller, session: SessionId, flags: BlocklistFlags,
    ) -> Result<Vec<EntryType>, Error> {
        let (_, values) = self.flagged(caller, session, flags).await?;
        let mut removed = Vec::new();
        for (entry_type, value) in values {
            let Ok(key) = entry_type.normalize(&value) else { continue };
            let key = self.match_key(entry_type, &key)?;
            let list = system_list_id(caller.application_id, entry_type);
            let which = EntrySelection::MatchKey(&key);
            if self.ports.lists.delete_entries(caller.application_id, list, which).await? > 0 {
                removed.push(entry_type);
            }
        }
        Ok(removed)
    }

    /// The session, with its values of the flagged types; at least one flag must be set.
    async fn flagged(
        &self, caller: &Caller, session: SessionId, flags: BlocklistFlags,
    ) -> Result<(SessionRecord, Vec<(EntryType, String)>), Error> {
        let types = flags.types();
        if types.is_empty() {
            return Err(Error::Invalid(ValidationErrors::single(
                "blocklist_face",
                "set at least one of blocklist_face, blocklist_document, blocklist_phone and \
                 blocklist_email.",
            )));
        }
        let record = self.session(caller, session).await?;
        let values =
            types.into_iter().filter_map(|t| t.value_in(&record).map(|v| (t, v))).collect();
        Ok((record, values))
    }

    /// The caller's session, if its key sees it.
    async fn session(&self, caller: &Caller, id: SessionId) -> Result<SessionRecord, Error> {
        self.ports
            .sessions
            .find_session(caller.application_id, id)
            .await?
            .filter(|r| caller.grant.sees_workflow(r.session.workflow_id))
            .ok_or(Error::SessionNotFound)
    }

    fn match_key(&self, entry_type: EntryType, normalized: &str) -> Result<String, Error> {
        super::blocklists::match_key(&self.ports, entry_type, normalized)
    }

    /// Every list of the caller: its system blocklists, then its own, with their counts.
    async fn all(&self, caller: &Caller) -> Result<Vec<List>, Error> {
        let (stored, counts) = self.ports.lists.lists(caller.application_id).await?;
        let now = self.ports.clock.now();
        let count = |id: ListId| -> (u64, Option<DateTime<Utc>>) {
            counts.iter().find(|(l, _, _)| *l == id).map_or((0, None), |(_, n, at)| (*n, Some(*at)))
        };
        let system = EntryType::ALL.into_iter().map(|entry_type| {
            let id = system_list_id(caller.application_id, entry_type);
            let (entry_count, last_entry_added_at) = count(id);
            List {
                id,
                name: entry_type.system_list_name(),
                description: None,
                list_type: ListType::Blocklist,
                entry_type,
                is_system: true,
                entry_count,
                last_entry_added_at,
                created_at: now,
            }
        });
        let own = stored.into_iter().map(|mut list| {
            (list.entry_count, list.last_entry_added_at) = count(list.id);
            list
        });
        Ok(system.chain(own).collect())
    }

    /// One of the caller's own lists; a system list may not be changed.
    async fn own(&self, caller: &Caller, id: ListId) -> Result<List, Error> {
        let list = self.get(caller, id).await?;
        if list.is_system {
            return Err(Error::SystemList);
        }
        Ok(list)
    }
}

/// The system blocklists' names, which no list of the application's own may take.
fn system_names() -> impl Iterator<Item = String> {
    EntryType::ALL.into_iter().map(EntryType::system_list_name)
}

fn name_taken() -> Error {
    Error::Invalid(ValidationErrors::single("name", "the application has a list of this name."))
}

/// A text member: trimmed, 1 to `max` characters without control characters; `None` when
/// absent (an error when `required`).
fn text(
    errors: &mut ValidationErrors, field: &str, value: Option<&str>, max: usize, required: bool,
) -> Option<String> {
    match value.map(str::trim) {
        None if required => {
            errors.add(field, "is required.");
            None
        }
        None => None,
        Some(text)
            if text.is_empty()
                || text.chars().count() > max
                || text.chars().any(char::is_control) =>
        {
            errors
                .add(field, format!("must be 1 to {max} characters, without control characters."));
            None
        }
        Some(text) => Some(text.to_owned()),
    }
}
