//! Stand-ins for the ports outside storage: a sealer that seals nothing, a clock that
//! stands still, sequential ids and share tokens as opaque handles.

use super::*;

/// Seals nothing: the secret itself, marked `plain` (the in-memory world has no key).
#[derive(Default)]
pub struct PlainSealer;

impl SecretSealer for PlainSealer {
    fn seal(&self, _: &str, secret: &[u8]) -> Result<SealedSecret, RepoError> {
        Ok(SealedSecret { bytes: secret.to_vec(), sealed_with: "plain".into() })
    }

    fn open(&self, _: &str, sealed: &SealedSecret) -> Result<Vec<u8>, RepoError> {
        Ok(sealed.bytes.clone())
    }

    /// A plain SHA-256: the in-memory world has no key to hash with.
    fn fingerprint(&self, context: &str, value: &str) -> Result<String, RepoError> {
        use sha2::Digest;
        let digest =
            sha2::Sha256::new().chain_update(context).chain_update([0]).chain_update(value);
        Ok(digest.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// A clock that stands still until moved.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ids counted up from 1, so that tests can predict them.
#[derive(Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn uuid(&self) -> Uuid {
        Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::Relaxed) + 1))
    }

    fn token(&self, bytes: usize) -> Result<String, RepoError> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(format!("{n:0width$x}", width = bytes * 2))
    }
}

/// Share tokens as opaque handles: `issue` hands out `token-<n>`; tests can plant any answer
/// for any string with [`FakeTokens::plant`]. Unknown strings are invalid.
#[derive(Default)]
pub struct FakeTokens(Mutex<HashMap<String, Result<ShareClaims, TokenError>>>);

impl FakeTokens {
    /// Makes `token` verify as `answer`.
    pub fn plant(&self, token: &str, answer: Result<ShareClaims, TokenError>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.to_owned(), answer);
    }
}

impl ShareTokens for FakeTokens {
    fn issue(&self, claims: &ShareClaims) -> Result<String, TokenError> {
        let mut tokens = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let token = format!("token-{}", tokens.len() + 1);
        tokens.insert(token.clone(), Ok(claims.clone()));
        Ok(token)
    }

    fn verify(&self, token: &str) -> Result<ShareClaims, TokenError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned()
            .unwrap_or(Err(TokenError::Invalid))
    }
}
