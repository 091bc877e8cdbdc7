//! Dovecot lines. (Being written.)

use mailfuse_core::Timestamp;

use crate::Parsed;

/// What the Dovecot parser remembers between lines.
#[derive(Debug, Default)]
pub(super) struct DovecotState {}

/// A Dovecot line. `message` starts with the Dovecot process, whatever
/// carried it: `imap-login: Login: user=<…>, …` (after syslog's
/// `dovecot: ` or `dovecot[pid]: `), `imap-login: Info: Login: …` (Dovecot's
/// own `log_path`), `auth-worker(304): pam(user,ip): …`,
/// `auth(user,ip,sasl:login)<session>: Info: sql: Password mismatch` (2.4).
pub(super) fn parse<'a>(
    _at: Timestamp,
    _message: &'a [u8],
    _state: &mut DovecotState,
) -> Parsed<'a> {
    Parsed::Unknown
}
