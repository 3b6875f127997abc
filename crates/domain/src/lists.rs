//! Lists, as Didit's Lists API has them: per application, one system blocklist for each entry
//! type (made on demand, neither renamed nor deleted) and the allowlists and custom lists the
//! application makes. An entry holds one value of its list's type; personal values (document
//! numbers, emails, phones, face templates, device fingerprints, wallets, bank accounts) are
//! kept only as a keyed hash to match on, and sealed for the operator's key rotation — never in
//! clear.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use serde_json::value::RawValue;

use crate::block::{FeatureBlock, FeatureItem};
use crate::grant::parse_address_block;
use crate::ids::{ApplicationId, SessionId};
use crate::json::RawObject;
use crate::session::SessionRecord;
use crate::vendor_data::VendorData;

/// The id of a list (`uuid` on the wire).
pub type ListId = Uuid;
/// The id of a list entry (`uuid` on the wire).
pub type EntryId = Uuid;

/// The most allowlists and custom lists one application may make.
pub const MAX_LISTS: usize = 100;

/// What a list holds and a match does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListType {
    /// Matching values decline a session.
    Blocklist,
    /// Kept for the application's own use; a match does nothing in handoff.
    Allowlist,
    /// Kept for the application's own use; a match does nothing in handoff.
    Custom,
}

impl ListType {
    /// Every list type.
    pub const ALL: [ListType; 3] = [ListType::Blocklist, ListType::Allowlist, ListType::Custom];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ListType::Blocklist => "blocklist",
            ListType::Allowlist => "allowlist",
            ListType::Custom => "custom",
        }
    }

    /// The type this name is.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// The kind of value a list holds: Didit's entry types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryType {
    /// A face template id the verification engine recorded (handoff compares no faces).
    Face,
    /// An identity document's number.
    Document,
    /// A phone number.
    Phone,
    /// An email address.
    Email,
    /// An IP address or CIDR block.
    IpAddress,
    /// A device fingerprint.
    DeviceFingerprint,
    /// A crypto wallet address.
    WalletAddress,
    /// A bank account number.
    BankAccount,
    /// A User's `vendor_data`.
    User,
    /// A Business's `vendor_data`.
    Business,
    /// A country (ISO 3166-1 alpha-2 or alpha-3).
    Country,
    /// Any other key of the application's own.
    Key,
}

