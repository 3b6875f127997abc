//! Entities: why and when their status last changed (`PATCH …/update-status/`'s `reason`).

use sea_orm_migration::prelude::*;

use crate::schema::{text_null, timestamp_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table("entities")
                    .add_column(text_null("status_reason"))
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("entities")
                    .add_column(timestamp_null("status_updated_at"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["status_updated_at", "status_reason"] {
            manager
                .alter_table(Table::alter().table("entities").drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}
