//! The command line: `serve`, `migrate`, and the operator's application and key commands.
//! Operator commands print one JSON object per line on stdout.

use clap::{Args, Parser, Subcommand};

use crate::config::{
    Config, DEFAULT_BIND, KEY_FILE_NAME, KeySettings, default_data_dir, sqlite_url,
};

/// handoff: share finished identity verifications between applications.
#[derive(Debug, Parser)]
#[command(name = "handoff", version, about)]
pub struct Cli {
    /// The database: `sqlite:PATH?mode=rwc` or `postgres://USER@HOST/DB` (default: the SQLite
    /// file `handoff.db` in the data directory).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// The directory of the default SQLite file (default: `$XDG_DATA_HOME/handoff`, else
    /// `~/.local/share/handoff`); ignored when a database URL is given.
    #[arg(long, env = "HANDOFF_DATA_DIR", global = true)]
    pub data_dir: Option<std::path::PathBuf>,

    /// Most database connections in the pool (by default the cores, plus one); on SQLite,
    /// write transactions run on one more, of their own.
    #[arg(
        long,
        env = "HANDOFF_DB_MAX_CONNECTIONS",
        default_value_t = handoff_store::default_max_connections(),
        global = true
    )]
    pub db_max_connections: u32,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations, then serve the HTTP API.
    Serve(ServeArgs),
    /// Serve a demo on a fresh temporary SQLite database: two applications, finished KYC and
    /// KYB sessions, one shared and imported; prints the keys and a walk-through. It ignores
    /// DATABASE_URL and HANDOFF_DATA_DIR, and refuses --database-url and --data-dir.
    Demo {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Run pending migrations and exit.
    Migrate,
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Create and list applications.
    #[command(subcommand)]
    Applications(ApplicationsCommand),
    /// Create and revoke API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// Rotate the share-token keys kept in the database (when HANDOFF_TOKEN_SECRET is unset).
    #[command(subcommand, name = "signing-keys")]
    SigningKeys(SigningKeysCommand),
    /// List and revoke the share tokens an application issued for one of its sessions.
    #[command(subcommand)]
    Shares(SharesCommand),
    /// Manage an application's webhook destinations and their deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The partner deployments this one shares with (sharing across deployments).
    #[command(subcommand)]
    Partners(PartnersCommand),
    /// A data subject's request: everything an application keeps of one `vendor_data`.
    #[command(subcommand)]
    Subjects(SubjectsCommand),
    /// The people who sign in to an application's review console.
    #[command(subcommand)]
    Reviewers(ReviewersCommand),
}

/// `reviewers ...`: one JSON line per reviewer.
#[derive(Debug, Subcommand)]
pub enum ReviewersCommand {
    /// Add a reviewer; prints its first password (and with `--totp` the `otpauth://` address
    /// of its one-time codes), shown only here.
    Add {
        /// The application whose sessions it reviews.
        #[arg(long)]
        application: uuid::Uuid,
        /// Its email: how it signs in, and how its decisions name it.
        #[arg(long)]
        email: String,
        /// `reviewer` (reads and decides sessions) or `admin` (also shares and revokes).
        #[arg(long, default_value = "reviewer", value_parser = parse_role)]
        role: handoff_domain::reviewer::ReviewerRole,
        /// It signs in with a one-time code from an authenticator app as well.
        #[arg(long)]
        totp: bool,
    },
    /// The application's reviewers (never a password).
    List {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
    },
    /// Remove a reviewer; its open console sessions end at their next request.
    Remove {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
        /// Its email.
        #[arg(long)]
        email: String,
    },
}

fn parse_role(raw: &str) -> Result<handoff_domain::reviewer::ReviewerRole, String> {
    handoff_domain::reviewer::ReviewerRole::parse(raw)
        .ok_or_else(|| format!("{raw:?} is not reviewer or admin"))
}

/// `subjects ...`: the person or company an application knows by a `vendor_data` (matched
/// case-insensitively, as the session list matches it).
#[derive(Debug, Subcommand)]
pub enum SubjectsCommand {
    /// Print, as one JSON object, their User and Business and every session of theirs: its
    /// decision (V3), its events (a clone's provenance among them) and its share tokens.
    Export {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
        /// Their `vendor_data`.
        #[arg(long, value_parser = parse_vendor_data)]
        vendor_data: handoff_domain::VendorData,
    },
    /// Delete every session of theirs, with every related row, and their User and Business;
    /// prints how many of each.
    Erase {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
        /// Their `vendor_data`.
        #[arg(long, value_parser = parse_vendor_data)]
        vendor_data: handoff_domain::VendorData,
    },
}

fn parse_vendor_data(raw: &str) -> Result<handoff_domain::VendorData, String> {
    handoff_domain::VendorData::parse(raw).map_err(str::to_owned)
}

