//! Dovecot's `last_login` plugin, kept in a `file:` dict
//! (`last_login_dict = file:/var/lib/dovecot/last-login.dict`): the last
//! login of every user, however long ago, where the logs reach back days.
//!
//! The file alternates key and value lines, each tab-escaped (`\x01`
//! then `0`, `1`, `t`, `r` or `n` for NUL, `\x01`, tab, CR, LF). The
//! plugin's keys are `shared/` and its `last_login_key`, by default
//! `last-login/USER`; the value is the login's time since 1970 in seconds,
//! or in milli-, micro- or nanoseconds (`last_login_precision`).

use std::path::Path;

use anyhow::{Context, Result};
use mailfuse_core::Timestamp;

/// The keys of the plugin's default `last_login_key`, as the dict has them.
const PREFIX: &[u8] = b"shared/last-login/";
/// Seconds since 1970 stay below this until the year 5138: a bigger value
/// is in a finer unit (ms, µs, ns), a thousand times per step.
const SECONDS_BELOW: u64 = 100_000_000_000;

/// What the dict holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LastLogins {
    /// Each user (as Dovecot names it) and the time of its last login.
    pub logins: Vec<(Vec<u8>, Timestamp)>,
    /// Keys of the plugin whose value is not a time.
    pub unreadable: usize,
    /// Keys of something else (another `last_login_key`, another plugin).
    pub other_keys: usize,
}

/// Reads the dict file at `path`.
pub fn read(path: &Path) -> Result<LastLogins> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read Dovecot's last-login dict {} (the file of \
             last_login_dict = file:…; Dovecot creates it at the first login)",
            path.display()
        )
    })?;
    Ok(parse(&bytes))
}

/// The last logins in a dict file's bytes. A key without its value line
/// (a file cut short) is left out, as Dovecot does.
pub fn parse(bytes: &[u8]) -> LastLogins {
    let mut found = LastLogins::default();
    let mut lines = bytes.split(|&b| b == b'\n');
    while let (Some(key), Some(value)) = (lines.next(), lines.next()) {
        let key = unescape(key);
        let Some(user) = key.strip_prefix(PREFIX).filter(|user| !user.is_empty()) else {
            found.other_keys += usize::from(!key.is_empty());
            continue;
        };
        match time(&unescape(value)) {
            Some(at) => found.logins.push((user.to_vec(), at)),
            None => found.unreadable += 1,
        }
    }
    found
}

/// A line of the dict, tab-unescaped.
fn unescape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut bytes = line.iter();
    while let Some(&b) = bytes.next() {
        if b != 1 {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'0') => out.push(0),
            Some(b'1') => out.push(1),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(&other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The value's time, whatever the precision; `None` unless a positive
/// whole number.
fn time(value: &[u8]) -> Option<Timestamp> {
    let mut units: u64 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    while units >= SECONDS_BELOW {
        units /= 1000;
    }
    let seconds = i64::try_from(units).ok().filter(|&s| s > 0)?;
    Some(Timestamp(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_and_values_in_any_precision() {
        let dict = b"shared/last-login/anna@example.com\n1780000000\n\
            shared/last-login/bob\n1780000001234\n\
            shared/last-login/eve\x01tx@example.com\n1780000002123456789\n\
            priv/quota/storage\n1024\n\
            shared/last-login/broken\nyesterday\n\
            shared/last-login/cut";
        let found = parse(dict);
        assert_eq!(
            found.logins,
            [
                (b"anna@example.com".to_vec(), Timestamp(1_780_000_000)),
                (b"bob".to_vec(), Timestamp(1_780_000_001)),
                (b"eve\tx@example.com".to_vec(), Timestamp(1_780_000_002)),
            ]
        );
        assert_eq!((found.unreadable, found.other_keys), (1, 1));
    }

    #[test]
    fn garbage_is_no_login_and_no_crash() {
        for bytes in [
            &b""[..],
            b"\n",
            b"\x01",
            b"shared/last-login/x\n\x01",
            b"shared/last-login/x\n-5\n",
            b"shared/last-login/x\n99999999999999999999999\n",
            b"\xff\xfe\n\x00\n",
        ] {
            assert!(parse(bytes).logins.is_empty(), "{bytes:?}");
        }
        assert_eq!(
            unescape(b"a\x011b\x010\x01r\x01n\x01x\x01"),
            b"a\x01b\x00\r\nx"
        );
    }
}
