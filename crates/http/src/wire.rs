//! The response shapes of the API as types, so that the OpenAPI document is generated from the
//! same definitions the handlers serialize. Decision payloads are written by
//! [`crate::decision`]; their schemas here describe that output field for field.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use uuid::Uuid;

/// Session statuses, exactly as on the wire: the domain's, by their names.
pub struct SessionStatus;

impl utoipa::PartialSchema for SessionStatus {
    fn schema() -> RefOr<Schema> {
        let names = handoff_domain::SessionStatus::ALL.map(|status| status.as_str());
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("Session statuses, exactly as on the wire."))
            .enum_values(Some(names))
            .into()
    }
}

impl ToSchema for SessionStatus {}

/// Session kinds.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    User,
    Business,
}

/// Which device a session's callback applies to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallbackMethod {
    Initiator,
    Completer,
    Both,
}

/// Didit's ID document types.
#[derive(ToSchema)]
pub enum DocumentType {
    P,
    DL,
    ID,
    RP,
    SSC,
    HIC,
    WP,
    TC,
    VISA,
    PSC,
    BC,
    OTHER,
}

/// Genders as documents print them.
#[derive(ToSchema)]
pub enum Gender {
    M,
    F,
    U,
}

/// Marital statuses.
#[derive(ToSchema)]
pub enum MaritalStatus {
    SINGLE,
    MARRIED,
    DIVORCED,
    WIDOWED,
    UNKNOWN,
}

/// Proof-of-address document types.
#[derive(ToSchema)]
#[expect(non_camel_case_types, reason = "Didit's names, as on the wire")]
pub enum PoaDocumentType {
    UTILITY_BILL,
    BANK_STATEMENT,
    GOVERNMENT_ISSUED_DOCUMENT,
    OTHER_POA_DOCUMENT,
    UNKNOWN,
}

/// A step to resubmit.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema of the OpenAPI document only: never built or read")]
pub struct NodeToResubmit {
    /// The `node_id` of the step's items in the decision.
    #[schema(min_length = 1, max_length = 100)]
    node_id: String,
    /// The step's feature (`OCR`, `POA`, …); informative.
    feature: Option<String>,
}

/// Entity statuses.
#[derive(Serialize, ToSchema)]
pub enum EntityStatus {
    #[serde(rename = "ACTIVE")]
    Active,
    #[serde(rename = "FLAGGED")]
    Flagged,
    #[serde(rename = "BLOCKED")]
    Blocked,
}

/// Every error: a sentence, a machine code, field errors on 400 `invalid_request`, the
/// existing clone's id on 403 `already_imported`, and the scope the key lacks on 403
/// `missing_scope`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// `<resource>:read` or `<resource>:write`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "sessions:write")]
    pub scope: Option<String>,
}

/// `GET /health/`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub database: String,
}

/// A webhook destination (Didit's shape; `previous_secret_valid_until` is an extension).
#[derive(Serialize, ToSchema)]
pub struct WebhookDestination {
    /// Its id, under Didit's name (the `destination_uuid` of its paths).
    pub uuid: Uuid,
    /// The same id (extension: the name handoff answered first).
    pub id: Uuid,
    pub label: String,
    pub url: String,
    pub enabled: bool,
    pub webhook_version: String,
    pub subscribed_events: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Until when the secret before the last rotation should still be accepted.
    pub previous_secret_valid_until: Option<String>,
    /// The secret that signs deliveries: only in the answers of creation and rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_shared_key: Option<String>,
}

impl WebhookDestination {
    /// A destination as answered, with its secret only when it was just made.
    pub fn new(d: &handoff_domain::webhook::Destination, secret: Option<String>) -> Self {
        use crate::decision::timestamp;
        Self {
            uuid: d.id.as_uuid(),
            id: d.id.as_uuid(),
            label: d.label.clone(),
            url: d.url.as_str().to_owned(),
            enabled: d.enabled,
            webhook_version: d.webhook_version.clone(),
            subscribed_events: d.subscribed_events.iter().map(|e| e.as_str().to_owned()).collect(),
            created_at: timestamp(d.created_at),
            updated_at: timestamp(d.updated_at),
            previous_secret_valid_until: d.previous_secret_until.map(timestamp),
            secret_shared_key: secret,
        }
    }
}

