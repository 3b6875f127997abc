//! The import's check order, its retries and its preview, on the in-memory ports.

use chrono::Duration;

use super::*;
use crate::application::Caller;
use crate::entity::EntityStatus;
use crate::fakes::World;
use crate::ids::ApplicationId;
use crate::kind::SessionKind;
use crate::ports::{Clock, SessionRepository, ShareRepository, ShareTokens, WorkflowRepository};
use crate::services::{Error, Services, ShareRequest};
use crate::session::RecordResults;
use crate::status::SessionStatus;
use crate::workflow::{Feature, NewWorkflow, WorkflowFeature};

struct Fixture {
    world: World,
    services: Services,
    source: Caller,
    receiver: Caller,
    source_session: SessionId,
    workflow: WorkflowId,
    other_kind_workflow: WorkflowId,
    token: String,
    /// A token issued here for the same session, addressed to a third application.
    stranger_token: String,
}

impl Fixture {
    /// An import of the fixture's token into `workflow_id`.
    fn request(&self, workflow_id: WorkflowId, trust_review: bool) -> ImportRequest {
        ImportRequest {
            share_token: ShareToken::new(self.token.clone()),
            workflow_id: Some(workflow_id),
            trust_review,
            vendor_data: None,
            max_source_age_seconds: None,
        }
    }

    /// The receiver imports.
    async fn import(&self, request: ImportRequest) -> Result<SessionRecord, Error> {
        self.services.import.import(&self.receiver, request).await
    }
}

async fn caller(services: &Services, name: &str) -> Caller {
    let (app, key) = services.applications.create_application(name).await.unwrap();
    Caller::primary(app.id, key.prefix())
}

async fn workflow(services: &Services, caller: &Caller, feature: Feature) -> WorkflowId {
    let step = WorkflowFeature { feature, config: serde_json::json!({}), label: None };
    services
        .workflows
        .create(caller, NewWorkflow::parse(None, vec![step], false, None).unwrap())
        .await
        .unwrap()
        .id
}

/// A world where every check of an import passes.
async fn fixture() -> Fixture {
    let world = World::new();
    let services = Services::new(world.ports.clone(), "https://verify.test");
    let source = caller(&services, "Source").await;
    let receiver = caller(&services, "Receiver").await;
    let source_workflow = workflow(&services, &source, Feature::Ocr).await;
    let session = services
        .sessions
        .create(
            &source,
            crate::services::CreateSession {
                vendor_data: Some(VendorData::parse("ana").unwrap()),
                ..crate::services::CreateSession::of_workflow(source_workflow)
            },
        )
        .await
        .unwrap();
    services
        .sessions
        .record_results(
            &source,
            session.id,
            RecordResults {
                status: Some(SessionStatus::Approved),
                blocks: vec![],
                blocklist_keys: None,
            },
        )
        .await
        .unwrap();
    let shared = services
        .share
        .share(
            &source,
            session.id,
            ShareRequest {
                for_application_id: receiver.application_id,
                ttl: crate::share::ShareTtl::DEFAULT,
                blocks: None,
                consent: None,
            },
        )
        .await
        .unwrap();
    let stranger = caller(&services, "Stranger").await;
    let for_stranger = services
        .share
        .share(
            &source,
            session.id,
            ShareRequest {
                for_application_id: stranger.application_id,
                ttl: crate::share::ShareTtl::DEFAULT,
                blocks: None,
                consent: None,
            },
        )
        .await
        .unwrap();
    Fixture {
        stranger_token: for_stranger.share_token.expose().to_owned(),
        workflow: workflow(&services, &receiver, Feature::Liveness).await,
        other_kind_workflow: workflow(&services, &receiver, Feature::KybRegistry).await,
        world,
        services,
        source,
        receiver,
        source_session: session.id,
        token: shared.share_token.expose().to_owned(),
    }
}

