//! Webhook destinations, Didit's shape: each application's own, their secrets shown once and
//! rotated with a grace period, and their deliveries listed and resent.

use chrono::Duration;

use super::{Error, Ports};
use crate::application::Caller;
use crate::error::ValidationErrors;
use crate::ids::{DeliveryId, DestinationId};
use crate::webhook::{
    Delivery, Destination, DestinationUrl, MAX_LABEL_CHARS, SECRET_GRACE_SECONDS, WEBHOOK_VERSION,
    WEBHOOK_VERSIONS, WebhookType,
};

/// The bytes of a new secret (shown as 64 hex digits).
const SECRET_BYTES: usize = 32;
/// The most destinations an application may have.
pub const MAX_DESTINATIONS: usize = 20;
/// The largest page of deliveries.
pub const MAX_DELIVERY_PAGE: u64 = 200;

/// A destination to create, as the request gave it.
#[derive(Clone, Debug, Default)]
pub struct NewDestination {
    /// A name for people (default `Webhook`).
    pub label: Option<String>,
    /// Where to POST events.
    pub url: Option<String>,
    /// Whether to send (default true).
    pub enabled: Option<bool>,
    /// The payload version (`v3`, the default).
    pub webhook_version: Option<String>,
    /// The event types (default Didit's: `status.updated`, `data.updated`).
    pub subscribed_events: Option<Vec<String>>,
}

/// A change of a destination: what is given changes.
pub type DestinationChange = NewDestination;

/// Manages webhook destinations.
#[derive(Clone)]
pub struct WebhookService {
    ports: Ports,
    allow_private: bool,
}

impl WebhookService {
    pub(super) fn new(ports: Ports) -> Self {
        Self { ports, allow_private: false }
    }

    /// Accepts `http` URLs (and, at delivery, private addresses).
    pub fn allow_private(&mut self, allow: bool) {
        self.allow_private = allow;
    }

    /// Creates a destination; answers it with its secret, shown only here.
    pub async fn create(
        &self, caller: &Caller, request: NewDestination,
    ) -> Result<(Destination, String), Error> {
        let now = self.ports.clock.now();
        let mut destination = Destination {
            id: DestinationId::from_uuid(self.ports.ids.uuid()),
            application_id: caller.application_id,
            label: "Webhook".to_owned(),
            url: DestinationUrl::from_stored(String::new()),
            enabled: true,
            webhook_version: WEBHOOK_VERSION.to_owned(),
            subscribed_events: vec![WebhookType::StatusUpdated, WebhookType::DataUpdated],
            created_at: now,
            updated_at: now,
            previous_secret_until: None,
        };
        if request.url.is_none() {
            return Err(Error::Invalid(ValidationErrors::single("url", "This field is required.")));
        }
        self.apply(&mut destination, request)?;
        let existing = self.ports.webhooks.destinations(caller.application_id).await?;
        if existing.len() >= MAX_DESTINATIONS {
            return Err(Error::Invalid(ValidationErrors::single(
                "url",
                format!("An application may have at most {MAX_DESTINATIONS} destinations."),
            )));
        }
        let secret = self.ports.ids.token(SECRET_BYTES)?;
        let sealed = self.ports.sealer.seal(&secret_context(destination.id), secret.as_bytes())?;
        self.ports.webhooks.create_destination(&destination, &sealed).await?;
        Ok((destination, secret))
    }