impl EntryType {
    /// Every entry type, in Didit's order.
    pub const ALL: [EntryType; 12] = [
        EntryType::Face,
        EntryType::Document,
        EntryType::Phone,
        EntryType::Email,
        EntryType::IpAddress,
        EntryType::DeviceFingerprint,
        EntryType::WalletAddress,
        EntryType::BankAccount,
        EntryType::User,
        EntryType::Business,
        EntryType::Country,
        EntryType::Key,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Face => "face",
            EntryType::Document => "document",
            EntryType::Phone => "phone",
            EntryType::Email => "email",
            EntryType::IpAddress => "ip_address",
            EntryType::DeviceFingerprint => "device_fingerprint",
            EntryType::WalletAddress => "wallet_address",
            EntryType::BankAccount => "bank_account",
            EntryType::User => "user",
            EntryType::Business => "business",
            EntryType::Country => "country",
            EntryType::Key => "key",
        }
    }

    /// The type this name is.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Whether its values are personal data, kept only as a keyed hash.
    pub fn is_personal(self) -> bool {
        matches!(
            self,
            EntryType::Face
                | EntryType::Document
                | EntryType::Phone
                | EntryType::Email
                | EntryType::DeviceFingerprint
                | EntryType::WalletAddress
                | EntryType::BankAccount
        )
    }

    /// The name of the application's system blocklist of this type.
    pub fn system_list_name(self) -> String {
        let name = match self {
            EntryType::Face => "Face",
            EntryType::Document => "Document",
            EntryType::Phone => "Phone",
            EntryType::Email => "Email",
            EntryType::IpAddress => "IP address",
            EntryType::DeviceFingerprint => "Device fingerprint",
            EntryType::WalletAddress => "Wallet address",
            EntryType::BankAccount => "Bank account",
            EntryType::User => "User",
            EntryType::Business => "Business",
            EntryType::Country => "Country",
            EntryType::Key => "Key",
        };
        format!("{name} blocklist")
    }

    /// The value as matched: a value of this type in one spelling — documents upper case
    /// without spaces, dashes or dots; emails lower case; phones `+` and digits; addresses as
    /// CIDR blocks; `vendor_data` by its matching key; countries upper case. Why not, when it
    /// is no value of this type.
    pub fn normalize(self, raw: &str) -> Result<String, &'static str> {
        let raw = raw.trim();
        if raw.is_empty() || raw.chars().count() > 1024 || raw.chars().any(char::is_control) {
            return Err("must be 1 to 1,024 characters, without control characters.");
        }
        match self {
            EntryType::Document => {
                let value: String = raw
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '.'))
                    .flat_map(char::to_uppercase)
                    .collect();
                if value.chars().all(char::is_alphanumeric) {
                    Ok(value)
                } else {
                    Err("must be a document number: letters and digits.")
                }
            }
            EntryType::Email => {
                let value = raw.to_lowercase();
                match value.split_once('@') {
                    Some((local, domain)) if !local.is_empty() && domain.contains('.') => Ok(value),
                    _ => Err("must be an email address."),
                }
            }
            EntryType::Phone => {
                let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
                let allowed = raw.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
                if allowed && (6..=15).contains(&digits.len()) {
                    Ok(format!("+{digits}"))
                } else {
                    Err("must be a phone number: 6 to 15 digits, with an optional +.")
                }
            }
            EntryType::IpAddress => parse_address_block(raw)
                .map(|net| net.trunc().to_string())
                .ok_or("must be an IP address or a CIDR block."),
            EntryType::User | EntryType::Business => {
                VendorData::parse(raw).map(|v| v.key()).map_err(|_| "must be a valid vendor_data.")
            }
            EntryType::Country => {
                let value = raw.to_uppercase();
                if (2..=3).contains(&value.len()) && value.chars().all(|c| c.is_ascii_uppercase()) {
                    Ok(value)
                } else {
                    Err("must be an ISO 3166-1 alpha-2 or alpha-3 country code.")
                }
            }
            EntryType::Face
            | EntryType::DeviceFingerprint
            | EntryType::WalletAddress
            | EntryType::BankAccount
            | EntryType::Key => Ok(raw.to_owned()),
        }
    }

    /// Where a session's results hold a value of this type: blocks and their members, by
    /// preference — `id_verifications[].document_number`, `phone_verifications[].full_number`
    /// (else `phone_number`), `email_verifications[].email`, `ip_analyses[].ip_address`, and
    /// the `face_template_id` of `liveness_checks[]` or `face_matches[]` (an extension member
    /// the verification engine records: handoff compares no faces).
    pub fn sources(self) -> &'static [(FeatureBlock, &'static [&'static str])] {
        match self {
            EntryType::Document => &[(FeatureBlock::IdVerifications, &["document_number"])],
            EntryType::Phone => {
                &[(FeatureBlock::PhoneVerifications, &["full_number", "phone_number"])]
            }
            EntryType::Email => &[(FeatureBlock::EmailVerifications, &["email"])],
            EntryType::IpAddress => &[(FeatureBlock::IpAnalyses, &["ip_address"])],
            EntryType::Face => &[
                (FeatureBlock::LivenessChecks, &["face_template_id"]),
                (FeatureBlock::FaceMatches, &["face_template_id"]),
            ],
            _ => &[],
        }
    }

    /// The value of this type in `items` of `block`, from the most recent item holding one,
    /// with that item's index.
    pub fn value_in_items(
        self, block: FeatureBlock, items: &[FeatureItem],
    ) -> Option<(usize, String)> {
        let members = self.sources().iter().find(|(b, _)| *b == block)?.1;
        items.iter().enumerate().rev().find_map(|(index, item)| {
            let object = RawObject::parse(item.json().get()).ok()?;
            members.iter().find_map(|member| {
                let value: String = serde_json::from_str(object.get(member)?.get()).ok()?;
                Some((index, value))
            })
        })
    }

    /// The value of this type a session holds: from its results ([`Self::value_in_items`]),
    /// and its `vendor_data` for `user` (a User session) and `business` (a Business session).
    pub fn value_in(self, record: &SessionRecord) -> Option<String> {
        let kind = record.session.kind;
        match self {
            EntryType::User if kind == crate::SessionKind::User => {
                record.session.vendor_data.as_ref().map(|v| v.as_str().to_owned())
            }
            EntryType::Business if kind == crate::SessionKind::Business => {
                record.session.vendor_data.as_ref().map(|v| v.as_str().to_owned())
            }
            _ => self.sources().iter().find_map(|(block, _)| {
                self.value_in_items(*block, record.block(*block)?).map(|(_, value)| value)
            }),
        }
    }

    /// The warning a blocklisted value of this type puts in its item, as Didit names it
    /// (`IP_ADDRESS_IN_BLOCKLIST` is handoff's), when results holding it are recorded.
    pub fn blocklist_risk(self) -> Option<&'static str> {
        Some(match self {
            EntryType::Document => "ID_DOCUMENT_IN_BLOCKLIST",
            EntryType::Face => "FACE_IN_BLOCKLIST",
            EntryType::Phone => "PHONE_NUMBER_IN_BLOCKLIST",
            EntryType::Email => "EMAIL_IN_BLOCKLIST",
            EntryType::IpAddress => "IP_ADDRESS_IN_BLOCKLIST",
            _ => return None,
        })
    }

    /// The entry type of a session's `vendor_data`: `user` or `business`.
    pub fn of_kind(kind: crate::SessionKind) -> EntryType {
        match kind {
            crate::SessionKind::User => EntryType::User,
            crate::SessionKind::Business => EntryType::Business,
        }
    }

    /// The types whose values recorded results are checked against the blocklists.
    pub const ENFORCED: [EntryType; 5] = [
        EntryType::Document,
        EntryType::Face,
        EntryType::Phone,
        EntryType::Email,
        EntryType::IpAddress,
    ];

    /// Whether a blocklist entry of this type holding `listed` (as matched) catches a value
    /// matched as `key`: the same key, or for addresses, a block that holds the address.
    pub fn catches(self, listed: &str, key: &str) -> bool {
        match self {
            EntryType::IpAddress => match (parse_address_block(listed), parse_address_block(key)) {
                (Some(block), Some(address)) => block.contains(&address),
                _ => false,
            },
            _ => listed == key,
        }
    }
}

