//! Webhooks: each application's destinations (their secrets sealed like the signing keys), the
//! outbox of events — written in the transaction of the change that causes them — and the
//! deliveries of each event to each destination subscribed to it, with their retry schedule.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    let backend = manager.get_database_backend();
    manager
        .create_table(
            Table::create()
                .table("webhook_destinations")
                .col(uuid_pk("id"))
                .col(uuid("application_id"))
                .col(text("label"))
                .col(text("url"))
                .col(ColumnDef::new("enabled").boolean().not_null())
                .col(text("webhook_version"))
                .col(text("subscribed_events"))
                .col(ColumnDef::new("secret").binary().not_null())
                .col(text("sealed_with"))
                .col(ColumnDef::new("previous_secret").binary().null())
                .col(timestamp_null("previous_secret_until"))
                .col(timestamp("created_at"))
                .col(timestamp("updated_at"))
                .foreign_key(&mut cascade("webhook_destinations", "application_id", "applications"))
                .take(),
        )
        .await?;
    create_index(manager, "webhook_destinations", &["application_id"], false).await?;
    manager
        .create_table(
            Table::create()
                .table("webhook_events")
                .col(row_id(backend, "id"))
                .col(uuid("event_id"))
                .col(uuid("application_id"))
                .col(text("webhook_type"))
                .col(uuid_null("session_id"))
                .col(text_null("details"))
                .col(timestamp("created_at"))
                .col(text_null("payload"))
                .col(timestamp_null("dispatched_at"))
                .take(),
        )
        .await?;
    create_index(manager, "webhook_events", &["event_id"], true).await?;
    create_index(manager, "webhook_events", &["dispatched_at", "id"], false).await?;
    manager
        .create_table(
            Table::create()
                .table("webhook_deliveries")
                .col(uuid_pk("id"))
                .col(uuid("event_id"))
                .col(uuid("destination_id"))
                .col(text("state"))
                .col(ColumnDef::new("attempts").integer().not_null())
                .col(timestamp("next_attempt_at"))
                .col(ColumnDef::new("last_status_code").integer().null())
                .col(text_null("last_error"))
                .col(timestamp_null("delivered_at"))
                .col(timestamp("created_at"))
                .foreign_key(&mut cascade(
                    "webhook_deliveries",
                    "destination_id",
                    "webhook_destinations",
                ))
                .take(),
        )
        .await?;
    let due = ["state", "next_attempt_at"];
    create_index(manager, "webhook_deliveries", &due, false).await?;
    let listed = ["destination_id", "created_at"];
    create_index(manager, "webhook_deliveries", &listed, false).await
} down {
    let tables = ["webhook_deliveries", "webhook_events", "webhook_destinations"];
    drop_tables(manager, &tables).await
});
