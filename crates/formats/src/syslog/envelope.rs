//! The syslog envelope: the timestamp, host and program written before each
//! message.
//!
//! Timestamps come in two styles:
//! - RFC 3164, `Nov 22 21:41:33` (the day space- or zero-padded, optionally
//!   followed by a fraction): local time without a year;
//! - RFC 3339, `2024-08-26T01:33:38.572449+00:00` (rsyslog's high-precision
//!   format, journald's `short-iso`): the offset is `Z`, `±HH:MM`, `±HHMM`,
//!   or missing (then local time).
//!
//! Then comes `host program[pid]: message` (the host is optional), except in
//! Dovecot's own `log_path` files, where the Dovecot process follows the
//! timestamp directly: `Nov 22 10:01:02 imap-login: Info: Login: …`.

use std::sync::LazyLock;

use mailfuse_core::time::{month_from_abbrev, parse_digits};
use memchr::{memchr, memmem};

use crate::values::{find_byte, rfind_byte, Phrase};
use crate::zone::parse_offset;

/// Length of an RFC 3164 timestamp, `Nov 22 21:41:33`.
const BSD_LEN: usize = 15;

/// Length of an RFC 3339 date and time to the second, `2024-08-26T01:33:38`.
const ISO_LEN: usize = 19;

/// The Dovecot processes that begin a `log_path` line, followed by `:` or by
/// `(` (`auth-worker(304):`, 2.4's `auth(user,ip,sasl:login)<session>:`).
const DOVECOT_PROCESSES: &[&[u8]] = &[
    b"imap-login",
    b"pop3-login",
    b"submission-login",
    b"managesieve-login",
    b"imap-urlauth-login",
    b"imap",
    b"pop3",
    b"submission",
    b"managesieve",
    b"lmtp",
    b"lda",
    b"auth",
    b"auth-worker",
    b"master",
    b"config",
    b"log",
    b"anvil",
    b"dict",
    b"doveadm",
    b"indexer",
    b"indexer-worker",
    b"stats",
    b"replicator",
    b"director",
    b"quota-status",
    b"imap-hibernate",
    b"imap-urlauth",
];

/// The longest name in [`DOVECOT_PROCESSES`].
const LONGEST_DOVECOT_PROCESS: usize = 18;

/// A line's timestamp as written; [`Stamp::wall_clock`] and
/// [`Stamp::offset`] read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stamp<'a> {
    /// RFC 3164 `Nov 22 21:41:33`.
    Bsd(&'a [u8; BSD_LEN]),
    /// RFC 3339: the date and time to the second, and what follows the
    /// fraction (`Z`, `+00:00`, or empty for local time).
    Iso {
        civil: &'a [u8; ISO_LEN],
        zone: &'a [u8],
    },
}

/// The wall-clock fields of a timestamp; `year` is `None` for RFC 3164.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct WallClock {
    pub year: Option<i32>,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// What the offset part of a timestamp says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Offset {
    /// No offset: the server's local time.
    Local,
    /// Seconds east of UTC.
    East(i32),
}

impl Stamp<'_> {
    /// The date and time fields, if they are digits where digits belong and
    /// a known month (the calendar is checked later, with the year).
    pub(super) fn wall_clock(&self) -> Option<WallClock> {
        match self {
            Stamp::Bsd(text) => bsd_wall_clock(text),
            Stamp::Iso { civil, .. } => iso_wall_clock(civil),
        }
    }

    /// The offset, if the timestamp has a valid one or none.
    pub(super) fn offset(&self) -> Option<Offset> {
        match self {
            Stamp::Bsd(_) | Stamp::Iso { zone: b"", .. } => Some(Offset::Local),
            Stamp::Iso { zone: b"Z", .. } => Some(Offset::East(0)),
            Stamp::Iso { zone, .. } => parse_offset(zone).map(Offset::East),
        }
    }
}

/// Who wrote a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin<'a> {
    /// A Postfix program: its syslog name, e.g. `postfix/submission/smtpd`.
    Postfix(&'a [u8]),
    /// Dovecot, through syslog (`dovecot: imap-login: …`) or in its own
    /// `log_path` file.
    Dovecot,
    /// Roundcube webmail with `log_driver = syslog` (ident `roundcube`).
    Roundcube,
    /// Any other program, or text that names none.
    Other,
}

