//! Entities: which version of the `vendor_data` matching key each row holds, so that a new
//! key rule (NFKC and lower case, from version 2) can re-key the rows made under an older one
//! at start-up, reporting the rows whose new key another row already holds instead of merging
//! them.

use sea_orm_migration::prelude::*;

use crate::schema::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("entities")
                    .add_column(
                        ColumnDef::new("key_version")
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(index("entities", &["key_version"], false))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_entities_key_version")
                    .table("entities")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("entities")
                    .drop_column("key_version")
                    .take(),
            )
            .await
    }
}
