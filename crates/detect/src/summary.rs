//! The report's account table: one row per account that submitted mail,
//! whether or not anything about it is suspect (the admin's overview).

use std::net::IpAddr;
use std::ops::Deref;

use mailfuse_core::Timestamp;
use serde::Serialize;

use crate::compromise::{Account, Counts};
use crate::window::Peak;

/// The per-account row of a report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountSummary {
    /// The account's login, lower-cased (logins are matched
    /// case-insensitively).
    pub account: String,
    /// Everything the account submitted over the run, from every IP
    /// (its fields flattened into the row's JSON).
    #[serde(flatten)]
    pub counts: Counts,
    /// Distinct sending IPs (0.0.0.0 = webmail with no login to match).
    pub sending_ips: Vec<IpAddr>,
    /// Sending IPs that were new for the account when they first sent.
    pub new_ips: Vec<IpAddr>,
    /// Services the account submitted mail through, as the log names them
    /// (`SMTP`, `HTTP/WebMail`, Postfix's `submission`…; at most 8).
    pub services: Vec<String>,
    /// The most messages it submitted within one clock minute (UTC), and
    /// the line's time that reached it.
    pub peak_per_minute: Peak,
    /// The most messages it submitted within a sliding hour (sixty
    /// one-minute buckets), and the line's time that reached it.
    pub peak_per_hour: Peak,
    /// Time of the first line naming the account as a login (a successful
    /// login or an authenticated submission), in UTC seconds.
    pub first_seen: Timestamp,
    /// Time of its latest successful login or submitted message, in UTC
    /// seconds.
    pub last_seen: Timestamp,
    /// A `compromised_account` incident tripped for it (at least one of its
    /// sending-IP streams crossed the score threshold).
    pub compromised: bool,
}

/// One row per account of `accounts` that submitted mail, busiest first.
pub(crate) fn rows<A: Deref<Target = Account>>(
    accounts: impl Iterator<Item = A>,
) -> Vec<AccountSummary> {
    let mut rows: Vec<AccountSummary> = accounts
        .filter(|a| a.totals.messages > 0)
        .map(|a| AccountSummary {
            account: a.name.clone(),
            counts: a.totals,
            sending_ips: a.sending_ips(),
            new_ips: a.new_ips(),
            services: a.services.clone(),
            peak_per_minute: a.peak_minute,
            peak_per_hour: a.peak_hour,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            compromised: a.detected_at.is_some(),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.counts
            .messages
            .cmp(&a.counts.messages)
            .then_with(|| a.account.cmp(&b.account))
    });
    rows
}
