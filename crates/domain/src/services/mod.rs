//! The services: each use case of the contract, coordinating the ports.

mod amendments;
mod applications;
mod blocklists;
mod federation;
mod idempotency;
mod import;
mod lists;
mod retention;
mod reviewers;
mod sessions;
mod share;
mod subjects;
mod webhooks;
mod workflows;

use std::sync::Arc;

pub use applications::{ApplicationService, CONSOLE_SCOPE, NewKey};
pub use federation::FederationService;
pub use idempotency::IdempotencyService;
pub use import::{
    EntityEffect, Federated, ImportPreview, ImportRequest, ImportService, unlisted_jti,
};
pub use lists::{AddEntry, BlocklistFlags, ListService, NewList};
pub use retention::{RETENTION_BATCH, RetentionService};
pub use reviewers::{NewReviewer, ReviewerService};
pub use sessions::{CreateSession, ItemLimits, SessionService};
pub use share::{ShareRequest, ShareService, SharedSession};
pub use subjects::{Erased, SubjectData, SubjectService, SubjectSession};
pub use webhooks::{
    DestinationChange, MAX_DELIVERY_PAGE, MAX_DESTINATIONS, NewDestination, WebhookService,
    secret_context,
};
pub use workflows::WorkflowService;

use crate::error::{RepoError, ValidationErrors};
use crate::ids::SessionId;
use crate::ports::{
    ApplicationRepository, Clock, EntityRepository, IdGenerator, IdempotencyRepository,
    ListRepository, SecretSealer, SessionRepository, ShareRepository, ShareTokens,
    WebhookRepository, WorkflowRepository,
};
use crate::share::ImportCheck;
use crate::status::SessionStatus;

/// Everything the services need from outside, as shared trait objects.
#[derive(Clone)]
pub struct Ports {
    /// Applications and API keys.
    pub applications: Arc<dyn ApplicationRepository>,
    /// Workflows.
    pub workflows: Arc<dyn WorkflowRepository>,
    /// Sessions.
    pub sessions: Arc<dyn SessionRepository>,
    /// Entities.
    pub entities: Arc<dyn EntityRepository>,
    /// Share tokens and clones.
    pub shares: Arc<dyn ShareRepository>,
    /// Idempotency keys of guarded writes.
    pub idempotency: Arc<dyn IdempotencyRepository>,
    /// Webhook destinations and deliveries.
    pub webhooks: Arc<dyn WebhookRepository>,
    /// Lists and their entries.
    pub lists: Arc<dyn ListRepository>,
    /// Seals secrets for storage.
    pub sealer: Arc<dyn SecretSealer>,
    /// Signing and verifying share tokens.
    pub tokens: Arc<dyn ShareTokens>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Ids and random tokens.
    pub ids: Arc<dyn IdGenerator>,
}

/// Why a use case did not happen. Each variant is one answer of the contract.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller holds no session with this id.
    #[error("session not found")]
    SessionNotFound,
    /// The caller holds no list with this id.
    #[error("list not found")]
    ListNotFound,
    /// The list holds no entry with this id.
    #[error("list entry not found")]
    EntryNotFound,
    /// A system blocklist cannot be renamed, changed or deleted.
    #[error("system lists cannot be changed")]
    SystemList,
    /// The caller holds no (undeleted) workflow with this id.
    #[error("workflow not found")]
    WorkflowNotFound,
    /// The caller holds no User or Business with this `vendor_data`.
    #[error("entity not found")]
    EntityNotFound,
    /// No application has this id.
    #[error("application not found")]
    ApplicationNotFound,
    /// The application holds no unrevoked key with this prefix.
    #[error("api key not found")]
    ApiKeyNotFound,
    /// A review of a session whose status may not be reviewed.
    #[error("a session in status {0} cannot be reviewed")]
    WrongCurrentStatus(SessionStatus),
    /// Sharing: the session's status is not `Approved`, `Declined` or `In Review`.
    #[error("a session in status {0} cannot be shared")]
    SessionNotShareable(SessionStatus),
    /// Sharing: no application has the target id.
    #[error("unknown application")]
    UnknownApplication,
    /// Sharing: the target is the caller.
    #[error("cannot share with self")]
    CannotShareWithSelf,
    /// Sharing: the application requires the person's consent for every share, and none was
    /// given.
    #[error("consent required")]
    ConsentRequired,
    /// Sharing: no key may sign share tokens now (every key retired, or none active yet).
    #[error("no share-token signing key is available")]
    SigningUnavailable,
    /// Webhooks: the caller holds no destination with this id.
    #[error("webhook destination not found")]
    DestinationNotFound,
    /// Webhooks: the destination holds no delivery with this id.
    #[error("webhook delivery not found")]
    DeliveryNotFound,
    /// Revoking: the caller issued no token with this id.
    #[error("share token not found")]
    ShareTokenNotFound,
    /// Importing: a check of the contract's table failed (the first that did); for
    /// [`ImportCheck::NotImported`], the receiver's existing clone.
    #[error("import refused: check {} ({:?}) failed", .check.row(), .check)]
    ImportRefused {
        /// The check.
        check: ImportCheck,
        /// The receiver's clone of the source, when it holds one.
        existing_clone: Option<SessionId>,
    },
    /// The API key is limited to client addresses the request's is not one of.
    #[error("the api key is not accepted from this address")]
    AddressNotAllowed,
    /// The API key lacks the scope the request needs.
    #[error("the api key lacks the scope {0}")]
    ScopeMissing(crate::grant::Scope),
    /// The API key sees only some workflows' sessions, and the request reaches beyond them (a
    /// delete of many).
    #[error("the api key is limited to some workflows")]
    LimitedToWorkflows,
    /// Importing a partner's token: the issuing partner could not be reached, or refused this
    /// deployment; nothing was written.
    #[error("partner unavailable: {0}")]
    PartnerUnavailable(String),
    /// No reviewer of the application has this email.
    #[error("reviewer not found")]
    ReviewerNotFound,
    /// The console: the application does not take API keys to sign in.
    #[error("the console takes no API keys for this application")]
    ConsoleKeySignInOff,
    /// The request is not valid; field by field.
    #[error("invalid request")]
    Invalid(ValidationErrors),
    /// The storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl Error {
    /// An import refused by `check`, which names no existing clone.
    pub fn refused(check: ImportCheck) -> Self {
        Error::ImportRefused { check, existing_clone: None }
    }
}

