//! What a share carries and on what terms: the ledger's row keeps the blocks a share names
//! (their V3 keys, comma-separated; NULL: every block) and the person's consent to it (a JSON
//! object: the sharer's reference, when it was given, the hash of its wording), as the token's
//! claims say; an application may require consent for every share.

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    add_columns(manager, "share_tokens", [text_null("blocks"), text_null("consent")]).await?;
    add_columns(
        manager,
        "applications",
        [ColumnDef::new("require_consent").boolean().not_null().default(false).take()],
    )
    .await
} down {
    drop_columns(manager, "applications", &["require_consent"]).await?;
    drop_columns(manager, "share_tokens", &["blocks", "consent"]).await
});
