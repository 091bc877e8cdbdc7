//! Lines about one message: the id, then a flag (`<=` arrival, `=>` `->`
//! `>>` `*>` delivered, `**` failed, `==` deferred) or a word (`Completed`).

use mailfuse_core::{Client, Delivery, DeliveryStatus, Event, Removed, Submission, Timestamp};

use super::session;
use super::words::{enhanced_code, field, unquoted, Host, Words};
use crate::values::{decimal, without_angles};
use crate::Parsed;

/// Flags of delivery lines: `=>` the first address of a delivery, `->` the
/// others of the same delivery, `>>` a cutthrough delivery, `*>` one
/// suppressed by `-N`, `**` a permanent failure, `==` a deferral.
const DELIVERY_FLAGS: [(&[u8], DeliveryStatus); 6] = [
    (b"=> ", DeliveryStatus::Delivered),
    (b"-> ", DeliveryStatus::Delivered),
    (b">> ", DeliveryStatus::Delivered),
    (b"*> ", DeliveryStatus::Delivered),
    (b"** ", DeliveryStatus::Failed),
    (b"== ", DeliveryStatus::Deferred),
];

/// Message lines that matter nothing for detection. (`frozen by`,
/// `unfrozen by` and `removed by` name the admin, or mailfuse's Exim
/// action, behind `exim -Mf`, `-Mt` and `-Mrm`.)
const NOTICES: [&[u8]; 14] = [
    b"Spool file is locked",
    b"Frozen",
    b"Unfrozen",
    b"frozen by",
    b"unfrozen by",
    b"Message is frozen",
    b"no immediate delivery",
    b"removed by",
    b"cancelled by",
    b"retry time not reached",
    b"Sender identification",
    b"DKIM: ",
    b"SMTP error from remote",
    b"Warning: ",
];

/// A line about message `queue_id`, from the text after the id.
pub(super) fn line<'a>(at: Timestamp, queue_id: &'a [u8], text: &'a [u8]) -> Parsed<'a> {
    // `(=` is an arrival the client was told was refused (`fakereject`).
    if let Some(fields) = text
        .strip_prefix(b"<= ")
        .or_else(|| text.strip_prefix(b"(= "))
    {
        return submission(at, queue_id, fields);
    }
    if let Some((fields, status)) = DELIVERY_FLAGS
        .iter()
        .find_map(|&(flag, status)| Some((text.strip_prefix(flag)?, status)))
    {
        return delivery(at, queue_id, fields, status);
    }
    if text == b"Completed" || text.starts_with(b"Completed ") {
        return Parsed::Event(Event::Removed(Removed { at, queue_id }));
    }
    // Refusals after DATA name the message: `H=… rejected after DATA: …`.
    if text.starts_with(b"H=") {
        return session::line(at, text);
    }
    if NOTICES.iter().any(|notice| text.starts_with(notice)) {
        return Parsed::Ignored;
    }
    Parsed::Unknown
}

/// An arrival, from the text after `<= `: the sender, then Exim's fields in
/// the order it writes them: `H= I= U= P= X= CV= DN= SNI= A= K S= id= T=`,
/// then ` for` and the recipients (`+received_recipients`).
///
/// The login (`A=authenticator:id`) is trusted only where Exim writes it:
/// when the protocol (`P=esmtpa`, `esmtpsa`…) says the client
/// authenticated, and before `S=`. The subject, Message-ID and recipients
/// come after `S=`, quoted or not, so none can supply it. Left ambiguous:
/// the non-default `DN="…"` and `SNI="…"` (`+tls_peerdn`, `+tls_sni`) are
/// written without escaping their quotes, so a client certificate or TLS
/// server name of an authenticated client could imitate a later `A=`.
///
/// `U=` is the Unix user of a local submission (or an RFC 1413 ident of a
/// remote one, which the client chooses): it is not an SMTP login, so it is
/// not read as the account.
fn submission<'a>(at: Timestamp, queue_id: &'a [u8], fields: &'a [u8]) -> Parsed<'a> {
    let mut words = Words::new(fields);
    let Some(sender) = words.next() else {
        return Parsed::Malformed("arrival line without a sender");
    };
    let envelope_from = without_angles(sender);
    let mut arrival = Submission {
        at,
        queue_id,
        envelope_from: Some(envelope_from),
        is_bounce: envelope_from.is_empty(),
        client: Some(Client::Unknown),
        ..Submission::default()
    };
    let mut host_seen = false;
    let mut tls_cipher = false;
    let mut login = None;
    while let Some(word) = words.next() {
        if word == b"for" {
            let count = words.by_ref().count();
            arrival.recipient_count = u32::try_from(count).ok().filter(|&n| n > 0);
            break;
        }
        let Some((key, value)) = field(word) else {
            continue;
        };
        match key {
            b"H" if !host_seen => {
                host_seen = true;
                arrival.client = Some(Host::read(value, &mut words).client());
            }
            b"P" => {
                arrival.service.get_or_insert(value);
            }
            b"X" => tls_cipher = true,
            b"A" if arrival.size.is_none() => {
                login.get_or_insert(value);
            }
            b"S" => {
                arrival.size = arrival.size.or_else(|| decimal(value));
            }
            b"id" => {
                arrival.message_id.get_or_insert(value);
            }
            b"T" => {
                arrival.subject.get_or_insert(unquoted(value));
            }
            _ => {}
        }
    }
    let authenticated = arrival.service.is_some_and(|p| p.ends_with(b"a"));
    arrival.account = login
        .filter(|_| authenticated)
        .and_then(login_name)
        .filter(|name| !name.is_empty());
    arrival.tls = if tls_cipher {
        Some(true)
    } else {
        arrival.service.and_then(tls_from_protocol)
    };
    Parsed::Event(Event::Submission(arrival))
}

