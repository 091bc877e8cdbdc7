//! The report's row of a packed account, read from its packed bytes
//! without unpacking it. At the end of a scan every account goes into the
//! report's table, and unpacking a provider's hundreds of thousands of idle
//! accounts whole built what the table never shows (their maps of known
//! IPs, the log lines kept as evidence, their windows) only to drop it:
//! most of the end of a scan. Here the fields the row shows are decoded and
//! the others stepped over by their MessagePack lengths (serde's
//! `IgnoredAny` still visits every value through rmp_serde: 7,200
//! instructions a provider's account, where decoding it whole took 9,000
//! and this takes 4,200).
//!
//! A packed account is a MessagePack array of [`Account`]'s fields in
//! their order (a [`Stream`] too), those added last missing from rows
//! written before them: the positions below are theirs. Bytes that do not
//! read so are unpacked whole instead, and a test reads full accounts both
//! ways.

use std::net::IpAddr;
use std::ops::RangeInclusive;

use mailfuse_core::Timestamp;
use rmp::Marker;
use rmp_serde::decode::ReadReader;
use serde::de::DeserializeOwned;

#[cfg(doc)]
use super::{Account, Stream};
use super::{Counts, Novelty};
use crate::summary::AccountSummary;
use crate::window::Peak;

/// [`Account`]'s fields: all of them, or the first up to its `detected_at`
/// (those after it are defaulted, added since).
const ACCOUNT_FIELDS: RangeInclusive<usize> = 17..=22;
/// [`Stream`]'s fields: all of them, or the first up to its `tripped_at`.
const STREAM_FIELDS: RangeInclusive<usize> = 18..=20;

/// The report's row of a packed account, read from its MessagePack
/// `plain` (within the `time::relative_to` it was packed with): `None` if
/// it does not read so, `Some(None)` if the account submitted nothing (it
/// has no row).
pub(super) fn row(plain: &[u8]) -> Option<Option<AccountSummary>> {
    let mut rest = Reader::new(plain);
    let fields = rest.array_len(ACCOUNT_FIELDS)?;
    let account: String = rest.value()?;
    rest.skip(2)?; // domain, from_domain
    let first_seen: Timestamp = rest.value()?;
    let last_seen: Timestamp = rest.value()?;
    rest.skip(2)?; // first_sent, woke_at
    let counts: Counts = rest.value()?;
    if counts.messages == 0 {
        return Some(None);
    }
    rest.skip(1)?; // hour
    let peak_per_minute: Peak = rest.value()?;
    let peak_per_hour: Peak = rest.value()?;
    let services: Vec<String> = rest.value()?;
    rest.skip(2)?; // known_ips, web_login
    let streams = rest.array_len(0..=usize::MAX)?;
    let mut sending_ips = Vec::with_capacity(streams);
    let mut new_ips = Vec::new();
    for _ in 0..streams {
        let stream_fields = rest.array_len(STREAM_FIELDS)?;
        let ip: IpAddr = rest.value()?;
        rest.skip(10)?; // first_seen … spam_hour
        let novelty: Novelty = rest.value()?;
        rest.skip(stream_fields - 12)?; // prior_failures …
        sending_ips.push(ip);
        if novelty.is_new() {
            new_ips.push(ip);
        }
    }
    rest.skip(1)?; // unattributed
    let detected_at: Option<Timestamp> = rest.value()?;
    rest.skip(fields - 17)?; // suspected_at …
    if !rest.is_empty() {
        return None;
    }
    Some(Some(AccountSummary {
        account,
        counts,
        sending_ips,
        new_ips,
        services,
        peak_per_minute,
        peak_per_hour,
        first_seen,
        last_seen,
        compromised: detected_at.is_some(),
    }))
}

/// MessagePack read a value at a time: decoded, or stepped over.
struct Reader<'a> {
    /// One for the whole row: its scratch space is reused.
    de: rmp_serde::Deserializer<ReadReader<&'a [u8]>>,
}

impl<'a> Reader<'a> {
    fn new(plain: &'a [u8]) -> Self {
        Reader {
            de: rmp_serde::Deserializer::new(plain),
        }
    }

    /// What is left to read.
    fn rest(&mut self) -> &mut &'a [u8] {
        self.de.get_mut()
    }

    fn is_empty(&mut self) -> bool {
        self.rest().is_empty()
    }

    /// The next value, decoded.
    fn value<T: DeserializeOwned>(&mut self) -> Option<T> {
        T::deserialize(&mut self.de).ok()
    }

    /// The length of the array that comes next, if it is one of a length
    /// within `expected`.
    fn array_len(&mut self, expected: RangeInclusive<usize>) -> Option<usize> {
        let len = usize::try_from(rmp::decode::read_array_len(self.rest()).ok()?).ok()?;
        expected.contains(&len).then_some(len)
    }

    /// Steps over the next `count` values (arrays and maps with what they
    /// hold), by their lengths alone: nothing in them is decoded.
    fn skip(&mut self, count: usize) -> Option<()> {
        let rest = self.rest();
        let mut values = count;
        while values > 0 {
            values -= 1;
            let (&marker, after) = rest.split_first()?;
            *rest = after;
            // Bytes of the value after its marker, and values it holds.
            let (bytes, held) = match Marker::from_u8(marker) {
                Marker::FixPos(_)
                | Marker::FixNeg(_)
                | Marker::Null
                | Marker::True
                | Marker::False => (0, 0),
                Marker::U8 | Marker::I8 => (1, 0),
                Marker::U16 | Marker::I16 => (2, 0),
                Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
                Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
                Marker::FixStr(len) => (usize::from(len), 0),
                Marker::Str8 | Marker::Bin8 => (length(rest, 1)?, 0),
                Marker::Str16 | Marker::Bin16 => (length(rest, 2)?, 0),
                Marker::Str32 | Marker::Bin32 => (length(rest, 4)?, 0),
                Marker::FixArray(len) => (0, usize::from(len)),
                Marker::Array16 => (0, length(rest, 2)?),
                Marker::Array32 => (0, length(rest, 4)?),
                Marker::FixMap(len) => (0, 2 * usize::from(len)),
                Marker::Map16 => (0, 2 * length(rest, 2)?),
                Marker::Map32 => (0, length(rest, 4)?.checked_mul(2)?),
                // An extension's type byte, then its data.
                Marker::FixExt1 => (2, 0),
                Marker::FixExt2 => (3, 0),
                Marker::FixExt4 => (5, 0),
                Marker::FixExt8 => (9, 0),
                Marker::FixExt16 => (17, 0),
                Marker::Ext8 => (length(rest, 1)? + 1, 0),
                Marker::Ext16 => (length(rest, 2)? + 1, 0),
                Marker::Ext32 => (length(rest, 4)?.checked_add(1)?, 0),
                Marker::Reserved => return None,
            };
            *rest = rest.get(bytes..)?;
            values = values.checked_add(held)?;
        }
        Some(())
    }
}

