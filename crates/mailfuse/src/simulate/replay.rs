//! One policy replayed over an account's sending events: the limiter
//! `mailfuse policy` uses (`mailfuse-limits`' [`Limiter`], the same windows
//! exact to the second), fed with each message and recipient at its log
//! line's time, deciding as the policy server would have: what goes out,
//! what it would have deferred, when it would have locked an account.
//!
//! The limiter counts per account, as the policy server does; what it lets
//! out and holds back is tallied per sending IP of the account (its
//! streams, as the incidents name them), so a hijack's figures are those of
//! its IPs, apart from its owner's own mail.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use mailfuse_core::Timestamp;
use mailfuse_detect::sends::SendKind;
use mailfuse_limits::{normalize, LimitRules, Limiter, LimitsError, Sent, Verdict};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::policy::{OnOver, Policy, Recipients};

/// Messages remembered for their recipients to come (held back: so are
/// they; let through: the first recipient let out makes the message let
/// out); the oldest are forgotten past this (their recipients came long
/// ago).
const MAX_REMEMBERED: usize = 100_000;

/// Sending IPs tallied apart per account; the mail of further ones is
/// tallied together (`None`), as none of a hijack's.
const MAX_STREAMS: usize = 64;

const DAY_SECS: i64 = 86_400;

/// Message numbers, the oldest forgotten past [`MAX_REMEMBERED`].
#[derive(Default)]
struct Remembered {
    set: FxHashSet<u64>,
    order: VecDeque<u64>,
}

impl Remembered {
    fn insert(&mut self, message: u64) {
        if !self.set.insert(message) {
            return;
        }
        self.order.push_back(message);
        if self.order.len() > MAX_REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }

    fn contains(&self, message: u64) -> bool {
        self.set.contains(&message)
    }

    /// Forgets `message`; whether it was remembered (the order keeps it
    /// until it falls off, harmlessly).
    fn remove(&mut self, message: u64) -> bool {
        self.set.remove(&message)
    }
}

/// What a policy would have done to some of an account's mail (a hijack's
/// IPs, or the rest).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Let out before the policy first held back any of the account's mail.
    pub before_trip: Sent,
    /// Let out in all (a deferring policy lets mail out again as its
    /// window empties).
    pub let_out: Sent,
    /// Deferred, or refused while the account was locked.
    pub held_back: Sent,
    /// When the policy first held back some of this mail.
    pub tripped_at: Option<Timestamp>,
    /// When it locked the account (lock policies only).
    pub locked_at: Option<Timestamp>,
}

impl Outcome {
    /// What went out in the log: let out plus held back.
    pub fn actual(&self) -> Sent {
        Sent {
            messages: self.let_out.messages + self.held_back.messages,
            recipients: self.let_out.recipients + self.held_back.recipients,
        }
    }
}

/// One account's mail from one sending IP (`None`: past [`MAX_STREAMS`]).
#[derive(Debug)]
struct Stream {
    ip: Option<IpAddr>,
    outcome: Outcome,
    /// Messages in the log: those neither let out nor held back had all
    /// their recipients held back (counted in `held_back` at the end).
    messages: u64,
}

/// One account under the policy.
#[derive(Debug, Default)]
pub struct Account {
    streams: Vec<Stream>,
    /// When the policy first held back any of its mail.
    tripped_at: Option<Timestamp>,
    locked_at: Option<Timestamp>,
    /// The lock in force, until this second (exclusive).
    locked_until: Option<i64>,
}

impl Account {
    /// The stream of `ip`, made if new.
    fn stream(&mut self, ip: IpAddr) -> &mut Stream {
        let index = match self.streams.iter().position(|s| s.ip == Some(ip)) {
            Some(index) => index,
            None => {
                let ip = (self.streams.len() < MAX_STREAMS).then_some(ip);
                match self.streams.iter().position(|s| s.ip == ip) {
                    Some(index) => index,
                    None => {
                        self.streams.push(Stream {
                            ip,
                            outcome: Outcome::default(),
                            messages: 0,
                        });
                        self.streams.len() - 1
                    }
                }
            }
        };
        &mut self.streams[index]
    }

