//! Opening the database with settings fit for a server on either backend.

use std::path::Path;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database};

use crate::Store;

/// Pool and backend settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Most connections in the pool.
    pub max_connections: u32,
    /// How long a request waits for a connection (and, on SQLite, for the write lock).
    pub acquire_timeout: Duration,
    /// Log every statement as a `DEBUG` event of the target `sqlx::query` (and one slower than
    /// a second at `WARN`): for diagnosis and for counting statements (the benchmark). Off by
    /// default, when the driver logs nothing.
    pub log_statements: bool,
}

/// The pool size by default: the cores this process may run on, plus one.
///
/// An import keeps its connection busy for one statement, nearly all of it the database's own
/// CPU time, so more connections than the cores can serve only queue inside the database; and
/// each connection is a server process with its own caches. The pool hands its idle
/// connections out in turn, so with more of them each statement runs on a colder one: on this
/// project's 2-core machine, with PostgreSQL on the same host, 3 connections gave more imports
/// per second than 2 or 5 at 1, 8 and 32 workers, and 16 cost PostgreSQL about a third more
/// CPU per import than 5 (`docs/performance.md`). A database on its own, larger machine can use
/// more: set `HANDOFF_DB_MAX_CONNECTIONS`.
pub fn default_max_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    u32::try_from(cores).unwrap_or(u32::MAX - 1).saturating_add(1)
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            acquire_timeout: Duration::from_secs(5),
            log_statements: false,
        }
    }
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL names no supported backend.
    #[error("DATABASE_URL must start with sqlite: or postgres:// (got a URL with scheme {0:?})")]
    UnsupportedScheme(String),
    /// The directory of a SQLite file could not be created.
    #[error("cannot create the directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The database refused or could not be reached.
    #[error("cannot open the database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// The URL names no database, or one of PostgreSQL's own (`postgres`, `template0`,
    /// `template1`): handoff would create its tables there.
    #[error(
        "DATABASE_URL names {0}: create a database for handoff (createdb -h HOST -U USER handoff) \
         and name it in the URL (postgres://USER@HOST:PORT/handoff)"
    )]
    MaintenanceDatabase(String),
    /// PostgreSQL could not be reached or refused this client; the sentence says why and what
    /// to do.
    #[error("cannot open the database: {0}")]
    Unreachable(String),
}

/// Refuses a URL that names no database (PostgreSQL would open the user's own, `postgres` for
/// the `postgres` role) or PostgreSQL's maintenance and template databases.
fn refuse_maintenance_database(url: &str) -> Result<(), ConnectError> {
    let path = url
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let database = path.split_once('/').map_or("", |(_, name)| name);
    match database {
        "" => Err(ConnectError::MaintenanceDatabase("no database".into())),
        "postgres" => Err(ConnectError::MaintenanceDatabase(
            "PostgreSQL's maintenance database postgres".into(),
        )),
        name if name.starts_with("template") => {
            Err(ConnectError::MaintenanceDatabase(format!("PostgreSQL's template database {name}")))
        }
        _ => Ok(()),
    }
}

/// How long the first connection to PostgreSQL may take before start-up gives up.
const FIRST_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens one connection to PostgreSQL before the pool does, so that a failure names its
/// cause: refused, unknown database (with the `createdb` to run), authentication, TLS, or no
/// answer within [`FIRST_CONNECTION_TIMEOUT`]. The pool alone would wait its whole acquire
/// timeout and then say only that it timed out.
async fn first_postgres_connection(url: &str) -> Result<(), ConnectError> {
    use sea_orm::sqlx::Connection;
    use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};

    let options: PgConnectOptions = url.parse().map_err(|e| {
        ConnectError::Unreachable(format!("DATABASE_URL is not a valid PostgreSQL URL ({e})"))
    })?;
    let at = format!("{}:{}", options.get_host(), options.get_port());
    let user = options.get_username().to_owned();
    let database = options.get_database().unwrap_or(&user).to_owned();
    let connected =
        tokio::time::timeout(FIRST_CONNECTION_TIMEOUT, PgConnection::connect_with(&options)).await;
    let error = match connected {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            return Ok(());
        }
        Ok(Err(error)) => error,
        Err(_) => {
            return Err(ConnectError::Unreachable(format!(
                "PostgreSQL at {at} did not answer within {} s",
                FIRST_CONNECTION_TIMEOUT.as_secs()
            )));
        }
    };
    Err(ConnectError::Unreachable(postgres_failure(&error, &at, &user, &database)))
}

