//! The clone of a shared session: `ShareRepository::import_clone` (rows, numbers, the entity
//! rule, a vanished source, a second clone, concurrent clones into one application) and
//! `ShareRepository::try_import`, the checks and the clone in one step (PostgreSQL; SQLite
//! always declines, and the service reads the checks first).

use std::collections::BTreeSet;
use std::sync::Arc;

use handoff_domain::ports::{SessionRepository, ShareRepository, WorkflowRepository};
use handoff_domain::session::RecordResults;
use handoff_domain::{
    ApplicationId, ClonePlan, FeatureBlock, FeatureItem, ImportAttempt, ImportOutcome,
    IssuedShareToken, LogEntry, LogKind, SessionId, SessionKind, SessionStatus, ShareClaims,
    StoredSession, VendorData, Workflow,
};
use sea_orm::ConnectionTrait;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::support::{TestStore, event, now, on_both_backends};
use handoff_store::DatabaseBackend;

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

fn attempt(
    source: &StoredSession,
    receiver: &Workflow,
    vendor_data: Option<&str>,
    jti: Option<&str>,
) -> ImportAttempt {
    let created_at = now();
    let clone_id = SessionId::from_uuid(Uuid::new_v4());
    ImportAttempt {
        source_application_id: source.application_id,
        source_session_id: source.id,
        kind: source.kind,
        jti: jti.map(str::to_owned),
        application_id: receiver.application_id,
        workflow_id: receiver.id,
        clone_id,
        session_token: clone_id.as_uuid().simple().to_string(),
        session_url: format!("http://test/session/{}", clone_id.as_uuid().simple()),
        trust_review: true,
        vendor_data: vendor_data.map(|v| VendorData::parse(v).unwrap()),
        created_at,
        log: LogEntry {
            kind: LogKind::Event,
            actor: "test".into(),
            action: "imported".into(),
            old_status: None,
            new_status: None,
            comment: None,
            details: Some(serde_json::json!({"trust_review": true})),
            created_at,
        },
    }
}

/// Records a share token of `source` for the receiver; returns its id.
async fn share_token(db: &TestStore, source: &StoredSession, receiver: ApplicationId) -> String {
    let jti = Uuid::new_v4().simple().to_string();
    let token = IssuedShareToken {
        jti: jti.clone(),
        claims: ShareClaims {
            session_id: source.id,
            session_kind: source.kind,
            from_application_id: source.application_id,
            for_application_id: receiver,
            issued_at: now(),
            expires_at: now() + chrono::Duration::hours(1),
            jti: Some(jti.clone()),
        },
    };
    db.record_share_token(&token).await.unwrap();
    jti
}

