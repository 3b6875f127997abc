//! Signing keys and the key ring: several keys by `kid`, the newest active one of the configured
//! algorithm signs, every one verifies until it is taken out of the ring.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    /// An Ed25519 private key that is not 32 bytes.
    #[error("an Ed25519 key must be a 32-byte seed")]
    BadSeed,
    /// An algorithm handoff does not sign with.
    #[error("unknown token algorithm {0:?}: HS256 or EdDSA")]
    UnknownAlgorithm(String),
}

/// The algorithms a share token may be signed with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenAlgorithm {
    /// HMAC-SHA256 with a shared secret: Didit's, and the default.
    #[default]
    Hs256,
    /// Ed25519 signatures, whose public keys are published (`/.well-known/jwks.json`) so that a
    /// receiver can verify a token before presenting it.
    EdDsa,
}

impl TokenAlgorithm {
    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Reads a JOSE name, exactly as written in `alg`.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        match raw {
            "HS256" => Ok(Self::Hs256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(KeyError::UnknownAlgorithm(other.to_owned())),
        }
    }

    pub(crate) fn jose(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// What a key signs with.
#[derive(Clone)]
enum Material {
    Hmac(Vec<u8>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// One key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    material: Material,
    activates_at: Option<DateTime<Utc>>,
}

fn checked_kid(kid: String) -> Result<String, KeyError> {
    if kid.is_empty() || kid.len() > 64 {
        return Err(KeyError::BadKid);
    }
    Ok(kid)
}

/// 12 hex digits of SHA-256 over `parts`: a short, stable name.
pub(crate) fn fingerprint(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl SigningKey {
    /// An HMAC key with an explicit id; it may sign from `activates_at` on (always, when `None`).
    pub fn new(
        kid: impl Into<String>, secret: Vec<u8>, activates_at: Option<DateTime<Utc>>,
    ) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort(secret.len()));
        }
        Ok(Self { kid: checked_kid(kid.into())?, material: Material::Hmac(secret), activates_at })
    }

    /// An Ed25519 key from its 32-byte seed.
    pub fn ed25519(
        kid: impl Into<String>, seed: &[u8], activates_at: Option<DateTime<Utc>>,
    ) -> Result<Self, KeyError> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| KeyError::BadSeed)?;
        Ok(Self {
            kid: checked_kid(kid.into())?,
            material: Material::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed))),
            activates_at,
        })
    }

    /// A key of `algorithm` from its stored bytes (the HMAC secret or the Ed25519 seed).
    pub fn from_bytes(
        kid: impl Into<String>, algorithm: TokenAlgorithm, bytes: Vec<u8>,
        activates_at: Option<DateTime<Utc>>,
    ) -> Result<Self, KeyError> {
        match algorithm {
            TokenAlgorithm::Hs256 => Self::new(kid, bytes, activates_at),
            TokenAlgorithm::EdDsa => Self::ed25519(kid, &bytes, activates_at),
        }
    }

    /// A key of `algorithm` derived from a configured secret, with an id derived from it too,
    /// so that every process given the same secret holds the same key under the same name:
    /// HMAC keys are the secret itself (`s-…`), Ed25519 keys are seeded with a SHA-256 of it
    /// (`e-…`, named after the public key).
    pub fn from_secret(algorithm: TokenAlgorithm, secret: Vec<u8>) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort(secret.len()));
        }
        match algorithm {
            TokenAlgorithm::Hs256 => {
                let kid = format!("s-{}", fingerprint(&[&secret]));
                Self::new(kid, secret, None)
            }
            TokenAlgorithm::EdDsa => {
                let seed = Sha256::new()
                    .chain_update(b"handoff share-token ed25519 seed\0")
                    .chain_update(&secret)
                    .finalize();
                let key = ed25519_dalek::SigningKey::from_bytes(&seed.into());
                let kid = format!("e-{}", fingerprint(&[key.verifying_key().as_bytes()]));
                Self::ed25519(kid, &seed, None)
            }
        }
    }

    /// The key id, as in the `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// What it signs with.
    pub fn algorithm(&self) -> TokenAlgorithm {
        match self.material {
            Material::Hmac(_) => TokenAlgorithm::Hs256,
            Material::Ed25519(_) => TokenAlgorithm::EdDsa,
        }
    }

    /// The bytes to store: the HMAC secret or the Ed25519 seed. Seal them before they leave
    /// the process ([`crate::KeyEncryptionKey`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.material {
            Material::Hmac(secret) => secret.clone(),
            Material::Ed25519(key) => key.to_bytes().to_vec(),
        }
    }

    pub(crate) fn encoding_key(&self) -> Result<jsonwebtoken::EncodingKey, KeyError> {
        match &self.material {
            Material::Hmac(secret) => Ok(jsonwebtoken::EncodingKey::from_secret(secret)),
            Material::Ed25519(key) => {
                use ed25519_dalek::pkcs8::EncodePrivateKey;
                let der = key.to_pkcs8_der().map_err(|_| KeyError::BadSeed)?;
                Ok(jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()))
            }
        }
    }

    pub(crate) fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        match &self.material {
            Material::Hmac(secret) => jsonwebtoken::DecodingKey::from_secret(secret),
            Material::Ed25519(key) => {
                jsonwebtoken::DecodingKey::from_ed_der(key.verifying_key().as_bytes())
            }
        }
    }

    /// The public JWK of an Ed25519 key; HMAC keys have none.
    pub fn public_jwk(&self) -> Option<serde_json::Value> {
        match &self.material {
            Material::Hmac(_) => None,
            Material::Ed25519(key) => Some(serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            })),
        }
    }

    fn may_sign_at(&self, now: DateTime<Utc>) -> bool {
        self.activates_at.is_none_or(|at| at <= now)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// The keys a server knows, oldest first, and the algorithm it signs with.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<SigningKey>,
    signs_with: TokenAlgorithm,
}

