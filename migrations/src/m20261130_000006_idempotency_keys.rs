//! Idempotency keys: per application and key, the request it was first used with (a hash), the
//! resource its write made, and, once recorded, the answer that is replayed to a retry. The row
//! is written in the same transaction as the write it guards.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    manager
        .create_table(
            Table::create()
                .table("idempotency_keys")
                .col(uuid("application_id"))
                .col(text("idempotency_key"))
                .col(text("request_hash"))
                .col(text("operation"))
                .col(text("resource_id"))
                .col(timestamp("created_at"))
                .col(ColumnDef::new("status_code").integer().null())
                .col(text_null("response_body"))
                .primary_key(Index::create().col("application_id").col("idempotency_key"))
                .take(),
        )
        .await?;
    create_index(manager, "idempotency_keys", &["created_at"], false).await
} down {
    drop_tables(manager, &["idempotency_keys"]).await
});