/// A syslog line split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Envelope<'a> {
    pub stamp: Stamp<'a>,
    pub origin: Origin<'a>,
    /// The text after `program[pid]: `; for Dovecot it starts with the
    /// Dovecot process (`imap-login: …`), whichever way it was logged.
    pub message: &'a [u8],
}

/// The parts of a syslog line; `None` if it does not start with a
/// timestamp of either style.
///
/// Every line of a log goes through here, so each byte of the header is
/// looked at about once: the first word (the host, the program's tag, or a
/// Dovecot `log_path` process) and the tag are each found by one search
/// for a space, and the program is told by its name, not by trying names.
/// Always inlined: returned through memory, its envelope was read back in
/// 16-byte loads from the 8-byte stores that wrote it, which the CPU cannot
/// forward (a stall at every line, 4 % of a Postfix scan's time with
/// [`stamp`]'s and `client_prefix`'s).
#[inline(always)]
pub(super) fn split(line: &[u8]) -> Option<Envelope<'_>> {
    let (stamp, rest) = stamp(line)?;
    let (first, after_first) = first_word(rest);
    let Some(first) = first else {
        return Some(Envelope {
            stamp,
            origin: Origin::Dovecot,
            message: rest,
        });
    };
    let (tag, message) = if first.ends_with(b":") {
        (first, after_first)
    } else {
        word(after_first)
    };
    let Some(program) = program_of_tag(tag) else {
        return Some(Envelope {
            stamp,
            origin: Origin::Other,
            message: rest,
        });
    };
    let origin = match program {
        b"dovecot" => Origin::Dovecot,
        b"roundcube" => Origin::Roundcube,
        _ if program.starts_with(b"postfix") => Origin::Postfix(program),
        _ => Origin::Other,
    };
    Some(Envelope {
        stamp,
        origin,
        message,
    })
}

/// The timestamp at the start of `line` and the text after it and its
/// space. Checks the shape only (separators in place), which is cheap:
/// [`Stamp::wall_clock`] reads the digits. Inlined into [`split`], always:
/// the call cost a tenth of what is done, and its result came back through
/// memory as `split`'s does.
#[inline(always)]
pub(super) fn stamp(line: &[u8]) -> Option<(Stamp<'_>, &[u8])> {
    match line.first()? {
        b'A'..=b'Z' => {
            let (text, rest) = line.split_first_chunk::<BSD_LEN>()?;
            if !matches!(
                text,
                [_, _, _, b' ', _, _, b' ', _, _, b':', _, _, b':', _, _]
            ) {
                return None;
            }
            Some((Stamp::Bsd(text), after_space(skip_fraction(rest))?))
        }
        b'0'..=b'9' => {
            let (civil, rest) = line.split_first_chunk::<ISO_LEN>()?;
            if !matches!(
                civil,
                [
                    _,
                    _,
                    _,
                    _,
                    b'-',
                    _,
                    _,
                    b'-',
                    _,
                    _,
                    b'T',
                    _,
                    _,
                    b':',
                    _,
                    _,
                    b':',
                    _,
                    _
                ]
            ) {
                return None;
            }
            let rest = skip_fraction(rest);
            let zone_len = memchr(b' ', rest)?;
            let (zone, rest) = rest.split_at_checked(zone_len)?;
            Some((Stamp::Iso { civil, zone }, after_space(rest)?))
        }
        _ => None,
    }
}

/// `text` after a leading `.` and the digits of a fraction of a second.
/// Inlined into [`stamp`] for every line, which mostly has no fraction: the
/// test for a `.` costs less than the call.
#[inline(always)]
fn skip_fraction(text: &[u8]) -> &[u8] {
    let Some(fraction) = text.strip_prefix(b".") else {
        return text;
    };
    let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
    fraction.get(digits..).unwrap_or_default()
}

/// `text` after its leading space, if it has one.
fn after_space(text: &[u8]) -> Option<&[u8]> {
    text.strip_prefix(b" ")
}

/// `Nov 22 21:41:33` or `Sep  6 00:44:56` (or `Sep 06`).
fn bsd_wall_clock(text: &[u8; BSD_LEN]) -> Option<WallClock> {
    let [m0, m1, m2, b' ', d0, d1, b' ', h0, h1, b':', mi0, mi1, b':', s0, s1] = *text else {
        return None;
    };
    // Two digits are at most 99: the casts are lossless.
    let day = match d0 {
        b' ' => parse_digits::<1>(&[d1])?,
        _ => parse_digits::<2>(&[d0, d1])?,
    };
    Some(WallClock {
        year: None,
        month: month_from_abbrev(&[m0, m1, m2])?,
        day: day as u8,
        hour: parse_digits::<2>(&[h0, h1])? as u8,
        minute: parse_digits::<2>(&[mi0, mi1])? as u8,
        second: parse_digits::<2>(&[s0, s1])? as u8,
    })
}

