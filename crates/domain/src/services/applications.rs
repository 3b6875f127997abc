//! Applications and API keys: operator commands and request authentication.

use super::{Error, Ports};
use crate::api_key::ApiKey;
use crate::application::{Application, Caller};
use crate::console::{
    CONSOLE_SESSION_IDLE, CONSOLE_SESSION_LIFETIME, ConsoleSession, ConsoleSessionHash,
};
use crate::error::{RepoError, ValidationErrors};
use crate::ids::ApplicationId;

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
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(ValidationErrors::single(
                "name",
                "must be 1 to 200 characters, without control characters.",
            )));
        }
        let application = Application {
            id: ApplicationId::from_uuid(self.ports.ids.uuid()),
            name: name.to_owned(),
            created_at: self.ports.clock.now(),
        };
        let (key, stored) = generate(application.id)?;
        self.ports.applications.create_application(&application, &stored).await?;
        Ok((application, key))
    }

    /// Every application.
    pub async fn list_applications(&self) -> Result<Vec<Application>, Error> {
        Ok(self.ports.applications.list_applications().await?)
    }

    /// Adds an API key to an application, returned in clear this once.
    pub async fn create_api_key(&self, application_id: ApplicationId) -> Result<ApiKey, Error> {
        let (key, stored) = generate(application_id)?;
        if self.ports.applications.add_api_key(&stored, self.ports.clock.now()).await? {
            Ok(key)
        } else {
            Err(Error::ApplicationNotFound)
        }
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

    /// The application a presented `x-api-key` authenticates as, or `None` when the key is
    /// malformed, unknown, revoked or does not match its stored hash.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Caller>, Error> {
        let Some(key) = ApiKey::presented(presented) else {
            return Ok(None);
        };
        let Some((application_id, hash)) =
            self.ports.applications.find_api_key(key.prefix()).await?
        else {
            return Ok(None);
        };
        Ok(key
            .matches(&hash)
            .then(|| Caller { application_id, key_prefix: key.prefix().to_owned() }))
    }

    /// Whether the key of `caller` (by its prefix) still exists and is its application's: a
    /// sign-in made with a key that was revoked since ends.
    pub async fn still_holds(&self, caller: &Caller) -> Result<bool, Error> {
        Ok(self
            .ports
            .applications
            .find_api_key(&caller.key_prefix)
            .await?
            .is_some_and(|(application_id, _)| application_id == caller.application_id))
    }

    /// Signs `caller` in to the review console: a new session, its id (for the cookie, shown
    /// this once) and the session as stored.
    pub async fn open_console_session(
        &self, caller: &Caller,
    ) -> Result<(String, ConsoleSession), Error> {
        let now = self.ports.clock.now();
        let id = self.ports.ids.token(32)?;
        let session = ConsoleSession {
            caller: caller.clone(),
            csrf: self.ports.ids.token(16)?,
            expires_at: now + CONSOLE_SESSION_LIFETIME,
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
    /// nor signed in with a key revoked since); the request counts as its use.
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
        Ok(self.still_holds(&session.caller).await?.then_some(session))
    }

    /// Signs the console session a cookie's `id` names out, for every copy of the cookie.
    pub async fn close_console_session(&self, id: &str) -> Result<(), Error> {
        Ok(self.ports.applications.close_console_session(ConsoleSessionHash::of(id)).await?)
    }
}

fn generate(application_id: ApplicationId) -> Result<(ApiKey, crate::api_key::NewApiKey), Error> {
    ApiKey::generate(application_id)
        .map_err(|e| Error::Repo(RepoError::Internal(format!("random source failed: {e}").into())))
}
