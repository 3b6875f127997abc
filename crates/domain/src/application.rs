//! Applications: the tenants of handoff.

use chrono::{DateTime, Utc};

use crate::ids::ApplicationId;

/// An application: owns API keys, workflows, sessions and entities.
#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    /// Its id.
    pub id: ApplicationId,
    /// A name for people.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The application a request was authenticated as, and the key that did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The application every read and write of the request is scoped to.
    pub application_id: ApplicationId,
    /// The public prefix of the API key used; recorded as the actor of reviews.
    pub key_prefix: String,
}
