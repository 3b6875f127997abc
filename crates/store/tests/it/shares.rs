//! The clone of a shared session (`ShareRepository::import_clone`): rows, numbers, the entity
//! rule, a vanished source, a second clone, concurrent clones into one application.

use std::collections::BTreeSet;
use std::sync::Arc;

use handoff_domain::ports::{SessionRepository, ShareRepository};
use handoff_domain::session::RecordResults;
use handoff_domain::{
    ApplicationId, ClonePlan, FeatureBlock, FeatureItem, ImportOutcome, LogEntry, LogKind,
    SessionId, SessionKind, SessionStatus, StoredSession, VendorData, Workflow,
};
use sea_orm::ConnectionTrait;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::support::{TestStore, event, now, on_both_backends};

/// A finished source session in its own application, with two blocks and three log rows.
async fn source(db: &TestStore, vendor_data: &str) -> (ApplicationId, StoredSession) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, Some(vendor_data)).await;
    let item =
        |json: &str| FeatureItem::parse(&RawValue::from_string(json.to_owned()).unwrap()).unwrap();
    let results = RecordResults {
        status: Some(SessionStatus::Approved),
        blocks: vec![
            (
                FeatureBlock::IdVerifications,
                Some(vec![item(
                    r#"{"node_id":"ocr","status":"Approved","n":1.50}"#,
                )]),
            ),
            (
                FeatureBlock::AmlScreenings,
                Some(vec![
                    item(r#"{"node_id":"aml","status":"Approved","hits":[]}"#),
                    item(r#"{"node_id":"aml","status":"Approved","hits":[1]}"#),
                ]),
            ),
        ],
    };
    assert!(
        db.record_results(app, session.id, &results, &event("results_recorded"))
            .await
            .unwrap()
    );
    let session = StoredSession {
        status: SessionStatus::Approved,
        ..session
    };
    (app, session)
}

fn plan(
    source: &StoredSession,
    receiver: &Workflow,
    vendor_data: Option<&str>,
    trust_review: bool,
) -> ClonePlan {
    let created_at = now();
    let clone_id = SessionId::from_uuid(Uuid::new_v4());
    ClonePlan {
        source_application_id: source.application_id,
        source_session_id: source.id,
        kind: source.kind,
        blocks: vec![FeatureBlock::IdVerifications, FeatureBlock::AmlScreenings],
        application_id: receiver.application_id,
        clone_id,
        workflow_id: receiver.id,
        session_token: clone_id.as_uuid().simple().to_string(),
        session_url: format!("http://test/session/{}", clone_id.as_uuid().simple()),
        source_status: source.status,
        trust_review,
        vendor_data: vendor_data.map(|v| VendorData::parse(v).unwrap()),
        created_at,
        expires_at: created_at + chrono::Duration::days(7),
        log: LogEntry {
            kind: LogKind::Event,
            actor: "test".into(),
            action: "imported".into(),
            old_status: Some(source.status),
            new_status: None,
            comment: None,
            details: Some(serde_json::json!({"trust_review": trust_review})),
            created_at,
        },
        jti: None,
    }
}

/// Rows of every table a clone writes, and the sum of the applications' counters.
async fn footprint(db: &TestStore) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in
        handoff_migrations::BLOCK_TABLES
            .iter()
            .chain(&["sessions", "session_logs", "entities"])
    {
        counts.push(db.count(table).await);
    }
    let backend = db.connection().get_database_backend();
    let row = db
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT CAST(SUM(last_session_number) AS BIGINT) AS n FROM applications",
        ))
        .await
        .unwrap()
        .unwrap();
    counts.push(row.try_get::<i64>("", "n").unwrap());
    counts
}

