//! The database schema of handoff as sea-orm migrations, one set for SQLite and PostgreSQL.
//!
//! Migrations are written with sea-query's builder and never import the store's entities, so the
//! schema's history stays independent of the code that reads it.

use sea_orm_migration::prelude::*;

/// The migration of the file it stands in, named after the file as sea-orm names migrations:
/// `up` and `down` are the bodies of its two steps over the schema manager `|manager|`.
macro_rules! migration {
    (|$manager:ident| up $up:block down $down:block) => {
        #[derive(DeriveMigrationName)]
        pub struct Migration;

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, $manager: &SchemaManager) -> Result<(), DbErr> $up

            async fn down(&self, $manager: &SchemaManager) -> Result<(), DbErr> $down
        }
    };
}

mod m20261126_000001_initial;
mod m20261126_000002_sharing;
mod m20261126_000003_session_numbers;
mod m20261130_000004_entity_key_version;
mod m20261130_000005_sealed_signing_keys;
mod m20261130_000006_idempotency_keys;
mod m20261130_000007_webhooks;
mod m20261130_000008_entity_profile;
mod m20261130_000009_workflow_settings;
mod m20261130_000010_session_options;
mod m20261130_000011_rate_limit_counters;
mod m20261205_000012_console_sessions;
mod m20261205_000013_webhook_subscriptions;
mod m20261206_000014_workflow_versions;
mod m20261206_000015_scoped_api_keys;
mod m20261206_000016_lists;
mod m20261206_000017_partners;
mod m20261206_000018_share_terms;
mod m20261206_000019_retention;
mod m20261206_000020_reviewers;
mod m20261206_000021_data_keys;
mod m20261207_000022_api_key_changes;
mod m20261207_000023_api_key_generation;
mod schema;

pub use sea_orm_migration::MigratorTrait;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_initial::Migration),
            Box::new(m20261126_000002_sharing::Migration),
            Box::new(m20261126_000003_session_numbers::Migration),
            Box::new(m20261130_000004_entity_key_version::Migration),
            Box::new(m20261130_000005_sealed_signing_keys::Migration),
            Box::new(m20261130_000006_idempotency_keys::Migration),
            Box::new(m20261130_000007_webhooks::Migration),
            Box::new(m20261130_000008_entity_profile::Migration),
            Box::new(m20261130_000009_workflow_settings::Migration),
            Box::new(m20261130_000010_session_options::Migration),
            Box::new(m20261130_000011_rate_limit_counters::Migration),
            Box::new(m20261205_000012_console_sessions::Migration),
            Box::new(m20261205_000013_webhook_subscriptions::Migration),
            Box::new(m20261206_000014_workflow_versions::Migration),
            Box::new(m20261206_000015_scoped_api_keys::Migration),
            Box::new(m20261206_000016_lists::Migration),
            Box::new(m20261206_000017_partners::Migration),
            Box::new(m20261206_000018_share_terms::Migration),
            Box::new(m20261206_000019_retention::Migration),
            Box::new(m20261206_000020_reviewers::Migration),
            Box::new(m20261206_000021_data_keys::Migration),
            Box::new(m20261207_000022_api_key_changes::Migration),
            Box::new(m20261207_000023_api_key_generation::Migration),
        ]
    }
}

/// The feature-block tables, one per block of the contract, named by the block's V3 key.
pub const BLOCK_TABLES: [&str; 14] = [
    "id_verifications",
    "nfc_verifications",
    "liveness_checks",
    "face_matches",
    "poa_verifications",
    "phone_verifications",
    "email_verifications",
    "aml_screenings",
    "ip_analyses",
    "database_validations",
    "questionnaire_responses",
    "registry_checks",
    "key_people_checks",
    "document_verifications",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The names recorded in `seaql_migrations`: a migration renamed would run again on every
    /// existing database.
    #[test]
    fn migrations_keep_their_names() {
        let names: Vec<String> =
            Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
        assert_eq!(
            names,
            [
                "m20261126_000001_initial",
                "m20261126_000002_sharing",
                "m20261126_000003_session_numbers",
                "m20261130_000004_entity_key_version",
                "m20261130_000005_sealed_signing_keys",
                "m20261130_000006_idempotency_keys",
                "m20261130_000007_webhooks",
                "m20261130_000008_entity_profile",
                "m20261130_000009_workflow_settings",
                "m20261130_000010_session_options",
                "m20261130_000011_rate_limit_counters",
                "m20261205_000012_console_sessions",
                "m20261205_000013_webhook_subscriptions",
                "m20261206_000014_workflow_versions",
                "m20261206_000015_scoped_api_keys",
                "m20261206_000016_lists",
                "m20261206_000017_partners",
                "m20261206_000018_share_terms",
                "m20261206_000019_retention",
                "m20261206_000020_reviewers",
                "m20261206_000021_data_keys",
                "m20261207_000022_api_key_changes",
                "m20261207_000023_api_key_generation",
            ]
        );
    }
}
