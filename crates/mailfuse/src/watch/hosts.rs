//! Which mail servers logged each account and IP lately, so that an
//! incident of a watch receiving several servers' syslog names where its
//! mail and logins were seen. The detectors are global (an account is one
//! account on every server); only the naming is per host.

use std::collections::HashMap;
use std::net::IpAddr;

use mailfuse_core::{Event, Timestamp};
use mailfuse_detect::Incident;

/// Hosts kept per account or IP (the most recently seen).
const PER_KEY: usize = 8;
/// Accounts, and IPs, kept at most: past it a new one is not noted (its
/// incidents then name no host) until idle ones are forgotten.
const MAX_KEYS: usize = 200_000;
/// Entries not seen for this long are forgotten.
const KEEP_SECS: i64 = 86_400;

/// The hosts of one account or IP, with when each saw it last.
type Seen = Vec<(u32, Timestamp)>;

/// Hosts by account (in lower case) and by client IP.
#[derive(Debug, Default)]
pub struct HostsSeen {
    accounts: HashMap<Box<[u8]>, Seen>,
    ips: HashMap<IpAddr, Seen>,
    newest: Timestamp,
}

impl HostsSeen {
    /// Notes the account and client IP of `event`, logged by `host`.
    pub fn note(&mut self, host: u32, event: &Event<'_>) {
        let (account, ip) = match event {
            Event::Submission(s) => (s.account, s.client.and_then(|c| c.ip())),
            Event::AuthSuccess(s) => (Some(s.account), s.client.ip()),
            Event::AuthFailure(f) => (f.account, f.client.ip()),
            Event::ServerBlock(b) => (None, b.client.ip()),
            Event::Delivery(_) | Event::Removed(_) => return,
        };
        let at = event.at();
        self.newest = self.newest.max(at);
        if let Some(account) = account {
            // Incidents name accounts in lower case, as the detectors key them.
            let lower;
            let account = if account.iter().any(u8::is_ascii_uppercase) {
                lower = account.to_ascii_lowercase();
                &lower[..]
            } else {
                account
            };
            let room = self.accounts.len() < MAX_KEYS;
            match self.accounts.get_mut(account) {
                Some(seen) => mark(seen, host, at),
                None if room => {
                    self.accounts.insert(account.into(), vec![(host, at)]);
                }
                None => {}
            }
        }
        if let Some(ip) = ip {
            let room = self.ips.len() < MAX_KEYS;
            match self.ips.get_mut(&ip) {
                Some(seen) => mark(seen, host, at),
                None if room => {
                    self.ips.insert(ip, vec![(host, at)]);
                }
                None => {}
            }
        }
    }

    /// The hosts that logged `incident`'s account or IPs.
    pub fn of(&self, incident: &Incident) -> Vec<u32> {
        let by_account = incident
            .account
            .as_deref()
            .and_then(|account| self.accounts.get(account.as_bytes()));
        let by_ip = incident.ips.iter().filter_map(|ip| self.ips.get(ip));
        let mut hosts: Vec<u32> = by_account
            .into_iter()
            .chain(by_ip)
            .flatten()
            .map(|&(host, _)| host)
            .collect();
        hosts.sort_unstable();
        hosts.dedup();
        hosts
    }

    /// Forgets what no line named for a day (by the logs' clock).
    pub fn forget_idle(&mut self) {
        let since = self.newest.plus(-KEEP_SECS);
        let fresh = |seen: &mut Seen| {
            seen.retain(|&(_, at)| at >= since);
            !seen.is_empty()
        };
        self.accounts.retain(|_, seen| fresh(seen));
        self.ips.retain(|_, seen| fresh(seen));
    }
}

/// Notes `host` in `seen` at `at`, making room by forgetting the host seen
/// longest ago.
fn mark(seen: &mut Seen, host: u32, at: Timestamp) {
    if let Some(entry) = seen.iter_mut().find(|(h, _)| *h == host) {
        entry.1 = entry.1.max(at);
        return;
    }
    if seen.len() >= PER_KEY {
        if let Some(oldest) = (0..seen.len()).min_by_key(|&i| seen.get(i).map(|e| e.1)) {
            seen.swap_remove(oldest);
        }
    }
    seen.push((host, at));
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailfuse_core::{AuthFailure, AuthFailureKind, Client};
    use mailfuse_detect::IncidentKind;

    fn failure(account: &[u8], ip: &str, at: i64) -> AuthFailure<'static> {
        AuthFailure {
            at: Timestamp(at),
            client: Client::Ip(ip.parse().unwrap()),
            account: Some(account.to_vec().leak()),
            service: b"IMAP",
            kind: AuthFailureKind::BadPassword,
            attempts: 1,
        }
    }

    #[test]
    fn an_incident_names_the_hosts_of_its_account_and_ips() {
        let mut seen = HostsSeen::default();
        seen.note(1, &Event::AuthFailure(failure(b"A@x", "192.0.2.1", 10)));
        seen.note(2, &Event::AuthFailure(failure(b"b@x", "192.0.2.2", 20)));
        seen.note(3, &Event::AuthFailure(failure(b"a@x", "192.0.2.3", 30)));
        let mut incident = Incident::new(
            IncidentKind::CompromisedAccount,
            Timestamp(0)..=Timestamp(30),
            Timestamp(30),
        );
        incident.account = Some("a@x".into());
        assert_eq!(seen.of(&incident), [1, 3]);
        incident.ips = vec!["192.0.2.2".parse().unwrap()];
        assert_eq!(seen.of(&incident), [1, 2, 3]);

        seen.note(2, &Event::AuthFailure(failure(b"c@x", "192.0.2.9", 86_425)));
        seen.forget_idle();
        assert_eq!(
            seen.of(&incident),
            [3],
            "what was not seen for a day is gone"
        );
    }

    #[test]
    fn a_key_keeps_its_most_recent_hosts() {
        let mut seen = Seen::new();
        for host in 0..20 {
            mark(&mut seen, host, Timestamp(i64::from(host)));
        }
        mark(&mut seen, 13, Timestamp(100));
        let mut hosts: Vec<u32> = seen.iter().map(|&(h, _)| h).collect();
        hosts.sort_unstable();
        assert_eq!(hosts, (12..20).collect::<Vec<_>>());
    }
}
