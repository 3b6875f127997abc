//! The session aggregate: the session row, its feature blocks and its log.

use crate::ids::EntityId;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::action::LogAction;
use crate::block::{FeatureBlock, FeatureItem};
use crate::idempotency::IdempotencyClaim;
use crate::ids::{ApplicationId, SessionId, WorkflowId};
use crate::kind::SessionKind;
use crate::session_options::SessionOptions;
use crate::status::SessionStatus;
use crate::vendor_data::VendorData;

mod terms;

pub use terms::{listing_terms, name_words};

/// A session to insert. The repository allocates its `session_number`.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// Its id.
    pub id: SessionId,
    /// The owning application.
    pub application_id: ApplicationId,
    /// `user` or `business`, the workflow's kind.
    pub kind: SessionKind,
    /// The workflow it runs.
    pub workflow_id: WorkflowId,
    /// The decision names of the workflow's features, kept with the session so that a later change
    /// or deletion of the workflow does not rewrite history.
    pub features: Vec<String>,
    /// The random token in the session's URL.
    pub session_token: String,
    /// Where the user completes the verification.
    pub session_url: String,
    /// The initial status (`Not Started` for new sessions).
    pub status: SessionStatus,
    /// The caller's reference for the person or company.
    pub vendor_data: Option<VendorData>,
    /// The id the User or Business of `vendor_data` gets when this session creates it.
    pub entity_id: EntityId,
    /// Free JSON the caller attaches.
    pub metadata: Option<Value>,
    /// Where to send the user when done.
    pub callback: Option<String>,
    /// How the session is presented.
    pub options: SessionOptions,
    /// Contact details, as given.
    pub contact_details: Option<Value>,
    /// Details the caller expects the documents to show, as given.
    pub expected_details: Option<Value>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it expires: `created_at` + the workflow's `session_expiration_time`.
    pub expires_at: DateTime<Utc>,
    /// The request's idempotency key, stored with the session.
    pub idempotency: Option<IdempotencyClaim>,
    /// Whether an unfinished session of the same workflow and `vendor_data` is answered
    /// instead of a new one (Didit's reuse; see the repository's `create_session`).
    pub reuse_unfinished: bool,
}

impl NewSession {
    /// The session as stored, once the repository allocated its `session_number`.
    pub fn stored(&self, session_number: i64) -> StoredSession {
        StoredSession {
            id: self.id,
            application_id: self.application_id,
            kind: self.kind,
            session_number,
            session_token: self.session_token.clone(),
            session_url: self.session_url.clone(),
            status: self.status,
            workflow_id: self.workflow_id,
            features: self.features.clone(),
            vendor_data: self.vendor_data.clone(),
            metadata: self.metadata.clone(),
            callback: self.callback.clone(),
            options: self.options.clone(),
            revision: 0,
            contact_details: self.contact_details.clone(),
            expected_details: self.expected_details.clone(),
            shared_from_session: None,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

#[cfg(test)]
impl StoredSession {
    /// An `Approved` user session with no details, created and expiring `at` (for tests).
    pub(crate) fn approved(
        id: SessionId, application_id: ApplicationId, workflow_id: WorkflowId, at: DateTime<Utc>,
    ) -> StoredSession {
        StoredSession {
            id,
            application_id,
            kind: SessionKind::User,
            session_number: 1,
            session_token: "t".into(),
            session_url: "u".into(),
            status: SessionStatus::Approved,
            workflow_id,
            features: Vec::new(),
            vendor_data: None,
            metadata: None,
            callback: None,
            options: Default::default(),
            revision: 0,
            contact_details: None,
            expected_details: None,
            shared_from_session: None,
            created_at: at,
            expires_at: at,
        }
    }
}

/// A stored session, without its blocks.
#[derive(Clone, Debug)]
pub struct StoredSession {
    /// Its id.
    pub id: SessionId,
    /// The owning application.
    pub application_id: ApplicationId,
    /// `user` or `business`.
    pub kind: SessionKind,
    /// Its number, unique and increasing within the application.
    pub session_number: i64,
    /// The random token in its URL.
    pub session_token: String,
    /// Where the user completes the verification.
    pub session_url: String,
    /// The current status.
    pub status: SessionStatus,
    /// The workflow it runs.
    pub workflow_id: WorkflowId,
    /// The decision names of the workflow's features.
    pub features: Vec<String>,
    /// The caller's reference for the person or company.
    pub vendor_data: Option<VendorData>,
    /// Free JSON the caller attached.
    pub metadata: Option<Value>,
    /// Where to send the user when done.
    pub callback: Option<String>,
    /// How the session is presented (not copied by an import).
    pub options: SessionOptions,
    /// Bumped by every change of its blocks or status; guards read-modify-write amendments.
    pub revision: i64,
    /// Contact details, as given.
    pub contact_details: Option<Value>,
    /// Expected details, as given.
    pub expected_details: Option<Value>,
    /// The session this one was cloned from by an import, if any.
    pub shared_from_session: Option<SessionId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// A session with everything a decision payload shows.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    /// The session row.
    pub session: StoredSession,
    /// The blocks that were recorded (possibly empty arrays); a block absent here never ran.
    pub blocks: Vec<(FeatureBlock, Vec<FeatureItem>)>,
    /// The reviews, oldest first.
    pub reviews: Vec<Review>,
}

impl SessionRecord {
    /// The session as lists show it.
    pub fn listing(&self) -> SessionListing {
        let blocks = self
            .blocks
            .iter()
            .map(|(block, items)| {
                let first =
                    matches!(block, FeatureBlock::IdVerifications | FeatureBlock::RegistryChecks)
                        .then(|| items.first())
                        .flatten()
                        .and_then(|item| serde_json::from_str(item.json().get()).ok());
                let statuses = items.iter().map(|i| i.status().to_owned()).collect();
                (*block, ListedBlock { statuses, first })
            })
            .collect();
        SessionListing::new(self.session.clone(), &blocks)
    }

    /// The items of a block, or `None` when the block never ran.
    pub fn block(&self, block: FeatureBlock) -> Option<&[FeatureItem]> {
        self.blocks.iter().find(|(b, _)| *b == block).map(|(_, items)| items.as_slice())
    }

    /// The V2 view of a block: its first item without `node_id`, or `None` when the block never
    /// ran or holds no item.
    pub fn v2_block(&self, block: FeatureBlock) -> Option<Box<serde_json::value::RawValue>> {
        self.block(block)?.first().map(FeatureItem::v2_json)
    }
}

/// What a log row is: a review by a person, or an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// A review (`update-status`); shown in `reviews`.
    Review,
    /// Anything else that happened to the session.
    Event,
}

impl LogKind {
    /// The stored string.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogKind::Review => "review",
            LogKind::Event => "event",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "review" => Some(LogKind::Review),
            "event" => Some(LogKind::Event),
            _ => None,
        }
    }
}

