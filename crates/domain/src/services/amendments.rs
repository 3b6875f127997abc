//! A reviewer's amendments of a session's recorded results: resubmitting single steps (Didit's
//! `nodes_to_resubmit`) and correcting extracted data (`update-data`, `update-poa-data`). Each
//! reads the session, computes the blocks it changes, and writes them only if the session did
//! not change meanwhile (its `revision`), reading again when it did.

use crate::action::LogAction;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{Error, SessionService};
use crate::application::Caller;
use crate::block::FeatureItem;
use crate::correction::Correction;
use crate::error::{RepoError, ValidationErrors};
use crate::ids::SessionId;
use crate::session::{LogEntry, LogKind, RecordResults, ReviewComment, SessionRecord};
use crate::status::SessionStatus;

/// How many times an amendment reads again after losing a race before it gives up.
const ATTEMPTS: usize = 16;

impl SessionService {
    /// Sends the steps named by `nodes` (their items' `node_id`) back to the person: their items
    /// are removed (a block left empty reads as never run) and the session becomes
    /// `Resubmitted`, as a review with `comment`. The session must be reviewable.
    pub async fn resubmit(
        &self, caller: &Caller, id: SessionId, nodes: &[String], comment: Option<ReviewComment>,
    ) -> Result<(), Error> {
        let comment = comment.map(ReviewComment::into_string);
        self.amend(caller, id, |record| {
            let status = record.session.status;
            if !status.is_reviewable() {
                return Err(Error::WrongCurrentStatus(status));
            }
            let mut errors = ValidationErrors::default();
            for node in nodes {
                let known = record
                    .blocks
                    .iter()
                    .any(|(_, items)| items.iter().any(|item| item.node_id() == node));
                if !known {
                    errors.add(
                        "nodes_to_resubmit",
                        format!("{node:?} names no step with results in this session."),
                    );
                }
            }
            errors.into_result().map_err(Error::Invalid)?;
            let blocks = record
                .blocks
                .iter()
                .filter(|(_, items)| items.iter().any(|i| nodes.iter().any(|n| n == i.node_id())))
                .map(|(block, items)| {
                    let kept: Vec<FeatureItem> = items
                        .iter()
                        .filter(|i| !nodes.iter().any(|n| n == i.node_id()))
                        .cloned()
                        .collect();
                    (*block, (!kept.is_empty()).then_some(kept))
                })
                .collect();
            let results = RecordResults {
                status: Some(SessionStatus::Resubmitted),
                blocks,
                blocklist_keys: None,
            };
            let log = LogEntry {
                kind: LogKind::Review,
                actor: caller.actor(),
                action: LogAction::StatusUpdated,
                old_status: None,
                new_status: Some(SessionStatus::Resubmitted),
                comment: comment.clone(),
                details: Some(json!({ "nodes_to_resubmit": nodes })),
                created_at: self.ports.clock.now(),
            };
            Ok((results, log))
        })
        .await
        .map(|_| ())
    }

    /// Merges a reviewer's `correction` into the first item of its block, which must hold one;
    /// Didit's `data.updated` follows. The corrected item is written anew, its other members
    /// as they were.
    pub async fn correct(
        &self, caller: &Caller, id: SessionId, correction: &Correction,
    ) -> Result<SessionRecord, Error> {
        let (block, changes) = (correction.block(), correction.changes());
        self.amend(caller, id, |record| {
            let Some((first, rest)) = record.block(block).and_then(|items| items.split_first())
            else {
                return Err(Error::Invalid(ValidationErrors::single(
                    block.v3_key(),
                    "The session has no results of this step to correct.",
                )));
            };
            let mut item: Map<String, Value> = serde_json::from_str(first.json().get())
                .map_err(|e| Error::Repo(RepoError::Internal(e.into())))?;
            for (member, value) in changes {
                item.insert(member.clone(), value.clone());
            }
            let raw = RawValue::from_string(Value::Object(item).to_string())
                .map_err(|e| Error::Repo(RepoError::Internal(e.into())))?;
            let corrected = FeatureItem::parse(&raw).map_err(|e| {
                Error::Invalid(ValidationErrors::single(block.v3_key(), e.to_string()))
            })?;
            let items = std::iter::once(corrected).chain(rest.iter().cloned()).collect();
            let key = block.v3_key();
            let fields: Vec<&String> = changes.keys().collect();
            let log = LogEntry {
                kind: LogKind::Event,
                actor: caller.actor(),
                action: LogAction::ResultsRecorded,
                old_status: None,
                new_status: None,
                comment: None,
                details: Some(json!({ "blocks": [key], "replaced": [key], "corrected": fields })),
                created_at: self.ports.clock.now(),
            };
            let results = RecordResults {
                status: None,
                blocks: vec![(block, Some(items))],
                blocklist_keys: None,
            };
            Ok((results, log))
        })
        .await
    }

    /// Reads the session, lets `change` compute what to write, and writes it if the session's
    /// revision is still the one read; the session as it then stands.
    async fn amend(
        &self, caller: &Caller, id: SessionId,
        change: impl Fn(&SessionRecord) -> Result<(RecordResults, LogEntry), Error>,
    ) -> Result<SessionRecord, Error> {
        for _ in 0..ATTEMPTS {
            let record = self.decision(caller, id).await?;
            let (mut results, log) = change(&record)?;
            results.blocklist_keys =
                Some(super::blocklists::session_keys(&self.ports, &record, &results)?);
            let written = self
                .ports
                .sessions
                .amend_results(caller.application_id, id, record.session.revision, &results, &log)
                .await;
            match written {
                Ok(true) => return self.decision(caller, id).await,
                Ok(false) => return Err(Error::SessionNotFound),
                Err(RepoError::Changed) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(RepoError::Changed.into())
    }
}
