//! Signing keys: the algorithm each key signs with (`HS256` or `EdDSA`), and the id of the
//! key-encryption key that sealed its secret (`NULL`: a key stored in clear by an earlier
//! version, sealed at the next start-up).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .add_column(
                        ColumnDef::new("algorithm")
                            .string_len(8)
                            .not_null()
                            .default("HS256"),
                    )
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .add_column(ColumnDef::new("sealed_with").string_len(32).null())
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["sealed_with", "algorithm"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("signing_keys")
                        .drop_column(column)
                        .take(),
                )
                .await?;
        }
        Ok(())
    }
}
