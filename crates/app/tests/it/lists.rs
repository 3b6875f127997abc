//! Lists (Didit's Lists API) and the blocklist shortcut: the system blocklists, lists of the
//! application's own, entries by value or from a session, personal values kept only as keyed
//! hashes, and another application's lists answering 404.

use serde_json::{Value, json};

use crate::support::{TestApp, assert_error, assert_invalid, count, on_both_backends};

/// The id of the caller's list named `name`.
async fn list_named(app: &TestApp, tenant: &crate::support::Tenant, name: &str) -> String {
    let lists = app.get("/v3/lists/?limit=200", tenant).await;
    lists.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no list {name}: {}", lists.text))["uuid"]
        .as_str()
        .unwrap()
        .to_owned()
}

on_both_backends!(lists_are_made_changed_and_deleted_as_didits);
async fn lists_are_made_changed_and_deleted_as_didits(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let stranger = app.tenant("Stranger").await;

    // One system blocklist per entry type, before anything was made.
    let lists = app.get("/v3/lists/", &owner).await;
    assert_eq!(lists.status.as_u16(), 200, "{}", lists.text);
    assert_eq!(lists.body["count"], 12);
    let first = &lists.body["results"][0];
    assert_eq!(
        (&first["name"], &first["list_type"], &first["entry_type"], &first["is_system"]),
        (&json!("Face blocklist"), &json!("blocklist"), &json!("face"), &json!(true))
    );
    let email = app.get("/v3/lists/?entry_type=email", &owner).await;
    assert_eq!(email.body["count"], 1, "{}", email.text);
    assert_invalid(&app.get("/v3/lists/?list_type=deny", &owner).await, "list_type");
    assert_error(&app.get("/v3/lists/?colour=red", &owner).await, 400, "invalid_request");

    // Lists of its own: allowlists and custom lists, named once.
    let body = json!({"name": "VIP phones", "list_type": "allowlist", "entry_type": "phone"});
    let created = app.post("/v3/lists/", &owner, body.clone()).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.body["is_system"], false);
    assert_eq!(created.body["entry_count"], 0);
    let id = created.body["uuid"].as_str().unwrap().to_owned();
    assert_invalid(&app.post("/v3/lists/", &owner, body.clone()).await, "name");
    assert_eq!(app.post("/v3/lists/", &stranger, body).await.status.as_u16(), 201, "per app");
    for (member, bad) in [
        ("list_type", json!({"name": "x", "list_type": "blocklist", "entry_type": "phone"})),
        ("entry_type", json!({"name": "x", "list_type": "custom", "entry_type": "shoe_size"})),
        ("name", json!({"name": "Email blocklist", "list_type": "custom", "entry_type": "email"})),
        ("name", json!({"name": " ", "list_type": "custom", "entry_type": "email"})),
    ] {
        assert_invalid(&app.post("/v3/lists/", &owner, bad).await, member);
    }
    assert_eq!(app.get("/v3/lists/?list_type=allowlist", &owner).await.body["count"], 1);

    let path = format!("/v3/lists/{id}/");
    let renamed = app.patch(&path, &owner, json!({"name": "Trusted phones"})).await;
    assert_eq!(renamed.body["name"], "Trusted phones", "{}", renamed.text);
    assert_eq!(app.get(&path, &owner).await.body["name"], "Trusted phones");
    assert_error(&app.get(&path, &stranger).await, 404, "list_not_found");
    assert_error(&app.delete(&path, &stranger).await, 404, "list_not_found");

    let system = list_named(&app, &owner, "Email blocklist").await;
    let system_path = format!("/v3/lists/{system}/");
    assert_eq!(app.get(&system_path, &owner).await.body["entry_type"], "email");
    let answer = app.patch(&system_path, &owner, json!({"name": "Mine"})).await;
    assert_error(&answer, 400, "system_list_immutable");
    assert_error(&app.delete(&system_path, &owner).await, 400, "system_list_immutable");
    assert_error(&app.get(&system_path, &stranger).await, 404, "list_not_found");

    // Entries: a personal value is kept only as a keyed hash, in one spelling.
    let entries = format!("/v3/lists/{id}/entries/");
    let added =
        app.post(&entries, &owner, json!({"value": "+34 600 000 001", "comment": "VIP"})).await;
    assert_eq!(added.status.as_u16(), 201, "{}", added.text);
    assert!(added.body["value"].is_null(), "a phone is never shown: {}", added.text);
    assert_eq!(added.body["added_by"], "api");
    let again = app.post(&entries, &owner, json!({"value": "+34600000001"})).await;
    assert_invalid(&again, "value");
    assert_invalid(&app.post(&entries, &owner, json!({"value": "not a phone"})).await, "value");
    assert_invalid(&app.post(&entries, &owner, json!({})).await, "value");
    let stored = count(&app.store, "SELECT count(*) AS n FROM list_entries WHERE match_key LIKE '%600000001%' OR value LIKE '%600000001%'").await;
    assert_eq!(stored, 0, "no column holds the phone in clear");
    assert_eq!(app.get(&path, &owner).await.body["entry_count"], 1);
    assert_error(&app.get(&entries, &stranger).await, 404, "list_not_found");

    let ips = list_named(&app, &owner, "IP address blocklist").await;
    let ip_entries = format!("/v3/lists/{ips}/entries/");
    let ip = app.post(&ip_entries, &owner, json!({"value": "10.1.2.3/8"})).await;
    assert_eq!(ip.body["value"], "10.0.0.0/8", "{}", ip.text);
    let page = app.get(&ip_entries, &owner).await;
    assert_eq!(page.body["count"], 1);
    assert_eq!(page.body["results"][0]["uuid"], ip.body["uuid"]);

    let entry = format!("{entries}{}/", added.body["uuid"].as_str().unwrap());
    assert_error(&app.delete(&entry, &stranger).await, 404, "list_not_found");
    assert_eq!(app.delete(&entry, &owner).await.status.as_u16(), 204);
    assert_error(&app.delete(&entry, &owner).await, 404, "entry_not_found");

    assert_eq!(app.delete(&path, &owner).await.status.as_u16(), 204);
    assert_error(&app.get(&path, &owner).await, 404, "list_not_found");
}