/// `2024-08-26T01:33:38`.
fn iso_wall_clock(text: &[u8; ISO_LEN]) -> Option<WallClock> {
    let [y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', mi0, mi1, b':', s0, s1] =
        *text
    else {
        return None;
    };
    // Two digits are at most 99 and four at most 9999: the casts are lossless.
    Some(WallClock {
        year: Some(parse_digits::<4>(&[y0, y1, y2, y3])? as i32),
        month: parse_digits::<2>(&[mo0, mo1])? as u8,
        day: parse_digits::<2>(&[d0, d1])? as u8,
        hour: parse_digits::<2>(&[h0, h1])? as u8,
        minute: parse_digits::<2>(&[mi0, mi1])? as u8,
        second: parse_digits::<2>(&[s0, s1])? as u8,
    })
}

/// The first word after the timestamp and the text after its space; `None`
/// for the word if it starts with a Dovecot process name and then `:` or
/// `(` (see [`starts_with_dovecot_process`]). One search for the first
/// space, `:` or `(` tells both: a word before its first `:` or `(` (a
/// host name has none) is looked up among the names, and only then is its
/// space looked for.
fn first_word(rest: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let Some(at) = find_space_colon_or_paren(rest) else {
        return (Some(rest), b"");
    };
    let Some((before, after)) = rest.split_at_checked(at) else {
        return (Some(rest), b"");
    };
    if let Some(after_space) = after.strip_prefix(b" ") {
        return (Some(before), after_space);
    }
    if at <= LONGEST_DOVECOT_PROCESS && DOVECOT_PROCESSES.contains(&before) {
        return (None, rest);
    }
    let (first, after) = word(rest);
    (Some(first), after)
}

/// Where the first space, `:` or `(` of `text` lies.
fn find_space_colon_or_paren(text: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(searcher) = memchr::arch::x86_64::sse2::memchr::Three::new(b' ', b':', b'(') {
        return searcher.find(text);
    }
    memchr::memchr3(b' ', b':', b'(', text)
}

/// Whether `first`, the first word after the timestamp, starts with a
/// Dovecot process name and then `:` or `(`: a line of Dovecot's own log
/// file. A host name is followed by a space, never by these.
fn starts_with_dovecot_process(first: &[u8]) -> bool {
    let head = first.get(..=LONGEST_DOVECOT_PROCESS).unwrap_or(first);
    let Some(end) = head.iter().position(|&b| matches!(b, b':' | b'(')) else {
        return false;
    };
    DOVECOT_PROCESSES.contains(&head.split_at(end).0)
}

/// Most repeats one `… repeated N times` line stands for: a larger N is
/// read as this many, so a corrupt or forged count cannot swamp the totals.
pub(super) const MAX_REPEATS: u32 = 100_000;

/// Searched for in every line of a program mailfuse does not read.
static REPEAT_NOTICE: Phrase = LazyLock::new(|| memmem::Finder::new(b"last message repeated "));

/// `N` of sysklogd's (and FreeBSD's, old rsyslog's) `last message repeated N
/// times`, written instead of N more copies of the line before, with no
/// program tag; `text` is what follows the timestamp (the host name, if
/// any, then the notice; macOS wraps it in `--- … ---`).
pub(super) fn last_message_repeated(text: &[u8]) -> Option<u32> {
    let start = REPEAT_NOTICE.find(text)?;
    let before = text.get(..start)?;
    let before = before.strip_suffix(b"--- ").unwrap_or(before);
    // Nothing, or one word (the host), may come before the notice.
    if !before.is_empty() && memchr(b' ', before) != Some(before.len() - 1) {
        return None;
    }
    let rest = text.get(start + REPEAT_NOTICE.needle().len()..)?;
    let rest = rest.strip_suffix(b" ---").unwrap_or(rest);
    let digits = rest
        .strip_suffix(b" times")
        .or_else(|| rest.strip_suffix(b" time"))?;
    repeat_count(digits)
}

/// rsyslog's `message repeated N times: [ MESSAGE]` (its repeated-message
/// reduction), written by the program's own tag: N and the message repeated.
/// Inlined: every mail line is tested, and few are such.
#[inline]
pub(super) fn repeated_message(message: &[u8]) -> Option<(u32, &[u8])> {
    let rest = message.strip_prefix(b"message repeated ")?;
    let space = memchr(b' ', rest)?;
    let (digits, rest) = rest.split_at_checked(space)?;
    let inner = rest.strip_prefix(b" times: [")?.strip_suffix(b"]")?;
    Some((
        repeat_count(digits)?,
        inner.strip_prefix(b" ").unwrap_or(inner),
    ))
}

/// A repeat count, capped at [`MAX_REPEATS`]; `None` unless all digits.
fn repeat_count(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = crate::values::decimal(digits).unwrap_or(u64::MAX);
    Some(u32::try_from(n).map_or(MAX_REPEATS, |n| n.min(MAX_REPEATS)))
}

/// The program name of a tag, `program[pid]:` or `program:` (without the
/// `[pid]`); `None` when `tag` is no such tag.
fn program_of_tag(tag: &[u8]) -> Option<&[u8]> {
    let tag = tag.strip_suffix(b":")?;
    let program = match tag.strip_suffix(b"]") {
        Some(with_pid) => with_pid.get(..rfind_byte(b'[', with_pid)?)?,
        None => tag,
    };
    (!program.is_empty()).then_some(program)
}

/// The host a syslog line names after its timestamp, if it names one: the
/// first word, unless that is already the program's tag (`prog[1]:`), a
/// Dovecot `log_path` process, or sysklogd's host-less repeat notice.
pub(super) fn host(line: &[u8]) -> Option<&[u8]> {
    let (_, rest) = stamp(line)?;
    let (first, after) = word(rest);
    if starts_with_dovecot_process(first) || rest.starts_with(b"last message repeated ") {
        return None;
    }
    (!first.is_empty() && !first.ends_with(b":") && !after.is_empty()).then_some(first)
}

/// The text before the first space, and the text after it (empty if none).
fn word(text: &[u8]) -> (&[u8], &[u8]) {
    match find_byte(b' ', text).and_then(|space| text.split_at_checked(space)) {
        Some((word, rest)) => (word, rest.get(1..).unwrap_or_default()),
        None => (text, b""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(line: &[u8]) -> Envelope<'_> {
        split(line).expect("a syslog line")
    }

    #[test]
    fn the_host_is_the_word_before_the_tag_if_there_is_one() {
        for (line, want) in [
            (
                &b"Nov 22 21:41:33 mx1 postfix/smtpd[1]: x"[..],
                Some(&b"mx1"[..]),
            ),
            (
                b"2024-08-26T01:33:38.5+00:00 mx2 dovecot: imap-login: x",
                Some(b"mx2"),
            ),
            (b"Nov 22 21:41:33 postfix/smtpd[1]: x", None),
            (b"Nov 22 10:01:02 imap-login: Info: Login: x", None),
            (b"Nov 22 10:01:02 last message repeated 3 times", None),
            (b"Nov 22 10:01:02 mx1", None),
            (b"Nov 22 10:01:02 ", None),
            (b"no stamp here", None),
        ] {
            assert_eq!(host(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn rfc_3164_host_program_pid() {
        let line = b"Nov 22 21:41:33 mail postfix/submission/smtpd[7094]: 2441AB4574: client=x";
        assert_eq!(
            envelope(line),
            Envelope {
                stamp: Stamp::Bsd(b"Nov 22 21:41:33"),
                origin: Origin::Postfix(b"postfix/submission/smtpd"),
                message: b"2441AB4574: client=x",
            }
        );
        let padded = envelope(b"Sep  6 00:44:56 trianon postfix/smtpd[11538]: x");
        assert_eq!(
            padded.stamp.wall_clock(),
            Some(WallClock {
                year: None,
                month: 9,
                day: 6,
                hour: 0,
                minute: 44,
                second: 56
            })
        );
        assert_eq!(padded.stamp.offset(), Some(Offset::Local));
    }

    #[test]
    fn rfc_3339_with_fraction_and_offsets() {
        let line = b"2024-08-26T01:33:38.572449+00:00 machine postfix/smtpd[60203]: NOQUEUE: x";
        let parts = envelope(line);
        assert_eq!(
            parts.stamp,
            Stamp::Iso {
                civil: b"2024-08-26T01:33:38",
                zone: b"+00:00"
            }
        );
        assert_eq!(parts.origin, Origin::Postfix(b"postfix/smtpd"));
        assert_eq!(parts.message, b"NOQUEUE: x");
        let offset = |line: &'static [u8]| envelope(line).stamp.offset();
        assert_eq!(
            offset(b"2024-08-26T01:33:38Z h postfix/qmgr: x"),
            Some(Offset::East(0))
        );
        assert_eq!(
            offset(b"2024-08-26T01:33:38+0530 h postfix/qmgr: x"),
            Some(Offset::East(19_800))
        );
        assert_eq!(
            offset(b"2024-08-26T01:33:38 h postfix/qmgr: x"),
            Some(Offset::Local)
        );
        assert_eq!(offset(b"2024-08-26T01:33:38+5 h postfix/qmgr: x"), None);
    }

    #[test]
    fn dovecot_through_syslog_and_log_path() {
        for (line, message) in [
            (
                &b"Nov 22 10:01:02 mail dovecot: imap-login: Login: user=<a>"[..],
                &b"imap-login: Login: user=<a>"[..],
            ),
            (
                b"Nov 22 10:01:02 mail dovecot[880]: auth: Error: x",
                b"auth: Error: x",
            ),
            (
                b"Nov 22 10:01:02 imap-login: Info: Login: user=<a>",
                b"imap-login: Info: Login: user=<a>",
            ),
            (
                b"Aug 30 00:10:57 auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch",
                b"auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch",
            ),
            (
                b"Jan 29 05:32:50 auth-worker(304): Info: pam(u,1.2.3.4): x",
                b"auth-worker(304): Info: pam(u,1.2.3.4): x",
            ),
        ] {
            let parts = envelope(line);
            assert_eq!(parts.origin, Origin::Dovecot, "{}", String::from_utf8_lossy(line));
            assert_eq!(parts.message, message);
        }
    }

    #[test]
    fn a_host_named_like_a_dovecot_process_is_a_host() {
        let parts = envelope(b"Nov 22 10:01:02 imap postfix/smtpd[1]: connect from x");
        assert_eq!(parts.origin, Origin::Postfix(b"postfix/smtpd"));
    }

    #[test]
    fn host_may_be_missing_and_programs_may_be_others() {
        let parts = envelope(b"Nov 22 10:01:02 postfix/qmgr[7]: ABCDEF123: removed");
        assert_eq!(parts.origin, Origin::Postfix(b"postfix/qmgr"));
        assert_eq!(parts.message, b"ABCDEF123: removed");
        assert_eq!(
            envelope(b"Nov 22 10:01:02 mail CRON[99]: (root) CMD (x)").origin,
            Origin::Other
        );
        assert_eq!(
            envelope(b"Nov 22 10:01:02 mail kernel x y").origin,
            Origin::Other
        );
        assert_eq!(
            envelope(b"Nov 22 10:01:02 mail [12]: x").origin,
            Origin::Other
        );
        assert_eq!(envelope(b"Nov 22 10:01:02 ").origin, Origin::Other);
    }

    #[test]
    fn maillog_file_fraction_after_rfc_3164_time() {
        let parts = envelope(b"Nov 02 21:41:33.123456 mail postfix/qmgr[7]: x");
        assert_eq!(parts.stamp, Stamp::Bsd(b"Nov 02 21:41:33"));
        assert_eq!(parts.message, b"x");
    }

    #[test]
    fn not_syslog() {
        for line in [
            &b"[22/Nov/2026 10:00:00] Recv: Queue-ID: x"[..],
            b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= alice@example.com",
            b"<22>1 2026-04-01T14:59:31+07:00 host mail - - - Sent: x",
            b"Nov 22 21:41:33",
            b"Nov 22 21:41:33mail x",
            b"Nov-22 21:41:33 mail postfix/smtpd[1]: x",
            b"2024-08-26T01:33:38.572449+00:00",
            b"",
            b"\xff\x00",
        ] {
            assert_eq!(split(line), None, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn bad_digits_are_found_when_read() {
        let parts = envelope(b"Nov 2x 21:41:33 mail postfix/qmgr[7]: x");
        assert_eq!(parts.stamp.wall_clock(), None);
        let parts = envelope(b"Foo 22 21:41:33 mail postfix/qmgr[7]: x");
        assert_eq!(parts.stamp.wall_clock(), None);
    }
}
