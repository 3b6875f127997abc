//! Workflows: Didit's settings (`status`, `is_white_label_enabled`, `is_desktop_allowed`,
//! `max_retry_attempts`, `retry_window_days`), kept as one JSON object.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("workflows")
                    .add_column(ColumnDef::new("settings").text().not_null().default("{}"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("workflows")
                    .drop_column("settings")
                    .take(),
            )
            .await
    }
}
