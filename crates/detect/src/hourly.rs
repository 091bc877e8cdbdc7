//! Hour-by-hour activity for the report's charts: messages, recipients,
//! failed recipients and sending IPs per account, failed logins per guessing
//! IP and per network.
//!
//! Only `scan` collects it ([`crate::Detector::collect_hourly`]); it is not
//! part of the stored snapshot. Memory is bounded by (accounts × hours) and
//! (sources × hours), never by lines: each series keeps one bucket per hour
//! with activity, at most [`MAX_HOURS`] of them (the oldest go first), each
//! bucket at most [`MAX_IPS_PER_HOUR`] sending IPs, and at most
//! [`MAX_SOURCES`] guessing IPs and networks are followed (the failed logins
//! of later ones are only totalled).

use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::IpAddr;

use mailfuse_core::net::Network;
use mailfuse_core::Timestamp;
use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;

use crate::account_id::AccountId;
use crate::correlate::RecipientChange;

/// Most hourly buckets kept per series (a year and a day).
pub const MAX_HOURS: usize = 366 * 24;
/// Most distinct sending IPs remembered per account and hour.
pub const MAX_IPS_PER_HOUR: usize = 64;
/// Most guessing IPs (and, apart, networks) followed hour by hour.
pub const MAX_SOURCES: usize = 4096;

const HOUR_SECS: i64 = 3600;

/// The start of the hour `at` falls in.
fn hour_of(at: Timestamp) -> i64 {
    at.as_secs().div_euclid(HOUR_SECS) * HOUR_SECS
}

/// One account's activity in one hour.
#[derive(Debug, Default)]
struct AccountBucket {
    messages: u64,
    recipients: u64,
    failed_recipients: u64,
    sending_ips: SmallVec<[IpAddr; 2]>,
}

/// Hourly buckets keyed by the hour's start, dropping the oldest past
/// [`MAX_HOURS`].
#[derive(Debug)]
struct Series<B>(BTreeMap<i64, B>);

impl<B: Default> Series<B> {
    fn new() -> Self {
        Series(BTreeMap::new())
    }

    fn bucket(&mut self, at: Timestamp) -> &mut B {
        let hour = hour_of(at);
        if !self.0.contains_key(&hour) && self.0.len() >= MAX_HOURS {
            self.0.pop_first();
        }
        self.0.entry(hour).or_default()
    }
}

/// Failed logins of one source, hour by hour.
#[derive(Debug)]
struct SourceSeries {
    total: u64,
    hours: Series<u64>,
}

/// Failed logins per source (IP or network), for at most [`MAX_SOURCES`].
#[derive(Debug)]
struct Sources<K>(FxHashMap<K, SourceSeries>);

impl<K: Hash + Eq + Copy + Ord + Serialize> Sources<K> {
    /// Counts `attempts` for `source`; false when the source is not followed
    /// (too many already).
    fn add(&mut self, source: K, at: Timestamp, attempts: u64) -> bool {
        if !self.0.contains_key(&source) && self.0.len() >= MAX_SOURCES {
            return false;
        }
        let series = self.0.entry(source).or_insert_with(|| SourceSeries {
            total: 0,
            hours: Series::new(),
        });
        series.total = series.total.saturating_add(attempts);
        let bucket = series.hours.bucket(at);
        *bucket = bucket.saturating_add(attempts);
        true
    }

    /// The sources, most failed logins first.
    fn report(&self) -> Vec<SourceHours<K>> {
        let mut sources: Vec<SourceHours<K>> = self
            .0
            .iter()
            .map(|(source, series)| SourceHours {
                source: *source,
                failed_logins: series.total,
                hours: series
                    .hours
                    .0
                    .iter()
                    .map(|(&hour, &failed_logins)| SourceHour {
                        hour: Timestamp(hour),
                        failed_logins,
                    })
                    .collect(),
            })
            .collect();
        sources.sort_by(|a, b| {
            b.failed_logins
                .cmp(&a.failed_logins)
                .then(a.source.cmp(&b.source))
        });
        sources
    }
}

/// Collects the hourly series while the detector runs.
#[derive(Debug)]
pub struct HourlyCollector {
    /// Indexed by account id.
    accounts: Vec<Series<AccountBucket>>,
    ips: Sources<IpAddr>,
    networks: Sources<Network>,
    untracked_failed_logins: u64,
}

impl Default for HourlyCollector {
    fn default() -> Self {
        HourlyCollector {
            accounts: Vec::new(),
            ips: Sources(FxHashMap::default()),
            networks: Sources(FxHashMap::default()),
            untracked_failed_logins: 0,
        }
    }
}

impl HourlyCollector {
    fn account(&mut self, id: AccountId, at: Timestamp) -> &mut AccountBucket {
        let index = id.index();
        if self.accounts.len() <= index {
            self.accounts.resize_with(index + 1, Series::new);
        }
        self.accounts[index].bucket(at)
    }

