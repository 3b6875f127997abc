//! Settings, from flags and the environment (flags win). The README's table lists each one.

use std::time::Duration;

/// Where the SQLite file lives when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:data/handoff.db?mode=rwc";
/// The default listening address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite:...` or `postgres://...`.
    pub database_url: String,
    /// `HANDOFF_BIND` / `--bind`.
    pub bind: String,
    /// `HANDOFF_PUBLIC_URL`: the base of session URLs; `http://<bind>` when unset.
    pub public_url: Option<String>,
    /// `HANDOFF_DB_MAX_CONNECTIONS`.
    pub max_connections: u32,
    /// `HANDOFF_RESULTS_BODY_LIMIT`: bytes of a recorded-results body.
    pub results_body_limit: usize,
    /// `HANDOFF_WORKERS`: HTTP worker threads; one per core when unset.
    pub workers: Option<usize>,
    /// How long to wait for the database.
    pub acquire_timeout: Duration,
}

impl Config {
    /// The defaults: SQLite under `./data/`, `127.0.0.1:8080`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            bind: DEFAULT_BIND.to_owned(),
            public_url: None,
            max_connections: 16,
            results_body_limit: 2 * 1024 * 1024,
            workers: None,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}
