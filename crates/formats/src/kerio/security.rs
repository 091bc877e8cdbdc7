//! security.log: failed logins and the clients the server refused.
//!
//! These lines are English sentences. Some name a login the client chose
//! (`User printer@example.com doesn't exist. Attempt from IP address …`), so
//! an attacker controls the middle of the line: a sentence's fixed end is
//! found from the right ([`rsplit_once`]), where the client address Kerio
//! appends cannot be forged.

use std::sync::LazyLock;

use mailfuse_core::{
    AuthFailure, AuthFailureKind, BlockKind, Client, Event, ServerBlock, Timestamp,
};
use memchr::memmem::{self, Finder, FinderRev};

use super::tokens::{
    is_service_name, leading_client, rsplit_once, split_once, without_period, Phrase, PhraseFromEnd,
};
use crate::Parsed;

/// A refusal line that names the client right after a fixed opening.
struct BlockLine {
    opening: &'static [u8],
    /// Text that must follow the client name, to tell lines sharing an opening apart.
    then: &'static [u8],
    kind: BlockKind,
}

const BLOCK_LINES: [BlockLine; 5] = [
    BlockLine {
        opening: b"SMTP Spam attack detected from ",
        then: b"",
        kind: BlockKind::SpamAttack,
    },
    BlockLine {
        opening: b"IP address ",
        then: b" found in DNS blacklist",
        kind: BlockKind::Dnsbl,
    },
    BlockLine {
        opening: b"Relay attempt from IP address ",
        then: b"",
        kind: BlockKind::RelayAttempt,
    },
    // The next two are from fail2ban's Kerio test lines.
    BlockLine {
        opening: b"Client with IP address ",
        then: b" has no reverse DNS entry",
        kind: BlockKind::Other,
    },
    BlockLine {
        opening: b"Message from IP address ",
        then: b"",
        kind: BlockKind::Other,
    },
];

/// Content-filter verdicts (`Found virus in mail from <a> to <b>: …`,
/// `Message from <a> to <b> rejected by spam filter: …`): they name
/// addresses but no client, so there is nothing to attribute.
const CONTENT_VERDICT_OPENINGS: [&[u8]; 2] = [b"Found virus in mail from ", b"Message from <"];

/// Between the service and the client of a `Failed … login` line.
static LOGIN_FROM: Phrase = LazyLock::new(|| Finder::new(b" login from "));
/// Before the client of an AntiHammering line.
static IP_ADDRESS: Phrase = LazyLock::new(|| Finder::new(b"IP address "));
/// How an unknown-recipient line ends; the client follows.
static COMMA_IP_ADDRESS: PhraseFromEnd = LazyLock::new(|| FinderRev::new(b", IP address "));
/// How a refused-login sentence ends; the client follows.
static ATTEMPT_FROM: PhraseFromEnd =
    LazyLock::new(|| FinderRev::new(b". Attempt from IP address "));
/// Between the login and the policy's reason in a denied-login sentence.
static LOGIN_DENIED: PhraseFromEnd = LazyLock::new(|| FinderRev::new(b" - login denied: "));

/// The service Kerio's administration web interface logs in to.
const WEB_ADMIN: &[u8] = b"HTTP/WebAdmin";

/// A security.log line that does not start with `SERVICE: `; `None` if it
/// is not one this module knows.
pub(super) fn line(at: Timestamp, body: &[u8]) -> Option<Parsed<'_>> {
    if let Some(rest) = body.strip_prefix(b"Failed ") {
        return failed_login(at, rest);
    }
    if let Some(rest) = body.strip_prefix(b"Attempt to deliver to unknown recipient ") {
        // The recipient and sender the client chose come first; the client last.
        let client = rsplit_once(rest, &COMMA_IP_ADDRESS).and_then(|(_, ip)| leading_client(ip));
        return Some(blocked(
            at,
            body,
            client.map(|(client, _)| client),
            BlockKind::UnknownRecipient,
        ));
    }
    if let Some(rest) = body.strip_prefix(b"Administration login into Web Administration from ") {
        return Some(admin_login(at, rest));
    }
    for block in &BLOCK_LINES {
        if let Some(rest) = body.strip_prefix(block.opening) {
            let (client, after) = leading_client(rest)?;
            return after
                .starts_with(block.then)
                .then(|| blocked(at, body, Some(client), block.kind));
        }
    }
    CONTENT_VERDICT_OPENINGS
        .iter()
        .any(|opening| body.starts_with(opening))
        .then_some(Parsed::Ignored)
}

