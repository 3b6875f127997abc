//! Webhooks in the server: destinations' secrets sealed under the deployment's key-encryption
//! key, and the delivery worker started with the server.

use std::sync::Arc;

use handoff_domain::RepoError;
use handoff_domain::ports::SecretSealer;
use handoff_domain::webhook::SealedSecret;
use handoff_store::Store;
use handoff_token::KeyEncryptionKey;

use crate::{Config, StartError};

/// Seals secrets with the key-encryption key.
pub struct KekSealer(pub KeyEncryptionKey);

impl SecretSealer for KekSealer {
    fn seal(&self, context: &str, secret: &[u8]) -> Result<SealedSecret, RepoError> {
        Ok(SealedSecret {
            bytes: self
                .0
                .seal_for(context, secret)
                .map_err(|e| RepoError::Internal(Box::new(e)))?,
            sealed_with: self.0.id().to_owned(),
        })
    }

    fn open(&self, context: &str, sealed: &SealedSecret) -> Result<Vec<u8>, RepoError> {
        if sealed.sealed_with != self.0.id() {
            return Err(RepoError::Internal(
                format!("a secret sealed with {} is not this server's to open", sealed.sealed_with)
                    .into(),
            ));
        }
        self.0.open_for(context, &sealed.bytes).map_err(|e| RepoError::Internal(Box::new(e)))
    }

    fn fingerprint(&self, context: &str, value: &str) -> Result<String, RepoError> {
        Ok(self.0.fingerprint(context, value.as_bytes()))
    }
}

/// The sealer of processes that keep no secrets (operator commands).
pub struct NoSealer;

impl SecretSealer for NoSealer {
    fn seal(&self, _: &str, _: &[u8]) -> Result<SealedSecret, RepoError> {
        Err(RepoError::Internal(
            "this process has no key-encryption key to seal secrets with".into(),
        ))
    }

    fn open(&self, _: &str, _: &SealedSecret) -> Result<Vec<u8>, RepoError> {
        Err(RepoError::Internal(
            "this process has no key-encryption key to open secrets with".into(),
        ))
    }

    fn fingerprint(&self, _: &str, _: &str) -> Result<String, RepoError> {
        Err(RepoError::Internal("this process has no key-encryption key to hash with".into()))
    }
}

/// The key that seals webhook secrets: the key-encryption key, or, when the operator gave
/// only `HANDOFF_TOKEN_SECRET`, a key derived from it.
pub fn secrets_key(config: &Config) -> Result<KeyEncryptionKey, StartError> {
    match (crate::keys::key_encryption_key(config), &config.token_secret) {
        (Ok(kek), _) => Ok(kek),
        (Err(_), Some(secret)) => {
            let derived = [b"webhook secrets\0".as_slice(), secret.0.as_bytes()].concat();
            KeyEncryptionKey::from_secret(&derived)
                .map_err(|e| StartError::Config(format!("HANDOFF_TOKEN_SECRET: {e}")))
        }
        (Err(error), None) => Err(error),
    }
}

/// A running delivery worker and the means to stop it.
pub struct RunningWorker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    /// Stops it: the round under way may finish for a few seconds, then it is cut short (what
    /// it claimed comes due again after its lease).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Starts the delivery worker of this server.
pub fn start_worker(
    config: &Config, store: &Store, kek: KeyEncryptionKey,
) -> Result<RunningWorker, StartError> {
    let decision: handoff_webhooks::DecisionRenderer = Arc::new(|record| {
        serde_json::to_value(handoff_http::decision::V3Decision(record))
            .unwrap_or(serde_json::Value::Null)
    });
    let ports = handoff_webhooks::WorkerPorts {
        queue: Arc::new(store.clone()),
        sessions: Arc::new(store.clone()),
        clock: Arc::new(handoff_domain::ports::SystemClock),
    };
    let worker = handoff_webhooks::Worker::new(ports, kek, decision, config.webhooks.clone())
        .map_err(|e| StartError::Config(e.to_string()))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    Ok(RunningWorker { stop, task: worker.spawn(stopped) })
}
