//! Sessions, blocks, reviews, entities, deletion and lists.

use handoff_domain::action::LogAction;
use std::collections::BTreeSet;
use std::sync::Arc;

use handoff_domain::ports::{EntityRepository, SessionRepository};
use handoff_domain::session::{RecordResults, ReviewOutcome};
use handoff_domain::{
    ApplicationId, EntityStatus, FeatureBlock, FeatureItem, LogKind, RepoError, ReviewStatus,
    SessionFilter, SessionId, SessionKind, SessionStatus, VendorData,
};
use handoff_migrations::BLOCK_TABLES;
use sea_orm::ConnectionTrait;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::support::{TestStore, event, on_both_backends};

fn item(json: &str) -> FeatureItem {
    FeatureItem::parse(&RawValue::from_string(json.to_owned()).unwrap()).unwrap()
}

fn all(kind: SessionKind) -> SessionFilter {
    SessionFilter::of_kinds(vec![kind], 50)
}

on_both_backends!(session_numbers_count_per_application);
async fn session_numbers_count_per_application(db: TestStore) {
    let a = db.application().await;
    let b = db.application().await;
    let wa = db.workflow(a, SessionKind::User).await;
    let wb = db.workflow(b, SessionKind::Business).await;
    assert_eq!(db.session(&wa, None).await.session_number, 1);
    assert_eq!(db.session(&wa, None).await.session_number, 2);
    assert_eq!(db.session(&wb, None).await.session_number, 1);
    assert_eq!(db.session(&wa, None).await.session_number, 3);
}

on_both_backends!(concurrent_creations_never_share_a_number);
async fn concurrent_creations_never_share_a_number(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let db = Arc::new(db);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let db = db.clone();
        let workflow = workflow.clone();
        tasks.spawn(async move {
            db.session(&workflow, Some(&format!("user-{}", i % 3))).await.session_number
        });
    }
    let numbers: BTreeSet<i64> = tasks.join_all().await.into_iter().collect();
    assert_eq!(numbers, (1..=24).collect::<BTreeSet<_>>());
    assert_eq!(db.count("entities").await, 3, "one entity per vendor_data, even under concurrency");
}

