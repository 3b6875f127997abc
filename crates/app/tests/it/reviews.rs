//! A session's reviews as Didit's: the activity feed, paged, and reviews posted to it.

use serde_json::{Value, json};

use crate::support::{TestApp, assert_error, assert_invalid, on_both_backends};

on_both_backends!(reviews_list_the_activity_and_post_a_review);
async fn reviews_list_the_activity_and_post_a_review(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let session = app.finished_session(&tenant, "user", "user-ana-001").await;
    let path = format!("/v3/sessions/{session}/reviews/");

    // Created (Not Started), then results recorded (Approved): two status changes, both
    // through the API.
    let feed = app.get(&path, &tenant).await;
    assert_eq!(feed.status.as_u16(), 200, "{}", feed.text);
    assert_eq!(feed.body["count"], 2);
    assert_eq!(feed.body["results"][0]["new_status"], "Approved");
    assert_eq!(feed.body["results"][0]["actor_type"], "API_KEY");
    assert_eq!(feed.body["results"][1]["new_status"], "Not Started");
    assert_eq!(feed.body["results"][1]["previous_status"], Value::Null);

    let posted = app
        .post(&path, &tenant, json!({"new_status": "In Review", "comment": "Check the address"}))
        .await;
    assert_eq!(posted.status.as_u16(), 201, "{}", posted.text);
    insta::assert_json_snapshot!("review_item", posted.body, {
        ".uuid" => "[uuid]", ".created_at" => "[time]", ".actor_display" => "[key]",
    });
    assert!(posted.body["actor_display"].as_str().unwrap().starts_with("api-key:"));
    let decision = app.decision(&tenant, &session).await;
    assert_eq!(decision.body["status"], "In Review");

    // Newest first by default; the review's uuid is stable.
    let feed = app.get(&path, &tenant).await;
    assert_eq!(feed.body["count"], 3);
    assert_eq!(feed.body["results"][0]["uuid"], posted.body["uuid"]);
    let oldest = app.get(&format!("{path}?ordering=created_at"), &tenant).await;
    assert_eq!(oldest.body["results"][0]["new_status"], "Not Started");
    assert_eq!(oldest.body["results"][2]["uuid"], posted.body["uuid"]);
    let middle = app.get(&format!("{path}?limit=1&offset=1"), &tenant).await;
    assert_eq!(middle.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(middle.body["results"][0]["new_status"], "Approved");
    assert!(middle.body["next"].as_str().unwrap().ends_with(&format!("{path}?limit=1&offset=2")));
    assert!(
        middle.body["previous"].as_str().unwrap().ends_with(&format!("{path}?limit=1&offset=0"))
    );

    // Refusals name their field.
    for (body, field) in [
        (json!({}), "new_status"),
        (json!({"new_status": "Resubmitted"}), "new_status"),
        (json!({"new_status": "Not Started"}), "new_status"),
        (json!({"new_status": "Approved", "comment": "x".repeat(10_001)}), "comment"),
    ] {
        let refused = app.post(&path, &tenant, body).await;
        assert_error(&refused, 400, "invalid_request");
        assert!(refused.body["errors"].get(field).is_some(), "{}", refused.text);
    }
    let long_enough = app
        .post(&path, &tenant, json!({"new_status": "Approved", "comment": "é".repeat(10_000)}))
        .await;
    assert_eq!(long_enough.status.as_u16(), 201, "{}", long_enough.text);
    for query in ["ordering=status", "limit=0", "page=2"] {
        assert_error(&app.get(&format!("{path}?{query}"), &tenant).await, 400, "invalid_request");
    }

    // An unfinished session cannot be reviewed; another application's is not found.
    let workflow = app.workflow(&tenant, "user").await;
    let fresh = app.session(&tenant, &workflow, None).await;
    assert_error(
        &app.post(
            &format!("/v3/sessions/{fresh}/reviews/"),
            &tenant,
            json!({"new_status": "Approved"}),
        )
        .await,
        400,
        "wrong_current_status",
    );
    let other = app.tenant("Beta").await;
    assert_error(&app.get(&path, &other).await, 404, "session_not_found");
    assert_error(
        &app.post(&path, &other, json!({"new_status": "Declined"})).await,
        404,
        "session_not_found",
    );
    assert_error(
        &app.get("/v3/sessions/not-a-session/reviews/", &tenant).await,
        404,
        "session_not_found",
    );
    assert_eq!(app.get(&path, &tenant).await.body["count"], 4);
}

on_both_backends!(single_steps_are_resubmitted_by_node);
async fn single_steps_are_resubmitted_by_node(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let session = app.finished_session(&tenant, "user", "user-ana-001").await;
    let path = format!("/v3/session/{session}/update-status/");
    let decision = format!("/v3/session/{session}/decision/");
    let before = app.get(&decision, &tenant).await.body;

    // Refused, and nothing changes: an unknown node, nodes without Resubmitted, a bad shape.
    for (body, field) in [
        (
            json!({"new_status": "Resubmitted", "nodes_to_resubmit": ["feature_poa", "feature_nope"]}),
            "nodes_to_resubmit",
        ),
        (
            json!({"new_status": "Declined", "nodes_to_resubmit": ["feature_poa"]}),
            "nodes_to_resubmit",
        ),
        (
            json!({"new_status": "Resubmitted", "nodes_to_resubmit": [{"id": "feature_poa"}]}),
            "nodes_to_resubmit",
        ),
        (
            json!({"new_status": "Resubmitted", "nodes_to_resubmit": vec!["feature_poa"; 51]}),
            "nodes_to_resubmit",
        ),
    ] {
        let answer = app.patch(&path, &tenant, body.clone()).await;
        assert_invalid(&answer, field);
    }
    assert_eq!(app.get(&decision, &tenant).await.body, before);

    // Another application's session does not exist.
    let other = app.tenant("Beta").await;
    let body = json!({"new_status": "Resubmitted", "nodes_to_resubmit": ["feature_poa"]});
    assert_error(&app.patch(&path, &other, body).await, 404, "session_not_found");

    // Both spellings; the named steps' results go, the others stay.
    let answer = app
        .patch(
            &path,
            &tenant,
            json!({"new_status": "Resubmitted", "comment": "Bill unreadable",
                "nodes_to_resubmit": [{"node_id": "feature_poa", "feature": "POA"}, "feature_phone"]}),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    let after = app.get(&decision, &tenant).await.body;
    assert_eq!(after["status"], "Resubmitted");
    assert_eq!(after["poa_verifications"], Value::Null);
    assert_eq!(after["phone_verifications"], Value::Null);
    for kept in ["id_verifications", "liveness_checks", "face_matches", "aml_screenings"] {
        assert_eq!(after[kept], before[kept], "{kept}");
    }
    let reviews = after["reviews"].as_array().unwrap();
    let last = reviews.last().unwrap();
    assert_eq!(last["new_status"], "Resubmitted");
    assert_eq!(last["comment"], "Bill unreadable");
}
