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
}
