//! Share tokens: round trips, Didit's older shape, rotation, and a table of hostile tokens, each
//! with the refusal it must get.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use handoff_domain::ports::ShareTokens;
use handoff_domain::{ApplicationId, SessionId, SessionKind, ShareClaims, TokenError};
use handoff_token::{
    JwtShareTokens, KeyError, Keyring, MAX_TOKEN_BYTES, SigningKey, TokenAlgorithm,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-primary";
const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210-other!!";

fn key(kid: &str, secret: &[u8]) -> SigningKey {
    SigningKey::new(kid, secret.to_vec(), None).unwrap()
}

fn tokens() -> JwtShareTokens {
    JwtShareTokens::new(Keyring::new(vec![key("k1", SECRET)]))
}

fn claims() -> ShareClaims {
    let now = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    ShareClaims {
        session_id: SessionId::from_uuid(Uuid::new_v4()),
        session_kind: SessionKind::Business,
        from_application_id: ApplicationId::from_uuid(Uuid::new_v4()),
        for_application_id: ApplicationId::from_uuid(Uuid::new_v4()),
        issued_at: now,
        expires_at: now + Duration::hours(1),
        jti: Some(Uuid::new_v4().to_string()),
        blocks: None,
        consent: None,
    }
}

fn payload(exp_offset: i64) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "session_id": Uuid::new_v4(),
        "session_kind": "user",
        "from_application_id": Uuid::new_v4(),
        "for_application_id": Uuid::new_v4(),
        "iat": now,
        "exp": now + exp_offset,
        "jti": "01JEXAMPLE0000000000000000",
    })
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A token with any header and payload, signed with HMAC under `alg` (or unsigned for `None`).
fn forge(header: Value, payload: &Value, sign: Option<(Algorithm, &[u8])>) -> String {
    let message = format!("{}.{}", b64(&header), b64(payload));
    let signature = match sign {
        Some((alg, secret)) => {
            jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(secret), alg)
                .unwrap()
        }
        None => String::new(),
    };
    format!("{message}.{signature}")
}

