//! The share-token keys kept in the database, used when no secret is configured: every server
//! process on one database loads the same keys.

use std::fmt;

use chrono::{DateTime, Utc};
use handoff_domain::RepoError;

use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict, Order, Query};

use crate::Store;
use crate::rows::get;
use crate::schema::SigningKeys;
use crate::sql::{fetch_all, insert_row, run};

/// A key to store, its secret already sealed.
#[derive(Clone)]
pub struct NewSigningKey {
    /// The key id.
    pub kid: String,
    /// `HS256` or `EdDSA`.
    pub algorithm: String,
    /// The secret (HMAC secret or Ed25519 seed), sealed.
    pub sealed_secret: Vec<u8>,
    /// The id of the key-encryption key that sealed it.
    pub sealed_with: String,
    /// From when it may sign.
    pub activates_at: DateTime<Utc>,
}

/// The row of a new key.
fn insert_key(key: &NewSigningKey, now: DateTime<Utc>) -> Result<InsertStatement, RepoError> {
    insert_row(
        SigningKeys::Table,
        [
            (SigningKeys::Kid, key.kid.as_str().into()),
            (SigningKeys::Secret, key.sealed_secret.clone().into()),
            (SigningKeys::CreatedAt, now.into()),
            (SigningKeys::ActivatesAt, key.activates_at.into()),
            (SigningKeys::Algorithm, key.algorithm.as_str().into()),
            (SigningKeys::SealedWith, key.sealed_with.as_str().into()),
        ],
    )
}

/// A stored key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct StoredSigningKey {
    /// The key id.
    pub kid: String,
    /// `HS256` or `EdDSA`.
    pub algorithm: String,
    /// The secret as stored: sealed under `sealed_with`, or in clear when that is `None`.
    pub secret: Vec<u8>,
    /// The id of the key-encryption key that sealed the secret.
    pub sealed_with: Option<String>,
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
            .field("algorithm", &self.algorithm)
            .field("sealed_with", &self.sealed_with)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores `key` unless a key with its id exists. Processes racing on a fresh database
    /// agree when they use a fixed id: exactly one insert wins.
    pub async fn ensure_signing_key(
        &self, key: &NewSigningKey, now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let insert = insert_key(key, now)?
            .on_conflict(OnConflict::column(SigningKeys::Kid).do_nothing().to_owned())
            .to_owned();
        run(&self.db, &insert).await.map(drop)
    }

    /// Adds a key.
    pub async fn add_signing_key(
        &self, key: &NewSigningKey, now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        run(&self.db, &insert_key(key, now)?).await.map(drop)
    }

    /// Replaces a key's secret with `sealed_secret`, sealed under the key-encryption key
    /// `sealed_with`: a key stored in clear (`previously: None`; `false` when another process
    /// sealed it first), or one sealed under the KEK `previously` (moving keys to a new KEK).
    pub async fn seal_signing_key(
        &self, kid: &str, sealed_secret: Vec<u8>, sealed_with: &str, previously: Option<&str>,
    ) -> Result<bool, RepoError> {
        let was = match previously {
            None => Expr::col(SigningKeys::SealedWith).is_null(),
            Some(id) => Expr::col(SigningKeys::SealedWith).eq(id),
        };
        let update = Query::update()
            .table(SigningKeys::Table)
            .value(SigningKeys::Secret, sealed_secret)
            .value(SigningKeys::SealedWith, sealed_with)
            .and_where(Expr::col(SigningKeys::Kid).eq(kid))
            .and_where(was)
            .to_owned();
        Ok(run(&self.db, &update).await? == 1)
    }

    /// Retires a key: servers drop it from their ring when they next load keys.
    pub async fn retire_signing_key(
        &self, kid: &str, now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(SigningKeys::Table)
            .value(SigningKeys::RetiredAt, now)
            .and_where(Expr::col(SigningKeys::Kid).eq(kid))
            .and_where(Expr::col(SigningKeys::RetiredAt).is_null())
            .to_owned();
        Ok(run(&self.db, &update).await? == 1)
    }

    /// Every key, oldest first; retired ones too when `include_retired`.
    pub async fn signing_keys(
        &self, include_retired: bool,
    ) -> Result<Vec<StoredSigningKey>, RepoError> {
        let mut select = Query::select()
            .columns([
                SigningKeys::Kid,
                SigningKeys::Algorithm,
                SigningKeys::Secret,
                SigningKeys::SealedWith,
                SigningKeys::CreatedAt,
                SigningKeys::ActivatesAt,
                SigningKeys::RetiredAt,
            ])
            .from(SigningKeys::Table)
            .order_by(SigningKeys::ActivatesAt, Order::Asc)
            .order_by(SigningKeys::CreatedAt, Order::Asc)
            .order_by(SigningKeys::Kid, Order::Asc)
            .to_owned();
        if !include_retired {
            select.and_where(Expr::col(SigningKeys::RetiredAt).is_null());
        }
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| {
                Ok(StoredSigningKey {
                    kid: get(row, "kid")?,
                    algorithm: get(row, "algorithm")?,
                    secret: get(row, "secret")?,
                    sealed_with: get(row, "sealed_with")?,
                    created_at: get(row, "created_at")?,
                    activates_at: get(row, "activates_at")?,
                    retired_at: get(row, "retired_at")?,
                })
            })
            .collect()
    }
}
