//! Identity data sealed at rest (docs/privacy.md): nothing of a person's identity is in the
//! database in clear, lists still find sessions by name and country, and an erased application's
//! data opens for nobody.

use serde_json::json;

use handoff_testdb::Backend;

use crate::support::{
    TestApp, assert_error, count, handoff_command, on_both_backends, per_backend, rows,
};

/// Values of the fixtures that identify the person: a document number, a name, an email.
const IDENTIFYING: [&str; 3] = ["X1234567Z", "Ana Example", "ana@example.test"];

/// Every byte the database holds: the SQLite file and its write-ahead log, or a dump of the
/// PostgreSQL database.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let url = app.db.url();
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = std::path::Path::new(path.split('?').next().unwrap());
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        assert!(bytes.len() > 4096, "the database's files were read");
        bytes
    } else {
        let dump = std::process::Command::new("pg_dump").arg(url).output().unwrap();
        assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
        assert!(String::from_utf8_lossy(&dump.stdout).contains("CREATE TABLE public.sessions"));
        dump.stdout
    }
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|window| window == text.as_bytes())
}

per_backend!(identity_data_is_nowhere_in_the_database_in_clear);
async fn identity_data_is_nowhere_in_the_database_in_clear(backend: Backend) {
    // Webhooks to a receiver on loopback.
    let app = TestApp::spawn_with(backend, |c| c.webhooks.allow_private = true).await;
    let shared = app.shared("user", "user-ana-001").await;
    let (source, receiver) = (&shared.source, &shared.receiver);
    // Details given at creation too.
    let workflow = app.workflow(source, "user").await;
    let body = json!({"workflow_id": workflow, "vendor_data": "user-ana-002",
        "contact_details": {"email": "ana@example.test"},
        "expected_details": {"first_name": "Ana", "last_name": "Example"},
        "metadata": {"note": "X1234567Z"}});
    let created = app.post("/v3/session/", source, body).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let created_id = created.body["session_id"].as_str().unwrap().to_owned();
    // The import's answer recorded for its Idempotency-Key, and its webhook payload rendered
    // and kept: both hold the clone's decision.
    let hook = crate::webhooks::Receiver::start("");
    crate::webhooks::subscribe(&app, receiver, &hook, &["status.updated"]).await;
    let imported = app
        .client
        .post(format!("{}/v3/session/import-shared/", app.base))
        .header("x-api-key", &receiver.key)
        .header("Idempotency-Key", "import-ana-1")
        .json(&json!({"share_token": shared.token, "workflow_id": shared.workflow}))
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status().as_u16(), 201);
    let imported: serde_json::Value = imported.json().await.unwrap();
    let clone = imported["session_id"].as_str().unwrap().to_owned();
    let delivered = hook.wait_for(1).await;
    assert!(delivered[0].to_string().contains("Ana Example"), "the payload names the person");

    // Each reads back whole, the clone too.
    let decision = app.decision(source, &shared.session).await.body;
    assert_eq!(decision["id_verifications"][0]["full_name"], "Ana Example");
    assert_eq!(decision["id_verifications"][0]["document_number"], "X1234567Z");
    let copy = app.decision(receiver, &clone).await.body;
    assert_eq!(copy["id_verifications"], decision["id_verifications"]);
    assert_eq!(copy["email_verifications"], decision["email_verifications"]);
    let details = app.decision(source, &created_id).await.body;
    assert_eq!(details["contact_details"]["email"], "ana@example.test");
    assert_eq!(details["expected_details"]["last_name"], "Example");
    assert_eq!(details["metadata"]["note"], "X1234567Z");

    // A review's comment, free text a reviewer may fill with what the documents say.
    let review = json!({"new_status": "Declined", "comment": "Not Ana Example"});
    let reviewed = app.post(&format!("/v3/sessions/{clone}/reviews/"), receiver, review).await;
    assert_eq!(reviewed.status.as_u16(), 201, "{}", reviewed.text);
    let reviews = app.decision(receiver, &clone).await.body["reviews"].clone();
    assert!(reviews.to_string().contains("Not Ana Example"), "{reviews}");
    // A User's profile, given and then changed (its change's event holds both values).
    let user = json!({"vendor_data": "user-ana-003", "display_name": "Ana Example",
        "metadata": {"passport": "X1234567Z"}});
    let created = app.post("/v3/users/create/", source, user).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    crate::webhooks::subscribe(&app, source, &hook, &["user.data.updated"]).await;
    let changed = json!({"metadata": {"email": "ana@example.test"}});
    let changed = app.patch("/v3/users/user-ana-003/", source, changed).await;
    assert_eq!(changed.body["display_name"], "Ana Example", "{}", changed.text);
    assert_eq!(changed.body["metadata"], json!({"email": "ana@example.test"}));
    let delivered = hook.wait_for(2).await;
    assert!(delivered[1].to_string().contains("X1234567Z"), "the event names the change");
    let found = app.get("/v3/users/?search=example", source).await;
    assert_eq!(found.body["count"], 1, "a whole word of the display name: {}", found.text);
    let found = app.get("/v3/users/?search=exam", source).await;
    assert_eq!(found.body["count"], 0, "{}", found.text);

    let bytes = database_bytes(&app);
    for text in IDENTIFYING {
        assert!(!holds(&bytes, text), "{text} is in the database in clear");
    }
    // What stays in clear, as docs/privacy.md says: vendor_data.
    assert!(holds(&bytes, "user-ana-001"), "the search is no false negative");
}