    /// The caller's destinations, oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Destination>, Error> {
        Ok(self.ports.webhooks.destinations(caller.application_id).await?)
    }

    /// One of the caller's destinations.
    pub async fn get(&self, caller: &Caller, id: DestinationId) -> Result<Destination, Error> {
        self.ports
            .webhooks
            .find_destination(caller.application_id, id)
            .await?
            .ok_or(Error::DestinationNotFound)
    }

    /// Changes what the request gives.
    pub async fn update(
        &self, caller: &Caller, id: DestinationId, change: DestinationChange,
    ) -> Result<Destination, Error> {
        let mut destination = self.get(caller, id).await?;
        self.apply(&mut destination, change)?;
        destination.updated_at = self.ports.clock.now();
        if !self.ports.webhooks.update_destination(&destination).await? {
            return Err(Error::DestinationNotFound);
        }
        Ok(destination)
    }

    /// A new secret, shown only here; the previous one keeps signing beside it (a second set
    /// of signature headers is not sent: receivers verify with either) for
    /// [`SECRET_GRACE_SECONDS`].
    pub async fn rotate_secret(
        &self, caller: &Caller, id: DestinationId,
    ) -> Result<(Destination, String), Error> {
        self.get(caller, id).await?;
        let secret = self.ports.ids.token(SECRET_BYTES)?;
        let sealed = self.ports.sealer.seal(&secret_context(id), secret.as_bytes())?;
        let until = self.ports.clock.now() + Duration::seconds(SECRET_GRACE_SECONDS);
        if !self
            .ports
            .webhooks
            .rotate_destination_secret(caller.application_id, id, &sealed, until)
            .await?
        {
            return Err(Error::DestinationNotFound);
        }
        Ok((self.get(caller, id).await?, secret))
    }

    /// Deletes a destination and its deliveries.
    pub async fn delete(&self, caller: &Caller, id: DestinationId) -> Result<(), Error> {
        if self.ports.webhooks.delete_destination(caller.application_id, id).await? {
            Ok(())
        } else {
            Err(Error::DestinationNotFound)
        }
    }

    /// A page of a destination's deliveries, newest first.
    pub async fn deliveries(
        &self, caller: &Caller, id: DestinationId, limit: u64, offset: u64,
    ) -> Result<Vec<Delivery>, Error> {
        self.get(caller, id).await?;
        Ok(self
            .ports
            .webhooks
            .deliveries(caller.application_id, id, limit.clamp(1, MAX_DELIVERY_PAGE), offset)
            .await?)
    }

    /// Sends a delivery again, now, whatever it became.
    pub async fn resend(
        &self, caller: &Caller, id: DestinationId, delivery_id: DeliveryId,
    ) -> Result<(), Error> {
        self.get(caller, id).await?;
        if self
            .ports
            .webhooks
            .resend_delivery(caller.application_id, id, delivery_id, self.ports.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::DeliveryNotFound)
        }
    }

    /// Applies the given members to `destination`, checking each.
    fn apply(&self, destination: &mut Destination, change: NewDestination) -> Result<(), Error> {
        let mut errors = ValidationErrors::default();
        if let Some(label) = change.label {
            let chars = label.chars().count();
            if chars == 0 || chars > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
                errors.add("label", "label must be 1 to 100 characters, no control characters.");
            } else {
                destination.label = label;
            }
        }
        if let Some(url) = change.url {
            match DestinationUrl::parse(&url, self.allow_private) {
                Ok(url) => destination.url = url,
                Err(message) => errors.add("url", message),
            }
        }
        if let Some(enabled) = change.enabled {
            destination.enabled = enabled;
        }
        if let Some(version) = change.webhook_version {
            if WEBHOOK_VERSIONS.contains(&version.as_str()) {
                destination.webhook_version = version;
            } else {
                errors.add("webhook_version", "webhook_version must be v1, v2 or v3.");
            }
        }
        if let Some(events) = change.subscribed_events {
            let parsed: Vec<Option<WebhookType>> =
                events.iter().map(|e| WebhookType::parse(e)).collect();
            if events.is_empty() {
                errors.add("subscribed_events", "Subscribe to at least one event.");
            } else if let Some(unknown) = events.iter().zip(&parsed).find(|(_, p)| p.is_none()) {
                errors.add(
                    "subscribed_events",
                    format!("Unknown event {:?}.", unknown.0.chars().take(64).collect::<String>()),
                );
            } else {
                // Each once, in the order of the docs (as they are stored and read back).
                let mut types: Vec<WebhookType> = parsed.into_iter().flatten().collect();
                types.sort_by_key(|t| WebhookType::ALL.iter().position(|a| a == t));
                types.dedup();
                destination.subscribed_events = types;
            }
        }
        errors.into_result().map_err(Error::Invalid)
    }
}

/// What a destination's secret is sealed for: it opens for this destination only.
pub fn secret_context(id: DestinationId) -> String {
    format!("webhook destination secret\0{id}")
}
