//! Import Shared Session: redeem a share token by cloning the source session, with every related
//! row, into the caller's application.

use crate::action::LogAction;
use serde_json::json;

use super::{Error, Ports};
use crate::application::Caller;
use crate::block::FeatureBlock;
use crate::entity::EntityStatus;
use crate::error::{RepoError, ValidationErrors};
use crate::idempotency::IdempotencyClaim;
use crate::ids::{EntityId, SessionId, WorkflowId};
use crate::kind::SessionKind;
use crate::session::{LogEntry, SessionRecord};
use crate::share::{
    ImportAttempt, ImportCheck, ImportOutcome, MaxSourceAge, ShareClaims, ShareToken, TokenError,
    first_failed_check,
};
use crate::status::SessionStatus;
use crate::vendor_data::VendorData;

/// Random bytes in a clone's session token.
const SESSION_TOKEN_BYTES: usize = 16;

/// An import as the caller asks for it; the body's shape was checked at the edge (check 2).
#[derive(Clone, Debug)]
pub struct ImportRequest {
    /// The presented token.
    pub share_token: ShareToken,
    /// The caller's workflow for the clone; `None`: the caller's default workflow of the
    /// token's kind (an extension, for clients that send none).
    pub workflow_id: Option<WorkflowId>,
    /// Keep the source status (`true`) or put the clone in review (`false`).
    pub trust_review: bool,
    /// The clone's `vendor_data`; `None` keeps the source's.
    pub vendor_data: Option<VendorData>,
    /// Refuse a source created longer ago than this (an extension); `None`: any age.
    pub max_source_age_seconds: Option<MaxSourceAge>,
}

/// What an import would create (Import Shared Session's preview, an extension).
#[derive(Clone, Debug, PartialEq)]
pub struct ImportPreview {
    /// The source's kind, the clone's too.
    pub session_kind: SessionKind,
    /// The source session, the clone's `shared_from_session`.
    pub source_session: SessionId,
    /// The source's status now.
    pub source_status: SessionStatus,
    /// The status the clone would get (trust_review and the receiver's entity).
    pub status: SessionStatus,
    /// The clone's `vendor_data`.
    pub vendor_data: Option<VendorData>,
    /// What the import would do to the receiver's User or Business, when there is a
    /// `vendor_data`.
    pub entity: Option<EntityEffect>,
    /// The feature blocks the clone would hold.
    pub blocks: Vec<FeatureBlock>,
    /// The blocks the source recorded that the share withholds (it names others).
    pub withheld: Vec<FeatureBlock>,
    /// The entry types of the source's values the receiver blocklisted (the clone would be
    /// `Declined`).
    pub blocklisted: Vec<crate::lists::EntryType>,
}

/// What an import does to the receiver's entity for the clone's `vendor_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityEffect {
    /// None exists: one would be created, `ACTIVE`.
    Created,
    /// One exists, with this status, and the clone would join it.
    Joined(EntityStatus),
}

/// Redeems share tokens.
#[derive(Clone)]
pub struct ImportService {
    ports: Ports,
    session_base_url: String,
    accept_unlisted_tokens: bool,
    federated: Option<Federated>,
}

impl ImportService {
    pub(super) fn new(ports: Ports, session_base_url: String) -> Self {
        Self { ports, session_base_url, accept_unlisted_tokens: false, federated: None }
    }

    /// Imports tokens that partner deployments issued; without it, such a token is invalid.
    pub fn federate(&mut self, federated: Federated) {
        self.federated = Some(federated);
    }

    /// Imports tokens this deployment did not issue (signed with a shared secret, no ledger
    /// row), once per receiver; off unless the operator opts in.
    pub fn accept_unlisted_tokens(&mut self, accept: bool) {
        self.accept_unlisted_tokens = accept;
    }

    /// Imports the shared session and returns the clone, with everything its decision payload
    /// shows, as the import wrote it (no read after the write).
    ///
    /// The token is verified first (checks 3 and 4); the store then makes the import in one
    /// transaction, where the remaining checks hold and the database settles a race between
    /// two imports of the same source. Only when the store refuses are the checks read and
    /// answered in the contract's order ([`first_failed_check`]); if they all pass by then (a
    /// concurrent change moved on), the import is tried once more.
    pub async fn import(
        &self, caller: &Caller, request: ImportRequest,
    ) -> Result<SessionRecord, Error> {
        self.import_guarded(caller, request, None).await
    }

