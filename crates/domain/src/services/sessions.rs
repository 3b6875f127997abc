//! Sessions: creation, recorded results, decisions, reviews, deletion, lists and entities.

use crate::action::LogAction;
use crate::ids::EntityId;
use chrono::Duration;
use serde_json::{Value, json};

use super::{Error, Ports};
use crate::application::Caller;
use crate::entity::Entity;
use crate::idempotency::IdempotencyClaim;
use crate::ids::{SessionId, WorkflowId};
use crate::kind::SessionKind;
use crate::session::{
    CallbackUrl, LogEntry, LogKind, NewSession, RecordResults, ReviewComment, ReviewDecision,
    ReviewOutcome, SessionFilter, SessionPage, SessionRecord, StoredSession,
};
use crate::session_options::SessionOptions;
use crate::status::{ReviewStatus, SessionStatus};
use crate::vendor_data::VendorData;
use crate::workflow::Feature;

/// Random bytes in a session token (shown as twice as many hex digits).
const SESSION_TOKEN_BYTES: usize = 16;

/// A session as the caller asks for it, validated at the edge.
#[derive(Clone, Debug)]
pub struct CreateSession {
    /// The caller's workflow to run.
    pub workflow_id: WorkflowId,
    /// The caller's reference for the person or company.
    pub vendor_data: Option<VendorData>,
    /// Where to send the user when done.
    pub callback: Option<CallbackUrl>,
    /// Free JSON.
    pub metadata: Option<Value>,
    /// How the session is presented.
    pub options: SessionOptions,
    /// Contact details.
    pub contact_details: Option<Value>,
    /// Expected details.
    pub expected_details: Option<Value>,
}

impl CreateSession {
    /// A session of `workflow_id` with nothing else given.
    pub fn of_workflow(workflow_id: WorkflowId) -> Self {
        Self {
            workflow_id,
            vendor_data: None,
            callback: None,
            metadata: None,
            options: SessionOptions::default(),
            contact_details: None,
            expected_details: None,
        }
    }
}

/// How many feature items a session may hold: per block, and in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemLimits {
    /// Items in one block (`HANDOFF_MAX_ITEMS_PER_BLOCK`).
    pub per_block: usize,
    /// Items in all the session's blocks (`HANDOFF_MAX_ITEMS_PER_SESSION`).
    pub per_session: usize,
}

impl Default for ItemLimits {
    fn default() -> Self {
        Self { per_block: 1_000, per_session: 2_000 }
    }
}

/// The session API of the contract.
#[derive(Clone)]
pub struct SessionService {
    pub(super) ports: Ports,
    session_base_url: String,
    item_limits: ItemLimits,
}

impl SessionService {
    pub(super) fn new(ports: Ports, session_base_url: String) -> Self {
        Self {
            ports,
            session_base_url: session_base_url.trim_end_matches('/').to_owned(),
            item_limits: ItemLimits::default(),
        }
    }

    pub(super) fn limit_items(&mut self, limits: ItemLimits) {
        self.item_limits = limits;
    }

    /// Creates a `Not Started` session of the workflow's kind; a new `vendor_data` creates its
    /// `ACTIVE` entity.
    pub async fn create(
        &self, caller: &Caller, request: CreateSession,
    ) -> Result<StoredSession, Error> {
        Ok(self.create_guarded(caller, request, None).await?.0)
    }

    /// [`SessionService::create`], its session stored with the request's idempotency key; with
    /// the `version` of the workflow it was created on.
    pub async fn create_guarded(
        &self, caller: &Caller, request: CreateSession, idempotency: Option<IdempotencyClaim>,
    ) -> Result<(StoredSession, i64), Error> {
        let workflow = self
            .ports
            .workflows
            .find_workflow(caller.application_id, request.workflow_id)
            .await?
            .filter(|workflow| caller.grant.sees_workflow(workflow.id))
            .ok_or(Error::WorkflowNotFound)?;
        let now = self.ports.clock.now();
        let session_token = self.ports.ids.token(SESSION_TOKEN_BYTES)?;
        let session = NewSession {
            id: SessionId::from_uuid(self.ports.ids.uuid()),
            application_id: caller.application_id,
            kind: workflow.kind,
            workflow_id: workflow.id,
            features: workflow.decision_features(),
            session_url: self.session_url(&session_token),
            session_token,
            status: SessionStatus::NotStarted,
            vendor_data: request.vendor_data,
            entity_id: EntityId::from_uuid(self.ports.ids.uuid()),
            metadata: request.metadata,
            callback: request.callback.map(CallbackUrl::into_string),
            options: request.options,
            contact_details: request.contact_details,
            expected_details: request.expected_details,
            created_at: now,
            expires_at: now + Duration::seconds(workflow.session_expiration_time),
            idempotency,
            reuse_unfinished: true,
        };
        let log = LogEntry {
            kind: LogKind::Event,
            actor: caller.actor(),
            action: LogAction::Created,
            old_status: None,
            new_status: Some(SessionStatus::NotStarted),
            comment: None,
            details: None,
            created_at: now,
        };
        Ok((self.ports.sessions.create_session(&session, &log).await?, workflow.version))
    }