/// A page of a list: how many rows match, links to the neighbouring pages (`null` at either
/// end), and this page's rows.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub count: u64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// The list of destinations.
#[derive(Serialize, ToSchema)]
pub struct WebhookDestinationList {
    pub count: u64,
    pub results: Vec<WebhookDestination>,
}

/// One event's delivery to one destination (extension).
#[derive(Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    pub webhook_type: String,
    pub session_id: Option<Uuid>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

impl From<&handoff_domain::webhook::Delivery> for WebhookDelivery {
    fn from(d: &handoff_domain::webhook::Delivery) -> Self {
        use crate::decision::timestamp;
        Self {
            delivery_id: d.id.as_uuid(),
            event_id: d.event_id.as_uuid(),
            webhook_type: d.webhook_type.as_str().to_owned(),
            session_id: d.session_id.map(|id| id.as_uuid()),
            state: d.state.as_str().to_owned(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            next_attempt_at: d.next_attempt_at.map(timestamp),
            delivered_at: d.delivered_at.map(timestamp),
            created_at: timestamp(d.created_at),
        }
    }
}

/// One event of a session (`?include=events`, extension).
#[derive(Serialize, ToSchema)]
pub struct SessionEvent {
    /// What happened: `created`, `results_recorded`, `shared`, `imported`, `imported_by`, …
    pub action: String,
    /// Who did it: `api-key:<prefix>`, `engine`, or `application:<id>` (another application,
    /// or the source application on a clone's copied history).
    pub actor: String,
    pub previous_status: Option<String>,
    pub new_status: Option<String>,
    /// What the event says besides: for `shared`, `for_application_id`, `jti`, `expires_at`;
    /// for `imported_by`, `application_id` and `jti`; for `imported`, the source's application
    /// and session, `trust_review` and `jti` (`previous_status` is then the source's status at
    /// import).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    pub created_at: String,
}

impl From<&handoff_domain::LogEntry> for SessionEvent {
    fn from(log: &handoff_domain::LogEntry) -> Self {
        Self {
            action: log.action.as_str().to_owned(),
            actor: log.actor.clone(),
            previous_status: log.old_status.map(|s| s.as_str().to_owned()),
            new_status: log.new_status.map(|s| s.as_str().to_owned()),
            details: log.details.clone(),
            created_at: crate::decision::timestamp(log.created_at),
        }
    }
}

/// `GET /.well-known/jwks.json`: a JWK Set (RFC 7517) of Ed25519 public keys.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public key: `{"kty": "OKP", "crv": "Ed25519", "x", "kid", "alg": "EdDSA", "use": "sig"}`.
#[derive(Serialize, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// One step of a workflow.
#[derive(Serialize, ToSchema)]
pub struct WorkflowStep {
    pub feature: String,
    #[schema(value_type = Object)]
    pub config: Value,
    pub label: Option<String>,
}

/// A workflow.
#[derive(Serialize, ToSchema)]
pub struct Workflow {
    pub workflow_id: Uuid,
    pub workflow_label: String,
    pub features: Vec<WorkflowStep>,
    #[schema(value_type = SessionKind)]
    pub session_kind: String,
    pub is_default: bool,
    pub session_expiration_time: i64,
    /// `published` or `draft`: kept and answered; handoff runs every workflow alike.
    pub status: String,
    /// Kept and answered (the capture provider's to honour).
    pub is_white_label_enabled: bool,
    /// Kept and answered.
    pub is_desktop_allowed: bool,
    /// Kept and answered.
    pub max_retry_attempts: i64,
    /// Kept and answered.
    pub retry_window_days: i64,
    /// A declined session's values go to the system blocklists (handoff's name).
    pub is_auto_blocklist_enabled: bool,
    pub created_at: String,
}

/// `POST /v3/session/` answers this.
#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    pub session_id: Uuid,
    pub session_number: i64,
    pub session_token: String,
    pub url: String,
    pub vendor_data: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[schema(value_type = SessionStatus)]
    pub status: String,
    pub workflow_id: Uuid,
    /// The version of the workflow the session was created on: 1 when made, one more at each
    /// change (a retried creation answers the version now, `null` once it was deleted).
    pub workflow_version: Option<i64>,
    pub callback: Option<String>,
    #[schema(value_type = SessionKind)]
    pub session_kind: String,
}

