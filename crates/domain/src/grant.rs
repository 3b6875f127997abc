//! What an API key may do. An application's primary key — the one made with it — holds every
//! right; a named key holds its scopes (`<resource>:read` or `<resource>:write`, write
//! including read), and may be limited to some workflows, to some client addresses and in time,
//! as Didit's scoped keys are.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
pub use ipnet::IpNet;

use crate::ids::WorkflowId;

/// What a scope gives access to: a family of routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Sessions: create, record results, decisions, reports, corrections, lists and deletes.
    Sessions,
    /// Reviews of sessions: `update-status`, the reviews list, and the review console.
    Reviews,
    /// Share tokens: share, import (and its preview), the ledger and revocation.
    Shares,
    /// Workflows.
    Workflows,
    /// User entities (`/v3/users/…`).
    Users,
    /// Business entities (`/v3/businesses/…`).
    Businesses,
    /// Webhook destinations and their deliveries.
    Webhooks,
    /// Lists and blocklists (`/v3/lists/…`, `/v3/blocklist/…`).
    Lists,
}

impl Resource {
    /// Every resource, in the order of the docs.
    pub const ALL: [Resource; 8] = [
        Resource::Sessions,
        Resource::Reviews,
        Resource::Shares,
        Resource::Workflows,
        Resource::Users,
        Resource::Businesses,
        Resource::Webhooks,
        Resource::Lists,
    ];

    /// Its name in a scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Sessions => "sessions",
            Resource::Reviews => "reviews",
            Resource::Shares => "shares",
            Resource::Workflows => "workflows",
            Resource::Users => "users",
            Resource::Businesses => "businesses",
            Resource::Webhooks => "webhooks",
            Resource::Lists => "lists",
        }
    }
}

/// Read, or read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Requests that change nothing.
    Read,
    /// Every request; includes read.
    Write,
}

impl Access {
    /// Its name in a scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One right: a resource and an access, written `sessions:read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// What.
    pub resource: Resource,
    /// How.
    pub access: Access,
}

impl Scope {
    /// Whether holding this scope allows what `needed` names.
    pub fn covers(self, needed: Scope) -> bool {
        self.resource == needed.resource && self.access >= needed.access
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource.as_str(), self.access.as_str())
    }
}

/// A scope that is not `<resource>:read` or `<resource>:write` of a known resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a scope: {0:?}")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownScope(text.to_owned());
        let (resource, access) = text.split_once(':').ok_or_else(unknown)?;
        let resource =
            Resource::ALL.into_iter().find(|r| r.as_str() == resource).ok_or_else(unknown)?;
        let access = [Access::Read, Access::Write]
            .into_iter()
            .find(|a| a.as_str() == access)
            .ok_or_else(unknown)?;
        Ok(Scope { resource, access })
    }
}

/// What a key may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// Its scopes; `None`: every right (a primary key).
    pub scopes: Option<Vec<Scope>>,
    /// The only workflows whose sessions it sees (any other session does not exist for it);
    /// `None`: every workflow.
    pub workflows: Option<Vec<WorkflowId>>,
    /// The only client addresses it is accepted from; empty: any.
    pub addresses: Vec<IpNet>,
    /// When it stops authenticating.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Grant {
    /// Every right, from anywhere, for ever: a primary key's.
    pub fn every_right() -> Self {
        Self::default()
    }

    /// Whether the key may make a request that needs `needed`.
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.as_ref().is_none_or(|scopes| scopes.iter().any(|s| s.covers(needed)))
    }

    /// Whether the key sees the sessions of `workflow`.
    pub fn sees_workflow(&self, workflow: WorkflowId) -> bool {
        self.workflows.as_ref().is_none_or(|workflows| workflows.contains(&workflow))
    }

    /// Whether requests from `address` may use the key.
    pub fn accepts_address(&self, address: IpAddr) -> bool {
        self.addresses.is_empty() || self.addresses.iter().any(|net| net.contains(&address))
    }

    /// Whether the key still authenticates at `now`.
    pub fn is_current(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|expires_at| now < expires_at)
    }
}

/// Parses a client address list entry: a CIDR block, or one address (a /32 or /128).
pub fn parse_address_block(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>().ok().or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_and_write_as_written_and_write_includes_read() {
        for resource in Resource::ALL {
            for access in [Access::Read, Access::Write] {
                let scope = Scope { resource, access };
                assert_eq!(scope.to_string().parse::<Scope>(), Ok(scope));
            }
        }
        for bad in ["sessions", "sessions:admin", "session:read", ":read", "sessions:read:x", ""] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
        let read: Scope = "sessions:read".parse().unwrap();
        let write: Scope = "sessions:write".parse().unwrap();
        assert!(write.covers(read) && write.covers(write) && read.covers(read));
        assert!(!read.covers(write));
        assert!(!write.covers("shares:read".parse().unwrap()));
    }

    #[test]
    fn a_grant_allows_what_its_scopes_workflows_addresses_and_expiry_allow() {
        let everything = Grant::every_right();
        let workflow = WorkflowId::from_uuid(uuid::Uuid::from_u128(1));
        let other = WorkflowId::from_uuid(uuid::Uuid::from_u128(2));
        let now = Utc::now();
        assert!(everything.allows("webhooks:write".parse().unwrap()));
        assert!(everything.sees_workflow(other));
        assert!(everything.accepts_address("203.0.113.9".parse().unwrap()));
        assert!(everything.is_current(now));

        let named = Grant {
            scopes: Some(vec!["sessions:read".parse().unwrap()]),
            workflows: Some(vec![workflow]),
            addresses: vec![
                parse_address_block("10.0.0.0/8").unwrap(),
                parse_address_block("2001:db8::1").unwrap(),
            ],
            expires_at: Some(now),
        };
        assert!(named.allows("sessions:read".parse().unwrap()));
        assert!(!named.allows("sessions:write".parse().unwrap()));
        assert!(!named.allows("reviews:read".parse().unwrap()));
        assert!(named.sees_workflow(workflow) && !named.sees_workflow(other));
        assert!(named.accepts_address("10.1.2.3".parse().unwrap()));
        assert!(named.accepts_address("2001:db8::1".parse().unwrap()));
        assert!(!named.accepts_address("2001:db8::2".parse().unwrap()));
        assert!(!named.accepts_address("11.0.0.1".parse().unwrap()));
        assert!(!named.is_current(now), "a key expires at its instant");
        assert!(named.is_current(now - chrono::Duration::seconds(1)));
        assert!(parse_address_block("10.0.0.0/33").is_none());
        assert!(parse_address_block("example.com").is_none());
    }
}
