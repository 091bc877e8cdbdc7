//! Many messages from one account: a spam run, a phishing wave, a
//! newsletter, an application's invoices. What tells them apart is their
//! parameters — whose From, which recipients, how many bounce — so one
//! builder writes them all, and [`Spree`] keeps a hijack's labels.

use mailfuse_core::Timestamp;

use crate::bench::Connection;
use crate::clock::{Wall, MINUTE};
use crate::kerio::{Addr, Ip, MsgIdStyle, Subject};
use crate::rng::Rng;
use crate::traffic::{correspondent_domain, msg_id, someone_at, Channel, Message};
use crate::vocab;

use super::Plan;

/// The most recipients one message of a mailing has: with a deferral and
/// its retry each, they fill a message's 20 delivery attempts.
pub const MAX_RECIPIENTS: i64 = 10;

/// How the messages of a mailing are made.
#[derive(Clone, Copy, Debug)]
pub struct Mailing {
    /// The account that logs in.
    pub user: Addr<'static>,
    /// The envelope From: the account's own, a second company domain, or
    /// a forged one.
    pub from: Addr<'static>,
    /// Subjects to pick from.
    pub subjects: &'static [&'static str],
    /// Recipients per message (at most [`MAX_RECIPIENTS`]).
    pub recipients: (i64, i64),
    /// Percent of recipients who are real correspondents (partners,
    /// freemail); the rest come from a harvested list of consumer ISPs'
    /// addresses, many of them dead.
    pub contacts: u64,
    /// Per mille of recipients refused permanently (5.x.x).
    pub fail_permille: u64,
    /// Message sizes in bytes.
    pub size: (i64, i64),
    /// The mail program, which shapes the Message-ID.
    pub style: MsgIdStyle,
}

impl Mailing {
    /// One message at `at` through `channel`.
    pub fn message(&self, rng: &mut Rng, at: Wall, channel: Channel) -> Message<'static> {
        let mut msg = Message::submitted(at, channel, self.from, self.user);
        msg.ssl = !matches!(channel, Channel::Smtp(_)) || rng.percent(60);
        msg.size = rng.between(self.size.0, self.size.1) as u32;
        msg.subject = Subject {
            prefix: "",
            text: rng.pick(self.subjects),
        };
        msg.msg_id = msg_id(rng, self.style, self.from.domain);
        let (lo, hi) = self.recipients;
        for _ in 0..rng.between(lo, hi.min(MAX_RECIPIENTS)) {
            let (rcpt, mx) = if rng.percent(self.contacts) {
                let domain = correspondent_domain(rng);
                (someone_at(rng, domain.name), domain.mx)
            } else {
                let domain = rng.pick(vocab::SPAM_TARGETS);
                let first = rng.pick(vocab::US_FIRST_NAMES);
                let local = if rng.percent(50) { &first[..1] } else { first };
                let addr = Addr::composed(local, "", rng.pick(vocab::US_SURNAMES), domain.name);
                (addr, domain.mx)
            };
            let after = rng.between(1, 40) as u32;
            msg.relay(rng, rcpt, mx, after, self.fail_permille);
        }
        msg
    }
}

/// A hijacker's messages as they are planned: what the label says.
#[derive(Clone, Debug, Default)]
pub struct Spree {
    /// When each message was accepted (UTC).
    pub spam: Vec<Timestamp>,
    /// Every address that sent, in order of first use.
    pub ips: Vec<Ip>,
    /// The first and last message (wall time).
    pub span: Option<(Wall, Wall)>,
}

impl Spree {
    /// Plans a message of `mailing` at `at` from `ip` through `channel`
    /// on `connection`; false (and nothing planned) once the log has
    /// ended, so runs stop with the week.
    pub fn send(
        &mut self,
        plan: &mut Plan,
        rng: &mut Rng,
        mailing: &Mailing,
        (at, ip, channel): (Wall, Ip, Channel),
        connection: Connection,
    ) -> bool {
        if at >= plan.org.end().plus(-10 * MINUTE) {
            return false;
        }
        let msg = mailing.message(rng, at, channel);
        self.spam.push(plan.utc(at));
        if !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
        self.span = Some(match self.span {
            Some((first, last)) => (first.min(at), last.max(at)),
            None => (at, at),
        });
        plan.timeline.message_on(msg, connection);
        true
    }

    /// Plans `count` messages from `ip` on one SMTP connection, `gap`
    /// seconds apart (a range), from `at`; the time after the last.
    pub fn burst(
        &mut self,
        plan: &mut Plan,
        rng: &mut Rng,
        mailing: &Mailing,
        (mut at, ip): (Wall, Ip),
        count: i64,
        gap: (i64, i64),
    ) -> Wall {
        for n in 0..count {
            let connection = Connection {
                opens: n == 0,
                closes: n + 1 == count,
            };
            self.send(plan, rng, mailing, (at, ip, Channel::Smtp(ip)), connection);
            at = at.plus(rng.between(gap.0, gap.1));
        }
        at
    }

    /// Messages planned.
    pub fn len(&self) -> usize {
        self.spam.len()
    }

    /// Whether none was planned.
    pub fn is_empty(&self) -> bool {
        self.spam.is_empty()
    }
}

/// Connections of `per_session` messages: which message opens one and
/// which closes it.
#[derive(Clone, Copy, Debug)]
pub struct Sessions {
    left: i64,
    range: (i64, i64),
}

impl Sessions {
    /// Sessions of between `lo` and `hi` messages.
    pub fn new(lo: i64, hi: i64) -> Self {
        Sessions {
            left: 0,
            range: (lo, hi),
        }
    }

    /// The connection of the next message; `last` says the run ends with it.
    pub fn next(&mut self, rng: &mut Rng, last: bool) -> Connection {
        let opens = self.left == 0;
        if opens {
            self.left = rng.between(self.range.0, self.range.1);
        }
        self.left -= 1;
        let closes = self.left == 0 || last;
        if closes {
            self.left = 0;
        }
        Connection { opens, closes }
    }
}
