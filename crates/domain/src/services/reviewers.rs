//! Reviewers as people ([`crate::reviewer`]): the operator adds, lists and removes them; they
//! sign in to the console with their password (and code), and change it.

use super::applications::{ApplicationService, reviewer_caller};
use super::{Error, Ports};
use crate::ValidationErrors;
use crate::console::ConsoleSession;
use crate::ids::{ApplicationId, ReviewerId};
use crate::reviewer::{
    self, LOCKOUT, MAX_FAILED_SIGN_INS, Reviewer, ReviewerRole, SignInRefusal, StoredReviewer,
};

/// What adding a reviewer gives the operator, this once: the first password, and the
/// one-time-code secret's `otpauth://` address when it has one.
#[derive(Debug)]
pub struct NewReviewer {
    /// The reviewer.
    pub reviewer: Reviewer,
    /// Its first password.
    pub password: String,
    /// Where an authenticator app reads its secret.
    pub totp_url: Option<String>,
}

/// Adds, removes and signs in reviewers.
#[derive(Clone)]
pub struct ReviewerService {
    ports: Ports,
    applications: ApplicationService,
}

impl ReviewerService {
    pub(super) fn new(ports: Ports, applications: ApplicationService) -> Self {
        Self { ports, applications }
    }

    /// Adds a reviewer of `application_id` with a random first password and, with `totp`, a
    /// one-time-code secret.
    pub async fn add(
        &self, application_id: ApplicationId, email: &str, role: ReviewerRole, totp: bool,
    ) -> Result<NewReviewer, Error> {
        let email = reviewer::parse_email(email)
            .map_err(|e| Error::Invalid(ValidationErrors::single("email", e)))?;
        self.applications.settings(application_id).await?;
        let id = ReviewerId::from_uuid(self.ports.ids.uuid());
        let password = reviewer::new_password()?;
        let secret = totp.then(reviewer::new_totp_secret).transpose()?;
        let totp_url = secret.as_deref().and_then(|s| reviewer::totp_url(&email, s));
        let totp_secret =
            secret.map(|s| self.ports.sealer.seal(&reviewer::totp_context(id), &s)).transpose()?;
        let stored = StoredReviewer {
            reviewer: Reviewer {
                id,
                application_id,
                email,
                role,
                totp,
                time_zone: None,
                created_at: self.ports.clock.now(),
            },
            password_hash: reviewer::hash_password(&password)?,
            totp_secret,
            failed_sign_ins: 0,
            locked_until: None,
        };
        if !self.ports.applications.add_reviewer(&stored).await? {
            return Err(Error::Invalid(ValidationErrors::single(
                "email",
                "a reviewer with this email exists already",
            )));
        }
        Ok(NewReviewer { reviewer: stored.reviewer, password, totp_url })
    }

    /// The application's reviewers, oldest first.
    pub async fn list(&self, application_id: ApplicationId) -> Result<Vec<Reviewer>, Error> {
        self.applications.settings(application_id).await?;
        Ok(self.ports.applications.list_reviewers(application_id).await?)
    }

    /// Removes a reviewer; its console sessions end.
    pub async fn remove(&self, application_id: ApplicationId, email: &str) -> Result<(), Error> {
        let email = reviewer::parse_email(email)
            .map_err(|e| Error::Invalid(ValidationErrors::single("email", e)))?;
        if self.ports.applications.remove_reviewer(application_id, &email).await? {
            Ok(())
        } else {
            Err(Error::ReviewerNotFound)
        }
    }

    /// Signs a reviewer in: a console session and its id when the email, the password and
    /// (for an account with one) the code are right and the account is not locked. Every
    /// wrong attempt counts; the [`MAX_FAILED_SIGN_INS`]th in a row locks the account for
    /// [`LOCKOUT`].
    pub async fn sign_in(
        &self, email: &str, password: &str, code: &str,
    ) -> Result<Result<(String, ConsoleSession), SignInRefusal>, Error> {
        let now = self.ports.clock.now();
        let found = match reviewer::parse_email(email) {
            Ok(email) => self.ports.applications.find_reviewer_by_email(&email).await?,
            Err(_) => None,
        };
        let Some(stored) = found else {
            // As long as a wrong password takes, so that the time says nothing of who exists.
            reviewer::verify_password(password, UNKNOWN_ACCOUNT_HASH);
            return Ok(Err(SignInRefusal::Wrong));
        };
        if let Some(until) = stored.locked_until.filter(|until| *until > now) {
            return Ok(Err(SignInRefusal::Locked(until)));
        }
        let id = stored.reviewer.id;
        let right = reviewer::verify_password(password, &stored.password_hash)
            && match &stored.totp_secret {
                Some(sealed) => {
                    let secret = self.ports.sealer.open(&reviewer::totp_context(id), sealed)?;
                    reviewer::check_code(&secret, code, now)
                }
                None => true,
            };
        if !right {
            let failed = stored.failed_sign_ins + 1;
            if failed >= MAX_FAILED_SIGN_INS {
                let until = now + LOCKOUT;
                self.ports.applications.record_sign_in_failures(id, 0, Some(until)).await?;
                return Ok(Err(SignInRefusal::Locked(until)));
            }
            self.ports.applications.record_sign_in_failures(id, failed, None).await?;
            return Ok(Err(SignInRefusal::Wrong));
        }
        if stored.failed_sign_ins != 0 || stored.locked_until.is_some() {
            self.ports.applications.record_sign_in_failures(id, 0, None).await?;
        }
        let caller = reviewer_caller(&stored.reviewer);
        Ok(Ok(self.applications.open_console(&caller, Some(id)).await?))
    }

