//! Kerio Connect logs: `mail.log`, `security.log` and `audit.log`.
//!
//! A line is `[DD/Mon/YYYY HH:MM:SS] body`, in the server's local wall-clock
//! time with no offset; or, exported through syslog, an RFC 5424 header (which
//! carries its own offset) followed by the same body. One parser reads all
//! three files, since the body says what kind of line it is:
//!
//! - mail.log (module `mail`): `Recv:` → [`Submission`], `Sent:` → [`Delivery`];
//! - security.log (module `security`): failed logins → [`AuthFailure`], refused
//!   clients → [`ServerBlock`];
//! - audit.log (module `audit`): successful logins → [`AuthSuccess`].
//!
//! Everything is read from bytes in place: Kerio on Windows writes ANSI code
//! pages, and much of a line (addresses, Subject, login names) is chosen by
//! whoever sent the mail or tried the login, so no part is trusted to be
//! UTF-8, well formed, or free of text that imitates Kerio's own.
//!
//! [`Submission`]: mailfuse_core::Submission
//! [`Delivery`]: mailfuse_core::Delivery
//! [`AuthFailure`]: mailfuse_core::AuthFailure
//! [`ServerBlock`]: mailfuse_core::ServerBlock
//! [`AuthSuccess`]: mailfuse_core::AuthSuccess

mod audit;
mod fields;
mod mail;
mod security;
mod tokens;

use mailfuse_core::time::{month_from_abbrev, parse_digits};
use mailfuse_core::Timestamp;

use crate::{syslog5424, zone, Detail, LineParser, LocalZone, Parsed, Reading};

/// Length of `DD/Mon/YYYY HH:MM:SS`, the text between a line's brackets.
const WALL_CLOCK_LEN: usize = 20;

/// The bracketed local time at the start of a line, as written.
type WallClock = [u8; WALL_CLOCK_LEN];

/// Whether `line` looks like a Kerio log line: `[DD/Mon/YYYY HH:MM:SS] ` with
/// a real date, or an RFC 5424 syslog line whose message is a body this
/// parser knows. Cheap: a few dozen byte comparisons for bracket lines.
pub fn recognizes(line: &[u8]) -> bool {
    let line = without_cr(line);
    if let Some((wall_clock, _)) = bracketed(line) {
        return parse_wall_clock(wall_clock).is_some();
    }
    syslog5424::parse(line).is_some_and(|message| {
        !matches!(
            parse_body(Timestamp::default(), message.text, Detail::Detection),
            Parsed::Unknown
        )
    })
}

/// The server's UTC offset in seconds east, derived from a `Recv:` line;
/// `None` for any other line.
///
/// The first 8 hex digits of a Queue-ID are the UTC time the message entered
/// the queue, and Kerio logs `Recv:` at that moment in local time, so their
/// difference is the offset (see [`zone::derived_offset`]).
/// Only bracket lines need this: an RFC 5424 line carries its own offset.
///
/// `[11/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8b47-00000009, …` → `25200`.
pub fn derive_offset(line: &[u8]) -> Option<i32> {
    let (wall_clock, body) = bracketed(without_cr(line))?;
    let queue_id = mail::submission_queue_id(body.strip_prefix(b"Recv: ")?)?;
    let queued = queue_id_instant(queue_id)?;
    let logged = parse_wall_clock(wall_clock)?;
    zone::derived_offset(logged, queued)
}

/// Parses Kerio lines, converting their local times with a [`LocalZone`].
pub struct KerioParser {
    zone: LocalZone,
    /// How much of a line is read.
    detail: Detail,
    /// The last wall clock converted, and its UTC instant: consecutive lines
    /// mostly share their second, and comparing 20 bytes is far cheaper than
    /// reading the date and asking a named zone for its offset.
    last_conversion: Option<(WallClock, Timestamp)>,
    /// The last date read (`DD/Mon/YYYY`) and its midnight as UTC wall
    /// clock: when the second changes the day mostly does not, and reading
    /// only the time spares most of [`parse_wall_clock`].
    last_date: Option<(Date, Timestamp)>,
}

