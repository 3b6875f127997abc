//! Lists and blocklists of the caller: Didit's Lists API (`/v3/lists/`) and its blocklist
//! shortcut (`/v3/blocklist/add/`, `/v3/blocklist/remove/`).

use chrono::{DateTime, Utc};

use super::{Error, Ports};
use crate::application::Caller;
use crate::error::ValidationErrors;
use crate::ids::SessionId;
use crate::lists::{
    Entry, EntrySelection, EntryType, List, ListId, ListType, MAX_LISTS, NewEntry, SessionKeys,
    ip_hex, system_list_id, with_warning,
};
use crate::session::{RecordResults, SessionRecord};

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
    fn types(self) -> Vec<EntryType> {
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
        let new = new_entry(&self.ports, entry, &value, list.list_type)?;
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
        add_to_blocklists(&self.ports, &record, values, "blocklist").await
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
        match_key(&self.ports, entry_type, normalized)
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

/// The entry to store for `value`: normalized, hashed and sealed when personal, shown
/// otherwise; [`Error::Invalid`] naming `value` when it is no value of its type.
fn new_entry(
    ports: &Ports, mut entry: Entry, value: &str, list_type: ListType,
) -> Result<NewEntry, Error> {
    let normalized = entry
        .entry_type
        .normalize(value)
        .map_err(|message| Error::Invalid(ValidationErrors::single("value", message.to_owned())))?;
    let match_key = match_key(ports, entry.entry_type, &normalized)?;
    let sealed_value = if entry.entry_type.is_personal() {
        let context = crate::lists::seal_context(entry.id);
        Some(ports.sealer.seal(&context, normalized.as_bytes())?)
    } else {
        entry.value = Some(match entry.entry_type {
            EntryType::User | EntryType::Business => value.trim().to_owned(),
            _ => normalized,
        });
        None
    };
    let range = (entry.entry_type == EntryType::IpAddress)
        .then(|| crate::grant::parse_address_block(&match_key))
        .flatten()
        .map(|block| (ip_hex(block.network()), ip_hex(block.broadcast())));
    Ok(NewEntry { entry, list_type, range, match_key, sealed_value })
}

/// The session's values as the blocklists match them once `results` are recorded over
/// `current`: of each type, the value of the results' block when they record it, else the
/// current one's.
pub(super) fn session_keys(
    ports: &Ports, current: &SessionRecord, results: &RecordResults,
) -> Result<SessionKeys, Error> {
    let items = |block| match results.blocks.iter().find(|(b, _)| *b == block) {
        Some((_, recorded)) => recorded.as_deref(),
        None => current.block(block),
    };
    let mut keys = SessionKeys::default();
    for entry_type in EntryType::ENFORCED {
        let value = entry_type.sources().iter().find_map(|(block, _)| {
            entry_type.value_in_items(*block, items(*block)?).map(|(_, value)| value)
        });
        let Some(normalized) = value.and_then(|v| entry_type.normalize(&v).ok()) else {
            continue;
        };
        match entry_type {
            EntryType::IpAddress => {
                keys.ip = crate::grant::parse_address_block(&normalized).map(|b| ip_hex(b.addr()));
            }
            _ => keys.keys.push(match_key(ports, entry_type, &normalized)?),
        }
    }
    Ok(keys)
}

/// Adds `values` of the session `record` to its application's system blocklists (a value
/// listed already stays, once; one that is no value of its type is left out); the types added.
async fn add_to_blocklists(
    ports: &Ports, record: &SessionRecord, values: Vec<(EntryType, String)>, added_by: &str,
) -> Result<Vec<EntryType>, Error> {
    let application_id = record.session.application_id;
    let now = ports.clock.now();
    let mut added = Vec::new();
    for (entry_type, value) in values {
        let entry = Entry {
            id: ports.ids.uuid(),
            list_id: system_list_id(application_id, entry_type),
            entry_type,
            value: None,
            display_label: record.session.vendor_data.as_ref().map(|v| v.as_str().to_owned()),
            comment: None,
            reference_session_id: Some(record.session.id),
            added_by: added_by.to_owned(),
            created_at: now,
        };
        let new = match new_entry(ports, entry, &value, ListType::Blocklist) {
            Err(Error::Invalid(_)) => continue,
            new => new?,
        };
        ports.lists.add_entry(application_id, &new).await?;
        added.push(entry_type);
    }
    Ok(added)
}

/// When the declined session `record`'s workflow says so (`is_auto_blocklist_enabled`), adds
/// its face template, document, phone and email to the system blocklists and blocks its User
/// or Business, as `actor`.
pub(super) async fn auto_blocklist(
    ports: &Ports, record: &SessionRecord, actor: String,
) -> Result<(), Error> {
    let session = &record.session;
    let workflow =
        ports.workflows.find_workflow(session.application_id, session.workflow_id).await?;
    if !workflow.is_some_and(|w| w.settings.is_auto_blocklist_enabled) {
        return Ok(());
    }
    let types = BlocklistFlags { face: true, document: true, phone: true, email: true }.types();
    let values = types.into_iter().filter_map(|t| t.value_in(record).map(|v| (t, v))).collect();
    add_to_blocklists(ports, record, values, "auto").await?;
    if let Some(vendor_data) = &session.vendor_data {
        let update = crate::entity::EntityUpdate {
            profile: crate::entity::ProfileChange::default(),
            status: Some(crate::entity::EntityStatusChange {
                status: crate::EntityStatus::Blocked,
                reason: Some(format!("session {} declined; blocklisted automatically", session.id)),
            }),
            actor,
            at: ports.clock.now(),
        };
        ports
            .entities
            .update_entity(session.application_id, session.kind, vendor_data, &update)
            .await?;
    }
    Ok(())
}

/// What an entry of `entry_type` holding `normalized` is matched by: its keyed hash when
/// personal, else itself.
fn match_key(ports: &Ports, entry_type: EntryType, normalized: &str) -> Result<String, Error> {
    if entry_type.is_personal() {
        Ok(ports.sealer.fingerprint(&crate::lists::hash_context(entry_type), normalized)?)
    } else {
        Ok(normalized.to_owned())
    }
}

/// Checks the values `results` record over the session `current` ([`EntryType::ENFORCED`],
/// from the blocks recorded now, and the session's `vendor_data`) against the application's
/// system blocklists, and puts the warning of each one listed ([`EntryType::blocklist_risk`])
/// in the item that holds it; whether any was listed. Values recorded before were checked
/// when they were.
pub(super) async fn check_blocklists(
    ports: &Ports, current: &SessionRecord, results: &mut RecordResults,
) -> Result<bool, Error> {
    let application_id = current.session.application_id;
    // (entry type, the block's and the item's place in the results, match key)
    let mut found = Vec::new();
    for entry_type in EntryType::ENFORCED {
        for (at, (block, items)) in results.blocks.iter().enumerate() {
            let Some((item, value)) =
                items.as_ref().and_then(|items| entry_type.value_in_items(*block, items))
            else {
                continue;
            };
            if let Ok(normalized) = entry_type.normalize(&value) {
                let key = match_key(ports, entry_type, &normalized)?;
                found.push((entry_type, Some((at, item)), key));
            }
        }
    }
    // Its vendor_data, in the User or Business blocklist: no item to warn in.
    if let Some(vendor_data) = &current.session.vendor_data {
        found.push((EntryType::of_kind(current.session.kind), None, vendor_data.key()));
    }
    if found.is_empty() {
        return Ok(false);
    }
    let mut lists: Vec<ListId> =
        found.iter().map(|(t, ..)| system_list_id(application_id, *t)).collect();
    lists.dedup();
    let keys: Vec<String> = found.iter().map(|(.., key)| key.clone()).collect();
    let listed = ports.lists.listed(application_id, &lists, &keys).await?;
    let mut any = false;
    for (entry_type, place, key) in found {
        let caught = listed.iter().any(|(t, l)| *t == entry_type && entry_type.catches(l, &key));
        let (Some(risk), Some((at, item))) = (entry_type.blocklist_risk(), place) else {
            any |= caught;
            continue;
        };
        if !caught {
            continue;
        }
        let (block, items) = &mut results.blocks[at];
        let warning = serde_json::json!({
            "feature": block.features().first().map(|f| f.decision_name()),
            "risk": risk,
            "additional_data": null,
            "log_type": "error",
            "short_description": format!("{} in blocklist", entry_type.as_str()),
            "long_description": format!(
                "The {} of this result is in the application's blocklist.",
                entry_type.as_str()
            ),
        });
        if let Some(items) = items
            && let Some(warned) = with_warning(&items[item], &warning)
        {
            items[item] = warned;
            any = true;
        }
    }
    Ok(any)
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
