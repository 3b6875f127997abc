//! Import Shared Session: redeem a share token by cloning the source session, with every related
//! row, into the caller's application.

use serde_json::json;

use super::{Error, Ports};
use crate::application::Caller;
use crate::ids::{SessionId, WorkflowId};
use crate::session::{LogEntry, LogKind, SessionRecord};
use crate::share::{ImportAttempt, ImportOutcome, ShareToken, TokenError};
use crate::vendor_data::VendorData;

/// Random bytes in a clone's session token.
const SESSION_TOKEN_BYTES: usize = 16;

/// An import as the caller asks for it; the body's shape was checked at the edge (check 2).
#[derive(Clone, Debug)]
pub struct ImportRequest {
    /// The presented token.
    pub share_token: ShareToken,
    /// The caller's workflow for the clone.
    pub workflow_id: WorkflowId,
    /// Keep the source status (`true`) or put the clone in review (`false`).
    pub trust_review: bool,
    /// The clone's `vendor_data`; `None` keeps the source's.
    pub vendor_data: Option<VendorData>,
}

/// Redeems share tokens.
#[derive(Clone)]
pub struct ImportService {
    ports: Ports,
    session_base_url: String,
}

impl ImportService {
    pub(super) fn new(ports: Ports, session_base_url: String) -> Self {
        Self {
            ports,
            session_base_url,
        }
    }

