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
    assert!(captured.contains("request"), "the log captured requests: {captured:.300}");
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

/// Sends `head` (a request without a body) on a connection of its own and reads the answer.
async fn raw_request(base: &str, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A method of 60 KB is neither a label nor logged: the metrics and the log grow by a bounded
/// line per request, and the request is refused with 405 JSON.
async fn a_long_method_grows_neither_the_metrics_nor_the_log(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let log_path =
        std::env::temp_dir().join(format!("handoff_log_{}.txt", uuid::Uuid::new_v4().simple()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Server::start_logging_with(
        db.url(),
        "info",
        Stdio::from(log),
        &[("HANDOFF_METRICS", "on")],
    );
    server.wait_until_healthy().await;
    let metrics = || async {
        reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap()
    };
    // One request of the odd kind first, so that its series exist before the measure.
    let method = "X".repeat(60_000);
    let head = format!("{method} /health/ HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    let first = raw_request(&server.base, &head).await;
    assert!(first.starts_with("HTTP/1.1 405"), "{first:.200}");
    assert!(first.contains(r#""code":"method_not_allowed""#), "{first:.400}");
    // The first scrape adds the scrape's own series.
    metrics().await;
    let metrics_before = metrics().await.len();
    let log_before = std::fs::metadata(&log_path).unwrap().len();
    for _ in 0..20 {
        raw_request(&server.base, &head).await;
    }
    let scraped = metrics().await;
    let log_after = std::fs::metadata(&log_path).unwrap().len();
    server.kill();
    let captured = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(!scraped.contains("XXXXXXXX"), "the method is a label");
    assert!(scraped.contains(r#"method="OTHER""#), "the odd method counted as OTHER");
    // The counters' values change; no series is added.
    assert!(
        scraped.len() < metrics_before + 200,
        "the metrics grew from {metrics_before} to {} bytes",
        scraped.len()
    );
    assert!(!captured.contains("XXXXXXXX"), "the method is in the log");
    assert!(
        log_after - log_before < 20 * 400,
        "20 requests wrote {} bytes of log",
        log_after - log_before
    );
}

per_backend!(a_long_method_grows_neither_the_metrics_nor_the_log);
