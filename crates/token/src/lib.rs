//! Share tokens: compact JWS signed with HS256 (the default, as Didit) or EdDSA, carrying
//! Didit's claims (`session_id`, `session_kind`, `from_application_id`, `for_application_id`,
//! `iat`, `exp`) plus `jti`, with the signing key named by the `kid` header.
//!
//! [`JwtShareTokens`] implements the domain's `ShareTokens` port over a [`Keyring`]: it signs
//! with the newest active key of the ring's algorithm and verifies with any key of the ring whose
//! algorithm is the header's. Only HS256 and EdDSA verify — `none` in any casing, other HMAC
//! sizes and other asymmetric algorithms are refused before any key is tried — and every claim
//! must be present with its type. No JWT type leaves this crate.

mod data_keys;
mod keys;
mod partner;
mod seal;

use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use handoff_domain::ports::ShareTokens;
use handoff_domain::{ApplicationId, SessionId, SessionKind, ShareClaims, TokenError};
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use data_keys::{ApplicationKey, COMPRESS_FROM_BYTES, DataKey, SEALED_PREFIXES, is_sealed};
pub use keys::{KeyError, Keyring, MIN_SECRET_BYTES, SigningKey, TokenAlgorithm};
pub use partner::{
    PROOF_LIFETIME_SECONDS, jwks_names, unverified_issuer, verify_partner_token, verify_proof,
};
pub use seal::{KeyEncryptionKey, SealError};
/// Clock skew tolerated on `exp`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// The longest token looked at; anything longer is invalid unread.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The claims as they travel. Every field is required with its type, except the two that Didit's
/// older tokens lack: `session_kind` (then `user`) and `jti`.
#[derive(Debug, Serialize, Deserialize)]
struct WireClaims {
    session_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_kind: Option<String>,
    from_application_id: Uuid,
    for_application_id: Uuid,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    /// The issuing deployment's URL, when it has one (`HANDOFF_PUBLIC_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    /// The blocks the share carries (their V3 keys), when its sharer named them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocks: Option<Vec<String>>,
    /// The person's consent to the share, when its sharer recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consent: Option<serde_json::Value>,
}

/// Signs and verifies share tokens with a key ring that can be replaced while serving.
#[derive(Debug)]
pub struct JwtShareTokens {
    keyring: RwLock<Arc<Keyring>>,
    issuer: Option<String>,
}

impl JwtShareTokens {
    /// Tokens over `keyring`.
    pub fn new(keyring: Keyring) -> Self {
        Self { keyring: RwLock::new(Arc::new(keyring)), issuer: None }
    }

    /// Tokens that name this deployment's URL as their `iss`; a token naming another
    /// deployment that no key here verifies is [`TokenError::Foreign`].
    pub fn issued_by(mut self, issuer: Option<String>) -> Self {
        self.issuer = issuer;
        self
    }

