//! Small readers shared by Kerio's sentence-like lines (security.log,
//! audit.log) and its mail fields: service names, client names, splitting.

use std::sync::LazyLock;

use mailfuse_core::{net, Client};
use memchr::memchr3;
use memchr::memmem::{Finder, FinderRev};

/// A phrase searched for in many lines, its searcher built once (the
/// formats' shared [`Phrase`](crate::values::Phrase)):
/// `static X: Phrase = LazyLock::new(|| Finder::new(b"…"));`
pub(super) use crate::values::Phrase;

/// A [`Phrase`] searched from the end of the text.
pub(super) type PhraseFromEnd = LazyLock<FinderRev<'static>>;

/// The service name and the text after `SERVICE: `, the way Kerio starts a
/// line about one service (`SMTP: …`, `HTTP/WebMail: …`).
pub(super) fn service_prefix(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let name_len = body.iter().position(|&b| !is_service_byte(b))?;
    let (service, rest) = body.split_at_checked(name_len)?;
    if service.is_empty() {
        return None;
    }
    Some((service, rest.strip_prefix(b": ")?))
}

/// Whether `name` can be a Kerio service name (`SMTP`, `POP3`, `HTTP/KOFF`).
pub(super) fn is_service_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_service_byte(b))
}

fn is_service_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.')
}

/// The client named at the start of `text` (up to a space, comma or
/// semicolon, without a sentence's final period) and the text after it.
pub(super) fn leading_client(text: &[u8]) -> Option<(Client<'_>, &[u8])> {
    let name_len = memchr3(b' ', b',', b';', text).unwrap_or(text.len());
    let (name, rest) = text.split_at_checked(name_len)?;
    Some((client_named(without_period(name))?, rest))
}

/// A client as Kerio names it: its IP address when `name` parses as one,
/// else a host name (security.log sometimes logs those); `None` if empty.
pub(super) fn client_named(name: &[u8]) -> Option<Client<'_>> {
    if name.is_empty() {
        return None;
    }
    Some(net::parse_ip(name).map_or(Client::Host(name), Client::Ip))
}

/// `text` without the period that ends Kerio's sentence
/// (`… Attempt from IP address 192.0.2.7.`).
pub(super) fn without_period(text: &[u8]) -> &[u8] {
    text.strip_suffix(b".").unwrap_or(text)
}

/// The text before and after the first `separator` in `text`.
pub(super) fn split_once<'a>(
    text: &'a [u8],
    separator: &Finder<'_>,
) -> Option<(&'a [u8], &'a [u8])> {
    split_around(text, separator.find(text)?, separator.needle().len())
}

/// The text before and after the last `separator` in `text`: the way to find
/// the fixed end of a line whose middle an attacker chose (a login name).
pub(super) fn rsplit_once<'a>(
    text: &'a [u8],
    separator: &FinderRev<'_>,
) -> Option<(&'a [u8], &'a [u8])> {
    split_around(text, separator.rfind(text)?, separator.needle().len())
}

fn split_around(text: &[u8], at: usize, len: usize) -> Option<(&[u8], &[u8])> {
    let (before, rest) = text.split_at_checked(at)?;
    Some((before, rest.get(len..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_prefixes() {
        assert_eq!(
            service_prefix(b"HTTP/WebMail: Invalid password"),
            Some((&b"HTTP/WebMail"[..], &b"Invalid password"[..]))
        );
        assert_eq!(service_prefix(b"SMTP Spam attack detected"), None);
        assert_eq!(service_prefix(b": x"), None);
        assert_eq!(service_prefix(b"SMTP:x"), None);
        assert!(is_service_name(b"POP3") && !is_service_name(b"PO P3") && !is_service_name(b""));
    }

    #[test]
    fn clients_are_addresses_or_host_names() {
        let (client, rest) = leading_client(b"192.0.2.7. rest").unwrap();
        assert_eq!(client, Client::Ip("192.0.2.7".parse().unwrap()));
        assert_eq!(rest, b" rest");
        let (client, rest) = leading_client(b"mx.example.com, user x").unwrap();
        assert_eq!(client, Client::Host(b"mx.example.com"));
        assert_eq!(rest, b", user x");
        let (client, _) = leading_client(b"2001:db8::1;ua").unwrap();
        assert_eq!(client, Client::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(leading_client(b", user x"), None);
        assert_eq!(leading_client(b"."), None);
    }

    #[test]
    fn splits_at_first_or_last_separator() {
        static SEPARATOR: Phrase = LazyLock::new(|| Finder::new(b". X "));
        static SEPARATOR_FROM_END: PhraseFromEnd = LazyLock::new(|| FinderRev::new(b". X "));
        assert_eq!(
            split_once(b"a. X b. X c", &SEPARATOR),
            Some((&b"a"[..], &b"b. X c"[..]))
        );
        assert_eq!(
            rsplit_once(b"a. X b. X c", &SEPARATOR_FROM_END),
            Some((&b"a. X b"[..], &b"c"[..]))
        );
        assert_eq!(split_once(b". X", &SEPARATOR), None);
    }
}
