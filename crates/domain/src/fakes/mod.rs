//! In-memory implementations of every port, for tests and for embedders who want the rules
//! without a database. Built from std only; one mutex guards the whole state, which is plenty
//! for tests and makes every method trivially atomic.

use crate::ids::EntityId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api_key::{ApiKeyInfo, NewApiKey, StoredApiKey};
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

mod applications;
mod doubles;
mod entities;
mod idempotency;
mod lists;
mod sessions;
mod shares;
mod webhooks;
mod workflows;

pub use doubles::{FakeTokens, FixedClock, PlainSealer, SequentialIds};

/// Everything the in-memory store holds.
#[derive(Default)]
pub struct State {
    /// Applications.
    pub applications: Vec<Application>,
    /// Applications' settings, where the operator changed them.
    pub settings: Vec<(ApplicationId, crate::application::ApplicationSettings)>,
    /// Each key with when it was made and revoked.
    pub api_keys: Vec<(NewApiKey, DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// Console sessions by id hash, with when each was last used.
    pub console_sessions: Vec<(ConsoleSessionHash, ConsoleSession, DateTime<Utc>)>,
    /// Reviewers of every application.
    pub reviewers: Vec<crate::reviewer::StoredReviewer>,
    /// Sessions assigned to reviewers.
    pub assignments: Vec<(SessionId, crate::ids::ReviewerId)>,
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
    pub deliveries: Vec<(crate::DestinationId, Delivery)>,
    /// Stored lists by application.
    pub lists: Vec<(ApplicationId, crate::lists::List)>,
    /// List entries by application.
    pub list_entries: Vec<(ApplicationId, crate::lists::NewEntry)>,
}

/// Every repository port in memory.
#[derive(Default)]
pub struct InMemory {
    state: Mutex<State>,
}

impl InMemory {
    /// The state, for tests to arrange and inspect.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn ensure_entity(
    state: &mut State, application_id: ApplicationId, kind: SessionKind, vendor_data: &VendorData,
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
                id: EntityId::from_uuid(Uuid::new_v4()),
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
    state: &mut State, application_id: ApplicationId, claim: Option<&IdempotencyClaim>,
    operation: IdempotentOperation, resource_id: String,
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

/// How many `rows` there are, and the page of them that skips `offset` and holds `limit`.
fn page<T>(rows: Vec<T>, offset: u64, limit: u64) -> (u64, Vec<T>) {
    let count = rows.len() as u64;
    let skip = usize::try_from(offset).unwrap_or(usize::MAX);
    (
        count,
        rows.into_iter().skip(skip).take(usize::try_from(limit).unwrap_or(usize::MAX)).collect(),
    )
}

fn next_number(state: &mut State, application_id: ApplicationId) -> i64 {
    let n = state.last_session_number.entry(application_id).or_insert(0);
    *n += 1;
    *n
}

fn find_mut(
    state: &mut State, application_id: ApplicationId, id: SessionId,
) -> Option<&mut (SessionRecord, Vec<LogEntry>)> {
    state
        .sessions
        .iter_mut()
        .find(|(r, _)| r.session.application_id == application_id && r.session.id == id)
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

/// What an import's checks read, from the state.
fn import_context(state: &mut State, attempt: &ImportAttempt) -> ImportContext {
    let claims = &attempt.claims;
    let token = claims.jti.as_deref().and_then(|jti| {
        state.share_tokens.iter().find(|t| t.jti == jti).map(|t| RecordedToken {
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
    let found = find_mut(state, claims.from_application_id, claims.session_id)
        .map(|(r, _)| (r.session.clone(), r.blocks.iter().map(|(b, _)| *b).collect()));
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
    let receiver_entity = source.as_ref().and_then(|source| {
        let key = attempt.clone_vendor_data(source)?.key();
        state
            .entities
            .iter()
            .find(|(app, e)| {
                *app == attempt.application_id
                    && e.kind == source.kind
                    && e.vendor_data.key() == key
            })
            .map(|(_, e)| (e.id, e.status))
    });
    ImportContext {
        token,
        source,
        recorded_blocks,
        existing_clone,
        workflow,
        receiver_entity,
        blocklisted: Vec::new(),
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
            lists: store.clone(),
            sealer: Arc::new(PlainSealer),
            tokens: tokens.clone(),
            clock: clock.clone(),
            ids: Arc::new(SequentialIds::default()),
        };
        Self { ports, store, clock, tokens }
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}
