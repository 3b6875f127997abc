//! Throwaway databases for tests and the benchmark: a SQLite file in a fresh temporary
//! directory, or a fresh PostgreSQL database, each dropped when the value is dropped; and
//! faults planted in a database, for tests of all-or-nothing writes.
//!
//! PostgreSQL is reached through `HANDOFF_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); every database it creates is named
//! `handoff_test_<uuid>` so that a crashed run's leftovers can be found and dropped. When that
//! server cannot be reached, [`skip`] says so once and PostgreSQL cases return early, unless
//! `HANDOFF_TEST_REQUIRE_POSTGRES` is set (CI sets it): then they fail.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DbErr};

/// Runs each named test body once per backend, as `name::sqlite` and `name::postgres`: the
/// body is a plain `async fn name(x: T)` beside the call, and `setup` an `async fn(Backend) -> T`
/// that makes its argument (a migrated store, a running server, or the backend itself). A
/// PostgreSQL case returns early when [`skip`] says so.
#[macro_export]
macro_rules! on_each_backend {
    ($setup:path; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($setup($crate::Backend::Sqlite).await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::skip($crate::Backend::Postgres) {
                        return;
                    }
                    super::$name($setup($crate::Backend::Postgres).await).await
                }
            }
        )*
    };
}

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// The variable that names the PostgreSQL server tests use.
pub const POSTGRES_URL_VARIABLE: &str = "HANDOFF_TEST_POSTGRES_URL";

/// The variable that turns an unreachable PostgreSQL into a failure instead of a skip.
pub const REQUIRE_POSTGRES_VARIABLE: &str = "HANDOFF_TEST_REQUIRE_POSTGRES";

/// The PostgreSQL server tests use.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VARIABLE)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether a case on `backend` must be skipped: PostgreSQL does not answer and the run does
/// not require it. The first skip of a test binary prints one line, straight to the terminal
/// (past the test harness's capture), with how many PostgreSQL cases the binary holds and how
/// to run them. When the run requires PostgreSQL, an unreachable server fails the case.
pub fn skip(backend: Backend) -> bool {
    if backend == Backend::Sqlite {
        return false;
    }
    let Err(why) = postgres_reachable() else {
        return false;
    };
    #[allow(clippy::panic)]
    if std::env::var_os(REQUIRE_POSTGRES_VARIABLE).is_some() {
        panic!("PostgreSQL is required ({REQUIRE_POSTGRES_VARIABLE} is set) but {why}");
    }
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: {} PostgreSQL cases of this test binary, because {why}. Start PostgreSQL \
             on 127.0.0.1:5432 or set {POSTGRES_URL_VARIABLE} to a server where this role may \
             create databases to run them.",
            postgres_cases()
        );
    });
    true
}

/// Whether the PostgreSQL server answers on its port, tried once per process.
fn postgres_reachable() -> Result<(), String> {
    static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
    REACHABLE
        .get_or_init(|| {
            let url = postgres_admin_url();
            let address = host_and_port(&url)
                .ok_or_else(|| format!("{POSTGRES_URL_VARIABLE} names no host: {url}"))?;
            let addresses = std::net::ToSocketAddrs::to_socket_addrs(&address)
                .map_err(|e| format!("{address} does not resolve ({e})"))?;
            for socket in addresses {
                if std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(2)).is_ok() {
                    return Ok(());
                }
            }
            Err(format!("no PostgreSQL answers on {address}"))
        })
        .clone()
}

/// `host:port` of a `postgres://user@host:port/db` URL (port 5432 when absent).
fn host_and_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.is_empty() {
        return None;
    }
    if host_port.contains(':') && !host_port.ends_with(']') {
        Some(host_port.to_owned())
    } else {
        Some(format!("{host_port}:5432"))
    }
}