/// A security.log line `SERVICE: text`; `None` if it is not one this
/// module knows (it may be an audit.log line).
pub(super) fn service_line<'a>(
    at: Timestamp,
    body: &'a [u8],
    service: &'a [u8],
    text: &'a [u8],
) -> Option<Parsed<'a>> {
    if let Some(rest) = text.strip_prefix(b"AntiHammering") {
        // `AntiHammering - IP address X will be blocked for 5 minutes, …`
        // `AntiHammering: connection from IP address X is blocked`
        let client = split_once(rest, &IP_ADDRESS).and_then(|(_, ip)| leading_client(ip));
        return Some(blocked(
            at,
            body,
            client.map(|(client, _)| client),
            BlockKind::AntiHammering,
        ));
    }
    refused_login(at, service, text)
}

/// `SERVICE login from CLIENT with SASL method M.` or
/// `SERVICE login from CLIENT, REASON` (after `Failed `).
fn failed_login(at: Timestamp, text: &[u8]) -> Option<Parsed<'_>> {
    let (service, rest) = split_once(text, &LOGIN_FROM)?;
    if !is_service_name(service) {
        return None;
    }
    let Some((client, rest)) = leading_client(rest) else {
        return Some(Parsed::Malformed("failed login without a client"));
    };
    let (account, kind) = match rest.strip_prefix(b", ") {
        Some(reason) => failure_reason(reason),
        // ` with SASL method CRAM-MD5.`: the password did not match.
        None => (None, AuthFailureKind::BadPassword),
    };
    Some(auth_failure(at, client, account, service, kind))
}

/// The login and kind of failure in the reason of a `Failed … login` line:
/// `user U` (wrong password), `user U not found`, or a reason the server gave
/// up before checking any password (`missing parameter in AUTHENTICATE
/// header`, `authentication method PLAIN is disabled`): the client broke the
/// protocol.
fn failure_reason(reason: &[u8]) -> (Option<&[u8]>, AuthFailureKind) {
    let Some(user) = reason.strip_prefix(b"user ") else {
        return (None, AuthFailureKind::Protocol);
    };
    let user = without_period(user);
    match user.strip_suffix(b" not found") {
        Some(unknown) => (Some(unknown), AuthFailureKind::UnknownUser),
        None => (Some(user), AuthFailureKind::BadPassword),
    }
}

/// `SERVICE: Invalid password for user U. Attempt from IP address X`,
/// `SERVICE: User U doesn't exist. Attempt from IP address X.`,
/// `SERVICE: User U - login denied: REASON. Attempt from IP address X.`
fn refused_login<'a>(at: Timestamp, service: &'a [u8], text: &'a [u8]) -> Option<Parsed<'a>> {
    let (sentence, address) = rsplit_once(text, &ATTEMPT_FROM)?;
    let user_sentence = sentence.strip_prefix(b"User ");
    let (account, kind) = if let Some(user) = sentence.strip_prefix(b"Invalid password for user ") {
        (user, AuthFailureKind::BadPassword)
    } else if let Some(user) = user_sentence.and_then(|s| s.strip_suffix(b" doesn't exist")) {
        (user, AuthFailureKind::UnknownUser)
    } else if let Some((user, _reason)) = user_sentence.and_then(|s| rsplit_once(s, &LOGIN_DENIED))
    {
        (user, AuthFailureKind::Denied)
    } else {
        return None;
    };
    let Some((client, _)) = leading_client(address) else {
        return Some(Parsed::Malformed("refused login without a client"));
    };
    Some(auth_failure(at, client, Some(account), service, kind))
}

