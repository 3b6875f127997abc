//! Applications and API keys: operator commands and request authentication.

use std::sync::Arc;

use super::{Error, Ports};
use crate::api_key::{ApiKey, ApiKeyInfo};
use crate::application::{Application, Caller};
use crate::console::{
    CONSOLE_SESSION_IDLE, CONSOLE_SESSION_LIFETIME, ConsoleSession, ConsoleSessionHash,
};
use crate::error::{RepoError, ValidationErrors};
use crate::grant::{Access, Grant, Resource, Scope};
use crate::ids::ApplicationId;

/// The scope a key needs to sign in to the review console.
pub const CONSOLE_SCOPE: Scope = Scope { resource: Resource::Reviews, access: Access::Write };

/// A key an operator adds: its name and what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKey {
    /// A name for people.
    pub name: Option<String>,
    /// What the key may do.
    pub grant: Grant,
}

/// Checks a name for people: 1 to `max` characters, without control characters; trimmed.
fn name(field: &str, text: &str, max: usize) -> Result<String, Error> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(Error::Invalid(ValidationErrors::single(
            field,
            format!("must be 1 to {max} characters, without control characters."),
        )));
    }
    Ok(text.to_owned())
}

/// Creates applications and keys, and tells which application a presented key belongs to.
#[derive(Clone)]
pub struct ApplicationService {
    ports: Ports,
}

impl ApplicationService {
    pub(super) fn new(ports: Ports) -> Self {
        Self { ports }
    }

    /// Creates an application with a first API key, returned in clear this once.
    pub async fn create_application(&self, name: &str) -> Result<(Application, ApiKey), Error> {
        let application = Application {
            id: ApplicationId::from_uuid(self.ports.ids.uuid()),
            name: self::name("name", name, 200)?,
            created_at: self.ports.clock.now(),
        };
        let (key, stored) = generate(application.id)?;
        self.ports.applications.create_application(&application, &stored).await?;
        Ok((application, key))
    }

    /// Every application.
    /// The application's settings.
    pub async fn settings(
        &self, id: ApplicationId,
    ) -> Result<crate::application::ApplicationSettings, Error> {
        self.ports.applications.application_settings(id).await?.ok_or(Error::ApplicationNotFound)
    }

    /// Replaces the application's settings.
    pub async fn update_settings(
        &self, id: ApplicationId, settings: crate::application::ApplicationSettings,
    ) -> Result<(), Error> {
        if self.ports.applications.update_application_settings(id, &settings).await? {
            Ok(())
        } else {
            Err(Error::ApplicationNotFound)
        }
    }

    pub async fn list_applications(&self) -> Result<Vec<Application>, Error> {
        Ok(self.ports.applications.list_applications().await?)
    }

    /// Adds an API key with every right to an application, returned in clear this once.
    pub async fn create_api_key(&self, application_id: ApplicationId) -> Result<ApiKey, Error> {
        self.create_named_key(application_id, NewKey { name: None, grant: Grant::every_right() })
            .await
    }

