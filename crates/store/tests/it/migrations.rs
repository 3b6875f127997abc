//! Migrations that move data keep it: a database at the migration before, with rows in the old
//! shape, reads the same after.

use handoff_domain::ApplicationId;
use handoff_domain::ports::WebhookRepository;
use handoff_domain::webhook::WebhookType;
use handoff_migrations::{Migrator, MigratorTrait};
use handoff_store::{Store, StoreOptions};
use handoff_testdb::{Backend, TestDatabase};
use sea_orm::{ConnectionTrait, Statement};

async fn subscriptions_move_from_json_into_rows(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = Store::connect(db.url(), &StoreOptions::default()).await.unwrap();
    let connection = store.connection();
    // Every migration before the one that moves the subscriptions.
    let before = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261205_000013_webhook_subscriptions")
        .expect("the migration") as u32;
    Migrator::up(connection, Some(before)).await.unwrap();
    let application = uuid::Uuid::new_v4();
    let destination = uuid::Uuid::new_v4();
    let (app_id, dest_id) = match backend {
        Backend::Postgres => (format!("'{application}'"), format!("'{destination}'")),
        Backend::Sqlite => {
            (format!("X'{}'", application.simple()), format!("X'{}'", destination.simple()))
        }
    };
    let now = "'2026-12-05T12:00:00Z'";
    for sql in [
        format!(
            "INSERT INTO applications (id, name, last_session_number, created_at) \
             VALUES ({app_id}, 'A', 0, {now})"
        ),
        format!(
            "INSERT INTO webhook_destinations (id, application_id, label, url, enabled, \
             webhook_version, subscribed_events, secret, sealed_with, created_at, updated_at) \
             VALUES ({dest_id}, {app_id}, 'hooks', 'https://hooks.example.com/', true, 'v3', \
             '[\"share.created\", \"status.updated\"]', X'00', 'k', {now}, {now})"
        ),
    ] {
        let sql = match backend {
            Backend::Postgres => sql.replace("X'00'", "'\\x00'"),
            Backend::Sqlite => sql,
        };
        connection
            .execute_raw(Statement::from_string(connection.get_database_backend(), sql))
            .await
            .unwrap();
    }
    Migrator::up(connection, None).await.unwrap();
    let found = store
        .find_destination(ApplicationId::from_uuid(application), destination.into())
        .await
        .unwrap()
        .expect("the destination");
    assert_eq!(found.subscribed_events, [WebhookType::StatusUpdated, WebhookType::ShareCreated]);
}

handoff_testdb::on_each_backend!(crate::support::backend; subscriptions_move_from_json_into_rows);
