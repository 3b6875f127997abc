//! Retention (an extension, as Didit's retention policy): set by the operator per application,
//! it deletes, on every server without double work, the sessions finished more than its days
//! ago (a session never finished counts from its creation; a clone from its own import), tells
//! subscribed destinations (`session.deleted`), counts in `/metrics`, and deletes nothing else.

use std::time::{Duration, Instant};

use handoff_testdb::{Backend, TestDatabase};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::{Value, json};

use crate::metrics::{parse, value};
use crate::processes::Server;
use crate::support::{TestApp, count, handoff_command, per_backend};
use crate::webhooks::{Receiver, subscribe};

/// Moves a session's creation, and with `log` its log rows, 400 days back.
async fn age(app: &TestApp, session: &str, log: bool) {
    let id = uuid::Uuid::parse_str(session).unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::days(400);
    let db = app.store.connection();
    let mut updates = vec![("sessions", "id", "created_at")];
    if log {
        updates.push(("session_logs", "session_id", "created_at"));
    }
    for (table, key, column) in updates {
        let update = Query::update()
            .table(Alias::new(table))
            .value(Alias::new(column), long_ago)
            .and_where(Expr::col(Alias::new(key)).eq(id))
            .to_owned();
        db.execute(&update).await.unwrap();
    }
}

/// How many of `ids` are still sessions.
async fn remaining(app: &TestApp, ids: &[&str]) -> i64 {
    let mut left = 0;
    for id in ids {
        let id = uuid::Uuid::parse_str(id).unwrap();
        let select = Query::select()
            .expr(Expr::val(1))
            .from(Alias::new("sessions"))
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        if app.store.connection().query_one(&select).await.unwrap().is_some() {
            left += 1;
        }
    }
    left
}

async fn scrape(base: &str) -> prometheus_parse::Scrape {
    let text = reqwest::get(format!("{base}/metrics/")).await.unwrap().text().await.unwrap();
    parse(&text)
}

