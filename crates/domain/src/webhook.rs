//! Webhook events: Didit's types, handoff's extensions, and which change causes which.
//!
//! Every change that webhooks report writes a log row of its session ([`LogAction`]); the store
//! writes the events [`events_of`] that row into the outbox in the same statement or
//! transaction, so a change is never without its events, nor an event without its change.

#[cfg(doc)]
use crate::action::LogAction;

use serde_json::{Map, Value};

use crate::address::AddressPolicy;
use crate::session::LogEntry;
use crate::status::SessionStatus;

/// The types of events, as `webhook_type` names them: every type Didit documents (some of which
/// handoff never sends, [`WebhookType::is_sent`]) and handoff's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookType {
    /// Didit's: a session's status changed (created, results recorded, reviewed, imported).
    StatusUpdated,
    /// Didit's: results were recorded over existing ones.
    DataUpdated,
    /// Extension: the receiver imported a shared session (sent to the receiver).
    SessionImported,
    /// Extension: the sharer issued a share token.
    ShareCreated,
    /// Extension: a share token was redeemed (sent to the sharer: which application, nothing
    /// of the receiver's data).
    ShareRedeemed,
    /// Extension: the sharer revoked a share token.
    ShareRevoked,
    /// Extension: the application's retention deleted a session (Didit documents no deletion
    /// event).
    SessionDeleted,
    /// Didit's: a User's status changed (`ACTIVE`, `FLAGGED`, `BLOCKED`).
    UserStatusUpdated,
    /// Didit's: a User's profile (`display_name`, `metadata`) changed.
    UserDataUpdated,
    /// Didit's: a Business's status changed.
    BusinessStatusUpdated,
    /// Didit's: a Business's profile changed.
    BusinessDataUpdated,
    /// Didit's, never sent: Didit accepts it in `subscribed_events` and does not deliver it.
    ActivityCreated,
    /// Didit's, never sent: transaction monitoring, which handoff does not do.
    TransactionCreated,
    /// Didit's, never sent: transaction monitoring.
    TransactionStatusUpdated,
}

impl WebhookType {
    /// Every type, in the order of the docs.
    pub const ALL: [WebhookType; 14] = [
        WebhookType::StatusUpdated,
        WebhookType::DataUpdated,
        WebhookType::UserStatusUpdated,
        WebhookType::UserDataUpdated,
        WebhookType::BusinessStatusUpdated,
        WebhookType::BusinessDataUpdated,
        WebhookType::ActivityCreated,
        WebhookType::TransactionCreated,
        WebhookType::TransactionStatusUpdated,
        WebhookType::SessionImported,
        WebhookType::ShareCreated,
        WebhookType::ShareRedeemed,
        WebhookType::ShareRevoked,
        WebhookType::SessionDeleted,
    ];

    /// The name in `webhook_type` and `subscribed_events`.
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookType::StatusUpdated => "status.updated",
            WebhookType::DataUpdated => "data.updated",
            WebhookType::SessionImported => "session.imported",
            WebhookType::ShareCreated => "share.created",
            WebhookType::ShareRedeemed => "share.redeemed",
            WebhookType::ShareRevoked => "share.revoked",
            WebhookType::SessionDeleted => "session.deleted",
            WebhookType::UserStatusUpdated => "user.status.updated",
            WebhookType::UserDataUpdated => "user.data.updated",
            WebhookType::BusinessStatusUpdated => "business.status.updated",
            WebhookType::BusinessDataUpdated => "business.data.updated",
            WebhookType::ActivityCreated => "activity.created",
            WebhookType::TransactionCreated => "transaction.created",
            WebhookType::TransactionStatusUpdated => "transaction.status.updated",
        }
    }

    /// The event of a status change of an entity of `kind`.
    pub const fn entity_status(kind: crate::SessionKind) -> Self {
        match kind {
            crate::SessionKind::User => WebhookType::UserStatusUpdated,
            crate::SessionKind::Business => WebhookType::BusinessStatusUpdated,
        }
    }

    /// The event of a profile change of an entity of `kind`.
    pub const fn entity_data(kind: crate::SessionKind) -> Self {
        match kind {
            crate::SessionKind::User => WebhookType::UserDataUpdated,
            crate::SessionKind::Business => WebhookType::BusinessDataUpdated,
        }
    }

    /// Whether it tells of an entity rather than a session.
    pub const fn is_entity(self) -> bool {
        matches!(
            self,
            WebhookType::UserStatusUpdated
                | WebhookType::UserDataUpdated
                | WebhookType::BusinessStatusUpdated
                | WebhookType::BusinessDataUpdated
        )
    }

    /// Parses a name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// Whether Didit sends it (the others are handoff's extensions).
    pub const fn is_didit(self) -> bool {
        !matches!(
            self,
            WebhookType::SessionImported
                | WebhookType::ShareCreated
                | WebhookType::ShareRedeemed
                | WebhookType::ShareRevoked
                | WebhookType::SessionDeleted
        )
    }

    /// Whether handoff ever sends it: a destination may subscribe to every type Didit
    /// documents, and is kept subscribed to these few, which never come.
    pub const fn is_sent(self) -> bool {
        !matches!(
            self,
            WebhookType::ActivityCreated
                | WebhookType::TransactionCreated
                | WebhookType::TransactionStatusUpdated
        )
    }
}

