//! Identity data sealed at rest: each application's key (sealed under the key-encryption key),
//! each session's data key (wrapped by its application's key; empty once erased), what lists
//! find a session or an entity by without its clear data (a name's blind index, the country),
//! and the data key a share's clone will hold, wrapped for the receiver at the share.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    add_columns(manager, "applications", [ColumnDef::new("data_key").binary().null().take()])
        .await?;
    add_columns(
        manager,
        "sessions",
        [
            ColumnDef::new("data_key").binary().null().take(),
            ColumnDef::new("name_words").text().null().take(),
            ColumnDef::new("country").string_len(3).null().take(),
        ],
    )
    .await?;
    add_columns(manager, "share_tokens", [ColumnDef::new("clone_data_key").binary().null().take()])
        .await?;
    add_columns(manager, "entities", [ColumnDef::new("name_words").text().null().take()]).await?;
    // The country of the sessions recorded in clear before: the list's filter reads it here.
    let country = match manager.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            "UPDATE sessions SET country = upper(COALESCE(\
             (SELECT i.item::jsonb ->> 'issuing_state' FROM id_verifications i \
              WHERE i.session_id = sessions.id AND i.position = 0), \
             (SELECT r.item::jsonb -> 'company' ->> 'country_code' FROM registry_checks r \
              WHERE r.session_id = sessions.id AND r.position = 0)))"
        }
        _ => {
            "UPDATE sessions SET country = upper(COALESCE(\
             (SELECT json_extract(i.item, '$.issuing_state') FROM id_verifications i \
              WHERE i.session_id = sessions.id AND i.position = 0), \
             (SELECT json_extract(r.item, '$.company.country_code') FROM registry_checks r \
              WHERE r.session_id = sessions.id AND r.position = 0)))"
        }
    };
    manager.get_connection().execute_unprepared(country).await?;
    Ok(())
} down {
    drop_columns(manager, "entities", &["name_words"]).await?;
    drop_columns(manager, "share_tokens", &["clone_data_key"]).await?;
    drop_columns(manager, "sessions", &["country", "name_words", "data_key"]).await?;
    drop_columns(manager, "applications", &["data_key"]).await
});
