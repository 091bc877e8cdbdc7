//! The report's account table: one row per account that submitted mail,
//! whether or not anything about it is suspect (the admin's overview).

use std::net::IpAddr;
use std::ops::Deref;

use mailfuse_core::Timestamp;
use serde::{Serialize, Serializer};

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

/// The report's account table: one row per account that submitted mail,
/// busiest first (most messages, then by name).
///
/// A provider's hundreds of thousands of rows are held encoded (the name,
/// then the rest in MessagePack: about 150 bytes a row instead of 400 in
/// structs, vectors and strings) and decoded one at a time as the report is
/// written, so that the table does not double the memory of a scan's end.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountRows {
    rows: Vec<EncodedRow>,
}

#[derive(Clone, Debug, PartialEq)]
struct EncodedRow {
    messages: u64,
    account: Box<str>,
    /// [`RowRest`] in MessagePack.
    rest: Box<[u8]>,
}

/// A row but its name, in the order it is encoded.
type RowRest = (
    Counts,
    Vec<IpAddr>,
    Vec<IpAddr>,
    Vec<String>,
    Peak,
    Peak,
    i64,
    i64,
    bool,
);

impl EncodedRow {
    fn new(row: AccountSummary) -> Self {
        let rest: RowRest = (
            row.counts,
            row.sending_ips,
            row.new_ips,
            row.services,
            row.peak_per_minute,
            row.peak_per_hour,
            row.first_seen.0,
            row.last_seen.0,
            row.compromised,
        );
        EncodedRow {
            messages: row.counts.messages,
            account: row.account.into_boxed_str(),
            // Encoding plain values into memory cannot fail; were it to,
            // the row would read back as its name and message count.
            rest: rmp_serde::to_vec(&rest)
                .unwrap_or_default()
                .into_boxed_slice(),
        }
    }

    fn decode(&self) -> AccountSummary {
        let (
            counts,
            sending_ips,
            new_ips,
            services,
            peak_per_minute,
            peak_per_hour,
            first_seen,
            last_seen,
            compromised,
        ): RowRest = rmp_serde::from_slice(&self.rest).unwrap_or_else(|_| {
            let mut rest = RowRest::default();
            rest.0.messages = self.messages;
            rest
        });
        AccountSummary {
            account: self.account.to_string(),
            counts,
            sending_ips,
            new_ips,
            services,
            peak_per_minute,
            peak_per_hour,
            first_seen: Timestamp(first_seen),
            last_seen: Timestamp(last_seen),
            compromised,
        }
    }
}

impl AccountRows {
    /// How many accounts sent mail.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no account sent mail.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, busiest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = AccountSummary> + '_ {
        self.rows.iter().map(EncodedRow::decode)
    }

    /// The `index`th row, busiest first.
    pub fn get(&self, index: usize) -> Option<AccountSummary> {
        self.rows.get(index).map(EncodedRow::decode)
    }

    /// The accounts' names, busiest first (no row decoded).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.rows.iter().map(|row| &*row.account)
    }

    /// The row of `account` (lower-case), if it sent mail.
    pub fn find(&self, account: &str) -> Option<AccountSummary> {
        self.rows
            .iter()
            .find(|row| &*row.account == account)
            .map(EncodedRow::decode)
    }
}

impl FromIterator<AccountSummary> for AccountRows {
    fn from_iter<I: IntoIterator<Item = AccountSummary>>(rows: I) -> Self {
        let mut rows: Vec<EncodedRow> = rows.into_iter().map(EncodedRow::new).collect();
        rows.shrink_to_fit();
        rows.sort_unstable_by(|a, b| {
            b.messages
                .cmp(&a.messages)
                .then_with(|| a.account.cmp(&b.account))
        });
        AccountRows { rows }
    }
}

/// A JSON array of the rows, each decoded as it is written.
impl Serialize for AccountRows {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// One row per account of `accounts` that submitted mail, busiest first.
pub(crate) fn rows<A: Deref<Target = Account>>(accounts: impl Iterator<Item = A>) -> AccountRows {
    accounts.filter_map(|a| row(&a)).collect()
}

/// The row of `a`, if it submitted mail.
pub(crate) fn row(a: &Account) -> Option<AccountSummary> {
    (a.totals.messages > 0).then(|| AccountSummary {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(account: &str, messages: u64) -> AccountSummary {
        AccountSummary {
            account: account.to_string(),
            counts: Counts {
                messages,
                recipients: messages * 3,
                ..Counts::default()
            },
            sending_ips: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            new_ips: vec!["2001:db8::1".parse().unwrap()],
            services: vec!["SMTP".to_string(), "\u{1b}[31mweb\u{2028}".to_string()],
            peak_per_minute: Peak {
                count: 2,
                at: Timestamp(1_700_000_000),
            },
            peak_per_hour: Peak::default(),
            first_seen: Timestamp(-5),
            last_seen: Timestamp(i64::MAX),
            compromised: messages > 5,
        }
    }

    #[test]
    fn rows_read_back_as_written_busiest_first_then_by_name() {
        let written = [summary("b", 2), summary("c", 9), summary("a", 2)];
        let rows: AccountRows = written.iter().cloned().collect();
        let read: Vec<AccountSummary> = rows.iter().collect();
        assert_eq!(
            read,
            [written[1].clone(), written[2].clone(), written[0].clone()]
        );
        assert_eq!(rows.names().collect::<Vec<_>>(), ["c", "a", "b"]);
        assert_eq!(rows.find("b"), Some(written[0].clone()));
        assert_eq!(rows.get(3), None);
        // Serialised as the rows themselves would be.
        assert_eq!(
            rmp_serde::to_vec_named(&rows).unwrap(),
            rmp_serde::to_vec_named(&read).unwrap()
        );
    }
}
