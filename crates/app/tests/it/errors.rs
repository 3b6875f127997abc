//! Bad input answers a JSON error: bodies, media types, sizes, paths, queries, routes, methods.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, assert_error, assert_invalid, on_both_backends};

on_both_backends!(bad_session_bodies_name_their_fields);
async fn bad_session_bodies_name_their_fields(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    let cases = [
        (json!({}), "workflow_id"),
        (json!({"workflow_id": 7}), "workflow_id"),
        (json!({"workflow_id": "not-a-uuid"}), "workflow_id"),
        (json!({"workflow_id": workflow, "vendor_data": ""}), "vendor_data"),
        (json!({"workflow_id": workflow, "vendor_data": "x".repeat(1025)}), "vendor_data"),
        (json!({"workflow_id": workflow, "vendor_data": "a\u{0007}b"}), "vendor_data"),
        (json!({"workflow_id": workflow, "vendor_data": 12}), "vendor_data"),
        (json!({"workflow_id": workflow, "callback": "ftp://x"}), "callback"),
        (json!({"workflow_id": workflow, "callback": "https://a b"}), "callback"),
        (json!({"workflow_id": workflow, "metadata": [1, 2]}), "metadata"),
        (json!({"workflow_id": workflow, "contact_details": "a@b"}), "contact_details"),
        (json!({"workflow_id": workflow, "expected_details": 3}), "expected_details"),
    ];
    for (body, field) in cases {
        let answer = app.post("/v3/session/", &tenant, body.clone()).await;
        assert_invalid(&answer, field);
    }
    let longest = app
        .post(
            "/v3/session/",
            &tenant,
            json!({"workflow_id": workflow, "vendor_data": "é".repeat(1024)}),
        )
        .await;
    assert_eq!(longest.status.as_u16(), 201, "1024 characters are fine: {}", longest.text);
    let unknown =
        app.post("/v3/session/", &tenant, json!({"workflow_id": uuid::Uuid::new_v4()})).await;
    assert_error(&unknown, 404, "workflow_not_found");
    let missing = app.post("/v3/session/", &tenant, json!({})).await;
    insta::assert_json_snapshot!("missing_workflow_id", missing.body);
}

