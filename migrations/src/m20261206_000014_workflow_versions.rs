//! Workflows: a `version`, 1 when made and one more at each change, which a session's creation
//! answers as Didit's `workflow_version`.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    let version = ColumnDef::new("version").big_integer().not_null().default(1).take();
    add_columns(manager, "workflows", [version]).await
} down {
    drop_columns(manager, "workflows", &["version"]).await
});
