//! Syslog files of a Postfix and Dovecot server: `/var/log/mail.log`,
//! Postfix's `maillog_file`, Dovecot's `log_path`, with both programs'
//! lines mixed with other programs'.
//!
//! The envelope (timestamp, host, program) is read by `envelope`, its time
//! by `clock`; the message goes to the program's parser, `postfix`,
//! `dovecot` or `roundcube` (the webmail's logins). Other programs' lines are [`Parsed::Unknown`], so the report
//! shows how much of a file was not mail.

mod clock;
mod dovecot;
mod envelope;
mod postfix;
pub(crate) mod roundcube;

use std::net::IpAddr;

use mailfuse_core::{
    AuthFailure, AuthFailureKind, BlockKind, Client, Event, ServerBlock, Timestamp,
};

pub use self::postfix::delivery_delay;

use self::clock::Clock;
use self::envelope::{Offset, Origin};
use crate::{Carry, LineParser, ParseContext, Parsed, Reading};

/// Whether `line` is a syslog line (RFC 3164 or RFC 3339 timestamp) of a
/// Postfix program or of Dovecot, or a line of Dovecot's own log file.
pub fn recognizes(line: &[u8]) -> bool {
    envelope::split(without_cr(line)).is_some_and(|parts| {
        parts.origin != Origin::Other
            && parts.stamp.wall_clock().is_some()
            && parts.stamp.offset().is_some()
    })
}

/// Whether `line` is a dated syslog line of a program mailfuse does not read
/// (cron, the kernel, opendkim…): a shared `/var/log/syslog` may hold
/// thousands of them before its first mail line, and is a log all the same.
pub fn is_other_program(line: &[u8]) -> bool {
    envelope::split(without_cr(line))
        .is_some_and(|parts| parts.origin == Origin::Other && parts.stamp.wall_clock().is_some())
}

/// The host a syslog line names between its timestamp and its program
/// (`Nov 22 21:41:33 mx1 postfix/smtpd[1]: …` → `mx1`), if it names one.
pub fn host(line: &[u8]) -> Option<&[u8]> {
    envelope::host(without_cr(line))
}

/// The server's UTC offset in seconds east, derived from a `cleanup` line
/// naming a Message-ID Postfix made itself (in UTC, see
/// [`postfix::own_message_id_instant`]) beside the local time syslog wrote;
/// `None` for any other line, and for a timestamp that carries its offset.
///
/// `Dec 14 21:46:28 mx postfix/cleanup[123]: 7C2201C2F: message-id=<20141214204627.7C2201C2F@mx.example>`
/// → `3600`.
pub fn derive_offset(line: &[u8]) -> Option<i32> {
    let parts = envelope::split(without_cr(line))?;
    let Origin::Postfix(program) = parts.origin else {
        return None;
    };
    if !program.ends_with(b"/cleanup") || parts.stamp.offset()? != Offset::Local {
        return None;
    }
    let utc = postfix::own_message_id_instant(parts.message)?;
    let wall_clock = parts.stamp.wall_clock()?;
    // RFC 3164 has no year: the wall clock's is the UTC year's, or the one
    // next to it across New Year; only one of them lies within a zone's reach.
    let years = match wall_clock.year {
        Some(year) => year..=year,
        None => {
            let year = utc.to_civil().0;
            year - 1..=year + 1
        }
    };
    years
        .filter_map(|year| clock::civil(year, &wall_clock))
        .find_map(|logged| crate::zone::derived_offset(logged, utc))
}

/// Parser of Postfix and Dovecot syslog lines.
pub struct SyslogParser {
    clock: Clock,
    dovecot: dovecot::DovecotState,
    postfix: postfix::Sessions,
    /// The failed login or refusal of the line before, if it was one:
    /// sysklogd's `last message repeated N times` stands for N more of it
    /// (and hid guesses).
    last_repeatable: Option<Repeatable>,
}

/// What a line read on its own leaves to settle in file order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pending {
    /// sysklogd's `last message repeated N times`, at its time (or why it
    /// has none): the line before's event, if it can be repeated.
    Repeat {
        times: u32,
        at: Result<Timestamp, &'static str>,
    },
    /// A Postfix line for the sessions' count of failed logins; `repeats`
    /// is rsyslog's count of the line.
    Session {
        note: postfix::SessionNote,
        repeats: u32,
    },
}

/// What of the line before is kept to repeat it: owned, as the line it came
/// from is gone when the repeat notice comes. Only what the detectors count
/// repeats: a failed login (the account is left out: a repeat tries no new
/// one) and a refusal (its words left out). Other events carry a queue id or
/// session of their own, so syslog never sees them twice in a row.
#[derive(Clone, Copy, Debug)]
enum Repeatable {
    Failure {
        client: IpAddr,
        service: &'static [u8],
        kind: AuthFailureKind,
        attempts: u32,
    },
    Refusal {
        client: IpAddr,
        kind: BlockKind,
    },
}

/// The services Postfix's and Dovecot's failures name, as `'static` bytes
/// a repeat can borrow.
const SERVICES: [&[u8]; 5] = [b"SMTP", b"IMAP", b"POP3", b"SIEVE", b"auth"];

impl Repeatable {
    /// What `parsed` reports, if it can be repeated (a client known by IP,
    /// a known service).
    fn of(parsed: &Parsed<'_>) -> Option<Self> {
        match parsed {
            Parsed::Event(Event::AuthFailure(failure)) => Some(Repeatable::Failure {
                client: failure.client.ip()?,
                service: SERVICES.into_iter().find(|s| *s == failure.service)?,
                kind: failure.kind,
                attempts: failure.attempts,
            }),
            Parsed::Event(Event::ServerBlock(block)) => Some(Repeatable::Refusal {
                client: block.client.ip()?,
                kind: block.kind,
            }),
            _ => None,
        }
    }

