//! `handoff webhooks`: an application's destinations, made, listed and deleted by the operator,
//! and their deliveries listed and sent again.

use std::sync::Arc;

use handoff_domain::services::NewDestination;
use handoff_domain::{DeliveryId, DestinationId};
use handoff_http::wire::{WebhookDelivery, WebhookDestination};
use serde_json::json;

use super::{no_tokens, operator, store};
use crate::cli::{Cli, WebhooksCommand};
use crate::error::CommandError;

pub(super) async fn run(cli: &Cli, command: &WebhooksCommand) -> Result<(), CommandError> {
    let config = cli.base_config()?;
    let store = store(cli).await?;
    let (settings, _) = crate::config::webhook_settings_from_env()?;
    let sealer = crate::webhooks::secrets_key(&config)?;
    let webhooks = crate::services_sealing(
        &store,
        "",
        no_tokens(),
        Arc::new(crate::webhooks::KekSealer(sealer)),
    )
    .allowing_private_webhooks(settings.allow_private)
    .webhooks;
    match command {
        WebhooksCommand::Create { application, url, label, events } => {
            let new = NewDestination {
                label: label.clone(),
                url: Some(url.clone()),
                subscribed_events: events.clone(),
                ..Default::default()
            };
            let (destination, secret) = webhooks.create(&operator(application), new).await?;
            println!("{}", json!(WebhookDestination::new(&destination, Some(secret))));
        }
        WebhooksCommand::List { application } => {
            for destination in webhooks.list(&operator(application)).await? {
                println!("{}", json!(WebhookDestination::new(&destination, None)));
            }
        }
        WebhooksCommand::Delete { application, destination } => {
            webhooks.delete(&operator(application), DestinationId::from_uuid(*destination)).await?;
            println!("{}", json!({"id": destination, "deleted": true}));
        }
        WebhooksCommand::Deliveries { application, destination, limit } => {
            let caller = operator(application);
            for delivery in webhooks
                .deliveries(&caller, DestinationId::from_uuid(*destination), *limit, 0)
                .await?
            {
                println!("{}", json!(WebhookDelivery::from(&delivery)));
            }
        }
        WebhooksCommand::Resend { application, destination, delivery } => {
            webhooks
                .resend(
                    &operator(application),
                    DestinationId::from_uuid(*destination),
                    DeliveryId::from_uuid(*delivery),
                )
                .await?;
            println!("{}", json!({"delivery_id": delivery, "state": "pending"}));
        }
    }
    Ok(())
}
