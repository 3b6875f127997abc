//! What an authenticated key may reach: the client address it is accepted from, the scope each
//! route needs (the route's resource, read or write), and the sessions of its workflows.

use actix_web::http::Method;
use handoff_domain::services::{Error, SessionService};
use handoff_domain::{Access, Caller, Resource, Scope, SessionId};

use crate::auth::budget;
use crate::rate_limit::Budget;

/// What a request asks of its key: a scope, and the session it is about.
pub(crate) struct Reach {
    /// The scope the route needs, if any.
    pub scope: Option<Scope>,
    /// The session the path names, if any.
    pub session: Option<SessionId>,
}

impl Reach {
    /// What an API request asks: the scope of its route, the session in its path.
    pub(crate) fn of_api(method: &Method, path: &str) -> Self {
        Reach { scope: needed_scope(method, path), session: session_in_path(path) }
    }
}

/// Refuses what `caller`'s key may not do: [`Error::AddressNotAllowed`] from an address outside
/// its list, [`Error::ScopeMissing`] for a scope it lacks, [`Error::SessionNotFound`] for a
/// session outside its workflows. In that order.
pub(crate) async fn authorize(
    caller: &Caller, peer: Option<std::net::IpAddr>, reach: Reach, sessions: &SessionService,
) -> Result<(), Error> {
    let grant = &caller.grant;
    if !grant.addresses.is_empty() && !peer.is_some_and(|ip| grant.accepts_address(ip)) {
        return Err(Error::AddressNotAllowed);
    }
    if let Some(needed) = reach.scope
        && !grant.allows(needed)
    {
        return Err(Error::ScopeMissing(needed));
    }
    if let Some(id) = reach.session {
        sessions.visible(caller, id).await?;
    }
    Ok(())
}

/// The scope a request needs: its route's resource, with read for what changes nothing (see
/// [`budget`]) and write for the rest. `None` for a path of no resource (it answers 404).
pub(crate) fn needed_scope(method: &Method, path: &str) -> Option<Scope> {
    let access = match budget(method, path) {
        Budget::Read => Access::Read,
        _ => Access::Write,
    };
    Some(Scope { resource: resource(path)?, access })
}

/// The resource of an API path.
fn resource(path: &str) -> Option<Resource> {
    let rest = path.strip_prefix("/v3/").or_else(|| path.strip_prefix("/v2/"))?;
    let segments: Vec<&str> = rest.split('/').collect();
    Some(match segments.as_slice() {
        ["workflows", ..] => Resource::Workflows,
        ["users", ..] => Resource::Users,
        ["businesses", ..] => Resource::Businesses,
        ["webhook", ..] => Resource::Webhooks,
        ["lists" | "blocklist", ..] => Resource::Lists,
        ["session", "import-shared", ..] | ["session", _, "share" | "shares", ..] => {
            Resource::Shares
        }
        ["session", _, "update-status", ..] | ["sessions", _, "reviews", ..] => Resource::Reviews,
        ["session" | "sessions", ..] => Resource::Sessions,
        _ => return None,
    })
}

/// The session an API path names: `/v3/session/{id}/…`, `/v2/session/{id}/…` and
/// `/v3/sessions/{id}/reviews/`.
fn session_in_path(path: &str) -> Option<SessionId> {
    let rest = path.strip_prefix("/v3/").or_else(|| path.strip_prefix("/v2/"))?;
    let segments: Vec<&str> = rest.split('/').collect();
    let id = match segments.as_slice() {
        ["session", id, _, ..] | ["sessions", id, "reviews", ..] => id,
        _ => return None,
    };
    session_id(id)
}

/// A path segment that is a session id.
pub(crate) fn session_id(segment: &str) -> Option<SessionId> {
    segment.parse::<uuid::Uuid>().ok().map(SessionId::from_uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_needs_the_scope_of_its_resource() {
        let id = "2f1c7e0a-0000-4000-8000-000000000001";
        let cases = [
            (Method::POST, "/v3/workflows/".to_owned(), "workflows:write"),
            (Method::GET, format!("/v3/workflows/{id}/"), "workflows:read"),
            (Method::POST, "/v3/session/".to_owned(), "sessions:write"),
            (Method::GET, format!("/v3/session/{id}/decision/"), "sessions:read"),
            (Method::PUT, format!("/v3/session/{id}/decision/"), "sessions:write"),
            (Method::GET, format!("/v2/session/{id}/decision/"), "sessions:read"),
            (Method::GET, format!("/v3/session/{id}/generate-pdf/"), "sessions:read"),
            (Method::PATCH, format!("/v3/session/{id}/update-data/"), "sessions:write"),
            (Method::DELETE, format!("/v3/session/{id}/delete/"), "sessions:write"),
            (Method::GET, "/v3/sessions/".to_owned(), "sessions:read"),
            (Method::POST, "/v3/sessions/delete/".to_owned(), "sessions:write"),
            (Method::PATCH, format!("/v3/session/{id}/update-status/"), "reviews:write"),
            (Method::GET, format!("/v3/sessions/{id}/reviews/"), "reviews:read"),
            (Method::POST, format!("/v3/sessions/{id}/reviews/"), "reviews:write"),
            (Method::POST, format!("/v3/session/{id}/share/"), "shares:write"),
            (Method::GET, format!("/v3/session/{id}/shares/"), "shares:read"),
            (Method::POST, format!("/v3/session/{id}/shares/j/revoke/"), "shares:write"),
            (Method::POST, "/v3/session/import-shared/".to_owned(), "shares:write"),
            (Method::POST, "/v3/session/import-shared/preview/".to_owned(), "shares:read"),
            (Method::GET, "/v3/webhook/destinations/".to_owned(), "webhooks:read"),
            (
                Method::POST,
                "/v3/webhook/destinations/d/rotate-secret/".to_owned(),
                "webhooks:write",
            ),
            (Method::GET, "/v3/users/u-1/".to_owned(), "users:read"),
            (Method::PATCH, "/v3/users/u-1/update-status/".to_owned(), "users:write"),
            (Method::POST, "/v3/businesses/create/".to_owned(), "businesses:write"),
            (Method::GET, format!("/v3/lists/{id}/entries/"), "lists:read"),
            (Method::POST, "/v3/blocklist/add/".to_owned(), "lists:write"),
        ];
        for (method, path, scope) in cases {
            let needed = needed_scope(&method, &path).map(|s| s.to_string());
            assert_eq!(needed.as_deref(), Some(scope), "{method} {path}");
        }
        assert_eq!(needed_scope(&Method::GET, "/health/"), None);
        assert_eq!(needed_scope(&Method::GET, "/v3/nothing/"), None);
    }

    #[test]
    fn the_session_a_path_names() {
        let id = "2f1c7e0a-0000-4000-8000-000000000001";
        let session = Some(SessionId::from_uuid(id.parse().unwrap()));
        for path in [
            format!("/v3/session/{id}/decision/"),
            format!("/v2/session/{id}/decision/"),
            format!("/v3/session/{id}/shares/j/revoke/"),
            format!("/v3/sessions/{id}/reviews/"),
        ] {
            assert_eq!(session_in_path(&path), session, "{path}");
        }
        for path in [
            "/v3/session/".to_owned(),
            "/v3/session/import-shared/".to_owned(),
            "/v3/sessions/".to_owned(),
            "/v3/session/not-a-uuid/decision/".to_owned(),
            format!("/v3/workflows/{id}/"),
        ] {
            assert_eq!(session_in_path(&path), None, "{path}");
        }
    }
}
