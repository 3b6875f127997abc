//! Review-console sessions: a reviewer signed in (with a password, or an API key) holds a random session id in
//! a cookie; the server keeps its SHA-256 beside the caller, the CSRF token and its times, so
//! that signing out, an idle spell or the end of its lifetime ends it for every copy of the
//! cookie.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::application::Caller;

/// How long a console session lasts at most.
pub const CONSOLE_SESSION_LIFETIME: Duration = Duration::hours(8);
/// How long a console session lasts without a request.
pub const CONSOLE_SESSION_IDLE: Duration = Duration::minutes(30);

/// The SHA-256 of a console session's id: what is stored, so that a copy of the database
/// signs no one in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSessionHash(pub [u8; 32]);

impl ConsoleSessionHash {
    /// The hash of the id a cookie presents.
    pub fn of(id: &str) -> Self {
        Self(Sha256::digest(id.as_bytes()).into())
    }
}

impl std::fmt::Debug for ConsoleSessionHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleSessionHash(..)")
    }
}

/// A signed-in console session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Whose session: the application and the key it signed in with.
    pub caller: Caller,
    /// The token every form of the session carries.
    pub csrf: String,
    /// When it ends whatever happens.
    pub expires_at: DateTime<Utc>,
    /// The reviewer signed in; `None`: an API key.
    pub reviewer: Option<crate::ids::ReviewerId>,
    /// The reviewer's time zone, as it stands at the request (not stored with the session).
    pub time_zone: Option<String>,
}
