//! The hijack of the user's story: a spammer who guessed the password of the
//! `sales` account relays thousands of messages through it at night.

use crate::clock::Wall;
use crate::kerio::{Addr, Ip, MsgIdStyle, Subject};
use crate::rng::Rng;
use crate::traffic::{msg_id, Channel, Message};
use crate::vocab;

/// Where the spammer connects from (the seed's address).
pub const SPAMMER_IP: Ip = [173, 16, 65, 213];

/// The forged envelope sender of every spam message (the seed's).
pub const FORGED_FROM: Addr<'static> = Addr::new("admin", "redbullcarwrap.com");

/// Initials of the harvested address list, in alphabetical order.
const INITIALS: &[&str] = &[
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "r", "s", "t",
    "v", "w",
];

/// One spam message, whether the spammer opened a new SMTP connection (and
/// so authenticated again) for it, and whether they drop the connection
/// after it (formats that log disconnects need to know).
#[derive(Clone, Copy, Debug)]
pub struct Spam<'a> {
    /// The message: forged sender, the victim's login, one harvested
    /// recipient, no TLS.
    pub msg: Message<'a>,
    /// The spammer connected and logged in again just before it: the
    /// example writes an audit.log SMTP login, Postfix a connect and `AUTH`.
    pub new_session: bool,
    /// The spammer disconnects after it (Postfix logs `disconnect from`).
    pub ends_session: bool,
}

/// The spammer's run through a hijacked account from `start` to `end`:
/// several messages a minute, each to one address of a harvested list walked
/// in alphabetical order (`acaraballo@…`, `acarbon@…` as in the seed), about
/// 60 % of which no longer exist.
#[derive(Clone, Debug)]
pub struct SpamRun<'a> {
    victim: Addr<'a>,
    start: Wall,
    end: Wall,
    next_at: Wall,
    /// Position in the harvested list: (initial, surname).
    cursor: (usize, usize),
    /// Messages left before the spammer reconnects.
    session_left: u32,
}

impl<'a> SpamRun<'a> {
    /// A run through `victim`'s account whose messages come from `start`
    /// until `end` (server wall time), starting at `acaraballo` as the seed.
    pub fn new(victim: Addr<'a>, start: Wall, end: Wall) -> Self {
        SpamRun {
            victim,
            start,
            end,
            next_at: start,
            // The seed's list starts at `acaraballo`.
            cursor: (0, vocab::US_SURNAMES.partition_point(|s| *s < "caraballo")),
            session_left: 0,
        }
    }

    /// The hijacked account.
    pub fn victim(&self) -> Addr<'a> {
        self.victim
    }

    /// When the next message comes, if the run is not over.
    pub fn next_at(&self) -> Option<Wall> {
        (self.next_at <= self.end).then_some(self.next_at)
    }

    /// The next message, or `None` once the run is over.
    pub fn next(&mut self, rng: &mut Rng) -> Option<Spam<'a>> {
        let at = self.next_at()?;
        self.next_at = at.plus(rng.between(2, 11));
        let new_session = self.session_left == 0;
        if new_session {
            self.session_left = rng.between(20, 60) as u32;
        }
        self.session_left -= 1;

        let mut msg = Message::submitted(at, Channel::Smtp(SPAMMER_IP), FORGED_FROM, self.victim);
        msg.ssl = false;
        msg.size = rng.between(1_900, 3_400) as u32;
        msg.subject = Subject {
            prefix: "",
            text: rng.pick(vocab::SPAM_SUBJECTS),
        };
        msg.msg_id = msg_id(rng, MsgIdStyle::Uuid, FORGED_FROM.domain);
        let domain = rng.pick(vocab::SPAM_TARGETS);
        let rcpt = self.harvested(rng, domain.name);
        // Kerio's queue backs up as the run goes on: deliveries lag behind
        // by up to three minutes (the seed shows two).
        let backlog = ((at.0 - self.start.0) / 90).min(170) as u32;
        let after = 1 + backlog + rng.below(15) as u32;
        msg.relay(rng, rcpt, domain.mx, after, 600);
        Some(Spam {
            msg,
            new_session,
            ends_session: self.session_left == 0 || self.next_at > self.end,
        })
    }

    /// The next address of the harvested list, at `domain`.
    fn harvested(&mut self, rng: &mut Rng, domain: &'a str) -> Addr<'a> {
        let (initial, surname) = self.cursor;
        let addr = Addr::composed(INITIALS[initial], vocab::US_SURNAMES[surname], "", domain);
        // The list holds each name at a few providers.
        if rng.percent(40) {
            let next = surname + 1;
            self.cursor = if next < vocab::US_SURNAMES.len() {
                (initial, next)
            } else {
                ((initial + 1) % INITIALS.len(), 0)
            };
        }
        addr
    }
}