on_both_backends!(malformed_bodies_media_types_and_sizes);
async fn malformed_bodies_media_types_and_sizes(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    let body = format!(r#"{{"workflow_id": "{workflow}"}}"#).into_bytes();
    let json = Some("application/json");
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (json, b"{\"workflow_id\": ".to_vec(), 400, "invalid_request"),
        (json, b"not json".to_vec(), 400, "invalid_request"),
        (json, b"".to_vec(), 400, "invalid_request"),
        (json, b"[]".to_vec(), 400, "invalid_request"),
        (json, b"{} {}".to_vec(), 400, "invalid_request"),
        (json, b"{\"workflow_id\": \"\xff\xfe\"}".to_vec(), 400, "invalid_request"),
        (
            json,
            format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            400,
            "invalid_request",
        ),
        (None, body.clone(), 415, "unsupported_media_type"),
        (Some("text/plain"), body.clone(), 415, "unsupported_media_type"),
        (Some("application/jsonx"), body.clone(), 415, "unsupported_media_type"),
        (
            json,
            format!(
                r#"{{"workflow_id": "{workflow}", "portrait_image": "{}"}}"#,
                "A".repeat(1_600_000)
            )
            .into_bytes(),
            413,
            "payload_too_large",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let answer =
            app.raw(Method::POST, "/v3/session/", &tenant, content_type, body.clone()).await;
        assert_error(&answer, status, code);
    }
    let ok = app
        .raw(Method::POST, "/v3/session/", &tenant, Some("application/json; charset=utf-8"), body)
        .await;
    assert_eq!(ok.status.as_u16(), 201, "{}", ok.text);
    assert_eq!(
        app.get("/v3/sessions/", &tenant).await.body["count"],
        1,
        "no refused body wrote anything"
    );
}

on_both_backends!(bad_recorded_results_are_refused_whole);
async fn bad_recorded_results_are_refused_whole(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let id = app.finished_session(&tenant, "user", "u").await;
    let path = format!("/v3/session/{id}/decision/");
    let before = app.get(&path, &tenant).await.body;
    let item = json!({"node_id": "n", "status": "Approved"});
    let cases = [
        (json!({"status": "approved"}), "status"),
        (json!({"status": 3}), "status"),
        (json!({"colour": "blue"}), "colour"),
        (json!({"registry_checks": [item]}), "registry_checks"),
        (json!({"id_verifications": {"node_id": "n"}}), "id_verifications"),
        (json!({"id_verifications": [item, {"status": "Approved"}]}), "id_verifications[1]"),
        (json!({"id_verifications": [{"node_id": "n", "status": 1}]}), "id_verifications[0]"),
        (json!({"id_verifications": [[1]]}), "id_verifications[0]"),
        (
            json!({"status": "Declined", "liveness_checks": [item], "face_matches": 7}),
            "face_matches",
        ),
    ];
    for (body, field) in cases {
        let answer = app.put(&path, &tenant, body.clone()).await;
        assert_invalid(&answer, field);
    }
    let huge = app
        .raw(
            Method::PUT,
            &path,
            &tenant,
            Some("application/json"),
            br#"{"id_verifications": [{"node_id": "n", "status": "A", "score": 1e999999}]}"#
                .to_vec(),
        )
        .await;
    assert_error(&huge, 400, "invalid_request");
    assert!(huge.body["errors"]["id_verifications[0]"].is_array(), "{}", huge.text);
    let duplicate = app
        .raw(
            Method::PUT,
            &path,
            &tenant,
            Some("application/json"),
            br#"{"status": "Declined", "status": "Approved"}"#.to_vec(),
        )
        .await;
    assert_error(&duplicate, 400, "invalid_request");
    assert_eq!(app.get(&path, &tenant).await.body, before, "nothing was written");
    let business = app.put(&path, &tenant, json!({"key_people_checks": [item]})).await;
    insta::assert_json_snapshot!("block_of_the_other_kind", business.body);
}

on_both_backends!(bad_reviews_and_list_queries);
async fn bad_reviews_and_list_queries(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let id = app.finished_session(&tenant, "user", "u").await;
    let path = format!("/v3/session/{id}/update-status/");
    for (body, field) in [
        (json!({}), "new_status"),
        (json!({"new_status": "In Review"}), "new_status"),
        (json!({"new_status": "approved"}), "new_status"),
        (json!({"new_status": "Approved", "comment": "x".repeat(10_001)}), "comment"),
        (json!({"new_status": "Approved", "comment": 5}), "comment"),
        (
            json!({"new_status": "Resubmitted", "nodes_to_resubmit": [{"node_id": "n", "feature": "OCR"}]}),
            "nodes_to_resubmit",
        ),
    ] {
        let answer = app.patch(&path, &tenant, body.clone()).await;
        assert_invalid(&answer, field);
    }
    for (query, field) in [
        ("status=Approved,Nope", "status"),
        ("status=approved", "status"),
        ("session_kind=company", "session_kind"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("vendor_data=", "vendor_data"),
    ] {
        let answer = app.get(&format!("/v3/sessions/?{query}"), &tenant).await;
        assert_invalid(&answer, field);
    }
    let answer = app.get("/v3/sessions/?status=%ZZ", &tenant).await;
    assert_eq!(answer.status.as_u16() / 100, 4, "{}", answer.text);
    assert!(answer.content_type.starts_with("application/json"));
    // Didit's e-mail members are accepted (no mail is sent) and change nothing else.
    let reviewed = app
        .patch(
            &path,
            &tenant,
            json!({"new_status": "Declined", "comment": "Blurred document", "send_email": true,
                "email_address": "ana@example.test", "email_language": "es"}),
        )
        .await;
    assert_eq!(reviewed.status.as_u16(), 200, "{}", reviewed.text);
    assert_eq!(app.decision(&tenant, &id).await.body["status"], "Declined");
}

on_both_backends!(paths_routes_and_methods);
async fn paths_routes_and_methods(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    for path in
        ["/v3/session/nope/decision/", "/v2/session/nope/decision/", "/v3/session/123/delete/"]
    {
        let method = if path.ends_with("delete/") { Method::DELETE } else { Method::GET };
        assert_error(
            &app.send(method, path, Some(&tenant.key), None).await,
            404,
            "session_not_found",
        );
    }
    assert_error(
        &app.patch("/v3/session/xyz/update-status/", &tenant, json!({"new_status": "Approved"}))
            .await,
        404,
        "session_not_found",
    );
    assert_error(&app.get("/v3/workflows/nope/", &tenant).await, 404, "workflow_not_found");
    assert_error(
        &app.get(&format!("/v3/session/{}/decision/", uuid::Uuid::new_v4()), &tenant).await,
        404,
        "session_not_found",
    );
    assert_error(&app.get("/v3/nothing/", &tenant).await, 404, "not_found");
    // Every route answers with and without its trailing slash, with doubled slashes merged.
    let workflow = app.workflow(&tenant, "user").await;
    for path in [
        "/v3/sessions".to_owned(),
        "/v3/sessions?limit=1".to_owned(),
        "/v3/sessions/".to_owned(),
        "/v3//sessions".to_owned(),
        format!("/v3/workflows/{workflow}"),
        "/health".to_owned(),
        "/system/healthcheck".to_owned(),
        "/system/healthcheck/".to_owned(),
        "/openapi.json/".to_owned(),
        "/.well-known/jwks.json".to_owned(),
    ] {
        let answer = app.get(&path, &tenant).await;
        assert_eq!(answer.status.as_u16(), 200, "{path}: {}", answer.text);
    }
    let limited = app.get("/v3/sessions?limit=1", &tenant).await;
    assert!(limited.body["results"].as_array().unwrap().len() <= 1);
    assert_error(&app.get("/nothing", &tenant).await, 404, "not_found");
    assert_error(
        &app.send(Method::GET, "/v3/nothing/", None, None).await,
        403,
        "authentication_failed",
    );
    assert_error(
        &app.send(Method::POST, "/v3/sessions/", Some(&tenant.key), Some(&json!({}))).await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &app.send(Method::DELETE, "/v3/session/", Some(&tenant.key), None).await,
        405,
        "method_not_allowed",
    );
    assert_error(&app.send(Method::POST, "/health/", None, None).await, 405, "method_not_allowed");
    let openapi = app.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(openapi.status.as_u16(), 200);
    assert_eq!(openapi.body["openapi"], "3.1.0");
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/openapi.json")).unwrap();
    assert_eq!(openapi.body, committed, "the served document is the committed one");
    let health = app.send(Method::GET, "/health/", None, None).await;
    assert_eq!(health.status.as_u16(), 200);
    assert_eq!(health.body["database"], "ok");
}

on_both_backends!(a_long_target_or_large_headers_answer_json);
async fn a_long_target_or_large_headers_answer_json(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let long = format!("/v3/sessions/?search={}", "a".repeat(9 * 1024));
    assert_error(&app.get(&long, &tenant).await, 414, "uri_too_long");
    let heavy = app
        .client
        .get(format!("{}/v3/sessions/", app.base))
        .header("x-api-key", &tenant.key)
        .header("x-padding", "p".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(heavy.status().as_u16(), 431);
    let body: serde_json::Value = heavy.json().await.unwrap();
    assert_eq!(body["code"], "request_header_fields_too_large");
    // Within the limits, the same request answers.
    let fine = app.get("/v3/sessions/?search=ana", &tenant).await;
    assert_eq!(fine.status.as_u16(), 200);
}

on_both_backends!(a_nul_is_refused_wherever_text_is_taken);
async fn a_nul_is_refused_wherever_text_is_taken(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let session = app.finished_session(&tenant, "user", "user-ana-001").await;
    let answer = app.get("/v3/sessions/?search=%00", &tenant).await;
    assert_invalid(&answer, "search");
    let cases = [
        (
            format!("/v3/session/{session}/update-status/"),
            json!({"new_status": "Declined", "comment": "a\u{0}b"}),
            "comment",
        ),
        (
            format!("/v3/sessions/{session}/reviews/"),
            json!({"new_status": "Declined", "comment": "\u{0}"}),
            "comment",
        ),
        (
            "/v3/users/user-ana-001/update-status/".to_owned(),
            json!({"status": "FLAGGED", "reason": "x\u{0}"}),
            "reason",
        ),
    ];
    for (path, body, field) in cases {
        let method = if path.contains("reviews") { Method::POST } else { Method::PATCH };
        let answer = app.send(method, &path, Some(&tenant.key), Some(&body)).await;
        assert_invalid(&answer, field);
    }
    let item = app
        .put(
            &format!("/v3/session/{session}/decision/"),
            &tenant,
            json!({"id_verifications": [{"node_id": "feature_ocr\u{0}", "status": "Declined"}]}),
        )
        .await;
    assert_error(&item, 400, "invalid_request");
    assert!(item.body["errors"]["id_verifications[0]"].is_array(), "{}", item.text);
    // Free-form JSON may hold it (stored escaped): metadata is not text handoff reads.
    let workflow = app.workflow(&tenant, "user").await;
    let with_metadata = app
        .post(
            "/v3/session/",
            &tenant,
            json!({"workflow_id": workflow, "metadata": {"note": "a\u{0}b"}}),
        )
        .await;
    assert_eq!(with_metadata.status.as_u16(), 201, "{}", with_metadata.text);
    assert_eq!(with_metadata.body["metadata"]["note"], "a\u{0}b");
    // Nothing changed.
    let decision = app.decision(&tenant, &session).await;
    assert_ne!(decision.body["status"], "Declined");
    let user = app.get("/v3/users/user-ana-001/", &tenant).await;
    assert_eq!(user.body["status"], "ACTIVE", "{}", user.text);
}
