//! Retention: how many days an application keeps a finished session (NULL: for ever).

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    add_columns(manager, "applications", [ColumnDef::new("retention_days").integer().null().take()])
        .await
} down {
    drop_columns(manager, "applications", &["retention_days"]).await
});