/// One log row of a session.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Review or event.
    pub kind: LogKind,
    /// Who did it: `api-key:<prefix>` for API callers, `engine` for recorded results.
    pub actor: String,
    /// What happened.
    pub action: LogAction,
    /// The status before; filled by the repository where it changes the status.
    pub old_status: Option<SessionStatus>,
    /// The status after.
    pub new_status: Option<SessionStatus>,
    /// A comment, for reviews.
    pub comment: Option<String>,
    /// Structured details of events.
    pub details: Option<Value>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl LogEntry {
    /// Whether a clone copies this row of its source's log ([`LogAction::SOURCE_ONLY`]).
    pub fn copied_to_clones(&self) -> bool {
        self.action.copied_to_clones()
    }

    /// An event (not a review) that changes no status.
    pub fn event(
        actor: impl Into<String>, action: LogAction, details: Option<Value>,
        created_at: DateTime<Utc>,
    ) -> Self {
        LogEntry {
            kind: LogKind::Event,
            actor: actor.into(),
            action,
            old_status: None,
            new_status: None,
            comment: None,
            details,
            created_at,
        }
    }

    /// This entry as the record of a change from `old` to `new`.
    pub fn transition(&self, old: SessionStatus, new: SessionStatus) -> LogEntry {
        LogEntry { old_status: Some(old), new_status: Some(new), ..self.clone() }
    }

    /// The log row of `review` applied to a session in `current`, or the outcome that refuses
    /// it when `current` may not be reviewed.
    pub fn review(
        &self, current: SessionStatus, review: crate::status::ReviewStatus,
    ) -> Result<LogEntry, ReviewOutcome> {
        if current.is_reviewable() {
            Ok(self.transition(current, review.status()))
        } else {
            Err(ReviewOutcome::WrongCurrentStatus(current))
        }
    }
}

/// One row of a session's activity (`GET /v3/sessions/{id}/reviews/`): a review, or an event
/// that set the session's status.
#[derive(Clone, Debug)]
pub struct Activity {
    /// The log row's number, unique within the deployment.
    pub row: i64,
    /// The row.
    pub entry: LogEntry,
}

