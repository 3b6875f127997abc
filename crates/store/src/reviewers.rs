//! Reviewers: people who sign in to an application's console. Removing one, or changing its
//! password, deletes its console sessions in the same transaction.

use chrono::{DateTime, Utc};
use handoff_domain::reviewer::{Reviewer, ReviewerRole, StoredReviewer};
use handoff_domain::webhook::SealedSecret;
use handoff_domain::{ApplicationId, RepoError, ReviewerId};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult};

use crate::Store;
use crate::rows::{corrupt, get};
use crate::schema::{Applications, ConsoleSessions, Reviewers};
use crate::sql::{commit, fetch_all, fetch_one, insert_row, is_unique_violation, repo_error, run};

/// A select of every column of `reviewers`.
fn select() -> SelectStatement {
    Query::select().columns(Reviewers::COLUMNS.iter().copied()).from(Reviewers::Table).to_owned()
}

fn reviewer(row: &QueryResult) -> Result<StoredReviewer, RepoError> {
    let role: String = get(row, "role")?;
    let secret: Option<Vec<u8>> = get(row, "totp_secret")?;
    let sealed_with: Option<String> = get(row, "totp_sealed_with")?;
    let totp_secret =
        secret.zip(sealed_with).map(|(bytes, sealed_with)| SealedSecret { bytes, sealed_with });
    Ok(StoredReviewer {
        reviewer: Reviewer {
            id: ReviewerId::from_uuid(get(row, "id")?),
            application_id: ApplicationId::from_uuid(get(row, "application_id")?),
            email: get(row, "email")?,
            role: ReviewerRole::parse(&role).ok_or_else(|| corrupt("role", &role))?,
            totp: totp_secret.is_some(),
            time_zone: get(row, "time_zone")?,
            created_at: get(row, "created_at")?,
        },
        password_hash: get(row, "password_hash")?,
        totp_secret,
        failed_sign_ins: get(row, "failed_sign_ins")?,
        locked_until: get(row, "locked_until")?,
    })
}

pub(crate) async fn add(store: &Store, stored: &StoredReviewer) -> Result<bool, RepoError> {
    let r = &stored.reviewer;
    let exists = Query::select()
        .column(Applications::Id)
        .from(Applications::Table)
        .and_where(Expr::col(Applications::Id).eq(r.application_id.as_uuid()))
        .to_owned();
    let insert = insert_row(
        Reviewers::Table,
        [
            (Reviewers::Id, r.id.as_uuid().into()),
            (Reviewers::ApplicationId, r.application_id.as_uuid().into()),
            (Reviewers::Email, r.email.clone().into()),
            (Reviewers::Role, r.role.as_str().into()),
            (Reviewers::PasswordHash, stored.password_hash.clone().into()),
            (Reviewers::TotpSecret, stored.totp_secret.as_ref().map(|s| s.bytes.clone()).into()),
            (
                Reviewers::TotpSealedWith,
                stored.totp_secret.as_ref().map(|s| s.sealed_with.clone()).into(),
            ),
            (Reviewers::FailedSignIns, 0i32.into()),
            (Reviewers::CreatedAt, r.created_at.into()),
        ],
    )?;
    let _turn = store.write_turn().await;
    if fetch_one(&store.db, &exists).await?.is_none() {
        return Ok(false);
    }
    match store.db.execute(&insert).await {
        Ok(_) => Ok(true),
        Err(error) if is_unique_violation(&error) => Ok(false),
        Err(error) => Err(repo_error(error)),
    }
}

pub(crate) async fn list(
    store: &Store, application_id: ApplicationId,
) -> Result<Vec<Reviewer>, RepoError> {
    let query = select()
        .and_where(Expr::col(Reviewers::ApplicationId).eq(application_id.as_uuid()))
        .order_by(Reviewers::CreatedAt, Order::Asc)
        .order_by(Reviewers::Email, Order::Asc)
        .to_owned();
    fetch_all(&store.db, &query).await?.iter().map(|row| Ok(reviewer(row)?.reviewer)).collect()
}

pub(crate) async fn find_by_email(
    store: &Store, email: &str,
) -> Result<Option<StoredReviewer>, RepoError> {
    let query = select().and_where(Expr::col(Reviewers::Email).eq(email)).to_owned();
    fetch_one(&store.db, &query).await?.as_ref().map(reviewer).transpose()
}

pub(crate) async fn find(store: &Store, id: ReviewerId) -> Result<Option<Reviewer>, RepoError> {
    let query = select().and_where(Expr::col(Reviewers::Id).eq(id.as_uuid())).to_owned();
    Ok(fetch_one(&store.db, &query).await?.as_ref().map(reviewer).transpose()?.map(|s| s.reviewer))
}

