//! Signing keys and the key ring: several keys by `kid`, the newest active one signs, every one
//! verifies until it is taken out of the ring.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The shortest secret accepted, in bytes: HS256 wants at least its output size.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a key was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Too short to be safe.
    #[error("a share-token secret must be at least {MIN_SECRET_BYTES} bytes (got {0})")]
    TooShort(usize),
    /// A kid that is empty or too long.
    #[error("a key id must be 1 to 64 characters")]
    BadKid,
}

/// One HMAC key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    secret: Vec<u8>,
    activates_at: Option<DateTime<Utc>>,
}

impl SigningKey {
    /// A key with an explicit id; it may sign from `activates_at` on (always, when `None`).
    pub fn new(
        kid: impl Into<String>,
        secret: Vec<u8>,
        activates_at: Option<DateTime<Utc>>,
    ) -> Result<Self, KeyError> {
        let kid = kid.into();
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort(secret.len()));
        }
        if kid.is_empty() || kid.len() > 64 {
            return Err(KeyError::BadKid);
        }
        Ok(Self {
            kid,
            secret,
            activates_at,
        })
    }

    /// A key whose id is derived from the secret (`s-` and 12 hex digits of its SHA-256), so that
    /// every process given the same secret names it the same way.
    pub fn from_secret(secret: Vec<u8>) -> Result<Self, KeyError> {
        let digest = Sha256::digest(&secret);
        let kid: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Self::new(format!("s-{kid}"), secret, None)
    }

    /// The key id, as in the `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }

    fn may_sign_at(&self, now: DateTime<Utc>) -> bool {
        self.activates_at.is_none_or(|at| at <= now)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// The keys a server knows, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<SigningKey>,
}

impl Keyring {
    /// A ring of `keys`, oldest first: the last active one signs.
    pub fn new(keys: Vec<SigningKey>) -> Self {
        Self { keys }
    }

    /// The key that signs at `now`: the newest whose activation time has passed.
    pub fn signing_key(&self, now: DateTime<Utc>) -> Option<&SigningKey> {
        self.keys.iter().rev().find(|key| key.may_sign_at(now))
    }

    /// The key with this id.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