async fn retention_deletes_what_is_due_and_nothing_else_across_two_servers(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let local_hooks =
        [("HANDOFF_WEBHOOK_ALLOW_PRIVATE", "true"), ("HANDOFF_WEBHOOK_WORKER", "false")];
    let mut setup = Server::start_with(db.url(), &local_hooks);
    setup.wait_until_healthy().await;
    let app = TestApp::attach(&setup.base, db).await;
    let kept = app.tenant("Kept 30 days").await;
    let forever = app.tenant("Kept for ever").await;
    let hook = Receiver::start("");
    subscribe(&app, &kept, &hook, &["session.deleted"]).await;

    let finished_long_ago = app.finished_session(&kept, "user", "user-old-001").await;
    age(&app, &finished_long_ago, true).await;
    let workflow = app.workflow(&kept, "user").await;
    let never_finished = app.session(&kept, &workflow, Some("user-old-002")).await;
    age(&app, &never_finished, true).await;
    // Created long ago, finished now: its finish counts.
    let finished_now = app.finished_session(&kept, "business", "biz-new-001").await;
    age(&app, &finished_now, false).await;
    // Another application's old session; then a clone of it, imported now, whose copied log
    // rows are old: the clone counts from its own import.
    let elsewhere = app.finished_session(&forever, "user", "user-old-003").await;
    age(&app, &elsewhere, true).await;
    let token = app.share(&forever, &elsewhere, &kept).await;
    let clone = app.import(&kept, &token, &workflow, json!({"trust_review": true})).await;
    assert_eq!(clone.status.as_u16(), 201, "{}", clone.text);
    let clone = clone.body["session_id"].as_str().unwrap().to_owned();

    let args = ["applications", "update", "--application", &kept.id, "--retention-days", "30"];
    let (ok, printed, stderr) = handoff_command(app.db.url(), &args, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(printed[0]["retention_days"], 30);

    let sweeping = [
        ("HANDOFF_RETENTION_SWEEP_SECONDS", "1"),
        ("HANDOFF_METRICS", "on"),
        ("HANDOFF_WEBHOOK_ALLOW_PRIVATE", "true"),
    ];
    let mut a = Server::start_with(app.db.url(), &sweeping);
    let mut b = Server::start_with(app.db.url(), &sweeping);
    a.wait_until_healthy().await;
    b.wait_until_healthy().await;
    let due = [finished_long_ago.as_str(), never_finished.as_str()];
    let started = Instant::now();
    while remaining(&app, &due).await > 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "the due sessions are still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both servers sweep again at least once more.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    for id in due {
        let read = app.decision(&kept, id).await;
        assert_eq!(read.status.as_u16(), 404, "{id}: {}", read.text);
    }
    for (tenant, id) in [(&kept, &finished_now), (&kept, &clone), (&forever, &elsewhere)] {
        assert_eq!(app.decision(tenant, id).await.status.as_u16(), 200, "{id} is kept");
    }
    let (scrape_a, scrape_b) = (scrape(&a.base).await, scrape(&b.base).await);
    let deleted = |s: &prometheus_parse::Scrape| {
        value(s, "handoff_retention_total", &[("count", "deleted_sessions")])
    };
    assert_eq!(deleted(&scrape_a) + deleted(&scrape_b), 2.0, "each deleted once, by one server");
    for scraped in [&scrape_a, &scrape_b] {
        assert!(value(scraped, "handoff_retention_total", &[("count", "sweeps")]) >= 2.0);
        assert_eq!(value(scraped, "handoff_retention_total", &[("count", "failed_sweeps")]), 0.0);
    }
    let events = count(
        &app.store,
        "SELECT COUNT(*) AS n FROM webhook_events WHERE webhook_type = 'session.deleted'",
    )
    .await;
    assert_eq!(events, 2, "one event per deleted session");

    // Delivered, signed as every event, telling which session went and why.
    let delivered = hook.wait_for(2).await;
    let mut told: Vec<(String, String)> = delivered
        .iter()
        .map(|d| {
            assert_eq!(d["verified"]["simple"], true, "{d}");
            let body: &Value = &d["body"];
            assert_eq!(body["webhook_type"], "session.deleted");
            assert_eq!(body["reason"], "retention");
            assert!(body["session_number"].is_i64());
            (
                body["session_id"].as_str().unwrap().to_owned(),
                body["vendor_data"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    told.sort();
    let mut expected = vec![
        (finished_long_ago.clone(), "user-old-001".to_owned()),
        (never_finished.clone(), "user-old-002".to_owned()),
    ];
    expected.sort();
    assert_eq!(told, expected);
    a.kill();
    b.kill();
    setup.kill();
}

per_backend!(retention_deletes_what_is_due_and_nothing_else_across_two_servers);

async fn the_operator_sets_and_clears_a_retention(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.tenant("Acme").await;
    let update = |days: &str| {
        let days = format!("--retention-days={days}");
        let args = ["applications", "update", "--application", &tenant.id, &days];
        handoff_command(app.db.url(), &args, &[])
    };
    let (ok, printed, stderr) = update("3650");
    assert!(ok, "{stderr}");
    assert_eq!(
        printed[0],
        json!({"application_id": tenant.id, "require_consent": false, "console_api_keys": false,
               "retention_days": 3650})
    );
    for refused in ["0", "3651", "-1", "thirty", ""] {
        let (ok, printed, stderr) = update(refused);
        assert!(!ok && printed.is_empty(), "{refused:?} refused");
        assert!(stderr.contains("--retention-days"), "{refused:?}: {stderr}");
    }
    let (_, listed, _) = handoff_command(app.db.url(), &["applications", "list"], &[]);
    let listed = listed.iter().find(|a| a["application_id"] == tenant.id.as_str()).unwrap();
    assert_eq!(listed["retention_days"], 3650);
    let (ok, printed, _) = update("unlimited");
    assert!(ok);
    assert_eq!(printed[0]["retention_days"], Value::Null);
}

per_backend!(the_operator_sets_and_clears_a_retention);
