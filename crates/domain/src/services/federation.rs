//! The issuer's side of sharing across deployments: a partner redeems a token this deployment
//! issued, and obtains the session. The protocol: `docs/federation.md`.

use std::sync::Arc;

use serde_json::json;

use super::Error;
use crate::action::LogAction;
use crate::federation::{HandOver, HandOverOutcome, Partner, PartnerSession, Redemption};
use crate::ports::{Clock, PartnerRepository, ShareTokens};
use crate::session::LogEntry;
use crate::share::{ImportCheck, TokenError};

/// Hands sessions over to partner deployments.
#[derive(Clone)]
pub struct FederationService {
    tokens: Arc<dyn ShareTokens>,
    clock: Arc<dyn Clock>,
    partners: Arc<dyn PartnerRepository>,
}

impl FederationService {
    /// The service over this deployment's tokens, the time and the partners' storage.
    pub fn new(
        tokens: Arc<dyn ShareTokens>, clock: Arc<dyn Clock>, partners: Arc<dyn PartnerRepository>,
    ) -> Self {
        Self { tokens, clock, partners }
    }

    /// The issuer's checks of `redemption` by the authenticated `partner` — the token is one
    /// of this deployment's (3, 4, 5), addressed to an application the partner lists and that
    /// asks (6), its source there and finished (7), not redeemed by anyone else (8), recent
    /// enough — and with `redeem`, the redemption recorded and the session handed over.
    pub async fn hand_over(
        &self, partner: &Partner, redemption: Redemption,
    ) -> Result<PartnerSession, Error> {
        let claims = self.tokens.verify(redemption.share_token.expose()).map_err(|e| {
            Error::refused(match e {
                TokenError::Expired => ImportCheck::TokenNotExpired,
                _ => ImportCheck::TokenValid,
            })
        })?;
        let addressed = claims.for_application_id == redemption.application_id
            && partner.applications.contains(&claims.for_application_id);
        let at = self.clock.now();
        // What the source's owner learns: which partner and which of its applications
        // redeemed, with which token.
        let details = json!({
            "application_id": redemption.application_id.to_string(),
            "jti": claims.jti,
            "partner": partner.name,
            "partner_url": partner.url,
        });
        let hand_over = HandOver {
            claims,
            partner_url: partner.url.clone(),
            redeem: redemption.redeem && addressed,
            source_created_after: redemption.source_created_after,
            source_log: LogEntry::event(
                format!("partner:{}", partner.name),
                LogAction::ImportedBy,
                Some(details),
                at,
            ),
            at,
        };
        match self.partners.hand_over(&hand_over).await? {
            // Checks 5 and 7 come before 6.
            HandOverOutcome::Refused(check)
                if addressed || check.row() < ImportCheck::AddressedToCaller.row() =>
            {
                Err(Error::refused(check))
            }
            _ if !addressed => Err(Error::refused(ImportCheck::AddressedToCaller)),
            HandOverOutcome::Refused(check) => Err(Error::refused(check)),
            HandOverOutcome::Handed(session) => Ok(*session),
        }
    }
}
