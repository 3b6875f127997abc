//! The composition root of handoff: configuration, database, migrations, services and the HTTP
//! server, wired once. `main.rs` only parses the command line; tests build the same
//! [`Application`] on port 0.

pub mod cli;
pub mod config;
mod console;
pub mod demo;
mod error;
pub mod federation;
pub mod operator;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use handoff_domain::ports::{RandomIds, ShareTokens, SystemClock};
use handoff_domain::services::{Ports, Services};
use handoff_http::{AppState, Limits};
use handoff_migrations::{Migrator, MigratorTrait};
use handoff_store::{ConnectError, Store, StoreOptions};
use handoff_token::JwtShareTokens;

pub use config::Config;
pub use error::CommandError;

mod keys;
mod metrics;
mod rate_counts;
mod request_log;
pub mod webhooks;

pub use keys::{
    KEY_RELOAD_INTERVAL, database_keyring, generate_key, key_encryption_key, load_keyring,
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The migrations failed.
    #[error("migrations failed: {0}")]
    Migrate(sea_orm::DbErr),
    /// A setting is wrong.
    #[error("{0}")]
    Config(String),
    /// The address could not be bound.
    #[error("cannot listen on {address} (set by {setting}): {source}")]
    Bind {
        /// The address.
        address: String,
        /// The flag or variable that sets it.
        setting: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Binds `address`, the value of `setting`; `127.0.0.1:0` picks a free port.
pub(crate) fn bind(address: &str, setting: &'static str) -> Result<TcpListener, StartError> {
    TcpListener::bind(address).map_err(|source| StartError::Bind {
        address: address.to_owned(),
        setting,
        source,
    })
}

/// Opens the database and brings its schema up to date.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    let options =
        StoreOptions { max_connections: config.max_connections, ..StoreOptions::default() };
    // Identity data is sealed under the deployment's key-encryption key (`docs/privacy.md`).
    let store = Store::connect(&config.database_url, &options)
        .await?
        .sealing_with(webhooks::secrets_key(config)?);
    tracing::info!(
        database = %handoff_store::describe_database(&config.database_url),
        "opened the database"
    );
    // Under an exclusive lock: servers starting together on a fresh database migrate once.
    let txn = store
        .begin_exclusive()
        .await
        .map_err(|e| StartError::Migrate(sea_orm::DbErr::Custom(e.to_string())))?;
    let pending: Vec<String> = Migrator::get_pending_migrations(&txn)
        .await
        .map_err(StartError::Migrate)?
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    Migrator::up(&txn, None).await.map_err(StartError::Migrate)?;
    txn.commit().await.map_err(StartError::Migrate)?;
    // Said once, and only when there was something to do.
    if !pending.is_empty() {
        tracing::info!(applied = ?pending, "migrated the database");
    }
    let rekeyed = store
        .rekey_entities()
        .await
        .map_err(|e| StartError::Migrate(sea_orm::DbErr::Custom(e.to_string())))?;
    if rekeyed.rekeyed > 0 {
        tracing::info!(
            rekeyed = rekeyed.rekeyed,
            "entities re-keyed under the current vendor_data rule"
        );
    }
    // What an earlier version kept in clear is sealed now, once.
    let sealed = store
        .seal_clear_data()
        .await
        .map_err(|e| StartError::Migrate(sea_orm::DbErr::Custom(e.to_string())))?;
    if sealed != handoff_store::Backfilled::default() {
        tracing::info!(
            sessions = sealed.sessions,
            entities = sealed.entities,
            "sealed identity data kept in clear by an earlier version"
        );
    }
    for (entity, other) in &rekeyed.collisions {
        tracing::warn!(
            %entity,
            %other,
            "two entities of one application now share one vendor_data key; left apart, to \
             resolve by hand"
        );
    }
    Ok(store)
}

/// Every service over one store and one token signer, with the system clock and random ids;
/// no secret can be sealed (operator commands and tests that make no webhook destination).
pub fn services(store: &Store, session_base_url: &str, tokens: Arc<dyn ShareTokens>) -> Services {
    services_sealing(store, session_base_url, tokens, Arc::new(webhooks::NoSealer))
}

/// [`services`] that seal and hash with the deployment's key-encryption key (`config`'s), as
/// the server's do: for a process that records results or keeps list entries.
pub fn services_with_keys(
    config: &Config, store: &Store, session_base_url: &str, tokens: Arc<dyn ShareTokens>,
) -> Result<Services, StartError> {
    let sealer = Arc::new(webhooks::KekSealer(webhooks::secrets_key(config)?));
    Ok(services_sealing(store, session_base_url, tokens, sealer))
}

/// [`services`] that seal secrets with `sealer`.
pub fn services_sealing(
    store: &Store, session_base_url: &str, tokens: Arc<dyn ShareTokens>,
    sealer: Arc<dyn handoff_domain::ports::SecretSealer>,
) -> Services {
    let shared = Arc::new(store.clone());
    let ports = Ports {
        applications: shared.clone(),
        workflows: shared.clone(),
        sessions: shared.clone(),
        entities: shared.clone(),
        idempotency: shared.clone(),
        webhooks: shared.clone(),
        lists: shared.clone(),
        sealer,
        shares: shared,
        tokens,
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
    };
    Services::new(ports, session_base_url)
}

/// How often expired idempotency keys are deleted.
const IDEMPOTENCY_PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes idempotency keys past their 24 hours, every hour.
fn prune_idempotency_keys(idempotency: handoff_domain::services::IdempotencyService) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(IDEMPOTENCY_PRUNE_INTERVAL);
        loop {
            interval.tick().await;
            match idempotency.prune().await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "deleted expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not delete expired idempotency keys"),
            }
        }
    });
}