pub(crate) async fn record_failures(
    store: &Store, id: ReviewerId, failed: i32, locked_until: Option<DateTime<Utc>>,
) -> Result<(), RepoError> {
    let update = Query::update()
        .table(Reviewers::Table)
        .value(Reviewers::FailedSignIns, failed)
        .value(Reviewers::LockedUntil, locked_until)
        .and_where(Expr::col(Reviewers::Id).eq(id.as_uuid()))
        .to_owned();
    let _turn = store.write_turn().await;
    run(&store.db, &update).await.map(drop)
}

/// Deletes the reviewer's console sessions in `txn`.
async fn end_sessions(txn: &sea_orm::DatabaseTransaction, id: ReviewerId) -> Result<(), RepoError> {
    let delete = Query::delete()
        .from_table(ConsoleSessions::Table)
        .and_where(Expr::col(ConsoleSessions::ReviewerId).eq(id.as_uuid()))
        .to_owned();
    run(txn, &delete).await.map(drop)
}

pub(crate) async fn set_time_zone(
    store: &Store, id: ReviewerId, time_zone: Option<&str>,
) -> Result<bool, RepoError> {
    let update = Query::update()
        .table(Reviewers::Table)
        .value(Reviewers::TimeZone, time_zone.map(str::to_owned))
        .and_where(Expr::col(Reviewers::Id).eq(id.as_uuid()))
        .to_owned();
    let _turn = store.write_turn().await;
    Ok(run(&store.db, &update).await? == 1)
}

pub(crate) async fn set_password(
    store: &Store, id: ReviewerId, hash: &str,
) -> Result<bool, RepoError> {
    let update = Query::update()
        .table(Reviewers::Table)
        .value(Reviewers::PasswordHash, hash)
        .and_where(Expr::col(Reviewers::Id).eq(id.as_uuid()))
        .to_owned();
    let _turn = store.write_turn().await;
    let txn = store.begin_write().await?;
    if run(&txn, &update).await? != 1 {
        return Ok(false);
    }
    end_sessions(&txn, id).await?;
    commit(txn).await.map(|()| true)
}

pub(crate) async fn remove(
    store: &Store, application_id: ApplicationId, email: &str,
) -> Result<bool, RepoError> {
    let delete = Query::delete()
        .from_table(Reviewers::Table)
        .and_where(Expr::col(Reviewers::ApplicationId).eq(application_id.as_uuid()))
        .and_where(Expr::col(Reviewers::Email).eq(email))
        .returning(Query::returning().column(Reviewers::Id))
        .to_owned();
    let _turn = store.write_turn().await;
    let txn = store.begin_write().await?;
    let Some(row) = fetch_one(&txn, &delete).await? else {
        return Ok(false);
    };
    end_sessions(&txn, ReviewerId::from_uuid(get(&row, "id")?)).await?;
    commit(txn).await.map(|()| true)
}

impl Store {
    /// The one-time-code secrets sealed with the key-encryption key `sealed_with`, by reviewer:
    /// what `signing-keys reseal` seals again.
    pub async fn totp_secrets_sealed_with(
        &self, sealed_with: &str,
    ) -> Result<Vec<(ReviewerId, Vec<u8>)>, RepoError> {
        let query = Query::select()
            .columns([Reviewers::Id, Reviewers::TotpSecret])
            .from(Reviewers::Table)
            .and_where(Expr::col(Reviewers::TotpSealedWith).eq(sealed_with))
            .to_owned();
        fetch_all(&self.db, &query)
            .await?
            .iter()
            .map(|row| Ok((ReviewerId::from_uuid(get(row, "id")?), get(row, "totp_secret")?)))
            .collect()
    }

    /// Stores a reviewer's one-time-code secret sealed again with `sealed_with`, if it is
    /// still sealed with `previously`.
    pub async fn reseal_totp_secret(
        &self, id: ReviewerId, sealed: Vec<u8>, sealed_with: &str, previously: &str,
    ) -> Result<bool, RepoError> {
        let update = Query::update()
            .table(Reviewers::Table)
            .value(Reviewers::TotpSecret, sealed)
            .value(Reviewers::TotpSealedWith, sealed_with)
            .and_where(Expr::col(Reviewers::Id).eq(id.as_uuid()))
            .and_where(Expr::col(Reviewers::TotpSealedWith).eq(previously))
            .to_owned();
        let _turn = self.write_turn().await;
        Ok(run(&self.db, &update).await? == 1)
    }
}
