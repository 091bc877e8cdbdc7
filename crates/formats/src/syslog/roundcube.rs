//! Roundcube's lines (`log_driver = syslog`, ident `roundcube`): the
//! webmail's successful logins, which name the browser's IP that Postfix
//! and Dovecot only see as the webmail's own loopback connection.
//!
//! With `log_logins`, Roundcube writes (since 1.4 after the first 8
//! characters of the session id, `log_session_id`):
//!
//! ```text
//! <n9q3yf0f> Successful login for j.novak@acme.example (ID: 3) from 198.51.100.7 in session n9q3yf0fr8xaaab4
//! ```
//!
//! The address is PHP's `REMOTE_ADDR`, followed when a proxy set them by
//! its headers: `127.0.0.1 (X-Real-IP: 198.51.100.7,X-Forwarded-For:
//! 198.51.100.7)` (before 1.5 without the space). The user name is the
//! login the IMAP server accepted; everything from ` (ID: ` on is
//! Roundcube's, except the headers, which a client may have sent.
//!
//! Failed logins (`Failed login for … from … (error: N)`) are not counted:
//! the IMAP server behind the webmail logs the same attempt.

use mailfuse_core::net::{is_internal, parse_ip};
use mailfuse_core::{AuthSuccess, Client, Event, Timestamp};
use memchr::memmem;

use crate::Parsed;

/// The service of a Roundcube login: a webmail one, which the account's
/// mail from the server itself is attributed to.
const SERVICE: &[u8] = b"webmail";
const SUCCESSFUL_LOGIN: &[u8] = b"Successful login for ";
const ID_OPEN: &[u8] = b" (ID: ";
const FROM: &[u8] = b") from ";
const IN_SESSION: &[u8] = b" in session ";

/// A Roundcube line's message (after `roundcube: `).
pub(crate) fn parse(at: Timestamp, message: &[u8]) -> Parsed<'_> {
    let message = without_session_tag(message);
    let Some(rest) = message.strip_prefix(SUCCESSFUL_LOGIN) else {
        // Errors, failed logins, other logs routed to syslog: nothing to count.
        return Parsed::Ignored;
    };
    match login(rest) {
        Some((account, ip)) => Parsed::Event(Event::AuthSuccess(AuthSuccess {
            at,
            client: Client::Ip(ip),
            account,
            service: SERVICE,
        })),
        None => Parsed::Malformed("Roundcube login without a readable user or address"),
    }
}

/// `message` after the `<abcd1234> ` session tag, if it has one.
fn without_session_tag(message: &[u8]) -> &[u8] {
    let tagged = message.first() == Some(&b'<');
    match memmem::find(message, b"> ") {
        Some(end) if tagged && end <= 64 => message.get(end + 2..).unwrap_or_default(),
        _ => message,
    }
}

/// The user and client of `USER (ID: N) from ADDRESS in session S`.
fn login(rest: &[u8]) -> Option<(&[u8], std::net::IpAddr)> {
    let id_at = memmem::find(rest, ID_OPEN)?;
    let account = rest.get(..id_at).filter(|user| !user.is_empty())?;
    let after_id = rest.get(id_at + ID_OPEN.len()..)?;
    let digits = after_id.iter().take_while(|b| b.is_ascii_digit()).count();
    let from = after_id
        .get(digits..)?
        .strip_prefix(FROM)
        .filter(|_| digits > 0)?;
    // The session id holds no space: the last ` in session ` is Roundcube's.
    let address = from.get(..memmem::rfind(from, IN_SESSION)?)?;
    Some((account, client_ip(address)?))
}

/// The client of `REMOTE_ADDR[ (headers)]`: `REMOTE_ADDR` itself unless it
/// is an internal address (a reverse proxy on the server or the network),
/// then the address that proxy added: the last of `X-Forwarded-For`, else
/// `X-Real-IP`.
fn client_ip(address: &[u8]) -> Option<std::net::IpAddr> {
    let end = address
        .iter()
        .position(|&b| b == b' ' || b == b'(')
        .unwrap_or(address.len());
    let (remote, headers) = address.split_at_checked(end)?;
    let remote = parse_ip(remote)?;
    if !is_internal(remote) {
        return Some(remote);
    }
    let headers = headers.trim_ascii_start();
    let headers = headers
        .strip_prefix(b"(")
        .and_then(|h| h.strip_suffix(b")"))
        .unwrap_or_default();
    Some(forwarded(headers).unwrap_or(remote))
}