on_both_backends!(a_sessions_values_are_blocklisted_and_removed);
async fn a_sessions_values_are_blocklisted_and_removed(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let stranger = app.tenant("Stranger").await;
    let session = app.finished_session(&owner, "user", "user-ana-001").await;
    let flags = json!({"session_id": session, "blocklist_document": true, "blocklist_email": true,
        "blocklist_face": true});

    let added = app.post("/v3/blocklist/add/", &owner, flags.clone()).await;
    assert_eq!(added.status.as_u16(), 200, "{}", added.text);
    // The example session recorded no face template.
    assert_eq!(added.body["entry_types"], json!(["document", "email"]));
    let documents = list_named(&app, &owner, "Document blocklist").await;
    let listed = app.get(&format!("/v3/lists/{documents}/entries/"), &owner).await;
    assert_eq!(listed.body["count"], 1, "{}", listed.text);
    let entry: &Value = &listed.body["results"][0];
    assert_eq!(entry["reference_session_id"], session.as_str());
    assert_eq!(entry["added_by"], "blocklist");
    assert!(entry["value"].is_null());
    // Twice is once.
    app.post("/v3/blocklist/add/", &owner, flags.clone()).await;
    assert_eq!(app.get(&format!("/v3/lists/{documents}/"), &owner).await.body["entry_count"], 1);
    let stored = count(&app.store, "SELECT count(*) AS n FROM list_entries WHERE match_key LIKE '%X1234567Z%' OR value LIKE '%X1234567Z%' OR match_key LIKE '%ana@example%'").await;
    assert_eq!(stored, 0, "no column holds the document or the email in clear");

    // The same value from the session through the Lists API is already there.
    let by_session = app
        .post(
            &format!("/v3/lists/{documents}/entries/"),
            &owner,
            json!({"reference_session_id": session}),
        )
        .await;
    assert_invalid(&by_session, "value");
    let faces = list_named(&app, &owner, "Face blocklist").await;
    let no_face = app
        .post(
            &format!("/v3/lists/{faces}/entries/"),
            &owner,
            json!({"reference_session_id": session}),
        )
        .await;
    assert_invalid(&no_face, "reference_session_id");

    assert_invalid(
        &app.post("/v3/blocklist/add/", &owner, json!({"session_id": session})).await,
        "blocklist_face",
    );
    assert_error(
        &app.post("/v3/blocklist/add/", &stranger, flags.clone()).await,
        404,
        "session_not_found",
    );
    let unknown = json!({"session_id": uuid::Uuid::new_v4(), "blocklist_email": true});
    assert_error(&app.post("/v3/blocklist/add/", &owner, unknown).await, 404, "session_not_found");

    let removed = app.post("/v3/blocklist/remove/", &owner, flags.clone()).await;
    assert_eq!(removed.body["entry_types"], json!(["document", "email"]), "{}", removed.text);
    assert_eq!(app.get(&format!("/v3/lists/{documents}/"), &owner).await.body["entry_count"], 0);
    let again = app.post("/v3/blocklist/remove/", &owner, flags).await;
    assert_eq!(again.body["entry_types"], json!([]));
}