impl Keyring {
    /// A ring of `keys`, oldest first, that signs with HS256: the last active HMAC key signs.
    pub fn new(keys: Vec<SigningKey>) -> Self {
        Self { keys, signs_with: TokenAlgorithm::Hs256 }
    }

    /// The same ring, signing with the newest active key of `algorithm`.
    pub fn signing_with(self, algorithm: TokenAlgorithm) -> Self {
        Self { signs_with: algorithm, ..self }
    }

    /// The key that signs at `now`: the newest of the ring's algorithm whose activation time
    /// has passed.
    pub fn signing_key(&self, now: DateTime<Utc>) -> Option<&SigningKey> {
        self.keys
            .iter()
            .rev()
            .find(|key| key.algorithm() == self.signs_with && key.may_sign_at(now))
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

    /// The public keys of the ring as a JWK Set (RFC 7517): its Ed25519 keys, never a secret.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self.keys.iter().filter_map(SigningKey::public_jwk).collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_secret_gives_every_process_the_same_keys() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        for algorithm in [TokenAlgorithm::Hs256, TokenAlgorithm::EdDsa] {
            let one = SigningKey::from_secret(algorithm, secret.clone()).unwrap();
            let two = SigningKey::from_secret(algorithm, secret.clone()).unwrap();
            assert_eq!(one.kid(), two.kid());
            assert_eq!(one.to_bytes(), two.to_bytes());
            assert_eq!(one.algorithm(), algorithm);
        }
        let ed = SigningKey::from_secret(TokenAlgorithm::EdDsa, secret.clone()).unwrap();
        assert!(ed.kid().starts_with("e-"));
        assert_ne!(ed.to_bytes(), secret, "the seed is derived, not the secret");
    }

    #[test]
    fn a_ring_signs_with_the_newest_key_of_its_algorithm_and_publishes_only_public_keys() {
        let hmac = SigningKey::new("h", vec![7; 32], None).unwrap();
        let ed = SigningKey::ed25519("e", &[9; 32], None).unwrap();
        let ring = Keyring::new(vec![ed.clone(), hmac.clone()]);
        assert_eq!(ring.signing_key(Utc::now()).unwrap().kid(), "h");
        let ring = ring.signing_with(TokenAlgorithm::EdDsa);
        assert_eq!(ring.signing_key(Utc::now()).unwrap().kid(), "e");
        let jwks = ring.jwks();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["kid"], "e");
        assert_eq!(keys[0]["crv"], "Ed25519");
        assert!(keys[0].get("d").is_none(), "no private part");
    }

    #[test]
    fn unknown_algorithms_and_bad_seeds_are_refused() {
        assert!(TokenAlgorithm::parse("none").is_err());
        assert!(TokenAlgorithm::parse("eddsa").is_err());
        assert_eq!(SigningKey::ed25519("e", &[1; 31], None).unwrap_err(), KeyError::BadSeed);
    }
}
