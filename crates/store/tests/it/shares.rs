//! The clone of a shared session: `ShareRepository::import_clone` (rows, numbers, the entity
//! rule, a vanished source, a second clone, concurrent clones into one application) and
//! `ShareRepository::try_import`, the checks and the clone in one step (PostgreSQL; SQLite
//! always declines, and the service reads the checks first). Both answer with the clone as
//! written, which must be what a later read of it shows.

use std::collections::BTreeSet;
use std::sync::Arc;

use handoff_domain::ports::{SessionRepository, ShareRepository, WorkflowRepository};
use handoff_domain::session::RecordResults;
use handoff_domain::session::ReviewOutcome;
use handoff_domain::{
    ApplicationId, ClonePlan, FeatureBlock, FeatureItem, ImportAttempt, ImportOutcome,
    IssuedShareToken, LogEntry, LogKind, ReviewStatus, SessionId, SessionKind, SessionRecord,
    SessionStatus, ShareClaims, StoredSession, VendorData, Workflow,
};
use sea_orm::ConnectionTrait;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::support::{TestStore, event, now, on_both_backends};
use handoff_store::DatabaseBackend;

/// A finished source session in its own application, with two blocks (one item's `node_id` and
/// content hold control characters) and three log rows, the last a review.
async fn source(db: &TestStore, vendor_data: &str) -> (ApplicationId, StoredSession) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, Some(vendor_data)).await;
    let item =
        |json: &str| FeatureItem::parse(&RawValue::from_string(json.to_owned()).unwrap()).unwrap();
    let results = RecordResults {
        status: Some(SessionStatus::InReview),
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
                    // Control characters, which the one-statement answer uses as separators.
                    item(
                        r#"{"node_id":"aml\u001e\u001f","status":"Approved","hits":["\u001e\u001f"]}"#,
                    ),
                ]),
            ),
        ],
    };
    assert!(
        db.record_results(app, session.id, &results, &event("results_recorded"))
            .await
            .unwrap()
    );
    let review = LogEntry {
        kind: LogKind::Review,
        actor: "reviewer@source.test".into(),
        action: "status_updated".into(),
        comment: Some("documents match".into()),
        ..event("status_updated")
    };
    assert!(matches!(
        db.apply_review(app, session.id, ReviewStatus::Approved, &review)
            .await
            .unwrap(),
        ReviewOutcome::Applied
    ));
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

/// The clone an outcome carries; panics on any other outcome.
fn imported(outcome: ImportOutcome) -> SessionRecord {
    match outcome {
        ImportOutcome::Imported(clone) => *clone,
        other => panic!("expected a clone, got {other:?}"),
    }
}

/// The session an outcome names as already imported; panics on any other outcome.
fn already_imported(outcome: ImportOutcome) -> SessionId {
    match outcome {
        ImportOutcome::AlreadyImported(id) => id,
        other => panic!("expected already imported, got {other:?}"),
    }
}

