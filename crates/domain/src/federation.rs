//! Sharing across deployments: the partner deployments an operator trusts, what one deployment
//! asks another in the exchange that hands a shared session over, and the issuer's checks of
//! that exchange. The wire protocol and its threat model: `docs/federation.md`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::block::{FeatureBlock, FeatureItem};
use crate::ids::{ApplicationId, SessionId};
use crate::kind::SessionKind;
use crate::session::{LogEntry, StoredSession};
use crate::share::{ImportCheck, RecordedToken, ShareClaims, ShareToken};
use crate::status::SessionStatus;
use crate::vendor_data::VendorData;

/// The longest partner name, in characters.
pub const MAX_PARTNER_NAME_CHARS: usize = 64;

/// A deployment this one trusts, as its operator added it.
#[derive(Clone, Debug, PartialEq)]
pub struct Partner {
    /// The operator's name for it (1 to [`MAX_PARTNER_NAME_CHARS`] of `[a-z0-9-_.]`).
    pub name: String,
    /// Its public URL (`HANDOFF_PUBLIC_URL` there), without a trailing `/`: the `iss` of its
    /// tokens and the base of its `/federation/` exchange.
    pub url: String,
    /// Its applications this deployment may share with.
    pub applications: Vec<ApplicationId>,
    /// Its published key set (`/.well-known/jwks.json`), public keys only, as last fetched.
    pub keys: Value,
    /// When its keys were last fetched.
    pub keys_fetched_at: DateTime<Utc>,
    /// When it was added.
    pub added_at: DateTime<Utc>,
}

/// A partner name, or what is wrong with it.
pub fn parse_partner_name(raw: &str) -> Result<String, &'static str> {
    let valid = !raw.is_empty()
        && raw.chars().count() <= MAX_PARTNER_NAME_CHARS
        && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err("a partner name is 1 to 64 of a-z, 0-9, '-', '_' and '.'")
    }
}

/// A deployment's URL as partners name it: `https://` (or `http://` where private addresses
/// are allowed), no query, no fragment, no trailing `/`; or what is wrong with it.
pub fn parse_deployment_url(raw: &str, allow_http: bool) -> Result<String, &'static str> {
    let url = raw.trim_end_matches('/');
    let rest = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => rest,
        (None, Some(rest)) if allow_http => rest,
        (None, Some(_)) => {
            return Err("a partner is reached over https (set HANDOFF_FEDERATION_ALLOW_PRIVATE \
                        for http on a private network)");
        }
        _ => return Err("a deployment URL starts with https://"),
    };
    if rest.is_empty() || rest.contains(['?', '#', ' ', '@']) || rest.starts_with('/') {
        return Err("a deployment URL is a scheme, a host and an optional path");
    }
    Ok(url.to_owned())
}

/// A shared session as its issuer hands it over: what the receiver's clone is made of.
#[derive(Clone, Debug)]
pub struct PartnerSession {
    /// The source session's id, the clone's `shared_from_session`.
    pub id: SessionId,
    /// Its kind.
    pub kind: SessionKind,
    /// Its status.
    pub status: SessionStatus,
    /// Its `vendor_data`.
    pub vendor_data: Option<VendorData>,
    /// The decision names of its workflow's features.
    pub features: Vec<String>,
    /// Its contact details.
    pub contact_details: Option<Value>,
    /// Its expected details.
    pub expected_details: Option<Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The blocks it recorded, with their items.
    pub blocks: Vec<(FeatureBlock, Vec<FeatureItem>)>,
    /// The log rows a clone copies ([`LogEntry::copied_to_clones`]), oldest first.
    pub log: Vec<LogEntry>,
}

impl PartnerSession {
    /// The session as an import's rules read a source: the fields a clone takes from it.
    pub fn as_source(&self, from: ApplicationId) -> StoredSession {
        StoredSession {
            id: self.id,
            application_id: from,
            kind: self.kind,
            session_number: 0,
            session_token: String::new(),
            session_url: String::new(),
            status: self.status,
            workflow_id: crate::ids::WorkflowId::from_uuid(uuid::Uuid::nil()),
            features: self.features.clone(),
            vendor_data: self.vendor_data.clone(),
            metadata: None,
            callback: None,
            options: Default::default(),
            revision: 0,
            contact_details: self.contact_details.clone(),
            expected_details: self.expected_details.clone(),
            shared_from_session: None,
            created_at: self.created_at,
            expires_at: self.created_at,
        }
    }
}

