//! Sessions, their blocks, reviews and log in memory.

use super::*;

#[async_trait]
impl SessionRepository for InMemory {
    async fn create_session(
        &self, s: &NewSession, log: &LogEntry,
    ) -> Result<StoredSession, RepoError> {
        let mut state = self.state();
        let reusable =
            s.vendor_data.as_ref().filter(|_| s.reuse_unfinished).and_then(|vendor_data| {
                state
                    .sessions
                    .iter()
                    .rev()
                    .map(|(r, _)| &r.session)
                    .find(|own| {
                        own.application_id == s.application_id
                            && own.workflow_id == s.workflow_id
                            && own.features == s.features
                            && crate::SessionStatus::UNFINISHED.contains(&own.status)
                            && own
                                .vendor_data
                                .as_ref()
                                .is_some_and(|v| v.key() == vendor_data.key())
                    })
                    .map(|own| own.id)
            });
        if let Some(id) = reusable {
            claim(
                &mut state,
                s.application_id,
                s.idempotency.as_ref(),
                IdempotentOperation::CreateSession,
                id.to_string(),
            )?;
            let (record, _) = find_mut(&mut state, s.application_id, id)
                .ok_or_else(|| RepoError::Internal("the reused session vanished".into()))?;
            if s.callback.is_some() {
                record.session.callback = s.callback.clone();
            }
            if s.metadata.is_some() {
                record.session.metadata = s.metadata.clone();
            }
            return Ok(record.session.clone());
        }
        claim(
            &mut state,
            s.application_id,
            s.idempotency.as_ref(),
            IdempotentOperation::CreateSession,
            s.id.to_string(),
        )?;
        let session_number = next_number(&mut state, s.application_id);
        if let Some(vendor_data) = &s.vendor_data {
            ensure_entity(&mut state, s.application_id, s.kind, vendor_data, s.created_at);
        }
        let stored = s.stored(session_number);
        state.sessions.push((
            SessionRecord { session: stored.clone(), blocks: vec![], reviews: vec![] },
            vec![log.clone()],
        ));
        Ok(stored)
    }

