//! Which domains belong to this mail server, and why each was taken as one.
//!
//! A "foreign envelope From" (30 points toward a hijack) and an "external
//! recipient" only mean something against the server's own domains. Given
//! `--local-domain` / `local_domains`, only those are local. Otherwise they
//! are inferred, as an admin would, from what the log shows the server
//! itself doing with a domain:
//!
//! - the domain of logins that have one (`jdent@seaglass.com`);
//! - for a login without a domain (`sasl_username=jdent`), the domain of
//!   its envelope From when the local part is the login (`jdent@…`), sent
//!   from an IP that is not suspect (see `compromise.rs`): a hijacker's forged
//!   From's have other local parts, or come from a new or guessing IP;
//! - the domain Postfix qualifies a bare sender with (`pickup`
//!   `from=<root>` → `qmgr` `from=<root@host.example>`: myorigin);
//! - the domains of recipients delivered into a mailbox here (Postfix
//!   `relay=local`/`virtual`/`dovecot`/`…lmtp…`, Exim local transports such
//!   as `T=local_delivery` or `dovecot_lmtp`, Kerio deliveries to
//!   `Remote-Host: 127.0.0.1`). Spam never lands in a local mailbox of a
//!   foreign domain, so a hijacker cannot make one local this way.
//!
//! Bounded: at most [`MAX_INFERRED`] domains are inferred (further ones are
//! ignored and counted), and at most [`MAX_PENDING_PICKUPS`] `pickup` senders
//! wait for their `qmgr` line.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::incident::lossy;

/// Most domains inferred as local; a server with more should configure them.
pub const MAX_INFERRED: usize = 256;
/// Most `pickup` messages waiting for the `qmgr` line that shows their
/// rewritten sender (it follows within a second; the oldest is dropped).
pub const MAX_PENDING_PICKUPS: usize = 64;

/// Why a domain was taken as local (bits of [`LocalDomains`]' map).
mod reason {
    pub const CONFIGURED: u8 = 1;
    pub const LOGIN: u8 = 2;
    pub const LOGIN_FROM: u8 = 4;
    pub const REWRITE: u8 = 8;
    pub const DELIVERED: u8 = 16;

    /// Each reason in words, in the order the report lists them.
    pub const WORDS: [(u8, &str); 5] = [
        (CONFIGURED, "configured"),
        (DELIVERED, "delivered locally"),
        (LOGIN, "the domain of logins"),
        (LOGIN_FROM, "the From of logins without a domain"),
        (REWRITE, "the server's own address rewriting"),
    ];
}

/// One local domain in the report, with why it was taken as local.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalDomain {
    /// Lower-case domain name.
    pub domain: String,
    /// Why: `configured`, `delivered locally`, `the domain of logins`, `the
    /// From of logins without a domain`, `the server's own address rewriting`.
    pub reasons: Vec<&'static str>,
}

/// A `pickup` message's queue id and the bare sender it gave.
type Pickup = (Box<[u8]>, Box<[u8]>);

/// Which domains are local, and why.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct LocalDomains {
    configured: bool,
    /// Lower-case domain name → reason bits.
    domains: FxHashMap<Box<[u8]>, u8>,
    /// Inferred domains not kept because [`MAX_INFERRED`] were already.
    #[serde(default)]
    dropped: u64,
    /// `pickup` messages' queue ids with the bare sender they gave.
    #[serde(default)]
    pickups: VecDeque<Pickup>,
    /// Relays [`is_local_relay`] had to split into words, with its answer:
    /// a server's deliveries name a few relays over and over, and the split
    /// costs hundreds of instructions a delivery. Derived, not saved; at
    /// most [`MAX_RELAYS_JUDGED`] of at most [`MAX_RELAY_JUDGED_LEN`] bytes.
    #[serde(skip)]
    relays_judged: FxHashMap<Box<[u8]>, bool>,
    /// The domain of the last delivery that found it local, as written: a
    /// server delivers to its own few domains over and over, and a repeat
    /// (or a [`LocalDomains::contains`] of it) is answered by comparing
    /// bytes instead of hashing them. Domains are never forgotten, so the
    /// answer holds. Derived, not saved.
    #[serde(skip)]
    last_delivered: SmallVec<[u8; 32]>,
}

/// Most relays whose judgement is remembered (past it, they are forgotten
/// together and learnt again).
const MAX_RELAYS_JUDGED: usize = 256;
/// Longest relay whose judgement is remembered.
const MAX_RELAY_JUDGED_LEN: usize = 128;