/// The login of `A=authenticator:id`: the text after the first colon
/// (`A=login` alone names no login). With `+smtp_mailauth` Exim appends
/// `:sender`, which stays part of it: a login may hold colons too.
fn login_name(value: &[u8]) -> Option<&[u8]> {
    let colon = memchr::memchr(b':', value)?;
    value.get(colon + 1..)
}

/// Whether a received protocol name says TLS (`esmtps`, `esmtpsa`,
/// `utf8esmtps`, `local-esmtps`…) or not (`smtp`, `esmtpa`); `None` for
/// the non-SMTP ones (`local`).
fn tls_from_protocol(protocol: &[u8]) -> Option<bool> {
    let base = protocol.strip_suffix(b"a").unwrap_or(protocol);
    if base.ends_with(b"smtps") {
        Some(true)
    } else if base.ends_with(b"smtp") {
        Some(false)
    } else {
        None
    }
}

/// A delivery line, from the text after its flag: the address, its
/// `(parent)` and `<original>` when routing changed it, Exim's fields
/// (`R= T= H= X= C="…"`), and for a failure or deferral `: ` and the error.
fn delivery<'a>(
    at: Timestamp,
    queue_id: &'a [u8],
    fields: &'a [u8],
    status: DeliveryStatus,
) -> Parsed<'a> {
    // A delivered address has no error text, and may end with a colon
    // (`:blackhole:`).
    let mut words = match status {
        DeliveryStatus::Delivered => Words::new(fields),
        DeliveryStatus::Failed | DeliveryStatus::Deferred => Words::until_reason(fields),
    };
    let Some(address) = words.next().filter(|address| !address.is_empty()) else {
        return Parsed::Malformed("delivery line without an address");
    };
    let mut original = None;
    let mut relay = None;
    let mut loopback = false;
    let mut transport = None;
    let mut confirmation = None;
    while let Some(word) = words.next() {
        if word.starts_with(b"<") {
            original.get_or_insert(without_angles(word));
            continue;
        }
        match field(word) {
            Some((b"H", value)) if relay.is_none() => {
                let host = Host::read(value, &mut words);
                loopback = host.ip().is_some_and(|ip| ip.is_loopback());
                relay = Some(host.relay());
            }
            Some((b"C", value)) => {
                confirmation.get_or_insert(unquoted(value));
            }
            Some((b"T", value)) => {
                transport.get_or_insert(value);
            }
            _ => {}
        }
    }
    let detail = words.reason().or(confirmation).unwrap_or_default();
    Parsed::Event(Event::Delivery(Delivery {
        at,
        queue_id,
        recipient: recipient(address, original),
        status,
        dsn: enhanced_code(detail),
        detail,
        // A local delivery has no host, and a hop to this machine (a
        // content scanner on 127.0.0.1:10024, Dovecot's LMTP on port 24) no
        // telling one: the transport (`local_delivery`, `dovecot_lmtp`,
        // `amavis`) says where the mail went, and whether the recipient's
        // domain is local to the detector.
        relay: match (relay.flatten(), transport) {
            (Some(_), Some(transport)) if loopback => Some(transport),
            (host, transport) => host.or(transport),
        },
    }))
}