/// How many cases of this test binary run on PostgreSQL: the binary's own list of tests,
/// counting those whose name ends in `postgres`.
fn postgres_cases() -> String {
    let listed = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe).args(["--list", "--format", "terse"]).output()
    });
    match listed {
        Ok(output) => String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| {
                line.strip_suffix(": test").is_some_and(|name| name.ends_with("postgres"))
            })
            .count()
            .to_string(),
        Err(_) => "the".to_owned(),
    }
}

/// A fresh, empty database that is deleted on drop.
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Directory(PathBuf),
    Database { admin_url: String, name: String },
}

impl TestDatabase {
    /// Creates a fresh, empty database. Panics when the backend cannot be reached: a case
    /// that may be skipped asks [`skip`] first.
    #[allow(clippy::expect_used)]
    pub async fn create(backend: Backend) -> TestDatabase {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("handoff_test_{id}"));
                std::fs::create_dir_all(&dir).expect("create a temporary directory");
                TestDatabase {
                    backend,
                    url: format!("sqlite:{}?mode=rwc", dir.join("handoff.db").display()),
                    cleanup: Cleanup::Directory(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("handoff_test_{id}");
                let admin = Database::connect(&admin_url).await.expect(
                    "PostgreSQL must be running for the PostgreSQL tests (HANDOFF_TEST_POSTGRES_URL)",
                );
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create a test database");
                let _ = admin.close().await;
                let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
                TestDatabase {
                    backend,
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Database { admin_url, name },
                }
            }
        }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                let admin_url = admin_url.clone();
                let name = name.clone();
                // Drop may run inside a runtime: use a thread with a runtime of its own.
                let _ = std::thread::spawn(move || {
                    let Ok(runtime) =
                        tokio::runtime::Builder::new_current_thread().enable_all().build()
                    else {
                        return;
                    };
                    runtime.block_on(async move {
                        if let Ok(admin) = Database::connect(&admin_url).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                            let _ = admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Makes every later insert into `table` fail inside its statement, as a crash or a lost
/// connection would part way through a write: a trigger that raises an error, planted in the
/// database itself, so that no fault hook lives in the code under test.
/// [`clear_insert_fault`] takes it away.
pub async fn plant_insert_fault(db: &impl ConnectionTrait, table: &str) -> Result<(), DbErr> {
    plant_insert_fault_when(db, table, "TRUE").await
}

/// [`plant_insert_fault`] for the rows that meet `condition` only (SQL on the row `NEW`, the
/// same on both backends).
pub async fn plant_insert_fault_when(
    db: &impl ConnectionTrait, table: &str, condition: &str,
) -> Result<(), DbErr> {
    let sql = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => format!(
            "CREATE OR REPLACE FUNCTION handoff_test_fault() RETURNS trigger AS \
             $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER handoff_test_fault BEFORE INSERT ON {table} \
             FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION handoff_test_fault()"
        ),
        _ => format!(
            "CREATE TRIGGER handoff_test_fault BEFORE INSERT ON {table} WHEN {condition} \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        ),
    };
    db.execute_unprepared(&sql).await.map(drop)
}

/// Takes away the fault [`plant_insert_fault`] planted on `table`.
pub async fn clear_insert_fault(db: &impl ConnectionTrait, table: &str) -> Result<(), DbErr> {
    let sql = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            format!("DROP TRIGGER handoff_test_fault ON {table}")
        }
        _ => "DROP TRIGGER handoff_test_fault".to_owned(),
    };
    db.execute_unprepared(&sql).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::host_and_port;

    #[test]
    fn finds_the_host_and_port_of_a_postgres_url() {
        let cases = [
            ("postgres://postgres@127.0.0.1:5432/postgres", "127.0.0.1:5432"),
            ("postgres://u:p@db.local/x", "db.local:5432"),
            ("postgresql://localhost:6543", "localhost:6543"),
        ];
        for (url, expected) in cases {
            assert_eq!(host_and_port(url).as_deref(), Some(expected), "{url}");
        }
        assert_eq!(host_and_port("postgres:///x"), None);
    }
}
