//! Syslog files of a Postfix and Dovecot server. (Being written.)

use mailfuse_core::Timestamp;

use crate::{LineParser, ParseContext, Parsed};

/// Whether `line` looks like a syslog line of Postfix or Dovecot.
pub fn recognizes(_line: &[u8]) -> bool {
    false
}

/// Parser of Postfix and Dovecot syslog lines.
pub struct SyslogParser {}

impl SyslogParser {
    /// A parser for a file read with `context`.
    pub fn new(_context: &ParseContext) -> Self {
        SyslogParser {}
    }
}

impl LineParser for SyslogParser {
    fn timestamp(&mut self, _line: &[u8]) -> Option<Timestamp> {
        None
    }

    fn parse<'a>(&mut self, _line: &'a [u8]) -> Parsed<'a> {
        Parsed::Unknown
    }
}
