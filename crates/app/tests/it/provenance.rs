//! Provenance: the source's log records with whom it was shared and who imported it, the clone
//! records where it came from (the source's status at import, the token's `jti`), each side sees
//! its own events only (`?include=events`), and `max_source_age_seconds` refuses stale sources.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_error, on_both_backends};

fn jti_of(token: &str) -> String {
    let claims = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["jti"].as_str().unwrap().to_owned()
}

fn events<'a>(decision: &'a Value, action: &str) -> Vec<&'a Value> {
    decision["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] == action)
        .collect()
}

on_both_backends!(both_sides_of_a_share_keep_its_provenance);
async fn both_sides_of_a_share_keep_its_provenance(app: TestApp) {
    let shared = app.shared("user", "user-ana-001").await;
    let source_path = format!("/v3/session/{}/decision/?include=events", shared.session);
    // Shared with a third application too: the receiver must never learn of it.
    let third = app.tenant("Third").await;
    let other_token = app.share(&shared.source, &shared.session, &third).await;

    let before = app.get(&source_path, &shared.source).await;
    assert_eq!(before.status.as_u16(), 200, "{}", before.text);
    let shares = events(&before.body, "shared");
    assert_eq!(shares.len(), 2, "{}", before.text);
    assert_eq!(shares[0]["details"]["for_application_id"], json!(shared.receiver.id));
    assert_eq!(shares[0]["details"]["jti"], json!(jti_of(&shared.token)));
    assert_eq!(shares[1]["details"]["for_application_id"], json!(third.id));
    assert!(shares[0]["actor"].as_str().unwrap().starts_with("api-key:"));
    // The plain decision has no events.
    let plain = app.get(&format!("/v3/session/{}/decision/", shared.session), &shared.source).await;
    assert!(plain.body.get("events").is_none());

    let clone = app.redeem(&shared, json!({})).await;
    assert_eq!(clone.status.as_u16(), 201, "{}", clone.text);
    let clone_id = clone.body["session_id"].as_str().unwrap().to_owned();

    // The source's owner sees who imported, with which token, and nothing of the clone.
    let after = app.get(&source_path, &shared.source).await;
    let imported_by = events(&after.body, "imported_by");
    assert_eq!(imported_by.len(), 1, "{}", after.text);
    assert_eq!(imported_by[0]["actor"], json!(format!("application:{}", shared.receiver.id)));
    assert_eq!(imported_by[0]["details"]["application_id"], json!(shared.receiver.id));
    assert_eq!(imported_by[0]["details"]["jti"], json!(jti_of(&shared.token)));
    assert!(!after.text.contains(&clone_id), "the clone's id stays the receiver's");

    // The clone's owner sees where it came from: the source's status at import, the token.
    let clone_events = app
        .get(&format!("/v3/session/{clone_id}/decision/?include=events"), &shared.receiver)
        .await;
    assert_eq!(clone_events.status.as_u16(), 200);
    let imported = events(&clone_events.body, "imported");
    assert_eq!(imported.len(), 1, "{}", clone_events.text);
    assert_eq!(imported[0]["previous_status"], "Approved");
    assert_eq!(imported[0]["new_status"], "In Review");
    assert_eq!(imported[0]["details"]["jti"], json!(jti_of(&shared.token)));
    assert_eq!(imported[0]["details"]["source_session_id"], json!(shared.session));
    assert_eq!(imported[0]["details"]["source_application_id"], json!(shared.source.id));
    assert_eq!(imported[0]["details"]["trust_review"], false);
    // The source's own history comes along, its actors redacted to the source application;
    // its sharing does not.
    let copied: Vec<&Value> = clone_events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["action"] != "imported")
        .collect();
    assert!(!copied.is_empty());
    for event in copied {
        assert_eq!(event["actor"], json!(format!("application:{}", shared.source.id)));
    }
    assert!(events(&clone_events.body, "shared").is_empty());
    assert!(events(&clone_events.body, "imported_by").is_empty());
    assert!(!clone_events.text.contains(&third.id), "nothing of the third application");
    assert!(!clone_events.text.contains(&jti_of(&other_token)));

    // Each side's events are its own: the other side's ids answer 404.
    assert_error(&app.get(&source_path, &shared.receiver).await, 404, "session_not_found");
    assert_error(
        &app.get(&format!("/v3/session/{clone_id}/decision/?include=events"), &shared.source).await,
        404,
        "session_not_found",
    );
    // Only `events` may be included.
    assert_error(
        &app.get(
            &format!("/v3/session/{}/decision/?include=everything", shared.session),
            &shared.source,
        )
        .await,
        400,
        "invalid_request",
    );
}

on_both_backends!(a_source_older_than_asked_is_refused);
async fn a_source_older_than_asked_is_refused(app: TestApp) {
    let shared = app.shared("business", "acme-gmbh").await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let stale = json!({"max_source_age_seconds": 1});
    let preview = app
        .post(
            "/v3/session/import-shared/preview/",
            &shared.receiver,
            json!({"share_token": shared.token, "workflow_id": shared.workflow, "max_source_age_seconds": 1}),
        )
        .await;
    assert_error(&preview, 400, "source_too_old");
    let refused = app.redeem(&shared, stale).await;
    assert_error(&refused, 400, "source_too_old");
    for bad in [json!(0), json!(-5), json!(315_360_001i64), json!("60"), json!(1.5)] {
        let answer = app.redeem(&shared, json!({"max_source_age_seconds": bad})).await;
        assert_error(&answer, 400, "invalid_request");
    }
    // The refusals redeemed nothing: a looser limit imports.
    let imported = app.redeem(&shared, json!({"max_source_age_seconds": 3600})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
}