    /// [`ImportService::import`], its clone stored with the request's idempotency key.
    pub async fn import_guarded(
        &self, caller: &Caller, request: ImportRequest, idempotency: Option<IdempotencyClaim>,
    ) -> Result<SessionRecord, Error> {
        let claims = match self.ports.tokens.verify(request.share_token.expose()) {
            Err(TokenError::Foreign(issuer)) => {
                return self.import_from_partner(caller, &issuer, request, idempotency).await;
            }
            verified => verified.map_err(token_refusal)?,
        };
        let claims = self.named(claims, &request.share_token);
        let named = request.workflow_id.is_some();
        let mut attempt = self.attempt(caller, claims, request).await?;
        attempt.idempotency = idempotency;
        for _ in 0..2 {
            match self.ports.shares.import(&attempt).await? {
                ImportOutcome::Imported(clone) => return Ok(*clone),
                ImportOutcome::AlreadyImported(existing) => {
                    return Err(Error::ImportRefused {
                        check: ImportCheck::NotImported,
                        existing_clone: Some(existing),
                    });
                }
                ImportOutcome::Refused => {}
            }
            let context = self.ports.shares.import_context(&attempt).await?;
            if let Some(check) = first_failed_check(&context, &attempt) {
                return Err(refusal(check, named, context.existing_clone));
            }
            // A token the ledger does not know, which this deployment accepts: listed now, so
            // that it is redeemed as any other (and stays redeemed once its clone is deleted).
            if context.token.is_none() {
                self.ports.shares.list_unlisted_token(&attempt.claims).await?;
            }
        }
        Err(RepoError::Unavailable(
            "the import was refused twice while every check passed; try again".into(),
        )
        .into())
    }

    /// What [`ImportService::import`] would do with `request`, without doing it: every check
    /// runs, in the contract's order, and the first that fails is the answer, as the import
    /// would give it; when all pass, what the clone would be. Nothing is written, nothing
    /// redeemed.
    pub async fn preview(
        &self, caller: &Caller, request: ImportRequest,
    ) -> Result<ImportPreview, Error> {
        let claims = match self.ports.tokens.verify(request.share_token.expose()) {
            Err(TokenError::Foreign(issuer)) => {
                return self.preview_from_partner(caller, &issuer, request).await;
            }
            verified => verified.map_err(token_refusal)?,
        };
        let claims = self.named(claims, &request.share_token);
        let named = request.workflow_id.is_some();
        let attempt = self.attempt(caller, claims, request).await?;
        let context = self.ports.shares.import_context(&attempt).await?;
        if let Some(check) = first_failed_check(&context, &attempt) {
            return Err(refusal(check, named, context.existing_clone));
        }
        let source = context.source.ok_or_else(|| Error::refused(ImportCheck::SourceExists))?;
        let vendor_data = attempt.clone_vendor_data(&source).cloned();
        let (blocks, withheld) = attempt.claims.split(&context.recorded_blocks);
        let entity = context.receiver_entity.map(|(_, status)| status);
        Ok(ImportPreview {
            session_kind: source.kind,
            source_session: source.id,
            source_status: source.status,
            status: attempt.status(source.status, entity, &context.blocklisted),
            blocklisted: context.blocklisted.clone(),
            vendor_data: vendor_data.clone(),
            entity: vendor_data.map(|_| match entity {
                Some(status) => EntityEffect::Joined(status),
                None => EntityEffect::Created,
            }),
            blocks,
            withheld,
        })
    }

    /// `claims` with a `jti`: a token without one, when this deployment accepts unlisted
    /// tokens, is named by the SHA-256 of the token (`sha256:<hex>`), so that the ledger can
    /// record its redemption and an operator can block it.
    fn named(&self, mut claims: ShareClaims, token: &ShareToken) -> ShareClaims {
        if claims.jti.is_none() && self.accept_unlisted_tokens {
            claims.jti = Some(unlisted_jti(token));
        }
        claims
    }

