//! Sharing and importing: what a share token means, the rules of an import, and the clone plan
//! the store executes in one transaction.

use chrono::{DateTime, Utc};

use crate::block::FeatureBlock;
use crate::entity::EntityStatus;
use crate::ids::{ApplicationId, SessionId, WorkflowId};
use crate::kind::SessionKind;
use crate::session::{LogEntry, SessionRecord, StoredSession};
use crate::status::SessionStatus;
use crate::vendor_data::VendorData;

/// The shortest share-token lifetime, in seconds.
pub const MIN_TTL_SECONDS: i64 = 60;
/// The longest share-token lifetime, in seconds: one day.
pub const MAX_TTL_SECONDS: i64 = 86_400;
/// The lifetime when none is asked for: one hour.
pub const DEFAULT_TTL_SECONDS: i64 = 3_600;

/// A share token as presented or issued. It is a bearer credential: `Debug` shows only its
/// length, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareToken(String);

impl ShareToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, to verify or to send to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ShareToken {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}

impl From<String> for ShareToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl std::fmt::Debug for ShareToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShareToken({} bytes)", self.0.len())
    }
}

/// What a verified share token says, whatever its encoding: the source session, who shared it,
/// for whom, and when. Tokens in Didit's older shape carry no kind (read as `user`) and no `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareClaims {
    /// The shared session.
    pub session_id: SessionId,
    /// Its kind.
    pub session_kind: SessionKind,
    /// The application that holds the session.
    pub from_application_id: ApplicationId,
    /// The only application that may import it.
    pub for_application_id: ApplicationId,
    /// When the token was issued.
    pub issued_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The token's id, for listing and revoking; absent on older tokens.
    pub jti: Option<String>,
}

/// Why a presented share token is not accepted, before any storage is consulted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, badly signed, signed with an unknown key or a refused algorithm, or missing a
    /// required claim.
    #[error("share token invalid")]
    Invalid,
    /// Well formed and well signed, but past its `exp`.
    #[error("share token expired")]
    Expired,
    /// No key can sign now (a configuration fault, not the caller's).
    #[error("share token could not be signed: {0}")]
    Signing(String),
}

/// The status a clone lands in.
///
/// The receiver's own view of the person or company wins: a `BLOCKED` entity makes the clone
/// `Declined` and a `FLAGGED` one puts it `In Review`, whatever `trust_review` says. Otherwise
/// `trust_review` keeps the source's status, and without it the clone waits `In Review`.
pub fn clone_status(
    source: SessionStatus,
    trust_review: bool,
    receiver_entity: Option<EntityStatus>,
) -> SessionStatus {
    match receiver_entity {
        Some(EntityStatus::Blocked) => SessionStatus::Declined,
        Some(EntityStatus::Flagged) => SessionStatus::InReview,
        Some(EntityStatus::Active) | None => {
            if trust_review {
                source
            } else {
                SessionStatus::InReview
            }
        }
    }
}

/// A share token as recorded when it is issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedShareToken {
    /// Its id.
    pub jti: String,
    /// What it says.
    pub claims: ShareClaims,
}

/// What an import needs to know before its transaction, read in one go.
#[derive(Clone, Debug, Default)]
pub struct ImportContext {
    /// Whether the presented token's `jti` was revoked (false when it has none).
    pub revoked: bool,
    /// The source session in the source application, if it is there.
    pub source: Option<StoredSession>,
    /// The blocks the source recorded.
    pub recorded_blocks: Vec<FeatureBlock>,
    /// The receiver's clone of the source, if it holds one.
    pub existing_clone: Option<SessionId>,
    /// The receiver's (undeleted) workflow named by the import, if it holds it.
    pub workflow: Option<ImportWorkflow>,
}

/// What an import needs of the receiver's workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportWorkflow {
    /// Its kind.
    pub kind: SessionKind,
    /// Seconds from a session's creation to its `expires_at`.
    pub session_expiration_time: i64,
}

/// Everything the store needs to clone a source session into the receiver's application, in one
/// transaction: the new session's identity, what decides its status, and the import's log row.
#[derive(Clone, Debug)]
pub struct ClonePlan {
    /// The application that holds the source.
    pub source_application_id: ApplicationId,
    /// The source session.
    pub source_session_id: SessionId,
    /// The source's kind (the clone's too).
    pub kind: SessionKind,
    /// The blocks to copy: those the source recorded.
    pub blocks: Vec<FeatureBlock>,
    /// The receiving application.
    pub application_id: ApplicationId,
    /// The clone's fresh id.
    pub clone_id: SessionId,
    /// The receiver's workflow.
    pub workflow_id: WorkflowId,
    /// The clone's fresh session token.
    pub session_token: String,
    /// The clone's fresh URL.
    pub session_url: String,
    /// The source's status, as checked.
    pub source_status: SessionStatus,
    /// Whether the receiver trusts the source's decision.
    pub trust_review: bool,
    /// The clone's `vendor_data`: the override, or the source's.
    pub vendor_data: Option<VendorData>,
    /// When the clone was created.
    pub created_at: DateTime<Utc>,
    /// `created_at` + the receiver workflow's `session_expiration_time`.
    pub expires_at: DateTime<Utc>,
    /// The log row that records the import on the clone; the store fills `new_status`.
    pub log: LogEntry,
    /// The redeemed token's id, when it has one.
    pub jti: Option<String>,
}

impl ClonePlan {
    /// The clone's status once the store has read, inside the clone's transaction, the status
    /// of the receiver's entity for the clone's `vendor_data`.
    pub fn status(&self, receiver_entity: Option<EntityStatus>) -> SessionStatus {
        clone_status(self.source_status, self.trust_review, receiver_entity)
    }
}

