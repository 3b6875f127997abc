//! Webhook subscriptions as rows: one per destination and event type, so that "who is
//! subscribed to this event" is an indexed join. The destinations' JSON lists move into it
//! and their column goes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
        manager
            .create_index(index(
                "webhook_subscriptions",
                &["application_id", "webhook_type"],
                false,
            ))
            .await?;
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
        manager
            .alter_table(
                Table::alter()
                    .table("webhook_destinations")
                    .drop_column("subscribed_events")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("webhook_destinations")
                    .add_column(
                        ColumnDef::new("subscribed_events")
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .take(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("webhook_subscriptions").to_owned())
            .await
    }
}
