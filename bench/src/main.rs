//! The import benchmark: seeds realistic sessions from the fixtures on SQLite and PostgreSQL,
//! issues share tokens, and measures in one run, per backend:
//! - in-process imports through the domain service and the store, at 1, 8 and 32 workers;
//! - the limit: the same clone as hand-written SQL in one transaction, at 1 and 8 workers, and
//!   the same answering with the clone as handoff does (a diagnostic);
//! - HTTP end to end: the server under 32 concurrent connections, and its cheapest authenticated
//!   request (the workflows, one row) beside it;
//! - growth: time and SQL statements per import for sources of 10, 100 and 1,000 related rows.
//!
//! Run it with `cargo xtask bench [--quick] [--only sqlite|postgres] [--pool N]`; its last line
//! is one JSON object. `--pool` sets the pool size (the server's default otherwise).
//! `--webhooks` runs the webhook benchmark instead (see [`webhooks`]); `--scale` the scale-out
//! one ([`scale`]), `--fairness` the noisy-neighbour one ([`fairness`]). Those two start the
//! `handoff` binary beside this one as separate server processes. `--federation` measures a
//! federated import beside a local one ([`federation`]).

mod client;
mod cpu;
mod fairness;
mod features;
mod federation;
mod fleet;
mod limit;
mod scale;
mod seed;
mod statements;
mod webhooks;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use handoff::{Application, Config, load_keyring};
use handoff_domain::services::{ImportRequest, Services};
use handoff_domain::{Caller, ShareToken, WorkflowId};
use handoff_store::{Store, StoreOptions};
use handoff_testdb::{Backend, TestDatabase};
use handoff_token::JwtShareTokens;
use sea_orm::DatabaseBackend;
use serde_json::{Value, json};

use crate::seed::{Source, World};
use crate::statements::StatementCount;

const PUBLIC_URL: &str = "https://verify.example.test";

/// Throughput and latency of one measured batch.
#[derive(Clone, Copy, Debug)]
struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// The raw outcome of one or more measured batches of the same contender.
#[derive(Clone, Debug, Default)]
struct Batch {
    latencies: Vec<Duration>,
    elapsed: Duration,
    errors: usize,
}

impl Batch {
    fn extend(&mut self, other: Batch) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
        self.errors += other.errors;
    }

    fn figures(&mut self) -> Figures {
        Figures::from(&mut self.latencies, self.elapsed, self.errors)
    }
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

/// Runs `work` over `items` with `workers` concurrent tasks.
async fn measure<T, F, Fut>(items: Vec<T>, workers: usize, work: F) -> Batch
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let work = Arc::new(work);
    measure_with(items, workers, move |(), item| {
        let work = work.clone();
        async move { ((), work(item).await) }
    })
    .await
}

