//! Share tokens: the record of each issued token and its revocation. The import itself is in
//! [`crate::import`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::idempotency::{IdempotentOperation, share_resource};
use handoff_domain::ports::ShareRepository;
use handoff_domain::{
    ApplicationId, ImportAttempt, ImportContext, ImportOutcome, IssuedShareToken, LedgerEntry,
    LogEntry, RepoError, SessionId, SessionKind, ShareClaims, StoredSession,
};
use sea_orm::QueryResult;
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict, Order, Query};
use uuid::Uuid;

use crate::Store;
use crate::rows::{self, get, kind};
use crate::schema::ShareTokens;
use crate::sessions::{insert_log, select_session};
use crate::sql::{commit, fetch_all, fetch_one, run};

/// The ledger's row of a token issued (or listed) with `claims` under `jti`.
fn insert_issued(
    jti: &str, c: &ShareClaims, clone_data_key: Option<Vec<u8>>,
) -> Result<InsertStatement, RepoError> {
    Ok(Query::insert()
        .into_table(ShareTokens::Table)
        .columns(ISSUED.into_iter().chain([ShareTokens::CloneDataKey]))
        .values([
            jti.into(),
            c.session_id.as_uuid().into(),
            c.session_kind.as_str().into(),
            c.from_application_id.as_uuid().into(),
            c.for_application_id.as_uuid().into(),
            c.issued_at.into(),
            c.expires_at.into(),
            rows::share_blocks_text(c.blocks.as_deref()).into(),
            c.consent.as_ref().map(|consent| consent.to_json().to_string()).into(),
            clone_data_key.into(),
        ])
        .map_err(|e| RepoError::Internal(e.to_string().into()))?
        .to_owned())
}

impl Store {
    /// The operator's block of a token by its `jti`: a listed token is revoked; one never
    /// seen is recorded revoked, with no claims of its own, so that it can never be imported
    /// (an unlisted token a deployment would otherwise accept). Whether a row was listed.
    pub async fn block_share_token(&self, jti: &str, at: DateTime<Utc>) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let revoke = Query::update()
            .table(ShareTokens::Table)
            .value(ShareTokens::RevokedAt, at)
            .and_where(Expr::col(ShareTokens::Jti).eq(jti))
            .and_where(Expr::col(ShareTokens::RevokedAt).is_null())
            .to_owned();
        if run(&self.db, &revoke).await? == 1 {
            return Ok(true);
        }
        let nobody = uuid::Uuid::nil();
        let insert = Query::insert()
            .into_table(ShareTokens::Table)
            .columns(ISSUED.into_iter().chain([ShareTokens::RevokedAt]))
            .values([
                jti.into(),
                nobody.into(),
                SessionKind::User.as_str().into(),
                nobody.into(),
                nobody.into(),
                at.into(),
                at.into(),
                Option::<String>::None.into(),
                Option::<String>::None.into(),
                at.into(),
            ])
            .map_err(|e| RepoError::Internal(e.to_string().into()))?
            .on_conflict(OnConflict::column(ShareTokens::Jti).do_nothing().to_owned())
            .to_owned();
        run(&self.db, &insert).await?;
        Ok(false)
    }
}

/// What a token says when it is issued, as its row records it.
const ISSUED: [ShareTokens; 9] = [
    ShareTokens::Jti,
    ShareTokens::SessionId,
    ShareTokens::SessionKind,
    ShareTokens::FromApplicationId,
    ShareTokens::ForApplicationId,
    ShareTokens::IssuedAt,
    ShareTokens::ExpiresAt,
    ShareTokens::Blocks,
    ShareTokens::Consent,
];