    /// Adds a named API key to an application, returned in clear this once. Its name has 1 to
    /// 100 characters; its workflows must be the application's; its expiry must be ahead.
    pub async fn create_named_key(
        &self, application_id: ApplicationId, new: NewKey,
    ) -> Result<ApiKey, Error> {
        let now = self.ports.clock.now();
        let name = new.name.as_deref().map(|n| self::name("name", n, 100)).transpose()?;
        if new.grant.scopes.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::Invalid(ValidationErrors::single(
                "scopes",
                "must name at least one scope, or be left out for every right.",
            )));
        }
        if !new.grant.is_current(now) {
            return Err(Error::Invalid(ValidationErrors::single("expires", "must be ahead.")));
        }
        if !self.ports.applications.application_exists(application_id).await? {
            return Err(Error::ApplicationNotFound);
        }
        for workflow in new.grant.workflows.iter().flatten() {
            if self.ports.workflows.find_workflow(application_id, *workflow).await?.is_none() {
                return Err(Error::WorkflowNotFound);
            }
        }
        let (key, mut stored) = generate(application_id)?;
        stored.name = name;
        stored.grant = new.grant;
        if self.ports.applications.add_api_key(&stored, now).await? {
            Ok(key)
        } else {
            Err(Error::ApplicationNotFound)
        }
    }

    /// The application's keys, revoked ones too: never a secret.
    pub async fn list_api_keys(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<ApiKeyInfo>, Error> {
        if !self.ports.applications.application_exists(application_id).await? {
            return Err(Error::ApplicationNotFound);
        }
        Ok(self.ports.applications.list_api_keys(application_id).await?)
    }

    /// Revokes an application's key by its prefix.
    pub async fn revoke_api_key(
        &self, application_id: ApplicationId, prefix: &str,
    ) -> Result<(), Error> {
        if self
            .ports
            .applications
            .revoke_api_key(application_id, prefix, self.ports.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::ApiKeyNotFound)
        }
    }

    /// The application a presented `x-api-key` authenticates as, with what the key may do, or
    /// `None` when the key is malformed, unknown, revoked, expired or does not match its stored
    /// hash.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Caller>, Error> {
        let Some(key) = ApiKey::presented(presented) else {
            return Ok(None);
        };
        let Some(stored) = self.ports.applications.find_api_key(key.prefix()).await? else {
            return Ok(None);
        };
        Ok((key.matches(&stored.hash) && stored.grant.is_current(self.ports.clock.now())).then(
            || Caller {
                application_id: stored.application_id,
                key_prefix: key.prefix().to_owned(),
                grant: Arc::new(stored.grant),
                reviewer: None,
            },
        ))
    }

    /// `caller` with its key's grant as it is now, or `None` when the key (by its prefix) was
    /// revoked, has expired or is not its application's: a sign-in with such a key ends.
    pub async fn still_holds(&self, caller: &Caller) -> Result<Option<Caller>, Error> {
        let stored = self.ports.applications.find_api_key(&caller.key_prefix).await?;
        Ok(stored
            .filter(|stored| {
                stored.application_id == caller.application_id
                    && stored.grant.is_current(self.ports.clock.now())
            })
            .map(|stored| Caller { grant: Arc::new(stored.grant), ..caller.clone() }))
    }

    /// The names of these applications, for people to read (the console's provenance and
    /// shares); an id that names no application is left out.
    pub async fn names(
        &self, ids: &[ApplicationId],
    ) -> Result<std::collections::HashMap<ApplicationId, String>, Error> {
        Ok(self.ports.applications.application_names(ids).await?.into_iter().collect())
    }

    /// Signs `caller` in to the review console with its API key: a new session, its id (for
    /// the cookie, shown this once) and the session as stored. The key must hold
    /// [`CONSOLE_SCOPE`], and the application must allow signing in with keys.
    pub async fn open_console_session(
        &self, caller: &Caller,
    ) -> Result<(String, ConsoleSession), Error> {
        if !caller.grant.allows(CONSOLE_SCOPE) {
            return Err(Error::ScopeMissing(CONSOLE_SCOPE));
        }
        let settings = self.settings(caller.application_id).await?;
        if !settings.console_api_keys {
            return Err(Error::ConsoleKeySignInOff);
        }
        self.open_console(caller, None).await
    }

    /// A new console session of `caller` (a reviewer's when `reviewer` names one): its id (for
    /// the cookie, shown this once) and the session as stored.
    pub(super) async fn open_console(
        &self, caller: &Caller, reviewer: Option<crate::ids::ReviewerId>,
    ) -> Result<(String, ConsoleSession), Error> {
        let now = self.ports.clock.now();
        let id = self.ports.ids.token(32)?;
        let session = ConsoleSession {
            caller: caller.clone(),
            csrf: self.ports.ids.token(16)?,
            expires_at: now + CONSOLE_SESSION_LIFETIME,
            reviewer,
            time_zone: None,
        };
        self.ports
            .applications
            .open_console_session(
                ConsoleSessionHash::of(&id),
                &session,
                now,
                now - CONSOLE_SESSION_IDLE,
            )
            .await?;
        Ok((id, session))
    }

    /// The console session a cookie's `id` names, while it is current (neither ended, idle,
    /// nor signed in with a key revoked or expired since), its caller with the key's grant as
    /// it is now; the request counts as its use.
    pub async fn console_session(&self, id: &str) -> Result<Option<ConsoleSession>, Error> {
        let now = self.ports.clock.now();
        let Some(session) = self
            .ports
            .applications
            .touch_console_session(ConsoleSessionHash::of(id), now, now - CONSOLE_SESSION_IDLE)
            .await?
        else {
            return Ok(None);
        };
        let (caller, time_zone) = match session.reviewer {
            // A removed reviewer's session ends at its next request.
            Some(id) => match self.ports.applications.find_reviewer(id).await? {
                Some(reviewer) => (Some(reviewer_caller(&reviewer)), reviewer.time_zone),
                None => (None, None),
            },
            None => (self.still_holds(&session.caller).await?, None),
        };
        Ok(caller.map(|caller| ConsoleSession { caller, time_zone, ..session }))
    }

    /// Signs the console session a cookie's `id` names out, for every copy of the cookie.
    pub async fn close_console_session(&self, id: &str) -> Result<(), Error> {
        Ok(self.ports.applications.close_console_session(ConsoleSessionHash::of(id)).await?)
    }
}

/// The caller a reviewer's console requests act as: its application, its role's rights, and
/// its email as the actor of what it does.
pub(super) fn reviewer_caller(reviewer: &crate::reviewer::Reviewer) -> Caller {
    Caller {
        application_id: reviewer.application_id,
        key_prefix: format!("reviewer-{}", reviewer.id.as_uuid().simple()),
        grant: Arc::new(reviewer.role.grant()),
        reviewer: Some(reviewer.email.clone()),
    }
}

fn generate(application_id: ApplicationId) -> Result<(ApiKey, crate::api_key::NewApiKey), Error> {
    ApiKey::generate(application_id)
        .map_err(|e| Error::Repo(RepoError::Internal(format!("random source failed: {e}").into())))
}
