//! The report's account table: one row per account that submitted mail,
//! whether or not anything about it is suspect (the admin's overview).

use std::net::IpAddr;
use std::ops::Deref;

use mailfuse_core::Timestamp;
use serde::ser::SerializeStruct;
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
    #[serde(serialize_with = "peak")]
    pub peak_per_minute: Peak,
    /// The most messages it submitted within a sliding hour (sixty
    /// one-minute buckets), and the line's time that reached it.
    #[serde(serialize_with = "peak")]
    pub peak_per_hour: Peak,
    /// Time of the first line naming the account as a login (a successful
    /// login or an authenticated submission), in UTC seconds.
    #[serde(serialize_with = "rfc_3339")]
    pub first_seen: Timestamp,
    /// Time of its latest successful login or submitted message, in UTC
    /// seconds.
    #[serde(serialize_with = "rfc_3339")]
    pub last_seen: Timestamp,
    /// A `compromised_account` incident tripped for it (at least one of its
    /// sending-IP streams crossed the score threshold).
    pub compromised: bool,
}

/// A row's time as [`Timestamp`]'s own `Serialize` writes it, which for
/// text formats goes through `Display`: `collect_str` then runs the
/// formatting machinery and escapes each of its dozen pieces, some 800
/// instructions a time, and a row has four. Written here into a stack buffer
/// instead (years 0 to 9999; any other year, and binary formats, as
/// `Timestamp` writes them).
struct Rfc3339(Timestamp);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (year, month, day, hour, minute, second) = self.0.to_civil();
        let year = u16::try_from(year).ok().filter(|year| *year <= 9999);
        let Some(year) = year.filter(|_| serializer.is_human_readable()) else {
            return self.0.serialize(serializer);
        };
        let mut text = *b"0000-00-00T00:00:00Z";
        let [y0, y1, y2, y3, _, mo0, mo1, _, d0, d1, _, h0, h1, _, mi0, mi1, _, s0, s1, _] =
            &mut text;
        [*y0, *y1] = two_digits(year / 100);
        [*y2, *y3] = two_digits(year % 100);
        [*mo0, *mo1] = two_digits(month.into());
        [*d0, *d1] = two_digits(day.into());
        [*h0, *h1] = two_digits(hour.into());
        [*mi0, *mi1] = two_digits(minute.into());
        [*s0, *s1] = two_digits(second.into());
        match std::str::from_utf8(&text) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => self.0.serialize(serializer),
        }
    }
}

/// The last two decimal digits of `n`.
fn two_digits(n: u16) -> [u8; 2] {
    // Both are below 10: the casts are lossless.
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

/// A row's time, by [`Rfc3339`].
fn rfc_3339<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    Rfc3339(*at).serialize(serializer)
}

/// A row's [`Peak`] as its derived `Serialize` writes it, its time by
/// [`Rfc3339`].
fn peak<S: Serializer>(peak: &Peak, serializer: S) -> Result<S::Ok, S::Error> {
    let mut fields = serializer.serialize_struct("Peak", 2)?;
    fields.serialize_field("count", &peak.count)?;
    fields.serialize_field("at", &Rfc3339(peak.at))?;
    fields.end()
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

    /// A row as the derived `Serialize` of its parts writes it: what the
    /// row's own times and peaks must not change.
    #[derive(Serialize)]
    struct Derived<'a> {
        account: &'a str,
        #[serde(flatten)]
        counts: Counts,
        sending_ips: &'a [IpAddr],
        new_ips: &'a [IpAddr],
        services: &'a [String],
        peak_per_minute: Peak,
        peak_per_hour: Peak,
        first_seen: Timestamp,
        last_seen: Timestamp,
        compromised: bool,
    }

    impl<'a> From<&'a AccountSummary> for Derived<'a> {
        fn from(row: &'a AccountSummary) -> Self {
            Derived {
                account: &row.account,
                counts: row.counts,
                sending_ips: &row.sending_ips,
                new_ips: &row.new_ips,
                services: &row.services,
                peak_per_minute: row.peak_per_minute,
                peak_per_hour: row.peak_per_hour,
                first_seen: row.first_seen,
                last_seen: row.last_seen,
                compromised: row.compromised,
            }
        }
    }

    #[test]
    fn rows_are_written_as_their_parts_write_themselves() {
        // xorshift64: times all over the calendar, and around years 0 and
        // 9999 where the stack buffer gives way to `Timestamp`'s own form.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let year_0 = -62_167_219_200_i64;
        let year_10000 = 253_402_300_800_i64;
        let mut times = vec![
            i64::MIN,
            i64::MAX,
            0,
            -1,
            year_0 - 1,
            year_0,
            year_10000 - 1,
            year_10000,
        ];
        for _ in 0..20_000 {
            let r = next();
            times.push(match r % 4 {
                0 => r as i64,
                1 => (r >> 8) as i64 % 4_000_000_000,
                2 => year_0 + (r >> 8) as i64 % 200_000_000 - 100_000_000,
                _ => year_10000 + (r >> 8) as i64 % 200_000_000 - 100_000_000,
            });
        }
        for pair in times.chunks(2) {
            let mut row = summary("a", 3);
            row.first_seen = Timestamp(pair[0]);
            row.last_seen = Timestamp(pair[pair.len() - 1]);
            row.peak_per_minute.at = Timestamp(pair[0].wrapping_add(60));
            row.peak_per_hour = Peak {
                count: 7,
                at: Timestamp(pair[pair.len() - 1] / 3),
            };
            for human_readable in [true, false] {
                let (ours, derived) = if human_readable {
                    (
                        serde_json::to_vec_pretty(&row).unwrap(),
                        serde_json::to_vec_pretty(&Derived::from(&row)).unwrap(),
                    )
                } else {
                    (
                        rmp_serde::to_vec_named(&row).unwrap(),
                        rmp_serde::to_vec_named(&Derived::from(&row)).unwrap(),
                    )
                };
                assert_eq!(ours, derived, "{pair:?}");
            }
        }
    }
}
