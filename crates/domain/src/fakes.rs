//! In-memory implementations of every port, for tests and for embedders who want the rules
//! without a database. Built from std only; one mutex guards the whole state, which is plenty
//! for tests and makes every method trivially atomic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api_key::{ApiKeyHash, NewApiKey};
use crate::application::Application;
use crate::console::{ConsoleSession, ConsoleSessionHash};
use crate::entity::{Entity, EntityStatus};
use crate::error::RepoError;
use crate::idempotency::{
    IdempotencyClaim, IdempotencyKey, IdempotentOperation, RecordedAnswer, StoredIdempotency,
};
use crate::ids::{ApplicationId, SessionId, WorkflowId};
use crate::kind::SessionKind;
use crate::ports::*;
use crate::services::Ports;
use crate::session::*;
use crate::share::{
    ImportAttempt, ImportCheck, ImportContext, ImportOutcome, ImportWorkflow, IssuedShareToken,
    LedgerEntry, RecordedToken, ShareClaims, TokenError, first_failed_check,
};
use crate::status::ReviewStatus;
use crate::vendor_data::VendorData;
use crate::webhook::{Delivery, DeliveryState, Destination, SealedSecret};
use crate::workflow::Workflow;

/// Everything the in-memory store holds.
#[derive(Default)]
pub struct State {
    /// Applications.
    pub applications: Vec<Application>,
    /// Keys, with their revocation flag.
    pub api_keys: Vec<(NewApiKey, bool)>,
    /// Console sessions by id hash, with when each was last used.
    pub console_sessions: Vec<(ConsoleSessionHash, ConsoleSession, DateTime<Utc>)>,
    /// Workflows, with their deletion flag.
    pub workflows: Vec<(Workflow, bool)>,
    /// Sessions with their blocks, reviews and log.
    pub sessions: Vec<(SessionRecord, Vec<LogEntry>)>,
    /// Entities by application.
    pub entities: Vec<(ApplicationId, Entity)>,
    /// Issued share tokens, with their revocation flag.
    pub share_tokens: Vec<LedgerEntry>,
    /// The last session number per application.
    pub last_session_number: HashMap<ApplicationId, i64>,
    /// How many times the service read an import's checks (after a refusal).
    pub import_context_reads: usize,
    /// Idempotency keys by their text.
    pub idempotency: Vec<(String, StoredIdempotency)>,
    /// Webhook destinations with their sealed secrets.
    pub destinations: Vec<(Destination, SealedSecret)>,
    /// Deliveries by destination.
    pub deliveries: Vec<(uuid::Uuid, Delivery)>,
}

/// Every repository port in memory.
#[derive(Default)]
pub struct InMemory {
    state: Mutex<State>,
}

impl InMemory {
    /// The state, for tests to arrange and inspect.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn ensure_entity(
    state: &mut State,
    application_id: ApplicationId,
    kind: SessionKind,
    vendor_data: &VendorData,
    at: DateTime<Utc>,
) {
    let key = vendor_data.key();
    if !state
        .entities
        .iter()
        .any(|(app, e)| *app == application_id && e.kind == kind && e.vendor_data.key() == key)
    {
        state.entities.push((
            application_id,
            Entity {
                id: Uuid::new_v4(),
                kind,
                vendor_data: vendor_data.clone(),
                status: EntityStatus::Active,
                display_name: None,
                metadata: None,
                counts: Default::default(),
                created_at: at,
                status_reason: None,
                status_updated_at: None,
            },
        ));
    }
}

/// Stores a guarded write's key, or refuses the write when the application holds it already.
fn claim(
    state: &mut State,
    application_id: ApplicationId,
    claim: Option<&IdempotencyClaim>,
    operation: IdempotentOperation,
    resource_id: String,
) -> Result<(), RepoError> {
    let Some(claim) = claim else {
        return Ok(());
    };
    if state
        .idempotency
        .iter()
        .any(|(key, stored)| key == claim.key.as_str() && stored.application_id == application_id)
    {
        return Err(RepoError::IdempotencyKeyTaken);
    }
    state.idempotency.push((
        claim.key.as_str().to_owned(),
        StoredIdempotency {
            application_id,
            request_hash: claim.request_hash.clone(),
            operation,
            resource_id,
            created_at: claim.created_at,
            answer: None,
        },
    ));
    Ok(())
}

