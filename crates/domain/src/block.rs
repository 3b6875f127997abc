//! Feature blocks: what the verification engine recorded, one block per feature, each an array of
//! items kept exactly as recorded.

use serde_json::value::RawValue;

use crate::json::{RawObject, compact, numbers_in_range};
use crate::kind::SessionKind;
use crate::workflow::Feature;

/// One feature block of a decision payload. Each block is stored in a table of its own, named by
/// its V3 key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureBlock {
    /// ID document (OCR) checks.
    IdVerifications,
    /// NFC chip reads.
    NfcVerifications,
    /// Liveness checks.
    LivenessChecks,
    /// Face matches.
    FaceMatches,
    /// Proof of address.
    PoaVerifications,
    /// Phone verifications.
    PhoneVerifications,
    /// Email verifications.
    EmailVerifications,
    /// AML screenings.
    AmlScreenings,
    /// IP analyses (location).
    IpAnalyses,
    /// Database validations.
    DatabaseValidations,
    /// Questionnaire responses.
    QuestionnaireResponses,
    /// KYB registry checks.
    RegistryChecks,
    /// KYB key people checks.
    KeyPeopleChecks,
    /// KYB document verifications.
    DocumentVerifications,
}

const USER_BLOCKS: [FeatureBlock; 11] = [
    FeatureBlock::IdVerifications,
    FeatureBlock::NfcVerifications,
    FeatureBlock::LivenessChecks,
    FeatureBlock::FaceMatches,
    FeatureBlock::PoaVerifications,
    FeatureBlock::PhoneVerifications,
    FeatureBlock::EmailVerifications,
    FeatureBlock::AmlScreenings,
    FeatureBlock::IpAnalyses,
    FeatureBlock::DatabaseValidations,
    FeatureBlock::QuestionnaireResponses,
];

const BUSINESS_BLOCKS: [FeatureBlock; 8] = [
    FeatureBlock::RegistryChecks,
    FeatureBlock::KeyPeopleChecks,
    FeatureBlock::DocumentVerifications,
    FeatureBlock::AmlScreenings,
    FeatureBlock::PhoneVerifications,
    FeatureBlock::EmailVerifications,
    FeatureBlock::IpAnalyses,
    FeatureBlock::QuestionnaireResponses,
];

impl FeatureBlock {
    /// Every block, each once: the user blocks, then those only a business has.
    pub const ALL: [FeatureBlock; 14] = {
        let business_only =
            [Self::RegistryChecks, Self::KeyPeopleChecks, Self::DocumentVerifications];
        let mut all = [Self::IdVerifications; 14];
        let mut i = 0;
        while i < all.len() {
            all[i] = if i < USER_BLOCKS.len() {
                USER_BLOCKS[i]
            } else {
                business_only[i - USER_BLOCKS.len()]
            };
            i += 1;
        }
        all
    };

