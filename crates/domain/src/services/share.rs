//! Share Session: issue a share token for one of the caller's finished sessions.

use crate::action::LogAction;
use chrono::Duration;

use super::{Error, Ports};
use crate::application::Caller;
use crate::error::RepoError;
use crate::idempotency::IdempotencyClaim;
use crate::ids::{ApplicationId, SessionId};
use crate::kind::SessionKind;
use crate::session::LogEntry;
use crate::share::{
    IssuedShareToken, LedgerEntry, ShareClaims, ShareToken, ShareTtl, TokenError, TokenState,
};

/// A share as the caller asks for it, validated at the edge.
#[derive(Clone, Debug)]
pub struct ShareRequest {
    /// The only application that may import the session.
    pub for_application_id: ApplicationId,
    /// The token's lifetime.
    pub ttl: ShareTtl,
    /// The blocks the share carries (an extension); `None`: every block.
    pub blocks: Option<Vec<crate::block::FeatureBlock>>,
    /// The person's consent to the share (an extension).
    pub consent: Option<crate::share::Consent>,
}

/// A token issued by [`ShareService::share`].
#[derive(Clone, Debug)]
pub struct SharedSession {
    /// The compact token.
    pub share_token: ShareToken,
    /// Who may import it.
    pub for_application_id: ApplicationId,
    /// The session's kind.
    pub session_kind: SessionKind,
}

/// The blocks a share names, checked against the session's kind, in the blocks' order; `None`
/// (every block) when it names none.
fn named_blocks(
    kind: SessionKind, named: Option<Vec<crate::block::FeatureBlock>>,
) -> Result<Option<Vec<crate::block::FeatureBlock>>, Error> {
    let Some(mut named) = named else {
        return Ok(None);
    };
    let foreign: Vec<&str> =
        named.iter().filter(|b| !b.belongs_to(kind)).map(|b| b.v3_key()).collect();
    if !foreign.is_empty() {
        let mut errors = crate::error::ValidationErrors::default();
        errors.add(
            "blocks",
            format!("{} are not blocks of a {} session.", foreign.join(", "), kind.as_str()),
        );
        return Err(Error::Invalid(errors));
    }
    named.sort();
    named.dedup();
    Ok(Some(named))
}

/// The details of the source's `shared` log row: to whom, which token, until when, the blocks
/// it carries when it names them, and the person's consent when it was recorded.
fn shared_details(claims: &ShareClaims) -> serde_json::Value {
    let mut details = serde_json::json!({
        "for_application_id": claims.for_application_id.to_string(),
        "jti": claims.jti,
        "expires_at": claims.expires_at.timestamp(),
    });
    if let Some(blocks) = &claims.blocks {
        details["blocks"] = blocks.iter().map(|b| b.v3_key()).collect::<Vec<_>>().into();
    }
    if let Some(consent) = &claims.consent {
        details["consent"] = consent.to_json();
    }
    details
}

/// Issues share tokens.
#[derive(Clone)]
pub struct ShareService {
    ports: Ports,
    partners: Option<std::sync::Arc<dyn crate::ports::PartnerRepository>>,
}

impl ShareService {
    pub(super) fn new(ports: Ports) -> Self {
        Self { ports, partners: None }
    }

    /// Shares with the applications partner deployments list, too.
    pub fn federate(&mut self, partners: std::sync::Arc<dyn crate::ports::PartnerRepository>) {
        self.partners = Some(partners);
    }

    /// Whether `id` is an application of this deployment or one a partner lists.
    async fn receiver_exists(&self, id: crate::ids::ApplicationId) -> Result<bool, Error> {
        if self.ports.applications.application_exists(id).await? {
            return Ok(true);
        }
        Ok(match &self.partners {
            Some(partners) => {
                partners.partners().await?.iter().any(|p| p.applications.contains(&id))
            }
            None => false,
        })
    }

    /// Issues a token for one of the caller's sessions, addressed to another application.
    ///
    /// Checks, first failure wins: the session is the caller's (`SessionNotFound`); the target is
    /// not the caller (`CannotShareWithSelf`); the target exists here or a partner lists it
    /// (`UnknownApplication`); the session is `Approved`, `Declined` or `In Review`
    /// (`SessionNotShareable`); the named blocks are of its kind (`Invalid`); consent is given
    /// when the application requires it (`ConsentRequired`).
    pub async fn share(
        &self, caller: &Caller, session_id: SessionId, request: ShareRequest,
    ) -> Result<SharedSession, Error> {
        self.share_guarded(caller, session_id, request, None).await
    }

