//! Sharing and importing: what a share token means, the checks of an import and the status
//! its clone lands in. How an import runs end to end: `docs/sharing.md`.

use crate::ids::EntityId;
use chrono::{DateTime, Utc};

use crate::block::FeatureBlock;
use crate::entity::EntityStatus;
use crate::idempotency::IdempotencyClaim;
use crate::ids::{ApplicationId, SessionId, WorkflowId};
use crate::kind::SessionKind;
use crate::session::{LogEntry, SessionRecord, StoredSession};
use crate::status::SessionStatus;
use crate::vendor_data::VendorData;

/// The shortest share-token lifetime, in seconds.
pub const MIN_TTL_SECONDS: i64 = 60;
/// The longest share-token lifetime, in seconds: one day.
pub const MAX_TTL_SECONDS: i64 = 86_400;
/// The lifetime when none is asked for: one hour.
pub const DEFAULT_TTL_SECONDS: i64 = 3_600;
/// The longest presented share token read, in characters; a longer one is refused unread.
pub const MAX_SHARE_TOKEN_CHARS: usize = 4_096;

/// A share token's lifetime: [`MIN_TTL_SECONDS`] to [`MAX_TTL_SECONDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareTtl(i64);

impl ShareTtl {
    /// One hour, when none is asked for.
    pub const DEFAULT: ShareTtl = ShareTtl(DEFAULT_TTL_SECONDS);

    /// A lifetime of `seconds`, or what is wrong with it.
    pub fn parse(seconds: i64) -> Result<Self, &'static str> {
        if (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err("must be an integer from 60 to 86400.")
        }
    }

    /// The lifetime in seconds.
    pub fn seconds(self) -> i64 {
        self.0
    }
}

/// The longest `max_source_age_seconds` an import takes: ten years.
pub const MAX_SOURCE_AGE_SECONDS: i64 = 315_360_000;

/// An import's limit on the source's age (an extension): a source created longer ago than this
/// is refused (`source_too_old`). 1 to [`MAX_SOURCE_AGE_SECONDS`] seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxSourceAge(i64);

impl MaxSourceAge {
    /// A limit of `seconds`, or what is wrong with it.
    pub fn parse(seconds: i64) -> Result<Self, &'static str> {
        if (1..=MAX_SOURCE_AGE_SECONDS).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err("Must be a whole number of seconds from 1 to 315360000.")
        }
    }

    /// The oldest creation time a source may have at `now`.
    pub fn created_after(
        self, now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        now - chrono::Duration::seconds(self.0)
    }
}

/// A share token as presented or issued. It is a bearer credential: `Debug` shows only its
/// length, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareToken(String);

impl ShareToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// A presented token, 1 to [`MAX_SHARE_TOKEN_CHARS`] characters, or what is wrong with it.
    /// Its content is the verifier's to judge.
    pub fn parse(raw: String) -> Result<Self, &'static str> {
        if raw.is_empty() {
            Err("must not be empty.")
        } else if raw.chars().count() > MAX_SHARE_TOKEN_CHARS {
            Err("must be at most 4096 characters.")
        } else {
            Ok(Self(raw))
        }
    }

    /// The token itself, to verify or to send to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ShareToken {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}

impl From<String> for ShareToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl std::fmt::Debug for ShareToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShareToken({} bytes)", self.0.len())
    }
}

/// What a verified share token says, whatever its encoding: the source session, who shared it,
/// for whom, and when. Tokens in Didit's older shape carry no kind (read as `user`) and no `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareClaims {
    /// The shared session.
    pub session_id: SessionId,
    /// Its kind.
    pub session_kind: SessionKind,
    /// The application that holds the session.
    pub from_application_id: ApplicationId,
    /// The only application that may import it.
    pub for_application_id: ApplicationId,
    /// When the token was issued.
    pub issued_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The token's id, for listing and revoking; absent on older tokens.
    pub jti: Option<String>,
    /// The blocks the share carries, when its sharer named them (an extension); `None`: every
    /// block. A clone holds only these, and partners are handed only these.
    pub blocks: Option<Vec<FeatureBlock>>,
    /// The person's consent to the share, when the sharer recorded it (an extension).
    pub consent: Option<Consent>,
}

/// The longest consent `reference`, in characters.
pub const MAX_CONSENT_REFERENCE_CHARS: usize = 256;

