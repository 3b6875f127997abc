//! Sharing across deployments, measured (`cargo xtask bench --federation`): a federated
//! import — the receiver's server fetching the session from the issuer's in one exchange —
//! beside a local one — the same kind of session imported on the issuer's own server by an
//! application of its own — both over HTTP on loopback, one client, in alternating rounds; and
//! the same for a source of 1,000 related rows. Both deployments run in this process, each on
//! its own database, port and public URL; CPU is this process's (client and both servers,
//! `getrusage`) plus both databases' PostgreSQL backends' ([`crate::cpu`]).

use std::sync::Arc;

use handoff::{Application, Config, load_keyring};
use handoff_domain::federation::Partner;
use handoff_domain::ports::{PartnerRepository, ShareTokens};
use handoff_domain::services::{Federated, Services};
use handoff_domain::{ApplicationId, Caller, WorkflowId};
use handoff_store::Store;
use handoff_testdb::{Backend, TestDatabase};
use handoff_token::{JwtShareTokens, TokenAlgorithm};
use serde_json::{Value, json};

use crate::cpu::CpuMeter;
use crate::fleet::KEK;
use crate::seed::{Source, World};
use crate::{Batch, over_http, round};

/// One deployment: a server on its own database, port and public URL, signing with EdDSA.
struct Deployment {
    _db: TestDatabase,
    store: Store,
    services: Services,
    tokens: Arc<JwtShareTokens>,
    url: String,
    port: u16,
}

impl Deployment {
    async fn start(backend: Backend) -> Result<Deployment, String> {
        let db = TestDatabase::create(backend).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let config = Config {
            bind: format!("127.0.0.1:{port}"),
            public_url: Some(url.clone()),
            workers: Some(2),
            rate_limits: None,
            webhook_worker: false,
            token_algorithm: TokenAlgorithm::EdDsa,
            federation_allow_private: true,
            key_encryption_key: Some(handoff::config::Secret(KEK.into())),
            ..Config::new(db.url())
        };
        let app = Application::build(config.clone()).await.map_err(|e| e.to_string())?;
        let store = app.store().clone();
        tokio::spawn(app.run_until_stopped());
        let keyring = load_keyring(&config, &store).await.map_err(|e| e.to_string())?;
        let tokens = Arc::new(JwtShareTokens::new(keyring).issued_by(Some(url.clone())));
        let directory =
            handoff::federation::Directory::new(&store, tokens.clone(), url.clone(), true)?;
        let services = handoff::services_with_keys(&config, &store, &url, tokens.clone())
            .map_err(|e| e.to_string())?
            .federating(Federated {
                partners: Arc::new(store.clone()),
                directory: Arc::new(directory),
            });
        Ok(Deployment { _db: db, store, services, tokens, url, port })
    }

