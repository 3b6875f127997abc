//! The import: `ShareRepository::import` (rows, numbers, the entity rule, the redemption, each
//! failed check, a second clone, a fault part way through, concurrent imports) and
//! `ShareRepository::import_context`, which must name the same failed check. The answer is the
//! clone as written, which must be what a later read of it shows.

use handoff_domain::action::LogAction;
use std::collections::BTreeSet;
use std::sync::Arc;

use handoff_domain::ports::{SessionRepository, ShareRepository, WorkflowRepository};
use handoff_domain::session::RecordResults;
use handoff_domain::session::ReviewOutcome;
use handoff_domain::{
    ApplicationId, FeatureBlock, FeatureItem, ImportAttempt, ImportCheck, ImportOutcome,
    IssuedShareToken, LogEntry, LogKind, ReviewStatus, SessionId, SessionKind, SessionRecord,
    SessionStatus, ShareClaims, StoredSession, VendorData, Workflow, first_failed_check,
};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::support::{TestStore, event, now, on_both_backends};

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
                Some(vec![item(r#"{"node_id":"ocr","status":"Approved","n":1.50}"#)]),
            ),
            (
                FeatureBlock::AmlScreenings,
                Some(vec![
                    item(r#"{"node_id":"aml","status":"Approved","hits":[]}"#),
                    // Control characters, which the one-statement answer uses as separators.
                    item(
                        r#"{"node_id":"aml\u001e\u001f","status":"Approved","hits":["\u001e\u001f"]}"#,
                    ),
                    // Long enough to be stored compressed.
                    item(&format!(
                        r#"{{"node_id":"aml","status":"Approved","hits":[{}]}}"#,
                        vec![r#"{"caption":"Ana Example","score":0.9}"#; 40].join(",")
                    )),
                ]),
            ),
        ],
        blocklist_keys: None,
    };
    assert!(
        db.record_results(app, session.id, &results, &event(LogAction::ResultsRecorded))
            .await
            .unwrap()
    );
    let review = LogEntry {
        kind: LogKind::Review,
        actor: "reviewer@source.test".into(),
        action: LogAction::StatusUpdated,
        comment: Some("documents match".into()),
        ..event(LogAction::StatusUpdated)
    };
    assert!(matches!(
        db.apply_review(app, session.id, ReviewStatus::Approved, &review).await.unwrap(),
        ReviewOutcome::Applied
    ));
    let session = StoredSession { status: SessionStatus::Approved, ..session };
    (app, session)
}

/// An import of `source` into the receiver of `workflow`, every check passing: with a token
/// the ledger records (`share_token`), or an unlisted one the deployment accepts.
fn attempt(
    source: &StoredSession, receiver: &Workflow, vendor_data: Option<&str>,
    token: Option<&ShareClaims>, trust_review: bool,
) -> ImportAttempt {
    let created_at = now();
    let clone_id = SessionId::from_uuid(Uuid::new_v4());
    let claims = token.cloned().unwrap_or_else(|| ShareClaims {
        session_id: source.id,
        session_kind: source.kind,
        from_application_id: source.application_id,
        for_application_id: receiver.application_id,
        issued_at: created_at,
        expires_at: created_at + chrono::Duration::hours(1),
        jti: None,
        blocks: None,
        consent: None,
    });
    ImportAttempt {
        listed: token.is_some(),
        accept_unlisted_tokens: true,
        claims,
        application_id: receiver.application_id,
        workflow_id: receiver.id,
        clone_id,
        session_token: clone_id.as_uuid().simple().to_string(),
        session_url: format!("http://test/session/{}", clone_id.as_uuid().simple()),
        trust_review,
        vendor_data: vendor_data.map(|v| VendorData::parse(v).unwrap()),
        entity_id: handoff_domain::EntityId::from_uuid(Uuid::new_v4()),
        created_at,
        log: LogEntry {
            kind: LogKind::Event,
            actor: "test".into(),
            action: LogAction::Imported,
            old_status: None,
            new_status: None,
            comment: None,
            details: Some(serde_json::json!({"trust_review": trust_review})),
            created_at,
        },
        source_log: LogEntry::event("test", LogAction::ImportedBy, None, created_at),
        source_created_after: None,
        idempotency: None,
    }
}

/// Records a share token of `source` for the receiver; returns what it says.
async fn share_token(
    db: &TestStore, source: &StoredSession, receiver: ApplicationId,
) -> ShareClaims {
    let jti = Uuid::new_v4().simple().to_string();
    let issued_at = now();
    let token = IssuedShareToken {
        jti: jti.clone(),
        claims: ShareClaims {
            session_id: source.id,
            session_kind: source.kind,
            from_application_id: source.application_id,
            for_application_id: receiver,
            issued_at,
            expires_at: issued_at + chrono::Duration::hours(1),
            jti: Some(jti),
            blocks: None,
            consent: None,
        },
        log: LogEntry::event("test", LogAction::Shared, None, issued_at),
        idempotency: None,
    };
    db.record_share_token(&token).await.unwrap();
    token.claims
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
    let stored =
        db.find_session(answer.session.application_id, answer.session.id).await.unwrap().unwrap();
    assert_eq!(format!("{answer:?}"), format!("{stored:?}"));
}

/// Rows of every table a clone writes, and the sum of the applications' counters.
async fn footprint(db: &TestStore) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in
        handoff_migrations::BLOCK_TABLES.iter().chain(&["sessions", "session_logs", "entities"])
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

on_both_backends!(a_clone_copies_every_row_under_the_next_number);
async fn a_clone_copies_every_row_under_the_next_number(db: TestStore) {
    let (_, src) = source(&db, "ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    db.session(&workflow, None).await;
    let attempt = attempt(&src, &workflow, Some("Ana"), None, false);
    let answer = imported(db.import(&attempt).await.unwrap());
    assert_answer_is_the_stored_clone(&db, &answer).await;

    let clone = db.find_session(receiver, attempt.clone_id).await.unwrap().unwrap();
    let original = db.find_session(src.application_id, src.id).await.unwrap().unwrap();
    assert_eq!(clone.session.session_number, 2, "the receiver's next number");
    assert_eq!(clone.session.status, SessionStatus::InReview, "trust_review false");
    assert_eq!(clone.session.shared_from_session, Some(src.id));
    assert_eq!(clone.session.vendor_data.as_ref().map(VendorData::as_str), Some("Ana"));
    assert_eq!(clone.session.metadata, None, "the source's metadata stays behind");
    assert_eq!(
        clone.session.expires_at,
        attempt.created_at + chrono::Duration::seconds(workflow.session_expiration_time)
    );
    assert_eq!(clone.blocks.len(), 2);
    for ((block, items), (original_block, original_items)) in
        clone.blocks.iter().zip(&original.blocks)
    {
        assert_eq!(block, original_block);
        let text = |items: &Vec<FeatureItem>| {
            items.iter().map(|i| i.json().get().to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(text(items), text(original_items), "items token for token, in order");
    }
    let items = db.rows("SELECT item FROM aml_screenings").await;
    let compressed =
        items.iter().filter(|row| row.try_get::<String>("", "item").unwrap().starts_with("s2:"));
    assert_eq!(compressed.count(), 2, "the long item, compressed, copied as it is");
    let redacted: Vec<_> = original
        .reviews
        .iter()
        .map(|review| handoff_domain::Review {
            user: format!("application:{}", src.application_id),
            ..review.clone()
        })
        .collect();
    assert_eq!(
        clone.reviews, redacted,
        "the source's review comes along, its reviewer named as the source application"
    );
    assert_eq!(clone.reviews.len(), 1);
    assert_eq!(db.count("entities").await, 2, "the source's and the receiver's new ACTIVE one");
    let logs = db.count("session_logs").await;
    assert_eq!(
        logs,
        3 + 1 + 3 + 1 + 1,
        "source: created + results + review; receiver session: created; clone: the three copied + the import; source: imported_by"
    );
}

on_both_backends!(the_entity_status_decides_over_trust_review);
async fn the_entity_status_decides_over_trust_review(db: TestStore) {
    let (_, src) = source(&db, "ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    db.session(&workflow, Some("blocked-one")).await;
    let backend = db.connection().get_database_backend();
    db.connection()
        .execute_raw(sea_orm::Statement::from_string(
            backend,
            "UPDATE entities SET status = 'BLOCKED' WHERE vendor_data = 'blocked-one'",
        ))
        .await
        .unwrap();
    let trusted = attempt(&src, &workflow, Some("BLOCKED-ONE"), None, true);
    let clone = imported(db.import(&trusted).await.unwrap());
    assert_answer_is_the_stored_clone(&db, &clone).await;
    assert_eq!(clone.session.status, SessionStatus::Declined);

    let (_, other) = source(&db, "bea").await;
    let backend = db.connection().get_database_backend();
    db.connection()
        .execute_raw(sea_orm::Statement::from_string(
            backend,
            "UPDATE sessions SET vendor_data = NULL, entity_id = NULL",
        ))
        .await
        .unwrap();
    let clone = imported(db.import(&attempt(&other, &workflow, None, None, true)).await.unwrap());
    assert_answer_is_the_stored_clone(&db, &clone).await;
    assert_eq!(
        clone.session.status,
        SessionStatus::Approved,
        "no vendor_data, no entity: the source's status"
    );
    assert_eq!(clone.session.vendor_data, None);
}

on_both_backends!(an_import_redeems_its_token_and_logs_both_statuses);
async fn an_import_redeems_its_token_and_logs_both_statuses(db: TestStore) {
    let (_, src) = source(&db, "Ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    db.session(&workflow, Some("ANA")).await;
    let jti = share_token(&db, &src, receiver).await;
    let attempt = attempt(&src, &workflow, None, Some(&jti), true);
    let clone = imported(db.import(&attempt).await.unwrap());
    assert_answer_is_the_stored_clone(&db, &clone).await;
    assert_eq!(
        clone.session.status,
        SessionStatus::Approved,
        "trust_review keeps the source's status"
    );
    assert_eq!(clone.session.vendor_data.as_ref().map(VendorData::as_str), Some("Ana"));
    assert_eq!(
        db.count("entities").await,
        2,
        "the receiver's ANA is the clone's Ana: no new entity"
    );
    let backend = db.connection().get_database_backend();
    let sql = |sql: &str| match backend {
        sea_orm::DatabaseBackend::Postgres => sql.to_owned(),
        _ => sql.replace("$1", "?"),
    };
    let log = db
        .connection()
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql("SELECT old_status, new_status FROM session_logs WHERE session_id = $1 AND action = 'imported'"),
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
            sql("SELECT redeemed_session_id FROM share_tokens WHERE jti = $1"),
            vec![jti.jti.clone().unwrap().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        redeemed.try_get::<Option<Uuid>>("", "redeemed_session_id").unwrap(),
        Some(attempt.clone_id.as_uuid())
    );
}

on_both_backends!(each_failed_check_writes_nothing_and_the_context_names_it);
async fn each_failed_check_writes_nothing_and_the_context_names_it(db: TestStore) {
    let (source_app, src) = source(&db, "ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    let business = db.workflow(receiver, SessionKind::Business).await;
    let foreign = db.workflow(db.application().await, SessionKind::User).await;
    let deleted = db.workflow(receiver, SessionKind::User).await;
    db.delete_workflow(receiver, deleted.id, now()).await.unwrap();
    let revoked = share_token(&db, &src, receiver).await;
    // Issued before the footprint is taken (issuing writes the source's `shared` event).
    let issued = share_token(&db, &src, receiver).await;
    assert!(
        db.revoke_share_token(
            source_app,
            revoked.jti.as_deref().unwrap(),
            &LogEntry::event("test", LogAction::ShareRevoked, None, now()),
        )
        .await
        .unwrap()
    );
    let before = footprint(&db).await;

    let ok = || attempt(&src, &workflow, Some("x"), None, false);
    let mut failing = vec![
        (ImportCheck::TokenNotRevoked, attempt(&src, &workflow, None, Some(&revoked), false)),
        (ImportCheck::WorkflowKind, attempt(&src, &business, None, None, false)),
        (ImportCheck::WorkflowExists, attempt(&src, &deleted, None, None, false)),
    ];
    let mut not_for_me = ok();
    not_for_me.claims.for_application_id = foreign.application_id;
    failing.push((ImportCheck::AddressedToCaller, not_for_me));
    let mut foreign_workflow = ok();
    foreign_workflow.workflow_id = foreign.id;
    failing.push((ImportCheck::WorkflowExists, foreign_workflow));
    let mut wrong_source_app = ok();
    wrong_source_app.claims.from_application_id = receiver;
    failing.push((ImportCheck::SourceExists, wrong_source_app));
    let mut wrong_kind = attempt(&src, &business, None, None, false);
    wrong_kind.claims.session_kind = SessionKind::Business;
    failing.push((ImportCheck::SourceExists, wrong_kind));
    let mut gone = ok();
    gone.claims.session_id = SessionId::from_uuid(Uuid::new_v4());
    failing.push((ImportCheck::SourceExists, gone));
    // Issued here, but presented with other claims (a longer life): not the token issued.
    let mut stretched = issued.clone();
    stretched.expires_at += chrono::Duration::hours(1);
    failing.push((
        ImportCheck::TokenIssuedHere,
        attempt(&src, &workflow, None, Some(&stretched), false),
    ));
    // Unlisted, and the deployment does not accept unlisted tokens.
    let mut unlisted = ok();
    unlisted.accept_unlisted_tokens = false;
    failing.push((ImportCheck::TokenIssuedHere, unlisted));
    // A listed token whose row is missing: the jti of another deployment.
    let mut foreign_jti = issued.clone();
    foreign_jti.jti = Some("not-issued-here".into());
    let mut foreign = attempt(&src, &workflow, None, Some(&foreign_jti), false);
    foreign.accept_unlisted_tokens = false;
    failing.push((ImportCheck::TokenIssuedHere, foreign));
    for (check, attempt) in &failing {
        let outcome = db.import(attempt).await.unwrap();
        assert!(matches!(outcome, ImportOutcome::Refused), "{check:?}: {outcome:?}");
        assert_eq!(footprint(&db).await, before, "{check:?}: nothing written");
        let context = db.import_context(attempt).await.unwrap();
        assert_eq!(first_failed_check(&context, attempt), Some(*check));
    }
    let context = db.import_context(&ok()).await.unwrap();
    assert_eq!(first_failed_check(&context, &ok()), None, "every check passes");
    assert_eq!(
        context.recorded_blocks,
        vec![FeatureBlock::IdVerifications, FeatureBlock::AmlScreenings]
    );
}

on_both_backends!(a_second_clone_of_one_source_is_refused_with_the_first);
async fn a_second_clone_of_one_source_is_refused_with_the_first(db: TestStore) {
    let (_, src) = source(&db, "ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    let deleted = db.workflow(receiver, SessionKind::User).await;
    db.delete_workflow(receiver, deleted.id, now()).await.unwrap();
    let first = attempt(&src, &workflow, None, None, false);
    imported(db.import(&first).await.unwrap());
    let before = footprint(&db).await;
    let second = attempt(&src, &workflow, Some("someone"), None, false);
    assert_eq!(already_imported(db.import(&second).await.unwrap()), first.clone_id);
    assert_eq!(footprint(&db).await, before, "the refused clone left nothing, not even its entity");
    // With check 9 failing as well, check 8 still comes first.
    let third = attempt(&src, &deleted, None, None, false);
    let outcome = db.import(&third).await.unwrap();
    assert!(
        matches!(outcome, ImportOutcome::AlreadyImported(_) | ImportOutcome::Refused),
        "{outcome:?}"
    );
    let context = db.import_context(&third).await.unwrap();
    assert_eq!(first_failed_check(&context, &third), Some(ImportCheck::NotImported));
    assert_eq!(context.existing_clone, Some(first.clone_id));
    assert_eq!(footprint(&db).await, before);
}

on_both_backends!(a_failure_part_way_through_writes_nothing);
async fn a_failure_part_way_through_writes_nothing(db: TestStore) {
    let (_, src) = source(&db, "ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    let jti = share_token(&db, &src, receiver).await;
    let before = footprint(&db).await;
    // The log copy comes after the entity, the counter, the session row and the blocks.
    handoff_testdb::plant_insert_fault(db.connection(), "session_logs").await.unwrap();
    let failed = db.import(&attempt(&src, &workflow, Some("new-person"), Some(&jti), false)).await;
    handoff_testdb::clear_insert_fault(db.connection(), "session_logs").await.unwrap();
    assert!(matches!(failed, Err(handoff_domain::RepoError::Internal(_))), "{failed:?}");
    assert_eq!(footprint(&db).await, before, "no row, no entity, no number");
    let clone = imported(
        db.import(&attempt(&src, &workflow, Some("new-person"), Some(&jti), false)).await.unwrap(),
    );
    assert_eq!(clone.session.session_number, 1, "the failed import used no number");
}

on_both_backends!(concurrent_imports_into_one_application_take_every_number_once);
async fn concurrent_imports_into_one_application_take_every_number_once(db: TestStore) {
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    let db = Arc::new(db);
    // Every clone names the same receiver entity (entity row and counter row both locked);
    // then each its source's vendor_data, first all different (on SQLite, waiting together,
    // they are written in one wave), then two sources sharing one: the second reads the entity
    // the first writes.
    let mut entities = db.count("entities").await;
    for (round, shared, people) in [(0, Some("shared-person"), 12), (1, None, 12), (2, None, 6)] {
        let mut attempts = Vec::new();
        for i in 0..12 {
            let (_, src) = source(&db, &format!("person-{round}-{}", i % people)).await;
            let jti = share_token(&db, &src, receiver).await;
            attempts.push(attempt(&src, &workflow, shared, Some(&jti), false));
        }
        let holder = hold_the_counter(&db, receiver).await;
        let mut tasks = tokio::task::JoinSet::new();
        for attempt in attempts {
            let db = db.clone();
            tasks.spawn(async move { (attempt.clone_id, db.import(&attempt).await.unwrap()) });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        holder.commit().await.unwrap();
        let mut numbers = BTreeSet::new();
        for (clone_id, outcome) in tasks.join_all().await {
            let clone = imported(outcome);
            assert_eq!(clone.session.id, clone_id, "each import answers with its own clone");
            assert_answer_is_the_stored_clone(&db, &clone).await;
            numbers.insert(clone.session.session_number);
        }
        let first = round * 12 + 1;
        assert_eq!(numbers, (first..first + 12).collect::<BTreeSet<_>>(), "each number once");
        // One per source; the clones': one shared, else one per vendor_data.
        entities += 12 + if shared.is_some() { 1 } else { people };
        assert_eq!(db.count("entities").await, entities);
    }
}

/// Another connection's transaction that holds the receiver's counter row (on SQLite the write
/// lock), so that the imports started meanwhile wait together; they go on at its commit.
async fn hold_the_counter(db: &TestStore, receiver: ApplicationId) -> sea_orm::DatabaseTransaction {
    let holder = db.connection().begin().await.unwrap();
    let backend = db.connection().get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "UPDATE applications SET last_session_number = last_session_number WHERE id = $1"
        }
        _ => "UPDATE applications SET last_session_number = last_session_number WHERE id = ?",
    };
    holder
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [receiver.as_uuid().into()],
        ))
        .await
        .unwrap();
    holder
}

on_both_backends!(concurrent_imports_of_one_source_make_one_clone);
async fn concurrent_imports_of_one_source_make_one_clone(db: TestStore) {
    let (_, src) = source(&db, "ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    let db = Arc::new(db);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (db, attempt) = (db.clone(), attempt(&src, &workflow, Some("someone"), None, false));
        tasks.spawn(async move { (attempt.clone_id, db.import(&attempt).await.unwrap()) });
    }
    let outcomes = tasks.join_all().await;
    let winners: Vec<_> =
        outcomes.iter().filter(|(_, o)| matches!(o, ImportOutcome::Imported(_))).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = winners[0].0;
    for (_, outcome) in &outcomes {
        match outcome {
            ImportOutcome::Imported(clone) => assert_eq!(clone.session.id, winner),
            ImportOutcome::AlreadyImported(existing) => assert_eq!(*existing, winner),
            ImportOutcome::Refused => panic!("every check but the clone's passes: {outcomes:?}"),
        }
    }
    assert_eq!(db.count("sessions").await, 2, "the source and one clone");
}

on_both_backends!(an_import_failing_among_waiting_ones_undoes_only_its_own_rows);
/// Imports that wait for the writer together (on SQLite one transaction, one command, writes
/// them): one that fails part way, after its entity, number, session row and blocks, leaves
/// nothing, and the others keep theirs, numbered without a gap.
async fn an_import_failing_among_waiting_ones_undoes_only_its_own_rows(db: TestStore) {
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    let mut attempts = Vec::new();
    for i in 0..6 {
        let (_, src) = source(&db, &format!("person-{i}")).await;
        let jti = share_token(&db, &src, receiver).await;
        let mut attempt = attempt(&src, &workflow, None, Some(&jti), false);
        if i < 2 {
            // The first to queue, and one after it.
            attempt.log.actor = "doomed".into();
        }
        attempts.push(attempt);
    }
    let sources = db.count("sessions").await;
    // The import's own log row comes after every other row of its clone.
    handoff_testdb::plant_insert_fault_when(
        db.connection(),
        "session_logs",
        "NEW.actor = 'doomed'",
    )
    .await
    .unwrap();
    let holder = hold_the_counter(&db, receiver).await;
    let db = Arc::new(db);
    let mut tasks = tokio::task::JoinSet::new();
    for attempt in attempts.clone() {
        let db = db.clone();
        tasks.spawn(async move { (attempt.log.actor.clone(), db.import(&attempt).await) });
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    holder.commit().await.unwrap();
    let mut numbers = BTreeSet::new();
    for (actor, outcome) in tasks.join_all().await {
        if actor == "doomed" {
            assert!(matches!(outcome, Err(handoff_domain::RepoError::Internal(_))), "{outcome:?}");
        } else {
            let clone = imported(outcome.unwrap());
            assert_answer_is_the_stored_clone(&db, &clone).await;
            numbers.insert(clone.session.session_number);
        }
    }
    assert_eq!(numbers, (1..=4).collect::<BTreeSet<_>>(), "the failed imports took no number");
    assert_eq!(db.count("sessions").await, sources + 4);
    assert_eq!(db.count("entities").await, 6 + 4, "one per source, one per clone");
    handoff_testdb::clear_insert_fault(db.connection(), "session_logs").await.unwrap();
    for doomed in &attempts[..2] {
        let clone = imported(db.import(doomed).await.unwrap());
        assert!(clone.session.session_number > 4, "its token was not redeemed");
    }
}

on_both_backends!(a_redeemed_token_stays_redeemed_and_the_source_must_still_be_finished);
/// Check 8 holds after the clone is deleted (the ledger keeps the redemption), and check 7
/// refuses a source that went back to an unfinished status after it was shared.
async fn a_redeemed_token_stays_redeemed_and_the_source_must_still_be_finished(db: TestStore) {
    let (_, src) = source(&db, "ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    let token = share_token(&db, &src, receiver).await;
    let first = attempt(&src, &workflow, None, Some(&token), false);
    let clone = imported(db.import(&first).await.unwrap());
    assert!(db.delete_session(receiver, clone.session.id).await.unwrap());
    let before = footprint(&db).await;
    let again = attempt(&src, &workflow, None, Some(&token), false);
    let outcome = db.import(&again).await.unwrap();
    assert!(matches!(outcome, ImportOutcome::Refused), "{outcome:?}");
    let context = db.import_context(&again).await.unwrap();
    assert_eq!(context.existing_clone, None, "the clone is gone");
    assert_eq!(
        first_failed_check(&context, &again),
        Some(ImportCheck::NotImported),
        "the token stays redeemed"
    );
    assert_eq!(footprint(&db).await, before);

    // Back to In Progress after the share: no longer a finished session.
    let fresh = share_token(&db, &src, db.application().await).await;
    let backend = db.connection().get_database_backend();
    db.connection()
        .execute_raw(sea_orm::Statement::from_string(
            backend,
            "UPDATE sessions SET status = 'In Progress'",
        ))
        .await
        .unwrap();
    let other_workflow = db.workflow(fresh.for_application_id, SessionKind::User).await;
    let late = attempt(&src, &other_workflow, None, Some(&fresh), false);
    let before = footprint(&db).await;
    assert!(matches!(db.import(&late).await.unwrap(), ImportOutcome::Refused));
    let context = db.import_context(&late).await.unwrap();
    assert_eq!(first_failed_check(&context, &late), Some(ImportCheck::SourceExists));
    assert_eq!(footprint(&db).await, before);
}

on_both_backends!(an_idempotency_key_is_written_with_its_write_or_not_at_all);
/// The key's row is part of the write's transaction: a failed write leaves none, a done write
/// names its resource, and a second write with a taken key writes nothing at all.
async fn an_idempotency_key_is_written_with_its_write_or_not_at_all(db: TestStore) {
    use handoff_domain::idempotency::{
        IdempotencyClaim, IdempotencyKey, IdempotentOperation, RecordedAnswer,
    };
    use handoff_domain::ports::IdempotencyRepository;

    let (_, src) = source(&db, "ana").await;
    let receiver = db.application().await;
    let workflow = db.workflow(receiver, SessionKind::User).await;
    let key = IdempotencyKey::parse("retry-1").unwrap();
    let claim = IdempotencyClaim { key: key.clone(), request_hash: "h1".into(), created_at: now() };
    let jti = share_token(&db, &src, receiver).await;
    let mut guarded = attempt(&src, &workflow, None, Some(&jti), false);
    guarded.idempotency = Some(claim.clone());

    handoff_testdb::plant_insert_fault(db.connection(), "session_logs").await.unwrap();
    let failed = db.import(&guarded).await;
    handoff_testdb::clear_insert_fault(db.connection(), "session_logs").await.unwrap();
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(db.count("idempotency_keys").await, 0, "no key without its write");

    let clone = imported(db.import(&guarded).await.unwrap());
    let stored = db.find_idempotency(receiver, &key).await.unwrap().unwrap();
    assert_eq!(stored.operation, IdempotentOperation::Import);
    assert_eq!(stored.resource_id, clone.session.id.to_string());
    assert_eq!(stored.request_hash, "h1");
    assert_eq!(stored.answer, None);

    // Another import by the same application with the taken key writes nothing.
    let (_, other) = source(&db, "bea").await;
    let other_jti = share_token(&db, &other, receiver).await;
    let mut second = attempt(&other, &workflow, None, Some(&other_jti), false);
    second.idempotency = Some(IdempotencyClaim { request_hash: "h2".into(), ..claim.clone() });
    let before = footprint(&db).await;
    let taken = db.import(&second).await;
    assert!(matches!(taken, Err(handoff_domain::RepoError::IdempotencyKeyTaken)), "{taken:?}");
    assert_eq!(footprint(&db).await, before, "nothing written");
    // The same key of another application is another key.
    let mut elsewhere = second.clone();
    let stranger = db.application().await;
    let stranger_workflow = db.workflow(stranger, SessionKind::User).await;
    let stranger_jti = share_token(&db, &other, stranger).await;
    elsewhere.application_id = stranger;
    elsewhere.workflow_id = stranger_workflow.id;
    elsewhere.claims = stranger_jti;
    imported(db.import(&elsewhere).await.unwrap());

    // The first answer recorded stays; an expired key is forgotten.
    for body in ["first", "second"] {
        db.record_answer(receiver, &key, &RecordedAnswer { status: 201, body: body.into() })
            .await
            .unwrap();
    }
    let stored = db.find_idempotency(receiver, &key).await.unwrap().unwrap();
    assert_eq!(stored.answer.unwrap().body, "first");
    let forgotten = db
        .forget_idempotency(Some(receiver), Some(&key), now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(forgotten, 1);
    assert!(db.find_idempotency(receiver, &key).await.unwrap().is_none());
    assert_eq!(db.count("idempotency_keys").await, 1, "the stranger's stays");
}