impl LocalDomains {
    /// The configured `domains`; none means they are inferred.
    pub(crate) fn configured(domains: &[String]) -> Self {
        LocalDomains {
            configured: !domains.is_empty(),
            domains: domains
                .iter()
                .map(|d| {
                    let d = d.to_ascii_lowercase().into_bytes().into_boxed_slice();
                    (d, reason::CONFIGURED)
                })
                .collect(),
            ..LocalDomains::default()
        }
    }

    /// Whether `domain` (in any case) is local. Domains nearly always come
    /// lower-case: looked up as they are first (every key is lower-case, so
    /// a hit is the entry the lowered domain finds); only a miss with an
    /// upper-case letter is lowered and looked up again.
    pub(crate) fn contains(&self, domain: &[u8]) -> bool {
        // The last delivered domain (local, as written) is most accounts'
        // own: a From or a recipient of it is answered without hashing.
        self.is_last_delivered(domain)
            || self.domains.contains_key(domain)
            || (domain.iter().any(u8::is_ascii_uppercase)
                && self.domains.contains_key(&*domain.to_ascii_lowercase()))
    }

    /// Takes `domain` (any case) as local for `why`, unless domains are
    /// configured or the cap is reached. Returns the domain, lower-case, if
    /// it was not local before (messages counted foreign for it are then
    /// taken back).
    fn infer(&mut self, domain: &[u8], why: u8) -> Option<Box<[u8]>> {
        if self.configured || domain.is_empty() {
            return None;
        }
        // Most deliveries name a domain already known, in lower case: looked
        // up as it is first (every key is lower-case, so a hit is the entry
        // the lowered domain finds); else a short one is lower-cased on the
        // stack and looked up without allocating.
        if let Some(bits) = self.domains.get_mut(domain) {
            *bits |= why;
            return None;
        }
        let mut lower = [0u8; 64];
        if let Some(short) = lower.get_mut(..domain.len()) {
            short.copy_from_slice(domain);
            short.make_ascii_lowercase();
            if let Some(bits) = self.domains.get_mut(&*short) {
                *bits |= why;
                return None;
            }
        }
        let lower: Box<[u8]> = domain.to_ascii_lowercase().into();
        if let Some(bits) = self.domains.get_mut(&lower) {
            *bits |= why;
            None
        } else if self.domains.len() < MAX_INFERRED {
            self.domains.insert(lower.clone(), why);
            Some(lower)
        } else {
            self.dropped += 1;
            None
        }
    }

    /// The domain of an authenticated login (`jdent@seaglass.com`).
    pub(crate) fn note_login_domain(&mut self, domain: &[u8]) -> Option<Box<[u8]>> {
        self.infer(domain, reason::LOGIN)
    }

    /// The domain of the From a login without a domain sends as.
    pub(crate) fn note_login_from(&mut self, domain: &[u8]) -> Option<Box<[u8]>> {
        self.infer(domain, reason::LOGIN_FROM)
    }

    /// A submission line: a `pickup` sender without a domain waits for the
    /// `qmgr` line of the same queue id, whose sender's domain (the local
    /// part unchanged) is the one the server qualifies bare names with.
    pub(crate) fn on_submission(
        &mut self,
        queue_id: &[u8],
        bare_sender: Option<&[u8]>,
        envelope_from: Option<&[u8]>,
    ) -> Option<Box<[u8]>> {
        if self.configured {
            return None;
        }
        if let Some(bare) = bare_sender.filter(|s| !s.is_empty() && !s.contains(&b'@')) {
            if self.pickups.len() >= MAX_PENDING_PICKUPS {
                self.pickups.pop_front();
            }
            self.pickups.push_back((queue_id.into(), bare.into()));
            return None;
        }
        let from = envelope_from?;
        let i = self.pickups.iter().position(|(q, _)| **q == *queue_id)?;
        let bare = self
            .pickups
            .remove(i)
            .map(|(_, bare)| bare)
            .unwrap_or_default();
        let (local, domain) = split_address(from)?;
        if local.eq_ignore_ascii_case(&bare) {
            self.infer(domain, reason::REWRITE)
        } else {
            None
        }
    }

    /// A delivery: a recipient delivered into a mailbox here makes its
    /// domain local. `relay` is the delivery's relay as the parser gives it.
    pub(crate) fn on_delivered(
        &mut self,
        recipient: &[u8],
        relay: Option<&[u8]>,
    ) -> Option<Box<[u8]>> {
        if self.configured || !self.is_local_relay_remembered(relay) {
            return None;
        }
        let (_, domain) = split_address(recipient)?;
        if self.is_last_delivered(domain) {
            return None;
        }
        let dropped = self.dropped;
        let newly_local = self.infer(domain, reason::DELIVERED);
        // Not dropped past the cap: the domain is held, delivery noted.
        if self.dropped == dropped {
            self.last_delivered = SmallVec::from_slice(domain);
        }
        newly_local
    }

