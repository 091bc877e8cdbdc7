//! Syslog files of a Postfix and Dovecot server. (Being written.)
//!
//! The envelope (timestamp, host, program) is read here; the message is
//! handed to the program's parser: [`postfix`] or [`dovecot`].

mod dovecot;
mod postfix;

use mailfuse_core::Timestamp;

use crate::{LineParser, ParseContext, Parsed};

/// Whether `line` looks like a syslog line of Postfix or Dovecot.
pub fn recognizes(_line: &[u8]) -> bool {
    false
}

/// Parser of Postfix and Dovecot syslog lines.
pub struct SyslogParser {
    dovecot: dovecot::DovecotState,
}

impl SyslogParser {
    /// A parser for a file read with `context`.
    pub fn new(_context: &ParseContext) -> Self {
        SyslogParser {
            dovecot: dovecot::DovecotState::default(),
        }
    }
}

impl LineParser for SyslogParser {
    fn timestamp(&mut self, _line: &[u8]) -> Option<Timestamp> {
        None
    }

    fn parse<'a>(&mut self, line: &'a [u8]) -> Parsed<'a> {
        // Placeholder dispatch until the envelope parser lands.
        let at = Timestamp(0);
        match line.strip_prefix(b"postfix/") {
            Some(rest) => postfix::parse(at, b"smtpd", rest),
            None => dovecot::parse(at, line, &mut self.dovecot),
        }
    }
}
