//! What can happen to a session, as its log records it: one enum, its names in storage and on
//! the wire, whether a clone copies it, and which webhook events it causes. The mapping to
//! events is an exhaustive match: an action added without its events does not compile.

use crate::webhook::WebhookType;

/// An action of a session's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogAction {
    /// The session was created.
    Created,
    /// Results were recorded (or corrected, or steps sent back to redo).
    ResultsRecorded,
    /// A review, or a status update, changed the status.
    StatusUpdated,
    /// This session is a clone: the receiver imported a shared session.
    Imported,
    /// This session was imported by another application with a token of its own.
    ImportedBy,
    /// A share token was issued for this session.
    Shared,
    /// A share token of this session was revoked.
    ShareRevoked,
    /// A reviewer revealed a masked value of the session in the console (its document
    /// number): who looked, and when.
    Revealed,
}

impl LogAction {
    /// Every action.
    pub const ALL: [LogAction; 8] = [
        LogAction::Created,
        LogAction::ResultsRecorded,
        LogAction::StatusUpdated,
        LogAction::Imported,
        LogAction::ImportedBy,
        LogAction::Shared,
        LogAction::ShareRevoked,
        LogAction::Revealed,
    ];

    /// The actions that concern the source's own sharing (with whom it was shared, who
    /// imported it) and its own reviewers' looks, which a clone does not copy: they would
    /// tell the receiver about the source's other relations and people.
    pub const SOURCE_ONLY: [LogAction; 3] =
        [LogAction::Shared, LogAction::ImportedBy, LogAction::Revealed];

    /// Its name, as stored and as the activity list shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogAction::Created => "created",
            LogAction::ResultsRecorded => "results_recorded",
            LogAction::StatusUpdated => "status_updated",
            LogAction::Imported => "imported",
            LogAction::ImportedBy => "imported_by",
            LogAction::Shared => "shared",
            LogAction::ShareRevoked => "share_revoked",
            LogAction::Revealed => "revealed",
        }
    }

    /// The action of a stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// Whether a clone copies rows of this action from its source's log.
    pub const fn copied_to_clones(self) -> bool {
        !matches!(self, LogAction::Shared | LogAction::ImportedBy | LogAction::Revealed)
    }

    /// The webhook events a row of this action causes: `changed` when the row changed the
    /// session's status, `replaced` when recorded results replaced earlier ones.
    pub const fn events(self, changed: bool, replaced: bool) -> &'static [WebhookType] {
        match self {
            LogAction::Created | LogAction::StatusUpdated => &[WebhookType::StatusUpdated],
            LogAction::ResultsRecorded => match (changed, replaced) {
                (true, true) => &[WebhookType::StatusUpdated, WebhookType::DataUpdated],
                (true, false) => &[WebhookType::StatusUpdated],
                (false, true) => &[WebhookType::DataUpdated],
                (false, false) => &[],
            },
            LogAction::Imported => &[WebhookType::StatusUpdated, WebhookType::SessionImported],
            LogAction::ImportedBy => &[WebhookType::ShareRedeemed],
            LogAction::Shared => &[WebhookType::ShareCreated],
            LogAction::ShareRevoked => &[WebhookType::ShareRevoked],
            LogAction::Revealed => &[],
        }
    }
}

impl std::fmt::Display for LogAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_sharing_stays_with_the_source() {
        for action in LogAction::ALL {
            assert_eq!(LogAction::parse(action.as_str()), Some(action));
            assert_eq!(
                action.copied_to_clones(),
                !LogAction::SOURCE_ONLY.contains(&action),
                "{action}"
            );
        }
        assert_eq!(LogAction::parse("something_else"), None);
    }
}