on_both_backends!(a_new_vendor_data_creates_one_active_entity_matched_case_insensitively);
async fn a_new_vendor_data_creates_one_active_entity_matched_case_insensitively(db: TestStore) {
    let app = db.application().await;
    let user_wf = db.workflow(app, SessionKind::User).await;
    let biz_wf = db.workflow(app, SessionKind::Business).await;
    db.session(&user_wf, Some("Ana-001")).await;
    db.session(&user_wf, Some("ana-001")).await;
    db.session(&biz_wf, Some("ANA-001")).await;
    let user = db
        .find_entity(app, SessionKind::User, &VendorData::parse("ANA-001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.vendor_data.as_str(), "Ana-001", "the first spelling is kept");
    assert_eq!(user.status, EntityStatus::Active);
    assert_eq!(user.counts.session_count, 2);
    let business = db
        .find_entity(app, SessionKind::Business, &VendorData::parse("ana-001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(business.counts.session_count, 1);
    let other = db.application().await;
    assert!(
        db.find_entity(other, SessionKind::User, &VendorData::parse("ana-001").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

on_both_backends!(recorded_blocks_read_back_exactly);
async fn recorded_blocks_read_back_exactly(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, None).await;
    // Records `results` and reads the session back.
    let recorded = async |results: &RecordResults| {
        let log = event(LogAction::ResultsRecorded);
        assert!(db.record_results(app, session.id, results, &log).await.unwrap());
        db.find_session(app, session.id).await.unwrap().unwrap()
    };
    let first = r#"{"node_id":"feature_ocr","status":"Approved","score":97.50,"b":{"z":1,"a":[1e2,"é\u00e9"]}}"#;
    let second = r#"{"node_id":"feature_ocr_2","status":"Declined"}"#;
    let results = RecordResults {
        status: Some(SessionStatus::Approved),
        blocks: vec![
            (FeatureBlock::IdVerifications, Some(vec![item(first), item(second)])),
            (FeatureBlock::NfcVerifications, Some(vec![])),
            (FeatureBlock::AmlScreenings, None),
        ],
        blocklist_keys: None,
    };
    let record = recorded(&results).await;
    assert_eq!(record.session.status, SessionStatus::Approved);
    let ids: Vec<&str> = record
        .block(FeatureBlock::IdVerifications)
        .unwrap()
        .iter()
        .map(|i| i.json().get())
        .collect();
    assert_eq!(ids, [first, second]);
    assert_eq!(
        record.block(FeatureBlock::NfcVerifications).map(<[_]>::len),
        Some(0),
        "[] stays an empty array"
    );
    assert!(record.block(FeatureBlock::AmlScreenings).is_none(), "null means never ran");
    assert!(record.block(FeatureBlock::LivenessChecks).is_none());
    assert_eq!(record.session.metadata, Some(serde_json::json!({"k": "v"})));

    // A second recording replaces only the blocks it names.
    let replace = RecordResults {
        status: None,
        blocks: vec![
            (FeatureBlock::IdVerifications, Some(vec![item(second)])),
            (FeatureBlock::NfcVerifications, None),
        ],
        blocklist_keys: None,
    };
    let record = recorded(&replace).await;
    let json = |record: &handoff_domain::session::SessionRecord| -> Vec<String> {
        let items = record.block(FeatureBlock::IdVerifications).unwrap();
        items.iter().map(|i| i.json().get().to_owned()).collect()
    };
    assert_eq!(json(&record), [second], "the first position overwritten, the second gone");
    assert!(record.block(FeatureBlock::NfcVerifications).is_none());
    assert_eq!(record.session.status, SessionStatus::Approved, "status unchanged when not given");
    assert_eq!(db.count("id_verifications").await, 1);
    // And a longer one adds positions after those it overwrites.
    let grow = RecordResults {
        status: None,
        blocks: vec![(
            FeatureBlock::IdVerifications,
            Some(vec![item(first), item(second), item(first)]),
        )],
        blocklist_keys: None,
    };
    let record = recorded(&grow).await;
    assert_eq!(json(&record), [first, second, first]);
    assert_eq!(db.count("id_verifications").await, 3);
}

on_both_backends!(another_applications_session_does_not_exist);
async fn another_applications_session_does_not_exist(db: TestStore) {
    let app = db.application().await;
    let other = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, None).await;
    assert!(db.find_session(other, session.id).await.unwrap().is_none());
    let results = RecordResults {
        status: Some(SessionStatus::Declined),
        blocks: vec![],
        blocklist_keys: None,
    };
    assert!(
        !db.record_results(other, session.id, &results, &event(LogAction::StatusUpdated))
            .await
            .unwrap()
    );
    assert_eq!(
        db.apply_review(
            other,
            session.id,
            ReviewStatus::Approved,
            &event(LogAction::StatusUpdated)
        )
        .await
        .unwrap(),
        ReviewOutcome::NotFound
    );
    assert!(!db.delete_session(other, session.id).await.unwrap());
    assert_eq!(db.list_sessions(other, &all(SessionKind::User)).await.unwrap().count, 0);
    let unknown = SessionId::from_uuid(Uuid::new_v4());
    assert!(db.find_session(app, unknown).await.unwrap().is_none());
    assert_eq!(
        db.find_session(app, session.id).await.unwrap().unwrap().session.status,
        SessionStatus::NotStarted
    );
}

on_both_backends!(reviews_need_a_reviewable_status);
async fn reviews_need_a_reviewable_status(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, None).await;
    let mut review = event(LogAction::StatusUpdated);
    review.kind = LogKind::Review;
    review.comment = Some("looks fine".into());
    assert_eq!(
        db.apply_review(app, session.id, ReviewStatus::Approved, &review).await.unwrap(),
        ReviewOutcome::WrongCurrentStatus(SessionStatus::NotStarted)
    );
    let to_review = RecordResults {
        status: Some(SessionStatus::InReview),
        blocks: vec![],
        blocklist_keys: None,
    };
    db.record_results(app, session.id, &to_review, &event(LogAction::ResultsRecorded))
        .await
        .unwrap();
    assert_eq!(
        db.apply_review(app, session.id, ReviewStatus::Approved, &review).await.unwrap(),
        ReviewOutcome::Applied
    );
    let record = db.find_session(app, session.id).await.unwrap().unwrap();
    assert_eq!(record.session.status, SessionStatus::Approved);
    assert_eq!(record.reviews.len(), 1, "events are not reviews");
    assert_eq!(record.reviews[0].new_status, SessionStatus::Approved);
    assert_eq!(record.reviews[0].comment.as_deref(), Some("looks fine"));
    assert_eq!(db.count("session_logs").await, 3);
}

on_both_backends!(deleting_a_session_deletes_every_related_row);
async fn deleting_a_session_deletes_every_related_row(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, Some("ana")).await;
    let keep = db.session(&workflow, Some("ana")).await;
    let blocks: Vec<_> = FeatureBlock::for_kind(SessionKind::User)
        .iter()
        .map(|b| (*b, Some(vec![item(r#"{"node_id":"n","status":"Approved"}"#)])))
        .collect();
    let results =
        RecordResults { status: Some(SessionStatus::Approved), blocks, blocklist_keys: None };
    for id in [session.id, keep.id] {
        db.record_results(app, id, &results, &event(LogAction::ResultsRecorded)).await.unwrap();
    }
    assert!(db.delete_session(app, session.id).await.unwrap());
    assert!(db.find_session(app, session.id).await.unwrap().is_none());
    for table in BLOCK_TABLES
        .into_iter()
        .filter(|t| FeatureBlock::from_v3_key(t).unwrap().belongs_to(SessionKind::User))
    {
        assert_eq!(db.count(table).await, 1, "{table} keeps only the other session's row");
    }
    assert_eq!(db.count("session_logs").await, 2);
    assert_eq!(db.count("entities").await, 1, "the entity outlives its sessions");
    assert!(!db.delete_session(app, session.id).await.unwrap());
}

on_both_backends!(lists_filter_and_page);
async fn lists_filter_and_page(db: TestStore) {
    let app = db.application().await;
    let user_wf = db.workflow(app, SessionKind::User).await;
    let biz_wf = db.workflow(app, SessionKind::Business).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(db.session(&user_wf, Some(if i % 2 == 0 { "Even" } else { "odd" })).await.id);
    }
    db.session(&biz_wf, Some("even")).await;
    let approve = RecordResults {
        status: Some(SessionStatus::Approved),
        blocks: vec![],
        blocklist_keys: None,
    };
    db.record_results(app, ids[0], &approve, &event(LogAction::ResultsRecorded)).await.unwrap();

    let page = db
        .list_sessions(app, &SessionFilter { limit: 2, offset: 1, ..all(SessionKind::User) })
        .await
        .unwrap();
    assert_eq!(page.count, 5);
    let numbers: Vec<i64> = page.results.iter().map(|s| s.session.session_number).collect();
    assert_eq!(numbers, [4, 3], "newest first, after the offset");

    let even = SessionFilter {
        vendor_data: Some(VendorData::parse("EVEN").unwrap()),
        ..all(SessionKind::User)
    };
    assert_eq!(db.list_sessions(app, &even).await.unwrap().count, 3);
    let both = SessionFilter { kinds: SessionKind::ALL.to_vec(), ..even };
    assert_eq!(db.list_sessions(app, &both).await.unwrap().count, 4);
    let approved = SessionFilter {
        statuses: vec![SessionStatus::Approved, SessionStatus::Declined],
        ..all(SessionKind::User)
    };
    let page = db.list_sessions(app, &approved).await.unwrap();
    assert_eq!(page.count, 1);
    assert_eq!(page.results[0].session.id, ids[0]);
    assert_eq!(db.list_sessions(app, &all(SessionKind::Business)).await.unwrap().count, 1);
    assert_eq!(
        db.list_sessions(ApplicationId::from_uuid(Uuid::new_v4()), &all(SessionKind::User))
            .await
            .unwrap()
            .count,
        0
    );
}

on_both_backends!(entities_keyed_under_the_old_rule_are_rekeyed_or_reported);
/// Rows keyed by plain lower case take the NFKC key at start-up; a row whose new key another
/// row holds (twins the old rule let in) is reported, not merged.
async fn entities_keyed_under_the_old_rule_are_rekeyed_or_reported(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    db.session(&workflow, Some("Jos\u{e9}")).await;
    db.session(&workflow, Some("twin")).await;
    db.session(&workflow, Some("wide")).await;
    // As the old rule wrote them: a decomposed twin of "José", a full-width name.
    let backend = db.connection().get_database_backend();
    for sql in [
        "UPDATE entities SET vendor_data = 'Jose\u{301}', vendor_data_key = 'jose\u{301}', \
         key_version = 1 WHERE vendor_data = 'twin'",
        "UPDATE entities SET vendor_data = '\u{ff22}ob', vendor_data_key = '\u{ff42}ob', \
         key_version = 1 WHERE vendor_data = 'wide'",
    ] {
        db.connection().execute_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap();
    }
    let report = db.rekey_entities().await.unwrap();
    assert_eq!(report.rekeyed, 1, "{report:?}");
    assert_eq!(report.collisions.len(), 1, "the twin is reported: {report:?}");
    assert_eq!(db.count("entities").await, 3, "nothing merged");
    let bob = db
        .find_entity(app, SessionKind::User, &VendorData::parse("bob").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.vendor_data.as_str(), "\u{ff22}ob");
    // Reported again at the next start, until resolved; nothing else to do.
    let again = db.rekey_entities().await.unwrap();
    assert_eq!((again.rekeyed, again.collisions.len()), (0, 1));
}

on_both_backends!(entities_keyed_before_case_folding_are_rekeyed_or_reported);
/// Rows keyed by NFKC and lower case (version 2) take the case-folded key: `Maß` becomes `mass`,
/// and a `MASS` that already existed beside it is reported, not merged.
async fn entities_keyed_before_case_folding_are_rekeyed_or_reported(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    db.session(&workflow, Some("one")).await;
    db.session(&workflow, Some("MASS")).await;
    db.session(&workflow, Some("two")).await;
    let backend = db.connection().get_database_backend();
    for sql in [
        "UPDATE entities SET vendor_data = 'Ma\u{df}', vendor_data_key = 'ma\u{df}', \
         key_version = 2 WHERE vendor_data = 'one'",
        "UPDATE entities SET vendor_data = 'Stra\u{df}e', vendor_data_key = 'stra\u{df}e', \
         key_version = 2 WHERE vendor_data = 'two'",
    ] {
        db.connection().execute_raw(sea_orm::Statement::from_string(backend, sql)).await.unwrap();
    }
    let report = db.rekey_entities().await.unwrap();
    assert_eq!((report.rekeyed, report.collisions.len()), (1, 1), "{report:?}");
    let street = db
        .find_entity(app, SessionKind::User, &VendorData::parse("STRASSE").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(street.vendor_data.as_str(), "Stra\u{df}e");
    assert_eq!(db.count("entities").await, 3, "nothing merged");
}

on_both_backends!(lists_filter_by_workflow_country_search_and_date);
async fn lists_filter_by_workflow_country_search_and_date(db: TestStore) {
    let app = db.application().await;
    let kyc = db.workflow(app, SessionKind::User).await;
    let other = db.workflow(app, SessionKind::User).await;
    let kyb = db.workflow(app, SessionKind::Business).await;
    let ana = db.session(&kyc, Some("client-ana")).await;
    let bob = db.session(&kyc, Some("client-bob")).await;
    let elsewhere = db.session(&other, Some("client-cy")).await;
    let company = db.session(&kyb, Some("acme-co")).await;
    let document = |name: &str, state: &str| RecordResults {
        status: Some(SessionStatus::Approved),
        blocks: vec![(
            FeatureBlock::IdVerifications,
            Some(vec![item(&format!(
                r#"{{"node_id":"n","status":"Approved","full_name":"{name}","document_type":"Passport","issuing_state":"{state}"}}"#
            ))]),
        )],
        blocklist_keys: None,
    };
    for (id, name, state) in [(ana.id, "Ana Núñez", "ESP"), (bob.id, "Bob Stone", "USA")] {
        db.record_results(app, id, &document(name, state), &event(LogAction::ResultsRecorded))
            .await
            .unwrap();
    }
    let registry = RecordResults {
        status: Some(SessionStatus::Declined),
        blocks: vec![(
            FeatureBlock::RegistryChecks,
            Some(vec![item(
                r#"{"node_id":"k","status":"Declined","company":{"company_name":"Acme 100% Widgets","registration_number":"B1","country_code":"ES"}}"#,
            )]),
        )],
        blocklist_keys: None,
    };
    db.record_results(app, company.id, &registry, &event(LogAction::ResultsRecorded))
        .await
        .unwrap();
    let db = &db;
    let ids = |filter: SessionFilter| async move {
        let mut ids: Vec<_> = db
            .list_sessions(app, &filter)
            .await
            .unwrap()
            .results
            .into_iter()
            .map(|l| l.session.id)
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<handoff_domain::SessionId>| {
        v.sort();
        v
    };
    let users = all(SessionKind::User);
    let both = SessionFilter { kinds: SessionKind::ALL.to_vec(), ..users.clone() };
    assert_eq!(
        ids(SessionFilter { workflow_id: Some(kyc.id), ..users.clone() }).await,
        sorted(vec![ana.id, bob.id])
    );
    // ESP matches the document's issuing state; ES the company's country.
    assert_eq!(
        ids(SessionFilter { country: Some("ESP".into()), ..both.clone() }).await,
        vec![ana.id]
    );
    assert_eq!(
        ids(SessionFilter { country: Some("ES".into()), ..both.clone() }).await,
        vec![company.id]
    );
    // Search: a name, a vendor_data, a number; `%` is a character, not a wildcard.
    for (search, expected) in [
        ("stone", vec![bob.id]),
        ("client-", sorted(vec![ana.id, bob.id, elsewhere.id])),
        ("100%", vec![company.id]),
        ("1%", vec![]),
        (&*bob.session_number.to_string(), vec![bob.id]),
    ] {
        assert_eq!(
            ids(SessionFilter { search: Some(search.to_owned()), ..both.clone() }).await,
            expected,
            "search {search:?}"
        );
    }
    // Dates: every session is created now.
    let now = chrono::Utc::now();
    assert_eq!(
        ids(SessionFilter {
            created_before: Some(now - chrono::Duration::hours(1)),
            ..both.clone()
        })
        .await,
        vec![]
    );
    assert_eq!(
        ids(SessionFilter {
            created_from: Some(now - chrono::Duration::hours(1)),
            created_before: Some(now + chrono::Duration::hours(1)),
            ..users.clone()
        })
        .await
        .len(),
        3
    );
    // The listing says what the results say.
    let page = db.list_sessions(app, &both).await.unwrap();
    let listed = |id| page.results.iter().find(|l| l.session.id == id).unwrap().clone();
    let ana_listed = listed(ana.id);
    assert_eq!(ana_listed.full_name.as_deref(), Some("Ana Núñez"));
    assert_eq!(ana_listed.document_type.as_deref(), Some("Passport"));
    assert_eq!(ana_listed.country.as_deref(), Some("ESP"));
    let company_listed = listed(company.id);
    assert_eq!(company_listed.company_name.as_deref(), Some("Acme 100% Widgets"));
    assert_eq!(company_listed.registration_number.as_deref(), Some("B1"));
    assert_eq!(company_listed.country.as_deref(), Some("ES"));
    let elsewhere_listed = listed(elsewhere.id);
    assert!(elsewhere_listed.full_name.is_none());
    assert!(
        elsewhere_listed.features.iter().all(|(_, status)| status == "Not Started"),
        "{:?}",
        elsewhere_listed.features
    );
}

on_both_backends!(an_amendment_writes_only_over_the_revision_it_read);
async fn an_amendment_writes_only_over_the_revision_it_read(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, None).await;
    let read = db.find_session(app, session.id).await.unwrap().unwrap();
    assert_eq!(read.session.revision, 0);
    let first = r#"{"node_id":"feature_ocr","status":"Approved"}"#;
    let results = RecordResults {
        status: Some(SessionStatus::Approved),
        blocks: vec![(FeatureBlock::IdVerifications, Some(vec![item(first)]))],
        blocklist_keys: None,
    };
    // Recorded results bump the revision: an amendment computed from the older read loses.
    assert!(
        db.record_results(app, session.id, &results, &event(LogAction::ResultsRecorded))
            .await
            .unwrap()
    );
    let amended = r#"{"node_id":"feature_ocr","status":"Approved","first_name":"Ana"}"#;
    let amendment = RecordResults {
        status: None,
        blocks: vec![(FeatureBlock::IdVerifications, Some(vec![item(amended)]))],
        blocklist_keys: None,
    };
    let stale = db
        .amend_results(
            app,
            session.id,
            read.session.revision,
            &amendment,
            &event(LogAction::ResultsRecorded),
        )
        .await;
    assert!(matches!(stale, Err(RepoError::Changed)), "{stale:?}");
    let now = db.find_session(app, session.id).await.unwrap().unwrap();
    assert_eq!(now.session.revision, 1);
    let texts = |r: &handoff_domain::SessionRecord| -> Vec<String> {
        r.block(FeatureBlock::IdVerifications)
            .unwrap()
            .iter()
            .map(|i| i.json().get().to_owned())
            .collect()
    };
    assert_eq!(texts(&now), [first]);
    // Over the current revision it writes, and bumps it.
    assert!(
        db.amend_results(app, session.id, 1, &amendment, &event(LogAction::ResultsRecorded))
            .await
            .unwrap()
    );
    let now = db.find_session(app, session.id).await.unwrap().unwrap();
    assert_eq!(now.session.revision, 2);
    assert_eq!(texts(&now), [amended]);
}

on_both_backends!(sessions_are_counted_by_status_and_assigned_to_reviewers);
async fn sessions_are_counted_by_status_and_assigned_to_reviewers(db: TestStore) {
    use handoff_domain::ports::ApplicationRepository;
    use handoff_domain::reviewer::{Reviewer, ReviewerRole, StoredReviewer};
    let app = db.application().await;
    let other = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let first = db.session(&workflow, None).await;
    let second = db.session(&workflow, None).await;
    let to_review = RecordResults {
        status: Some(SessionStatus::InReview),
        blocks: vec![],
        blocklist_keys: None,
    };
    db.record_results(app, second.id, &to_review, &event(LogAction::ResultsRecorded))
        .await
        .unwrap();
    let mut counts = db.count_by_status(app, None).await.unwrap();
    counts.sort_by_key(|(status, _)| status.as_str());
    assert_eq!(counts, [(SessionStatus::InReview, 1), (SessionStatus::NotStarted, 1)]);
    assert!(db.count_by_status(app, Some(&[])).await.unwrap().is_empty(), "no workflow seen");
    assert!(db.count_by_status(other, None).await.unwrap().is_empty());

    let reviewer = |application, email: &str| StoredReviewer {
        reviewer: Reviewer {
            id: handoff_domain::ReviewerId::from_uuid(Uuid::new_v4()),
            application_id: application,
            email: email.into(),
            role: ReviewerRole::Reviewer,
            totp: false,
            time_zone: None,
            created_at: crate::support::now(),
        },
        password_hash: "$argon2id$…".into(),
        totp_secret: None,
        failed_sign_ins: 0,
        locked_until: None,
    };
    let ana = reviewer(app, "ana@beta.example");
    let stranger = reviewer(other, "zed@elsewhere.example");
    assert!(db.add_reviewer(&ana).await.unwrap() && db.add_reviewer(&stranger).await.unwrap());
    let now = crate::support::now();
    let (ana_id, stranger_id) = (ana.reviewer.id, stranger.reviewer.id);
    assert!(db.assign_session(app, second.id, Some(ana_id), now).await.unwrap());
    assert!(!db.assign_session(app, first.id, Some(stranger_id), now).await.unwrap(), "not theirs");
    assert!(!db.assign_session(other, second.id, Some(stranger_id), now).await.unwrap());
    let assigned = db.assignees(app, &[first.id, second.id]).await.unwrap();
    assert_eq!(assigned, [(second.id, "ana@beta.example".to_owned())]);
    assert!(db.assignees(other, &[second.id]).await.unwrap().is_empty());
    let listed = |assignee| {
        let filter = SessionFilter { assignee: Some(assignee), ..all(SessionKind::User) };
        let db = &db;
        async move {
            let page = db.list_sessions(app, &filter).await.unwrap();
            page.results.iter().map(|l| l.session.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(Some(ana_id)).await, [second.id]);
    assert_eq!(listed(None).await, [first.id]);
    // Reassigned to nobody; a deleted session's assignment goes with it.
    assert!(db.assign_session(app, second.id, None, now).await.unwrap());
    assert_eq!(listed(None).await.len(), 2);
    assert!(db.assign_session(app, first.id, Some(ana_id), now).await.unwrap());
    assert!(db.delete_session(app, first.id).await.unwrap());
    assert_eq!(db.count("assignments").await, 0);
}
