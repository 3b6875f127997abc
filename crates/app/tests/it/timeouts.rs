//! Time limits (a head or body sent slowly, a request past its deadline) and the headers every
//! answer carries.

use std::time::{Duration, Instant};

use handoff::Config;
use handoff_testdb::Backend;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestApp, per_backend};

/// Sends `head`, then `body` one byte every `pace`, and reads the server's answer (20 s at
/// most); the answer and when it was complete.
async fn trickle(app: &TestApp, head: String, body: &[u8], pace: Duration) -> (String, Duration) {
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let body = body.to_vec();
    let sender = tokio::spawn(async move {
        for byte in body {
            tokio::time::sleep(pace).await;
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
        }
        writer
    });
    let read = async {
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = reader.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
            if complete(&answer) {
                break;
            }
        }
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(20), read).await.unwrap_or_default();
    let elapsed = started.elapsed();
    sender.abort();
    (String::from_utf8_lossy(&answer).into_owned(), elapsed)
}

/// Whether `answer` holds a whole response: its head and `Content-Length` bytes of body.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

fn post_head(key: &str, length: usize) -> String {
    format!(
        "POST /v3/session/ HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

async fn a_body_sent_byte_by_byte_is_cut_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        c.timeouts.body = Duration::from_secs(2);
    })
    .await;
    let tenant = app.tenant("Alpha").await;
    let body = br#"{"workflow_id": "00000000-0000-0000-0000-000000000000", "metadata": {"pad": "xxxxxxxx"}}"#;
    let (answer, elapsed) =
        trickle(&app, post_head(&tenant.key, body.len()), body, Duration::from_millis(500)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
}

async fn a_head_sent_slowly_is_cut_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        c.timeouts.head = Duration::from_secs(1);
    })
    .await;
    let head = "GET /health/ HTTP/1.1\r\nHost: x\r\nX-Slow: 0123456789\r\n\r\n".to_owned();
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in head.bytes() {
        if stream.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    // Either a 408 or a closed connection, within a few seconds, and never the health answer.
    assert!(closed || answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(9), "{:?}", started.elapsed());
}

async fn a_request_past_its_deadline_is_stopped(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        c.timeouts.body = Duration::from_secs(30);
        c.timeouts.deadline = Duration::from_secs(1);
    })
    .await;
    let tenant = app.tenant("Alpha").await;
    let body = br#"{"workflow_id": "00000000-0000-0000-0000-000000000000"}"#;
    let (answer, elapsed) =
        trickle(&app, post_head(&tenant.key, body.len()), body, Duration::from_millis(200)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":"deadline_exceeded""#), "{answer}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    // Nothing was written.
    let listed = app.get("/v3/sessions/", &tenant).await;
    assert_eq!(listed.body["count"], 0, "{}", listed.text);
}

async fn every_answer_says_no_store_and_nosniff(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.tenant("Alpha").await;
    for (method, path, key) in [
        (Method::GET, "/health/", None),
        (Method::GET, "/v3/sessions/", Some(tenant.key.as_str())),
        (Method::GET, "/v3/sessions/", Some("wrong")),
        (Method::GET, "/v3/nowhere/", Some(tenant.key.as_str())),
        (Method::DELETE, "/v3/sessions/", Some(tenant.key.as_str())),
        (Method::GET, "/openapi.json", None),
    ] {
        let mut request = app.client.request(method.clone(), format!("{}{path}", app.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store", "{method} {path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{method} {path}");
    }
}

per_backend!(
    a_body_sent_byte_by_byte_is_cut_off,
    a_head_sent_slowly_is_cut_off,
    a_request_past_its_deadline_is_stopped,
    every_answer_says_no_store_and_nosniff
);