/// A page of a session's activity, and how many rows it has in all.
#[derive(Clone, Debug)]
pub struct ActivityPage {
    /// How many rows.
    pub count: u64,
    /// This page.
    pub results: Vec<Activity>,
}

/// Which page of a session's activity.
#[derive(Clone, Copy, Debug)]
pub struct ActivityQuery {
    /// Page size.
    pub limit: u64,
    /// Rows to skip.
    pub offset: u64,
    /// Newest first (the default) or oldest first.
    pub newest_first: bool,
}

impl LogEntry {
    /// Whether the activity feed shows it: every review, and the events that set a status.
    pub fn is_activity(&self) -> bool {
        self.kind == LogKind::Review
            || self.new_status.is_some() && self.old_status != self.new_status
    }
}

/// A review as the decision payload's `reviews` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    /// Who reviewed.
    pub user: String,
    /// The status the review set.
    pub new_status: SessionStatus,
    /// The reviewer's comment.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What the end user's page says of a session: its state in words, and nothing personal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserFacingState {
    /// Created; the user has not begun.
    NotStarted,
    /// The user is going through it, or was asked to redo some steps.
    InProgress,
    /// Finished: decided, or with a reviewer.
    Finished,
    /// Imported from another provider's finished verification: nothing for the user to do.
    Imported,
    /// Expired or abandoned before it finished.
    Expired,
}

impl UserFacingState {
    /// The state of `session` at `now`.
    pub fn of(session: &StoredSession, now: DateTime<Utc>) -> Self {
        use SessionStatus as S;
        if session.shared_from_session.is_some() {
            return Self::Imported;
        }
        match session.status {
            S::InReview | S::Approved | S::Declined | S::KycExpired => Self::Finished,
            S::Expired | S::Abandoned => Self::Expired,
            _ if session.expires_at <= now => Self::Expired,
            S::NotStarted => Self::NotStarted,
            S::InProgress | S::AwaitingUser | S::Resubmitted => Self::InProgress,
        }
    }
}

/// Results from the verification engine: a new status and the blocks to replace. A block given as
/// `None` is cleared (the feature never ran).
#[derive(Clone, Debug, Default)]
pub struct RecordResults {
    /// The new session status, if it changes.
    pub status: Option<SessionStatus>,
    /// The blocks to replace, each once.
    pub blocks: Vec<(FeatureBlock, Option<Vec<FeatureItem>>)>,
    /// The session's values as blocklists match them after these results, when the service
    /// computed them (`None`: unchanged).
    pub blocklist_keys: Option<crate::lists::SessionKeys>,
}

impl RecordResults {
    /// The bytes of JSON of the items to write.
    pub fn item_bytes(&self) -> usize {
        self.blocks
            .iter()
            .flat_map(|(_, items)| items.iter().flatten())
            .map(|item| item.json().get().len())
            .sum()
    }
}

/// Filters and page of `GET /v3/sessions/`.
#[derive(Clone, Debug)]
pub struct SessionFilter {
    /// Only sessions of this `vendor_data` (matched case-insensitively).
    pub vendor_data: Option<VendorData>,
    /// Only sessions in one of these statuses; empty means any.
    pub statuses: Vec<SessionStatus>,
    /// Only sessions of these kinds; never empty.
    pub kinds: Vec<SessionKind>,
    /// Only sessions of this workflow.
    pub workflow_id: Option<WorkflowId>,
    /// Only sessions of one of these workflows (what the caller's key sees); `None`: any.
    pub workflows: Option<Vec<WorkflowId>>,
    /// Only sessions whose results name this country ([`SessionListing::country`]), upper case.
    pub country: Option<String>,
    /// Only sessions whose `vendor_data` contains this, lower case, whose name
    /// ([`SessionListing::full_name`], [`SessionListing::company_name`]) holds each of its
    /// words as a whole word ([`name_words`]), or whose number it is.
    pub search: Option<String>,
    /// Only sessions created at or after this.
    pub created_from: Option<DateTime<Utc>>,
    /// Only sessions created before this.
    pub created_before: Option<DateTime<Utc>>,
    /// Only clones imported from another application (`Some(true)`), or only the others.
    pub imported: Option<bool>,
    /// Imported sessions before the others (the review console's queue).
    pub imports_first: bool,
    /// Oldest first (the console's queue); newest first otherwise.
    pub oldest_first: bool,
    /// Only sessions assigned to this reviewer (`Some(Some(id))`) or to nobody
    /// (`Some(None)`); `None`: any.
    pub assignee: Option<Option<crate::ids::ReviewerId>>,
    /// Page size.
    pub limit: u64,
    /// Rows to skip.
    pub offset: u64,
}

