//! Guessing that no single IP or network shows: the sum over many networks.
//!
//! Botnets spread their guesses so that each IP stays under the per-IP limit
//! and no /24 holds enough of them. Seen whole, three shapes stand out:
//! - a **campaign**: many IPs in many networks, several tries each, at
//!   whatever accounts;
//! - **credential stuffing**: many accounts and IPs, each account tried about
//!   once from each IP (a leaked list of addresses and passwords);
//! - **brute force** at one account from many IPs in many networks.
//!
//! Each is an episode: it begins with a stranger's failed login (an IP no
//! account ever logged in from), trips once its IPs span enough networks,
//! and ends after six quiet hours. One that has not tripped within a day
//! starts afresh, so a server's everyday trickle of guesses does not add up
//! into a campaign over weeks.

use std::net::IpAddr;

use mailfuse_core::net::Network;
use mailfuse_core::rows::{Rows, RowsOf, TrackedMap};
use mailfuse_core::{AuthFailure, AuthFailureKind, Timestamp};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use super::{Guesses, GuessingConfig, Success, MAX_IPS_KEPT};
use crate::distinct::DistinctCount;
use crate::incident::{evidence_line, GuessingPattern, Incident, IncidentKind};

/// An episode ends after this long without a failed login.
const QUIET_SECS: i64 = 6 * 3600;
/// An episode that did not trip within this long starts afresh.
const MAX_CANDIDATE_SECS: i64 = 24 * 3600;
/// Most accounts followed for brute force at once; failures at further
/// names are counted in [`Spreads::targets_not_followed`].
const MAX_TARGETS: usize = 50_000;
/// Failures per (IP, account) pair at or under which a campaign at many
/// accounts is credential stuffing.
const STUFFING_TRIES_PER_PAIR: f64 = 1.5;
/// Accounts a campaign must try to be credential stuffing.
const STUFFING_MIN_ACCOUNTS: u64 = 20;
/// Failures per IP at or under which many IPs at one account are brute
/// force: a phone with a stale password fails from each carrier IP it
/// holds for hours, over and over.
const BRUTE_FORCE_TRIES_PER_IP: u64 = 5;

/// The IPs and networks of one episode, and its failures.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Spread {
    first_seen: Timestamp,
    last_seen: Timestamp,
    failures: u64,
    ips: FxHashSet<IpAddr>,
    /// Distinct IPs: exact while they fit in `ips`, a lower bound after.
    ips_total: u64,
    ips_inexact: bool,
    networks: FxHashSet<Network>,
    first_line: String,
    tripped_at: Option<Timestamp>,
}

impl Spread {
    fn new(at: Timestamp, line: &[u8]) -> Self {
        Spread {
            first_seen: at,
            last_seen: at,
            failures: 0,
            ips: FxHashSet::default(),
            ips_total: 0,
            ips_inexact: false,
            networks: FxHashSet::default(),
            first_line: evidence_line(line),
            tripped_at: None,
        }
    }

    fn record(&mut self, ip: IpAddr, at: Timestamp, attempts: u32) {
        self.failures = self.failures.saturating_add(u64::from(attempts));
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
        if !self.ips.contains(&ip) {
            if self.ips.len() < MAX_IPS_KEPT {
                self.ips.insert(ip);
                self.ips_total += 1;
            } else {
                self.ips_inexact = true;
            }
        }
        if self.networks.len() < MAX_IPS_KEPT {
            self.networks.insert(Network::of(ip));
        }
    }

    /// Whether a failure at `at` belongs to a new episode.
    fn is_over(&self, at: Timestamp) -> bool {
        let quiet = at.as_secs() - self.last_seen.as_secs() > QUIET_SECS;
        let stale = self.tripped_at.is_none()
            && at.as_secs() - self.first_seen.as_secs() > MAX_CANDIDATE_SECS;
        quiet || stale
    }

    fn spans(&self, ips: u32, networks: u32) -> bool {
        self.ips_total >= u64::from(ips) && self.networks.len() >= networks as usize
    }

    /// "at least " when the IPs went past those kept.
    fn bound(&self) -> &'static str {
        if self.ips_inexact {
            "at least "
        } else {
            ""
        }
    }

    fn tries_per_ip(&self) -> f64 {
        self.failures as f64 / self.ips_total.max(1) as f64
    }

    /// The IPs kept, in order.
    fn sorted_ips(&self) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self.ips.iter().copied().collect();
        ips.sort();
        ips
    }

    /// The incident's common part: IPs, period, failures, first line.
    fn incident(&self, score: u32) -> Incident {
        Incident {
            ips: self.sorted_ips(),
            failed_logins: self.failures,
            score,
            evidence: vec![self.first_line.clone()],
            ..Incident::new(
                IncidentKind::PasswordGuessing,
                self.first_seen..=self.last_seen,
                self.tripped_at.unwrap_or(self.last_seen),
            )
        }
    }
}