/// A person's consent to a share, as its sharer keeps it: the sharer's id for its consent
/// record, when it was given, and the SHA-256 of the wording the person agreed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    /// The sharer's id for the consent record (1 to [`MAX_CONSENT_REFERENCE_CHARS`]
    /// characters, no control characters).
    pub reference: String,
    /// When the person gave it, to the second.
    pub given_at: DateTime<Utc>,
    /// The SHA-256 of the wording, 64 lowercase hex digits.
    pub text_sha256: String,
}

impl Consent {
    /// A consent, or what is wrong with each of its fields (`consent.reference`, …): the
    /// reference plain text, the time not later than `now`, the hash 64 hex digits (read in
    /// lower case).
    pub fn parse(
        reference: String, given_at: DateTime<Utc>, text_sha256: &str, now: DateTime<Utc>,
    ) -> Result<Self, crate::error::ValidationErrors> {
        let mut errors = crate::error::ValidationErrors::default();
        let chars = reference.chars().count();
        if chars == 0
            || chars > MAX_CONSENT_REFERENCE_CHARS
            || reference.chars().any(char::is_control)
        {
            errors.add(
                "consent.reference",
                "must be 1 to 256 characters, without control characters.",
            );
        }
        if given_at > now + chrono::Duration::seconds(60) {
            errors.add("consent.given_at", "must not be in the future.");
        }
        let hash = text_sha256.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            errors.add("consent.text_sha256", "must be a SHA-256: 64 hexadecimal digits.");
        }
        errors.into_result()?;
        let given_at = DateTime::from_timestamp(given_at.timestamp(), 0).unwrap_or(given_at);
        Ok(Self { reference, given_at, text_sha256: hash })
    }

    /// As the ledger, the token and the provenance show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "reference": self.reference,
            "given_at": self.given_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "text_sha256": self.text_sha256,
        })
    }

    /// Read back from [`Consent::to_json`]'s shape; `None` when it is not that.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        let text = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
        Some(Self {
            reference: text("reference")?.to_owned(),
            given_at: DateTime::parse_from_rfc3339(text("given_at")?).ok()?.with_timezone(&Utc),
            text_sha256: text("text_sha256")?.to_owned(),
        })
    }
}

impl ShareClaims {
    /// Whether a clone made with this token holds `block`.
    pub fn carries(&self, block: FeatureBlock) -> bool {
        self.blocks.as_ref().is_none_or(|named| named.contains(&block))
    }

    /// Of the blocks a source recorded, those a clone holds and those withheld, in order.
    pub fn split(&self, recorded: &[FeatureBlock]) -> (Vec<FeatureBlock>, Vec<FeatureBlock>) {
        recorded.iter().partition(|block| self.carries(**block))
    }
}

/// Why a presented share token is not accepted, before any storage is consulted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, badly signed, signed with an unknown key or a refused algorithm, or missing a
    /// required claim.
    #[error("share token invalid")]
    Invalid,
    /// Well formed and well signed, but past its `exp`.
    #[error("share token expired")]
    Expired,
    /// No key can sign now (a configuration fault, not the caller's).
    #[error("share token could not be signed: {0}")]
    Signing(String),
    /// Issued by another deployment: its `iss`, unverified. Only a partner's keys can tell
    /// more.
    #[error("share token issued by another deployment")]
    Foreign(String),
}

/// What the clone's status is for one status of the receiver's entity: the source's own, or
/// one fixed status whatever the source's. The whole rule fits this shape, so a store that
/// decides inside the database can be handed it as a table (see [`clone_status_rule`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneStatus {
    /// The clone keeps the source's status.
    Source,
    /// The clone takes this status.
    Fixed(SessionStatus),
}

/// The trust_review rule, by receiver entity status (`None`: the receiver has no entity yet).
///
/// The receiver's own view of the person or company wins: a `BLOCKED` entity makes the clone
/// `Declined` and a `FLAGGED` one puts it `In Review`, whatever `trust_review` says. Otherwise
/// `trust_review` keeps the source's status, and without it the clone waits `In Review`.
pub fn clone_status_rule(trust_review: bool, receiver_entity: Option<EntityStatus>) -> CloneStatus {
    match receiver_entity {
        Some(EntityStatus::Blocked) => CloneStatus::Fixed(SessionStatus::Declined),
        Some(EntityStatus::Flagged) => CloneStatus::Fixed(SessionStatus::InReview),
        Some(EntityStatus::Active) | None if trust_review => CloneStatus::Source,
        Some(EntityStatus::Active) | None => CloneStatus::Fixed(SessionStatus::InReview),
    }
}