impl SessionFilter {
    /// Every session of `kinds`, the first page of `limit`.
    pub fn of_kinds(kinds: Vec<SessionKind>, limit: u64) -> Self {
        Self {
            vendor_data: None,
            statuses: Vec::new(),
            kinds,
            workflow_id: None,
            workflows: None,
            country: None,
            search: None,
            created_from: None,
            created_before: None,
            imported: None,
            imports_first: false,
            oldest_first: false,
            assignee: None,
            limit,
            offset: 0,
        }
    }

    /// Whether `listing` passes the filter (the store applies the same in its query).
    pub fn matches(&self, listing: &SessionListing) -> bool {
        let s = &listing.session;
        let contains = |text: &Option<String>, needle: &str| {
            text.as_deref().is_some_and(|t| t.to_lowercase().contains(needle))
        };
        self.kinds.contains(&s.kind)
            && (self.statuses.is_empty() || self.statuses.contains(&s.status))
            && self.imported.is_none_or(|imported| s.shared_from_session.is_some() == imported)
            && self
                .vendor_data
                .as_ref()
                .is_none_or(|v| s.vendor_data.as_ref().is_some_and(|own| own.key() == v.key()))
            && self.workflow_id.is_none_or(|w| s.workflow_id == w)
            && self.workflows.as_ref().is_none_or(|w| w.contains(&s.workflow_id))
            && self.created_from.is_none_or(|from| s.created_at >= from)
            && self.created_before.is_none_or(|before| s.created_at < before)
            && self.country.as_deref().is_none_or(|country| {
                listing.country.as_deref().is_some_and(|c| c.to_uppercase() == country)
            })
            && self.search.as_deref().is_none_or(|needle| {
                let named = |name: &Option<String>| {
                    let words = name.as_deref().map(name_words).unwrap_or_default();
                    let wanted = name_words(needle);
                    !wanted.is_empty() && wanted.iter().all(|w| words.contains(w))
                };
                s.session_number.to_string() == needle
                    || contains(&s.vendor_data.as_ref().map(|v| v.as_str().to_owned()), needle)
                    || named(&listing.full_name)
                    || named(&listing.company_name)
            })
    }
}

/// The default page size of session lists.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest page size of session lists.
pub const MAX_PAGE_SIZE: u64 = 200;

/// One page of sessions, newest first, and how many match in all.
#[derive(Clone, Debug)]
pub struct SessionPage {
    /// How many sessions match the filter.
    pub count: u64,
    /// This page.
    pub results: Vec<SessionListing>,
}

/// The longest `search` of a session list, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;

/// A session as lists show it: its row, and what its results say of the person or company.
#[derive(Clone, Debug)]
pub struct SessionListing {
    /// The session row.
    pub session: StoredSession,
    /// The full name on the first identity document (`id_verifications[0].full_name`).
    pub full_name: Option<String>,
    /// That document's type (`document_type`).
    pub document_type: Option<String>,
    /// The company's name in the first registry check (`registry_checks[0].company.company_name`).
    pub company_name: Option<String>,
    /// Its registration number (`company.registration_number`).
    pub registration_number: Option<String>,
    /// The document's issuing state (`issuing_state`), or the company's country
    /// (`company.country_code`).
    pub country: Option<String>,
    /// Each feature of the session, by its decision name, with the status of the last item of
    /// its block (`Not Started` when the block holds none).
    pub features: Vec<(String, String)>,
}

/// What a listing reads from one recorded block: the status of each item in order, and the
/// first item where the listing needs it (`id_verifications`, `registry_checks`).
#[derive(Clone, Debug, Default)]
pub struct ListedBlock {
    /// Item statuses, by position.
    pub statuses: Vec<String>,
    /// The first item, when read.
    pub first: Option<Value>,
}