/// Guessing at many accounts from many networks.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Campaign {
    spread: Spread,
    guesses: Guesses,
    /// The (IP, account) pairs tried, counted. (A state saved before the
    /// sketch held the pairs' hashes: its campaign counts afresh.)
    #[serde(default)]
    pairs: DistinctCount,
}

impl Campaign {
    fn new(at: Timestamp, line: &[u8]) -> Self {
        Campaign {
            spread: Spread::new(at, line),
            guesses: Guesses::new(at, line),
            pairs: DistinctCount::default(),
        }
    }

    fn record(&mut self, failure: &AuthFailure<'_>, ip: IpAddr, account: Option<&str>) {
        self.spread.record(ip, failure.at, failure.attempts);
        self.guesses.record(failure, account);
        if let Some(account) = account {
            self.pairs.insert(pair_hash(ip, account));
        }
    }

    /// A leaked list tried: many accounts, about one try per IP and account.
    fn is_stuffing(&self) -> bool {
        self.guesses.accounts_total >= STUFFING_MIN_ACCOUNTS
            && self.spread.failures as f64 <= STUFFING_TRIES_PER_PAIR * self.pairs.estimate()
    }

    fn incident(&self) -> Incident {
        let stuffing = self.is_stuffing();
        let spread = &self.spread;
        let mut incident = self.guesses.incident(if stuffing { 70 } else { 60 });
        let shape = if stuffing {
            format!(
                "credential stuffing: {} accounts tried about once each from {}{} IPs in {} networks (a leaked list of addresses and passwords)",
                self.guesses.accounts_total,
                spread.bound(),
                spread.ips_total,
                spread.networks.len(),
            )
        } else {
            format!(
                "a distributed guessing campaign: {}{} IPs in {} networks, {:.1} failed logins per IP, each staying under the per-IP limit",
                spread.bound(),
                spread.ips_total,
                spread.networks.len(),
                spread.tries_per_ip(),
            )
        };
        incident.reasons.insert(0, shape);
        Incident {
            pattern: Some(if stuffing {
                GuessingPattern::CredentialStuffing
            } else {
                GuessingPattern::Campaign
            }),
            ips: spread.sorted_ips(),
            ..incident
        }
    }
}

/// Where a live episode is.
#[derive(Debug, Serialize, Deserialize)]
enum Live<T> {
    /// Not tripped yet.
    Candidate(T),
    /// Tripped: its index in [`Spreads::reported`].
    Reported(usize),
}

/// A tripped episode.
#[derive(Debug, Serialize, Deserialize)]
enum Episode {
    Campaign(Box<Campaign>),
    BruteForce {
        account: Box<str>,
        spread: Spread,
        succeeded: Option<(IpAddr, Timestamp, Success)>,
    },
}

/// The episodes of guessing spread over many networks.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Spreads {
    campaign: Option<Live<Campaign>>,
    /// Per account (lower-case), failed logins at it from strangers.
    targets: TrackedMap<Box<str>, Live<Spread>>,
    /// Failed logins at accounts past [`MAX_TARGETS`], not followed.
    targets_not_followed: u64,
    reported: Vec<Episode>,
}