    /// Whether `domain` is the last one a delivery found local, as written
    /// (never the empty domain: none is remembered at first).
    fn is_last_delivered(&self, domain: &[u8]) -> bool {
        !self.last_delivered.is_empty() && *self.last_delivered == *domain
    }

    /// [`is_local_relay`], with the answers for relays it has to split
    /// remembered.
    fn is_local_relay_remembered(&mut self, relay: Option<&[u8]>) -> bool {
        let Some(relay) = relay else { return false };
        if let Some(known) = plain_relay(relay) {
            return known;
        }
        if let Some(&local) = self.relays_judged.get(relay) {
            return local;
        }
        let local = has_local_word(relay);
        if relay.len() <= MAX_RELAY_JUDGED_LEN {
            if self.relays_judged.len() >= MAX_RELAYS_JUDGED {
                self.relays_judged.clear();
            }
            self.relays_judged.insert(relay.into(), local);
        }
        local
    }

    /// The local domains with their reasons, by name (for the report).
    pub(crate) fn report(&self) -> Vec<LocalDomain> {
        let mut list: Vec<LocalDomain> = self
            .domains
            .iter()
            .map(|(domain, bits)| LocalDomain {
                domain: lossy(domain),
                reasons: reason::WORDS
                    .iter()
                    .filter(|(bit, _)| bits & bit != 0)
                    .map(|&(_, words)| words)
                    .collect(),
            })
            .collect();
        list.sort_by(|a, b| a.domain.cmp(&b.domain));
        list
    }

