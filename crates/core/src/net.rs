//! IP address helpers: parsing from log bytes and grouping into networks.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses an IP address from log bytes; `[…]` brackets are accepted and
/// stripped. Returns `None` for anything else (host names, garbage).
pub fn parse_ip(bytes: &[u8]) -> Option<IpAddr> {
    let bytes = bytes
        .strip_prefix(b"[")
        .and_then(|b| b.strip_suffix(b"]"))
        .unwrap_or(bytes);
    if bytes.len() > 45 || bytes.is_empty() {
        return None;
    }
    if let Some(v4) = dotted_quad(bytes) {
        return Some(IpAddr::V4(v4));
    }
    // Whatever else is an address is IPv6, which has a colon.
    if !bytes.contains(&b':') {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// `bytes` as a dotted-quad IPv4 address, read without UTF-8 checks or
/// a general parser (logs name one or two per line); `None` for anything
/// else, which the standard parser then judges. Accepts what it accepts:
/// four decimal octets up to 255, no leading zeros.
fn dotted_quad(bytes: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut rest = bytes;
    for (index, octet) in octets.iter_mut().enumerate() {
        if index > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let (value, after) = leading_octet(rest)?;
        *octet = value;
        rest = after;
    }
    rest.is_empty().then_some(Ipv4Addr::from(octets))
}

/// The octet `bytes` starts with (up to three digits, no leading zero) and
/// the bytes after it. A slice pattern per octet: a third of the
/// instructions of splitting at dots and looping over digits.
fn leading_octet(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let digit = |byte: u8| u16::from(byte - b'0');
    let (value, rest) = match bytes {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', rest @ ..] => {
            (digit(*a) * 100 + digit(*b) * 10 + digit(*c), rest)
        }
        [a @ b'1'..=b'9', b @ b'0'..=b'9', rest @ ..] => (digit(*a) * 10 + digit(*b), rest),
        [a @ b'0'..=b'9', rest @ ..] => (digit(*a), rest),
        _ => return None,
    };
    Some((u8::try_from(value).ok()?, rest))
}

/// The network an address belongs to for grouping slow distributed attacks:
/// the /24 of an IPv4 address, the /64 of an IPv6 address (one customer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// The grouping network of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Network {
                base: IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)),
                prefix: 24,
            },
            IpAddr::V6(v6) => Network {
                base: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
                prefix: 64,
            },
        }
    }

    /// Whether `ip` falls inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        Network::of(ip) == *self
    }
}

/// CIDR notation, e.g. `203.0.113.0/24`.
impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl serde::Serialize for Network {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads the form [`Display`](fmt::Display) writes; the network must be the
/// grouping one of its address (`/24` for IPv4, `/64` for IPv6).
impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("not a /24 (IPv4) or /64 (IPv6) network: {text:?}");
        let (base, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let base: IpAddr = base.parse().map_err(|_| invalid())?;
        let network = Network::of(base);
        (network.base == base && prefix.parse::<u8>() == Ok(network.prefix))
            .then_some(network)
            .ok_or_else(invalid)
    }
}

impl<'de> serde::Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A network of any prefix, as an admin writes it in an allow-list
/// (`198.51.100.0/24`, `2001:db8::/48`, or a single address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    base: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The single address `ip` (`/32`, `/128`).
impl From<IpAddr> for Cidr {
    fn from(ip: IpAddr) -> Self {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        Cidr { base: ip, prefix }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || format!("not an address or network like 198.51.100.0/24: {text:?}");
        let (base, prefix) = text.split_once('/').unwrap_or((text, ""));
        let base: IpAddr = base.trim().parse().map_err(|_| invalid())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix.trim() {
            "" => max,
            digits => digits
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(invalid)?,
        };
        Ok(Cidr { base, prefix })
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `ip` is on a network the mail server's own users usually sit on
/// (private ranges, loopback, link-local): such a source is less telling.
pub fn is_internal(ip: IpAddr) -> bool {
    use crate::safety::{protection_of, Protected};
    matches!(
        protection_of(ip),
        Some(Protected::Private | Protected::Loopback | Protected::LinkLocal)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quads_are_read_as_the_standard_parser_reads_them() {
        let cases = [
            "1.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "1.2.3.4 ",
            "+1.2.3.4",
            "1.2.3.-4",
            "127.0.0.1",
            "10.0.0.00",
            "192.168.1.1000",
            "",
            ".",
            "1.2.3.",
            "::1",
            "::ffff:1.2.3.4",
            "1.2.3.4:25",
        ];
        for case in cases {
            assert_eq!(
                parse_ip(case.as_bytes()),
                case.parse::<IpAddr>().ok(),
                "{case:?}"
            );
        }
        // Every string of up to 7 bytes over digits and dots.
        let mut last: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..7 {
            last = last
                .iter()
                .flat_map(|text| {
                    b"0125689.".iter().map(move |&b| {
                        let mut longer = text.clone();
                        longer.push(b);
                        longer
                    })
                })
                .collect();
            for text in &last {
                let expected = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok());
                assert_eq!(
                    parse_ip(text),
                    expected,
                    "{}",
                    String::from_utf8_lossy(text)
                );
            }
        }
        // Every value of a byte in every position.
        for n in 0..=999u32 {
            let text = format!("10.{n}.7.1");
            assert_eq!(
                parse_ip(text.as_bytes()),
                text.parse::<IpAddr>().ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn cidrs_contain_what_they_should() {
        let cidr: Cidr = "198.51.100.0/24".parse().unwrap();
        assert!(cidr.contains("198.51.100.77".parse().unwrap()));
        assert!(!cidr.contains("198.51.101.1".parse().unwrap()));
        assert!(!cidr.contains("::1".parse().unwrap()));
        let one: Cidr = "2001:db8::7".parse().unwrap();
        assert!(one.contains("2001:db8::7".parse().unwrap()));
        assert!(!one.contains("2001:db8::8".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        for bad in ["198.51.100.0/33", "x", "1.2.3.4/-1", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn networks_parse_what_they_display() {
        for ip in ["203.0.113.7", "2001:db8:1:2:3:4:5:6"] {
            let network = Network::of(ip.parse().unwrap());
            assert_eq!(network.to_string().parse::<Network>(), Ok(network));
        }
        for bad in ["203.0.113.7/24", "203.0.113.0/16", "203.0.113.0", "x/24"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_plain_and_bracketed_addresses() {
        assert_eq!(
            parse_ip(b"173.16.65.213"),
            Some("173.16.65.213".parse().unwrap())
        );
        assert_eq!(
            parse_ip(b"[2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_ip(b"suspiciousdomain1.com"), None);
        assert_eq!(parse_ip(b""), None);
        assert_eq!(parse_ip(b"\xff\xfe"), None);
    }

    #[test]
    fn groups_by_slash_24_and_slash_64() {
        let a = Network::of("203.0.113.7".parse().unwrap());
        assert_eq!(a.to_string(), "203.0.113.0/24");
        assert!(a.contains("203.0.113.250".parse().unwrap()));
        assert!(!a.contains("203.0.114.1".parse().unwrap()));
        let b = Network::of("2001:db8:1:2:3:4:5:6".parse().unwrap());
        assert_eq!(b.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn internal_ranges() {
        assert!(is_internal("10.10.10.1".parse().unwrap()));
        assert!(is_internal("fd00::1".parse().unwrap()));
        assert!(!is_internal("173.16.65.213".parse().unwrap()));
    }
}
