//! Lists, deletion, entities and concurrent creation.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::support::{self, TestApp, assert_error, assert_invalid, on_both_backends};

on_both_backends!(lists_filter_page_and_link);
async fn lists_filter_page_and_link(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let biz_wf = app.workflow(&tenant, "business").await;
    // A workflow each: an unfinished session of a person's workflow would be reused.
    for i in 0..5 {
        let user_wf = app.workflow(&tenant, "user").await;
        app.session(&tenant, &user_wf, Some(if i % 2 == 0 { "Ana" } else { "Luis" })).await;
    }
    app.session(&tenant, &biz_wf, Some("ana")).await;

    let page = app.get("/v3/sessions/?limit=2&offset=2", &tenant).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.text);
    assert_eq!(page.body["count"], 5, "user sessions by default");
    let numbers: Vec<i64> = page.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2]);
    let next = page.body["next"].as_str().unwrap();
    assert!(next.ends_with("/v3/sessions/?limit=2&offset=4"), "{next}");
    assert!(page.body["previous"].as_str().unwrap().ends_with("?limit=2&offset=0"));
    let last = app.get("/v3/sessions/?limit=2&offset=4", &tenant).await;
    assert_eq!(last.body["next"], Value::Null);
    assert_eq!(app.get("/v3/sessions/", &tenant).await.body["previous"], Value::Null);

    let ana = app.get("/v3/sessions/?vendor_data=ANA&session_kind=all", &tenant).await;
    assert_eq!(ana.body["count"], 4);
    let business = app.get("/v3/sessions/?session_kind=business", &tenant).await;
    assert_eq!(business.body["count"], 1);
    assert_eq!(business.body["results"][0]["session_kind"], "business");
    let statuses = app.get("/v3/sessions/?status=Approved,Not%20Started", &tenant).await;
    assert_eq!(statuses.body["count"], 5);
    assert_eq!(app.get("/v3/sessions/?status=Approved", &tenant).await.body["count"], 0);
    insta::assert_json_snapshot!("session_list_item", page.body["results"][0], {
        ".session_id" => "[session_id]", ".workflow_id" => "[workflow_id]",
        ".session_url" => "[session_url]", ".created_at" => "[time]", ".expires_at" => "[time]",
    });
}