/// Breaks check `n` of the contract's table (3 to 10, and 11, the extension) in the
/// fixture.
async fn break_check(f: &mut Fixture, n: u8) -> ImportRequest {
    let mut request = f.request(f.workflow, false);
    match n {
        3 => request.share_token = "not-a-token".into(),
        4 => {
            f.world.tokens.plant("expired", Err(TokenError::Expired));
            request.share_token = ShareToken::new("expired");
        }
        5 => {
            // Both tokens of the session, the stranger's too (row 6 presents it).
            for token in [f.token.clone(), f.stranger_token.clone()] {
                let jti = f.world.tokens.verify(&token).unwrap().jti.unwrap();
                f.world
                    .store
                    .revoke_share_token(
                        f.source.application_id,
                        &jti,
                        &LogEntry::event(
                            "test",
                            LogAction::ShareRevoked,
                            None,
                            f.world.clock.now(),
                        ),
                    )
                    .await
                    .unwrap();
            }
        }
        6 => request.share_token = ShareToken::new(f.stranger_token.clone()),
        7 => {
            f.world.store.delete_session(f.source.application_id, f.source_session).await.unwrap();
        }
        8 => {
            // A clone made earlier by the receiver.
            let earlier = f
                .services
                .import
                .import(&f.receiver, f.request(f.workflow, true))
                .await
                .unwrap()
                .session
                .id;
            let existing = f.world.store.state().sessions.iter().find_map(|(r, _)| {
                (r.session.shared_from_session == Some(f.source_session)).then_some(r.session.id)
            });
            assert_eq!(existing, Some(earlier));
        }
        9 => request.workflow_id = Some(WorkflowId::from_uuid(uuid::Uuid::from_u128(12345))),
        10 => request.workflow_id = Some(f.other_kind_workflow),
        11 => {
            // The source is a minute old; the import accepts ten seconds.
            let now = f.world.clock.now();
            f.world.clock.set(now + chrono::Duration::seconds(60));
            request.max_source_age_seconds = MaxSourceAge::parse(10).ok();
        }
        _ => unreachable!(),
    }
    request
}

fn code(error: &Error) -> u8 {
    match error {
        Error::ImportRefused { check, .. } => check.row(),
        other => panic!("not an import check: {other:?}"),
    }
}

/// Row `n`: with checks `n..=11` all broken at once, check `n` is the answer.
async fn first_failure_wins(n: u8) {
    let mut f = fixture().await;
    let mut request = f.request(f.workflow, false);
    // From the last check back to n: an earlier check's breakage overrides a later one's.
    for later in (n..=11).rev() {
        let broken = break_check(&mut f, later).await;
        if broken.share_token.expose() != f.token {
            request.share_token = broken.share_token;
        }
        if broken.workflow_id != Some(f.workflow) {
            request.workflow_id = broken.workflow_id;
        }
        request.max_source_age_seconds =
            request.max_source_age_seconds.or(broken.max_source_age_seconds);
    }
    let error = f.import(request).await.unwrap_err();
    assert_eq!(code(&error), n, "{error:?}");
}

/// Each row of the contract's table, with every later check broken too.
#[tokio::test]
async fn the_first_failed_check_answers() {
    for check in ImportCheck::ALL {
        first_failure_wins(check.row()).await;
    }
}

#[tokio::test]
async fn each_check_alone_is_reported() {
    for n in 3..=11 {
        let mut f = fixture().await;
        let request = break_check(&mut f, n).await;
        let error = f.import(request).await.unwrap_err();
        assert_eq!(code(&error), n, "{error:?}");
    }
}

