//! Canary recipients (`[canary] recipients`): trap addresses the admin
//! plants where only a harvester finds them (address books, hidden on web
//! pages). No person writes to them, so an authenticated message to one
//! is proof that someone else holds the account: no score, no threshold.
//!
//! Addresses are whole (`local@domain`) and compared case-insensitively
//! (ASCII). A bare local part is refused: `info` would match
//! `info@customer.example` as well, a real address someone may well
//! write to, and the promise of no false positives would be gone.

use serde::Deserialize;

/// The configured canary addresses, lower-cased; matched against
/// recipients as the log or Postfix gives them (bytes, any case, with or
/// without angle brackets).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct Canaries {
    /// A handful at most: a scan is faster than hashing.
    addresses: Vec<Box<str>>,
}

/// A canary address that cannot be matched safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("canary recipient {address:?} {problem}")]
pub struct CanaryError {
    /// The address as configured.
    pub address: String,
    /// What is wrong with it, and what to write instead.
    pub problem: &'static str,
}

impl Canaries {
    /// The canaries `addresses`, each checked to be one whole address.
    pub fn new<S: AsRef<str>>(addresses: &[S]) -> Result<Canaries, CanaryError> {
        let mut canaries = Canaries::default();
        for address in addresses {
            let address = address.as_ref();
            let lowered = address.trim().to_ascii_lowercase();
            let problem = check(&lowered);
            if let Some(problem) = problem {
                return Err(CanaryError {
                    address: address.to_string(),
                    problem,
                });
            }
            if !canaries.addresses.iter().any(|known| **known == *lowered) {
                canaries.addresses.push(lowered.into());
            }
        }
        Ok(canaries)
    }

    /// Whether there is none: nothing to match.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The canary `recipient` is (in any case, `<…>` or not), if it is one.
    pub fn matching(&self, recipient: &[u8]) -> Option<&str> {
        if self.addresses.is_empty() {
            return None;
        }
        let bare = match recipient {
            [b'<', inner @ .., b'>'] => inner,
            whole => whole,
        };
        self.addresses
            .iter()
            .find(|canary| canary.as_bytes().eq_ignore_ascii_case(bare))
            .map(|canary| &**canary)
    }
}

impl TryFrom<Vec<String>> for Canaries {
    type Error = CanaryError;

    fn try_from(addresses: Vec<String>) -> Result<Self, Self::Error> {
        Canaries::new(&addresses)
    }
}

/// What makes `address` (trimmed, lower-cased) unusable as a canary.
fn check(address: &str) -> Option<&'static str> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Some(
            "is not a whole address: write local@domain (a bare local part would match it in every domain)",
        );
    };
    if local.is_empty() || domain.is_empty() {
        return Some("is not a whole address: write local@domain");
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Some("holds spaces, brackets or separators: write the bare address, one per item");
    }
    if local.contains('@') {
        return Some("holds more than one @: write one address, local@example.com");
    }
    if !domain.contains('.') && domain != "localhost" {
        return Some("has no usable domain: write local@example.com");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_whole_addresses_in_any_case_with_or_without_brackets() {
        let canaries = Canaries::new(&["Trap.Sales@Example.com", "x@other.org"]).unwrap();
        assert_eq!(
            canaries.matching(b"trap.sales@example.COM"),
            Some("trap.sales@example.com")
        );
        assert_eq!(canaries.matching(b"<X@Other.org>"), Some("x@other.org"));
        assert_eq!(canaries.matching(b"trap.sales@example.com.evil"), None);
        assert_eq!(canaries.matching(b"trap.sales"), None);
        assert_eq!(canaries.matching(b"sales@example.com"), None);
        assert_eq!(canaries.matching(b""), None);
        assert!(Canaries::default().matching(b"x@other.org").is_none());
    }

    #[test]
    fn refuses_what_could_match_a_real_address() {
        for bad in [
            "info",
            "@example.com",
            "info@",
            "a b@example.com",
            "<a@example.com>",
            "a@b@c.com",
            "a@example",
        ] {
            let error = Canaries::new(&[bad]).unwrap_err();
            assert_eq!(error.address, bad, "{bad}");
        }
        assert!(Canaries::new(&["trap@localhost"]).is_ok());
    }

    #[test]
    fn duplicates_in_another_case_are_one() {
        let canaries = Canaries::new(&["a@example.com", "A@EXAMPLE.com"]).unwrap();
        assert_eq!(canaries.addresses.len(), 1);
    }

    #[test]
    fn reads_from_a_list() {
        let canaries: Canaries = serde_json::from_str(r#"["t@example.com"]"#).unwrap();
        assert!(canaries.matching(b"T@example.com").is_some());
        let error = serde_json::from_str::<Canaries>(r#"["t"]"#).unwrap_err();
        assert!(error.to_string().contains("local@domain"), "{error}");
    }
}