/// The status a clone lands in: [`clone_status_rule`] applied to the source's status.
pub fn clone_status(
    source: SessionStatus, trust_review: bool, receiver_entity: Option<EntityStatus>,
) -> SessionStatus {
    match clone_status_rule(trust_review, receiver_entity) {
        CloneStatus::Source => source,
        CloneStatus::Fixed(status) => status,
    }
}

/// A share token as recorded when it is issued.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuedShareToken {
    /// Its id.
    pub jti: String,
    /// What it says.
    pub claims: ShareClaims,
    /// The source's log row that records the share (`shared`), written with the ledger's.
    pub log: LogEntry,
    /// The request's idempotency key, stored with the ledger's row.
    pub idempotency: Option<IdempotencyClaim>,
}

/// The checks of an import, in the contract's order (its table's rows 3 to 10): the first that
/// fails is the answer. Rows 1 and 2 (the API key, the body's shape) belong to the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImportCheck {
    /// The token is well formed, verifies with a configured key and an allowed algorithm.
    TokenValid,
    /// The token is not past its `exp`.
    TokenNotExpired,
    /// The token was issued here: its `jti` names a recorded token whose session, kind,
    /// applications and expiry equal its claims (or the deployment accepts unlisted tokens and
    /// none is recorded).
    TokenIssuedHere,
    /// The token was not revoked by its issuer.
    TokenNotRevoked,
    /// The token is addressed to the caller.
    AddressedToCaller,
    /// The source session still exists, in the source application, of the token's kind, and
    /// is still finished (`Approved`, `Declined` or `In Review`).
    SourceExists,
    /// The caller holds no clone of the source, and the token was never redeemed (even if its
    /// clone was deleted since).
    NotImported,
    /// The workflow is the caller's and not deleted.
    WorkflowExists,
    /// The workflow's kind is the token's.
    WorkflowKind,
    /// The source was created within the import's `max_source_age_seconds` (an extension;
    /// always passes without it).
    SourceRecentEnough,
}

impl ImportCheck {
    /// Every check, in the order they are answered.
    pub const ALL: [ImportCheck; 10] = [
        ImportCheck::TokenValid,
        ImportCheck::TokenNotExpired,
        ImportCheck::TokenIssuedHere,
        ImportCheck::TokenNotRevoked,
        ImportCheck::AddressedToCaller,
        ImportCheck::SourceExists,
        ImportCheck::NotImported,
        ImportCheck::WorkflowExists,
        ImportCheck::WorkflowKind,
        ImportCheck::SourceRecentEnough,
    ];

    /// Its row in the contract's table of checks (3 to 10; 11 for the extension).
    pub fn row(self) -> u8 {
        match self {
            ImportCheck::TokenValid => 3,
            ImportCheck::TokenNotExpired => 4,
            ImportCheck::TokenIssuedHere | ImportCheck::TokenNotRevoked => 5,
            ImportCheck::AddressedToCaller => 6,
            ImportCheck::SourceExists => 7,
            ImportCheck::NotImported => 8,
            ImportCheck::WorkflowExists => 9,
            ImportCheck::WorkflowKind => 10,
            ImportCheck::SourceRecentEnough => 11,
        }
    }
}

/// The first of an import's checks that fails for `attempt`, in the contract's order; `None`
/// when every check passes. The token's own checks (valid, not expired) were made when it was
/// verified, before the attempt existed; the rest are decided here, from what `context` read.
///
/// The one copy of the rules: the service answers with it, and a store that checks before
/// writing (SQLite, the in-memory fakes) decides with it.
pub fn first_failed_check(context: &ImportContext, attempt: &ImportAttempt) -> Option<ImportCheck> {
    let claims = &attempt.claims;
    // A revoked `jti` is refused as revoked whatever its claims: an operator may block an
    // unlisted token by its `jti` alone.
    match &context.token {
        None if !attempt.accept_unlisted_tokens => return Some(ImportCheck::TokenIssuedHere),
        Some(recorded) if recorded.revoked => return Some(ImportCheck::TokenNotRevoked),
        Some(recorded) if !recorded.issued(claims) => return Some(ImportCheck::TokenIssuedHere),
        _ => {}
    }
    if claims.for_application_id != attempt.application_id {
        return Some(ImportCheck::AddressedToCaller);
    }
    if context
        .source
        .as_ref()
        .is_none_or(|source| source.kind != claims.session_kind || !source.status.is_shareable())
    {
        return Some(ImportCheck::SourceExists);
    }
    if context.existing_clone.is_some() || context.token.as_ref().is_some_and(|t| t.redeemed) {
        return Some(ImportCheck::NotImported);
    }
    match context.workflow {
        None => return Some(ImportCheck::WorkflowExists),
        Some(workflow) if workflow.kind != claims.session_kind => {
            return Some(ImportCheck::WorkflowKind);
        }
        Some(_) => {}
    }
    let too_old = |source: &StoredSession| {
        attempt.source_created_after.is_some_and(|after| source.created_at < after)
    };
    context.source.as_ref().is_some_and(too_old).then_some(ImportCheck::SourceRecentEnough)
}

