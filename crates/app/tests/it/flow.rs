//! The session flow end to end on the example results: record, read V3 and V2, review.

use handoff_domain::json::{RawObject, compact};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, assert_error, example, on_both_backends};

/// The example's items, block by block, as compact JSON text.
fn example_items(name: &str) -> Vec<(String, Vec<String>)> {
    let body = RawObject::parse(&example(name)).unwrap();
    body.0
        .iter()
        .filter(|(key, raw)| key != "status" && raw.get() != "null")
        .map(|(key, raw)| {
            let items: Vec<Box<serde_json::value::RawValue>> =
                serde_json::from_str(raw.get()).unwrap();
            (key.clone(), items.iter().map(|i| compact(i.get())).collect())
        })
        .collect()
}

/// The expected-decision example with this run's ids, numbers and times.
fn expected(name: &str, actual: &Value) -> Value {
    let mut expected: Value = serde_json::from_str(&example(name)).unwrap();
    for key in
        ["session_id", "session_number", "session_url", "workflow_id", "created_at", "expires_at"]
    {
        expected[key] = actual[key].clone();
    }
    expected
}

on_both_backends!(user_results_read_back_as_the_examples);
async fn user_results_read_back_as_the_examples(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let id = app.finished_session(&tenant, "user", "user-ana-001").await;

    let v3 = app.decision(&tenant, &id).await;
    assert_eq!(v3.status, StatusCode::OK, "{}", v3.text);
    assert_eq!(v3.body, expected("decision-v3-user.json", &v3.body));
    // Items come back token for token as recorded, in recorded order.
    for (block, items) in example_items("record-results-user.json") {
        for item in items {
            assert!(v3.text.contains(&item), "{block}: {item} not verbatim in {}", v3.text);
        }
    }
    let keys: Vec<&String> = v3.body.as_object().unwrap().keys().collect();
    let expected_keys: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, Value>>(&example("decision-v3-user.json"))
            .unwrap()
            .keys()
            .cloned()
            .collect();
    assert_eq!(keys, expected_keys.iter().collect::<Vec<_>>(), "V3 keys in the contract's order");

    let v2 = app.get(&format!("/v2/session/{id}/decision/"), &tenant).await;
    assert_eq!(v2.status, StatusCode::OK, "{}", v2.text);
    assert_eq!(v2.body, expected("decision-v2-user.json", &v2.body));
    assert!(v2.body.get("session_kind").is_none());
    assert!(v2.body["id_verification"].get("node_id").is_none());

    insta::assert_json_snapshot!("user_decision_v3", v3.body, {
        ".session_id" => "[session_id]", ".workflow_id" => "[workflow_id]",
        ".session_url" => "[session_url]", ".created_at" => "[time]", ".expires_at" => "[time]",
    });
    insta::assert_json_snapshot!("user_decision_v2", v2.body, {
        ".session_id" => "[session_id]", ".workflow_id" => "[workflow_id]",
        ".session_url" => "[session_url]", ".created_at" => "[time]", ".expires_at" => "[time]",
    });
}

on_both_backends!(business_results_read_back_and_have_no_v2);
async fn business_results_read_back_and_have_no_v2(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let id = app.finished_session(&tenant, "business", "biz-widgets-001").await;
    let v3 = app.decision(&tenant, &id).await;
    assert_eq!(v3.status, StatusCode::OK, "{}", v3.text);
    assert_eq!(v3.body, expected("decision-v3-business.json", &v3.body));
    for (block, items) in example_items("record-results-business.json") {
        for item in items {
            assert!(v3.text.contains(&item), "{block}: {item} not verbatim");
        }
    }
    insta::assert_json_snapshot!("business_decision_v3", v3.body, {
        ".session_id" => "[session_id]", ".workflow_id" => "[workflow_id]",
        ".session_url" => "[session_url]", ".created_at" => "[time]", ".expires_at" => "[time]",
    });
    assert_error(
        &app.get(&format!("/v2/session/{id}/decision/"), &tenant).await,
        404,
        "session_not_found",
    );
}