/// A session in a list.
#[derive(Serialize, ToSchema)]
pub struct SessionSummary {
    pub session_id: Uuid,
    pub session_number: i64,
    #[schema(value_type = SessionKind)]
    pub session_kind: String,
    #[schema(value_type = SessionStatus)]
    pub status: String,
    pub workflow_id: Uuid,
    pub vendor_data: Option<String>,
    pub session_url: String,
    /// The full name on the identity document (KYC).
    pub full_name: Option<String>,
    /// The identity document's type (KYC).
    pub document_type: Option<String>,
    /// The company's name (KYB).
    pub company_name: Option<String>,
    /// The company's registration number (KYB).
    pub registration_number: Option<String>,
    /// The document's issuing state (KYC) or the company's country (KYB).
    pub country: Option<String>,
    /// Each feature of the workflow and its status (`Not Started` until results come).
    pub features: Vec<FeatureStatus>,
    pub shared_from_session: Option<Uuid>,
    pub created_at: String,
    pub expires_at: String,
}

/// A feature of a session and its status.
#[derive(Serialize, ToSchema)]
pub struct FeatureStatus {
    /// Its decision name, e.g. `ID_VERIFICATION`.
    pub feature: String,
    pub status: String,
}

/// A User or Business.
#[derive(Serialize, ToSchema)]
pub struct Entity {
    /// Its id.
    pub didit_internal_id: Uuid,
    pub vendor_data: String,
    #[schema(value_type = SessionKind)]
    pub entity_kind: String,
    #[schema(value_type = EntityStatus)]
    pub status: String,
    pub display_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub session_count: i64,
    pub approved_count: i64,
    pub declined_count: i64,
    pub in_review_count: i64,
    pub first_session_at: Option<String>,
    pub last_session_at: Option<String>,
    pub created_at: String,
    /// Why its status last changed (extension).
    pub status_reason: Option<String>,
    /// When its status last changed (extension); `null` while it has its first.
    pub status_updated_at: Option<String>,
}

impl From<handoff_domain::Entity> for Entity {
    fn from(entity: handoff_domain::Entity) -> Self {
        let counts = entity.counts;
        Entity {
            didit_internal_id: entity.id.as_uuid(),
            vendor_data: entity.vendor_data.as_str().to_owned(),
            entity_kind: entity.kind.as_str().to_owned(),
            status: entity.status.as_str().to_owned(),
            display_name: entity.display_name,
            metadata: entity.metadata,
            session_count: counts.session_count,
            approved_count: counts.approved_count,
            declined_count: counts.declined_count,
            in_review_count: counts.in_review_count,
            first_session_at: counts.first_session_at.map(crate::decision::timestamp),
            last_session_at: counts.last_session_at.map(crate::decision::timestamp),
            created_at: crate::decision::timestamp(entity.created_at),
            status_reason: entity.status_reason,
            status_updated_at: entity.status_updated_at.map(crate::decision::timestamp),
        }
    }
}

/// `PATCH /v3/session/{id}/update-status/` answers this.
#[derive(Serialize, ToSchema)]
pub struct Reviewed {
    pub session_id: Uuid,
}

/// `POST /v3/session/{id}/share/` answers this.
#[derive(Serialize, ToSchema)]
pub struct Shared {
    pub share_token: String,
    pub for_application_id: Uuid,
    #[schema(value_type = SessionKind)]
    pub session_kind: String,
}

/// What an import would create (extension): `POST /v3/session/import-shared/preview/`.
#[derive(Serialize, ToSchema)]
pub struct ImportPreview {
    #[schema(value_type = SessionKind)]
    pub session_kind: String,
    pub shared_from_session: Uuid,
    #[schema(value_type = SessionStatus)]
    pub source_status: String,
    /// The status the clone would get.
    #[schema(value_type = SessionStatus)]
    pub status: String,
    pub vendor_data: Option<String>,
    /// `created` (a new ACTIVE User or Business) or `joined` (the receiver's existing one);
    /// null without `vendor_data`.
    pub entity: Option<String>,
    /// The status of the entity the clone would join.
    pub entity_status: Option<String>,
    /// The feature blocks the clone would hold (their V3 keys).
    pub blocks: Vec<String>,
    /// The blocks the source recorded that the share withholds (it names the others).
    pub withheld: Vec<String>,
    /// The entry types of the source's values the receiver blocklisted: the clone would be
    /// `Declined`.
    pub blocklisted: Vec<String>,
}

/// Where a share token stands (extension).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    Redeemed,
    Revoked,
    Expired,
}

