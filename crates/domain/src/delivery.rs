//! Webhook deliveries as the delivery worker sees them: what one claim takes, a delivery it
//! claimed, and what an attempt gave. The queue itself is the [`DeliveryQueue`] port.
//!
//! [`DeliveryQueue`]: crate::ports::DeliveryQueue

use crate::ids::{ApplicationId, DeliveryId, DestinationId, EventId, SessionId};
use crate::webhook::SealedSecret;
use chrono::{DateTime, Utc};

/// What one claim takes.
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    /// The most deliveries.
    pub limit: usize,
    /// The most deliveries to any one destination.
    pub per_destination: usize,
    /// Destinations to take none of (the worker has theirs under way).
    pub busy: &'a [DestinationId],
    /// How long the claim holds.
    pub lease: chrono::Duration,
}

/// A delivery the worker claimed: what to send, where, signed with which secrets.
#[derive(Clone)]
pub struct DueDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// Its attempt number, this one included.
    pub attempt: i32,
    /// The event.
    pub event_id: EventId,
    /// The event's application.
    pub application_id: ApplicationId,
    /// The event's type.
    pub webhook_type: String,
    /// The event's session.
    pub session_id: Option<SessionId>,
    /// What the event's change said (`status`, the log's details).
    pub facts: serde_json::Value,
    /// When the change happened.
    pub created_at: DateTime<Utc>,
    /// The payload, once rendered by an earlier attempt.
    pub payload: Option<String>,
    /// Where to send it.
    pub url: String,
    /// The destination, for the secret's context.
    pub destination_id: DestinationId,
    /// The destination's secret, sealed.
    pub secret: SealedSecret,
    /// The secret before the last rotation, sealed, while it still signs.
    pub previous_secret: Option<SealedSecret>,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .field("webhook_type", &self.webhook_type)
            .finish_non_exhaustive()
    }
}

/// What an attempt gave.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered {
        /// The answer's status.
        status: u16,
    },
    /// Anything else; the next attempt at `retry_at`, or none (`failed`).
    Failed {
        /// The answer's status, if one came.
        status: Option<u16>,
        /// Why, without the answer's body.
        error: String,
        /// When to try again; `None` fails the delivery.
        retry_at: Option<DateTime<Utc>>,
    },
}
