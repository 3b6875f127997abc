//! Review-console sessions: stored under the hash of their id, touched on each use, ended by
//! signing out, their lifetime or an idle spell.

use chrono::{DateTime, Utc};
use handoff_domain::console::{ConsoleSession, ConsoleSessionHash};
use handoff_domain::{ApplicationId, Caller, RepoError, ReviewerId};
use sea_orm::sea_query::{Expr, ExprTrait, Query};

use crate::Store;
use crate::rows::get;
use crate::schema::ConsoleSessions;
use crate::sql::{fetch_one, run};

/// Stores `session` and forgets the sessions that ended.
pub(crate) async fn open(
    store: &Store, id: ConsoleSessionHash, session: &ConsoleSession, now: DateTime<Utc>,
    idle_since: DateTime<Utc>,
) -> Result<(), RepoError> {
    let _turn = store.write_turn().await;
    let forget = Query::delete()
        .from_table(ConsoleSessions::Table)
        .cond_where(
            Expr::col(ConsoleSessions::ExpiresAt)
                .lte(now)
                .or(Expr::col(ConsoleSessions::LastSeenAt).lte(idle_since)),
        )
        .to_owned();
    run(&store.db, &forget).await?;
    let insert = Query::insert()
        .into_table(ConsoleSessions::Table)
        .columns(ConsoleSessions::COLUMNS[..].iter().copied())
        .values([
            id.0.to_vec().into(),
            session.caller.application_id.as_uuid().into(),
            session.caller.key_prefix.clone().into(),
            session.csrf.clone().into(),
            now.into(),
            now.into(),
            session.expires_at.into(),
            session.reviewer.map(|id| id.as_uuid()).into(),
        ])
        .map_err(|e| RepoError::Internal(e.to_string().into()))?
        .to_owned();
    run(&store.db, &insert).await.map(|_| ())
}

/// The current session under `id`, its last use moved to `now`.
pub(crate) async fn touch(
    store: &Store, id: ConsoleSessionHash, now: DateTime<Utc>, idle_since: DateTime<Utc>,
) -> Result<Option<ConsoleSession>, RepoError> {
    let _turn = store.write_turn().await;
    let update = Query::update()
        .table(ConsoleSessions::Table)
        .value(ConsoleSessions::LastSeenAt, now)
        .and_where(Expr::col(ConsoleSessions::IdHash).eq(id.0.to_vec()))
        .and_where(Expr::col(ConsoleSessions::ExpiresAt).gt(now))
        .and_where(Expr::col(ConsoleSessions::LastSeenAt).gt(idle_since))
        .returning(Query::returning().columns([
            ConsoleSessions::ApplicationId,
            ConsoleSessions::KeyPrefix,
            ConsoleSessions::Csrf,
            ConsoleSessions::ExpiresAt,
            ConsoleSessions::ReviewerId,
        ]))
        .to_owned();
    let Some(row) = fetch_one(&store.db, &update).await? else {
        return Ok(None);
    };
    Ok(Some(ConsoleSession {
        // The key's grant (or the reviewer) is read again at each request
        // (`ApplicationService`).
        caller: Caller::primary(
            ApplicationId::from_uuid(get(&row, "application_id")?),
            get::<String>(&row, "key_prefix")?,
        ),
        csrf: get(&row, "csrf")?,
        expires_at: get(&row, "expires_at")?,
        reviewer: get::<Option<uuid::Uuid>>(&row, "reviewer_id")?.map(ReviewerId::from_uuid),
        time_zone: None,
    }))
}

/// Deletes the session under `id`.
pub(crate) async fn close(store: &Store, id: ConsoleSessionHash) -> Result<(), RepoError> {
    let _turn = store.write_turn().await;
    let delete = Query::delete()
        .from_table(ConsoleSessions::Table)
        .and_where(Expr::col(ConsoleSessions::IdHash).eq(id.0.to_vec()))
        .to_owned();
    run(&store.db, &delete).await.map(|_| ())
}