    /// The event again, `times` more times, at `at`.
    fn repeated<'a>(self, at: Timestamp, times: u32) -> Parsed<'a> {
        Parsed::Event(match self {
            Repeatable::Failure {
                client,
                service,
                kind,
                attempts,
            } => Event::AuthFailure(AuthFailure {
                at,
                client: Client::Ip(client),
                account: None,
                service,
                kind,
                attempts: attempts.saturating_mul(times),
            }),
            Repeatable::Refusal { client, kind } => Event::ServerBlock(ServerBlock {
                at,
                client: Client::Ip(client),
                kind,
                detail: b"",
                refusals: times,
            }),
        })
    }
}

/// `parsed` repeated `times` times in all: a failed login counts its
/// attempts that many times, a refusal its refusals; other events once
/// (see [`Repeatable`]).
fn times(parsed: &mut Parsed<'_>, times: u32) {
    match parsed {
        Parsed::Event(Event::AuthFailure(failure)) => {
            failure.attempts = failure.attempts.saturating_mul(times);
        }
        Parsed::Event(Event::ServerBlock(block)) => {
            block.refusals = block.refusals.saturating_mul(times);
        }
        _ => {}
    }
}

impl SyslogParser {
    /// A parser for a file read with `context`: its zone reads local times,
    /// its year reference gives RFC 3164 timestamps their year.
    pub fn new(context: &ParseContext) -> Self {
        SyslogParser {
            clock: Clock::new(context),
            dovecot: dovecot::DovecotState::default(),
            postfix: postfix::Sessions::default(),
            last_repeatable: None,
        }
    }

    /// A line of a mail program (`origin`), from its message on, at `at`,
    /// into `reading`.
    ///
    /// A [`Parsed`] is some 200 bytes: each parser writes it straight into
    /// the reading. Returned through a `match` and then moved into the
    /// reading, it was copied twice a line.
    fn read_mail<'a>(
        &mut self,
        origin: Origin<'a>,
        message: &'a [u8],
        at: Timestamp,
        reading: &mut Reading<'a>,
    ) {
        // rsyslog writes the repeated message itself, by the same program.
        let (repeats, message) = envelope::repeated_message(message).unwrap_or((1, message));
        let mut note = None;
        reading.at = Some(at);
        match origin {
            Origin::Postfix(program) => {
                postfix::parse(at, program, message, &mut note, &mut reading.parsed);
            }
            Origin::Dovecot => reading.parsed = dovecot::parse(at, message, &mut self.dovecot),
            Origin::Roundcube => reading.parsed = roundcube::parse(at, message),
            Origin::Other => reading.parsed = Parsed::Unknown,
        }
        // What a disconnect counts is known once settled: repeated then.
        if repeats != 1 && !matches!(note, Some(postfix::SessionNote::Disconnected { .. })) {
            times(&mut reading.parsed, repeats);
        }
        reading.carry = Carry(note.map(|note| Pending::Session { note, repeats }));
    }
}

impl LineParser for SyslogParser {
    fn timestamp(&mut self, line: &[u8]) -> Option<Timestamp> {
        let (stamp, _) = envelope::stamp(without_cr(line))?;
        self.clock.instant(&stamp).ok()
    }

    fn read<'a>(&mut self, line: &'a [u8]) -> Reading<'a> {
        let mut reading = Reading::settled(Parsed::Unknown, None);
        self.read_into(line, &mut reading);
        reading
    }

    /// Writes the line's reading in place: the trait's default moves
    /// [`read`](LineParser::read)'s result in, a copy of some 250 bytes a
    /// line (3 % of the parser thread's instructions on a Postfix log).
    fn read_into<'a>(&mut self, line: &'a [u8], reading: &mut Reading<'a>) {
        let Some(parts) = envelope::split(without_cr(line)) else {
            *reading = Reading::settled(Parsed::Unknown, None);
            return;
        };
        let at = self.clock.instant(&parts.stamp);
        // Other programs' lines are not read further, save syslog's own
        // notice that the line before was repeated.
        if parts.origin == Origin::Other {
            *reading = match envelope::last_message_repeated(parts.message) {
                None => Reading::settled(Parsed::Unknown, at.ok()),
                Some(times) => Reading {
                    parsed: Parsed::Ignored,
                    at: at.ok(),
                    carry: Carry(Some(Pending::Repeat { times, at })),
                },
            };
            return;
        }
        match at {
            Ok(at) => self.read_mail(parts.origin, parts.message, at, reading),
            Err(reason) => *reading = Reading::settled(Parsed::Malformed(reason), None),
        }
    }

    fn settles(&self) -> bool {
        true
    }

    fn settle(&mut self, parsed: &mut Parsed<'_>, carry: Carry) {
        match carry.0 {
            Some(Pending::Repeat { times, at }) => {
                *parsed = match (self.last_repeatable, at) {
                    (None, _) => Parsed::Ignored,
                    (Some(event), Ok(at)) => event.repeated(at, times),
                    (Some(_), Err(reason)) => Parsed::Malformed(reason),
                };
                // A repeat notice keeps the failure: sysklogd writes another
                // one for each further stretch of repeats.
                return;
            }
            Some(Pending::Session { note, repeats }) => self.postfix.settle(note, parsed, repeats),
            None => {}
        }
        self.last_repeatable = Repeatable::of(parsed);
    }
}

/// `line` without the `\r` of a CRLF line ending.
fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod repeat_tests;
#[cfg(test)]
mod tests;
