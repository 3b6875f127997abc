//! Rate limits per API key: budgets, headers, 429, and turning them off.

use handoff::Config;
use handoff_http::rate_limit::RateLimits;
use handoff_testdb::Backend;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, assert_error, per_backend};

/// Waits when the current 60-second window is about to end, so that a test's requests fall in
/// one window.
pub(crate) async fn fresh_window() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    if now % 60 > 45 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - now % 60)).await;
    }
}

fn header(answer: &reqwest::Response, name: &str) -> Option<String> {
    answer.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

async fn rate_limits(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        let (reads_per_minute, writes_per_minute) = (3, 2);
        c.rate_limits =
            Some(RateLimits { reads_per_minute, writes_per_minute, ..RateLimits::default() })
    })
    .await;
    let tenant = app.tenant("Alpha").await;
    let other = app.tenant("Beta").await;
    fresh_window().await;
    let get = || {
        app.client.get(format!("{}/v3/sessions/", app.base)).header("x-api-key", &tenant.key).send()
    };
    for remaining in ["2", "1", "0"] {
        let response = get().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header(&response, "x-ratelimit-remaining").as_deref(), Some(remaining));
        assert!(header(&response, "x-ratelimit-reset").unwrap().parse::<u64>().unwrap() % 60 == 0);
    }
    let refused = get().await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let retry_after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(header(&refused, "x-ratelimit-remaining").as_deref(), Some("0"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");

    // Writes have their own budget; other keys their own.
    for _ in 0..2 {
        assert_eq!(
            app.post("/v3/workflows/", &tenant, json!({"features": [{"feature": "OCR"}]}))
                .await
                .status
                .as_u16(),
            201
        );
    }
    assert_error(
        &app.post("/v3/workflows/", &tenant, json!({"features": [{"feature": "OCR"}]})).await,
        429,
        "rate_limited",
    );
    assert_eq!(app.get("/v3/sessions/", &other).await.status.as_u16(), 200);
    // Requests without a valid key are refused before they are counted.
    assert_error(
        &app.send(Method::GET, "/v3/sessions/", Some("nope"), None).await,
        401,
        "authentication_failed",
    );
}

async fn rate_limits_off(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| c.rate_limits = None).await;
    let tenant = app.tenant("Alpha").await;
    for _ in 0..30 {
        let response = app.get_response("/v3/sessions/", &tenant).await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(header(&response, "x-ratelimit-limit").is_none());
    }
}

/// Requests without a valid key spend their address's budget; once it is spent, the
/// address's requests are refused before any key is looked up, a valid one too.
async fn requests_without_a_valid_key_are_throttled_by_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        c.rate_limits = Some(RateLimits { unauthenticated_per_minute: 3, ..RateLimits::default() })
    })
    .await;
    let tenant = app.tenant("Alpha").await;
    fresh_window().await;
    // Failures are counted per address and key prefix: three wrong secrets under the
    // tenant's own prefix spend that budget.
    let prefix = &tenant.key[..16];
    let wrong = format!("{prefix}{}", "0".repeat(64));
    for _ in 0..3 {
        assert_error(
            &app.send(Method::GET, "/v3/sessions/", Some(&wrong), None).await,
            401,
            "authentication_failed",
        );
    }
    // Forwarding headers change nothing: the peer's address is counted.
    let response = app
        .client
        .get(format!("{}/v3/sessions/", app.base))
        .header("x-api-key", &wrong)
        .header("X-Forwarded-For", "203.0.113.9")
        .header("Forwarded", "for=203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(header(&response, "retry-after").is_some());
    // The valid key is never refused for those failures, nor is another key.
    let valid = app.get("/v3/sessions/", &tenant).await;
    assert_eq!(valid.status.as_u16(), 200, "{}", valid.text);
    let other = app.tenant("Beta").await;
    assert_eq!(app.get("/v3/sessions/", &other).await.status.as_u16(), 200);
    let another_prefix = format!("hk_000000000000_{}", "0".repeat(64));
    assert_error(
        &app.send(Method::GET, "/v3/sessions/", Some(&another_prefix), None).await,
        401,
        "authentication_failed",
    );
    // Requests without a key, or with what is no key, spend budgets of their own, and are
    // refused unread once those are spent.
    for key in [None, Some("nope")] {
        for _ in 0..3 {
            let status = if key.is_some() { 401 } else { 403 };
            assert_error(
                &app.send(Method::GET, "/v3/sessions/", key, None).await,
                status,
                "authentication_failed",
            );
        }
        assert_error(&app.send(Method::GET, "/v3/sessions/", key, None).await, 429, "rate_limited");
    }
    assert_eq!(app.get("/v3/sessions/", &tenant).await.status.as_u16(), 200);
}

