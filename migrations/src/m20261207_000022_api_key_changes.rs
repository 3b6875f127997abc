//! On PostgreSQL, every change to an API key's row (a revocation, a deletion) is announced on
//! the channel `handoff_api_keys` with the key's prefix, when its transaction commits: what
//! lets each server keep the keys it looked up and forget one the moment another process
//! revokes it. SQLite has no such channel; nothing changes there.

use sea_orm_migration::prelude::*;

migration!(|manager| up {
    if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    db.execute_unprepared(
        "CREATE FUNCTION handoff_api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN PERFORM pg_notify('handoff_api_keys', OLD.prefix); RETURN NULL; END $$",
    )
    .await?;
    db.execute_unprepared(
        "CREATE TRIGGER api_key_changed AFTER UPDATE OR DELETE ON api_keys \
         FOR EACH ROW EXECUTE FUNCTION handoff_api_key_changed()",
    )
    .await?;
    Ok(())
} down {
    if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    db.execute_unprepared("DROP TRIGGER api_key_changed ON api_keys").await?;
    db.execute_unprepared("DROP FUNCTION handoff_api_key_changed()").await?;
    Ok(())
});