/// The answer of an import is what a later read of the clone shows, field for field and item
/// for item.
async fn assert_answer_is_the_stored_clone(db: &TestStore, answer: &SessionRecord) {
    let stored = db
        .find_session(answer.session.application_id, answer.session.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(format!("{answer:?}"), format!("{stored:?}"));
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
        let answer = imported(db.import_clone(&plan).await.unwrap());
        assert_answer_is_the_stored_clone(&db, &answer).await;

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
        assert_eq!(clone.reviews, original.reviews, "the source's review comes along");
        assert_eq!(clone.reviews.len(), 1);
        assert_eq!(db.count("entities").await, 2, "the source's and the receiver's new ACTIVE one");
        let logs = db.count("session_logs").await;
        assert_eq!(logs, 3 + 1 + 3 + 1, "source: created + results + review; receiver session: created; clone: the three copied + the import");
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
        let answer = imported(db.import_clone(&trusted).await.unwrap());
        assert_answer_is_the_stored_clone(&db, &answer).await;
        let clone = db.find_session(receiver, trusted.clone_id).await.unwrap().unwrap();
        assert_eq!(clone.session.status, trusted.status(Some(handoff_domain::EntityStatus::Blocked)));
        assert_eq!(clone.session.status, SessionStatus::Declined);

        let (_, other) = source(&db, "bea").await;
        let fresh = plan(&other, &workflow, None, true);
        let clone = imported(db.import_clone(&fresh).await.unwrap());
        assert_answer_is_the_stored_clone(&db, &clone).await;
        assert_eq!(clone.session.status, SessionStatus::Approved, "no vendor_data, no entity: the source's status");
    }

    async fn a_vanished_source_writes_nothing(db) {
        let (source_app, src) = source(&db, "ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        let plan = plan(&src, &workflow, Some("new-person"), false);
        assert!(db.delete_session(source_app, src.id).await.unwrap());
        let before = footprint(&db).await;
        assert!(matches!(db.import_clone(&plan).await.unwrap(), ImportOutcome::SourceGone));
        assert_eq!(footprint(&db).await, before, "no row, no entity, no number");
    }

    async fn a_second_clone_of_one_source_is_refused_with_the_first(db) {
        let (_, src) = source(&db, "ana").await;
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        let first = plan(&src, &workflow, None, false);
        imported(db.import_clone(&first).await.unwrap());
        let before = footprint(&db).await;
        let second = plan(&src, &workflow, Some("someone"), false);
        assert_eq!(already_imported(db.import_clone(&second).await.unwrap()), first.clone_id);
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
        let mut numbers = BTreeSet::new();
        for outcome in tasks.join_all().await {
            let clone = imported(outcome);
            assert_answer_is_the_stored_clone(&db, &clone).await;
            numbers.insert(clone.session.session_number);
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
            assert!(outcome.is_none(), "{outcome:?}");
            assert_eq!(footprint(&db).await, before, "declining writes nothing");
            return;
        }
        let answer = imported(outcome.unwrap());
        assert_answer_is_the_stored_clone(&db, &answer).await;
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
        assert_eq!(clone.reviews, original.reviews);
        assert_eq!(clone.reviews.len(), 1);
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
            let outcome = db.try_import(attempt).await.unwrap();
            assert!(outcome.is_none(), "{what}: {outcome:?}");
            assert_eq!(footprint(&db).await, before, "{what}: nothing written");
        }

        // Already imported: the first clone stands, the second attempt writes nothing and names
        // it (the session row's unique key decides).
        let first = attempt(&src, &workflow, None, None);
        if tries(&db) {
            imported(db.try_import(&first).await.unwrap().unwrap());
            let after_first = footprint(&db).await;
            assert_eq!(
                already_imported(db.try_import(&attempt(&src, &workflow, Some("new"), None)).await.unwrap().unwrap()),
                first.clone_id
            );
            assert_eq!(footprint(&db).await, after_first, "already imported: nothing written, no entity");
            let mut deleted_too = attempt(&src, &deleted, None, None);
            deleted_too.vendor_data = None;
            assert!(db.try_import(&deleted_too).await.unwrap().is_none(), "check 9 fails too: the long way answers 8");
            assert_eq!(footprint(&db).await, after_first);
        }
    }

    async fn concurrent_one_step_imports_into_one_application_take_every_number_once(db) {
        if !tries(&db) {
            return;
        }
        let receiver = db.application().await;
        let workflow = db.workflow(receiver, SessionKind::User).await;
        let mut attempts = Vec::new();
        for i in 0..12 {
            let (_, src) = source(&db, &format!("person-{i}")).await;
            let jti = share_token(&db, &src, receiver).await;
            attempts.push(attempt(&src, &workflow, None, Some(&jti)));
        }
        let db = Arc::new(db);
        let mut tasks = tokio::task::JoinSet::new();
        for attempt in attempts {
            let db = db.clone();
            tasks.spawn(async move { db.try_import(&attempt).await.unwrap() });
        }
        let mut numbers = BTreeSet::new();
        for outcome in tasks.join_all().await {
            let clone = imported(outcome.expect("every check passes"));
            assert_answer_is_the_stored_clone(&db, &clone).await;
            numbers.insert(clone.session.session_number);
        }
        assert_eq!(numbers, (1..=12).collect::<BTreeSet<_>>(), "each number once, none skipped");
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
        let winners: Vec<_> = outcomes.iter().filter(|(_, o)| matches!(o, Some(ImportOutcome::Imported(_)))).collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        let winner = winners[0].0;
        for (_, outcome) in &outcomes {
            match outcome {
                Some(ImportOutcome::Imported(clone)) => assert_eq!(clone.session.id, winner),
                Some(ImportOutcome::AlreadyImported(existing)) => assert_eq!(*existing, winner),
                None => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(db.count("sessions").await, 2, "the source and one clone");
    }
}
