//! The settings every pooled connection is opened with: what the server relies on for
//! concurrency (SQLite) and for steady plans (PostgreSQL).

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::support::{TestStore, on_both_backends};

/// One setting's value, as the connection reports it.
async fn setting(db: &crate::support::TestStore, sql: &str, column: &str) -> String {
    let backend = db.connection().get_database_backend();
    let row =
        db.connection().query_one_raw(Statement::from_string(backend, sql)).await.unwrap().unwrap();
    row.try_get::<String>("", column).unwrap()
}

on_both_backends!(connections_carry_the_servers_settings,);

async fn connections_carry_the_servers_settings(db: TestStore) {
    match db.connection().get_database_backend() {
        DatabaseBackend::Sqlite => {
            assert_eq!(setting(&db, "PRAGMA journal_mode", "journal_mode").await, "wal");
            // Checkpoints are the background task's, never a committing writer's.
            let row = db
                .connection()
                .query_one_raw(Statement::from_string(
                    DatabaseBackend::Sqlite,
                    "PRAGMA wal_autocheckpoint",
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.try_get::<i32>("", "wal_autocheckpoint").unwrap(), 0);
        }
        _ => {
            // Each prepared statement planned once per connection, and never compiled by
            // the JIT: a generic plan's estimates can cross `jit_above_cost` as tables
            // grow, which would add tens of milliseconds to every import.
            assert_eq!(
                setting(&db, "SHOW plan_cache_mode", "plan_cache_mode").await,
                "force_generic_plan"
            );
            assert_eq!(setting(&db, "SHOW jit", "jit").await, "off");
        }
    }
}

/// Runs one statement on `conn`.
async fn run(
    conn: &sea_orm::DatabaseConnection, sql: &str,
) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
    conn.execute_raw(Statement::from_string(conn.get_database_backend(), sql.to_owned())).await
}

on_both_backends!(sqlite_writes_on_one_connection_of_their_own,);

async fn sqlite_writes_on_one_connection_of_their_own(db: TestStore) {
    match db.connection().get_database_backend() {
        DatabaseBackend::Sqlite => {
            let writer = db.write_connection();
            // The writer is one connection, not one of the pool's: what it alone holds (a
            // temporary table) it sees again, and the pool does not.
            run(writer, "CREATE TEMP TABLE probe (x INTEGER)").await.unwrap();
            run(writer, "INSERT INTO temp.probe VALUES (1)").await.unwrap();
            run(writer, "INSERT INTO temp.probe VALUES (2)").await.unwrap();
            assert!(run(db.connection(), "INSERT INTO temp.probe VALUES (3)").await.is_err());
            // It carries the server's settings too.
            let row = writer
                .query_one_raw(Statement::from_string(
                    DatabaseBackend::Sqlite,
                    "SELECT (SELECT count(*) FROM temp.probe) AS probes, \
                     (SELECT foreign_keys FROM pragma_foreign_keys) AS fk, \
                     (SELECT journal_mode FROM pragma_journal_mode) AS journal",
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.try_get::<i64>("", "probes").unwrap(), 2);
            assert_eq!(row.try_get::<i64>("", "fk").unwrap(), 1);
            assert_eq!(row.try_get::<String>("", "journal").unwrap(), "wal");
            // The metrics count it with the pool's.
            let (open, _) = db.pool_connections();
            assert!(open >= 2, "{open} connections open");
        }
        _ => assert!(std::ptr::eq(db.write_connection(), db.connection())),
    }
}

/// An in-memory SQLite database is one connection's: its writes stay on the pool, which holds
/// that database, rather than on a connection that would open another.
#[tokio::test]
async fn in_memory_sqlite_writes_on_its_pool() {
    let store =
        handoff_store::Store::connect("sqlite::memory:", &Default::default()).await.unwrap();
    assert!(std::ptr::eq(store.write_connection(), store.connection()));
}

/// The size of SQLite's write-ahead log file of `db`.
async fn log_file_bytes(db: &TestStore) -> u64 {
    let file =
        setting(db, "SELECT file FROM pragma_database_list WHERE name = 'main'", "file").await;
    std::fs::metadata(format!("{file}-wal")).map_or(0, |m| m.len())
}

/// Under steady writes SQLite's write-ahead log starts again from its beginning after each
/// background checkpoint: its file stops growing, where it would otherwise grow with every
/// write (five times as large after 10 s as after 2 s; the margin allows the write rate to
/// double once the test is under way).
#[tokio::test]
async fn sqlite_log_stops_growing_under_steady_writes() {
    let db = TestStore::new(handoff_testdb::Backend::Sqlite).await;
    let started = std::time::Instant::now();
    let mut early = None;
    while started.elapsed() < std::time::Duration::from_secs(10) {
        db.application().await;
        if early.is_none() && started.elapsed() > std::time::Duration::from_secs(2) {
            early = Some(log_file_bytes(&db).await);
        }
    }
    let (early, late) = (early.unwrap(), log_file_bytes(&db).await);
    assert!(early > 0);
    assert!(2 * late < 5 * early, "the log grew from {early} to {late} bytes");
}
