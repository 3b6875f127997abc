//! One page of a list, as every list takes it (`limit`, `offset`) and links its neighbours
//! (`next`, `previous`).

use actix_web::{HttpRequest, HttpResponse};
use handoff_domain::ValidationErrors;
use handoff_domain::session::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use serde::Serialize;

use crate::{AppState, wire};

/// A page: its size and how many rows it skips.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageRequest {
    pub limit: u64,
    pub offset: u64,
}

impl PageRequest {
    /// `limit` (1 to 200, default 50) and `offset` (default 0) as given; refusals go to
    /// `errors`, naming the parameter.
    pub(crate) fn parse(
        limit: Option<&str>, offset: Option<&str>, errors: &mut ValidationErrors,
    ) -> PageRequest {
        let limit = match limit.map(str::parse::<u64>) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Some(_) => {
                errors.add("limit", "must be an integer from 1 to 200.");
                DEFAULT_PAGE_SIZE
            }
        };
        let offset = match offset.map(str::parse::<u64>) {
            None => 0,
            Some(Ok(n)) if n <= i64::MAX as u64 => n,
            Some(_) => {
                errors.add("offset", "must be a non-negative integer.");
                0
            }
        };
        PageRequest { limit, offset }
    }

    /// The answer: this page of a list of `count` rows, holding `results`, with links to its
    /// neighbours.
    pub(crate) fn respond<T: Serialize>(
        self, req: &HttpRequest, state: &AppState, count: u64, results: Vec<T>,
    ) -> HttpResponse {
        let (next, previous) = self.links(req, state.public_url.as_deref(), count);
        HttpResponse::Ok().json(wire::Page { count, next, previous, results })
    }

    /// The `next` and `previous` pages of a list of `count` rows, as links to the same query.
    fn links(
        self, req: &HttpRequest, base: Option<&str>, count: u64,
    ) -> (Option<String>, Option<String>) {
        let link = |offset: u64| link(req, base, self.limit, offset);
        (
            (self.offset.saturating_add(self.limit) < count)
                .then(|| link(self.offset + self.limit)),
            (self.offset > 0).then(|| link(self.offset.saturating_sub(self.limit))),
        )
    }
}

/// The URL of another page: the same query with `limit` and `offset` replaced, from the
/// deployment's public URL when it has one, else relative. Never from the request's `Host` or
/// forwarding headers, which the client controls.
fn link(req: &HttpRequest, base: Option<&str>, limit: u64, offset: u64) -> String {
    let mut query: Vec<String> = req
        .query_string()
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && name != "limit" && name != "offset"
        })
        .map(str::to_owned)
        .collect();
    query.push(format!("limit={limit}"));
    query.push(format!("offset={offset}"));
    format!("{}{}?{}", base.unwrap_or_default().trim_end_matches('/'), req.path(), query.join("&"))
}

/// The members of a comma-separated filter such as `status=Approved,Declined`, each parsed by
/// `parse`; a member it refuses goes to `errors` under `field` as "\"X\" is not `what`.".
pub(crate) fn comma_separated<T>(
    raw: Option<&str>, field: &'static str, what: &str, parse: impl Fn(&str) -> Option<T>,
    errors: &mut ValidationErrors,
) -> Vec<T> {
    let mut members = Vec::new();
    for part in raw.unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match parse(part) {
            Some(member) => members.push(member),
            None => errors.add(field, format!("\"{part}\" is not {what}.")),
        }
    }
    members
}
