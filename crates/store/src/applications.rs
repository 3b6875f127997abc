//! Applications and API keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::console::{ConsoleSession, ConsoleSessionHash};
use handoff_domain::ports::ApplicationRepository;
use handoff_domain::{ApiKeyHash, Application, ApplicationId, NewApiKey, RepoError};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, Order, Query};
use uuid::Uuid;

use crate::Store;
use crate::rows::get;
use crate::schema::{ApiKeys, Applications};
use crate::sql::{begin_write, commit, fetch_all, fetch_one, insert_row, run};

/// The row of a new key. Its id is the row's own, never shown.
fn insert_key(key: &NewApiKey, at: DateTime<Utc>) -> Result<InsertStatement, RepoError> {
    insert_row(
        ApiKeys::Table,
        [
            (ApiKeys::Id, Uuid::new_v4().into()),
            (ApiKeys::ApplicationId, key.application_id.as_uuid().into()),
            (ApiKeys::Prefix, key.prefix.clone().into()),
            (ApiKeys::KeyHash, key.hash.0.to_vec().into()),
            (ApiKeys::CreatedAt, at.into()),
        ],
    )
}

#[async_trait]
impl ApplicationRepository for Store {
    async fn create_application(
        &self, application: &Application, key: &NewApiKey,
    ) -> Result<(), RepoError> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        let insert = insert_row(
            Applications::Table,
            [
                (Applications::Id, application.id.as_uuid().into()),
                (Applications::Name, application.name.clone().into()),
                (Applications::LastSessionNumber, 0i64.into()),
                (Applications::CreatedAt, application.created_at.into()),
            ],
        )?;
        run(&txn, &insert).await?;
        run(&txn, &insert_key(key, application.created_at)?).await?;
        commit(txn).await
    }

    async fn list_applications(&self) -> Result<Vec<Application>, RepoError> {
        let select = Query::select()
            .columns([Applications::Id, Applications::Name, Applications::CreatedAt])
            .from(Applications::Table)
            .order_by(Applications::CreatedAt, Order::Asc)
            .order_by(Applications::Id, Order::Asc)
            .to_owned();
        let rows = fetch_all(&self.db, &select).await?;
        rows.iter()
            .map(|row| {
                Ok(Application {
                    id: ApplicationId::from_uuid(get(row, "id")?),
                    name: get(row, "name")?,
                    created_at: get(row, "created_at")?,
                })
            })
            .collect()
    }

    async fn application_exists(&self, id: ApplicationId) -> Result<bool, RepoError> {
        let select = Query::select()
            .column(Applications::Id)
            .from(Applications::Table)
            .and_where(Expr::col(Applications::Id).eq(id.as_uuid()))
            .to_owned();
        Ok(fetch_one(&self.db, &select).await?.is_some())
    }

    async fn add_api_key(&self, key: &NewApiKey, at: DateTime<Utc>) -> Result<bool, RepoError> {
        if !self.application_exists(key.application_id).await? {
            return Ok(false);
        }
        run(&self.db, &insert_key(key, at)?).await?;
        Ok(true)
    }

    async fn revoke_api_key(
        &self, application_id: ApplicationId, prefix: &str, at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(ApiKeys::Table)
            .value(ApiKeys::RevokedAt, at)
            .and_where(Expr::col(ApiKeys::ApplicationId).eq(application_id.as_uuid()))
            .and_where(Expr::col(ApiKeys::Prefix).eq(prefix))
            .and_where(Expr::col(ApiKeys::RevokedAt).is_null())
            .to_owned();
        let changed = run(&self.db, &update).await?;
        Ok(changed == 1)
    }

    async fn find_api_key(
        &self, prefix: &str,
    ) -> Result<Option<(ApplicationId, ApiKeyHash)>, RepoError> {
        let select = Query::select()
            .columns([ApiKeys::ApplicationId, ApiKeys::KeyHash])
            .from(ApiKeys::Table)
            .and_where(Expr::col(ApiKeys::Prefix).eq(prefix))
            .and_where(Expr::col(ApiKeys::RevokedAt).is_null())
            .to_owned();
        let Some(row) = fetch_one(&self.db, &select).await? else {
            return Ok(None);
        };
        let hash: Vec<u8> = get(&row, "key_hash")?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| RepoError::Internal("stored key hash has the wrong length".into()))?;
        Ok(Some((ApplicationId::from_uuid(get(&row, "application_id")?), ApiKeyHash(hash))))
    }

    async fn open_console_session(
        &self, id: ConsoleSessionHash, session: &ConsoleSession, now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        crate::console_sessions::open(self, id, session, now, idle_since).await
    }

    async fn touch_console_session(
        &self, id: ConsoleSessionHash, now: DateTime<Utc>, idle_since: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, RepoError> {
        crate::console_sessions::touch(self, id, now, idle_since).await
    }

    async fn close_console_session(&self, id: ConsoleSessionHash) -> Result<(), RepoError> {
        crate::console_sessions::close(self, id).await
    }
}
