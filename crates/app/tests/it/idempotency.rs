//! `Idempotency-Key` on session creation, share and import: replayed answers byte for byte, the
//! key bound to its request, 32 concurrent retries making one write, a lost answer rendered
//! again, keys per application and for 24 hours.

use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::support::{self, Tenant, TestApp, assert_error, on_both_backends};

/// The status, the `Idempotent-Replayed` header and the body's bytes of a keyed POST.
async fn keyed(
    app: &TestApp, path: &str, tenant: &Tenant, key: &str, body: &Value,
) -> (u16, bool, String) {
    let response = app
        .client
        .request(Method::POST, format!("{}{path}", app.base))
        .header("x-api-key", &tenant.key)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, replayed, response.text().await.unwrap())
}

/// Makes every stored key `seconds` older and, with `lose_answer`, forgets its answer, as if
/// the first request's process had stopped before recording it.
async fn age_keys(app: &TestApp, seconds: i64, lose_answer: bool) {
    use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
    let db = app.store.connection();
    let rows =
        support::rows(&app.store, "SELECT idempotency_key, created_at FROM idempotency_keys");
    for row in rows.await {
        let key: String = row.try_get("", "idempotency_key").unwrap();
        let created_at: chrono::DateTime<chrono::Utc> = row.try_get("", "created_at").unwrap();
        let mut update = Query::update()
            .table(Alias::new("idempotency_keys"))
            .value(Alias::new("created_at"), created_at - chrono::Duration::seconds(seconds))
            .and_where(Expr::col(Alias::new("idempotency_key")).eq(key))
            .to_owned();
        if lose_answer {
            update
                .value(Alias::new("status_code"), Option::<i32>::None)
                .value(Alias::new("response_body"), Option::<String>::None);
        }
        db.execute(&update).await.unwrap();
    }
}

async fn count(app: &TestApp, table: &str) -> i64 {
    support::count(&app.store, &format!("SELECT COUNT(*) AS n FROM {table}")).await
}

on_both_backends!(a_retried_session_creation_replays_its_first_answer);
async fn a_retried_session_creation_replays_its_first_answer(app: TestApp) {
    let tenant = app.tenant("Acme").await;
    let workflow = app.workflow(&tenant, "user").await;
    let body = json!({"workflow_id": workflow, "vendor_data": "user-ana-001"});
    let first = keyed(&app, "/v3/session/", &tenant, "create-1", &body).await;
    assert_eq!((first.0, first.1), (201, false), "{}", first.2);
    let again = keyed(&app, "/v3/session/", &tenant, "create-1", &body).await;
    assert_eq!(again, (201, true, first.2.clone()), "byte for byte");
    assert_eq!(app.get("/v3/sessions/", &tenant).await.body["count"], 1);

    // The same key with another body is refused; the key is bound to its request.
    let other = json!({"workflow_id": workflow, "vendor_data": "user-bea-002"});
    let reused = keyed(&app, "/v3/session/", &tenant, "create-1", &other).await;
    assert_eq!(reused.0, 422, "{}", reused.2);
    let reused: Value = serde_json::from_str(&reused.2).unwrap();
    assert_eq!(reused["code"], "idempotency_key_reused");
    // Keys belong to their application: another one's same key is its own.
    let other_tenant = app.tenant("Other").await;
    let other_workflow = app.workflow(&other_tenant, "user").await;
    let theirs = keyed(
        &app,
        "/v3/session/",
        &other_tenant,
        "create-1",
        &json!({"workflow_id": other_workflow}),
    )
    .await;
    assert_eq!((theirs.0, theirs.1), (201, false));

    // Malformed keys are a 400 naming the header.
    for bad in ["", "with space", &"k".repeat(256)] {
        let answer = app
            .client
            .post(format!("{}/v3/session/", app.base))
            .header("x-api-key", &tenant.key)
            .header("Idempotency-Key", bad)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 400, "{bad:?}");
        let answer: Value = answer.json().await.unwrap();
        assert!(answer["errors"].get("Idempotency-Key").is_some(), "{answer}");
    }

    // After 24 hours the key is forgotten and may be used again.
    age_keys(&app, 25 * 3600, false).await;
    let later = keyed(&app, "/v3/session/", &tenant, "create-1", &other).await;
    assert_eq!((later.0, later.1), (201, false), "{}", later.2);
    assert_eq!(app.get("/v3/sessions/", &tenant).await.body["count"], 2);
}

