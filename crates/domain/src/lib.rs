//! The language and rules of handoff, free of I/O.
//!
//! This crate names what the contract talks about — sessions of a [`SessionKind`], their
//! [`SessionStatus`], the feature blocks a verification engine records, workflows, the User and
//! Business entities — and holds the rules that apply to them. Storage and delivery live in other
//! crates behind the repository ports of [`ports`]; the services of [`services`] coordinate them.
//! Services and embedders hold the ports as `Arc<dyn ...>`, so no generic parameter leaks out.
//!
//! # Embedding
//!
//! A Rust service can run the use cases itself, on ports of its own. Here every port is the
//! in-memory one of `fakes` (feature `test-support`): one application shares a finished KYC
//! session, another imports it and trusts the decision. How an import runs:
//! `docs/sharing.md`; ports of your own: `examples/own_ports.rs`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use handoff_domain::fakes::World;
//! use handoff_domain::services::{CreateSession, ImportRequest, ShareRequest, Services};
//! use handoff_domain::session::RecordResults;
//! use handoff_domain::share::ShareTtl;
//! use handoff_domain::workflow::{Feature, NewWorkflow, WorkflowFeature};
//! use handoff_domain::{Caller, SessionStatus, VendorData};
//!
//! let world = World::new();
//! let services = Services::new(world.ports.clone(), "https://verify.example.test");
//! let caller = |(application, key): (handoff_domain::Application, handoff_domain::ApiKey)| {
//!     Caller::primary(application.id, key.prefix())
//! };
//! let holder = caller(services.applications.create_application("Holder").await?);
//! let receiver = caller(services.applications.create_application("Receiver").await?);
//! let kyc = || {
//!     let ocr = WorkflowFeature { feature: Feature::Ocr, config: serde_json::json!({}), label: None };
//!     NewWorkflow::parse(None, vec![ocr], false, None)
//! };
//! let holder_workflow = services.workflows.create(&holder, kyc()?).await?;
//! let receiver_workflow = services.workflows.create(&receiver, kyc()?).await?;
//!
//! // The holder verifies a person, and the session ends Approved.
//! let session = services.sessions.create(&holder, CreateSession {
//!     workflow_id: holder_workflow.id,
//!     vendor_data: Some(VendorData::parse("user-ana-001")?),
//!     callback: None, options: Default::default(), metadata: None, contact_details: None,
//!     expected_details: None,
//! }).await?;
//! let finished =
//!     RecordResults { status: Some(SessionStatus::Approved), blocks: vec![], blocklist_keys: None };
//! services.sessions.record_results(&holder, session.id, finished).await?;
//!
//! // It shares the session with the receiver, which imports it, trusting the decision.
//! let shared = services.share.share(&holder, session.id, ShareRequest {
//!     for_application_id: receiver.application_id,
//!     ttl: ShareTtl::DEFAULT,
//!     blocks: None,
//!     consent: None,
//! }).await?;
//! let clone = services.import.import(&receiver, ImportRequest {
//!     share_token: shared.share_token,
//!     workflow_id: Some(receiver_workflow.id),
//!     trust_review: true,
//!     vendor_data: None,
//!     max_source_age_seconds: None,
//! }).await?;
//! assert_eq!(clone.session.status, SessionStatus::Approved);
//! assert_eq!(clone.session.shared_from_session, Some(session.id));
//! assert_eq!(clone.session.application_id, receiver.application_id);
//! # Ok(())
//! # }
//! ```

pub mod action;
pub mod address;
pub mod api_key;
pub mod application;
pub mod block;
pub mod console;
pub mod correction;
pub mod delivery;
pub mod entity;
pub mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod fakes;
pub mod federation;
pub mod grant;
pub mod idempotency;
pub mod ids;
pub mod json;
pub mod kind;
pub mod limits;
pub mod lists;
pub mod ports;
pub mod retention;
pub mod reviewer;
pub mod services;
pub mod session;
pub mod session_options;
pub mod share;
pub mod status;
pub mod vendor_data;
pub mod webhook;
pub mod workflow;

pub use api_key::{ApiKey, ApiKeyHash, ApiKeyInfo, NewApiKey, StoredApiKey};
pub use application::{Application, Caller};
pub use block::{FeatureBlock, FeatureItem, ItemError};
pub use entity::{Entity, EntityStatus};
pub use error::{RepoError, ValidationErrors};
pub use grant::{Access, Grant, Resource, Scope};
pub use ids::{
    ApplicationId, DeliveryId, DestinationId, EntityId, EventId, ReviewerId, SessionId, WorkflowId,
};
pub use kind::SessionKind;
pub use session::{
    LogEntry, LogKind, NewSession, RecordResults, Review, ReviewOutcome, SessionFilter,
    SessionPage, SessionRecord, StoredSession, UserFacingState,
};
pub use session_options::{CallbackMethod, SessionOptions};
pub use share::{
    CloneStatus, ImportAttempt, ImportCheck, ImportContext, ImportOutcome, ImportWorkflow,
    IssuedShareToken, LedgerEntry, RecordedToken, ShareClaims, ShareToken, TokenError, TokenState,
    first_failed_check,
};
pub use status::{ReviewStatus, SessionStatus};
pub use vendor_data::VendorData;
pub use workflow::{Feature, NewWorkflow, Workflow, WorkflowFeature};
