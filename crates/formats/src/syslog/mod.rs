//! Syslog files of a Postfix and Dovecot server: `/var/log/mail.log`,
//! Postfix's `maillog_file`, Dovecot's `log_path`, with both programs'
//! lines mixed with other programs'.
//!
//! The envelope (timestamp, host, program) is read by `envelope`, its time
//! by `clock`; the message goes to the program's parser, `postfix` or
//! `dovecot`. Other programs' lines are [`Parsed::Unknown`], so the report
//! shows how much of a file was not mail.

mod clock;
mod dovecot;
mod envelope;
mod postfix;

use mailfuse_core::Timestamp;

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
}

impl SyslogParser {
    /// A parser for a file read with `context`: its zone reads local times,
    /// its year reference gives RFC 3164 timestamps their year.
    pub fn new(context: &ParseContext) -> Self {
        SyslogParser {
            clock: Clock::new(context),
            dovecot: dovecot::DovecotState::default(),
        }
    }
}

impl LineParser for SyslogParser {
    fn timestamp(&mut self, line: &[u8]) -> Option<Timestamp> {
        let (stamp, _) = envelope::stamp(without_cr(line))?;
        self.clock.instant(&stamp).ok()
    }

    fn parse<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        let Some(parts) = envelope::split(without_cr(line)) else {
            return Parsed::Unknown;
        };
        // Other programs' lines are not read further, not even their time.
        if parts.origin == Origin::Other {
            return Parsed::Unknown;
        }
        let at = match self.clock.instant(&parts.stamp) {
            Ok(at) => at,
            Err(reason) => return Parsed::Malformed(reason),
        };
        match parts.origin {
            Origin::Postfix(program) => postfix::parse(at, program, parts.message),
            Origin::Dovecot => dovecot::parse(at, parts.message, &mut self.dovecot),
            Origin::Other => Parsed::Unknown,
        }
    }
}

/// `line` without the `\r` of a CRLF line ending.
fn without_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests;
