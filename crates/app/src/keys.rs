//! Where share-token keys come from: `HANDOFF_TOKEN_SECRET` (and earlier secrets in
//! `HANDOFF_TOKEN_VERIFY_SECRETS`), or, when it is unset, the database, where the first start
//! generates a key that every later process loads.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use handoff_store::Store;
use handoff_token::{HmacShareTokens, Keyring, SigningKey};

use crate::{Config, StartError};

/// How often servers reload database keys. A rotated key starts signing two intervals after it
/// was added, so every server verifies it before any token signed with it arrives.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// The key ring this configuration calls for.
pub async fn load_keyring(config: &Config, store: &Store) -> Result<Keyring, StartError> {
    if let Some(secret) = &config.token_secret {
        let mut keys = Vec::new();
        // Older secrets first: the configured secret, last, is the one that signs.
        for (name, secret) in config
            .token_verify_secrets
            .iter()
            .map(|s| ("HANDOFF_TOKEN_VERIFY_SECRETS", s))
            .chain([("HANDOFF_TOKEN_SECRET", secret)])
        {
            let key = SigningKey::from_secret(secret.0.as_bytes().to_vec())
                .map_err(|e| StartError::Config(format!("{name}: {e}")))?;
            keys.push(key);
        }
        return Ok(Keyring::new(keys));
    }
    let mut candidate = [0u8; 32];
    getrandom::fill(&mut candidate)
        .map_err(|e| StartError::Config(format!("random source failed: {e}")))?;
    store
        .ensure_first_signing_key(&candidate, Utc::now())
        .await
        .map_err(|e| StartError::Config(format!("cannot store the first signing key: {e}")))?;
    let keyring = database_keyring(store)
        .await
        .map_err(|e| StartError::Config(format!("cannot load signing keys: {e}")))?;
    if keyring.is_empty() {
        return Err(StartError::Config(
            "every share-token signing key in the database is retired: add one with \
             `handoff signing-keys rotate`, or set HANDOFF_TOKEN_SECRET"
                .to_owned(),
        ));
    }
    Ok(keyring)
}

async fn database_keyring(store: &Store) -> Result<Keyring, String> {
    let stored = store.signing_keys(false).await.map_err(|e| e.to_string())?;
    let keys = stored
        .into_iter()
        .map(|key| {
            SigningKey::new(key.kid, key.secret, Some(key.activates_at)).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Keyring::new(keys))
}

/// Reloads the database keys every [`KEY_RELOAD_INTERVAL`], so that rotations and retirements
/// reach running servers.
pub(crate) fn reload_periodically(store: Store, tokens: Arc<HmacShareTokens>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(KEY_RELOAD_INTERVAL);
        interval.tick().await;
        loop {
            interval.tick().await;
            match database_keyring(&store).await {
                // An empty ring fails closed: shares answer 503, imports 401, until a key is
                // added again.
                Ok(keyring) => {
                    if keyring.is_empty() {
                        tracing::warn!(
                            "no signing key left in the database: shares answer 503 and imports 401 until one is added (handoff signing-keys rotate)"
                        );
                    }
                    tokens.replace(keyring)
                }
                Err(error) => tracing::warn!(%error, "could not reload signing keys"),
            }
        }
    });
}