/// Length of `DD/Mon/YYYY`, the date at the start of a [`WallClock`].
const DATE_LEN: usize = 11;

/// The date of a [`WallClock`], as written.
type Date = [u8; DATE_LEN];

impl KerioParser {
    /// A parser reading bracket timestamps as wall-clock time in `zone`.
    pub fn new(zone: LocalZone) -> Self {
        KerioParser {
            zone,
            detail: Detail::default(),
            last_conversion: None,
            last_date: None,
        }
    }

    /// The same parser, reading lines to `detail`.
    pub fn reading(self, detail: Detail) -> Self {
        KerioParser { detail, ..self }
    }

    /// The UTC instant of a bracket timestamp; `None` if it is no real date.
    fn utc_instant(&mut self, wall_clock: &WallClock) -> Option<Timestamp> {
        if let Some((last, at)) = &self.last_conversion {
            if last == wall_clock {
                return Some(*at);
            }
        }
        let local = self.read_wall_clock(wall_clock)?;
        let at = self.zone.to_utc(local);
        self.last_conversion = Some((*wall_clock, at));
        Some(at)
    }

    /// [`parse_wall_clock`], the date read once for all the lines of a day.
    fn read_wall_clock(&mut self, wall_clock: &WallClock) -> Option<Timestamp> {
        let (date, time) = wall_clock.split_first_chunk::<DATE_LEN>()?;
        let midnight = match self.last_date {
            Some((last, midnight)) if last == *date => midnight,
            _ => {
                let mut at_midnight = *b"DD/Mon/YYYY 00:00:00";
                at_midnight.get_mut(..DATE_LEN)?.copy_from_slice(date);
                let midnight = parse_wall_clock(&at_midnight)?;
                self.last_date = Some((*date, midnight));
                midnight
            }
        };
        Some(midnight.plus(seconds_of_day(time)?))
    }

    /// Reads the timestamp (bracket or RFC 5424) and finds the body.
    fn envelope<'a>(&mut self, line: &'a [u8]) -> Envelope<'a> {
        if let Some((wall_clock, body)) = bracketed(line) {
            return match self.utc_instant(wall_clock) {
                Some(at) => Envelope::Kerio { at, body },
                None => Envelope::BadTime("invalid timestamp"),
            };
        }
        match syslog5424::parse(line) {
            Some(syslog5424::Message { at: Some(at), text }) => Envelope::Kerio { at, body: text },
            Some(_) => Envelope::BadTime("syslog header without a valid timestamp"),
            None => Envelope::Foreign,
        }
    }
}

/// What a line's timestamp part says before its body is read.
enum Envelope<'a> {
    Kerio {
        at: Timestamp,
        body: &'a [u8],
    },
    /// Kerio-shaped, but the time cannot be read: the reason.
    BadTime(&'static str),
    /// Neither a bracket nor an RFC 5424 line.
    Foreign,
}

impl LineParser for KerioParser {
    fn timestamp(&mut self, line: &[u8]) -> Option<Timestamp> {
        let line = without_cr(line);
        match bracketed(line) {
            Some((wall_clock, _)) => self.utc_instant(wall_clock),
            None => syslog5424::timestamp(line),
        }
    }

    fn read<'a>(&mut self, line: &'a [u8]) -> Reading<'a> {
        match self.envelope(without_cr(line)) {
            Envelope::Kerio { at, body } => {
                Reading::settled(parse_body(at, body, self.detail), Some(at))
            }
            Envelope::BadTime(reason) => {
                Reading::settled(Parsed::Malformed(reason), self.timestamp(line))
            }
            Envelope::Foreign => Reading::settled(Parsed::Unknown, self.timestamp(line)),
        }
    }
}

