//! Lines about SMTP sessions and the daemon, not about one message: failed
//! logins, refused clients, and notices.

use mailfuse_core::{
    AuthFailure, AuthFailureKind, BlockKind, Client, Event, ServerBlock, Timestamp,
};
use memchr::memmem;

use super::words::{field, Host, Words};
use crate::Parsed;

/// Lines that carry nothing for detection: connections opening and
/// closing, queue runners, the daemon, timeouts and TLS trouble.
const NOTICES: [&[u8]; 18] = [
    b"SMTP connection from ",
    b"SMTP connection lost",
    b"no host name found for IP address ",
    b"no IP address found for host ",
    b"Start queue run",
    b"End queue run",
    b"exim ",
    b"Spool file is locked",
    b"cwd=",
    b"SMTP command timeout on ",
    b"SMTP data timeout ",
    b"SMTP syntax error in ",
    b"SMTP call from ",
    b"SMTP protocol synchronization error ",
    b"TLS error on connection from ",
    b"unexpected disconnection while reading SMTP command from ",
    b"no MAIL in SMTP connection from ",
    b"pid ",
];

/// Talking before the greeting: the mark of spam software. Exim writes the
/// whole text itself up to the host (the variants naming a command quote
/// it unescaped before `H=`, so they are left as notices).
const EARLY_TALKER: &[u8] =
    b"SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=";

/// Reasons that name what kind of refusal it was, most telling first.
const REFUSALS: [(&[u8], BlockKind); 7] = [
    (b"relay not permitted", BlockKind::RelayAttempt),
    (b"is in an RBL", BlockKind::Dnsbl),
    (b"is listed in", BlockKind::Dnsbl),
    (b"Unknown user", BlockKind::UnknownRecipient),
    (b"unknown user", BlockKind::UnknownRecipient),
    (b"Unrouteable address", BlockKind::UnknownRecipient),
    (b"No Such User Here", BlockKind::UnknownRecipient),
];

/// A line with no message id, from the text after its timestamp.
pub(super) fn line(at: Timestamp, text: &[u8]) -> Parsed<'_> {
    if let Some(host_text) = text.strip_prefix(b"H=") {
        return refusal(at, host_text);
    }
    if let Some(host_text) = text.strip_prefix(EARLY_TALKER) {
        let mut words = Words::new(host_text);
        let client = words.next().map_or(Client::Unknown, |first| {
            Host::read(first, &mut words).client()
        });
        return block(at, client, BlockKind::SpamAttack, text);
    }
    if NOTICES.iter().any(|notice| text.starts_with(notice)) {
        return Parsed::Ignored;
    }
    authenticator_failure(at, text).unwrap_or(Parsed::Unknown)
}

/// `NAME authenticator failed for HOST [I=…] [Ci=…]: CODE text (set_id=LOGIN)`.
///
/// The login is the client's: it may hold spaces, parentheses or another
/// `(set_id=`, so it runs from the first ` (set_id=` of the reply (Exim's
/// own text comes before it) to the line's last `)`. A line cut before
/// that `)` names no login: its end is lost.
fn authenticator_failure(at: Timestamp, text: &[u8]) -> Option<Parsed<'_>> {
    let (_authenticator, rest) = text.split_at_checked(memchr::memchr(b' ', text)?)?;
    let host_text = rest.strip_prefix(b" authenticator failed for ")?;
    let mut words = Words::until_reason(host_text);
    let client = words.next().map_or(Client::Unknown, |first| {
        Host::read(first, &mut words).client()
    });
    let Some(reply) = words.into_reason() else {
        return Some(Parsed::Malformed("authenticator failure without its reply"));
    };
    let account = memmem::find(reply, b" (set_id=").and_then(|at| {
        reply
            .get(at + b" (set_id=".len()..)?
            .strip_suffix(b")")
            .filter(|login| !login.is_empty())
    });
    // 435 "Unable to authenticate at present": the backend failed, not the password.
    let kind = if reply.starts_with(b"4") {
        AuthFailureKind::ServerFault
    } else {
        AuthFailureKind::BadPassword
    };
    Some(Parsed::Event(Event::AuthFailure(AuthFailure {
        at,
        client,
        account,
        service: b"SMTP",
        kind,
        attempts: 1,
    })))
}

/// A line about a client host, from the text after `H=`: a refusal when
/// Exim's fields before the reason include `rejected` (`H=… F=<a@b>
/// rejected RCPT <c@d>: relay not permitted`), else a notice (warnings,
/// dropped or incomplete sessions).
fn refusal(at: Timestamp, host_text: &[u8]) -> Parsed<'_> {
    let mut words = Words::until_reason(host_text);
    let Some(first) = words.next() else {
        return Parsed::Ignored;
    };
    let host = Host::read(first, &mut words);
    let mut refused = None;
    loop {
        let from_here = words.rest();
        let Some(word) = words.next() else { break };
        if word == b"rejected" || word == b"temporarily" {
            refused = Some(from_here);
            break;
        }
        if field(word).is_none() && !word.starts_with(b"<") {
            // Exim's fields (`I=`, `F=<…>`) come before the verb; other words
            // start some other sentence.
            break;
        }
    }
    let Some(sentence) = refused else {
        return Parsed::Ignored;
    };
    let reason = words.into_reason().unwrap_or_default();
    let kind = REFUSALS
        .iter()
        .find(|(phrase, _)| memmem::find(reason, phrase).is_some())
        .map_or(BlockKind::Other, |&(_, kind)| kind);
    block(at, host.client(), kind, sentence.trim_ascii_start())
}