    /// The blocks of a kind, in the order the V3 payload lists them.
    pub fn for_kind(kind: SessionKind) -> &'static [FeatureBlock] {
        match kind {
            SessionKind::User => &USER_BLOCKS,
            SessionKind::Business => &BUSINESS_BLOCKS,
        }
    }

    /// The block that holds `feature`'s results (`IP_ANALYSIS`'s is `ip_analyses`).
    pub fn of_feature(feature: Feature) -> Option<Self> {
        if feature == Feature::IpAnalysis {
            return Some(FeatureBlock::IpAnalyses);
        }
        Self::ALL.into_iter().find(|block| block.features().contains(&feature))
    }

    /// What a person reading a report calls the block.
    pub const fn title(self) -> &'static str {
        match self {
            FeatureBlock::IdVerifications => "ID verification",
            FeatureBlock::NfcVerifications => "NFC chip reading",
            FeatureBlock::LivenessChecks => "Liveness",
            FeatureBlock::FaceMatches => "Face match",
            FeatureBlock::PoaVerifications => "Proof of address",
            FeatureBlock::PhoneVerifications => "Phone verification",
            FeatureBlock::EmailVerifications => "Email verification",
            FeatureBlock::AmlScreenings => "AML screening",
            FeatureBlock::IpAnalyses => "IP analysis",
            FeatureBlock::DatabaseValidations => "Database validation",
            FeatureBlock::QuestionnaireResponses => "Questionnaire",
            FeatureBlock::RegistryChecks => "Company registry",
            FeatureBlock::KeyPeopleChecks => "Key people",
            FeatureBlock::DocumentVerifications => "Company documents",
        }
    }

    /// Whether sessions of `kind` have this block.
    pub fn belongs_to(self, kind: SessionKind) -> bool {
        Self::for_kind(kind).contains(&self)
    }

    /// The workflow steps whose results this block holds; empty for `ip_analyses`, which
    /// Didit records for every session whatever its workflow.
    pub const fn features(self) -> &'static [Feature] {
        match self {
            FeatureBlock::IdVerifications => &[Feature::Ocr],
            FeatureBlock::NfcVerifications => &[Feature::Nfc],
            FeatureBlock::LivenessChecks => &[Feature::Liveness, Feature::AgeEstimation],
            FeatureBlock::FaceMatches => &[Feature::FaceMatch],
            FeatureBlock::PoaVerifications => &[Feature::ProofOfAddress],
            FeatureBlock::PhoneVerifications => &[Feature::PhoneVerification],
            FeatureBlock::EmailVerifications => &[Feature::EmailVerification],
            FeatureBlock::AmlScreenings => &[Feature::Aml],
            FeatureBlock::IpAnalyses => &[],
            FeatureBlock::DatabaseValidations => &[Feature::DatabaseValidation],
            FeatureBlock::QuestionnaireResponses => &[Feature::Questionnaire],
            FeatureBlock::RegistryChecks => &[Feature::KybRegistry],
            FeatureBlock::KeyPeopleChecks => &[Feature::KybKeyPeople],
            FeatureBlock::DocumentVerifications => &[Feature::KybDocuments],
        }
    }

    /// Why a session whose workflow runs `steps` may not record items in this block, or `None`
    /// when it may.
    pub fn refused_for(self, steps: &[Feature]) -> Option<String> {
        let needs = self.features();
        if needs.is_empty() || needs.iter().any(|f| steps.contains(f)) {
            return None;
        }
        let names = |features: &[Feature]| {
            features.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" or ")
        };
        let known: Vec<&str> = steps.iter().map(|f| f.as_str()).collect();
        Some(format!(
            "the session runs the steps its workflow had when the session started ({}); \
             with no {} step it records no {}.",
            known.join(", "),
            names(needs),
            self.v3_key(),
        ))
    }

    /// The V3 key, which is also the name of the block's table.
    pub const fn v3_key(self) -> &'static str {
        match self {
            FeatureBlock::IdVerifications => "id_verifications",
            FeatureBlock::NfcVerifications => "nfc_verifications",
            FeatureBlock::LivenessChecks => "liveness_checks",
            FeatureBlock::FaceMatches => "face_matches",
            FeatureBlock::PoaVerifications => "poa_verifications",
            FeatureBlock::PhoneVerifications => "phone_verifications",
            FeatureBlock::EmailVerifications => "email_verifications",
            FeatureBlock::AmlScreenings => "aml_screenings",
            FeatureBlock::IpAnalyses => "ip_analyses",
            FeatureBlock::DatabaseValidations => "database_validations",
            FeatureBlock::QuestionnaireResponses => "questionnaire_responses",
            FeatureBlock::RegistryChecks => "registry_checks",
            FeatureBlock::KeyPeopleChecks => "key_people_checks",
            FeatureBlock::DocumentVerifications => "document_verifications",
        }
    }

    /// The singular V2 key, for user blocks; business-only blocks have none.
    pub const fn v2_key(self) -> Option<&'static str> {
        match self {
            FeatureBlock::IdVerifications => Some("id_verification"),
            FeatureBlock::NfcVerifications => Some("nfc"),
            FeatureBlock::LivenessChecks => Some("liveness"),
            FeatureBlock::FaceMatches => Some("face_match"),
            FeatureBlock::PoaVerifications => Some("poa"),
            FeatureBlock::PhoneVerifications => Some("phone"),
            FeatureBlock::EmailVerifications => Some("email"),
            FeatureBlock::AmlScreenings => Some("aml"),
            FeatureBlock::IpAnalyses => Some("ip_analysis"),
            FeatureBlock::DatabaseValidations => Some("database_validation"),
            FeatureBlock::QuestionnaireResponses => Some("questionnaire"),
            FeatureBlock::RegistryChecks
            | FeatureBlock::KeyPeopleChecks
            | FeatureBlock::DocumentVerifications => None,
        }
    }

    /// Parses a V3 key.
    pub fn from_v3_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|block| block.v3_key() == key)
    }
}

