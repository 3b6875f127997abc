//! Idempotency keys: the row a guarded write stores in its own transaction, and the reads and
//! updates of [`IdempotencyRepository`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use handoff_domain::idempotency::{
    IdempotencyClaim, IdempotencyKey, IdempotentOperation, RecordedAnswer, StoredIdempotency,
};
use handoff_domain::ports::IdempotencyRepository;
use handoff_domain::{ApplicationId, RepoError};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, Query};
use sea_orm::{ConnectionTrait, Value};

use crate::Store;
use crate::rows::get;
use crate::schema::IdempotencyKeys;
use crate::sql::{fetch_one, is_unique_violation, repo_error, run};

/// The columns a claim writes, in the order of [`claim_values`].
pub(crate) const CLAIM_COLUMNS: [IdempotencyKeys; 6] = [
    IdempotencyKeys::ApplicationId,
    IdempotencyKeys::IdempotencyKey,
    IdempotencyKeys::RequestHash,
    IdempotencyKeys::Operation,
    IdempotencyKeys::ResourceId,
    IdempotencyKeys::CreatedAt,
];

/// The values of a claim's row.
pub(crate) fn claim_values(
    application_id: ApplicationId, claim: &IdempotencyClaim, operation: IdempotentOperation,
    resource_id: String,
) -> [Value; 6] {
    [
        application_id.as_uuid().into(),
        claim.key.as_str().into(),
        claim.request_hash.clone().into(),
        operation.as_str().into(),
        resource_id.into(),
        claim.created_at.into(),
    ]
}

pub(crate) fn insert_claim(
    application_id: ApplicationId, claim: &IdempotencyClaim, operation: IdempotentOperation,
    resource_id: String,
) -> Result<InsertStatement, RepoError> {
    Ok(Query::insert()
        .into_table(IdempotencyKeys::Table)
        .columns(CLAIM_COLUMNS)
        .values(claim_values(application_id, claim, operation, resource_id).map(Expr::val))
        .map_err(crate::sql::insert_mismatch)?
        .to_owned())
}

/// Stores a guarded write's key in the write's transaction `txn`; a key the application holds
/// already (a concurrent retry took it) is `IdempotencyKeyTaken`, and the write must roll back.
pub(crate) async fn claim<C: ConnectionTrait>(
    txn: &C, application_id: ApplicationId, claim: Option<&IdempotencyClaim>,
    operation: IdempotentOperation, resource_id: String,
) -> Result<(), RepoError> {
    let Some(claim) = claim else {
        return Ok(());
    };
    txn.execute(&insert_claim(application_id, claim, operation, resource_id)?)
        .await
        .map(drop)
        .map_err(|error| {
            if is_idempotency_violation(&error) {
                RepoError::IdempotencyKeyTaken
            } else {
                repo_error(error)
            }
        })
}

/// Whether a unique violation is the idempotency key's (rather than, say, a clone's).
pub(crate) fn is_idempotency_violation(error: &sea_orm::DbErr) -> bool {
    is_unique_violation(error) && error.to_string().contains("idempotency_keys")
}

fn this_key(
    application_id: ApplicationId, key: &IdempotencyKey,
) -> [sea_orm::sea_query::SimpleExpr; 2] {
    [
        Expr::col(IdempotencyKeys::ApplicationId).eq(application_id.as_uuid()),
        Expr::col(IdempotencyKeys::IdempotencyKey).eq(key.as_str()),
    ]
}

#[async_trait]
impl IdempotencyRepository for Store {
    async fn find_idempotency(
        &self, application_id: ApplicationId, key: &IdempotencyKey,
    ) -> Result<Option<StoredIdempotency>, RepoError> {
        let mut select = Query::select()
            .columns([
                IdempotencyKeys::RequestHash,
                IdempotencyKeys::Operation,
                IdempotencyKeys::ResourceId,
                IdempotencyKeys::CreatedAt,
                IdempotencyKeys::StatusCode,
                IdempotencyKeys::ResponseBody,
            ])
            .from(IdempotencyKeys::Table)
            .to_owned();
        for condition in this_key(application_id, key) {
            select.and_where(condition);
        }
        let Some(row) = fetch_one(&self.db, &select).await? else {
            return Ok(None);
        };
        let operation: String = get(&row, "operation")?;
        let status: Option<i32> = get(&row, "status_code")?;
        let body = match get::<Option<String>>(&row, "response_body")? {
            Some(body) => Some(
                self.open_for_application(
                    &self.db,
                    application_id.as_uuid(),
                    "response_body",
                    body,
                )
                .await?,
            ),
            None => None,
        };
        Ok(Some(StoredIdempotency {
            application_id,
            request_hash: get(&row, "request_hash")?,
            operation: IdempotentOperation::parse(&operation).ok_or_else(|| {
                RepoError::Internal(format!("unknown idempotent operation {operation:?}").into())
            })?,
            resource_id: get(&row, "resource_id")?,
            created_at: get(&row, "created_at")?,
            answer: match (status, body) {
                (Some(status), Some(body)) => {
                    Some(RecordedAnswer { status: u16::try_from(status).unwrap_or_default(), body })
                }
                _ => None,
            },
        }))
    }

    async fn record_answer(
        &self, application_id: ApplicationId, key: &IdempotencyKey, answer: &RecordedAnswer,
    ) -> Result<(), RepoError> {
        // Sealed: a recorded answer may hold a decision.
        let body = self
            .seal_for_application(&self.db, application_id.as_uuid(), "response_body", &answer.body)
            .await?;
        let mut update = Query::update()
            .table(IdempotencyKeys::Table)
            .value(IdempotencyKeys::StatusCode, i32::from(answer.status))
            .value(IdempotencyKeys::ResponseBody, body)
            .and_where(Expr::col(IdempotencyKeys::StatusCode).is_null())
            .to_owned();
        for condition in this_key(application_id, key) {
            update.and_where(condition);
        }
        let _turn = self.write_turn().await;
        run(&self.db, &update).await.map(drop)
    }

    async fn forget_idempotency(
        &self, application_id: Option<ApplicationId>, key: Option<&IdempotencyKey>,
        before: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let mut delete = Query::delete()
            .from_table(IdempotencyKeys::Table)
            .and_where(Expr::col(IdempotencyKeys::CreatedAt).lt(before))
            .to_owned();
        if let Some(application_id) = application_id {
            delete
                .and_where(Expr::col(IdempotencyKeys::ApplicationId).eq(application_id.as_uuid()));
        }
        if let Some(key) = key {
            delete.and_where(Expr::col(IdempotencyKeys::IdempotencyKey).eq(key.as_str()));
        }
        let _turn = self.write_turn().await;
        run(&self.db, &delete).await
    }
}
