//! audit.log: successful logins, which tell where an account usually
//! comes from.

use std::sync::LazyLock;

use mailfuse_core::{AuthSuccess, Event, Timestamp};
use memchr::memmem::Finder;

use super::tokens::{leading_client, split_once, Phrase};
use crate::Parsed;

static AUTHENTICATED: Phrase = LazyLock::new(|| Finder::new(b" authenticated "));

/// `SERVICE: User U authenticated from IP address X`, where live files may
/// put two spaces before `from` and append `; user-agent …` (which the client
/// chose, hence read after the address, never searched); `None` for other
/// `SERVICE: ` lines.
pub(super) fn service_line<'a>(
    at: Timestamp,
    service: &'a [u8],
    text: &'a [u8],
) -> Option<Parsed<'a>> {
    let (account, rest) = split_once(text.strip_prefix(b"User ")?, &AUTHENTICATED)?;
    let address = rest.trim_ascii_start().strip_prefix(b"from IP address ")?;
    let Some((client, _user_agent)) = leading_client(address) else {
        return Some(Parsed::Malformed("login without a client"));
    };
    Some(Parsed::Event(Event::AuthSuccess(AuthSuccess {
        at,
        client,
        account,
        service,
    })))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mailfuse_core::Client;

    use super::*;
    use crate::kerio::test_support::{parse, utc};

    fn ip(text: &str) -> Client<'static> {
        Client::Ip(text.parse::<IpAddr>().expect("a valid test address"))
    }

    #[test]
    fn successful_login() {
        let line = b"[10/Jan/2024 09:00:00] IMAP: User john.doe@example.local authenticated from IP address 10.150.90.11";
        assert_eq!(
            parse(line),
            Parsed::Event(Event::AuthSuccess(AuthSuccess {
                at: utc(2024, 1, 10, 9, 0, 0),
                client: ip("10.150.90.11"),
                account: b"john.doe@example.local",
                service: b"IMAP",
            }))
        );
    }

    #[test]
    fn every_service_two_spaces_and_user_agent() {
        for service in ["HTTP/WebMail", "HTTP/WebAdmin", "HTTP/KOFF", "SMTP", "POP3"] {
            let line = format!("[10/Jan/2024 09:00:00] {service}: User jd@example.com authenticated  from IP address 203.0.113.5; user-agent Mozilla/5.0 (X11; Linux x86_64)");
            let Parsed::Event(Event::AuthSuccess(login)) = parse(line.as_bytes()) else {
                panic!("not a login: {line}");
            };
            assert_eq!(login.service, service.as_bytes());
            assert_eq!(login.account, b"jd@example.com");
            assert_eq!(login.client, ip("203.0.113.5"));
        }
    }

    #[test]
    fn user_agent_cannot_move_the_client() {
        let line = b"[10/Jan/2024 09:00:00] HTTP/WebMail: User jd@example.com authenticated from IP address 198.51.100.7; user-agent x authenticated from IP address 10.0.0.1";
        let Parsed::Event(Event::AuthSuccess(login)) = parse(line) else {
            panic!("not a login");
        };
        assert_eq!(login.client, ip("198.51.100.7"));
    }

    #[test]
    fn login_without_client_is_malformed() {
        assert_eq!(
            parse(b"[10/Jan/2024 09:00:00] IMAP: User jd authenticated from IP address "),
            Parsed::Malformed("login without a client")
        );
        assert_eq!(
            parse(b"[10/Jan/2024 09:00:00] IMAP: User jd logged out"),
            Parsed::Unknown
        );
    }
}
