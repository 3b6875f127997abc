//! One page of a list, as every list takes it (`limit`, `offset`) and links its neighbours
//! (`next`, `previous`).

use actix_web::HttpRequest;
use handoff_domain::ValidationErrors;
use handoff_domain::session::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// A page: its size and how many rows it skips.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Page {
    pub limit: u64,
    pub offset: u64,
}

impl Page {
    /// `limit` (1 to 200, default 50) and `offset` (default 0) as given; refusals go to
    /// `errors`, naming the parameter.
    pub(crate) fn parse(
        limit: Option<&str>,
        offset: Option<&str>,
        errors: &mut ValidationErrors,
    ) -> Page {
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
        Page { limit, offset }
    }

    /// The `next` and `previous` pages of a list of `count` rows, as links to the same query.
    pub(crate) fn links(
        self,
        req: &HttpRequest,
        base: Option<&str>,
        count: u64,
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
    format!(
        "{}{}?{}",
        base.unwrap_or_default().trim_end_matches('/'),
        req.path(),
        query.join("&")
    )
}
