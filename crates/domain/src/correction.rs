//! A reviewer's corrections of extracted data, Didit's `update-data` (the ID document's fields,
//! `id_verifications`) and `update-poa-data` (the proof of address's, `poa_verifications`):
//! which members each takes and what each may hold. `null` clears a member.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::{FeatureBlock, ValidationErrors};

/// The longest corrected text member, in characters.
pub const TEXT_MAX_CHARS: usize = 1000;

/// Didit's document types (`document_type` of `update-data`).
pub const DOCUMENT_TYPES: [&str; 12] =
    ["P", "DL", "ID", "RP", "SSC", "HIC", "WP", "TC", "VISA", "PSC", "BC", "OTHER"];
/// Genders as documents print them.
pub const GENDERS: [&str; 3] = ["M", "F", "U"];
/// Marital statuses.
pub const MARITAL_STATUSES: [&str; 5] = ["SINGLE", "MARRIED", "DIVORCED", "WIDOWED", "UNKNOWN"];
/// Proof-of-address document types (`document_type` of `update-poa-data`).
pub const POA_DOCUMENT_TYPES: [&str; 5] = [
    "UTILITY_BILL",
    "BANK_STATEMENT",
    "GOVERNMENT_ISSUED_DOCUMENT",
    "OTHER_POA_DOCUMENT",
    "UNKNOWN",
];

/// What a member may hold.
enum Rule {
    Text,
    Date,
    Country,
    OneOf(&'static [&'static str]),
    Object,
}

/// The members of `update-data`.
const DATA_RULES: [(&str, Rule); 17] = [
    ("document_type", Rule::OneOf(&DOCUMENT_TYPES)),
    ("document_subtype", Rule::Text),
    ("document_number", Rule::Text),
    ("personal_number", Rule::Text),
    ("date_of_birth", Rule::Date),
    ("date_of_issue", Rule::Date),
    ("expiration_date", Rule::Date),
    ("issuing_state", Rule::Country),
    ("first_name", Rule::Text),
    ("last_name", Rule::Text),
    ("gender", Rule::OneOf(&GENDERS)),
    ("address", Rule::Text),
    ("place_of_birth", Rule::Text),
    ("nationality", Rule::Text),
    ("marital_status", Rule::OneOf(&MARITAL_STATUSES)),
    ("extra_fields", Rule::Object),
    ("parsed_address", Rule::Object),
];

/// The members of `update-poa-data`.
const POA_RULES: [(&str, Rule); 9] = [
    ("issuing_state", Rule::Country),
    ("document_type", Rule::OneOf(&POA_DOCUMENT_TYPES)),
    ("document_language", Rule::Text),
    ("issuer", Rule::Text),
    ("issue_date", Rule::Date),
    ("poa_address", Rule::Text),
    ("name_on_document", Rule::Text),
    ("extra_fields", Rule::Object),
    ("poa_parsed_address", Rule::Object),
];

/// Checked corrections of one block's first item: member → new value.
#[derive(Clone, Debug, PartialEq)]
pub struct Correction {
    block: FeatureBlock,
    changes: Map<String, Value>,
}

impl Correction {
    /// Corrections of the ID document's data (`update-data`).
    pub fn of_id_document(members: Map<String, Value>) -> Result<Self, ValidationErrors> {
        Self::checked(FeatureBlock::IdVerifications, members, &DATA_RULES)
    }

    /// Corrections of the proof of address's data (`update-poa-data`).
    pub fn of_proof_of_address(members: Map<String, Value>) -> Result<Self, ValidationErrors> {
        Self::checked(FeatureBlock::PoaVerifications, members, &POA_RULES)
    }

    /// The block whose first item is corrected.
    pub fn block(&self) -> FeatureBlock {
        self.block
    }

    /// The members given and their new values.
    pub fn changes(&self) -> &Map<String, Value> {
        &self.changes
    }

    /// `members`, each checked against `rules`; every refused one named.
    fn checked(
        block: FeatureBlock, members: Map<String, Value>, rules: &[(&str, Rule)],
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if members.is_empty() {
            errors.add("body", "Name at least one member to correct.");
        }
        for (name, value) in &members {
            match rules.iter().find(|(known, _)| known == name) {
                Some((_, rule)) => {
                    if let Some(message) = refusal(value, rule) {
                        errors.add(name.as_str(), message);
                    }
                }
                None => errors.add(name.as_str(), "is not a member this correction takes."),
            }
        }
        errors.into_result()?;
        Ok(Self { block, changes: members })
    }
}

/// Why `value` breaks `rule`, if it does.
fn refusal(value: &Value, rule: &Rule) -> Option<&'static str> {
    let text = value.as_str();
    match (rule, text) {
        _ if value.is_null() => None,
        (Rule::Object, _) => (!value.is_object()).then_some("must be a JSON object."),
        (_, None) => Some("must be a string."),
        (Rule::Text, Some(t)) => {
            (t.chars().count() > TEXT_MAX_CHARS).then_some("must be at most 1,000 characters.")
        }
        (Rule::Date, Some(t)) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .is_err()
            .then_some("must be a date, YYYY-MM-DD."),
        (Rule::Country, Some(t)) => (t.len() != 3 || !t.bytes().all(|b| b.is_ascii_uppercase()))
            .then_some("must be an ISO 3166-1 alpha-3 code (ESP)."),
        (Rule::OneOf(allowed), Some(t)) => {
            (!allowed.contains(&t)).then_some("is not one of the values the document lists.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn members(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn each_member_is_checked_by_its_rule_and_null_clears() {
        let fine = Correction::of_id_document(members(json!({
            "document_type": "P", "date_of_birth": "1990-02-28", "issuing_state": "ESP",
            "first_name": "Ana", "extra_fields": {}, "gender": null
        })))
        .unwrap();
        assert_eq!(fine.block(), FeatureBlock::IdVerifications);
        assert_eq!(fine.changes().len(), 6);
        let refused = Correction::of_id_document(members(json!({
            "document_type": "UTILITY_BILL", "date_of_birth": "28/02/1990",
            "issuing_state": "es", "first_name": 7, "extra_fields": [], "colour": "blue",
            "last_name": "x".repeat(TEXT_MAX_CHARS + 1)
        })))
        .unwrap_err();
        let named: Vec<&str> = refused.fields().collect();
        assert_eq!(
            named,
            [
                "colour",
                "date_of_birth",
                "document_type",
                "extra_fields",
                "first_name",
                "issuing_state",
                "last_name"
            ]
        );
    }

    #[test]
    fn each_route_takes_its_own_members() {
        assert!(
            Correction::of_proof_of_address(members(json!({"document_type": "UTILITY_BILL"})))
                .is_ok()
        );
        assert!(Correction::of_proof_of_address(members(json!({"first_name": "Ana"}))).is_err());
        assert!(Correction::of_id_document(members(json!({}))).is_err());
    }
}
