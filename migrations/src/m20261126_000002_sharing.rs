//! Sharing: the record of every issued share token, and the keys that sign them when no secret
//! is configured.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    manager
        .create_table(
            Table::create()
                .table("share_tokens")
                .col(ColumnDef::new("jti").text().not_null().primary_key())
                .col(uuid("session_id"))
                .col(text("session_kind"))
                .col(uuid("from_application_id"))
                .col(uuid("for_application_id"))
                .col(timestamp("issued_at"))
                .col(timestamp("expires_at"))
                .col(timestamp_null("revoked_at"))
                .col(timestamp_null("redeemed_at"))
                .col(uuid_null("redeemed_session_id"))
                // No foreign key to sessions: the record outlives a deleted session, so that
                // a revoked token still answers "revoked" (check 5) before "source not
                // found" (check 7). It holds ids and times only.
                .take(),
        )
        .await?;
    create_index(manager, "share_tokens", &["session_id"], false).await?;
    let (from, to) = (["from_application_id", "issued_at"], ["for_application_id", "issued_at"]);
    create_index(manager, "share_tokens", &from, false).await?;
    create_index(manager, "share_tokens", &to, false).await?;
    manager
        .create_table(
            Table::create()
                .table("signing_keys")
                .col(ColumnDef::new("kid").text().not_null().primary_key())
                .col(ColumnDef::new("secret").binary().not_null())
                .col(timestamp("created_at"))
                // Servers sign with the newest key whose activates_at has passed, so every
                // server knows a new key before any token signed with it reaches them.
                .col(timestamp("activates_at"))
                .col(timestamp_null("retired_at"))
                .take(),
        )
        .await
} down {
    drop_tables(manager, &["signing_keys", "share_tokens"]).await
});