on_both_backends!(recorded_results_with_a_blocklisted_value_decline_the_session);
async fn recorded_results_with_a_blocklisted_value_decline_the_session(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let stranger = app.tenant("Stranger").await;
    let first = app.finished_session(&owner, "user", "user-ana-001").await;
    let flags = json!({"session_id": first, "blocklist_document": true});
    assert_eq!(app.post("/v3/blocklist/add/", &owner, flags).await.status.as_u16(), 200);
    let ips = list_named(&app, &owner, "IP address blocklist").await;
    let ip = app
        .post(&format!("/v3/lists/{ips}/entries/"), &owner, json!({"value": "192.0.2.0/24"}))
        .await;
    assert_eq!(ip.status.as_u16(), 201, "{}", ip.text);

    // The same person again, under another vendor_data: the example results say Approved.
    let again = app.finished_session(&owner, "user", "user-ana-002").await;
    let decision = app.decision(&owner, &again).await;
    assert_eq!(decision.body["status"], "Declined", "{}", decision.text);
    let id = &decision.body["id_verifications"][0];
    assert_eq!(id["document_number"], "X1234567Z", "the item is kept");
    let risks = |item: &Value| -> Vec<String> {
        item["warnings"]
            .as_array()
            .map(|w| w.iter().map(|w| w["risk"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(risks(id), ["ID_DOCUMENT_IN_BLOCKLIST"]);
    assert_eq!(id["warnings"][0]["feature"], "ID_VERIFICATION");
    // An address inside a listed block; the item's own warning stays first.
    let ip_item = &decision.body["ip_analyses"][0];
    assert_eq!(risks(ip_item), ["IP_COUNTRY_MATCHES_DOCUMENT", "IP_ADDRESS_IN_BLOCKLIST"]);
    assert!(
        risks(&decision.body["email_verifications"][0]).iter().all(|r| r != "EMAIL_IN_BLOCKLIST")
    );
    let events = app.get(&format!("/v3/session/{again}/decision/?include=events"), &owner).await;
    let recorded = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "results_recorded")
        .cloned();
    assert!(recorded.is_some_and(|e| e["new_status"] == "Declined"), "{}", events.text);

    // Another application's blocklist is its own.
    let theirs = app.finished_session(&stranger, "user", "user-ana-001").await;
    assert_eq!(app.decision(&stranger, &theirs).await.body["status"], "Approved");

    // A blocklisted vendor_data declines its sessions too, with no item to warn in.
    let users = list_named(&app, &stranger, "User blocklist").await;
    let listed = app
        .post(&format!("/v3/lists/{users}/entries/"), &stranger, json!({"value": "USER-BOB-007"}))
        .await;
    assert_eq!(listed.body["value"], "USER-BOB-007", "a vendor_data is shown: {}", listed.text);
    let bob = app.finished_session(&stranger, "user", "user-bob-007").await;
    let decision = app.decision(&stranger, &bob).await;
    assert_eq!(decision.body["status"], "Declined", "{}", decision.text);
    assert!(risks(&decision.body["id_verifications"][0]).is_empty());
}

on_both_backends!(a_workflow_may_blocklist_its_declined_sessions);
async fn a_workflow_may_blocklist_its_declined_sessions(app: TestApp) {
    let owner = app.tenant("Owner").await;
    let session = app.finished_session(&owner, "user", "user-ana-001").await;
    let workflow =
        app.decision(&owner, &session).await.body["workflow_id"].as_str().unwrap().to_owned();
    let decline = json!({"new_status": "Declined", "comment": "fraud"});
    let documents = list_named(&app, &owner, "Document blocklist").await;
    let count_of = |list: String| {
        let app = &app;
        let owner = &owner;
        async move { app.get(&format!("/v3/lists/{list}/"), owner).await.body["entry_count"].clone() }
    };

    // Off by default: a decline blocklists nothing.
    let other = app.finished_session(&owner, "user", "user-bob-001").await;
    let path = |id: &str| format!("/v3/session/{id}/update-status/");
    assert_eq!(app.patch(&path(&other), &owner, decline.clone()).await.status.as_u16(), 200);
    assert_eq!(count_of(documents.clone()).await, 0);

    let on = app
        .patch(
            &format!("/v3/workflows/{workflow}/"),
            &owner,
            json!({"is_auto_blocklist_enabled": true}),
        )
        .await;
    assert_eq!(on.body["is_auto_blocklist_enabled"], true, "{}", on.text);
    assert_eq!(app.patch(&path(&session), &owner, decline).await.status.as_u16(), 200);
    assert_eq!(count_of(documents.clone()).await, 1);
    let emails = list_named(&app, &owner, "Email blocklist").await;
    let listed = app.get(&format!("/v3/lists/{emails}/entries/"), &owner).await;
    assert_eq!(listed.body["results"][0]["added_by"], "auto", "{}", listed.text);
    let user = app.get("/v3/users/user-ana-001/", &owner).await;
    assert_eq!(user.body["status"], "BLOCKED", "{}", user.text);

    // The next session with those values is declined when its results are recorded.
    let next = app.finished_session(&owner, "user", "user-ana-003").await;
    assert_eq!(app.decision(&owner, &next).await.body["status"], "Declined");
}

on_both_backends!(an_import_of_a_session_the_receiver_blocklisted_lands_declined);
async fn an_import_of_a_session_the_receiver_blocklisted_lands_declined(app: TestApp) {
    let shared = app.shared("user", "user-ana-001").await;
    let receiver = &shared.receiver;
    let documents = list_named(&app, receiver, "Document blocklist").await;
    let ips = list_named(&app, receiver, "IP address blocklist").await;
    for (list, value) in [(documents, "x1234567z"), (ips, "192.0.2.0/24")] {
        let added = app
            .post(&format!("/v3/lists/{list}/entries/"), receiver, json!({"value": value}))
            .await;
        assert_eq!(added.status.as_u16(), 201, "{}", added.text);
    }
    // The source's own blocklists are its own.
    let theirs = list_named(&app, &shared.source, "Email blocklist").await;
    app.post(
        &format!("/v3/lists/{theirs}/entries/"),
        &shared.source,
        json!({"value": "ana@example.test"}),
    )
    .await;

    let body =
        json!({"share_token": shared.token, "workflow_id": shared.workflow, "trust_review": true});
    let preview = app.post("/v3/session/import-shared/preview/", receiver, body.clone()).await;
    assert_eq!(preview.status.as_u16(), 200, "{}", preview.text);
    assert_eq!(preview.body["status"], "Declined");
    assert_eq!(preview.body["blocklisted"], json!(["document", "ip_address"]));

    let imported = app.post("/v3/session/import-shared/", receiver, body).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    assert_eq!(imported.body["status"], "Declined", "whatever trust_review says");
    let clone = imported.body["session_id"].as_str().unwrap();
    let events = app.get(&format!("/v3/session/{clone}/decision/?include=events"), receiver).await;
    let import = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "imported")
        .cloned()
        .unwrap_or_else(|| panic!("{}", events.text));
    assert_eq!(import["details"]["blocklisted"], json!(["document", "ip_address"]), "{import}");
    assert_eq!(import["details"]["trust_review"], true);

    // A receiver that blocklisted the clone's vendor_data: the source's, or the override.
    let wary = app.tenant("Wary").await;
    let wary_workflow = app.workflow(&wary, "user").await;
    let users = list_named(&app, &wary, "User blocklist").await;
    app.post(&format!("/v3/lists/{users}/entries/"), &wary, json!({"value": "user-ana-001"})).await;
    let token = app.share(&shared.source, &shared.session, &wary).await;
    let trust = json!({"share_token": token, "workflow_id": wary_workflow, "trust_review": true});
    let preview = app.post("/v3/session/import-shared/preview/", &wary, trust.clone()).await;
    assert_eq!(preview.body["blocklisted"], json!(["user"]), "{}", preview.text);
    let mut renamed = trust.clone();
    renamed["vendor_data"] = json!("someone-else");
    let preview = app.post("/v3/session/import-shared/preview/", &wary, renamed).await;
    assert_eq!(preview.body["blocklisted"], json!([]), "{}", preview.text);
    assert_eq!(preview.body["status"], "Approved");
    let imported = app.post("/v3/session/import-shared/", &wary, trust).await;
    assert_eq!(imported.body["status"], "Declined", "{}", imported.text);

    // A receiver that blocklisted nothing trusts the decision; the clone's values come along.
    let other = app.tenant("Other").await;
    let workflow = app.workflow(&other, "user").await;
    let token = app.share(&shared.source, &shared.session, &other).await;
    let trusted = app.import(&other, &token, &workflow, json!({"trust_review": true})).await;
    assert_eq!(trusted.body["status"], "Approved", "{}", trusted.text);
    let blocklist = list_named(&app, &other, "Document blocklist").await;
    let by_clone = json!({"reference_session_id": trusted.body["session_id"]});
    let added = app.post(&format!("/v3/lists/{blocklist}/entries/"), &other, by_clone).await;
    assert_eq!(added.status.as_u16(), 201, "the clone holds the document: {}", added.text);
}