/// `Administration login into Web Administration from X failed: REASON`
/// (after the opening): refused by policy when the reason says the address
/// is not allowed, else a wrong password.
fn admin_login(at: Timestamp, text: &[u8]) -> Parsed<'_> {
    let Some((client, reason)) = leading_client(text) else {
        return Parsed::Malformed("failed administration login without a client");
    };
    let kind = if memmem::find(reason, b"not allowed").is_some() {
        AuthFailureKind::Denied
    } else {
        AuthFailureKind::BadPassword
    };
    auth_failure(at, client, None, WEB_ADMIN, kind)
}

fn auth_failure<'a>(
    at: Timestamp,
    client: Client<'a>,
    account: Option<&'a [u8]>,
    service: &'a [u8],
    kind: AuthFailureKind,
) -> Parsed<'a> {
    Parsed::Event(Event::AuthFailure(AuthFailure {
        at,
        client,
        account: account.filter(|account| !account.is_empty()),
        service,
        kind,
        attempts: 1,
    }))
}

/// A refusal of `client` (`None`: the line names none); `detail` is the
/// whole body, the server's own words.
fn blocked<'a>(
    at: Timestamp,
    detail: &'a [u8],
    client: Option<Client<'a>>,
    kind: BlockKind,
) -> Parsed<'a> {
    match client {
        Some(client) => Parsed::Event(Event::ServerBlock(ServerBlock {
            at,
            client,
            kind,
            detail,
            refusals: 1,
        })),
        None => Parsed::Malformed("server block without a client"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::kerio::test_support::{parse, utc};

    fn ip(text: &str) -> Client<'static> {
        Client::Ip(text.parse::<IpAddr>().expect("a valid test address"))
    }

    fn failure(line: &[u8]) -> AuthFailure<'_> {
        crate::expect::auth_failure(parse(line))
    }

    fn block(line: &[u8]) -> ServerBlock<'_> {
        crate::expect::block(parse(line))
    }

    #[test]
    fn failed_smtp_login_with_sasl_method() {
        let line = b"[18/May/2017 07:25:15] Failed SMTP login from 203.0.113.112 with SASL method CRAM-MD5.";
        assert_eq!(
            failure(line),
            AuthFailure {
                at: utc(2017, 5, 18, 7, 25, 15),
                client: ip("203.0.113.112"),
                account: None,
                service: b"SMTP",
                kind: AuthFailureKind::BadPassword,
                attempts: 1,
            }
        );
        let by_name = b"[17/Nov/2023 11:31:07] Failed SMTP login from suspiciousdomain1.example with SASL method LOGIN.";
        assert_eq!(
            failure(by_name).client,
            Client::Host(b"suspiciousdomain1.example")
        );
    }

    #[test]
    fn failed_imap_and_pop3_logins_with_reasons() {
        let check = |reason: &str, service: &[u8], account: Option<&[u8]>, kind| {
            let line = format!(
                "[13/Apr/2004 17:35:49] Failed {} login from 192.0.2.9, {reason}",
                String::from_utf8_lossy(service)
            );
            let expected = AuthFailure {
                at: utc(2004, 4, 13, 17, 35, 49),
                client: ip("192.0.2.9"),
                account,
                service,
                kind,
                attempts: 1,
            };
            assert_eq!(failure(line.as_bytes()), expected, "{line}");
        };
        let someone = Some(&b"someone@example.com"[..]);
        check(
            "user someone@example.com",
            b"IMAP",
            someone,
            AuthFailureKind::BadPassword,
        );
        check(
            "user someone@example.com.",
            b"POP3",
            someone,
            AuthFailureKind::BadPassword,
        );
        check(
            "user ghost@example.com not found",
            b"IMAP",
            Some(b"ghost@example.com"),
            AuthFailureKind::UnknownUser,
        );
        check(
            "missing parameter in AUTHENTICATE header",
            b"IMAP",
            None,
            AuthFailureKind::Protocol,
        );
        check(
            "authentication method PLAIN is disabled",
            b"POP3",
            None,
            AuthFailureKind::Protocol,
        );
    }

    #[test]
    fn invalid_password_for_any_service() {
        let line = b"[25/Aug/2022 16:44:05] HTTP/WebMail: Invalid password for user someone@example.xyz. Attempt from IP address 198.51.100.125";
        assert_eq!(
            failure(line),
            AuthFailure {
                at: utc(2022, 8, 25, 16, 44, 5),
                client: ip("198.51.100.125"),
                account: Some(b"someone@example.xyz"),
                service: b"HTTP/WebMail",
                kind: AuthFailureKind::BadPassword,
                attempts: 1,
            }
        );
        let imap = b"[25/Aug/2022 16:44:05] IMAP: Invalid password for user bob. Attempt from IP address 2001:db8::7.";
        let imap = failure(imap);
        assert_eq!(
            (imap.service, imap.account),
            (&b"IMAP"[..], Some(&b"bob"[..]))
        );
        assert_eq!(imap.client, ip("2001:db8::7"));
    }

    #[test]
    fn unknown_user() {
        let line = b"[17/May/2017 19:43:42] SMTP: User printer@example.com doesn't exist. Attempt from IP address 185.140.108.26.";
        assert_eq!(
            failure(line),
            AuthFailure {
                at: utc(2017, 5, 17, 19, 43, 42),
                client: ip("185.140.108.26"),
                account: Some(b"printer@example.com"),
                service: b"SMTP",
                kind: AuthFailureKind::UnknownUser,
                attempts: 1,
            }
        );
    }

    #[test]
    fn login_denied_by_policy() {
        let line = b"[17/May/2017 19:43:42] IMAP: User someone@example.com - login denied: Access Policy rule 'Office only' used. Attempt from IP address 192.0.2.9.";
        assert_eq!(
            failure(line),
            AuthFailure {
                at: utc(2017, 5, 17, 19, 43, 42),
                client: ip("192.0.2.9"),
                account: Some(b"someone@example.com"),
                service: b"IMAP",
                kind: AuthFailureKind::Denied,
                attempts: 1,
            }
        );
    }

    #[test]
    fn web_administration_login() {
        let denied = b"[17/May/2017 19:45:27] Administration login into Web Administration from 198.51.100.136 failed: IP address not allowed";
        assert_eq!(
            failure(denied),
            AuthFailure {
                at: utc(2017, 5, 17, 19, 45, 27),
                client: ip("198.51.100.136"),
                account: None,
                service: b"HTTP/WebAdmin",
                kind: AuthFailureKind::Denied,
                attempts: 1,
            }
        );
        let guessed = b"[17/May/2017 19:45:28] Administration login into Web Administration from 198.51.100.136 failed: bad user name or password";
        assert_eq!(failure(guessed).kind, AuthFailureKind::BadPassword);
    }

    #[test]
    fn forged_login_names_cannot_move_the_client_or_pass_as_success() {
        // The client typed a login shaped like an audit.log success line.
        let line = b"[17/May/2017 19:43:42] SMTP: User a@example.com authenticated from IP address 10.0.0.1 doesn't exist. Attempt from IP address 203.0.113.66.";
        let forged = failure(line);
        assert_eq!(forged.client, ip("203.0.113.66"));
        assert_eq!(forged.kind, AuthFailureKind::UnknownUser);
        assert_eq!(
            forged.account,
            Some(&b"a@example.com authenticated from IP address 10.0.0.1"[..])
        );
        // … or one holding a fake client address.
        let line = b"[25/Aug/2022 16:44:05] HTTP/WebMail: Invalid password for user x. Attempt from IP address 10.0.0.1. Attempt from IP address 203.0.113.66";
        let forged = failure(line);
        assert_eq!(forged.client, ip("203.0.113.66"));
        assert_eq!(
            forged.account,
            Some(&b"x. Attempt from IP address 10.0.0.1"[..])
        );
    }

    #[test]
    fn anti_hammering_blocks() {
        for line in [
            &b"[17/Nov/2023 11:31:08] SMTP: AntiHammering - IP address 192.0.2.7 will be blocked for 5 minutes, too many failed logins from this IP address."[..],
            b"[17/Nov/2023 11:31:08] SMTP: AntiHammering: connection from IP address 192.0.2.7 is blocked",
        ] {
            assert_eq!(
                block(line),
                ServerBlock {
                    at: utc(2023, 11, 17, 11, 31, 8),
                    client: ip("192.0.2.7"),
                    kind: BlockKind::AntiHammering,
                    detail: &line[23..],
                    refusals: 1,
                }
            );
        }
        assert_eq!(
            parse(b"[17/Nov/2023 11:31:08] SMTP: AntiHammering - too many connections"),
            Parsed::Malformed("server block without a client")
        );
    }

    #[test]
    fn refused_clients() {
        let cases: [(&[u8], &str, BlockKind); 6] = [
            (
                b"[17/Jun/2011 17:00:45] Attempt to deliver to unknown recipient <advertise@example.com>, from <x@example.org>, IP address 203.0.113.178",
                "203.0.113.178",
                BlockKind::UnknownRecipient,
            ),
            (
                b"[18/Jan/2014 06:41:25] SMTP Spam attack detected from 198.51.100.195, client closed connection before SMTP greeting",
                "198.51.100.195",
                BlockKind::SpamAttack,
            ),
            (
                b"[29/May/2017 17:29:29] IP address 192.0.2.56 found in DNS blacklist SpamCop, mail from <a@example.org> to <c@example.com> rejected",
                "192.0.2.56",
                BlockKind::Dnsbl,
            ),
            (
                b"[30/Dec/2013 05:27:59] Relay attempt from IP address 198.51.100.75, mail from <a@example.org> to <c@example.net> rejected",
                "198.51.100.75",
                BlockKind::RelayAttempt,
            ),
            (
                b"[17/May/2017 19:44:25] Client with IP address 203.0.113.211 has no reverse DNS entry, connection rejected before SMTP greeting",
                "203.0.113.211",
                BlockKind::Other,
            ),
            (
                b"[17/May/2017 22:14:57] Message from IP address 192.0.2.82, sender <promo@example.site> rejected: sender domain does not exist",
                "192.0.2.82",
                BlockKind::Other,
            ),
        ];
        for (line, client, kind) in cases {
            let refused = block(line);
            assert_eq!(
                (refused.client, refused.kind, refused.detail),
                (ip(client), kind, &line[23..]),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn unknown_recipient_addresses_cannot_move_the_client() {
        let line = b"[17/Jun/2011 17:00:45] Attempt to deliver to unknown recipient <a, IP address 10.0.0.1@example.com>, from <x@example.org>, IP address 203.0.113.178";
        assert_eq!(block(line).client, ip("203.0.113.178"));
    }

    #[test]
    fn content_verdicts_are_ignored() {
        for line in [
            &b"[16/Jun/2004 18:37:17] Found virus in mail from <a@example.org> to <b@example.com>: W32/Netsky.p@MM"[..],
            b"[16/Jun/2004 18:37:17] Message from <a@example.org> to <b@example.com> rejected by spam filter: score 9.74, threshold 5.00",
        ] {
            assert_eq!(parse(line), Parsed::Ignored);
        }
    }

    #[test]
    fn lines_missing_their_client() {
        assert_eq!(
            parse(b"[18/May/2017 07:25:15] Failed SMTP login from  with SASL method LOGIN."),
            Parsed::Malformed("failed login without a client")
        );
        assert_eq!(
            parse(b"[18/May/2017 07:25:15] SMTP: User x doesn't exist. Attempt from IP address ."),
            Parsed::Malformed("refused login without a client")
        );
        assert_eq!(
            parse(b"[18/May/2017 07:25:15] Administration login into Web Administration from "),
            Parsed::Malformed("failed administration login without a client")
        );
        // Not a login line at all: `Failed` followed by something else.
        assert_eq!(
            parse(b"[18/May/2017 07:25:15] Failed to bind port 25"),
            Parsed::Unknown
        );
    }
}