/// `item` with `warning` (a JSON object) added to its `warnings` array, every other member
/// kept as it was recorded, token for token.
pub fn with_warning(item: &FeatureItem, warning: &serde_json::Value) -> Option<FeatureItem> {
    let mut object = RawObject::parse(item.json().get()).ok()?;
    let warning = RawValue::from_string(warning.to_string()).ok()?;
    let mut warnings: Vec<Box<RawValue>> =
        object.get("warnings").and_then(|w| serde_json::from_str(w.get()).ok()).unwrap_or_default();
    warnings.push(warning);
    let warnings = RawValue::from_string(serde_json::to_string(&warnings).ok()?).ok()?;
    match object.0.iter_mut().find(|(key, _)| key == "warnings") {
        Some((_, value)) => *value = warnings,
        None => object.0.push(("warnings".to_owned(), warnings)),
    }
    FeatureItem::parse(&RawValue::from_string(object.to_json_without(&[])).ok()?).ok()
}

/// What a personal value of `entry_type` is hashed for (the keyed hash's context): the same
/// for every application, so that one value has one hash in the deployment.
pub fn hash_context(entry_type: EntryType) -> String {
    format!("list-entry:{}", entry_type.as_str())
}

/// What the value of entry `id` is sealed for: it opens for that entry only.
pub fn seal_context(id: EntryId) -> String {
    format!("list-entry:{id}")
}

/// The id of `application`'s system blocklist of `entry_type`: the same wherever and whenever
/// it is asked for.
pub fn system_list_id(application: ApplicationId, entry_type: EntryType) -> ListId {
    Uuid::new_v5(&application.as_uuid(), format!("blocklist:{}", entry_type.as_str()).as_bytes())
}

/// A list with its entries' count.
#[derive(Clone, Debug, PartialEq)]
pub struct List {
    /// Its id.
    pub id: ListId,
    /// Unique in the application.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// What a match does.
    pub list_type: ListType,
    /// What it holds.
    pub entry_type: EntryType,
    /// A system blocklist.
    pub is_system: bool,
    /// How many entries it holds.
    pub entry_count: u64,
    /// When its newest entry was added.
    pub last_entry_added_at: Option<DateTime<Utc>>,
    /// When it was made (a system list: the application's first entry of its type, or now).
    pub created_at: DateTime<Utc>,
}

