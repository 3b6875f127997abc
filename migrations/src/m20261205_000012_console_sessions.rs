//! Review-console sessions, kept on the server so that signing out ends every copy of a
//! cookie: the SHA-256 of the cookie's random id, whose application and key signed in, the
//! CSRF token, the end of its lifetime and its last use (for the idle timeout).

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    manager
        .create_table(
            Table::create()
                .table("console_sessions")
                .col(ColumnDef::new("id_hash").binary().not_null().primary_key())
                .col(uuid("application_id"))
                .col(text("key_prefix"))
                .col(text("csrf"))
                .col(timestamp("created_at"))
                .col(timestamp("last_seen_at"))
                .col(timestamp("expires_at"))
                .foreign_key(&mut cascade("console_sessions", "application_id", "applications"))
                .take(),
        )
        .await?;
    create_index(manager, "console_sessions", &["expires_at"], false).await
} down {
    drop_tables(manager, &["console_sessions"]).await
});