    /// Records the verification engine's results and returns the session as it now stands.
    /// Blocks must belong to the session's kind. A value the application blocklisted declines
    /// the session, whatever status the results give.
    pub async fn record_results(
        &self, caller: &Caller, id: SessionId, mut results: RecordResults,
    ) -> Result<SessionRecord, Error> {
        let current = self.decision(caller, id).await?;
        let kind = current.session.kind;
        let mut errors = crate::error::ValidationErrors::default();
        let steps: Vec<Feature> = current
            .session
            .features
            .iter()
            .filter_map(|name| Feature::from_decision_name(name))
            .collect();
        let limits = self.item_limits;
        let kept: usize = current
            .blocks
            .iter()
            .filter(|(block, _)| !results.blocks.iter().any(|(b, _)| b == block))
            .map(|(_, items)| items.len())
            .sum();
        let given: usize =
            results.blocks.iter().map(|(_, items)| items.as_ref().map_or(0, Vec::len)).sum();
        if kept + given > limits.per_session {
            errors.add(
                "blocks",
                format!(
                    "a session holds at most {} items in all; these results would make it {}.",
                    limits.per_session,
                    kept + given
                ),
            );
        }
        for (block, items) in &results.blocks {
            if items.as_ref().is_some_and(|items| items.len() > limits.per_block) {
                errors.add(block.v3_key(), format!("holds at most {} items.", limits.per_block));
            }
            if !block.belongs_to(kind) {
                errors.add(block.v3_key(), format!("is not a block of a {kind} session."));
            } else if let (Some(_), Some(refused)) = (items, block.refused_for(&steps)) {
                errors.add(block.v3_key(), refused);
            }
        }
        errors.into_result().map_err(Error::Invalid)?;
        // A blocklisted value declines the session, its warning in its item.
        if super::blocklists::check_blocklists(&self.ports, &current, &mut results).await? {
            results.status = Some(SessionStatus::Declined);
        }
        results.blocklist_keys =
            Some(super::blocklists::session_keys(&self.ports, &current, &results)?);
        let recorded: Vec<&str> = results.blocks.iter().map(|(b, _)| b.v3_key()).collect();
        // Blocks recorded over existing items: Didit's `data.updated`.
        let replaced: Vec<&str> = results
            .blocks
            .iter()
            .filter(|(block, _)| current.block(*block).is_some())
            .map(|(block, _)| block.v3_key())
            .collect();
        let log = LogEntry {
            kind: LogKind::Event,
            actor: caller.actor(),
            action: LogAction::ResultsRecorded,
            old_status: None,
            new_status: results.status,
            comment: None,
            details: Some(json!({ "blocks": recorded, "replaced": replaced })),
            created_at: self.ports.clock.now(),
        };
        if !self.ports.sessions.record_results(caller.application_id, id, &results, &log).await? {
            return Err(Error::SessionNotFound);
        }
        let record = self.decision(caller, id).await?;
        if results.status == Some(SessionStatus::Declined) {
            super::blocklists::auto_blocklist(&self.ports, &record, caller.actor()).await?;
        }
        Ok(record)
    }

    /// What the end user's page says of the session whose URL carries `token`; `None` when
    /// no session has it.
    pub async fn user_facing_state(
        &self, token: &str,
    ) -> Result<Option<crate::session::UserFacingState>, Error> {
        let now = self.ports.clock.now();
        Ok(self
            .ports
            .sessions
            .find_session_by_token(token)
            .await?
            .map(|session| crate::session::UserFacingState::of(&session, now)))
    }

    /// Whether the caller's key sees session `id`: a key without a workflow limit sees every
    /// session of its application (and nothing is read); a limited key only those of its
    /// workflows, the others answering [`Error::SessionNotFound`]. The HTTP API and the console
    /// ask before any request about one session.
    pub async fn visible(&self, caller: &Caller, id: SessionId) -> Result<(), Error> {
        if caller.grant.workflows.is_none() {
            return Ok(());
        }
        match self.ports.shares.find_source(caller.application_id, id).await? {
            Some(session) if caller.grant.sees_workflow(session.workflow_id) => Ok(()),
            _ => Err(Error::SessionNotFound),
        }
    }

