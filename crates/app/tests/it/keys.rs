//! Share-token keys: sealed at rest under the key-encryption key, EdDSA with its public keys at
//! `/.well-known/jwks.json` (checked with another JOSE library), and a retirement that reaches
//! every running server process.

use std::time::Duration;

use sea_orm::ConnectionTrait;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handoff::config::Secret;
use handoff::{Application, load_keyring};
use handoff_domain::ports::{SessionRepository, ShareTokens};
use handoff_domain::{FeatureBlock, SessionFilter, SessionKind};
use handoff_store::NewSigningKey;
use handoff_testdb::{Backend, TestDatabase};
use handoff_token::{JwtShareTokens, KeyEncryptionKey, SigningKey, TokenAlgorithm};
use serde_json::{Value, json};

use crate::processes::Server;
use crate::support::{
    TEST_KEK, TestApp, assert_error, on_both_backends, per_backend, post_to, test_config,
};

/// A copy of `token` with the same header and claims, signed with HS256 under `secret`.
fn resigned(token: &str, secret: &[u8]) -> String {
    let (message, _) = token.rsplit_once('.').unwrap();
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

on_both_backends!(a_copy_of_the_database_cannot_mint_tokens);
/// The stored key is sealed under the test KEK: its bytes are no HMAC secret that signs a
/// token the server accepts.
async fn a_copy_of_the_database_cannot_mint_tokens(app: TestApp) {
    let kek = KeyEncryptionKey::from_secret(TEST_KEK.as_bytes()).unwrap();
    let stored = app.store.signing_keys(true).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kid, "k1");
    assert_eq!(stored[0].algorithm, "HS256");
    assert_eq!(stored[0].sealed_with.as_deref(), Some(kek.id()));
    let shared = app.shared("user", "user-ana-001").await;
    let minted = resigned(&shared.token, &stored[0].secret);
    assert_ne!(minted, shared.token, "the stored bytes are not the secret");
    let answer = app.import(&shared.receiver, &minted, &shared.workflow, json!({})).await;
    assert_error(&answer, 401, "share_token_invalid");
    let answer = app.redeem(&shared, json!({})).await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
}

/// A key an earlier version stored in clear is sealed at the next start and keeps verifying; a
/// process with another key-encryption key, or none, refuses to start and says why.
async fn keys_in_clear_are_sealed_and_a_wrong_kek_refuses_to_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let clear = b"a secret an earlier version kept in clear".to_vec();
    app.store
        .add_signing_key(
            &NewSigningKey {
                kid: "legacy".into(),
                algorithm: "HS256".into(),
                sealed_secret: clear.clone(),
                sealed_with: "-".into(),
                activates_at: chrono::Utc::now() - chrono::Duration::hours(1),
            },
            chrono::Utc::now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    let db = app.store.connection();
    db.execute_unprepared("UPDATE signing_keys SET sealed_with = NULL WHERE kid = 'legacy'")
        .await
        .unwrap();

    let keyring = load_keyring(&test_config(app.db.url()), &app.store).await.unwrap();
    let kek = KeyEncryptionKey::from_secret(TEST_KEK.as_bytes()).unwrap();
    let legacy = app
        .store
        .signing_keys(true)
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.kid == "legacy")
        .unwrap();
    assert_eq!(legacy.sealed_with.as_deref(), Some(kek.id()));
    assert_ne!(legacy.secret, clear, "sealed in place");
    // Still the same key: a token it signed verifies.
    let old = JwtShareTokens::new(handoff_token::Keyring::new(vec![
        SigningKey::new("legacy", clear, None).unwrap(),
    ]));
    let claims = handoff_domain::ShareClaims {
        session_id: handoff_domain::SessionId::from_uuid(uuid::Uuid::new_v4()),
        session_kind: handoff_domain::SessionKind::User,
        from_application_id: handoff_domain::ApplicationId::from_uuid(uuid::Uuid::new_v4()),
        for_application_id: handoff_domain::ApplicationId::from_uuid(uuid::Uuid::new_v4()),
        issued_at: chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp(), 0).unwrap(),
        expires_at: chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 600, 0)
            .unwrap(),
        jti: None,
        blocks: None,
        consent: None,
    };
    let token = old.issue(&claims).unwrap();
    assert_eq!(JwtShareTokens::new(keyring).verify(&token).unwrap(), claims);

    let wrong = Application::build(handoff::Config {
        key_encryption_key: Some(Secret("another key-encryption key, 32+ bytes".into())),
        ..test_config(app.db.url())
    })
    .await
    .err()
    .expect("a wrong key-encryption key refuses to start")
    .to_string();
    assert!(wrong.contains("is sealed with key-encryption key"), "{wrong}");
    assert!(wrong.contains("HANDOFF_KEY_ENCRYPTION_KEY"), "{wrong}");
    let none = Application::build(handoff::Config {
        key_encryption_key: None,
        ..test_config(app.db.url())
    })
    .await
    .err()
    .expect("no key-encryption key refuses to start")
    .to_string();
    assert!(none.contains("HANDOFF_KEY_ENCRYPTION_KEY"), "{none}");
}