/// One token of a session's share ledger, as its issuer sees it (extension):
/// `GET /v3/session/{id}/shares/` lists them, `POST …/shares/{jti}/revoke/` answers one.
#[derive(Serialize, ToSchema)]
pub struct ShareLedgerEntry {
    pub jti: String,
    pub for_application_id: Uuid,
    #[schema(value_type = SessionKind)]
    pub session_kind: String,
    pub issued_at: String,
    pub expires_at: String,
    #[schema(value_type = TokenState)]
    pub state: String,
    pub revoked_at: Option<String>,
    pub redeemed_at: Option<String>,
    /// The application whose import redeemed the token (its clone is that application's).
    pub redeemed_by_application_id: Option<Uuid>,
    /// The blocks the share carries (their V3 keys); null: every block.
    pub blocks: Option<Vec<String>>,
    /// The person's consent to the share, as its sharer recorded it.
    #[schema(value_type = Option<Object>)]
    pub consent: Option<serde_json::Value>,
}

impl From<&(handoff_domain::LedgerEntry, handoff_domain::TokenState)> for ShareLedgerEntry {
    fn from((entry, state): &(handoff_domain::LedgerEntry, handoff_domain::TokenState)) -> Self {
        use crate::decision::timestamp;
        ShareLedgerEntry {
            jti: entry.jti.clone(),
            for_application_id: entry.claims.for_application_id.as_uuid(),
            session_kind: entry.claims.session_kind.as_str().to_owned(),
            issued_at: timestamp(entry.claims.issued_at),
            expires_at: timestamp(entry.claims.expires_at),
            state: state.as_str().to_owned(),
            revoked_at: entry.revoked_at.map(timestamp),
            redeemed_at: entry.redeemed_at.map(timestamp),
            redeemed_by_application_id: entry
                .redeemed_at
                .map(|_| entry.claims.for_application_id.as_uuid()),
            blocks: entry
                .claims
                .blocks
                .as_ref()
                .map(|blocks| blocks.iter().map(|b| b.v3_key().to_owned()).collect()),
            consent: entry.claims.consent.as_ref().map(handoff_domain::share::Consent::to_json),
        }
    }
}

/// A review in a decision payload.
#[derive(Serialize, ToSchema)]
pub struct Review {
    pub user: String,
    #[schema(value_type = SessionStatus)]
    pub new_status: String,
    pub comment: Option<String>,
    pub created_at: String,
}

/// The V3 decision payload. Blocks are arrays of the engine's items (objects with at least
/// `node_id` and `status`), or null when the feature never ran; a session carries the blocks of
/// its kind only.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema of the OpenAPI document only: never built or read")]
pub struct DecisionV3 {
    session_id: Uuid,
    #[schema(value_type = SessionKind)]
    session_kind: String,
    session_number: i64,
    session_url: String,
    #[schema(value_type = SessionStatus)]
    status: String,
    workflow_id: Uuid,
    features: Vec<String>,
    vendor_data: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    callback: Option<String>,
    /// Present when the session was created with it.
    #[schema(value_type = CallbackMethod, required = false)]
    callback_method: Option<String>,
    /// Present when the session was created with it.
    #[schema(required = false)]
    language: String,
    /// Base64; present when the session was created with it.
    #[schema(required = false)]
    portrait_image: String,
    #[schema(value_type = Option<Object>)]
    contact_details: Option<Value>,
    #[schema(value_type = Option<Object>)]
    expected_details: Option<Value>,
    shared_from_session: Option<Uuid>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    id_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    nfc_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    liveness_checks: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    face_matches: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    poa_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    phone_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    email_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    aml_screenings: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    ip_analyses: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    database_validations: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    questionnaire_responses: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    registry_checks: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    key_people_checks: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>, required = false)]
    document_verifications: Option<Vec<Value>>,
    reviews: Vec<Review>,
    created_at: String,
    expires_at: String,
}