    /// The session with its blocks and reviews, for the decision payloads.
    pub async fn decision(&self, caller: &Caller, id: SessionId) -> Result<SessionRecord, Error> {
        self.ports
            .sessions
            .find_session(caller.application_id, id)
            .await?
            .ok_or(Error::SessionNotFound)
    }

    /// The session's events, oldest first: what happened to it besides reviews, including, for
    /// a shared source, which applications it was shared with and imported by, and for a
    /// clone, its source's history (actors redacted to the source application) and its import.
    /// Each side sees its own session's events only.
    pub async fn events(&self, caller: &Caller, id: SessionId) -> Result<Vec<LogEntry>, Error> {
        self.ports
            .sessions
            .session_events(caller.application_id, id)
            .await?
            .ok_or(Error::SessionNotFound)
    }

    /// The V2 decision: user sessions only; a business session answers as not found.
    pub async fn decision_v2(
        &self, caller: &Caller, id: SessionId,
    ) -> Result<SessionRecord, Error> {
        let record = self.decision(caller, id).await?;
        if record.session.kind == SessionKind::User {
            Ok(record)
        } else {
            Err(Error::SessionNotFound)
        }
    }

    /// Applies a reviewer's `decision`: a status ([`SessionService::review`]) or steps sent
    /// back ([`SessionService::resubmit`]).
    pub async fn decide(
        &self, caller: &Caller, id: SessionId, decision: ReviewDecision,
        comment: Option<ReviewComment>,
    ) -> Result<(), Error> {
        match decision {
            ReviewDecision::Status(status) => self.review(caller, id, status, comment).await,
            ReviewDecision::Resubmit(nodes) => {
                self.resubmit(caller, id, nodes.as_slice(), comment).await
            }
        }
    }

    /// A review: moves a reviewable session to the reviewed status and logs who did it.
    pub async fn review(
        &self, caller: &Caller, id: SessionId, new_status: ReviewStatus,
        comment: Option<ReviewComment>,
    ) -> Result<(), Error> {
        let log = LogEntry {
            kind: LogKind::Review,
            actor: caller.actor(),
            action: LogAction::StatusUpdated,
            old_status: None,
            new_status: Some(new_status.status()),
            comment: comment.map(ReviewComment::into_string),
            details: None,
            created_at: self.ports.clock.now(),
        };
        match self.ports.sessions.apply_review(caller.application_id, id, new_status, &log).await? {
            ReviewOutcome::Applied if new_status == ReviewStatus::Declined => {
                let record = self.decision(caller, id).await?;
                super::blocklists::auto_blocklist(&self.ports, &record, caller.actor()).await
            }
            ReviewOutcome::Applied => Ok(()),
            ReviewOutcome::NotFound => Err(Error::SessionNotFound),
            ReviewOutcome::WrongCurrentStatus(current) => Err(Error::WrongCurrentStatus(current)),
        }
    }

    /// A page of the session's activity: its reviews and the events that set its status.
    pub async fn activity(
        &self, caller: &Caller, id: SessionId, query: crate::session::ActivityQuery,
    ) -> Result<crate::session::ActivityPage, Error> {
        self.ports
            .sessions
            .session_activity(caller.application_id, id, query)
            .await?
            .ok_or(Error::SessionNotFound)
    }

    /// Deletes the caller's sessions with these numbers (all of them with `None`) and every
    /// related row; the deleted sessions' ids and numbers, by number.
    pub async fn delete_many(
        &self, caller: &Caller, numbers: Option<&[i64]>,
    ) -> Result<Vec<(SessionId, i64)>, Error> {
        refuse_limited(caller)?;
        let mut deleted =
            self.ports.sessions.delete_sessions(caller.application_id, numbers).await?;
        deleted.sort_by_key(|(_, number)| *number);
        Ok(deleted)
    }

    /// Deletes a session and every related row.
    pub async fn delete(&self, caller: &Caller, id: SessionId) -> Result<(), Error> {
        if self.ports.sessions.delete_session(caller.application_id, id).await? {
            Ok(())
        } else {
            Err(Error::SessionNotFound)
        }
    }

    /// Records that the caller revealed the session's masked `field` (the console's document
    /// number): an event of the session's log, which a clone does not copy.
    pub async fn note_reveal(
        &self, caller: &Caller, id: SessionId, field: &str,
    ) -> Result<(), Error> {
        self.visible(caller, id).await?;
        let log = LogEntry::event(
            caller.actor(),
            LogAction::Revealed,
            Some(json!({"field": field})),
            self.ports.clock.now(),
        );
        if self.ports.sessions.append_event(caller.application_id, id, &log).await? {
            Ok(())
        } else {
            Err(Error::SessionNotFound)
        }
    }