    /// Inferred domains not kept because of the cap.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Local part and domain of `address` (split at the last `@`), both
/// non-empty.
pub(crate) fn split_address(address: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = address.iter().rposition(|&b| b == b'@')?;
    let (local, domain) = (&address[..at], &address[at + 1..]);
    (!local.is_empty() && !domain.is_empty()).then_some((local, domain))
}

/// Words of a relay or transport name that put mail into a mailbox on this
/// server: Postfix's `relay=local`, `virtual`, `dovecot` (pipe to the LDA),
/// `…[private/dovecot-lmtp]`; Exim's transports `local_delivery`,
/// `dovecot_lmtp`, `maildir_home`…
const LOCAL_WORDS: [&[u8]; 9] = [
    b"local",
    b"virtual",
    b"dovecot",
    b"lmtp",
    b"maildrop",
    b"cyrus",
    b"maildir",
    b"mailbox",
    b"appendfile",
];

/// Whether a delivered message's `relay` put it into a local mailbox: one
/// of [`LOCAL_WORDS`] as a word between `_ - / [ ]` (so `localhost[…]:10024`,
/// a content filter's hop, is not), LMTP's port 24 (`127.0.0.1[127.0.0.1]:24`),
/// or a bare loopback address (Kerio's `Remote-Host: 127.0.0.1`; Postfix
/// always logs `host[addr]:port`, and Exim's hops to this machine are named
/// by their transport). No relay proves nothing: not every parser names one.
pub(crate) fn is_local_relay(relay: Option<&[u8]>) -> bool {
    let Some(relay) = relay else { return false };
    plain_relay(relay).unwrap_or_else(|| has_local_word(relay))
}

/// What [`is_local_relay`] says of `relay` without splitting it, if that
/// is enough: a loopback address or LMTP's port is local, and a relay
/// without a letter (a bare IP, as Kerio's remote hosts) has no local word.
fn plain_relay(relay: &[u8]) -> Option<bool> {
    if relay == b"127.0.0.1" || relay == b"::1" || relay.ends_with(b"]:24") {
        Some(true)
    } else if !relay.iter().any(u8::is_ascii_alphabetic) {
        Some(false)
    } else {
        None
    }
}

/// Whether one of [`LOCAL_WORDS`] is a word of `relay`, between `_ - / [ ]`.
fn has_local_word(relay: &[u8]) -> bool {
    relay
        .split(|b| matches!(b, b'_' | b'-' | b'/' | b'[' | b']'))
        .any(|word| LOCAL_WORDS.iter().any(|w| word.eq_ignore_ascii_case(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remembered answers are [`is_local_relay`]'s, past the cap too.
    #[test]
    fn remembered_relays_are_judged_as_afresh() {
        let mut domains = LocalDomains::default();
        let relays = [
            &b"mail.example.com[private/dovecot-lmtp]"[..],
            b"mx.example.net[192.0.2.1]:25",
            b"localhost[127.0.0.1]:10024",
            b"127.0.0.1",
            b"192.0.2.14",
            b"dovecot_lmtp",
        ];
        for round in 0..2 {
            for relay in relays {
                assert_eq!(
                    domains.is_local_relay_remembered(Some(relay)),
                    is_local_relay(Some(relay)),
                    "{round} {relay:?}"
                );
            }
        }
        for n in 0..=MAX_RELAYS_JUDGED {
            let relay = format!("mx{n}.example.net[192.0.2.1]:25");
            assert!(!domains.is_local_relay_remembered(Some(relay.as_bytes())));
        }
        assert!(domains.relays_judged.len() <= MAX_RELAYS_JUDGED);
        assert!(domains.is_local_relay_remembered(Some(relays[0])));
        assert!(!domains.is_local_relay_remembered(None));
    }

    /// A delivery repeating the last delivered domain is answered from
    /// memory: the same as the table would answer, past the cap too.
    #[test]
    fn repeated_delivery_domains_are_answered_as_afresh() {
        let mut local = LocalDomains::default();
        assert!(local
            .on_delivered(b"a@Here.example", Some(b"local"))
            .is_some());
        assert_eq!(local.on_delivered(b"b@Here.example", Some(b"local")), None);
        assert_eq!(local.on_delivered(b"c@here.example", Some(b"local")), None);
        assert!(local.contains(b"HERE.example"));
        assert!(local.contains(b"here.example"));
        assert!(!local.contains(b"there.example"));
        for n in 0..MAX_INFERRED {
            local.infer(format!("d{n}.example").as_bytes(), reason::LOGIN);
        }
        // Past the cap: dropped each time, never remembered as held.
        let dropped = local.dropped();
        for _ in 0..2 {
            assert_eq!(local.on_delivered(b"x@full.example", Some(b"local")), None);
        }
        assert_eq!(local.dropped(), dropped + 2);
        assert!(!local.contains(b"full.example"));
        assert_eq!(local.on_delivered(b"d@here.example", Some(b"local")), None);
        assert_eq!(local.dropped(), dropped + 2);
    }

    #[test]
    fn relays_that_deliver_into_a_mailbox() {
        for local in [
            &b"local"[..],
            b"virtual",
            b"dovecot",
            b"mail.example.com[private/dovecot-lmtp]",
            b"local_delivery",
            b"dovecot_lmtp",
            b"127.0.0.1",
            b"127.0.0.1[127.0.0.1]:24",
        ] {
            assert!(is_local_relay(Some(local)), "{local:?}");
        }
        for remote in [
            &b"127.0.0.1[127.0.0.1]:10024"[..],
            b"localhost[127.0.0.1]:10024",
            b"mx.gmail.com[142.250.1.26]:25",
            b"mx-local.example.net",
            b"remote_smtp",
            b"amavis_smtp",
            b"mx.example.net[192.0.2.1]:2424",
        ] {
            assert!(!is_local_relay(Some(remote)), "{remote:?}");
        }
        assert!(!is_local_relay(None));
    }

    #[test]
    fn pickup_rewriting_makes_the_qualified_domain_local() {
        let mut local = LocalDomains::default();
        local.on_submission(b"Q1", Some(b"root"), None);
        local.on_submission(b"Q1", None, Some(b"root@host.example"));
        // Another sender given with a domain by a local program is no
        // rewriting.
        local.on_submission(b"Q2", Some(b"www"), None);
        local.on_submission(b"Q2", None, Some(b"noreply@shop.example"));
        let report = local.report();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].domain, "host.example");
        assert_eq!(report[0].reasons, ["the server's own address rewriting"]);
    }

    #[test]
    fn configured_domains_are_the_only_ones() {
        let mut local = LocalDomains::configured(&["Example.COM".into()]);
        local.on_delivered(b"a@other.example", Some(b"local"));
        local.note_login_domain(b"third.example");
        let report = local.report();
        assert_eq!(report.len(), 1);
        assert_eq!(
            (report[0].domain.as_str(), &report[0].reasons[..]),
            ("example.com", &["configured"][..])
        );
    }

    #[test]
    fn inferred_domains_are_capped() {
        let mut local = LocalDomains::default();
        for n in 0..MAX_INFERRED + 5 {
            local.on_delivered(format!("u@d{n}.example").as_bytes(), Some(b"local"));
        }
        assert_eq!(local.report().len(), MAX_INFERRED);
        assert_eq!(local.dropped(), 5);
    }
}