/// Whom a delivery was for. Exim logs the address it delivered to (after
/// aliasing), with the address the sender gave in `<…>`; a local delivery
/// names the local part only (`=> bob <bob@example.com>`) and a pipe or
/// file its command or path, so an address without `@` gives way to the
/// original.
fn recipient<'a>(address: &'a [u8], original: Option<&'a [u8]>) -> &'a [u8] {
    match original {
        Some(original) if !address.contains(&b'@') && !original.is_empty() => original,
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use mailfuse_core::{Client, Delivery, DeliveryStatus, Event, Removed, Submission};

    use super::super::test_support::{event, parse, utc};
    use crate::Parsed;

    const ARRIVAL: &[u8] = b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= alice@example.com H=(laptop) [203.0.113.7]:51234 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_login:alice@example.com S=2275 id=abc@laptop T=\"Quarterly report\"";

    fn submission(line: &[u8]) -> Submission<'_> {
        crate::expect::submission(parse(line))
    }

    fn delivery(line: &[u8]) -> Delivery<'_> {
        crate::expect::delivery(parse(line))
    }

    fn ip(text: &str) -> Option<Client<'static>> {
        Some(Client::Ip(text.parse().unwrap()))
    }

    #[test]
    fn authenticated_arrival() {
        assert_eq!(
            submission(ARRIVAL),
            Submission {
                at: utc(2024, 3, 21, 19, 26, 6),
                queue_id: b"1rK9Xa-0001ab-Cd",
                account: Some(b"alice@example.com"),
                client: ip("203.0.113.7"),
                service: Some(b"esmtpsa"),
                envelope_from: Some(b"alice@example.com"),
                recipient: None,
                recipient_count: None,
                size: Some(2275),
                subject: Some(b"Quarterly report"),
                message_id: Some(b"abc@laptop"),
                unqualified_sender: None,
                is_bounce: false,
                tls: Some(true),
                ..Submission::default()
            }
        );
    }

    #[test]
    fn arrival_with_host_name_ipv6_interface_and_recipients() {
        let s = submission(b"2024-03-21 19:26:06 1rK9Xa-000000001ab-Cdef <= bob@example.org H=mail.example.org (mail.example.org) [2001:db8::1]:40112 I=[2001:db8::25]:25 P=esmtp S=812 id=x.y@example.org for c@example.com d@example.com \"e f\"@example.com");
        assert_eq!(s.queue_id, b"1rK9Xa-000000001ab-Cdef");
        assert_eq!(s.client, ip("2001:db8::1"));
        assert_eq!((s.account, s.tls, s.size), (None, Some(false), Some(812)));
        assert_eq!(s.recipient_count, Some(3));
        assert_eq!(s.subject, None);
    }

    #[test]
    fn logins_come_after_the_authenticator_name() {
        let login = |a: &str| {
            let line = format!("2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= a@example.com H=(x) [192.0.2.1]:1 P=esmtpa {a} S=1");
            submission(line.as_bytes()).account.map(<[u8]>::to_vec)
        };
        assert_eq!(login("A=plain:bob"), Some(b"bob".to_vec()));
        assert_eq!(
            login("A=dovecot_plain:bob@example.com"),
            Some(b"bob@example.com".to_vec())
        );
        assert_eq!(login("A=login"), None);
        assert_eq!(login("A=login:"), None);
        assert_eq!(login("A=cram:a:b"), Some(b"a:b".to_vec()));
    }

    #[test]
    fn local_submission_and_bounce() {
        let s = submission(b"2024-03-21 19:30:00 1rK9Zz-0001ac-Ef <= www-data@host.example.com U=www-data P=local S=1510 id=20240321193000.AB12@host.example.com T=\"Hello\" for x@example.net");
        assert_eq!(s.client, Some(Client::Unknown));
        assert_eq!(
            (s.account, s.service, s.tls),
            (None, Some(&b"local"[..]), None)
        );
        assert_eq!(s.recipient_count, Some(1));
        let s = submission(b"2024-03-21 19:30:01 1rK9Zz-0001ad-Gh <= <> R=1rK9Zz-0001ac-Ef U=Debian-exim P=local S=2480");
        assert_eq!((s.envelope_from, s.is_bounce), (Some(&b""[..]), true));
    }

    #[test]
    fn subject_cannot_supply_or_replace_the_login() {
        // No login: a subject, Message-ID or recipient holding ` A=` is text.
        let s = submission(br#"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= mallory@evil.example H=(x) [198.51.100.9]:2 P=esmtp S=10 id=q@w T="hi A=evil:ceo@example.com \" A=plain:ceo@example.com P=esmtpsa" for "A=x:ceo"@example.com"#);
        assert_eq!(s.account, None);
        assert_eq!(
            s.subject,
            Some(&br#"hi A=evil:ceo@example.com \" A=plain:ceo@example.com P=esmtpsa"#[..])
        );
        assert_eq!(s.service, Some(&b"esmtp"[..]));
        assert_eq!(s.recipient_count, Some(1));
        // A real login stays the first one, before S=.
        let s = submission(br#"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= a@example.com H=(x) [192.0.2.1]:2 P=esmtpa A=plain:alice S=10 A=plain:ceo T="A=plain:ceo""#);
        assert_eq!(s.account, Some(&b"alice"[..]));
        // Without P=…a no A= counts, wherever it is.
        let s = submission(br#"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= a@example.com H=(x) [192.0.2.1]:2 P=esmtps X=TLS1.3 SNI="x A=plain:ceo" S=1"#);
        assert_eq!(s.account, None);
    }

    #[test]
    fn quoted_sender_cannot_supply_fields() {
        let s = submission(br#"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= "x H=[6.6.6.6]:1 P=esmtpa A=plain:ceo S=1"@evil.example H=(x) [198.51.100.9]:2 P=esmtp S=10"#);
        assert_eq!(
            s.envelope_from,
            Some(&br#""x H=[6.6.6.6]:1 P=esmtpa A=plain:ceo S=1"@evil.example"#[..])
        );
        assert_eq!((s.account, s.client), (None, ip("198.51.100.9")));
        let s = submission(br"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= x\ P=esmtpa\ A=plain:ceo@evil.example H=(x) [198.51.100.9]:2 P=esmtp S=10");
        assert_eq!((s.account, s.service), (None, Some(&b"esmtp"[..])));
    }

    #[test]
    fn truncated_arrivals_keep_what_they_have() {
        let s = submission(
            b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= alice@example.com H=(laptop) [203.0.11",
        );
        assert_eq!(
            (s.envelope_from, s.client),
            (Some(&b"alice@example.com"[..]), Some(Client::Unknown))
        );
        let s = submission(b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= a@example.com H=(x) [192.0.2.1]:1 P=esmtpa A=plain:bob S=1 T=\"cut sho");
        assert_eq!(
            (s.account, s.subject),
            (Some(&b"bob"[..]), Some(&b"cut sho"[..]))
        );
        assert_eq!(
            parse(b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= "),
            Parsed::Malformed("arrival line without a sender")
        );
    }

    #[test]
    fn delivered_first_and_further_addresses() {
        assert_eq!(
            delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => bob@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 2.0.0 OK 1711045567 x\""),
            Delivery {
                at: utc(2024, 3, 21, 19, 26, 7),
                queue_id: b"1rK9Xa-0001ab-Cd",
                recipient: b"bob@partner.test",
                status: DeliveryStatus::Delivered,
                dsn: Some(b"2.0.0"),
                detail: b"250 2.0.0 OK 1711045567 x",
                relay: Some(b"mx.partner.test"),
            }
        );
        let d = delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd -> carol@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5]");
        assert_eq!(
            (d.recipient, d.status, d.detail),
            (
                &b"carol@partner.test"[..],
                DeliveryStatus::Delivered,
                &b""[..]
            )
        );
        let d = delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd *> dave@partner.test R=dnslookup T=remote_smtp H=[198.51.100.6]");
        assert_eq!(
            (d.status, d.relay),
            (DeliveryStatus::Delivered, Some(&b"198.51.100.6"[..]))
        );
        let d = delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd >> erin@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5]");
        assert_eq!(d.status, DeliveryStatus::Delivered);
    }

    #[test]
    fn routed_addresses() {
        let d = delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => frank@example.net <sales@example.com> R=dnslookup T=remote_smtp H=mx.example.net [203.0.113.25]");
        assert_eq!(d.recipient, b"frank@example.net");
        let d = delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => bob <bob@example.com> R=localuser T=local_delivery");
        // No host, or this host: the transport names where it went.
        assert_eq!(
            (d.recipient, d.relay),
            (&b"bob@example.com"[..], Some(&b"local_delivery"[..]))
        );
        let d = delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => bob@partner.test R=amavis T=amavis_smtp H=127.0.0.1 [127.0.0.1]:10024 C=\"250 2.0.0 Ok\"");
        assert_eq!(d.relay, Some(&b"amavis_smtp"[..]));
        let d = delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => |/usr/bin/procmail (list@example.com) <list@example.com> R=pipe T=address_pipe");
        assert_eq!(d.recipient, b"list@example.com");
        let d = delivery(b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => :blackhole: <spam@example.com> R=blackhole_router");
        assert_eq!(d.recipient, b"spam@example.com");
        let d = delivery(br#"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => "a H=evil [6.6.6.6] C=\"x\""@example.net R=dnslookup T=remote_smtp H=mx.example.net [203.0.113.25]"#);
        assert_eq!(d.relay, Some(&b"mx.example.net"[..]));
        assert_eq!(d.recipient, br#""a H=evil [6.6.6.6] C=\"x\""@example.net"#);
    }

    #[test]
    fn permanent_failures() {
        assert_eq!(
            delivery(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd ** nobody@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5]: SMTP error from remote mail server after RCPT TO:<nobody@partner.test>: 550 5.1.1 User unknown"),
            Delivery {
                at: utc(2024, 3, 21, 19, 26, 8),
                queue_id: b"1rK9Xa-0001ab-Cd",
                recipient: b"nobody@partner.test",
                status: DeliveryStatus::Failed,
                dsn: Some(b"5.1.1"),
                detail: b"SMTP error from remote mail server after RCPT TO:<nobody@partner.test>: 550 5.1.1 User unknown",
                relay: Some(b"mx.partner.test"),
            }
        );
        let d = delivery(
            b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd ** ghost@nowhere.invalid: Unrouteable address",
        );
        assert_eq!(
            (d.recipient, d.dsn, d.detail),
            (
                &b"ghost@nowhere.invalid"[..],
                None,
                &b"Unrouteable address"[..]
            )
        );
    }

    #[test]
    fn cpanel_hourly_limit_is_a_failure() {
        let d = delivery(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd ** user@dest.example R=enforce_mail_permissions: Domain example.com has exceeded the max emails per hour (125/100 (125%)) allowed.  Message discarded.");
        assert_eq!(
            (d.recipient, d.status, d.dsn, d.relay),
            (
                &b"user@dest.example"[..],
                DeliveryStatus::Failed,
                None,
                None
            )
        );
        assert_eq!(d.detail, b"Domain example.com has exceeded the max emails per hour (125/100 (125%)) allowed.  Message discarded.");
    }

    #[test]
    fn deferrals() {
        let d = delivery(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd == later@slow.test R=dnslookup T=remote_smtp defer (-44): SMTP error from remote mail server after RCPT TO:<later@slow.test>: 451 4.7.1 Try again later");
        assert_eq!(
            (d.status, d.dsn),
            (DeliveryStatus::Deferred, Some(&b"4.7.1"[..]))
        );
        assert_eq!(d.detail, b"SMTP error from remote mail server after RCPT TO:<later@slow.test>: 451 4.7.1 Try again later");
        let d = delivery(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd == \"x: 550 5.1.1\"@slow.test <y@slow.test> T=remote_smtp: retry time not reached");
        assert_eq!(
            (d.recipient, d.dsn, d.detail),
            (
                &b"\"x: 550 5.1.1\"@slow.test"[..],
                None,
                &b"retry time not reached"[..]
            )
        );
    }

    #[test]
    fn completed_removes_the_message() {
        for line in [
            &b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd Completed"[..],
            b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd Completed QT=2s",
        ] {
            assert_eq!(
                event(line),
                Event::Removed(Removed {
                    at: utc(2024, 3, 21, 19, 26, 8),
                    queue_id: b"1rK9Xa-0001ab-Cd"
                })
            );
        }
    }

    #[test]
    fn notices_unknown_flags_and_truncated_deliveries() {
        assert_eq!(parse(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd Spool file is locked (another process is handling this message)"), Parsed::Ignored);
        for notice in [
            &b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd Frozen (delivery error message)"[..],
            b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd frozen by root",
            b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd unfrozen by root",
            b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd removed by root",
        ] {
            assert_eq!(parse(notice), Parsed::Ignored);
        }
        assert_eq!(
            parse(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd ~~ x@y something new"),
            Parsed::Unknown
        );
        assert_eq!(
            parse(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd CompletedX"),
            Parsed::Unknown
        );
        assert_eq!(
            parse(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd"),
            Parsed::Unknown
        );
        assert_eq!(
            parse(b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd => "),
            Parsed::Malformed("delivery line without an address")
        );
        let d = delivery(
            b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd ** x@y R=dnslookup T=remote_smtp H=mx.y [19",
        );
        assert_eq!((d.detail, d.relay), (&b""[..], Some(&b"mx.y"[..])));
    }
}
