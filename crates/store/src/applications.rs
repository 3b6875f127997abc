//! Applications and API keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::ReviewerId;
use handoff_domain::console::{ConsoleSession, ConsoleSessionHash};
use handoff_domain::grant::parse_address_block;
use handoff_domain::ports::ApplicationRepository;
use handoff_domain::retention::RetentionDays;
use handoff_domain::reviewer::{Reviewer, StoredReviewer};
use handoff_domain::{
    ApiKeyHash, ApiKeyInfo, Application, ApplicationId, Grant, NewApiKey, RepoError, StoredApiKey,
    WorkflowId,
};
use sea_orm::QueryResult;
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, Order, Query, SelectStatement};
use uuid::Uuid;

use crate::Store;
use crate::api_key_cache::Kept;
use crate::rows::{corrupt, get};
use crate::schema::{ApiKeys, Applications};
use crate::sql::{commit, fetch_all, fetch_one, insert_row, run};

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
            (ApiKeys::Name, key.name.clone().into()),
            (ApiKeys::Scopes, key.grant.scopes.as_deref().map(joined).into()),
            (ApiKeys::WorkflowIds, key.grant.workflows.as_deref().map(joined).into()),
            (
                ApiKeys::Addresses,
                Some(joined(&key.grant.addresses)).filter(|a| !a.is_empty()).into(),
            ),
            (ApiKeys::ExpiresAt, key.grant.expires_at.into()),
        ],
    )
}

/// A list column: the items' texts, space-separated.
fn joined<T: ToString>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
}

/// The grant columns of a key, with `columns` before them.
fn select_key(columns: impl IntoIterator<Item = ApiKeys>) -> SelectStatement {
    Query::select()
        .columns(columns)
        .columns([ApiKeys::Scopes, ApiKeys::WorkflowIds, ApiKeys::Addresses, ApiKeys::ExpiresAt])
        .from(ApiKeys::Table)
        .to_owned()
}

