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
