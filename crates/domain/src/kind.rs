//! The two kinds of session: KYC for a person, KYB for a company.

use std::fmt;

/// What a session verifies: a person (`user`, KYC) or a company (`business`, KYB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionKind {
    /// KYC: a person.
    User,
    /// KYB: a company.
    Business,
}

impl SessionKind {
    /// Both kinds, user first.
    pub const ALL: [SessionKind; 2] = [SessionKind::User, SessionKind::Business];

    /// The wire string: `user` or `business`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionKind::User => "user",
            SessionKind::Business => "business",
        }
    }

    /// Parses the exact wire string; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(SessionKind::User),
            "business" => Some(SessionKind::Business),
            _ => None,
        }
    }
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
