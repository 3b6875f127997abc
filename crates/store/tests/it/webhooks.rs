//! The webhook outbox as the delivery worker works it: an event fanned out once to the
//! destination subscribed to it, claimed under a lease, its attempt recorded, and pruned with
//! its event once delivered and old enough.

use chrono::Duration;
use handoff_domain::SessionKind;
use handoff_domain::delivery::{AttemptOutcome, Claim};
use handoff_domain::ports::{DeliveryQueue, WebhookRepository};
use handoff_domain::webhook::WebhookType;

use crate::support::{TestStore, now, on_both_backends};

on_both_backends!(the_outbox_fans_out_claims_records_and_prunes, an_idle_poll_waits_for_no_writer,);

async fn the_outbox_fans_out_claims_records_and_prunes(db: TestStore) {
    let application = db.application().await;
    let destination = db.destination(application, vec![WebhookType::StatusUpdated]).await;
    let workflow = db.workflow(application, SessionKind::User).await;
    // A new session's `status.updated`.
    db.session(&workflow, None).await;
    assert_eq!(db.count("webhook_events").await, 1);

    assert_eq!(db.dispatch_webhook_events(10, now()).await.unwrap(), 1);
    assert_eq!(db.dispatch_webhook_events(10, now()).await.unwrap(), 0, "once");
    let (due, since) = db.webhook_backlog(now()).await.unwrap();
    assert_eq!(due, 1);
    assert!(since.is_some());

    let claim = Claim { limit: 10, per_destination: 10, busy: &[], lease: Duration::seconds(30) };
    let claimed = db.claim_webhook_deliveries(&claim, now()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1);
    assert_eq!(claimed[0].destination_id, destination);
    let held = db.claim_webhook_deliveries(&claim, now()).await.unwrap();
    assert!(held.is_empty(), "the lease holds it");
    let busy = [destination];
    let later = now() + Duration::seconds(60);
    let skipped = Claim { busy: &busy, ..claim };
    assert!(
        db.claim_webhook_deliveries(&skipped, later).await.unwrap().is_empty(),
        "a busy destination's deliveries are left"
    );

    let delivered = [(claimed[0].id, AttemptOutcome::Delivered { status: 200 })];
    db.record_webhook_attempts(&delivered, now()).await.unwrap();
    assert_eq!(db.webhook_deliveries_by_state().await.unwrap(), [("delivered".to_owned(), 1)]);
    let listed = db.deliveries(application, destination, 10, 0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attempts, 1);
    assert!(
        db.deliveries(db.application().await, destination, 10, 0).await.unwrap().is_empty(),
        "another application's destination lists nothing"
    );

    // Nothing is pruned before its time; then the delivery and its event go.
    assert_eq!(db.prune_webhooks(now() - Duration::days(1)).await.unwrap(), 0);
    assert_eq!(db.prune_webhooks(now() + Duration::days(1)).await.unwrap(), 2);
    assert_eq!(db.count("webhook_deliveries").await, 0);
    assert_eq!(db.count("webhook_events").await, 0);
}

/// A poll that finds nothing to do only reads: it answers at once while another transaction
/// holds the database's writer (SQLite) or the outbox's tables against locking reads
/// (PostgreSQL).
async fn an_idle_poll_waits_for_no_writer(db: TestStore) {
    use sea_orm::{ConnectionTrait, DatabaseBackend, TransactionOptions, TransactionTrait};
    let connection = db.connection();
    let holder = match connection.get_database_backend() {
        DatabaseBackend::Sqlite => {
            let immediate = TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            };
            connection.begin_with_options(immediate).await.unwrap()
        }
        _ => {
            let holder = connection.begin().await.unwrap();
            holder
                .execute_unprepared(
                    "LOCK TABLE webhook_events, webhook_deliveries IN EXCLUSIVE MODE",
                )
                .await
                .unwrap();
            holder
        }
    };
    let claim = Claim { limit: 10, per_destination: 10, busy: &[], lease: Duration::seconds(30) };
    let polled = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        let dispatched = db.dispatch_webhook_events(10, now()).await.unwrap();
        (dispatched, db.claim_webhook_deliveries(&claim, now()).await.unwrap().len())
    })
    .await
    .expect("an idle poll waited for the writer");
    assert_eq!(polled, (0, 0));
    holder.rollback().await.unwrap();
}
