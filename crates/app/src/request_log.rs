//! One log line per request, with a request id that is also returned as `x-request-id`; and the
//! count of requests in flight, which a graceful stop waits on.
//!
//! The line names the matched route pattern (`/v3/users/{vendor_data}/`), never the raw path,
//! query or headers, so that ids, `vendor_data` and keys stay out of the logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

/// Requests being served now, from their head to their response (a request whose body is
/// still arriving counts).
#[derive(Clone, Default)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// How many now.
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One request in flight, until dropped (a cancelled request too).
struct Serving(Arc<AtomicUsize>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) async fn log_request(
    req: ServiceRequest, next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let _serving = req.app_data::<actix_web::web::Data<InFlight>>().map(|in_flight| {
        in_flight.0.fetch_add(1, Ordering::AcqRel);
        Serving(in_flight.0.clone())
    });
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = handoff_http::method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| "(unmatched)".to_owned());
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %request_id);
    let result = next.call(req).instrument(span.clone()).await;
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            tracing::info!(%method, %route, status, elapsed_ms = started.elapsed().as_millis() as u64, "request");
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
            }
            Ok(response)
        }
        Err(error) => {
            tracing::warn!(%method, %route, "request failed before a response");
            Err(error)
        }
    }
}
