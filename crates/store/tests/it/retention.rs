//! Retention's deletion: the application's sessions finished before a time (or, never
//! finished, created before it), oldest first, in batches, with every related row and a
//! `session.deleted` event for a subscribed destination; concurrent sweeps never delete a
//! session twice.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;
use handoff_domain::action::LogAction;
use handoff_domain::ports::SessionRepository;
use handoff_domain::session::RecordResults;
use handoff_domain::webhook::WebhookType;
use handoff_domain::{FeatureBlock, FeatureItem, SessionId, SessionKind, SessionStatus};
use serde_json::value::RawValue;

use crate::support::{TestStore, event, now, on_both_backends};

/// Records an item in every block and `status`, logged at `at`.
async fn finish(
    db: &TestStore, session: &handoff_domain::StoredSession, status: SessionStatus,
    at: chrono::DateTime<chrono::Utc>,
) {
    let item = FeatureItem::parse(
        &RawValue::from_string(r#"{"node_id":"n","status":"Approved"}"#.to_owned()).unwrap(),
    )
    .unwrap();
    let blocks = FeatureBlock::for_kind(session.kind)
        .iter()
        .map(|b| (*b, Some(vec![item.clone()])))
        .collect();
    let results = RecordResults { status: Some(status), blocks, blocklist_keys: None };
    let log = handoff_domain::LogEntry { created_at: at, ..event(LogAction::ResultsRecorded) };
    assert!(db.record_results(session.application_id, session.id, &results, &log).await.unwrap());
}

on_both_backends!(what_finished_before_the_cutoff_goes_with_its_rows_and_events);
async fn what_finished_before_the_cutoff_goes_with_its_rows_and_events(db: TestStore) {
    let app = db.application().await;
    let other = db.application().await;
    db.destination(app, vec![WebhookType::SessionDeleted]).await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let never_finished = db.session(&workflow, Some("ana")).await;
    let finished = db.session(&workflow, Some("ben")).await;
    finish(&db, &finished, SessionStatus::Approved, now()).await;
    let finished_since = db.session(&workflow, None).await;
    // Its last finish is after the cutoff: an earlier one does not count.
    finish(&db, &finished_since, SessionStatus::InReview, now()).await;
    finish(&db, &finished_since, SessionStatus::Declined, now() + Duration::hours(2)).await;
    let elsewhere = db.session(&db.workflow(other, SessionKind::User).await, None).await;
    let cutoff = now() + Duration::hours(1);

    let first = db.delete_finished_before(app, cutoff, 1, now()).await.unwrap();
    assert_eq!(first.len(), 1, "one batch of one");
    assert_eq!(first[0].id, never_finished.id, "oldest first");
    assert_eq!(first[0].session_number, never_finished.session_number);
    assert_eq!(first[0].vendor_data.as_ref().map(|v| v.as_str()), Some("ana"));
    let rest = db.delete_finished_before(app, cutoff, 10, now()).await.unwrap();
    assert_eq!(rest.iter().map(|d| d.id).collect::<Vec<_>>(), [finished.id]);
    assert!(db.delete_finished_before(app, cutoff, 10, now()).await.unwrap().is_empty());

    for gone in [never_finished.id, finished.id] {
        assert!(db.find_session(app, gone).await.unwrap().is_none());
    }
    assert!(db.find_session(app, finished_since.id).await.unwrap().is_some());
    assert!(db.find_session(other, elsewhere.id).await.unwrap().is_some());
    // Only the kept session's items and log rows remain.
    for block in FeatureBlock::for_kind(SessionKind::User) {
        assert_eq!(db.count(block.v3_key()).await, 1, "{}", block.v3_key());
    }
    assert_eq!(db.count("session_logs").await, 1 + 2 + 1, "the kept sessions' rows");
    let events = db
        .rows(
            "SELECT session_id, details FROM webhook_events WHERE webhook_type = 'session.deleted' \
         ORDER BY id",
        )
        .await;
    assert_eq!(events.len(), 2, "one event per deleted session");
    let ids: Vec<SessionId> = events
        .iter()
        .map(|row| SessionId::from_uuid(row.try_get("", "session_id").unwrap()))
        .collect();
    assert_eq!(ids, [never_finished.id, finished.id]);
    let facts: serde_json::Value =
        serde_json::from_str(&events[0].try_get::<String>("", "details").unwrap()).unwrap();
    assert_eq!(facts["reason"], "retention");
    assert_eq!(facts["vendor_data"], "ana");
}

on_both_backends!(concurrent_sweeps_delete_each_session_once);
async fn concurrent_sweeps_delete_each_session_once(db: TestStore) {
    let app = db.application().await;
    db.destination(app, vec![WebhookType::SessionDeleted]).await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let mut due = BTreeSet::new();
    for _ in 0..24 {
        due.insert(db.session(&workflow, None).await.id);
    }
    let cutoff = now() + Duration::hours(1);
    let db = Arc::new(db);
    let mut sweeps = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let db = db.clone();
        sweeps.spawn(async move {
            let mut deleted = Vec::new();
            loop {
                let batch = db.delete_finished_before(app, cutoff, 3, now()).await.unwrap();
                if batch.is_empty() {
                    return deleted;
                }
                deleted.extend(batch.into_iter().map(|d| d.id));
            }
        });
    }
    let all: Vec<SessionId> = sweeps.join_all().await.into_iter().flatten().collect();
    assert_eq!(all.len(), due.len(), "no session deleted twice");
    assert_eq!(all.into_iter().collect::<BTreeSet<_>>(), due);
    assert_eq!(db.count("sessions").await, 0);
    let events = db
        .rows("SELECT session_id FROM webhook_events WHERE webhook_type = 'session.deleted'")
        .await;
    assert_eq!(events.len(), 24, "one event each");
}