/// Runs `work` over `items` with `workers` concurrent tasks, each with a state of its own
/// (`S::default()` first), which `work` takes and gives back.
async fn measure_with<T, S, F, Fut>(items: Vec<T>, workers: usize, work: F) -> Batch
where
    T: Send + 'static,
    S: Default + Send + 'static,
    F: Fn(S, T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (S, bool)> + Send,
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
            let mut state = S::default();
            loop {
                let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
                let Some(item) = next else { break };
                let began = Instant::now();
                let (kept, done) = work(state, item).await;
                state = kept;
                if done {
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
    Batch { latencies, elapsed: started.elapsed(), errors }
}

fn import_request(source: &Source, workflow: WorkflowId) -> ImportRequest {
    ImportRequest {
        share_token: ShareToken::new(source.token.clone()),
        workflow_id: Some(workflow),
        trust_review: false,
        vendor_data: None,
        max_source_age_seconds: None,
    }
}

/// Sends one request on the worker's connection (opened first when it has none), the answer
/// read whole, as a client does; whether it answered `expected`. A connection that failed is
/// dropped, and the next request opens another.
async fn send(
    connection: Option<client::Connection>, port: u16, method: hyper::Method, path: &str,
    key: &str, body: Option<Vec<u8>>, expected: u16,
) -> (Option<client::Connection>, bool) {
    let Some(mut connection) = (match connection {
        Some(connection) => Some(connection),
        None => client::Connection::open(port).await,
    }) else {
        return (None, false);
    };
    match connection.send(method, path, key, body).await {
        Some(status) => (Some(connection), status.as_u16() == expected),
        None => (None, false),
    }
}

async fn over_http(
    port: u16, key: &str, workflow: WorkflowId, sources: Vec<Source>, workers: usize,
) -> Batch {
    let key: Arc<str> = key.into();
    measure_with(sources, workers, move |connection, source: Source| {
        let key = key.clone();
        async move {
            let body = json!({"share_token": source.token, "workflow_id": workflow.to_string()});
            let path = "/v3/session/import-shared/";
            let body = Some(body.to_string().into_bytes());
            send(connection, port, hyper::Method::POST, path, &key, body, 201).await
        }
    })
    .await
}

/// `requests` reads of the receiver's workflows over 32 connections.
async fn read_over_http(port: u16, key: &str, requests: usize) -> Batch {
    let key: Arc<str> = key.into();
    measure_with(vec![(); requests], 32, move |connection, ()| {
        let key = key.clone();
        async move {
            send(connection, port, hyper::Method::GET, "/v3/workflows/", &key, None, 200).await
        }
    })
    .await
}

/// One way of cloning a shared session, measured side by side with the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    /// `ImportService::import`: token, checks, the store's clone.
    Handoff,
    /// The clone by hand, one `INSERT … SELECT` per table in one transaction.
    LimitPerTable,
    /// The clone by hand as one statement (PostgreSQL's data-modifying `WITH`).
    LimitOneStatement,
    /// The clone by hand as one command of statements (SQLite).
    LimitOneCommand,
    /// The same, answering with the clone as handoff does (a diagnostic, not a limit).
    LimitWithAnswer,
}

impl Contender {
    /// Whether it is a limit (the diagnostic with an answer is not).
    fn is_limit(self) -> bool {
        matches!(
            self,
            Contender::LimitPerTable | Contender::LimitOneStatement | Contender::LimitOneCommand
        )
    }

    fn label(self) -> &'static str {
        match self {
            Contender::Handoff => "in_process",
            Contender::LimitPerTable => "limit_per_table",
            Contender::LimitOneStatement => "limit_one_statement",
            Contender::LimitOneCommand => "limit_one_command",
            Contender::LimitWithAnswer => "limit_with_answer",
        }
    }
}

/// Everything a contender needs to import.
#[derive(Clone)]
struct Bench {
    services: Services,
    store: Store,
    receiver: Caller,
    workflow: WorkflowId,
    cpu: Arc<cpu::CpuMeter>,
}

async fn run_contender(
    bench: &Bench, contender: Contender, sources: Vec<Source>, workers: usize,
) -> Batch {
    let bench = bench.clone();
    measure(sources, workers, move |source| {
        let bench = bench.clone();
        async move {
            match contender {
                Contender::Handoff => bench
                    .services
                    .import
                    .import(&bench.receiver, import_request(&source, bench.workflow))
                    .await
                    .is_ok(),
                Contender::LimitPerTable => limit::clone_by_hand(
                    &bench.store,
                    &source,
                    bench.receiver.application_id,
                    bench.workflow,
                )
                .await
                .is_ok(),
                Contender::LimitOneCommand => limit::clone_in_one_command(
                    &bench.store,
                    &source,
                    bench.receiver.application_id,
                    bench.workflow,
                    false,
                )
                .await
                .is_ok(),
                Contender::LimitWithAnswer if bench.store.backend() == DatabaseBackend::Sqlite => {
                    limit::clone_in_one_command(
                        &bench.store,
                        &source,
                        bench.receiver.application_id,
                        bench.workflow,
                        true,
                    )
                    .await
                    .is_ok()
                }
                Contender::LimitOneStatement | Contender::LimitWithAnswer => {
                    limit::clone_in_one_statement(
                        &bench.store,
                        &source,
                        bench.receiver.application_id,
                        bench.workflow,
                        contender == Contender::LimitWithAnswer,
                    )
                    .await
                    .is_ok()
                }
            }
        }
    })
    .await
}

