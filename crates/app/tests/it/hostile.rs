//! Hostile input over HTTP: forged, tampered and malformed share tokens against the import
//! endpoint, and a matrix of malformed bodies, paths, queries and headers over every endpoint.
//! Every answer is a 4xx JSON error of the contract; none is a 5xx.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Tenant, TestApp, assert_error, on_both_backends};

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn forge(header: Value, claims: &Value, alg: Option<Algorithm>, secret: &[u8]) -> String {
    let message = format!("{}.{}", b64(&header), b64(claims));
    let signature = alg
        .map(|alg| {
            jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(secret), alg)
                .unwrap()
        })
        .unwrap_or_default();
    format!("{message}.{signature}")
}

struct Setup {
    receiver: Tenant,
    workflow: String,
    claims: Value,
    secret: Vec<u8>,
}

async fn setup(app: &TestApp) -> Setup {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "u").await;
    let workflow = app.workflow(&receiver, "user").await;
    // The claims of a token the server issued (and recorded), to sign again and bend.
    let issued = app.share(&source, &session, &receiver).await;
    let payload = issued.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let secret = crate::support::first_key_secret(app).await;
    Setup { receiver, workflow, claims, secret }
}

on_both_backends!(forged_and_broken_tokens_are_refused);
async fn forged_and_broken_tokens_are_refused(app: TestApp) {
    let s = setup(&app).await;
    let k1 = |claims: &Value| {
        forge(json!({"alg": "HS256", "kid": "k1"}), claims, Some(Algorithm::HS256), &s.secret)
    };
    let good = k1(&s.claims);
    let (head, rest) = good.split_once('.').unwrap();
    let (body, signature) = rest.split_once('.').unwrap();
    let with = |key: &str, value: Value| {
        let mut c = s.claims.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = s.claims.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let mut cases: Vec<(String, u16, &str)> = vec![
        (forge(json!({"alg": "none"}), &s.claims, None, &s.secret), 401, "share_token_invalid"),
        (
            forge(json!({"alg": "NONE", "kid": "k1"}), &s.claims, None, &s.secret),
            401,
            "share_token_invalid",
        ),
        (
            forge(json!({"alg": "None"}), &s.claims, Some(Algorithm::HS256), &s.secret),
            401,
            "share_token_invalid",
        ),
        (forge(json!({"alg": "nOnE"}), &s.claims, None, &s.secret), 401, "share_token_invalid"),
        (
            forge(
                json!({"alg": "HS384", "kid": "k1"}),
                &s.claims,
                Some(Algorithm::HS384),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "HS512", "kid": "k1"}),
                &s.claims,
                Some(Algorithm::HS512),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "RS256", "kid": "k1"}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "ES256", "kid": "k1"}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "PS256", "kid": "k1"}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "EdDSA", "kid": "k1"}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "HS256", "kid": "k1"}),
                &s.claims,
                Some(Algorithm::HS256),
                b"another-secret-another-secret-32b!!",
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "HS256", "kid": "k9"}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "HS256", "kid": "../../../../etc/passwd"}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "HS256", "kid": "k1' OR '1'='1"}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "HS256", "kid": "x".repeat(2000)}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            forge(json!({"alg": "HS256", "kid": 7}), &s.claims, Some(Algorithm::HS256), &s.secret),
            401,
            "share_token_invalid",
        ),
        (
            forge(
                json!({"alg": "HS256", "kid": ["k1"]}),
                &s.claims,
                Some(Algorithm::HS256),
                &s.secret,
            ),
            401,
            "share_token_invalid",
        ),
        (
            format!("{head}.{}.{signature}", b64(&with("exp", json!(9_999_999_999i64)))),
            401,
            "share_token_invalid",
        ),
        (
            format!(
                "{head}.{body}.{}",
                if signature.starts_with('A') {
                    signature.replacen('A', "B", 1)
                } else {
                    format!("A{}", &signature[1..])
                }
            ),
            401,
            "share_token_invalid",
        ),
        (format!("{head}.{body}"), 401, "share_token_invalid"),
        (format!("{head}.{body}."), 401, "share_token_invalid"),
        (format!("{good}.{signature}"), 401, "share_token_invalid"),
        (good[..good.len() / 2].to_owned(), 401, "share_token_invalid"),
        ("a.b.c".to_owned(), 401, "share_token_invalid"),
        ("🦀.🦀.🦀".to_owned(), 401, "share_token_invalid"),
        (k1(&with("exp", json!("2099-01-01"))), 401, "share_token_invalid"),
        (k1(&with("exp", json!(1.5e20))), 401, "share_token_invalid"),
        (k1(&with("session_id", json!("not-a-uuid"))), 401, "share_token_invalid"),
        (k1(&with("from_application_id", json!(12))), 401, "share_token_invalid"),
        (k1(&with("for_application_id", json!("x"))), 401, "share_token_invalid"),
        (k1(&with("session_kind", json!("company"))), 401, "share_token_invalid"),
        (k1(&with("jti", json!({"a": 1}))), 401, "share_token_invalid"),
        (k1(&without("exp")), 401, "share_token_invalid"),
        (k1(&without("session_id")), 401, "share_token_invalid"),
        (k1(&without("iat")), 401, "share_token_invalid"),
        (k1(&with("exp", json!(Utc::now().timestamp() - 3600))), 401, "share_token_expired"),
        // Well signed with the server's key, but the claims are not the ones this deployment
        // recorded for the token's `jti`: not issued here (check 5), before checks 6 and 7.
        (k1(&with("from_application_id", json!(uuid::Uuid::new_v4()))), 401, "share_token_invalid"),
        (k1(&with("session_id", json!(uuid::Uuid::new_v4()))), 401, "share_token_invalid"),
        (k1(&with("session_kind", json!("business"))), 401, "share_token_invalid"),
        (k1(&with("for_application_id", json!(uuid::Uuid::new_v4()))), 401, "share_token_invalid"),
        (k1(&with("jti", json!("never-issued-here"))), 401, "share_token_invalid"),
        (k1(&without("jti")), 401, "share_token_invalid"),
    ];
    // Oversized tokens are refused with the body, before they are read.
    cases.push((format!("{good}{}", "A".repeat(5000)), 400, "invalid_request"));
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (i, (token, status, code)) in cases.iter().enumerate() {
        let answer = app
            .post(
                "/v3/session/import-shared/",
                &s.receiver,
                json!({"share_token": token, "workflow_id": s.workflow}),
            )
            .await;
        assert_eq!(
            (answer.status.as_u16(), answer.body["code"].as_str()),
            (*status, Some(*code)),
            "case {i}: {token:.120}"
        );
        assert_error(&answer, *status, code);
    }
    eprintln!("hostile tokens tried: {}", cases.len());
    // The untouched token still imports: none of the above consumed anything.
    let imported = app
        .post(
            "/v3/session/import-shared/",
            &s.receiver,
            json!({"share_token": good, "workflow_id": s.workflow}),
        )
        .await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
}

