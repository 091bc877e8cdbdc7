//! Which addresses mailfuse may block, or name as ones to block: the one
//! place that decides.
//!
//! Mail that comes from the server itself (its webmail, a content filter
//! re-injecting over loopback, a script) carries the server's own address;
//! blocking it would cut the server off from itself, and advising to block
//! it is wrong. Private and link-local addresses are the admin's own
//! network. So loopback, unspecified, link-local, private (RFC 1918, RFC
//! 4193 `fc00::/7`), shared (carrier-grade NAT, `100.64.0.0/10`) addresses
//! and the server's own (its interfaces', or the ones the admin names) are
//! never blocked nor advised to be, IPv4-mapped IPv6 forms included —
//! unless the admin lists them as blockable. Loopback and unspecified
//! addresses never are, whatever the list says: nothing but the server's
//! own programs comes from them, and the account is what to lock.
//!
//! [`Safety::check`] is the only maker of a [`Blockable`], which is what a
//! block action takes: no block can skip the check.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::net::Cidr;

/// Why an address may be neither blocked nor named as one to block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protected {
    /// `127.0.0.0/8`, `::1`: the server talking to itself (webmail,
    /// content filter, local scripts).
    Loopback,
    /// `0.0.0.0/8`, `::`: no address at all (Kerio logs its webmail's
    /// submissions from `0.0.0.0`).
    Unspecified,
    /// `169.254.0.0/16`, `fe80::/10`: the server's own network segment.
    LinkLocal,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) and `fc00::/7`: the
    /// admin's own networks.
    Private,
    /// `100.64.0.0/10` (carrier-grade NAT): a provider's internal network,
    /// shared by many of its customers.
    Shared,
    /// One of the server's own addresses (its interfaces, or the admin's
    /// `[safety] server_addresses`).
    ThisServer,
}

impl Protected {
    /// What such an address is, in a few words for the admin.
    pub fn describe(self) -> &'static str {
        match self {
            Protected::Loopback => "this server (loopback: its webmail, content filter or scripts)",
            Protected::Unspecified => "no address (the log names no client: webmail?)",
            Protected::LinkLocal => "a link-local address (the server's own network segment)",
            Protected::Private => "a private address (your own network)",
            Protected::Shared => "a carrier-grade NAT address (100.64.0.0/10, shared by many)",
            Protected::ThisServer => "one of this server's own addresses",
        }
    }

    /// Whether the address is the server itself, or stands for it: mail from
    /// there was submitted by a program on the server (webmail), on behalf
    /// of someone elsewhere.
    pub fn is_this_server(self) -> bool {
        matches!(
            self,
            Protected::Loopback | Protected::Unspecified | Protected::ThisServer
        )
    }

    /// Whether no allow-list lifts the protection: only the server's own
    /// programs come from loopback, and no one from no address.
    fn is_absolute(self) -> bool {
        matches!(self, Protected::Loopback | Protected::Unspecified)
    }
}

impl fmt::Display for Protected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// An address the safety rules let mailfuse block: only [`Safety::check`]
/// makes one, so every block action is handed checked addresses only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Blockable(IpAddr);

impl Blockable {
    /// The address.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for Blockable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The protection of `ip` by its range alone (not knowing the server's own
/// addresses nor the admin's allow-list).
pub fn protection_of(ip: IpAddr) -> Option<Protected> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some(Protected::Loopback)
            } else if a == 0 {
                Some(Protected::Unspecified)
            } else if v4.is_link_local() {
                Some(Protected::LinkLocal)
            } else if v4.is_private() {
                Some(Protected::Private)
            } else if a == 100 && (b & 0xc0) == 64 {
                Some(Protected::Shared)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some(Protected::Loopback)
            } else if v6.is_unspecified() {
                Some(Protected::Unspecified)
            } else if first & 0xffc0 == 0xfe80 {
                Some(Protected::LinkLocal)
            } else if first & 0xfe00 == 0xfc00 {
                Some(Protected::Private)
            } else {
                None
            }
        }
    }
}

/// The rules with what they need to know of this installation: the
/// server's own addresses, and the networks the admin allows to be blocked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Safety {
    server: Vec<Cidr>,
    blockable: Vec<Cidr>,
}

impl Safety {
    /// Rules knowing the server's own addresses (`server`: its interfaces
    /// and the configured ones) and the networks the admin listed as
    /// blockable though protected.
    pub fn new(server: Vec<Cidr>, blockable: Vec<Cidr>) -> Self {
        Safety { server, blockable }
    }