/// An import tried in one step: the store checks 5 and 7 to 10 and writes the clone together,
/// or writes nothing. Built from the token and the request alone, before any read; what only
/// the source can tell (its status, `vendor_data`, recorded blocks) the store takes from the
/// source row, and the receiver workflow's `session_expiration_time` from that row.
#[derive(Clone, Debug)]
pub struct ImportAttempt {
    /// The application that holds the source (from the token).
    pub source_application_id: ApplicationId,
    /// The source session (from the token).
    pub source_session_id: SessionId,
    /// The token's kind: the source's and the workflow's must match it.
    pub kind: SessionKind,
    /// The token's id, when it has one: the token must not be revoked.
    pub jti: Option<String>,
    /// The receiving application (the caller, to whom the token is addressed).
    pub application_id: ApplicationId,
    /// The receiver's workflow.
    pub workflow_id: WorkflowId,
    /// The clone's fresh id.
    pub clone_id: SessionId,
    /// The clone's fresh session token.
    pub session_token: String,
    /// The clone's fresh URL.
    pub session_url: String,
    /// Whether the receiver trusts the source's decision.
    pub trust_review: bool,
    /// The override of the clone's `vendor_data`; `None` keeps the source's.
    pub vendor_data: Option<VendorData>,
    /// When the clone is created.
    pub created_at: DateTime<Utc>,
    /// The import's log row; the store fills `old_status` (the source's) and `new_status`.
    pub log: LogEntry,
}

impl ImportAttempt {
    /// The clone's status for a source status and the receiver's entity status.
    pub fn status(
        &self,
        source: SessionStatus,
        receiver_entity: Option<EntityStatus>,
    ) -> SessionStatus {
        clone_status(source, self.trust_review, receiver_entity)
    }

    /// The plan of the long way, once the checks were read and held: what only the source can
    /// tell, from the source; `expires_at` from the workflow's `session_expiration_time`.
    pub fn into_plan(
        self,
        source: &StoredSession,
        blocks: Vec<FeatureBlock>,
        session_expiration_time: i64,
    ) -> ClonePlan {
        ClonePlan {
            source_application_id: self.source_application_id,
            source_session_id: source.id,
            kind: source.kind,
            blocks,
            application_id: self.application_id,
            clone_id: self.clone_id,
            workflow_id: self.workflow_id,
            session_token: self.session_token,
            session_url: self.session_url,
            source_status: source.status,
            trust_review: self.trust_review,
            vendor_data: self.vendor_data.or_else(|| source.vendor_data.clone()),
            created_at: self.created_at,
            expires_at: self.created_at + chrono::Duration::seconds(session_expiration_time),
            log: LogEntry {
                old_status: Some(source.status),
                ..self.log
            },
            jti: self.jti,
        }
    }

    /// [`ImportAttempt::status`] by receiver entity status alone (`None`: no entity), for a
    /// store that decides inside the database: for each, `None` when the clone keeps the
    /// source's status whatever it is, `Some(status)` when it takes that status whatever the
    /// source's. `None` altogether if the rule ever depends on the source's status otherwise
    /// (it does not today; a store then goes the long way, where the domain decides).
    pub fn status_by_entity(&self) -> Option<Vec<(Option<EntityStatus>, Option<SessionStatus>)>> {
        let entities = std::iter::once(None).chain(EntityStatus::ALL.into_iter().map(Some));
        entities
            .map(|entity| {
                let answers: Vec<(SessionStatus, SessionStatus)> = SessionStatus::ALL
                    .into_iter()
                    .map(|source| (source, self.status(source, entity)))
                    .collect();
                if answers.iter().all(|(source, clone)| source == clone) {
                    Some((entity, None))
                } else if answers.iter().all(|(_, clone)| *clone == answers[0].1) {
                    Some((entity, Some(answers[0].1)))
                } else {
                    None
                }
            })
            .collect()
    }
}

/// What executing a clone plan did.
#[derive(Clone, Debug)]
pub enum ImportOutcome {
    /// The clone and every related row were written; the clone as written, everything its
    /// decision payload shows (read back from the writes themselves, not by a later read).
    Imported(Box<SessionRecord>),
    /// The receiver already holds a clone of this source (possibly written a moment ago by a
    /// concurrent import); nothing was written.
    AlreadyImported(SessionId),
    /// The source vanished before the copy; nothing was written.
    SourceGone,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `trust_review` × every status × entity status: the whole decision table.
    #[test]
    fn clone_status_decision_table() {
        let entities = [
            None,
            Some(EntityStatus::Active),
            Some(EntityStatus::Flagged),
            Some(EntityStatus::Blocked),
        ];
        for source in SessionStatus::ALL {
            for trust_review in [false, true] {
                for entity in entities {
                    let expected = match (entity, trust_review) {
                        (Some(EntityStatus::Blocked), _) => SessionStatus::Declined,
                        (Some(EntityStatus::Flagged), _) => SessionStatus::InReview,
                        (_, true) => source,
                        (_, false) => SessionStatus::InReview,
                    };
                    assert_eq!(
                        clone_status(source, trust_review, entity),
                        expected,
                        "{source} trust={trust_review} entity={entity:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn clone_status_rows_in_words() {
        use EntityStatus::*;
        use SessionStatus::*;
        let rows = [
            (Approved, true, None, Approved),
            (Approved, false, None, InReview),
            (Declined, true, Some(Active), Declined),
            (InReview, true, Some(Active), InReview),
            (Approved, true, Some(Flagged), InReview),
            (Approved, true, Some(Blocked), Declined),
            (Approved, false, Some(Blocked), Declined),
            (Declined, false, Some(Flagged), InReview),
        ];
        for (source, trust, entity, expected) in rows {
            assert_eq!(clone_status(source, trust, entity), expected);
        }
    }
}