on_both_backends!(malformed_input_never_gets_a_server_error);
async fn malformed_input_never_gets_a_server_error(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let session = app.finished_session(&tenant, "user", "u").await;
    let workflow = app.workflow(&tenant, "user").await;
    let endpoints: Vec<(Method, String)> = vec![
        (Method::POST, "/v3/workflows/".into()),
        (Method::GET, "/v3/workflows/".into()),
        (Method::GET, format!("/v3/workflows/{workflow}/")),
        (Method::POST, "/v3/session/".into()),
        (Method::PUT, format!("/v3/session/{session}/decision/")),
        (Method::GET, format!("/v3/session/{session}/decision/")),
        (Method::GET, format!("/v2/session/{session}/decision/")),
        (Method::PATCH, format!("/v3/session/{session}/update-status/")),
        (Method::POST, format!("/v3/session/{session}/share/")),
        (Method::POST, "/v3/session/import-shared/".into()),
        (Method::GET, "/v3/sessions/".into()),
        (Method::GET, "/v3/users/u/".into()),
        (Method::GET, "/v3/businesses/u/".into()),
    ];
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let deep_object = format!("{}{}", "{\"a\":".repeat(3000), "1".to_owned() + &"}".repeat(3000));
    let bodies: Vec<(Option<&str>, Vec<u8>)> = vec![
        (Some("application/json"), b"".to_vec()),
        (Some("application/json"), b"null".to_vec()),
        (Some("application/json"), b"[]".to_vec()),
        (Some("application/json"), b"{".to_vec()),
        (Some("application/json"), b"\"text\"".to_vec()),
        (Some("application/json"), b"1e999999".to_vec()),
        (Some("application/json"), b"{\"a\":1}{\"b\":2}".to_vec()),
        (Some("application/json"), deep.into_bytes()),
        (Some("application/json"), deep_object.into_bytes()),
        (Some("application/json"), b"\xff\xfe\xfd".to_vec()),
        (Some("application/json"), b"{\"status\": \"\\ud800\"}".to_vec()),
        (Some("application/json"), vec![b' '; 3_000_000]),
        (Some("text/plain"), b"{}".to_vec()),
        (Some("application/x-www-form-urlencoded"), b"a=b".to_vec()),
        (None, b"{}".to_vec()),
    ];
    let fields = [
        "workflow_id",
        "vendor_data",
        "features",
        "status",
        "new_status",
        "comment",
        "share_token",
        "for_application_id",
        "ttl_in_seconds",
        "trust_review",
        "metadata",
        "callback",
        "id_verifications",
        "is_default",
    ];
    let values = [
        json!(null),
        json!([]),
        json!({}),
        json!(1.5),
        json!(-1),
        json!(true),
        json!("x"),
        json!("\u{0000}"),
        json!(i64::MAX),
        json!("9".repeat(400)),
    ];
    let mut tried = 0;
    let check = |answer: &crate::support::Answer, what: &str| {
        assert!(answer.status.as_u16() < 500, "{what}: {answer:?}");
        if !answer.status.is_success() {
            assert!(answer.content_type.starts_with("application/json"), "{what}: {answer:?}");
            assert!(answer.body["code"].is_string(), "{what}: {answer:?}");
        }
    };
    for (method, path) in &endpoints {
        for (content_type, body) in &bodies {
            let answer = app.raw(method.clone(), path, &tenant, *content_type, body.clone()).await;
            check(
                &answer,
                &format!(
                    "{method} {path} {content_type:?} {}",
                    String::from_utf8_lossy(&body[..body.len().min(40)])
                ),
            );
            tried += 1;
        }
        if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
            for field in fields {
                for value in &values {
                    let answer = app
                        .send(
                            method.clone(),
                            path,
                            Some(&tenant.key),
                            Some(&json!({ field: value })),
                        )
                        .await;
                    check(&answer, &format!("{method} {path} {field}={value}"));
                    tried += 1;
                }
            }
        }
    }
    for path in [
        "/v3/session/%00/decision/",
        "/v3/session/..%2F..%2Fetc/decision/",
        &format!("/v3/session/{}/decision/", "a".repeat(5000)),
        "/v3/users/%FF%FE/",
        "/v3/users/%00/",
        &format!("/v3/users/{}/", "x".repeat(2000)),
        "/v3/workflows/%20/",
        "/v3//session/",
        "/v3/session//decision/",
        "/v3/sessions/?limit=99999999999999999999",
        "/v3/sessions/?offset=1e5",
        "/v3/sessions/?status=%00",
        "/v3/sessions/?vendor_data=%FF",
        "/v3/sessions/?session_kind[]=user",
        "/v3/sessions/?a=%%%",
    ] {
        let answer = app.get(path, &tenant).await;
        check(&answer, path);
        tried += 1;
    }
    for key in [
        "hk_".to_owned(),
        "x".repeat(10_000),
        format!("hk_{}_{}", "Z".repeat(12), "0".repeat(64)),
        " ".into(),
    ] {
        let answer = app.send(Method::GET, "/v3/sessions/", Some(&key), None).await;
        assert_error(
            &answer,
            if key.trim().is_empty() { 403 } else { 401 },
            "authentication_failed",
        );
        tried += 1;
    }
    eprintln!("malformed inputs tried: {tried}");
    assert!(tried > 1000);
    // Nothing above wrote anything.
    assert_eq!(app.get("/v3/sessions/", &tenant).await.body["count"], 1);
    assert_eq!(app.get("/v3/workflows/", &tenant).await.body["count"], 2);
}