impl Spreads {
    /// The tracked collections, for saving and loading rows.
    pub(super) fn rows(&mut self) -> RowsOf<'_> {
        vec![("guessing_targets", &mut self.targets as &mut dyn Rows)]
    }

    /// Counts a stranger's failed login from `ip` at `account` (lower-case,
    /// if named). Returns the index of an episode it made trip.
    pub(super) fn on_failure(
        &mut self,
        config: &GuessingConfig,
        failure: &AuthFailure<'_>,
        ip: IpAddr,
        account: Option<&str>,
        line: &[u8],
    ) -> Vec<usize> {
        let mut tripped = Vec::new();
        tripped.extend(self.count_for_campaign(config, failure, ip, account, line));
        let at_account = account.filter(|_| failure.kind != AuthFailureKind::UnknownUser);
        if let Some(account) = at_account {
            tripped.extend(self.count_for_target(config, failure, ip, account, line));
        }
        tripped
    }

    fn count_for_campaign(
        &mut self,
        config: &GuessingConfig,
        failure: &AuthFailure<'_>,
        ip: IpAddr,
        account: Option<&str>,
        line: &[u8],
    ) -> Option<usize> {
        let at = failure.at;
        let live = self
            .campaign
            .get_or_insert_with(|| Live::Candidate(Campaign::new(at, line)));
        let campaign = match live {
            Live::Candidate(campaign) => Some(campaign),
            Live::Reported(i) => match self.reported.get_mut(*i) {
                Some(Episode::Campaign(campaign)) => Some(&mut **campaign),
                _ => None,
            },
        };
        let Some(campaign) = campaign.filter(|c| !c.spread.is_over(at)) else {
            *live = Live::Candidate(Campaign::new(at, line));
            return self.count_for_campaign(config, failure, ip, account, line);
        };
        campaign.record(failure, ip, account);
        let Live::Candidate(candidate) = live else {
            return None;
        };
        if !candidate
            .spread
            .spans(config.campaign_min_ips, config.campaign_min_networks)
        {
            return None;
        }
        let Some(Live::Candidate(mut campaign)) = self.campaign.take() else {
            return None;
        };
        campaign.spread.tripped_at = Some(at);
        self.reported.push(Episode::Campaign(Box::new(campaign)));
        let index = self.reported.len() - 1;
        self.campaign = Some(Live::Reported(index));
        Some(index)
    }

    fn count_for_target(
        &mut self,
        config: &GuessingConfig,
        failure: &AuthFailure<'_>,
        ip: IpAddr,
        account: &str,
        line: &[u8],
    ) -> Option<usize> {
        let at = failure.at;
        if !self.targets.contains_key(account) {
            if self.targets.len() >= MAX_TARGETS {
                self.targets_not_followed = self
                    .targets_not_followed
                    .saturating_add(u64::from(failure.attempts));
                return None;
            }
            self.targets
                .insert(account.into(), Live::Candidate(Spread::new(at, line)));
        }
        let live = self.targets.get_mut(account)?;
        let spread = match live {
            Live::Candidate(spread) => Some(spread),
            Live::Reported(i) => match self.reported.get_mut(*i) {
                Some(Episode::BruteForce { spread, .. }) => Some(spread),
                _ => None,
            },
        };
        let Some(spread) = spread.filter(|s| !s.is_over(at)) else {
            *live = Live::Candidate(Spread::new(at, line));
            return self.count_for_target(config, failure, ip, account, line);
        };
        spread.record(ip, at, failure.attempts);
        let Live::Candidate(candidate) = live else {
            return None;
        };
        let trips = candidate.spans(config.account_min_ips, config.account_min_networks)
            && candidate.failures <= BRUTE_FORCE_TRIES_PER_IP * candidate.ips_total;
        if !trips {
            return None;
        }
        let mut spread = std::mem::replace(candidate, Spread::new(at, line));
        spread.tripped_at = Some(at);
        self.reported.push(Episode::BruteForce {
            account: account.into(),
            spread,
            succeeded: None,
        });
        let index = self.reported.len() - 1;
        self.targets.insert(account.into(), Live::Reported(index));
        Some(index)
    }

    /// Notes that `account` logged in or sent from `ip`; `guessed_there`
    /// says whether `ip`'s own failures may have been guesses at it.
    pub(super) fn on_success(
        &mut self,
        ip: IpAddr,
        account: &str,
        at: Timestamp,
        how: Success,
        guessed_there: bool,
    ) {
        for episode in &mut self.reported {
            match episode {
                Episode::Campaign(campaign) => {
                    let g = &mut campaign.guesses;
                    if guessed_there
                        && campaign.spread.ips.contains(&ip)
                        && g.succeeded_as.len() < 16
                        && !g.succeeded_as.iter().any(|(a, _, _)| a == account)
                    {
                        g.succeeded_as.push((account.to_string(), at, how));
                    }
                }
                Episode::BruteForce {
                    account: target,
                    spread,
                    succeeded,
                } => {
                    if **target == *account && spread.ips.contains(&ip) && succeeded.is_none() {
                        *succeeded = Some((ip, at, how));
                    }
                }
            }
        }
    }

    /// The incident of the episode at `index`.
    pub(super) fn incident(&self, index: usize) -> Option<Incident> {
        Some(match self.reported.get(index)? {
            Episode::Campaign(campaign) => campaign.incident(),
            Episode::BruteForce {
                account,
                spread,
                succeeded,
            } => {
                let mut incident = spread.incident(70);
                incident.reasons.push(format!(
                    "brute force at {account}: {} failed logins from {}{} IPs in {} networks between {} and {}, {:.1} per IP",
                    spread.failures,
                    spread.bound(),
                    spread.ips_total,
                    spread.networks.len(),
                    spread.first_seen,
                    spread.last_seen,
                    spread.tries_per_ip(),
                ));
                if let Some((ip, at, how)) = succeeded {
                    incident.reasons.push(format!(
                        "the guess succeeded: at {at} {ip} {how} as {account}"
                    ));
                    incident.succeeded_as = vec![account.to_string()];
                    incident.score = 100;
                }
                Incident {
                    account: Some(account.to_string()),
                    accounts_tried: vec![account.to_string()],
                    accounts_tried_total: 1,
                    pattern: Some(GuessingPattern::BruteForce),
                    ..incident
                }
            }
        })
    }
}

/// The hash a campaign keeps an (IP, account) pair as.
fn pair_hash(ip: IpAddr, account: &str) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    std::hash::Hash::hash(&(ip, account), &mut hasher);
    std::hash::Hasher::finish(&hasher)
}
