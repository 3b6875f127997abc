//! What the handlers check that the derived OpenAPI schemas do not say, added to the document
//! so that it describes exactly what the server accepts: a client generated from it cannot
//! build a request the server refuses for its shape (Schemathesis's `positive_data_acceptance`
//! check holds it to that). What depends on stored state — an application that exists, a
//! `vendor_data` not yet taken, a block of the session's kind — no schema can say; those
//! refusals are listed where Schemathesis is configured (`xtask/src/schemathesis.rs`).

use handoff_domain::limits::*;
use handoff_domain::session_options::LANGUAGES;
use handoff_domain::webhook::{WEBHOOK_VERSIONS, WebhookType};
use handoff_domain::{Feature, VendorData};
use serde_json::{Value, json};

/// Applies every constraint to the document; the places it did not find (none, unless a schema
/// was renamed: a test holds it to that).
pub(crate) fn tighten(doc: &mut Value) -> Vec<String> {
    let mut missed = Vec::new();
    required_members_are_not_null(doc);
    let vendor_data = json!({"type": "string", "pattern": vendor_data_pattern(), "maxLength": MAX_VENDOR_DATA_CHARS});
    let schemas = [
        ("CreateSessionBody/properties/vendor_data", vendor_data.clone()),
        ("CreateSessionBody/properties/callback", callback()),
        (
            "CreateSessionBody/properties/language",
            json!({"type": ["string", "null"], "enum": LANGUAGES.iter().copied().map(Some).chain([None]).collect::<Vec<_>>()}),
        ),
        (
            "CreateSessionBody/properties/portrait_image",
            json!({"type": ["string", "null"], "minLength": 4, "maxLength": MAX_PORTRAIT_IMAGE_CHARS,
                "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"}),
        ),
        ("ImportBody/properties/vendor_data", vendor_data.clone()),
        (
            "ImportBody/properties/share_token",
            json!({"type": "string", "minLength": 1, "maxLength": MAX_SHARE_TOKEN_CHARS}),
        ),
        ("CreateEntityBody/properties/vendor_data", vendor_data.clone()),
        ("CreateEntityBody/properties/display_name", display_name()),
        ("UpdateEntityBody/properties/display_name", display_name()),
        (
            "ReviewBody/properties/new_status",
            json!({"type": "string", "enum": ["Approved", "Declined", "In Review"]}),
        ),
        (
            "UpdateStatusBody/properties/new_status",
            json!({"type": "string", "enum": ["Approved", "Declined", "Resubmitted"]}),
        ),
        (
            "UpdateStatusBody/properties/comment",
            json!({"type": ["string", "null"], "maxLength": MAX_COMMENT_CHARS}),
        ),
        (
            "ShareBody/properties/ttl_in_seconds",
            json!({"type": ["integer", "null"], "minimum": MIN_TTL_SECONDS, "maximum": MAX_TTL_SECONDS}),
        ),
        ("CreateWorkflowBody/allOf/1/properties/features", features()),
        ("CreateWorkflowBody/allOf/1/properties/workflow_label", label(MAX_WORKFLOW_LABEL_CHARS)),
        ("CreateWorkflowBody/allOf/1/properties/session_expiration_time", expiration()),
        // In a change, `null` leaves the steps as they are, as it does every other member.
        (
            "UpdateWorkflowBody/properties/features",
            json!({"type": ["array", "null"], "minItems": 1}),
        ),
        ("UpdateWorkflowBody/properties/workflow_label", label(MAX_WORKFLOW_LABEL_CHARS)),
        ("UpdateWorkflowBody/properties/session_expiration_time", expiration()),
        ("UpdateWorkflowBody/properties/status", workflow_status()),
        ("SettingsBody/properties/status", workflow_status()),
        ("FeatureBody/properties/label", label(MAX_FEATURE_LABEL_CHARS)),
        ("DestinationBody/properties/label", visible(MAX_DESTINATION_LABEL_CHARS)),
        (
            "DestinationBody/properties/subscribed_events",
            json!({"type": ["array", "null"], "minItems": 1,
                "items": {"type": "string", "enum": WebhookType::ALL.map(WebhookType::as_str)}}),
        ),
        (
            "FeatureBody/properties/feature",
            json!({"type": "string", "enum": Feature::ALL.map(Feature::as_str)}),
        ),
        (
            "DestinationBody/properties/webhook_version",
            json!({"type": ["string", "null"],
                "enum": WEBHOOK_VERSIONS.iter().map(|v| json!(v)).chain([json!(null)]).collect::<Vec<_>>()}),
        ),
        (
            "DestinationBody/properties/url",
            json!({"type": "string", "maxLength": MAX_URL_BYTES,
                // Every URL the server keeps matches (https, no space or control character);
                // the rest of URL syntax (a real host name, no credentials or fragment) is the
                // server's to check, 400 naming `url`.
                "pattern": "^[Hh][Tt][Tt][Pp][Ss]://\\S+$"}),
        ),
        (
            "DeleteSessionsBody",
            json!({"oneOf": [
                {"required": ["session_numbers"], "properties": {
                    "session_numbers": {"type": "array", "minItems": 1, "maxItems": MAX_DELETE_SESSIONS,
                        "items": {"type": "integer", "minimum": 1}},
                    "delete_all": {"enum": [false, null]}}},
                {"required": ["delete_all"], "properties": {
                    "session_numbers": {"type": ["array", "null"], "maxItems": 0},
                    "delete_all": {"const": true}}}
            ]}),
        ),
        (
            "DeleteEntitiesBody",
            json!({"oneOf": [
                {"anyOf": [
                    {"required": ["vendor_data_list"], "properties": {"vendor_data_list": {"type": "array", "minItems": 1}}},
                    {"required": ["didit_internal_id_list"], "properties": {"didit_internal_id_list": {"type": "array", "minItems": 1}}}
                ], "properties": {"delete_all": {"enum": [false, null]}}},
                {"required": ["delete_all"], "properties": {
                    "vendor_data_list": {"type": ["array", "null"], "maxItems": 0},
                    "didit_internal_id_list": {"type": ["array", "null"], "maxItems": 0},
                    "delete_all": {"const": true}}}
            ]}),
        ),
        (
            "DeleteEntitiesBody/properties/vendor_data_list",
            json!({"type": ["array", "null"], "maxItems": MAX_DELETE_ENTITIES, "items": vendor_data}),
        ),
        (
            "DeleteEntitiesBody/properties/didit_internal_id_list",
            json!({"type": ["array", "null"], "maxItems": MAX_DELETE_ENTITIES}),
        ),
    ];
    for (path, patch) in schemas {
        if !merge(doc.pointer_mut(&format!("/components/schemas/{path}")), patch) {
            missed.push(path.to_owned());
        }
    }
    // Items: objects with a non-empty string `node_id` and `status`.
    if let Some(Value::Object(blocks)) =
        doc.pointer_mut("/components/schemas/RecordResults/properties")
    {
        for (name, block) in blocks.iter_mut() {
            if name != "status" {
                merge(
                    Some(block),
                    json!({"items": {"type": "object",
                    "required": ["node_id", "status"],
                    "properties": {"node_id": {"type": "string", "minLength": 1},
                        "status": {"type": "string", "minLength": 1}}}}),
                );
            }
        }
    }
    merge(
        doc.pointer_mut("/components/schemas/RecordResults"),
        json!({"additionalProperties": false}),
    );

    let statuses = "Not Started|In Progress|Awaiting User|In Review|Approved|Declined|Resubmitted|Expired|Abandoned|Kyc Expired";
    let queries = [
        ("/v3/sessions/", "status", listed(statuses)),
        (
            "/v3/sessions/",
            "session_kind",
            json!({"type": "string", "enum": ["user", "business", "all"]}),
        ),
        (
            "/v3/sessions/",
            "vendor_data",
            json!({"type": "string", "pattern": vendor_data_pattern(), "maxLength": MAX_VENDOR_DATA_CHARS}),
        ),
        ("/v3/sessions/", "date_from", date_or_time()),
        ("/v3/sessions/", "date_to", date_or_time()),
        ("/v3/users/", "status", entity_statuses()),
        ("/v3/businesses/", "status", entity_statuses()),
    ];
    for (path, name, patch) in queries {
        if !merge(query_schema(doc, path, name), patch) {
            missed.push(format!("{path}?{name}"));
        }
    }
    // The guarded writes' `Idempotency-Key`: 1 to 255 visible ASCII characters.
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        let parameters = paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
            .filter_map(|op| op.get_mut("parameters")?.as_array_mut())
            .flatten()
            .filter(|p| p["name"] == "Idempotency-Key");
        for parameter in parameters {
            merge(
                parameter.get_mut("schema"),
                json!({"type": "string", "pattern": format!("^[!-~]{{1,{MAX_IDEMPOTENCY_KEY_CHARS}}}$")}),
            );
        }
    }
    // A destination is created with a `url`; a change may leave it out.
    merge(
        doc.pointer_mut("/paths/~1v3~1webhook~1destinations~1/post/requestBody/content/application~1json/schema"),
        json!({"allOf": [{"$ref": "#/components/schemas/DestinationBody"}, {"required": ["url"]}]}),
    );
    match doc.pointer_mut(
        "/paths/~1v3~1webhook~1destinations~1/post/requestBody/content/application~1json/schema",
    ) {
        Some(Value::Object(schema)) => {
            schema.remove("$ref");
        }
        _ => missed.push("POST /v3/webhook/destinations/".to_owned()),
    }
    missed
}

