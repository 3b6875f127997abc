//! The share-token keys kept in the database, used when no secret is configured: every server
//! process on one database loads the same keys.

use std::fmt;

use chrono::{DateTime, Utc};
use handoff_domain::RepoError;

use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict, Order, Query};

use crate::Store;
use crate::rows::get;
use crate::schema::SigningKeys;
use crate::sql::{fetch_all, run};

/// The row of a new key.
fn insert_key(
    kid: &str,
    secret: &[u8],
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> InsertStatement {
    Query::insert()
        .into_table(SigningKeys::Table)
        .columns([
            SigningKeys::Kid,
            SigningKeys::Secret,
            SigningKeys::CreatedAt,
            SigningKeys::ActivatesAt,
        ])
        .values_panic([
            kid.into(),
            secret.to_vec().into(),
            now.into(),
            activates_at.into(),
        ])
        .to_owned()
}

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
        let insert = insert_key(FIRST_KID, secret, now, now)
            .on_conflict(OnConflict::column(SigningKeys::Kid).do_nothing().to_owned())
            .to_owned();
        run(&self.db, &insert).await.map(drop)
    }

    /// Adds a key that signs from `activates_at` on.
    pub async fn add_signing_key(
        &self,
        kid: &str,
        secret: &[u8],
        now: DateTime<Utc>,
        activates_at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        run(&self.db, &insert_key(kid, secret, now, activates_at))
            .await
            .map(drop)
    }

    /// Retires a key: servers drop it from their ring when they next load keys.
    pub async fn retire_signing_key(
        &self,
        kid: &str,
        now: DateTime<Utc>,
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
        &self,
        include_retired: bool,
    ) -> Result<Vec<StoredSigningKey>, RepoError> {
        let mut select = Query::select()
            .columns([
                SigningKeys::Kid,
                SigningKeys::Secret,
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
                    secret: get(row, "secret")?,
                    created_at: get(row, "created_at")?,
                    activates_at: get(row, "activates_at")?,
                    retired_at: get(row, "retired_at")?,
                })
            })
            .collect()
    }
}