on_both_backends! {
    async fn a_clone_copies_every_row_under_the_next_number(db) {
        let (_, src) = source(&db, "ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        db.session(&workflow, None).await;
        let plan = plan(&src, &workflow, Some("Ana"), false);
        assert_eq!(db.import_clone(&plan).await.unwrap(), ImportOutcome::Imported);

        let clone = db.find_session(receiver, plan.clone_id).await.unwrap().unwrap();
        let original = db.find_session(src.application_id, src.id).await.unwrap().unwrap();
        assert_eq!(clone.session.session_number, 2, "the receiver's next number");
        assert_eq!(clone.session.status, SessionStatus::InReview, "trust_review false");
        assert_eq!(clone.session.shared_from_session, Some(src.id));
        assert_eq!(clone.session.vendor_data.as_ref().map(VendorData::as_str), Some("Ana"));
        assert_eq!(clone.session.metadata, None, "the source's metadata stays behind");
        assert_eq!(clone.blocks.len(), 2);
        for ((block, items), (original_block, original_items)) in clone.blocks.iter().zip(&original.blocks) {
            assert_eq!(block, original_block);
            let text = |items: &Vec<FeatureItem>| items.iter().map(|i| i.json().get().to_owned()).collect::<Vec<_>>();
            assert_eq!(text(items), text(original_items), "items token for token, in order");
        }
        assert_eq!(db.count("entities").await, 2, "the source's and the receiver's new ACTIVE one");
        let logs = db.count("session_logs").await;
        assert_eq!(logs, 2 + 1 + 2 + 1, "source: created + results; receiver session: created; clone: both copied + the import");
    }

    async fn the_entity_status_decides_over_trust_review(db) {
        let (_, src) = source(&db, "ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        db.session(&workflow, Some("blocked-one")).await;
        let backend = db.connection().get_database_backend();
        db.connection()
            .execute_raw(sea_orm::Statement::from_string(backend, "UPDATE entities SET status = 'BLOCKED' WHERE vendor_data = 'blocked-one'"))
            .await
            .unwrap();
        let trusted = plan(&src, &workflow, Some("BLOCKED-ONE"), true);
        assert_eq!(db.import_clone(&trusted).await.unwrap(), ImportOutcome::Imported);
        let clone = db.find_session(receiver, trusted.clone_id).await.unwrap().unwrap();
        assert_eq!(clone.session.status, trusted.status(Some(handoff_domain::EntityStatus::Blocked)));
        assert_eq!(clone.session.status, SessionStatus::Declined);

        let (_, other) = source(&db, "bea").await;
        let fresh = plan(&other, &workflow, None, true);
        assert_eq!(db.import_clone(&fresh).await.unwrap(), ImportOutcome::Imported);
        let clone = db.find_session(receiver, fresh.clone_id).await.unwrap().unwrap();
        assert_eq!(clone.session.status, SessionStatus::Approved, "no vendor_data, no entity: the source's status");
    }

    async fn a_vanished_source_writes_nothing(db) {
        let (source_app, src) = source(&db, "ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        let plan = plan(&src, &workflow, Some("new-person"), false);
        assert!(db.delete_session(source_app, src.id).await.unwrap());
        let before = footprint(&db).await;
        assert_eq!(db.import_clone(&plan).await.unwrap(), ImportOutcome::SourceGone);
        assert_eq!(footprint(&db).await, before, "no row, no entity, no number");
    }

    async fn a_second_clone_of_one_source_is_refused_with_the_first(db) {
        let (_, src) = source(&db, "ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        let first = plan(&src, &workflow, None, false);
        assert_eq!(db.import_clone(&first).await.unwrap(), ImportOutcome::Imported);
        let before = footprint(&db).await;
        let second = plan(&src, &workflow, Some("someone"), false);
        assert_eq!(db.import_clone(&second).await.unwrap(), ImportOutcome::AlreadyImported(first.clone_id));
        assert_eq!(footprint(&db).await, before, "the refused clone left nothing, not even its entity");
    }

    async fn concurrent_clones_into_one_application_neither_collide_nor_deadlock(db) {
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        let mut plans = Vec::new();
        for i in 0..12 {
            let (_, src) = source(&db, &format!("person-{i}")).await;
            // Every clone names the same receiver entity: entity row and counter row both locked.
            plans.push(plan(&src, &workflow, Some("shared-person"), false));
        }
        let db = Arc::new(db);
        let mut tasks = tokio::task::JoinSet::new();
        for plan in plans.clone() {
            let db = db.clone();
            tasks.spawn(async move { db.import_clone(&plan).await.unwrap() });
        }
        for outcome in tasks.join_all().await {
            assert_eq!(outcome, ImportOutcome::Imported);
        }
        let mut numbers = BTreeSet::new();
        for plan in &plans {
            numbers.insert(db.find_session(receiver, plan.clone_id).await.unwrap().unwrap().session.session_number);
        }
        assert_eq!(numbers, (1..=12).collect::<BTreeSet<_>>());
        assert_eq!(db.count("entities").await, 12 + 1, "one per source, one shared by the clones");
    }
}