    /// The workflow of an import: the one named, or when none is, the caller's default
    /// workflow of the token's kind; either one the caller's key sees. Else the nil id, which
    /// names no workflow (check 9 then fails, see [`refusal`]).
    async fn workflow(
        &self, caller: &Caller, claims: &ShareClaims, named: Option<WorkflowId>,
    ) -> Result<WorkflowId, Error> {
        let nil = WorkflowId::from_uuid(uuid::Uuid::nil());
        if let Some(id) = named {
            return Ok(if caller.grant.sees_workflow(id) { id } else { nil });
        }
        let workflows = self.ports.workflows.list_workflows(caller.application_id).await?;
        Ok(workflows
            .iter()
            .find(|w| {
                w.is_default && w.kind == claims.session_kind && caller.grant.sees_workflow(w.id)
            })
            .map_or(nil, |w| w.id))
    }

    /// The import the store is asked to make: the clone's fresh identity and its log row.
    async fn attempt(
        &self, caller: &Caller, claims: ShareClaims, request: ImportRequest,
    ) -> Result<ImportAttempt, Error> {
        let workflow_id = self.workflow(caller, &claims, request.workflow_id).await?;
        let now = self.ports.clock.now();
        let session_token = self.ports.ids.token(SESSION_TOKEN_BYTES)?;
        let mut details = json!({
            "source_application_id": claims.from_application_id.to_string(),
            "source_session_id": claims.session_id.to_string(),
            "trust_review": request.trust_review,
            "jti": claims.jti,
        });
        // What the share withheld: every block of the kind it did not name.
        if claims.blocks.is_some() {
            let withheld = FeatureBlock::for_kind(claims.session_kind)
                .iter()
                .filter(|block| !claims.carries(**block))
                .map(|block| block.v3_key())
                .collect::<Vec<_>>();
            details["withheld_blocks"] = withheld.into();
        }
        if let Some(consent) = &claims.consent {
            details["consent"] = consent.to_json();
        }
        // What the source's owner learns: which application imported, with which token; never
        // the clone's id or anything else of the receiver's.
        let source_details = json!({
            "application_id": caller.application_id.to_string(),
            "jti": claims.jti,
        });
        Ok(ImportAttempt {
            listed: claims.jti.is_some(),
            claims,
            application_id: caller.application_id,
            accept_unlisted_tokens: self.accept_unlisted_tokens,
            workflow_id,
            clone_id: SessionId::from_uuid(self.ports.ids.uuid()),
            session_url: format!("{}/session/{session_token}", self.session_base_url),
            session_token,
            trust_review: request.trust_review,
            vendor_data: request.vendor_data,
            entity_id: EntityId::from_uuid(self.ports.ids.uuid()),
            created_at: now,
            log: LogEntry::event(caller.actor(), LogAction::Imported, Some(details), now),
            source_log: LogEntry::event(
                format!("application:{}", caller.application_id),
                LogAction::ImportedBy,
                Some(source_details),
                now,
            ),
            source_created_after: request.max_source_age_seconds.map(|age| age.created_after(now)),
            idempotency: None,
        })
    }
}

/// Checks 3 and 4: why the token does not verify, or has expired.
fn token_refusal(error: TokenError) -> Error {
    match error {
        TokenError::Expired => Error::refused(ImportCheck::TokenNotExpired),
        TokenError::Invalid | TokenError::Signing(_) | TokenError::Foreign(_) => {
            Error::refused(ImportCheck::TokenValid)
        }
    }
}

/// The error of a failed check. An import that named no workflow and found no default one fails
/// check 9 as a request without the field: 400 naming `workflow_id`.
fn refusal(check: ImportCheck, named_workflow: bool, existing_clone: Option<SessionId>) -> Error {
    if check == ImportCheck::WorkflowExists && !named_workflow {
        let mut errors = ValidationErrors::default();
        errors.add(
            "workflow_id",
            "This field is required: the application has no default workflow of the shared \
             session's kind.",
        );
        return Error::Invalid(errors);
    }
    Error::ImportRefused { check, existing_clone }
}

/// The `jti` under which a token without one is listed: `sha256:` and the hex SHA-256 of the
/// token's text.
pub fn unlisted_jti(token: &ShareToken) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.expose().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

mod partner;

pub use partner::Federated;

#[cfg(test)]
mod tests;
