//! Workflows over HTTP.

use serde_json::json;

use crate::support::{TestApp, assert_error, on_both_backends};

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
    assert_eq!(
        app.get(&format!("/v3/workflows/{id}/"), &tenant).await.body,
        created.body
    );
    let plain = app
        .post(
            "/v3/workflows/",
            &tenant,
            json!({"features": [{"feature": "OCR"}]}),
        )
        .await;
    assert_eq!(plain.body["session_kind"], "user");
    assert_eq!(plain.body["workflow_label"], "KYC workflow");
    assert_eq!(plain.body["session_expiration_time"], 604800);
    assert_eq!(plain.body["is_default"], false);
    assert_eq!(
        app.get("/v3/workflows/", &tenant)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );

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
        &app.post("/v3/session/", &tenant, json!({"workflow_id": id}))
            .await,
        404,
        "workflow_not_found",
    );
    let kept = app
        .get(&format!("/v3/session/{session}/decision/"), &tenant)
        .await;
    assert_eq!(
        kept.body["workflow_id"],
        id.as_str(),
        "sessions keep their workflow"
    );
    assert_eq!(kept.body["features"], json!(["KYB_REGISTRY", "AML"]));
    assert_eq!(
        app.get("/v3/workflows/", &tenant)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

on_both_backends!(bad_workflows_name_their_fields);
async fn bad_workflows_name_their_fields(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    for (body, field) in [
        (json!({}), "features"),
        (json!({"features": []}), "features"),
        (
            json!({"features": [{"feature": "OCR"}, {"feature": "OCR"}]}),
            "features",
        ),
        (
            json!({"features": [{"feature": "SELFIE"}]}),
            "features[0].feature",
        ),
        (
            json!({"features": [{"feature": "OCR", "config": [1]}]}),
            "features[0].config",
        ),
        (json!({"features": [{"config": {}}]}), "features[0].feature"),
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
        (
            json!({"features": [{"feature": "OCR"}], "is_default": "yes"}),
            "is_default",
        ),
    ] {
        let answer = app.post("/v3/workflows/", &tenant, body.clone()).await;
        assert_error(&answer, 400, "invalid_request");
        assert!(
            answer.body["errors"][field].is_array(),
            "{body} should blame {field}: {}",
            answer.text
        );
    }
    // An unknown feature is named, with the known ones; nothing else is blamed.
    let answer = app
        .post(
            "/v3/workflows/",
            &tenant,
            json!({"features": [{"feature": "SELFIE"}]}),
        )
        .await;
    assert_error(&answer, 400, "invalid_request");
    let errors = answer.body["errors"].as_object().unwrap();
    assert_eq!(
        errors.keys().collect::<Vec<_>>(),
        ["features[0].feature"],
        "{}",
        answer.text
    );
    let message = errors["features[0].feature"][0].as_str().unwrap();
    assert!(
        message.contains("\"SELFIE\" is not a known feature"),
        "{message}"
    );
    assert!(
        message.contains("OCR") && message.contains("KYB_KEY_PEOPLE"),
        "{message}"
    );
    assert_eq!(
        app.get("/v3/workflows/", &tenant)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        0
    );
}
