//! Import Shared Session: redeem a share token by cloning the source session, with every related
//! row, into the caller's application.

use crate::action::LogAction;
use serde_json::json;

use super::{Error, Ports};
use crate::application::Caller;
use crate::block::FeatureBlock;
use crate::entity::EntityStatus;
use crate::error::RepoError;
use crate::idempotency::IdempotencyClaim;
use crate::ids::{SessionId, WorkflowId};
use crate::kind::SessionKind;
use crate::session::{LogEntry, SessionRecord};
use crate::share::{
    ImportAttempt, ImportCheck, ImportOutcome, ShareClaims, ShareToken, TokenError,
    first_failed_check,
};
use crate::status::SessionStatus;
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
    /// Refuse a source created longer ago than this (an extension); `None`: any age.
    pub max_source_age_seconds: Option<u32>,
}

/// What an import would create (Import Shared Session's preview, an extension).
#[derive(Clone, Debug, PartialEq)]
pub struct ImportPreview {
    /// The source's kind, the clone's too.
    pub session_kind: SessionKind,
    /// The source session, the clone's `shared_from_session`.
    pub source_session: SessionId,
    /// The source's status now.
    pub source_status: SessionStatus,
    /// The status the clone would get (trust_review and the receiver's entity).
    pub status: SessionStatus,
    /// The clone's `vendor_data`.
    pub vendor_data: Option<VendorData>,
    /// What the import would do to the receiver's User or Business, when there is a
    /// `vendor_data`.
    pub entity: Option<EntityEffect>,
    /// The feature blocks the clone would hold.
    pub blocks: Vec<FeatureBlock>,
}

/// What an import does to the receiver's entity for the clone's `vendor_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityEffect {
    /// None exists: one would be created, `ACTIVE`.
    Created,
    /// One exists, with this status, and the clone would join it.
    Joined(EntityStatus),
}

/// Redeems share tokens.
#[derive(Clone)]
pub struct ImportService {
    ports: Ports,
    session_base_url: String,
    accept_unlisted_tokens: bool,
}

impl ImportService {
    pub(super) fn new(ports: Ports, session_base_url: String) -> Self {
        Self {
            ports,
            session_base_url,
            accept_unlisted_tokens: false,
        }
    }

    /// Imports tokens this deployment did not issue (signed with a shared secret, no ledger
    /// row), once per receiver; off unless the operator opts in.
    pub fn accept_unlisted_tokens(&mut self, accept: bool) {
        self.accept_unlisted_tokens = accept;
    }

    /// Imports the shared session and returns the clone, with everything its decision payload
    /// shows, as the import wrote it (no read after the write).
    ///
    /// The token is verified first (checks 3 and 4); the store then makes the import in one
    /// transaction, where the remaining checks hold and the database settles a race between
    /// two imports of the same source. Only when the store refuses are the checks read and
    /// answered in the contract's order ([`first_failed_check`]); if they all pass by then (a
    /// concurrent change moved on), the import is tried once more.
    pub async fn import(
        &self,
        caller: &Caller,
        request: ImportRequest,
    ) -> Result<SessionRecord, Error> {
        self.import_guarded(caller, request, None).await
    }