    async fn find_session(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<SessionRecord>, RepoError> {
        let mut state = self.state();
        Ok(find_mut(&mut state, application_id, id).map(|(r, _)| r.clone()))
    }

    async fn find_session_by_token(&self, token: &str) -> Result<Option<StoredSession>, RepoError> {
        Ok(self
            .state()
            .sessions
            .iter()
            .find(|(r, _)| r.session.session_token == token)
            .map(|(r, _)| r.session.clone()))
    }

    async fn session_events(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<Vec<LogEntry>>, RepoError> {
        let mut state = self.state();
        Ok(find_mut(&mut state, application_id, id).map(|(_, logs)| {
            logs.iter().filter(|log| log.kind == LogKind::Event).cloned().collect()
        }))
    }

    async fn session_activity(
        &self, application_id: ApplicationId, id: SessionId, query: ActivityQuery,
    ) -> Result<Option<ActivityPage>, RepoError> {
        let mut state = self.state();
        Ok(find_mut(&mut state, application_id, id).map(|(_, logs)| {
            let mut rows: Vec<Activity> = logs
                .iter()
                .enumerate()
                .filter(|(_, log)| log.is_activity())
                .map(|(row, log)| Activity { row: row as i64, entry: log.clone() })
                .collect();
            if query.newest_first {
                rows.reverse();
            }
            let (count, results) = super::page(rows, query.offset, query.limit);
            ActivityPage { count, results }
        }))
    }

    async fn record_results(
        &self, application_id: ApplicationId, id: SessionId, results: &RecordResults,
        log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let Some((record, logs)) = find_mut(&mut state, application_id, id) else {
            return Ok(false);
        };
        let old = record.session.status;
        for (block, items) in &results.blocks {
            record.blocks.retain(|(b, _)| b != block);
            if let Some(items) = items {
                record.blocks.push((*block, items.clone()));
            }
        }
        record.blocks.sort_by_key(|(b, _)| *b);
        record.session.status = results.status.unwrap_or(old);
        record.session.revision += 1;
        logs.push(log.transition(old, record.session.status));
        Ok(true)
    }

    async fn amend_results(
        &self, application_id: ApplicationId, id: SessionId, revision: i64,
        results: &RecordResults, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let current = self
            .state()
            .sessions
            .iter()
            .find(|(r, _)| r.session.application_id == application_id && r.session.id == id)
            .map(|(r, _)| r.session.revision);
        match current {
            None => Ok(false),
            Some(current) if current != revision => Err(RepoError::Changed),
            Some(_) => self.record_results(application_id, id, results, log).await,
        }
    }

    async fn apply_review(
        &self, application_id: ApplicationId, id: SessionId, review: ReviewStatus, log: &LogEntry,
    ) -> Result<ReviewOutcome, RepoError> {
        let mut state = self.state();
        let Some((record, logs)) = find_mut(&mut state, application_id, id) else {
            return Ok(ReviewOutcome::NotFound);
        };
        let current = record.session.status;
        let log = match log.review(current, review) {
            Ok(log) => log,
            Err(refused) => return Ok(refused),
        };
        record.session.status = review.status();
        record.session.revision += 1;
        record.reviews.push(Review {
            user: log.actor.clone(),
            new_status: review.status(),
            comment: log.comment.clone(),
            created_at: log.created_at,
        });
        logs.push(log);
        Ok(ReviewOutcome::Applied)
    }

    async fn delete_session(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let before = state.sessions.len();
        state
            .sessions
            .retain(|(r, _)| !(r.session.application_id == application_id && r.session.id == id));
        Ok(state.sessions.len() < before)
    }

    async fn delete_sessions(
        &self, application_id: ApplicationId, numbers: Option<&[i64]>,
    ) -> Result<Vec<(SessionId, i64)>, RepoError> {
        let mut state = self.state();
        let chosen = |s: &StoredSession| {
            s.application_id == application_id
                && numbers.is_none_or(|n| n.contains(&s.session_number))
        };
        let deleted = state
            .sessions
            .iter()
            .filter(|(r, _)| chosen(&r.session))
            .map(|(r, _)| (r.session.id, r.session.session_number))
            .collect();
        state.sessions.retain(|(r, _)| !chosen(&r.session));
        Ok(deleted)
    }

    async fn append_event(
        &self, application_id: ApplicationId, id: SessionId, log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state
            .sessions
            .iter_mut()
            .find(|(r, _)| r.session.id == id && r.session.application_id == application_id)
        {
            Some((_, logs)) => {
                logs.push(log.clone());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn count_by_status(
        &self, application_id: ApplicationId, workflows: Option<&[crate::WorkflowId]>,
    ) -> Result<Vec<(crate::SessionStatus, u64)>, RepoError> {
        let state = self.state();
        let mut counts: Vec<(crate::SessionStatus, u64)> = Vec::new();
        for (r, _) in &state.sessions {
            let s = &r.session;
            if s.application_id != application_id
                || workflows.is_some_and(|w| !w.contains(&s.workflow_id))
            {
                continue;
            }
            match counts.iter_mut().find(|(status, _)| *status == s.status) {
                Some((_, n)) => *n += 1,
                None => counts.push((s.status, 1)),
            }
        }
        Ok(counts)
    }

    async fn assign_session(
        &self, application_id: ApplicationId, id: SessionId,
        reviewer: Option<crate::ids::ReviewerId>, _at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let holds = state
            .sessions
            .iter()
            .any(|(r, _)| r.session.id == id && r.session.application_id == application_id);
        let theirs = reviewer.is_none_or(|reviewer| {
            state
                .reviewers
                .iter()
                .any(|r| r.reviewer.id == reviewer && r.reviewer.application_id == application_id)
        });
        if !holds || !theirs {
            return Ok(false);
        }
        state.assignments.retain(|(s, _)| *s != id);
        if let Some(reviewer) = reviewer {
            state.assignments.push((id, reviewer));
        }
        Ok(true)
    }

    async fn assignees(
        &self, _application_id: ApplicationId, ids: &[SessionId],
    ) -> Result<Vec<(SessionId, String)>, RepoError> {
        let state = self.state();
        Ok(state
            .assignments
            .iter()
            .filter(|(s, _)| ids.contains(s))
            .filter_map(|(s, r)| {
                let email = state.reviewers.iter().find(|x| x.reviewer.id == *r)?;
                Some((*s, email.reviewer.email.clone()))
            })
            .collect())
    }

    async fn delete_finished_before(
        &self, application_id: ApplicationId, finished_before: DateTime<Utc>, batch: u32,
        _at: DateTime<Utc>,
    ) -> Result<Vec<crate::retention::DeletedSession>, RepoError> {
        let mut state = self.state();
        let mut due: Vec<(DateTime<Utc>, crate::retention::DeletedSession)> = state
            .sessions
            .iter()
            .filter(|(r, _)| r.session.application_id == application_id)
            .filter_map(|(r, log)| {
                let finished = crate::retention::finished_at(r.session.created_at, log);
                (finished < finished_before).then(|| {
                    (
                        r.session.created_at,
                        crate::retention::DeletedSession {
                            application_id,
                            id: r.session.id,
                            session_number: r.session.session_number,
                            kind: r.session.kind,
                            vendor_data: r.session.vendor_data.clone(),
                        },
                    )
                })
            })
            .collect();
        due.sort_by_key(|(created_at, deleted)| (*created_at, deleted.session_number));
        due.truncate(usize::try_from(batch).unwrap_or(usize::MAX));
        state.sessions.retain(|(r, _)| !due.iter().any(|(_, d)| d.id == r.session.id));
        Ok(due.into_iter().map(|(_, deleted)| deleted).collect())
    }

    async fn list_sessions(
        &self, application_id: ApplicationId, filter: &SessionFilter,
    ) -> Result<SessionPage, RepoError> {
        let state = self.state();
        let mut matching: Vec<SessionListing> = state
            .sessions
            .iter()
            .filter(|(r, _)| r.session.application_id == application_id)
            .map(|(r, _)| r.listing())
            .filter(|listing| filter.matches(listing))
            .filter(|listing| {
                filter.assignee.is_none_or(|wanted| {
                    let assigned = state.assignments.iter().find(|(s, _)| *s == listing.session.id);
                    assigned.map(|(_, r)| *r) == wanted
                })
            })
            .collect();
        matching.sort_by_key(|l| {
            let number = l.session.session_number;
            (
                filter.imports_first && l.session.shared_from_session.is_none(),
                if filter.oldest_first { number } else { -number },
            )
        });
        let (count, results) = super::page(matching, filter.offset, filter.limit);
        Ok(SessionPage { count, results })
    }
}