    /// A message the account sent from `ip`.
    pub fn on_message(&mut self, id: AccountId, ip: IpAddr, at: Timestamp) {
        let bucket = self.account(id, at);
        bucket.messages += 1;
        if !bucket.sending_ips.contains(&ip) && bucket.sending_ips.len() < MAX_IPS_PER_HOUR {
            bucket.sending_ips.push(ip);
        }
    }

    /// A recipient of the account's message newly seen and/or newly refused
    /// permanently, counted in the hour the line says so.
    pub fn on_recipient(&mut self, id: AccountId, at: Timestamp, change: RecipientChange) {
        if !change.new_recipient && !change.new_failure {
            return;
        }
        let bucket = self.account(id, at);
        bucket.recipients += u64::from(change.new_recipient);
        bucket.failed_recipients += u64::from(change.new_failure);
    }

    /// Failed login attempts (guesses) from `ip`.
    pub fn on_failure(&mut self, ip: IpAddr, at: Timestamp, attempts: u32) {
        let attempts = u64::from(attempts);
        if attempts == 0 {
            return;
        }
        let by_ip = self.ips.add(ip, at, attempts);
        let by_network = self.networks.add(Network::of(ip), at, attempts);
        if !by_ip || !by_network {
            self.untracked_failed_logins = self.untracked_failed_logins.saturating_add(attempts);
        }
    }

    /// The series, accounts busiest first; `name` names an account id.
    pub fn report(&self, name: impl Fn(AccountId) -> String) -> Hourly {
        let mut accounts: Vec<AccountHours> = self
            .accounts
            .iter()
            .enumerate()
            .filter(|(_, series)| !series.0.is_empty())
            .map(|(index, series)| AccountHours {
                account: name(AccountId::from_index(index)),
                hours: series
                    .0
                    .iter()
                    .map(|(&hour, bucket)| AccountHour {
                        hour: Timestamp(hour),
                        messages: bucket.messages,
                        recipients: bucket.recipients,
                        failed_recipients: bucket.failed_recipients,
                        sending_ips: bucket.sending_ips.to_vec(),
                    })
                    .collect(),
            })
            .collect();
        accounts.sort_by(|a, b| {
            b.messages()
                .cmp(&a.messages())
                .then(a.account.cmp(&b.account))
        });
        Hourly {
            accounts,
            guessing_ips: self.ips.report(),
            guessing_networks: self.networks.report(),
            untracked_failed_logins: self.untracked_failed_logins,
        }
    }
}

/// Hour-by-hour activity of a whole scan (UTC hours).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Hourly {
    /// Accounts that sent mail, busiest first.
    pub accounts: Vec<AccountHours>,
    /// IPs that failed logins (guesses), most failures first.
    pub guessing_ips: Vec<SourceHours<IpAddr>>,
    /// The same failures per /24 (IPv4) or /64 (IPv6).
    pub guessing_networks: Vec<SourceHours<Network>>,
    /// Failed logins of sources past the ones followed (see [`MAX_SOURCES`]).
    pub untracked_failed_logins: u64,
}

/// One account's hours with activity, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountHours {
    /// The account's login, lower-cased (as in the report's account table).
    pub account: String,
    /// Its hours with a message, a recipient or a refusal, oldest first; at
    /// most [`MAX_HOURS`], the oldest dropped first.
    pub hours: Vec<AccountHour>,
}

impl AccountHours {
    /// Messages over all the hours kept.
    pub fn messages(&self) -> u64 {
        self.hours.iter().map(|h| h.messages).sum()
    }
}

/// One account's activity in the hour starting at `hour`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountHour {
    /// Start of the hour, in UTC seconds (a multiple of 3,600).
    pub hour: Timestamp,
    /// Messages the account submitted in the hour (counted at the line that
    /// gave their envelope sender).
    pub messages: u64,
    /// Recipients first seen in the hour, each once per message, counted at
    /// the line naming them (a late delivery line counts in its own hour).
    pub recipients: u64,
    /// Recipients refused permanently (5.x.x) in the hour, counted at the
    /// delivery line that refused them.
    pub failed_recipients: u64,
    /// Distinct sending IPs (at most [`MAX_IPS_PER_HOUR`]).
    pub sending_ips: Vec<IpAddr>,
}

/// One source's failed logins, hours with activity oldest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceHours<K> {
    /// The guessing IP, or its /24 (IPv4) or /64 (IPv6) network.
    pub source: K,
    /// Its failed login attempts over the whole scan, hours dropped past
    /// [`MAX_HOURS`] included: what the sources are ranked by.
    pub failed_logins: u64,
    /// Its hours with failed logins, oldest first.
    pub hours: Vec<SourceHour>,
}

