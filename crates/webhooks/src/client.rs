//! The HTTP client of deliveries, safe against a destination that points inward: addresses
//! are checked where the connection is made (the resolver's answer, and IP literals before
//! sending), so a name that resolves elsewhere at delivery time (DNS rebinding) is refused too;
//! no redirect is followed; no proxy from the environment; at most [`MAX_RESPONSE_BYTES`] of
//! an answer are read.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The most of an answer's body read (and then dropped).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Which addresses a destination may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressPolicy {
    /// Public addresses only (`https`).
    PublicOnly,
    /// Loopback and private addresses too (`HANDOFF_WEBHOOK_ALLOW_PRIVATE`).
    AllowPrivate,
    /// Loopback and private addresses only (`http` destinations, when allowed).
    PrivateOnly,
}

/// Whether an address is loopback, private, or otherwise not on the public internet.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64) // 100.64/10
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 // fc00::/7
        }
    }
}

/// Addresses never reached: unspecified, broadcast, multicast, link-local (cloud metadata
/// services live there: 169.254.169.254), documentation and reserved ranges.
fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_link_local()
                || v4.is_documentation()
                || v4.octets()[0] == 0
                || v4.octets()[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden(IpAddr::V4(v4));
            }
            v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // fe80::/10
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

impl AddressPolicy {
    /// Whether a destination may be reached at `ip`.
    pub fn allows(self, ip: IpAddr) -> bool {
        if is_forbidden(ip) {
            return false;
        }
        match self {
            AddressPolicy::PublicOnly => !is_private(ip),
            AddressPolicy::AllowPrivate => true,
            AddressPolicy::PrivateOnly => is_private(ip),
        }
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
                return Err(format!(
                    "{} resolves to no address a webhook may be sent to",
                    name.as_str()
                )
                .into());
            }
            let addresses: Addrs = Box::new(found.into_iter());
            Ok(addresses)
        })
    }
}

/// A client that reaches only the addresses `policy` allows.
pub fn client(
    policy: AddressPolicy,
    timeout: Duration,
    user_agent: &str,
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

/// Checks a URL's host when it is an IP literal (the resolver is not asked for those).
pub fn check_literal(url: &reqwest::Url, policy: AddressPolicy) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err("the url names no host".into()),
    };
    if policy.allows(ip) {
        Ok(())
    } else {
        Err(format!("{ip} is not an address a webhook may be sent to"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn inward_addresses_are_refused_unless_allowed() {
        for inward in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!AddressPolicy::PublicOnly.allows(ip(inward)), "{inward}");
            assert!(AddressPolicy::AllowPrivate.allows(ip(inward)), "{inward}");
            assert!(AddressPolicy::PrivateOnly.allows(ip(inward)), "{inward}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(AddressPolicy::PublicOnly.allows(ip(public)), "{public}");
            assert!(!AddressPolicy::PrivateOnly.allows(ip(public)), "{public}");
        }
        for never in [
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "fe80::1",
            "fd00:ec2::254",
            "::",
            "::ffff:169.254.169.254",
        ] {
            for policy in [
                AddressPolicy::PublicOnly,
                AddressPolicy::AllowPrivate,
                AddressPolicy::PrivateOnly,
            ] {
                assert!(!policy.allows(ip(never)), "{never} under {policy:?}");
            }
        }
    }

    #[test]
    fn ip_literals_are_checked_before_sending() {
        let url = |raw: &str| reqwest::Url::parse(raw).unwrap();
        assert!(
            check_literal(
                &url("https://169.254.169.254/latest"),
                AddressPolicy::AllowPrivate
            )
            .is_err()
        );
        assert!(check_literal(&url("https://10.0.0.1/x"), AddressPolicy::PublicOnly).is_err());
        assert!(check_literal(&url("http://127.0.0.1:9/x"), AddressPolicy::PrivateOnly).is_ok());
        assert!(check_literal(&url("https://example.com/x"), AddressPolicy::PublicOnly).is_ok());
    }
}
