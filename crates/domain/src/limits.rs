//! Every limit of the contract in one list: each is defined beside the rule that applies it
//! and named here, so that the OpenAPI document's constraints (`handoff-http`'s
//! `constraints.rs`) and the docs read the same numbers the rules check.

pub use crate::correction::TEXT_MAX_CHARS as MAX_CORRECTED_TEXT_CHARS;
pub use crate::entity::{MAX_DISPLAY_NAME_CHARS, MAX_STATUS_REASON_CHARS};
pub use crate::idempotency::{IDEMPOTENCY_WINDOW_SECONDS, MAX_IDEMPOTENCY_KEY_CHARS};
pub use crate::services::{MAX_DELIVERY_PAGE, MAX_DESTINATIONS};
pub use crate::session::{
    DEFAULT_PAGE_SIZE, MAX_CALLBACK_CHARS, MAX_COMMENT_CHARS, MAX_NODE_ID_CHARS,
    MAX_NODES_TO_RESUBMIT, MAX_PAGE_SIZE, MAX_SEARCH_CHARS,
};
pub use crate::session_options::PORTRAIT_IMAGE_MAX_BYTES;
pub use crate::share::{
    DEFAULT_TTL_SECONDS, MAX_SHARE_TOKEN_CHARS, MAX_SOURCE_AGE_SECONDS, MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
};
pub use crate::vendor_data::MAX_VENDOR_DATA_CHARS;
pub use crate::webhook::{MAX_LABEL_CHARS as MAX_DESTINATION_LABEL_CHARS, MAX_URL_BYTES};
pub use crate::workflow::{
    DEFAULT_SESSION_EXPIRATION_SECONDS, MAX_FEATURE_LABEL_CHARS, MAX_SESSION_EXPIRATION_SECONDS,
    MAX_WORKFLOW_LABEL_CHARS, MIN_SESSION_EXPIRATION_SECONDS,
};

/// The most session numbers one `POST /v3/sessions/delete/` names.
pub const MAX_DELETE_SESSIONS: usize = 1000;

/// The most `vendor_data` values, or internal ids, one entity deletion names.
pub const MAX_DELETE_ENTITIES: usize = 1000;

/// The longest base64 text of a portrait of [`PORTRAIT_IMAGE_MAX_BYTES`]: four characters for
/// every three bytes, padded.
pub const MAX_PORTRAIT_IMAGE_CHARS: usize = PORTRAIT_IMAGE_MAX_BYTES.div_ceil(3) * 4;