/// Measures `contenders` at `workers` concurrency in `rounds` alternating rounds of `per_round`
/// imports each (the order rotating every round), so that the machine's drift falls on all of
/// them alike; every import redeems a different, freshly seeded source.
async fn side_by_side(
    bench: &Bench, world: &World, contenders: &[Contender], workers: usize, rounds: usize,
    per_round: usize,
) -> Result<SideBySide, String> {
    let mut batches = vec![Batch::default(); contenders.len()];
    let mut cpu = vec![cpu::CpuSample::default(); contenders.len()];
    let mut per_import = Vec::with_capacity(rounds);
    let mut cpu_per_import = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut this_round = vec![f64::NAN; contenders.len()];
        let mut this_round_cpu = vec![f64::NAN; contenders.len()];
        for k in 0..contenders.len() {
            let index = (k + round) % contenders.len();
            let sources = world.sources(&bench.services, per_round, 0).await?;
            let before = bench.cpu.sample().await;
            let batch = run_contender(bench, contenders[index], sources, workers).await;
            let spent = bench.cpu.sample().await.since(before);
            let imports = batch.latencies.len().max(1) as f64;
            this_round[index] = batch.elapsed.as_secs_f64() / imports;
            this_round_cpu[index] = spent.total().as_secs_f64() / imports;
            cpu[index] += spent;
            batches[index].extend(batch);
        }
        per_import.push(this_round);
        cpu_per_import.push(this_round_cpu);
    }
    let ms_per_import = |spent: Duration, batch: &Batch| {
        spent.as_secs_f64() * 1000.0 / batch.latencies.len().max(1) as f64
    };
    Ok(SideBySide {
        cpu_ms: cpu.iter().zip(&batches).map(|(s, b)| ms_per_import(s.total(), b)).collect(),
        cpu_database_ms: cpu
            .iter()
            .zip(&batches)
            .map(|(s, b)| ms_per_import(s.database, b))
            .collect(),
        figures: batches.iter_mut().map(Batch::figures).collect(),
        per_import,
        cpu_per_import,
    })
}

/// What [`side_by_side`] measured: each contender's figures over all rounds, and each round's
/// time per import by contender (in the order of the contenders).
struct SideBySide {
    figures: Vec<Figures>,
    per_import: Vec<Vec<f64>>,
    /// Each contender's CPU time per import over all rounds, in milliseconds.
    cpu_ms: Vec<f64>,
    /// The part of `cpu_ms` PostgreSQL's backends spent (zero on SQLite, which runs in the
    /// process).
    cpu_database_ms: Vec<f64>,
    /// Each round's CPU time per import by contender.
    cpu_per_import: Vec<Vec<f64>>,
}

impl SideBySide {
    /// handoff's time per import ÷ the fastest limit's, round by round (handoff first among
    /// the contenders): the spread of the ratio within one run, median, lowest and highest.
    fn ratio_per_round(&self, contenders: &[Contender]) -> Option<(f64, f64, f64)> {
        let mut ratios = per_round_ratios(&self.per_import, contenders);
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        Some((ratios[ratios.len() / 2], ratios[0], ratios[ratios.len() - 1]))
    }

    /// handoff's CPU time per import ÷ that of the limit that spent least, summed over the
    /// rounds.
    fn cpu_ratio(&self, contenders: &[Contender]) -> Option<f64> {
        let limit = contenders
            .iter()
            .zip(&self.cpu_ms)
            .filter(|(c, _)| c.is_limit())
            .map(|(_, ms)| *ms)
            .fold(f64::INFINITY, f64::min);
        (limit.is_finite() && limit > 0.0).then(|| self.cpu_ms[0] / limit)
    }