/// A big-endian length of `size` bytes, taken from the front of `rest`.
fn length(rest: &mut &[u8], size: usize) -> Option<usize> {
    let (be, after) = rest.split_at_checked(size)?;
    *rest = after;
    let len = be.iter().fold(0u64, |len, &b| len << 8 | u64::from(b));
    usize::try_from(len).ok()
}

#[cfg(test)]
mod tests {
    use mailfuse_core::time;

    use super::super::{Account, Stream, Tally};
    use super::*;
    use crate::summary;
    use crate::window::HourWindow;

    fn stream(ip: &str, novelty: Novelty, at: Timestamp) -> Stream {
        let mut hour = HourWindow::hour();
        hour.add(at, 3);
        Stream {
            ip: ip.parse().expect("an IP"),
            first_seen: at.plus(-600),
            last_seen: at,
            run: Some((at.plus(-600), Some(at))),
            suspect_since: Some(at),
            counts: Counts {
                messages: 3,
                ..Counts::default()
            },
            hour: hour.clone(),
            peak_hour: Peak { count: 3, at },
            peak_minute: Peak { count: 2, at },
            failures_hour: hour,
            spam_hour: Some((4, 9, at)),
            novelty,
            prior_failures: None,
            first_line: "Nov  2 07:10:00 mail postfix/smtpd[1]: client=x[192.0.2.1]".into(),
            example_failure: Some("refused".into()),
            example_foreign_from: None,
            foreign_tally: Tally::from([(Box::from(*b"elsewhere.example"), 2)]),
            tripped_at: Some(at),
            suspected_at: None,
            geo: None,
        }
    }

    /// An account with something in every field the row skips.
    fn account() -> Account {
        let at = Timestamp(1_700_000_000);
        let mut account = Account::new("j.novak@acme.example");
        account.domain = Some(Box::from(*b"acme.example"));
        account.first_seen = at.plus(-86_400);
        account.last_seen = at;
        account.first_sent = Some(at.plus(-3600));
        account.totals.messages = 6;
        account.totals.recipients = 9;
        account.hour.add(at, 6);
        account.peak_minute = Peak { count: 2, at };
        account.peak_hour = Peak { count: 6, at };
        account.services = vec!["SMTP".into(), "submission".into()];
        account
            .known_ips
            .insert("198.51.100.10".parse().expect("an IP"), at.plus(-86_400));
        account.web_login = Some(("203.0.113.5".parse().expect("an IP"), at));
        account.streams = vec![
            stream("198.51.100.10", Novelty::Usual, at),
            stream("2001:db8::7", Novelty::NewIp { account_since: at }, at),
        ];
        account.detected_at = Some(at);
        account.foreign_tally = Tally::from([(Box::from(*b"elsewhere.example"), 2)]);
        account
    }

    fn packed(account: &Account) -> Vec<u8> {
        time::relative_to(account.last_seen, || rmp_serde::to_vec(account)).expect("packs")
    }

    fn read(account: &Account, plain: &[u8]) -> Option<Option<AccountSummary>> {
        time::relative_to(account.last_seen, || row(plain))
    }

    #[test]
    fn a_packed_accounts_row_is_read_as_from_the_account() {
        let account = account();
        let expected = summary::row(&account);
        assert!(expected.as_ref().is_some_and(|row| row.new_ips.len() == 1));
        assert_eq!(read(&account, &packed(&account)), Some(expected));

        // Rows written before the last five fields were added (nil, nil,
        // an empty array, nil, nil): an array of 17.
        let mut older = account;
        older.foreign_tally = Tally::new();
        let now = packed(&older);
        assert_eq!(&now[..3], &[0xdc, 0, 22]);
        assert_eq!(&now[now.len() - 5..], &[0xc0, 0xc0, 0x90, 0xc0, 0xc0]);
        let mut before = vec![0xdc, 0, 17];
        before.extend(&now[3..now.len() - 5]);
        assert_eq!(read(&older, &before), Some(summary::row(&older)));

        // A layout it does not know (a field more) is not read: the
        // account is unpacked instead.
        let mut after = vec![0xdc, 0, 23];
        after.extend(&now[3..]);
        after.push(0xc0);
        assert_eq!(read(&older, &after), None);
        assert_eq!(read(&older, &now[..now.len() - 1]), None, "cut short");
    }
}