/// What a receiving deployment asks of the issuer in the exchange.
#[derive(Clone, Debug)]
pub struct Redemption {
    /// The share token its caller presented.
    pub share_token: ShareToken,
    /// The receiving application: the caller.
    pub application_id: ApplicationId,
    /// Whether to redeem (record and hand the session over), or only to answer the issuer's
    /// checks with the session's summary (its blocks without items, no log): a receiver whose
    /// own check fails, or that previews, asks this.
    pub redeem: bool,
    /// The oldest source creation time accepted (`max_source_age_seconds`).
    pub source_created_after: Option<DateTime<Utc>>,
}

/// Why an exchange handed nothing over.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The issuer refused by one of its checks (5, 6, 7, 8 or the source's age).
    #[error("the issuer refused: check {}", .0.row())]
    Refused(ImportCheck),
    /// The issuer could not be reached, refused this deployment, or answered out of protocol.
    #[error("the partner is unavailable: {0}")]
    Unavailable(String),
}

/// The issuer's side of an exchange, as its store is asked to make it.
#[derive(Clone, Debug)]
pub struct HandOver {
    /// What the issuer's own token says.
    pub claims: ShareClaims,
    /// The redeeming partner's URL.
    pub partner_url: String,
    /// Record the redemption and hand the session over; else only decide.
    pub redeem: bool,
    /// The oldest source creation time accepted.
    pub source_created_after: Option<DateTime<Utc>>,
    /// The source's log row that records the redemption (`imported_by`).
    pub source_log: LogEntry,
    /// When.
    pub at: DateTime<Utc>,
}

/// What the issuer's store read for an exchange.
#[derive(Clone, Debug)]
pub struct HandOverContext {
    /// The ledger's row of the token.
    pub token: Option<RecordedToken>,
    /// The partner that redeemed the token, when one did (`None` for a local redemption).
    pub redeemed_by_partner: Option<String>,
    /// The source session.
    pub source: Option<StoredSession>,
}

/// The first of the issuer's checks that fails for `hand_over` (the contract's rows 5, 7 and 8,
/// and the age extension), `None` when all pass. A token redeemed by the same partner passes:
/// the receiver died before its commit and retries.
pub fn first_failed_issuer_check(
    context: &HandOverContext, hand_over: &HandOver,
) -> Option<ImportCheck> {
    let claims = &hand_over.claims;
    match &context.token {
        None => return Some(ImportCheck::TokenIssuedHere),
        Some(recorded) if recorded.revoked => return Some(ImportCheck::TokenNotRevoked),
        Some(recorded) if !recorded.issued(claims) => return Some(ImportCheck::TokenIssuedHere),
        Some(_) => {}
    }
    let source = context.source.as_ref().filter(|source| {
        source.application_id == claims.from_application_id
            && source.kind == claims.session_kind
            && source.status.is_shareable()
    });
    let Some(source) = source else {
        return Some(ImportCheck::SourceExists);
    };
    let redeemed = context.token.as_ref().is_some_and(|t| t.redeemed);
    if redeemed && context.redeemed_by_partner.as_deref() != Some(hand_over.partner_url.as_str()) {
        return Some(ImportCheck::NotImported);
    }
    hand_over
        .source_created_after
        .is_some_and(|after| source.created_at < after)
        .then_some(ImportCheck::SourceRecentEnough)
}

/// What the issuer's store did with an exchange.
#[derive(Clone, Debug)]
pub enum HandOverOutcome {
    /// The checks passed: the session when it was redeemed, else its summary (no items, no
    /// log).
    Handed(Box<PartnerSession>),
    /// A check failed; nothing was written.
    Refused(ImportCheck),
}

