//! Applications, API keys and console sessions in memory.

use super::*;

#[async_trait]
impl ApplicationRepository for InMemory {
    async fn create_application(
        &self, application: &Application, key: &NewApiKey,
    ) -> Result<(), RepoError> {
        let mut state = self.state();
        state.applications.push(application.clone());
        state.api_keys.push((key.clone(), application.created_at, None));
        Ok(())
    }

    async fn list_applications(&self) -> Result<Vec<Application>, RepoError> {
        Ok(self.state().applications.clone())
    }

    async fn application_names(
        &self, ids: &[ApplicationId],
    ) -> Result<Vec<(ApplicationId, String)>, RepoError> {
        let state = self.state();
        Ok(state
            .applications
            .iter()
            .filter(|a| ids.contains(&a.id))
            .map(|a| (a.id, a.name.clone()))
            .collect())
    }

    async fn application_exists(&self, id: ApplicationId) -> Result<bool, RepoError> {
        Ok(self.state().applications.iter().any(|a| a.id == id))
    }

    async fn application_settings(
        &self, id: ApplicationId,
    ) -> Result<Option<crate::application::ApplicationSettings>, RepoError> {
        let state = self.state();
        if !state.applications.iter().any(|a| a.id == id) {
            return Ok(None);
        }
        Ok(Some(state.settings.iter().find(|(a, _)| *a == id).map(|(_, s)| *s).unwrap_or_default()))
    }

    async fn update_application_settings(
        &self, id: ApplicationId, settings: &crate::application::ApplicationSettings,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        if !state.applications.iter().any(|a| a.id == id) {
            return Ok(false);
        }
        state.settings.retain(|(a, _)| *a != id);
        state.settings.push((id, *settings));
        Ok(true)
    }

    async fn retention_policies(
        &self,
    ) -> Result<Vec<(ApplicationId, crate::retention::RetentionDays)>, RepoError> {
        let state = self.state();
        Ok(state.settings.iter().filter_map(|(a, s)| s.retention.map(|r| (*a, r))).collect())
    }

    async fn add_api_key(&self, key: &NewApiKey, at: DateTime<Utc>) -> Result<bool, RepoError> {
        let mut state = self.state();
        if !state.applications.iter().any(|a| a.id == key.application_id) {
            return Ok(false);
        }
        state.api_keys.push((key.clone(), at, None));
        Ok(true)
    }

    async fn revoke_api_key(
        &self, application_id: ApplicationId, prefix: &str, at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state.api_keys.iter_mut().find(|(k, _, revoked)| {
            k.application_id == application_id && k.prefix == prefix && revoked.is_none()
        }) {
            Some((_, _, revoked)) => {
                *revoked = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, RepoError> {
        Ok(self
            .state()
            .api_keys
            .iter()
            .find(|(k, _, revoked)| k.prefix == prefix && revoked.is_none())
            .map(|(k, _, _)| StoredApiKey {
                application_id: k.application_id,
                hash: k.hash.clone(),
                grant: k.grant.clone(),
            }))
    }

    async fn list_api_keys(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<ApiKeyInfo>, RepoError> {
        Ok(self
            .state()
            .api_keys
            .iter()
            .filter(|(k, _, _)| k.application_id == application_id)
            .map(|(k, created_at, revoked_at)| ApiKeyInfo {
                prefix: k.prefix.clone(),
                name: k.name.clone(),
                grant: k.grant.clone(),
                created_at: *created_at,
                revoked_at: *revoked_at,
            })
            .collect())
    }

    async fn open_console_session(
        &self, id: ConsoleSessionHash, session: &ConsoleSession, now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let mut state = self.state();
        state.console_sessions.retain(|(_, s, seen)| s.expires_at > now && *seen > idle_since);
        state.console_sessions.push((id, session.clone(), now));
        Ok(())
    }

    async fn touch_console_session(
        &self, id: ConsoleSessionHash, now: DateTime<Utc>, idle_since: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, RepoError> {
        let mut state = self.state();
        Ok(state
            .console_sessions
            .iter_mut()
            .find(|(h, s, seen)| *h == id && s.expires_at > now && *seen > idle_since)
            .map(|(_, session, seen)| {
                *seen = now;
                session.clone()
            }))
    }

    async fn close_console_session(&self, id: ConsoleSessionHash) -> Result<(), RepoError> {
        self.state().console_sessions.retain(|(h, _, _)| *h != id);
        Ok(())
    }

    async fn add_reviewer(
        &self, reviewer: &crate::reviewer::StoredReviewer,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let known = state.applications.iter().any(|a| a.id == reviewer.reviewer.application_id);
        if !known || state.reviewers.iter().any(|r| r.reviewer.email == reviewer.reviewer.email) {
            return Ok(false);
        }
        state.reviewers.push(reviewer.clone());
        Ok(true)
    }

    async fn list_reviewers(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<crate::reviewer::Reviewer>, RepoError> {
        let state = self.state();
        Ok(state
            .reviewers
            .iter()
            .filter(|r| r.reviewer.application_id == application_id)
            .map(|r| r.reviewer.clone())
            .collect())
    }

    async fn find_reviewer_by_email(
        &self, email: &str,
    ) -> Result<Option<crate::reviewer::StoredReviewer>, RepoError> {
        Ok(self.state().reviewers.iter().find(|r| r.reviewer.email == email).cloned())
    }

    async fn find_reviewer(
        &self, id: crate::ids::ReviewerId,
    ) -> Result<Option<crate::reviewer::Reviewer>, RepoError> {
        let state = self.state();
        Ok(state.reviewers.iter().find(|r| r.reviewer.id == id).map(|r| r.reviewer.clone()))
    }

    async fn record_sign_in_failures(
        &self, id: crate::ids::ReviewerId, failed: i32, locked_until: Option<DateTime<Utc>>,
    ) -> Result<(), RepoError> {
        if let Some(r) = self.state().reviewers.iter_mut().find(|r| r.reviewer.id == id) {
            r.failed_sign_ins = failed;
            r.locked_until = locked_until;
        }
        Ok(())
    }

    async fn set_reviewer_time_zone(
        &self, id: crate::ids::ReviewerId, time_zone: Option<&str>,
    ) -> Result<bool, RepoError> {
        match self.state().reviewers.iter_mut().find(|r| r.reviewer.id == id) {
            Some(r) => {
                r.reviewer.time_zone = time_zone.map(str::to_owned);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn set_reviewer_password(
        &self, id: crate::ids::ReviewerId, hash: &str,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let Some(r) = state.reviewers.iter_mut().find(|r| r.reviewer.id == id) else {
            return Ok(false);
        };
        r.password_hash = hash.to_owned();
        state.console_sessions.retain(|(_, s, _)| s.reviewer != Some(id));
        Ok(true)
    }

    async fn remove_reviewer(
        &self, application_id: ApplicationId, email: &str,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let Some(at) = state
            .reviewers
            .iter()
            .position(|r| r.reviewer.application_id == application_id && r.reviewer.email == email)
        else {
            return Ok(false);
        };
        let id = state.reviewers.remove(at).reviewer.id;
        state.console_sessions.retain(|(_, s, _)| s.reviewer != Some(id));
        Ok(true)
    }
}
