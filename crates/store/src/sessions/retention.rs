//! The retention sweep's deletion: an application's sessions due, oldest first, in one
//! transaction with their `session.deleted` events.

use chrono::{DateTime, Utc};
use handoff_domain::SessionStatus;
use handoff_domain::retention::DeletedSession;
use handoff_domain::webhook::WebhookType;
use sea_orm::sea_query::{Alias, LockBehavior, LockType};

use super::*;

impl Store {
    /// [`SessionRepository::delete_finished_before`].
    pub(super) async fn delete_due(
        &self, application_id: ApplicationId, finished_before: DateTime<Utc>, batch: u32,
        at: DateTime<Utc>,
    ) -> Result<Vec<DeletedSession>, RepoError> {
        let due = Alias::new("due");
        let finished = SessionStatus::FINISHED.map(SessionStatus::as_str);
        // Due: created before the cutoff, and not finished since (a clone's copied log rows
        // are older than the clone, whose creation therefore counts).
        let finished_since = Query::select()
            .expr(Expr::val(1))
            .from(SessionLogs::Table)
            .and_where(
                Expr::col((SessionLogs::Table, SessionLogs::SessionId))
                    .equals((due.clone(), Sessions::Id)),
            )
            .and_where(Expr::col((SessionLogs::Table, SessionLogs::NewStatus)).is_in(finished))
            .and_where(Expr::col((SessionLogs::Table, SessionLogs::CreatedAt)).gte(finished_before))
            .to_owned();
        let mut chosen = Query::select()
            .column((due.clone(), Sessions::Id))
            .from_as(Sessions::Table, due.clone())
            .and_where(
                Expr::col((due.clone(), Sessions::ApplicationId)).eq(application_id.as_uuid()),
            )
            .and_where(Expr::col((due.clone(), Sessions::CreatedAt)).lt(finished_before))
            .and_where(Expr::exists(finished_since).not())
            .order_by((due.clone(), Sessions::CreatedAt), Order::Asc)
            .order_by((due, Sessions::SessionNumber), Order::Asc)
            .limit(u64::from(batch))
            .to_owned();
        // PostgreSQL only (SQLite writes one transaction at a time): a row another server is
        // deleting is left to it.
        chosen.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        // Every related row goes with them by ON DELETE CASCADE, in the same statement.
        let delete = Query::delete()
            .from_table(Sessions::Table)
            .and_where(Expr::col(Sessions::Id).in_subquery(chosen))
            .returning(Query::returning().columns([
                Sessions::Id,
                Sessions::SessionNumber,
                Sessions::Kind,
                Sessions::VendorData,
                Sessions::CreatedAt,
            ]))
            .to_owned();
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let mut deleted = Vec::new();
        for row in fetch_all(&txn, &delete).await? {
            let created_at: DateTime<Utc> = get(&row, "created_at")?;
            deleted.push((
                created_at,
                DeletedSession {
                    application_id,
                    id: SessionId::from_uuid(get(&row, "id")?),
                    session_number: get(&row, "session_number")?,
                    kind: rows::kind(&row, "kind")?,
                    vendor_data: rows::vendor_data(&row)?,
                },
            ));
        }
        for (_, session) in &deleted {
            crate::outbox::insert_application_event(
                &txn,
                application_id,
                Some(session.id),
                WebhookType::SessionDeleted,
                &session.event_facts().to_string(),
                at,
            )
            .await?;
        }
        commit(txn).await?;
        deleted.sort_by_key(|(created_at, session)| (*created_at, session.session_number));
        Ok(deleted.into_iter().map(|(_, session)| session).collect())
    }
}
