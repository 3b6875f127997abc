//! The decision payloads: V3 (both kinds, one array per block) and V2 (user sessions, the first
//! item of each block without its `node_id`). Items are written as the exact JSON recorded.

use chrono::{DateTime, SecondsFormat, Utc};
use handoff_domain::{FeatureBlock, SessionRecord, StoredSession};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::json;
use serde_json::value::RawValue;

/// Timestamps on the wire: RFC 3339, UTC, `Z`, microseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The V3 decision payload of a session.
pub struct V3Decision<'a>(pub &'a SessionRecord);

/// The V3 decision payload with the session's `events` (`?include=events`, an extension).
pub struct V3DecisionWithEvents<'a>(pub &'a SessionRecord, pub &'a [crate::wire::SessionEvent]);

/// The V2 decision payload of a user session.
pub struct V2Decision<'a>(pub &'a SessionRecord);

/// The session's fields; `v3` adds `session_kind` and the presentation options.
fn head<M: SerializeMap>(map: &mut M, s: &StoredSession, v3: bool) -> Result<(), M::Error> {
    map.serialize_entry("session_id", &s.id.to_string())?;
    if v3 {
        map.serialize_entry("session_kind", s.kind.as_str())?;
    }
    map.serialize_entry("session_number", &s.session_number)?;
    map.serialize_entry("session_url", &s.session_url)?;
    map.serialize_entry("status", s.status.as_str())?;
    map.serialize_entry("workflow_id", &s.workflow_id.to_string())?;
    map.serialize_entry("features", &s.features)?;
    map.serialize_entry("vendor_data", &s.vendor_data.as_ref().map(|v| v.as_str()))?;
    map.serialize_entry("metadata", &s.metadata)?;
    map.serialize_entry("callback", &s.callback)?;
    // Present only when given, so that the contract's payloads stay as documented.
    if v3 {
        let options = &s.options;
        if let Some(method) = options.callback_method {
            map.serialize_entry("callback_method", method.as_str())?;
        }
        if let Some(language) = &options.language {
            map.serialize_entry("language", language)?;
        }
        if let Some(portrait) = &options.portrait_image {
            map.serialize_entry("portrait_image", portrait)?;
        }
    }
    map.serialize_entry("contact_details", &s.contact_details)?;
    map.serialize_entry("expected_details", &s.expected_details)?;
    map.serialize_entry("shared_from_session", &s.shared_from_session.map(|id| id.to_string()))
}

fn tail<M: SerializeMap>(map: &mut M, record: &SessionRecord) -> Result<(), M::Error> {
    let reviews: Vec<_> = record
        .reviews
        .iter()
        .map(|r| {
            json!({
                "user": r.user,
                "new_status": r.new_status.as_str(),
                "comment": r.comment,
                "created_at": timestamp(r.created_at),
            })
        })
        .collect();
    map.serialize_entry("reviews", &reviews)?;
    map.serialize_entry("created_at", &timestamp(record.session.created_at))?;
    map.serialize_entry("expires_at", &timestamp(record.session.expires_at))
}

fn v3<M: SerializeMap>(map: &mut M, record: &SessionRecord) -> Result<(), M::Error> {
    head(map, &record.session, true)?;
    for block in FeatureBlock::for_kind(record.session.kind) {
        let items: Option<Vec<&RawValue>> =
            record.block(*block).map(|items| items.iter().map(|item| item.json()).collect());
        map.serialize_entry(block.v3_key(), &items)?;
    }
    tail(map, record)
}

impl Serialize for V3Decision<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        v3(&mut map, self.0)?;
        map.end()
    }
}

impl Serialize for V3DecisionWithEvents<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        v3(&mut map, self.0)?;
        map.serialize_entry("events", self.1)?;
        map.end()
    }
}

impl Serialize for V2Decision<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.0;
        let mut map = serializer.serialize_map(None)?;
        head(&mut map, &record.session, false)?;
        for block in FeatureBlock::for_kind(record.session.kind) {
            if let Some(key) = block.v2_key() {
                map.serialize_entry(key, &record.v2_block(*block))?;
            }
        }
        tail(&mut map, record)?;
        map.end()
    }
}

/// Which decision payload to answer with.
pub enum Form {
    /// V3.
    V3,
    /// V3 with the session's `events`.
    V3WithEvents(Vec<crate::wire::SessionEvent>),
    /// V2.
    V2,
}

/// The decision of `record` as a 200 answer; a large one is streamed ([`crate::streamed`]).
pub fn answer(record: SessionRecord, form: Form) -> actix_web::HttpResponse {
    let items: usize = record
        .blocks
        .iter()
        .flat_map(|(_, items)| items)
        .map(|item| item.json().get().len() + 1)
        .sum();
    let reviews: usize =
        record.reviews.iter().map(|r| 128 + r.comment.as_ref().map_or(0, String::len)).sum();
    let portrait = record.session.options.portrait_image.as_ref().map_or(0, String::len);
    let size = 4096 + items + reviews + portrait;
    crate::streamed::json_ok(size, move |writer| match &form {
        Form::V3 => serde_json::to_writer(writer, &V3Decision(&record)),
        Form::V3WithEvents(events) => {
            serde_json::to_writer(writer, &V3DecisionWithEvents(&record, events))
        }
        Form::V2 => serde_json::to_writer(writer, &V2Decision(&record)),
    })
}