    /// [`ShareService::share`], its token recorded with the request's idempotency key.
    pub async fn share_guarded(
        &self, caller: &Caller, session_id: SessionId, request: ShareRequest,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<SharedSession, Error> {
        let session = self
            .ports
            .shares
            .find_source(caller.application_id, session_id)
            .await?
            .ok_or(Error::SessionNotFound)?;
        if request.for_application_id == caller.application_id {
            return Err(Error::CannotShareWithSelf);
        }
        if !self.receiver_exists(request.for_application_id).await? {
            return Err(Error::UnknownApplication);
        }
        if !session.status.is_shareable() {
            return Err(Error::SessionNotShareable(session.status));
        }
        let blocks = named_blocks(session.kind, request.blocks)?;
        let settings = self
            .ports
            .applications
            .application_settings(caller.application_id)
            .await?
            .unwrap_or_default();
        if settings.require_consent && request.consent.is_none() {
            return Err(Error::ConsentRequired);
        }
        // Whole seconds, as the token carries them: the ledger row then equals the claims a
        // verified token gives back, which an import compares.
        let now = self.ports.clock.now();
        let issued_at = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let claims = ShareClaims {
            session_id,
            session_kind: session.kind,
            from_application_id: caller.application_id,
            for_application_id: request.for_application_id,
            issued_at,
            expires_at: issued_at + Duration::seconds(request.ttl.seconds()),
            jti: Some(self.ports.ids.uuid().to_string()),
            blocks,
            consent: request.consent,
        };
        let share_token = self.sign(&claims)?;
        let log =
            LogEntry::event(caller.actor(), LogAction::Shared, Some(shared_details(&claims)), now);
        let record = IssuedShareToken {
            jti: claims.jti.clone().unwrap_or_default(),
            claims,
            log,
            idempotency,
        };
        self.ports.shares.record_share_token(&record).await?;
        Ok(SharedSession {
            share_token: ShareToken::new(share_token),
            for_application_id: request.for_application_id,
            session_kind: session.kind,
        })
    }

    /// The token `jti` of the caller's session `session_id` signed again from the ledger's
    /// claims: the answer of a share whose answer was lost (its process stopped between the
    /// write and the answer). With the same key, the same bytes.
    pub async fn reissue(
        &self, caller: &Caller, session_id: SessionId, jti: &str,
    ) -> Result<SharedSession, Error> {
        let (entry, _) = self
            .ledger(caller, session_id)
            .await?
            .into_iter()
            .find(|(entry, _)| entry.jti == jti)
            .ok_or(Error::ShareTokenNotFound)?;
        let share_token = self.sign(&entry.claims)?;
        Ok(SharedSession {
            share_token: ShareToken::new(share_token),
            for_application_id: entry.claims.for_application_id,
            session_kind: entry.claims.session_kind,
        })
    }

    /// `claims` signed; no signing key is 503 `signing_unavailable`.
    fn sign(&self, claims: &ShareClaims) -> Result<String, Error> {
        self.ports.tokens.issue(claims).map_err(|e| match e {
            TokenError::Signing(_) => Error::SigningUnavailable,
            other => Error::Repo(RepoError::Internal(Box::new(other))),
        })
    }

    /// The public keys that verify share tokens (a JWK Set; empty unless tokens are signed
    /// with EdDSA). Anyone may read them.
    pub fn published_keys(&self) -> serde_json::Value {
        self.ports.tokens.published_keys()
    }

    /// Every token the caller issued for one of its sessions, oldest first, with where each
    /// stands now.
    pub async fn ledger(
        &self, caller: &Caller, session_id: SessionId,
    ) -> Result<Vec<(LedgerEntry, TokenState)>, Error> {
        self.ports
            .shares
            .find_source(caller.application_id, session_id)
            .await?
            .ok_or(Error::SessionNotFound)?;
        let now = self.ports.clock.now();
        Ok(self
            .ports
            .shares
            .share_tokens_of(caller.application_id, session_id)
            .await?
            .into_iter()
            .map(|entry| {
                let state = entry.state(now);
                (entry, state)
            })
            .collect())
    }

    /// Revokes a token the caller issued for its session `session_id`, and answers where it
    /// stands then. A token already redeemed stays redeemed; revoking twice changes nothing.
    pub async fn revoke(
        &self, caller: &Caller, session_id: SessionId, jti: &str,
    ) -> Result<(LedgerEntry, TokenState), Error> {
        let issued = self.ledger(caller, session_id).await?;
        if !issued.iter().any(|(entry, _)| entry.jti == jti) {
            return Err(Error::ShareTokenNotFound);
        }
        let for_application_id = issued
            .iter()
            .find(|(entry, _)| entry.jti == jti)
            .map(|(entry, _)| entry.claims.for_application_id.to_string());
        let log = LogEntry::event(
            caller.actor(),
            LogAction::ShareRevoked,
            Some(serde_json::json!({"jti": jti, "for_application_id": for_application_id})),
            self.ports.clock.now(),
        );
        self.ports.shares.revoke_share_token(caller.application_id, jti, &log).await?;
        self.ledger(caller, session_id)
            .await?
            .into_iter()
            .find(|(entry, _)| entry.jti == jti)
            .ok_or(Error::ShareTokenNotFound)
    }
}