fn display_name() -> Value {
    visible(MAX_DISPLAY_NAME_CHARS)
}

/// 1 to `max` characters, none of them a control character.
fn visible(max: usize) -> Value {
    json!({"type": ["string", "null"], "pattern": format!("^[^\\u0000-\\u001f\\u007f-\\u009f]{{1,{max}}}$")})
}

fn label(max: usize) -> Value {
    json!({"type": ["string", "null"], "minLength": 1, "maxLength": max})
}

fn expiration() -> Value {
    json!({"type": ["integer", "null"], "minimum": MIN_SESSION_EXPIRATION_SECONDS, "maximum": MAX_SESSION_EXPIRATION_SECONDS})
}

fn workflow_status() -> Value {
    json!({"type": ["string", "null"], "enum": ["published", "draft", null]})
}

fn features() -> Value {
    json!({"type": "array", "minItems": 1})
}

fn entity_statuses() -> Value {
    listed("ACTIVE|FLAGGED|BLOCKED")
}

/// A comma-separated list of `names` (`a|b|c`), as the list filters read it: spaces around
/// each, empty entries skipped.
fn listed(names: &str) -> Value {
    json!({"type": "string", "pattern": format!("^\\s*({names})?\\s*(,\\s*({names})?\\s*)*$")})
}

