//! Settings, from flags and the environment (flags win). The README's table lists each one.

use std::time::Duration;

/// A setting (a flag, a variable, a key file) that is wrong, said in one line that names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingError(pub String);

impl From<String> for SettingError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// The directory of the SQLite file when neither `DATABASE_URL` nor a data directory is given:
/// `$XDG_DATA_HOME/handoff`, else `$HOME/.local/share/handoff`, so that every command finds the
/// same database whatever its working directory; `./data` only when neither variable is set.
pub fn default_data_dir() -> std::path::PathBuf {
    let absolute = |name: &str| {
        std::env::var_os(name).map(std::path::PathBuf::from).filter(|path| path.is_absolute())
    };
    if let Some(data_home) = absolute("XDG_DATA_HOME") {
        data_home.join("handoff")
    } else if let Some(home) = absolute("HOME") {
        home.join(".local/share/handoff")
    } else {
        std::path::PathBuf::from("data")
    }
}

/// The SQLite database in `data_dir`.
pub fn sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite:{}?mode=rwc", data_dir.join("handoff.db").display())
}
/// The default listening address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Where Prometheus metrics are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsEndpoint {
    /// Not at all, and not collected.
    Off,
    /// At `/metrics` on the API's address.
    WithApi,
    /// At `/metrics` on an address of their own, not on the API's.
    Bind(String),
}

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite:...` or `postgres://...`.
    pub database_url: String,
    /// `HANDOFF_BIND` / `--bind`.
    pub bind: String,
    /// `HANDOFF_PUBLIC_URL`: the base of session URLs; `http://<bind>` when unset.
    pub public_url: Option<String>,
    /// `HANDOFF_DB_MAX_CONNECTIONS`: the cores plus one unless set.
    pub max_connections: u32,
    /// `HANDOFF_RESULTS_BODY_LIMIT`: bytes of a recorded-results body.
    pub results_body_limit: usize,
    /// How many feature items a session may hold: `HANDOFF_MAX_ITEMS_PER_BLOCK`,
    /// `HANDOFF_MAX_ITEMS_PER_SESSION`.
    pub item_limits: handoff_domain::services::ItemLimits,
    /// Concurrent heavy requests per application: `HANDOFF_HEAVY_REQUESTS_PER_APPLICATION`,
    /// `HANDOFF_HEAVY_WAITING_PER_APPLICATION`.
    pub heavy_requests: handoff_http::heavy::HeavyLimits,
    /// How long requests may take: `HANDOFF_HEAD_TIMEOUT_SECONDS`,
    /// `HANDOFF_BODY_TIMEOUT_SECONDS`, `HANDOFF_REQUEST_DEADLINE_SECONDS`.
    pub timeouts: Timeouts,
    /// `HANDOFF_WORKERS`: HTTP worker threads; one per core when unset.
    pub workers: Option<usize>,
    /// How long to wait for the database.
    pub acquire_timeout: Duration,
    /// `HANDOFF_RATE_LIMIT`: budgets per API key, or `None` for off.
    pub rate_limits: Option<handoff_http::rate_limit::RateLimits>,
    /// `HANDOFF_TOKEN_SECRET`: the share-token signing secret (at least 32 bytes). When unset,
    /// keys are kept in the database, generated on first start.
    pub token_secret: Option<Secret>,
    /// `HANDOFF_TOKEN_VERIFY_SECRETS`: earlier secrets, comma-separated, that still verify.
    pub token_verify_secrets: Vec<Secret>,
    /// `HANDOFF_ACCEPT_UNLISTED_TOKENS`: import tokens this deployment did not issue (signed
    /// with a shared secret, no ledger row), once per receiver.
    pub accept_unlisted_tokens: bool,
    /// Where Prometheus metrics are served: `HANDOFF_METRICS`, `HANDOFF_METRICS_BIND`.
    pub metrics: MetricsEndpoint,
    /// `HANDOFF_TOKEN_ALG`: what new share tokens are signed with (`HS256` or `EdDSA`).
    pub token_algorithm: handoff_token::TokenAlgorithm,
    /// `HANDOFF_KEY_ENCRYPTION_KEY`: seals the signing keys kept in the database (at least 32
    /// bytes). When unset, `key_file` holds one.
    pub key_encryption_key: Option<Secret>,
    /// The file of the key-encryption key when none is given: created (mode 0600) on first
    /// use. The command line puts it in the data directory.
    pub key_file: Option<std::path::PathBuf>,
    /// `HANDOFF_KEY_RELOAD_SECONDS`: how often database keys are reloaded, so that rotations
    /// and retirements reach running servers.
    pub key_reload_interval: Duration,
    /// Webhook delivery: `HANDOFF_WEBHOOK_ALLOW_PRIVATE`, `HANDOFF_WEBHOOK_RETRY_SCHEDULE`,
    /// `HANDOFF_WEBHOOK_TIMEOUT_SECONDS`.
    pub webhooks: handoff_webhooks::Settings,
    /// Whether this server runs a delivery worker (`HANDOFF_WEBHOOK_WORKER`, on by default).
    pub webhook_worker: bool,
    /// `HANDOFF_FEDERATION_ALLOW_PRIVATE`: partners may be reached over plain HTTP and at
    /// private addresses (for tests and private networks).
    pub federation_allow_private: bool,
    /// `HANDOFF_RETENTION_SWEEP_SECONDS`: how often the server deletes the sessions that
    /// applications' retention no longer allows (the first sweep runs at start).
    pub retention_sweep: Duration,
}

