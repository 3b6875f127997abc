//! Which network addresses a server-to-server call (a webhook) may reach: public ones, or
//! with the operator's leave private ones, never link-local, multicast or reserved ones. An
//! IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by the
//! IPv4 address it carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

impl AddressPolicy {
    /// Whether a destination may be reached at `ip`.
    pub fn allows(self, ip: IpAddr) -> bool {
        let ip = unwrapped(ip);
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

/// The IPv4 address an IPv6 address carries, if it carries one: IPv4-mapped (`::ffff:0:0/96`),
/// IPv4-compatible (`::/96`, but `::` and `::1`), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002::/16`, the address in bits 16 to 48).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let last = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(last(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(last(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(last(s[1], s[2]));
    }
    None
}

/// `ip`, or the IPv4 address it carries.
fn unwrapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address is loopback, private, or otherwise not on the public internet.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || (a == 100 && (b & 0xc0) == 64) // 100.64/10, shared address space
                || (a == 198 && (b & 0xfe) == 18) // 198.18/15, benchmarking
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
                || (s[0] & 0xffc0) == 0xfec0 // fec0::/10, site-local
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // 64:ff9b:1::/48, local NAT64
        }
    }
}

/// Addresses never reached: unspecified, broadcast, multicast, link-local (cloud metadata
/// services live there: 169.254.169.254), documentation, Teredo and reserved ranges.
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
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80 // fe80::/10, link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] == 0) // Teredo: the address it tunnels is hidden
                || s[..4] == [0x100, 0, 0, 0] // 100::/64, discard-only
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
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
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "64:ff9b:1::1",
        ] {
            assert!(!AddressPolicy::PublicOnly.allows(ip(inward)), "{inward}");
            assert!(AddressPolicy::AllowPrivate.allows(ip(inward)), "{inward}");
            assert!(AddressPolicy::PrivateOnly.allows(ip(inward)), "{inward}");
        }
        for public in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "::ffff:93.184.216.34",
        ] {
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
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "100::1",
        ] {
            for policy in
                [AddressPolicy::PublicOnly, AddressPolicy::AllowPrivate, AddressPolicy::PrivateOnly]
            {
                assert!(!policy.allows(ip(never)), "{never} under {policy:?}");
            }
        }
    }
}
