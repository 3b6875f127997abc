//! The services: each use case of the contract, coordinating the ports.

mod applications;
mod sessions;
mod workflows;

use std::sync::Arc;

pub use applications::ApplicationService;
pub use sessions::{CreateSession, SessionService};
pub use workflows::WorkflowService;

use crate::error::{RepoError, ValidationErrors};
use crate::ports::{
    ApplicationRepository, Clock, EntityRepository, IdGenerator, SessionRepository,
    WorkflowRepository,
};
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
    /// The request is not valid; field by field.
    #[error("invalid request")]
    Invalid(ValidationErrors),
    /// The storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
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
}

impl Services {
    /// Builds every service. `session_base_url` is where session URLs point
    /// (`<base>/session/<token>`).
    pub fn new(ports: Ports, session_base_url: impl Into<String>) -> Self {
        Self {
            applications: ApplicationService::new(ports.clone()),
            workflows: WorkflowService::new(ports.clone()),
            sessions: SessionService::new(ports, session_base_url.into()),
        }
    }
}
