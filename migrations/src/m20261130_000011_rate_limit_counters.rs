//! Rate-limit counters shared by every server on one PostgreSQL database: requests counted per
//! budget (`bucket`) and 60-second window. Unlogged on PostgreSQL: a counter lost in a crash
//! costs at most one window's budget, and no write-ahead log is written per request. SQLite
//! servers count in memory and leave the table empty.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use crate::schema::*;

migration!(|manager| up {
    if manager.get_database_backend() == DatabaseBackend::Postgres {
        return on_postgres(
            manager,
            "CREATE UNLOGGED TABLE rate_limit_counters (\
               bucket varchar(100) NOT NULL, \
               window_start bigint NOT NULL, \
               hits bigint NOT NULL, \
               PRIMARY KEY (bucket, window_start))",
        )
        .await;
    }
    manager
        .create_table(
            Table::create()
                .table("rate_limit_counters")
                .col(ColumnDef::new("bucket").string_len(100).not_null())
                .col(big_integer("window_start"))
                .col(big_integer("hits"))
                .primary_key(Index::create().col("bucket").col("window_start"))
                .take(),
        )
        .await
} down {
    drop_tables(manager, &["rate_limit_counters"]).await
});