/// Whether this store tries imports in one step (PostgreSQL) or always declines (SQLite).
fn tries(db: &TestStore) -> bool {
    db.backend() == DatabaseBackend::Postgres
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

    async fn one_step_writes_what_the_long_way_writes(db) {
        let (_, src) = source(&db, "Ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        db.session(&workflow, Some("ANA")).await;
        let jti = share_token(&db, &src, receiver).await;
        let attempt = attempt(&src, &workflow, None, Some(&jti));
        let before = footprint(&db).await;
        let outcome = db.try_import(&attempt).await.unwrap();
        if !tries(&db) {
            assert_eq!(outcome, None);
            assert_eq!(footprint(&db).await, before, "declining writes nothing");
            return;
        }
        assert_eq!(outcome, Some(ImportOutcome::Imported));
        let clone = db.find_session(receiver, attempt.clone_id).await.unwrap().unwrap();
        let original = db.find_session(src.application_id, src.id).await.unwrap().unwrap();
        assert_eq!(clone.session.session_number, 2);
        assert_eq!(clone.session.status, SessionStatus::Approved, "trust_review keeps the source's status");
        assert_eq!(clone.session.vendor_data.as_ref().map(VendorData::as_str), Some("Ana"));
        assert_eq!(clone.session.expires_at, attempt.created_at + chrono::Duration::seconds(workflow.session_expiration_time));
        assert_eq!(clone.session.shared_from_session, Some(src.id));
        assert_eq!(clone.session.metadata, None);
        assert_eq!(clone.blocks.len(), original.blocks.len());
        for ((block, items), (original_block, original_items)) in clone.blocks.iter().zip(&original.blocks) {
            assert_eq!(block, original_block);
            let text = |items: &Vec<FeatureItem>| items.iter().map(|i| i.json().get().to_owned()).collect::<Vec<_>>();
            assert_eq!(text(items), text(original_items));
        }
        assert_eq!(db.count("entities").await, 2, "the receiver's ANA is the clone's Ana: no new entity");
        let backend = db.connection().get_database_backend();
        let log = db
            .connection()
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                "SELECT old_status, new_status FROM session_logs WHERE session_id = $1 AND action = 'imported'",
                vec![attempt.clone_id.as_uuid().into()],
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(log.try_get::<String>("", "old_status").unwrap(), "Approved");
        assert_eq!(log.try_get::<String>("", "new_status").unwrap(), "Approved");
        let redeemed = db
            .connection()
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                "SELECT redeemed_session_id FROM share_tokens WHERE jti = $1",
                vec![jti.into()],
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(redeemed.try_get::<Option<Uuid>>("", "redeemed_session_id").unwrap(), Some(attempt.clone_id.as_uuid()));
    }

    async fn one_step_writes_nothing_when_a_check_fails(db) {
        let (source_app, src) = source(&db, "ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        let business = db.workflow(receiver, SessionKind::Business).await;
        let foreign = db.workflow(db.application().await, SessionKind::User).await;
        let deleted = db.workflow(receiver, SessionKind::User).await;
        db.delete_workflow(receiver, deleted.id, now()).await.unwrap();
        let revoked = share_token(&db, &src, receiver).await;
        assert!(db.revoke_share_token(source_app, &revoked, now()).await.unwrap());
        let before = footprint(&db).await;

        let mut failing = vec![
            ("revoked token", attempt(&src, &workflow, None, Some(&revoked))),
            ("workflow of another kind", attempt(&src, &business, None, None)),
            ("deleted workflow", attempt(&src, &deleted, None, None)),
        ];
        let mut foreign_workflow = attempt(&src, &workflow, None, None);
        foreign_workflow.workflow_id = foreign.id;
        failing.push(("another application's workflow", foreign_workflow));
        let mut wrong_source_app = attempt(&src, &workflow, Some("x"), None);
        wrong_source_app.source_application_id = receiver;
        failing.push(("source in another application", wrong_source_app));
        let mut wrong_kind = attempt(&src, &business, None, None);
        wrong_kind.kind = SessionKind::Business;
        failing.push(("source of another kind", wrong_kind));
        let mut gone = attempt(&src, &workflow, None, None);
        gone.source_session_id = SessionId::from_uuid(Uuid::new_v4());
        failing.push(("no such source", gone));
        for (what, attempt) in &failing {
            assert_eq!(db.try_import(attempt).await.unwrap(), None, "{what}");
            assert_eq!(footprint(&db).await, before, "{what}: nothing written");
        }

        // Already imported: the first clone stands, the second attempt writes nothing and names
        // it (the session row's unique key decides).
        let first = attempt(&src, &workflow, None, None);
        if tries(&db) {
            assert_eq!(db.try_import(&first).await.unwrap(), Some(ImportOutcome::Imported));
            let after_first = footprint(&db).await;
            assert_eq!(
                db.try_import(&attempt(&src, &workflow, Some("new"), None)).await.unwrap(),
                Some(ImportOutcome::AlreadyImported(first.clone_id))
            );
            assert_eq!(footprint(&db).await, after_first, "already imported: nothing written, no entity");
            let mut deleted_too = attempt(&src, &deleted, None, None);
            deleted_too.vendor_data = None;
            assert_eq!(db.try_import(&deleted_too).await.unwrap(), None, "check 9 fails too: the long way answers 8");
            assert_eq!(footprint(&db).await, after_first);
        }
    }

    async fn concurrent_one_step_imports_of_one_source_make_one_clone(db) {
        if !tries(&db) {
            return;
        }
        let (_, src) = source(&db, "ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        let db = Arc::new(db);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (db, attempt) = (db.clone(), attempt(&src, &workflow, Some("someone"), None));
            tasks.spawn(async move { (attempt.clone_id, db.try_import(&attempt).await.unwrap()) });
        }
        let outcomes = tasks.join_all().await;
        let winners: Vec<_> = outcomes.iter().filter(|(_, o)| *o == Some(ImportOutcome::Imported)).collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        for (_, outcome) in &outcomes {
            assert!(
                matches!(outcome, Some(ImportOutcome::Imported) | None)
                    || *outcome == Some(ImportOutcome::AlreadyImported(winners[0].0)),
                "{outcome:?}"
            );
        }
        assert_eq!(db.count("sessions").await, 2, "the source and one clone");
    }
}