fn next_number(state: &mut State, application_id: ApplicationId) -> i64 {
    let n = state.last_session_number.entry(application_id).or_insert(0);
    *n += 1;
    *n
}

#[async_trait]
impl ApplicationRepository for InMemory {
    async fn create_application(
        &self,
        application: &Application,
        key: &NewApiKey,
    ) -> Result<(), RepoError> {
        let mut state = self.state();
        state.applications.push(application.clone());
        state.api_keys.push((key.clone(), false));
        Ok(())
    }

    async fn list_applications(&self) -> Result<Vec<Application>, RepoError> {
        Ok(self.state().applications.clone())
    }

    async fn application_exists(&self, id: ApplicationId) -> Result<bool, RepoError> {
        Ok(self.state().applications.iter().any(|a| a.id == id))
    }

    async fn add_api_key(&self, key: &NewApiKey, _: DateTime<Utc>) -> Result<bool, RepoError> {
        let mut state = self.state();
        if !state
            .applications
            .iter()
            .any(|a| a.id == key.application_id)
        {
            return Ok(false);
        }
        state.api_keys.push((key.clone(), false));
        Ok(true)
    }

    async fn revoke_api_key(
        &self,
        application_id: ApplicationId,
        prefix: &str,
        _: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state.api_keys.iter_mut().find(|(k, revoked)| {
            k.application_id == application_id && k.prefix == prefix && !revoked
        }) {
            Some((_, revoked)) => {
                *revoked = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn find_api_key(
        &self,
        prefix: &str,
    ) -> Result<Option<(ApplicationId, ApiKeyHash)>, RepoError> {
        Ok(self
            .state()
            .api_keys
            .iter()
            .find(|(k, revoked)| k.prefix == prefix && !revoked)
            .map(|(k, _)| (k.application_id, k.hash.clone())))
    }

    async fn open_console_session(
        &self,
        id: ConsoleSessionHash,
        session: &ConsoleSession,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let mut state = self.state();
        state
            .console_sessions
            .retain(|(_, s, seen)| s.expires_at > now && *seen > idle_since);
        state.console_sessions.push((id, session.clone(), now));
        Ok(())
    }

    async fn touch_console_session(
        &self,
        id: ConsoleSessionHash,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, RepoError> {
        let mut state = self.state();
        Ok(state
            .console_sessions
            .iter_mut()
            .find(|(h, s, seen)| *h == id && s.expires_at > now && *seen > idle_since)
            .map(|(_, session, seen)| {
                *seen = now;
                session.clone()
            }))
    }

    async fn close_console_session(&self, id: ConsoleSessionHash) -> Result<(), RepoError> {
        self.state().console_sessions.retain(|(h, _, _)| *h != id);
        Ok(())
    }
}

#[async_trait]
impl WorkflowRepository for InMemory {
    async fn create_workflow(&self, workflow: &Workflow) -> Result<(), RepoError> {
        let mut state = self.state();
        if workflow.is_default {
            for (w, _) in &mut state.workflows {
                if w.application_id == workflow.application_id && w.kind == workflow.kind {
                    w.is_default = false;
                }
            }
        }
        state.workflows.push((workflow.clone(), false));
        Ok(())
    }

    async fn update_workflow(&self, workflow: &Workflow) -> Result<bool, RepoError> {
        let mut state = self.state();
        let live = |w: &Workflow, deleted: bool| {
            w.application_id == workflow.application_id && w.id == workflow.id && !deleted
        };
        if !state.workflows.iter().any(|(w, deleted)| live(w, *deleted)) {
            return Ok(false);
        }
        for (w, deleted) in &mut state.workflows {
            if live(w, *deleted) {
                *w = workflow.clone();
            } else if w.application_id == workflow.application_id
                && workflow.is_default
                && w.kind == workflow.kind
            {
                w.is_default = false;
            }
        }
        Ok(true)
    }

    async fn list_workflows(
        &self,
        application_id: ApplicationId,
    ) -> Result<Vec<Workflow>, RepoError> {
        Ok(self
            .state()
            .workflows
            .iter()
            .filter(|(w, deleted)| w.application_id == application_id && !deleted)
            .map(|(w, _)| w.clone())
            .collect())
    }

    async fn find_workflow(
        &self,
        application_id: ApplicationId,
        id: WorkflowId,
    ) -> Result<Option<Workflow>, RepoError> {
        Ok(self
            .state()
            .workflows
            .iter()
            .find(|(w, deleted)| w.application_id == application_id && w.id == id && !deleted)
            .map(|(w, _)| w.clone()))
    }

    async fn delete_workflow(
        &self,
        application_id: ApplicationId,
        id: WorkflowId,
        _: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state
            .workflows
            .iter_mut()
            .find(|(w, deleted)| w.application_id == application_id && w.id == id && !deleted)
        {
            Some((w, deleted)) => {
                *deleted = true;
                w.is_default = false;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

fn find_mut(
    state: &mut State,
    application_id: ApplicationId,
    id: SessionId,
) -> Option<&mut (SessionRecord, Vec<LogEntry>)> {
    state
        .sessions
        .iter_mut()
        .find(|(r, _)| r.session.application_id == application_id && r.session.id == id)
}

#[async_trait]
impl SessionRepository for InMemory {
    async fn create_session(
        &self,
        s: &NewSession,
        log: &LogEntry,
    ) -> Result<StoredSession, RepoError> {
        let mut state = self.state();
        let reusable = s
            .vendor_data
            .as_ref()
            .filter(|_| s.reuse_unfinished)
            .and_then(|vendor_data| {
                state
                    .sessions
                    .iter()
                    .rev()
                    .map(|(r, _)| &r.session)
                    .find(|own| {
                        own.application_id == s.application_id
                            && own.workflow_id == s.workflow_id
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
            ensure_entity(
                &mut state,
                s.application_id,
                s.kind,
                vendor_data,
                s.created_at,
            );
        }
        let stored = s.stored(session_number);
        state.sessions.push((
            SessionRecord {
                session: stored.clone(),
                blocks: vec![],
                reviews: vec![],
            },
            vec![log.clone()],
        ));
        Ok(stored)
    }

    async fn find_session(
        &self,
        application_id: ApplicationId,
        id: SessionId,
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
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<Option<Vec<LogEntry>>, RepoError> {
        let mut state = self.state();
        Ok(find_mut(&mut state, application_id, id).map(|(_, logs)| {
            logs.iter()
                .filter(|log| log.kind == LogKind::Event)
                .cloned()
                .collect()
        }))
    }

    async fn session_activity(
        &self,
        application_id: ApplicationId,
        id: SessionId,
        query: ActivityQuery,
    ) -> Result<Option<ActivityPage>, RepoError> {
        let mut state = self.state();
        Ok(find_mut(&mut state, application_id, id).map(|(_, logs)| {
            let mut rows: Vec<Activity> = logs
                .iter()
                .enumerate()
                .filter(|(_, log)| log.is_activity())
                .map(|(row, log)| Activity {
                    row: row as i64,
                    entry: log.clone(),
                })
                .collect();
            if query.newest_first {
                rows.reverse();
            }
            ActivityPage {
                count: rows.len() as u64,
                results: rows
                    .into_iter()
                    .skip(query.offset as usize)
                    .take(query.limit as usize)
                    .collect(),
            }
        }))
    }

    async fn record_results(
        &self,
        application_id: ApplicationId,
        id: SessionId,
        results: &RecordResults,
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
        &self,
        application_id: ApplicationId,
        id: SessionId,
        revision: i64,
        results: &RecordResults,
        log: &LogEntry,
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
        &self,
        application_id: ApplicationId,
        id: SessionId,
        review: ReviewStatus,
        log: &LogEntry,
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
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let before = state.sessions.len();
        state
            .sessions
            .retain(|(r, _)| !(r.session.application_id == application_id && r.session.id == id));
        Ok(state.sessions.len() < before)
    }

    async fn delete_sessions(
        &self,
        application_id: ApplicationId,
        numbers: Option<&[i64]>,
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

    async fn list_sessions(
        &self,
        application_id: ApplicationId,
        filter: &SessionFilter,
    ) -> Result<SessionPage, RepoError> {
        let state = self.state();
        let mut matching: Vec<SessionListing> = state
            .sessions
            .iter()
            .filter(|(r, _)| r.session.application_id == application_id)
            .map(|(r, _)| r.listing())
            .filter(|listing| filter.matches(listing))
            .collect();
        matching.sort_by_key(|l| {
            (
                filter.imports_first && l.session.shared_from_session.is_none(),
                std::cmp::Reverse(l.session.session_number),
            )
        });
        let count = matching.len() as u64;
        let results = matching
            .into_iter()
            .skip(filter.offset as usize)
            .take(filter.limit as usize)
            .collect();
        Ok(SessionPage { count, results })
    }
}

#[async_trait]
impl EntityRepository for InMemory {
    async fn find_entity(
        &self,
        application_id: ApplicationId,
        kind: SessionKind,
        vendor_data: &VendorData,
    ) -> Result<Option<Entity>, RepoError> {
        let state = self.state();
        let key = vendor_data.key();
        Ok(state
            .entities
            .iter()
            .find(|(app, e)| *app == application_id && e.kind == kind && e.vendor_data.key() == key)
            .map(|(_, e)| counted(&state, application_id, e)))
    }

    async fn update_entity(
        &self,
        application_id: ApplicationId,
        kind: SessionKind,
        vendor_data: &VendorData,
        profile: &crate::entity::ProfileChange,
        status: Option<&crate::entity::EntityStatusChange>,
    ) -> Result<Option<Entity>, RepoError> {
        {
            let mut state = self.state();
            let key = vendor_data.key();
            let Some((_, entity)) = state.entities.iter_mut().find(|(app, e)| {
                *app == application_id && e.kind == kind && e.vendor_data.key() == key
            }) else {
                return Ok(None);
            };
            if let Some(name) = &profile.display_name {
                entity.display_name = name.clone();
            }
            if let Some(metadata) = &profile.metadata {
                entity.metadata = metadata.clone();
            }
            if let Some(change) = status.filter(|c| c.status != entity.status) {
                entity.status = change.status;
                entity.status_reason = change.reason.clone();
                entity.status_updated_at = Some(change.at);
            }
        }
        self.find_entity(application_id, kind, vendor_data).await
    }

    async fn create_entity(
        &self,
        application_id: ApplicationId,
        new: &crate::entity::NewEntity,
    ) -> Result<Option<Entity>, RepoError> {
        {
            let mut state = self.state();
            let key = new.vendor_data.key();
            if state.entities.iter().any(|(app, e)| {
                *app == application_id && e.kind == new.kind && e.vendor_data.key() == key
            }) {
                return Ok(None);
            }
            state.entities.push((
                application_id,
                Entity {
                    id: new.id,
                    kind: new.kind,
                    vendor_data: new.vendor_data.clone(),
                    status: new.status,
                    display_name: new.display_name.clone(),
                    metadata: new.metadata.clone(),
                    counts: Default::default(),
                    created_at: new.created_at,
                    status_reason: None,
                    status_updated_at: None,
                },
            ));
        }
        self.find_entity(application_id, new.kind, &new.vendor_data)
            .await
    }

    async fn list_entities(
        &self,
        application_id: ApplicationId,
        kind: SessionKind,
        filter: &crate::entity::EntityFilter,
    ) -> Result<crate::entity::EntityPage, RepoError> {
        let state = self.state();
        let mut matching: Vec<Entity> = state
            .entities
            .iter()
            .filter(|(app, e)| *app == application_id && e.kind == kind)
            .filter(|(_, e)| filter.statuses.is_empty() || filter.statuses.contains(&e.status))
            .filter(|(_, e)| {
                filter.search.as_deref().is_none_or(|needle| {
                    e.vendor_data.as_str().to_lowercase().contains(needle)
                        || e.display_name
                            .as_deref()
                            .is_some_and(|n| n.to_lowercase().contains(needle))
                })
            })
            .map(|(_, e)| counted(&state, application_id, e))
            .collect();
        matching.sort_by_key(|e| std::cmp::Reverse(e.created_at));
        Ok(crate::entity::EntityPage {
            count: matching.len() as u64,
            results: matching
                .into_iter()
                .skip(filter.offset as usize)
                .take(filter.limit as usize)
                .collect(),
        })
    }

    async fn delete_entities(
        &self,
        application_id: ApplicationId,
        kind: SessionKind,
        selection: Option<(&[VendorData], &[Uuid])>,
    ) -> Result<u64, RepoError> {
        let mut state = self.state();
        let chosen = |e: &Entity| {
            e.kind == kind
                && selection.is_none_or(|(names, ids)| {
                    names.iter().any(|v| v.key() == e.vendor_data.key()) || ids.contains(&e.id)
                })
        };
        let keys: Vec<String> = state
            .entities
            .iter()
            .filter(|(app, e)| *app == application_id && chosen(e))
            .map(|(_, e)| e.vendor_data.key())
            .collect();
        state.sessions.retain(|(r, _)| {
            !(r.session.application_id == application_id
                && r.session.kind == kind
                && r.session
                    .vendor_data
                    .as_ref()
                    .is_some_and(|v| keys.contains(&v.key())))
        });
        state
            .entities
            .retain(|(app, e)| !(*app == application_id && chosen(e)));
        Ok(keys.len() as u64)
    }
}

/// `entity` with its sessions counted.
fn counted(state: &State, application_id: ApplicationId, entity: &Entity) -> Entity {
    let key = entity.vendor_data.key();
    let sessions: Vec<&StoredSession> = state
        .sessions
        .iter()
        .map(|(r, _)| &r.session)
        .filter(|s| {
            s.application_id == application_id
                && s.kind == entity.kind
                && s.vendor_data.as_ref().is_some_and(|v| v.key() == key)
        })
        .collect();
    let with = |status: crate::SessionStatus| {
        sessions.iter().filter(|s| s.status == status).count() as i64
    };
    Entity {
        counts: crate::entity::SessionCounts {
            session_count: sessions.len() as i64,
            approved_count: with(crate::SessionStatus::Approved),
            declined_count: with(crate::SessionStatus::Declined),
            in_review_count: with(crate::SessionStatus::InReview),
            first_session_at: sessions.iter().map(|s| s.created_at).min(),
            last_session_at: sessions.iter().map(|s| s.created_at).max(),
        },
        ..entity.clone()
    }
}

#[async_trait]
impl ShareRepository for InMemory {
    async fn find_source(
        &self,
        application_id: ApplicationId,
        id: SessionId,
    ) -> Result<Option<StoredSession>, RepoError> {
        let mut state = self.state();
        Ok(find_mut(&mut state, application_id, id).map(|(r, _)| r.session.clone()))
    }

    async fn record_share_token(&self, token: &IssuedShareToken) -> Result<(), RepoError> {
        let mut state = self.state();
        let claims = &token.claims;
        claim(
            &mut state,
            claims.from_application_id,
            token.idempotency.as_ref(),
            IdempotentOperation::Share,
            crate::idempotency::share_resource(claims.session_id, &token.jti),
        )?;
        if let Some((_, logs)) = find_mut(&mut state, claims.from_application_id, claims.session_id)
        {
            logs.push(token.log.clone());
        }
        state.share_tokens.push(LedgerEntry {
            jti: token.jti.clone(),
            claims: token.claims.clone(),
            revoked_at: None,
            redeemed_at: None,
        });
        Ok(())
    }

    async fn list_unlisted_token(&self, claims: &ShareClaims) -> Result<(), RepoError> {
        let mut state = self.state();
        let Some(jti) = &claims.jti else {
            return Ok(());
        };
        if !state.share_tokens.iter().any(|t| &t.jti == jti) {
            state.share_tokens.push(LedgerEntry {
                jti: jti.clone(),
                claims: claims.clone(),
                revoked_at: None,
                redeemed_at: None,
            });
        }
        Ok(())
    }

    async fn import_context(&self, attempt: &ImportAttempt) -> Result<ImportContext, RepoError> {
        let mut state = self.state();
        state.import_context_reads += 1;
        Ok(import_context(&mut state, attempt))
    }

    async fn share_tokens_of(
        &self,
        application_id: ApplicationId,
        session_id: SessionId,
    ) -> Result<Vec<LedgerEntry>, RepoError> {
        Ok(self
            .state()
            .share_tokens
            .iter()
            .filter(|t| {
                t.claims.from_application_id == application_id && t.claims.session_id == session_id
            })
            .cloned()
            .collect())
    }

    async fn revoke_share_token(
        &self,
        application_id: ApplicationId,
        jti: &str,
        log: &LogEntry,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let Some(token) = state
            .share_tokens
            .iter_mut()
            .find(|t| t.jti == jti && t.claims.from_application_id == application_id)
        else {
            return Ok(false);
        };
        let first = token.revoked_at.is_none();
        token.revoked_at.get_or_insert(log.created_at);
        let session_id = token.claims.session_id;
        if first && let Some((_, logs)) = find_mut(&mut state, application_id, session_id) {
            logs.push(log.clone());
        }
        Ok(true)
    }

    /// Checks with the domain's [`first_failed_check`] and clones, under one lock.
    async fn import(&self, attempt: &ImportAttempt) -> Result<ImportOutcome, RepoError> {
        let mut state = self.state();
        let context = import_context(&mut state, attempt);
        match (
            first_failed_check(&context, attempt),
            context.existing_clone,
        ) {
            (Some(ImportCheck::NotImported), Some(existing)) => {
                return Ok(ImportOutcome::AlreadyImported(existing));
            }
            (Some(_), _) => return Ok(ImportOutcome::Refused),
            (None, _) => {}
        }
        // A token expected in the ledger must be there, to be redeemed.
        if attempt.listed && context.token.is_none() {
            return Ok(ImportOutcome::Refused);
        }
        let (Some(source), Some(workflow)) = (context.source, context.workflow) else {
            return Ok(ImportOutcome::Refused);
        };
        let Some((source, source_logs)) =
            find_mut(&mut state, attempt.claims.from_application_id, source.id)
                .map(|(r, l)| (r.clone(), l.clone()))
        else {
            return Ok(ImportOutcome::Refused);
        };
        let session_number = next_number(&mut state, attempt.application_id);
        let vendor_data = attempt.clone_vendor_data(&source.session).cloned();
        let kind = source.session.kind;
        let entity_status = match &vendor_data {
            Some(vendor_data) => {
                ensure_entity(
                    &mut state,
                    attempt.application_id,
                    kind,
                    vendor_data,
                    attempt.created_at,
                );
                let key = vendor_data.key();
                state
                    .entities
                    .iter()
                    .find(|(app, e)| {
                        *app == attempt.application_id
                            && e.kind == kind
                            && e.vendor_data.key() == key
                    })
                    .map(|(_, e)| e.status)
            }
            None => None,
        };
        let status = attempt.status(source.session.status, entity_status);
        let session = StoredSession {
            id: attempt.clone_id,
            application_id: attempt.application_id,
            session_number,
            session_token: attempt.session_token.clone(),
            session_url: attempt.session_url.clone(),
            status,
            workflow_id: attempt.workflow_id,
            vendor_data,
            metadata: None,
            callback: None,
            options: Default::default(),
            revision: 0,
            shared_from_session: Some(source.session.id),
            created_at: attempt.created_at,
            expires_at: attempt.expires_at(workflow),
            ..source.session.clone()
        };
        claim(
            &mut state,
            attempt.application_id,
            attempt.idempotency.as_ref(),
            IdempotentOperation::Import,
            attempt.clone_id.to_string(),
        )?;
        let mut logs: Vec<LogEntry> = source_logs
            .into_iter()
            .filter(LogEntry::copied_to_clones)
            .map(|log| LogEntry {
                actor: attempt.copied_actor(),
                ..log
            })
            .collect();
        logs.push(attempt.log.transition(source.session.status, status));
        if attempt.listed {
            let jti = attempt.claims.jti.as_deref();
            if let Some(token) = state
                .share_tokens
                .iter_mut()
                .find(|t| Some(t.jti.as_str()) == jti)
            {
                token.redeemed_at = Some(attempt.created_at);
            }
        }
        let reviews = source
            .reviews
            .into_iter()
            .map(|review| Review {
                user: attempt.copied_actor(),
                ..review
            })
            .collect();
        let record = SessionRecord {
            session,
            blocks: source.blocks,
            reviews,
        };
        if let Some((_, source_logs)) = find_mut(
            &mut state,
            attempt.claims.from_application_id,
            source.session.id,
        ) {
            source_logs.push(attempt.source_log.clone());
        }
        state.sessions.push((record.clone(), logs));
        Ok(ImportOutcome::Imported(Box::new(record)))
    }
}

#[async_trait]
impl IdempotencyRepository for InMemory {
    async fn find_idempotency(
        &self,
        application_id: ApplicationId,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredIdempotency>, RepoError> {
        Ok(self
            .state()
            .idempotency
            .iter()
            .find(|(k, stored)| k == key.as_str() && stored.application_id == application_id)
            .map(|(_, stored)| stored.clone()))
    }

    async fn record_answer(
        &self,
        application_id: ApplicationId,
        key: &IdempotencyKey,
        answer: &RecordedAnswer,
    ) -> Result<(), RepoError> {
        let mut state = self.state();
        if let Some((_, stored)) = state
            .idempotency
            .iter_mut()
            .find(|(k, stored)| k == key.as_str() && stored.application_id == application_id)
        {
            stored.answer.get_or_insert_with(|| answer.clone());
        }
        Ok(())
    }

    async fn forget_idempotency(
        &self,
        application_id: Option<ApplicationId>,
        key: Option<&IdempotencyKey>,
        before: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let mut state = self.state();
        let count = state.idempotency.len();
        state.idempotency.retain(|(k, stored)| {
            let matches = application_id.is_none_or(|app| stored.application_id == app)
                && key.is_none_or(|key| k == key.as_str())
                && stored.created_at < before;
            !matches
        });
        Ok((count - state.idempotency.len()) as u64)
    }
}

#[async_trait]
impl WebhookRepository for InMemory {
    async fn create_destination(
        &self,
        destination: &Destination,
        secret: &SealedSecret,
    ) -> Result<(), RepoError> {
        self.state()
            .destinations
            .push((destination.clone(), secret.clone()));
        Ok(())
    }

    async fn destinations(
        &self,
        application_id: ApplicationId,
    ) -> Result<Vec<Destination>, RepoError> {
        Ok(self
            .state()
            .destinations
            .iter()
            .filter(|(d, _)| d.application_id == application_id)
            .map(|(d, _)| d.clone())
            .collect())
    }

    async fn find_destination(
        &self,
        application_id: ApplicationId,
        id: uuid::Uuid,
    ) -> Result<Option<Destination>, RepoError> {
        Ok(self
            .destinations(application_id)
            .await?
            .into_iter()
            .find(|d| d.id == id))
    }

    async fn update_destination(&self, destination: &Destination) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state
            .destinations
            .iter_mut()
            .find(|(d, _)| d.id == destination.id && d.application_id == destination.application_id)
        {
            Some((stored, _)) => {
                *stored = destination.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn rotate_destination_secret(
        &self,
        application_id: ApplicationId,
        id: uuid::Uuid,
        secret: &SealedSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        match state
            .destinations
            .iter_mut()
            .find(|(d, _)| d.id == id && d.application_id == application_id)
        {
            Some((destination, stored)) => {
                destination.previous_secret_until = Some(previous_until);
                *stored = secret.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_destination(
        &self,
        application_id: ApplicationId,
        id: uuid::Uuid,
    ) -> Result<bool, RepoError> {
        let mut state = self.state();
        let before = state.destinations.len();
        state
            .destinations
            .retain(|(d, _)| !(d.id == id && d.application_id == application_id));
        let deleted = state.destinations.len() < before;
        if deleted {
            state
                .deliveries
                .retain(|(destination, _)| *destination != id);
        }
        Ok(deleted)
    }

    async fn deliveries(
        &self,
        application_id: ApplicationId,
        destination_id: uuid::Uuid,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<Delivery>, RepoError> {
        if self
            .find_destination(application_id, destination_id)
            .await?
            .is_none()
        {
            return Ok(Vec::new());
        }
        Ok(self
            .state()
            .deliveries
            .iter()
            .rev()
            .filter(|(d, _)| *d == destination_id)
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|(_, delivery)| delivery.clone())
            .collect())
    }

    async fn resend_delivery(
        &self,
        application_id: ApplicationId,
        destination_id: uuid::Uuid,
        delivery_id: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        if self
            .find_destination(application_id, destination_id)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        let mut state = self.state();
        match state
            .deliveries
            .iter_mut()
            .find(|(d, delivery)| *d == destination_id && delivery.id == delivery_id)
        {
            Some((_, delivery)) => {
                delivery.state = DeliveryState::Pending;
                delivery.next_attempt_at = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Seals nothing: the secret itself, marked `plain` (the in-memory world has no key).
#[derive(Default)]
pub struct PlainSealer;

impl SecretSealer for PlainSealer {
    fn seal(&self, _: &str, secret: &[u8]) -> Result<SealedSecret, RepoError> {
        Ok(SealedSecret {
            bytes: secret.to_vec(),
            sealed_with: "plain".into(),
        })
    }
}

/// What an import's checks read, from the state.
fn import_context(state: &mut State, attempt: &ImportAttempt) -> ImportContext {
    let claims = &attempt.claims;
    let token = claims.jti.as_deref().and_then(|jti| {
        state
            .share_tokens
            .iter()
            .find(|t| t.jti == jti)
            .map(|t| RecordedToken {
                claims: t.claims.clone(),
                revoked: t.revoked_at.is_some(),
                redeemed: t.redeemed_at.is_some(),
            })
    });
    let existing_clone = state
        .sessions
        .iter()
        .find(|(r, _)| {
            r.session.application_id == attempt.application_id
                && r.session.shared_from_session == Some(claims.session_id)
        })
        .map(|(r, _)| r.session.id);
    let found = find_mut(state, claims.from_application_id, claims.session_id).map(|(r, _)| {
        (
            r.session.clone(),
            r.blocks.iter().map(|(b, _)| *b).collect(),
        )
    });
    let (source, recorded_blocks) = match found {
        Some((session, blocks)) => (Some(session), blocks),
        None => (None, Vec::new()),
    };
    let workflow = state
        .workflows
        .iter()
        .find(|(w, deleted)| {
            w.application_id == attempt.application_id && w.id == attempt.workflow_id && !deleted
        })
        .map(|(w, _)| ImportWorkflow {
            kind: w.kind,
            session_expiration_time: w.session_expiration_time,
        });
    ImportContext {
        token,
        source,
        recorded_blocks,
        existing_clone,
        workflow,
    }
}

/// A clock that stands still until moved.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock.
    pub fn set(&self, at: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ids counted up from 1, so that tests can predict them.
#[derive(Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn uuid(&self) -> Uuid {
        Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::Relaxed) + 1))
    }

    fn token(&self, bytes: usize) -> Result<String, RepoError> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(format!("{n:0width$x}", width = bytes * 2))
    }
}

/// Share tokens as opaque handles: `issue` hands out `token-<n>`; tests can plant any answer
/// for any string with [`FakeTokens::plant`]. Unknown strings are invalid.
#[derive(Default)]
pub struct FakeTokens(Mutex<HashMap<String, Result<ShareClaims, TokenError>>>);

impl FakeTokens {
    /// Makes `token` verify as `answer`.
    pub fn plant(&self, token: &str, answer: Result<ShareClaims, TokenError>) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.to_owned(), answer);
    }
}

impl ShareTokens for FakeTokens {
    fn issue(&self, claims: &ShareClaims) -> Result<String, TokenError> {
        let mut tokens = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let token = format!("token-{}", tokens.len() + 1);
        tokens.insert(token.clone(), Ok(claims.clone()));
        Ok(token)
    }

    fn verify(&self, token: &str) -> Result<ShareClaims, TokenError> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned()
            .unwrap_or(Err(TokenError::Invalid))
    }
}

/// A whole in-memory world: the ports, and handles on the store, the clock and the tokens.
pub struct World {
    /// Ports for [`crate::services::Services::new`].
    pub ports: Ports,
    /// The store behind every repository port.
    pub store: Arc<InMemory>,
    /// The clock.
    pub clock: Arc<FixedClock>,
    /// The tokens.
    pub tokens: Arc<FakeTokens>,
}

impl World {
    /// A fresh, empty world at a fixed time.
    pub fn new() -> Self {
        let store = Arc::new(InMemory::default());
        let clock = Arc::new(FixedClock::new(
            DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default(),
        ));
        let tokens = Arc::new(FakeTokens::default());
        let ports = Ports {
            applications: store.clone(),
            workflows: store.clone(),
            sessions: store.clone(),
            entities: store.clone(),
            shares: store.clone(),
            idempotency: store.clone(),
            webhooks: store.clone(),
            sealer: Arc::new(PlainSealer),
            tokens: tokens.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::default()),
        };
        Self {
            ports,
            store,
            clock,
            tokens,
        }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}