    /// Signs `claims` with this deployment's newest Ed25519 key: the proof of who it is in an
    /// exchange with a partner. Fails when the ring signs with HMAC.
    pub fn sign_proof(&self, claims: &serde_json::Value) -> Result<String, TokenError> {
        let keyring = self.keyring();
        let key = keyring
            .signing_key(Utc::now())
            .filter(|key| key.algorithm() == TokenAlgorithm::EdDsa)
            .ok_or_else(|| {
                TokenError::Signing("sharing across deployments needs EdDSA keys".into())
            })?;
        let mut header = Header::new(key.algorithm().jose());
        header.kid = Some(key.kid().to_owned());
        header.typ = Some("handoff-proof+jwt".into());
        let encoding_key = key.encoding_key().map_err(|e| TokenError::Signing(e.to_string()))?;
        jsonwebtoken::encode(&header, claims, &encoding_key)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Replaces the key ring (after a rotation was loaded).
    pub fn replace(&self, keyring: Keyring) {
        *self.keyring.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(keyring);
    }

    fn keyring(&self) -> Arc<Keyring> {
        self.keyring.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

fn timestamp(seconds: i64) -> Result<DateTime<Utc>, TokenError> {
    DateTime::from_timestamp(seconds, 0).ok_or(TokenError::Invalid)
}

impl ShareTokens for JwtShareTokens {
    fn issue(&self, claims: &ShareClaims) -> Result<String, TokenError> {
        let keyring = self.keyring();
        let key = keyring
            .signing_key(Utc::now())
            .ok_or_else(|| TokenError::Signing("no active signing key".into()))?;
        let mut header = Header::new(key.algorithm().jose());
        header.kid = Some(key.kid().to_owned());
        let wire = WireClaims {
            session_id: claims.session_id.as_uuid(),
            session_kind: Some(claims.session_kind.as_str().to_owned()),
            from_application_id: claims.from_application_id.as_uuid(),
            for_application_id: claims.for_application_id.as_uuid(),
            iat: claims.issued_at.timestamp(),
            exp: claims.expires_at.timestamp(),
            jti: claims.jti.clone(),
            iss: self.issuer.clone(),
            blocks: claims
                .blocks
                .as_ref()
                .map(|blocks| blocks.iter().map(|b| b.v3_key().to_owned()).collect()),
            consent: claims.consent.as_ref().map(handoff_domain::share::Consent::to_json),
        };
        let encoding_key = key.encoding_key().map_err(|e| TokenError::Signing(e.to_string()))?;
        jsonwebtoken::encode(&header, &wire, &encoding_key)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    fn verify(&self, token: &str) -> Result<ShareClaims, TokenError> {
        let parts = Parts::split(token)?;
        let keyring = self.keyring();
        // A key verifies only tokens of its own algorithm: an HMAC secret is never taken for a
        // public key, nor the reverse.
        let signed_by = |key: &SigningKey| {
            key.algorithm() == parts.algorithm && parts.signed_with(&key.decoding_key())
        };
        let signed = match &parts.header.kid {
            // A kid that names no configured key makes the token invalid, whatever its signature.
            Some(kid) => keyring.find(kid).is_some_and(signed_by),
            // Tokens of Didit's older shape carry no kid: any HMAC key of the ring may have
            // signed.
            None => parts.algorithm == TokenAlgorithm::Hs256 && keyring.keys().any(signed_by),
        };
        if !signed {
            // Not signed here: another deployment's, when it names one.
            return Err(match unverified_issuer(token) {
                Some(issuer) if Some(&issuer) != self.issuer.as_ref() => {
                    TokenError::Foreign(issuer)
                }
                _ => TokenError::Invalid,
            });
        }
        parts.claims()
    }

    fn published_keys(&self) -> serde_json::Value {
        self.keyring().jwks()
    }
}

/// The longest lifetime (`exp − iat`) of a token that verifies: one day, the longest TTL a share
/// may ask for.
pub const MAX_LIFETIME_SECONDS: i64 = handoff_domain::share::MAX_TTL_SECONDS;

/// A compact JWS taken apart, its header read (unverified, only to pick the key) and its
/// algorithm one of ours.
pub(crate) struct Parts<'a> {
    message: &'a str,
    claims: &'a str,
    signature: &'a str,
    header: Header,
    algorithm: TokenAlgorithm,
}

impl<'a> Parts<'a> {
    pub(crate) fn split(token: &'a str) -> Result<Self, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid);
        }
        // `header.claims.signature`: the signature covers `header.claims`.
        let (message, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let (header_part, claims) = message.split_once('.').ok_or(TokenError::Invalid)?;
        if claims.contains('.') {
            return Err(TokenError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let algorithm = match header.alg {
            Algorithm::HS256 => TokenAlgorithm::Hs256,
            Algorithm::EdDSA => TokenAlgorithm::EdDsa,
            _ => return Err(TokenError::Invalid),
        };
        if names_critical_extensions(header_part) {
            return Err(TokenError::Invalid);
        }
        Ok(Self { message, claims, signature, header, algorithm })
    }

    pub(crate) fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    pub(crate) fn algorithm(&self) -> TokenAlgorithm {
        self.algorithm
    }

    pub(crate) fn signed_with(&self, key: &jsonwebtoken::DecodingKey) -> bool {
        jsonwebtoken::crypto::verify(self.signature, self.message.as_bytes(), key, self.header.alg)
            .unwrap_or(false)
    }

    /// The claims of a token whose signature was checked, as JSON.
    pub(crate) fn payload(&self) -> Result<serde_json::Value, TokenError> {
        let claims = URL_SAFE_NO_PAD.decode(self.claims).map_err(|_| TokenError::Invalid)?;
        serde_json::from_slice(&claims).map_err(|_| TokenError::Invalid)
    }

    /// The share claims of a token whose signature was checked: read once, every claim there
    /// with its type, issued in the past (with the leeway) for at most a day — this server
    /// never signs anything else — and not expired.
    pub(crate) fn claims(&self) -> Result<ShareClaims, TokenError> {
        let claims = URL_SAFE_NO_PAD.decode(self.claims).map_err(|_| TokenError::Invalid)?;
        let wire: WireClaims = serde_json::from_slice(&claims).map_err(|_| TokenError::Invalid)?;
        let now = Utc::now().timestamp();
        let leeway = LEEWAY_SECONDS as i64;
        if wire.exp < 0
            || wire.iat < 0
            || wire.iat > now.saturating_add(leeway)
            || wire.exp.saturating_sub(wire.iat) > MAX_LIFETIME_SECONDS
        {
            return Err(TokenError::Invalid);
        }
        if wire.exp.saturating_add(leeway) < now {
            return Err(TokenError::Expired);
        }
        to_claims(wire)
    }
}

/// Whether a token's header names critical extensions (`crit`), which this verifier implements
/// none of, so must refuse (RFC 7515, 4.1.11). An unreadable header is refused elsewhere.
fn names_critical_extensions(header: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|header| header.get("crit").is_some())
}

fn to_claims(wire: WireClaims) -> Result<ShareClaims, TokenError> {
    let session_kind = match wire.session_kind.as_deref() {
        None => SessionKind::User,
        Some(kind) => SessionKind::parse(kind).ok_or(TokenError::Invalid)?,
    };
    if wire.jti.as_ref().is_some_and(|jti| jti.is_empty() || jti.len() > 128) {
        return Err(TokenError::Invalid);
    }
    let blocks = match &wire.blocks {
        None => None,
        Some(keys) => Some(
            keys.iter()
                .map(|key| {
                    handoff_domain::FeatureBlock::from_v3_key(key)
                        .filter(|block| block.belongs_to(session_kind))
                        .ok_or(TokenError::Invalid)
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(ShareClaims {
        session_id: SessionId::from_uuid(wire.session_id),
        session_kind,
        from_application_id: ApplicationId::from_uuid(wire.from_application_id),
        for_application_id: ApplicationId::from_uuid(wire.for_application_id),
        issued_at: timestamp(wire.iat)?,
        expires_at: timestamp(wire.exp)?,
        jti: wire.jti,
        blocks,
        consent: match &wire.consent {
            None => None,
            Some(consent) => Some(
                handoff_domain::share::Consent::from_json(consent).ok_or(TokenError::Invalid)?,
            ),
        },
    })
}
