//! What a partner deployment signs, verified with its published key set (Ed25519 keys only):
//! its share tokens, and the proof by which it authenticates itself in an exchange
//! (`docs/federation.md`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handoff_domain::{ShareClaims, TokenError};
use serde_json::Value;

use crate::{LEEWAY_SECONDS, Parts, TokenAlgorithm};

/// How long a proof is accepted after it was made, in seconds.
pub const PROOF_LIFETIME_SECONDS: i64 = 60;

/// The `iss` of a token, read without verifying anything: only to pick whose keys verify it.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let claims = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(claims).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(|iss| iss.trim_end_matches('/').to_owned())
}

/// Whether the key set `jwks` holds the key a token's header names (to fetch the set again
/// when it does not). A token that names none, or is unreadable, is answered `true`: fetching
/// would not help it.
pub fn jwks_names(jwks: &Value, token: &str) -> bool {
    match Parts::split(token).ok().as_ref().and_then(Parts::kid) {
        Some(kid) => ed25519_key(jwks, kid).is_some(),
        None => true,
    }
}

/// The Ed25519 public key `kid` of a key set.
fn ed25519_key(jwks: &Value, kid: &str) -> Option<jsonwebtoken::DecodingKey> {
    let key = jwks.get("keys")?.as_array()?.iter().find(|key| {
        key.get("kid").and_then(Value::as_str) == Some(kid)
            && key.get("kty").and_then(Value::as_str) == Some("OKP")
            && key.get("crv").and_then(Value::as_str) == Some("Ed25519")
    })?;
    let x = URL_SAFE_NO_PAD.decode(key.get("x")?.as_str()?).ok()?;
    (x.len() == 32).then(|| jsonwebtoken::DecodingKey::from_ed_der(&x))
}

/// The parts of a token signed by a key of `jwks` with EdDSA.
fn signed_by_set<'a>(jwks: &Value, token: &'a str) -> Result<Parts<'a>, TokenError> {
    let parts = Parts::split(token)?;
    let key = parts
        .kid()
        .filter(|_| parts.algorithm() == TokenAlgorithm::EdDsa)
        .and_then(|kid| ed25519_key(jwks, kid))
        .ok_or(TokenError::Invalid)?;
    if !parts.signed_with(&key) {
        return Err(TokenError::Invalid);
    }
    Ok(parts)
}

/// A share token the partner `issuer` signed: verified with its key set, its `iss` the
/// partner's, then read as this deployment reads its own.
pub fn verify_partner_token(
    token: &str, jwks: &Value, issuer: &str,
) -> Result<ShareClaims, TokenError> {
    let parts = signed_by_set(jwks, token)?;
    let iss = parts.payload()?.get("iss").and_then(Value::as_str).map(str::to_owned);
    if iss.as_deref().map(|iss| iss.trim_end_matches('/')) != Some(issuer) {
        return Err(TokenError::Invalid);
    }
    parts.claims()
}

/// The claims of a proof a partner signed with a key of `jwks`: `iss`, `aud`, `iat` and `exp`
/// there, not expired (with the leeway), made within [`PROOF_LIFETIME_SECONDS`], not in the
/// future. What they must say is the caller's to check.
pub fn verify_proof(proof: &str, jwks: &Value) -> Result<Value, TokenError> {
    let parts = signed_by_set(jwks, proof)?;
    let claims = parts.payload()?;
    let (Some(iat), Some(exp)) =
        (claims.get("iat").and_then(Value::as_i64), claims.get("exp").and_then(Value::as_i64))
    else {
        return Err(TokenError::Invalid);
    };
    let now = chrono::Utc::now().timestamp();
    let leeway = LEEWAY_SECONDS as i64;
    if iat > now + leeway || exp - iat > PROOF_LIFETIME_SECONDS || exp + leeway < now {
        return Err(TokenError::Invalid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JwtShareTokens, Keyring, SigningKey};
    use handoff_domain::ports::ShareTokens;
    use handoff_domain::{ApplicationId, SessionId, SessionKind};
    use serde_json::json;

    fn deployment(seed: u8, url: &str) -> JwtShareTokens {
        let key = SigningKey::ed25519(format!("e{seed}"), &[seed; 32], None).unwrap();
        JwtShareTokens::new(Keyring::new(vec![key]).signing_with(TokenAlgorithm::EdDsa))
            .issued_by(Some(url.into()))
    }

    fn claims() -> ShareClaims {
        let now = chrono::Utc::now();
        ShareClaims {
            session_id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            session_kind: SessionKind::User,
            from_application_id: ApplicationId::from_uuid(uuid::Uuid::new_v4()),
            for_application_id: ApplicationId::from_uuid(uuid::Uuid::new_v4()),
            issued_at: now,
            expires_at: now + chrono::Duration::hours(1),
            jti: Some("t1".into()),
            blocks: None,
            consent: None,
        }
    }

    /// A partner's token is foreign to this deployment, verifies with the partner's key set
    /// and its URL, and with nobody else's.
    #[test]
    fn a_partners_token_verifies_with_its_keys_only() {
        let (bank, fintech) =
            (deployment(1, "https://bank.example"), deployment(2, "https://fintech.example"));
        let token = bank.issue(&claims()).unwrap();
        assert_eq!(fintech.verify(&token), Err(TokenError::Foreign("https://bank.example".into())));
        assert_eq!(unverified_issuer(&token).as_deref(), Some("https://bank.example"));
        let jwks = bank.published_keys();
        assert!(jwks_names(&jwks, &token));
        assert!(!jwks_names(&fintech.published_keys(), &token));
        let verified = verify_partner_token(&token, &jwks, "https://bank.example").unwrap();
        assert_eq!(verified.jti.as_deref(), Some("t1"));
        // Another URL, another set, a claim altered: refused.
        assert!(verify_partner_token(&token, &jwks, "https://evil.example").is_err());
        assert!(
            verify_partner_token(&token, &fintech.published_keys(), "https://bank.example")
                .is_err()
        );
        let (head, rest) = token.split_once('.').unwrap();
        let forged = format!("{head}.{}", rest.replacen("e", "f", 1));
        assert!(verify_partner_token(&forged, &jwks, "https://bank.example").is_err());
    }

    /// A proof verifies with its signer's key set while fresh; an HMAC deployment cannot make
    /// one.
    #[test]
    fn proofs_are_short_lived_and_eddsa_only() {
        let fintech = deployment(2, "https://fintech.example");
        let now = chrono::Utc::now().timestamp();
        let fresh =
            json!({"iss": "https://fintech.example", "aud": "x", "iat": now, "exp": now + 60});
        let proof = fintech.sign_proof(&fresh).unwrap();
        assert_eq!(verify_proof(&proof, &fintech.published_keys()).unwrap()["aud"], "x");
        let stale = json!({"iss": "a", "aud": "x", "iat": now - 600, "exp": now - 540});
        let stale = fintech.sign_proof(&stale).unwrap();
        assert!(verify_proof(&stale, &fintech.published_keys()).is_err());
        let long = json!({"iss": "a", "aud": "x", "iat": now, "exp": now + 3600});
        let long = fintech.sign_proof(&long).unwrap();
        assert!(verify_proof(&long, &fintech.published_keys()).is_err());
        let hmac = SigningKey::new("k1", vec![7; 32], None).unwrap();
        let hmac = JwtShareTokens::new(Keyring::new(vec![hmac]));
        assert!(matches!(hmac.sign_proof(&fresh), Err(TokenError::Signing(_))));
    }
}
