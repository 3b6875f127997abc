//! Rate-limit counters shared by every server on one PostgreSQL database: requests counted per
//! budget (`bucket`) and 60-second window. Unlogged on PostgreSQL: a counter lost in a crash
//! costs at most one window's budget, and no write-ahead log is written per request. SQLite
//! servers count in memory and leave the table empty.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE UNLOGGED TABLE rate_limit_counters (\
                       bucket varchar(100) NOT NULL, \
                       window_start bigint NOT NULL, \
                       hits bigint NOT NULL, \
                       PRIMARY KEY (bucket, window_start))",
                )
                .await
                .map(drop)
        } else {
            manager
                .create_table(
                    Table::create()
                        .table("rate_limit_counters")
                        .col(ColumnDef::new("bucket").string_len(100).not_null())
                        .col(ColumnDef::new("window_start").big_integer().not_null())
                        .col(ColumnDef::new("hits").big_integer().not_null())
                        .primary_key(Index::create().col("bucket").col("window_start"))
                        .take(),
                )
                .await
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("rate_limit_counters").take())
            .await
    }
}