/// All services, built over one set of ports.
#[derive(Clone)]
pub struct Services {
    /// Applications and keys.
    pub applications: ApplicationService,
    /// Workflows.
    pub workflows: WorkflowService,
    /// Sessions, decisions, reviews and entities.
    pub sessions: SessionService,
    /// Share Session.
    pub share: ShareService,
    /// Import Shared Session.
    pub import: ImportService,
    /// Idempotency keys of guarded writes.
    pub idempotency: IdempotencyService,
    /// Webhook destinations and deliveries.
    pub webhooks: WebhookService,
    /// Lists and blocklists.
    pub lists: ListService,
    /// The retention sweep.
    pub retention: RetentionService,
    /// Data subjects' requests: export and erasure.
    pub subjects: SubjectService,
    /// Reviewers: people who sign in to the console.
    pub reviewers: ReviewerService,
}

impl Services {
    /// Accepts `http` destinations and private addresses (`HANDOFF_WEBHOOK_ALLOW_PRIVATE`).
    pub fn allowing_private_webhooks(mut self, allow: bool) -> Self {
        self.webhooks.allow_private(allow);
        self
    }

    /// Caps the feature items a session holds (`HANDOFF_MAX_ITEMS_PER_BLOCK`,
    /// `HANDOFF_MAX_ITEMS_PER_SESSION`).
    pub fn limiting_items(mut self, limits: ItemLimits) -> Self {
        self.sessions.limit_items(limits);
        self
    }

    /// Shares with partner deployments' applications and imports their tokens.
    pub fn federating(mut self, federated: Federated) -> Self {
        self.share.federate(federated.partners.clone());
        self.import.federate(federated);
        self
    }

    /// Imports tokens this deployment did not issue (`HANDOFF_ACCEPT_UNLISTED_TOKENS`).
    pub fn accepting_unlisted_tokens(mut self, accept: bool) -> Self {
        self.import.accept_unlisted_tokens(accept);
        self
    }

    /// Builds every service. `session_base_url` is where session URLs point
    /// (`<base>/session/<token>`).
    pub fn new(ports: Ports, session_base_url: impl Into<String>) -> Self {
        let session_base_url = session_base_url.into().trim_end_matches('/').to_owned();
        let share = ShareService::new(ports.clone());
        let sessions = SessionService::new(ports.clone(), session_base_url.clone());
        let applications = ApplicationService::new(ports.clone());
        Self {
            reviewers: ReviewerService::new(ports.clone(), applications.clone()),
            applications,
            workflows: WorkflowService::new(ports.clone()),
            subjects: SubjectService::new(sessions.clone(), share.clone()),
            share,
            idempotency: IdempotencyService::new(ports.clone()),
            webhooks: WebhookService::new(ports.clone()),
            lists: ListService::new(ports.clone()),
            retention: RetentionService::new(ports.clone()),
            import: ImportService::new(ports, session_base_url),
            sessions,
        }
    }
}