#[async_trait]
impl ShareRepository for Store {
    async fn find_source(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<StoredSession>, RepoError> {
        // By key alone, then the application (see `find_session`).
        let Some(row) = fetch_one(&self.db, &select_session(id)).await? else {
            return Ok(None);
        };
        if get::<Uuid>(&row, "application_id")? != application_id.as_uuid() {
            return Ok(None);
        }
        self.open_session(&row).await
    }

    async fn record_share_token(&self, token: &IssuedShareToken) -> Result<(), RepoError> {
        let c = &token.claims;
        // The ledger's row and the source's `shared` event together, or neither.
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        // The clone's data key, made now, so that the import copies ciphertext unopened.
        let clone_data_key = self.clone_data_key(&txn, c.session_id, c.for_application_id).await?;
        let insert = insert_issued(&token.jti, c, clone_data_key)?;
        crate::idempotency::claim(
            &txn,
            c.from_application_id,
            token.idempotency.as_ref(),
            IdempotentOperation::Share,
            share_resource(c.session_id, &token.jti),
        )
        .await?;
        run(&txn, &insert).await?;
        insert_log(&txn, c.session_id, &token.log).await?;
        commit(txn).await
    }

    async fn list_unlisted_token(&self, claims: &ShareClaims) -> Result<(), RepoError> {
        let Some(jti) = &claims.jti else {
            return Ok(());
        };
        let _turn = self.write_turn().await;
        let clone_data_key =
            self.clone_data_key(&self.db, claims.session_id, claims.for_application_id).await?;
        let mut insert = insert_issued(jti, claims, clone_data_key)?;
        insert.on_conflict(OnConflict::column(ShareTokens::Jti).do_nothing().to_owned());
        run(&self.db, &insert).await.map(|_| ())
    }

    async fn import_context(&self, attempt: &ImportAttempt) -> Result<ImportContext, RepoError> {
        crate::import::read_context(self, &self.db, attempt, false)
            .await
            .map(|(context, ..)| context)
    }

    async fn share_tokens_of(
        &self, application_id: ApplicationId, session_id: SessionId,
    ) -> Result<Vec<LedgerEntry>, RepoError> {
        let select = Query::select()
            .columns(ISSUED)
            .columns([ShareTokens::RevokedAt, ShareTokens::RedeemedAt])
            .from(ShareTokens::Table)
            .and_where(Expr::col(ShareTokens::FromApplicationId).eq(application_id.as_uuid()))
            .and_where(Expr::col(ShareTokens::SessionId).eq(session_id.as_uuid()))
            .order_by(ShareTokens::IssuedAt, Order::Asc)
            .order_by(ShareTokens::Jti, Order::Asc)
            .to_owned();
        fetch_all(&self.db, &select).await?.iter().map(ledger_entry).collect()
    }

    async fn revoke_share_token(
        &self, application_id: ApplicationId, jti: &str, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let select = Query::select()
            .columns([ShareTokens::SessionId, ShareTokens::RevokedAt])
            .from(ShareTokens::Table)
            .and_where(Expr::col(ShareTokens::Jti).eq(jti))
            .and_where(Expr::col(ShareTokens::FromApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let Some(row) = fetch_one(&txn, &select).await? else {
            return Ok(false);
        };
        let revoked_at: Option<DateTime<Utc>> = get(&row, "revoked_at")?;
        if revoked_at.is_none() {
            // The first revocation only: the row and its `share_revoked` event together.
            let update = Query::update()
                .table(ShareTokens::Table)
                .value(ShareTokens::RevokedAt, log.created_at)
                .and_where(Expr::col(ShareTokens::Jti).eq(jti))
                .and_where(Expr::col(ShareTokens::RevokedAt).is_null())
                .to_owned();
            if run(&txn, &update).await? == 1 {
                insert_log(&txn, SessionId::from_uuid(get(&row, "session_id")?), log).await?;
            }
        }
        commit(txn).await?;
        Ok(true)
    }

    async fn import(&self, attempt: &ImportAttempt) -> Result<ImportOutcome, RepoError> {
        crate::import::import(self, attempt).await
    }
}

/// A `share_tokens` row as its issuer sees it.
fn ledger_entry(row: &QueryResult) -> Result<LedgerEntry, RepoError> {
    let jti: String = get(row, "jti")?;
    Ok(LedgerEntry {
        claims: ShareClaims {
            session_id: SessionId::from_uuid(get(row, "session_id")?),
            session_kind: kind(row, "session_kind")?,
            from_application_id: ApplicationId::from_uuid(get(row, "from_application_id")?),
            for_application_id: ApplicationId::from_uuid(get(row, "for_application_id")?),
            issued_at: get(row, "issued_at")?,
            expires_at: get(row, "expires_at")?,
            jti: Some(jti.clone()),
            blocks: rows::share_blocks(row, "blocks")?,
            consent: rows::share_consent(row, "consent")?,
        },
        jti,
        revoked_at: get(row, "revoked_at")?,
        redeemed_at: get(row, "redeemed_at")?,
    })
}
