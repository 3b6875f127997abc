//! The import benchmark: seeds realistic sessions from the fixtures on SQLite and PostgreSQL,
//! issues share tokens, and measures in one run, per backend:
//! - in-process imports through the domain service and the store, at 1, 8 and 32 workers;
//! - the limit: the same clone as hand-written SQL in one transaction, at 1 and 8 workers;
//! - HTTP end to end: the server under 32 concurrent connections;
//! - growth: time and SQL statements per import for sources of 10, 100 and 1,000 related rows.
//!
//! Run it with `cargo xtask bench [--quick]`; its last line is one JSON object.

mod limit;
mod seed;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use handoff::{Application, Config, load_keyring};
use handoff_domain::services::{ImportRequest, Services};
use handoff_domain::{Caller, ShareToken, WorkflowId};
use handoff_store::testing::{Backend, TestDatabase};
use handoff_store::{Store, statements_executed};
use handoff_token::HmacShareTokens;
use serde_json::{Value, json};

use crate::seed::{Source, World};

const PUBLIC_URL: &str = "https://verify.example.test";

/// Throughput and latency of one measured batch.
#[derive(Clone, Copy, Debug)]
struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

impl Figures {
    fn from(latencies: &mut [Duration], elapsed: Duration, errors: usize) -> Figures {
        latencies.sort();
        let at = |q: usize| {
            latencies
                .get((latencies.len() * q / 100).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Figures {
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: at(50),
            p99_ms: at(99),
            errors,
        }
    }

    fn json(&self) -> Value {
        json!({"imports_per_s": round(self.per_second), "p50_ms": round(self.p50_ms), "p99_ms": round(self.p99_ms), "errors": self.errors})
    }
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs `work` over `items` with `workers` concurrent tasks; returns the figures.
async fn measure<T, F, Fut>(items: Vec<T>, workers: usize, work: F) -> Figures
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let queue = Arc::new(Mutex::new(items));
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (queue, work) = (queue.clone(), work.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop();
                let Some(item) = next else { break };
                let began = Instant::now();
                if work(item).await {
                    latencies.push(began.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for (l, e) in tasks.join_all().await {
        latencies.extend(l);
        errors += e;
    }
    Figures::from(&mut latencies, started.elapsed(), errors)
}

fn import_request(source: &Source, workflow: WorkflowId) -> ImportRequest {
    ImportRequest {
        share_token: ShareToken::new(source.token.clone()),
        workflow_id: workflow,
        trust_review: false,
        vendor_data: None,
    }
}

async fn in_process(
    services: &Services,
    receiver: &Caller,
    workflow: WorkflowId,
    sources: Vec<Source>,
    workers: usize,
) -> Figures {
    let (services, receiver) = (services.clone(), receiver.clone());
    measure(sources, workers, move |source| {
        let (services, receiver) = (services.clone(), receiver.clone());
        async move {
            services
                .import
                .import(&receiver, import_request(&source, workflow))
                .await
                .is_ok()
        }
    })
    .await
}

async fn over_http(
    port: u16,
    key: &str,
    workflow: WorkflowId,
    sources: Vec<Source>,
    workers: usize,
) -> Figures {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(workers)
        .build()
        .unwrap_or_default();
    let key = key.to_owned();
    measure(sources, workers, move |source| {
        let (client, key) = (client.clone(), key.clone());
        async move {
            let response = client
                .post(format!("http://127.0.0.1:{port}/v3/session/import-shared/"))
                .header("x-api-key", key)
                .json(&json!({"share_token": source.token, "workflow_id": workflow.to_string()}))
                .send()
                .await;
            matches!(response, Ok(r) if r.status().as_u16() == 201)
        }
    })
    .await
}

async fn by_hand(store: &Store, world: &World, sources: Vec<Source>, workers: usize) -> Figures {
    let (store, receiver, workflow) = (
        store.clone(),
        world.receiver.application_id,
        world.receiver_workflow,
    );
    measure(sources, workers, move |source| {
        let store = store.clone();
        async move {
            limit::clone_by_hand(&store, &source, receiver, workflow)
                .await
                .is_ok()
        }
    })
    .await
}

async fn run_backend(backend: Backend, quick: bool) -> Result<Value, String> {
    let n = if quick { 120 } else { 600 };
    let db = TestDatabase::create(backend).await;
    let config = Config {
        bind: "127.0.0.1:0".into(),
        public_url: Some(PUBLIC_URL.into()),
        workers: Some(2),
        rate_limits: None,
        ..Config::new(db.url())
    };
    let app = Application::build(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let (port, store) = (app.port(), app.store().clone());
    let server = tokio::spawn(app.run_until_stopped());
    let tokens = Arc::new(HmacShareTokens::new(
        load_keyring(&config, &store)
            .await
            .map_err(|e| e.to_string())?,
    ));
    let services = handoff::services(&store, PUBLIC_URL, tokens);
    let world = World::new(&services).await?;
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };

    let mut report = serde_json::Map::new();
    let mut figures = |label: &str, f: Figures| {
        println!(
            "{name:8} {label:24} {:>9.1} imports/s   p50 {:>7.2} ms   p99 {:>7.2} ms   errors {}",
            f.per_second, f.p50_ms, f.p99_ms, f.errors
        );
        report.insert(label.to_owned(), f.json());
        f
    };
    // Warm the pool and caches.
    in_process(
        &services,
        &world.receiver,
        world.receiver_workflow,
        world.sources(&services, 10, 0).await?,
        1,
    )
    .await;
    by_hand(&store, &world, world.sources(&services, 10, 0).await?, 1).await;

    let handoff_1 = figures(
        "in_process_1",
        in_process(
            &services,
            &world.receiver,
            world.receiver_workflow,
            world.sources(&services, n, 0).await?,
            1,
        )
        .await,
    );
    let limit_1 = figures(
        "limit_1",
        by_hand(&store, &world, world.sources(&services, n, 0).await?, 1).await,
    );
    let handoff_8 = figures(
        "in_process_8",
        in_process(
            &services,
            &world.receiver,
            world.receiver_workflow,
            world.sources(&services, n, 0).await?,
            8,
        )
        .await,
    );
    let limit_8 = figures(
        "limit_8",
        by_hand(&store, &world, world.sources(&services, n, 0).await?, 8).await,
    );
    let handoff_32 = figures(
        "in_process_32",
        in_process(
            &services,
            &world.receiver,
            world.receiver_workflow,
            world.sources(&services, n, 0).await?,
            32,
        )
        .await,
    );
    let http_32 = figures(
        "http_32",
        over_http(
            port,
            &world.receiver_key,
            world.receiver_workflow,
            world.sources(&services, n, 0).await?,
            32,
        )
        .await,
    );

    let mut statements = serde_json::Map::new();
    let mut growth = serde_json::Map::new();
    for rows in [10usize, 100, 1000] {
        let sources = world
            .sources(&services, if quick { 10 } else { 30 }, rows)
            .await?;
        let count = sources.len();
        let before = statements_executed();
        let f = in_process(
            &services,
            &world.receiver,
            world.receiver_workflow,
            sources,
            1,
        )
        .await;
        let per_import = (statements_executed() - before) as f64 / count as f64;
        println!(
            "{name:8} growth {rows:>5} rows          {:>9.1} imports/s   p50 {:>7.2} ms   {per_import:.1} statements per import",
            f.per_second, f.p50_ms
        );
        statements.insert(rows.to_string(), json!(per_import));
        growth.insert(rows.to_string(), json!({"p50_ms": round(f.p50_ms), "statements_per_import": per_import, "errors": f.errors}));
    }
    server.abort();

    let ratio = |handoff: Figures, limit: Figures| round(limit.per_second / handoff.per_second);
    let errors = handoff_1.errors
        + handoff_8.errors
        + handoff_32.errors
        + http_32.errors
        + limit_1.errors
        + limit_8.errors;
    Ok(json!({
        "ratio_to_limit": ratio(handoff_8, limit_8).max(ratio(handoff_1, limit_1)),
        "ratio_to_limit_1": ratio(handoff_1, limit_1),
        "ratio_to_limit_8": ratio(handoff_8, limit_8),
        "statements_per_import": statements,
        "http_imports_per_s": round(http_32.per_second),
        "http_to_in_process_32": round(http_32.per_second / handoff_32.per_second),
        "errors": errors,
        "figures": report,
        "growth": growth,
    }))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("cannot start the runtime");
        std::process::exit(1);
    };
    let result = runtime.block_on(async {
        let mut out = serde_json::Map::new();
        for (name, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
            out.insert(name.to_owned(), run_backend(backend, quick).await?);
        }
        Ok::<_, String>(Value::Object(out))
    });
    match result {
        Ok(report) => println!("{report}"),
        Err(error) => {
            eprintln!("bench failed: {error}");
            std::process::exit(1);
        }
    }
}