/// `HANDOFF_FEDERATION_ALLOW_PRIVATE` of the environment (off unless set).
pub fn federation_allow_private_from_env() -> Result<bool, SettingError> {
    match std::env::var("HANDOFF_FEDERATION_ALLOW_PRIVATE")
        .ok()
        .filter(|v| !v.is_empty())
        .as_deref()
    {
        None | Some("false" | "0" | "off" | "no") => Ok(false),
        Some("true" | "1" | "on" | "yes") => Ok(true),
        Some(other) => Err(SettingError(format!(
            "HANDOFF_FEDERATION_ALLOW_PRIVATE: {other:?} is not true or false"
        ))),
    }
}

/// How long a request may take, by part.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From the connection (or the previous request) to the end of the request's head; a
    /// slower client gets 408 and is disconnected.
    pub head: Duration,
    /// From the head to the end of the body (408 `request_timeout`).
    pub body: Duration,
    /// The whole request, body and work (503 `deadline_exceeded`).
    pub deadline: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            head: Duration::from_secs(5),
            body: handoff_http::DEFAULT_BODY_TIMEOUT,
            deadline: handoff_http::DEFAULT_DEADLINE,
        }
    }
}

/// The webhook settings of the environment.
pub fn webhook_settings_from_env() -> Result<(handoff_webhooks::Settings, bool), SettingError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let flag = |name: &str, default: bool| match var(name).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "on" | "yes") => Ok(true),
        Some("false" | "0" | "off" | "no") => Ok(false),
        Some(other) => Err(format!("{name}: {other:?} is not true or false")),
    };
    let mut settings = handoff_webhooks::Settings {
        allow_private: flag("HANDOFF_WEBHOOK_ALLOW_PRIVATE", false)?,
        ..handoff_webhooks::Settings::default()
    };
    if let Some(raw) = var("HANDOFF_WEBHOOK_RETRY_SCHEDULE") {
        settings.schedule = handoff_webhooks::parse_schedule(&raw)
            .map_err(|e| format!("HANDOFF_WEBHOOK_RETRY_SCHEDULE: {e}"))?;
    }
    if let Some(raw) = var("HANDOFF_WEBHOOK_TIMEOUT_SECONDS") {
        let seconds =
            raw.parse::<u64>().ok().filter(|s| (1..=60).contains(s)).ok_or_else(|| {
                format!("HANDOFF_WEBHOOK_TIMEOUT_SECONDS: {raw:?} is not 1 to 60")
            })?;
        settings.timeout = Duration::from_secs(seconds);
    }
    Ok((settings, flag("HANDOFF_WEBHOOK_WORKER", true)?))
}

