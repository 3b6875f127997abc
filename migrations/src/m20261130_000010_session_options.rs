//! Sessions: Didit's presentation options (`callback_method`, `language`, `portrait_image`),
//! kept as one JSON object, NULL when none is set; and a `revision`, bumped by every change of
//! the session's blocks or status, which guards a reviewer's amendments.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    let revision = ColumnDef::new("revision")
        .big_integer()
        .not_null()
        .default(0)
        .take();
    add_columns(manager, "sessions", [text_null("options"), revision]).await
} down {
    drop_columns(manager, "sessions", &["revision", "options"]).await
});