per_backend!(keys_in_clear_are_sealed_and_a_wrong_kek_refuses_to_start);

async fn eddsa_app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        config.token_algorithm = TokenAlgorithm::EdDsa;
    })
    .await
}

/// With EdDSA, tokens are signed with an Ed25519 key whose public half is at
/// `/.well-known/jwks.json`, and a receiver verifies a token with it using another JOSE
/// library (jwt-compact) before presenting it.
async fn eddsa_tokens_verify_with_the_published_keys(backend: Backend) {
    use jwt_compact::{AlgorithmExt, UntrustedToken, alg::Ed25519, jwk::JsonWebKey};

    let app = eddsa_app(backend).await;
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kid"], "e1");
    assert!(keys[0].get("d").is_none(), "never the private part");

    let shared = app.shared("business", "acme-gmbh").await;
    let header = jsonwebtoken::decode_header(&shared.token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some("e1"));

    let jwk: JsonWebKey<'_> = serde_json::from_value(keys[0].clone()).unwrap();
    let public = ed25519_dalek::VerifyingKey::try_from(&jwk).unwrap();
    let untrusted = UntrustedToken::new(&shared.token).unwrap();
    let verified = Ed25519
        .validator::<Value>(&public)
        .validate(&untrusted)
        .expect("the published key verifies the token");
    assert_eq!(verified.claims().custom["session_id"], json!(shared.session));
    assert_eq!(verified.claims().custom["for_application_id"], json!(shared.receiver.id));
    // A token altered by one claim does not.
    let (head, rest) = shared.token.split_once('.').unwrap();
    let (claims, signature) = rest.split_once('.').unwrap();
    let mut altered: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    altered["for_application_id"] = json!(uuid::Uuid::new_v4());
    let forged = format!(
        "{head}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&altered).unwrap())
    );
    assert!(
        Ed25519
            .validator::<Value>(&public)
            .validate(&UntrustedToken::new(&forged).unwrap())
            .is_err()
    );

    let answer = app.redeem(&shared, json!({})).await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
}

per_backend!(eddsa_tokens_verify_with_the_published_keys);

on_both_backends!(hs256_publishes_no_keys);
/// HS256 keys are secrets: the key set is empty, and reading it needs no API key.
async fn hs256_publishes_no_keys(app: TestApp) {
    let response = reqwest::get(format!("{}/.well-known/jwks.json", app.base)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"keys": []}));
}

/// Runs the operator command line on `url`.
fn handoff(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("HANDOFF_KEY_ENCRYPTION_KEY", TEST_KEK)
        .env("HANDOFF_KEY_RELOAD_SECONDS", "1")
        .env("HANDOFF_LOG", "error")
        .env_remove("HANDOFF_TOKEN_SECRET")
        .output()
        .unwrap()
}

/// Two server processes on one database, reloading keys every second: a key rotated in by the
/// command line signs on both once active; the old key retired, its tokens stop verifying on
/// both within the reload period.
async fn a_retired_key_stops_verifying_on_every_server(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let env = [("HANDOFF_KEY_ENCRYPTION_KEY", TEST_KEK), ("HANDOFF_KEY_RELOAD_SECONDS", "1")];
    let mut a = Server::start_with(db.url(), &env);
    let mut b = Server::start_with(db.url(), &env);
    a.wait_until_healthy().await;
    b.wait_until_healthy().await;
    let url = db.url().to_owned();
    let app = TestApp::attach(&a.base, db).await;
    let shared = app.shared("user", "user-ana-001").await;
    let preview = |base: String, token: String| {
        let (key, workflow) = (shared.receiver.key.clone(), shared.workflow.clone());
        async move {
            let body = json!({"share_token": token, "workflow_id": workflow});
            post_to(&base, "/v3/session/import-shared/preview/", &key, &body).await
        }
    };
    for base in [&a.base, &b.base] {
        assert_eq!(preview(base.clone(), shared.token.clone()).await.0, 200);
    }

    let rotated = handoff(&url, &["signing-keys", "rotate"]);
    assert!(rotated.status.success(), "{rotated:?}");
    let new: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    let new_kid = new["kid"].as_str().unwrap().to_owned();
    // It signs from two reload periods on; both servers have loaded it by then.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let retired = handoff(&url, &["signing-keys", "retire", "--kid", "k1"]);
    assert!(retired.status.success(), "{retired:?}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for base in [&a.base, &b.base] {
        let (status, body) = preview(base.clone(), shared.token.clone()).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("share_token_invalid")), "{base}");
    }
    // A new share on A is signed with the new key and imports on B.
    let session = app.finished_session(&shared.source, "user", "user-bea-002").await;
    let token = app.share(&shared.source, &session, &shared.receiver).await;
    assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(), Some(new_kid.as_str()));
    let imported = reqwest::Client::new()
        .post(format!("{}/v3/session/import-shared/", b.base))
        .header("x-api-key", &shared.receiver.key)
        .json(&json!({"share_token": token, "workflow_id": shared.workflow}))
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status().as_u16(), 201);
    a.kill();
    b.kill();
}

