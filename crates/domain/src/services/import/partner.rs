//! Import Shared Session for a token a partner deployment issued: verified with the partner's
//! keys, the issuer's checks made by the issuer in one exchange, the receiver's here, and the
//! clone written from what the issuer handed over. The protocol: `docs/federation.md`.

use std::sync::Arc;

use super::ImportPreview;
use super::{ImportRequest, ImportService, refusal};
use crate::application::Caller;
use crate::federation::{ExchangeError, Partner, PartnerSession, Redemption};
use crate::idempotency::IdempotencyClaim;
use crate::ids::SessionId;
use crate::ports::{PartnerDirectory, PartnerImport, PartnerRepository};
use crate::services::{Error, blocklists};
use crate::session::SessionRecord;
use crate::share::{ImportAttempt, ImportCheck, ImportOutcome, TokenError};

/// What importing from partners needs: their storage and their exchange.
#[derive(Clone)]
pub struct Federated {
    /// Partners and the exchange's storage.
    pub partners: Arc<dyn PartnerRepository>,
    /// Partners' keys and exchange.
    pub directory: Arc<dyn PartnerDirectory>,
}

/// The receiver's own first failing check (rows 6, 8, 9 and 10), with its existing clone.
type LocalRefusal = (ImportCheck, Option<SessionId>);

impl ImportService {
    /// Imports a token whose `iss` is the partner deployment at `issuer`.
    pub(super) async fn import_from_partner(
        &self, caller: &Caller, issuer: &str, request: ImportRequest,
        idempotency: Option<IdempotencyClaim>,
    ) -> Result<SessionRecord, Error> {
        let (federated, partner, mut attempt, named) =
            self.partner_attempt(caller, issuer, &request).await?;
        attempt.idempotency = idempotency;
        let local = self.local_refusal(federated, &attempt, &partner).await?;
        let session =
            self.exchange(federated, &partner, &request, &attempt, &local, named, true).await?;
        let (blocklisted, keys) = blocklists::partner_values(
            &self.ports,
            caller.application_id,
            session.kind,
            attempt.vendor_data.as_ref().or(session.vendor_data.as_ref()),
            &session.blocks,
        )
        .await?;
        let import = PartnerImport {
            attempt,
            issuer: partner.url.clone(),
            source: session,
            blocklisted,
            keys,
        };
        match federated.partners.import_from_partner(&import).await? {
            ImportOutcome::Imported(clone) => Ok(*clone),
            ImportOutcome::AlreadyImported(existing) => Err(Error::ImportRefused {
                check: ImportCheck::NotImported,
                existing_clone: Some(existing),
            }),
            // A concurrent change between the checks and the write: answered as it stands.
            ImportOutcome::Refused => {
                match self.local_refusal(federated, &import.attempt, &partner).await? {
                    Some((check, existing)) => Err(refusal(check, named, existing)),
                    None => Err(Error::refused(ImportCheck::NotImported)),
                }
            }
        }
    }

    /// The preview of a partner's token: every check, the issuer's by an exchange that redeems
    /// nothing, and what the clone would be from the session's summary.
    pub(super) async fn preview_from_partner(
        &self, caller: &Caller, issuer: &str, request: ImportRequest,
    ) -> Result<ImportPreview, Error> {
        let (federated, partner, attempt, named) =
            self.partner_attempt(caller, issuer, &request).await?;
        let local = self.local_refusal(federated, &attempt, &partner).await?;
        let session =
            self.exchange(federated, &partner, &request, &attempt, &local, named, false).await?;
        let vendor_data = attempt.vendor_data.clone().or_else(|| session.vendor_data.clone());
        let entity = match &vendor_data {
            Some(vendor_data) => {
                self.ports
                    .entities
                    .find_entity(caller.application_id, session.kind, vendor_data)
                    .await?
            }
            None => None,
        };
        let (blocklisted, _) = blocklists::partner_values(
            &self.ports,
            caller.application_id,
            session.kind,
            vendor_data.as_ref(),
            &[],
        )
        .await?;
        let entity_status = entity.as_ref().map(|e| e.status);
        Ok(ImportPreview {
            session_kind: session.kind,
            source_session: session.id,
            source_status: session.status,
            status: attempt.status(session.status, entity_status, &blocklisted),
            blocklisted,
            entity: vendor_data.as_ref().map(|_| match entity_status {
                Some(status) => super::EntityEffect::Joined(status),
                None => super::EntityEffect::Created,
            }),
            vendor_data,
            blocks: session.blocks.iter().map(|(block, _)| *block).collect(),
            withheld: Vec::new(),
        })
    }

