//! Exim's `mainlog`.
//!
//! A line is `YYYY-MM-DD HH:MM:SS`, in the server's local time unless a
//! `+hhmm` offset follows (`log_timezone`), with optional `.ddd` fractions
//! (`log_selector = +millisec`) and `[pid]` (`+pid`), then the text. Lines
//! about one message carry its id next (`1rK9Xa-0001ab-Cd`, or
//! `1rK9Xa-000000001ab-Cdef` since 4.97) and a flag saying what happened to
//! it (module `message`); the others are about SMTP sessions and the
//! daemon (module `session`).
//!
//! Lines are read as bytes in place: addresses, HELO names, subjects and
//! remote replies are chosen by others, and `words` splits them the way
//! Exim quotes them so that none poses as a field Exim wrote.

mod message;
mod session;
mod words;

use mailfuse_core::time::parse_digits;
use mailfuse_core::Timestamp;
use memchr::memchr;

use crate::zone::parse_offset;
use crate::{LineParser, LocalZone, ParseContext, Parsed, Reading};

/// Length of `YYYY-MM-DD HH:MM:SS`.
const WALL_CLOCK_LEN: usize = 19;

/// A line's local time, as written.
type WallClock = [u8; WALL_CLOCK_LEN];

/// Whether `line` looks like an Exim mainlog line: a real date and time at
/// its start, then a message id or a line this parser knows.
pub fn recognizes(line: &[u8]) -> bool {
    let Some(stamp) = stamp(without_cr(line)) else {
        return false;
    };
    parse_wall_clock(stamp.wall_clock).is_some()
        && (message_id(stamp.body).is_some()
            || !matches!(
                parse_body(Timestamp::default(), stamp.body),
                Parsed::Unknown
            ))
}

/// Parser of Exim mainlog lines.
pub struct EximParser {
    zone: LocalZone,
    /// The last time converted (with its offset, if written) and its UTC
    /// instant: consecutive lines mostly share their second, and comparing
    /// 19 bytes is far cheaper than asking a named zone for its offset.
    last_conversion: Option<(WallClock, Option<i32>, Timestamp)>,
}

impl EximParser {
    /// A parser for a file read with `context`: times without an offset are
    /// local to `context.zone`.
    pub fn new(context: &ParseContext) -> Self {
        EximParser {
            zone: context.zone.clone(),
            last_conversion: None,
        }
    }

    /// The UTC instant of a line's time; `None` if it is no real date.
    fn utc_instant(&mut self, stamp: &Stamp<'_>) -> Option<Timestamp> {
        if let Some((wall_clock, offset, at)) = &self.last_conversion {
            if wall_clock == stamp.wall_clock && *offset == stamp.offset {
                return Some(*at);
            }
        }
        let wall = parse_wall_clock(stamp.wall_clock)?;
        let at = match stamp.offset {
            Some(offset) => wall.plus(-i64::from(offset)),
            None => self.zone.to_utc(wall),
        };
        self.last_conversion = Some((*stamp.wall_clock, stamp.offset, at));
        Some(at)
    }
}

impl LineParser for EximParser {
    fn timestamp(&mut self, line: &[u8]) -> Option<Timestamp> {
        self.utc_instant(&stamp(without_cr(line))?)
    }

    fn read<'a>(&mut self, line: &'a [u8]) -> Reading<'a> {
        let Some(stamp) = stamp(without_cr(line)) else {
            return Reading::settled(Parsed::Unknown, None);
        };
        match self.utc_instant(&stamp) {
            Some(at) => Reading::settled(parse_body(at, stamp.body), Some(at)),
            None => Reading::settled(Parsed::Malformed("invalid timestamp"), None),
        }
    }
}

/// What a line says after its timestamp.
fn parse_body(at: Timestamp, body: &[u8]) -> Parsed<'_> {
    match message_id(body) {
        Some((queue_id, text)) => message::line(at, queue_id, text),
        None => session::line(at, body),
    }
}

/// The time part of a line and the text after it.
struct Stamp<'a> {
    wall_clock: &'a WallClock,
    /// Seconds east of UTC, when the line says (`log_timezone`).
    offset: Option<i32>,
    body: &'a [u8],
}

