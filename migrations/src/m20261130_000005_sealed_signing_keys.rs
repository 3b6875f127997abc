//! Signing keys: the algorithm each key signs with (`HS256` or `EdDSA`), and the id of the
//! key-encryption key that sealed its secret (`NULL`: a key stored in clear by an earlier
//! version, sealed at the next start-up).

use sea_orm_migration::prelude::*;

use crate::schema::*;

migration!(|manager| up {
    let algorithm = ColumnDef::new("algorithm")
        .string_len(8)
        .not_null()
        .default("HS256")
        .take();
    let sealed_with = ColumnDef::new("sealed_with").string_len(32).null().take();
    add_columns(manager, "signing_keys", [algorithm, sealed_with]).await
} down {
    drop_columns(manager, "signing_keys", &["sealed_with", "algorithm"]).await
});
