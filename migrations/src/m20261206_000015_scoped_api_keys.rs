//! Scoped API keys: a key's name, its scopes, the workflows and client addresses it is limited
//! to (space-separated; a NULL list is no limit, NULL scopes every right) and its expiry. Keys
//! made before keep every right.

use sea_orm_migration::prelude::*;

use crate::schema::*;

const COLUMNS: [&str; 5] = ["name", "scopes", "workflow_ids", "addresses", "expires_at"];

migration!(|manager| up {
    let columns = [
        text_null(COLUMNS[0]),
        text_null(COLUMNS[1]),
        text_null(COLUMNS[2]),
        text_null(COLUMNS[3]),
        timestamp_null(COLUMNS[4]),
    ];
    add_columns(manager, "api_keys", columns).await
} down {
    drop_columns(manager, "api_keys", &COLUMNS).await
});