/// `partners ...`: one JSON line per partner.
#[derive(Debug, Subcommand)]
pub enum PartnersCommand {
    /// Trust the deployment at `--url`: import the tokens it issues, and (with
    /// `--application`) share with those of its applications. Fetches its published keys.
    Add {
        /// A name for it: 1 to 64 of a-z, 0-9, '-', '_' and '.'.
        #[arg(long)]
        name: String,
        /// Its public URL (its HANDOFF_PUBLIC_URL): https, unless
        /// HANDOFF_FEDERATION_ALLOW_PRIVATE is set.
        #[arg(long)]
        url: String,
        /// One of its applications this deployment may share with; repeat for more.
        #[arg(long = "application")]
        applications: Vec<uuid::Uuid>,
    },
    /// Every partner.
    List,
    /// Stop trusting a partner.
    Remove {
        /// Its name.
        name: String,
    },
}

/// `webhooks ...`: one JSON line per destination or delivery.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add a destination; prints it with its secret (shown only here).
    Create {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
        /// Where to POST events.
        #[arg(long)]
        url: String,
        /// A name for people.
        #[arg(long)]
        label: Option<String>,
        /// Event types, comma-separated (default: status.updated,data.updated).
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
    },
    /// The application's destinations.
    List {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
    },
    /// Delete a destination and its deliveries.
    Delete {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
        /// The destination.
        #[arg(long)]
        destination: uuid::Uuid,
    },
    /// A destination's deliveries, newest first.
    Deliveries {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
        /// The destination.
        #[arg(long)]
        destination: uuid::Uuid,
        /// How many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Send a delivery again, now.
    Resend {
        /// The application.
        #[arg(long)]
        application: uuid::Uuid,
        /// The destination.
        #[arg(long)]
        destination: uuid::Uuid,
        /// The delivery.
        #[arg(long)]
        delivery: uuid::Uuid,
    },
}

/// `shares ...`.
#[derive(Debug, Subcommand)]
pub enum SharesCommand {
    /// Every token issued for the session, oldest first, one JSON line each.
    List {
        /// The application that holds the session.
        #[arg(long)]
        application: uuid::Uuid,
        /// The session.
        #[arg(long)]
        session: uuid::Uuid,
    },
    /// Revoke one of them; prints it as it stands then.
    Revoke {
        /// The application that holds the session.
        #[arg(long)]
        application: uuid::Uuid,
        /// The session.
        #[arg(long)]
        session: uuid::Uuid,
        /// The token's id.
        #[arg(long)]
        jti: String,
    },
    /// Block a token by its id, whoever issued it: a token this deployment accepts without
    /// having issued it (`HANDOFF_ACCEPT_UNLISTED_TOKENS`) can no longer be imported (one
    /// without a `jti` is named `sha256:` and the hex SHA-256 of the token).
    Block {
        /// The token's id.
        #[arg(long)]
        jti: String,
    },
}

