//! Named API keys with scopes, workflow limits, client addresses and an expiry: a request
//! outside a key's scopes is 403 `missing_scope` naming the scope, another workflow's session is
//! 404 as if it did not exist, an address outside the list is 403, an expired key 401.

use handoff::services;
use handoff_domain::grant::parse_address_block;
use handoff_domain::ports::ApplicationRepository;
use handoff_domain::services::NewKey;
use handoff_domain::{ApiKey, ApplicationId, Grant, WorkflowId};
use reqwest::Method;
use serde_json::json;

use crate::support::{PUBLIC_URL, Tenant, TestApp, assert_error, no_tokens, on_both_backends};

/// A named key of `owner`'s application with this grant.
pub(crate) async fn named_key(app: &TestApp, owner: &Tenant, grant: Grant) -> Tenant {
    let key = services(&app.store, PUBLIC_URL, no_tokens())
        .applications
        .create_named_key(owner.id.parse().unwrap(), NewKey { name: Some("scoped".into()), grant })
        .await
        .unwrap();
    Tenant { id: owner.id.clone(), key: key.reveal().to_owned() }
}

fn scopes(scopes: &[&str]) -> Option<Vec<handoff_domain::Scope>> {
    Some(scopes.iter().map(|s| s.parse().unwrap()).collect())
}

on_both_backends!(a_key_reaches_only_its_scopes);
async fn a_key_reaches_only_its_scopes(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&owner, "user", "user-ana-001").await;
    let reader =
        named_key(&app, &owner, Grant { scopes: scopes(&["sessions:read"]), ..Grant::default() })
            .await;

    assert_eq!(app.decision(&reader, &session).await.status.as_u16(), 200);
    assert_eq!(app.get("/v3/sessions/", &reader).await.status.as_u16(), 200);
    let decision = format!("/v3/session/{session}/decision/");
    let refused = [
        (Method::PUT, decision.clone(), Some(json!({"status": "Declined"})), "sessions:write"),
        (
            Method::PATCH,
            format!("/v3/session/{session}/update-status/"),
            Some(json!({"new_status": "Declined"})),
            "reviews:write",
        ),
        (Method::GET, format!("/v3/sessions/{session}/reviews/"), None, "reviews:read"),
        (
            Method::POST,
            format!("/v3/session/{session}/share/"),
            Some(json!({"for_application_id": receiver.id})),
            "shares:write",
        ),
        (Method::GET, "/v3/workflows/".to_owned(), None, "workflows:read"),
        (Method::GET, "/v3/users/".to_owned(), None, "users:read"),
        (Method::GET, "/v3/webhook/destinations/".to_owned(), None, "webhooks:read"),
        (Method::DELETE, format!("/v3/session/{session}/delete/"), None, "sessions:write"),
    ];
    for (method, path, body, scope) in refused {
        let answer = app.send(method.clone(), &path, Some(&reader.key), body.as_ref()).await;
        assert_error(&answer, 403, "missing_scope");
        assert_eq!(answer.body["scope"], scope, "{method} {path}");
    }
    // Nothing was written: the session is still there, as it was.
    assert_eq!(app.decision(&owner, &session).await.body["status"], "Approved");

    // Write includes read; the primary key keeps every right.
    let writer =
        named_key(&app, &owner, Grant { scopes: scopes(&["reviews:write"]), ..Grant::default() })
            .await;
    let reviews = app.get(&format!("/v3/sessions/{session}/reviews/"), &writer).await;
    assert_eq!(reviews.status.as_u16(), 200, "{}", reviews.text);
    assert_error(&app.decision(&writer, &session).await, 403, "missing_scope");
    assert_eq!(app.get("/v3/workflows/", &owner).await.status.as_u16(), 200);
}

