//! The webhook benchmark (`--webhooks`), per backend, with a local receiver:
//! - imports with one subscribed destination, and with one whose receiver never answers, each
//!   against imports with none, in alternating rounds (time per import, median ratio of rounds);
//! - delivery throughput: a backlog of events committed while the worker is stopped, then sent;
//! - latency from commit to delivery with events committed at a steady rate.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use handoff::Config;
use handoff::webhooks::{KekSealer, RunningWorker, secrets_key, start_worker};
use handoff_domain::services::{CreateSession, NewDestination, Services};
use handoff_domain::{Caller, VendorData, WorkflowId};
use handoff_store::Store;
use handoff_testdb::{Backend, TestDatabase};
use handoff_token::JwtShareTokens;
use serde_json::{Value, json};

use crate::seed::World;
use crate::{PUBLIC_URL, import_request, measure, round};

/// Deliveries as the receiver saw them: each event's first arrival, by event id.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<String, (String, Instant)>>>);

impl Arrivals {
    fn record(&self, body: &[u8]) {
        let at = Instant::now();
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        if let (Some(event), Some(session)) = (text("event_id"), text("session_id")) {
            self.lock().entry(event).or_insert((session, at));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first arrival of an event of each of `sessions`.
    fn of(&self, sessions: &HashSet<String>) -> HashMap<String, Instant> {
        let mut first = HashMap::new();
        for (session, at) in self.lock().values() {
            if sessions.contains(session) {
                let seen = first.entry(session.clone()).or_insert(*at);
                *seen = (*seen).min(*at);
            }
        }
        first
    }

    /// Waits until no event arrived for `quiet`.
    async fn wait_until_quiet(&self, quiet: Duration) {
        let mut seen = self.lock().len();
        loop {
            tokio::time::sleep(quiet).await;
            let now = self.lock().len();
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Waits until an event of every one of `sessions` arrived, or `limit` passed.
    async fn wait_for(
        &self, sessions: &HashSet<String>, limit: Duration,
    ) -> HashMap<String, Instant> {
        let began = Instant::now();
        loop {
            let seen = self.of(sessions);
            if seen.len() == sessions.len() || began.elapsed() > limit {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A local receiver: answers 200 and records each event, or, with `hang`, never answers.
fn receiver(arrivals: Arrivals, hang: bool) -> Result<u16, String> {
    let server = HttpServer::new(move || {
        let arrivals = arrivals.clone();
        App::new().default_service(web::to(move |body: web::Bytes| {
            let arrivals = arrivals.clone();
            async move {
                if hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                arrivals.record(&body);
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .map_err(|e| e.to_string())?;
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    Ok(port)
}

/// Which destination the receiver has enabled in a round of imports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Subscribed,
    Down,
}

struct Destinations {
    answering: handoff_domain::DestinationId,
    down: handoff_domain::DestinationId,
}

impl Destinations {
    async fn set(&self, services: &Services, caller: &Caller, mode: Mode) -> Result<(), String> {
        for (id, enabled) in
            [(self.answering, mode == Mode::Subscribed), (self.down, mode == Mode::Down)]
        {
            let change = NewDestination { enabled: Some(enabled), ..NewDestination::default() };
            services.webhooks.update(caller, id, change).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

async fn destination(
    services: &Services, caller: &Caller, port: u16,
) -> Result<handoff_domain::DestinationId, String> {
    let request = NewDestination {
        url: Some(format!("http://127.0.0.1:{port}/webhook")),
        subscribed_events: Some(vec!["status.updated".into(), "session.imported".into()]),
        enabled: Some(false),
        ..NewDestination::default()
    };
    Ok(services.webhooks.create(caller, request).await.map_err(|e| e.to_string())?.0.id)
}

/// Creates sessions of the receiver, each of which writes a `status.updated` event; their ids.
async fn create_sessions(
    services: &Services, caller: &Caller, workflow: WorkflowId, n: usize,
) -> Result<Vec<String>, String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(create_session(services, caller, workflow, i).await?);
    }
    Ok(ids)
}

async fn create_session(
    services: &Services, caller: &Caller, workflow: WorkflowId, i: usize,
) -> Result<String, String> {
    let request = CreateSession {
        vendor_data: Some(VendorData::parse(&format!("hook-{i}")).map_err(str::to_owned)?),
        ..CreateSession::of_workflow(workflow)
    };
    Ok(services.sessions.create(caller, request).await.map_err(|e| e.to_string())?.id.to_string())
}

/// Imports measured in rounds, one batch per mode per round.
struct ImportRounds<'a> {
    services: &'a Services,
    caller: &'a Caller,
    workflow: WorkflowId,
    world: &'a World,
    destinations: &'a Destinations,
}

impl ImportRounds<'_> {
    /// `rounds` rounds of `per_round` imports per mode, the order rotating each round; the time
    /// per import of each round, by mode, and how many imports failed.
    async fn run(
        &self, modes: &[Mode], (rounds, per_round): (usize, usize),
    ) -> Result<(Vec<Vec<f64>>, usize), String> {
        let mut per_import = vec![Vec::new(); modes.len()];
        let mut errors = 0;
        for r in 0..rounds {
            for k in 0..modes.len() {
                let index = (k + r) % modes.len();
                self.destinations.set(self.services, self.caller, modes[index]).await?;
                let sources = self.world.sources(self.services, per_round, 0).await?;
                let (services, caller, workflow) =
                    (self.services.clone(), self.caller.clone(), self.workflow);
                let batch = measure(sources, 8, move |source| {
                    let (services, caller) = (services.clone(), caller.clone());
                    async move {
                        services
                            .import
                            .import(&caller, import_request(&source, workflow))
                            .await
                            .is_ok()
                    }
                })
                .await;
                errors += batch.errors;
                per_import[index]
                    .push(batch.elapsed.as_secs_f64() / batch.latencies.len().max(1) as f64);
            }
        }
        Ok((per_import, errors))
    }
}

/// The median over rounds of `times[i] / baseline[i]`.
fn median_ratio(times: &[f64], baseline: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = times.iter().zip(baseline).map(|(t, b)| t / b).collect();
    ratios.sort_by(f64::total_cmp);
    round(percentile(&ratios, 50))
}

/// The mean of `times` (seconds), in milliseconds.
fn mean_ms(times: &[f64]) -> f64 {
    round(1000.0 * times.iter().sum::<f64>() / times.len().max(1) as f64)
}

fn percentile(sorted: &[f64], q: usize) -> f64 {
    sorted
        .get((sorted.len() * q / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// The webhook figures of one backend.
pub async fn run(backend: Backend, quick: bool, pool: u32) -> Result<Value, String> {
    let db = TestDatabase::create(backend).await;
    let mut config = Config {
        public_url: Some(PUBLIC_URL.into()),
        max_connections: pool,
        webhook_worker: false,
        key_encryption_key: Some(handoff::config::Secret(
            "the benchmark's key-encryption key, 32+ bytes".into(),
        )),
        ..Config::new(db.url())
    };
    config.webhooks.allow_private = true;
    let store: Store = handoff::open_store(&config).await.map_err(|e| e.to_string())?;
    let tokens = Arc::new(JwtShareTokens::new(
        handoff::load_keyring(&config, &store).await.map_err(|e| e.to_string())?,
    ));
    let kek = secrets_key(&config).map_err(|e| e.to_string())?;
    let services = handoff::services_sealing(
        &store,
        PUBLIC_URL,
        tokens.clone(),
        Arc::new(KekSealer(kek.clone())),
    )
    .allowing_private_webhooks(true);
    let world = World::new(&services, tokens).await?;
    let (caller, workflow) = (world.receiver.clone(), world.receiver_workflow);
    let arrivals = Arrivals::default();
    let destinations = Destinations {
        answering: destination(&services, &caller, receiver(arrivals.clone(), false)?).await?,
        down: destination(&services, &caller, receiver(Arrivals::default(), true)?).await?,
    };
    let start = || start_worker(&config, &store, kek.clone()).map_err(|e| e.to_string());
    let mut worker: RunningWorker = start()?;

    // Imports, in rounds whose order rotates so that drift falls on every mode alike: first
    // with the worker delivering beside them, then with it stopped (the outbox's own cost).
    let plan = if quick { (3, 30) } else { (10, 400) };
    let with_worker = [Mode::None, Mode::Subscribed, Mode::Down];
    let rounds = ImportRounds {
        services: &services,
        caller: &caller,
        workflow,
        world: &world,
        destinations: &destinations,
    };
    let mut errors = 0;
    let (per_import, failed) = rounds.run(&with_worker, plan).await?;
    errors += failed;
    worker.stop().await;
    let (outbox_only, failed) = rounds.run(&[Mode::None, Mode::Subscribed], plan).await?;
    errors += failed;
    let (subscribed, down, queued) = (
        median_ratio(&per_import[1], &per_import[0]),
        median_ratio(&per_import[2], &per_import[0]),
        median_ratio(&outbox_only[1], &outbox_only[0]),
    );
    println!(
        "{backend:?} imports: {:.2} ms each with no destination, {:.2} with one subscribed (ratio {subscribed}), {:.2} with one down (ratio {down}); worker stopped: {:.2} and {:.2} (ratio {queued})",
        mean_ms(&per_import[0]),
        mean_ms(&per_import[1]),
        mean_ms(&per_import[2]),
        mean_ms(&outbox_only[0]),
        mean_ms(&outbox_only[1]),
    );
    // What the stopped worker left is delivered before the next measure.
    worker = start()?;
    arrivals.wait_until_quiet(Duration::from_secs(1)).await;

    // Throughput: a backlog committed with the worker stopped, then delivered.
    destinations.set(&services, &caller, Mode::Subscribed).await?;
    services.webhooks.delete(&caller, destinations.down).await.map_err(|e| e.to_string())?;
    worker.stop().await;
    let backlog = if quick { 500 } else { 3000 };
    let ids: HashSet<String> =
        create_sessions(&services, &caller, workflow, backlog).await?.into_iter().collect();
    let began = Instant::now();
    worker = start()?;
    let delivered = arrivals.wait_for(&ids, Duration::from_secs(120)).await;
    let elapsed =
        delivered.values().max().map_or_else(|| began.elapsed(), |last| last.duration_since(began));
    let per_second = round(delivered.len() as f64 / elapsed.as_secs_f64());
    errors += ids.len() - delivered.len();
    println!(
        "{backend:?} delivery: {} of {backlog} events in {:.2} s, {per_second} events/s",
        delivered.len(),
        elapsed.as_secs_f64()
    );

    // Latency at a steady 100 events per second.
    let seconds = if quick { 3 } else { 10 };
    let mut committed = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..seconds * 100 {
        tick.tick().await;
        let (services, caller) = (services.clone(), caller.clone());
        tasks.spawn(async move {
            let id = create_session(&services, &caller, workflow, backlog + i).await;
            (id, Instant::now())
        });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((Ok(id), at)) => {
                committed.insert(id, at);
            }
            _ => errors += 1,
        }
    }
    let ids: HashSet<String> = committed.keys().cloned().collect();
    let delivered = arrivals.wait_for(&ids, Duration::from_secs(60)).await;
    errors += ids.len() - delivered.len();
    let mut latencies: Vec<f64> = delivered
        .iter()
        .map(|(id, at)| {
            // An event may arrive before its writer saw the commit return: that counts as 0.
            at.saturating_duration_since(committed[id]).as_secs_f64() * 1000.0
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (round(percentile(&latencies, 50)), round(percentile(&latencies, 99)));
    println!(
        "{backend:?} commit to delivery at 100 events/s: p50 {p50} ms, p99 {p99} ms over {} events",
        latencies.len()
    );
    worker.stop().await;

    Ok(json!({
        "import_ratio_subscribed": subscribed,
        "import_ratio_destination_down": down,
        "import_ratio_subscribed_worker_stopped": queued,
        "import_ms": {"none": mean_ms(&per_import[0]), "subscribed": mean_ms(&per_import[1]), "down": mean_ms(&per_import[2])},
        "deliveries_per_s": per_second,
        "commit_to_delivery_ms": {"p50": p50, "p99": p99},
        "errors": errors,
    }))
}