per_backend!(a_retired_key_stops_verifying_on_every_server);

on_both_backends!(keys_move_to_a_new_key_encryption_key);
/// `signing-keys reseal` opens every key with the previous key-encryption key and seals it with
/// the new one: the same keys, which only the new KEK opens. Blocklist entries' values are
/// sealed and hashed again under the new key.
async fn keys_move_to_a_new_key_encryption_key(app: TestApp) {
    const NEW_KEK: &str = "the operator's next key-encryption key, 32+ bytes";
    let shared = app.shared("user", "user-ana-001").await;
    let flags = json!({"session_id": shared.session, "blocklist_document": true});
    let listed = app.post("/v3/blocklist/add/", &shared.source, flags).await;
    assert_eq!(listed.body["entry_types"], json!(["document"]), "{}", listed.text);
    let (email, _, totp) = crate::support::add_reviewer(
        app.db.url(),
        &shared.receiver,
        "r@beta.example",
        "reviewer",
        true,
    );
    let reseal = |previous: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["signing-keys", "reseal"])
            .env("DATABASE_URL", app.db.url())
            .env("HANDOFF_KEY_ENCRYPTION_KEY", NEW_KEK)
            .env("HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY", previous)
            .env("HANDOFF_LOG", "error")
            .output()
            .unwrap()
    };
    let wrong = reseal("not the key-encryption key they are sealed with");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("neither the previous"));
    let done = reseal(TEST_KEK);
    assert!(done.status.success(), "{done:?}");
    let new_kek = KeyEncryptionKey::from_secret(NEW_KEK.as_bytes()).unwrap();
    let stored = app.store.signing_keys(true).await.unwrap();
    assert!(stored.iter().all(|key| key.sealed_with.as_deref() == Some(new_kek.id())));
    let entry =
        &crate::support::rows(&app.store, "SELECT match_key, sealed_with FROM list_entries").await
            [0];
    let document = handoff_domain::lists::hash_context(handoff_domain::lists::EntryType::Document);
    assert_eq!(
        entry.try_get::<String>("", "match_key").unwrap(),
        new_kek.fingerprint(&document, b"X1234567Z"),
        "hashed again under the new key"
    );
    assert_eq!(entry.try_get::<String>("", "sealed_with").unwrap(), new_kek.id());
    // A reviewer's one-time-code secret: the same secret, sealed with the new key.
    let reviewer = &crate::support::rows(
        &app.store,
        &format!("SELECT id, totp_secret, totp_sealed_with FROM reviewers WHERE email = '{email}'"),
    )
    .await[0];
    assert_eq!(reviewer.try_get::<String>("", "totp_sealed_with").unwrap(), new_kek.id());
    let id = handoff_domain::ReviewerId::from_uuid(reviewer.try_get("", "id").unwrap());
    let sealed: Vec<u8> = reviewer.try_get("", "totp_secret").unwrap();
    let opened = new_kek.open_for(&handoff_domain::reviewer::totp_context(id), &sealed).unwrap();
    assert_eq!(Some(opened), totp);

    let with_new = handoff::Config {
        key_encryption_key: Some(Secret(NEW_KEK.into())),
        ..test_config(app.db.url())
    };
    let keyring = load_keyring(&with_new, &app.store).await.unwrap();
    assert!(JwtShareTokens::new(keyring).verify(&shared.token).is_ok(), "the same keys");
    let with_old = load_keyring(&test_config(app.db.url()), &app.store).await;
    assert!(with_old.is_err(), "the previous KEK opens nothing now");
    // Sessions' data: the applications' keys moved, the names' index hashed again.
    assert!(String::from_utf8_lossy(&done.stdout).contains("\"application_keys\":2"), "{done:?}");
    let moved = handoff_store::Store::connect(app.db.url(), &Default::default())
        .await
        .unwrap()
        .sealing_with(new_kek.clone());
    let source = handoff_domain::ApplicationId::from_uuid(shared.source.id.parse().unwrap());
    let session = handoff_domain::SessionId::from_uuid(shared.session.parse().unwrap());
    let record = moved.find_session(source, session).await.unwrap().unwrap();
    let documents = &record.blocks.iter().find(|(b, _)| *b == FeatureBlock::IdVerifications);
    assert!(documents.unwrap().1[0].json().get().contains("X1234567Z"), "opens with the new KEK");
    let mut filter = SessionFilter::of_kinds(vec![SessionKind::User], 10);
    filter.search = Some("example".into());
    assert_eq!(moved.list_sessions(source, &filter).await.unwrap().count, 1, "found by name");
    // Nothing left to move: a second run changes nothing.
    let again = reseal(TEST_KEK);
    assert!(again.status.success());
    assert!(again.stdout.is_empty());
}
