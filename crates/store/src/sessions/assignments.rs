//! The console's work on sessions: counts by status, which reviewer each session is assigned
//! to, and the events it logs (a reveal).

use chrono::{DateTime, Utc};
use handoff_domain::ReviewerId;

use super::*;
use crate::schema::{Assignments, Reviewers};

impl Store {
    /// [`SessionRepository::count_by_status`].
    pub(super) async fn status_counts(
        &self, application_id: ApplicationId, workflows: Option<&[handoff_domain::WorkflowId]>,
    ) -> Result<Vec<(handoff_domain::SessionStatus, u64)>, RepoError> {
        let mut select = Query::select()
            .column(Sessions::Status)
            .expr_as(Func::count(Expr::col(Sessions::Id)), Alias::new("n"))
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::ApplicationId).eq(application_id.as_uuid()))
            .group_by_col(Sessions::Status)
            .to_owned();
        if let Some(workflows) = workflows {
            select.and_where(
                Expr::col(Sessions::WorkflowId).is_in(workflows.iter().map(|w| w.as_uuid())),
            );
        }
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| {
                let n: i64 = get(row, "n")?;
                Ok((rows::status(&get::<String>(row, "status")?)?, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    /// [`SessionRepository::append_event`].
    pub(super) async fn append(
        &self, application_id: ApplicationId, id: SessionId, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        let Some(row) = lock_session(&txn, application_id, id).await? else {
            return Ok(false);
        };
        let log = self.sealed_comment(&txn, &row, log.clone()).await?;
        insert_log(&txn, id, &log).await?;
        commit(txn).await.map(|()| true)
    }

    /// [`SessionRepository::assign_session`].
    pub(super) async fn assign(
        &self, application_id: ApplicationId, id: SessionId, reviewer: Option<ReviewerId>,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let session = Query::select()
            .column(Sessions::Id)
            .from(Sessions::Table)
            .and_where(Expr::col(Sessions::Id).eq(id.as_uuid()))
            .and_where(Expr::col(Sessions::ApplicationId).eq(application_id.as_uuid()))
            .to_owned();
        let clear = Query::delete()
            .from_table(Assignments::Table)
            .and_where(Expr::col(Assignments::SessionId).eq(id.as_uuid()))
            .to_owned();
        let _turn = self.write_turn().await;
        let txn = self.begin_write().await?;
        if fetch_one(&txn, &session).await?.is_none() {
            return Ok(false);
        }
        if let Some(reviewer) = reviewer {
            let theirs = Query::select()
                .column(Reviewers::Id)
                .from(Reviewers::Table)
                .and_where(Expr::col(Reviewers::Id).eq(reviewer.as_uuid()))
                .and_where(Expr::col(Reviewers::ApplicationId).eq(application_id.as_uuid()))
                .to_owned();
            if fetch_one(&txn, &theirs).await?.is_none() {
                return Ok(false);
            }
        }
        run(&txn, &clear).await?;
        if let Some(reviewer) = reviewer {
            let insert = crate::sql::insert_row(
                Assignments::Table,
                [
                    (Assignments::SessionId, id.as_uuid().into()),
                    (Assignments::ReviewerId, reviewer.as_uuid().into()),
                    (Assignments::AssignedAt, at.into()),
                ],
            )?;
            run(&txn, &insert).await?;
        }
        commit(txn).await.map(|()| true)
    }

    /// [`SessionRepository::assignees`].
    pub(super) async fn assigned_to(
        &self, application_id: ApplicationId, ids: &[SessionId],
    ) -> Result<Vec<(SessionId, String)>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let select = Query::select()
            .column((Assignments::Table, Assignments::SessionId))
            .column((Reviewers::Table, Reviewers::Email))
            .from(Assignments::Table)
            .inner_join(
                Reviewers::Table,
                Expr::col((Reviewers::Table, Reviewers::Id))
                    .equals((Assignments::Table, Assignments::ReviewerId)),
            )
            .and_where(
                Expr::col((Reviewers::Table, Reviewers::ApplicationId))
                    .eq(application_id.as_uuid()),
            )
            .and_where(
                Expr::col((Assignments::Table, Assignments::SessionId))
                    .is_in(ids.iter().map(SessionId::as_uuid)),
            )
            .to_owned();
        fetch_all(&self.db, &select)
            .await?
            .iter()
            .map(|row| Ok((SessionId::from_uuid(get(row, "session_id")?), get(row, "email")?)))
            .collect()
    }
}
