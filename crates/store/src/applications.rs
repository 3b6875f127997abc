//! Applications and API keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::ports::ApplicationRepository;
use handoff_domain::{ApiKeyHash, Application, ApplicationId, NewApiKey, RepoError};
use sea_orm::Value;
use uuid::Uuid;

use crate::Store;
use crate::rows::get;
use crate::sql::{begin_write, commit, execute, query_all, query_one};

const INSERT_KEY: &str = "INSERT INTO api_keys (id, application_id, prefix, key_hash, created_at) \
                          VALUES (?, ?, ?, ?, ?)";

fn key_values(key: &NewApiKey, at: DateTime<Utc>) -> Vec<Value> {
    vec![
        Uuid::new_v4().into(),
        key.application_id.as_uuid().into(),
        key.prefix.clone().into(),
        key.hash.0.to_vec().into(),
        at.into(),
    ]
}

#[async_trait]
impl ApplicationRepository for Store {
    async fn create_application(
        &self,
        application: &Application,
        key: &NewApiKey,
    ) -> Result<(), RepoError> {
        let _turn = self.write_turn().await;
        let txn = begin_write(&self.db).await?;
        execute(
            &txn,
            "INSERT INTO applications (id, name, last_session_number, created_at) VALUES (?, ?, 0, ?)",
            vec![
                application.id.as_uuid().into(),
                application.name.clone().into(),
                application.created_at.into(),
            ],
        )
        .await?;
        execute(&txn, INSERT_KEY, key_values(key, application.created_at)).await?;
        commit(txn).await
    }

    async fn list_applications(&self) -> Result<Vec<Application>, RepoError> {
        let rows = query_all(
            &self.db,
            "SELECT id, name, created_at FROM applications ORDER BY created_at, id",
            vec![],
        )
        .await?;
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
        Ok(query_one(
            &self.db,
            "SELECT id FROM applications WHERE id = ?",
            vec![id.as_uuid().into()],
        )
        .await?
        .is_some())
    }

    async fn add_api_key(&self, key: &NewApiKey, at: DateTime<Utc>) -> Result<bool, RepoError> {
        if !self.application_exists(key.application_id).await? {
            return Ok(false);
        }
        execute(&self.db, INSERT_KEY, key_values(key, at)).await?;
        Ok(true)
    }

    async fn revoke_api_key(
        &self,
        application_id: ApplicationId,
        prefix: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let changed = execute(
            &self.db,
            "UPDATE api_keys SET revoked_at = ? \
             WHERE application_id = ? AND prefix = ? AND revoked_at IS NULL",
            vec![
                at.into(),
                application_id.as_uuid().into(),
                prefix.to_owned().into(),
            ],
        )
        .await?;
        Ok(changed == 1)
    }

    async fn find_api_key(
        &self,
        prefix: &str,
    ) -> Result<Option<(ApplicationId, ApiKeyHash)>, RepoError> {
        let Some(row) = query_one(
            &self.db,
            "SELECT application_id, key_hash FROM api_keys WHERE prefix = ? AND revoked_at IS NULL",
            vec![prefix.to_owned().into()],
        )
        .await?
        else {
            return Ok(None);
        };
        let hash: Vec<u8> = get(&row, "key_hash")?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| RepoError::Internal("stored key hash has the wrong length".into()))?;
        Ok(Some((
            ApplicationId::from_uuid(get(&row, "application_id")?),
            ApiKeyHash(hash),
        )))
    }
}
