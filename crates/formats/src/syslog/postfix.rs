//! Postfix lines. (Being written.)

use mailfuse_core::Timestamp;

use crate::Parsed;

/// A Postfix line: `service` is the last part of the syslog program name
/// (`smtpd` for `postfix/submission/smtpd`), `message` the text after
/// `program[pid]: `.
pub(super) fn parse<'a>(_at: Timestamp, _service: &'a [u8], _message: &'a [u8]) -> Parsed<'a> {
    Parsed::Unknown
}