/// Why a recorded item was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// Not a JSON object.
    #[error("each item must be a JSON object.")]
    NotAnObject,
    /// The same key twice in one object.
    #[error("item has the key \"{0}\" more than once.")]
    DuplicateKey(String),
    /// `node_id` absent, empty, not a string, or holding NUL.
    #[error("each item needs \"node_id\", a non-empty string without the NUL character.")]
    NodeId,
    /// `status` absent, empty, not a string, or holding NUL.
    #[error("each item needs \"status\", a non-empty string without the NUL character.")]
    Status,
    /// A number no JSON reader can hold (beyond the range of a double).
    #[error("item has a number out of range.")]
    NumberOutOfRange,
}

/// One item of a feature block: `node_id` and `status` pulled out for indexing, and the whole item
/// as the exact JSON text it was recorded with. Items carry personal data (names, document
/// numbers, addresses), so `Debug` shows only `node_id`, `status` and the item's size.
#[derive(Clone)]
pub struct FeatureItem {
    node_id: String,
    status: String,
    json: Box<RawValue>,
}

impl FeatureItem {
    /// Validates one recorded item: a JSON object with non-empty string `node_id` and `status`,
    /// no duplicate keys. The item is kept token for token as given, without the whitespace
    /// between tokens.
    pub fn parse(json: &RawValue) -> Result<Self, ItemError> {
        let object = RawObject::parse(json.get()).map_err(|_| ItemError::NotAnObject)?;
        let json =
            RawValue::from_string(compact(json.get())).map_err(|_| ItemError::NotAnObject)?;
        if let Some(key) = object.duplicate_key() {
            return Err(ItemError::DuplicateKey(key.to_owned()));
        }
        let node_id = string_member(&object, "node_id").ok_or(ItemError::NodeId)?;
        let status = string_member(&object, "status").ok_or(ItemError::Status)?;
        // The raw text is kept, so check once that every number in it is one readers can hold.
        if !numbers_in_range(json.get()) {
            return Err(ItemError::NumberOutOfRange);
        }
        Ok(Self { node_id, status, json })
    }

    /// Rebuilds an item from storage, where it was validated when recorded.
    pub fn from_stored(node_id: String, status: String, json: Box<RawValue>) -> Self {
        Self { node_id, status, json }
    }

    /// The engine's node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The item's own status string, as the engine wrote it.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The whole item, exactly as recorded.
    pub fn json(&self) -> &RawValue {
        &self.json
    }

    /// The V2 view of the item: the same object without its `node_id`, every other member
    /// byte-for-byte as recorded and in the recorded order.
    pub fn v2_json(&self) -> Box<RawValue> {
        let text = match RawObject::parse(self.json.get()) {
            Ok(object) => object.to_json_without(&["node_id"]),
            // Unreachable for a validated item; fall back to the item itself rather than fail.
            Err(_) => self.json.get().to_owned(),
        };
        RawValue::from_string(text).unwrap_or_else(|_| self.json.clone())
    }
}

impl std::fmt::Debug for FeatureItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureItem")
            .field("node_id", &self.node_id)
            .field("status", &self.status)
            .field("json_bytes", &self.json.get().len())
            .finish()
    }
}