    /// Whether the reviewer's application lets API keys sign in to its console, and whether
    /// the reviewer, an admin, may change that.
    pub async fn console_api_keys(&self, id: ReviewerId) -> Result<(bool, bool), Error> {
        let reviewer =
            self.ports.applications.find_reviewer(id).await?.ok_or(Error::ReviewerNotFound)?;
        let settings = self.applications.settings(reviewer.application_id).await?;
        Ok((settings.console_api_keys, reviewer.role == ReviewerRole::Admin))
    }

    /// Lets its application's API keys sign in to the console, or stops them: an admin's to
    /// decide ([`Error::ScopeMissing`] for another reviewer).
    pub async fn set_console_api_keys(&self, id: ReviewerId, allow: bool) -> Result<(), Error> {
        let reviewer =
            self.ports.applications.find_reviewer(id).await?.ok_or(Error::ReviewerNotFound)?;
        if reviewer.role != ReviewerRole::Admin {
            return Err(Error::ScopeMissing(crate::grant::Scope {
                resource: crate::grant::Resource::Reviews,
                access: crate::grant::Access::Write,
            }));
        }
        let mut settings = self.applications.settings(reviewer.application_id).await?;
        settings.console_api_keys = allow;
        self.applications.update_settings(reviewer.application_id, settings).await
    }

    /// Sets the time zone the reviewer reads the console's times in (an IANA name; empty:
    /// UTC).
    pub async fn set_time_zone(&self, id: ReviewerId, raw: &str) -> Result<(), Error> {
        let zone = match raw.trim() {
            "" => None,
            named => Some(
                reviewer::parse_time_zone(named)
                    .map_err(|e| Error::Invalid(ValidationErrors::single("time_zone", e)))?
                    .name()
                    .to_owned(),
            ),
        };
        if self.ports.applications.set_reviewer_time_zone(id, zone.as_deref()).await? {
            Ok(())
        } else {
            Err(Error::ReviewerNotFound)
        }
    }

    /// Changes a signed-in reviewer's password, given its current one; every console session
    /// of the reviewer ends, this one too.
    pub async fn change_password(
        &self, id: ReviewerId, current: &str, new: &str,
    ) -> Result<(), Error> {
        let stored = match self.ports.applications.find_reviewer(id).await? {
            Some(found) => self.ports.applications.find_reviewer_by_email(&found.email).await?,
            None => None,
        }
        .ok_or(Error::ReviewerNotFound)?;
        if !reviewer::verify_password(current, &stored.password_hash) {
            return Err(Error::Invalid(ValidationErrors::single(
                "current_password",
                "the current password is not right",
            )));
        }
        reviewer::check_new_password(new)
            .map_err(|e| Error::Invalid(ValidationErrors::single("new_password", e)))?;
        let hash = reviewer::hash_password(new)?;
        if self.ports.applications.set_reviewer_password(id, &hash).await? {
            Ok(())
        } else {
            Err(Error::ReviewerNotFound)
        }
    }
}

/// A hash no password matches, verified when the email names no reviewer.
const UNKNOWN_ACCOUNT_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2fE9YZG1fo3m7SzhK9E1NdHsd8zQ8GYkZpZ0j0C6Xko";

#[cfg(test)]
mod tests {
    #[test]
    fn the_unknown_account_hash_is_a_hash_that_nothing_matches() {
        let parsed = argon2::password_hash::PasswordHash::new(super::UNKNOWN_ACCOUNT_HASH);
        assert!(parsed.is_ok(), "it parses, so verifying takes a password's time");
        assert!(!crate::reviewer::verify_password("", super::UNKNOWN_ACCOUNT_HASH));
    }
}
