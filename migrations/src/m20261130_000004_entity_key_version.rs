//! Entities: which version of the `vendor_data` matching key each row holds, so that a new
//! key rule (NFKC and lower case, from version 2) can re-key the rows made under an older one
//! at start-up, reporting the rows whose new key another row already holds instead of merging
//! them.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    add_columns(
        manager,
        "entities",
        [ColumnDef::new("key_version").integer().not_null().default(1).take()],
    )
    .await?;
    create_index(manager, "entities", &["key_version"], false).await
} down {
    drop_index(manager, "entities", &["key_version"]).await?;
    drop_columns(manager, "entities", &["key_version"]).await
});
