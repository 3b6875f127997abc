//! Share Session and Import Shared Session over HTTP: the flow for both kinds, every row of the
//! import check table, concurrency within and across processes, and atomicity.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use handoff::load_keyring;
use handoff_domain::ports::{ShareRepository, ShareTokens};
use handoff_domain::{ApplicationId, SessionId, SessionKind, ShareClaims};
use handoff_token::JwtShareTokens;
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use handoff_testdb::Backend;

use crate::support::{
    self, Shared, Tenant, TestApp, assert_error, assert_invalid, on_both_backends, per_backend,
};

/// Every block of a V3 payload that holds items.
fn blocks(v3: &Value) -> BTreeMap<String, Value> {
    v3.as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| {
            v.is_array()
                && v.as_array().unwrap().first().is_some_and(|i| i.get("node_id").is_some())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The app's own token signer, to mint tokens the server accepts (expired ones, older shapes).
async fn server_tokens(app: &TestApp) -> JwtShareTokens {
    JwtShareTokens::new(
        load_keyring(&crate::support::test_config(app.db.url()), &app.store).await.unwrap(),
    )
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    support::count(&app.store, sql).await
}

const REDACT: &str = "[redacted]";

on_both_backends!(a_user_session_is_shared_and_imported);
async fn a_user_session_is_shared_and_imported(app: TestApp) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "user-ana-001").await;
    let shared = app
        .post(
            &format!("/v3/session/{session}/share/"),
            &source,
            json!({"for_application_id": receiver.id, "ttl_in_seconds": "600"}),
        )
        .await;
    assert_eq!(shared.status.as_u16(), 200, "{}", shared.text);
    assert_eq!(shared.body["for_application_id"], receiver.id.as_str());
    insta::assert_json_snapshot!("share_response", shared.body, { ".share_token" => REDACT, ".for_application_id" => REDACT });
    let token = shared.body["share_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert!(header.kid.is_some());
    let claims = server_tokens(&app).await.verify(token).unwrap();
    assert_eq!(claims.expires_at - claims.issued_at, Duration::seconds(600));
    assert_eq!(claims.session_kind, SessionKind::User);

    let workflow = app.workflow(&receiver, "user").await;
    let imported = app.import(&receiver, token, &workflow, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    assert!(imported.body.get("session_kind").is_none(), "user imports answer the V2 payload");
    assert_eq!(imported.body["shared_from_session"], session.as_str());
    assert_eq!(
        imported.body["status"], "In Review",
        "without trust_review the clone waits for review"
    );
    assert_eq!(imported.body["workflow_id"], workflow.as_str());
    assert_eq!(imported.body["session_number"], 1, "the receiver's first session");
    assert_eq!(imported.body["vendor_data"], "user-ana-001");
    assert!(imported.body["session_url"].as_str().unwrap().starts_with(crate::support::PUBLIC_URL));
    insta::assert_json_snapshot!("import_user_response", imported.body, {
        ".session_id" => REDACT, ".workflow_id" => REDACT, ".session_url" => REDACT,
        ".shared_from_session" => REDACT, ".created_at" => REDACT, ".expires_at" => REDACT,
    });

    // The clone holds the same blocks, under a fresh identity.
    let clone_id = imported.body["session_id"].as_str().unwrap().to_owned();
    assert_ne!(clone_id, session);
    let source_v3 = app.decision(&source, &session).await.body;
    let clone_v3 = app.decision(&receiver, &clone_id).await.body;
    assert_eq!(blocks(&clone_v3), blocks(&source_v3));
    assert_eq!(blocks(&clone_v3).len(), 9);
    assert_ne!(clone_v3["session_url"], source_v3["session_url"]);
    assert_eq!(clone_v3["features"], source_v3["features"]);
    assert_eq!(clone_v3["expected_details"], source_v3["expected_details"]);
    let expires = chrono::DateTime::parse_from_rfc3339(clone_v3["expires_at"].as_str().unwrap())
        .unwrap()
        - chrono::DateTime::parse_from_rfc3339(clone_v3["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires.num_seconds(), 604_800);
    // Every related row was copied with a fresh id, and the import itself is logged.
    for table in handoff_migrations::BLOCK_TABLES {
        let n = count(&app, &format!("SELECT COUNT(*) AS n FROM {table}")).await;
        let distinct = count(&app, &format!("SELECT COUNT(DISTINCT id) AS n FROM {table}")).await;
        assert_eq!(n, distinct, "{table}: fresh ids");
        assert_eq!(n % 2, 0, "{table}: as many rows in the clone as in the source");
    }
    let imported_logs =
        count(&app, "SELECT COUNT(*) AS n FROM session_logs WHERE action = 'imported'").await;
    assert_eq!(imported_logs, 1);

    // Each application sees only its own.
    assert_error(&app.decision(&source, &clone_id).await, 404, "session_not_found");
    assert_error(&app.decision(&receiver, &session).await, 404, "session_not_found");
    assert_eq!(
        app.get("/v3/users/user-ana-001/", &receiver).await.body["status"],
        "ACTIVE",
        "the receiver got its User"
    );

    // A second import, with the same token or a new one, is refused and names the clone.
    let again = app.import(&receiver, token, &workflow, json!({})).await;
    assert_error(&again, 403, "already_imported");
    assert_eq!(again.body["session_id"], clone_id.as_str());
    insta::assert_json_snapshot!("already_imported", again.body, { ".session_id" => REDACT });
    let fresh = app.share(&source, &session, &receiver).await;
    let again = app.import(&receiver, &fresh, &workflow, json!({"trust_review": true})).await;
    assert_error(&again, 403, "already_imported");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM sessions").await, 2);
}

on_both_backends!(a_business_session_is_imported_with_trust_review);
async fn a_business_session_is_imported_with_trust_review(app: TestApp) {
    let Shared { source, receiver, session, workflow, token } =
        app.shared("business", "biz-widgets-001").await;
    let imported = app
        .import(
            &receiver,
            &token,
            &workflow,
            json!({"trust_review": true, "vendor_data": "acme-7"}),
        )
        .await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    assert_eq!(imported.body["session_kind"], "business");
    assert_eq!(imported.body["status"], "Approved");
    assert_eq!(imported.body["vendor_data"], "acme-7");
    assert_eq!(imported.body["shared_from_session"], session.as_str());
    insta::assert_json_snapshot!("import_business_response", imported.body, {
        ".session_id" => REDACT, ".workflow_id" => REDACT, ".session_url" => REDACT,
        ".shared_from_session" => REDACT, ".created_at" => REDACT, ".expires_at" => REDACT,
    });
    let source_v3 = app.decision(&source, &session).await.body;
    assert_eq!(blocks(&imported.body), blocks(&source_v3));
    assert_eq!(app.get("/v3/businesses/ACME-7/", &receiver).await.body["status"], "ACTIVE");
    assert_error(
        &app.get("/v3/businesses/biz-widgets-001/", &receiver).await,
        404,
        "entity_not_found",
    );
}

on_both_backends!(the_import_answers_what_a_later_read_of_the_clone_shows);
async fn the_import_answers_what_a_later_read_of_the_clone_shows(app: TestApp) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    for (kind, decision) in [("user", "/v2/session"), ("business", "/v3/session")] {
        let session = app.finished_session(&source, kind, &format!("{kind}-reviewed-001")).await;
        // A review on the source, so that the clone's `reviews` are not empty.
        let reviewed = app
            .patch(
                &format!("/v3/session/{session}/update-status/"),
                &source,
                json!({"new_status": "Declined", "comment": "Registry mismatch."}),
            )
            .await;
        assert_eq!(reviewed.status.as_u16(), 200, "{}", reviewed.text);
        let token = app.share(&source, &session, &receiver).await;
        let workflow = app.workflow(&receiver, kind).await;
        let imported =
            app.import(&receiver, &token, &workflow, json!({"trust_review": true})).await;
        assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
        assert_eq!(imported.body["status"], "Declined");
        assert_eq!(imported.body["reviews"][0]["comment"], "Registry mismatch.");
        let clone_id = imported.body["session_id"].as_str().unwrap();
        let read = app.get(&format!("{decision}/{clone_id}/decision/"), &receiver).await;
        assert_eq!(read.status.as_u16(), 200, "{}", read.text);
        assert_eq!(
            imported.text, read.text,
            "{kind}: the import's answer is the stored clone, byte for byte"
        );
    }
}

on_both_backends!(share_refusals);
async fn share_refusals(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let other = app.tenant("Other").await;
    let finished = app.finished_session(&owner, "user", "u").await;
    let workflow = app.workflow(&owner, "user").await;
    let fresh = app.session(&owner, &workflow, None).await;
    let path = |s: &str| format!("/v3/session/{s}/share/");
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(String, Value, u16, &str)> = vec![
        (path(&fresh), json!({"for_application_id": other.id}), 400, "session_not_shareable"),
        (path(&unknown), json!({"for_application_id": other.id}), 404, "session_not_found"),
        (path("not-a-uuid"), json!({"for_application_id": other.id}), 404, "session_not_found"),
        (path(&finished), json!({"for_application_id": unknown}), 400, "unknown_application"),
        (path(&finished), json!({"for_application_id": owner.id}), 400, "cannot_share_with_self"),
        (path(&finished), json!({}), 400, "invalid_request"),
        (path(&finished), json!({"for_application_id": "nope"}), 400, "invalid_request"),
        (
            path(&finished),
            json!({"for_application_id": other.id, "ttl_in_seconds": 59}),
            400,
            "invalid_request",
        ),
        (
            path(&finished),
            json!({"for_application_id": other.id, "ttl_in_seconds": 86401}),
            400,
            "invalid_request",
        ),
        (
            path(&finished),
            json!({"for_application_id": other.id, "ttl_in_seconds": "abc"}),
            400,
            "invalid_request",
        ),
        (
            path(&finished),
            json!({"for_application_id": other.id, "ttl_in_seconds": 600.5}),
            400,
            "invalid_request",
        ),
        (
            path(&finished),
            json!({"for_application_id": other.id, "ttl_in_seconds": "-600"}),
            400,
            "invalid_request",
        ),
        (
            path(&finished),
            json!({"for_application_id": other.id, "ttl_in_seconds": true}),
            400,
            "invalid_request",
        ),
    ];
    for (path, body, status, code) in cases {
        let answer = app.post(&path, &owner, body.clone()).await;
        assert_error(&answer, status, code);
        if code != "invalid_request" && code != "session_not_found" {
            insta::assert_json_snapshot!(format!("share_{code}"), answer.body);
        }
    }
    // Another application's session is not found, even for a valid target.
    assert_error(
        &app.post(&path(&finished), &other, json!({"for_application_id": owner.id})).await,
        404,
        "session_not_found",
    );
    for ttl in [json!(60), json!("86400"), json!(null)] {
        let answer = app
            .post(
                &path(&finished),
                &owner,
                json!({"for_application_id": other.id, "ttl_in_seconds": ttl}),
            )
            .await;
        assert_eq!(answer.status.as_u16(), 200, "{ttl}: {}", answer.text);
    }
    // Declined and In Review sessions can be shared too.
    for status in ["Declined", "In Review"] {
        app.put(&format!("/v3/session/{finished}/decision/"), &owner, json!({"status": status}))
            .await;
        assert_eq!(
            app.post(&path(&finished), &owner, json!({"for_application_id": other.id}))
                .await
                .status
                .as_u16(),
            200
        );
    }
}

on_both_backends!(a_share_may_name_its_receiver_partner_client_id);
/// Didit's MCP server names the receiver `partner_client_id` (and repeats the session's id).
async fn a_share_may_name_its_receiver_partner_client_id(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&owner, "user", "u").await;
    let path = format!("/v3/session/{session}/share/");
    let body = json!({"session_id": session, "partner_client_id": receiver.id});
    let shared = app.post(&path, &owner, body).await;
    assert_eq!(shared.status.as_u16(), 200, "{}", shared.text);
    let workflow = app.workflow(&receiver, "user").await;
    let token = shared.body["share_token"].as_str().unwrap();
    assert_eq!(app.import(&receiver, token, &workflow, json!({})).await.status.as_u16(), 201);
    let same = json!({"for_application_id": receiver.id, "partner_client_id": receiver.id});
    assert_eq!(app.post(&path, &owner, same).await.status.as_u16(), 200);
    let other = app.tenant("Other").await;
    let differ = json!({"for_application_id": receiver.id, "partner_client_id": other.id});
    assert_invalid(&app.post(&path, &owner, differ).await, "partner_client_id");
    let neither = app.post(&path, &owner, json!({"session_id": session})).await;
    assert_invalid(&neither, "for_application_id");
}

on_both_backends!(an_import_without_a_workflow_uses_the_default_one_of_the_tokens_kind);
async fn an_import_without_a_workflow_uses_the_default_one_of_the_tokens_kind(app: TestApp) {
    let shared = app.shared("user", "user-ana-001").await;
    let import = |token: String| {
        let receiver = shared.receiver.clone();
        let app = &app;
        async move {
            let body = json!({"share_token": token});
            (
                app.post("/v3/session/import-shared/preview/", &receiver, body.clone()).await,
                app.post("/v3/session/import-shared/", &receiver, body).await,
            )
        }
    };
    // No default workflow of the token's kind: 400 naming workflow_id, for the preview too;
    // a default business workflow does not serve a user session.
    let business = app.workflow(&shared.receiver, "business").await;
    let path = format!("/v3/workflows/{business}/");
    let made_default = app.patch(&path, &shared.receiver, json!({"is_default": true})).await;
    assert_eq!(made_default.status.as_u16(), 200, "{}", made_default.text);
    let (preview, refused) = import(shared.token.clone()).await;
    assert_invalid(&preview, "workflow_id");
    assert_invalid(&refused, "workflow_id");
    // Earlier checks still come first: a token that is not valid is 401.
    let (_, invalid) = import("not.a.token".into()).await;
    assert_error(&invalid, 401, "share_token_invalid");
    // With a default user workflow, the clone runs it.
    let path = format!("/v3/workflows/{}/", shared.workflow);
    let made_default = app.patch(&path, &shared.receiver, json!({"is_default": true})).await;
    assert_eq!(made_default.status.as_u16(), 200, "{}", made_default.text);
    let (preview, imported) = import(shared.token.clone()).await;
    assert_eq!(preview.status.as_u16(), 200, "{}", preview.text);
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    assert_eq!(imported.body["workflow_id"], shared.workflow.as_str());
}

on_both_backends!(import_checks_answer_in_the_contract_order);
async fn import_checks_answer_in_the_contract_order(app: TestApp) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let third = app.tenant("Third").await;
    let session = app.finished_session(&source, "user", "u").await;
    let workflow = app.workflow(&receiver, "user").await;
    let business_workflow = app.workflow(&receiver, "business").await;
    let token = app.share(&source, &session, &receiver).await;
    let signer = server_tokens(&app).await;
    let claims = signer.verify(&token).unwrap();

    // 1: no key.
    let answer = app
        .send(
            Method::POST,
            "/v3/session/import-shared/",
            None,
            Some(&json!({"share_token": token, "workflow_id": workflow})),
        )
        .await;
    assert_error(&answer, 403, "authentication_failed");
    // 2: bad bodies, before the token is looked at.
    for body in [
        json!({}),
        json!({"workflow_id": workflow}),
        json!({"share_token": 5, "workflow_id": workflow}),
        json!({"share_token": token, "workflow_id": "x"}),
        json!({"share_token": token, "workflow_id": workflow, "trust_review": "yes"}),
        json!({"share_token": token, "workflow_id": workflow, "vendor_data": ""}),
        json!({"share_token": "", "workflow_id": workflow}),
        json!({"share_token": "x".repeat(4097), "workflow_id": workflow}),
    ] {
        assert_error(
            &app.post("/v3/session/import-shared/", &receiver, body).await,
            400,
            "invalid_request",
        );
    }
    // 3: invalid tokens.
    let invalid = app.import(&receiver, "not.a.token", &workflow, json!({})).await;
    assert_error(&invalid, 401, "share_token_invalid");
    insta::assert_json_snapshot!("share_token_invalid", invalid.body);
    let foreign = JwtShareTokens::new(handoff_token::Keyring::new(vec![
        handoff_token::SigningKey::new(
            "k1",
            b"another-secret-of-at-least-32-bytes!".to_vec(),
            None,
        )
        .unwrap(),
    ]));
    assert_error(
        &app.import(&receiver, &foreign.issue(&claims).unwrap(), &workflow, json!({})).await,
        401,
        "share_token_invalid",
    );
    // 4: expired (well signed).
    let past = ShareClaims {
        issued_at: Utc::now() - Duration::hours(2),
        expires_at: Utc::now() - Duration::hours(1),
        ..claims.clone()
    };
    let expired = app.import(&receiver, &signer.issue(&past).unwrap(), &workflow, json!({})).await;
    assert_error(&expired, 401, "share_token_expired");
    insta::assert_json_snapshot!("share_token_expired", expired.body);
    // 6: addressed to another application.
    let wrong = app.import(&third, &token, &app.workflow(&third, "user").await, json!({})).await;
    assert_error(&wrong, 403, "share_token_wrong_application");
    insta::assert_json_snapshot!("share_token_wrong_application", wrong.body);
    // 9 and 10: the receiver's workflow.
    let missing = app.import(&receiver, &token, &uuid::Uuid::new_v4().to_string(), json!({})).await;
    assert_error(&missing, 404, "workflow_not_found");
    let foreign_workflow = app.workflow(&third, "user").await;
    assert_error(
        &app.import(&receiver, &token, &foreign_workflow, json!({})).await,
        404,
        "workflow_not_found",
    );
    let mismatch = app.import(&receiver, &token, &business_workflow, json!({})).await;
    assert_error(&mismatch, 400, "workflow_kind_mismatch");
    insta::assert_json_snapshot!("workflow_kind_mismatch", mismatch.body);
    // None of those consumed the token.
    let revocable = app.share(&source, &session, &receiver).await;
    assert_eq!(app.import(&receiver, &token, &workflow, json!({})).await.status.as_u16(), 201);
    // 8 before 9: already imported wins over a bad workflow.
    assert_error(
        &app.import(&receiver, &token, &uuid::Uuid::new_v4().to_string(), json!({})).await,
        403,
        "already_imported",
    );
    // 5: revoked, checked before the application and the source.
    let jti = signer.verify(&revocable).unwrap().jti.unwrap();
    assert!(
        app.store
            .revoke_share_token(
                ApplicationId::from_uuid(source.id.parse().unwrap()),
                &jti,
                &handoff_domain::LogEntry::event(
                    "test",
                    handoff_domain::action::LogAction::ShareRevoked,
                    None,
                    Utc::now()
                )
            )
            .await
            .unwrap()
    );
    let revoked = app.import(&third, &revocable, &workflow, json!({})).await;
    assert_error(&revoked, 401, "share_token_revoked");
    insta::assert_json_snapshot!("share_token_revoked", revoked.body);
    // 7: the source was deleted; its tokens answer 404 (and a revoked one still 401).
    let other_receiver = app.tenant("Late").await;
    let late_token = app.share(&source, &session, &other_receiver).await;
    assert_eq!(
        app.delete(&format!("/v3/session/{session}/delete/"), &source).await.status.as_u16(),
        204
    );
    let gone = app
        .import(
            &other_receiver,
            &late_token,
            &app.workflow(&other_receiver, "user").await,
            json!({}),
        )
        .await;
    assert_error(&gone, 404, "source_session_not_found");
    insta::assert_json_snapshot!("source_session_not_found", gone.body);
    assert_error(
        &app.import(&receiver, &revocable, &workflow, json!({})).await,
        401,
        "share_token_revoked",
    );
    // Well signed, but not issued here (no ledger row): invalid, before any later check.
    let user_source = app.finished_session(&source, "user", "v").await;
    let as_business = ShareClaims {
        session_id: user_source.parse::<SessionId>().unwrap(),
        session_kind: SessionKind::Business,
        jti: None,
        blocks: None,
        consent: None,
        ..claims.clone()
    };
    assert_error(
        &app.import(&receiver, &signer.issue(&as_business).unwrap(), &business_workflow, json!({}))
            .await,
        401,
        "share_token_invalid",
    );
}

/// Tokens this deployment did not issue — Didit's older shape without `jti` or `session_kind`,
/// signed with a shared secret — are invalid unless the operator opts in
/// (`HANDOFF_ACCEPT_UNLISTED_TOKENS`); then they import once per receiver, as user sessions.
async fn tokens_in_didits_older_shape_import_as_user_sessions(backend: Backend) {
    let strict = TestApp::spawn(backend).await;
    let (receiver, token, workflow) = legacy_token(&strict).await;
    assert_error(
        &strict.import(&receiver, &token, &workflow, json!({})).await,
        401,
        "share_token_invalid",
    );

    let app = TestApp::spawn_with(backend, |config| config.accept_unlisted_tokens = true).await;
    let (receiver, token, workflow) = legacy_token(&app).await;
    let imported = app.import(&receiver, &token, &workflow, json!({"trust_review": true})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    assert_eq!(imported.body["status"], "Approved");
    assert!(imported.body.get("session_kind").is_none());
    let again = app.import(&receiver, &token, &workflow, json!({})).await;
    assert_error(&again, 403, "already_imported");
    assert_eq!(again.body["session_id"], imported.body["session_id"]);
}

per_backend!(tokens_in_didits_older_shape_import_as_user_sessions);

/// An unlisted token, once imported, stays redeemed after its clone is deleted (it is listed
/// under the SHA-256 of its text); and the receiver's operator blocks one by its id before it
/// is used (`handoff shares block`).
async fn unlisted_tokens_stay_redeemed_and_can_be_blocked(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.accept_unlisted_tokens = true).await;
    let (receiver, token, workflow) = legacy_token(&app).await;
    let imported = app.import(&receiver, &token, &workflow, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap();
    let deleted = app.delete(&format!("/v3/session/{clone}/delete/"), &receiver).await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    let again = app.import(&receiver, &token, &workflow, json!({})).await;
    assert_error(&again, 403, "already_imported");

    let (receiver, token, workflow) = legacy_token(&app).await;
    let jti =
        handoff_domain::services::unlisted_jti(&handoff_domain::ShareToken::new(token.clone()));
    let blocked = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["shares", "block", "--jti", &jti])
        .env("DATABASE_URL", app.db.url())
        .env("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
        .env("HANDOFF_LOG", "error")
        .output()
        .unwrap();
    assert!(blocked.status.success(), "{blocked:?}");
    assert_error(
        &app.import(&receiver, &token, &workflow, json!({})).await,
        401,
        "share_token_revoked",
    );
}

per_backend!(unlisted_tokens_stay_redeemed_and_can_be_blocked);

/// A finished user session and a token in Didit's older shape for it, signed with the
/// server's key: the receiver, the token and the receiver's workflow.
async fn legacy_token(app: &TestApp) -> (Tenant, String, String) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "u").await;
    let secret = crate::support::first_key_secret(app).await;
    let now = Utc::now().timestamp();
    let legacy = json!({"session_id": session, "from_application_id": source.id, "for_application_id": receiver.id, "iat": now, "exp": now + 600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &legacy,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let workflow = app.workflow(&receiver, "user").await;
    (receiver, token, workflow)
}

on_both_backends!(the_receivers_entity_status_overrides_trust_review);
async fn the_receivers_entity_status_overrides_trust_review(app: TestApp) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let workflow = app.workflow(&receiver, "user").await;
    for (status, expected) in
        [("BLOCKED", "Declined"), ("FLAGGED", "In Review"), ("ACTIVE", "Approved")]
    {
        let vendor_data = format!("person-{status}");
        app.session(&receiver, &workflow, Some(&vendor_data)).await;
        let db = app.store.connection();
        db.execute_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("UPDATE entities SET status = '{status}' WHERE vendor_data = '{vendor_data}'"),
        ))
        .await
        .unwrap();
        let session = app.finished_session(&source, "user", &vendor_data.to_uppercase()).await;
        let token = app.share(&source, &session, &receiver).await;
        let imported =
            app.import(&receiver, &token, &workflow, json!({"trust_review": true})).await;
        assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
        assert_eq!(imported.body["status"], expected, "entity {status}");
    }
}

