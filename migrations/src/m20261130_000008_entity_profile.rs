//! Entities: why and when their status last changed (`PATCH …/update-status/`'s `reason`), a
//! display name and metadata.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    let columns = [
        text_null("status_reason"),
        timestamp_null("status_updated_at"),
        text_null("display_name"),
        text_null("metadata"),
    ];
    add_columns(manager, "entities", columns).await
} down {
    let columns = ["metadata", "display_name", "status_updated_at", "status_reason"];
    drop_columns(manager, "entities", &columns).await
});
