//! The tables and columns the store's statements name, as sea-query identifiers: a column
//! renamed or dropped here fails to compile wherever a statement names it. They describe the
//! schema as the migrations leave it (the migrations keep their own literal names, as history
//! must); a test migrates each backend and compares its tables' columns with these.

use sea_orm::DeriveIden;

/// Declares a table's identifier enum and the list of its columns.
macro_rules! table {
    ($(#[$doc:meta])* $table:ident { $($column:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, DeriveIden)]
        pub(crate) enum $table {
            Table,
            $($column),*
        }

        impl $table {
            /// Every column, in the table's order.
            #[allow(dead_code, reason = "declared for every table; read where a statement lists them all")]
            pub(crate) const COLUMNS: &'static [$table] = &[$($table::$column),*];
        }
    };
}

table! {
    /// Tenants, with their session counter.
    Applications {
        Id, Name, LastSessionNumber, CreatedAt, RequireConsent, RetentionDays, ConsoleApiKeys,
        DataKey,
    }
}

table! {
    /// API keys: a public prefix and the SHA-256 of the whole key.
    ApiKeys {
        Id, ApplicationId, Prefix, KeyHash, CreatedAt, RevokedAt, Name, Scopes, WorkflowIds,
        Addresses, ExpiresAt
    }
}

table! {
    /// SQLite only: one row, whose `generation` counts every change to an API key's row.
    ApiKeyChanges { Id, Generation }
}

table! {
    /// The allowlists and custom lists applications make.
    Lists { Id, ApplicationId, Name, Description, ListType, EntryType, CreatedAt }
}

table! {
    /// Entries of every list (system blocklists' too): a personal value only as a keyed hash
    /// (`match_key`) and sealed.
    ListEntries {
        Id, ApplicationId, ListId, ListType, EntryType, MatchKey, RangeStart, RangeEnd, Value,
        SealedValue, SealedWith, DisplayLabel, Comment, ReferenceSessionId, AddedBy, CreatedAt
    }
}

table! {
    /// Rate-limit counts: one row per budget and window (unlogged on PostgreSQL).
    RateLimitCounters { Bucket, WindowStart, Hits }
}

table! {
    /// Review-console sessions: the SHA-256 of the cookie's id, whose sign-in, its times.
    ConsoleSessions {
        IdHash, ApplicationId, KeyPrefix, Csrf, CreatedAt, LastSeenAt, ExpiresAt, ReviewerId,
    }
}

table! {
    /// Which reviewer each session is assigned to.
    Assignments { SessionId, ReviewerId, AssignedAt }
}

table! {
    /// People who sign in to an application's console.
    Reviewers {
        Id, ApplicationId, Email, Role, PasswordHash, TotpSecret, TotpSealedWith, FailedSignIns,
        LockedUntil, TimeZone, CreatedAt,
    }
}

table! {
    /// Workflows; deletion only sets `deleted_at`.
    Workflows {
        Id, ApplicationId, Label, Kind, Features, IsDefault, SessionExpirationTime, CreatedAt,
        DeletedAt, Settings, Version,
    }
}

table! {
    /// Users and Businesses, matched on `vendor_data_key`.
    Entities {
        Id, ApplicationId, Kind, VendorData, VendorDataKey, Status, CreatedAt, KeyVersion,
        StatusReason, StatusUpdatedAt, DisplayName, Metadata, NameWords,
    }
}

table! {
    /// Sessions.
    Sessions {
        Id, ApplicationId, Kind, SessionNumber, SessionToken, SessionUrl, Status, WorkflowId,
        Features, VendorData, EntityId, Metadata, Callback, ContactDetails, ExpectedDetails,
        SharedFromSession, RecordedBlocks, CreatedAt, ExpiresAt, Options, Revision,
        BlocklistKeys, BlocklistIp, DataKey, NameWords, Country,
    }
}

table! {
    /// A session's reviews and events.
    SessionLogs {
        Id, SessionId, Kind, Actor, Action, OldStatus, NewStatus, Comment, Details, CreatedAt,
    }
}

table! {
    /// Issued share tokens.
    ShareTokens {
        Jti, SessionId, SessionKind, FromApplicationId, ForApplicationId, IssuedAt, ExpiresAt,
        RevokedAt, RedeemedAt, RedeemedSessionId, RedeemedByPartner, Blocks, Consent,
        CloneDataKey,
    }
}

table! {
    /// Partner deployments: their URL, the applications of theirs this deployment may share
    /// with (a JSON array), their published keys as last fetched.
    Partners { Name, Url, Applications, Jwks, KeysFetchedAt, AddedAt }
}

table! {
    /// The partners' tokens this deployment redeemed, by issuer and `jti`.
    PartnerRedemptions { Issuer, Jti, ApplicationId, SessionId, RedeemedAt }
}

table! {
    /// Share-token keys kept in the database, sealed under the key-encryption key `SealedWith`.
    SigningKeys { Kid, Secret, CreatedAt, ActivatesAt, RetiredAt, Algorithm, SealedWith }
}

table! {
    /// Idempotency keys, per application: the request's hash, the resource its write made, the
    /// recorded answer.
    IdempotencyKeys {
        ApplicationId, IdempotencyKey, RequestHash, Operation, ResourceId, CreatedAt, StatusCode,
        ResponseBody,
    }
}

table! {
    /// Webhook destinations of each application; secrets sealed under the key-encryption key.
    WebhookDestinations {
        Id, ApplicationId, Label, Url, Enabled, WebhookVersion, Secret, SealedWith,
        PreviousSecret, PreviousSecretUntil, CreatedAt, UpdatedAt,
    }
}

table! {
    /// Which destination receives which event type: one row each.
    WebhookSubscriptions { DestinationId, ApplicationId, WebhookType }
}

table! {
    /// The outbox: events, written with their change; `payload` once rendered.
    WebhookEvents {
        Id, EventId, ApplicationId, WebhookType, SessionId, Details, CreatedAt, Payload,
        DispatchedAt,
    }
}

table! {
    /// Each event's delivery to each subscribed destination.
    WebhookDeliveries {
        Id, EventId, DestinationId, State, Attempts, NextAttemptAt, LastStatusCode, LastError,
        DeliveredAt, CreatedAt,
    }
}

/// The columns of every block table (`id_verifications` … `document_verifications`), whose
/// names are [`handoff_domain::FeatureBlock::v3_key`].
#[derive(Clone, Copy, Debug, DeriveIden)]
pub(crate) enum BlockItems {
    Id,
    SessionId,
    Position,
    NodeId,
    Status,
    Item,
}

impl BlockItems {
    /// Every column, in the tables' order.
    #[allow(dead_code, reason = "read by the schema test only")]
    pub(crate) const COLUMNS: &'static [BlockItems] = &[
        BlockItems::Id,
        BlockItems::SessionId,
        BlockItems::Position,
        BlockItems::NodeId,
        BlockItems::Status,
        BlockItems::Item,
    ];
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use handoff_domain::FeatureBlock;
    use handoff_migrations::{Migrator, MigratorTrait};
    use handoff_testdb::{Backend, TestDatabase, skip};
    use sea_orm::sea_query::Iden;
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

    use super::*;
    use crate::{Store, StoreOptions};

    fn names<T: Iden>(columns: &[T]) -> BTreeSet<String> {
        columns.iter().map(Iden::to_string).collect()
    }

    /// The columns the database has for `table`. (A select of each column would not do:
    /// SQLite reads a double-quoted name it does not know as a string.)
    async fn columns_of(store: &Store, table: &str) -> BTreeSet<String> {
        let db = store.connection();
        // The catalogs differ by backend and are no tables of schema.rs.
        let sql = match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                "SELECT column_name AS name FROM information_schema.columns WHERE table_name = $1"
            }
            _ => "SELECT name FROM pragma_table_info(?)",
        };
        let statement =
            Statement::from_sql_and_values(db.get_database_backend(), sql, [table.into()]);
        db.query_all_raw(statement)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String>("", "name").unwrap())
            .collect()
    }

    /// Every table named here has exactly the columns named here once the migrations ran.
    async fn the_migrated_schema_is_the_one_named_here(backend: Backend) {
        if skip(backend) {
            return;
        }
        let db = TestDatabase::create(backend).await;
        let store = Store::connect(db.url(), &StoreOptions::default()).await.unwrap();
        Migrator::up(store.connection(), None).await.unwrap();
        let mut tables = vec![
            (Applications::Table.to_string(), names(Applications::COLUMNS)),
            (ApiKeys::Table.to_string(), names(ApiKeys::COLUMNS)),
            (Workflows::Table.to_string(), names(Workflows::COLUMNS)),
            (Entities::Table.to_string(), names(Entities::COLUMNS)),
            (Sessions::Table.to_string(), names(Sessions::COLUMNS)),
            (SessionLogs::Table.to_string(), names(SessionLogs::COLUMNS)),
            (ShareTokens::Table.to_string(), names(ShareTokens::COLUMNS)),
            (Partners::Table.to_string(), names(Partners::COLUMNS)),
            (PartnerRedemptions::Table.to_string(), names(PartnerRedemptions::COLUMNS)),
            (SigningKeys::Table.to_string(), names(SigningKeys::COLUMNS)),
            (IdempotencyKeys::Table.to_string(), names(IdempotencyKeys::COLUMNS)),
            (ConsoleSessions::Table.to_string(), names(ConsoleSessions::COLUMNS)),
            (Reviewers::Table.to_string(), names(Reviewers::COLUMNS)),
            (Assignments::Table.to_string(), names(Assignments::COLUMNS)),
            (Lists::Table.to_string(), names(Lists::COLUMNS)),
            (ListEntries::Table.to_string(), names(ListEntries::COLUMNS)),
            (RateLimitCounters::Table.to_string(), names(RateLimitCounters::COLUMNS)),
            (WebhookDestinations::Table.to_string(), names(WebhookDestinations::COLUMNS)),
            (WebhookEvents::Table.to_string(), names(WebhookEvents::COLUMNS)),
            (WebhookSubscriptions::Table.to_string(), names(WebhookSubscriptions::COLUMNS)),
            (WebhookDeliveries::Table.to_string(), names(WebhookDeliveries::COLUMNS)),
        ];
        for block in FeatureBlock::ALL {
            tables.push((block.v3_key().to_owned(), names(BlockItems::COLUMNS)));
        }
        if backend == Backend::Sqlite {
            tables.push((ApiKeyChanges::Table.to_string(), names(ApiKeyChanges::COLUMNS)));
        }
        for (table, named) in tables {
            assert_eq!(columns_of(&store, &table).await, named, "{backend:?} {table}");
        }
    }

    #[tokio::test]
    async fn the_migrated_schema_is_the_one_named_here_sqlite() {
        the_migrated_schema_is_the_one_named_here(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn the_migrated_schema_is_the_one_named_here_postgres() {
        the_migrated_schema_is_the_one_named_here(Backend::Postgres).await;
    }
}
