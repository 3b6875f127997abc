//! Sharing across deployments: the partner deployments an operator trusts (their URL, the
//! applications of theirs this deployment may share with, and their published keys as last
//! fetched); on the issuer, which partner redeemed a token; on the receiver, the partners'
//! tokens it redeemed, so that a token is imported once even after its clone is deleted.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    manager
        .create_table(
            Table::create()
                .table("partners")
                .col(ColumnDef::new("name").text().not_null().primary_key())
                .col(text("url"))
                // A JSON array of application ids.
                .col(text("applications"))
                // The partner's JWKS (public keys only), as fetched.
                .col(text("jwks"))
                .col(timestamp("keys_fetched_at"))
                .col(timestamp("added_at"))
                .take(),
        )
        .await?;
    create_index(manager, "partners", &["url"], true).await?;
    manager
        .create_table(
            Table::create()
                .table("partner_redemptions")
                .col(text("issuer"))
                .col(text("jti"))
                .col(uuid("application_id"))
                .col(uuid("session_id"))
                .col(timestamp("redeemed_at"))
                .primary_key(Index::create().col("issuer").col("jti"))
                .foreign_key(&mut cascade("partner_redemptions", "application_id", "applications"))
                .take(),
        )
        .await?;
    add_columns(manager, "share_tokens", [text_null("redeemed_by_partner")]).await
} down {
    drop_columns(manager, "share_tokens", &["redeemed_by_partner"]).await?;
    drop_tables(manager, &["partner_redemptions", "partners"]).await
});
