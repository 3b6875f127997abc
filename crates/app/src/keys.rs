//! Where share-token keys come from: `HANDOFF_TOKEN_SECRET` (and earlier secrets in
//! `HANDOFF_TOKEN_VERIFY_SECRETS`), or, when it is unset, the database, where the first start
//! generates a key that every later process loads. Database keys are sealed under the
//! key-encryption key (`HANDOFF_KEY_ENCRYPTION_KEY`, else the data directory's key file), so a
//! copy of the database alone cannot mint tokens.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use handoff_store::{NewSigningKey, Store};
use handoff_token::{JwtShareTokens, KeyEncryptionKey, Keyring, SigningKey, TokenAlgorithm};

use crate::config::SettingError;
use crate::{Config, StartError};

/// How often servers reload database keys unless `HANDOFF_KEY_RELOAD_SECONDS` says otherwise. A
/// rotated key starts signing two intervals after it was added, so every server verifies it
/// before any token signed with it arrives.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// The id of the key generated on first start for `algorithm`: fixed, so that processes racing
/// on a fresh database store one.
fn first_kid(algorithm: TokenAlgorithm) -> &'static str {
    match algorithm {
        TokenAlgorithm::Hs256 => "k1",
        TokenAlgorithm::EdDsa => "e1",
    }
}

/// The key ring this configuration calls for.
pub async fn load_keyring(config: &Config, store: &Store) -> Result<Keyring, StartError> {
    if let Some(secret) = &config.token_secret {
        let mut keys = Vec::new();
        // Older secrets first: the configured secret, last, is the one that signs. Each secret
        // gives an HMAC key, and with EdDSA an Ed25519 key too, so that switching algorithms
        // keeps the tokens already issued valid.
        for (name, secret) in config
            .token_verify_secrets
            .iter()
            .map(|s| ("HANDOFF_TOKEN_VERIFY_SECRETS", s))
            .chain([("HANDOFF_TOKEN_SECRET", secret)])
        {
            let mut algorithms = vec![TokenAlgorithm::Hs256];
            if config.token_algorithm == TokenAlgorithm::EdDsa {
                algorithms.push(TokenAlgorithm::EdDsa);
            }
            for algorithm in algorithms {
                let key = SigningKey::from_secret(algorithm, secret.0.as_bytes().to_vec())
                    .map_err(|e| StartError::Config(format!("{name}: {e}")))?;
                keys.push(key);
            }
        }
        return Ok(Keyring::new(keys).signing_with(config.token_algorithm));
    }
    let kek = key_encryption_key(config)?;
    let algorithm = config.token_algorithm;
    let first = generate_key(first_kid(algorithm), algorithm, &kek, Utc::now())
        .map_err(|e| StartError::Config(e.0))?;
    store
        .ensure_signing_key(&first, Utc::now())
        .await
        .map_err(|e| StartError::Config(format!("cannot store the first signing key: {e}")))?;
    let keyring =
        database_keyring(store, &kek, algorithm).await.map_err(|e| StartError::Config(e.0))?;
    if keyring.is_empty() {
        return Err(StartError::Config(
            "every share-token signing key in the database is retired: add one with \
             `handoff signing-keys rotate`, or set HANDOFF_TOKEN_SECRET"
                .to_owned(),
        ));
    }
    Ok(keyring)
}

/// A new random key of `algorithm`, sealed, that signs from `activates_at` on.
pub fn generate_key(
    kid: &str, algorithm: TokenAlgorithm, kek: &KeyEncryptionKey, activates_at: DateTime<Utc>,
) -> Result<NewSigningKey, SettingError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("random source failed: {e}"))?;
    let key =
        SigningKey::from_bytes(kid, algorithm, bytes.to_vec(), None).map_err(|e| e.to_string())?;
    let sealed_secret = kek.seal(kid, algorithm, &key.to_bytes()).map_err(|e| e.to_string())?;
    Ok(NewSigningKey {
        kid: kid.to_owned(),
        algorithm: algorithm.as_str().to_owned(),
        sealed_secret,
        sealed_with: kek.id().to_owned(),
        activates_at,
    })
}