/// An entry of a list, as shown: a personal value never is.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Its id.
    pub id: EntryId,
    /// Its list.
    pub list_id: ListId,
    /// Its list's entry type.
    pub entry_type: EntryType,
    /// The value, normalized; `None` for a personal value.
    pub value: Option<String>,
    /// A label for people.
    pub display_label: Option<String>,
    /// Why it was added.
    pub comment: Option<String>,
    /// The session it was taken from.
    pub reference_session_id: Option<SessionId>,
    /// `api` (the Lists API) or `blocklist` (`POST /v3/blocklist/add/`).
    pub added_by: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// An entry to store: what is shown, and the value as matched (a keyed hash for a personal
/// value) with the value sealed for key rotation.
#[derive(Clone, Debug)]
pub struct NewEntry {
    /// What is shown.
    pub entry: Entry,
    /// Its list's type: only blocklists' entries are matched.
    pub list_type: ListType,
    /// For an IP address or block: its first and last address ([`ip_hex`]).
    pub range: Option<(String, String)>,
    /// What is matched: the normalized value, or its keyed hash.
    pub match_key: String,
    /// The normalized value sealed under the deployment's key, for a personal value.
    pub sealed_value: Option<crate::webhook::SealedSecret>,
}

/// An address as blocklists compare them: its 16 bytes as IPv6 (IPv4 mapped), in hex, so that
/// text order is address order.
pub fn ip_hex(address: std::net::IpAddr) -> String {
    let v6 = match address {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        std::net::IpAddr::V6(v6) => v6,
    };
    v6.octets().iter().map(|b| format!("{b:02x}")).collect()
}

/// A session's values as the blocklists match them: the keys of its document number, face
/// template, phone and email (keyed hashes), and its IP address ([`ip_hex`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionKeys {
    /// The keys, one per type the session holds a value of.
    pub keys: Vec<String>,
    /// Its IP address.
    pub ip: Option<String>,
}

impl SessionKeys {
    /// The keys as stored: a JSON array, `None` for none.
    pub fn keys_json(&self) -> Option<String> {
        (!self.keys.is_empty()).then(|| serde_json::Value::from(self.keys.clone()).to_string())
    }
}

/// Which entries of a list to delete.
#[derive(Clone, Copy, Debug)]
pub enum EntrySelection<'a> {
    /// The entry with this id.
    Id(EntryId),
    /// The entry holding this value as matched.
    MatchKey(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_matched_in_one_spelling() {
        let cases = [
            (EntryType::Document, " x-123.456 z ", Ok("X123456Z")),
            (EntryType::Document, "X12/3", Err(())),
            (EntryType::Email, " Ana@Example.TEST ", Ok("ana@example.test")),
            (EntryType::Email, "ana", Err(())),
            (EntryType::Phone, "+34 600-000-001", Ok("+34600000001")),
            (EntryType::Phone, "600 000 001", Ok("+600000001")),
            (EntryType::Phone, "call me", Err(())),
            (EntryType::IpAddress, "192.0.2.10", Ok("192.0.2.10/32")),
            (EntryType::IpAddress, "10.1.2.3/8", Ok("10.0.0.0/8")),
            (EntryType::IpAddress, "10.0.0.0/40", Err(())),
            (EntryType::Country, "es", Ok("ES")),
            (EntryType::Country, "Spain", Err(())),
            (EntryType::Key, "", Err(())),
        ];
        for (entry_type, raw, expected) in cases {
            let got = entry_type.normalize(raw).map_err(|_| ());
            assert_eq!(got.as_deref().map_err(|_| ()), expected, "{entry_type:?} {raw:?}");
        }
        assert_eq!(
            EntryType::User.normalize("User-ANA"),
            Ok(VendorData::parse("user-ana").unwrap().key())
        );
    }

    #[test]
    fn names_read_back_and_system_lists_have_fixed_ids() {
        for entry_type in EntryType::ALL {
            assert_eq!(EntryType::parse(entry_type.as_str()), Some(entry_type));
        }
        for list_type in ListType::ALL {
            assert_eq!(ListType::parse(list_type.as_str()), Some(list_type));
        }
        let app = ApplicationId::from_uuid(Uuid::from_u128(7));
        let other = ApplicationId::from_uuid(Uuid::from_u128(8));
        let face = system_list_id(app, EntryType::Face);
        assert_eq!(face, system_list_id(app, EntryType::Face));
        assert_ne!(face, system_list_id(app, EntryType::Email));
        assert_ne!(face, system_list_id(other, EntryType::Face));
        assert!(EntryType::Email.is_personal() && !EntryType::IpAddress.is_personal());
    }
}