/// A session holds a bounded number of feature items, per block and in all; a refusal names
/// the limit and writes nothing.
async fn a_session_holds_a_bounded_number_of_items(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        c.item_limits = handoff_domain::services::ItemLimits { per_block: 2, per_session: 3 }
    })
    .await;
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    let session = app.session(&tenant, &workflow, None).await;
    let path = format!("/v3/session/{session}/decision/");
    let item = |node: &str| json!({"node_id": node, "status": "Approved"});
    let refused = app
        .put(&path, &tenant, json!({"id_verifications": [item("a"), item("b"), item("c")]}))
        .await;
    assert_error(&refused, 400, "invalid_request");
    assert!(refused.body["errors"]["id_verifications"][0].as_str().unwrap().contains("at most 2"));
    let two = app.put(&path, &tenant, json!({"id_verifications": [item("a"), item("b")]})).await;
    assert_eq!(two.status.as_u16(), 200, "{}", two.text);
    let over = app.put(&path, &tenant, json!({"liveness_checks": [item("l1"), item("l2")]})).await;
    assert_error(&over, 400, "invalid_request");
    assert!(
        over.body["errors"]["blocks"][0].as_str().unwrap().contains("at most 3"),
        "{}",
        over.text
    );
    // Replacing a block counts its new items, not its old ones.
    let replaced = app
        .put(
            &path,
            &tenant,
            json!({"id_verifications": [item("a")], "liveness_checks": [item("l1"), item("l2")]}),
        )
        .await;
    assert_eq!(replaced.status.as_u16(), 200, "{}", replaced.text);
    let decision = app.get(&path, &tenant).await.body;
    assert_eq!(decision["id_verifications"].as_array().unwrap().len(), 1);
    assert_eq!(decision["liveness_checks"].as_array().unwrap().len(), 2);
}

/// Heavy requests beyond an application's cap wait for its own to finish; other applications
/// are not held up, and beyond the waiting cap the application is refused.
async fn heavy_requests_queue_behind_their_own_application(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        c.heavy_requests =
            handoff_http::heavy::HeavyLimits { per_application: 1, waiting_per_application: 1 }
    })
    .await;
    let noisy = app.tenant("Noisy").await;
    let quiet = app.tenant("Quiet").await;
    let noisy_session = app.finished_session(&noisy, "user", "user-ana-001").await;
    let quiet_session = app.finished_session(&quiet, "user", "user-ana-002").await;

    // The noisy application's upload holds its one slot while its body is still arriving.
    let upload = crate::support::Upload::start(&app, &noisy, &noisy_session).await;

    let read = |session: String, tenant: crate::support::Tenant| {
        let (client, base) = (app.client.clone(), app.base.clone());
        tokio::spawn(async move {
            client
                .get(format!("{base}/v3/session/{session}/decision/"))
                .header("x-api-key", &tenant.key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    let queued = read(noisy_session.clone(), noisy.clone());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!queued.is_finished(), "the noisy application's read waits");
    // Another application's heavy read is not held up.
    let started = std::time::Instant::now();
    assert_eq!(read(quiet_session, quiet.clone()).await.unwrap(), 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // One waits already: the next is refused at once.
    let refused = app.decision(&noisy, &noisy_session).await;
    assert_error(&refused, 429, "too_many_concurrent_requests");

    // The upload ends; the queued read goes through.
    let answer = upload.finish().await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(queued.await.unwrap(), 200);
    assert_eq!(
        app.decision(&noisy, &noisy_session).await.status.as_u16(),
        200,
        "the slot is free again"
    );
}

/// A large decision is sent in chunks as it is written, and arrives whole; a small one is
/// sent with its length.
async fn a_large_decision_is_streamed_whole(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.tenant("Alpha").await;
    let workflow = app.workflow(&tenant, "user").await;
    let session = app.session(&tenant, &workflow, None).await;
    let path = format!("/v3/session/{session}/decision/");
    let small = app.get_response(&path, &tenant).await;
    assert!(small.headers().get("content-length").is_some());
    let items: Vec<_> = (0..300)
        .map(|i| json!({"node_id": format!("aml-{i}"), "status": "Approved", "note": "n".repeat(1000)}))
        .collect();
    let recorded =
        app.put(&path, &tenant, json!({"aml_screenings": items, "ip_analyses": items})).await;
    assert_eq!(recorded.status.as_u16(), 200);
    assert!(recorded.text.len() > 512 * 1024);
    for path in [path.clone(), format!("/v2/session/{session}/decision/")] {
        let response = app.get_response(&path, &tenant).await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers().get("content-length").is_none(), "{path}: streamed");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: serde_json::Value = response.json().await.unwrap();
        if path.starts_with("/v3") {
            assert_eq!(body["aml_screenings"].as_array().unwrap().len(), 300);
            assert_eq!(body["ip_analyses"][299]["node_id"], "aml-299");
            assert_eq!(body, recorded.body, "the read is the answer of the write");
        } else {
            assert_eq!(body["ip_analysis"]["note"].as_str().unwrap().len(), 1000);
        }
    }
}

per_backend!(
    a_large_decision_is_streamed_whole,
    heavy_requests_queue_behind_their_own_application,
    rate_limits,
    rate_limits_off,
    requests_without_a_valid_key_are_throttled_by_address,
    a_session_holds_a_bounded_number_of_items
);
