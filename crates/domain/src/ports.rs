//! The ports: what the services need from storage and from the world, as object-safe traits.
//!
//! Every method scopes its reads and writes to the application it is given: an id that belongs to
//! another application MUST behave exactly as an id that exists nowhere.

use crate::ids::EntityId;
use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api_key::{NewApiKey, StoredApiKey};
use crate::application::Application;
use crate::console::{ConsoleSession, ConsoleSessionHash};
use crate::delivery::{AttemptOutcome, Claim, DueDelivery};
use crate::entity::Entity;
use crate::error::RepoError;
use crate::idempotency::{IdempotencyKey, RecordedAnswer, StoredIdempotency};
use crate::ids::{
    ApplicationId, DeliveryId, DestinationId, EventId, ReviewerId, SessionId, WorkflowId,
};
use crate::kind::SessionKind;
use crate::reviewer::{Reviewer, StoredReviewer};
use crate::session::{
    LogEntry, NewSession, RecordResults, ReviewOutcome, SessionFilter, SessionPage, SessionRecord,
    StoredSession,
};
use crate::share::{
    ImportAttempt, ImportContext, ImportOutcome, IssuedShareToken, LedgerEntry, ShareClaims,
    TokenError,
};
use crate::status::ReviewStatus;
use crate::vendor_data::VendorData;
use crate::webhook::{Delivery, Destination, SealedSecret};
use crate::workflow::Workflow;

/// Applications and their API keys.
#[async_trait]
pub trait ApplicationRepository: Send + Sync {
    /// Stores a new application together with its first key, atomically.
    async fn create_application(
        &self, application: &Application, key: &NewApiKey,
    ) -> Result<(), RepoError>;

    /// Every application, oldest first.
    async fn list_applications(&self) -> Result<Vec<Application>, RepoError>;

    /// The names of the applications with these ids (those that exist).
    async fn application_names(
        &self, ids: &[ApplicationId],
    ) -> Result<Vec<(ApplicationId, String)>, RepoError>;

    /// Whether an application with this id exists.
    async fn application_exists(&self, id: ApplicationId) -> Result<bool, RepoError>;

    /// The application's settings; `Ok(None)` when there is no such application.
    async fn application_settings(
        &self, id: ApplicationId,
    ) -> Result<Option<crate::application::ApplicationSettings>, RepoError>;

    /// Replaces the application's settings; `Ok(false)` when there is no such application.
    async fn update_application_settings(
        &self, id: ApplicationId, settings: &crate::application::ApplicationSettings,
    ) -> Result<bool, RepoError>;

    /// The applications that keep their sessions for a limited time, with that time.
    async fn retention_policies(
        &self,
    ) -> Result<Vec<(ApplicationId, crate::retention::RetentionDays)>, RepoError>;

    /// Adds a key. MUST return `Ok(false)` and store nothing when the application does not exist.
    async fn add_api_key(&self, key: &NewApiKey, at: DateTime<Utc>) -> Result<bool, RepoError>;