    /// The outcome of its mail from the IPs `from` picks, if it sent any.
    pub fn outcome(&self, from: impl Fn(Option<IpAddr>) -> bool) -> Option<Outcome> {
        let mut merged: Option<Outcome> = None;
        for stream in self.streams.iter().filter(|s| from(s.ip)) {
            let o = &stream.outcome;
            let m = merged.get_or_insert_with(|| Outcome {
                locked_at: self.locked_at,
                ..Outcome::default()
            });
            add_sent(&mut m.before_trip, o.before_trip);
            add_sent(&mut m.let_out, o.let_out);
            add_sent(&mut m.held_back, o.held_back);
            m.tripped_at = match (m.tripped_at, o.tripped_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        merged
    }
}

/// Recipients let out and held back in one UTC hour, over all accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Hour {
    pub let_out: u64,
    pub held_back: u64,
}

/// One sending event, as the detector notes it
/// ([`mailfuse_detect::sends::Send`], without its account id).
#[derive(Clone, Copy, Debug)]
pub struct Sending {
    pub at: Timestamp,
    /// The IP the message is attributed to.
    pub ip: IpAddr,
    /// The message's number (0: not known).
    pub message: u64,
    pub kind: SendKind,
}

/// One policy being replayed.
pub struct Replay {
    policy: Policy,
    limiter: Limiter,
    accounts: FxHashMap<Box<str>, Account>,
    /// Messages held back, whose recipients are too.
    held: Remembered,
    /// Messages let through none of whose recipients was let out yet.
    waiting: Remembered,
    hours: BTreeMap<i64, Hour>,
}

/// The replay's result.
pub struct Replayed {
    pub policy: Policy,
    /// Every account that sent, by lower-cased name.
    pub accounts: FxHashMap<Box<str>, Account>,
    /// Recipients per hour (start of the hour, UTC seconds).
    pub hours: BTreeMap<i64, Hour>,
}

impl Replay {
    /// A replay of `policy`, with no counts yet; its limits must resolve
    /// (two maxima for one window are refused).
    pub fn new(policy: Policy) -> Result<Replay, LimitsError> {
        let rules = LimitRules::new(&policy.limits)?;
        Ok(Replay {
            policy,
            limiter: Limiter::new(rules),
            accounts: FxHashMap::default(),
            held: Remembered::default(),
            waiting: Remembered::default(),
            hours: BTreeMap::new(),
        })
    }

    /// Takes one sending event of `account`, in time order.
    pub fn feed(&mut self, account: &str, send: &Sending) {
        let key = normalize(account);
        let now = send.at.as_secs();
        if !self.accounts.contains_key(key.as_ref()) {
            self.accounts
                .insert(key.as_ref().into(), Account::default());
        }
        let locked = self
            .accounts
            .get(key.as_ref())
            .and_then(|a| a.locked_until)
            .is_some_and(|until| now < until);
        let counts_recipient = |external| match self.policy.recipients {
            Recipients::All => true,
            Recipients::External => external,
            Recipients::Failed => false,
        };
        let (messages, recipients, allowed) = match send.kind {
            SendKind::Message => {
                let allowed = !locked && self.allows(&key, now, 1, 0);
                if let Some(account) = self.accounts.get_mut(key.as_ref()) {
                    account.stream(send.ip).messages += 1;
                }
                if !allowed && send.message != 0 {
                    self.held.insert(send.message);
                } else if allowed && send.message != 0 {
                    // Let out with its first recipient let out.
                    self.waiting.insert(send.message);
                    return;
                }
                (1, 0, allowed)
            }
            SendKind::Recipient { external } => {
                let of_held = send.message != 0 && self.held.contains(send.message);
                let allowed = !locked
                    && !of_held
                    && (!counts_recipient(external) || self.allows(&key, now, 0, 1));
                let first = allowed && send.message != 0 && self.waiting.remove(send.message);
                (u64::from(first), 1, allowed)
            }
            SendKind::Failure => {
                // The failure is learnt after the recipient went: it only
                // counts towards a limit of failed recipients.
                // Over the limit, it locks: the trip is this stream's.
                if !locked
                    && self.policy.recipients == Recipients::Failed
                    && !self.allows(&key, now, 0, 1)
                {
                    if let Some(account) = self.accounts.get_mut(key.as_ref()) {
                        let outcome = &mut account.stream(send.ip).outcome;
                        outcome.tripped_at.get_or_insert(send.at);
                    }
                }
                return;
            }
        };
        let hour = self.hours.entry(now.div_euclid(3600) * 3600).or_default();
        let Some(account) = self.accounts.get_mut(key.as_ref()) else {
            return;
        };
        if !allowed {
            account.tripped_at.get_or_insert(send.at);
        }
        let tripped = account.tripped_at.is_some();
        let outcome = &mut account.stream(send.ip).outcome;
        let amount = Sent {
            messages,
            recipients,
        };
        if allowed {
            add_sent(&mut outcome.let_out, amount);
            if !tripped {
                add_sent(&mut outcome.before_trip, amount);
            }
            hour.let_out += recipients;
        } else {
            add_sent(&mut outcome.held_back, amount);
            outcome.tripped_at.get_or_insert(send.at);
            hour.held_back += recipients;
        }
    }

