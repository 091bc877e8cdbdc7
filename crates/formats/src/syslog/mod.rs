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

use mailfuse_core::{AuthFailure, AuthFailureKind, Client, Event, Timestamp};

pub use self::postfix::delivery_delay;

use self::clock::Clock;
use self::envelope::Origin;
use crate::{LineParser, ParseContext, Parsed};

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

/// Parser of Postfix and Dovecot syslog lines.
pub struct SyslogParser {
    clock: Clock,
    dovecot: dovecot::DovecotState,
    /// The failed login of the line before, if it was one: sysklogd's `last
    /// message repeated N times` stands for N more of it (and hid guesses).
    last_failure: Option<Repeatable>,
    /// Whether the line being parsed is such a repeat notice.
    notice: bool,
}

/// What of a failed login is kept to repeat it: owned, as the line it came
/// from is gone when the repeat notice comes. The account is left out: a
/// repeat tries no new one.
#[derive(Clone, Copy, Debug)]
struct Repeatable {
    client: IpAddr,
    service: &'static [u8],
    kind: AuthFailureKind,
    attempts: u32,
}

/// The services Postfix's and Dovecot's failures name, as `'static` bytes
/// a repeat can borrow.
const SERVICES: [&[u8]; 5] = [b"SMTP", b"IMAP", b"POP3", b"SIEVE", b"auth"];

impl Repeatable {
    /// The failure `parsed` reports, if any and if it can be repeated (a
    /// client known by IP, a known service).
    fn of(parsed: &Parsed<'_>) -> Option<Self> {
        let Parsed::Event(Event::AuthFailure(failure)) = parsed else {
            return None;
        };
        Some(Repeatable {
            client: failure.client.ip()?,
            service: SERVICES.into_iter().find(|s| *s == failure.service)?,
            kind: failure.kind,
            attempts: failure.attempts,
        })
    }

    /// The failure again, `times` more times, at `at`.
    fn repeated<'a>(self, at: Timestamp, times: u32) -> Parsed<'a> {
        Parsed::Event(Event::AuthFailure(AuthFailure {
            at,
            client: Client::Ip(self.client),
            account: None,
            service: self.service,
            kind: self.kind,
            attempts: self.attempts.saturating_mul(times),
        }))
    }
}

/// `parsed` repeated `times` times in all: a failed login counts its
/// attempts that many times; other events once (their repeats add nothing
/// the detectors count).
fn times<'a>(mut parsed: Parsed<'a>, times: u32) -> Parsed<'a> {
    if let Parsed::Event(Event::AuthFailure(failure)) = &mut parsed {
        failure.attempts = failure.attempts.saturating_mul(times);
    }
    parsed
}

impl SyslogParser {
    /// A parser for a file read with `context`: its zone reads local times,
    /// its year reference gives RFC 3164 timestamps their year.
    pub fn new(context: &ParseContext) -> Self {
        SyslogParser {
            clock: Clock::new(context),
            dovecot: dovecot::DovecotState::default(),
            last_failure: None,
            notice: false,
        }
    }
}

impl LineParser for SyslogParser {
    fn timestamp(&mut self, line: &[u8]) -> Option<Timestamp> {
        let (stamp, _) = envelope::stamp(without_cr(line))?;
        self.clock.instant(&stamp).ok()
    }

    fn parse<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        self.notice = false;
        let parsed = self.parse_line(line);
        // A repeat notice keeps the failure: sysklogd writes another one for
        // each further stretch of repeats.
        if !self.notice {
            self.last_failure = Repeatable::of(&parsed);
        }
        parsed
    }
}

impl SyslogParser {
    fn parse_line<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        let Some(parts) = envelope::split(without_cr(line)) else {
            return Parsed::Unknown;
        };
        // Other programs' lines are not read further, not even their time,
        // save syslog's own notice that the line before was repeated.
        if parts.origin == Origin::Other {
            let Some(repeats) = envelope::last_message_repeated(parts.message) else {
                return Parsed::Unknown;
            };
            self.notice = true;
            let Some(failure) = self.last_failure else {
                return Parsed::Ignored;
            };
            return match self.clock.instant(&parts.stamp) {
                Ok(at) => failure.repeated(at, repeats),
                Err(reason) => Parsed::Malformed(reason),
            };
        }
        let at = match self.clock.instant(&parts.stamp) {
            Ok(at) => at,
            Err(reason) => return Parsed::Malformed(reason),
        };
        // rsyslog writes the repeated message itself, by the same program.
        let (repeats, message) =
            envelope::repeated_message(parts.message).unwrap_or((1, parts.message));
        let parsed = match parts.origin {
            Origin::Postfix(program) => postfix::parse(at, program, message),
            Origin::Dovecot => dovecot::parse(at, message, &mut self.dovecot),
            Origin::Roundcube => roundcube::parse(at, message),
            Origin::Other => Parsed::Unknown,
        };
        times(parsed, repeats)
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
