//! Prometheus metrics, off unless the operator turns them on: requests by route pattern,
//! method and status with their latency, imports by outcome code, shares, rate-limit
//! refusals, the database pool, and webhook deliveries waiting. Labels hold route patterns,
//! methods, statuses and error codes: never an id, a key or personal data.

use std::sync::Arc;
use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use handoff_domain::RepoError;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::AppState;
use crate::rate_limit::Budget;

/// What the metrics read from the storage when scraped.
#[async_trait::async_trait]
pub trait StorageGauges: Send + Sync {
    /// The pool's open connections and how many of them are idle.
    fn pool_connections(&self) -> (u32, u32);
    /// Webhook deliveries due and not yet sent, and how many seconds the earliest has been due.
    async fn webhook_backlog(&self) -> Result<(i64, f64), RepoError>;
    /// Webhook deliveries by state (`pending`, `delivered`, `failed`).
    async fn webhook_deliveries(&self) -> Result<Vec<(String, i64)>, RepoError>;
}

/// The error code of an answer, kept on the response for the metrics.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

/// The route of the import, whose answers are counted by outcome.
const IMPORT_ROUTE: &str = "/v3/session/import-shared/";
/// The route of a share.
const SHARE_ROUTE: &str = "/v3/session/:session_id/share/";

/// A route pattern as a label: its parameters written `:name` (`/v3/session/:session_id/`),
/// a form every tool reads, rather than in braces.
fn label_of(pattern: &str) -> String {
    pattern.replace('{', ":").replace('}', "")
}

/// Every metric, in one registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    imports: IntCounterVec,
    shares: IntCounter,
    rate_limited: IntCounterVec,
    pool: IntGaugeVec,
    webhooks_due: IntGaugeVec,
    deliveries: IntGaugeVec,
    retention: IntCounterVec,
    gauges: Arc<dyn StorageGauges>,
}

impl Metrics {
    /// The metrics, reading the pool and the webhook backlog from `gauges` when scraped.
    pub fn new(gauges: Arc<dyn StorageGauges>) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("handoff".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "Requests answered, by route pattern, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer, by route pattern and method (until the answer's head).",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route", "method"],
        )?;
        let imports = IntCounterVec::new(
            Opts::new(
                "imports_total",
                "Imports of shared sessions, by outcome: `imported` or the error code.",
            ),
            &["outcome"],
        )?;
        let shares = IntCounter::new("shares_total", "Share tokens issued.")?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests refused by a rate limit, by budget (read, write, unauthenticated).",
            ),
            &["budget"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_connections",
                "The database pool's connections, by state (in_use, idle).",
            ),
            &["state"],
        )?;
        let webhooks_due = IntGaugeVec::new(
            Opts::new(
                "webhook_backlog",
                "Webhook deliveries due and not sent (`deliveries`), and seconds since the \
                 earliest fell due (`lag_seconds`).",
            ),
            &["measure"],
        )?;
        let deliveries = IntGaugeVec::new(
            Opts::new(
                "webhook_deliveries",
                "Webhook deliveries kept, by state (pending, delivered, failed).",
            ),
            &["state"],
        )?;
        let retention = IntCounterVec::new(
            Opts::new(
                "retention_total",
                "The retention sweep's work: sessions deleted (`deleted_sessions`), sweeps run \
                 (`sweeps`) and sweeps that failed (`failed_sweeps`).",
            ),
            &["count"],
        )?;
        registry.register(Box::new(retention.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(imports.clone()))?;
        registry.register(Box::new(shares.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        registry.register(Box::new(webhooks_due.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            imports,
            shares,
            rate_limited,
            pool,
            webhooks_due,
            deliveries,
            retention,
            gauges,
        })
    }

    /// Counts a request refused by `budget`'s rate limit.
    pub fn rate_limited(&self, budget: Budget) {
        let label = match budget {
            Budget::Read => "read",
            Budget::Write => "write",
            Budget::Unauthenticated => "unauthenticated",
        };
        self.rate_limited.with_label_values(&[label]).inc();
    }

    /// Counts a retention sweep: how many sessions it deleted, or that it failed.
    pub fn swept(&self, deleted: Option<usize>) {
        self.retention.with_label_values(&["sweeps"]).inc();
        match deleted {
            Some(deleted) => self
                .retention
                .with_label_values(&["deleted_sessions"])
                .inc_by(u64::try_from(deleted).unwrap_or(u64::MAX)),
            None => self.retention.with_label_values(&["failed_sweeps"]).inc(),
        }
    }

    fn answered(&self, route: &str, method: &str, status: u16, code: Option<&str>, took: f64) {
        self.requests.with_label_values(&[route, method, &status.to_string()]).inc();
        self.latency.with_label_values(&[route, method]).observe(took);
        if route == IMPORT_ROUTE && method == "POST" {
            let outcome = if status == 201 { "imported" } else { code.unwrap_or("other") };
            self.imports.with_label_values(&[outcome]).inc();
        }
        if route == SHARE_ROUTE && method == "POST" && status == 200 {
            self.shares.inc();
        }
    }

    /// The metrics in Prometheus' text format, the storage's gauges read now.
    pub async fn render(&self) -> String {
        let (open, idle) = self.gauges.pool_connections();
        self.pool.with_label_values(&["in_use"]).set(i64::from(open.saturating_sub(idle)));
        self.pool.with_label_values(&["idle"]).set(i64::from(idle));
        match self.gauges.webhook_backlog().await {
            Ok((due, lag)) => {
                self.webhooks_due.with_label_values(&["deliveries"]).set(due);
                self.webhooks_due.with_label_values(&["lag_seconds"]).set(lag.round() as i64);
            }
            Err(error) => tracing::warn!(%error, "could not read the webhook backlog"),
        }
        match self.gauges.webhook_deliveries().await {
            Ok(states) => {
                for state in ["pending", "delivered", "failed"] {
                    let n = states.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
                    self.deliveries.with_label_values(&[state]).set(n);
                }
            }
            Err(error) => tracing::warn!(%error, "could not count the webhook deliveries"),
        }
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "could not encode the metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

/// Records every request in the metrics, when they are on. Wrap the app in it.
pub async fn record(
    req: ServiceRequest, next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req.app_data::<web::Data<AppState>>().and_then(|state| state.metrics.clone());
    let Some(metrics) = metrics else {
        return next.call(req).await;
    };
    let started = Instant::now();
    let method = crate::method_label(req.method());
    let answered = next.call(req).await;
    // The pattern is known once the request has been routed; a request stopped by an error
    // before its answer (the deadline) is counted without one.
    let (route, status, code) = match &answered {
        Ok(response) => (
            response.request().match_pattern(),
            response.status(),
            response.response().extensions().get::<ErrorCode>().copied(),
        ),
        Err(error) => (None, error.as_response_error().status_code(), None),
    };
    let route = route.map_or_else(|| "unmatched".to_owned(), |pattern| label_of(&pattern));
    metrics.answered(
        &route,
        method,
        status.as_u16(),
        code.map(|c| c.0),
        started.elapsed().as_secs_f64(),
    );
    answered
}

/// `GET /metrics`: the text format; 404 when the metrics are off.
pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    match &state.metrics {
        Some(metrics) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(metrics.render().await),
        None => {
            actix_web::ResponseError::error_response(&crate::error::ApiError::route_not_found())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn route_labels_name_parameters_with_a_colon() {
        assert_eq!(
            super::label_of("/v3/session/{session_id}/shares/{jti}/revoke/"),
            "/v3/session/:session_id/shares/:jti/revoke/"
        );
        assert_eq!(super::label_of("/health/"), "/health/");
    }
}