    /// Revokes the application's key with this prefix. MUST return `Ok(false)` when the
    /// application holds no unrevoked key with that prefix.
    async fn revoke_api_key(
        &self, application_id: ApplicationId, prefix: &str, at: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// The unrevoked key with this prefix (expired or not). MUST return `Ok(None)` for an
    /// unknown or revoked prefix.
    async fn find_api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, RepoError>;

    /// The application's keys, revoked ones too, oldest first.
    async fn list_api_keys(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<crate::api_key::ApiKeyInfo>, RepoError>;

    /// Stores a new console session under its id's hash, and forgets those that ended before
    /// `now` or were idle since `idle_since`.
    async fn open_console_session(
        &self, id: ConsoleSessionHash, session: &ConsoleSession, now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// The console session with this id's hash, if it has not ended by `now` and was used
    /// since `idle_since`; it counts as used `now`.
    async fn touch_console_session(
        &self, id: ConsoleSessionHash, now: DateTime<Utc>, idle_since: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, RepoError>;

    /// Ends the console session with this id's hash, if there is one.
    async fn close_console_session(&self, id: ConsoleSessionHash) -> Result<(), RepoError>;

    /// Adds a reviewer. MUST return `Ok(false)` and store nothing when the application does
    /// not exist or a reviewer of the deployment has the email.
    async fn add_reviewer(&self, reviewer: &StoredReviewer) -> Result<bool, RepoError>;

    /// The application's reviewers, oldest first.
    async fn list_reviewers(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<Reviewer>, RepoError>;

    /// The reviewer with this email (as [`crate::reviewer::parse_email`] writes it), of any
    /// application.
    async fn find_reviewer_by_email(
        &self, email: &str,
    ) -> Result<Option<StoredReviewer>, RepoError>;

    /// The reviewer with this id.
    async fn find_reviewer(&self, id: ReviewerId) -> Result<Option<Reviewer>, RepoError>;

    /// Records the reviewer's failed sign-ins in a row and until when it is locked.
    async fn record_sign_in_failures(
        &self, id: ReviewerId, failed: i32, locked_until: Option<DateTime<Utc>>,
    ) -> Result<(), RepoError>;

    /// Sets the time zone the reviewer reads times in (`None`: UTC); `Ok(false)` when there is
    /// no such reviewer.
    async fn set_reviewer_time_zone(
        &self, id: ReviewerId, time_zone: Option<&str>,
    ) -> Result<bool, RepoError>;

    /// Replaces the reviewer's password hash and ends every console session it has.
    async fn set_reviewer_password(&self, id: ReviewerId, hash: &str) -> Result<bool, RepoError>;

    /// Removes the application's reviewer with this email and ends its console sessions.
    /// MUST return `Ok(false)` when the application has no such reviewer.
    async fn remove_reviewer(
        &self, application_id: ApplicationId, email: &str,
    ) -> Result<bool, RepoError>;
}

/// Workflows.
#[async_trait]
pub trait WorkflowRepository: Send + Sync {
    /// Stores a workflow. When it `is_default`, the application's other workflows of that kind
    /// MUST stop being default in the same transaction.
    async fn create_workflow(&self, workflow: &Workflow) -> Result<(), RepoError>;

    /// Writes a workflow's label, steps, default flag, expiration and settings, and numbers
    /// its `version` one more than the stored one (its given `version` is ignored). When it
    /// `is_default`, the application's other workflows of that kind MUST stop being default in
    /// the same transaction. MUST return `Ok(false)` for a deleted or another application's.
    async fn update_workflow(&self, workflow: &Workflow) -> Result<bool, RepoError>;

    /// The application's workflows that are not deleted, oldest first.
    async fn list_workflows(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<Workflow>, RepoError>;

    /// One workflow of the application. MUST return `Ok(None)` for a deleted workflow or
    /// another application's.
    async fn find_workflow(
        &self, application_id: ApplicationId, id: WorkflowId,
    ) -> Result<Option<Workflow>, RepoError>;

    /// Deletes a workflow; sessions that ran it keep its id. MUST return `Ok(false)` when the
    /// application holds no such workflow.
    async fn delete_workflow(
        &self, application_id: ApplicationId, id: WorkflowId, at: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}

/// Sessions, their feature blocks and their log.
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Inserts a session in one transaction: allocates the application's next `session_number`
    /// (never the same twice, even across processes sharing the database), creates the `ACTIVE`
    /// entity of its `vendor_data` when the application has none with that key, and writes
    /// `log` as its first log row. With `reuse_unfinished` and a `vendor_data`, an unfinished session
    /// ([`crate::SessionStatus::UNFINISHED`]) of the same workflow and `vendor_data` is
    /// returned instead, its `callback` and `metadata` replaced by those given — decided under
    /// the same lock that allocates numbers, so that concurrent requests reuse one session.
    async fn create_session(
        &self, session: &NewSession, log: &LogEntry,
    ) -> Result<StoredSession, RepoError>;

    /// The session with its recorded blocks and reviews. MUST return `Ok(None)` for another
    /// application's session.
    async fn find_session(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<SessionRecord>, RepoError>;

    /// The session whose `session_token` this is, of whichever application, without its
    /// blocks: the token in the session's URL is the end user's only credential.
    async fn find_session_by_token(&self, token: &str) -> Result<Option<StoredSession>, RepoError>;

    /// A page of the session's activity ([`crate::LogEntry::is_activity`]), by row order.
    /// MUST return `Ok(None)` for another application's session.
    async fn session_activity(
        &self, application_id: ApplicationId, id: SessionId, query: crate::session::ActivityQuery,
    ) -> Result<Option<crate::session::ActivityPage>, RepoError>;

    /// The session's events — its log rows other than reviews (`created`, `results_recorded`,
    /// `shared`, `imported`, `imported_by`, …) — oldest first. MUST return `Ok(None)` for
    /// another application's session.
    async fn session_events(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<Vec<LogEntry>>, RepoError>;

    /// Replaces the blocks that `results` names and sets its status, and appends `log` with
    /// `old_status` filled in, in one transaction. MUST return `Ok(false)` and write nothing when
    /// the application holds no such session.
    async fn record_results(
        &self, application_id: ApplicationId, id: SessionId, results: &RecordResults,
        log: &LogEntry,
    ) -> Result<bool, RepoError>;

    /// [`SessionRepository::record_results`] when the session's `revision` is still
    /// `revision` (checked under the session's lock); [`RepoError::Changed`] and nothing
    /// written when it is not.
    async fn amend_results(
        &self, application_id: ApplicationId, id: SessionId, revision: i64,
        results: &RecordResults, log: &LogEntry,
    ) -> Result<bool, RepoError>;

    /// Sets the reviewed status when, and only when, the current status is reviewable (checked
    /// and changed atomically), and appends `log` with `old_status` and `new_status` filled in.
    async fn apply_review(
        &self, application_id: ApplicationId, id: SessionId, review: ReviewStatus, log: &LogEntry,
    ) -> Result<ReviewOutcome, RepoError>;

    /// Deletes the application's sessions with these numbers (every one of its sessions with
    /// `None`) and every related row, at once; the deleted sessions' ids and numbers.
    async fn delete_sessions(
        &self, application_id: ApplicationId, numbers: Option<&[i64]>,
    ) -> Result<Vec<(SessionId, i64)>, RepoError>;

    /// Deletes a session and every related row. MUST return `Ok(false)` when the application
    /// holds no such session.
    async fn delete_session(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<bool, RepoError>;

    /// Deletes, with every related row as [`Self::delete_session`] does, up to `batch` of the
    /// application's sessions that finished before `finished_before` — whose status last
    /// became finished ([`crate::SessionStatus::FINISHED`]) then or, never finished, which
    /// were created then — oldest first, writing each one's `session.deleted` event (at `at`)
    /// for a subscribed destination, in one transaction. Sessions that another process is
    /// deleting at the same time are skipped, not waited for.
    async fn delete_finished_before(
        &self, application_id: ApplicationId, finished_before: DateTime<Utc>, batch: u32,
        at: DateTime<Utc>,
    ) -> Result<Vec<crate::retention::DeletedSession>, RepoError>;

    /// Appends `log` (an event that changes no status) to the application's session. MUST
    /// return `Ok(false)` and write nothing when the application holds no such session.
    async fn append_event(
        &self, application_id: ApplicationId, id: SessionId, log: &LogEntry,
    ) -> Result<bool, RepoError>;

    /// How many of the application's sessions are in each status (of these workflows only,
    /// when given); statuses no session is in are left out.
    async fn count_by_status(
        &self, application_id: ApplicationId, workflows: Option<&[WorkflowId]>,
    ) -> Result<Vec<(crate::SessionStatus, u64)>, RepoError>;

    /// Assigns the application's session to a reviewer of the application (`None`: to
    /// nobody). MUST return `Ok(false)` and change nothing when the application holds no such
    /// session or no such reviewer.
    async fn assign_session(
        &self, application_id: ApplicationId, id: SessionId, reviewer: Option<ReviewerId>,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Whom each of these sessions of the application is assigned to, by email.
    async fn assignees(
        &self, application_id: ApplicationId, ids: &[SessionId],
    ) -> Result<Vec<(SessionId, String)>, RepoError>;

    /// One page of the application's sessions that match, newest first.
    async fn list_sessions(
        &self, application_id: ApplicationId, filter: &SessionFilter,
    ) -> Result<SessionPage, RepoError>;
}

/// User and Business entities.
#[async_trait]
pub trait EntityRepository: Send + Sync {
    /// The application's entity of this kind whose `vendor_data` matches case-insensitively.
    async fn find_entity(
        &self, application_id: ApplicationId, kind: SessionKind, vendor_data: &VendorData,
    ) -> Result<Option<Entity>, RepoError>;

    /// Changes the application's entity of this kind and `vendor_data`: its profile — writing
    /// its `user.data.updated` or `business.data.updated` event when a field changed — and its
    /// status with its reason when it differs from the current one — writing its
    /// `user.status.updated` or `business.status.updated` event — in one transaction. The
    /// entity after, or `None`.
    async fn update_entity(
        &self, application_id: ApplicationId, kind: SessionKind, vendor_data: &VendorData,
        update: &crate::entity::EntityUpdate,
    ) -> Result<Option<Entity>, RepoError>;

    /// Creates an entity; `None` when the application has one of that kind whose
    /// `vendor_data` matches.
    async fn create_entity(
        &self, application_id: ApplicationId, entity: &crate::entity::NewEntity,
    ) -> Result<Option<Entity>, RepoError>;

    /// A page of the application's entities of this kind, newest first.
    async fn list_entities(
        &self, application_id: ApplicationId, kind: SessionKind,
        filter: &crate::entity::EntityFilter,
    ) -> Result<crate::entity::EntityPage, RepoError>;

    /// Deletes the application's entities of this kind matching these `vendor_data` or ids
    /// (every one with `None`), each with its sessions and their rows; how many entities.
    async fn delete_entities(
        &self, application_id: ApplicationId, kind: SessionKind,
        selection: Option<(&[VendorData], &[EntityId])>,
    ) -> Result<u64, RepoError>;
}

/// Share tokens: signing what a share means and verifying what a presented token says.
pub trait ShareTokens: Send + Sync {
    /// Signs `claims` into a compact token.
    fn issue(&self, claims: &ShareClaims) -> Result<String, TokenError>;

    /// Verifies a presented token. MUST return `TokenError::Invalid` for anything malformed,
    /// badly signed, signed with an unknown key or a refused algorithm, or missing a required
    /// claim, and `TokenError::Expired` only for a token that is otherwise valid but past `exp`.
    fn verify(&self, token: &str) -> Result<ShareClaims, TokenError>;

    /// The public keys a receiver may verify tokens with, as a JWK Set (`{"keys": [...]}`);
    /// none by default, and never a secret.
    fn published_keys(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [] })
    }
}

/// Idempotency keys: the guarded writes store theirs ([`crate::idempotency::IdempotencyClaim`]);
/// this reads them, records answers, and forgets expired keys.
#[async_trait]
pub trait IdempotencyRepository: Send + Sync {
    /// The application's key, if stored (expired or not).
    async fn find_idempotency(
        &self, application_id: ApplicationId, key: &IdempotencyKey,
    ) -> Result<Option<StoredIdempotency>, RepoError>;

    /// Records the answer of the key's write, unless one is recorded already.
    async fn record_answer(
        &self, application_id: ApplicationId, key: &IdempotencyKey, answer: &RecordedAnswer,
    ) -> Result<(), RepoError>;

    /// Deletes keys created before `before` — one key of one application, or every key when
    /// `key` is `None`; how many.
    async fn forget_idempotency(
        &self, application_id: Option<ApplicationId>, key: Option<&IdempotencyKey>,
        before: DateTime<Utc>,
    ) -> Result<u64, RepoError>;
}

/// The webhook outbox as the delivery worker works it: fan events out, claim what is due,
/// keep each event's payload, record what attempts gave, prune what is done. Several workers
/// (one per server) share it: a claim takes deliveries no other worker holds.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Fans up to `limit` undispatched events out to the destinations subscribed to them, as
    /// pending deliveries due `now`; how many events.
    async fn dispatch_webhook_events(
        &self, limit: u64, now: DateTime<Utc>,
    ) -> Result<usize, RepoError>;

    /// Claims due deliveries as `claim` bounds them, each with its attempt counted and its
    /// next attempt put `claim.lease` later (so that a worker that dies lets it come due
    /// again); with each, what sending it needs.
    async fn claim_webhook_deliveries(
        &self, claim: &Claim<'_>, now: DateTime<Utc>,
    ) -> Result<Vec<DueDelivery>, RepoError>;

    /// Keeps each event's first rendered payload: the payload kept for each of `rendered`'s
    /// events (another worker's, when it kept one first).
    async fn keep_webhook_payloads(
        &self, rendered: &[(EventId, String)],
    ) -> Result<HashMap<EventId, String>, RepoError>;

    /// Records what attempts gave, each by its delivery's id, in one transaction.
    async fn record_webhook_attempts(
        &self, attempts: &[(DeliveryId, AttemptOutcome)], now: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// Deletes delivered deliveries created before `before` and the events no delivery
    /// waits on any more; how many rows.
    async fn prune_webhooks(&self, before: DateTime<Utc>) -> Result<u64, RepoError>;
}

/// Webhook destinations and their deliveries, as their application manages them. (The outbox
/// itself is written by the store with each change; the worker works it through
/// [`DeliveryQueue`].)
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Stores a new destination with its sealed secret.
    async fn create_destination(
        &self, destination: &Destination, secret: &SealedSecret,
    ) -> Result<(), RepoError>;

    /// The application's destinations, oldest first.
    async fn destinations(
        &self, application_id: ApplicationId,
    ) -> Result<Vec<Destination>, RepoError>;

    /// The application's destination with this id. MUST return `Ok(None)` for another
    /// application's.
    async fn find_destination(
        &self, application_id: ApplicationId, id: DestinationId,
    ) -> Result<Option<Destination>, RepoError>;

    /// Saves a destination's label, url, enabled flag, events and `updated_at`.
    async fn update_destination(&self, destination: &Destination) -> Result<bool, RepoError>;

    /// Replaces the secret; the one before keeps signing beside it until `previous_until`.
    async fn rotate_destination_secret(
        &self, application_id: ApplicationId, id: DestinationId, secret: &SealedSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Deletes a destination and its deliveries.
    async fn delete_destination(
        &self, application_id: ApplicationId, id: DestinationId,
    ) -> Result<bool, RepoError>;

    /// A page of a destination's deliveries, newest first.
    async fn deliveries(
        &self, application_id: ApplicationId, destination_id: DestinationId, limit: u64,
        offset: u64,
    ) -> Result<Vec<Delivery>, RepoError>;

    /// Makes a delivery due again at `at` (a resend), whatever it became.
    async fn resend_delivery(
        &self, application_id: ApplicationId, destination_id: DestinationId,
        delivery_id: DeliveryId, at: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}

/// Seals secrets for storage (webhook destinations' signing secrets, list entries' personal
/// values) under the deployment's key-encryption key, and hashes personal values with a key
/// derived from it.
pub trait SecretSealer: Send + Sync {
    /// `secret` sealed for `context` (what it is and whose).
    fn seal(&self, context: &str, secret: &[u8]) -> Result<SealedSecret, RepoError>;

    /// The secret [`Self::seal`] sealed for `context`.
    fn open(&self, context: &str, sealed: &SealedSecret) -> Result<Vec<u8>, RepoError>;

    /// The keyed hash of `value` for `context`, as lowercase hex: the same for the same value
    /// on every server of the deployment, and nothing to guess the value from without its key.
    fn fingerprint(&self, context: &str, value: &str) -> Result<String, RepoError>;
}

/// Lists and their entries ([`crate::lists`]). System blocklists are not stored: their ids
/// are [`crate::lists::system_list_id`], and only their entries are.
#[async_trait]
pub trait ListRepository: Send + Sync {
    /// The application's stored lists (allowlists and custom lists), oldest first, without
    /// counts; and for each list id holding entries (system ones too), how many and when the
    /// newest was added.
    async fn lists(
        &self, application_id: ApplicationId,
    ) -> Result<(Vec<crate::lists::List>, Vec<(crate::lists::ListId, u64, DateTime<Utc>)>), RepoError>;

    /// Stores a new list; `Ok(false)` and nothing stored when the application has a list of
    /// that name.
    async fn create_list(
        &self, application_id: ApplicationId, list: &crate::lists::List,
    ) -> Result<bool, RepoError>;

    /// Renames a stored list or changes its description; `Ok(false)` when another list of the
    /// application has the name. MUST change nothing for another application's list.
    async fn update_list(
        &self, application_id: ApplicationId, list: &crate::lists::List,
    ) -> Result<bool, RepoError>;

    /// Deletes a stored list with its entries; `Ok(false)` when the application holds none.
    async fn delete_list(
        &self, application_id: ApplicationId, id: crate::lists::ListId,
    ) -> Result<bool, RepoError>;

    /// A page of a list's entries, newest first, and how many it holds.
    async fn entries(
        &self, application_id: ApplicationId, list_id: crate::lists::ListId, limit: u64,
        offset: u64,
    ) -> Result<(u64, Vec<crate::lists::Entry>), RepoError>;

    /// Adds an entry; `Ok(false)` and nothing stored when its list holds the same value.
    async fn add_entry(
        &self, application_id: ApplicationId, entry: &crate::lists::NewEntry,
    ) -> Result<bool, RepoError>;

    /// The entries of `lists` that hold one of `keys` as matched — and every entry of those
    /// lists of IP addresses, whose blocks the caller matches — as (entry type, match key).
    async fn listed(
        &self, application_id: ApplicationId, lists: &[crate::lists::ListId], keys: &[String],
    ) -> Result<Vec<(crate::lists::EntryType, String)>, RepoError>;

    /// Deletes the entries of a list with this id, or holding this value (`match_key`); how
    /// many.
    async fn delete_entries(
        &self, application_id: ApplicationId, list_id: crate::lists::ListId,
        which: crate::lists::EntrySelection<'_>,
    ) -> Result<u64, RepoError>;
}

/// The storage behind sharing and importing.
#[async_trait]
pub trait ShareRepository: Send + Sync {
    /// The session row of `application_id` with this id, without its blocks. MUST return
    /// `Ok(None)` when that application holds no such session.
    async fn find_source(
        &self, application_id: ApplicationId, id: SessionId,
    ) -> Result<Option<StoredSession>, RepoError>;

    /// Records an issued token.
    async fn record_share_token(&self, token: &IssuedShareToken) -> Result<(), RepoError>;

    /// Lists a verified token this deployment did not issue (an unlisted token it accepts)
    /// under `claims.jti`, as if issued with `claims`, so that its redemption is recorded like
    /// any other and outlives its clone. MUST change nothing when the `jti` is listed already.
    async fn list_unlisted_token(&self, claims: &ShareClaims) -> Result<(), RepoError>;

    /// What the checks of `attempt` read, in one query: whether its token's `jti` was revoked
    /// (MUST be `false` without a `jti` or for one never recorded), the source session of the
    /// token's source application with its recorded blocks (MUST be `None` when that
    /// application holds no such session), the receiver's existing clone of it, and the
    /// receiver's workflow (MUST be `None` when deleted or another application's).
    async fn import_context(&self, attempt: &ImportAttempt) -> Result<ImportContext, RepoError>;

    /// Every token `application_id` issued for its session `session_id`, oldest first. MUST
    /// be empty for another application's session.
    async fn share_tokens_of(
        &self, application_id: ApplicationId, session_id: SessionId,
    ) -> Result<Vec<LedgerEntry>, RepoError>;

    /// Revokes a token the application issued at `log.created_at`, and the first time, writes
    /// `log` (`share_revoked`) to its session in the same transaction. MUST return `Ok(false)`
    /// when it issued none with this id.
    async fn revoke_share_token(
        &self, application_id: ApplicationId, jti: &str, log: &LogEntry,
    ) -> Result<bool, RepoError>;

    /// Makes the import, all or nothing, in one transaction: when every check of
    /// [`first_failed_check`](crate::share::first_failed_check) passes, writes the receiver's
    /// entity for the clone's `vendor_data` (created `ACTIVE` when it has none, its status read
    /// otherwise), the clone's row (the receiver's next `session_number`, its status from
    /// [`ImportAttempt::status`] with that entity's status, `vendor_data` and recorded blocks
    /// from the source unless overridden, `expires_at` from the workflow), a copy of every row
    /// of the source's recorded blocks and of its log with fresh ids, the attempt's log row and
    /// the token's redemption, and returns `ImportOutcome::Imported` with the clone as written
    /// (its blocks and reviews as a later [`SessionRepository::find_session`] reads them).
    ///
    /// MUST write nothing and return `ImportOutcome::AlreadyImported` when the receiver already
    /// holds a clone of the source, or `ImportOutcome::Refused` — decided by the database, so
    /// that exactly one of concurrent imports wins, across processes. MUST write nothing and
    /// return `ImportOutcome::Refused` when any other check fails.
    async fn import(&self, attempt: &ImportAttempt) -> Result<ImportOutcome, RepoError>;
}

/// What an import from a partner writes: the attempt (the clone's fresh identity, the caller's
/// choices), the issuer's URL and the session it handed over, with what the receiver's
/// blocklists made of its values.
#[derive(Clone, Debug)]
pub struct PartnerImport {
    /// The import, as a local one is asked for.
    pub attempt: ImportAttempt,
    /// The issuing partner's URL.
    pub issuer: String,
    /// The session it handed over.
    pub source: crate::federation::PartnerSession,
    /// The entry types of its values the receiver blocklisted (the clone is then `Declined`).
    pub blocklisted: Vec<crate::lists::EntryType>,
    /// The keys of its values, kept on the clone for later blocklist checks.
    pub keys: crate::lists::SessionKeys,
}

/// Partner deployments, and the storage of the exchange on both of its sides.
#[async_trait]
pub trait PartnerRepository: Send + Sync {
    /// Adds a partner; `Ok(false)` and nothing stored when its name or URL is taken.
    async fn add_partner(&self, partner: &crate::federation::Partner) -> Result<bool, RepoError>;

    /// Every partner, by name.
    async fn partners(&self) -> Result<Vec<crate::federation::Partner>, RepoError>;

    /// Removes a partner; `Ok(false)` when none has this name.
    async fn remove_partner(&self, name: &str) -> Result<bool, RepoError>;

    /// The partner at this URL.
    async fn partner_at(&self, url: &str) -> Result<Option<crate::federation::Partner>, RepoError>;

    /// Replaces a partner's key set, fetched at `at`.
    async fn replace_partner_keys(
        &self, url: &str, keys: &serde_json::Value, at: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// The issuer's side of an exchange, in one transaction: reads the token's ledger row and
    /// the source, decides with
    /// [`first_failed_issuer_check`](crate::federation::first_failed_issuer_check), and with
    /// `redeem` records the redemption by the partner (once: a retry by the same partner
    /// changes nothing), writes the source's log row and its events, and returns the session
    /// as a clone copies it. MUST write nothing when a check fails.
    async fn hand_over(
        &self, hand_over: &crate::federation::HandOver,
    ) -> Result<crate::federation::HandOverOutcome, RepoError>;

    /// What the receiver holds for importing the partner `issuer`'s token `jti` of the source
    /// `source` into `workflow`, in one read: its clone of the source, its redemption of the
    /// token, the workflow (MUST be `None` when deleted or another application's).
    async fn partner_clone_state(
        &self, application_id: ApplicationId, issuer: &str, jti: &str, source: SessionId,
        workflow: WorkflowId,
    ) -> Result<crate::federation::PartnerCloneState, RepoError>;

    /// Writes the clone of a partner's session, all or nothing, as
    /// [`ShareRepository::import`] writes a local one (the entity, the clone's row, its items
    /// and log, the import's row and events), and records the token as redeemed here. MUST
    /// write nothing and return `ImportOutcome::AlreadyImported` when the receiver holds a
    /// clone of the source, or `ImportOutcome::Refused` when it redeemed the token before or
    /// the workflow is gone or of another kind — decided by the database, so that exactly one
    /// of concurrent imports wins.
    async fn import_from_partner(&self, import: &PartnerImport)
    -> Result<ImportOutcome, RepoError>;
}

/// The partner deployments as seen over the network: their keys and their exchange.
#[async_trait]
pub trait PartnerDirectory: Send + Sync {
    /// Verifies a share token whose `iss` is `issuer`, with that partner's published keys
    /// (fetched again, at most so often, when the token names a key not known yet). MUST return
    /// `TokenError::Invalid` when no partner has this URL, and `TokenError::Expired` only for
    /// a token otherwise valid.
    async fn verify(
        &self, issuer: &str, token: &crate::share::ShareToken,
    ) -> Result<(crate::federation::Partner, ShareClaims), TokenError>;

    /// The exchange with the issuing partner, authenticated as this deployment: the session
    /// (its summary when not redeeming).
    async fn redeem(
        &self, partner: &crate::federation::Partner, redemption: &crate::federation::Redemption,
    ) -> Result<crate::federation::PartnerSession, crate::federation::ExchangeError>;

    /// The partner that signed `proof` over `body`, when one did, for this deployment, now.
    async fn authenticate(&self, proof: &str, body: &[u8]) -> Option<crate::federation::Partner>;
}

/// The time.
pub trait Clock: Send + Sync {
    /// Now, in UTC, truncated to whole microseconds (what both databases keep).
    fn now(&self) -> DateTime<Utc>;
}

/// Fresh identifiers and random tokens.
pub trait IdGenerator: Send + Sync {
    /// A fresh random UUID.
    fn uuid(&self) -> Uuid;
    /// A fresh random token of `bytes` random bytes, as lower-case hex.
    fn token(&self, bytes: usize) -> Result<String, RepoError>;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        let micros = now.timestamp_micros();
        DateTime::from_timestamp_micros(micros).unwrap_or(now)
    }
}

/// UUID v4 ids and tokens from the operating system's random source.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn uuid(&self) -> Uuid {
        Uuid::new_v4()
    }

    fn token(&self, bytes: usize) -> Result<String, RepoError> {
        let mut buf = vec![0u8; bytes];
        getrandom::fill(&mut buf)
            .map_err(|e| RepoError::Internal(format!("random source failed: {e}").into()))?;
        Ok(crate::api_key::hex_string(&buf))
    }
}

/// Whether the storage answers, for health checks.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `true` when the storage answered a trivial query just now.
    async fn ready(&self) -> bool;
}