/// Failed logins in the hour starting at `hour`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceHour {
    /// Start of the hour, in UTC seconds (a multiple of 3,600).
    pub hour: Timestamp,
    /// Failed login attempts (guesses) in the hour; a summary line counts
    /// all the attempts it reports.
    pub failed_logins: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const NEW_FAILURE: RecipientChange = RecipientChange {
        new_recipient: true,
        new_address: true,
        new_failure: true,
    };

    #[test]
    fn buckets_per_hour_and_counts_distinct_ips() {
        let mut hourly = HourlyCollector::default();
        let id = AccountId::from_index(0);
        let t = Timestamp(10 * HOUR_SECS + 59);
        hourly.on_message(id, ip("192.0.2.1"), t);
        hourly.on_message(id, ip("192.0.2.1"), t.plus(60));
        hourly.on_message(id, ip("192.0.2.2"), t.plus(3600));
        hourly.on_recipient(id, t.plus(3600), NEW_FAILURE);
        let report = hourly.report(|_| "a@example.com".to_string());
        let hours = &report.accounts[0].hours;
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0].hour, Timestamp(10 * HOUR_SECS));
        assert_eq!((hours[0].messages, hours[0].sending_ips.len()), (2, 1));
        assert_eq!((hours[1].messages, hours[1].failed_recipients), (1, 1));
        assert_eq!(report.accounts[0].messages(), 3);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut hourly = HourlyCollector::default();
        let id = AccountId::from_index(0);
        for n in 0..(MAX_HOURS as i64 + 10) {
            hourly.on_message(id, ip("192.0.2.1"), Timestamp(n * HOUR_SECS));
        }
        let last = Timestamp((MAX_HOURS as i64 + 9) * HOUR_SECS);
        for n in 0..(MAX_IPS_PER_HOUR as u32 + 10) {
            hourly.on_message(id, IpAddr::from([10, 0, (n >> 8) as u8, n as u8]), last);
        }
        for n in 0..(MAX_SOURCES as u32 + 5) {
            hourly.on_failure(IpAddr::from(n.to_be_bytes()), Timestamp(0), 2);
        }
        let report = hourly.report(|_| "a".to_string());
        let hours = &report.accounts[0].hours;
        assert_eq!(hours.len(), MAX_HOURS);
        assert_eq!(hours[0].hour, Timestamp(10 * HOUR_SECS), "the oldest went");
        assert_eq!(hours[MAX_HOURS - 1].sending_ips.len(), MAX_IPS_PER_HOUR);
        assert_eq!(report.guessing_ips.len(), MAX_SOURCES);
        assert_eq!(report.untracked_failed_logins, 10);
    }

    #[test]
    fn the_detector_attributes_failed_recipients_to_the_sender() {
        use mailfuse_core::{Client, Delivery, DeliveryStatus, Event, Submission};
        let mut detector = crate::Detector::default();
        detector.collect_hourly();
        let sent = Timestamp(100 * HOUR_SECS + 10);
        detector.observe(
            &Event::Submission(Submission {
                at: sent,
                queue_id: b"q1",
                account: Some(b"Sales@Example.com"),
                client: Some(Client::Ip(ip("203.0.113.66"))),
                envelope_from: Some(b"sales@example.com"),
                recipient: Some(b"dead@far.example"),
                ..Submission::default()
            }),
            b"recv line",
        );
        // The bounce comes an hour later and names only the queue id.
        detector.observe(
            &Event::Delivery(Delivery {
                at: sent.plus(HOUR_SECS),
                queue_id: b"q1",
                recipient: b"dead@far.example",
                status: DeliveryStatus::Failed,
                dsn: Some(b"5.1.1"),
                detail: b"no such user",
                relay: None,
            }),
            b"sent line",
        );
        let hourly = detector.findings().hourly.unwrap();
        let account = &hourly.accounts[0];
        assert_eq!(account.account, "sales@example.com");
        let per_hour: Vec<(u64, u64, u64)> = account
            .hours
            .iter()
            .map(|h| (h.messages, h.recipients, h.failed_recipients))
            .collect();
        assert_eq!(per_hour, [(1, 1, 0), (0, 0, 1)]);
        assert!(crate::Detector::default().findings().hourly.is_none());
    }

    #[test]
    fn guesses_are_summed_per_network_too() {
        let mut hourly = HourlyCollector::default();
        hourly.on_failure(ip("198.51.100.7"), Timestamp(5), 3);
        hourly.on_failure(ip("198.51.100.9"), Timestamp(7), 1);
        hourly.on_failure(ip("198.51.100.9"), Timestamp(8), 0);
        let report = hourly.report(|_| String::new());
        assert_eq!(report.guessing_ips[0].source, ip("198.51.100.7"));
        assert_eq!(report.guessing_networks.len(), 1);
        assert_eq!(report.guessing_networks[0].failed_logins, 4);
        assert_eq!(
            report.guessing_networks[0].source.to_string(),
            "198.51.100.0/24"
        );
    }
}
