//! Webhook subscriptions as rows: one per destination and event type, so that "who is
//! subscribed to this event" is an indexed join. The destinations' JSON lists move into it
//! and their column goes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::schema::*;

migration!(|manager| up {
    manager
        .create_table(
            Table::create()
                .table("webhook_subscriptions")
                .col(uuid("destination_id"))
                .col(uuid("application_id"))
                .col(text("webhook_type"))
                .primary_key(Index::create().col("destination_id").col("webhook_type"))
                .foreign_key(&mut cascade(
                    "webhook_subscriptions",
                    "destination_id",
                    "webhook_destinations",
                ))
                .take(),
        )
        .await?;
    let by_type = ["application_id", "webhook_type"];
    create_index(manager, "webhook_subscriptions", &by_type, false).await?;
    let each_type = match manager.get_database_backend() {
        DatabaseBackend::Postgres => {
            "json_array_elements_text(CAST(d.subscribed_events AS json)) AS t(value)"
        }
        _ => "json_each(d.subscribed_events) AS t",
    };
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "INSERT INTO webhook_subscriptions (destination_id, application_id, webhook_type) \
             SELECT DISTINCT d.id, d.application_id, t.value \
             FROM webhook_destinations d, {each_type}"
        ))
        .await?;
    drop_columns(manager, "webhook_destinations", &["subscribed_events"]).await
} down {
    let events = ColumnDef::new("subscribed_events")
        .text()
        .not_null()
        .default("[]")
        .take();
    add_columns(manager, "webhook_destinations", [events]).await?;
    drop_tables(manager, &["webhook_subscriptions"]).await
});
