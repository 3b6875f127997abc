//! Throwaway databases for tests: a SQLite file in a fresh temporary directory, or a fresh
//! PostgreSQL database, each dropped when the value is dropped.
//!
//! PostgreSQL is reached through `HANDOFF_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); every database it creates is named
//! `handoff_test_<uuid>` so that a crashed run's leftovers can be found and dropped.

use std::path::PathBuf;

use sea_orm::{ConnectionTrait, Database, DbErr};

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// The PostgreSQL server tests use.
pub fn postgres_admin_url() -> String {
    std::env::var("HANDOFF_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
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
    /// Creates a fresh, empty database. Panics when the backend cannot be reached: a test that
    /// cannot run must fail, not pass.
    pub async fn create(backend: Backend) -> TestDatabase {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("handoff_test_{id}"));
                #[allow(clippy::expect_used)]
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
                #[allow(clippy::expect_used)]
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("PostgreSQL must be running for the PostgreSQL tests (HANDOFF_TEST_POSTGRES_URL)");
                #[allow(clippy::expect_used)]
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create a test database");
                let _ = admin.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
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
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
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
/// database itself, so that no fault hook lives in the code under test. `clear_insert_fault`
/// takes it away.
pub async fn plant_insert_fault(db: &impl ConnectionTrait, table: &str) -> Result<(), DbErr> {
    let sql = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => format!(
            "CREATE OR REPLACE FUNCTION handoff_test_fault() RETURNS trigger AS \
             $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER handoff_test_fault BEFORE INSERT ON {table} \
             FOR EACH ROW EXECUTE FUNCTION handoff_test_fault()"
        ),
        _ => format!(
            "CREATE TRIGGER handoff_test_fault BEFORE INSERT ON {table} \
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
