//! Lists (Didit's Lists API): the allowlists and custom lists an application makes, and the
//! entries of every list — of the system blocklists too, which are not stored (their ids are
//! derived from the application's). A personal value is kept as a keyed hash (`match_key`)
//! and sealed (`sealed_value`, with the id of the key-encryption key that sealed it), never in
//! clear.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    manager
        .create_table(
            Table::create()
                .table("lists")
                .col(uuid_pk("id"))
                .col(uuid("application_id"))
                .col(text("name"))
                .col(text_null("description"))
                .col(text("list_type"))
                .col(text("entry_type"))
                .col(timestamp("created_at"))
                .foreign_key(&mut cascade("lists", "application_id", "applications"))
                .take(),
        )
        .await?;
    create_index(manager, "lists", &["application_id", "name"], true).await?;
    manager
        .create_table(
            Table::create()
                .table("list_entries")
                .col(uuid_pk("id"))
                .col(uuid("application_id"))
                .col(uuid("list_id"))
                .col(text("list_type"))
                .col(text("entry_type"))
                .col(text("match_key"))
                .col(text_null("range_start"))
                .col(text_null("range_end"))
                .col(text_null("value"))
                .col(ColumnDef::new("sealed_value").binary().null())
                .col(text_null("sealed_with"))
                .col(text_null("display_label"))
                .col(text_null("comment"))
                .col(uuid_null("reference_session_id"))
                .col(text("added_by"))
                .col(timestamp("created_at"))
                .foreign_key(&mut cascade("list_entries", "application_id", "applications"))
                .take(),
        )
        .await?;
    create_index(manager, "list_entries", &["list_id", "match_key"], true).await?;
    create_index(manager, "list_entries", &["application_id", "match_key"], false).await?;
    // What blocklists match a session by: the keys of its personal values (a JSON array) and
    // its IP address (hex, IPv4 mapped to IPv6, as entries' ranges are).
    add_columns(manager, "sessions", [text_null("blocklist_keys"), text_null("blocklist_ip")])
        .await
} down {
    drop_columns(manager, "sessions", &["blocklist_keys", "blocklist_ip"]).await?;
    drop_tables(manager, &["list_entries", "lists"]).await
});