    /// [`ImportService::import`], its clone stored with the request's idempotency key.
    pub async fn import_guarded(
        &self,
        caller: &Caller,
        request: ImportRequest,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<SessionRecord, Error> {
        let claims = self.verify(&request.share_token)?;
        let claims = self.named(claims, &request.share_token);
        let mut attempt = self.attempt(caller, claims, request)?;
        attempt.idempotency = idempotency;
        for _ in 0..2 {
            match self.ports.shares.import(&attempt).await? {
                ImportOutcome::Imported(clone) => return Ok(*clone),
                ImportOutcome::AlreadyImported(existing) => {
                    return Err(Error::ImportRefused {
                        check: ImportCheck::NotImported,
                        existing_clone: Some(existing),
                    });
                }
                ImportOutcome::Refused => {}
            }
            let context = self.ports.shares.import_context(&attempt).await?;
            if let Some(check) = first_failed_check(&context, &attempt) {
                return Err(Error::ImportRefused {
                    check,
                    existing_clone: context.existing_clone,
                });
            }
            // A token the ledger does not know, which this deployment accepts: listed now, so
            // that it is redeemed as any other (and stays redeemed once its clone is deleted).
            if context.token.is_none() {
                self.ports
                    .shares
                    .list_unlisted_token(&attempt.claims)
                    .await?;
            }
        }
        Err(RepoError::Unavailable(
            "the import was refused twice while every check passed; try again".into(),
        )
        .into())
    }

    /// What [`ImportService::import`] would do with `request`, without doing it: every check
    /// runs, in the contract's order, and the first that fails is the answer, as the import
    /// would give it; when all pass, what the clone would be. Nothing is written, nothing
    /// redeemed.
    pub async fn preview(
        &self,
        caller: &Caller,
        request: ImportRequest,
    ) -> Result<ImportPreview, Error> {
        let claims = self.verify(&request.share_token)?;
        let claims = self.named(claims, &request.share_token);
        let attempt = self.attempt(caller, claims, request)?;
        let context = self.ports.shares.import_context(&attempt).await?;
        if let Some(check) = first_failed_check(&context, &attempt) {
            return Err(Error::ImportRefused {
                check,
                existing_clone: context.existing_clone,
            });
        }
        let source = context
            .source
            .ok_or(Error::refused(ImportCheck::SourceExists))?;
        let vendor_data = attempt.clone_vendor_data(&source).cloned();
        let entity = match &vendor_data {
            Some(vendor_data) => self
                .ports
                .entities
                .find_entity(caller.application_id, source.kind, vendor_data)
                .await?
                .map(|entity| entity.status),
            None => None,
        };
        Ok(ImportPreview {
            session_kind: source.kind,
            source_session: source.id,
            source_status: source.status,
            status: attempt.status(source.status, entity),
            vendor_data: vendor_data.clone(),
            entity: vendor_data.map(|_| match entity {
                Some(status) => EntityEffect::Joined(status),
                None => EntityEffect::Created,
            }),
            blocks: context.recorded_blocks,
        })
    }

    /// `claims` with a `jti`: a token without one, when this deployment accepts unlisted
    /// tokens, is named by the SHA-256 of the token (`sha256:<hex>`), so that the ledger can
    /// record its redemption and an operator can block it.
    fn named(&self, mut claims: ShareClaims, token: &ShareToken) -> ShareClaims {
        if claims.jti.is_none() && self.accept_unlisted_tokens {
            claims.jti = Some(unlisted_jti(token));
        }
        claims
    }

    /// Checks 3 and 4: the token verifies and has not expired.
    fn verify(&self, token: &ShareToken) -> Result<ShareClaims, Error> {
        self.ports
            .tokens
            .verify(token.expose())
            .map_err(|e| match e {
                TokenError::Expired => Error::refused(ImportCheck::TokenNotExpired),
                TokenError::Invalid | TokenError::Signing(_) => {
                    Error::refused(ImportCheck::TokenValid)
                }
            })
    }

    /// The import the store is asked to make: the clone's fresh identity and its log row.
    fn attempt(
        &self,
        caller: &Caller,
        claims: ShareClaims,
        request: ImportRequest,
    ) -> Result<ImportAttempt, Error> {
        let now = self.ports.clock.now();
        let session_token = self.ports.ids.token(SESSION_TOKEN_BYTES)?;
        let details = json!({
            "source_application_id": claims.from_application_id.to_string(),
            "source_session_id": claims.session_id.to_string(),
            "trust_review": request.trust_review,
            "jti": claims.jti,
        });
        // What the source's owner learns: which application imported, with which token; never
        // the clone's id or anything else of the receiver's.
        let source_details = json!({
            "application_id": caller.application_id.to_string(),
            "jti": claims.jti,
        });
        Ok(ImportAttempt {
            listed: claims.jti.is_some(),
            claims,
            application_id: caller.application_id,
            accept_unlisted_tokens: self.accept_unlisted_tokens,
            workflow_id: request.workflow_id,
            clone_id: SessionId::from_uuid(self.ports.ids.uuid()),
            session_url: format!("{}/session/{session_token}", self.session_base_url),
            session_token,
            trust_review: request.trust_review,
            vendor_data: request.vendor_data,
            entity_id: self.ports.ids.uuid(),
            created_at: now,
            log: LogEntry::event(
                format!("api-key:{}", caller.key_prefix),
                LogAction::Imported,
                Some(details),
                now,
            ),
            source_log: LogEntry::event(
                format!("application:{}", caller.application_id),
                LogAction::ImportedBy,
                Some(source_details),
                now,
            ),
            source_created_after: request
                .max_source_age_seconds
                .map(|age| now - chrono::Duration::seconds(i64::from(age))),
            idempotency: None,
        })
    }
}

/// The `jti` under which a token without one is listed: `sha256:` and the hex SHA-256 of the
/// token's text.
pub fn unlisted_jti(token: &ShareToken) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.expose().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
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
                workflow_id,
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
                    .import(&f.receiver, f.request(f.workflow, true))
                    .await
                    .unwrap()
                    .session
                    .id;
                let existing = f.world.store.state().sessions.iter().find_map(|(r, _)| {
                    (r.session.shared_from_session == Some(f.source_session))
                        .then_some(r.session.id)
                });
                assert_eq!(existing, Some(earlier));
            }
            9 => request.workflow_id = WorkflowId::from_uuid(uuid::Uuid::from_u128(12345)),
            10 => request.workflow_id = f.other_kind_workflow,
            11 => {
                // The source is a minute old; the import accepts ten seconds.
                let now = f.world.clock.now();
                f.world.clock.set(now + chrono::Duration::seconds(60));
                request.max_source_age_seconds = Some(10);
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
            if broken.workflow_id != f.workflow {
                request.workflow_id = broken.workflow_id;
            }
            request.max_source_age_seconds = request
                .max_source_age_seconds
                .or(broken.max_source_age_seconds);
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
            workflow_id,
            trust_review: false,
            vendor_data: None,
            max_source_age_seconds: None,
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
            "the failure is named from one read"
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
            "no read besides the import's own for a clean import"
        );
        assert_eq!(f.world.store.state().sessions.len(), sessions_before + 1);
    }

    #[tokio::test]
    async fn an_already_imported_answer_names_the_existing_clone() {
        let f = fixture().await;
        let request = || f.request(f.workflow, false);
        let first = f
            .services
            .import
            .import(&f.receiver, request())
            .await
            .unwrap();
        match f.services.import.import(&f.receiver, request()).await {
            Err(Error::ImportRefused {
                check: ImportCheck::NotImported,
                existing_clone,
            }) => assert_eq!(existing_clone, Some(first.session.id)),
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
                    id: uuid::Uuid::new_v4(),
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
            max_source_age_seconds: None,
        };
        let id = f.import(request).await.unwrap().session.id;
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

    /// A store that refuses every import whatever the checks say, as one would while a
    /// concurrent change keeps moving on.
    struct RefusesEverything(std::sync::Arc<crate::fakes::InMemory>);

    #[async_trait::async_trait]
    impl ShareRepository for RefusesEverything {
        async fn find_source(
            &self,
            application_id: ApplicationId,
            id: SessionId,
        ) -> Result<Option<crate::session::StoredSession>, RepoError> {
            self.0.find_source(application_id, id).await
        }
        async fn record_share_token(
            &self,
            token: &crate::share::IssuedShareToken,
        ) -> Result<(), RepoError> {
            self.0.record_share_token(token).await
        }
        async fn list_unlisted_token(&self, claims: &ShareClaims) -> Result<(), RepoError> {
            self.0.list_unlisted_token(claims).await
        }
        async fn import_context(
            &self,
            attempt: &ImportAttempt,
        ) -> Result<crate::share::ImportContext, RepoError> {
            self.0.import_context(attempt).await
        }
        async fn share_tokens_of(
            &self,
            application_id: ApplicationId,
            session_id: SessionId,
        ) -> Result<Vec<crate::share::LedgerEntry>, RepoError> {
            self.0.share_tokens_of(application_id, session_id).await
        }
        async fn revoke_share_token(
            &self,
            application_id: ApplicationId,
            jti: &str,
            log: &LogEntry,
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
        let error = services
            .import
            .import(&f.receiver, request)
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::Repo(RepoError::Unavailable(_))),
            "{error:?}"
        );
        assert_eq!(f.world.store.state().import_context_reads, 2, "tried twice");
    }

    #[tokio::test]
    async fn a_preview_answers_as_the_import_would_and_writes_nothing() {
        // Every check alone: the preview's refusal is the import's.
        for check in ImportCheck::ALL {
            let mut f = fixture().await;
            let request = break_check(&mut f, check.row()).await;
            let previewed = f
                .services
                .import
                .preview(&f.receiver, request.clone())
                .await
                .unwrap_err();
            assert_eq!(code(&previewed), check.row(), "{previewed:?}");
        }
        // All pass: what the clone would be, and nothing written or redeemed.
        let f = fixture().await;
        let sessions = f.world.store.state().sessions.len();
        let preview = f
            .services
            .import
            .preview(&f.receiver, f.request(f.workflow, false))
            .await
            .unwrap();
        assert_eq!(preview.session_kind, SessionKind::User);
        assert_eq!(preview.source_session, f.source_session);
        assert_eq!(preview.source_status, SessionStatus::Approved);
        assert_eq!(
            preview.status,
            SessionStatus::InReview,
            "trust_review false"
        );
        assert_eq!(preview.entity, Some(EntityEffect::Created));
        assert_eq!(f.world.store.state().sessions.len(), sessions);
        assert!(
            f.world
                .store
                .state()
                .share_tokens
                .iter()
                .all(|t| t.redeemed_at.is_none())
        );
        let trusted = f
            .services
            .import
            .preview(&f.receiver, f.request(f.workflow, true))
            .await
            .unwrap();
        assert_eq!(trusted.status, SessionStatus::Approved);
        f.import(f.request(f.workflow, true)).await.unwrap();
    }
}