    /// The partner's token verified (checks 3 and 4), and the import it asks for.
    async fn partner_attempt<'a>(
        &'a self, caller: &Caller, issuer: &str, request: &ImportRequest,
    ) -> Result<(&'a Federated, Partner, ImportAttempt, bool), Error> {
        let federated =
            self.federated.as_ref().ok_or_else(|| Error::refused(ImportCheck::TokenValid))?;
        let (partner, claims) =
            federated.directory.verify(issuer, &request.share_token).await.map_err(
                |e| match e {
                    TokenError::Expired => Error::refused(ImportCheck::TokenNotExpired),
                    _ => Error::refused(ImportCheck::TokenValid),
                },
            )?;
        // A partner's token is always listed at its issuer: one without a `jti` is not one.
        if claims.jti.is_none() {
            return Err(Error::refused(ImportCheck::TokenIssuedHere));
        }
        let named = request.workflow_id.is_some();
        let mut attempt = self.attempt(caller, claims, request.clone()).await?;
        if let Some(serde_json::Value::Object(details)) = &mut attempt.log.details {
            details.insert("partner".into(), partner.name.clone().into());
            details.insert("partner_url".into(), partner.url.clone().into());
        }
        Ok((federated, partner, attempt, named))
    }

    /// The receiver's own checks, in the contract's order: the token addressed to the caller
    /// (6), no clone of the source and the token never redeemed here (8), the workflow (9) and
    /// its kind (10).
    async fn local_refusal(
        &self, federated: &Federated, attempt: &ImportAttempt, partner: &Partner,
    ) -> Result<Option<LocalRefusal>, Error> {
        let claims = &attempt.claims;
        if claims.for_application_id != attempt.application_id {
            return Ok(Some((ImportCheck::AddressedToCaller, None)));
        }
        let jti = claims.jti.as_deref().unwrap_or_default();
        let state = federated
            .partners
            .partner_clone_state(
                attempt.application_id,
                &partner.url,
                jti,
                claims.session_id,
                attempt.workflow_id,
            )
            .await?;
        if state.existing_clone.is_some() || state.redeemed {
            return Ok(Some((ImportCheck::NotImported, state.existing_clone)));
        }
        Ok(match state.workflow {
            None => Some((ImportCheck::WorkflowExists, None)),
            Some(w) if w.kind != claims.session_kind => Some((ImportCheck::WorkflowKind, None)),
            Some(_) => None,
        })
    }

    /// The exchange: with `redeem`, redeems when the receiver's own checks passed, else only
    /// asks the issuer's; the first failing check of both, in the contract's order, is the
    /// answer.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self, federated: &Federated, partner: &Partner, request: &ImportRequest,
        attempt: &ImportAttempt, local: &Option<LocalRefusal>, named: bool, redeem: bool,
    ) -> Result<PartnerSession, Error> {
        let redemption = Redemption {
            share_token: request.share_token.clone(),
            application_id: attempt.application_id,
            redeem: redeem && local.is_none(),
            source_created_after: attempt.source_created_after,
        };
        let answer = federated.directory.redeem(partner, &redemption).await;
        match (answer, local) {
            (Err(ExchangeError::Unavailable(why)), _) => Err(Error::PartnerUnavailable(why)),
            (Err(ExchangeError::Refused(issuer)), Some((own, existing)))
                if own.row() < issuer.row() =>
            {
                Err(refusal(*own, named, *existing))
            }
            (Err(ExchangeError::Refused(issuer)), _) => Err(refusal(issuer, named, None)),
            (Ok(_), Some((own, existing))) => Err(refusal(*own, named, *existing)),
            (Ok(session), None) => Ok(session),
        }
    }
}
