//! The scale-out benchmark (`--scale`): 1, 2 and 3 `handoff` processes on one PostgreSQL
//! database (1 and 2 on one SQLite file), each with one HTTP worker, and a client spreading
//! imports and session creations over them. Per count of servers: imports per second, errors,
//! and the CPU each party spent per import (servers, database, client), from which the limit
//! of each figure is read. Then: every import happened once, a repeated import is refused on
//! every server, and a small rate limit holds across the servers (one budget on PostgreSQL, one
//! per process on SQLite). The cost of the shared counter is measured on one server as reads
//! per second with limits on and off, alternating.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use handoff_store::Store;
use handoff_testdb::{Backend, TestDatabase};
use serde_json::{Value, json};

use crate::fleet::{self, ServerProcess};
use crate::seed::{Source, World};
use crate::{measure, round};

/// Limits high enough never to refuse the measured load, so that the counter still runs.
const UNREFUSED: &str = "1000000,1000000,1000000";

/// Concurrent client requests, over all servers.
const CLIENTS: usize = 16;

async fn start(
    db: &TestDatabase, n: usize, rate_limit: &str,
) -> Result<Vec<ServerProcess>, String> {
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        servers.push(
            ServerProcess::start(
                db.url(),
                &[("HANDOFF_WORKERS", "1"), ("HANDOFF_RATE_LIMIT", rate_limit)],
            )
            .await?,
        );
    }
    Ok(servers)
}

/// One measured phase: imports and as many session creations, spread over `servers`.
struct Phase {
    imported: usize,
    imports_per_s: f64,
    errors: usize,
    cpu_ms_per_import: (f64, f64, f64),
}

async fn phase(
    servers: &[ServerProcess], world: &World, sources: Vec<Source>,
) -> Result<Phase, String> {
    let bases: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.base.clone()).collect());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .map_err(|e| e.to_string())?;
    let (key, workflow, source_key, source_workflow) = (
        world.receiver_key.clone(),
        world.receiver_workflow.to_string(),
        world.source_key.clone(),
        world.source_workflow.to_string(),
    );
    let imported = Arc::new(AtomicUsize::new(0));
    let items: Vec<(usize, Option<Source>)> = sources
        .into_iter()
        .enumerate()
        .flat_map(|(i, s)| [(2 * i, Some(s)), (2 * i + 1, None)])
        .collect();
    let (cpu_servers, cpu_db, cpu_client) = cpu(servers);
    let counter = imported.clone();
    let batch = measure(items, CLIENTS, move |(i, source)| {
        let (client, bases, counter) = (client.clone(), bases.clone(), counter.clone());
        let (key, workflow, source_key, source_workflow) =
            (key.clone(), workflow.clone(), source_key.clone(), source_workflow.clone());
        async move {
            let base = &bases[i % bases.len()];
            let request = match &source {
                Some(source) => client
                    .post(format!("{base}/v3/session/import-shared/"))
                    .header("x-api-key", key)
                    .json(&json!({"share_token": source.token, "workflow_id": workflow})),
                None => client
                    .post(format!("{base}/v3/session/"))
                    .header("x-api-key", source_key)
                    .json(&json!({"workflow_id": source_workflow})),
            };
            let created = matches!(request.send().await, Ok(r) if r.status().as_u16() == 201);
            if created && source.is_some() {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            created
        }
    })
    .await;
    let (after_servers, after_db, after_client) = cpu(servers);
    let imports = imported.load(Ordering::Relaxed).max(1) as f64;
    Ok(Phase {
        imported: imported.load(Ordering::Relaxed),
        imports_per_s: imports / batch.elapsed.as_secs_f64(),
        errors: batch.errors,
        cpu_ms_per_import: (
            (after_servers - cpu_servers) * 1000.0 / imports,
            (after_db - cpu_db) * 1000.0 / imports,
            (after_client - cpu_client) * 1000.0 / imports,
        ),
    })
}

/// CPU seconds so far of the servers, the database (PostgreSQL's processes; SQLite runs
/// inside the servers) and this client.
fn cpu(servers: &[ServerProcess]) -> (f64, f64, f64) {
    (
        servers.iter().map(ServerProcess::cpu_seconds).sum(),
        fleet::postgres_cpu_seconds(),
        fleet::own_cpu_seconds(),
    )
}

/// Sends `budget` × (servers + 1) reads of one key over the servers, and counts the reads
/// allowed in each window: the most allowed in one window, and whether it exceeded `budget`.
async fn budget_holds(
    servers: &[ServerProcess], key: &str, budget: usize,
) -> Result<(usize, usize), String> {
    let client = reqwest::Client::new();
    let mut allowed: std::collections::BTreeMap<String, usize> = Default::default();
    let mut errors = 0;
    for i in 0..budget * (servers.len() + 1) {
        let response = client
            .get(format!("{}/v3/sessions/?limit=1", servers[i % servers.len()].base))
            .header("x-api-key", key)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let reset = response
            .headers()
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match response.status().as_u16() {
            200 => *allowed.entry(reset).or_default() += 1,
            429 => {}
            _ => errors += 1,
        }
    }
    Ok((allowed.values().copied().max().unwrap_or(0), errors))
}