fn date_or_time() -> Value {
    json!({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]})
}

/// `callback`: http(s), no control or white-space character, at most 2,048 characters.
fn callback() -> Value {
    json!({"type": ["string", "null"], "maxLength": MAX_CALLBACK_CHARS,
        "pattern": "^https?://[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"})
}

/// Every `vendor_data` accepted: characters of one class, and at least one of them not a dot
/// unless there are three or more (`.` and `..` are refused).
fn vendor_data_pattern() -> String {
    let class = vendor_data_class("");
    let no_dot = vendor_data_class(".");
    format!("^(?:{class}*{no_dot}{class}*|\\.{{3,}})$")
}

/// One character class of every character `vendor_data` may hold, less `also_refused`.
fn vendor_data_class(also_refused: &str) -> String {
    let mut class = String::from("[^");
    for c in also_refused.chars() {
        class.push('\\');
        class.push(c);
    }
    for (start, end) in VendorData::refused_ranges() {
        let escape = |c: char| {
            let n = u32::from(c);
            if n <= 0xFFFF { format!("\\u{n:04x}") } else { c.to_string() }
        };
        class.push_str(&escape(start));
        if end != start {
            class.push('-');
            class.push_str(&escape(end));
        }
    }
    class.push(']');
    class
}

/// The schema of query parameter `name` of every operation on `path`.
fn query_schema<'a>(doc: &'a mut Value, path: &str, name: &str) -> Option<&'a mut Value> {
    let pointer = format!("/paths/{}", path.replace('~', "~0").replace('/', "~1"));
    let item = doc.pointer_mut(&pointer)?.as_object_mut()?;
    item.values_mut()
        .filter_map(|op| op.get_mut("parameters")?.as_array_mut())
        .flatten()
        .find(|p| p["name"] == name && p["in"] == "query")
        .and_then(|p| p.get_mut("schema"))
}

/// Overwrites `target`'s members with `patch`'s; whether there was a target.
fn merge(target: Option<&mut Value>, patch: Value) -> bool {
    match (target, patch) {
        (Some(Value::Object(target)), Value::Object(patch)) => {
            target.extend(patch);
            true
        }
        _ => false,
    }
}

/// A member a schema requires may not be `null`: the handlers read `null` as absent.
fn required_members_are_not_null(doc: &mut Value) {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(object) => {
                let required: Vec<String> = object
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                if let Some(Value::Object(properties)) = object.get_mut("properties") {
                    for name in required {
                        if let Some(Value::Object(property)) = properties.get_mut(&name) {
                            if let Some(Value::Array(types)) = property.get_mut("type") {
                                types.retain(|t| t != "null");
                                if types.len() == 1 {
                                    let only = types[0].clone();
                                    property.insert("type".into(), only);
                                }
                            }
                            if let Some(Value::Array(choices)) = property.get_mut("oneOf") {
                                choices.retain(|c| c.get("type") != Some(&json!("null")));
                            }
                        }
                    }
                }
                object.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(doc);
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::*;

    #[test]
    fn every_constraint_finds_its_place() {
        let mut document = serde_json::to_value(crate::openapi::HandoffApi::openapi()).unwrap();
        assert_eq!(tighten(&mut document), Vec::<String>::new());
    }

    #[test]
    fn the_vendor_data_pattern_names_what_the_domain_refuses() {
        let pattern = vendor_data_pattern();
        assert!(VendorData::parse("a\u{200b}b").is_err());
        assert!(VendorData::parse("Ana María").is_ok());
        assert!(!pattern.contains("\\u0041"));
        // The pattern matches exactly what the domain accepts.
        let compiled = regex::Regex::new(&pattern).unwrap();
        for sample in [
            "ana-01",
            "Ana María",
            ".",
            "..",
            "...",
            "a.",
            ".a",
            "ana\u{3164}",
            "ana\u{a0}",
            "\u{430}na",
            "田中",
            "a\u{200b}",
            "\u{e0061}",
            "a\tb",
            "a\u{0}",
            "a\u{85}",
            "\u{feff}a",
            "a\u{202e}",
            "a\u{1f}",
        ] {
            assert_eq!(compiled.is_match(sample), VendorData::parse(sample).is_ok(), "{sample:?}");
        }
    }
}
