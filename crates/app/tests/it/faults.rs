//! Faults: a server killed with SIGKILL in the middle of a stream of imports, and database
//! connections killed under load. Afterwards every clone is complete, no source is imported
//! twice, and handoff recovers without a restart.

use std::sync::Arc;
use std::time::Duration;

use handoff_store::Store;
use handoff_testdb::{Backend, TestDatabase};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::processes::Server;
use handoff_domain::{FeatureBlock, SessionKind};

use crate::support::{Tenant, TestApp, per_backend, rows};

/// Every clone of `receiver` has exactly as many rows of each related kind as its source, and
/// no source was cloned twice. Returns the number of clones.
async fn assert_clones_complete(store: &Store, receiver: &Tenant) -> usize {
    let clones = rows(
        store,
        "SELECT id, shared_from_session FROM sessions WHERE shared_from_session IS NOT NULL",
    )
    .await;
    let mut sources = std::collections::HashSet::new();
    for clone in &clones {
        let id: uuid::Uuid = clone.try_get("", "id").unwrap();
        let source: uuid::Uuid = clone.try_get("", "shared_from_session").unwrap();
        assert!(sources.insert(source), "source {source} imported twice");
        for table in handoff_migrations::BLOCK_TABLES.iter().chain(&["session_logs"]) {
            let count = |session: uuid::Uuid, only_copied: bool| {
                // A clone copies its source's log but for the source's own sharing events.
                let copied = if only_copied && *table == "session_logs" {
                    " AND action NOT IN ('shared', 'imported_by')"
                } else {
                    ""
                };
                let sql = format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE session_id = '{session}'{copied}"
                );
                async move { rows(store, &sql).await[0].try_get::<i64>("", "n").unwrap() }
            };
            let expected = count(source, true).await + i64::from(*table == "session_logs");
            assert_eq!(count(id, false).await, expected, "{table} of clone {id}");
        }
    }
    let _ = receiver;
    clones.len()
}

fn uuid_literal_sql_works(backend: Backend) -> bool {
    // SQLite stores UUIDs as blobs: compare through the store's own reads instead.
    backend == Backend::Postgres
}

/// Sources shared and imported in the crash test.
const TOTAL: i64 = 48;
/// Servers killed with SIGKILL in the middle of the stream, per backend.
const CRASH_ROUNDS: usize = 3;

