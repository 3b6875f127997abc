//! The operator's commands (`migrate`, `applications`, `api-keys`, `shares`, `webhooks`,
//! `signing-keys`, `partners`, `subjects`, `reviewers`): each opens the database the settings name, says which on stderr, and prints
//! one JSON line per result on stdout.

mod partners;
mod reviewers;
mod signing_keys;
mod subjects;
mod webhooks;

use std::sync::Arc;

use handoff_domain::services::NewKey;
use handoff_domain::{
    ApiKeyInfo, ApplicationId, Caller, Grant, LedgerEntry, SessionId, TokenState, WorkflowId,
};
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
        Command::Partners(command) => partners::run(cli, command).await?,
        Command::Subjects(command) => subjects::run(cli, command).await?,
        Command::Reviewers(command) => reviewers::run(cli, command).await?,
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

/// An application's retention as the commands print it: days, or `null` for ever.
fn retention_days(settings: &handoff_domain::application::ApplicationSettings) -> Option<u16> {
    settings.retention.map(|days| days.days())
}

/// The operator acting for `application`.
fn operator(application: &uuid::Uuid) -> Caller {
    Caller::primary(ApplicationId::from_uuid(*application), "operator")
}

async fn applications(cli: &Cli, command: &ApplicationsCommand) -> Result<(), CommandError> {
    let store = store(cli).await?;
    let applications = services(&store, "", no_tokens()).applications;
    match command {
        ApplicationsCommand::Erase { application } => {
            let id = ApplicationId::from_uuid(*application);
            let Some(sessions) = store.erase_application(id).await? else {
                return Err(CommandError::Refused(format!("no application {application}")));
            };
            println!("{}", json!({"application_id": id.to_string(), "erased_sessions": sessions}));
        }
        ApplicationsCommand::Create { name } => {
            let (application, key) = applications.create_application(name).await?;
            println!(
                "{}",
                json!({"application_id": application.id.to_string(), "name": application.name, "api_key": key.reveal()})
            );
        }
        ApplicationsCommand::List => {
            for application in applications.list_applications().await? {
                let settings = applications.settings(application.id).await?;
                println!(
                    "{}",
                    json!({"application_id": application.id.to_string(), "name": application.name, "created_at": handoff_http::decision::timestamp(application.created_at), "require_consent": settings.require_consent, "console_api_keys": settings.console_api_keys, "retention_days": retention_days(&settings)})
                );
            }
        }
        ApplicationsCommand::Update {
            application,
            require_consent,
            console_api_keys,
            retention_days: retention,
        } => {
            let id = ApplicationId::from_uuid(*application);
            let mut settings = applications.settings(id).await?;
            if let Some(require) = require_consent {
                settings.require_consent = *require;
            }
            if let Some(crate::cli::Retention(days)) = retention {
                settings.retention = *days;
            }
            if let Some(allow) = console_api_keys {
                settings.console_api_keys = *allow;
            }
            applications.update_settings(id, settings).await?;
            println!(
                "{}",
                json!({"application_id": id.to_string(), "require_consent": settings.require_consent, "console_api_keys": settings.console_api_keys, "retention_days": retention_days(&settings)})
            );
        }
    }
    Ok(())
}

async fn api_keys(cli: &Cli, command: &ApiKeysCommand) -> Result<(), CommandError> {
    let applications = services(&store(cli).await?, "", no_tokens()).applications;
    match command {
        ApiKeysCommand::Create { application, name, scopes, workflows, addresses, expires } => {
            let id = ApplicationId::from_uuid(*application);
            let grant = Grant {
                scopes: (!scopes.is_empty()).then(|| scopes.clone()),
                workflows: (!workflows.is_empty())
                    .then(|| workflows.iter().copied().map(WorkflowId::from_uuid).collect()),
                addresses: addresses.clone(),
                expires_at: expires.map(|at| at.with_timezone(&chrono::Utc)),
            };
            let new = NewKey { name: name.clone(), grant };
            let key = applications.create_named_key(id, new).await?;
            println!(
                "{}",
                json!({"application_id": id.to_string(), "prefix": key.prefix(), "api_key": key.reveal()})
            );
        }
        ApiKeysCommand::List { application } => {
            let id = ApplicationId::from_uuid(*application);
            for key in applications.list_api_keys(id).await? {
                println!("{}", key_line(&key));
            }
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

/// A key as `api-keys list` prints it: `null` lists are no limit.
fn key_line(key: &ApiKeyInfo) -> serde_json::Value {
    fn texts<T: ToString>(items: &[T]) -> Vec<String> {
        items.iter().map(ToString::to_string).collect()
    }
    json!({
        "prefix": key.prefix,
        "name": key.name,
        "scopes": key.grant.scopes.as_deref().map(texts),
        "workflows": key.grant.workflows.as_deref().map(texts),
        "ips": texts(&key.grant.addresses),
        "expires_at": key.grant.expires_at.map(|at| at.to_rfc3339()),
        "created_at": key.created_at.to_rfc3339(),
        "revoked_at": key.revoked_at.map(|at| at.to_rfc3339()),
    })
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