/// What an import's checks read, in one go: the state of the token, the source, the receiver's
/// clone of it and the receiver's workflow.
#[derive(Clone, Debug, Default)]
pub struct ImportContext {
    /// The ledger's row of the presented token's `jti`; `None` when it has none or this
    /// deployment never issued it (an unlisted token).
    pub token: Option<RecordedToken>,
    /// The source session in the source application, if it is there.
    pub source: Option<StoredSession>,
    /// The blocks the source recorded.
    pub recorded_blocks: Vec<FeatureBlock>,
    /// The receiver's clone of the source, if it holds one.
    pub existing_clone: Option<SessionId>,
    /// The receiver's (undeleted) workflow named by the import, if it holds it.
    pub workflow: Option<ImportWorkflow>,
    /// The receiver's entity for the clone's `vendor_data` (the import's override, else the
    /// source's), with its status, if it holds one.
    pub receiver_entity: Option<(EntityId, EntityStatus)>,
    /// The entry types of the source's values the receiver blocklisted: the clone would be
    /// `Declined`, whatever `trust_review` says.
    pub blocklisted: Vec<crate::lists::EntryType>,
}

/// A token as the ledger of issued tokens records it, with what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedToken {
    /// What it said when issued.
    pub claims: ShareClaims,
    /// Whether its issuer revoked it.
    pub revoked: bool,
    /// Whether an import redeemed it (whether or not that clone still exists).
    pub redeemed: bool,
}

impl RecordedToken {
    /// Whether `presented` are the claims this row was issued with: the same session, kind,
    /// applications, expiry, blocks and consent.
    pub fn issued(&self, presented: &ShareClaims) -> bool {
        let recorded = &self.claims;
        recorded.session_id == presented.session_id
            && recorded.session_kind == presented.session_kind
            && recorded.from_application_id == presented.from_application_id
            && recorded.for_application_id == presented.for_application_id
            && recorded.expires_at == presented.expires_at
            && recorded.blocks == presented.blocks
            && recorded.consent == presented.consent
    }
}

/// One token of the ledger as its issuer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The token's id.
    pub jti: String,
    /// What it says.
    pub claims: ShareClaims,
    /// When its issuer revoked it.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When an import redeemed it.
    pub redeemed_at: Option<DateTime<Utc>>,
}

/// Where a token stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    /// It may still be imported.
    Active,
    /// An import redeemed it (whatever happened after).
    Redeemed,
    /// Its issuer revoked it before any import.
    Revoked,
    /// Past its `exp`, never redeemed nor revoked.
    Expired,
}

impl TokenState {
    /// The wire string: `active`, `redeemed`, `revoked`, `expired`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Redeemed => "redeemed",
            TokenState::Revoked => "revoked",
            TokenState::Expired => "expired",
        }
    }
}

impl LedgerEntry {
    /// Where the token stands at `now`: a redemption is what happened, so it wins over a later
    /// revocation; a revocation over expiry.
    pub fn state(&self, now: DateTime<Utc>) -> TokenState {
        if self.redeemed_at.is_some() {
            TokenState::Redeemed
        } else if self.revoked_at.is_some() {
            TokenState::Revoked
        } else if now > self.claims.expires_at {
            TokenState::Expired
        } else {
            TokenState::Active
        }
    }
}

/// What an import needs of the receiver's workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportWorkflow {
    /// Its kind.
    pub kind: SessionKind,
    /// Seconds from a session's creation to its `expires_at`.
    pub session_expiration_time: i64,
}