/// The client a proxy named in Roundcube's `X-Real-IP: A,X-Forwarded-For: B, C`.
fn forwarded(headers: &[u8]) -> Option<std::net::IpAddr> {
    const FORWARDED_FOR: &[u8] = b"X-Forwarded-For: ";
    const REAL_IP: &[u8] = b"X-Real-IP: ";
    // X-Forwarded-For comes last: its value runs to the end.
    if let Some(at) = memmem::rfind(headers, FORWARDED_FOR) {
        let list = headers.get(at + FORWARDED_FOR.len()..)?;
        let last = list.rsplit(|&b| b == b',').next()?;
        if let Some(ip) = parse_ip(last.trim_ascii()) {
            return Some(ip);
        }
    }
    let at = memmem::find(headers, REAL_IP)?;
    let value = headers.get(at + REAL_IP.len()..)?;
    let value = value.split(|&b| b == b',').next()?;
    parse_ip(value.trim_ascii())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const AT: Timestamp = Timestamp(1_793_800_000);

    fn client_of(message: &[u8]) -> Option<(String, String)> {
        match parse(AT, message) {
            Parsed::Event(Event::AuthSuccess(success)) => {
                assert_eq!(success.service, b"webmail");
                assert_eq!(success.at, AT);
                Some((
                    String::from_utf8_lossy(success.account).into_owned(),
                    success.client.ip().unwrap().to_string(),
                ))
            }
            _ => None,
        }
    }

    #[test]
    fn successful_logins_name_the_browsers_address() {
        let cases: [(&[u8], &str, &str); 6] = [
            (
                b"<n9q3yf0f> Successful login for j.novak@acme.example (ID: 3) from 198.51.100.7 in session n9q3yf0fr8xaaab4",
                "j.novak@acme.example",
                "198.51.100.7",
            ),
            // Before 1.4: no session tag.
            (
                b"Successful login for eva (ID: 12) from 2001:db8:7::1 in session 4f1c2a9d0e",
                "eva",
                "2001:db8:7::1",
            ),
            // Behind a reverse proxy on the server (1.5+ wording).
            (
                b"<k2m8x1aa> Successful login for j.novak@acme.example (ID: 3) from 127.0.0.1 (X-Real-IP: 198.51.100.7,X-Forwarded-For: 198.51.100.7) in session k2m8x1aab7",
                "j.novak@acme.example",
                "198.51.100.7",
            ),
            // Before 1.5, no space; a client's own X-Forwarded-For entry
            // comes before the one the proxy added.
            (
                b"Successful login for j.novak@acme.example (ID: 3) from 10.0.0.2(X-Forwarded-For: 203.0.113.66, 198.51.100.7) in session k2m8x1aab7",
                "j.novak@acme.example",
                "198.51.100.7",
            ),
            // A public REMOTE_ADDR is the client, whatever headers it sent.
            (
                b"Successful login for j.novak@acme.example (ID: 3) from 198.51.100.7 (X-Forwarded-For: 203.0.113.66) in session k2m8x1aab7",
                "j.novak@acme.example",
                "198.51.100.7",
            ),
            // A proxy that names no one: the proxy it is.
            (
                b"Successful login for j.novak@acme.example (ID: 3) from 127.0.0.1 in session k2m8x1aab7",
                "j.novak@acme.example",
                "127.0.0.1",
            ),
        ];
        for (message, account, ip) in cases {
            assert_eq!(
                client_of(message),
                Some((account.into(), ip.into())),
                "{}",
                String::from_utf8_lossy(message)
            );
        }
    }

    #[test]
    fn other_lines_are_ignored_and_broken_logins_malformed() {
        for message in [
            &b"<n9q3yf0f> Failed login for admin from 203.0.113.66 in session n9q3yf0f (error: 0)"
                [..],
            b"PHP Error: Failed to connect to IMAP server (POST /?_task=login&_action=login)",
            b"",
        ] {
            assert_eq!(parse(AT, message), Parsed::Ignored);
        }
        for message in [
            &b"Successful login for x (ID: ) from 198.51.100.7 in session a"[..],
            b"Successful login for  (ID: 3) from 198.51.100.7 in session a",
            b"Successful login for x (ID: 3) from nowhere in session a",
            b"Successful login for x (ID: 3) from 198.51.100.7",
            b"Successful login for \xff\xfe",
        ] {
            assert!(
                matches!(parse(AT, message), Parsed::Malformed(_)),
                "{message:?}"
            );
        }
    }
}