    /// The same ratio round by round: its median and a 95 % interval for the median.
    fn cpu_ratio_per_round(&self, contenders: &[Contender]) -> Option<(f64, f64, f64)> {
        cpu::median_with_interval(&mut per_round_ratios(&self.cpu_per_import, contenders))
    }
}

/// handoff's cost (the first contender's) ÷ the cheapest limit's, in each round of `rounds`.
fn per_round_ratios(rounds: &[Vec<f64>], contenders: &[Contender]) -> Vec<f64> {
    rounds
        .iter()
        .filter_map(|round| {
            let limit = contenders
                .iter()
                .zip(round)
                .filter(|(c, _)| c.is_limit())
                .map(|(_, t)| *t)
                .fold(f64::INFINITY, f64::min);
            (limit.is_finite() && limit > 0.0).then(|| round[0] / limit)
        })
        .collect()
}

/// CPU per import in milliseconds: the HTTP server's threads, SQLite's engine (the driver's
/// threads), the rest of this process (the client, or the in-process import), and PostgreSQL's
/// backends.
fn cpu_split(spent: cpu::CpuSample, imports: usize) -> Value {
    let ms = |d: std::time::Duration| round(d.as_secs_f64() * 1000.0 / imports.max(1) as f64);
    json!({
        "server": ms(spent.server),
        "engine": ms(spent.engine),
        "rest_of_process": ms(spent.process.saturating_sub(spent.server + spent.engine)),
        "database": ms(spent.database),
    })
}

