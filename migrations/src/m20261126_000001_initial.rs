//! The first schema: applications and keys, workflows, entities, sessions, their log and one
//! table per feature block.

use sea_orm_migration::prelude::*;

use crate::BLOCK_TABLES;
use crate::schema::*;

migration!(|manager| up {
    let backend = manager.get_database_backend();

    manager
        .create_table(
            Table::create()
                .table("applications")
                .col(uuid_pk("id"))
                .col(text("name"))
                // The last session_number handed out; bumped in the session's transaction.
                .col(big_integer("last_session_number").default(0))
                .col(timestamp("created_at"))
                .take(),
        )
        .await?;

    manager
        .create_table(
            Table::create()
                .table("api_keys")
                .col(uuid_pk("id"))
                .col(uuid("application_id"))
                .col(text("prefix"))
                .col(ColumnDef::new("key_hash").binary().not_null())
                .col(timestamp("created_at"))
                .col(timestamp_null("revoked_at"))
                .foreign_key(&mut cascade("api_keys", "application_id", "applications"))
                .take(),
        )
        .await?;
    create_index(manager, "api_keys", &["prefix"], true).await?;
    create_index(manager, "api_keys", &["application_id"], false).await?;

    manager
        .create_table(
            Table::create()
                .table("workflows")
                .col(uuid_pk("id"))
                .col(uuid("application_id"))
                .col(text("label"))
                .col(text("kind"))
                .col(text("features"))
                .col(
                    ColumnDef::new("is_default")
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(big_integer("session_expiration_time"))
                .col(timestamp("created_at"))
                .col(timestamp_null("deleted_at"))
                .foreign_key(&mut cascade("workflows", "application_id", "applications"))
                .take(),
        )
        .await?;
    create_index(manager, "workflows", &["application_id", "kind"], false).await?;

    manager
        .create_table(
            Table::create()
                .table("entities")
                .col(uuid_pk("id"))
                .col(uuid("application_id"))
                .col(text("kind"))
                .col(text("vendor_data"))
                // Unicode lower case of vendor_data: entities match case-insensitively.
                .col(text("vendor_data_key"))
                .col(text("status"))
                .col(timestamp("created_at"))
                .foreign_key(&mut cascade("entities", "application_id", "applications"))
                .take(),
        )
        .await?;
    create_index(manager, "entities", &["application_id", "kind", "vendor_data_key"], true).await?;

    manager
        .create_table(
            Table::create()
                .table("sessions")
                .col(uuid_pk("id"))
                .col(uuid("application_id"))
                .col(text("kind"))
                .col(big_integer("session_number"))
                .col(text("session_token"))
                .col(text("session_url"))
                .col(text("status"))
                .col(uuid("workflow_id"))
                .col(text("features"))
                .col(text_null("vendor_data"))
                .col(uuid_null("entity_id"))
                .col(text_null("metadata"))
                .col(text_null("callback"))
                .col(text_null("contact_details"))
                .col(text_null("expected_details"))
                .col(uuid_null("shared_from_session"))
                // The V3 keys of the blocks that were recorded, comma-separated: a block
                // recorded as [] is not the same as one that never ran (null).
                .col(text("recorded_blocks").default(""))
                .col(timestamp("created_at"))
                .col(timestamp("expires_at"))
                .foreign_key(&mut cascade("sessions", "application_id", "applications"))
                .foreign_key(&mut restrict("sessions", "workflow_id", "workflows"))
                .foreign_key(&mut restrict("sessions", "entity_id", "entities"))
                .take(),
        )
        .await?;
    create_index(manager, "sessions", &["application_id", "session_number"], true).await?;
    create_index(manager, "sessions", &["session_token"], true).await?;
    // At most one clone of a source session per receiving application; NULLs (sessions that
    // were not imported) are distinct on both backends.
    create_index(manager, "sessions", &["application_id", "shared_from_session"], true).await?;
    create_index(manager, "sessions", &["application_id", "kind", "session_number"], false).await?;
    create_index(manager, "sessions", &["entity_id"], false).await?;
    create_index(manager, "sessions", &["workflow_id"], false).await?;

    manager
        .create_table(
            Table::create()
                .table("session_logs")
                .col(row_id(backend, "id"))
                .col(uuid("session_id"))
                .col(text("kind"))
                .col(text("actor"))
                .col(text("action"))
                .col(text_null("old_status"))
                .col(text_null("new_status"))
                .col(text_null("comment"))
                .col(text_null("details"))
                .col(timestamp("created_at"))
                .foreign_key(&mut cascade("session_logs", "session_id", "sessions"))
                .take(),
        )
        .await?;
    create_index(manager, "session_logs", &["session_id", "id"], false).await?;

    for table in BLOCK_TABLES {
        manager
            .create_table(
                Table::create()
                    .table(table)
                    .col(row_id(backend, "id"))
                    .col(uuid("session_id"))
                    .col(ColumnDef::new("position").integer().not_null())
                    .col(text("node_id"))
                    .col(text("status"))
                    // The whole item, exactly as recorded.
                    .col(text("item"))
                    .foreign_key(&mut cascade(table, "session_id", "sessions"))
                    .take(),
            )
            .await?;
        create_index(manager, table, &["session_id", "position"], true).await?;
    }
    Ok(())
} down {
    let tables = BLOCK_TABLES.into_iter().chain([
        "session_logs",
        "sessions",
        "entities",
        "workflows",
        "api_keys",
        "applications",
    ]);
    drop_tables(manager, &tables.collect::<Vec<_>>()).await
});
