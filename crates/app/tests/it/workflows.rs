//! Workflows over HTTP.

use serde_json::json;

use crate::support::{TestApp, assert_error, assert_invalid, on_both_backends};

on_both_backends!(workflows_are_created_listed_read_and_deleted);
async fn workflows_are_created_listed_read_and_deleted(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let created = app
        .post("/v3/workflows/", &tenant, json!({
            "workflow_label": "Companies",
            "features": [{"feature": "KYB_REGISTRY", "config": {"depth": 2}, "label": "Registry"}, {"feature": "AML"}],
            "is_default": true,
            "session_expiration_time": 3600
        }))
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.body["session_kind"], "business");
    insta::assert_json_snapshot!("workflow_created", created.body, { ".workflow_id" => "[workflow_id]", ".created_at" => "[time]" });
    let id = created.body["workflow_id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/v3/workflows/{id}/"), &tenant).await.body, created.body);
    let plain =
        app.post("/v3/workflows/", &tenant, json!({"features": [{"feature": "OCR"}]})).await;
    assert_eq!(plain.body["session_kind"], "user");
    assert_eq!(plain.body["workflow_label"], "KYC workflow");
    assert_eq!(plain.body["session_expiration_time"], 604800);
    assert_eq!(plain.body["is_default"], false);
    assert_eq!(app.get("/v3/workflows/", &tenant).await.body["count"], 2);

    let session = app.session(&tenant, &id, None).await;
    let deleted = app.delete(&format!("/v3/workflows/{id}/"), &tenant).await;
    assert_eq!(deleted.status.as_u16(), 204);
    assert_error(
        &app.get(&format!("/v3/workflows/{id}/"), &tenant).await,
        404,
        "workflow_not_found",
    );
    assert_error(
        &app.delete(&format!("/v3/workflows/{id}/"), &tenant).await,
        404,
        "workflow_not_found",
    );
    assert_error(
        &app.post("/v3/session/", &tenant, json!({"workflow_id": id})).await,
        404,
        "workflow_not_found",
    );
    let kept = app.decision(&tenant, &session).await;
    assert_eq!(kept.body["workflow_id"], id.as_str(), "sessions keep their workflow");
    assert_eq!(kept.body["features"], json!(["KYB_REGISTRY", "AML"]));
    assert_eq!(app.get("/v3/workflows/", &tenant).await.body["count"], 1);
}

on_both_backends!(bad_workflows_name_their_fields);
async fn bad_workflows_name_their_fields(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    // A step given as a bare name: the answer names the field and the JSON shape wanted,
    // never a Rust type.
    let bare = app
        .post("/v3/workflows/", &tenant, json!({"workflow_label": "KYC", "features": ["OCR"]}))
        .await;
    assert_eq!(bare.status.as_u16(), 400, "{}", bare.text);
    let said = bare.body["errors"]["features[0]"][0].as_str().unwrap_or_default();
    assert!(said.contains("expected a JSON object"), "{}", bare.text);
    assert!(!bare.text.contains("struct"), "{}", bare.text);
    for (body, field) in [
        (json!({}), "features"),
        (json!({"features": []}), "features"),
        (json!({"features": [{"feature": "OCR"}, {"feature": "OCR"}]}), "features"),
        (json!({"features": [{"feature": "SELFIE"}]}), "features[0].feature"),
        (json!({"features": [{"feature": "OCR", "config": [1]}]}), "features[0].config"),
        (json!({"features": [{"config": {}}]}), "features[0].feature"),
        (json!({"features": [{"feature": "OCR", "label": ""}]}), "features[0].label"),
        (json!({"features": "OCR"}), "features"),
        (
            json!({"features": [{"feature": "OCR"}], "workflow_label": "x".repeat(51)}),
            "workflow_label",
        ),
        (
            json!({"features": [{"feature": "OCR"}], "session_expiration_time": 59}),
            "session_expiration_time",
        ),
        (
            json!({"features": [{"feature": "OCR"}], "session_expiration_time": "soon"}),
            "session_expiration_time",
        ),
        (json!({"features": [{"feature": "OCR"}], "is_default": "yes"}), "is_default"),
    ] {
        let answer = app.post("/v3/workflows/", &tenant, body.clone()).await;
        assert_invalid(&answer, field);
    }
    // An unknown feature is named, with the known ones; nothing else is blamed.
    let answer =
        app.post("/v3/workflows/", &tenant, json!({"features": [{"feature": "SELFIE"}]})).await;
    assert_error(&answer, 400, "invalid_request");
    let errors = answer.body["errors"].as_object().unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["features[0].feature"], "{}", answer.text);
    let message = errors["features[0].feature"][0].as_str().unwrap();
    assert!(message.contains("\"SELFIE\" is not a known feature"), "{message}");
    assert!(message.contains("OCR") && message.contains("KYB_KEY_PEOPLE"), "{message}");
    assert_eq!(app.get("/v3/workflows/", &tenant).await.body["count"], 0);
}

