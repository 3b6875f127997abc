//! API keys: generated once, shown once, stored only as a SHA-256 hash beside a short public prefix.
//!
//! A key reads `hk_<prefix>_<secret>`: the 12 hex digits of the prefix identify the key (they are
//! stored in clear and may be logged), the 64 hex digits of the secret are 256 random bits. Because
//! the secret is random and long, a plain SHA-256 is the right hash: a slow password hash would add
//! latency to every request and no security.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use chrono::{DateTime, Utc};

use crate::grant::Grant;
use crate::ids::ApplicationId;

const PREFIX_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// A presented or freshly generated API key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct ApiKey(String);

/// The SHA-256 of a whole API key, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyHash(pub [u8; 32]);

/// A key to store: the application, the public prefix, the hash, and the key's name and grant
/// (none and every right for a primary key). The clear key is returned beside it once, by
/// [`ApiKey::generate`].
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// The application the key authenticates as.
    pub application_id: ApplicationId,
    /// The public prefix (12 hex digits).
    pub prefix: String,
    /// The hash of the whole key.
    pub hash: ApiKeyHash,
    /// A name for people; `None` for a primary key.
    pub name: Option<String>,
    /// What the key may do.
    pub grant: Grant,
}

/// An unrevoked key as stored, found by its prefix to authenticate a request.
#[derive(Clone, Debug)]
pub struct StoredApiKey {
    /// The application the key authenticates as.
    pub application_id: ApplicationId,
    /// The hash of the whole key.
    pub hash: ApiKeyHash,
    /// What the key may do.
    pub grant: Grant,
}

/// A key as an operator lists it: never its secret or hash.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeyInfo {
    /// The public prefix (12 hex digits).
    pub prefix: String,
    /// A name for people; `None` for a primary key.
    pub name: Option<String>,
    /// What the key may do.
    pub grant: Grant,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// Generates a new random key for `application_id`, returning the clear key (to show once) and
    /// what to store.
    pub fn generate(
        application_id: ApplicationId,
    ) -> Result<(ApiKey, NewApiKey), getrandom::Error> {
        let mut bytes = [0u8; PREFIX_BYTES + SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        let prefix = hex(&bytes[..PREFIX_BYTES]);
        let key = ApiKey(format!("hk_{prefix}_{}", hex(&bytes[PREFIX_BYTES..])));
        let stored = NewApiKey {
            application_id,
            prefix,
            hash: key.hash(),
            name: None,
            grant: Grant::every_right(),
        };
        Ok((key, stored))
    }

    /// Wraps a key as presented in a request. Returns `None` when it cannot be a handoff key.
    pub fn presented(raw: &str) -> Option<ApiKey> {
        let rest = raw.strip_prefix("hk_")?;
        let (prefix, secret) = rest.split_once('_')?;
        let is_hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        (is_hex(prefix, PREFIX_BYTES * 2) && is_hex(secret, SECRET_BYTES * 2))
            .then(|| ApiKey(raw.to_owned()))
    }

    /// The public prefix that identifies the key.
    pub fn prefix(&self) -> &str {
        &self.0[3..3 + PREFIX_BYTES * 2]
    }

    /// The hash to store or compare.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// Whether this key hashes to `stored`, compared in constant time.
    pub fn matches(&self, stored: &ApiKeyHash) -> bool {
        self.hash().0.ct_eq(&stored.0).into()
    }

    /// The clear key, to show the operator exactly once.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey(hk_{}_…)", self.prefix())
    }
}

impl fmt::Debug for ApiKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyHash(…)")
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Lower-case hex of some bytes, for random tokens.
pub(crate) fn hex_string(bytes: &[u8]) -> String {
    hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn generated_keys_verify_and_hide_their_secret() {
        let app = ApplicationId::from_uuid(Uuid::nil());
        let (key, stored) = ApiKey::generate(app).unwrap();
        let presented = ApiKey::presented(key.reveal()).unwrap();
        assert_eq!(presented.prefix(), stored.prefix);
        assert!(presented.matches(&stored.hash));
        let secret = &key.reveal()[16..];
        assert!(!format!("{key:?}").contains(secret));
        let (other, _) = ApiKey::generate(app).unwrap();
        assert!(!other.matches(&stored.hash));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for raw in [
            "",
            "hk_",
            "hk_zz_zz",
            "abc",
            &format!("hk_{}_{}", "a".repeat(12), "b".repeat(63)),
            &format!("xx_{}_{}", "a".repeat(12), "b".repeat(64)),
        ] {
            assert!(ApiKey::presented(raw).is_none(), "{raw}");
        }
        assert!(ApiKey::presented(&format!("hk_{}_{}", "a".repeat(12), "b".repeat(64))).is_some());
    }
}