async fn sigkill_in_the_middle_of_imports(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let mut first = Server::start(db.url());
    first.wait_until_healthy().await;
    let app = Arc::new(TestApp::attach(&first.base, db).await);
    let store = app.store.clone();
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let workflow = app.workflow(&receiver, "user").await;
    let mut tokens = Vec::new();
    for i in 0..TOTAL {
        let session = app.finished_session(&source, "user", &format!("person-{i}")).await;
        tokens.push(app.share(&source, &session, &receiver).await);
    }

    // Rounds of: a server, a stream of imports from 4 clients, and a SIGKILL once a few more
    // have committed.
    let committed = || async {
        rows(&store, "SELECT COUNT(*) AS n FROM sessions WHERE shared_from_session IS NOT NULL")
            .await[0]
            .try_get::<i64>("", "n")
            .unwrap()
    };
    let mut server = first;
    for round in 0..CRASH_ROUNDS {
        if round > 0 {
            server = Server::start(app.db.url());
            server.wait_until_healthy().await;
        }
        let base = server.base.clone();
        let before = committed().await;
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in tokens.chunks(tokens.len() / 4) {
            let (client, base, receiver, workflow, chunk) = (
                app.client.clone(),
                base.clone(),
                receiver.clone(),
                workflow.clone(),
                chunk.to_vec(),
            );
            tasks.spawn(async move {
                for token in chunk {
                    let sent = client
                        .post(format!("{base}/v3/session/import-shared/"))
                        .header("x-api-key", &receiver.key)
                        .json(&json!({"share_token": token, "workflow_id": workflow}))
                        .send()
                        .await;
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
        for _ in 0..2000 {
            if committed().await >= before + 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill();
        tasks.join_all().await;
        eprintln!("crash round {round}: {} clones committed", committed().await);
    }

    // Restart on the same database: what was committed is whole, the rest left no trace.
    let mut second = Server::start(app.db.url());
    second.wait_until_healthy().await;
    if uuid_literal_sql_works(backend) {
        assert_clones_complete(&store, &receiver).await;
    }
    let survivors =
        rows(&store, "SELECT COUNT(*) AS n FROM sessions WHERE shared_from_session IS NOT NULL")
            .await[0]
            .try_get::<i64>("", "n")
            .unwrap();
    eprintln!("clones committed before the kill: {survivors} of {TOTAL}");
    // Every token can still be redeemed exactly once.
    let client = reqwest::Client::new();
    let mut created = 0;
    for token in &tokens {
        let response = client
            .post(format!("{}/v3/session/import-shared/", second.base))
            .header("x-api-key", &receiver.key)
            .json(&json!({"share_token": token, "workflow_id": workflow}))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            201 => created += 1,
            403 => assert_eq!(
                response.json::<serde_json::Value>().await.unwrap()["code"],
                "already_imported"
            ),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(survivors + created, TOTAL, "each source imported once in all");
    assert!(
        survivors > 0 && survivors < TOTAL,
        "the kill fell in the middle of the stream ({survivors} committed)"
    );
    let listed = client
        .get(format!("{}/v3/sessions/?limit=100", second.base))
        .header("x-api-key", &receiver.key)
        .send()
        .await
        .unwrap();
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert_eq!(listed["count"], TOTAL);
    if uuid_literal_sql_works(backend) {
        assert_eq!(assert_clones_complete(&store, &receiver).await as i64, TOTAL);
    } else {
        // SQLite: compare each clone's blocks with its source's through the API.
        let decision = |id: String, key: String| {
            let request = client
                .get(format!("{}/v3/session/{id}/decision/", second.base))
                .header("x-api-key", key);
            async move {
                let answer = request.send().await.unwrap();
                answer.json::<serde_json::Value>().await.unwrap()
            }
        };
        for clone in listed["results"].as_array().unwrap() {
            let id = clone["session_id"].as_str().unwrap();
            let v3 = decision(id.to_owned(), receiver.key.clone()).await;
            let source_id = v3["shared_from_session"].as_str().unwrap();
            let original = decision(source_id.to_owned(), source.key.clone()).await;
            for block in FeatureBlock::for_kind(SessionKind::User).iter().map(|b| b.v3_key()) {
                assert_eq!(v3[block], original[block], "{block} of {id}");
            }
        }
    }
    second.kill();
}

/// PostgreSQL connections killed again and again under load: every answer is JSON, nothing is
/// half-written, and the server recovers on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_connections_killed_under_load_postgres() {
    if handoff_testdb::skip(Backend::Postgres) {
        return;
    }
    let app = Arc::new(TestApp::spawn(Backend::Postgres).await);
    let source = app.tenant("Source").await;
    let receiver = app.tenant("Receiver").await;
    let workflow = app.workflow(&receiver, "user").await;
    let mut tokens = Vec::new();
    for i in 0..16 {
        let session = app.finished_session(&source, "user", &format!("p-{i}")).await;
        tokens.push(app.share(&source, &session, &receiver).await);
    }
    let database = app.db.url().rsplit('/').next().unwrap().to_owned();
    let admin = sea_orm::Database::connect(handoff_testdb::postgres_admin_url()).await.unwrap();
    let killer = tokio::spawn(async move {
        for _ in 0..15 {
            let _ = admin
                .execute_unprepared(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"))
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens.clone() {
        let (app, receiver, workflow) = (app.clone(), receiver.clone(), workflow.clone());
        tasks.spawn(async move {
            let import = app.import(&receiver, &token, &workflow, json!({})).await;
            let read = app.get("/v3/sessions/", &receiver).await;
            (import, read)
        });
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for (import, read) in tasks.join_all().await {
        for answer in [&import, &read] {
            *statuses.entry(answer.status.as_u16()).or_default() += 1;
            assert!(answer.content_type.starts_with("application/json"), "{answer:?}");
            assert!(matches!(answer.status.as_u16(), 200 | 201 | 403 | 500 | 503), "{answer:?}");
            if answer.status.is_server_error() {
                assert!(
                    matches!(
                        answer.body["code"].as_str(),
                        Some("service_unavailable" | "internal_error")
                    ),
                    "{answer:?}"
                );
            }
        }
    }
    killer.await.unwrap();
    eprintln!("answers during the storm: {statuses:?}");
    // Recovery without a restart, and every clone whole.
    let mut recovered = false;
    for _ in 0..50 {
        if app.get("/v3/sessions/", &receiver).await.status.as_u16() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered);
    for token in &tokens {
        let answer = app.import(&receiver, token, &workflow, json!({})).await;
        assert!(matches!(answer.status.as_u16(), 201 | 403), "{answer:?}");
    }
    assert_eq!(assert_clones_complete(&app.store, &receiver).await, 16);
}

per_backend!(sigkill_in_the_middle_of_imports);