    /// Imports the shared session and returns the clone, with everything its decision payload
    /// shows, as the import wrote it (no read after the write).
    ///
    /// The checks run in the contract's order, the first failure wins: token valid (3), not
    /// expired (4), not revoked (5), addressed to the caller (6), source still there with the
    /// token's kind (7), not imported by the caller before (8), workflow the caller's (9) and of
    /// the token's kind (10). The clone is then written in one transaction, where the database
    /// settles a race between two imports of the same source.
    ///
    /// A token addressed to the caller is first tried in one step
    /// ([`ShareRepository::try_import`](crate::ports::ShareRepository::try_import)): the store
    /// checks 5 and 7 to 10 and writes together, or writes nothing; only then are the checks
    /// read and answered one by one, so every failure still answers as the contract orders.
    pub async fn import(
        &self,
        caller: &Caller,
        request: ImportRequest,
    ) -> Result<SessionRecord, Error> {
        let claims = self
            .ports
            .tokens
            .verify(request.share_token.expose())
            .map_err(|e| match e {
                TokenError::Expired => Error::ShareTokenExpired,
                TokenError::Invalid | TokenError::Signing(_) => Error::ShareTokenInvalid,
            })?;
        let now = self.ports.clock.now();
        let session_token = self.ports.ids.token(SESSION_TOKEN_BYTES)?;
        let attempt = ImportAttempt {
            source_application_id: claims.from_application_id,
            source_session_id: claims.session_id,
            kind: claims.session_kind,
            jti: claims.jti.clone(),
            application_id: caller.application_id,
            workflow_id: request.workflow_id,
            clone_id: SessionId::from_uuid(self.ports.ids.uuid()),
            session_url: format!("{}/session/{session_token}", self.session_base_url),
            session_token,
            trust_review: request.trust_review,
            vendor_data: request.vendor_data,
            created_at: now,
            log: LogEntry {
                kind: LogKind::Event,
                actor: format!("api-key:{}", caller.key_prefix),
                action: "imported".to_owned(),
                old_status: None,
                new_status: None,
                comment: None,
                details: Some(json!({
                    "source_application_id": claims.from_application_id.to_string(),
                    "source_session_id": claims.session_id.to_string(),
                    "trust_review": request.trust_review,
                })),
                created_at: now,
            },
        };
        // Check 6 needs no read; a token for another application goes the long way, where a
        // revoked token (check 5) answers first.
        if claims.for_application_id == caller.application_id {
            match self.ports.shares.try_import(&attempt).await? {
                Some(ImportOutcome::Imported(clone)) => return Ok(*clone),
                Some(ImportOutcome::AlreadyImported(existing)) => {
                    return Err(Error::AlreadyImported(existing));
                }
                Some(ImportOutcome::SourceGone) | None => {}
            }
        }

        // One read for checks 5, 7, 8, 9 and 10; they still answer in the contract's order.
        let context = self
            .ports
            .shares
            .import_context(
                claims.jti.as_deref(),
                caller.application_id,
                claims.from_application_id,
                claims.session_id,
                request.workflow_id,
            )
            .await?;
        if context.revoked {
            return Err(Error::ShareTokenRevoked);
        }
        if claims.for_application_id != caller.application_id {
            return Err(Error::ShareTokenWrongApplication);
        }
        let source = context
            .source
            .filter(|source| source.kind == claims.session_kind)
            .ok_or(Error::SourceSessionNotFound)?;
        if let Some(existing) = context.existing_clone {
            return Err(Error::AlreadyImported(existing));
        }
        let workflow = context.workflow.ok_or(Error::WorkflowNotFound)?;
        if workflow.kind != claims.session_kind {
            return Err(Error::WorkflowKindMismatch);
        }

        let plan = attempt.into_plan(
            &source,
            context.recorded_blocks,
            workflow.session_expiration_time,
        );
        match self.ports.shares.import_clone(&plan).await? {
            ImportOutcome::Imported(clone) => Ok(*clone),
            ImportOutcome::AlreadyImported(existing) => Err(Error::AlreadyImported(existing)),
            ImportOutcome::SourceGone => Err(Error::SourceSessionNotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::application::Caller;
    use crate::entity::EntityStatus;
    use crate::fakes::World;
    use crate::ids::ApplicationId;
    use crate::kind::SessionKind;
    use crate::ports::{
        Clock, SessionRepository, ShareRepository, ShareTokens, WorkflowRepository,
    };
    use crate::services::{Error, Services, ShareRequest};
    use crate::session::RecordResults;
    use crate::share::ShareClaims;
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
    }

    async fn caller(services: &Services, name: &str) -> Caller {
        let (app, key) = services
            .applications
            .create_application(name)
            .await
            .unwrap();
        Caller {
            application_id: app.id,
            key_prefix: key.prefix().to_owned(),
        }
    }

    async fn workflow(services: &Services, caller: &Caller, feature: Feature) -> WorkflowId {
        let step = WorkflowFeature {
            feature,
            config: serde_json::json!({}),
            label: None,
        };
        services
            .workflows
            .create(
                caller,
                NewWorkflow::parse(None, vec![step], false, None).unwrap(),
            )
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
                    workflow_id: source_workflow,
                    vendor_data: Some(VendorData::parse("ana").unwrap()),
                    callback: None,
                    metadata: None,
                    contact_details: None,
                    expected_details: None,
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
                    ttl_in_seconds: None,
                },
            )
            .await
            .unwrap();
        Fixture {
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

    fn claims(f: &Fixture) -> ShareClaims {
        f.world.tokens.verify(&f.token).unwrap()
    }

    /// Breaks check `n` of the contract's table (3 to 10) in the fixture.
    async fn break_check(f: &mut Fixture, n: u8) -> ImportRequest {
        let mut request = ImportRequest {
            share_token: ShareToken::new(f.token.clone()),
            workflow_id: f.workflow,
            trust_review: false,
            vendor_data: None,
        };
        match n {
            3 => request.share_token = "not-a-token".into(),
            4 => {
                f.world.tokens.plant("expired", Err(TokenError::Expired));
                request.share_token = ShareToken::new("expired");
            }
            5 => {
                let jti = claims(f).jti.unwrap();
                f.world
                    .store
                    .revoke_share_token(f.source.application_id, &jti, f.world.clock.now())
                    .await
                    .unwrap();
            }
            6 => {
                let stranger = ShareClaims {
                    for_application_id: ApplicationId::from_uuid(uuid::Uuid::from_u128(999)),
                    ..claims(f)
                };
                f.world.tokens.plant("for-someone-else", Ok(stranger));
                request.share_token = ShareToken::new("for-someone-else");
            }
            7 => {
                f.world
                    .store
                    .delete_session(f.source.application_id, f.source_session)
                    .await
                    .unwrap();
            }
            8 => {
                // A clone made earlier by the receiver.
                let earlier = f
                    .services
                    .import
                    .import(
                        &f.receiver,
                        ImportRequest {
                            share_token: ShareToken::new(f.token.clone()),
                            workflow_id: f.workflow,
                            trust_review: true,
                            vendor_data: None,
                        },
                    )
                    .await
                    .unwrap()
                    .session
                    .id;
                let context = f
                    .world
                    .store
                    .import_context(
                        None,
                        f.receiver.application_id,
                        f.source.application_id,
                        f.source_session,
                        f.workflow,
                    )
                    .await
                    .unwrap();
                assert_eq!(context.existing_clone, Some(earlier));
            }
            9 => request.workflow_id = WorkflowId::from_uuid(uuid::Uuid::from_u128(12345)),
            10 => request.workflow_id = f.other_kind_workflow,
            _ => unreachable!(),
        }
        request
    }

    fn code(error: &Error) -> u8 {
        match error {
            Error::ShareTokenInvalid => 3,
            Error::ShareTokenExpired => 4,
            Error::ShareTokenRevoked => 5,
            Error::ShareTokenWrongApplication => 6,
            Error::SourceSessionNotFound => 7,
            Error::AlreadyImported(_) => 8,
            Error::WorkflowNotFound => 9,
            Error::WorkflowKindMismatch => 10,
            other => panic!("not an import check: {other:?}"),
        }
    }

    /// Row `n`: with checks `n..=10` all broken at once, check `n` is the answer.
    async fn first_failure_wins(n: u8) {
        let mut f = fixture().await;
        let mut request = ImportRequest {
            share_token: ShareToken::new(f.token.clone()),
            workflow_id: f.workflow,
            trust_review: false,
            vendor_data: None,
        };
        // From the last check back to n: an earlier check's breakage overrides a later one's.
        for later in (n..=10).rev() {
            let broken = break_check(&mut f, later).await;
            if broken.share_token.expose() != f.token {
                request.share_token = broken.share_token;
            }
            if broken.workflow_id != f.workflow {
                request.workflow_id = broken.workflow_id;
            }
        }
        let error = f
            .services
            .import
            .import(&f.receiver, request)
            .await
            .unwrap_err();
        assert_eq!(code(&error), n, "{error:?}");
    }

    #[tokio::test]
    async fn check_3_token_invalid() {
        first_failure_wins(3).await
    }
    #[tokio::test]
    async fn check_4_token_expired() {
        first_failure_wins(4).await
    }
    #[tokio::test]
    async fn check_5_token_revoked() {
        first_failure_wins(5).await
    }
    #[tokio::test]
    async fn check_6_wrong_application() {
        first_failure_wins(6).await
    }
    #[tokio::test]
    async fn check_7_source_session_gone() {
        first_failure_wins(7).await
    }
    #[tokio::test]
    async fn check_8_already_imported() {
        first_failure_wins(8).await
    }
    #[tokio::test]
    async fn check_9_workflow_not_found() {
        first_failure_wins(9).await
    }
    #[tokio::test]
    async fn check_10_workflow_kind_mismatch() {
        first_failure_wins(10).await
    }

    #[tokio::test]
    async fn each_check_alone_is_reported() {
        for n in 3..=10 {
            let mut f = fixture().await;
            let request = break_check(&mut f, n).await;
            let error = f
                .services
                .import
                .import(&f.receiver, request)
                .await
                .unwrap_err();
            assert_eq!(code(&error), n, "{error:?}");
        }
    }

    #[tokio::test]
    async fn a_clean_import_is_one_step_and_a_failed_one_reads_the_checks() {
        let f = fixture().await;
        let request = |workflow_id| ImportRequest {
            share_token: ShareToken::new(f.token.clone()),
            workflow_id,
            trust_review: false,
            vendor_data: None,
        };
        let sessions_before = f.world.store.state().sessions.len();
        let error = f
            .services
            .import
            .import(&f.receiver, request(f.other_kind_workflow))
            .await
            .unwrap_err();
        assert_eq!(code(&error), 10);
        assert_eq!(
            f.world.store.state().import_context_reads,
            1,
            "the failure is named from a read"
        );
        assert_eq!(
            f.world.store.state().sessions.len(),
            sessions_before,
            "nothing written"
        );

        f.services
            .import
            .import(&f.receiver, request(f.workflow))
            .await
            .unwrap();
        assert_eq!(
            f.world.store.state().import_context_reads,
            1,
            "no read before a clean import"
        );
        assert_eq!(f.world.store.state().sessions.len(), sessions_before + 1);
    }

    #[tokio::test]
    async fn a_token_for_another_application_never_tries_the_one_step() {
        let f = fixture().await;
        let stranger = caller(&f.services, "Stranger").await;
        let stranger_workflow = workflow(&f.services, &stranger, Feature::Liveness).await;
        let request = ImportRequest {
            share_token: ShareToken::new(f.token.clone()),
            workflow_id: stranger_workflow,
            trust_review: false,
            vendor_data: None,
        };
        let error = f
            .services
            .import
            .import(&stranger, request)
            .await
            .unwrap_err();
        assert_eq!(code(&error), 6);
        assert_eq!(f.world.store.state().import_context_reads, 1);
    }

    #[test]
    fn the_status_by_entity_is_the_rule_for_every_pair() {
        let attempt = |trust_review| ImportAttempt {
            source_application_id: ApplicationId::from_uuid(uuid::Uuid::nil()),
            source_session_id: SessionId::from_uuid(uuid::Uuid::nil()),
            kind: SessionKind::User,
            jti: None,
            application_id: ApplicationId::from_uuid(uuid::Uuid::nil()),
            workflow_id: WorkflowId::from_uuid(uuid::Uuid::nil()),
            clone_id: SessionId::from_uuid(uuid::Uuid::nil()),
            session_token: String::new(),
            session_url: String::new(),
            trust_review,
            vendor_data: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            log: LogEntry {
                kind: LogKind::Event,
                actor: String::new(),
                action: String::new(),
                old_status: None,
                new_status: None,
                comment: None,
                details: None,
                created_at: chrono::DateTime::UNIX_EPOCH,
            },
        };
        for trust_review in [false, true] {
            let by_entity = attempt(trust_review)
                .status_by_entity()
                .expect("today's rule depends on the source's status only by keeping it");
            assert_eq!(by_entity.len(), 4, "no entity, and each entity status");
            for (entity, fixed) in by_entity {
                for source in SessionStatus::ALL {
                    assert_eq!(
                        fixed.unwrap_or(source),
                        crate::share::clone_status(source, trust_review, entity),
                        "{source} {entity:?} trust_review={trust_review}"
                    );
                }
            }
        }
        // Blocked entities decline, whatever the source's status: a fixed answer, not the source's.
        let by_entity = attempt(true).status_by_entity().unwrap();
        assert!(by_entity.contains(&(Some(EntityStatus::Blocked), Some(SessionStatus::Declined))));
        assert!(by_entity.contains(&(None, None)));
    }

    #[tokio::test]
    async fn a_clean_import_follows_the_plan() {
        let f = fixture().await;
        let request = ImportRequest {
            share_token: ShareToken::new(f.token.clone()),
            workflow_id: f.workflow,
            trust_review: true,
            vendor_data: None,
        };
        let imported = f
            .services
            .import
            .import(&f.receiver, request)
            .await
            .unwrap();
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
        assert_eq!(
            clone.session.vendor_data.as_ref().map(VendorData::as_str),
            Some("ana")
        );
        assert_eq!(
            clone.session.expires_at - clone.session.created_at,
            Duration::seconds(604_800)
        );
        assert!(
            clone
                .session
                .session_url
                .starts_with("https://verify.test/session/")
        );
        let entity = f
            .services
            .sessions
            .entity(
                &f.receiver,
                SessionKind::User,
                &VendorData::parse("ANA").unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(entity.status, EntityStatus::Active);
        // The source is untouched and sees no clone.
        assert!(f.services.sessions.decision(&f.source, id).await.is_err());
        assert_eq!(
            f.world
                .store
                .list_workflows(f.receiver.application_id)
                .await
                .unwrap()
                .len(),
            2
        );
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
                    kind: SessionKind::User,
                    vendor_data: VendorData::parse("ANA").unwrap(),
                    status: entity,
                    session_count: 0,
                    created_at: f.world.clock.now(),
                },
            ));
            let request = ImportRequest {
                share_token: ShareToken::new(f.token.clone()),
                workflow_id: f.workflow,
                trust_review: true,
                vendor_data: None,
            };
            let id = f
                .services
                .import
                .import(&f.receiver, request)
                .await
                .unwrap()
                .session
                .id;
            assert_eq!(
                f.services
                    .sessions
                    .decision(&f.receiver, id)
                    .await
                    .unwrap()
                    .session
                    .status,
                expected
            );
        }
    }

    #[tokio::test]
    async fn vendor_data_override_names_the_clone_and_its_entity() {
        let f = fixture().await;
        let request = ImportRequest {
            share_token: ShareToken::new(f.token.clone()),
            workflow_id: f.workflow,
            trust_review: false,
            vendor_data: Some(VendorData::parse("receiver-7").unwrap()),
        };
        let id = f
            .services
            .import
            .import(&f.receiver, request)
            .await
            .unwrap()
            .session
            .id;
        let clone = f.services.sessions.decision(&f.receiver, id).await.unwrap();
        assert_eq!(clone.session.status, SessionStatus::InReview);
        assert_eq!(clone.session.vendor_data.unwrap().as_str(), "receiver-7");
        assert!(
            f.services
                .sessions
                .entity(
                    &f.receiver,
                    SessionKind::User,
                    &VendorData::parse("receiver-7").unwrap()
                )
                .await
                .is_ok()
        );
        assert!(
            f.services
                .sessions
                .entity(
                    &f.receiver,
                    SessionKind::User,
                    &VendorData::parse("ana").unwrap()
                )
                .await
                .is_err()
        );
    }
}
