//! Share tokens: the record of each issued token and its revocation. The import itself is in
//! [`crate::import`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::ports::ShareRepository;
use handoff_domain::{
    ApplicationId, ImportAttempt, ImportContext, ImportOutcome, IssuedShareToken, RepoError,
    SessionId, StoredSession,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};

use crate::Store;
use crate::rows;
use crate::schema::ShareTokens;
use crate::sessions::select_session;
use crate::sql::{fetch_one, run};

#[async_trait]
impl ShareRepository for Store {
    async fn find_source(
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, RepoError> {
        // By key alone, then the application (see `find_session`).
        Ok(fetch_one(&self.db, &select_session(id))
            .await?
            .map(|row| rows::session(&row).map(|(session, _)| session))
            .transpose()?
            .filter(|session| session.application_id == application_id))
    }

    async fn record_share_token(&self, token: &IssuedShareToken) -> Result<(), RepoError> {
        let c = &token.claims;
        let insert = Query::insert()
            .into_table(ShareTokens::Table)
            .columns([
                ShareTokens::Jti,
                ShareTokens::SessionId,
                ShareTokens::SessionKind,
                ShareTokens::FromApplicationId,
                ShareTokens::ForApplicationId,
                ShareTokens::IssuedAt,
                ShareTokens::ExpiresAt,
            ])
            .values_panic([
                token.jti.clone().into(),
                c.session_id.as_uuid().into(),
                c.session_kind.as_str().into(),
                c.from_application_id.as_uuid().into(),
                c.for_application_id.as_uuid().into(),
                c.issued_at.into(),
                c.expires_at.into(),
            ])
            .to_owned();
        run(&self.db, &insert).await.map(drop)
    }

    async fn import_context(&self, attempt: &ImportAttempt) -> Result<ImportContext, RepoError> {
        crate::import::read_context(&self.db, attempt).await
    }

    async fn revoke_share_token(
        &self,
        application_id: ApplicationId,
        jti: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(ShareTokens::Table)
            .value(
                ShareTokens::RevokedAt,
                Func::coalesce([Expr::col(ShareTokens::RevokedAt), Expr::val(at)]),
            )
            .and_where(Expr::col(ShareTokens::Jti).eq(jti))
            .and_where(Expr::col(ShareTokens::FromApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        Ok(run(&self.db, &update).await? == 1)
    }

    async fn import(&self, attempt: &ImportAttempt) -> Result<ImportOutcome, RepoError> {
        crate::import::import(self, attempt).await
    }
}