on_both_backends!(workflows_are_paged_changed_and_keep_didits_settings);
async fn workflows_are_paged_changed_and_keep_didits_settings(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let other = app.tenant("Beta").await;
    let created = app
        .post(
            "/v3/workflows/",
            &tenant,
            json!({"features": [{"feature": "OCR"}], "status": "draft",
                "is_white_label_enabled": true, "max_retry_attempts": 5}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.body["status"], "draft");
    assert_eq!(created.body["is_white_label_enabled"], true);
    assert_eq!(created.body["is_desktop_allowed"], true);
    assert_eq!(created.body["max_retry_attempts"], 5);
    assert_eq!(created.body["retry_window_days"], 7);
    let id = created.body["workflow_id"].as_str().unwrap().to_owned();
    let second = app.workflow(&tenant, "user").await;
    let path = format!("/v3/workflows/{id}/");

    // Partial: what is given changes, the rest stays.
    let changed = app
        .patch(
            &path,
            &tenant,
            json!({"workflow_label": "Premium KYC", "retry_window_days": 30, "is_default": true}),
        )
        .await;
    assert_eq!(changed.status.as_u16(), 200, "{}", changed.text);
    assert_eq!(changed.body["workflow_label"], "Premium KYC");
    assert_eq!(changed.body["retry_window_days"], 30);
    assert_eq!(changed.body["status"], "draft");
    assert_eq!(changed.body["features"], created.body["features"]);
    assert_eq!(app.get(&path, &tenant).await.body, changed.body);
    // `features` replaces every step; the kind stays.
    let steps = app
        .patch(&path, &tenant, json!({"features": [{"feature": "OCR"}, {"feature": "AML"}]}))
        .await;
    assert_eq!(steps.body["features"].as_array().unwrap().len(), 2);
    let session = app.session(&tenant, &id, None).await;
    let decision = app.decision(&tenant, &session).await;
    assert_eq!(decision.body["features"], json!(["ID_VERIFICATION", "AML"]));
    // A new default demotes the old one.
    app.patch(&format!("/v3/workflows/{second}/"), &tenant, json!({"is_default": true})).await;
    assert_eq!(app.get(&path, &tenant).await.body["is_default"], false);

    for (body, field) in [
        (json!({"features": [{"feature": "KYB_REGISTRY"}]}), "features"),
        (json!({"features": []}), "features"),
        (json!({"workflow_label": ""}), "workflow_label"),
        (json!({"status": "archived"}), "status"),
        (json!({"max_retry_attempts": 11}), "max_retry_attempts"),
        (json!({"retry_window_days": 0}), "retry_window_days"),
        (json!({"session_expiration_time": 10}), "session_expiration_time"),
    ] {
        let refused = app.patch(&path, &tenant, body).await;
        assert_error(&refused, 400, "invalid_request");
        assert!(refused.body["errors"].get(field).is_some(), "{}", refused.text);
    }
    assert_error(
        &app.patch(&path, &tenant, json!({"colour": "blue"})).await,
        400,
        "invalid_request",
    );
    assert_eq!(app.get(&path, &tenant).await.body["workflow_label"], "Premium KYC");
    assert_error(
        &app.patch(&path, &other, json!({"workflow_label": "Mine"})).await,
        404,
        "workflow_not_found",
    );

    // Paged as Didit's, oldest first.
    for _ in 0..3 {
        app.workflow(&tenant, "user").await;
    }
    let page = app.get("/v3/workflows/?limit=2&offset=1", &tenant).await;
    assert_eq!(page.body["count"], 5);
    assert_eq!(page.body["results"][0]["workflow_id"], json!(second));
    assert!(page.body["next"].as_str().unwrap().ends_with("/v3/workflows/?limit=2&offset=3"));
    assert_error(&app.get("/v3/workflows/?limit=0", &tenant).await, 400, "invalid_request");
    assert_error(&app.get("/v3/workflows/?page=2", &tenant).await, 400, "invalid_request");
}

/// A session keeps the steps of the workflow as it was when the session started: results
/// for a step added later are refused, saying so, and a new session for the same person runs
/// the steps as they are now instead of reusing the unfinished one.
async fn a_session_keeps_the_steps_it_started_with(app: TestApp) {
    let tenant = app.tenant("Acme").await;
    let created = app
        .post(
            "/v3/workflows/",
            &tenant,
            json!({"features": [{"feature": "OCR"}, {"feature": "LIVENESS"}]}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let workflow = created.body["workflow_id"].as_str().unwrap().to_owned();
    let body = json!({"workflow_id": workflow, "vendor_data": "ana-01"});
    let first = app.post("/v3/session/", &tenant, body.clone()).await;
    assert_eq!(first.body["workflow_version"], 1, "{}", first.text);
    let first = first.body["session_id"].as_str().unwrap().to_owned();
    let edited = app
        .patch(
            &format!("/v3/workflows/{workflow}/"),
            &tenant,
            json!({"features": [{"feature": "OCR"}, {"feature": "LIVENESS"}, {"feature": "AML"}]}),
        )
        .await;
    assert_eq!(edited.status.as_u16(), 200, "{}", edited.text);

    let aml = json!({"aml_screenings": [{"node_id": "aml", "status": "Approved"}]});
    let refused = app.put(&format!("/v3/session/{first}/decision/"), &tenant, aml.clone()).await;
    assert_error(&refused, 400, "invalid_request");
    assert_eq!(
        refused.body["errors"]["aml_screenings"][0],
        "the session runs the steps its workflow had when the session started (OCR, LIVENESS); \
         with no AML step it records no aml_screenings."
    );

    let second = app.post("/v3/session/", &tenant, body.clone()).await;
    assert_eq!(second.status.as_u16(), 201, "{}", second.text);
    assert_eq!(second.body["workflow_version"], 2, "one change since: {}", second.text);
    let second = second.body["session_id"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "the unfinished session of the old steps is not reused");
    let recorded = app.put(&format!("/v3/session/{second}/decision/"), &tenant, aml).await;
    assert_eq!(recorded.status.as_u16(), 200, "{}", recorded.text);
    assert_eq!(recorded.body["features"], json!(["ID_VERIFICATION", "LIVENESS", "AML"]));
    // The old session stays as it was, with its own steps.
    let old = app.decision(&tenant, &first).await;
    assert_eq!(old.body["features"], json!(["ID_VERIFICATION", "LIVENESS"]));
    assert_eq!(old.body["status"], "Not Started");
}

on_both_backends!(a_session_keeps_the_steps_it_started_with);
