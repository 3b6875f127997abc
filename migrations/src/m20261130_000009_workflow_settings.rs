//! Workflows: Didit's settings (`status`, `is_white_label_enabled`, `is_desktop_allowed`,
//! `max_retry_attempts`, `retry_window_days`), kept as one JSON object.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    let settings = ColumnDef::new("settings").text().not_null().default("{}").take();
    add_columns(manager, "workflows", [settings]).await
} down {
    drop_columns(manager, "workflows", &["settings"]).await
});
