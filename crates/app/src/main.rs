//! The `handoff` binary: parses the command line and runs one command.

use std::process::ExitCode;

use std::sync::Arc;

use handoff::cli::{
    ApiKeysCommand, ApplicationsCommand, Cli, Command, SharesCommand, SigningKeysCommand,
    WebhooksCommand,
};
use handoff::{
    Application, database_keyring, generate_key, key_encryption_key, open_store, services,
};
use handoff_domain::{ApplicationId, Caller, LedgerEntry, SessionId, TokenState};
use handoff_token::{JwtShareTokens, Keyring, TokenAlgorithm};
use serde_json::json;

/// jemalloc, whose background threads hand freed memory back to the system within seconds
/// (`.cargo/config.toml` sets the decay): glibc's allocator kept the peak of a burst of large
/// requests resident for good.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The log filter when `HANDOFF_LOG` is unset: handoff's own lines at INFO; the migration
/// runner's progress and PostgreSQL's notices (`relation … already exists, skipping`) only when
/// they warn, since handoff says itself what it migrated.
const DEFAULT_LOG: &str = "info,sea_orm_migration=warn,sqlx::postgres::notice=warn";

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    // The demo makes its own temporary database: a database named on its command line would
    // be silently ignored, so it is refused (the environment's is ignored, said in --help).
    if matches!(cli.command, handoff::cli::Command::Demo { .. }) {
        let given =
            |name: &str| matches.value_source(name) == Some(clap::parser::ValueSource::CommandLine);
        if given("database_url") || given("data_dir") {
            eprintln!(
                "error: the demo runs on a fresh temporary SQLite file of its own; \
                 --database-url and --data-dir do not apply to it (use serve)"
            );
            return ExitCode::FAILURE;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HANDOFF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A service's refusal in one line, field errors included.
fn describe(error: &handoff_domain::services::Error) -> String {
    match error {
        handoff_domain::services::Error::Invalid(errors) => {
            format!("invalid request: {errors:?}")
        }
        other => other.to_string(),
    }
}

/// Operator commands sign no share tokens.
fn no_tokens() -> Arc<JwtShareTokens> {
    Arc::new(JwtShareTokens::new(Keyring::default()))
}

/// The database of an operator command, migrated; which one goes to stderr.
async fn operator_store(cli: &Cli) -> Result<handoff_store::Store, String> {
    let config = cli.base_config()?;
    eprintln!(
        "database: {}",
        handoff_store::describe_database(&config.database_url)
    );
    open_store(&config).await.map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Serve(args) => {
            let app = Application::build(cli.config(args)?)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(port = app.port(), "handoff is serving");
            app.run_until_signalled().await.map_err(|e| e.to_string())
        }
        Command::Demo { bind } => handoff::demo::run(bind).await,
        Command::Openapi => {
            println!("{}", handoff_http::openapi::document());
            Ok(())
        }
        Command::Migrate => {
            operator_store(&cli).await?;
            println!("{}", json!({"migrated": true}));
            Ok(())
        }
        Command::Applications(command) => {
            let applications = services(&operator_store(&cli).await?, "", no_tokens()).applications;
            match command {
                ApplicationsCommand::Create { name } => {
                    let (application, key) = applications
                        .create_application(name)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!(
                        "{}",
                        json!({"application_id": application.id.to_string(), "name": application.name, "api_key": key.reveal()})
                    );
                }
                ApplicationsCommand::List => {
                    for application in applications
                        .list_applications()
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        println!(
                            "{}",
                            json!({"application_id": application.id.to_string(), "name": application.name, "created_at": handoff_http::decision::timestamp(application.created_at)})
                        );
                    }
                }
            }
            Ok(())
        }
        Command::ApiKeys(command) => {
            let applications = services(&operator_store(&cli).await?, "", no_tokens()).applications;
            match command {
                ApiKeysCommand::Create { application } => {
                    let id = ApplicationId::from_uuid(*application);
                    let key = applications
                        .create_api_key(id)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!(
                        "{}",
                        json!({"application_id": id.to_string(), "prefix": &key.reveal()[3..15], "api_key": key.reveal()})
                    );
                }
                ApiKeysCommand::Revoke {
                    application,
                    prefix,
                } => {
                    let id = ApplicationId::from_uuid(*application);
                    applications
                        .revoke_api_key(id, prefix)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!(
                        "{}",
                        json!({"application_id": id.to_string(), "prefix": prefix, "revoked": true})
                    );
                }
            }
            Ok(())
        }
        Command::Shares(command) => {
            let store = operator_store(&cli).await?;
            if let SharesCommand::Block { jti } = command {
                let listed = store
                    .block_share_token(jti, chrono::Utc::now())
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "{}",
                    json!({"jti": jti, "blocked": true, "was_listed": listed})
                );
                return Ok(());
            }
            let share = services(&store, "", no_tokens()).share;
            let operator = |application: &uuid::Uuid| Caller {
                application_id: ApplicationId::from_uuid(*application),
                key_prefix: "operator".to_owned(),
            };
            let print = |entry: &(LedgerEntry, TokenState)| {
                serde_json::to_string(&handoff_http::wire::ShareLedgerEntry::from(entry))
                    .map(|line| println!("{line}"))
                    .map_err(|e| e.to_string())
            };
            match command {
                SharesCommand::List {
                    application,
                    session,
                } => {
                    let entries = share
                        .ledger(&operator(application), SessionId::from_uuid(*session))
                        .await
                        .map_err(|e| e.to_string())?;
                    for entry in &entries {
                        print(entry)?;
                    }
                }
                SharesCommand::Revoke {
                    application,
                    session,
                    jti,
                } => {
                    let entry = share
                        .revoke(&operator(application), SessionId::from_uuid(*session), jti)
                        .await
                        .map_err(|e| e.to_string())?;
                    print(&entry)?;
                }
                SharesCommand::Block { .. } => {}
            }
            Ok(())
        }
        Command::Webhooks(command) => {
            let config = cli.base_config()?;
            let store = operator_store(&cli).await?;
            let (settings, _) = handoff::config::webhook_settings_from_env()?;
            let sealer = handoff::webhooks::secrets_key(&config).map_err(|e| e.to_string())?;
            let webhooks = handoff::services_sealing(
                &store,
                "",
                no_tokens(),
                Arc::new(handoff::webhooks::KekSealer(sealer)),
            )
            .allowing_private_webhooks(settings.allow_private)
            .webhooks;
            let operator = |application: &uuid::Uuid| Caller {
                application_id: ApplicationId::from_uuid(*application),
                key_prefix: "operator".to_owned(),
            };
            let print = |value: serde_json::Value| println!("{value}");
            match command {
                WebhooksCommand::Create {
                    application,
                    url,
                    label,
                    events,
                } => {
                    let (destination, secret) = webhooks
                        .create(
                            &operator(application),
                            handoff_domain::services::NewDestination {
                                label: label.clone(),
                                url: Some(url.clone()),
                                subscribed_events: events.clone(),
                                ..Default::default()
                            },
                        )
                        .await
                        .map_err(|e| describe(&e))?;
                    print(json!(handoff_http::wire::WebhookDestination::new(
                        &destination,
                        Some(secret)
                    )));
                }
                WebhooksCommand::List { application } => {
                    for destination in webhooks
                        .list(&operator(application))
                        .await
                        .map_err(|e| describe(&e))?
                    {
                        print(json!(handoff_http::wire::WebhookDestination::new(
                            &destination,
                            None
                        )));
                    }
                }
                WebhooksCommand::Delete {
                    application,
                    destination,
                } => {
                    webhooks
                        .delete(&operator(application), *destination)
                        .await
                        .map_err(|e| describe(&e))?;
                    print(json!({"id": destination, "deleted": true}));
                }
                WebhooksCommand::Deliveries {
                    application,
                    destination,
                    limit,
                } => {
                    for delivery in webhooks
                        .deliveries(&operator(application), *destination, *limit, 0)
                        .await
                        .map_err(|e| describe(&e))?
                    {
                        print(json!(handoff_http::wire::WebhookDelivery::from(&delivery)));
                    }
                }
                WebhooksCommand::Resend {
                    application,
                    destination,
                    delivery,
                } => {
                    webhooks
                        .resend(&operator(application), *destination, *delivery)
                        .await
                        .map_err(|e| describe(&e))?;
                    print(json!({"delivery_id": delivery, "state": "pending"}));
                }
            }
            Ok(())
        }
        Command::SigningKeys(command) => {
            let config = cli.base_config()?;
            let store = operator_store(&cli).await?;
            let now = chrono::Utc::now();
            let time = handoff_http::decision::timestamp;
            match command {
                SigningKeysCommand::List => {
                    for key in store.signing_keys(true).await.map_err(|e| e.to_string())? {
                        println!(
                            "{}",
                            json!({"kid": key.kid, "algorithm": key.algorithm, "sealed_with": key.sealed_with, "created_at": time(key.created_at), "activates_at": time(key.activates_at), "retired_at": key.retired_at.map(time)})
                        );
                    }
                }
                SigningKeysCommand::Rotate { algorithm } => {
                    let algorithm = match algorithm {
                        Some(raw) => TokenAlgorithm::parse(raw).map_err(|e| e.to_string())?,
                        None => config.token_algorithm,
                    };
                    let kek = key_encryption_key(&config).map_err(|e| e.to_string())?;
                    // The servers' key-encryption key must be this one, or they could not open
                    // the new key: the stored keys must open with it.
                    database_keyring(&store, &kek, algorithm).await?;
                    let kid = format!("k-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                    let delay = chrono::Duration::from_std(config.key_reload_interval * 2)
                        .map_err(|e| e.to_string())?;
                    let activates_at = now + delay;
                    let key = generate_key(&kid, algorithm, &kek, activates_at)?;
                    store
                        .add_signing_key(&key, now)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!(
                        "{}",
                        json!({"kid": kid, "algorithm": algorithm.as_str(), "activates_at": time(activates_at)})
                    );
                }
                SigningKeysCommand::Reseal => {
                    let previous = std::env::var("HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY")
                        .ok()
                        .filter(|v| !v.is_empty())
                        .ok_or("set HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY to the key-encryption key the keys are sealed with now")?;
                    let previous =
                        handoff_token::KeyEncryptionKey::from_secret(previous.as_bytes())
                            .map_err(|e| format!("HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY: {e}"))?;
                    let current = key_encryption_key(&config).map_err(|e| e.to_string())?;
                    for key in store.signing_keys(true).await.map_err(|e| e.to_string())? {
                        let algorithm =
                            TokenAlgorithm::parse(&key.algorithm).map_err(|e| e.to_string())?;
                        let secret = match key.sealed_with.as_deref() {
                            Some(id) if id == current.id() => continue,
                            Some(id) if id == previous.id() => previous
                                .open(&key.kid, algorithm, &key.secret)
                                .map_err(|e| format!("signing key {}: {e}", key.kid))?,
                            None => key.secret,
                            Some(id) => {
                                return Err(format!(
                                    "signing key {} is sealed with {id}, neither the previous \
                                     key-encryption key ({}) nor the current one ({})",
                                    key.kid,
                                    previous.id(),
                                    current.id()
                                ));
                            }
                        };
                        let sealed = current
                            .seal(&key.kid, algorithm, &secret)
                            .map_err(|e| e.to_string())?;
                        store
                            .seal_signing_key(
                                &key.kid,
                                sealed,
                                current.id(),
                                key.sealed_with.as_deref(),
                            )
                            .await
                            .map_err(|e| e.to_string())?;
                        println!("{}", json!({"kid": key.kid, "sealed_with": current.id()}));
                    }
                }
                SigningKeysCommand::Retire { kid } => {
                    let active = store.signing_keys(false).await.map_err(|e| e.to_string())?;
                    // Only a key that signs now can take over: a key rotated in a moment ago
                    // does not sign until it activates (every server has loaded it).
                    let others_signing = active
                        .iter()
                        .filter(|key| key.kid != *kid && key.activates_at <= now)
                        .count();
                    if active.iter().any(|key| key.kid == *kid) && others_signing == 0 {
                        let next = active
                            .iter()
                            .filter(|key| key.kid != *kid)
                            .map(|key| key.activates_at)
                            .min();
                        return Err(match next {
                            Some(at) => format!(
                                "{kid} is the last signing key active now: the next one signs \
                                 from {}; retire {kid} after that",
                                handoff_http::decision::timestamp(at)
                            ),
                            None => format!(
                                "{kid} is the last active signing key: add one first with \
                                 `handoff signing-keys rotate`, then retire {kid} once it signs"
                            ),
                        });
                    }
                    if !store
                        .retire_signing_key(kid, now)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        return Err(format!("no active signing key {kid}"));
                    }
                    println!("{}", json!({"kid": kid, "retired": true}));
                }
            }
            Ok(())
        }
    }
}