on_both_backends!(concurrent_imports_of_one_source_make_one_clone);
async fn concurrent_imports_of_one_source_make_one_clone(app: TestApp) {
    let Shared { receiver, workflow, token, .. } = app.shared("user", "u").await;
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (app, receiver, token, workflow) =
            (app.clone(), receiver.clone(), token.clone(), workflow.clone());
        tasks.spawn(async move { app.import(&receiver, &token, &workflow, json!({})).await });
    }
    let answers = tasks.join_all().await;
    let created: Vec<_> = answers.iter().filter(|a| a.status.as_u16() == 201).collect();
    assert_eq!(created.len(), 1, "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    let clone_id = created[0].body["session_id"].as_str().unwrap();
    for answer in answers.iter().filter(|a| a.status.as_u16() != 201) {
        assert_error(answer, 403, "already_imported");
        assert_eq!(answer.body["session_id"], clone_id);
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM sessions WHERE shared_from_session IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        app.get("/v3/sessions/", &receiver).await.body["results"][0]["session_number"],
        1,
        "failed imports used no number"
    );
}

on_both_backends!(a_failure_part_way_through_leaves_no_trace);
async fn a_failure_part_way_through_leaves_no_trace(app: TestApp) {
    let Shared { receiver, workflow, token, .. } = app.shared("user", "u").await;
    let before: Vec<i64> = row_counts(&app).await;
    // The log copy comes after the entity, the session row and every block.
    handoff_testdb::plant_insert_fault(app.store.connection(), "session_logs").await.unwrap();
    let failed =
        app.import(&receiver, &token, &workflow, json!({"vendor_data": "new-person"})).await;
    handoff_testdb::clear_insert_fault(app.store.connection(), "session_logs").await.unwrap();
    assert_error(&failed, 500, "internal_error");
    assert_eq!(row_counts(&app).await, before, "no row of any table changed");
    assert_error(&app.get("/v3/users/new-person/", &receiver).await, 404, "entity_not_found");
    let retried =
        app.import(&receiver, &token, &workflow, json!({"vendor_data": "new-person"})).await;
    assert_eq!(retried.status.as_u16(), 201, "{}", retried.text);
    assert_eq!(retried.body["session_number"], 1);
}

