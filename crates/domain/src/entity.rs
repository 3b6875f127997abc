//! User and Business entities: one per `vendor_data` per application and kind.

use chrono::{DateTime, Utc};

use crate::ids::EntityId;
use crate::kind::SessionKind;
use crate::vendor_data::VendorData;

/// The status of a User or Business.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityStatus {
    /// `ACTIVE`: nothing against it.
    Active,
    /// `FLAGGED`: look closer.
    Flagged,
    /// `BLOCKED`: refuse.
    Blocked,
}

impl EntityStatus {
    /// Every status.
    pub const ALL: [EntityStatus; 3] =
        [EntityStatus::Active, EntityStatus::Flagged, EntityStatus::Blocked];

    /// The wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntityStatus::Active => "ACTIVE",
            EntityStatus::Flagged => "FLAGGED",
            EntityStatus::Blocked => "BLOCKED",
        }
    }

    /// Parses the exact wire string.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// A User (kind `user`) or Business (kind `business`) of an application.
#[derive(Clone, Debug, PartialEq)]
pub struct Entity {
    /// Its id (Didit's `didit_internal_id`).
    pub id: EntityId,
    /// `user` or `business`.
    pub kind: SessionKind,
    /// The `vendor_data` it was first seen with (matching is case-insensitive).
    pub vendor_data: VendorData,
    /// Its status.
    pub status: EntityStatus,
    /// A name for people, as the application gave it.
    pub display_name: Option<String>,
    /// Free JSON the application attached (an object).
    pub metadata: Option<serde_json::Value>,
    /// How many of the application's sessions name it, and of those how many are
    /// `Approved`, `Declined` and `In Review`.
    pub counts: SessionCounts,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
    /// Why its status last changed, as the change gave it.
    pub status_reason: Option<String>,
    /// When its status last changed; `None` while it has kept its first.
    pub status_updated_at: Option<DateTime<Utc>>,
}

/// An entity's sessions, counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionCounts {
    pub session_count: i64,
    pub approved_count: i64,
    pub declined_count: i64,
    pub in_review_count: i64,
    /// When its first session was created.
    pub first_session_at: Option<DateTime<Utc>>,
    /// When its last session was created.
    pub last_session_at: Option<DateTime<Utc>>,
}

/// The longest `display_name`, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// A User or Business to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntity {
    pub id: EntityId,
    pub kind: SessionKind,
    pub vendor_data: VendorData,
    pub status: EntityStatus,
    pub display_name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// A change of an entity's profile: what is `Some` changes (`Some(None)` clears it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileChange {
    pub display_name: Option<Option<String>>,
    /// Replaces the metadata whole.
    pub metadata: Option<Option<serde_json::Value>>,
}

/// Which entities a list shows.
#[derive(Clone, Debug)]
pub struct EntityFilter {
    /// Only these statuses; empty means any.
    pub statuses: Vec<EntityStatus>,
    /// `vendor_data` or `display_name` containing this, lower case.
    pub search: Option<String>,
    pub limit: u64,
    pub offset: u64,
}

/// A page of entities, newest first, and how many match in all.
#[derive(Clone, Debug)]
pub struct EntityPage {
    pub count: u64,
    pub results: Vec<Entity>,
}

/// Checks a `display_name`.
pub fn display_name(raw: String) -> Result<String, &'static str> {
    let chars = raw.chars().count();
    if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS {
        Err("must be 1 to 200 characters.")
    } else if raw.chars().any(char::is_control) {
        Err("must not contain control characters.")
    } else {
        Ok(raw)
    }
}

/// The longest `reason` of a status change, in characters.
pub const MAX_STATUS_REASON_CHARS: usize = 1000;

/// A change of an entity's status (`PATCH /v3/users/{vendor_data}/update-status/`).
#[derive(Clone, Debug, PartialEq)]
pub struct EntityStatusChange {
    /// The new status.
    pub status: EntityStatus,
    /// Why, at most [`MAX_STATUS_REASON_CHARS`] characters.
    pub reason: Option<String>,
}

/// A change of an entity: its profile, its status or both, by whom and when.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityUpdate {
    pub profile: ProfileChange,
    pub status: Option<EntityStatusChange>,
    /// Who made it, as the session log names actors (`api-key:<prefix>`).
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Checks a status change's `reason`.
pub fn status_reason(raw: String) -> Result<String, &'static str> {
    if raw.chars().count() > MAX_STATUS_REASON_CHARS {
        Err("must be at most 1000 characters.")
    } else if raw.contains('\0') {
        Err("must not contain the NUL character.")
    } else {
        Ok(raw)
    }
}