    /// How many of the caller's sessions (of the workflows its key sees) are in each status.
    pub async fn status_counts(&self, caller: &Caller) -> Result<Vec<(SessionStatus, u64)>, Error> {
        let workflows = caller.grant.workflows.as_deref();
        Ok(self.ports.sessions.count_by_status(caller.application_id, workflows).await?)
    }

    /// Assigns the caller's session to its reviewer `reviewer` (`None`: to nobody).
    pub async fn assign(
        &self, caller: &Caller, id: SessionId, reviewer: Option<crate::ids::ReviewerId>,
    ) -> Result<(), Error> {
        self.visible(caller, id).await?;
        let at = self.ports.clock.now();
        if self.ports.sessions.assign_session(caller.application_id, id, reviewer, at).await? {
            Ok(())
        } else {
            Err(Error::SessionNotFound)
        }
    }

    /// Whom each of these sessions of the caller is assigned to, by email.
    pub async fn assignees(
        &self, caller: &Caller, ids: &[SessionId],
    ) -> Result<std::collections::HashMap<SessionId, String>, Error> {
        Ok(self.ports.sessions.assignees(caller.application_id, ids).await?.into_iter().collect())
    }

    /// One page of the caller's sessions.
    pub async fn list(
        &self, caller: &Caller, filter: &SessionFilter,
    ) -> Result<SessionPage, Error> {
        let filter = SessionFilter { workflows: caller.grant.workflows.clone(), ..filter.clone() };
        Ok(self.ports.sessions.list_sessions(caller.application_id, &filter).await?)
    }

    /// The caller's User (`user`) or Business (`business`) with this `vendor_data`.
    pub async fn entity(
        &self, caller: &Caller, kind: SessionKind, vendor_data: &VendorData,
    ) -> Result<Entity, Error> {
        self.ports
            .entities
            .find_entity(caller.application_id, kind, vendor_data)
            .await?
            .ok_or(Error::EntityNotFound)
    }

    /// Changes the caller's User (`user`) or Business (`business`) with this `vendor_data`:
    /// its profile, and its status (a change to the status it has changes nothing of it).
    pub async fn update_entity(
        &self, caller: &Caller, kind: SessionKind, vendor_data: &VendorData,
        profile: crate::entity::ProfileChange,
        status: Option<(crate::EntityStatus, Option<String>)>,
    ) -> Result<Entity, Error> {
        let update = crate::entity::EntityUpdate {
            profile,
            status: status
                .map(|(status, reason)| crate::entity::EntityStatusChange { status, reason }),
            actor: caller.actor(),
            at: self.ports.clock.now(),
        };
        self.ports
            .entities
            .update_entity(caller.application_id, kind, vendor_data, &update)
            .await?
            .ok_or(Error::EntityNotFound)
    }

    /// Creates a User or Business of the caller; a `vendor_data` it has already is refused.
    pub async fn create_entity(
        &self, caller: &Caller, kind: SessionKind, vendor_data: VendorData,
        status: crate::EntityStatus, display_name: Option<String>,
        metadata: Option<serde_json::Value>,
    ) -> Result<Entity, Error> {
        let new = crate::entity::NewEntity {
            id: EntityId::from_uuid(self.ports.ids.uuid()),
            kind,
            vendor_data,
            status,
            display_name,
            metadata,
            created_at: self.ports.clock.now(),
        };
        self.ports.entities.create_entity(caller.application_id, &new).await?.ok_or_else(|| {
            Error::Invalid(crate::ValidationErrors::single(
                "vendor_data",
                format!("A {} with this vendor_data already exists.", kind.as_str()),
            ))
        })
    }

    /// A page of the caller's Users or Businesses, newest first.
    pub async fn entities(
        &self, caller: &Caller, kind: SessionKind, filter: &crate::entity::EntityFilter,
    ) -> Result<crate::entity::EntityPage, Error> {
        Ok(self.ports.entities.list_entities(caller.application_id, kind, filter).await?)
    }

    /// Deletes the caller's Users or Businesses named (all with `None`), each with its
    /// sessions; how many.
    pub async fn delete_entities(
        &self, caller: &Caller, kind: SessionKind, selection: Option<(&[VendorData], &[EntityId])>,
    ) -> Result<u64, Error> {
        refuse_limited(caller)?;
        Ok(self.ports.entities.delete_entities(caller.application_id, kind, selection).await?)
    }

    fn session_url(&self, token: &str) -> String {
        format!("{}/session/{token}", self.session_base_url)
    }
}

/// A delete of many sessions reaches beyond a workflow-limited key's sessions: refused.
fn refuse_limited(caller: &Caller) -> Result<(), Error> {
    match caller.grant.workflows {
        Some(_) => Err(Error::LimitedToWorkflows),
        None => Ok(()),
    }
}