/// One sentence for a failed first connection, without the driver's own detail.
fn postgres_failure(error: &sea_orm::sqlx::Error, at: &str, user: &str, database: &str) -> String {
    use sea_orm::sqlx::Error;
    match error {
        Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!(
                "PostgreSQL at {at} refused the connection: is it running on that host and port?"
            )
        }
        // What the TLS handshake refused (an untrusted certificate, a name that does not match).
        Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            format!("TLS to PostgreSQL at {at} failed: {io}")
        }
        Error::Io(io) => format!("PostgreSQL at {at} cannot be reached: {}", io.kind()),
        Error::Tls(tls) => format!("TLS to PostgreSQL at {at} failed: {tls}"),
        Error::Database(db) => match db.code().as_deref() {
            Some("3D000") => format!(
                "the database \"{database}\" does not exist on PostgreSQL at {at}; create it \
                 with: createdb -h {} -p {} -U {user} {database}",
                at.rsplit_once(':').map_or(at, |(host, _)| host),
                at.rsplit_once(':').map_or("5432", |(_, port)| port),
            ),
            Some("28P01" | "28000")
                if db.message().contains("SSL") || db.message().contains("encryption") =>
            {
                format!(
                    "PostgreSQL at {at} accepts {user} only over TLS, which this build does not speak"
                )
            }
            Some("28000") if db.message().contains("does not exist") => {
                format!("PostgreSQL at {at} has no role \"{user}\"")
            }
            Some("28P01" | "28000") => {
                format!("PostgreSQL at {at} refused user \"{user}\": authentication failed")
            }
            Some(code) => format!("PostgreSQL at {at} refused the connection (SQLSTATE {code})"),
            None => format!("PostgreSQL at {at} refused the connection"),
        },
        other => format!("cannot connect to PostgreSQL at {at}: {other}"),
    }
}

