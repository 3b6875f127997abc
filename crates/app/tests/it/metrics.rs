//! `/metrics`: off unless turned on; on the API's address (`HANDOFF_METRICS=on`) or on one of
//! its own (`HANDOFF_METRICS_BIND`); Prometheus' text format, read here by a Prometheus text
//! parser; route patterns (`:name` for a parameter) and codes in its labels, never an id or a
//! key.

use handoff::Application;
use handoff::config::MetricsEndpoint;
use handoff_http::rate_limit::RateLimits;
use handoff_testdb::{Backend, TestDatabase};
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;

use crate::support::{TestApp, per_backend, test_config};

pub(crate) fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus' text format")
}

/// The value of the sample `name` whose labels include `labels`, summed over the others.
pub(crate) fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s: &&Sample| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

async fn metrics_count_requests_imports_and_refusals(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.metrics = MetricsEndpoint::WithApi;
        c.rate_limits = Some(RateLimits {
            reads_per_minute: 5,
            writes_per_minute: 1000,
            unauthenticated_per_minute: 60,
        });
    })
    .await;
    let shared = app.shared("user", "user-ana-001").await;
    crate::limits::fresh_window().await;
    let imported = app.redeem(&shared, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201);
    let again = app.redeem(&shared, json!({})).await;
    assert_eq!(again.status.as_u16(), 403);
    let decision = format!("/v3/session/{}/decision/", shared.session);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.get(&decision, &shared.source).await.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);

    let response = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let scrape = parse(&text);
    let route = "/v3/session/:session_id/decision/";
    assert_eq!(
        value(
            &scrape,
            "handoff_http_requests_total",
            &[("route", route), ("method", "GET"), ("status", "200")]
        ),
        5.0,
        "{text}"
    );
    assert_eq!(
        value(&scrape, "handoff_http_requests_total", &[("route", route), ("status", "429")]),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "handoff_http_request_duration_seconds_count",
            &[("route", route), ("method", "GET")]
        ),
        6.0
    );
    assert_eq!(value(&scrape, "handoff_imports_total", &[("outcome", "imported")]), 1.0);
    assert_eq!(value(&scrape, "handoff_imports_total", &[("outcome", "already_imported")]), 1.0);
    assert_eq!(value(&scrape, "handoff_shares_total", &[]), 1.0);
    assert_eq!(value(&scrape, "handoff_rate_limited_total", &[("budget", "read")]), 1.0);
    let open = value(&scrape, "handoff_db_connections", &[("state", "in_use")])
        + value(&scrape, "handoff_db_connections", &[("state", "idle")]);
    assert!(open >= 1.0, "{text}");
    assert_eq!(value(&scrape, "handoff_webhook_backlog", &[("measure", "deliveries")]), 0.0);
    for secret in [
        &shared.session,
        &shared.source.id,
        &shared.receiver.id,
        &shared.source.key,
        &shared.token,
        &shared.workflow,
    ] {
        assert!(!text.contains(secret.as_str()), "{secret} in the metrics");
    }
}

/// Off by default (the path is unknown), and with an address of their own, served only there.
async fn metrics_are_off_by_default_or_served_apart(backend: Backend) {
    let off = TestApp::spawn(backend).await;
    let answer = off.send(reqwest::Method::GET, "/metrics/", None, None).await;
    assert_eq!(answer.status.as_u16(), 404);
    assert_eq!(answer.body["code"], "not_found");

    let db = TestDatabase::create(backend).await;
    let mut config = test_config(db.url());
    config.metrics = MetricsEndpoint::Bind("127.0.0.1:0".into());
    let app = Application::build(config).await.unwrap();
    let (port, metrics_port) = (app.port(), app.metrics_port().unwrap());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let api = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
    assert_eq!(api.status().as_u16(), 404, "not on the API's address");
    let _ = client.get(format!("http://127.0.0.1:{port}/health/")).send().await.unwrap();
    let apart =
        client.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
    assert_eq!(apart.status().as_u16(), 200);
    let scrape = parse(&apart.text().await.unwrap());
    assert_eq!(
        value(&scrape, "handoff_http_requests_total", &[("route", "/health/"), ("status", "200")]),
        1.0
    );
}

/// Webhook deliveries are counted by state: one to a receiver that is down stays pending.
async fn metrics_count_webhook_deliveries_by_state(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.metrics = MetricsEndpoint::WithApi;
        c.webhooks.allow_private = true;
    })
    .await;
    let tenant = app.tenant("Acme").await;
    // Nothing listens on port 9 of loopback: every attempt fails.
    let created = app
        .post(
            "/v3/webhook/destinations/",
            &tenant,
            json!({"url": "http://127.0.0.1:9/hook", "subscribed_events": ["status.updated"]}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let workflow = app.workflow(&tenant, "user").await;
    app.session(&tenant, &workflow, None).await;
    let scrape = || async {
        let text = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        parse(&text)
    };
    let mut pending = 0.0;
    for _ in 0..100 {
        pending = value(&scrape().await, "handoff_webhook_deliveries", &[("state", "pending")]);
        if pending > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 1.0, "one delivery, waiting for its retry");
    let scraped = scrape().await;
    assert_eq!(value(&scraped, "handoff_webhook_deliveries", &[("state", "delivered")]), 0.0);
    assert_eq!(value(&scraped, "handoff_webhook_deliveries", &[("state", "failed")]), 0.0);
}

per_backend!(
    metrics_count_webhook_deliveries_by_state,
    metrics_count_requests_imports_and_refusals,
    metrics_are_off_by_default_or_served_apart
);
