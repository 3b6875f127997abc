//! A cap per application on concurrent heavy requests — recorded results, decisions and PDF
//! reports, whose bodies can reach megabytes. An application's heavy requests beyond the cap
//! wait for one of its own to finish, so a tenant queues behind itself, not in front of others;
//! its waiting requests are capped too (429 beyond). A slot is held until the answer has been
//! written, so the bytes in memory are bounded per application.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use handoff_domain::{ApplicationId, Caller};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppState;
use crate::error::ApiError;

/// The cap: heavy requests per application in progress, and waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeavyLimits {
    /// In progress at once, per application.
    pub per_application: usize,
    /// Waiting for a slot, per application; more are refused with 429.
    pub waiting_per_application: usize,
}

impl Default for HeavyLimits {
    /// Half the machine's cores (at least 1) per application, so that one application's heavy
    /// requests leave the other half to everyone else; 32 waiting.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self { per_application: (cores / 2).max(1), waiting_per_application: 32 }
    }
}

/// One application's slots and how many requests wait for one.
struct Lane {
    slots: Arc<Semaphore>,
    waiting: usize,
}

/// The slots of every application (shared by the server's workers).
#[derive(Clone, Default)]
pub struct HeavyGate {
    lanes: Arc<Mutex<HashMap<ApplicationId, Lane>>>,
}

/// Applications tracked before idle lanes are swept.
const SWEEP_AT: usize = 10_000;

impl HeavyGate {
    fn lanes(&self) -> std::sync::MutexGuard<'_, HashMap<ApplicationId, Lane>> {
        self.lanes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot of `application`'s, waiting for one when all are taken; `None` when too many
    /// of its requests wait already.
    async fn enter(
        &self, application: ApplicationId, limits: HeavyLimits,
    ) -> Option<OwnedSemaphorePermit> {
        let slots = {
            let mut lanes = self.lanes();
            if lanes.len() >= SWEEP_AT {
                lanes.retain(|_, lane| {
                    lane.waiting > 0
                        || Arc::strong_count(&lane.slots) > 1
                        || lane.slots.available_permits() < limits.per_application
                });
            }
            let lane = lanes.entry(application).or_insert_with(|| Lane {
                slots: Arc::new(Semaphore::new(limits.per_application)),
                waiting: 0,
            });
            if let Ok(permit) = lane.slots.clone().try_acquire_owned() {
                return Some(permit);
            }
            if lane.waiting >= limits.waiting_per_application {
                return None;
            }
            lane.waiting += 1;
            lane.slots.clone()
        };
        // Counted out again however the wait ends, the request's drop included.
        let _waiting = Waiting(self, application);
        slots.acquire_owned().await.ok()
    }
}

/// One waiting request of an application, counted until dropped.
struct Waiting<'a>(&'a HeavyGate, ApplicationId);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(lane) = self.0.lanes().get_mut(&self.1) {
            lane.waiting -= 1;
        }
    }
}

/// Runs a heavy request in one of its application's slots: wrap the heavy resources in it,
/// inside the authentication (`from_fn(heavy)`).
pub async fn heavy(
    req: ServiceRequest, next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let caller = req.extensions().get::<Caller>().cloned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(caller), Some(state)) = (caller, state) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(permit) = state.heavy.enter(caller.application_id, state.limits.heavy).await else {
        let sentence = "Too many of this application's large requests are in progress or \
                        waiting; retry when some have finished.";
        // The console's pages are refused with a page.
        let mut response = if req.path().starts_with("/console/") {
            crate::console::message(StatusCode::TOO_MANY_REQUESTS, sentence)
        } else {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_concurrent_requests", sentence)
                .error_response()
        };
        response.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("1"),
        );
        return Ok(req.into_response(response));
    };
    let response = next.call(req).await?;
    Ok(response.map_body(|_, body| BoxBody::new(Holding { body: body.boxed(), _permit: permit })))
}

/// An answer's body that keeps its request's slot until it has been written or dropped.
struct Holding {
    body: BoxBody,
    _permit: OwnedSemaphorePermit,
}

impl MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>, cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
