//! The language and rules of handoff, free of I/O.
//!
//! This crate names what the contract talks about — sessions of a [`SessionKind`], their
//! [`SessionStatus`], the feature blocks a verification engine records, workflows, the User and
//! Business entities — and holds the rules that apply to them. Storage and delivery live in other
//! crates behind the repository ports of [`ports`]; the services of [`services`] coordinate them.
//! Services and embedders hold the ports as `Arc<dyn ...>`, so no generic parameter leaks out.

pub mod api_key;
pub mod application;
pub mod block;
pub mod entity;
pub mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fakes;
pub mod ids;
pub mod json;
pub mod kind;
pub mod ports;
pub mod services;
pub mod session;
pub mod share;
pub mod status;
pub mod vendor_data;
pub mod workflow;

pub use api_key::{ApiKey, ApiKeyHash, NewApiKey};
pub use application::{Application, Caller};
pub use block::{FeatureBlock, FeatureItem, ItemError};
pub use entity::{Entity, EntityStatus};
pub use error::{RepoError, ValidationErrors};
pub use ids::{ApplicationId, SessionId, WorkflowId};
pub use kind::SessionKind;
pub use session::{
    LogEntry, LogKind, NewSession, RecordResults, Review, ReviewOutcome, SessionFilter,
    SessionPage, SessionRecord, SessionSummary, StoredSession,
};
pub use share::{
    CloneStatus, ImportAttempt, ImportCheck, ImportContext, ImportOutcome, ImportWorkflow,
    IssuedShareToken, ShareClaims, ShareToken, TokenError, first_failed_check,
};
pub use status::{ReviewStatus, SessionStatus};
pub use vendor_data::VendorData;
pub use workflow::{Feature, NewWorkflow, Workflow, WorkflowFeature};