on_both_backends!(every_list_filter_filters);
async fn every_list_filter_filters(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let other = app.tenant("Beta").await;
    let spain = app.finished_session(&tenant, "user", "client-1").await;
    let company = app.finished_session(&tenant, "business", "acme-1").await;
    let second_wf = app.workflow(&tenant, "user").await;
    let unfinished = app.session(&tenant, &second_wf, Some("client-2")).await;
    app.finished_session(&other, "user", "client-1").await;
    let ids = |answer: &crate::support::Answer| -> BTreeSet<String> {
        assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
        answer.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let only = |id: &str| BTreeSet::from([id.to_owned()]);
    let listed = |query: String| {
        let app = &app;
        let tenant = &tenant;
        async move { app.get(&format!("/v3/sessions/?{query}"), tenant).await }
    };
    assert_eq!(ids(&listed(format!("workflow_id={second_wf}")).await), only(&unfinished));
    // The example document is Spanish (ESP); the example company too (ES).
    assert_eq!(ids(&listed("country=esp&session_kind=all".into()).await), only(&spain));
    assert_eq!(ids(&listed("country=ES&session_kind=all".into()).await), only(&company));
    assert_eq!(ids(&listed("country=USA".into()).await), BTreeSet::new());
    let row = &listed("search=client-1".into()).await.body["results"][0];
    assert_eq!(row["session_id"], json!(spain));
    assert!(row["full_name"].is_string(), "{row}");
    assert_eq!(row["country"], "ESP");
    assert!(
        row["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["feature"] == "ID_VERIFICATION" && f["status"] == "Approved"),
        "{row}"
    );
    assert_eq!(
        ids(&listed("search=CLIENT&session_kind=all".into()).await),
        BTreeSet::from([spain.clone(), unfinished.clone()])
    );
    let today = chrono::Utc::now().date_naive();
    assert_eq!(ids(&listed(format!("date_from={today}&date_to={today}")).await).len(), 2);
    let yesterday = today.pred_opt().unwrap();
    assert!(ids(&listed(format!("date_to={yesterday}")).await).is_empty());
    assert!(ids(&listed(format!("date_from={}", today.succ_opt().unwrap())).await).is_empty());
    // A range that ends before it starts holds nothing.
    let backwards = listed(format!("date_from={today}&date_to={yesterday}")).await;
    assert_eq!(backwards.status.as_u16(), 200, "{}", backwards.text);
    assert!(ids(&backwards).is_empty());
    // Another application's workflow filters to nothing, like an unknown one.
    let theirs = app.workflow(&other, "user").await;
    assert!(ids(&listed(format!("workflow_id={theirs}")).await).is_empty());

    // Refused: each names its field; an unknown parameter is never ignored.
    for (query, field) in [
        ("workflow_id=nope", "workflow_id"),
        ("country=E1", "country"),
        ("date_from=2026-13-01", "date_from"),
        ("status=Done", "status"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("ordering=-created_at", "query"),
    ] {
        let refused = listed(query.into()).await;
        assert_error(&refused, 400, "invalid_request");
        assert!(
            refused.body["errors"].get(field).is_some() || refused.text.contains(field),
            "{query}: {}",
            refused.text
        );
    }
    let long = "x".repeat(101);
    assert_error(&listed(format!("search={long}")).await, 400, "invalid_request");
}

on_both_backends!(page_links_never_come_from_the_request);
async fn page_links_never_come_from_the_request(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    for _ in 0..3 {
        app.session(&tenant, &workflow, None).await;
    }
    let page = app
        .client
        .get(format!("{}/v3/sessions/?limit=1", app.base))
        .header("x-api-key", &tenant.key)
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "http")
        .header("forwarded", "host=evil.example;proto=http")
        .send()
        .await
        .unwrap();
    let body: Value = page.json().await.unwrap();
    assert_eq!(
        body["next"],
        format!("{}/v3/sessions/?limit=1&offset=1", crate::support::PUBLIC_URL)
    );
}

#[tokio::test]
async fn page_links_are_relative_without_a_public_url() {
    let app = TestApp::spawn_with(handoff_testdb::Backend::Sqlite, |config| {
        config.public_url = None;
    })
    .await;
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    app.session(&tenant, &workflow, None).await;
    app.session(&tenant, &workflow, None).await;
    let page = app.get("/v3/sessions/?limit=1", &tenant).await;
    assert_eq!(page.body["next"], "/v3/sessions/?limit=1&offset=1");
}

on_both_backends!(deleting_a_session_removes_it_and_its_rows);
async fn deleting_a_session_removes_it_and_its_rows(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let id = app.finished_session(&tenant, "user", "user-ana-001").await;
    let answer = app.delete(&format!("/v3/session/{id}/delete/"), &tenant).await;
    assert_eq!(answer.status.as_u16(), 204, "{}", answer.text);
    assert!(answer.text.is_empty());
    assert_error(&app.decision(&tenant, &id).await, 404, "session_not_found");
    assert_error(
        &app.delete(&format!("/v3/session/{id}/delete/"), &tenant).await,
        404,
        "session_not_found",
    );
    for table in handoff_migrations::BLOCK_TABLES.iter().chain(&["session_logs", "sessions"]) {
        let n = support::count(&app.store, &format!("SELECT COUNT(*) AS n FROM {table}")).await;
        assert_eq!(n, 0, "{table} is empty");
    }
    let user = app.get("/v3/users/user-ana-001/", &tenant).await;
    assert_eq!(user.body["session_count"], 0, "the User stays, with no sessions");
}

on_both_backends!(sessions_are_deleted_by_number_or_all);
async fn sessions_are_deleted_by_number_or_all(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let other = app.tenant("Beta").await;
    let workflow = app.workflow(&tenant, "user").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(app.session(&tenant, &workflow, None).await);
    }
    let finished = app.finished_session(&tenant, "user", "user-ana-001").await;
    let theirs = app.finished_session(&other, "user", "user-ana-001").await;
    // Numbers as integers or strings; unknown numbers are skipped.
    let deleted = app
        .post(
            "/v3/sessions/delete/",
            &tenant,
            json!({"session_numbers": [1, "3", 99], "delete_all": false}),
        )
        .await;
    assert_eq!(deleted.status.as_u16(), 200, "{}", deleted.text);
    assert_eq!(deleted.body["deleted"], 2);
    assert_eq!(deleted.body["results"][0]["session_id"], json!(ids[0]));
    assert_eq!(deleted.body["results"][1]["session_number"], 3);
    assert_error(
        &app.get(&format!("/v3/session/{}/decision/", ids[0]), &tenant).await,
        404,
        "session_not_found",
    );
    assert_eq!(
        app.get(&format!("/v3/session/{}/decision/", ids[1]), &tenant).await.status.as_u16(),
        200
    );
    for (body, field) in [
        (json!({}), "session_numbers"),
        (json!({"session_numbers": []}), "session_numbers"),
        (json!({"session_numbers": [0]}), "session_numbers"),
        (json!({"session_numbers": ["x1"]}), "session_numbers"),
        (json!({"session_numbers": [1.5]}), "session_numbers"),
        (json!({"session_numbers": "1"}), "session_numbers"),
        (json!({"session_numbers": vec![1; 1001]}), "session_numbers"),
        (json!({"session_numbers": [2], "delete_all": true}), "delete_all"),
    ] {
        let refused = app.post("/v3/sessions/delete/", &tenant, body).await;
        assert_error(&refused, 400, "invalid_request");
        assert!(refused.body["errors"].get(field).is_some(), "{}", refused.text);
    }
    // All: every one of the caller's, with their rows; another application's stay.
    let all = app.post("/v3/sessions/delete/", &tenant, json!({"delete_all": true})).await;
    assert_eq!(all.body["deleted"], 3, "{}", all.text);
    assert_error(&app.decision(&tenant, &finished).await, 404, "session_not_found");
    assert_eq!(app.get("/v3/sessions/?session_kind=all", &tenant).await.body["count"], 0);
    assert_eq!(app.decision(&other, &theirs).await.status.as_u16(), 200);
    // Another application's numbers delete nothing of theirs.
    let none = app.post("/v3/sessions/delete/", &tenant, json!({"session_numbers": [1]})).await;
    assert_eq!(none.body["deleted"], 0);
    assert_eq!(app.decision(&other, &theirs).await.status.as_u16(), 200);
}

on_both_backends!(entities_are_created_once_and_matched_case_insensitively);
async fn entities_are_created_once_and_matched_case_insensitively(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let other = app.tenant("Beta").await;
    let workflow = app.workflow(&tenant, "user").await;
    let second = app.workflow(&tenant, "user").await;
    app.session(&tenant, &workflow, Some("Ana.Example@Mail.test")).await;
    app.session(&tenant, &second, Some("ana.example@mail.test")).await;
    let user = app.get("/v3/users/ANA.EXAMPLE@MAIL.TEST/", &tenant).await;
    assert_eq!(user.status.as_u16(), 200, "{}", user.text);
    assert_eq!(user.body["vendor_data"], "Ana.Example@Mail.test");
    assert_eq!(user.body["status"], "ACTIVE");
    assert_eq!(user.body["session_count"], 2);
    insta::assert_json_snapshot!("user_entity", user.body, {
        ".created_at" => "[time]", ".first_session_at" => "[time]",
        ".last_session_at" => "[time]", ".didit_internal_id" => "[id]",
    });
    assert_error(
        &app.get("/v3/businesses/ana.example@mail.test/", &tenant).await,
        404,
        "entity_not_found",
    );
    assert_error(
        &app.get("/v3/users/ana.example@mail.test/", &other).await,
        404,
        "entity_not_found",
    );
    assert_error(&app.get("/v3/users/nobody/", &tenant).await, 404, "entity_not_found");
    let encoded = app.get("/v3/users/%C3%A9l%C3%A8ve%20un/", &tenant).await;
    assert_error(&encoded, 404, "entity_not_found");
    app.session(&tenant, &workflow, Some("Élève Un")).await;
    let unicode = app.get("/v3/users/%C3%A9l%C3%A8ve%20un/", &tenant).await;
    assert_eq!(unicode.body["vendor_data"], "Élève Un", "{}", unicode.text);
    let business_wf = app.workflow(&tenant, "business").await;
    app.session(&tenant, &business_wf, Some("biz-widgets-001")).await;
    let business = app.get("/v3/businesses/BIZ-widgets-001/", &tenant).await;
    assert_eq!(business.body["entity_kind"], "business");
}

on_both_backends!(an_entitys_status_is_set_and_keeps_its_effect_on_imports);
async fn an_entitys_status_is_set_and_keeps_its_effect_on_imports(app: TestApp) {
    let shared = app.shared("user", "user-ana-001").await;
    let receiver_wf = app.workflow(&shared.receiver, "user").await;
    // The receiver knows the person already, and blocks them.
    app.session(&shared.receiver, &receiver_wf, Some("USER-ANA-001")).await;
    let path = "/v3/users/user-ana-001/update-status/";
    let blocked = app
        .patch(path, &shared.receiver, json!({"status": "BLOCKED", "reason": "Chargeback fraud"}))
        .await;
    assert_eq!(blocked.status.as_u16(), 200, "{}", blocked.text);
    assert_eq!(blocked.body["status"], "BLOCKED");
    assert_eq!(blocked.body["status_reason"], "Chargeback fraud");
    assert!(blocked.body["status_updated_at"].is_string());
    let read = app.get("/v3/users/user-ana-001/", &shared.receiver).await;
    assert_eq!(read.body["status"], "BLOCKED");
    // Even with trust_review, the import of a BLOCKED person lands Declined.
    let clone = app.redeem(&shared, json!({"trust_review": true})).await;
    assert_eq!(clone.status.as_u16(), 201, "{}", clone.text);
    assert_eq!(clone.body["status"], "Declined");
    // The sharer's own User is untouched: statuses are per application.
    let theirs = app.get("/v3/users/user-ana-001/", &shared.source).await;
    assert_eq!(theirs.body["status"], "ACTIVE");

    // Setting the status it has changes nothing, not even the reason.
    let again =
        app.patch(path, &shared.receiver, json!({"status": "BLOCKED", "reason": "other"})).await;
    assert_eq!(again.body["status_reason"], "Chargeback fraud");
    // Refusals name their field; another application's entity, or none, is 404.
    for (body, field) in [
        (json!({}), "status"),
        (json!({"status": "blocked"}), "status"),
        (json!({"status": "Approved"}), "status"),
        (json!({"status": "ACTIVE", "reason": "x".repeat(1001)}), "reason"),
    ] {
        let refused = app.patch(path, &shared.receiver, body).await;
        assert_error(&refused, 400, "invalid_request");
        assert!(refused.body["errors"].get(field).is_some(), "{}", refused.text);
    }
    assert_error(
        &app.patch(
            "/v3/users/nobody/update-status/",
            &shared.receiver,
            json!({"status": "FLAGGED"}),
        )
        .await,
        404,
        "entity_not_found",
    );
    assert_error(
        &app.patch(
            "/v3/businesses/user-ana-001/update-status/",
            &shared.receiver,
            json!({"status": "FLAGGED"}),
        )
        .await,
        404,
        "entity_not_found",
    );
    let outsider = app.tenant("Gamma").await;
    assert_error(
        &app.patch(path, &outsider, json!({"status": "ACTIVE"})).await,
        404,
        "entity_not_found",
    );
    assert_eq!(
        app.get("/v3/users/user-ana-001/", &shared.receiver).await.body["status"],
        "BLOCKED"
    );
}

on_both_backends!(users_and_businesses_are_listed_created_changed_and_deleted);
async fn users_and_businesses_are_listed_created_changed_and_deleted(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let other = app.tenant("Beta").await;
    let created = app
        .post(
            "/v3/users/create/",
            &tenant,
            json!({"vendor_data": "Ana-1", "display_name": "Ana", "metadata": {"tier": "gold"}}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.body["status"], "ACTIVE");
    assert_eq!(created.body["metadata"], json!({"tier": "gold"}));
    assert_eq!(created.body["session_count"], 0);
    assert_eq!(created.body["first_session_at"], Value::Null);
    // Duplicate vendor_data (case-insensitive) is a 400 naming it; the other kind is apart.
    let duplicate = app.post("/v3/users/create/", &tenant, json!({"vendor_data": "ANA-1"})).await;
    assert_error(&duplicate, 400, "invalid_request");
    assert!(duplicate.body["errors"].get("vendor_data").is_some());
    let business = app
        .post(
            "/v3/businesses/create/",
            &tenant,
            json!({"vendor_data": "ana-1", "status": "FLAGGED"}),
        )
        .await;
    assert_eq!(business.status.as_u16(), 201, "{}", business.text);
    assert_eq!(business.body["entity_kind"], "business");
    for (body, field) in [
        (json!({}), "vendor_data"),
        (json!({"vendor_data": ""}), "vendor_data"),
        (json!({"vendor_data": "b", "display_name": ""}), "display_name"),
        (json!({"vendor_data": "b", "metadata": [1]}), "metadata"),
        (json!({"vendor_data": "b", "status": "active"}), "status"),
    ] {
        let refused = app.post("/v3/users/create/", &tenant, body).await;
        assert_error(&refused, 400, "invalid_request");
        assert!(refused.body["errors"].get(field).is_some(), "{}", refused.text);
    }

    // Counters follow the sessions.
    let approved = app.finished_session(&tenant, "user", "ana-1").await;
    let workflow = app.workflow(&tenant, "user").await;
    app.session(&tenant, &workflow, Some("ANA-1")).await;
    let ana = app.get("/v3/users/ana-1/", &tenant).await;
    assert_eq!(ana.body["session_count"], 2, "{}", ana.text);
    assert_eq!(ana.body["approved_count"], 1);
    assert_eq!(ana.body["in_review_count"], 0);
    assert!(ana.body["first_session_at"].as_str() <= ana.body["last_session_at"].as_str());

    // PATCH: what is given changes; metadata is replaced; null clears.
    let changed = app
        .patch(
            "/v3/users/ana-1/",
            &tenant,
            json!({"metadata": {"tier": "silver"}, "status": "FLAGGED"}),
        )
        .await;
    assert_eq!(changed.status.as_u16(), 200, "{}", changed.text);
    assert_eq!(changed.body["metadata"], json!({"tier": "silver"}));
    assert_eq!(changed.body["display_name"], "Ana");
    assert_eq!(changed.body["status"], "FLAGGED");
    let cleared = app.patch("/v3/users/ana-1/", &tenant, json!({"display_name": null})).await;
    assert_eq!(cleared.body["display_name"], Value::Null);
    assert_eq!(cleared.body["metadata"], json!({"tier": "silver"}));
    assert_error(
        &app.patch("/v3/users/ana-1/", &tenant, json!({"metadata": "x"})).await,
        400,
        "invalid_request",
    );
    assert_error(
        &app.patch("/v3/users/ana-1/", &other, json!({"display_name": "Mine"})).await,
        404,
        "entity_not_found",
    );

    // Lists filter by status and search, newest first, and never show another's.
    for name in ["bob-2", "cy-3"] {
        app.post("/v3/users/create/", &tenant, json!({"vendor_data": name})).await;
    }
    app.post("/v3/users/create/", &other, json!({"vendor_data": "bob-9"})).await;
    let listed = |query: &str| {
        let (app, tenant) = (&app, &tenant);
        let path = format!("/v3/users/?{query}");
        async move {
            let answer = app.get(&path, tenant).await;
            assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
            answer.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["vendor_data"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed("").await, ["cy-3", "bob-2", "Ana-1"]);
    assert_eq!(listed("status=FLAGGED").await, ["Ana-1"]);
    assert_eq!(listed("status=ACTIVE,BLOCKED").await, ["cy-3", "bob-2"]);
    assert_eq!(listed("search=BOB").await, ["bob-2"]);
    assert_eq!(listed("limit=1&offset=1").await, ["bob-2"]);
    for query in ["status=Approved", "limit=0", "sort=name"] {
        assert_error(
            &app.get(&format!("/v3/users/?{query}"), &tenant).await,
            400,
            "invalid_request",
        );
    }
    let businesses = app.get("/v3/businesses/", &tenant).await;
    assert_eq!(businesses.body["count"], 1);

    // Deleting a User deletes its sessions; another application's are untouched.
    let deleted = app
        .post(
            "/v3/users/delete/",
            &tenant,
            json!({"vendor_data_list": ["ANA-1", "nobody"], "delete_all": false}),
        )
        .await;
    assert_eq!(deleted.status.as_u16(), 200, "{}", deleted.text);
    assert_eq!(deleted.body["deleted"], 1);
    assert_error(&app.get("/v3/users/ana-1/", &tenant).await, 404, "entity_not_found");
    assert_error(&app.decision(&tenant, &approved).await, 404, "session_not_found");
    let by_id = app
        .post(
            "/v3/businesses/delete/",
            &tenant,
            json!({"didit_internal_id_list": [business.body["didit_internal_id"]]}),
        )
        .await;
    assert_eq!(by_id.body["deleted"], 1, "{}", by_id.text);
    let too_long = "x".repeat(1025);
    for body in [
        json!({}),
        json!({"vendor_data_list": ["x"], "delete_all": true}),
        json!({"vendor_data_list": ["ANA-1", too_long]}),
    ] {
        assert_error(&app.post("/v3/users/delete/", &tenant, body).await, 400, "invalid_request");
    }
    let all = app.post("/v3/users/delete/", &tenant, json!({"delete_all": true})).await;
    assert_eq!(all.body["deleted"], 2);
    assert_eq!(app.get("/v3/users/", &other).await.body["count"], 1);
}

on_both_backends!(an_unfinished_session_of_the_same_person_and_workflow_is_reused);
async fn an_unfinished_session_of_the_same_person_and_workflow_is_reused(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    let create = |body: Value| {
        let (app, tenant) = (&app, &tenant);
        async move {
            let answer = app.post("/v3/session/", tenant, body).await;
            assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
            answer.body
        }
    };
    let first = create(json!({"workflow_id": workflow, "vendor_data": "Ana",
        "callback": "https://app.example.test/one", "metadata": {"try": 1}}))
    .await;
    // The same person (case-insensitively) and workflow: the same session, its callback and
    // metadata replaced.
    let again = create(json!({"workflow_id": workflow, "vendor_data": "ANA",
        "callback": "https://app.example.test/two", "metadata": {"try": 2}}))
    .await;
    assert_eq!(again["session_id"], first["session_id"]);
    assert_eq!(again["session_number"], first["session_number"]);
    assert_eq!(again["callback"], "https://app.example.test/two");
    assert_eq!(again["metadata"], json!({"try": 2}));
    // Given neither, they stay.
    let third = create(json!({"workflow_id": workflow, "vendor_data": "ana"})).await;
    assert_eq!(third["session_id"], first["session_id"]);
    assert_eq!(third["callback"], "https://app.example.test/two");
    // Another workflow, another person, or no vendor_data: a new session.
    let other_wf = app.workflow(&tenant, "user").await;
    for body in [
        json!({"workflow_id": other_wf, "vendor_data": "Ana"}),
        json!({"workflow_id": workflow, "vendor_data": "Luis"}),
        json!({"workflow_id": workflow}),
    ] {
        assert_ne!(create(body).await["session_id"], first["session_id"]);
    }
    // A finished session is never reused.
    let id = first["session_id"].as_str().unwrap();
    let recorded = app
        .put(&format!("/v3/session/{id}/decision/"), &tenant, json!({"status": "Declined"}))
        .await;
    assert_eq!(recorded.status.as_u16(), 200, "{}", recorded.text);
    let fresh = create(json!({"workflow_id": workflow, "vendor_data": "Ana"})).await;
    assert_ne!(fresh["session_id"], first["session_id"]);
    assert_eq!(fresh["status"], "Not Started");
    assert_eq!(app.get("/v3/users/ana/", &tenant).await.body["session_count"], 3);
}

on_both_backends!(concurrent_creation_never_duplicates_a_session_number);
async fn concurrent_creation_never_duplicates_a_session_number(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    let app = Arc::new(app);
    let (shared_app, shared_tenant) = (app.clone(), tenant.clone());
    let create = move |vendor_data: Option<String>| {
        let (app, tenant, workflow) = (shared_app.clone(), shared_tenant.clone(), workflow.clone());
        async move {
            let answer = app
                .post(
                    "/v3/session/",
                    &tenant,
                    json!({"workflow_id": workflow, "vendor_data": vendor_data}),
                )
                .await;
            assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
            (
                answer.body["session_id"].as_str().unwrap().to_owned(),
                answer.body["session_number"].as_i64().unwrap(),
            )
        }
    };
    // Without vendor_data: 32 sessions, 32 numbers.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        tasks.spawn(create(None));
    }
    let numbers: BTreeSet<i64> = tasks.join_all().await.into_iter().map(|(_, n)| n).collect();
    assert_eq!(numbers, (1..=32).collect::<BTreeSet<_>>());
    // With 4 vendor_data, 8 requests each at once: each person's requests reuse one session.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let create = create.clone();
        tasks.spawn(async move { (i % 4, create(Some(format!("user-{}", i % 4))).await) });
    }
    let mut by_person: std::collections::BTreeMap<i32, BTreeSet<(String, i64)>> =
        Default::default();
    for (person, answer) in tasks.join_all().await {
        by_person.entry(person).or_default().insert(answer);
    }
    let numbers: BTreeSet<i64> = by_person
        .values()
        .map(|answers| {
            assert_eq!(answers.len(), 1, "one session per person: {answers:?}");
            answers.first().unwrap().1
        })
        .collect();
    assert_eq!(numbers, (33..=36).collect::<BTreeSet<_>>());
    for i in 0..4 {
        assert_eq!(
            app.get(&format!("/v3/users/user-{i}/"), &tenant).await.body["session_count"],
            1
        );
    }
}

on_both_backends!(didits_presentation_options_are_kept_checked_and_not_imported);
async fn didits_presentation_options_are_kept_checked_and_not_imported(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    // A 1 MiB portrait: its base64 fits the session route's body limit.
    let portrait = "AAAA".repeat(1024 * 1024 / 3) + "AA==";
    let created = app
        .post(
            "/v3/session/",
            &tenant,
            json!({"workflow_id": workflow, "callback_method": "completer", "language": "pt-BR",
                "portrait_image": portrait}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let id = created.body["session_id"].as_str().unwrap();
    let decision = app.decision(&tenant, id).await;
    assert_eq!(decision.body["callback_method"], "completer");
    assert_eq!(decision.body["language"], "pt-BR");
    assert_eq!(decision.body["portrait_image"], portrait.as_str());
    // V2 keeps its documented fields.
    let v2 = app.get(&format!("/v2/session/{id}/decision/"), &tenant).await;
    assert_eq!(v2.status.as_u16(), 200, "{}", v2.text);
    assert!(v2.body.get("language").is_none(), "{}", v2.text);

    // Each is checked, and named when refused.
    let over = "AAAA".repeat(1024 * 1024 / 3 + 1);
    for (field, value) in [
        ("callback_method", json!("sometimes")),
        ("language", json!("xx")),
        ("portrait_image", json!("not base64!")),
        ("portrait_image", json!("")),
        ("portrait_image", json!(over)),
        ("metadata", json!({"pad": "x".repeat(70_000)})),
    ] {
        let answer =
            app.post("/v3/session/", &tenant, json!({"workflow_id": workflow, field: value})).await;
        assert_invalid(&answer, field);
    }

    // An import does not copy them, as it does not copy the callback.
    let recorded = app
        .put(&format!("/v3/session/{id}/decision/"), &tenant, json!({"status": "Approved"}))
        .await;
    assert_eq!(recorded.status.as_u16(), 200, "{}", recorded.text);
    let receiver = app.tenant("Beta").await;
    let token = app.share(&tenant, id, &receiver).await;
    let receiver_workflow = app.workflow(&receiver, "user").await;
    let imported = app.import(&receiver, &token, &receiver_workflow, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap();
    let cloned = app.decision(&receiver, clone).await;
    assert_eq!(cloned.status.as_u16(), 200, "{}", cloned.text);
    for field in ["callback_method", "language", "portrait_image"] {
        assert!(cloned.body.get(field).is_none(), "{field}: {}", cloned.text);
    }
}

on_both_backends!(reviewers_correct_extracted_data);
async fn reviewers_correct_extracted_data(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let session = app.finished_session(&tenant, "user", "user-ana-001").await;
    let decision = format!("/v3/session/{session}/decision/");
    let data = format!("/v3/session/{session}/update-data/");
    let poa = format!("/v3/session/{session}/update-poa-data/");
    let before = app.get(&decision, &tenant).await.body;

    let answer = app
        .patch(
            &data,
            &tenant,
            json!({"first_name": "Ana María", "date_of_birth": "1990-04-13", "gender": "F",
                "personal_number": null, "extra_fields": {"checked": true}}),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    let item = &answer.body["id_verifications"][0];
    assert_eq!(item["first_name"], "Ana María");
    assert_eq!(item["date_of_birth"], "1990-04-13");
    assert_eq!(item["extra_fields"], json!({"checked": true}));
    assert_eq!(item["personal_number"], Value::Null);
    // Every other member as it was, in its place.
    let old = before["id_verifications"][0].as_object().unwrap();
    let new = item.as_object().unwrap();
    assert_eq!(old.keys().collect::<Vec<_>>(), new.keys().collect::<Vec<_>>());
    for (key, value) in old {
        if !["first_name", "date_of_birth", "extra_fields", "personal_number"]
            .contains(&key.as_str())
        {
            assert_eq!(&new[key], value, "{key}");
        }
    }
    assert_eq!(answer.body["status"], before["status"]);

    let answer =
        app.patch(&poa, &tenant, json!({"issuer": "Utility Co", "issue_date": "2026-10-01"})).await;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    assert_eq!(answer.body["poa_verifications"][0]["issuer"], "Utility Co");
    assert_eq!(
        app.get(&decision, &tenant).await.body["id_verifications"][0]["first_name"],
        "Ana María"
    );

    // Refused, naming the member, and nothing written.
    let current = app.get(&decision, &tenant).await.body;
    for (path, body, field) in [
        (&data, json!({"date_of_birth": "13/04/1990"}), "date_of_birth"),
        (&data, json!({"gender": "X"}), "gender"),
        (&data, json!({"issuing_state": "es"}), "issuing_state"),
        (&data, json!({"first_name": 7}), "first_name"),
        (&data, json!({"first_name": "x".repeat(1001)}), "first_name"),
        (&data, json!({"issuer": "a"}), "issuer"),
        (&data, json!({}), "body"),
        (&poa, json!({"document_type": "PASSPORT"}), "document_type"),
        (&poa, json!({"poa_parsed_address": "Main St"}), "poa_parsed_address"),
    ] {
        let answer = app.patch(path, &tenant, body.clone()).await;
        assert_invalid(&answer, field);
    }
    assert_eq!(app.get(&decision, &tenant).await.body, current);

    // A session without the step, and another application's session.
    let business = app.finished_session(&tenant, "business", "biz").await;
    let answer = app
        .patch(&format!("/v3/session/{business}/update-poa-data/"), &tenant, json!({"issuer": "x"}))
        .await;
    assert_invalid(&answer, "poa_verifications");
    let other = app.tenant("Beta").await;
    assert_error(
        &app.patch(&data, &other, json!({"first_name": "x"})).await,
        404,
        "session_not_found",
    );
}

on_both_backends!(concurrent_corrections_lose_nothing);
async fn concurrent_corrections_lose_nothing(app: TestApp) {
    let tenant = app.tenant("Alpha").await;
    let session = app.finished_session(&tenant, "user", "user-ana-001").await;
    let data = format!("/v3/session/{session}/update-data/");
    let members = [
        "first_name",
        "last_name",
        "address",
        "place_of_birth",
        "nationality",
        "document_number",
        "personal_number",
        "document_subtype",
    ];
    // Each request reads the item, changes one member and writes the item back: without the
    // revision guard, concurrent writes would drop each other's member.
    let app = Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for member in members {
        let (app, tenant, data) = (app.clone(), tenant.clone(), data.clone());
        tasks.spawn(async move {
            app.patch(&data, &tenant, json!({member: format!("new {member}")})).await
        });
    }
    let answers = tasks.join_all().await;
    for answer in &answers {
        assert_eq!(answer.status.as_u16(), 200, "{}", answer.text);
    }
    let item = app.decision(&tenant, &session).await.body["id_verifications"][0].clone();
    for member in members {
        assert_eq!(item[member], format!("new {member}"), "{member}");
    }
}

on_both_backends!(a_look_alike_vendor_data_does_not_slip_past_a_block);
/// A receiver's block on `ana-01` holds for a share whose `vendor_data` spells it with a
/// Cyrillic `а` or with spaces around it; invisible fillers and other white space are refused.
async fn a_look_alike_vendor_data_does_not_slip_past_a_block(app: TestApp) {
    for look_alike in ["\u{430}na-01", " ANA-01 "] {
        let shared = app.shared("user", look_alike).await;
        let blocked = app
            .post(
                "/v3/users/create/",
                &shared.receiver,
                json!({"vendor_data": "ana-01", "status": "BLOCKED"}),
            )
            .await;
        assert_eq!(blocked.status.as_u16(), 201, "{}", blocked.text);
        let imported = app.redeem(&shared, json!({"trust_review": true})).await;
        assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
        assert_eq!(imported.body["status"], "Declined", "{look_alike:?}");
    }
    let tenant = app.tenant("Alpha").await;
    for refused in ["ana\u{3164}01", "ana-01\u{a0}", ".", ".."] {
        let answer = app.post("/v3/users/create/", &tenant, json!({"vendor_data": refused})).await;
        assert_invalid(&answer, "vendor_data");
    }
}