/// Deletes what applications' retention no longer allows: at start, then every `every`
/// (several servers on one database share the work, each skipping the rows another is
/// deleting).
fn sweep_retention(
    retention: handoff_domain::services::RetentionService, every: std::time::Duration,
    metrics: Option<Arc<handoff_http::metrics::Metrics>>,
) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let swept = retention.sweep().await;
            if let Some(metrics) = &metrics {
                metrics.swept(swept.as_ref().ok().map(Vec::len));
            }
            match swept {
                Ok(deleted) if deleted.is_empty() => {}
                Ok(deleted) => {
                    tracing::info!(deleted = deleted.len(), "retention deleted sessions")
                }
                Err(error) => tracing::warn!(%error, "the retention sweep failed"),
            }
        }
    });
}

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    store: Store,
    in_flight: request_log::InFlight,
    worker: Option<webhooks::RunningWorker>,
    /// The metrics' own server and its port.
    metrics_apart: Option<(actix_web::dev::ServerHandle, u16)>,
    /// The API's listening socket, shut at once when a stop is asked for.
    listening: TcpListener,
}

impl Application {
    /// Binds the addresses (`127.0.0.1:0` picks a free port), then opens and migrates the
    /// database and builds the services: an address in use stops the start before the
    /// database is touched.
    pub async fn build(config: Config) -> Result<Application, StartError> {
        let listener = bind(&config.bind, "--bind or HANDOFF_BIND")?;
        let metrics_listener = match &config.metrics {
            config::MetricsEndpoint::Bind(address) => {
                Some(bind(address, "--metrics-bind or HANDOFF_METRICS_BIND")?)
            }
            _ => None,
        };
        let listening = listener.try_clone().map_err(|source| StartError::Bind {
            address: config.bind.clone(),
            setting: "--bind or HANDOFF_BIND",
            source,
        })?;
        let store = open_store(&config).await?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let public_url = config.public_url.clone().unwrap_or_else(|| {
            format!("http://{}", listener.local_addr().map(|a| a.to_string()).unwrap_or_default())
        });
        // A deployment with a public URL names itself in its tokens (`iss`): what partners
        // verify them by.
        let own_url = config.public_url.as_deref().map(|url| url.trim_end_matches('/').to_owned());
        let tokens = Arc::new(
            JwtShareTokens::new(load_keyring(&config, &store).await?).issued_by(own_url.clone()),
        );
        if config.token_secret.is_none() {
            keys::reload_periodically(
                store.clone(),
                tokens.clone(),
                keys::key_encryption_key(&config)?,
                config.token_algorithm,
                config.key_reload_interval,
            );
        }
        let secrets = webhooks::secrets_key(&config)?;
        let federation = match &own_url {
            Some(own_url) => {
                let directory: Arc<dyn handoff_domain::ports::PartnerDirectory> = Arc::new(
                    federation::Directory::new(
                        &store,
                        tokens.clone(),
                        own_url.clone(),
                        config.federation_allow_private,
                    )
                    .map_err(StartError::Config)?,
                );
                Some(handoff_domain::services::Federated {
                    partners: Arc::new(store.clone()),
                    directory,
                })
            }
            None => None,
        };
        let issuer_side =
            federation.as_ref().map(|federated| handoff_http::federation::Federation {
                service: handoff_domain::services::FederationService::new(
                    tokens.clone(),
                    Arc::new(SystemClock),
                    federated.partners.clone(),
                ),
                directory: federated.directory.clone(),
            });
        let mut services = services_sealing(
            &store,
            &public_url,
            tokens,
            Arc::new(webhooks::KekSealer(secrets.clone())),
        );
        if let Some(federated) = federation {
            services = services.federating(federated);
        }
        let services = services
            .accepting_unlisted_tokens(config.accept_unlisted_tokens)
            .allowing_private_webhooks(config.webhooks.allow_private)
            .limiting_items(config.item_limits);
        let worker = if config.webhook_worker {
            Some(webhooks::start_worker(&config, &store, secrets.clone())?)
        } else {
            None
        };
        prune_idempotency_keys(services.idempotency.clone());
        // Requests' keys answered from memory while every change to one is heard.
        tokio::spawn(store.clone().watch_api_keys());
        let metrics = metrics::collect(&config.metrics, &store)?;
        sweep_retention(services.retention.clone(), config.retention_sweep, metrics.clone());
        let state = AppState {
            services,
            readiness: Arc::new(store.clone()),
            limits: Limits {
                results_body_bytes: config.results_body_limit,
                body_timeout: config.timeouts.body,
                deadline: config.timeouts.deadline,
                heavy: config.heavy_requests,
                ..Limits::default()
            },
            heavy: Default::default(),
            metrics,
            console: Some(Arc::new(console::ConsoleCookies(secrets.clone()))),
            rate_limiter: config
                .rate_limits
                .map(|limits| Arc::new(rate_counts::limiter(limits, &store))),
            public_url: config.public_url.clone(),
            federation: issuer_side,
        };
        let metrics_apart = match metrics_listener {
            Some(listener) => {
                let (server, port) = metrics::serve_apart(listener, state.clone())?;
                let handle = server.handle();
                tokio::spawn(server);
                Some((handle, port))
            }
            None => None,
        };
        let metrics_with_api = config.metrics == config::MetricsEndpoint::WithApi;
        let in_flight = request_log::InFlight::default();
        let counted = web::Data::new(in_flight.clone());
        let mut server = HttpServer::new(move || {
            let app = App::new()
                .app_data(counted.clone())
                .wrap(from_fn(handoff_http::deadline))
                .wrap(from_fn(handoff_http::head_limits))
                .wrap(from_fn(handoff_http::metrics::record))
                .wrap(handoff_http::security_headers())
                .wrap(from_fn(request_log::log_request))
                // Every route answers with and without its trailing slash, as Didit's clients
                // write both (the routes are declared with it).
                .wrap(NormalizePath::new(TrailingSlash::Always))
                .configure(handoff_http::configure(state.clone()));
            if metrics_with_api {
                app.route("/metrics/", web::get().to(handoff_http::metrics::scrape))
            } else {
                app
            }
        })
        // Signals are the binary's to handle (`run_until_signalled`), so that SIGINT stops as
        // gracefully as SIGTERM and the last line of the log says the server stopped.
        .disable_signals()
        .client_request_timeout(config.timeouts.head)
        .client_disconnect_timeout(std::time::Duration::from_secs(5))
        .shutdown_timeout(SHUTDOWN_DEADLINE.as_secs())
        .listen(listener)
        .map_err(|source| StartError::Bind {
            address: config.bind.clone(),
            setting: "--bind or HANDOFF_BIND",
            source,
        })?;
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        Ok(Application {
            port,
            server: server.run(),
            store,
            in_flight,
            worker,
            metrics_apart,
            listening,
        })
    }