/// The name of the key-encryption key's file in the data directory.
pub const KEY_FILE_NAME: &str = "key-encryption-key";

/// The settings of share-token keys read from the environment, shared by `serve` and the
/// operator commands so that both open the same keys.
#[derive(Clone, Debug)]
pub struct KeySettings {
    /// `HANDOFF_TOKEN_ALG`.
    pub token_algorithm: handoff_token::TokenAlgorithm,
    /// `HANDOFF_KEY_ENCRYPTION_KEY`.
    pub key_encryption_key: Option<Secret>,
    /// `HANDOFF_KEY_RELOAD_SECONDS`.
    pub key_reload_interval: Duration,
}

impl KeySettings {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, SettingError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let token_algorithm = match var("HANDOFF_TOKEN_ALG") {
            None => handoff_token::TokenAlgorithm::default(),
            Some(raw) => handoff_token::TokenAlgorithm::parse(&raw)
                .map_err(|e| format!("HANDOFF_TOKEN_ALG: {e}"))?,
        };
        let key_reload_interval = match var("HANDOFF_KEY_RELOAD_SECONDS") {
            None => crate::KEY_RELOAD_INTERVAL,
            Some(raw) => match raw.parse::<u64>() {
                Ok(seconds @ 1..=86_400) => Duration::from_secs(seconds),
                _ => {
                    return Err(SettingError(format!(
                        "HANDOFF_KEY_RELOAD_SECONDS: {raw:?} is not a number of seconds from 1 to 86400"
                    )));
                }
            },
        };
        Ok(Self {
            token_algorithm,
            key_encryption_key: var("HANDOFF_KEY_ENCRYPTION_KEY").map(Secret),
            key_reload_interval,
        })
    }
}

/// A secret setting; its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// The secrets of the environment: `HANDOFF_TOKEN_SECRET` and `HANDOFF_TOKEN_VERIFY_SECRETS`.
    pub fn from_env() -> (Option<Secret>, Vec<Secret>) {
        let secret =
            std::env::var("HANDOFF_TOKEN_SECRET").ok().filter(|s| !s.is_empty()).map(Secret);
        let verify = std::env::var("HANDOFF_TOKEN_VERIFY_SECRETS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Secret(s.to_owned()))
            .collect();
        (secret, verify)
    }
}

impl Config {
    /// The defaults: SQLite under `./data/`, `127.0.0.1:8080`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            bind: DEFAULT_BIND.to_owned(),
            public_url: None,
            max_connections: handoff_store::default_max_connections(),
            results_body_limit: 2 * 1024 * 1024,
            timeouts: Timeouts::default(),
            item_limits: handoff_domain::services::ItemLimits::default(),
            heavy_requests: handoff_http::heavy::HeavyLimits::default(),
            workers: None,
            acquire_timeout: Duration::from_secs(5),
            rate_limits: Some(handoff_http::rate_limit::RateLimits::default()),
            token_secret: None,
            token_verify_secrets: Vec::new(),
            accept_unlisted_tokens: false,
            metrics: MetricsEndpoint::Off,
            token_algorithm: handoff_token::TokenAlgorithm::default(),
            key_encryption_key: None,
            key_file: None,
            key_reload_interval: crate::KEY_RELOAD_INTERVAL,
            webhooks: handoff_webhooks::Settings::default(),
            webhook_worker: true,
            federation_allow_private: false,
            retention_sweep: Duration::from_secs(3600),
        }
    }
}
