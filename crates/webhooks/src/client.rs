//! The HTTP client of deliveries, safe against a destination that points inward: addresses
//! are checked where the connection is made (the resolver's answer, and IP literals before
//! sending), so a name that resolves elsewhere at delivery time (DNS rebinding) is refused too;
//! no redirect is followed; no proxy from the environment; at most [`MAX_RESPONSE_BYTES`] of
//! an answer are read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use handoff_domain::address::AddressPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The most of an answer's body read (and then dropped).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A name whose every address the policy refuses.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{0} resolves to no address a webhook may be sent to")]
pub struct RefusedName(String);

impl RefusedName {
    /// The refusal somewhere in `error`'s chain of causes, if it is one.
    pub fn within<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a RefusedName> {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if let Some(refused) = error.downcast_ref::<RefusedName>() {
                return Some(refused);
            }
            cause = error.source();
        }
        None
    }
}

/// A resolver that answers only the addresses its policy allows.
struct CheckedResolver(AddressPolicy);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|address| policy.allows(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(RefusedName(name.as_str().to_owned()).into());
            }
            let addresses: Addrs = Box::new(found.into_iter());
            Ok(addresses)
        })
    }
}

/// A client that reaches only the addresses `policy` allows.
pub fn client(
    policy: AddressPolicy, timeout: Duration, user_agent: &str,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(CheckedResolver(policy)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(user_agent)
        .build()
}

/// Checks a URL's host when it is an IP literal (the resolver is not asked for those): the
/// address refused, or `None` when the URL names no host.
pub fn check_literal(url: &reqwest::Url, policy: AddressPolicy) -> Result<(), Option<IpAddr>> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(None),
    };
    if policy.allows(ip) { Ok(()) } else { Err(Some(ip)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_are_checked_before_sending() {
        let url = |raw: &str| reqwest::Url::parse(raw).unwrap();
        assert!(
            check_literal(&url("https://169.254.169.254/latest"), AddressPolicy::AllowPrivate)
                .is_err()
        );
        assert!(check_literal(&url("https://10.0.0.1/x"), AddressPolicy::PublicOnly).is_err());
        assert!(check_literal(&url("http://127.0.0.1:9/x"), AddressPolicy::PrivateOnly).is_ok());
        assert!(check_literal(&url("https://example.com/x"), AddressPolicy::PublicOnly).is_ok());
        assert!(check_literal(&url("https://[::127.0.0.1]/x"), AddressPolicy::PublicOnly).is_err());
    }

    /// A name that resolves only to refused addresses fails with [`RefusedName`], told apart
    /// from a connection that failed (which is retried).
    #[tokio::test]
    async fn a_name_resolving_inward_is_refused_by_name() {
        let public_only = client(AddressPolicy::PublicOnly, Duration::from_secs(5), "test")
            .unwrap()
            .post("https://localhost:1/hook")
            .send()
            .await
            .unwrap_err();
        let refused = RefusedName::within(&public_only).map(ToString::to_string);
        assert_eq!(
            refused.as_deref(),
            Some("localhost resolves to no address a webhook may be sent to")
        );
        let private_only = client(AddressPolicy::PrivateOnly, Duration::from_secs(5), "test")
            .unwrap()
            .post("http://localhost:1/hook")
            .send()
            .await
            .unwrap_err();
        assert!(RefusedName::within(&private_only).is_none(), "{private_only:?}");
    }
}
