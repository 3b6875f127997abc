//! Applications: the tenants of handoff.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::grant::Grant;
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

/// An application's settings, set by the operator (`handoff applications update`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplicationSettings {
    /// Every share must record the person's consent (an extension); a share without it is
    /// refused (`consent_required`).
    pub require_consent: bool,
    /// Whether the review console takes the application's API keys to sign in (for headless
    /// use; reviewers sign in as themselves).
    pub console_api_keys: bool,
    /// How long a finished session is kept (an extension, as Didit's retention policy);
    /// `None`: for ever.
    pub retention: Option<crate::retention::RetentionDays>,
}

/// The application a request was authenticated as, the key that did it and what the key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The application every read and write of the request is scoped to.
    pub application_id: ApplicationId,
    /// The public prefix of the API key used; for a reviewer in the console, `reviewer-` and
    /// its id. What its rate limits are counted under.
    pub key_prefix: String,
    /// What the key (or the reviewer's role) may do.
    pub grant: Arc<Grant>,
    /// The reviewer signed in to the console, by email; `None`: an API key.
    pub reviewer: Option<String>,
}

impl Caller {
    /// A caller with every right: a primary key's, or the operator's.
    pub fn primary(application_id: ApplicationId, key_prefix: impl Into<String>) -> Self {
        Self {
            application_id,
            key_prefix: key_prefix.into(),
            grant: Arc::new(Grant::every_right()),
            reviewer: None,
        }
    }

    /// How log rows name who acted: `reviewer:<email>` in the console, else
    /// `api-key:<prefix>`.
    pub fn actor(&self) -> String {
        match &self.reviewer {
            Some(email) => format!("reviewer:{email}"),
            None => format!("api-key:{}", self.key_prefix),
        }
    }
}
