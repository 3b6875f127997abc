//! Prometheus metrics: the storage's gauges, and the server of their own address
//! (`HANDOFF_METRICS_BIND`).

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, HttpServer, web};
use handoff_domain::RepoError;
use handoff_http::AppState;
use handoff_http::metrics::{Metrics, StorageGauges};
use handoff_store::Store;

use crate::StartError;
use crate::config::MetricsEndpoint;

/// The pool and the webhook backlog, read from the store at each scrape.
struct StoreGauges(Store);

#[async_trait::async_trait]
impl StorageGauges for StoreGauges {
    fn pool_connections(&self) -> (u32, u32) {
        self.0.pool_connections()
    }

    async fn webhook_backlog(&self) -> Result<(i64, f64), RepoError> {
        let now = chrono::Utc::now();
        let (due, earliest) = self.0.webhook_backlog(now).await?;
        let lag = earliest.map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
        Ok((due, lag))
    }

    async fn webhook_deliveries(&self) -> Result<Vec<(String, i64)>, RepoError> {
        self.0.webhook_deliveries_by_state().await
    }
}

/// The metrics when `endpoint` turns them on.
pub fn collect(
    endpoint: &MetricsEndpoint, store: &Store,
) -> Result<Option<Arc<Metrics>>, StartError> {
    if *endpoint == MetricsEndpoint::Off {
        return Ok(None);
    }
    Metrics::new(Arc::new(StoreGauges(store.clone())))
        .map(|metrics| Some(Arc::new(metrics)))
        .map_err(|e| StartError::Config(format!("metrics: {e}")))
}

/// The server of `/metrics` alone on `listener`, and its port.
pub fn serve_apart(
    listener: std::net::TcpListener, state: AppState,
) -> Result<(Server, u16), StartError> {
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .wrap(NormalizePath::new(TrailingSlash::Always))
            .route("/metrics/", web::get().to(handoff_http::metrics::scrape))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartError::Bind {
        address,
        setting: "--metrics-bind or HANDOFF_METRICS_BIND",
        source,
    })?
    .run();
    Ok((server, port))
}