fn hs256(kid: Option<&str>, payload: &Value, secret: &[u8]) -> String {
    let mut header = json!({"alg": "HS256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    forge(header, payload, Some((Algorithm::HS256, secret)))
}

#[test]
fn issued_tokens_verify_to_the_same_claims() {
    let tokens = tokens();
    let claims = claims();
    let token = tokens.issue(&claims).unwrap();
    assert_eq!(token.split('.').count(), 3);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.kid.as_deref(), Some("k1"));
    assert_eq!(tokens.verify(&token).unwrap(), claims);
}

#[test]
fn didits_older_shape_imports_as_a_user_token() {
    let mut legacy = payload(3600);
    let object = legacy.as_object_mut().unwrap();
    object.remove("session_kind");
    object.remove("jti");
    let token = hs256(None, &legacy, SECRET);
    let claims = tokens().verify(&token).unwrap();
    assert_eq!(claims.session_kind, SessionKind::User);
    assert_eq!(claims.jti, None);
    assert_eq!(claims.session_id.to_string(), legacy["session_id"].as_str().unwrap());
}

#[test]
fn rotation_signs_with_the_newest_and_verifies_with_any() {
    let old = JwtShareTokens::new(Keyring::new(vec![key("k1", SECRET)]));
    let old_token = old.issue(&claims()).unwrap();
    let rotated = JwtShareTokens::new(Keyring::new(vec![key("k1", SECRET), key("k2", OTHER)]));
    let new_token = rotated.issue(&claims()).unwrap();
    assert_eq!(jsonwebtoken::decode_header(&new_token).unwrap().kid.as_deref(), Some("k2"));
    assert!(rotated.verify(&old_token).is_ok(), "old tokens keep verifying");
    assert!(rotated.verify(&new_token).is_ok());
    assert_eq!(old.verify(&new_token), Err(TokenError::Invalid), "a server without k2 refuses it");
    // Retiring k1 (taking it out of the ring) ends its tokens.
    rotated.replace(Keyring::new(vec![key("k2", OTHER)]));
    assert_eq!(rotated.verify(&old_token), Err(TokenError::Invalid));
    assert!(rotated.verify(&new_token).is_ok());
    // A key not yet active verifies but does not sign.
    let later = SigningKey::new(
        "k3",
        b"a-key-that-activates-in-the-future!!".to_vec(),
        Some(Utc::now() + Duration::minutes(2)),
    )
    .unwrap();
    let pending = JwtShareTokens::new(Keyring::new(vec![key("k2", OTHER), later]));
    assert_eq!(
        jsonwebtoken::decode_header(pending.issue(&claims()).unwrap()).unwrap().kid.as_deref(),
        Some("k2")
    );
    // A kid-less token is tried against every key of the ring.
    assert!(pending.verify(&hs256(None, &payload(60), OTHER)).is_ok());
}

#[test]
fn keys_must_be_long_enough() {
    assert_eq!(
        SigningKey::from_secret(TokenAlgorithm::Hs256, b"short".to_vec()).unwrap_err(),
        KeyError::TooShort(5)
    );
    let a = SigningKey::from_secret(TokenAlgorithm::Hs256, SECRET.to_vec()).unwrap();
    let b = SigningKey::from_secret(TokenAlgorithm::Hs256, SECRET.to_vec()).unwrap();
    assert_eq!(a.kid(), b.kid(), "the same secret gets the same kid in every process");
    assert!(!format!("{a:?}").contains("0123456789abcdef"), "Debug hides the secret");
    assert_eq!(SigningKey::new("", SECRET.to_vec(), None).unwrap_err(), KeyError::BadKid);
}

#[test]
fn no_active_key_cannot_sign() {
    let empty = JwtShareTokens::new(Keyring::default());
    assert!(matches!(empty.issue(&claims()), Err(TokenError::Signing(_))));
}

/// Every hostile or broken token, and the refusal it gets.
#[test]
fn hostile_tokens_are_refused() {
    let valid = payload(3600);
    let good = hs256(Some("k1"), &valid, SECRET);
    let (head, rest) = good.split_once('.').unwrap();
    let (body, signature) = rest.split_once('.').unwrap();
    let mut cases: Vec<(&str, String, TokenError)> = Vec::new();
    let mut add = |name: &'static str, token: String, expected: TokenError| {
        cases.push((name, token, expected))
    };

    for none in ["none", "None", "NONE", "nOnE"] {
        add(
            "alg none",
            forge(json!({"alg": none, "typ": "JWT"}), &valid, None),
            TokenError::Invalid,
        );
        add(
            "alg none with kid",
            forge(json!({"alg": none, "kid": "k1"}), &valid, None),
            TokenError::Invalid,
        );
    }
    // Well signed, but nothing this server issues.
    add(
        "a crit header",
        forge(
            json!({"alg": "HS256", "kid": "k1", "crit": ["exp"]}),
            &valid,
            Some((Algorithm::HS256, SECRET)),
        ),
        TokenError::Invalid,
    );
    let now = Utc::now().timestamp();
    let mut future = valid.clone();
    future["iat"] = json!(now + 600);
    future["exp"] = json!(now + 1200);
    add("iat in the future", hs256(Some("k1"), &future, SECRET), TokenError::Invalid);
    let mut long = valid.clone();
    long["iat"] = json!(now - 10);
    long["exp"] = json!(now + 86_400);
    add("a lifetime over a day", hs256(Some("k1"), &long, SECRET), TokenError::Invalid);
    let mut years = valid.clone();
    years["exp"] = json!(now + 5 * 365 * 86_400);
    add("a lifetime of years", hs256(Some("k1"), &years, SECRET), TokenError::Invalid);
    let mut negative_iat = valid.clone();
    negative_iat["iat"] = json!(-1);
    add("a negative iat", hs256(Some("k1"), &negative_iat, SECRET), TokenError::Invalid);
    add(
        "HS384 with the right secret",
        forge(json!({"alg": "HS384", "kid": "k1"}), &valid, Some((Algorithm::HS384, SECRET))),
        TokenError::Invalid,
    );
    add(
        "HS512 with the right secret",
        forge(json!({"alg": "HS512", "kid": "k1"}), &valid, Some((Algorithm::HS512, SECRET))),
        TokenError::Invalid,
    );
    add(
        "RS256 header, HMAC signature (algorithm confusion)",
        forge(json!({"alg": "RS256", "kid": "k1"}), &valid, Some((Algorithm::HS256, SECRET))),
        TokenError::Invalid,
    );
    add(
        "ES256 header",
        forge(json!({"alg": "ES256", "kid": "k1"}), &valid, Some((Algorithm::HS256, SECRET))),
        TokenError::Invalid,
    );
    add(
        "EdDSA header",
        forge(json!({"alg": "EdDSA", "kid": "k1"}), &valid, Some((Algorithm::HS256, SECRET))),
        TokenError::Invalid,
    );
    add(
        "unknown alg",
        forge(json!({"alg": "HS1024", "kid": "k1"}), &valid, Some((Algorithm::HS256, SECRET))),
        TokenError::Invalid,
    );
    add(
        "alg missing",
        forge(json!({"kid": "k1"}), &valid, Some((Algorithm::HS256, SECRET))),
        TokenError::Invalid,
    );
    add("signed with another key", hs256(Some("k1"), &valid, OTHER), TokenError::Invalid);
    add("no kid, another key", hs256(None, &valid, OTHER), TokenError::Invalid);
    add("unknown kid, valid signature", hs256(Some("k9"), &valid, SECRET), TokenError::Invalid);
    add("empty kid", hs256(Some(""), &valid, SECRET), TokenError::Invalid);
    add("path kid", hs256(Some("../../etc/passwd"), &valid, SECRET), TokenError::Invalid);
    add("huge kid", hs256(Some(&"k".repeat(3000)), &valid, SECRET), TokenError::Invalid);
    add(
        "kid as a number",
        forge(json!({"alg": "HS256", "kid": 1}), &valid, Some((Algorithm::HS256, SECRET))),
        TokenError::Invalid,
    );
    let mut stretched = valid.clone();
    stretched["exp"] = json!(9_999_999_999i64);
    add("tampered payload", format!("{head}.{}.{signature}", b64(&stretched)), TokenError::Invalid);
    let last = if signature.ends_with('A') { 'B' } else { 'A' };
    add(
        "tampered signature",
        format!("{head}.{body}.{}{last}", &signature[..signature.len() - 1]),
        TokenError::Invalid,
    );
    add("signature removed", format!("{head}.{body}."), TokenError::Invalid);
    add("two segments", format!("{head}.{body}"), TokenError::Invalid);
    add("four segments", format!("{good}.{signature}"), TokenError::Invalid);
    add("one segment", head.to_owned(), TokenError::Invalid);
    add("empty", String::new(), TokenError::Invalid);
    add("not base64", "!!!.???.***".into(), TokenError::Invalid);
    add(
        "header not JSON",
        format!("{}.{body}.{signature}", URL_SAFE_NO_PAD.encode(b"not json")),
        TokenError::Invalid,
    );
    add("oversized", format!("{good}{}", "A".repeat(MAX_TOKEN_BYTES)), TokenError::Invalid);
    add("expired", hs256(Some("k1"), &payload(-3600), SECRET), TokenError::Expired);
    add("expired and badly signed", hs256(Some("k1"), &payload(-3600), OTHER), TokenError::Invalid);
    for (claim, value) in [
        ("exp", json!("2099-01-01")),
        ("exp", json!(null)),
        ("exp", json!(-1)),
        ("exp", json!(4_102_444_800.5)),
        ("iat", json!("now")),
        ("session_id", json!("not-a-uuid")),
        ("session_id", json!(42)),
        ("from_application_id", json!("x")),
        ("for_application_id", json!([])),
        ("session_kind", json!("company")),
        ("session_kind", json!("USER")),
        ("session_kind", json!(1)),
        ("jti", json!(7)),
        ("jti", json!("")),
    ] {
        let mut bad = valid.clone();
        bad[claim] = value;
        add("mistyped claim", hs256(Some("k1"), &bad, SECRET), TokenError::Invalid);
    }
    for claim in ["exp", "iat", "session_id", "from_application_id", "for_application_id"] {
        let mut bad = valid.clone();
        bad.as_object_mut().unwrap().remove(claim);
        add("missing claim", hs256(Some("k1"), &bad, SECRET), TokenError::Invalid);
    }
    add("claims not an object", hs256(Some("k1"), &json!([1, 2]), SECRET), TokenError::Invalid);

    let tokens = tokens();
    assert!(tokens.verify(&good).is_ok(), "the untouched token verifies");
    let within_leeway = hs256(Some("k1"), &payload(-10), SECRET);
    assert!(tokens.verify(&within_leeway).is_ok(), "10 s past exp is within the leeway");
    assert!(cases.len() >= 40, "{} cases", cases.len());
    eprintln!("hostile tokens tried: {}", cases.len());
    for (name, token, expected) in &cases {
        assert_eq!(tokens.verify(token).as_ref().map(|_| ()), Err(expected), "{name}: {token:.80}");
    }
}