/// `signing-keys ...`.
#[derive(Debug, Subcommand)]
pub enum SigningKeysCommand {
    /// List the keys (never their secrets).
    List,
    /// Add a new key, sealed like the others; servers start signing with it once every server
    /// has loaded it (two reload periods).
    Rotate {
        /// `HS256` or `EdDSA` (default: `HANDOFF_TOKEN_ALG`, else `HS256`). Servers sign with
        /// the newest key of their own `HANDOFF_TOKEN_ALG`.
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// Seal every key again under the current key-encryption key (`HANDOFF_KEY_ENCRYPTION_KEY`
    /// or the key file), opening them with the previous one, given in
    /// `HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY`. Stop the servers first; start them with the new
    /// key-encryption key.
    Reseal,
    /// Retire a key: tokens it signed stop verifying once servers reload their keys.
    Retire {
        /// The key id.
        #[arg(long)]
        kid: String,
    },
}

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "HANDOFF_BIND", default_value = DEFAULT_BIND)]
    pub bind: String,
    /// The base URL of session links (`<url>/session/<token>`); `http://<bind>` when unset.
    #[arg(long, env = "HANDOFF_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest recorded-results body, in bytes.
    #[arg(long, env = "HANDOFF_RESULTS_BODY_LIMIT", default_value_t = 2 * 1024 * 1024)]
    pub results_body_limit: usize,
    /// Most feature items in one block of a session (1 to 100,000).
    #[arg(long, env = "HANDOFF_MAX_ITEMS_PER_BLOCK", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_items_per_block: u32,
    /// Most feature items in all of a session's blocks (1 to 100,000).
    #[arg(long, env = "HANDOFF_MAX_ITEMS_PER_SESSION", default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_items_per_session: u32,
    /// Heavy requests (results, decisions, PDF reports) one application may have in progress
    /// at once (1 to 1,000; half the cores, at least 1, when unset); the rest wait.
    #[arg(long, env = "HANDOFF_HEAVY_REQUESTS_PER_APPLICATION", value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub heavy_requests_per_application: Option<u32>,
    /// Heavy requests of one application that may wait for a slot (0 to 10,000); more are
    /// refused with 429.
    #[arg(long, env = "HANDOFF_HEAVY_WAITING_PER_APPLICATION", default_value_t = 32, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub heavy_waiting_per_application: u32,
    /// Seconds a request's head may take to arrive (1 to 300).
    #[arg(long, env = "HANDOFF_HEAD_TIMEOUT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub head_timeout_seconds: u64,
    /// Seconds a request's body may take to arrive after its head (1 to 300).
    #[arg(long, env = "HANDOFF_BODY_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub body_timeout_seconds: u64,
    /// Seconds a whole request may take (1 to 600).
    #[arg(long, env = "HANDOFF_REQUEST_DEADLINE_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_deadline_seconds: u64,
    /// Seconds between two retention sweeps (1 to 86400); the first runs at start.
    #[arg(long, env = "HANDOFF_RETENTION_SWEEP_SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub retention_sweep_seconds: u64,
    /// HTTP worker threads; one per core when unset.
    #[arg(long, env = "HANDOFF_WORKERS")]
    pub workers: Option<usize>,
    /// Requests per minute and API key: `READS,WRITES`, or `off`.
    #[arg(long, env = "HANDOFF_RATE_LIMIT", default_value = "600,300,60", value_parser = parse_rate_limit)]
    pub rate_limit: RateLimitSetting,
    /// Import tokens this deployment did not issue (signed with a shared secret, no `jti` this
    /// deployment recorded), once per receiver.
    #[arg(long, env = "HANDOFF_ACCEPT_UNLISTED_TOKENS", default_value_t = false)]
    pub accept_unlisted_tokens: bool,
    /// Prometheus metrics at `/metrics` on the API's address: `on` or `off`.
    #[arg(long, env = "HANDOFF_METRICS", default_value = "off", value_parser = ["on", "off"])]
    pub metrics: String,
    /// Prometheus metrics on this address of their own instead (and on), e.g. `127.0.0.1:9100`.
    #[arg(long, env = "HANDOFF_METRICS_BIND")]
    pub metrics_bind: Option<String>,
}

/// A parsed `--rate-limit`.
#[derive(Clone, Debug)]
pub struct RateLimitSetting(pub Option<handoff_http::rate_limit::RateLimits>);

fn parse_rate_limit(
    raw: &str,
) -> Result<RateLimitSetting, handoff_http::rate_limit::RateLimitSettingError> {
    handoff_http::rate_limit::RateLimits::parse(raw).map(RateLimitSetting)
}

/// `applications ...`.
#[derive(Debug, Subcommand)]
pub enum ApplicationsCommand {
    /// Create an application and its first API key (shown only here).
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
    },
    /// List applications.
    List,
    /// Change an application's settings; prints them as they stand then.
    Update {
        /// The application id.
        #[arg(long)]
        application: uuid::Uuid,
        /// Whether every share must record the person's consent (`true` or `false`).
        #[arg(long, action = clap::ArgAction::Set)]
        require_consent: Option<bool>,
        /// Whether the review console takes the application's API keys to sign in (`true` or
        /// `false`); reviewers sign in as themselves either way.
        #[arg(long, action = clap::ArgAction::Set)]
        console_api_keys: Option<bool>,
        /// How many days a session is kept after it finished (1 to 3650), or `unlimited`.
        #[arg(long, value_parser = parse_retention)]
        retention_days: Option<Retention>,
    },
    /// Destroy the application's key and its sessions' data keys: none of its sessions' data
    /// opens again, from this database or any copy of it made after; its sessions answer 404.
    Erase {
        /// The application id.
        #[arg(long)]
        application: uuid::Uuid,
    },
}