/// What a line's body says, whichever of the three logs it comes from.
///
/// Security lines are tried before audit lines on purpose: a failed login
/// names the login the client typed, which may be shaped like a success
/// (`User a authenticated from IP address … doesn't exist. Attempt from …`);
/// [`security`] reads such lines from their fixed end and claims them first.
fn parse_body(at: Timestamp, body: &[u8], detail: Detail) -> Parsed<'_> {
    if let Some(fields) = body.strip_prefix(b"Recv: ") {
        return mail::submission(at, fields, detail);
    }
    if let Some(fields) = body.strip_prefix(b"Sent: ") {
        return mail::delivery(at, fields, detail);
    }
    let parsed = match tokens::service_prefix(body) {
        Some((service, text)) => security::service_line(at, body, service, text)
            .or_else(|| audit::service_line(at, service, text)),
        None => security::line(at, body),
    };
    parsed.unwrap_or(Parsed::Unknown)
}

/// `line` without the `\r` of a CRLF line ending (Kerio on Windows).
fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The wall-clock text and the body of a `[DD/Mon/YYYY HH:MM:SS] body`
/// line; checks the brackets only (see [`parse_wall_clock`]).
fn bracketed(line: &[u8]) -> Option<(&WallClock, &[u8])> {
    let (wall_clock, rest) = line.strip_prefix(b"[")?.split_first_chunk()?;
    Some((wall_clock, rest.strip_prefix(b"] ")?))
}

/// The instant of `DD/Mon/YYYY HH:MM:SS` read as UTC; `None` unless it is
/// a real date and time.
fn parse_wall_clock(text: &WallClock) -> Option<Timestamp> {
    let [d0, d1, b'/', m0, m1, m2, b'/', y0, y1, y2, y3, b' ', h0, h1, b':', mi0, mi1, b':', s0, s1] =
        *text
    else {
        return None;
    };
    // Two digits are at most 99 and four at most 9999: the casts are lossless.
    Timestamp::from_civil(
        parse_digits::<4>(&[y0, y1, y2, y3])? as i32,
        month_from_abbrev(&[m0, m1, m2])?,
        parse_digits::<2>(&[d0, d1])? as u8,
        parse_digits::<2>(&[h0, h1])? as u8,
        parse_digits::<2>(&[mi0, mi1])? as u8,
        parse_digits::<2>(&[s0, s1])? as u8,
    )
}

/// The seconds since midnight of ` HH:MM:SS`, the time after a
/// [`WallClock`]'s date; `None` where [`Timestamp::from_civil`] refuses the
/// time (a leap second, `:60`, is kept as it does).
fn seconds_of_day(time: &[u8]) -> Option<i64> {
    let [b' ', h0, h1, b':', mi0, mi1, b':', s0, s1] = *time else {
        return None;
    };
    let hour = parse_digits::<2>(&[h0, h1])?;
    let minute = parse_digits::<2>(&[mi0, mi1])?;
    let second = parse_digits::<2>(&[s0, s1])?;
    (hour <= 23 && minute <= 59 && second <= 60)
        .then(|| i64::from(hour * 3_600 + minute * 60 + second))
}

/// The UTC instant a Queue-ID was created: its first 8 hex digits.
fn queue_id_instant(queue_id: &[u8]) -> Option<Timestamp> {
    let (hex, _) = queue_id.split_first_chunk::<8>()?;
    let secs = hex
        .iter()
        .try_fold(0u32, |acc, &b| Some(acc << 4 | char::from(b).to_digit(16)?))?;
    Some(Timestamp(i64::from(secs)))
}

#[cfg(test)]
mod tests;

/// Helpers for the tests of this module and its submodules.
#[cfg(test)]
mod test_support {
    use super::*;

    /// `line` parsed by a parser whose zone is UTC (so `at` is the wall clock).
    pub(super) fn parse(line: &[u8]) -> Parsed<'_> {
        KerioParser::new(LocalZone::Fixed(0)).parse(line)
    }

    pub(super) fn utc(year: i32, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> Timestamp {
        Timestamp::from_civil(year, month, day, hour, min, sec).expect("a valid test date")
    }
}