    /// Trusts `other` as `name`, sharing with `applications` of its.
    async fn trust(
        &self, name: &str, other: &Deployment, applications: Vec<ApplicationId>,
    ) -> Result<(), String> {
        let now = chrono::Utc::now();
        let partner = Partner {
            name: name.into(),
            url: other.url.clone(),
            applications,
            keys: other.tokens.published_keys(),
            keys_fetched_at: now,
            added_at: now,
        };
        self.store.add_partner(&partner).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The per-import time and CPU of one batch.
fn per_import(batch: &Batch, cpu_seconds: f64) -> (f64, f64) {
    let imports = batch.latencies.len().max(1) as f64;
    (batch.elapsed.as_secs_f64() * 1000.0 / imports, cpu_seconds * 1000.0 / imports)
}

/// CPU seconds spent so far by this process and both deployments' database backends.
async fn cpu_now(meters: &[CpuMeter; 2]) -> f64 {
    let (bank, fintech) = (meters[0].sample().await, meters[1].sample().await);
    (bank.total() + fintech.database).as_secs_f64()
}

/// Imports `sources` over HTTP at `port` with one client: the batch and the CPU it took.
async fn timed(
    meters: &[CpuMeter; 2], port: u16, key: &str, workflow: WorkflowId, sources: Vec<Source>,
) -> (Batch, f64) {
    let before = cpu_now(meters).await;
    let batch = over_http(port, key, workflow, sources, 1).await;
    (batch, cpu_now(meters).await - before)
}

pub async fn run(backend: Backend, quick: bool) -> Result<Value, String> {
    let (rounds, per_round) = if quick { (3, 10) } else { (10, 30) };
    let bank = Deployment::start(backend).await?;
    let fintech = Deployment::start(backend).await?;
    let world = World::new(&bank.services, bank.tokens.clone()).await?;
    let (partner_app, partner_key) = handoff::demo::application(&fintech.services, "Fintech")
        .await
        .map_err(|e| e.to_string())?;
    let partner_workflow: WorkflowId =
        handoff::demo::workflow(&fintech.services, &partner_app, "user")
            .await
            .map_err(|e| e.to_string())?;
    bank.trust("fintech", &fintech, vec![partner_app.application_id]).await?;
    fintech.trust("bank", &bank, Vec::new()).await?;
    let meters = [CpuMeter::new(&bank.store), CpuMeter::new(&fintech.store)];
    let local = (&world.receiver_key, world.receiver_workflow, bank.port);
    let federated = (&partner_key, partner_workflow, fintech.port);

    // [local, federated] per round, the order alternating.
    let (mut ms, mut cpu_ms) = (Vec::new(), Vec::new());
    let mut errors = 0;
    for round in 0..rounds {
        let mut this = [(0.0, 0.0); 2];
        for k in 0..2 {
            let which = (k + round) % 2;
            let receiver: &Caller = if which == 0 { &world.receiver } else { &partner_app };
            let sources =
                world.sources_for(&bank.services, per_round, 0, receiver.application_id).await?;
            let (key, workflow, port) = if which == 0 { local } else { federated };
            let (batch, cpu) = timed(&meters, port, key, workflow, sources).await;
            errors += batch.errors;
            this[which] = per_import(&batch, cpu);
        }
        ms.push(this.map(|(ms, _)| ms));
        cpu_ms.push(this.map(|(_, cpu)| cpu));
    }
    let ratio = |values: &[[f64; 2]]| {
        let mut ratios: Vec<f64> = values.iter().map(|v| v[1] / v[0]).collect();
        crate::cpu::median_with_interval(&mut ratios)
            .map(|(median, low, high)| json!([round(median), round(low), round(high)]))
    };
    let median = |values: &[[f64; 2]], which: usize| {
        let mut column: Vec<f64> = values.iter().map(|v| v[which]).collect();
        crate::cpu::median_with_interval(&mut column).map_or(0.0, |(m, ..)| round(m))
    };

    // A source of 1,000 related rows, three times each way.
    let mut large = [Vec::new(), Vec::new()];
    for which in [0, 1, 0, 1, 0, 1] {
        let receiver: &Caller = if which == 0 { &world.receiver } else { &partner_app };
        let sources = world.sources_for(&bank.services, 1, 1_000, receiver.application_id).await?;
        let (key, workflow, port) = if which == 0 { local } else { federated };
        let (batch, _) = timed(&meters, port, key, workflow, sources).await;
        errors += batch.errors;
        large[which].push(batch.elapsed.as_secs_f64() * 1000.0);
    }
    let mut large_median = large.map(|mut times| {
        crate::cpu::median_with_interval(&mut times).map_or(0.0, |(m, ..)| round(m))
    });
    large_median.iter_mut().for_each(|m| *m = round(*m));
    Ok(json!({
        "imports_per_round": per_round,
        "rounds": rounds,
        "local_ms_per_import": median(&ms, 0),
        "federated_ms_per_import": median(&ms, 1),
        "federated_to_local_wall": ratio(&ms),
        "local_cpu_ms_per_import": median(&cpu_ms, 0),
        "federated_cpu_ms_per_import": median(&cpu_ms, 1),
        "federated_to_local_cpu": ratio(&cpu_ms),
        "rows_1000_ms": {"local": large_median[0], "federated": large_median[1]},
        "errors": errors,
    }))
}