#[tokio::test]
async fn a_clean_import_reads_nothing_and_a_refused_one_reads_the_checks_once() {
    let f = fixture().await;
    let request = |workflow_id| ImportRequest {
        share_token: ShareToken::new(f.token.clone()),
        workflow_id: Some(workflow_id),
        trust_review: false,
        vendor_data: None,
        max_source_age_seconds: None,
    };
    let sessions_before = f.world.store.state().sessions.len();
    let error =
        f.services.import.import(&f.receiver, request(f.other_kind_workflow)).await.unwrap_err();
    assert_eq!(code(&error), 10);
    assert_eq!(f.world.store.state().import_context_reads, 1, "the failure is named from one read");
    assert_eq!(f.world.store.state().sessions.len(), sessions_before, "nothing written");

    f.services.import.import(&f.receiver, request(f.workflow)).await.unwrap();
    assert_eq!(
        f.world.store.state().import_context_reads,
        1,
        "no read besides the import's own for a clean import"
    );
    assert_eq!(f.world.store.state().sessions.len(), sessions_before + 1);
}

#[tokio::test]
async fn an_already_imported_answer_names_the_existing_clone() {
    let f = fixture().await;
    let request = || f.request(f.workflow, false);
    let first = f.services.import.import(&f.receiver, request()).await.unwrap();
    match f.services.import.import(&f.receiver, request()).await {
        Err(Error::ImportRefused { check: ImportCheck::NotImported, existing_clone }) => {
            assert_eq!(existing_clone, Some(first.session.id))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_clean_import_follows_the_plan() {
    let f = fixture().await;
    let request = f.request(f.workflow, true);
    let imported = f.import(request).await.unwrap();
    let id = imported.session.id;
    let clone = f.services.sessions.decision(&f.receiver, id).await.unwrap();
    assert_eq!(
        format!("{imported:?}"),
        format!("{clone:?}"),
        "the import answers with the clone as a later read shows it"
    );
    assert_eq!(clone.session.shared_from_session, Some(f.source_session));
    assert_eq!(clone.session.status, SessionStatus::Approved);
    assert_eq!(clone.session.session_number, 1);
    assert_eq!(clone.session.workflow_id, f.workflow);
    assert_eq!(clone.session.vendor_data.as_ref().map(VendorData::as_str), Some("ana"));
    assert_eq!(clone.session.expires_at - clone.session.created_at, Duration::seconds(604_800));
    assert!(clone.session.session_url.starts_with("https://verify.test/session/"));
    let entity = f
        .services
        .sessions
        .entity(&f.receiver, SessionKind::User, &VendorData::parse("ANA").unwrap())
        .await
        .unwrap();
    assert_eq!(entity.status, EntityStatus::Active);
    // The source is untouched and sees no clone.
    assert!(f.services.sessions.decision(&f.source, id).await.is_err());
    assert_eq!(f.world.store.list_workflows(f.receiver.application_id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn blocked_and_flagged_receivers_override_trust_review() {
    for (entity, expected) in [
        (EntityStatus::Blocked, SessionStatus::Declined),
        (EntityStatus::Flagged, SessionStatus::InReview),
    ] {
        let f = fixture().await;
        f.world.store.state().entities.push((
            f.receiver.application_id,
            crate::entity::Entity {
                id: crate::EntityId::from_uuid(uuid::Uuid::new_v4()),
                kind: SessionKind::User,
                vendor_data: VendorData::parse("ANA").unwrap(),
                status: entity,
                display_name: None,
                metadata: None,
                counts: Default::default(),
                created_at: f.world.clock.now(),
                status_reason: None,
                status_updated_at: None,
            },
        ));
        let request = f.request(f.workflow, true);
        let id = f.import(request).await.unwrap().session.id;
        assert_eq!(
            f.services.sessions.decision(&f.receiver, id).await.unwrap().session.status,
            expected
        );
    }
}

#[tokio::test]
async fn vendor_data_override_names_the_clone_and_its_entity() {
    let f = fixture().await;
    let request = ImportRequest {
        share_token: ShareToken::new(f.token.clone()),
        workflow_id: Some(f.workflow),
        trust_review: false,
        vendor_data: Some(VendorData::parse("receiver-7").unwrap()),
        max_source_age_seconds: None,
    };
    let id = f.import(request).await.unwrap().session.id;
    let clone = f.services.sessions.decision(&f.receiver, id).await.unwrap();
    assert_eq!(clone.session.status, SessionStatus::InReview);
    assert_eq!(clone.session.vendor_data.unwrap().as_str(), "receiver-7");
    assert!(
        f.services
            .sessions
            .entity(&f.receiver, SessionKind::User, &VendorData::parse("receiver-7").unwrap())
            .await
            .is_ok()
    );
    assert!(
        f.services
            .sessions
            .entity(&f.receiver, SessionKind::User, &VendorData::parse("ana").unwrap())
            .await
            .is_err()
    );
}

/// A store that refuses every import whatever the checks say, as one would while a
/// concurrent change keeps moving on.
struct RefusesEverything(std::sync::Arc<crate::fakes::InMemory>);

#[async_trait::async_trait]
impl ShareRepository for RefusesEverything {
    async fn find_source(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<crate::session::StoredSession>, RepoError> {
        self.0.find_source(application_id, id).await
    }
    async fn record_share_token(
        &self, token: &crate::share::IssuedShareToken,
    ) -> Result<(), RepoError> {
        self.0.record_share_token(token).await
    }
    async fn list_unlisted_token(&self, claims: &ShareClaims) -> Result<(), RepoError> {
        self.0.list_unlisted_token(claims).await
    }
    async fn import_context(
        &self, attempt: &ImportAttempt,
    ) -> Result<crate::share::ImportContext, RepoError> {
        self.0.import_context(attempt).await
    }
    async fn share_tokens_of(
        &self, application_id: ApplicationId, session_id: SessionId,
    ) -> Result<Vec<crate::share::LedgerEntry>, RepoError> {
        self.0.share_tokens_of(application_id, session_id).await
    }
    async fn revoke_share_token(
        &self, application_id: ApplicationId, jti: &str, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        self.0.revoke_share_token(application_id, jti, log).await
    }
    async fn import(&self, _: &ImportAttempt) -> Result<ImportOutcome, RepoError> {
        Ok(ImportOutcome::Refused)
    }
}

#[tokio::test]
async fn a_refusal_that_no_check_explains_is_tried_once_more_then_unavailable() {
    let f = fixture().await;
    let mut ports = f.world.ports.clone();
    ports.shares = std::sync::Arc::new(RefusesEverything(f.world.store.clone()));
    let services = Services::new(ports, "https://verify.test");
    let request = f.request(f.workflow, false);
    let error = services.import.import(&f.receiver, request).await.unwrap_err();
    assert!(matches!(error, Error::Repo(RepoError::Unavailable(_))), "{error:?}");
    assert_eq!(f.world.store.state().import_context_reads, 2, "tried twice");
}

#[tokio::test]
async fn a_preview_answers_as_the_import_would_and_writes_nothing() {
    // Every check alone: the preview's refusal is the import's.
    for check in ImportCheck::ALL {
        let mut f = fixture().await;
        let request = break_check(&mut f, check.row()).await;
        let previewed = f.services.import.preview(&f.receiver, request.clone()).await.unwrap_err();
        assert_eq!(code(&previewed), check.row(), "{previewed:?}");
    }
    // All pass: what the clone would be, and nothing written or redeemed.
    let f = fixture().await;
    let sessions = f.world.store.state().sessions.len();
    let preview =
        f.services.import.preview(&f.receiver, f.request(f.workflow, false)).await.unwrap();
    assert_eq!(preview.session_kind, SessionKind::User);
    assert_eq!(preview.source_session, f.source_session);
    assert_eq!(preview.source_status, SessionStatus::Approved);
    assert_eq!(preview.status, SessionStatus::InReview, "trust_review false");
    assert_eq!(preview.entity, Some(EntityEffect::Created));
    assert_eq!(f.world.store.state().sessions.len(), sessions);
    assert!(f.world.store.state().share_tokens.iter().all(|t| t.redeemed_at.is_none()));
    let trusted =
        f.services.import.preview(&f.receiver, f.request(f.workflow, true)).await.unwrap();
    assert_eq!(trusted.status, SessionStatus::Approved);
    f.import(f.request(f.workflow, true)).await.unwrap();
}
