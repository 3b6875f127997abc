//! Sessions' values tested: items, filters, reviews, resubmissions, comments and callbacks.

use super::*;

#[test]
fn a_review_decision_sends_back_only_named_steps_with_resubmitted() {
    use crate::status::ReviewStatus;
    let nodes = |n: usize| (0..n).map(|i| format!("node-{i}")).collect::<Vec<_>>();
    assert_eq!(
        ReviewDecision::parse(ReviewStatus::Approved, vec![]),
        Ok(ReviewDecision::Status(ReviewStatus::Approved))
    );
    assert_eq!(
        ReviewDecision::parse(ReviewStatus::Resubmitted, vec![]),
        Ok(ReviewDecision::Status(ReviewStatus::Resubmitted))
    );
    assert!(ReviewDecision::parse(ReviewStatus::Declined, nodes(1)).is_err());
    let twice = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
    match ReviewDecision::parse(ReviewStatus::Resubmitted, twice) {
        Ok(ReviewDecision::Resubmit(steps)) => assert_eq!(steps.as_slice(), ["a", "b"]),
        other => panic!("{other:?}"),
    }
    assert!(ReviewDecision::parse(ReviewStatus::Resubmitted, nodes(50)).is_ok());
    assert!(ReviewDecision::parse(ReviewStatus::Resubmitted, nodes(51)).is_err());
    assert!(NodesToResubmit::parse(vec!["x".repeat(101)]).is_err());
    assert!(NodesToResubmit::parse(vec![String::new()]).is_err());
}
use crate::ids::{ApplicationId, SessionId, WorkflowId};
use serde_json::value::RawValue;
use uuid::Uuid;

fn item(json: &str) -> FeatureItem {
    FeatureItem::parse(&RawValue::from_string(json.to_owned()).unwrap()).unwrap()
}

fn record(blocks: Vec<(FeatureBlock, Vec<FeatureItem>)>) -> SessionRecord {
    let now = chrono::Utc::now();
    SessionRecord {
        session: StoredSession::approved(
            SessionId::from_uuid(Uuid::nil()),
            ApplicationId::from_uuid(Uuid::nil()),
            WorkflowId::from_uuid(Uuid::nil()),
            now,
        ),
        blocks,
        reviews: vec![],
    }
}

#[test]
fn the_user_facing_state_of_every_status() {
    use SessionStatus as S;
    use UserFacingState as U;
    let mut session = record(vec![]).session;
    let now = session.expires_at - chrono::Duration::hours(1);
    let expected = [
        (S::NotStarted, U::NotStarted),
        (S::InProgress, U::InProgress),
        (S::AwaitingUser, U::InProgress),
        (S::Resubmitted, U::InProgress),
        (S::InReview, U::Finished),
        (S::Approved, U::Finished),
        (S::Declined, U::Finished),
        (S::KycExpired, U::Finished),
        (S::Expired, U::Expired),
        (S::Abandoned, U::Expired),
    ];
    assert_eq!(expected.len(), S::ALL.len());
    for (status, state) in expected {
        session.status = status;
        assert_eq!(UserFacingState::of(&session, now), state, "{status:?}");
    }
    // Past its expiry, an unfinished session has expired; a finished one stays finished.
    let later = session.expires_at + chrono::Duration::hours(1);
    session.status = S::InProgress;
    assert_eq!(UserFacingState::of(&session, later), U::Expired);
    session.status = S::Approved;
    assert_eq!(UserFacingState::of(&session, later), U::Finished);
    // A clone is the other provider's work, whatever its status.
    session.shared_from_session = Some(SessionId::from_uuid(Uuid::nil()));
    session.status = S::InReview;
    assert_eq!(UserFacingState::of(&session, later), U::Imported);
}

#[test]
fn v2_blocks_are_the_first_item_without_node_id() {
    let r = record(vec![
        (
            FeatureBlock::IdVerifications,
            vec![
                item(r#"{"node_id":"a","status":"Approved","n":1}"#),
                item(r#"{"node_id":"b","status":"Declined"}"#),
            ],
        ),
        (FeatureBlock::NfcVerifications, vec![]),
    ]);
    assert_eq!(
        r.v2_block(FeatureBlock::IdVerifications).unwrap().get(),
        r#"{"status":"Approved","n":1}"#
    );
    assert!(
        r.v2_block(FeatureBlock::NfcVerifications).is_none(),
        "an empty block has no first item"
    );
    assert!(r.v2_block(FeatureBlock::LivenessChecks).is_none(), "a block that never ran");
    assert_eq!(r.block(FeatureBlock::NfcVerifications).map(<[_]>::len), Some(0));
}

#[test]
fn callback_urls_are_http_and_bounded() {
    assert!(CallbackUrl::parse("https://example.test/done".into()).is_ok());
    assert!(CallbackUrl::parse("http://example.test".into()).is_ok());
    let too_long = format!("https://{}", "a".repeat(MAX_CALLBACK_CHARS));
    for bad in ["ftp://x", "example.test", "https://a b", "https://a\u{7}", &too_long] {
        assert!(CallbackUrl::parse(bad.to_owned()).is_err(), "{bad:?}");
    }
}

#[test]
fn comments_are_bounded_in_characters_not_bytes() {
    assert!(ReviewComment::parse("é".repeat(MAX_COMMENT_CHARS)).is_ok());
    assert!(ReviewComment::parse("a".repeat(MAX_COMMENT_CHARS + 1)).is_err());
}
