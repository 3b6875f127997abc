//! Safe retries: an `Idempotency-Key` on a write (session creation, share, import) makes a
//! retry with the same key and the same request replay the first answer instead of writing
//! again, for [`IDEMPOTENCY_WINDOW_SECONDS`].
//!
//! The key's row is written in the same transaction as the write it guards ([`IdempotencyClaim`]
//! travels with the write), so a write can never commit without its key, nor a key without its
//! write; two requests racing with one key make one write, the other's transaction failing on
//! the key ([`crate::RepoError::IdempotencyKeyTaken`]). The answer is recorded just after the
//! commit; a retry that finds the key without an answer waits for it, and when the first
//! request's process died in between, the answer is rendered again from the resource the write
//! made.

use chrono::{DateTime, Utc};

use crate::ids::{ApplicationId, SessionId};

/// How long a key is remembered: 24 hours, as Stripe's and Didit's integrators expect.
pub const IDEMPOTENCY_WINDOW_SECONDS: i64 = 86_400;

/// The longest key accepted, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A key whose write committed this long ago without an answer recorded belongs to a request
/// whose process stopped in between: its answer is rendered again from the resource.
pub const ANSWER_LOST_AFTER_SECONDS: i64 = 30;

/// What a request with an idempotency key does next, given what its key holds now.
#[derive(Clone, Debug, PartialEq)]
pub enum NextStep {
    /// Nothing is held: make the write, the key claimed in its transaction.
    Execute,
    /// The key was used with another request: 422 `idempotency_key_reused`.
    Reused,
    /// The first request's answer, to send again.
    Replay(RecordedAnswer),
    /// The first request's write committed long ago and its answer was lost: render it again
    /// from the resource it made.
    RenderAgain(StoredIdempotency),
    /// The first request is still running: wait, and ask again.
    Wait,
}

/// A client's idempotency key: 1 to 255 visible ASCII characters (a UUID, say).
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the header's value, saying in one sentence what is wrong when it is refused.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() || raw.len() > MAX_IDEMPOTENCY_KEY_CHARS {
            return Err("An Idempotency-Key must be 1 to 255 characters.");
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("An Idempotency-Key must be visible ASCII characters, without spaces.");
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IdempotencyKey {
    // A client may put anything in it: keep it out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdempotencyKey({} chars)", self.0.len())
    }
}

/// The writes a key can guard; stored with the key, so that an answer can be rendered again
/// from the resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdempotentOperation {
    /// `POST /v3/session/`; the resource is the session.
    CreateSession,
    /// `POST /v3/session/{id}/share/`; the resource is the token's `jti`.
    Share,
    /// `POST /v3/session/import-shared/`; the resource is the clone.
    Import,
}

impl IdempotentOperation {
    /// The stored string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreateSession => "create_session",
            Self::Share => "share",
            Self::Import => "import",
        }
    }

    /// Parses the stored string.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::CreateSession, Self::Share, Self::Import]
            .into_iter()
            .find(|operation| operation.as_str() == raw)
    }
}

/// The resource of a share: the session and the token's `jti`, as `<session_id>/<jti>`.
pub fn share_resource(session_id: SessionId, jti: &str) -> String {
    format!("{session_id}/{jti}")
}

/// What a guarded write stores with itself, in its transaction: the key of the caller's
/// application, the request's hash, the time. The store adds the operation and the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// The caller's key.
    pub key: IdempotencyKey,
    /// A hash of the request (method, path and body): the same key with another request is
    /// refused.
    pub request_hash: String,
    /// When the first request came.
    pub created_at: DateTime<Utc>,
}

/// An answer as recorded: the status and the exact bytes of the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body, byte for byte.
    pub body: String,
}

/// A key as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredIdempotency {
    /// The application it belongs to.
    pub application_id: ApplicationId,
    /// The first request's hash.
    pub request_hash: String,
    /// What the write was.
    pub operation: IdempotentOperation,
    /// What the write made: a session id, a clone id, a `jti`.
    pub resource_id: String,
    /// When the first request came.
    pub created_at: DateTime<Utc>,
    /// The first answer, once recorded.
    pub answer: Option<RecordedAnswer>,
}

impl StoredIdempotency {
    /// Whether the key is still remembered at `now`.
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        now - self.created_at < chrono::Duration::seconds(IDEMPOTENCY_WINDOW_SECONDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(IdempotencyKey::parse("5b1f0e0c-8f7e-4c1a-9d55-2f3c4b6a7e90").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "with space", "tab\there", "caf\u{e9}", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(!format!("{:?}", IdempotencyKey::parse("secret-ish").unwrap()).contains("secret"));
    }

    #[test]
    fn operations_round_trip_and_keys_expire_after_a_day() {
        for operation in [
            IdempotentOperation::CreateSession,
            IdempotentOperation::Share,
            IdempotentOperation::Import,
        ] {
            assert_eq!(IdempotentOperation::parse(operation.as_str()), Some(operation));
        }
        let now = Utc::now();
        let stored = StoredIdempotency {
            application_id: ApplicationId::from_uuid(uuid::Uuid::nil()),
            request_hash: String::new(),
            operation: IdempotentOperation::Share,
            resource_id: String::new(),
            created_at: now - chrono::Duration::hours(23),
            answer: None,
        };
        assert!(stored.live_at(now));
        assert!(!stored.live_at(now + chrono::Duration::hours(2)));
    }
}
