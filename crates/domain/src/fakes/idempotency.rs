//! Idempotency keys in memory.

use super::*;

#[async_trait]
impl IdempotencyRepository for InMemory {
    async fn find_idempotency(
        &self, application_id: ApplicationId, key: &IdempotencyKey,
    ) -> Result<Option<StoredIdempotency>, RepoError> {
        Ok(self
            .state()
            .idempotency
            .iter()
            .find(|(k, stored)| k == key.as_str() && stored.application_id == application_id)
            .map(|(_, stored)| stored.clone()))
    }

    async fn record_answer(
        &self, application_id: ApplicationId, key: &IdempotencyKey, answer: &RecordedAnswer,
    ) -> Result<(), RepoError> {
        let mut state = self.state();
        if let Some((_, stored)) = state
            .idempotency
            .iter_mut()
            .find(|(k, stored)| k == key.as_str() && stored.application_id == application_id)
        {
            stored.answer.get_or_insert_with(|| answer.clone());
        }
        Ok(())
    }

    async fn forget_idempotency(
        &self, application_id: Option<ApplicationId>, key: Option<&IdempotencyKey>,
        before: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let mut state = self.state();
        let count = state.idempotency.len();
        state.idempotency.retain(|(k, stored)| {
            let matches = application_id.is_none_or(|app| stored.application_id == app)
                && key.is_none_or(|key| k == key.as_str())
                && stored.created_at < before;
            !matches
        });
        Ok((count - state.idempotency.len()) as u64)
    }
}
