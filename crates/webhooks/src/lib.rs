//! Webhook delivery: Didit-compatible payloads and signatures, sent at least once from the
//! outbox that the store writes with every change, by a worker in every server. The worker
//! reaches the outbox only through the domain's `DeliveryQueue` port.

pub mod client;
pub mod payload;
pub mod sign;
pub mod worker;

pub use payload::DecisionRenderer;
pub use worker::{ScheduleError, Settings, Worker, WorkerError, WorkerPorts, parse_schedule};