/// Row counts of every table that an import writes.
async fn row_counts(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in
        handoff_migrations::BLOCK_TABLES.iter().chain(&["sessions", "session_logs", "entities"])
    {
        counts.push(count(app, &format!("SELECT COUNT(*) AS n FROM {table}")).await);
    }
    counts.push(
        count(app, "SELECT CAST(SUM(last_session_number) AS BIGINT) AS n FROM applications").await,
    );
    counts
}

on_both_backends!(a_token_is_single_use_and_its_source_must_still_be_finished);
/// A redeemed token stays redeemed after its clone is deleted; a source moved back to an
/// unfinished status after the share is not found; the clone's copy of the source's reviews
/// names the source application, not the source's reviewer.
async fn a_token_is_single_use_and_its_source_must_still_be_finished(app: TestApp) {
    let Shared { source, receiver, session, workflow, token } = app.shared("user", "u").await;
    let reviewed = app
        .patch(
            &format!("/v3/session/{session}/update-status/"),
            &source,
            json!({"new_status": "Declined", "comment": "Expired document."}),
        )
        .await;
    assert_eq!(reviewed.status.as_u16(), 200, "{}", reviewed.text);
    let imported = app.import(&receiver, &token, &workflow, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap().to_owned();
    let decision = app.decision(&receiver, &clone).await;
    let reviews = decision.body["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 1, "{}", decision.text);
    assert_eq!(reviews[0]["user"], format!("application:{}", source.id));
    assert!(!decision.text.contains("api-key:"), "no key prefix of the source's");

    let deleted = app
        .send(Method::DELETE, &format!("/v3/session/{clone}/delete/"), Some(&receiver.key), None)
        .await;
    assert_eq!(deleted.status.as_u16(), 204);
    let again = app.import(&receiver, &token, &workflow, json!({})).await;
    assert_error(&again, 403, "already_imported");
    assert!(again.body.get("session_id").is_none(), "the clone is gone: {}", again.text);

    // Shared while finished, then back In Progress before the import.
    let other = app.tenant("Other").await;
    let other_workflow = app.workflow(&other, "user").await;
    let late = app.share(&source, &session, &other).await;
    let reopened = app
        .put(&format!("/v3/session/{session}/decision/"), &source, json!({"status": "In Progress"}))
        .await;
    assert_eq!(reopened.status.as_u16(), 200, "{}", reopened.text);
    assert_error(
        &app.import(&other, &late, &other_workflow, json!({})).await,
        404,
        "source_session_not_found",
    );
}

on_both_backends!(the_share_ledger_lists_and_revokes);
/// The holder sees every token it issued for a session and where each stands, and revokes
/// one by its id (extensions); other applications' sessions and unknown ids do not exist.
async fn the_share_ledger_lists_and_revokes(app: TestApp) {
    let Shared { source, receiver, session, workflow, token } = app.shared("user", "u").await;
    let other = app.tenant("Other").await;
    let second = app.share(&source, &session, &other).await;
    let ledger = format!("/v3/session/{session}/shares/");
    let listed = app.get(&ledger, &source).await;
    assert_eq!(listed.status.as_u16(), 200, "{}", listed.text);
    let entries = listed.body.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["state"] == "active"), "{}", listed.text);
    // Oldest first, to the second; the two here may share one, so found by their receiver.
    let entry_for = |entries: &[Value], tenant: &Tenant| {
        entries.iter().find(|e| e["for_application_id"] == tenant.id.as_str()).cloned().unwrap()
    };
    assert_eq!(entry_for(entries, &receiver)["state"], "active");
    assert!(!listed.text.contains(&token), "the ledger never shows a token itself");

    let imported = app.import(&receiver, &token, &workflow, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201);
    let jti_of = |token: &str| {
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    let revoked = app
        .send(
            Method::POST,
            &format!("/v3/session/{session}/shares/{}/revoke/", jti_of(&second)),
            Some(&source.key),
            None,
        )
        .await;
    assert_eq!(revoked.status.as_u16(), 200, "{}", revoked.text);
    assert_eq!(revoked.body["state"], "revoked");
    assert!(revoked.body["revoked_at"].is_string());

    let listed = app.get(&ledger, &source).await;
    let entries = listed.body.as_array().unwrap();
    let redeemed = entry_for(entries, &receiver);
    assert_eq!(redeemed["state"], "redeemed", "{}", listed.text);
    assert_eq!(redeemed["redeemed_by_application_id"], receiver.id.as_str());
    assert!(redeemed["redeemed_at"].is_string());
    assert_eq!(entry_for(entries, &other)["state"], "revoked");
    let other_workflow = app.workflow(&other, "user").await;
    assert_error(
        &app.import(&other, &second, &other_workflow, json!({})).await,
        401,
        "share_token_revoked",
    );

    // Not the caller's session, or no such token: 404.
    assert_error(&app.get(&ledger, &receiver).await, 404, "session_not_found");
    let unknown = app
        .send(
            Method::POST,
            &format!("/v3/session/{session}/shares/no-such-token/revoke/"),
            Some(&source.key),
            None,
        )
        .await;
    assert_error(&unknown, 404, "share_token_not_found");
    let foreign = app
        .send(
            Method::POST,
            &format!("/v3/session/{session}/shares/{}/revoke/", jti_of(&token)),
            Some(&receiver.key),
            None,
        )
        .await;
    assert_error(&foreign, 404, "session_not_found");

    // The operator's command line sees the same ledger.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["shares", "list", "--application", &source.id, "--session", &session])
        .env("DATABASE_URL", app.db.url())
        .env("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK)
        .env("HANDOFF_LOG", "error")
        .output()
        .unwrap();
    assert!(output.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(entry_for(&lines, &receiver)["state"], "redeemed");
    assert_eq!(entry_for(&lines, &other)["state"], "revoked");
}

on_both_backends!(a_preview_says_what_an_import_would_do_and_does_nothing);
/// `POST /v3/session/import-shared/preview/` (extension) runs every check, answers what the
/// import would create or the error it would give, and writes and redeems nothing.
async fn a_preview_says_what_an_import_would_do_and_does_nothing(app: TestApp) {
    let Shared { source, receiver, session, workflow, token } =
        app.shared("user", "user-ana-001").await;
    let before = row_counts(&app).await;
    let body = json!({"share_token": token, "workflow_id": workflow, "trust_review": true});
    let preview = app.post("/v3/session/import-shared/preview/", &receiver, body.clone()).await;
    assert_eq!(preview.status.as_u16(), 200, "{}", preview.text);
    assert_eq!(preview.body["session_kind"], "user");
    assert_eq!(preview.body["shared_from_session"], session.as_str());
    assert_eq!(preview.body["source_status"], "Approved");
    assert_eq!(preview.body["status"], "Approved", "trust_review keeps it");
    assert_eq!(preview.body["vendor_data"], "user-ana-001");
    assert_eq!(preview.body["entity"], "created");
    assert!(preview.body["blocks"].as_array().unwrap().len() >= 9, "{}", preview.text);
    assert_eq!(row_counts(&app).await, before, "nothing written");
    let ledger = app.get(&format!("/v3/session/{session}/shares/"), &source).await;
    assert_eq!(ledger.body[0]["state"], "active", "nothing redeemed");

    // The import then does what the preview said; a second preview says what a second
    // import would answer.
    let imported = app.post("/v3/session/import-shared/", &receiver, body.clone()).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    assert_eq!(imported.body["status"], preview.body["status"]);
    let again = app.post("/v3/session/import-shared/preview/", &receiver, body).await;
    assert_error(&again, 403, "already_imported");
    assert_eq!(again.body["session_id"], imported.body["session_id"]);
}
