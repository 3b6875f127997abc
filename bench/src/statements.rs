//! Statements per import, counted on the benchmark's side: a store opened with
//! `log_statements` makes the driver log each statement as a `sqlx::query` event, and the
//! layer here counts those events. The production store counts nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The driver's statement log.
const TARGET: &str = "sqlx::query";

/// The number of statements the driver has logged in this process.
#[derive(Clone, Default)]
pub struct StatementCount(Arc<AtomicU64>);

impl StatementCount {
    /// Installs the counting layer as the process's subscriber; call once, first.
    pub fn install() -> StatementCount {
        let count = StatementCount::default();
        let layer = Counter(count.0.clone()).with_filter(
            Targets::new().with_target(TARGET, tracing::level_filters::LevelFilter::TRACE),
        );
        let _ = tracing_subscriber::registry().with(layer).try_init();
        count
    }

    /// Statements logged so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

struct Counter(Arc<AtomicU64>);

impl<S: Subscriber> Layer<S> for Counter {
    fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
