//! A hosting provider's mail log, for the scale benchmark
//! (`bench/scale.sh`): many mailboxes, each lightly used (a few IMAP logins
//! and messages from its owner's own addresses), a botnet's IPs failing a
//! login once or twice each, mostly from networks of their own, and one
//! hijack in the middle — Postfix and Dovecot in one syslog file, written by
//! the benchmark's Postfix renderer.
//!
//! Events are spread evenly over the period in the proportions asked for;
//! who acts is drawn at random, so most accounts act a few times and a few
//! not at all, as on a real server.

use std::io::{self, Write};

use crate::attack::SpamRun;
use crate::bench::{BenchReport, Connection, Render, Stream};
use crate::clock::{Wall, DAY, HOUR, MINUTE};
use crate::kerio::{Addr, Ip};
use crate::postfix::{Mailbox, PostfixRender, Refusal};
use crate::rng::Rng;
use crate::traffic::{Channel, Message};

/// The provider's domain.
pub const DOMAIN: &str = "mailhost.example";

/// What to write.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Mailboxes.
    pub accounts: u64,
    /// Attacker IPs, each failing a login once or twice.
    pub attacker_ips: u64,
    /// Days the log covers.
    pub days: u32,
    /// Messages each account sends over the period, on average.
    pub messages_per_account: u64,
    /// IMAP logins of each account over the period, on average.
    pub logins_per_account: u64,
    /// Seeds everything: the same seed writes the same file.
    pub seed: u64,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            accounts: 1_000_000,
            attacker_ips: 2_000_000,
            days: 2,
            messages_per_account: 2,
            logins_per_account: 2,
            seed: 1,
        }
    }
}

/// The account whose password the spammer has (`u7@…`).
const VICTIM: usize = 7;

/// Where the accounts' mail goes.
const REMOTE_MX: Ip = [192, 0, 2, 14];
const RECIPIENTS: [&str; 4] = ["friend", "orders", "team", "family"];

/// The account's own addresses: a home line and a phone, both its own.
fn account_ip(index: usize, phone: bool) -> Ip {
    let n = index as u32;
    let first = if phone { 100 } else { 81 };
    [first, (n >> 16) as u8, (n >> 8) as u8, (n as u8).max(1)]
}

/// A bot's address: anywhere, mostly one per network.
fn bot_ip(rng: &mut Rng) -> Ip {
    let n = rng.next_u64();
    [
        (n % 200) as u8 + 1,
        (n >> 8) as u8,
        (n >> 16) as u8,
        ((n >> 24) % 253) as u8 + 1,
    ]
}

/// Writes the log to `out`.
pub fn generate<W: Write>(out: W, cfg: &ProviderConfig) -> io::Result<BenchReport> {
    let root = Rng::new(cfg.seed);
    let names: Vec<String> = (0..cfg.accounts.max(VICTIM as u64 + 1))
        .map(|n| format!("u{n}"))
        .collect();
    let addr = |i: usize| Addr::new(&names[i], DOMAIN);
    let mut rng = root.fork(1);
    let mut spam_rng = root.fork(2);
    let start = Wall::civil(2026, 11, 2, 0, 0, 0);
    let span = i64::from(cfg.days.max(1)) * DAY;
    let mut stream = Stream::new(out, PostfixRender::new(DOMAIN, root.fork(3)));
    stream.report.first = start;
    let night = start.plus(span / 2).midnight();
    let mut spam = SpamRun::new(
        addr(VICTIM),
        night.at(2 * HOUR + 13 * MINUTE),
        night.at(6 * HOUR + 40 * MINUTE),
    );
    stream
        .render
        .hijack_planned(night.plus(-HOUR), &spam, &mut stream.schedule);

    let accounts = names.len();
    let messages = accounts as u64 * cfg.messages_per_account;
    let logins = accounts as u64 * cfg.logins_per_account;
    let events = messages + logins + cfg.attacker_ips;
    for event in 0..events {
        let at = start.plus((event as i128 * i128::from(span) / i128::from(events.max(1))) as i64);
        stream.advance(at, Some(&mut spam), &mut spam_rng)?;
        let who = rng.below(accounts as u64) as usize;
        let ip = account_ip(who, rng.percent(30));
        let kind = rng.below(events);
        if kind < messages {
            let mut msg = Message::submitted(at, Channel::Smtp(ip), addr(who), addr(who));
            for _ in 0..=rng.below(2) {
                let rcpt = Addr::new(rng.pick(&RECIPIENTS), "remote.example");
                let after = rng.between(1, 4) as u32;
                msg.relay(&mut rng, rcpt, REMOTE_MX, after, 5);
            }
            stream.message(&msg, Connection::OWN)?;
        } else if kind < messages + logins {
            stream.write_with(at, |render, lines, _| {
                render.dovecot_login(lines, at, Mailbox::Imap, addr(who), ip, false);
            })?;
        } else {
            let bot = bot_ip(&mut rng);
            let tries = 1 + u32::from(rng.percent(20));
            for _ in 0..tries {
                let refusal = Refusal {
                    user: addr(who),
                    ip: bot,
                    unknown: false,
                };
                stream.write_with(at, |render, lines, _| {
                    render.smtp_login(lines, at, refusal, false, false);
                })?;
            }
        }
    }
    stream.advance(start.plus(span), Some(&mut spam), &mut spam_rng)?;
    stream.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_writes_the_same_file_with_every_kind_of_line() {
        let cfg = ProviderConfig {
            accounts: 300,
            attacker_ips: 500,
            days: 1,
            ..ProviderConfig::default()
        };
        let write = || {
            let mut out = Vec::new();
            generate(&mut out, &cfg).map(|report| (out, report))
        };
        let (first, report) = write().expect("writes");
        let (second, _) = write().expect("writes");
        assert_eq!(first, second);
        let text = String::from_utf8_lossy(&first);
        assert!(text.contains("imap-login: Login: user=<u"));
        assert!(text.contains("SASL LOGIN authentication failed"));
        assert!(text.contains("sasl_username=u7@mailhost.example"));
        assert!(report.spam_messages > 0, "the hijack is in the file");
    }
}
