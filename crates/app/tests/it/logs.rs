//! Secrets and personal data never reach the logs: the full flow runs against a server logging at
//! `trace`, and the captured log is searched for the API keys, the share token and the example's
//! personal data.

use std::process::Stdio;

use handoff_testdb::{Backend, TestDatabase};
use serde_json::json;

use crate::processes::Server;
use crate::support::{TestApp, per_backend};

async fn no_secret_in_the_log(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let log_path =
        std::env::temp_dir().join(format!("handoff_log_{}.txt", uuid::Uuid::new_v4().simple()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Server::start_logging(db.url(), "trace", Stdio::from(log));
    server.wait_until_healthy().await;
    let app = TestApp::attach(&server.base, db).await;

    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let session = app.finished_session(&source, "user", "user-ana-001").await;
    app.patch(
        &format!("/v3/session/{session}/update-status/"),
        &source,
        json!({"new_status": "Approved", "comment": "Checked by hand."}),
    )
    .await;
    let token = app.share(&source, &session, &receiver).await;
    let workflow = app.workflow(&receiver, "user").await;
    let imported = app.import(&receiver, &token, &workflow, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201);
    // Refusals too: a wrong key, a tampered token.
    app.send(
        reqwest::Method::GET,
        "/v3/sessions/",
        Some(&format!("{}0", &source.key[..source.key.len() - 1])),
        None,
    )
    .await;
    app.post(
        "/v3/session/import-shared/",
        &receiver,
        json!({"share_token": format!("{token}x"), "workflow_id": workflow}),
    )
    .await;
    app.get("/v3/users/user-ana-001/", &receiver).await;
    server.kill();

    let captured = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        captured.contains("request"),
        "the log captured requests: {captured:.300}"
    );
    let signature = token.rsplit('.').next().unwrap();
    let secrets = [
        source.key.as_str(),
        &source.key[16..],
        receiver.key.as_str(),
        &receiver.key[16..],
        token.as_str(),
        signature,
        "user-ana-001",
        "Ana Example",
        "X1234567Z",
        "ana@example.test",
        "600000001",
        "192.0.2.10",
        "Calle Falsa",
        "1990-04-12",
        "Checked by hand.",
    ];
    for secret in secrets {
        assert!(!captured.contains(secret), "the log contains {secret:?}");
    }
}

per_backend!(no_secret_in_the_log);