on_both_backends!(lists_find_sessions_by_whole_words_of_a_name_and_by_country);
async fn lists_find_sessions_by_whole_words_of_a_name_and_by_country(app: TestApp) {
    let shared = app.shared("user", "user-ana-001").await;
    let imported = app.redeem(&shared, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let country = app.decision(&shared.source, &shared.session).await.body["id_verifications"][0]
        ["issuing_state"]
        .as_str()
        .unwrap()
        .to_owned();
    for tenant in [&shared.source, &shared.receiver] {
        let found = |query: String| listed(&app, tenant, query);
        assert_eq!(found("search=ana".into()).await, 1, "a word of the name (and vendor_data)");
        assert_eq!(found("search=EXAMPLE%20ana".into()).await, 1, "every word, any order");
        assert_eq!(found("search=xample".into()).await, 0, "whole words only");
        assert_eq!(found("search=ana%20smith".into()).await, 0, "every word must be there");
        assert_eq!(found(format!("country={country}")).await, 1);
        assert_eq!(found("country=ZZZ".into()).await, 0);
    }
}

/// How many of `tenant`'s sessions the list with `query` counts.
async fn listed(app: &TestApp, tenant: &crate::support::Tenant, query: String) -> u64 {
    let page = app.get(&format!("/v3/sessions/?{query}"), tenant).await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.text);
    page.body["count"].as_u64().unwrap()
}

on_both_backends!(an_erased_application_s_data_opens_for_nobody);
async fn an_erased_application_s_data_opens_for_nobody(app: TestApp) {
    let shared = app.shared("user", "user-ana-001").await;
    let (source, receiver) = (&shared.source, &shared.receiver);
    // One clone made before the erasure; another share still open.
    let imported = app.redeem(&shared, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    let clone = imported.body["session_id"].as_str().unwrap().to_owned();
    let second = app.finished_session(source, "user", "user-ben-002").await;
    let pending = app.share(source, &second, receiver).await;

    let erase = |application: &str| {
        handoff_command(app.db.url(), &["applications", "erase", "--application", application], &[])
    };
    let (ok, printed, stderr) = erase(&source.id);
    assert!(ok, "{stderr}");
    assert_eq!(printed[0], json!({"application_id": source.id, "erased_sessions": 2}));

    for session in [&shared.session, &second] {
        assert_eq!(app.decision(source, session).await.status.as_u16(), 404);
    }
    let page = app.get("/v3/sessions/", source).await;
    assert_eq!(page.body["count"], 0, "{}", page.text);
    let import = app.import(receiver, &pending, &shared.workflow, json!({})).await;
    assert_error(&import, 404, "source_session_not_found");
    assert_eq!(app.decision(receiver, &clone).await.status.as_u16(), 200, "the clone is theirs");

    // The rows are still there, sealed, and nothing is left to open them with.
    let id = |s: &str| match app.db.backend() {
        handoff_testdb::Backend::Postgres => format!("'{s}'"),
        handoff_testdb::Backend::Sqlite => format!("x'{}'", s.replace('-', "")),
    };
    let items = rows(
        &app.store,
        &format!("SELECT item FROM id_verifications WHERE session_id = {}", id(&shared.session)),
    )
    .await;
    assert!(!items.is_empty());
    for row in &items {
        assert!(row.try_get::<String>("", "item").unwrap().starts_with("s1:"));
    }
    let keyless = format!(
        "SELECT COUNT(*) AS n FROM sessions WHERE application_id = {} \
         AND (data_key IS NULL OR length(data_key) > 0)",
        id(&source.id)
    );
    assert_eq!(count(&app.store, &keyless).await, 0, "every data key is destroyed");
    let application_key = format!(
        "SELECT COUNT(*) AS n FROM applications WHERE id = {} AND data_key IS NOT NULL",
        id(&source.id)
    );
    assert_eq!(count(&app.store, &application_key).await, 0, "and the application's key");

    // The application goes on with a key of its own.
    let after = app.finished_session(source, "user", "user-cy-003").await;
    assert_eq!(app.decision(source, &after).await.status.as_u16(), 200);
    let (ok, _, stderr) = erase(&uuid::Uuid::new_v4().to_string());
    assert!(!ok && stderr.contains("no application"), "{stderr}");
}
