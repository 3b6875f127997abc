//! `handoff partners`: the partner deployments this one trusts, added (with their published
//! keys fetched), listed and removed. Running servers read partners from the database again
//! after at most a second, so a change takes effect without a restart.

use handoff_domain::ApplicationId;
use handoff_domain::federation::{Partner, parse_deployment_url, parse_partner_name};
use handoff_domain::ports::PartnerRepository;
use serde_json::json;

use super::store;
use crate::cli::{Cli, PartnersCommand};
use crate::error::CommandError;

/// A partner as `partners list` prints it.
fn line(partner: &Partner) -> serde_json::Value {
    json!({
        "name": partner.name,
        "url": partner.url,
        "applications": partner.applications.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "added_at": handoff_http::decision::timestamp(partner.added_at),
    })
}

pub(super) async fn run(cli: &Cli, command: &PartnersCommand) -> Result<(), CommandError> {
    let config = cli.base_config()?;
    let store = store(cli).await?;
    match command {
        PartnersCommand::Add { name, url, applications } => {
            let name = parse_partner_name(name).map_err(|e| CommandError::Refused(e.into()))?;
            let url = parse_deployment_url(url, config.federation_allow_private)
                .map_err(|e| CommandError::Refused(e.into()))?;
            let (client, policy) =
                crate::federation::partner_client(config.federation_allow_private)
                    .map_err(CommandError::Setting)?;
            let keys = crate::federation::fetch_keys(&client, policy, &url)
                .await
                .map_err(|e| CommandError::Refused(e.to_string()))?;
            let now = chrono::Utc::now();
            let partner = Partner {
                name,
                url,
                applications: applications.iter().copied().map(ApplicationId::from_uuid).collect(),
                keys,
                keys_fetched_at: now,
                added_at: now,
            };
            if !store.add_partner(&partner).await? {
                return Err(CommandError::Refused(format!(
                    "a partner named {} or at {} exists: remove it first",
                    partner.name, partner.url
                )));
            }
            println!("{}", line(&partner));
        }
        PartnersCommand::List => {
            for partner in store.partners().await? {
                println!("{}", line(&partner));
            }
        }
        PartnersCommand::Remove { name } => {
            if !store.remove_partner(name).await? {
                return Err(CommandError::Refused(format!("no partner is named {name}")));
            }
            println!("{}", json!({"name": name, "removed": true}));
        }
    }
    Ok(())
}
