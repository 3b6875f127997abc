//! Sessions: Didit's presentation options (`callback_method`, `language`, `portrait_image`),
//! kept as one JSON object, NULL when none is set; and a `revision`, bumped by every change of
//! the session's blocks or status, which guards a reviewer's amendments.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("sessions")
                    .add_column(ColumnDef::new("options").text().null())
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("sessions")
                    .add_column(
                        ColumnDef::new("revision")
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["revision", "options"] {
            manager
                .alter_table(Table::alter().table("sessions").drop_column(column).take())
                .await?;
        }
        Ok(())
    }
}