/// What the receiver holds for an import of a partner's token: read before the exchange, and
/// again inside the clone's transaction.
#[derive(Clone, Debug, Default)]
pub struct PartnerCloneState {
    /// The receiver's clone of the source, when it holds one.
    pub existing_clone: Option<SessionId>,
    /// Whether the receiver redeemed this token before (even if its clone was deleted since).
    pub redeemed: bool,
    /// The receiver's (undeleted) workflow named by the import, if it holds it.
    pub workflow: Option<crate::share::ImportWorkflow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_urls_are_https_unless_private_networks_are_allowed() {
        assert_eq!(
            parse_deployment_url("https://kyc.bank.example/", false),
            Ok("https://kyc.bank.example".into())
        );
        assert!(parse_deployment_url("http://10.0.0.2:8080", false).is_err());
        assert_eq!(
            parse_deployment_url("http://10.0.0.2:8080", true),
            Ok("http://10.0.0.2:8080".into())
        );
        for bad in ["ftp://x", "https://", "https://a?b", "https://user@host", "kyc.example"] {
            assert!(parse_deployment_url(bad, true).is_err(), "{bad}");
        }
    }

    /// The issuer's checks as a decision table: each row one state of the ledger and the
    /// source, and the check that answers it.
    #[test]
    fn the_issuers_checks_answer_in_the_contracts_order() {
        use crate::share::{RecordedToken, ShareClaims};
        let now = chrono::Utc::now();
        let from = ApplicationId::from_uuid(uuid::Uuid::new_v4());
        let claims = ShareClaims {
            session_id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            session_kind: SessionKind::User,
            from_application_id: from,
            for_application_id: ApplicationId::from_uuid(uuid::Uuid::new_v4()),
            issued_at: now,
            expires_at: now + chrono::Duration::hours(1),
            jti: Some("t".into()),
            blocks: None,
            consent: None,
        };
        let source = PartnerSession {
            id: claims.session_id,
            kind: SessionKind::User,
            status: SessionStatus::Approved,
            vendor_data: None,
            features: Vec::new(),
            contact_details: None,
            expected_details: None,
            created_at: now - chrono::Duration::days(2),
            blocks: Vec::new(),
            log: Vec::new(),
        };
        let token = |revoked, redeemed| RecordedToken { claims: claims.clone(), revoked, redeemed };
        let hand_over = HandOver {
            claims: claims.clone(),
            partner_url: "https://fintech.example".into(),
            redeem: true,
            source_created_after: None,
            source_log: LogEntry::event(
                "partner:x",
                crate::action::LogAction::ImportedBy,
                None,
                now,
            ),
            at: now,
        };
        let context = |token, redeemed_by: Option<&str>, source: Option<StoredSession>| {
            HandOverContext { token, redeemed_by_partner: redeemed_by.map(str::to_owned), source }
        };
        let finished = Some(source.as_source(from));
        let mut in_progress = source.as_source(from);
        in_progress.status = SessionStatus::InProgress;
        let recent = HandOver {
            source_created_after: Some(now - chrono::Duration::days(1)),
            ..hand_over.clone()
        };
        let cases: [(HandOverContext, &HandOver, Option<ImportCheck>); 9] = [
            (context(None, None, finished.clone()), &hand_over, Some(ImportCheck::TokenIssuedHere)),
            (
                context(Some(token(true, false)), None, None),
                &hand_over,
                Some(ImportCheck::TokenNotRevoked),
            ),
            (
                context(Some(token(false, false)), None, None),
                &hand_over,
                Some(ImportCheck::SourceExists),
            ),
            (
                context(Some(token(false, false)), None, Some(in_progress)),
                &hand_over,
                Some(ImportCheck::SourceExists),
            ),
            (
                context(Some(token(false, true)), None, finished.clone()),
                &hand_over,
                Some(ImportCheck::NotImported),
            ),
            (
                context(Some(token(false, true)), Some("https://other.example"), finished.clone()),
                &hand_over,
                Some(ImportCheck::NotImported),
            ),
            (
                context(
                    Some(token(false, true)),
                    Some("https://fintech.example"),
                    finished.clone(),
                ),
                &hand_over,
                None,
            ),
            (
                context(Some(token(false, false)), None, finished.clone()),
                &recent,
                Some(ImportCheck::SourceRecentEnough),
            ),
            (context(Some(token(false, false)), None, finished), &hand_over, None),
        ];
        for (i, (context, hand_over, expected)) in cases.iter().enumerate() {
            assert_eq!(first_failed_issuer_check(context, hand_over), *expected, "case {i}");
        }
    }

    #[test]
    fn partner_names_are_short_plain_words() {
        assert!(parse_partner_name("fintech-eu.1").is_ok());
        for bad in ["", "Fintech", "a b", &"x".repeat(65)] {
            assert!(parse_partner_name(bad).is_err(), "{bad:?}");
        }
    }
}