on_both_backends!(a_workflow_limited_key_sees_no_other_session);
async fn a_workflow_limited_key_sees_no_other_session(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let seen_workflow = app.workflow(&owner, "user").await;
    let seen = app.session(&owner, &seen_workflow, Some("user-seen")).await;
    let hidden = app.finished_session(&owner, "user", "user-hidden").await;
    let hidden_workflow =
        app.decision(&owner, &hidden).await.body["workflow_id"].as_str().unwrap().to_owned();
    let limited = named_key(
        &app,
        &owner,
        Grant {
            workflows: Some(vec![WorkflowId::from_uuid(seen_workflow.parse().unwrap())]),
            ..Grant::default()
        },
    )
    .await;

    // Every route about one session answers the hidden one as missing, and changes nothing.
    let routes = [
        (Method::GET, format!("/v3/session/{hidden}/decision/"), None),
        (Method::GET, format!("/v2/session/{hidden}/decision/"), None),
        (
            Method::PUT,
            format!("/v3/session/{hidden}/decision/"),
            Some(json!({"status": "Declined"})),
        ),
        (
            Method::PATCH,
            format!("/v3/session/{hidden}/update-status/"),
            Some(json!({"new_status": "Declined"})),
        ),
        (Method::GET, format!("/v3/session/{hidden}/generate-pdf/"), None),
        (Method::GET, format!("/v3/session/{hidden}/shares/"), None),
        (
            Method::POST,
            format!("/v3/session/{hidden}/share/"),
            Some(json!({"for_application_id": owner.id})),
        ),
        (Method::GET, format!("/v3/sessions/{hidden}/reviews/"), None),
        (
            Method::PATCH,
            format!("/v3/session/{hidden}/update-data/"),
            Some(json!({"id_verification": {}})),
        ),
        (Method::DELETE, format!("/v3/session/{hidden}/delete/"), None),
    ];
    for (method, path, body) in routes {
        let answer = app.send(method.clone(), &path, Some(&limited.key), body.as_ref()).await;
        assert_error(&answer, 404, "session_not_found");
    }
    assert_eq!(app.decision(&owner, &hidden).await.body["status"], "Approved");
    assert_eq!(app.decision(&limited, &seen).await.status.as_u16(), 200);

    // Lists and workflows show only what it sees; it creates sessions in its workflows only.
    let listed = app.get("/v3/sessions/", &limited).await;
    assert_eq!(listed.body["count"], 1, "{}", listed.text);
    assert_eq!(listed.body["results"][0]["session_id"], seen.as_str());
    assert_eq!(app.get("/v3/sessions/", &owner).await.body["count"], 2);
    let workflows = app.get("/v3/workflows/", &limited).await;
    let ids: Vec<&str> = workflows.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["workflow_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [seen_workflow.as_str()], "{}", workflows.text);
    let other = format!("/v3/workflows/{hidden_workflow}/");
    assert_error(&app.get(&other, &limited).await, 404, "workflow_not_found");
    let create = |workflow: &str| json!({"workflow_id": workflow, "vendor_data": "user-new"});
    let answer = app.post("/v3/session/", &limited, create(&hidden_workflow)).await;
    assert_error(&answer, 404, "workflow_not_found");
    assert_eq!(
        app.post("/v3/session/", &limited, create(&seen_workflow)).await.status.as_u16(),
        201
    );
    let answer =
        app.post("/v3/workflows/", &limited, json!({"features": [{"feature": "OCR"}]})).await;
    assert_error(&answer, 403, "key_limited_to_workflows");

    // A delete of many would reach beyond its workflows.
    let answer = app.post("/v3/sessions/delete/", &limited, json!({"delete_all": true})).await;
    assert_error(&answer, 403, "key_limited_to_workflows");
    assert_eq!(app.get("/v3/sessions/", &owner).await.body["count"], 3);

    // An import lands only in a workflow it sees.
    let source = app.tenant("Source").await;
    let shared = app.finished_session(&source, "user", "user-shared").await;
    let token = app.share(&source, &shared, &owner).await;
    let answer = app.import(&limited, &token, &hidden_workflow, json!({})).await;
    assert_error(&answer, 404, "workflow_not_found");
    let answer = app.import(&limited, &token, &seen_workflow, json!({})).await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
}

on_both_backends!(a_key_is_refused_from_other_addresses_and_once_expired);
async fn a_key_is_refused_from_other_addresses_and_once_expired(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let elsewhere = named_key(
        &app,
        &owner,
        Grant { addresses: vec![parse_address_block("10.0.0.0/8").unwrap()], ..Grant::default() },
    )
    .await;
    assert_error(&app.get("/v3/sessions/", &elsewhere).await, 403, "address_not_allowed");
    let here = named_key(
        &app,
        &owner,
        Grant {
            addresses: vec![
                parse_address_block("10.0.0.0/8").unwrap(),
                parse_address_block("127.0.0.1").unwrap(),
            ],
            ..Grant::default()
        },
    )
    .await;
    assert_eq!(app.get("/v3/sessions/", &here).await.status.as_u16(), 200);

    // An expiry must be ahead when the key is made; once passed, the key is refused as
    // revoked keys are.
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let application: ApplicationId = owner.id.parse().unwrap();
    let refused = services(&app.store, PUBLIC_URL, no_tokens())
        .applications
        .create_named_key(
            application,
            NewKey { name: None, grant: Grant { expires_at: Some(past), ..Grant::default() } },
        )
        .await;
    assert!(matches!(refused, Err(handoff_domain::services::Error::Invalid(_))), "{refused:?}");
    let (key, mut stored) = ApiKey::generate(application).unwrap();
    stored.grant.expires_at = Some(past);
    assert!(app.store.add_api_key(&stored, past - chrono::Duration::days(1)).await.unwrap());
    let expired = Tenant { id: owner.id.clone(), key: key.reveal().to_owned() };
    let answer = app.get("/v3/sessions/", &expired).await;
    assert_error(&answer, 401, "authentication_failed");
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let current =
        named_key(&app, &owner, Grant { expires_at: Some(future), ..Grant::default() }).await;
    assert_eq!(app.get("/v3/sessions/", &current).await.status.as_u16(), 200);
}
