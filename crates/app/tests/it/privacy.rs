//! Privacy by design in sharing (extensions of Share Session): a share carries what it names
//! (`blocks` limits the token, the ledger, the preview and the clone, and the provenance says
//! what was withheld), and the person's consent travels with it, required when the
//! application says so.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_invalid, on_both_backends};

fn claims(token: &str) -> Value {
    let claims = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap()
}

fn sorted(values: &Value) -> Vec<String> {
    let mut names: Vec<String> =
        values.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

on_both_backends!(a_share_carries_only_the_blocks_it_names);
async fn a_share_carries_only_the_blocks_it_names(app: TestApp) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "user-ana-001").await;
    let workflow = app.workflow(&receiver, "user").await;
    let named = json!(["id_verifications", "aml_screenings", "aml_screenings"]);
    let body = json!({"for_application_id": receiver.id, "blocks": named});
    let shared = app.share_answer(&source, &session, body).await;
    assert_eq!(shared.status.as_u16(), 200, "{}", shared.text);
    let token = shared.body["share_token"].as_str().unwrap();
    let carried = vec!["aml_screenings".to_owned(), "id_verifications".to_owned()];
    assert_eq!(sorted(&claims(token)["blocks"]), carried, "the token's claim, once each");

    let ledger = app.get(&format!("/v3/session/{session}/shares/"), &source).await;
    assert_eq!(sorted(&ledger.body[0]["blocks"]), carried);

    let source_decision = app.decision(&source, &session).await.body;
    let recorded: Vec<&str> = crate::support::block_keys("user")
        .into_iter()
        .filter(|b| source_decision[*b].is_array())
        .collect();
    assert!(recorded.len() > 2, "the fixture records more than the share carries");

    let body = json!({"share_token": token, "workflow_id": workflow});
    let preview = app.post("/v3/session/import-shared/preview/", &receiver, body.clone()).await;
    assert_eq!(preview.status.as_u16(), 200, "{}", preview.text);
    assert_eq!(sorted(&preview.body["blocks"]), carried);
    let mut withheld: Vec<String> = recorded
        .iter()
        .filter(|b| !carried.contains(&b.to_string()))
        .map(|b| b.to_string())
        .collect();
    withheld.sort();
    assert_eq!(sorted(&preview.body["withheld"]), withheld);

    let imported = app.post("/v3/session/import-shared/", &receiver, body).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    assert!(imported.body["id_verification"].is_object(), "{}", imported.text);
    assert!(imported.body["aml"].is_object());
    assert!(imported.body["liveness"].is_null() && imported.body["face_match"].is_null());
    let clone = imported.body["session_id"].as_str().unwrap();
    let path = format!("/v3/session/{clone}/decision/?include=events");
    let cloned = app.get(&path, &receiver).await.body;
    for block in crate::support::block_keys("user") {
        if carried.contains(&block.to_owned()) {
            assert_eq!(cloned[block], source_decision[block], "{block} comes along whole");
        } else {
            assert!(cloned[block].is_null(), "{block} is withheld: {}", cloned[block]);
        }
    }
    let imported_event = cloned["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "imported")
        .unwrap()
        .clone();
    let said = sorted(&imported_event["details"]["withheld_blocks"]);
    assert!(said.contains(&"face_matches".to_owned()) && !said.contains(&carried[0]), "{said:?}");
}

on_both_backends!(a_share_naming_unknown_or_foreign_blocks_is_refused);
async fn a_share_naming_unknown_or_foreign_blocks_is_refused(app: TestApp) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "user-ana-001").await;
    for (blocks, says) in [
        (json!(["aml_screenings", "selfies"]), "selfies"),
        (json!(["registry_checks"]), "registry_checks"),
        (json!([]), "at least one"),
    ] {
        let body = json!({"for_application_id": receiver.id, "blocks": blocks});
        let answer = app.share_answer(&source, &session, body).await;
        assert_invalid(&answer, "blocks");
        assert!(answer.text.contains(says), "{}", answer.text);
    }
    let ledger = app.get(&format!("/v3/session/{session}/shares/"), &source).await;
    assert_eq!(ledger.body, json!([]), "nothing issued");
}

fn consent(reference: &str) -> Value {
    json!({"reference": reference, "given_at": "2026-12-01T09:30:00Z",
        "text_sha256": "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"})
}