fn ed25519_tokens() -> (JwtShareTokens, SigningKey) {
    let ed = SigningKey::from_secret(TokenAlgorithm::EdDsa, SECRET.to_vec()).unwrap();
    let ring =
        Keyring::new(vec![key("k1", SECRET), ed.clone()]).signing_with(TokenAlgorithm::EdDsa);
    (JwtShareTokens::new(ring), ed)
}

#[test]
fn eddsa_tokens_sign_with_the_ed25519_key_and_verify_by_kid() {
    let (tokens, ed) = ed25519_tokens();
    let claims = claims();
    let token = tokens.issue(&claims).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(ed.kid()));
    assert_eq!(tokens.verify(&token).unwrap(), claims);
    // HS256 tokens of the same ring still verify: switching algorithms keeps old tokens good.
    assert!(tokens.verify(&hs256(Some("k1"), &payload(60), SECRET)).is_ok());
    // The public key alone verifies it, as a receiver would.
    let jwks = tokens.published_keys();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    let decoded = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.claims["session_id"], json!(claims.session_id.as_uuid()));
}

#[test]
fn an_ed25519_key_verifies_only_eddsa_tokens() {
    let (tokens, ed) = ed25519_tokens();
    let public =
        URL_SAFE_NO_PAD.decode(tokens.published_keys()["keys"][0]["x"].as_str().unwrap()).unwrap();
    // The classic confusion: HS256 keyed with the public key, under the Ed25519 key's kid.
    let confused = hs256(Some(ed.kid()), &payload(60), &public);
    assert_eq!(tokens.verify(&confused), Err(TokenError::Invalid));
    // An EdDSA token without a kid is never tried against any key.
    let token = tokens.issue(&claims()).unwrap();
    let (head, rest) = token.split_once('.').unwrap();
    let mut header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
    header.as_object_mut().unwrap().remove("kid");
    let kidless = format!("{}.{rest}", b64(&header));
    assert_eq!(tokens.verify(&kidless), Err(TokenError::Invalid));
    // An EdDSA header naming an HMAC key is refused.
    let (body, signature) = rest.split_once('.').unwrap();
    let renamed = format!("{}.{body}.{signature}", b64(&json!({"alg": "EdDSA", "kid": "k1"})));
    assert_eq!(tokens.verify(&renamed), Err(TokenError::Invalid));
    // A ring without the Ed25519 key refuses the token.
    let hmac_only = JwtShareTokens::new(Keyring::new(vec![key("k1", SECRET)]));
    assert_eq!(hmac_only.verify(&token), Err(TokenError::Invalid));
    assert_eq!(hmac_only.published_keys(), json!({"keys": []}));
}
