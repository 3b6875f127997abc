//! `handoff signing-keys`: the share-token signing keys kept in the database, listed, rotated
//! in (active once every server has loaded them), resealed under a new key-encryption key, and
//! retired once another key signs.

use chrono::{DateTime, Utc};
use handoff_domain::lists;
use handoff_store::Store;
use handoff_token::{KeyEncryptionKey, TokenAlgorithm};
use serde_json::json;

use super::store;
use crate::cli::{Cli, SigningKeysCommand};
use crate::error::CommandError;
use crate::{Config, database_keyring, generate_key, key_encryption_key};

pub(super) async fn run(cli: &Cli, command: &SigningKeysCommand) -> Result<(), CommandError> {
    let config = cli.base_config()?;
    let store = store(cli).await?;
    let now = Utc::now();
    let time = handoff_http::decision::timestamp;
    match command {
        SigningKeysCommand::List => {
            for key in store.signing_keys(true).await? {
                println!(
                    "{}",
                    json!({"kid": key.kid, "algorithm": key.algorithm, "sealed_with": key.sealed_with, "created_at": time(key.created_at), "activates_at": time(key.activates_at), "retired_at": key.retired_at.map(time)})
                );
            }
        }
        SigningKeysCommand::Rotate { algorithm } => {
            rotate(&config, &store, algorithm.as_deref(), now).await?;
        }
        SigningKeysCommand::Reseal => reseal(&config, &store).await?,
        SigningKeysCommand::Retire { kid } => retire(&store, kid, now).await?,
    }
    Ok(())
}

/// Adds a key of `algorithm` (the configured one when `None`) that signs once every server has
/// reloaded its keys: two reload intervals from `now`.
async fn rotate(
    config: &Config, store: &Store, algorithm: Option<&str>, now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let algorithm = match algorithm {
        Some(raw) => TokenAlgorithm::parse(raw)?,
        None => config.token_algorithm,
    };
    let kek = key_encryption_key(config)?;
    // The servers' key-encryption key must be this one, or they could not open the new key:
    // the stored keys must open with it.
    database_keyring(store, &kek, algorithm).await?;
    let kid = format!("k-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let delay = chrono::Duration::from_std(config.key_reload_interval * 2)
        .map_err(|e| CommandError::Setting(format!("HANDOFF_KEY_RELOAD_INTERVAL: {e}")))?;
    let activates_at = now + delay;
    let key = generate_key(&kid, algorithm, &kek, activates_at)?;
    store.add_signing_key(&key, now).await?;
    println!(
        "{}",
        json!({"kid": kid, "algorithm": algorithm.as_str(), "activates_at": handoff_http::decision::timestamp(activates_at)})
    );
    Ok(())
}

/// Seals again, under the current key-encryption key, every key sealed under the previous one
/// (`HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY`) or kept in clear.
async fn reseal(config: &Config, store: &Store) -> Result<(), CommandError> {
    let previous = std::env::var("HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            CommandError::Setting(
                "set HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY to the key-encryption key the keys are \
                 sealed with now"
                    .into(),
            )
        })?;
    let previous = KeyEncryptionKey::from_secret(previous.as_bytes())
        .map_err(|e| CommandError::Setting(format!("HANDOFF_PREVIOUS_KEY_ENCRYPTION_KEY: {e}")))?;
    let current = key_encryption_key(config)?;
    for key in store.signing_keys(true).await? {
        let algorithm = TokenAlgorithm::parse(&key.algorithm)?;
        let secret = match key.sealed_with.as_deref() {
            Some(id) if id == current.id() => continue,
            Some(id) if id == previous.id() => previous
                .open(&key.kid, algorithm, &key.secret)
                .map_err(|e| CommandError::Setting(format!("signing key {}: {e}", key.kid)))?,
            None => key.secret,
            Some(id) => {
                return Err(CommandError::Setting(format!(
                    "signing key {} is sealed with {id}, neither the previous key-encryption \
                     key ({}) nor the current one ({})",
                    key.kid,
                    previous.id(),
                    current.id()
                )));
            }
        };
        let sealed = current.seal(&key.kid, algorithm, &secret)?;
        store.seal_signing_key(&key.kid, sealed, current.id(), key.sealed_with.as_deref()).await?;
        println!("{}", json!({"kid": key.kid, "sealed_with": current.id()}));
    }
    // List entries' personal values: sealed again, and hashed again under the new key, so
    // that the blocklists keep matching.
    let mut entries = 0;
    for entry in store.entries_sealed_with(previous.id()).await? {
        let value = previous
            .open_for(&lists::seal_context(entry.id), &entry.sealed_value)
            .map_err(|e| CommandError::Setting(format!("list entry {}: {e}", entry.id)))?;
        let sealed = current.seal_for(&lists::seal_context(entry.id), &value)?;
        let match_key = current.fingerprint(&lists::hash_context(entry.entry_type), &value);
        if store.reseal_entry(entry.id, sealed, &match_key, current.id(), previous.id()).await? {
            entries += 1;
        }
    }
    if entries > 0 {
        println!("{}", json!({"list_entries": entries, "sealed_with": current.id()}));
    }
    // Reviewers' one-time-code secrets.
    let mut secrets = 0;
    for (id, sealed) in store.totp_secrets_sealed_with(previous.id()).await? {
        let context = handoff_domain::reviewer::totp_context(id);
        let secret = previous
            .open_for(&context, &sealed)
            .map_err(|e| CommandError::Setting(format!("reviewer {id}: {e}")))?;
        let sealed = current.seal_for(&context, &secret)?;
        if store.reseal_totp_secret(id, sealed, current.id(), previous.id()).await? {
            secrets += 1;
        }
    }
    if secrets > 0 {
        println!("{}", json!({"reviewer_totp_secrets": secrets, "sealed_with": current.id()}));
    }
    // Applications' keys, and the names' blind index hashed with the new key.
    let applications = store.reseal_application_keys(&previous, &current).await?;
    if applications > 0 {
        let names = store.reindex_names().await?;
        println!(
            "{}",
            json!({"application_keys": applications, "name_indexes": names, "sealed_with": current.id()})
        );
    }
    Ok(())
}

/// Retires `kid`, unless it is the last key that signs now.
async fn retire(store: &Store, kid: &str, now: DateTime<Utc>) -> Result<(), CommandError> {
    let active = store.signing_keys(false).await?;
    // Only a key that signs now can take over: a key rotated in a moment ago does not sign
    // until it activates (every server has loaded it).
    let others_signing =
        active.iter().filter(|key| key.kid != kid && key.activates_at <= now).count();
    if active.iter().any(|key| key.kid == kid) && others_signing == 0 {
        let next = active.iter().filter(|key| key.kid != kid).map(|key| key.activates_at).min();
        return Err(CommandError::Refused(match next {
            Some(at) => format!(
                "{kid} is the last signing key active now: the next one signs from {}; retire \
                 {kid} after that",
                handoff_http::decision::timestamp(at)
            ),
            None => format!(
                "{kid} is the last active signing key: add one first with `handoff \
                 signing-keys rotate`, then retire {kid} once it signs"
            ),
        }));
    }
    if !store.retire_signing_key(kid, now).await? {
        return Err(CommandError::Refused(format!("no active signing key {kid}")));
    }
    println!("{}", json!({"kid": kid, "retired": true}));
    Ok(())
}
