//! Webhooks end to end: destinations managed over the API, events written with their changes
//! and delivered to a receiver written as Didit's integrators write theirs
//! (`scripts/didit_webhook_receiver.py`), which verifies all three signatures of every
//! delivery; retries after a 500 and after a timeout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, Tenant, TestApp, assert_error, on_both_backends, per_backend};
use handoff_testdb::Backend;

/// The Python receiver, killed on drop.
pub(crate) struct Receiver {
    child: Child,
    url: String,
    secret_file: std::path::PathBuf,
    record_file: std::path::PathBuf,
}

impl Receiver {
    pub(crate) fn start(plan: &str) -> Receiver {
        let dir = std::env::temp_dir().join(format!("handoff-hooks-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let (secret_file, record_file) = (dir.join("secret"), dir.join("deliveries.jsonl"));
        std::fs::write(&secret_file, "not yet").unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/didit_webhook_receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&secret_file)
            .arg(&record_file)
            .arg(plan)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the receiver");
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
        Receiver {
            child,
            url: format!("http://127.0.0.1:{}/didit/webhook", port.trim()),
            secret_file,
            record_file,
        }
    }

    fn trust(&self, secret: &str) {
        std::fs::write(&self.secret_file, secret).unwrap();
    }

    /// Every delivery so far: each whole line (the receiver may be writing the last one).
    fn deliveries(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.record_file).unwrap_or_default();
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    /// Waits until `n` deliveries arrived (at most 20 s).
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let deliveries = self.deliveries();
            if deliveries.len() >= n {
                return deliveries;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} of {n} deliveries: {deliveries:?}",
                deliveries.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A destination of `tenant` to `receiver` for `events`; trusts its secret.
pub(crate) async fn subscribe(
    app: &TestApp, tenant: &Tenant, receiver: &Receiver, events: &[&str],
) -> Value {
    let created = app
        .post(
            "/v3/webhook/destinations/",
            tenant,
            json!({"label": "Didit handler", "url": receiver.url, "subscribed_events": events}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    receiver.trust(created.body["secret_shared_key"].as_str().unwrap());
    created.body
}

const ALL: [&str; 6] = [
    "status.updated",
    "data.updated",
    "session.imported",
    "share.created",
    "share.redeemed",
    "share.revoked",
];

/// A server that may deliver to the local receiver (`http`, loopback).
async fn with_local_receivers(
    backend: Backend, adjust: impl FnOnce(&mut handoff::Config),
) -> TestApp {
    TestApp::spawn_with(backend, |config| {
        config.webhooks.allow_private = true;
        adjust(config);
    })
    .await
}

async fn deliveries_verify_as_didits_handlers_verify_them(backend: Backend) {
    let app = with_local_receivers(backend, |_| {}).await;
    let source_hook = Receiver::start("");
    let receiver_hook = Receiver::start("");
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    subscribe(&app, &source, &source_hook, &ALL).await;
    subscribe(&app, &receiver, &receiver_hook, &ALL).await;

    // A session with non-ASCII vendor_data, finished with results that hold floats.
    let workflow = app.workflow(&source, "user").await;
    let vendor_data = "José Müller-日本-01";
    let session = app.session(&source, &workflow, Some(vendor_data)).await;
    let recorded = app
        .put(
            &format!("/v3/session/{session}/decision/"),
            &source,
            json!({"status": "Approved", "id_verifications": [{"node_id": "n-1", "status": "Approved",
                "first_name": "José", "score": 98.0, "match": 0.97, "tiny": 0.00001, "age": 31}]}),
        )
        .await;
    assert_eq!(recorded.status.as_u16(), 200, "{}", recorded.text);
    let token = app.share(&source, &session, &receiver).await;
    let receiver_workflow = app.workflow(&receiver, "user").await;
    let clone = app.import(&receiver, &token, &receiver_workflow, json!({})).await;
    assert_eq!(clone.status.as_u16(), 201);
    let clone_id = clone.body["session_id"].as_str().unwrap();

    // The source's: created, Approved, shared, redeemed.
    let sent = source_hook.wait_for(4).await;
    for delivery in &sent {
        assert_eq!(
            delivery["verified"],
            json!({"raw": true, "v2": true, "simple": true}),
            "{delivery}"
        );
        let headers = &delivery["headers"];
        assert!(headers["user-agent"].as_str().unwrap().starts_with("handoff-webhooks/"));
        assert_eq!(
            headers["x-timestamp"].as_str().unwrap(),
            delivery["body"]["timestamp"].to_string()
        );
        assert!(delivery["body"]["created_at"].is_i64());
    }
    // Deliveries go out concurrently: in any order (Didit promises none either).
    let bodies: Vec<&Value> = sent.iter().map(|d| &d["body"]).collect();
    let mut types: Vec<&str> = bodies.iter().map(|b| b["webhook_type"].as_str().unwrap()).collect();
    types.sort_unstable();
    assert_eq!(types, ["share.created", "share.redeemed", "status.updated", "status.updated"]);
    let find = |webhook_type: &str, status: Option<&str>| -> &Value {
        bodies
            .iter()
            .find(|b| b["webhook_type"] == webhook_type && status.is_none_or(|s| b["status"] == s))
            .copied()
            .unwrap_or_else(|| panic!("no {webhook_type} {status:?}"))
    };
    let created = find("status.updated", Some("Not Started"));
    assert!(created.get("decision").is_none());
    let approved = find("status.updated", Some("Approved"));
    assert_eq!(approved["vendor_data"], vendor_data);
    assert_eq!(approved["session_id"], json!(session));
    assert_eq!(approved["decision"]["status"], "Approved");
    assert_eq!(approved["decision"]["id_verifications"][0]["score"], json!(98.0));
    let shared = find("share.created", None);
    let redeemed = find("share.redeemed", None);
    assert_eq!(redeemed["application_id"], json!(receiver.id));
    assert_eq!(shared["for_application_id"], json!(receiver.id));
    assert_eq!(redeemed["jti"], shared["jti"]);
    let redeemed = serde_json::to_string(redeemed).unwrap();
    assert!(!redeemed.contains(clone_id), "nothing of the receiver's data: {redeemed}");
    let ids: std::collections::HashSet<&str> =
        bodies.iter().map(|b| b["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "one event_id per event");

    // The receiver's: the clone's status and the import.
    let got = receiver_hook.wait_for(2).await;
    let mut types: Vec<&str> =
        got.iter().map(|d| d["body"]["webhook_type"].as_str().unwrap()).collect();
    types.sort_unstable();
    assert_eq!(types, ["session.imported", "status.updated"]);
    for delivery in &got {
        assert_eq!(delivery["verified"], json!({"raw": true, "v2": true, "simple": true}));
        assert_eq!(delivery["body"]["session_id"], json!(clone_id));
        assert_eq!(delivery["body"]["shared_from_session"], json!(session));
        assert_eq!(delivery["body"]["status"], "In Review");
    }
    let status = got.iter().find(|d| d["body"]["webhook_type"] == "status.updated").unwrap();
    assert_eq!(status["body"]["decision"]["status"], "In Review");
}

per_backend!(deliveries_verify_as_didits_handlers_verify_them);

async fn a_failed_attempt_is_retried_until_a_2xx(backend: Backend) {
    let app = with_local_receivers(backend, |config| {
        config.webhooks.timeout = Duration::from_secs(1);
    })
    .await;
    // A 500, then an answer too slow for the timeout, then 200.
    let hook = Receiver::start("500,sleep:3");
    let tenant = app.tenant("Acme").await;
    let destination = subscribe(&app, &tenant, &hook, &["status.updated"]).await;
    let workflow = app.workflow(&tenant, "user").await;
    app.session(&tenant, &workflow, None).await;
    let sent = hook.wait_for(3).await;
    assert_eq!(
        sent.iter().map(|d| d["answered"].as_str().unwrap()).collect::<Vec<_>>(),
        ["500", "sleep:3", "200"]
    );
    let event = &sent[0]["body"]["event_id"];
    assert!(sent.iter().all(|d| &d["body"]["event_id"] == event), "one event, three attempts");
    // The deliveries say so.
    let path =
        format!("/v3/webhook/destinations/{}/deliveries/", destination["id"].as_str().unwrap());
    let started = Instant::now();
    let delivery = loop {
        let listed = app.get(&path, &tenant).await;
        let delivery = listed.body[0].clone();
        if delivery["state"] == "delivered" || started.elapsed() > Duration::from_secs(10) {
            break delivery;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery["state"], "delivered", "{delivery}");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["last_status_code"], 200);
    assert_eq!(delivery["event_id"], *event);

    // A resend sends it once more, the same event.
    let resent = app
        .post(
            &format!("{path}{}/resend/", delivery["delivery_id"].as_str().unwrap()),
            &tenant,
            json!({}),
        )
        .await;
    assert_eq!(resent.status.as_u16(), 202, "{}", resent.text);
    let again = hook.wait_for(4).await;
    assert_eq!(again[3]["body"]["event_id"], *event);
}

per_backend!(a_failed_attempt_is_retried_until_a_2xx);

/// A delivery the address policy refuses (the setting was turned off since the destination
/// was made) fails at its first attempt instead of staying pending to retry: an address written
/// in the URL and a name that resolves only inward alike.
async fn a_delivery_the_address_policy_refuses_fails_at_once(backend: Backend) {
    let app = with_local_receivers(backend, |config| config.webhook_worker = false).await;
    let tenant = app.tenant("Acme").await;
    let mut paths = Vec::new();
    for url in ["https://127.0.0.1:1/hook", "https://localhost:1/hook"] {
        let made = app
            .post(
                "/v3/webhook/destinations/",
                &tenant,
                json!({"url": url, "subscribed_events": ["status.updated"]}),
            )
            .await;
        assert_eq!(made.status.as_u16(), 201, "{url}: {}", made.text);
        paths.push(format!(
            "/v3/webhook/destinations/{}/deliveries/",
            made.body["id"].as_str().unwrap()
        ));
    }
    app.finished_session(&tenant, "user", "refused-01").await;
    // A server with the default policy, its worker on, delivers them.
    let worker =
        handoff::Application::build(crate::support::test_config(app.db.url())).await.unwrap();
    tokio::spawn(worker.run_until_stopped());
    for path in &paths {
        let started = Instant::now();
        let delivery = loop {
            let listed = app.get(path, &tenant).await;
            let delivery = listed.body[0].clone();
            let settled = delivery["state"].as_str().is_some_and(|state| state != "pending");
            if settled || started.elapsed() > Duration::from_secs(10) {
                break delivery;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(delivery["state"], "failed", "{path}: {delivery}");
        assert_eq!(delivery["attempts"], 1, "{delivery}");
        assert_eq!(delivery["next_attempt_at"], Value::Null, "{delivery}");
        assert!(
            delivery["last_error"].as_str().is_some_and(|e| e.contains("a webhook may be sent to")),
            "{delivery}"
        );
    }
}

per_backend!(a_delivery_the_address_policy_refuses_fails_at_once);

on_both_backends!(an_inward_address_is_refused_when_the_destination_is_made);
async fn an_inward_address_is_refused_when_the_destination_is_made(app: TestApp) {
    let tenant = app.tenant("Acme").await;
    for url in [
        "https://[::127.0.0.1]/hook",
        "https://[64:ff9b::a9fe:a9fe]/hook",
        "https://[2002:a00:1::]/hook",
        "https://10.0.0.1/hook",
    ] {
        let made = app.post("/v3/webhook/destinations/", &tenant, json!({"url": url})).await;
        assert_error(&made, 400, "invalid_request");
        assert!(made.body["errors"]["url"].is_array(), "{url}: {}", made.text);
        assert!(
            made.text.contains("HANDOFF_WEBHOOK_ALLOW_PRIVATE"),
            "the refusal names the setting: {}",
            made.text
        );
    }
    let http = app
        .post("/v3/webhook/destinations/", &tenant, json!({"url": "http://127.0.0.1:9000/hook"}))
        .await;
    assert_error(&http, 400, "invalid_request");
    assert!(http.text.contains("HANDOFF_WEBHOOK_ALLOW_PRIVATE"), "{}", http.text);
    let listed = app.get("/v3/webhook/destinations/", &tenant).await;
    assert_eq!(listed.body["count"], 0, "{}", listed.text);
    // Each event type once, in the order of the docs, however often and in whatever order
    // it is named.
    let made = app
        .post(
            "/v3/webhook/destinations/",
            &tenant,
            json!({"url": "https://hooks.example.com/x", "subscribed_events":
                ["share.revoked", "status.updated", "share.revoked", "data.updated", "status.updated"]}),
        )
        .await;
    assert_eq!(made.status.as_u16(), 201, "{}", made.text);
    assert_eq!(
        made.body["subscribed_events"],
        json!(["status.updated", "data.updated", "share.revoked"])
    );
    let id = made.body["id"].as_str().unwrap();
    let read = app.get(&format!("/v3/webhook/destinations/{id}/"), &tenant).await;
    assert_eq!(read.body["subscribed_events"], made.body["subscribed_events"]);
    // A destination made for Didit: every event type Didit documents, and its older versions,
    // are kept as given.
    let didit = [
        "status.updated",
        "data.updated",
        "user.status.updated",
        "user.data.updated",
        "business.status.updated",
        "business.data.updated",
        "activity.created",
        "transaction.created",
        "transaction.status.updated",
    ];
    for version in ["v1", "v2", "v3"] {
        let made = app
            .post(
                "/v3/webhook/destinations/",
                &tenant,
                json!({"url": format!("https://hooks.example.com/{version}"),
                    "webhook_version": version, "subscribed_events": didit}),
            )
            .await;
        assert_eq!(made.status.as_u16(), 201, "{}", made.text);
        assert_eq!(made.body["webhook_version"], version);
        assert_eq!(made.body["subscribed_events"], json!(didit));
    }
}

on_both_backends!(destinations_are_managed_in_didits_shape);
async fn destinations_are_managed_in_didits_shape(app: TestApp) {
    let tenant = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let created = app
        .post(
            "/v3/webhook/destinations/",
            &tenant,
            json!({"url": "https://hooks.example.com/didit"}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    // Didit names the id `uuid`; `id` is the same.
    let id = created.body["uuid"].as_str().unwrap().to_owned();
    assert_eq!(created.body["id"], id.as_str());
    let secret = created.body["secret_shared_key"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    assert_eq!(created.body["subscribed_events"], json!(["status.updated", "data.updated"]));
    assert_eq!(created.body["webhook_version"], "v3");
    assert_eq!(created.body["enabled"], true);
    let path = format!("/v3/webhook/destinations/{id}/");
    let read = app.get(&path, &tenant).await;
    assert!(read.body.get("secret_shared_key").is_none(), "shown once");
    assert!(!read.text.contains(&secret));
    let listed = app.get("/v3/webhook/destinations/", &tenant).await;
    assert_eq!(listed.body["count"], 1);

    let patched = app.patch(&path, &tenant, json!({"enabled": false, "label": "Paused"})).await;
    assert_eq!(patched.body["enabled"], false);
    assert_eq!(patched.body["label"], "Paused");
    assert_eq!(patched.body["url"], "https://hooks.example.com/didit");

    let rotated = app.post(&format!("{path}rotate-secret/"), &tenant, json!({})).await;
    assert_eq!(rotated.status.as_u16(), 200);
    let new_secret = rotated.body["secret_shared_key"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(rotated.body["previous_secret_valid_until"].is_string());

    // Another application's destination does not exist for it.
    assert_error(&app.get(&path, &other).await, 404, "webhook_destination_not_found");
    assert_error(&app.delete(&path, &other).await, 404, "webhook_destination_not_found");
    // Bad input answers 400 naming the field.
    for (body, field) in [
        (json!({"url": "http://hooks.example.com/x"}), "url"),
        (json!({"url": "ftp://x"}), "url"),
        (json!({}), "url"),
        (
            json!({"url": "https://x.example", "subscribed_events": ["user.created"]}),
            "subscribed_events",
        ),
        (json!({"url": "https://x.example", "subscribed_events": []}), "subscribed_events"),
        (json!({"url": "https://x.example", "webhook_version": "v4"}), "webhook_version"),
        (json!({"url": "https://x.example", "label": ""}), "label"),
    ] {
        let refused = app.post("/v3/webhook/destinations/", &tenant, body.clone()).await;
        assert_error(&refused, 400, "invalid_request");
        assert!(refused.body["errors"].get(field).is_some(), "{body}: {}", refused.text);
    }
    let deleted = app.delete(&path, &tenant).await;
    assert_eq!(deleted.status.as_u16(), 204);
    assert_error(&app.get(&path, &tenant).await, 404, "webhook_destination_not_found");
}

/// The environment of a server process that delivers to local receivers, waiting `timeout`
/// seconds for an answer and retrying after 1 s.
fn process_env(worker: bool, timeout: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("HANDOFF_KEY_ENCRYPTION_KEY", crate::support::TEST_KEK),
        ("HANDOFF_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("HANDOFF_WEBHOOK_RETRY_SCHEDULE", "1,1,1"),
        ("HANDOFF_WEBHOOK_TIMEOUT_SECONDS", timeout),
        ("HANDOFF_WEBHOOK_WORKER", if worker { "true" } else { "false" }),
        ("HANDOFF_RATE_LIMIT", "off"),
    ]
}

/// Events committed by a server that dies before it delivers them are delivered by the next
/// one, exactly those; a delivery cut short by a SIGKILL is sent again after its lease.
async fn a_killed_server_loses_no_event(backend: Backend) {
    use crate::processes::Server;
    let db = handoff_testdb::TestDatabase::create(backend).await;
    let url = db.url().to_owned();
    // A server without a worker commits the changes, then is killed.
    let mut quiet = Server::start_with(&url, &process_env(false, "1"));
    quiet.wait_until_healthy().await;
    let app = TestApp::attach(&quiet.base, db).await;
    let hook = Receiver::start("sleep:4");
    let tenant = app.tenant("Acme").await;
    let destination = subscribe(&app, &tenant, &hook, &["status.updated"]).await;
    let workflow = app.workflow(&tenant, "user").await;
    let mut sessions = Vec::new();
    for i in 0..5 {
        sessions.push(app.session(&tenant, &workflow, Some(&format!("user-{i}"))).await);
    }
    quiet.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hook.deliveries().is_empty(), "nothing was delivered yet");

    // A server with a worker starts: the first delivery it sends hangs (the receiver sleeps);
    // once it has recorded the other four as delivered, it is killed.
    let mut first = Server::start_with(&url, &process_env(true, "1"));
    first.wait_until_healthy().await;
    let listed = format!(
        "{}/v3/webhook/destinations/{}/deliveries/",
        first.base,
        destination["id"].as_str().unwrap()
    );
    let started = Instant::now();
    loop {
        let deliveries: Vec<Value> = reqwest::Client::new()
            .get(&listed)
            .header("x-api-key", &tenant.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if deliveries.iter().filter(|d| d["state"] == "delivered").count() == 4 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{deliveries:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();
    // The next server delivers everything, the cut-short one again after its 6 s lease.
    let mut second = Server::start_with(&url, &process_env(true, "1"));
    second.wait_until_healthy().await;
    let started = Instant::now();
    let delivered = loop {
        let deliveries = hook.deliveries();
        let sessions_seen: std::collections::HashSet<String> = deliveries
            .iter()
            .filter(|d| d["answered"] == "200")
            .map(|d| d["body"]["session_id"].as_str().unwrap().to_owned())
            .collect();
        if sessions_seen.len() == sessions.len() || started.elapsed() > Duration::from_secs(30) {
            break deliveries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let events: Vec<&str> =
        delivered.iter().map(|d| d["body"]["event_id"].as_str().unwrap()).collect();
    let unique: std::collections::HashSet<&str> = events.iter().copied().collect();
    assert_eq!(unique.len(), sessions.len(), "exactly the committed events: {events:?}");
    for session in &sessions {
        assert!(
            delivered
                .iter()
                .any(|d| d["body"]["session_id"] == json!(session) && d["answered"] == "200"),
            "{session} delivered"
        );
    }
    // Duplicates only where the crash forced them: the one cut short.
    assert!(events.len() - unique.len() <= 1, "{events:?}");
    second.kill();
}

per_backend!(a_killed_server_loses_no_event);

/// Two servers on one PostgreSQL database deliver 1,000 events, each once.
#[tokio::test]
async fn two_servers_deliver_a_thousand_events_once() {
    use crate::processes::Server;
    if handoff_testdb::skip(Backend::Postgres) {
        return;
    }
    let db = handoff_testdb::TestDatabase::create(Backend::Postgres).await;
    let url = db.url().to_owned();
    // A receiver slowed by 64 concurrent deliveries must not be taken for one that is down.
    let mut a = Server::start_with(&url, &process_env(true, "10"));
    let mut b = Server::start_with(&url, &process_env(true, "10"));
    a.wait_until_healthy().await;
    b.wait_until_healthy().await;
    let app = std::sync::Arc::new(TestApp::attach(&a.base, db).await);
    let hook = Receiver::start("");
    let tenant = app.tenant("Acme").await;
    subscribe(&app, &tenant, &hook, &["status.updated"]).await;
    let workflow = app.workflow(&tenant, "user").await;
    let bases = std::sync::Arc::new([a.base.clone(), b.base.clone()]);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (bases, key, workflow) = (bases.clone(), tenant.key.clone(), workflow.clone());
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..125 {
                let response = client
                    .post(format!("{}/v3/session/", bases[(worker + i) % 2]))
                    .header("x-api-key", &key)
                    .json(&json!({"workflow_id": workflow}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 201);
            }
        });
    }
    tasks.join_all().await;
    let started = Instant::now();
    let delivered = loop {
        let deliveries = hook.deliveries();
        if deliveries.len() >= 1000 || started.elapsed() > Duration::from_secs(60) {
            // A moment more, for any duplicate to show.
            tokio::time::sleep(Duration::from_millis(500)).await;
            break hook.deliveries();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let unique: std::collections::HashSet<&str> =
        delivered.iter().map(|d| d["body"]["event_id"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 1000, "none lost");
    assert_eq!(delivered.len(), 1000, "none twice");
    assert!(delivered.iter().all(|d| d["verified"]["raw"] == true));
    a.kill();
    b.kill();
}

on_both_backends!(only_subscribed_events_are_written);
/// An event is written only when a destination of its application is subscribed to its type:
/// applications without webhooks pay one indexed lookup, not an outbox row.
async fn only_subscribed_events_are_written(app: TestApp) {
    let events = || support::count(&app.store, "SELECT COUNT(*) AS n FROM webhook_events");
    let shared = app.shared("user", "user-ana-001").await;
    assert_eq!(events().await, 0, "no destination, no event");
    let subscribed = app
        .post(
            "/v3/webhook/destinations/",
            &shared.source,
            json!({"url": "https://hooks.example.com/x", "subscribed_events": ["share.redeemed"]}),
        )
        .await;
    assert_eq!(subscribed.status.as_u16(), 201);
    let workflow = app.workflow(&shared.source, "user").await;
    app.session(&shared.source, &workflow, None).await;
    assert_eq!(events().await, 0, "status.updated is not subscribed");
    let imported = app.redeem(&shared, json!({})).await;
    assert_eq!(imported.status.as_u16(), 201);
    assert_eq!(events().await, 1, "share.redeemed, to the source only");
}

/// A receiver that accepts connections and never answers; counts them.
fn silent_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    (url, accepted)
}

async fn a_destination_that_is_down_slows_neither_imports_nor_other_destinations(backend: Backend) {
    // Each attempt waits a minute for an answer that never comes.
    let app = with_local_receivers(backend, |config| {
        config.webhooks.timeout = Duration::from_secs(60);
    })
    .await;
    let (url, accepted) = silent_receiver();
    let shared = app.shared("user", "down-1").await;
    let events = ["status.updated", "session.imported"];
    let created = app
        .post(
            "/v3/webhook/destinations/",
            &shared.receiver,
            json!({"url": url, "subscribed_events": events}),
        )
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let answering = Receiver::start("");
    subscribe(&app, &shared.receiver, &answering, &events).await;
    let first = app.redeem(&shared, json!({})).await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.text);
    // The worker is now waiting on the silent receiver.
    let started = Instant::now();
    while accepted.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "no attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Imports go on, each answered in its own time, long before any attempt could end.
    let started = Instant::now();
    for i in 0..10 {
        let session = app.finished_session(&shared.source, "user", &format!("down-{i}")).await;
        let token = app.share(&shared.source, &session, &shared.receiver).await;
        let imported = app.import(&shared.receiver, &token, &shared.workflow, json!({})).await;
        assert_eq!(imported.status.as_u16(), 201, "{}", imported.text);
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "ten imports took {:?} while the destination was down",
        started.elapsed()
    );
    // The answering destination gets all 22 events (a status.updated and a session.imported
    // per import) while the silent one holds at most 16 of the worker's deliveries.
    let delivered = answering.wait_for(22).await;
    assert!(delivered.iter().all(|d| d["verified"]["raw"] == true));
    let held = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=8).contains(&held), "{held} deliveries to the silent destination");
}

per_backend!(a_destination_that_is_down_slows_neither_imports_nor_other_destinations);

/// An entity's status change is delivered as Didit's `user.status.updated` /
/// `business.status.updated`, flat, with `previous_status`, the entity's `uuid`, the change's
/// `reason` and its `actor`; a profile change as `user.data.updated` with `changed_fields` and
/// `changes`.
async fn entity_changes_are_delivered(backend: Backend) {
    let app = with_local_receivers(backend, |_| {}).await;
    let hook = Receiver::start("");
    let tenant = app.tenant("Acme").await;
    subscribe(
        &app,
        &tenant,
        &hook,
        &["user.status.updated", "user.data.updated", "business.status.updated"],
    )
    .await;
    let user_wf = app.workflow(&tenant, "user").await;
    let business_wf = app.workflow(&tenant, "business").await;
    app.session(&tenant, &user_wf, Some("Ana")).await;
    app.session(&tenant, &business_wf, Some("acme-co")).await;
    for (path, body) in [
        ("/v3/users/ana/update-status/", json!({"status": "FLAGGED", "reason": "chargeback"})),
        ("/v3/users/ana/update-status/", json!({"status": "FLAGGED", "reason": "again"})),
        ("/v3/businesses/ACME-CO/update-status/", json!({"status": "BLOCKED"})),
        ("/v3/users/ana/", json!({"display_name": "Ana G.", "metadata": {"tier": 2}})),
        ("/v3/users/ana/", json!({"display_name": "Ana G."})),
    ] {
        let answer = app.patch(path, &tenant, body).await;
        assert_eq!(answer.status.as_u16(), 200, "{path}: {}", answer.text);
    }
    // Three changes (the repeated ones change nothing); the sessions' events are not subscribed.
    let sent = hook.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = if hook.deliveries().len() > sent.len() { hook.deliveries() } else { sent };
    assert_eq!(sent.len(), 3, "{sent:?}");
    let mut bodies: Vec<Value> = sent.iter().map(|d| d["body"].clone()).collect();
    bodies.sort_by_key(|b| b["webhook_type"].as_str().unwrap().to_owned());
    for delivery in &sent {
        assert_eq!(
            delivery["verified"],
            json!({"raw": true, "v2": true, "simple": true}),
            "{delivery}"
        );
    }
    let ana = app.get("/v3/users/ana/", &tenant).await;
    let acme = app.get("/v3/businesses/acme-co/", &tenant).await;
    let (business, data, status) = (&bodies[0], &bodies[1], &bodies[2]);
    assert_eq!(business["webhook_type"], "business.status.updated");
    assert_eq!(business["vendor_data"], "acme-co");
    assert_eq!(business["uuid"], acme.body["didit_internal_id"], "{business} {}", acme.text);
    assert_eq!(business["status"], "BLOCKED");
    assert_eq!(business["previous_status"], "ACTIVE");
    assert!(business.get("reason").is_none(), "none given: {business}");
    assert_eq!(data["webhook_type"], "user.data.updated");
    assert_eq!(data["changed_fields"], json!(["display_name", "metadata"]));
    assert_eq!(
        data["changes"],
        json!({"display_name": {"previous": null, "current": "Ana G."},
            "metadata": {"previous": null, "current": {"tier": 2}}})
    );
    assert_eq!(status["webhook_type"], "user.status.updated");
    assert_eq!(status["vendor_data"], "Ana");
    assert_eq!(status["uuid"], ana.body["didit_internal_id"], "{status} {}", ana.text);
    assert_eq!(status["status"], "FLAGGED");
    assert_eq!(status["reason"], "chargeback");
    for body in &bodies {
        assert!(body.get("session_id").is_none(), "{body}");
        let prefix = tenant.key[3..].split('_').next().unwrap();
        assert_eq!(body["actor"], format!("api-key:{prefix}"), "{body}");
    }
}

per_backend!(entity_changes_are_delivered);

/// Results recorded over a business session's blocks: `data.updated` names the replaced blocks
/// in `changed_fields`, and a business session's events carry `business_session_id`.
async fn data_updated_names_the_blocks_it_replaced(backend: Backend) {
    let app = with_local_receivers(backend, |_| {}).await;
    let hook = Receiver::start("");
    let tenant = app.tenant("Acme").await;
    let session = app.finished_session(&tenant, "business", "acme-co").await;
    subscribe(&app, &tenant, &hook, &["data.updated"]).await;
    let recorded = app
        .put(
            &format!("/v3/session/{session}/decision/"),
            &tenant,
            json!({"aml_screenings": [{"node_id": "aml-2", "status": "Approved"}]}),
        )
        .await;
    assert_eq!(recorded.status.as_u16(), 200, "{}", recorded.text);
    let sent = hook.wait_for(1).await;
    let body = &sent[0]["body"];
    assert_eq!(body["webhook_type"], "data.updated");
    assert_eq!(body["changed_fields"], json!(["aml_screenings"]), "{body}");
    assert_eq!(body["session_kind"], "business");
    assert_eq!(body["business_session_id"], json!(session));
    assert_eq!(body["session_id"], json!(session));
}

per_backend!(data_updated_names_the_blocks_it_replaced);
