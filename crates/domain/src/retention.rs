//! Retention: an application may keep its sessions for a limited time (an extension, as
//! Didit's retention policy); a background sweep deletes those due, as Delete Session does, and
//! tells the application's subscribed destinations (`session.deleted`, an extension: Didit
//! documents no deletion event).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::ids::{ApplicationId, SessionId};
use crate::kind::SessionKind;
use crate::session::LogEntry;
use crate::status::SessionStatus;
use crate::vendor_data::VendorData;

/// How many days an application keeps a session after it finished (after its creation when it
/// never finished), from one day to ten years (Didit's longest window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionDays(u16);

impl RetentionDays {
    /// The longest retention that is not "for ever": ten years.
    pub const MAX: u16 = 3650;

    /// The retention of `days`, if it is from 1 to [`Self::MAX`].
    pub fn new(days: u32) -> Option<Self> {
        u16::try_from(days).ok().filter(|d| (1..=Self::MAX).contains(d)).map(Self)
    }

    /// The number of days.
    pub const fn days(self) -> u16 {
        self.0
    }

    /// The finish time before which a session is due at `now`.
    pub fn cutoff(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::days(i64::from(self.0))
    }
}

/// When a session counts as finished for its retention: the last time its status became
/// finished ([`SessionStatus::FINISHED`]) by `log`, else its creation.
pub fn finished_at(created_at: DateTime<Utc>, log: &[LogEntry]) -> DateTime<Utc> {
    log.iter()
        .filter(|entry| entry.new_status.is_some_and(SessionStatus::is_shareable))
        .map(|entry| entry.created_at)
        .max()
        .unwrap_or(created_at)
}

/// A session the sweep deleted: what its `session.deleted` event tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedSession {
    /// Its application.
    pub application_id: ApplicationId,
    /// Its id.
    pub id: SessionId,
    /// Its number in its application.
    pub session_number: i64,
    /// Its kind.
    pub kind: SessionKind,
    /// Its `vendor_data`, for the receiver to find its own record.
    pub vendor_data: Option<VendorData>,
}

impl DeletedSession {
    /// The facts of its `session.deleted` event.
    pub fn event_facts(&self) -> Value {
        json!({
            "session_number": self.session_number,
            "session_kind": self.kind.as_str(),
            "vendor_data": self.vendor_data.as_ref().map(VendorData::as_str),
            "reason": "retention",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_one_day_to_ten_years() {
        assert_eq!(RetentionDays::new(0), None);
        assert_eq!(RetentionDays::new(1).map(RetentionDays::days), Some(1));
        assert_eq!(RetentionDays::new(3650).map(RetentionDays::days), Some(3650));
        assert_eq!(RetentionDays::new(3651), None);
        assert_eq!(RetentionDays::new(70_000), None);
    }

    #[test]
    fn the_cutoff_is_the_retention_before_now() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z").unwrap().to_utc();
        let thirty = RetentionDays::new(30).unwrap();
        assert_eq!(
            thirty.cutoff(now),
            DateTime::parse_from_rfc3339("2026-11-06T12:00:00Z").unwrap().to_utc()
        );
    }
}
