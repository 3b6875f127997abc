//! Webhook destinations and deliveries in memory.

use super::*;

#[async_trait]
impl WebhookRepository for InMemory {
    async fn create_destination(
        &self, destination: &Destination, secret: &SealedSecret,
    ) -> Result<(), RepoError> {
        self.state().destinations.push((destination.clone(), secret.clone()));
        Ok(())
    }

    async fn destinations(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<Destination>, RepoError> {
        Ok(self
            .state()
            .destinations
            .iter()
            .filter(|(d, _)| d.application_id == application_id)
            .map(|(d, _)| d.clone())
            .collect())
    }

    async fn find_destination(
        &self, application_id: ApplicationId, id: crate::DestinationId,
    ) -> Result<Option<Destination>, RepoError> {
        Ok(self.destinations(application_id).await?.into_iter().find(|d| d.id == id))
    }

    async fn update_destination(&self, destination: &Destination) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state
            .destinations
            .iter_mut()
            .find(|(d, _)| d.id == destination.id && d.application_id == destination.application_id)
        {
            Some((stored, _)) => {
                *stored = destination.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn rotate_destination_secret(
        &self, application_id: ApplicationId, id: crate::DestinationId, secret: &SealedSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state
            .destinations
            .iter_mut()
            .find(|(d, _)| d.id == id && d.application_id == application_id)
        {
            Some((destination, stored)) => {
                destination.previous_secret_until = Some(previous_until);
                *stored = secret.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_destination(
        &self, application_id: ApplicationId, id: crate::DestinationId,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let before = state.destinations.len();
        state.destinations.retain(|(d, _)| !(d.id == id && d.application_id == application_id));
        let deleted = state.destinations.len() < before;
        if deleted {
            state.deliveries.retain(|(destination, _)| *destination != id);
        }
        Ok(deleted)
    }

    async fn deliveries(
        &self, application_id: ApplicationId, destination_id: crate::DestinationId, limit: u64,
        offset: u64,
    ) -> Result<Vec<Delivery>, RepoError> {
        if self.find_destination(application_id, destination_id).await?.is_none() {
            return Ok(Vec::new());
        }
        Ok(self
            .state()
            .deliveries
            .iter()
            .rev()
            .filter(|(d, _)| *d == destination_id)
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, delivery)| delivery.clone())
            .collect())
    }

    async fn resend_delivery(
        &self, application_id: ApplicationId, destination_id: crate::DestinationId,
        delivery_id: crate::DeliveryId, at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        if self.find_destination(application_id, destination_id).await?.is_none() {
            return Ok(false);
        }
        let mut state = self.state();
        match state
            .deliveries
            .iter_mut()
            .find(|(d, delivery)| *d == destination_id && delivery.id == delivery_id)
        {
            Some((_, delivery)) => {
                delivery.state = DeliveryState::Pending;
                delivery.next_attempt_at = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