/// The key-encryption key of this configuration: the one given, else the key file's (created
/// with a random key on first use, readable by its owner only).
pub fn key_encryption_key(config: &Config) -> Result<KeyEncryptionKey, StartError> {
    let secret = match (&config.key_encryption_key, &config.key_file) {
        (Some(secret), _) => secret.0.as_bytes().to_vec(),
        (None, Some(path)) => read_or_create_key_file(path).map_err(|e| {
            StartError::Config(format!(
                "the key-encryption key file {}: {e}; or set HANDOFF_KEY_ENCRYPTION_KEY",
                path.display()
            ))
        })?,
        (None, None) => {
            return Err(StartError::Config(
                "share-token keys kept in the database need a key-encryption key: set \
                 HANDOFF_KEY_ENCRYPTION_KEY (at least 32 bytes), or set HANDOFF_TOKEN_SECRET"
                    .to_owned(),
            ));
        }
    };
    KeyEncryptionKey::from_secret(&secret)
        .map_err(|e| StartError::Config(format!("HANDOFF_KEY_ENCRYPTION_KEY: {e}")))
}

fn read_or_create_key_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => return Ok(trim_line_end(bytes)),
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        Err(_) => {}
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        handoff_store::create_private_dir(parent)?;
    }
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{hex}\n").as_bytes())?;
            file.sync_all()?;
            Ok(hex.into_bytes())
        }
        // Another process created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map(trim_line_end)
        }
        Err(error) => Err(error),
    }
}

fn trim_line_end(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    bytes
}

/// The unretired database keys, opened with `kek`, in a ring that signs with `algorithm`. Keys
/// an earlier version stored in clear are sealed on the way.
pub async fn database_keyring(
    store: &Store, kek: &KeyEncryptionKey, algorithm: TokenAlgorithm,
) -> Result<Keyring, SettingError> {
    let stored =
        store.signing_keys(false).await.map_err(|e| format!("cannot load signing keys: {e}"))?;
    let mut keys = Vec::with_capacity(stored.len());
    for key in stored {
        let key_algorithm = TokenAlgorithm::parse(&key.algorithm)
            .map_err(|e| format!("signing key {}: {e}", key.kid))?;
        let bytes = match &key.sealed_with {
            None => {
                let sealed =
                    kek.seal(&key.kid, key_algorithm, &key.secret).map_err(|e| e.to_string())?;
                store
                    .seal_signing_key(&key.kid, sealed, kek.id(), None)
                    .await
                    .map_err(|e| format!("cannot seal signing key {}: {e}", key.kid))?;
                tracing::info!(kid = %key.kid, "sealed a signing key stored in clear");
                key.secret
            }
            Some(sealed_with) if sealed_with != kek.id() => {
                return Err(SettingError(format!(
                    "signing key {} is sealed with key-encryption key {sealed_with}, and this \
                     process has {}: give every server and command the same \
                     HANDOFF_KEY_ENCRYPTION_KEY",
                    key.kid,
                    kek.id()
                )));
            }
            Some(_) => kek
                .open(&key.kid, key_algorithm, &key.secret)
                .map_err(|e| format!("signing key {}: {e}", key.kid))?,
        };
        keys.push(
            SigningKey::from_bytes(key.kid, key_algorithm, bytes, Some(key.activates_at))
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(Keyring::new(keys).signing_with(algorithm))
}

/// Reloads the database keys every `interval`, so that rotations and retirements reach
/// running servers.
pub(crate) fn reload_periodically(
    store: Store, tokens: Arc<JwtShareTokens>, kek: KeyEncryptionKey, algorithm: TokenAlgorithm,
    interval: Duration,
) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(interval);
        interval.tick().await;
        loop {
            interval.tick().await;
            match database_keyring(&store, &kek, algorithm).await {
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