/// Reads per second of one server, `n` reads at [`CLIENTS`] concurrency.
async fn reads_per_s(server: &ServerProcess, key: &str, n: usize) -> f64 {
    let client = reqwest::Client::new();
    let (base, key) = (server.base.clone(), key.to_owned());
    let batch = measure((0..n).collect(), CLIENTS, move |_| {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        async move {
            let response = client
                .get(format!("{base}/v3/sessions/?limit=1"))
                .header("x-api-key", key)
                .send()
                .await;
            matches!(response, Ok(r) if r.status().is_success())
        }
    })
    .await;
    batch.latencies.len() as f64 / batch.elapsed.as_secs_f64()
}

/// Every import once: no source cloned twice, and as many clones as imports answered 201.
async fn imported_once(store: &Store) -> Result<(i64, i64), String> {
    use sea_orm::ConnectionTrait;
    let row = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT COUNT(*) AS clones, COUNT(DISTINCT shared_from_session) AS sources \
             FROM sessions WHERE shared_from_session IS NOT NULL",
        ))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no row")?;
    Ok((
        row.try_get("", "clones").map_err(|e| e.to_string())?,
        row.try_get("", "sources").map_err(|e| e.to_string())?,
    ))
}

pub async fn run(backend: Backend, quick: bool) -> Result<Value, String> {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let fleet::Seeded { db, store, services, world } = fleet::seeded(backend).await?;
    let per_phase = if quick { 150 } else { 600 };
    let counts: &[usize] = match backend {
        Backend::Postgres => &[1, 2, 3],
        Backend::Sqlite => &[1, 2],
    };

    let mut imports_per_s = serde_json::Map::new();
    let mut cpu_per_import = serde_json::Map::new();
    let mut errors = 0;
    let mut imported = 0usize;
    let mut last_servers = Vec::new();
    for &n in counts {
        let servers = start(&db, n, UNREFUSED).await?;
        // Warm each server's pool and statement caches.
        let warm = world.sources(&services, 8 * n, 0).await?;
        let warmed = phase(&servers, &world, warm).await?;
        errors += warmed.errors;
        imported += warmed.imported;
        let sources = world.sources(&services, per_phase, 0).await?;
        let measured = phase(&servers, &world, sources).await?;
        errors += measured.errors;
        imported += measured.imported;
        let (server_ms, db_ms, client_ms) = measured.cpu_ms_per_import;
        println!(
            "{name:8} {n} server(s): {:>7.1} imports/s (+ as many sessions created)   errors {}   CPU ms per import: servers {server_ms:.2}, database {db_ms:.2}, client {client_ms:.2}",
            measured.imports_per_s, measured.errors
        );
        imports_per_s.insert(n.to_string(), json!(round(measured.imports_per_s)));
        cpu_per_import.insert(
            n.to_string(),
            json!({"servers": round(server_ms), "database": round(db_ms), "client": round(client_ms)}),
        );
        last_servers = servers;
    }

    // A repeated import is refused on every server.
    let repeat = world.sources(&services, 1, 0).await?;
    let client = reqwest::Client::new();
    let mut created = 0;
    for server in &last_servers {
        let response = client
            .post(format!("{}/v3/session/import-shared/", server.base))
            .header("x-api-key", &world.receiver_key)
            .json(&json!({"share_token": repeat[0].token, "workflow_id": world.receiver_workflow.to_string()}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            201 => created += 1,
            403 => {}
            _ => errors += 1,
        }
    }
    let (clones, sources) = imported_once(&store).await?;
    // One clone per import answered 201, and no source cloned twice.
    let once = clones == sources && created == 1 && clones == (imported + created) as i64;
    println!(
        "{name:8} clones {clones}, distinct sources {sources}, a repeated import created {created} time(s) over {} servers",
        last_servers.len()
    );
    drop(last_servers);

    // The rate limit across servers: a budget of 60 reads per minute.
    let budget = 60;
    let servers = start(&db, *counts.last().unwrap_or(&1), "60,60,60").await?;
    let (most, budget_errors) = budget_holds(&servers, &world.receiver_key, budget).await?;
    errors += budget_errors;
    println!(
        "{name:8} rate limit {budget}/min over {} servers: at most {most} allowed in one window",
        servers.len()
    );
    drop(servers);

    // The cost of counting: one server's reads per second, limits on and off, alternating.
    let n = if quick { 400 } else { 2000 };
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round_ in 0..4usize {
        let limits = if round_.is_multiple_of(2) { UNREFUSED } else { "off" };
        let servers = start(&db, 1, limits).await?;
        reads_per_s(&servers[0], &world.receiver_key, 100).await;
        let rate = reads_per_s(&servers[0], &world.receiver_key, n).await;
        if round_.is_multiple_of(2) { on.push(rate) } else { off.push(rate) }
    }
    let (on, off) =
        (on.iter().sum::<f64>() / on.len() as f64, off.iter().sum::<f64>() / off.len() as f64);
    println!(
        "{name:8} one server's reads: {on:.0}/s with rate limits, {off:.0}/s without ({:+.1} %)",
        (on / off - 1.0) * 100.0
    );
    Ok(json!({
        "imports_per_s": imports_per_s,
        "cpu_ms_per_import": cpu_per_import,
        "budget_exceeded": most > budget,
        "most_allowed_in_a_window": most,
        "budget": budget,
        "every_import_once": once,
        "reads_per_s_limits_on": round(on),
        "reads_per_s_limits_off": round(off),
        "errors": errors,
    }))
}
