//! On SQLite, every change to an API key's row (a revocation, a deletion) counts one more in
//! the single row of `api_key_changes`, in the changing transaction, whichever process makes
//! it: what lets a server keep the keys it looked up while the count it reads stays the same.
//! PostgreSQL announces each change instead (migration `000022`).

use sea_orm_migration::prelude::*;

migration!(|manager| up {
    if manager.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return Ok(());
    }
    let db = manager.get_connection();
    db.execute_unprepared(
        "CREATE TABLE api_key_changes (id INTEGER PRIMARY KEY CHECK (id = 1), \
         generation INTEGER NOT NULL)",
    )
    .await?;
    db.execute_unprepared("INSERT INTO api_key_changes (id, generation) VALUES (1, 0)").await?;
    for (trigger, event) in [("api_key_updated", "UPDATE"), ("api_key_deleted", "DELETE")] {
        db.execute_unprepared(&format!(
            "CREATE TRIGGER {trigger} AFTER {event} ON api_keys BEGIN \
             UPDATE api_key_changes SET generation = generation + 1; END"
        ))
        .await?;
    }
    Ok(())
} down {
    if manager.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return Ok(());
    }
    let db = manager.get_connection();
    db.execute_unprepared("DROP TRIGGER api_key_updated").await?;
    db.execute_unprepared("DROP TRIGGER api_key_deleted").await?;
    db.execute_unprepared("DROP TABLE api_key_changes").await?;
    Ok(())
});
