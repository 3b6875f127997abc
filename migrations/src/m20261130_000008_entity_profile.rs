//! Entities: why and when their status last changed (`PATCH …/update-status/`'s `reason`), a
//! display name and metadata.

use sea_orm_migration::prelude::*;

use crate::schema::{text_null, timestamp_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            text_null("status_reason"),
            timestamp_null("status_updated_at"),
            text_null("display_name"),
            text_null("metadata"),
        ] {
            manager
                .alter_table(Table::alter().table("entities").add_column(column).take())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            "metadata",
            "display_name",
            "status_updated_at",
            "status_reason",
        ] {
            manager
                .alter_table(Table::alter().table("entities").drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}