/// The grant of a key's row ([`select_key`]).
fn grant(row: &QueryResult) -> Result<Grant, RepoError> {
    fn list<T>(
        row: &QueryResult, column: &str, parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<Vec<T>>, RepoError> {
        get::<Option<String>>(row, column)?
            .map(|text| {
                text.split_whitespace()
                    .map(|item| {
                        parse(item).ok_or_else(|| {
                            RepoError::Internal(
                                format!("a stored key's {column} is unreadable").into(),
                            )
                        })
                    })
                    .collect()
            })
            .transpose()
    }
    Ok(Grant {
        scopes: list(row, "scopes", |s| s.parse().ok())?,
        workflows: list(row, "workflow_ids", |w| {
            w.parse::<uuid::Uuid>().ok().map(WorkflowId::from_uuid)
        })?,
        addresses: list(row, "addresses", parse_address_block)?.unwrap_or_default(),
        expires_at: get(row, "expires_at")?,
    })
}

#[async_trait]
impl ApplicationRepository for Store {
    async fn create_application(
        &self, application: &Application, key: &NewApiKey,
    ) -> Result<(), RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let insert = insert_row(
            Applications::Table,
            [
                (Applications::Id, application.id.as_uuid().into()),
                (Applications::Name, application.name.clone().into()),
                (Applications::LastSessionNumber, 0i64.into()),
                (Applications::CreatedAt, application.created_at.into()),
                // A new application's console takes no API keys until the operator says so.
                (Applications::ConsoleApiKeys, false.into()),
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

    async fn application_names(
        &self, ids: &[ApplicationId],
    ) -> Result<Vec<(ApplicationId, String)>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let select = Query::select()
            .columns([Applications::Id, Applications::Name])
            .from(Applications::Table)
            .and_where(Expr::col(Applications::Id).is_in(ids.iter().map(ApplicationId::as_uuid)))
            .to_owned();
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| Ok((ApplicationId::from_uuid(get(row, "id")?), get(row, "name")?)))
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

    async fn application_settings(
        &self, id: ApplicationId,
    ) -> Result<Option<handoff_domain::application::ApplicationSettings>, RepoError> {
        let select = Query::select()
            .columns([
                Applications::RequireConsent,
                Applications::RetentionDays,
                Applications::ConsoleApiKeys,
            ])
            .from(Applications::Table)
            .and_where(Expr::col(Applications::Id).eq(id.as_uuid()))
            .to_owned();
        fetch_one(&self.db, &select)
            .await?
            .map(|row| {
                Ok(handoff_domain::application::ApplicationSettings {
                    require_consent: get(&row, "require_consent")?,
                    retention: retention(get(&row, "retention_days")?)?,
                    console_api_keys: get(&row, "console_api_keys")?,
                })
            })
            .transpose()
    }

    async fn update_application_settings(
        &self, id: ApplicationId, settings: &handoff_domain::application::ApplicationSettings,
    ) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(Applications::Table)
            .value(Applications::RequireConsent, settings.require_consent)
            .value(Applications::ConsoleApiKeys, settings.console_api_keys)
            .value(Applications::RetentionDays, settings.retention.map(|r| i32::from(r.days())))
            .and_where(Expr::col(Applications::Id).eq(id.as_uuid()))
            .to_owned();
        let _turn = self.write_turn().await;
        Ok(run(&self.db, &update).await? == 1)
    }

    async fn retention_policies(&self) -> Result<Vec<(ApplicationId, RetentionDays)>, RepoError> {
        let select = Query::select()
            .columns([Applications::Id, Applications::RetentionDays])
            .from(Applications::Table)
            .and_where(Expr::col(Applications::RetentionDays).is_not_null())
            .to_owned();
        let mut policies = Vec::new();
        for row in fetch_all(&self.db, &select).await? {
            if let Some(days) = retention(get(&row, "retention_days")?)? {
                policies.push((ApplicationId::from_uuid(get(&row, "id")?), days));
            }
        }
        Ok(policies)
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
        // Seen by this store's next lookup at once; by others' when the change is announced.
        self.api_keys.forget(prefix);
        Ok(changed == 1)
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, RepoError> {
        let asked = match self.api_keys.get(prefix) {
            Kept::Key(key) => return Ok(Some(key)),
            Kept::Ask(generation) => generation,
        };
        let select = select_key([ApiKeys::ApplicationId, ApiKeys::KeyHash])
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
        let key = StoredApiKey {
            application_id: ApplicationId::from_uuid(get(&row, "application_id")?),
            hash: ApiKeyHash(hash),
            grant: grant(&row)?,
        };
        self.api_keys.keep(prefix, &key, asked);
        Ok(Some(key))
    }

    async fn list_api_keys(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<ApiKeyInfo>, RepoError> {
        let select =
            select_key([ApiKeys::Prefix, ApiKeys::Name, ApiKeys::CreatedAt, ApiKeys::RevokedAt])
                .and_where(Expr::col(ApiKeys::ApplicationId).eq(application_id.as_uuid()))
                .order_by(ApiKeys::CreatedAt, Order::Asc)
                .order_by(ApiKeys::Prefix, Order::Asc)
                .to_owned();
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| {
                Ok(ApiKeyInfo {
                    prefix: get(row, "prefix")?,
                    name: get(row, "name")?,
                    grant: grant(row)?,
                    created_at: get(row, "created_at")?,
                    revoked_at: get(row, "revoked_at")?,
                })
            })
            .collect()
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

    async fn add_reviewer(&self, reviewer: &StoredReviewer) -> Result<bool, RepoError> {
        crate::reviewers::add(self, reviewer).await
    }

    async fn list_reviewers(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<Reviewer>, RepoError> {
        crate::reviewers::list(self, application_id).await
    }

    async fn find_reviewer_by_email(
        &self, email: &str,
    ) -> Result<Option<StoredReviewer>, RepoError> {
        crate::reviewers::find_by_email(self, email).await
    }

    async fn find_reviewer(&self, id: ReviewerId) -> Result<Option<Reviewer>, RepoError> {
        crate::reviewers::find(self, id).await
    }

    async fn record_sign_in_failures(
        &self, id: ReviewerId, failed: i32, locked_until: Option<DateTime<Utc>>,
    ) -> Result<(), RepoError> {
        crate::reviewers::record_failures(self, id, failed, locked_until).await
    }

    async fn set_reviewer_time_zone(
        &self, id: ReviewerId, time_zone: Option<&str>,
    ) -> Result<bool, RepoError> {
        crate::reviewers::set_time_zone(self, id, time_zone).await
    }

    async fn set_reviewer_password(&self, id: ReviewerId, hash: &str) -> Result<bool, RepoError> {
        crate::reviewers::set_password(self, id, hash).await
    }

    async fn remove_reviewer(
        &self, application_id: ApplicationId, email: &str,
    ) -> Result<bool, RepoError> {
        crate::reviewers::remove(self, application_id, email).await
    }
}

/// An application's stored `retention_days`.
fn retention(days: Option<i32>) -> Result<Option<RetentionDays>, RepoError> {
    days.map(|days| {
        u32::try_from(days)
            .ok()
            .and_then(RetentionDays::new)
            .ok_or_else(|| corrupt("retention_days", &days.to_string()))
    })
    .transpose()
}
