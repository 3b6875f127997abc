//! User and Business entities: one per `vendor_data` per application and kind.

use chrono::{DateTime, Utc};

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
    pub const ALL: [EntityStatus; 3] = [
        EntityStatus::Active,
        EntityStatus::Flagged,
        EntityStatus::Blocked,
    ];

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
    /// `user` or `business`.
    pub kind: SessionKind,
    /// The `vendor_data` it was first seen with (matching is case-insensitive).
    pub vendor_data: VendorData,
    /// Its status.
    pub status: EntityStatus,
    /// How many of the application's sessions name it.
    pub session_count: i64,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
    /// Why its status last changed, as the change gave it.
    pub status_reason: Option<String>,
    /// When its status last changed; `None` while it has kept its first.
    pub status_updated_at: Option<DateTime<Utc>>,
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
    /// When.
    pub at: DateTime<Utc>,
}

/// Checks a status change's `reason`.
pub fn status_reason(raw: String) -> Result<String, &'static str> {
    if raw.chars().count() > MAX_STATUS_REASON_CHARS {
        Err("must be at most 1000 characters.")
    } else {
        Ok(raw)
    }
}
