//! Data an earlier version kept in clear is sealed at start-up (`Store::seal_clear_data`); a
//! long text is compressed before it is sealed.

use handoff_domain::action::LogAction;
use handoff_domain::entity::NewEntity;
use handoff_domain::ports::{EntityRepository, SessionRepository};
use handoff_domain::session::{RecordResults, ReviewOutcome};
use handoff_domain::{
    EntityId, EntityStatus, FeatureBlock, FeatureItem, LogKind, ReviewStatus, SessionFilter,
    SessionKind, SessionStatus, VendorData,
};
use handoff_store::Backfilled;
use serde_json::value::RawValue;

use crate::support::{TestStore, event, now, on_both_backends};

/// A User `ana-2` named Ana Example, with `metadata`.
fn ana_s_profile(metadata: serde_json::Value) -> NewEntity {
    NewEntity {
        id: EntityId::from_uuid(uuid::Uuid::new_v4()),
        kind: SessionKind::User,
        vendor_data: VendorData::parse("ana-2").unwrap(),
        status: EntityStatus::Active,
        display_name: Some("Ana Example".into()),
        metadata: Some(metadata),
        created_at: now(),
    }
}

on_both_backends!(what_was_kept_in_clear_is_sealed_once);
async fn what_was_kept_in_clear_is_sealed_once(db: TestStore) {
    let clear = db.in_clear().await;
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session_in(&clear, &workflow, Some("ana-1")).await;
    let document =
        r#"{"node_id":"n","status":"Approved","full_name":"Ana Example","issuing_state":"ESP"}"#;
    let item = FeatureItem::parse(&RawValue::from_string(document.to_owned()).unwrap()).unwrap();
    let results = RecordResults {
        status: Some(SessionStatus::InReview),
        blocks: vec![(FeatureBlock::IdVerifications, Some(vec![item]))],
        blocklist_keys: None,
    };
    let log = event(LogAction::ResultsRecorded);
    assert!(clear.record_results(app, session.id, &results, &log).await.unwrap());
    let mut review = event(LogAction::StatusUpdated);
    review.kind = LogKind::Review;
    review.comment = Some("Not Ana Example".into());
    let outcome = clear.apply_review(app, session.id, ReviewStatus::Approved, &review).await;
    assert_eq!(outcome.unwrap(), ReviewOutcome::Applied);
    let profile = ana_s_profile(serde_json::json!({"tier": "gold"}));
    // Written in clear, as before: the item's JSON itself is in its row.
    let stored_item = || async { db.rows("SELECT item FROM id_verifications").await };
    assert_eq!(stored_item().await[0].try_get::<String>("", "item").unwrap(), document);
    let entity_row = db.rows("SELECT id FROM entities").await.len();
    clear.create_entity(app, &profile).await.unwrap();
    assert_eq!(db.rows("SELECT id FROM entities").await.len(), entity_row + 1);

    let sealed = db.seal_clear_data().await.unwrap();
    assert_eq!(sealed, Backfilled { sessions: 1, entities: 1 });
    let text: String = stored_item().await[0].try_get("", "item").unwrap();
    // The name with its space: base64 has no space, so random ciphertext cannot hold it.
    assert!(text.starts_with("s1:") && !text.contains("Ana Example"), "{text}");
    let comments = db.rows("SELECT comment FROM session_logs WHERE comment IS NOT NULL").await;
    assert!(comments[0].try_get::<String>("", "comment").unwrap().starts_with("s1:"));
    let names = db.rows("SELECT display_name FROM entities WHERE display_name IS NOT NULL").await;
    assert!(names[0].try_get::<String>("", "display_name").unwrap().starts_with("s1:"));

    // It reads back as it was, and lists find it by name and country.
    let record = db.find_session(app, session.id).await.unwrap().unwrap();
    let items = record.block(FeatureBlock::IdVerifications).unwrap();
    assert_eq!(items[0].json().get(), document);
    assert_eq!(record.session.metadata, Some(serde_json::json!({"k": "v"})));
    assert_eq!(record.reviews[0].comment.as_deref(), Some("Not Ana Example"));
    let mut filter = SessionFilter::of_kinds(vec![SessionKind::User], 10);
    filter.search = Some("example".into());
    assert_eq!(db.list_sessions(app, &filter).await.unwrap().count, 1);
    filter.search = None;
    filter.country = Some("ESP".into());
    assert_eq!(db.list_sessions(app, &filter).await.unwrap().count, 1);
    let entity = db
        .find_entity(app, SessionKind::User, &VendorData::parse("ana-2").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entity.display_name.as_deref(), Some("Ana Example"));
    assert_eq!(entity.metadata, Some(serde_json::json!({"tier": "gold"})));

    assert_eq!(db.seal_clear_data().await.unwrap(), Backfilled::default(), "once");
}

on_both_backends!(a_long_item_is_stored_compressed_and_reads_back_as_it_was);
async fn a_long_item_is_stored_compressed_and_reads_back_as_it_was(db: TestStore) {
    let app = db.application().await;
    let workflow = db.workflow(app, SessionKind::User).await;
    let session = db.session(&workflow, Some("ana-1")).await;
    let hits: Vec<String> =
        (0..60).map(|i| format!(r#"{{"caption":"Ana Example {i}","score":0.{i}}}"#)).collect();
    let screening = format!(r#"{{"node_id":"n","status":"Approved","hits":[{}]}}"#, hits.join(","));
    let item = FeatureItem::parse(&RawValue::from_string(screening.clone()).unwrap()).unwrap();
    let results = RecordResults {
        status: None,
        blocks: vec![(FeatureBlock::AmlScreenings, Some(vec![item]))],
        blocklist_keys: None,
    };
    let log = event(LogAction::ResultsRecorded);
    assert!(db.record_results(app, session.id, &results, &log).await.unwrap());
    let stored: String =
        db.rows("SELECT item FROM aml_screenings").await[0].try_get("", "item").unwrap();
    assert!(stored.starts_with("s2:") && !stored.contains("Ana Example"), "{stored}");
    assert!(stored.len() * 2 < screening.len(), "{} of {}", stored.len(), screening.len());
    let record = db.find_session(app, session.id).await.unwrap().unwrap();
    assert_eq!(record.block(FeatureBlock::AmlScreenings).unwrap()[0].json().get(), screening);
    // Sealed already: start-up leaves it, and a long profile, as they are.
    let profile = ana_s_profile(serde_json::json!({ "notes": hits }));
    db.create_entity(app, &profile).await.unwrap();
    let metadata: String =
        db.rows("SELECT metadata FROM entities WHERE metadata IS NOT NULL").await[0]
            .try_get("", "metadata")
            .unwrap();
    assert!(metadata.starts_with("s2:"), "{metadata}");
    assert_eq!(db.seal_clear_data().await.unwrap(), Backfilled::default());
}