async fn run_backend(
    backend: Backend, quick: bool, pool: u32, statement_count: &StatementCount,
) -> Result<Value, String> {
    let (rounds, per_round) = if quick { (4, 30) } else { (20, 60) };
    let db = TestDatabase::create(backend).await;
    let config = Config {
        bind: "127.0.0.1:0".into(),
        public_url: Some(PUBLIC_URL.into()),
        workers: Some(2),
        rate_limits: None,
        // Events are written, never sent: the worker would compete with what is measured.
        webhook_worker: false,
        max_connections: pool,
        key_encryption_key: Some(handoff::config::Secret(
            "the benchmark's key-encryption key, 32+ bytes".into(),
        )),
        ..Config::new(db.url())
    };
    let app = Application::build(config.clone()).await.map_err(|e| e.to_string())?;
    let (port, store) = (app.port(), app.store().clone());
    let server = tokio::spawn(app.run_until_stopped());
    let tokens = Arc::new(JwtShareTokens::new(
        load_keyring(&config, &store).await.map_err(|e| e.to_string())?,
    ));
    let services = handoff::services_with_keys(&config, &store, PUBLIC_URL, tokens.clone())
        .map_err(|e| e.to_string())?;
    let world = World::new(&services, tokens.clone()).await?;
    let bench = Bench {
        services: services.clone(),
        store: store.clone(),
        receiver: world.receiver.clone(),
        workflow: world.receiver_workflow,
        cpu: Arc::new(cpu::CpuMeter::new(&store)),
    };
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let contenders: &[Contender] = match backend {
        Backend::Sqlite => &[
            Contender::Handoff,
            Contender::LimitPerTable,
            Contender::LimitOneCommand,
            Contender::LimitWithAnswer,
        ],
        Backend::Postgres => &[
            Contender::Handoff,
            Contender::LimitPerTable,
            Contender::LimitOneStatement,
            Contender::LimitWithAnswer,
        ],
    };

    let mut report = serde_json::Map::new();
    let mut print = |label: String, f: Figures| {
        println!(
            "{name:8} {label:28} {:>9.1} imports/s   p50 {:>7.2} ms   p99 {:>7.2} ms   errors {}",
            f.per_second, f.p50_ms, f.p99_ms, f.errors
        );
        report.insert(label, f.json());
    };
    // Warm the pool and the prepared-statement caches: at 32 workers, every connection of the
    // pool is opened and, with several imports each, prepares every contender's statement.
    side_by_side(&bench, &world, contenders, 32, 1, 128).await?;

    let mut ratios = serde_json::Map::new();
    let mut round_ratios = serde_json::Map::new();
    let mut cpu_ratios = serde_json::Map::new();
    let mut cpu_round_ratios = serde_json::Map::new();
    let mut cpu_ms = serde_json::Map::new();
    let mut cpu_database_ms = serde_json::Map::new();
    let mut diagnostics = serde_json::Map::new();
    let mut worst = 0.0f64;
    let mut errors = 0;
    for workers in [1, 8] {
        let measured = side_by_side(&bench, &world, contenders, workers, rounds, per_round).await?;
        if let Some((median, low, high)) = measured.ratio_per_round(contenders) {
            println!(
                "{name:8} ratio to the fastest limit, {workers} worker(s), round by round: median {median:.2}, {low:.2} to {high:.2}"
            );
            round_ratios.insert(
                workers.to_string(),
                json!({"median": round(median), "min": round(low), "max": round(high)}),
            );
        }
        if let (Some(ratio), Some((median, low, high))) =
            (measured.cpu_ratio(contenders), measured.cpu_ratio_per_round(contenders))
        {
            println!(
                "{name:8} CPU ratio to the cheapest limit, {workers} worker(s): {ratio:.2}; round by round: median {median:.2}, 95 % interval {low:.2} to {high:.2}"
            );
            cpu_ratios.insert(workers.to_string(), json!(round(ratio)));
            cpu_round_ratios.insert(
                workers.to_string(),
                json!({"median": round(median), "low_95": round(low), "high_95": round(high)}),
            );
        }
        for ((contender, ms), database) in
            contenders.iter().zip(&measured.cpu_ms).zip(&measured.cpu_database_ms)
        {
            cpu_ms.insert(format!("{}_{workers}", contender.label()), json!(round(*ms)));
            if backend == Backend::Postgres {
                cpu_database_ms
                    .insert(format!("{}_{workers}", contender.label()), json!(round(*database)));
            }
        }
        let figures = measured.figures;
        for (contender, f) in contenders.iter().zip(&figures) {
            print(format!("{}_{workers}", contender.label()), *f);
            errors += f.errors;
        }
        // The limit is the fastest hand-written clone; the ratio compares time per import.
        let limit = contenders
            .iter()
            .zip(&figures)
            .filter(|(c, _)| c.is_limit())
            .map(|(_, f)| f.per_second)
            .fold(0.0f64, f64::max);
        let ratio = round(limit / figures[0].per_second);
        worst = worst.max(ratio);
        ratios.insert(workers.to_string(), json!(ratio));
        // What handoff adds beyond the database's share of its answer: its checks and Rust.
        if let Some((_, with_answer)) =
            contenders.iter().zip(&figures).find(|(c, _)| **c == Contender::LimitWithAnswer)
        {
            diagnostics.insert(
                workers.to_string(),
                json!(round(with_answer.per_second / figures[0].per_second)),
            );
        }
    }

    // What each feature costs beside the plain import, at one worker.
    let feature_cost = features::run(&store, tokens.clone(), rounds, per_round).await?;

    // In-process and HTTP at 32, in alternating rounds as well.
    let mut in_process_32 = Batch::default();
    let mut http_32 = Batch::default();
    // Where each spends its CPU: this process (the client and, over HTTP, the server's
    // threads) and the database.
    let (mut in_process_cpu, mut http_cpu) = (cpu::CpuSample::default(), cpu::CpuSample::default());
    for round in 0..rounds {
        for k in 0..2 {
            let sources = world.sources(&services, per_round, 0).await?;
            let before = bench.cpu.sample().await;
            if (k + round) % 2 == 0 {
                in_process_32.extend(run_contender(&bench, Contender::Handoff, sources, 32).await);
                in_process_cpu += bench.cpu.sample().await.since(before);
            } else {
                http_32.extend(
                    over_http(port, &world.receiver_key, world.receiver_workflow, sources, 32)
                        .await,
                );
                http_cpu += bench.cpu.sample().await.since(before);
            }
        }
    }
    let cpu_32 = json!({
        "in_process": cpu_split(in_process_cpu, in_process_32.latencies.len()),
        "http": cpu_split(http_cpu, http_32.latencies.len()),
    });
    println!("{name:8} CPU per import at 32, ms: {cpu_32}");
    let (in_process_32, http_32) = (in_process_32.figures(), http_32.figures());
    print("in_process_32".into(), in_process_32);
    print("http_32".into(), http_32);
    errors += in_process_32.errors + http_32.errors;

    // The cheapest authenticated request (the receiver's workflows, one row), at 32: what
    // authenticating a key costs beside a request's own work.
    let before = bench.cpu.sample().await;
    let mut reads =
        read_over_http(port, &world.receiver_key, if quick { 2_000 } else { 20_000 }).await;
    let reads_cpu = cpu_split(bench.cpu.sample().await.since(before), reads.latencies.len());
    let reads = reads.figures();
    println!(
        "{name:8} GET /v3/workflows/ at 32   {:>9.1} requests/s p50 {:>7.2} ms   p99 {:>7.2} ms   CPU per request, ms: {reads_cpu}",
        reads.per_second, reads.p50_ms, reads.p99_ms
    );
    errors += reads.errors;

    // Growth through a store of its own whose driver logs each statement, so that they can be
    // counted here.
    let logged = Store::connect(
        db.url(),
        &StoreOptions { max_connections: pool, log_statements: true, ..StoreOptions::default() },
    )
    .await
    .map_err(|e| e.to_string())?
    .sealing_with(handoff::webhooks::secrets_key(&config).map_err(|e| e.to_string())?);
    let bench = Bench {
        services: handoff::services_with_keys(&config, &logged, PUBLIC_URL, tokens.clone())
            .map_err(|e| e.to_string())?,
        store: logged,
        ..bench
    };
    // The pool opens its connection (and logs its settings) before anything is counted.
    bench.store.ping().await;
    let mut statements = serde_json::Map::new();
    let mut growth = serde_json::Map::new();
    for rows in [10usize, 100, 1000] {
        let sources = world.sources(&services, if quick { 10 } else { 30 }, rows).await?;
        let count = sources.len();
        let before = statement_count.get();
        let f = run_contender(&bench, Contender::Handoff, sources, 1).await.figures();
        let per_import = (statement_count.get() - before) as f64 / count as f64;
        println!(
            "{name:8} growth {rows:>5} rows              {:>9.1} imports/s   p50 {:>7.2} ms   {per_import:.1} statements per import",
            f.per_second, f.p50_ms
        );
        errors += f.errors;
        statements.insert(rows.to_string(), json!(per_import));
        growth.insert(rows.to_string(), json!({"p50_ms": round(f.p50_ms), "statements_per_import": per_import, "errors": f.errors}));
    }
    server.abort();

    Ok(json!({
        "pool_connections": pool,
        "ratio_to_limit": worst,
        "ratio_to_limit_by_workers": ratios,
        "ratio_to_limit_per_round": round_ratios,
        "ratio_to_limit_with_answer_by_workers": diagnostics,
        "cpu_ratio_to_limit": cpu_ratios,
        "cpu_ratio_to_limit_per_round": cpu_round_ratios,
        "cpu_ms_per_import": cpu_ms,
        "cpu_ms_per_import_in_the_database": cpu_database_ms,
        "feature_cost": feature_cost,
        "statements_per_import": statements,
        "http_imports_per_s": round(http_32.per_second),
        "http_to_in_process_32": round(http_32.per_second / in_process_32.per_second),
        "cpu_ms_per_import_32": cpu_32,
        "http_read_32": {
            "requests_per_s": round(reads.per_second),
            "p99_ms": round(reads.p99_ms),
            "cpu_ms_per_request": reads_cpu,
        },
        "errors": errors,
        "figures": report,
        "growth": growth,
    }))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let hooks = args.iter().any(|a| a == "--webhooks");
    let scale = args.iter().any(|a| a == "--scale");
    let fair = args.iter().any(|a| a == "--fairness");
    let federated = args.iter().any(|a| a == "--federation");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .map(|i| args.get(i + 1).cloned().unwrap_or_default());
    if let Some(only) = only.as_deref()
        && !matches!(only, "sqlite" | "postgres")
    {
        eprintln!("--only takes sqlite or postgres (got {only:?})");
        std::process::exit(2);
    }
    // The pool size: the server's default unless given, to compare another.
    let pool = match args.iter().position(|a| a == "--pool") {
        None => handoff_store::default_max_connections(),
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<u32>().ok()) {
            Some(n) if n > 0 => n,
            _ => {
                eprintln!("--pool takes a number of connections, at least 1");
                std::process::exit(2);
            }
        },
    };
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread().enable_all().build() else {
        eprintln!("cannot start the runtime");
        std::process::exit(1);
    };
    let statement_count = StatementCount::install();
    let result = runtime.block_on(async {
        let mut out = serde_json::Map::new();
        for (name, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
            if only.as_deref().is_some_and(|only| only != name) {
                continue;
            }
            let report = if scale {
                scale::run(backend, quick).await?
            } else if fair {
                fairness::run(backend, quick, pool).await?
            } else if federated {
                federation::run(backend, quick).await?
            } else if hooks {
                webhooks::run(backend, quick, pool).await?
            } else {
                run_backend(backend, quick, pool, &statement_count).await?
            };
            out.insert(name.to_owned(), report);
        }
        if hooks {
            return Ok(json!({ "webhooks": out }));
        }
        if scale {
            return Ok(json!({ "scale": out }));
        }
        if fair {
            return Ok(json!({ "fairness": out }));
        }
        if federated {
            return Ok(json!({ "federation": out }));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_per_round_takes_the_fastest_limit_of_each_round() {
        let contenders = [
            Contender::Handoff,
            Contender::LimitPerTable,
            Contender::LimitOneStatement,
            Contender::LimitWithAnswer,
        ];
        // Seconds per import by round; the diagnostic (last) is never the limit, however fast.
        let measured = SideBySide {
            figures: Vec::new(),
            per_import: vec![
                vec![1.2, 2.0, 1.0, 0.1],
                vec![1.5, 1.0, 1.2, 0.1],
                vec![1.1, 3.0, 1.0, 0.1],
            ],
            cpu_ms: Vec::new(),
            cpu_database_ms: Vec::new(),
            cpu_per_import: Vec::new(),
        };
        let (median, low, high) = measured.ratio_per_round(&contenders).unwrap();
        assert!((median - 1.2).abs() < 1e-9, "{median}");
        assert!((low - 1.1).abs() < 1e-9, "{low}");
        assert!((high - 1.5).abs() < 1e-9, "{high}");
        // Without a limit among the contenders there is no ratio.
        assert!(measured.ratio_per_round(&contenders[..1]).is_none());
    }

    #[test]
    fn the_cpu_ratio_takes_the_cheapest_limit_and_brackets_its_median() {
        let contenders = [Contender::Handoff, Contender::LimitPerTable, Contender::LimitWithAnswer];
        let cpu_per_import: Vec<Vec<f64>> =
            (1..=20).map(|i| vec![1.0 + f64::from(i) / 100.0, 1.0, 0.1]).collect();
        let measured = SideBySide {
            figures: Vec::new(),
            per_import: Vec::new(),
            cpu_ms: vec![2.2, 2.0, 0.5],
            cpu_database_ms: vec![0.0; 3],
            cpu_per_import,
        };
        // The diagnostic spends less but is no limit.
        assert!((measured.cpu_ratio(&contenders).unwrap() - 1.1).abs() < 1e-9);
        let (median, low, high) = measured.cpu_ratio_per_round(&contenders).unwrap();
        // Of 20 ratios 1.01 to 1.20: the median is the 11th, the interval the 6th to the 15th.
        assert!((median - 1.11).abs() < 1e-9, "{median}");
        assert!((low - 1.06).abs() < 1e-9 && (high - 1.15).abs() < 1e-9, "{low} {high}");
        assert!(cpu::median_with_interval(&mut []).is_none());
    }
}
