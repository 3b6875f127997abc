//! The operator's commands (`migrate`, `applications`, `api-keys`, `shares`, `webhooks`,
//! `signing-keys`): each opens the database the settings name, says which on stderr, and prints
//! one JSON line per result on stdout.

mod signing_keys;
mod webhooks;

use std::sync::Arc;

use handoff_domain::{ApplicationId, Caller, LedgerEntry, SessionId, TokenState};
use handoff_token::{JwtShareTokens, Keyring};
use serde_json::json;

use crate::cli::{ApiKeysCommand, ApplicationsCommand, Cli, Command, SharesCommand};
use crate::error::CommandError;
use crate::{open_store, services};

/// Runs an operator command; `false` when `cli` names none.
pub async fn run(cli: &Cli) -> Result<bool, CommandError> {
    match &cli.command {
        Command::Migrate => {
            store(cli).await?;
            println!("{}", json!({"migrated": true}));
        }
        Command::Applications(command) => applications(cli, command).await?,
        Command::ApiKeys(command) => api_keys(cli, command).await?,
        Command::Shares(command) => shares(cli, command).await?,
        Command::Webhooks(command) => webhooks::run(cli, command).await?,
        Command::SigningKeys(command) => signing_keys::run(cli, command).await?,
        Command::Serve(_) | Command::Demo { .. } | Command::Openapi => return Ok(false),
    }
    Ok(true)
}

/// The database of an operator command, migrated; which one goes to stderr.
async fn store(cli: &Cli) -> Result<handoff_store::Store, CommandError> {
    let config = cli.base_config()?;
    eprintln!("database: {}", handoff_store::describe_database(&config.database_url));
    Ok(open_store(&config).await?)
}

/// Operator commands sign no share tokens.
fn no_tokens() -> Arc<JwtShareTokens> {
    Arc::new(JwtShareTokens::new(Keyring::default()))
}

/// The operator acting for `application`.
fn operator(application: &uuid::Uuid) -> Caller {
    Caller {
        application_id: ApplicationId::from_uuid(*application),
        key_prefix: "operator".to_owned(),
    }
}

async fn applications(cli: &Cli, command: &ApplicationsCommand) -> Result<(), CommandError> {
    let applications = services(&store(cli).await?, "", no_tokens()).applications;
    match command {
        ApplicationsCommand::Create { name } => {
            let (application, key) = applications.create_application(name).await?;
            println!(
                "{}",
                json!({"application_id": application.id.to_string(), "name": application.name, "api_key": key.reveal()})
            );
        }
        ApplicationsCommand::List => {
            for application in applications.list_applications().await? {
                println!(
                    "{}",
                    json!({"application_id": application.id.to_string(), "name": application.name, "created_at": handoff_http::decision::timestamp(application.created_at)})
                );
            }
        }
    }
    Ok(())
}

async fn api_keys(cli: &Cli, command: &ApiKeysCommand) -> Result<(), CommandError> {
    let applications = services(&store(cli).await?, "", no_tokens()).applications;
    match command {
        ApiKeysCommand::Create { application } => {
            let id = ApplicationId::from_uuid(*application);
            let key = applications.create_api_key(id).await?;
            println!(
                "{}",
                json!({"application_id": id.to_string(), "prefix": &key.reveal()[3..15], "api_key": key.reveal()})
            );
        }
        ApiKeysCommand::Revoke { application, prefix } => {
            let id = ApplicationId::from_uuid(*application);
            applications.revoke_api_key(id, prefix).await?;
            println!(
                "{}",
                json!({"application_id": id.to_string(), "prefix": prefix, "revoked": true})
            );
        }
    }
    Ok(())
}

async fn shares(cli: &Cli, command: &SharesCommand) -> Result<(), CommandError> {
    let store = store(cli).await?;
    let share = services(&store, "", no_tokens()).share;
    let print = |entry: &(LedgerEntry, TokenState)| {
        let line = json!(handoff_http::wire::ShareLedgerEntry::from(entry));
        println!("{line}");
    };
    match command {
        SharesCommand::Block { jti } => {
            let listed = store.block_share_token(jti, chrono::Utc::now()).await?;
            println!("{}", json!({"jti": jti, "blocked": true, "was_listed": listed}));
        }
        SharesCommand::List { application, session } => {
            let session = SessionId::from_uuid(*session);
            for entry in &share.ledger(&operator(application), session).await? {
                print(entry);
            }
        }
        SharesCommand::Revoke { application, session, jti } => {
            let session = SessionId::from_uuid(*session);
            print(&share.revoke(&operator(application), session, jti).await?);
        }
    }
    Ok(())
}