/// `api-keys ...`.
#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Add an API key to an application (shown only here): with every right, or named and
    /// scoped.
    Create {
        /// The application id.
        #[arg(long)]
        application: uuid::Uuid,
        /// A name for people (1 to 100 characters).
        #[arg(long)]
        name: Option<String>,
        /// A right, `<resource>:read` or `<resource>:write` (resources: sessions, reviews,
        /// shares, workflows, users, businesses, webhooks, lists); repeat for more. None: every
        /// right.
        #[arg(long = "scope", value_parser = parse_scope)]
        scopes: Vec<handoff_domain::Scope>,
        /// A workflow whose sessions the key sees (the others do not exist for it); repeat
        /// for more. None: every workflow.
        #[arg(long = "workflow")]
        workflows: Vec<uuid::Uuid>,
        /// A client address or CIDR block the key is accepted from; repeat for more. None: any.
        #[arg(long = "ip", value_parser = parse_address_block)]
        addresses: Vec<handoff_domain::grant::IpNet>,
        /// When the key stops authenticating (RFC 3339).
        #[arg(long)]
        expires: Option<chrono::DateTime<chrono::FixedOffset>>,
    },
    /// List an application's keys, revoked ones too (never a secret).
    List {
        /// The application id.
        #[arg(long)]
        application: uuid::Uuid,
    },
    /// Revoke an application's API key by its prefix.
    Revoke {
        /// The application id.
        #[arg(long)]
        application: uuid::Uuid,
        /// The key's prefix: the 12 hex digits after `hk_`.
        #[arg(long)]
        prefix: String,
    },
}

fn parse_scope(text: &str) -> Result<handoff_domain::Scope, String> {
    text.parse().map_err(|e: handoff_domain::grant::UnknownScope| e.to_string())
}

fn parse_address_block(text: &str) -> Result<handoff_domain::grant::IpNet, String> {
    handoff_domain::grant::parse_address_block(text)
        .ok_or_else(|| format!("not an address or CIDR block: {text:?}"))
}

impl Cli {
    /// The server configuration of `serve`.
    pub fn config(&self, serve: &ServeArgs) -> Result<Config, crate::config::SettingError> {
        let (webhooks, webhook_worker) = crate::config::webhook_settings_from_env()?;
        Ok(Config {
            bind: serve.bind.clone(),
            public_url: serve.public_url.clone(),
            max_connections: self.db_max_connections,
            results_body_limit: serve.results_body_limit,
            timeouts: crate::config::Timeouts {
                head: std::time::Duration::from_secs(serve.head_timeout_seconds),
                body: std::time::Duration::from_secs(serve.body_timeout_seconds),
                deadline: std::time::Duration::from_secs(serve.request_deadline_seconds),
            },
            item_limits: handoff_domain::services::ItemLimits {
                per_block: serve.max_items_per_block as usize,
                per_session: serve.max_items_per_session as usize,
            },
            heavy_requests: handoff_http::heavy::HeavyLimits {
                per_application: serve.heavy_requests_per_application.map_or_else(
                    || handoff_http::heavy::HeavyLimits::default().per_application,
                    |n| n as usize,
                ),
                waiting_per_application: serve.heavy_waiting_per_application as usize,
            },
            workers: serve.workers,
            rate_limits: serve.rate_limit.0,
            accept_unlisted_tokens: serve.accept_unlisted_tokens,
            metrics: match (&serve.metrics_bind, serve.metrics.as_str()) {
                (Some(address), _) => crate::config::MetricsEndpoint::Bind(address.clone()),
                (None, "on") => crate::config::MetricsEndpoint::WithApi,
                (None, _) => crate::config::MetricsEndpoint::Off,
            },
            webhooks,
            webhook_worker,
            retention_sweep: std::time::Duration::from_secs(serve.retention_sweep_seconds),
            ..self.base_config()?
        })
    }

    /// The database URL: the one given, else the SQLite file of the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| sqlite_url(&self.data_dir.clone().unwrap_or_else(default_data_dir)))
    }

    /// The configuration of the other commands: the database (with a small pool) and the
    /// share-token keys.
    pub fn base_config(&self) -> Result<Config, crate::config::SettingError> {
        let (token_secret, token_verify_secrets) = crate::config::Secret::from_env();
        let keys = KeySettings::from_env()?;
        let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        Ok(Config {
            max_connections: self.db_max_connections.min(4),
            token_secret,
            token_verify_secrets,
            token_algorithm: keys.token_algorithm,
            key_encryption_key: keys.key_encryption_key,
            key_file: Some(data_dir.join(KEY_FILE_NAME)),
            key_reload_interval: keys.key_reload_interval,
            federation_allow_private: crate::config::federation_allow_private_from_env()?,
            ..Config::new(self.database_url())
        })
    }
}

/// `--retention-days`: a number of days, or for ever.
#[derive(Clone, Copy, Debug)]
pub struct Retention(pub Option<handoff_domain::retention::RetentionDays>);

fn parse_retention(raw: &str) -> Result<Retention, String> {
    if raw == "unlimited" {
        return Ok(Retention(None));
    }
    raw.parse::<u32>()
        .ok()
        .and_then(handoff_domain::retention::RetentionDays::new)
        .map(|days| Retention(Some(days)))
        .ok_or_else(|| {
            format!(
                "{raw:?} is not a number of days from 1 to {} or `unlimited`",
                handoff_domain::retention::RetentionDays::MAX
            )
        })
}
