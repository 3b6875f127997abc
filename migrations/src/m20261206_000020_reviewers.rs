//! Reviewers: people who sign in to an application's review console with their own password
//! (its Argon2id hash), optionally a one-time code (its secret sealed under the
//! key-encryption key), locked for a while after repeated failures; the sessions assigned to
//! each (one reviewer a session). A console session names its reviewer; an application says whether its API keys still sign in to the console (those
//! that did before keep doing so).

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    manager
        .create_table(
            Table::create()
                .table("reviewers")
                .col(uuid_pk("id"))
                .col(uuid("application_id"))
                .col(text("email"))
                .col(text("role"))
                .col(text("password_hash"))
                .col(ColumnDef::new("totp_secret").binary().null().take())
                .col(text_null("totp_sealed_with"))
                .col(ColumnDef::new("failed_sign_ins").integer().not_null().default(0).take())
                .col(timestamp_null("locked_until"))
                .col(text_null("time_zone"))
                .col(timestamp("created_at"))
                .foreign_key(&mut cascade("reviewers", "application_id", "applications"))
                .take(),
        )
        .await?;
    create_index(manager, "reviewers", &["email"], true).await?;
    create_index(manager, "reviewers", &["application_id"], false).await?;
    manager
        .create_table(
            Table::create()
                .table("assignments")
                .col(uuid_pk("session_id"))
                .col(uuid("reviewer_id"))
                .col(timestamp("assigned_at"))
                .foreign_key(&mut cascade("assignments", "session_id", "sessions"))
                .foreign_key(&mut cascade("assignments", "reviewer_id", "reviewers"))
                .take(),
        )
        .await?;
    create_index(manager, "assignments", &["reviewer_id"], false).await?;
    add_columns(manager, "console_sessions", [uuid_null("reviewer_id")]).await?;
    add_columns(
        manager,
        "applications",
        [ColumnDef::new("console_api_keys").boolean().not_null().default(true).take()],
    )
    .await
} down {
    drop_columns(manager, "applications", &["console_api_keys"]).await?;
    drop_columns(manager, "console_sessions", &["reviewer_id"]).await?;
    drop_tables(manager, &["assignments", "reviewers"]).await
});
