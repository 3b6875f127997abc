//! The share-token keys kept in the database, used when no secret is configured: every server
//! process on one database loads the same keys.

use std::fmt;

use chrono::{DateTime, Utc};
use handoff_domain::RepoError;

use crate::Store;
use crate::rows::get;
use crate::sql::{execute, query_all};

/// The id of the key generated on first start.
pub const FIRST_KID: &str = "k1";

/// A stored key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct StoredSigningKey {
    /// The key id.
    pub kid: String,
    /// The HMAC secret.
    pub secret: Vec<u8>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// From when it may sign.
    pub activates_at: DateTime<Utc>,
    /// When it was retired, if it was.
    pub retired_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores `secret` as the first key unless a first key exists. Processes racing on a fresh
    /// database agree: the fixed id lets exactly one insert win.
    pub async fn ensure_first_signing_key(
        &self,
        secret: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        execute(
            &self.db,
            "INSERT INTO signing_keys (kid, secret, created_at, activates_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (kid) DO NOTHING",
            vec![
                FIRST_KID.into(),
                secret.to_vec().into(),
                now.into(),
                now.into(),
            ],
        )
        .await
        .map(drop)
    }

    /// Adds a key that signs from `activates_at` on.
    pub async fn add_signing_key(
        &self,
        kid: &str,
        secret: &[u8],
        now: DateTime<Utc>,
        activates_at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        execute(
            &self.db,
            "INSERT INTO signing_keys (kid, secret, created_at, activates_at) VALUES (?, ?, ?, ?)",
            vec![
                kid.into(),
                secret.to_vec().into(),
                now.into(),
                activates_at.into(),
            ],
        )
        .await
        .map(drop)
    }

    /// Retires a key: servers drop it from their ring when they next load keys.
    pub async fn retire_signing_key(
        &self,
        kid: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        Ok(execute(
            &self.db,
            "UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL",
            vec![now.into(), kid.into()],
        )
        .await?
            == 1)
    }

    /// Every key, oldest first; retired ones too when `include_retired`.
    pub async fn signing_keys(
        &self,
        include_retired: bool,
    ) -> Result<Vec<StoredSigningKey>, RepoError> {
        let filter = if include_retired {
            ""
        } else {
            " WHERE retired_at IS NULL"
        };
        query_all(
            &self.db,
            &format!(
                "SELECT kid, secret, created_at, activates_at, retired_at FROM signing_keys{filter} \
                 ORDER BY activates_at, created_at, kid"
            ),
            vec![],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(StoredSigningKey {
                kid: get(row, "kid")?,
                secret: get(row, "secret")?,
                created_at: get(row, "created_at")?,
                activates_at: get(row, "activates_at")?,
                retired_at: get(row, "retired_at")?,
            })
        })
        .collect()
    }
}