/// The events a log row causes, each with the facts its payload needs beyond the session:
/// the status at the event and what the row's details say.
pub fn events_of(log: &LogEntry) -> Vec<(WebhookType, Value)> {
    let mut facts = Map::new();
    if let Some(status) = log.new_status {
        facts.insert("status".into(), status.as_str().into());
    }
    if let Some(Value::Object(details)) = &log.details {
        for (key, value) in details {
            facts.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    let facts = Value::Object(facts);
    let changed = log.new_status.is_some() && log.old_status != log.new_status;
    let replaced = log
        .details
        .as_ref()
        .and_then(|d| d.get("replaced"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| !blocks.is_empty());
    log.action.events(changed, replaced).iter().map(|t| (*t, facts.clone())).collect()
}

/// The statuses whose `status.updated` payload carries the `decision`, as Didit's do.
pub fn carries_decision(status: SessionStatus) -> bool {
    matches!(
        status,
        SessionStatus::Approved
            | SessionStatus::Declined
            | SessionStatus::InReview
            | SessionStatus::Abandoned
    )
}

/// The longest destination `label`, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// The longest destination `url`, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The `webhook_version` of a destination that names none (Didit's current payloads).
pub const WEBHOOK_VERSION: &str = "v3";
/// The `webhook_version`s a destination may name. Every one is sent Didit's v3 payloads
/// (docs/decisions.md).
pub const WEBHOOK_VERSIONS: [&str; 3] = ["v1", "v2", "v3"];
/// How long the previous secret keeps signing beside the new one after a rotation.
pub const SECRET_GRACE_SECONDS: i64 = 86_400;

/// A destination's URL, checked for what can be checked before delivery: `https`, or `http`
/// only when private addresses are allowed (tests, local receivers); a host; no credentials.
/// An address written in it is checked here; the address a name resolves to, at each
/// delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationUrl(String);

impl DestinationUrl {
    /// Parses a URL, saying in one sentence what is wrong when it is refused.
    pub fn parse(raw: &str, allow_private: bool) -> Result<Self, &'static str> {
        if raw.len() > MAX_URL_BYTES {
            return Err("url must be at most 2048 characters.");
        }
        // The parser would drop or encode these; a URL given with them is not the one kept.
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("url must not contain spaces or control characters.");
        }
        let url = url::Url::parse(raw).map_err(|_| "url must be an absolute http(s) URL.")?;
        // A name must be one DNS can hold (after IDNA): letters, digits and hyphens, dotted.
        if let Some(url::Host::Domain(name)) = url.host()
            && !name.split('.').all(|label| {
                (1..=63).contains(&label.len())
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        {
            return Err("url must name a valid host.");
        }
        match url.scheme() {
            "https" => {}
            "http" if allow_private => {}
            "http" => {
                return Err(
                    "url must use https (http reaches loopback and private addresses only, \
                     with HANDOFF_WEBHOOK_ALLOW_PRIVATE=true).",
                );
            }
            _ => return Err("url must be an absolute http(s) URL."),
        }
        // An address written into the url is checked now; a name, when it is resolved.
        let policy = match (url.scheme(), allow_private) {
            ("http", _) => AddressPolicy::PrivateOnly,
            (_, true) => AddressPolicy::AllowPrivate,
            (_, false) => AddressPolicy::PublicOnly,
        };
        let literal = match url.host() {
            None => return Err("url must name a host."),
            Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
        };
        // `localhost` and its subdomains are loopback by definition (RFC 6761): refused now
        // when the worker would refuse every address they resolve to.
        let loopback_name = matches!(url.host(), Some(url::Host::Domain(name))
            if name == "localhost" || name.ends_with(".localhost"));
        let loopback = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        if literal.is_some_and(|ip| !policy.allows(ip))
            || (loopback_name && !policy.allows(loopback))
        {
            return Err("url must not name an address a webhook may not be sent to (loopback and \
                 private addresses need HANDOFF_WEBHOOK_ALLOW_PRIVATE=true).");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url must not carry credentials.");
        }
        if url.fragment().is_some() {
            return Err("url must not have a fragment.");
        }
        Ok(Self(url.into()))
    }

    /// The URL, normalized.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A URL read back from storage, checked when it was stored.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }
}

/// A destination as its application sees it (never its secret).
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    /// Its id.
    pub id: crate::DestinationId,
    /// The application it belongs to.
    pub application_id: crate::ApplicationId,
    /// A name for people.
    pub label: String,
    /// Where events are POSTed.
    pub url: DestinationUrl,
    /// Whether events are sent to it.
    pub enabled: bool,
    /// The payload version (`v3`).
    pub webhook_version: String,
    /// The event types it receives.
    pub subscribed_events: Vec<WebhookType>,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Until when the secret before the last rotation still signs beside the current one.
    pub previous_secret_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// A destination's secret, sealed for storage, with the key-encryption key's id.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The sealed bytes.
    pub bytes: Vec<u8>,
    /// The key-encryption key that sealed them.
    pub sealed_with: String,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedSecret(sealed with {})", self.sealed_with)
    }
}

/// What a delivery became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer came.
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryState {
    /// The stored word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored word.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }
}

/// One event's delivery to one destination, as its application sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Its id.
    pub id: crate::DeliveryId,
    /// The event's id (the payload's `event_id`).
    pub event_id: crate::EventId,
    /// The event's type.
    pub webhook_type: WebhookType,
    /// The session it is about.
    pub session_id: Option<crate::SessionId>,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i32,
    /// The last answer's status code, if one came.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed, without the answer's body.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was delivered.
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::LogAction;
    use chrono::Utc;
    use serde_json::json;

    fn log(
        action: LogAction, old: Option<SessionStatus>, new: Option<SessionStatus>, details: Value,
    ) -> LogEntry {
        LogEntry {
            old_status: old,
            new_status: new,
            ..LogEntry::event("api-key:x", action, Some(details), Utc::now())
        }
    }

    #[test]
    fn each_change_causes_its_events() {
        let types = |log: &LogEntry| events_of(log).into_iter().map(|(t, _)| t).collect::<Vec<_>>();
        let created = log(LogAction::Created, None, Some(SessionStatus::NotStarted), json!({}));
        assert_eq!(types(&created), [WebhookType::StatusUpdated]);
        assert_eq!(events_of(&created)[0].1["status"], "Not Started");
        let approved = log(
            LogAction::ResultsRecorded,
            Some(SessionStatus::InProgress),
            Some(SessionStatus::Approved),
            json!({"blocks": ["id_verifications"], "replaced": []}),
        );
        assert_eq!(types(&approved), [WebhookType::StatusUpdated]);
        let corrected = log(
            LogAction::ResultsRecorded,
            Some(SessionStatus::Approved),
            Some(SessionStatus::Approved),
            json!({"blocks": ["id_verifications"], "replaced": ["id_verifications"]}),
        );
        assert_eq!(types(&corrected), [WebhookType::DataUpdated]);
        let nothing = log(
            LogAction::ResultsRecorded,
            Some(SessionStatus::InProgress),
            Some(SessionStatus::InProgress),
            json!({"blocks": ["ip_analyses"], "replaced": []}),
        );
        assert!(types(&nothing).is_empty());
        let imported = log(
            LogAction::Imported,
            Some(SessionStatus::Approved),
            Some(SessionStatus::InReview),
            json!({"source_session_id": "s", "jti": "j"}),
        );
        assert_eq!(types(&imported), [WebhookType::StatusUpdated, WebhookType::SessionImported]);
        assert_eq!(events_of(&imported)[0].1["status"], "In Review");
        assert_eq!(events_of(&imported)[0].1["jti"], "j");
        for (action, expected) in [
            (LogAction::Shared, WebhookType::ShareCreated),
            (LogAction::ImportedBy, WebhookType::ShareRedeemed),
            (LogAction::ShareRevoked, WebhookType::ShareRevoked),
        ] {
            assert_eq!(types(&log(action, None, None, json!({}))), [expected]);
        }
    }

    #[test]
    fn destination_urls_are_https_unless_private_addresses_are_allowed() {
        assert!(DestinationUrl::parse("https://hooks.example.com/didit", false).is_ok());
        assert_eq!(
            DestinationUrl::parse("http://hooks.example.com/didit", false),
            Err("url must use https (http reaches loopback and private addresses only, \
                 with HANDOFF_WEBHOOK_ALLOW_PRIVATE=true).")
        );
        assert!(DestinationUrl::parse("http://127.0.0.1:9000/hook", true).is_ok());
        for bad in [
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
            "https://example.com/x#frag",
            "/relative",
            "not a url",
            "https://8dohw3690l3e1g4t8.nwy*",
            "https://a..example.com/x",
            "https://under_score.example.com/x",
            "https://example.com/x\n",
            " https://example.com/x",
        ] {
            assert!(DestinationUrl::parse(bad, true).is_err(), "{bad}");
        }
        // Query strings, ports, IDNA names and addresses are fine.
        for good in [
            "https://hooks.example.com/didit?token=abc",
            "https://hooks.example.com:8443/didit",
            "https://bücher.example/hook",
            "https://93.184.216.34/hook",
        ] {
            assert!(DestinationUrl::parse(good, false).is_ok(), "{good}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(DestinationUrl::parse(&long, false).is_err());
        // An inward address written in the url is refused at once, in any of its forms.
        for inward in [
            "https://127.0.0.1/x",
            "https://[::127.0.0.1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://[64:ff9b::7f00:1]/x",
            "https://[2002:7f00:1::]/x",
            "https://localhost:9000/x",
            "https://LocalHost/x",
            "https://hooks.localhost/x",
        ] {
            assert_eq!(
                DestinationUrl::parse(inward, false)
                    .map_err(|e| e.contains("HANDOFF_WEBHOOK_ALLOW_PRIVATE")),
                Err(true),
                "{inward}"
            );
            assert!(DestinationUrl::parse(inward, true).is_ok(), "{inward}");
        }
        for never in ["https://169.254.169.254/latest", "http://[::169.254.169.254]/x"] {
            assert!(DestinationUrl::parse(never, true).is_err(), "{never}");
        }
        assert!(DestinationUrl::parse("http://localhost:9000/x", true).is_ok());
        assert!(DestinationUrl::parse("https://localhost.example.com/x", false).is_ok());
    }

    #[test]
    fn names_round_trip_and_didits_are_marked() {
        for t in WebhookType::ALL {
            assert_eq!(WebhookType::parse(t.as_str()), Some(t));
        }
        assert!(WebhookType::StatusUpdated.is_didit());
        assert!(!WebhookType::ShareCreated.is_didit());
        assert!(WebhookType::UserStatusUpdated.is_didit());
        assert_eq!(
            WebhookType::entity_status(crate::SessionKind::Business).as_str(),
            "business.status.updated"
        );
        assert!(WebhookType::BusinessStatusUpdated.is_entity());
        assert!(!WebhookType::StatusUpdated.is_entity());
        assert_eq!(
            WebhookType::entity_data(crate::SessionKind::User).as_str(),
            "user.data.updated"
        );
        assert!(WebhookType::UserDataUpdated.is_entity());
        // Every Didit type may be subscribed; three never come.
        let never: Vec<&str> =
            WebhookType::ALL.iter().filter(|t| !t.is_sent()).map(|t| t.as_str()).collect();
        assert_eq!(
            never,
            ["activity.created", "transaction.created", "transaction.status.updated"]
        );
        assert!(WebhookType::ALL.iter().filter(|t| !t.is_sent()).all(|t| t.is_didit()));
        assert!(WebhookType::parse("user.created").is_none());
    }
}