impl SessionListing {
    /// The listing of `session` from its recorded blocks.
    pub fn new(
        session: StoredSession, blocks: &std::collections::HashMap<FeatureBlock, ListedBlock>,
    ) -> Self {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let document = blocks.get(&FeatureBlock::IdVerifications).and_then(|b| b.first.as_ref());
        let company = blocks
            .get(&FeatureBlock::RegistryChecks)
            .and_then(|b| b.first.as_ref())
            .and_then(|item| item.get("company"));
        let features = session
            .features
            .iter()
            .map(|name| {
                let status = crate::workflow::Feature::from_decision_name(name)
                    .and_then(FeatureBlock::of_feature)
                    .and_then(|block| blocks.get(&block))
                    .and_then(|b| b.statuses.last().cloned())
                    .unwrap_or_else(|| SessionStatus::NotStarted.as_str().to_owned());
                (name.clone(), status)
            })
            .collect();
        let terms = |block: FeatureBlock| {
            blocks
                .get(&block)
                .and_then(|b| b.first.as_ref())
                .map(|first| listing_terms(block, first))
                .unwrap_or_default()
        };
        let (full_name, document_country) = terms(FeatureBlock::IdVerifications);
        let (company_name, company_country) = terms(FeatureBlock::RegistryChecks);
        SessionListing {
            full_name,
            document_type: text(document.and_then(|d| d.get("document_type"))),
            company_name,
            registration_number: text(company.and_then(|c| c.get("registration_number"))),
            country: document_country.or(company_country),
            features,
            session,
        }
    }
}

/// What applying a review did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// The status was changed and the review logged.
    Applied,
    /// No session of the caller has this id.
    NotFound,
    /// The session's current status may not be reviewed; nothing was written.
    WrongCurrentStatus(SessionStatus),
}

/// The longest `callback` URL accepted, in characters.
pub const MAX_CALLBACK_CHARS: usize = 2_048;

/// Where to send the user when the verification is done: an `http` or `https` URL of at most
/// [`MAX_CALLBACK_CHARS`] characters, without whitespace or control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackUrl(String);

impl CallbackUrl {
    /// A callback URL, or what is wrong with it.
    pub fn parse(raw: String) -> Result<Self, &'static str> {
        let scheme_ok = raw.starts_with("https://") || raw.starts_with("http://");
        if !scheme_ok
            || raw.chars().count() > MAX_CALLBACK_CHARS
            || raw.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            Err("must be an http or https URL of at most 2048 characters.")
        } else {
            Ok(Self(raw))
        }
    }

    /// The URL.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The most steps one resubmission names.
pub const MAX_NODES_TO_RESUBMIT: usize = 50;
/// The longest `node_id` a resubmission names, in characters.
pub const MAX_NODE_ID_CHARS: usize = 100;

/// The steps a resubmission sends back, by their items' `node_id`: 1 to
/// [`MAX_NODES_TO_RESUBMIT`] of them, each once, each 1 to [`MAX_NODE_ID_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodesToResubmit(Vec<String>);

impl NodesToResubmit {
    /// The steps named, each once in the order first named, or what is wrong with them.
    pub fn parse(named: Vec<String>) -> Result<Self, &'static str> {
        if named.is_empty() {
            return Err("names no step.");
        }
        if named.len() > MAX_NODES_TO_RESUBMIT {
            return Err("names at most 50 steps.");
        }
        let mut nodes: Vec<String> = Vec::with_capacity(named.len());
        for node in named {
            let chars = node.chars().count();
            if chars == 0 || chars > MAX_NODE_ID_CHARS || node.contains('\0') {
                return Err("each step is a node_id of 1 to 100 characters.");
            }
            if !nodes.contains(&node) {
                nodes.push(node);
            }
        }
        Ok(Self(nodes))
    }

    /// The node ids.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// What a reviewer decides: a status, or steps sent back to redo (`Resubmitted` with nodes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewDecision {
    /// `Approved`, `Declined`, or `Resubmitted` with no step named.
    Status(crate::status::ReviewStatus),
    /// `Resubmitted`, these steps' results removed.
    Resubmit(NodesToResubmit),
}

impl ReviewDecision {
    /// The decision of `new_status` with the steps `nodes` names (none: a plain status), or
    /// what is wrong with the steps.
    pub fn parse(
        new_status: crate::status::ReviewStatus, nodes: Vec<String>,
    ) -> Result<Self, &'static str> {
        match (new_status, nodes.is_empty()) {
            (status, true) => Ok(Self::Status(status)),
            (crate::status::ReviewStatus::Resubmitted, false) => {
                NodesToResubmit::parse(nodes).map(Self::Resubmit)
            }
            (_, false) => Err("is only taken with new_status Resubmitted."),
        }
    }
}

/// The longest review comment accepted, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;

/// A reviewer's comment: at most [`MAX_COMMENT_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewComment(String);

impl ReviewComment {
    /// A comment, or what is wrong with it.
    pub fn parse(raw: String) -> Result<Self, &'static str> {
        if raw.chars().count() > MAX_COMMENT_CHARS {
            Err("must be at most 10000 characters.")
        } else if raw.contains('\0') {
            Err("must not contain the NUL character.")
        } else {
            Ok(Self(raw))
        }
    }

    /// The comment.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests;