on_both_backends!(a_new_session_answers_as_the_contract_says);
async fn a_new_session_answers_as_the_contract_says(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    let created = app
        .post("/v3/session/", &tenant, json!({
            "workflow_id": workflow, "vendor_data": "user-1", "callback": "https://app.example.test/done",
            "metadata": {"order": 7}, "contact_details": {"email": "a@example.test"}, "expected_details": {"first_name": "Ana"}
        }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let token = created.body["session_token"].as_str().unwrap();
    assert_eq!(created.body["url"], format!("{}/session/{token}", crate::support::PUBLIC_URL));
    insta::assert_json_snapshot!("session_created", created.body, {
        ".session_id" => "[session_id]", ".workflow_id" => "[workflow_id]",
        ".session_token" => "[token]", ".url" => "[url]",
    });
    let id = created.body["session_id"].as_str().unwrap();
    let v3 = app.decision(&tenant, id).await;
    assert_eq!(v3.body["status"], "Not Started");
    assert_eq!(v3.body["id_verifications"], Value::Null);
    assert_eq!(v3.body["contact_details"], json!({"email": "a@example.test"}));
    assert_eq!(v3.body["expected_details"], json!({"first_name": "Ana"}));
    assert_eq!(v3.body["callback"], "https://app.example.test/done");
    let created_at =
        chrono::DateTime::parse_from_rfc3339(v3.body["created_at"].as_str().unwrap()).unwrap();
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(v3.body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires_at - created_at).num_seconds(), 604_800);
    assert!(v3.body["created_at"].as_str().unwrap().ends_with('Z'));
    let second = app.session(&tenant, &workflow, None).await;
    let v3 = app.decision(&tenant, &second).await;
    assert_eq!(v3.body["session_number"], 2);
}

on_both_backends!(reviews_move_status_and_are_listed);
async fn reviews_move_status_and_are_listed(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let id = app.finished_session(&tenant, "user", "user-ana-001").await;
    let path = format!("/v3/session/{id}/update-status/");
    let answer = app
        .patch(&path, &tenant, json!({"new_status": "Declined", "comment": "Document expired."}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body, json!({"session_id": id}));
    let answer = app.patch(&path, &tenant, json!({"new_status": "Resubmitted"})).await;
    assert_eq!(answer.status, StatusCode::OK);
    let v3 = app.decision(&tenant, &id).await;
    assert_eq!(v3.body["status"], "Resubmitted");
    let reviews = v3.body["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0]["new_status"], "Declined");
    assert_eq!(reviews[0]["comment"], "Document expired.");
    assert_eq!(reviews[1]["comment"], Value::Null);
    let prefix = &tenant.key[3..15];
    assert_eq!(reviews[0]["user"], format!("api-key:{prefix}"));

    // A session that has not finished cannot be reviewed.
    let workflow = app.workflow(&tenant, "user").await;
    let fresh = app.session(&tenant, &workflow, None).await;
    let answer = app
        .patch(
            &format!("/v3/session/{fresh}/update-status/"),
            &tenant,
            json!({"new_status": "Approved"}),
        )
        .await;
    assert_error(&answer, 400, "wrong_current_status");
    insta::assert_json_snapshot!("wrong_current_status", answer.body);
}

on_both_backends!(recording_replaces_named_blocks_only);
async fn recording_replaces_named_blocks_only(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    // Every user feature, so that every user block may be recorded.
    let features: Vec<Value> = [
        "OCR",
        "NFC",
        "LIVENESS",
        "FACE_MATCH",
        "PROOF_OF_ADDRESS",
        "QUESTIONNAIRE",
        "PHONE_VERIFICATION",
        "EMAIL_VERIFICATION",
        "DATABASE_VALIDATION",
        "AML",
    ]
    .iter()
    .map(|f| json!({"feature": f}))
    .collect();
    let workflow = app.post("/v3/workflows/", &tenant, json!({"features": features})).await;
    assert_eq!(workflow.status, StatusCode::CREATED, "{}", workflow.text);
    let workflow = workflow.body["workflow_id"].as_str().unwrap().to_owned();
    let id = app.session(&tenant, &workflow, Some("u")).await;
    let path = format!("/v3/session/{id}/decision/");
    let recorded = app
        .raw(
            Method::PUT,
            &path,
            &tenant,
            Some("application/json"),
            example("record-results-user.json").into_bytes(),
        )
        .await;
    assert_eq!(recorded.status, StatusCode::OK, "{}", recorded.text);
    let answer = app
        .put(&path, &tenant, json!({
            "status": "In Review",
            "nfc_verifications": [{"node_id": "feature_nfc", "status": "Approved", "chip": true}],
            "aml_screenings": null,
            "questionnaire_responses": []
        }))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["status"], "In Review");
    assert_eq!(
        answer.body["nfc_verifications"],
        json!([{"node_id": "feature_nfc", "status": "Approved", "chip": true}])
    );
    assert_eq!(answer.body["aml_screenings"], Value::Null);
    assert_eq!(answer.body["questionnaire_responses"], json!([]));
    assert_eq!(answer.body["id_verifications"].as_array().unwrap().len(), 1, "untouched");
    let v2 = app.get(&format!("/v2/session/{id}/decision/"), &tenant).await;
    assert_eq!(v2.body["nfc"], json!({"status": "Approved", "chip": true}));
    assert_eq!(v2.body["aml"], Value::Null);
    assert_eq!(v2.body["questionnaire"], Value::Null, "an empty block has no first item");
}

on_both_backends!(blocks_outside_the_workflow_are_refused);
/// Items for a block whose feature the session's workflow does not run are refused, naming the
/// block and the workflow's steps; `null` (never ran) is accepted for any block of the kind,
/// and `ip_analyses` for any session, as Didit profiles every session.
async fn blocks_outside_the_workflow_are_refused(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let workflow = app
        .post(
            "/v3/workflows/",
            &tenant,
            json!({"features": [{"feature": "OCR"}, {"feature": "LIVENESS"}]}),
        )
        .await;
    let workflow = workflow.body["workflow_id"].as_str().unwrap().to_owned();
    let id = app.session(&tenant, &workflow, None).await;
    let path = format!("/v3/session/{id}/decision/");
    let item = |node: &str| json!([{"node_id": node, "status": "Approved"}]);
    let refused = app
        .put(
            &path,
            &tenant,
            json!({"status": "Approved", "id_verifications": item("ocr"), "aml_screenings": item("aml"),
                   "face_matches": []}),
        )
        .await;
    assert_error(&refused, 400, "invalid_request");
    let errors = refused.body["errors"].as_object().unwrap();
    assert_eq!(
        errors.keys().collect::<Vec<_>>(),
        ["aml_screenings", "face_matches"],
        "{}",
        refused.text
    );
    assert_eq!(
        errors["aml_screenings"][0],
        "the session runs the steps its workflow had when the session started (OCR, LIVENESS); \
         with no AML step it records no aml_screenings."
    );
    let unchanged = app.get(&path, &tenant).await;
    assert_eq!(unchanged.body["status"], "Not Started", "nothing was written");

    let accepted = app
        .put(
            &path,
            &tenant,
            json!({"status": "Approved", "id_verifications": item("ocr"), "aml_screenings": null,
                   "ip_analyses": item("ip")}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    assert_eq!(accepted.body["ip_analyses"], item("ip"));
}