/// The V2 decision payload of a user session: each block is its first item without `node_id`,
/// or null.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema of the OpenAPI document only: never built or read")]
pub struct DecisionV2 {
    session_id: Uuid,
    session_number: i64,
    session_url: String,
    #[schema(value_type = SessionStatus)]
    status: String,
    workflow_id: Uuid,
    features: Vec<String>,
    vendor_data: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    callback: Option<String>,
    #[schema(value_type = Option<Object>)]
    contact_details: Option<Value>,
    #[schema(value_type = Option<Object>)]
    expected_details: Option<Value>,
    shared_from_session: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    id_verification: Option<Value>,
    #[schema(value_type = Option<Object>)]
    nfc: Option<Value>,
    #[schema(value_type = Option<Object>)]
    liveness: Option<Value>,
    #[schema(value_type = Option<Object>)]
    face_match: Option<Value>,
    #[schema(value_type = Option<Object>)]
    poa: Option<Value>,
    #[schema(value_type = Option<Object>)]
    phone: Option<Value>,
    #[schema(value_type = Option<Object>)]
    email: Option<Value>,
    #[schema(value_type = Option<Object>)]
    aml: Option<Value>,
    #[schema(value_type = Option<Object>)]
    ip_analysis: Option<Value>,
    #[schema(value_type = Option<Object>)]
    database_validation: Option<Value>,
    #[schema(value_type = Option<Object>)]
    questionnaire: Option<Value>,
    reviews: Vec<Review>,
    created_at: String,
    expires_at: String,
}

/// The body of `PUT /v3/session/{id}/decision/`: an optional status and any blocks of the
/// session's kind, each an array of items (objects with string `node_id` and `status`) or null.
/// Unknown members and blocks of the other kind are refused.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a schema of the OpenAPI document only: never built or read")]
pub struct RecordResults {
    #[schema(value_type = Option<SessionStatus>)]
    status: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    id_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    nfc_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    liveness_checks: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    face_matches: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    poa_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    phone_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    email_verifications: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    aml_screenings: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    ip_analyses: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    database_validations: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    questionnaire_responses: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    registry_checks: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    key_people_checks: Option<Vec<Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    document_verifications: Option<Vec<Value>>,
}

/// A list (Didit's Lists API).
#[derive(Serialize, ToSchema)]
pub struct List {
    pub uuid: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// `blocklist`, `allowlist` or `custom`.
    pub list_type: String,
    /// `face`, `document`, `phone`, `email`, `ip_address`, `device_fingerprint`,
    /// `wallet_address`, `bank_account`, `user`, `business`, `country` or `key`.
    pub entry_type: String,
    /// One of the system blocklists, one per entry type: neither renamed nor deleted.
    pub is_system: bool,
    pub entry_count: u64,
    pub last_entry_added_at: Option<String>,
    pub created_at: String,
}

impl From<&handoff_domain::lists::List> for List {
    fn from(l: &handoff_domain::lists::List) -> Self {
        List {
            uuid: l.id,
            name: l.name.clone(),
            description: l.description.clone(),
            list_type: l.list_type.as_str().to_owned(),
            entry_type: l.entry_type.as_str().to_owned(),
            is_system: l.is_system,
            entry_count: l.entry_count,
            last_entry_added_at: l.last_entry_added_at.map(crate::decision::timestamp),
            created_at: crate::decision::timestamp(l.created_at),
        }
    }
}

/// An entry of a list. A personal value (document, email, phone, face, device, wallet, bank
/// account) is kept only as a keyed hash: its `value` is `null`.
#[derive(Serialize, ToSchema)]
pub struct ListEntry {
    pub uuid: Uuid,
    pub list_uuid: Uuid,
    pub entry_type: String,
    pub value: Option<String>,
    pub display_label: Option<String>,
    pub comment: Option<String>,
    pub reference_session_id: Option<Uuid>,
    /// `api` (the Lists API) or `blocklist` (`POST /v3/blocklist/add/`).
    pub added_by: String,
    pub created_at: String,
}

impl From<&handoff_domain::lists::Entry> for ListEntry {
    fn from(e: &handoff_domain::lists::Entry) -> Self {
        ListEntry {
            uuid: e.id,
            list_uuid: e.list_id,
            entry_type: e.entry_type.as_str().to_owned(),
            value: e.value.clone(),
            display_label: e.display_label.clone(),
            comment: e.comment.clone(),
            reference_session_id: e.reference_session_id.map(|s| s.as_uuid()),
            added_by: e.added_by.clone(),
            created_at: crate::decision::timestamp(e.created_at),
        }
    }
}

/// What `POST /v3/blocklist/add/` and `…/remove/` did.
#[derive(Serialize, ToSchema)]
pub struct BlocklistAnswer {
    pub message: String,
    pub session_id: Uuid,
    /// The entry types added (or removed): those the session holds a value of.
    pub entry_types: Vec<String>,
}