    /// Why `ip` may not be blocked nor named as one to block; `None` when
    /// it may.
    pub fn protection(&self, ip: IpAddr) -> Option<Protected> {
        let ip = ip.to_canonical();
        let protected = protection_of(ip).or_else(|| {
            self.server
                .iter()
                .any(|own| own.contains(ip))
                .then_some(Protected::ThisServer)
        })?;
        let listed = self.blockable.iter().any(|network| network.contains(ip));
        (protected.is_absolute() || !listed).then_some(protected)
    }

    /// `ip` as an address a block action may take, or why not.
    pub fn check(&self, ip: IpAddr) -> Result<Blockable, Protected> {
        match self.protection(ip) {
            Some(protected) => Err(protected),
            None => Ok(Blockable(ip)),
        }
    }

    /// Whether `ip` is this server (loopback, no address, or one of its
    /// own), whatever the allow-list says: a submission from there came
    /// through a program on the server, such as its webmail.
    pub fn is_this_server(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        protection_of(ip).is_some_and(Protected::is_this_server)
            || self.server.iter().any(|own| own.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn ranges_that_are_never_attackers_to_block() {
        let cases = [
            ("127.0.0.1", Some(Protected::Loopback)),
            ("127.3.2.1", Some(Protected::Loopback)),
            ("::1", Some(Protected::Loopback)),
            ("0.0.0.0", Some(Protected::Unspecified)),
            ("::", Some(Protected::Unspecified)),
            ("169.254.10.1", Some(Protected::LinkLocal)),
            ("fe80::1", Some(Protected::LinkLocal)),
            ("10.1.2.3", Some(Protected::Private)),
            ("172.16.0.1", Some(Protected::Private)),
            ("172.31.255.255", Some(Protected::Private)),
            ("192.168.1.20", Some(Protected::Private)),
            ("fd12:3456::1", Some(Protected::Private)),
            ("fc00::1", Some(Protected::Private)),
            ("100.64.0.1", Some(Protected::Shared)),
            ("100.127.255.254", Some(Protected::Shared)),
            // IPv4-mapped forms are what they map.
            ("::ffff:127.0.0.1", Some(Protected::Loopback)),
            ("::ffff:10.0.0.5", Some(Protected::Private)),
            ("::ffff:0.0.0.0", Some(Protected::Unspecified)),
            // Public addresses, and the edges of the ranges above.
            ("198.51.100.7", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("100.63.255.255", None),
            ("2001:db8::7", None),
            ("::ffff:198.51.100.7", None),
            ("fec0::1", None),
        ];
        for (text, expected) in cases {
            assert_eq!(protection_of(ip(text)), expected, "{text}");
            assert_eq!(Safety::default().protection(ip(text)), expected, "{text}");
        }
    }

    #[test]
    fn the_servers_own_addresses_are_protected_and_are_this_server() {
        let safety = Safety::new(cidrs(&["203.0.113.25", "2001:db8:25::/64"]), Vec::new());
        for own in ["203.0.113.25", "::ffff:203.0.113.25", "2001:db8:25::9"] {
            assert_eq!(safety.protection(ip(own)), Some(Protected::ThisServer));
            assert!(safety.is_this_server(ip(own)), "{own}");
        }
        assert!(safety.is_this_server(ip("127.0.0.1")));
        assert!(safety.is_this_server(ip("0.0.0.0")));
        assert!(
            !safety.is_this_server(ip("10.0.0.5")),
            "private, not the server"
        );
        assert!(!safety.is_this_server(ip("203.0.113.26")));
        assert!(safety.check(ip("203.0.113.26")).is_ok());
    }

    #[test]
    fn the_admins_list_lifts_the_protection_but_never_of_loopback() {
        let safety = Safety::new(
            cidrs(&["203.0.113.25"]),
            cidrs(&["10.9.0.0/16", "203.0.113.25", "0.0.0.0/0", "::/0"]),
        );
        assert_eq!(
            safety.check(ip("10.9.4.4")).map(Blockable::ip),
            Ok(ip("10.9.4.4"))
        );
        assert!(
            safety.check(ip("192.168.1.1")).is_ok(),
            "0.0.0.0/0 lists it"
        );
        assert!(safety.check(ip("203.0.113.25")).is_ok());
        assert!(
            safety.is_this_server(ip("203.0.113.25")),
            "still the server"
        );
        for never in ["127.0.0.1", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1"] {
            assert!(safety.check(ip(never)).is_err(), "{never}");
        }
        let narrow = Safety::new(Vec::new(), cidrs(&["10.9.0.0/16"]));
        assert_eq!(narrow.check(ip("10.8.0.1")), Err(Protected::Private));
    }
}