    /// Whether the policy lets `messages` and `recipients` more through at
    /// `now` (then counted); over a limit, a lock policy locks the account.
    fn allows(&mut self, key: &str, now: i64, messages: u64, recipients: u64) -> bool {
        match self.limiter.check(key, now, messages, recipients) {
            Verdict::Allowed => {
                self.limiter.record(key, now, messages, recipients);
                true
            }
            Verdict::Over { .. } => {
                let until = match self.policy.on_over {
                    OnOver::Defer => None,
                    OnOver::Lock => Some(i64::MAX),
                    OnOver::LockForToday => Some((now.div_euclid(DAY_SECS) + 1) * DAY_SECS),
                };
                if let (Some(until), Some(account)) = (until, self.accounts.get_mut(key)) {
                    account.locked_until = Some(until);
                    let at = Timestamp(now);
                    account.locked_at.get_or_insert(at);
                    account.tripped_at.get_or_insert(at);
                }
                false
            }
        }
    }

    /// The replay's result.
    pub fn finish(mut self) -> Replayed {
        for account in self.accounts.values_mut() {
            for stream in &mut account.streams {
                let outcome = &mut stream.outcome;
                outcome.held_back.messages =
                    stream.messages.saturating_sub(outcome.let_out.messages);
            }
        }
        Replayed {
            policy: self.policy,
            accounts: self.accounts,
            hours: self.hours,
        }
    }
}

fn add_sent(sent: &mut Sent, more: Sent) {
    sent.messages += more.messages;
    sent.recipients += more.recipients;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::policy::parse_limit;
    use crate::simulate::reference;

    const T0: i64 = 1_800_000_000 - 1_800_000_000 % 86_400;

    /// `n` messages of one recipient each, one every `every` seconds from
    /// `start`, their recipients external and, if `failed`, refused.
    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));

    fn messages(start: i64, n: u64, every: i64, failed: bool) -> Vec<Sending> {
        let send = |i: u64, kind| Sending {
            ip: IP,
            at: Timestamp(start + i as i64 * every),
            message: start as u64 * 10_000 + i + 1,
            kind,
        };
        (0..n)
            .flat_map(|i| {
                let mut sends = vec![
                    send(i, SendKind::Message),
                    send(i, SendKind::Recipient { external: true }),
                ];
                if failed {
                    sends.push(send(i, SendKind::Failure));
                }
                sends
            })
            .collect()
    }

    fn replay(policy: Policy, sends: &[Sending]) -> Outcome {
        let mut replay = Replay::new(policy).unwrap();
        for send in sends {
            replay.feed("Spam@Example.com", send);
        }
        let replayed = replay.finish();
        replayed.accounts["spam@example.com"]
            .outcome(|ip| ip == Some(IP))
            .unwrap()
    }

    #[test]
    fn a_deferring_limit_lets_out_its_maximum_per_window() {
        // 150 messages ten seconds apart: the first 100 go, the other 50
        // are deferred (they do not count). An hour after the first, 50
        // more ten seconds apart each find one free place as one of the
        // first hundred leaves the window: all go.
        let mut sends = messages(T0, 150, 10, false);
        sends.extend(messages(T0 + 3600, 50, 10, false));
        let outcome = replay(parse_limit("messages:100/1h").unwrap(), &sends);
        assert_eq!(
            outcome.before_trip,
            Sent {
                messages: 100,
                recipients: 100
            }
        );
        assert_eq!(outcome.tripped_at, Some(Timestamp(T0 + 1000)));
        assert_eq!(outcome.locked_at, None);
        assert_eq!(
            outcome.let_out,
            Sent {
                messages: 150,
                recipients: 150
            }
        );
        assert_eq!(
            outcome.held_back,
            Sent {
                messages: 50,
                recipients: 50
            },
            "a held message's recipient is held with it"
        );
    }

    #[test]
    fn a_lock_stops_everything_after_it() {
        // BlockCracking: the 101st failure within the hour locks; every
        // message after it is refused.
        let policies = reference::policies();
        let block_cracking = policies
            .iter()
            .find(|p| p.name == "Exim BlockCracking")
            .unwrap()
            .clone();
        let outcome = replay(block_cracking, &messages(T0, 300, 10, true));
        assert_eq!(outcome.locked_at, Some(Timestamp(T0 + 100 * 10)));
        assert_eq!(outcome.tripped_at, outcome.locked_at);
        assert_eq!(
            outcome.let_out,
            Sent {
                messages: 101,
                recipients: 101
            }
        );
        assert_eq!(
            outcome.held_back,
            Sent {
                messages: 199,
                recipients: 199
            }
        );
    }

    #[test]
    fn a_lock_for_today_ends_at_midnight_and_only_external_recipients_count() {
        let policy = parse_limit("external-recipients:5/1h").unwrap();
        let policy = Policy {
            on_over: OnOver::LockForToday,
            ..policy
        };
        let mut sends = messages(T0 + DAY_SECS - 100, 10, 1, false);
        sends.extend(messages(T0 + DAY_SECS + 10, 3, 1, false));
        let mut internal = messages(T0, 50, 1, false);
        for send in &mut internal {
            if let SendKind::Recipient { external } = &mut send.kind {
                *external = false;
            }
        }
        internal.extend(sends);
        let outcome = replay(policy, &internal);
        // 50 internal recipients do not count; 5 external ones go, the
        // 6th (at midnight − 95 s) locks until midnight: 5 messages held.
        // After midnight the hour's window still holds the 5, so the first
        // message's recipient is over again and locks until the next
        // midnight: its 3 messages are held too.
        assert_eq!(outcome.locked_at, Some(Timestamp(T0 + DAY_SECS - 95)));
        assert_eq!(outcome.let_out.messages, 55);
        assert_eq!(outcome.held_back.messages, 8);
    }

    #[test]
    fn recipients_of_a_deferred_message_are_deferred_with_it() {
        let policy = parse_limit("messages:1/1h").unwrap();
        let send = |message, kind| Sending {
            ip: IP,
            at: Timestamp(T0),
            message,
            kind,
        };
        let sends = [
            send(1, SendKind::Message),
            send(2, SendKind::Message),
            send(1, SendKind::Recipient { external: true }),
            send(2, SendKind::Recipient { external: true }),
            send(2, SendKind::Recipient { external: false }),
        ];
        let outcome = replay(policy, &sends);
        assert_eq!(
            outcome.let_out,
            Sent {
                messages: 1,
                recipients: 1
            }
        );
        assert_eq!(
            outcome.held_back,
            Sent {
                messages: 1,
                recipients: 2
            }
        );
    }

    #[test]
    fn the_owners_mail_and_the_hijackers_are_told_apart_by_ip() {
        // The owner sends 3 messages from the office; then a hijacker
        // sends 10 from elsewhere under a limit of 5 an hour. The limit
        // counts the account as one (the owner's 3 leave room for 2), the
        // figures split by IP.
        let owner = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10));
        let mut sends: Vec<Sending> = messages(T0, 3, 10, false)
            .into_iter()
            .map(|send| Sending { ip: owner, ..send })
            .collect();
        sends.extend(messages(T0 + 100, 10, 10, false));
        let mut replay = Replay::new(parse_limit("messages:5/1h").unwrap()).unwrap();
        for send in &sends {
            replay.feed("user@example.com", send);
        }
        let replayed = replay.finish();
        let account = &replayed.accounts["user@example.com"];
        let hijack = account.outcome(|ip| ip == Some(IP)).unwrap();
        assert_eq!(
            hijack.let_out,
            Sent {
                messages: 2,
                recipients: 2
            }
        );
        assert_eq!(
            hijack.held_back,
            Sent {
                messages: 8,
                recipients: 8
            }
        );
        assert_eq!(hijack.tripped_at, Some(Timestamp(T0 + 120)));
        let own = account.outcome(|ip| ip == Some(owner)).unwrap();
        assert_eq!(
            own.let_out,
            Sent {
                messages: 3,
                recipients: 3
            }
        );
        assert_eq!(own.tripped_at, None, "none of the owner's mail was held");
    }
}