/// An import, as the store is asked to make it: what the token says and what the caller asks,
/// with the clone's fresh identity. What only the source can tell (its status, `vendor_data`,
/// recorded blocks) and the receiver workflow's `session_expiration_time` the store reads
/// inside the import's transaction.
#[derive(Clone, Debug)]
pub struct ImportAttempt {
    /// What the verified token says: the source, its kind, who shared it and for whom.
    pub claims: ShareClaims,
    /// The receiving application: the caller.
    pub application_id: ApplicationId,
    /// Whether the deployment imports tokens it did not issue (`HANDOFF_ACCEPT_UNLISTED_TOKENS`),
    /// once per receiver.
    pub accept_unlisted_tokens: bool,
    /// Whether the token is to be found in the ledger and redeemed there: true for a token
    /// with a `jti` until a read shows it unlisted.
    pub listed: bool,
    /// The receiver's workflow.
    pub workflow_id: WorkflowId,
    /// The clone's fresh id.
    pub clone_id: SessionId,
    /// The clone's fresh session token.
    pub session_token: String,
    /// The clone's fresh URL.
    pub session_url: String,
    /// Whether the receiver trusts the source's decision.
    pub trust_review: bool,
    /// The override of the clone's `vendor_data`; `None` keeps the source's.
    pub vendor_data: Option<VendorData>,
    /// The id the receiver's User or Business of the clone's `vendor_data` gets when the
    /// import creates it.
    pub entity_id: EntityId,
    /// When the clone is created.
    pub created_at: DateTime<Utc>,
    /// The import's log row; the store fills `old_status` (the source's) and `new_status`.
    pub log: LogEntry,
    /// The source's log row that records the import (`imported_by`), written with the clone.
    pub source_log: LogEntry,
    /// The oldest source creation time accepted (`max_source_age_seconds` before now); `None`:
    /// any.
    pub source_created_after: Option<DateTime<Utc>>,
    /// The request's idempotency key, stored with the clone.
    pub idempotency: Option<IdempotencyClaim>,
}

impl ImportAttempt {
    /// The clone's status for a source status and the receiver's entity status.
    /// A source value the receiver blocklisted declines the clone, whatever `trust_review`
    /// says.
    pub fn status(
        &self, source: SessionStatus, receiver_entity: Option<EntityStatus>,
        blocklisted: &[crate::lists::EntryType],
    ) -> SessionStatus {
        if blocklisted.is_empty() {
            clone_status(source, self.trust_review, receiver_entity)
        } else {
            SessionStatus::Declined
        }
    }

    /// The log row that records the import, from `source` to `status`, naming the entry types
    /// the receiver blocklisted (`blocklisted` in its details) when there are any.
    pub fn import_log(
        &self, source: SessionStatus, status: SessionStatus,
        blocklisted: &[crate::lists::EntryType],
    ) -> LogEntry {
        let mut log = self.log.transition(source, status);
        if !blocklisted.is_empty()
            && let Some(serde_json::Value::Object(details)) = &mut log.details
        {
            let types: Vec<&str> = blocklisted.iter().map(|t| t.as_str()).collect();
            details.insert("blocklisted".into(), types.into());
        }
        log
    }

    /// The `actor` of the source's log rows as the clone keeps them: what happened stays,
    /// who at the source did it does not — only which application.
    pub fn copied_actor(&self) -> String {
        format!("application:{}", self.claims.from_application_id)
    }

    /// The clone's `vendor_data`: the override, else the source's.
    pub fn clone_vendor_data<'a>(&'a self, source: &'a StoredSession) -> Option<&'a VendorData> {
        self.vendor_data.as_ref().or(source.vendor_data.as_ref())
    }

    /// The clone's `expires_at`: its creation plus the workflow's `session_expiration_time`.
    pub fn expires_at(&self, workflow: ImportWorkflow) -> DateTime<Utc> {
        self.created_at + chrono::Duration::seconds(workflow.session_expiration_time)
    }
}

/// What an import did.
#[derive(Clone, Debug)]
pub enum ImportOutcome {
    /// The clone and every related row were written; the clone as written, everything its
    /// decision payload shows (from the writes themselves, not a later read).
    Imported(Box<SessionRecord>),
    /// The receiver already holds this clone of the source (possibly written a moment ago by
    /// a concurrent import); nothing was written.
    AlreadyImported(SessionId),
    /// A check failed; nothing was written. Which one is told by reading the
    /// [`ImportContext`] and asking [`first_failed_check`].
    Refused,
}

#[cfg(test)]
mod tests;