on_both_backends!(consent_travels_with_the_share_and_may_be_required);
async fn consent_travels_with_the_share_and_may_be_required(app: TestApp) {
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "user-ana-001").await;
    let workflow = app.workflow(&receiver, "user").await;
    let share = |body: Value| {
        let path = format!("/v3/session/{session}/share/");
        let (app, source) = (&app, &source);
        async move { app.post(&path, source, body).await }
    };
    let recorded = json!({"reference": "consent-2026-0042", "given_at": "2026-12-01T09:30:00Z",
        "text_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"});

    // Without the application's requirement, a share may carry consent or not.
    let shared = share(json!({"for_application_id": receiver.id,
        "consent": consent("consent-2026-0042")}))
    .await;
    assert_eq!(shared.status.as_u16(), 200, "{}", shared.text);
    let token = shared.body["share_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["consent"], recorded, "the token's claim, the hash in lower case");
    let ledger = app.get(&format!("/v3/session/{session}/shares/"), &source).await;
    assert_eq!(ledger.body[0]["consent"], recorded);
    let imported = app
        .post(
            "/v3/session/import-shared/",
            &receiver,
            json!({"share_token": token, "workflow_id": workflow}),
        )
        .await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap();
    let cloned = app.get(&format!("/v3/session/{clone}/decision/?include=events"), &receiver).await;
    let event = cloned.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["action"] == "imported")
        .unwrap()
        .clone();
    assert_eq!(event["details"]["consent"], recorded, "the clone's provenance");

    for (bad, field) in [
        (
            json!({"reference": "", "given_at": "2026-12-01T09:30:00Z", "text_sha256": "ab"}),
            "consent.reference",
        ),
        (
            json!({"reference": "r", "given_at": "2999-01-01T00:00:00Z",
            "text_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
            "consent.given_at",
        ),
        (
            json!({"reference": "r", "given_at": "2026-12-01T09:30:00Z", "text_sha256": "xyz"}),
            "consent.text_sha256",
        ),
    ] {
        let refused = share(json!({"for_application_id": receiver.id, "consent": bad})).await;
        assert_invalid(&refused, field);
    }

    // The operator requires consent: a share without it is refused, with it issued.
    let args = ["applications", "update", "--application", &source.id, "--require-consent", "true"];
    let (ok, printed, stderr) = crate::support::handoff_command(app.db.url(), &args, &[]);
    assert!(ok, "{stderr}");
    let printed = &printed[0];
    assert_eq!(
        printed,
        &json!({"application_id": source.id, "require_consent": true, "console_api_keys": false,
                "retention_days": null})
    );
    crate::support::assert_error(
        &share(json!({"for_application_id": receiver.id})).await,
        400,
        "consent_required",
    );
    let with = share(json!({"for_application_id": receiver.id, "consent": consent("c-2")})).await;
    assert_eq!(with.status.as_u16(), 200, "{}", with.text);
}

on_both_backends!(a_subjects_data_is_exported_then_erased);
async fn a_subjects_data_is_exported_then_erased(app: TestApp) {
    use crate::support::handoff_command;
    let shared = app.shared("user", "user-ana-001").await;
    let (source, receiver) = (&shared.source, &shared.receiver);
    let imported = app.redeem(&shared, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap().to_owned();
    // A second session of the same person (the case differs) and one of someone else.
    let workflow = app.workflow(source, "user").await;
    let again = app.session(source, &workflow, Some("USER-ANA-001")).await;
    let other = app.session(source, &workflow, Some("user-ben-002")).await;
    let subjects = |verb: &str, application: &str, vendor_data: &str| {
        let args = ["subjects", verb, "--application", application, "--vendor-data", vendor_data];
        handoff_command(app.db.url(), &args, &[])
    };

    let (ok, printed, stderr) = subjects("export", &source.id, "User-Ana-001");
    assert!(ok, "{stderr}");
    let export = &printed[0];
    assert_eq!(export["application_id"], json!(source.id));
    assert_eq!(export["entities"].as_array().unwrap().len(), 1);
    assert_eq!(export["entities"][0]["entity_kind"], "user");
    let sessions = export["sessions"].as_array().unwrap();
    let ids: Vec<&str> = sessions.iter().map(|s| s["session_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [shared.session.as_str(), again.as_str()], "oldest first, nobody else's");
    let first = &sessions[0];
    assert!(first["id_verifications"].is_array(), "the decision, blocks included");
    let actions: Vec<&str> =
        first["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"shared") && actions.contains(&"imported_by"), "{actions:?}");
    assert_eq!(first["shares"].as_array().unwrap().len(), 1);
    assert_eq!(first["shares"][0]["state"], "redeemed");

    // The receiver's export holds its clone, with where it came from.
    let (ok, printed, _) = subjects("export", &receiver.id, "user-ana-001");
    assert!(ok);
    let clone_export = &printed[0]["sessions"][0];
    assert_eq!(clone_export["session_id"], json!(clone));
    assert_eq!(clone_export["shared_from_session"], json!(shared.session));
    let imported_event = clone_export["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "imported")
        .unwrap();
    assert_eq!(imported_event["details"]["source_session_id"], json!(shared.session));

    let (ok, printed, stderr) = subjects("erase", &source.id, "user-ana-001");
    assert!(ok, "{stderr}");
    assert_eq!(
        printed[0],
        json!({"application_id": source.id, "vendor_data": "user-ana-001",
               "deleted_sessions": 2, "deleted_entities": 1})
    );
    for gone in [&shared.session, &again] {
        assert_eq!(app.decision(source, gone).await.status.as_u16(), 404);
    }
    assert_eq!(app.decision(source, &other).await.status.as_u16(), 200, "someone else's stays");
    assert_eq!(app.decision(receiver, &clone).await.status.as_u16(), 200, "the clone is theirs");
    let (_, printed, _) = subjects("export", &source.id, "user-ana-001");
    assert_eq!(printed[0]["sessions"], json!([]));
    assert_eq!(printed[0]["entities"], json!([]));
    let (_, printed, _) = subjects("erase", &source.id, "user-ana-001");
    assert_eq!(printed[0]["deleted_sessions"], 0, "nothing left to erase");

    let nowhere = uuid::Uuid::new_v4().to_string();
    let (ok, printed, stderr) = subjects("export", &nowhere, "user-ana-001");
    assert!(!ok && printed.is_empty(), "an unknown application is an error");
    assert!(stderr.contains("application"), "{stderr}");
    let (ok, _, stderr) = subjects("erase", &source.id, "");
    assert!(!ok, "an empty vendor_data is refused");
    assert!(stderr.contains("--vendor-data"), "{stderr}");
}