on_both_backends!(a_retried_share_replays_the_same_token);
async fn a_retried_share_replays_the_same_token(app: TestApp) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "user-ana-001").await;
    let path = format!("/v3/session/{session}/share/");
    let body = json!({"for_application_id": receiver.id});
    let first = keyed(&app, &path, &source, "share-1", &body).await;
    assert_eq!(first.0, 200, "{}", first.2);
    let again = keyed(&app, &path, &source, "share-1", &body).await;
    assert_eq!(again, (200, true, first.2.clone()));
    let ledger = app.get(&format!("/v3/session/{session}/shares/"), &source).await;
    assert_eq!(ledger.body.as_array().unwrap().len(), 1, "one token issued");

    // An answer lost between the write and its recording (the process stopped) is rendered
    // again from the ledger: the same token, signed again with the same key.
    age_keys(&app, 60, true).await;
    let recovered = keyed(&app, &path, &source, "share-1", &body).await;
    assert_eq!(recovered, (200, true, first.2.clone()));
    let ledger = app.get(&format!("/v3/session/{session}/shares/"), &source).await;
    assert_eq!(ledger.body.as_array().unwrap().len(), 1);
}

on_both_backends!(concurrent_retries_of_an_import_make_one_clone);
/// 32 concurrent requests with one key: one import, every answer the same bytes (or, had one
/// waited too long, 409), and a lost answer rendered again from the clone.
async fn concurrent_retries_of_an_import_make_one_clone(app: TestApp) {
    let shared = app.shared("business", "acme-gmbh").await;
    let body = json!({"share_token": shared.token, "workflow_id": shared.workflow});
    let app = std::sync::Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (app, receiver, body) = (app.clone(), shared.receiver.clone(), body.clone());
        tasks.spawn(async move {
            keyed(&app, "/v3/session/import-shared/", &receiver, "import-1", &body).await
        });
    }
    let answers = tasks.join_all().await;
    let created: Vec<_> = answers.iter().filter(|(status, _, _)| *status == 201).collect();
    assert!(!created.is_empty());
    for (status, _, text) in &answers {
        match status {
            201 => assert_eq!(text, &created[0].2, "every answer the first's bytes"),
            409 => assert!(text.contains("idempotency_key_in_use"), "{text}"),
            other => panic!("{other}: {text}"),
        }
    }
    assert_eq!(
        created.iter().filter(|(_, replayed, _)| !replayed).count(),
        1,
        "one executed, the others replayed"
    );
    let listed = app.get("/v3/sessions/?session_kind=all", &shared.receiver).await;
    assert_eq!(listed.body["count"], 1, "one clone");

    age_keys(&app, 60, true).await;
    let recovered =
        keyed(&app, "/v3/session/import-shared/", &shared.receiver, "import-1", &body).await;
    assert_eq!(recovered, (201, true, created[0].2.clone()));
}

on_both_backends!(a_failed_write_leaves_its_key_free);
/// Errors are not recorded: nothing was written, so the key stays free for the request's
/// corrected retry.
async fn a_failed_write_leaves_its_key_free(app: TestApp) {
    let shared = app.shared("user", "user-ana-001").await;
    let before = count(&app, "idempotency_keys").await;
    let wrong = json!({"share_token": shared.token, "workflow_id": uuid::Uuid::new_v4()});
    let refused = keyed(&app, "/v3/session/import-shared/", &shared.receiver, "k", &wrong).await;
    assert_eq!(refused.0, 404, "{}", refused.2);
    assert_eq!(count(&app, "idempotency_keys").await, before);
    let right = json!({"share_token": shared.token, "workflow_id": shared.workflow});
    let imported = keyed(&app, "/v3/session/import-shared/", &shared.receiver, "k", &right).await;
    assert_eq!((imported.0, imported.1), (201, false), "{}", imported.2);
    assert_eq!(count(&app, "idempotency_keys").await, before + 1);
    // Without a key, nothing is kept.
    let plain = app.shared("user", "user-bea-002").await;
    let answer = app.redeem(&plain, json!({})).await;
    assert_eq!(answer.status.as_u16(), 201);
    assert_eq!(count(&app, "idempotency_keys").await, before + 1);
    assert_error(&app.redeem(&plain, json!({})).await, 403, "already_imported");
}