    /// The port of the metrics' own address (`HANDOFF_METRICS_BIND`), when they have one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_apart.as_ref().map(|(_, port)| *port)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The store the server uses (tests inspect it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until the process is stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully: the listening socket is shut at
    /// once (a new connection is refused, not left waiting), requests in flight have [`SHUTDOWN_DEADLINE`] to finish, the pool is closed (SQLite's
    /// write-ahead log checkpointed first), and one line says the server stopped.
    ///
    /// The workers stay up until the requests in flight are done: a worker that stops takes
    /// its runtime with it, and with it the database connections it opened, which a request
    /// on another worker may be using.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        tokio::select! {
            finished = &mut server => return finished.map_err(std::io::Error::other)?,
            signal = shutdown_signal() => tracing::info!(
                signal,
                deadline_seconds = SHUTDOWN_DEADLINE.as_secs(),
                "stopping: no new connections; requests in flight may finish"
            ),
        }
        handle.pause().await;
        // Paused, the server accepts no more, but the kernel would still complete handshakes
        // into the backlog: shutting the socket refuses them at once.
        if let Err(error) =
            socket2::SockRef::from(&self.listening).shutdown(std::net::Shutdown::Both)
        {
            tracing::warn!(%error, "the listening socket did not shut");
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
        while self.in_flight.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        handle.stop(true).await;
        if let Some((metrics, _)) = &self.metrics_apart {
            metrics.stop(true).await;
        }
        server.await.map_err(std::io::Error::other)??;
        if let Some(worker) = self.worker {
            worker.stop().await;
        }
        if let Err(error) = self.store.close().await {
            tracing::warn!(%error, "the database pool did not close cleanly");
        }
        tracing::info!("handoff stopped");
        Ok(())
    }
}

/// How long requests in flight may take to finish once a stop was asked for.
pub const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The first of SIGINT and SIGTERM, by name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut interrupt), Ok(mut terminate)) => tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