fn string_member(object: &RawObject, key: &str) -> Option<String> {
    let raw = object.get(key)?;
    let value: String = serde_json::from_str(raw.get()).ok()?;
    (!value.is_empty() && !value.contains('\0')).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn v2_view_drops_node_id_and_keeps_the_rest_verbatim() {
        let item = FeatureItem::parse(&raw(
            r#"{"node_id":"feature_ocr","status":"Approved","score":97.50,"x":{"b":1,"a":2}}"#,
        ))
        .unwrap();
        assert_eq!(
            item.v2_json().get(),
            r#"{"status":"Approved","score":97.50,"x":{"b":1,"a":2}}"#
        );
        assert_eq!(item.node_id(), "feature_ocr");
        assert_eq!(item.status(), "Approved");
    }

    #[test]
    fn debug_hides_the_item() {
        let item = FeatureItem::parse(&raw(
            r#"{"node_id":"n","status":"Approved","full_name":"Ana Example"}"#,
        ))
        .unwrap();
        assert!(!format!("{item:?}").contains("Ana"));
    }

    #[test]
    fn item_rules() {
        let cases: [(&str, Result<(), ItemError>); 11] = [
            (r#"{"node_id":"n","status":"A","score":1e999999}"#, Err(ItemError::NumberOutOfRange)),
            (r#"{"node_id":"n","status":"Approved"}"#, Ok(())),
            (r#"[1]"#, Err(ItemError::NotAnObject)),
            (r#""text""#, Err(ItemError::NotAnObject)),
            (r#"{"status":"Approved"}"#, Err(ItemError::NodeId)),
            (r#"{"node_id":"a\u0000","status":"Approved"}"#, Err(ItemError::NodeId)),
            (r#"{"node_id":"a","status":"\u0000"}"#, Err(ItemError::Status)),
            (r#"{"node_id":"","status":"Approved"}"#, Err(ItemError::NodeId)),
            (r#"{"node_id":7,"status":"Approved"}"#, Err(ItemError::NodeId)),
            (r#"{"node_id":"n","status":null}"#, Err(ItemError::Status)),
            (
                r#"{"node_id":"n","status":"A","node_id":"m"}"#,
                Err(ItemError::DuplicateKey("node_id".into())),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(FeatureItem::parse(&raw(input)).map(|_| ()), expected, "{input}");
        }
    }

    #[test]
    fn kinds_have_the_contract_blocks() {
        // The contract's V3 and V2 keys of each user block, in its order.
        let user: Vec<_> = FeatureBlock::for_kind(SessionKind::User)
            .iter()
            .map(|b| (b.v3_key(), b.v2_key().unwrap_or_default()))
            .collect();
        assert_eq!(
            user,
            [
                ("id_verifications", "id_verification"),
                ("nfc_verifications", "nfc"),
                ("liveness_checks", "liveness"),
                ("face_matches", "face_match"),
                ("poa_verifications", "poa"),
                ("phone_verifications", "phone"),
                ("email_verifications", "email"),
                ("aml_screenings", "aml"),
                ("ip_analyses", "ip_analysis"),
                ("database_validations", "database_validation"),
                ("questionnaire_responses", "questionnaire"),
            ]
        );
        let business: Vec<_> =
            FeatureBlock::for_kind(SessionKind::Business).iter().map(|b| b.v3_key()).collect();
        assert_eq!(
            business,
            [
                "registry_checks",
                "key_people_checks",
                "document_verifications",
                "aml_screenings",
                "phone_verifications",
                "email_verifications",
                "ip_analyses",
                "questionnaire_responses"
            ]
        );
        for block in FeatureBlock::ALL {
            assert_eq!(FeatureBlock::from_v3_key(block.v3_key()), Some(block));
        }
        let distinct: std::collections::HashSet<_> = FeatureBlock::ALL.iter().collect();
        assert_eq!(distinct.len(), FeatureBlock::ALL.len(), "each block once");
        for kind in SessionKind::ALL {
            let of_kind = FeatureBlock::for_kind(kind);
            assert!(of_kind.iter().all(|b| distinct.contains(b)), "{kind:?}'s blocks are in ALL");
        }
        assert!(!FeatureBlock::RegistryChecks.belongs_to(SessionKind::User));
        assert!(FeatureBlock::AmlScreenings.belongs_to(SessionKind::Business));
    }
}
