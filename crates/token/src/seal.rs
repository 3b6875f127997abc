//! Keys at rest: signing keys kept in the database are sealed with XChaCha20-Poly1305 under a
//! key-encryption key (KEK) that lives outside the database, so that a copy of the database
//! alone cannot mint tokens. The key's id and algorithm are authenticated with it: a sealed
//! key moved to another row does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::keys::{KeyError, MIN_SECRET_BYTES, TokenAlgorithm, fingerprint};

const NONCE_BYTES: usize = 24;

/// Why a sealed key did not open.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Sealed under another key-encryption key, or altered.
    #[error("the key does not open with this key-encryption key")]
    WrongKey,
    /// The random source failed.
    #[error("the random source failed")]
    Random,
    /// A text compressed before sealing did not compress, or, sealed, did not decompress.
    #[error("the sealed text did not compress or decompress")]
    Compression,
}

/// The key-encryption key. Its `Debug` shows only its id.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    cipher: XChaCha20Poly1305,
    /// The HMAC key of [`Self::fingerprint`], derived apart from the cipher's.
    hash_key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    /// The KEK of a configured secret of at least 32 bytes (64 hex digits from
    /// `openssl rand -hex 32`, say): its cipher key and its id are two SHA-256 digests of it.
    pub fn from_secret(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort(secret.len()));
        }
        let key = Sha256::new()
            .chain_update(b"handoff key-encryption key\0")
            .chain_update(secret)
            .finalize();
        let hash_key = Sha256::new()
            .chain_update(b"handoff fingerprint key\0")
            .chain_update(secret)
            .finalize();
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key),
            hash_key: hash_key.into(),
            id: format!("kek-{}", fingerprint(&[b"handoff key-encryption key id\0", secret])),
        })
    }

    /// A name for the KEK, stored beside each key it sealed, so that a server given another
    /// KEK says so instead of failing to verify.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `bytes` sealed for the key `kid` of `algorithm`: a fresh nonce, then the ciphertext.
    pub fn seal(
        &self, kid: &str, algorithm: TokenAlgorithm, bytes: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        self.seal_for(&key_context(kid, algorithm), bytes)
    }

    /// The bytes [`Self::seal`] sealed for `kid` and `algorithm`.
    pub fn open(
        &self, kid: &str, algorithm: TokenAlgorithm, sealed: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        self.open_for(&key_context(kid, algorithm), sealed)
    }

    /// HMAC-SHA256 of `value` for `context` under a key derived from the KEK, as lowercase
    /// hex: equal values hash equally on every server given the KEK, and a copy of the
    /// database alone cannot test guesses against it.
    pub fn fingerprint(&self, context: &str, value: &[u8]) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(context.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `bytes` sealed for `context` (what they are and whose, e.g. a webhook destination's
    /// id): they open only for the same context.
    pub fn seal_for(&self, context: &str, bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let aad = associated_data(context);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: bytes, aad: &aad })
            .map_err(|_| SealError::WrongKey)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// The bytes [`Self::seal_for`] sealed for `context`.
    pub fn open_for(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_BYTES {
            return Err(SealError::WrongKey);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::WrongKey)?;
        let aad = associated_data(context);
        self.cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| SealError::WrongKey)
    }
}

fn key_context(kid: &str, algorithm: TokenAlgorithm) -> String {
    format!("signing key\0{kid}\0{}", algorithm.as_str())
}

fn associated_data(context: &str) -> Vec<u8> {
    format!("handoff {context}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"an operator's key-encryption key, 32+ bytes";

    #[test]
    fn fingerprints_depend_on_the_kek_the_context_and_the_value_only() {
        let kek = KeyEncryptionKey::from_secret(SECRET).unwrap();
        let same = KeyEncryptionKey::from_secret(SECRET).unwrap();
        let other =
            KeyEncryptionKey::from_secret(b"another key-encryption key, 32+ bytes").unwrap();
        let print = kek.fingerprint("list-entry:email", b"ana@example.test");
        assert_eq!(print.len(), 64);
        assert_eq!(print, same.fingerprint("list-entry:email", b"ana@example.test"));
        assert_ne!(print, other.fingerprint("list-entry:email", b"ana@example.test"));
        assert_ne!(print, kek.fingerprint("list-entry:phone", b"ana@example.test"));
        assert_ne!(print, kek.fingerprint("list-entry:email", b"bob@example.test"));
        let plain: String =
            Sha256::digest(b"ana@example.test").iter().map(|b| format!("{b:02x}")).collect();
        assert_ne!(print, plain, "keyed, not a plain hash");
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_kek_kid_and_algorithm() {
        let kek = KeyEncryptionKey::from_secret(SECRET).unwrap();
        let sealed = kek.seal("k1", TokenAlgorithm::Hs256, &[5; 32]).unwrap();
        assert!(!sealed.windows(32).any(|w| w == [5; 32]), "no plaintext");
        assert_eq!(kek.open("k1", TokenAlgorithm::Hs256, &sealed).unwrap(), vec![5; 32]);
        assert_eq!(kek.open("k2", TokenAlgorithm::Hs256, &sealed), Err(SealError::WrongKey));
        assert_eq!(kek.open("k1", TokenAlgorithm::EdDsa, &sealed), Err(SealError::WrongKey));
        let other =
            KeyEncryptionKey::from_secret(b"another key-encryption key, 32+ bytes").unwrap();
        assert_ne!(other.id(), kek.id());
        assert_eq!(other.open("k1", TokenAlgorithm::Hs256, &sealed), Err(SealError::WrongKey));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(kek.open("k1", TokenAlgorithm::Hs256, &altered), Err(SealError::WrongKey));
    }

    #[test]
    fn two_seals_differ_and_the_id_is_stable() {
        let kek = KeyEncryptionKey::from_secret(SECRET).unwrap();
        let again = KeyEncryptionKey::from_secret(SECRET).unwrap();
        assert_eq!(kek.id(), again.id());
        assert!(kek.id().starts_with("kek-"));
        let one = kek.seal("k1", TokenAlgorithm::Hs256, &[5; 32]).unwrap();
        let two = kek.seal("k1", TokenAlgorithm::Hs256, &[5; 32]).unwrap();
        assert_ne!(one, two, "a fresh nonce each time");
        assert!(KeyEncryptionKey::from_secret(b"short").is_err());
    }
}