fn block<'a>(at: Timestamp, client: Client<'a>, kind: BlockKind, detail: &'a [u8]) -> Parsed<'a> {
    Parsed::Event(Event::ServerBlock(ServerBlock {
        at,
        client,
        kind,
        detail,
        refusals: 1,
    }))
}

#[cfg(test)]
mod tests {
    use mailfuse_core::{AuthFailure, AuthFailureKind, BlockKind, Client, ServerBlock};

    use super::super::test_support::{parse, utc};
    use crate::Parsed;

    fn ip(text: &str) -> Client<'static> {
        Client::Ip(text.parse().unwrap())
    }

    fn auth_failure(line: &[u8]) -> AuthFailure<'_> {
        crate::expect::auth_failure(parse(line))
    }

    fn block(line: &[u8]) -> ServerBlock<'_> {
        crate::expect::block(parse(line))
    }

    #[test]
    fn failed_login_with_host_name_and_helo_literal() {
        assert_eq!(
            auth_failure(b"2013-01-04 17:03:46 login authenticator failed for rrcs-24-106-174-74.se.biz.rr.com ([192.168.2.33]) [24.106.174.74]: 535 Incorrect authentication data (set_id=brian)"),
            AuthFailure {
                at: utc(2013, 1, 4, 17, 3, 46),
                client: ip("24.106.174.74"),
                account: Some(b"brian"),
                service: b"SMTP",
                kind: AuthFailureKind::BadPassword,
                attempts: 1,
            }
        );
    }

    #[test]
    fn failed_login_names_the_client_not_our_interface() {
        let f = auth_failure(b"2024-03-21 19:26:06 dovecot_login authenticator failed for (User) [194.169.175.1]:21298 I=[22.33.44.55]:465 Ci=30416: 535 Incorrect authentication data (set_id=uaf589@example.com)");
        assert_eq!(
            (f.client, f.account),
            (ip("194.169.175.1"), Some(&b"uaf589@example.com"[..]))
        );
        let f = auth_failure(b"2024-03-21 19:26:06 dovecot_plain authenticator failed for (x) [2001:db8::7]:5 I=[2001:db8::25]:587: 535 Incorrect authentication data");
        assert_eq!((f.client, f.account), (ip("2001:db8::7"), None));
    }

    #[test]
    fn backend_trouble_is_no_guess() {
        let f = auth_failure(b"2024-03-21 19:26:06 dovecot_login authenticator failed for (x) [192.0.2.8]:5 I=[10.0.0.1]:587: 435 Unable to authenticate at present (set_id=carol)");
        assert_eq!(
            (f.kind, f.account),
            (AuthFailureKind::ServerFault, Some(&b"carol"[..]))
        );
    }

    #[test]
    fn hostile_logins_stay_whole() {
        let f = auth_failure(b"2024-03-21 19:26:06 login authenticator failed for (x) [192.0.2.8]:5: 535 Incorrect authentication data (set_id=a) [6.6.6.6]: (set_id=ceo)");
        assert_eq!(
            (f.client, f.account),
            (ip("192.0.2.8"), Some(&b"a) [6.6.6.6]: (set_id=ceo"[..]))
        );
        let f = auth_failure(b"2024-03-21 19:26:06 login authenticator failed for (x) [192.0.2.8]:5: 535 Incorrect authentication data (set_id=cut sh");
        assert_eq!(f.account, None);
        assert_eq!(
            parse(b"2024-03-21 19:26:06 login authenticator failed for (x) [192.0.2.8]"),
            Parsed::Malformed("authenticator failure without its reply")
        );
    }

    #[test]
    fn relay_attempt() {
        assert_eq!(
            block(b"2024-03-21 19:40:00 H=(WIN-ABC) [185.220.101.4]:61000 F=<spam@evil.example> rejected RCPT <victim@elsewhere.example>: relay not permitted"),
            ServerBlock {
                at: utc(2024, 3, 21, 19, 40, 0),
                client: ip("185.220.101.4"),
                kind: BlockKind::RelayAttempt,
                detail: b"rejected RCPT <victim@elsewhere.example>: relay not permitted",
                refusals: 1,
            }
        );
    }

    #[test]
    fn unknown_recipients() {
        for line in [
            &b"2024-03-21 19:40:00 H=mail.example.org [192.0.2.20]:4000 I=[10.0.0.1]:25 F=<a@example.org> rejected RCPT <nobody@example.com>: Unknown user"[..],
            b"2024-03-21 19:40:00 H=(x) [192.0.2.20] F=<a@example.org> rejected RCPT <nobody@nowhere.example>: Unrouteable address",
        ] {
            let b = block(line);
            assert_eq!((b.client, b.kind), (ip("192.0.2.20"), BlockKind::UnknownRecipient));
        }
    }

    #[test]
    fn dnsbl_listings() {
        let b = block(b"2024-03-21 19:40:00 H=rrcs-24-1-2-3.example.net [24.1.2.3]:5123 I=[10.0.0.1]:25 F=<a@b.example> rejected RCPT <c@example.com>: JunkMail rejected - rrcs-24-1-2-3.example.net [24.1.2.3]:5123 is in an RBL: Rejected because 24.1.2.3 is in a black list at zen.spamhaus.org");
        assert_eq!((b.client, b.kind), (ip("24.1.2.3"), BlockKind::Dnsbl));
        let b = block(b"2024-03-21 19:40:00 H=(x) [203.0.113.50] F=<a@b.example> rejected RCPT <c@example.com>: 203.0.113.50 is listed in zen.spamhaus.org");
        assert_eq!(b.kind, BlockKind::Dnsbl);
    }

    #[test]
    fn other_refusals() {
        let b = block(b"2024-03-21 19:40:00 1rK9Xa-0001ab-Cd H=(x) [192.0.2.30]:1 F=<a@b.example> rejected after DATA: Your message scored 25.1 spam points");
        assert_eq!(
            (b.kind, b.detail),
            (
                BlockKind::Other,
                &b"rejected after DATA: Your message scored 25.1 spam points"[..]
            )
        );
        let b = block(b"2024-03-21 19:40:00 H=(x) [192.0.2.31] F=<a@b.example> temporarily rejected RCPT <c@example.com>: greylisted");
        assert_eq!((b.client, b.kind), (ip("192.0.2.31"), BlockKind::Other));
        let b = block(b"2024-03-21 19:40:00 H=[192.0.2.32] rejected connection in \"connect\" ACL");
        assert_eq!((b.client, b.kind), (ip("192.0.2.32"), BlockKind::Other));
    }

    #[test]
    fn addresses_cannot_change_the_kind_of_refusal() {
        let b = block(br#"2024-03-21 19:40:00 H=(x) [192.0.2.33] F=<"relay not permitted: x"@b.example> rejected RCPT <"rejected: is in an RBL"@example.com>: Unknown user"#);
        assert_eq!(
            (b.client, b.kind),
            (ip("192.0.2.33"), BlockKind::UnknownRecipient)
        );
    }

    #[test]
    fn early_talker() {
        let b = block(b"2024-03-21 19:40:00 SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=[45.9.148.7]:51234 input=\"EHLO x\\r\\n\"");
        assert_eq!(
            (b.client, b.kind),
            (ip("45.9.148.7"), BlockKind::SpamAttack)
        );
    }

    #[test]
    fn notices_are_ignored() {
        for line in [
            &b"2024-03-21 19:40:00 SMTP connection from (x) [192.0.2.1]:5000 I=[10.0.0.1]:25 (TCP/IP connection count = 3)"[..],
            b"2024-03-21 19:40:00 SMTP connection from [192.0.2.1]:5000 lost D=0s",
            b"2024-03-21 19:40:00 SMTP connection lost after final dot H=(x) [192.0.2.1]",
            b"2024-03-21 19:40:00 no host name found for IP address 192.0.2.1",
            b"2024-03-21 19:40:00 Start queue run: pid=1234",
            b"2024-03-21 19:40:00 End queue run: pid=1234",
            b"2024-03-21 19:40:00 exim 4.96 daemon started: pid=1200, -q30m, listening for SMTP on port 25 (IPv6 and IPv4)",
            b"2024-03-21 19:40:00 Spool file is locked (another process is handling this message)",
            b"2024-03-21 19:40:00 cwd=/var/spool/exim4 3 args: /usr/sbin/exim4 -Mc 1rK9Xa-0001ab-Cd",
            b"2024-03-21 19:40:00 H=(x) [192.0.2.1] Warning: unknown sender",
            b"2024-03-21 19:40:00 H=(x) [192.0.2.1] incomplete transaction (QUIT) from <a@b>",
            b"2024-03-21 19:40:00 H=",
            b"2024-03-21 19:40:00 SMTP protocol synchronization error (next input sent too soon: pipelining was not advertised): rejected \"EHLO x\" H=[192.0.2.1]:1 next input=\"\"",
        ] {
            assert_eq!(parse(line), Parsed::Ignored, "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(
            parse(b"2024-03-21 19:40:00 Something unheard of"),
            Parsed::Unknown
        );
        assert_eq!(
            parse(b"2024-03-21 19:40:00 x authenticator"),
            Parsed::Unknown
        );
    }
}
