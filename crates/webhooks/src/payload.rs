//! The body of a delivery, Didit's shape: `event_id`, `webhook_type`, `created_at` (the
//! change's time) and `timestamp` (the send's, so that receivers' five-minute window holds on
//! a retry), both integer Unix seconds; `session_id`, `status`, `vendor_data`, `workflow_id`,
//! `metadata` when the session has them; the V3 `decision` for `Approved`, `Declined`,
//! `In Review` and `Abandoned`; `session_kind: "business"` and `business_session_id` for
//! business sessions; `changed_fields` on `data.updated`; for an entity's change its
//! `vendor_data`, `uuid`, what changed and `actor`; and the extensions' own members.
//! docs/webhooks.md shows each.

use handoff_domain::SessionRecord;
use handoff_domain::delivery::DueDelivery;
use handoff_domain::webhook::{WebhookType, carries_decision};
use serde_json::{Map, Value};

/// Renders a session's V3 decision payload (the HTTP layer's, given by the application).
pub type DecisionRenderer = std::sync::Arc<dyn Fn(&SessionRecord) -> Value + Send + Sync>;

/// The members an entity's events copy from their facts: the entity's `vendor_data` and
/// `uuid` (its id), and what changed — `status` and `previous_status` with the change's
/// `reason`, or a profile's `changed_fields` and `changes` (`{previous, current}` per field) —
/// and by whom (`actor`).
const ENTITY_FACTS: [&str; 7] =
    ["vendor_data", "uuid", "previous_status", "reason", "changed_fields", "changes", "actor"];

/// The members the extensions copy from their event's facts.
const EXTENSION_FACTS: [&str; 7] = [
    "jti",
    "for_application_id",
    "application_id",
    "expires_at",
    "source_application_id",
    "trust_review",
    "source_session_id",
];

/// The members a `session.deleted` event copies from its facts: what the receiver needs to find
/// its own record of the session, and why it went.
const DELETION_FACTS: [&str; 4] = ["session_number", "session_kind", "vendor_data", "reason"];

/// The payload of `due`'s event, without `timestamp` (added at each send). `record` is the
/// session as it stands now, if it still exists.
pub fn render(
    due: &DueDelivery, record: Option<&SessionRecord>, decision: &DecisionRenderer,
) -> Value {
    let webhook_type = WebhookType::parse(&due.webhook_type);
    let mut body = Map::new();
    body.insert("event_id".into(), due.event_id.to_string().into());
    body.insert("webhook_type".into(), due.webhook_type.clone().into());
    body.insert("created_at".into(), due.created_at.timestamp().into());
    if let Some(session_id) = due.session_id {
        body.insert("session_id".into(), session_id.to_string().into());
    }
    let status = due
        .facts
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| record.map(|r| r.session.status.as_str().to_owned()));
    let didit = webhook_type.is_some_and(WebhookType::is_didit)
        || webhook_type == Some(WebhookType::SessionImported);
    if didit && let Some(status) = &status {
        body.insert("status".into(), status.clone().into());
    }
    if let Some(record) = record {
        let session = &record.session;
        if let Some(vendor_data) = &session.vendor_data {
            body.insert("vendor_data".into(), vendor_data.as_str().into());
        }
        body.insert("workflow_id".into(), session.workflow_id.to_string().into());
        if let Some(metadata) = &session.metadata {
            body.insert("metadata".into(), metadata.clone());
        }
        if session.kind == handoff_domain::SessionKind::Business {
            body.insert("session_kind".into(), "business".into());
            body.insert("business_session_id".into(), session.id.to_string().into());
        }
        if let Some(source) = session.shared_from_session {
            body.insert("shared_from_session".into(), source.to_string().into());
        }
        let finished = status
            .as_deref()
            .and_then(handoff_domain::SessionStatus::parse)
            .is_some_and(carries_decision);
        if webhook_type == Some(WebhookType::StatusUpdated) && finished
            || webhook_type == Some(WebhookType::DataUpdated)
        {
            body.insert("decision".into(), decision(record));
        }
    }
    if webhook_type.is_some_and(WebhookType::is_entity) {
        for fact in ENTITY_FACTS {
            if let Some(value) = due.facts.get(fact).filter(|v| !v.is_null()) {
                body.insert(fact.into(), value.clone());
            }
        }
    }
    // Which blocks results replaced, by their names in the decision.
    if webhook_type == Some(WebhookType::DataUpdated)
        && let Some(replaced) = due.facts.get("replaced")
    {
        body.insert("changed_fields".into(), replaced.clone());
    }
    if webhook_type == Some(WebhookType::SessionDeleted) {
        for fact in DELETION_FACTS {
            if let Some(value) = due.facts.get(fact).filter(|v| !v.is_null()) {
                body.insert(fact.into(), value.clone());
            }
        }
    }
    if webhook_type.is_some_and(|t| !t.is_didit()) {
        for fact in EXTENSION_FACTS {
            if let Some(value) = due.facts.get(fact) {
                body.insert(fact.into(), value.clone());
            }
        }
    }
    Value::Object(body)
}

/// The exact bytes sent: the stored payload with this send's `timestamp`.
pub fn with_timestamp(payload: &str, timestamp: i64) -> (Vec<u8>, Value) {
    let mut value: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
    if let Value::Object(members) = &mut value {
        members.insert("timestamp".into(), timestamp.into());
    }
    let body = serde_json::to_vec(&value).unwrap_or_default();
    (body, value)
}