impl Store {
    /// Opens `url` (`sqlite:path?mode=rwc` or `postgres://...`).
    ///
    /// SQLite is opened in WAL mode with `synchronous=NORMAL`, foreign keys on and a busy timeout
    /// equal to the acquire timeout, so that readers run beside the one writer and a writer waits
    /// for the lock instead of failing with `database is locked`. A missing file and its
    /// directory are created; a file another process is opening at the same moment is tried
    /// again until the acquire timeout. PostgreSQL connections plan each prepared statement once
    /// (`plan_cache_mode=force_generic_plan`) and never JIT-compile it (`jit=off`).
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store, ConnectError> {
        let scheme = url.split(':').next().unwrap_or_default();
        let tls_chosen;
        let url = if matches!(scheme, "postgres" | "postgresql") {
            tls_chosen = postgres_tls_default(url);
            tls_chosen.as_str()
        } else {
            url
        };
        let mut connect = ConnectOptions::new(url.to_owned());
        connect
            .max_connections(options.max_connections)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            // A connection is pinged before use only after a quiet spell, when the server or
            // a proxy may have dropped it, not on every checkout: that would be one more round
            // trip per query. A connection that died anyway fails its query as `Unavailable`.
            .test_before_acquire_if_idle_for(Duration::from_secs(30))
            .sqlx_logging(options.log_statements)
            .sqlx_logging_level(log::LevelFilter::Debug);
        match scheme {
            "sqlite" => {
                if let Some(dir) = sqlite_directory(url) {
                    create_private_dir(&dir).map_err(|source| ConnectError::Directory {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                if let Some(file) = sqlite_file(url) {
                    create_private_file(&file).map_err(|source| ConnectError::Directory {
                        path: file.display().to_string(),
                        source,
                    })?;
                    for open in readable_by_others(&file) {
                        tracing::warn!(
                            file = %open.display(),
                            "the database file is readable by other users of this machine; \
                             it holds personal data: chmod 600 it"
                        );
                    }
                }
                let busy = options.acquire_timeout;
                connect.map_sqlx_sqlite_opts(move |o| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .foreign_keys(true)
                        .busy_timeout(busy)
                        // Checkpoints run in the background (`checkpoint_periodically`), not
                        // in the commit of whichever write crossed 1,000 pages of log, while
                        // the writers queued behind it wait.
                        .pragma("wal_autocheckpoint", "0")
                });
            }
            "postgres" | "postgresql" => {
                refuse_maintenance_database(url)?;
                first_postgres_connection(url).await?;
                // Every query here is a key or index lookup whose best plan does not depend on
                // the values bound, so each prepared statement is planned once per connection
                // rather than on every execution (the import's clone touches a dozen tables:
                // planning it each time cost more than running it). A generic plan's row
                // estimates grow with the tables and can cross `jit_above_cost`: PostgreSQL would
                // then JIT-compile the import on every execution (20 to 60 ms seen here, for a
                // statement that runs in under one), so the JIT is off for these short queries.
                connect.map_sqlx_postgres_opts(|o| {
                    o.options([("plan_cache_mode", "force_generic_plan"), ("jit", "off")])
                });
            }
            other => return Err(ConnectError::UnsupportedScheme(other.to_owned())),
        }
        // Processes starting together on a new SQLite file: the one that is switching it to WAL
        // holds it for a moment, and SQLite answers the others busy at once. They try again
        // until the acquire timeout.
        let deadline = std::time::Instant::now() + options.acquire_timeout;
        loop {
            match Database::connect(connect.clone()).await {
                Ok(db) if scheme == "sqlite" => {
                    let mut store = Store::new(db);
                    // The one writer's own connection (see `Store::write_connection`), to a
                    // file: a second connection to `:memory:` would open another database.
                    if sqlite_file(url).is_some() {
                        let mut one = connect.clone();
                        one.max_connections(1).min_connections(1);
                        store.writer = Some(Database::connect(one).await?);
                    }
                    checkpoint_periodically(&store);
                    return Ok(store);
                }
                Ok(db) => return Ok(Store::new(db)),
                Err(error)
                    if scheme == "sqlite"
                        && crate::sql::is_sqlite_busy(&error)
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// How often SQLite's write-ahead log is copied into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Copies SQLite's write-ahead log into the database file every [`CHECKPOINT_INTERVAL`], on a
/// connection of its own, for as long as a clone of the store is alive: twice beside the
/// writers (`PASSIVE`: it waits for no one), the second pass copying what they appended during
/// the first, then the rest in a write turn of its own (4 ms at the median under the
/// benchmark's imports, mostly the two syncs of a checkpoint; 6.7 ms after one pass). The log
/// starts again from its beginning at the first write after a checkpoint that left nothing
/// behind; under steady writes a pass beside the writers never does, and the log would grow
/// without end (by 100 MB a second under the benchmark's imports), each frame a new block of
/// the file to allocate.
fn checkpoint_periodically(store: &Store) {
    let Some(alive) = store.write_gate.as_ref().map(std::sync::Arc::downgrade) else {
        return;
    };
    let db = store.connection().clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(CHECKPOINT_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(gate) = alive.upgrade() else {
                return;
            };
            checkpoint(&db).await;
            checkpoint(&db).await;
            let _turn = gate.small().await;
            checkpoint(&db).await;
        }
    });
}

/// A `PASSIVE` checkpoint of SQLite's write-ahead log.
async fn checkpoint(db: &sea_orm::DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    // A PRAGMA: sea-query has no builder for it.
    if let Err(error) = db.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await {
        tracing::debug!(%error, "could not checkpoint the write-ahead log");
    }
}

/// A PostgreSQL URL with `sslmode=disable` added when it names no `sslmode`: TLS is used when
/// the URL asks for it (`require`, `verify-ca`, `verify-full`, with `sslrootcert` for a CA the
/// system does not trust), and a local connection does not pay for it otherwise (libpq would
/// `prefer` it).
fn postgres_tls_default(url: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if query.split('&').any(|pair| pair.starts_with("sslmode=")) {
        url.to_owned()
    } else if query.is_empty() {
        format!("{}?sslmode=disable", url.trim_end_matches('?'))
    } else {
        format!("{url}&sslmode=disable")
    }
}

/// What a database URL names, for a log line or a terminal, never with a password:
/// `SQLite /abs/path/handoff.db` or `PostgreSQL host:port/database as user`.
pub fn describe_database(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        let path = path.split('?').next().unwrap_or_default();
        let shown = std::path::absolute(path).unwrap_or_else(|_| Path::new(path).to_path_buf());
        return format!("SQLite {}", shown.display());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return "an unrecognized database URL".to_owned();
    };
    let rest = rest.split('?').next().unwrap_or_default();
    let (userinfo, location) = rest.rsplit_once('@').unwrap_or(("", rest));
    let user = userinfo.split(':').next().unwrap_or_default();
    let (host_port, database) = location.split_once('/').unwrap_or((location, ""));
    let host_port = match host_port {
        "" => "localhost:5432".to_owned(),
        hp if hp.contains(':') && !hp.ends_with(']') => hp.to_owned(),
        hp => format!("{hp}:5432"),
    };
    let name = if scheme.starts_with("postgres") { "PostgreSQL" } else { scheme };
    let database = if database.is_empty() { user } else { database };
    if user.is_empty() {
        format!("{name} {host_port}/{database}")
    } else {
        format!("{name} {host_port}/{database} as {user}")
    }
}

/// The directory a `sqlite:` URL's file lives in, when it names a file in a directory.
/// The file a SQLite URL names, unless it is in memory.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite:")?;
    let path = path.strip_prefix("//").unwrap_or(path);
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(Path::new(path).to_path_buf())
}

/// Creates `dir` and its missing parents readable by their owner only (0700), whatever the
/// umask; a directory that exists is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

/// Creates the database file, when missing, readable and writable by its owner only (0600),
/// whatever the umask: SQLite gives its `-wal` and `-shm` files the database file's mode.
fn create_private_file(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file) {
        Ok(_) => {
            std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// The database's files (and its `-wal` and `-shm`) that other users may read.
fn readable_by_others(file: &Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut names = vec![file.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        names.push(name.into());
    }
    names
        .into_iter()
        .filter(|name| std::fs::metadata(name).is_ok_and(|m| m.permissions().mode() & 0o077 != 0))
        .collect()
}

fn sqlite_directory(url: &str) -> Option<std::path::PathBuf> {
    sqlite_file(url)?.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::{StoreOptions, default_max_connections, sqlite_directory};

    #[test]
    fn maintenance_databases_are_refused() {
        for refused in [
            "postgres://postgres@127.0.0.1:5432",
            "postgres://postgres@127.0.0.1:5432/",
            "postgres://u:p@db/postgres",
            "postgresql://u@db/postgres?sslmode=require",
            "postgres://u@db/template1",
        ] {
            assert!(super::refuse_maintenance_database(refused).is_err(), "{refused}");
        }
        for fine in ["postgres://u@db/handoff", "postgres://u@db:5432/handoff_test_1?x=y"] {
            assert!(super::refuse_maintenance_database(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn postgres_urls_without_an_sslmode_do_not_use_tls() {
        for (url, expected) in [
            ("postgres://u@h/db", "postgres://u@h/db?sslmode=disable"),
            ("postgres://u@h/db?", "postgres://u@h/db?sslmode=disable"),
            (
                "postgres://u@h/db?application_name=x",
                "postgres://u@h/db?application_name=x&sslmode=disable",
            ),
            (
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem",
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem",
            ),
            ("postgres://u@h/db?a=1&sslmode=require", "postgres://u@h/db?a=1&sslmode=require"),
        ] {
            assert_eq!(super::postgres_tls_default(url), expected);
        }
    }

    #[test]
    fn the_pool_is_the_cores_plus_one_by_default() {
        let cores = std::thread::available_parallelism().unwrap().get() as u32;
        assert_eq!(default_max_connections(), cores + 1);
        assert_eq!(StoreOptions::default().max_connections, default_max_connections());
    }

    #[test]
    fn describes_a_database_without_its_password() {
        let cases = [
            (
                "postgres://alice:s3cret@db.example:6543/kyc?sslmode=require",
                "PostgreSQL db.example:6543/kyc as alice",
            ),
            (
                "postgres://postgres@127.0.0.1/handoff",
                "PostgreSQL 127.0.0.1:5432/handoff as postgres",
            ),
            ("postgresql://db/x", "PostgreSQL db:5432/x"),
        ];
        for (url, expected) in cases {
            assert_eq!(super::describe_database(url), expected, "{url}");
            assert!(!super::describe_database(url).contains("s3cret"));
        }
        let sqlite = super::describe_database("sqlite:/tmp/h/handoff.db?mode=rwc");
        assert_eq!(sqlite, "SQLite /tmp/h/handoff.db");
        let relative = super::describe_database("sqlite:data/handoff.db?mode=rwc");
        assert!(
            relative.starts_with("SQLite /") && relative.ends_with("/data/handoff.db"),
            "{relative}"
        );
    }

    #[test]
    fn finds_the_directory_of_a_sqlite_file() {
        assert_eq!(sqlite_directory("sqlite:data/handoff.db").unwrap().to_str(), Some("data"));
        assert_eq!(
            sqlite_directory("sqlite:///tmp/x/h.db?mode=rwc").unwrap().to_str(),
            Some("/tmp/x")
        );
        assert!(sqlite_directory("sqlite::memory:").is_none());
        assert!(sqlite_directory("sqlite:h.db").is_none());
    }
}
