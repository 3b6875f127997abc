//! The authorization matrix: every endpoint refuses a missing key with 403 and a malformed,
//! unknown or revoked one with 401, and answers another application's ids with 404, as if they
//! did not exist. Scoped keys: `scoped_keys`.

use handoff::services;
use handoff_domain::ApplicationId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{PUBLIC_URL, Tenant, TestApp, assert_error, on_both_backends};

struct Endpoint {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Whether the path names a resource of the owner (another application must get 404).
    scoped: bool,
}

async fn endpoints(app: &TestApp, owner: &Tenant) -> Vec<Endpoint> {
    let workflow = app.workflow(owner, "user").await;
    let session = app.finished_session(owner, "user", "user-ana-001").await;
    let e = |method: Method, path: String, body: Option<Value>, scoped: bool| Endpoint {
        method,
        path,
        body,
        scoped,
    };
    vec![
        e(
            Method::POST,
            "/v3/workflows/".into(),
            Some(json!({"features": [{"feature": "OCR"}]})),
            false,
        ),
        e(Method::GET, "/v3/workflows/".into(), None, false),
        e(Method::GET, format!("/v3/workflows/{workflow}/"), None, true),
        e(Method::POST, "/v3/session/".into(), Some(json!({"workflow_id": workflow})), true),
        e(Method::GET, format!("/v3/session/{session}/decision/"), None, true),
        e(
            Method::PUT,
            format!("/v3/session/{session}/decision/"),
            Some(json!({"status": "Declined"})),
            true,
        ),
        e(Method::GET, format!("/v2/session/{session}/decision/"), None, true),
        e(
            Method::PATCH,
            format!("/v3/session/{session}/update-status/"),
            Some(json!({"new_status": "Declined"})),
            true,
        ),
        e(Method::GET, "/v3/sessions/".into(), None, false),
        e(Method::GET, "/v3/users/user-ana-001/".into(), None, true),
        e(Method::GET, "/v3/businesses/user-ana-001/".into(), None, true),
        e(Method::DELETE, format!("/v3/session/{session}/delete/"), None, true),
        e(Method::DELETE, format!("/v3/workflows/{workflow}/"), None, true),
    ]
}

/// This test sends hundreds of requests with bad keys from one address: the address's budget of
/// them is raised so that each one meets the key check (`limits::` tests that budget).
async fn spawn_for_bad_keys(backend: handoff_testdb::Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.rate_limits = Some(handoff_http::rate_limit::RateLimits {
            unauthenticated_per_minute: 100_000,
            ..Default::default()
        })
    })
    .await
}

handoff_testdb::on_each_backend!(super::spawn_for_bad_keys; every_endpoint_refuses_bad_keys);
async fn every_endpoint_refuses_bad_keys(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let applications = services(&app.store, PUBLIC_URL, crate::support::no_tokens()).applications;
    let revoked =
        applications.create_api_key(owner.id.parse::<ApplicationId>().unwrap()).await.unwrap();
    applications.revoke_api_key(owner.id.parse().unwrap(), &revoked.reveal()[3..15]).await.unwrap();
    let unknown = format!("hk_{}_{}", "0".repeat(12), "1".repeat(64));
    let tampered = format!("{}0", &owner.key[..owner.key.len() - 1]);
    let tampered = if tampered == owner.key {
        format!("{}1", &owner.key[..owner.key.len() - 1])
    } else {
        tampered
    };
    let mut all = endpoints(&app, &owner).await;
    all.push(Endpoint {
        method: Method::POST,
        path: "/v3/session/import-shared/".into(),
        body: Some(json!({"share_token": "x", "workflow_id": uuid::Uuid::new_v4()})),
        scoped: false,
    });
    for endpoint in all {
        for key in [
            None,
            Some(""),
            Some("garbage"),
            Some(unknown.as_str()),
            Some(tampered.as_str()),
            Some(revoked.reveal()),
        ] {
            let answer = app
                .send(endpoint.method.clone(), &endpoint.path, key, endpoint.body.as_ref())
                .await;
            // No key (an empty header is none) is 403; a key that is not valid, 401.
            let sent = key.is_some_and(|k| !k.is_empty());
            assert_error(&answer, if sent { 401 } else { 403 }, "authentication_failed");
            let challenge = answer.headers.get("www-authenticate").map(|v| v.to_str().unwrap());
            assert_eq!(challenge, sent.then_some("ApiKey header=\"x-api-key\""), "{key:?}");
        }
    }
    // The key itself still works.
    assert_eq!(app.get("/v3/sessions/", &owner).await.status.as_u16(), 200);
}

on_both_backends!(another_applications_ids_do_not_exist);
async fn another_applications_ids_do_not_exist(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let stranger = app.tenant("Stranger").await;
    for endpoint in endpoints(&app, &owner).await {
        let answer = app
            .send(
                endpoint.method.clone(),
                &endpoint.path,
                Some(&stranger.key),
                endpoint.body.as_ref(),
            )
            .await;
        if endpoint.scoped {
            assert_eq!(
                answer.status.as_u16(),
                404,
                "{} {}: {}",
                endpoint.method,
                endpoint.path,
                answer.text
            );
            assert!(
                answer.body["code"].as_str().unwrap().ends_with("not_found"),
                "{}",
                answer.text
            );
        } else {
            assert!(
                answer.status.is_success(),
                "{} {}: {}",
                endpoint.method,
                endpoint.path,
                answer.text
            );
        }
    }
    // Nothing of the owner's changed, and the stranger sees none of it.
    let listed = app.get("/v3/sessions/", &owner).await;
    assert_eq!(listed.body["count"], 1);
    assert_eq!(listed.body["results"][0]["status"], "Approved");
    assert_eq!(app.get("/v3/sessions/", &stranger).await.body["count"], 0);
    assert_eq!(
        app.get("/v3/workflows/", &owner).await.body["count"],
        2,
        "the endpoint workflow and the session's"
    );
    assert_eq!(
        app.get("/v3/workflows/", &stranger).await.body["count"],
        1,
        "only its own, created above"
    );
}
