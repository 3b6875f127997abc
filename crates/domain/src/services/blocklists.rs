//! Blocklists at work: the entries a session's values make, the keys a session keeps of its
//! values, the check of recorded results against the system blocklists, and the workflow's
//! auto-blocklist on decline.

use super::lists::BlocklistFlags;
use super::{Error, Ports};
use crate::error::ValidationErrors;
use crate::lists::{
    Entry, EntryType, ListId, ListType, NewEntry, SessionKeys, ip_hex, system_list_id, with_warning,
};
use crate::session::{RecordResults, SessionRecord};

/// The entry to store for `value`: normalized, hashed and sealed when personal, shown
/// otherwise; [`Error::Invalid`] naming `value` when it is no value of its type.
pub(super) fn new_entry(
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
pub(super) async fn add_to_blocklists(
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
pub(super) fn match_key(
    ports: &Ports, entry_type: EntryType, normalized: &str,
) -> Result<String, Error> {
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

/// A partner's session as the receiver's blocklists see it: the entry types of its values (and
/// of the clone's `vendor_data`) the receiver blocklisted, by name, and the keys the clone
/// keeps of its values for later checks.
pub(super) async fn partner_values(
    ports: &Ports, application_id: crate::ApplicationId, kind: crate::SessionKind,
    vendor_data: Option<&crate::VendorData>,
    blocks: &[(crate::FeatureBlock, Vec<crate::FeatureItem>)],
) -> Result<(Vec<EntryType>, SessionKeys), Error> {
    let items = |block| blocks.iter().find(|(b, _)| *b == block).map(|(_, items)| items.as_slice());
    let (mut found, mut keys) = (Vec::new(), SessionKeys::default());
    for entry_type in EntryType::ENFORCED {
        let value = entry_type.sources().iter().find_map(|(block, _)| {
            entry_type.value_in_items(*block, items(*block)?).map(|(_, value)| value)
        });
        let Some(normalized) = value.and_then(|v| entry_type.normalize(&v).ok()) else {
            continue;
        };
        let key = match_key(ports, entry_type, &normalized)?;
        match entry_type {
            EntryType::IpAddress => {
                keys.ip = crate::grant::parse_address_block(&normalized).map(|b| ip_hex(b.addr()));
            }
            _ => keys.keys.push(key.clone()),
        }
        found.push((entry_type, key));
    }
    if let Some(vendor_data) = vendor_data {
        found.push((EntryType::of_kind(kind), vendor_data.key()));
    }
    let mut lists: Vec<ListId> =
        found.iter().map(|(t, _)| system_list_id(application_id, *t)).collect();
    lists.dedup();
    let searched: Vec<String> = found.iter().map(|(_, key)| key.clone()).collect();
    let listed = ports.lists.listed(application_id, &lists, &searched).await?;
    let mut types: Vec<EntryType> = found
        .iter()
        .filter(|(t, key)| listed.iter().any(|(l, entry)| l == t && t.catches(entry, key)))
        .map(|(t, _)| *t)
        .collect();
    types.sort_by_key(|t| t.as_str());
    types.dedup();
    Ok((types, keys))
}