/// Splits `YYYY-MM-DD HH:MM:SS[.ddd][ +hhmm][ [pid]] body`; checks the
/// shape only (see [`parse_wall_clock`]).
fn stamp(line: &[u8]) -> Option<Stamp<'_>> {
    let (wall_clock, mut rest) = line.split_first_chunk::<WALL_CLOCK_LEN>()?;
    if !shaped_like_wall_clock(wall_clock) {
        return None;
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        rest = skip_digits(fraction);
    }
    let mut offset = None;
    if let Some((zone, after)) = rest
        .strip_prefix(b" ")
        .and_then(|r| r.split_first_chunk::<5>())
    {
        if after.is_empty() || after.starts_with(b" ") {
            if let Some(seconds) = parse_offset(zone) {
                offset = Some(seconds);
                rest = after;
            }
        }
    }
    if let Some(after_pid) = rest.strip_prefix(b" [").and_then(after_pid) {
        rest = after_pid;
    }
    Some(Stamp {
        wall_clock,
        offset,
        body: rest.strip_prefix(b" ")?,
    })
}

/// The text after the `1234]` of a `[1234]` process id.
fn after_pid(text: &[u8]) -> Option<&[u8]> {
    let close = memchr(b']', text)?;
    let (pid, rest) = text.split_at_checked(close)?;
    if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
        return None;
    }
    rest.get(1..)
}

/// `text` after its leading digits (a fraction of a second).
fn skip_digits(text: &[u8]) -> &[u8] {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    text.get(digits..).unwrap_or_default()
}

fn shaped_like_wall_clock(text: &WallClock) -> bool {
    text.iter().enumerate().all(|(i, &b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    })
}

/// The instant of `YYYY-MM-DD HH:MM:SS` read as UTC; `None` unless it is
/// a real date and time.
fn parse_wall_clock(text: &WallClock) -> Option<Timestamp> {
    let number = |range: std::ops::Range<usize>| {
        let digits = text.get(range)?;
        match digits.len() {
            4 => parse_digits::<4>(digits),
            _ => parse_digits::<2>(digits),
        }
    };
    // Two digits are at most 99 and four at most 9999: the casts are lossless.
    Timestamp::from_civil(
        number(0..4)? as i32,
        number(5..7)? as u8,
        number(8..10)? as u8,
        number(11..13)? as u8,
        number(14..16)? as u8,
        number(17..19)? as u8,
    )
}

/// Lengths of the three base-62 parts of a message id: before 4.97, and
/// since (wider pid and sub-second parts).
const MESSAGE_ID_SHAPES: [[usize; 3]; 2] = [[6, 6, 2], [6, 11, 4]];

/// The message id a line starts with, and the text after it.
fn message_id(body: &[u8]) -> Option<(&[u8], &[u8])> {
    MESSAGE_ID_SHAPES
        .iter()
        .find_map(|&[first, second, third]| {
            let (id, rest) = body.split_at_checked(first + second + third + 2)?;
            let dash = |at: usize| at == first || at == first + second + 1;
            let shaped = id.iter().enumerate().all(|(at, &b)| match dash(at) {
                true => b == b'-',
                false => b.is_ascii_alphanumeric(),
            });
            let ends = rest.is_empty() || rest.starts_with(b" ");
            (shaped && ends).then(|| (id, rest.get(1..).unwrap_or_default()))
        })
}

/// `line` without the `\r` of a CRLF line ending.
fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests;

/// Helpers for the tests of this module and its submodules.
#[cfg(test)]
mod test_support {
    use super::*;

    /// `line` parsed by a parser whose zone is UTC (so `at` is the wall clock).
    pub(super) fn parse(line: &[u8]) -> Parsed<'_> {
        EximParser::new(&ParseContext::default()).parse(line)
    }

    /// The event `line` gives; panics (in tests) if it gives none.
    pub(super) fn event(line: &[u8]) -> mailfuse_core::Event<'_> {
        match parse(line) {
            Parsed::Event(event) => event,
            other => panic!("{other:?} for {}", String::from_utf8_lossy(line)),
        }
    }

    pub(super) fn utc(year: i32, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> Timestamp {
        Timestamp::from_civil(year, month, day, hour, min, sec).expect("a valid test date")
    }
}
