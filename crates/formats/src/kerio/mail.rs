//! mail.log: `Recv:` (a message entered the queue) and `Sent:` (one
//! recipient's delivery ended).
//!
//! Field order changed between versions (6.7 writes `User` before
//! `Sender-Host`, 8+ after it; `Subject` and `Msg-Id` exist only in 8+, in
//! either order), so fields are found by key, never by position.

use mailfuse_core::{Delivery, DeliveryStatus, Event, Submission, Timestamp};

use super::fields::{self, AsWritten, Field};
use super::tokens::client_named;
use crate::values::{decimal, leading_status_code_len, without_angles};
use crate::{Detail, Parsed};

/// The `Recv:` fields read, in the order [`submission`] destructures them.
/// Subject and Msg-Id come from the sender and Kerio writes them last: once
/// one has started only the other may end it, so a subject such as
/// `hi, User: ceo@example.com` stays a subject.
pub(super) const RECV_FIELDS: [Field; 10] = [
    Field::plain(b"Queue-ID"),
    Field::plain(b"Service"),
    Field::address(b"From"),
    Field::address(b"To"),
    Field::plain(b"Size"),
    Field::plain(b"Sender-Host"),
    Field::plain(b"User"),
    Field::plain(b"SSL"),
    Field::free_text(b"Subject", &[b"Msg-Id"]),
    Field::free_text(b"Msg-Id", &[b"Subject"]),
];

/// How many of [`RECV_FIELDS`] the detectors read: all but the trailing
/// Subject and Msg-Id, which none of them looks at (`trace` shows them).
pub(super) const RECV_DETECTED: usize = 8;

/// The `Sent:` fields read, in the order [`delivery`] destructures them.
/// Status is the remote server's reply (colons, `<…>`, commas): only the keys
/// Kerio writes after it end it.
pub(super) const SENT_FIELDS: [Field; 5] = [
    Field::plain(b"Queue-ID"),
    Field::address(b"Recipient"),
    Field::plain(b"Result"),
    Field::free_text(b"Status", &[b"Remote-Host", b"Msg-Id"]),
    Field::plain(b"Remote-Host"),
];

/// Kerio's `Result:` words, compared ignoring case.
const RESULTS: [(&[u8], DeliveryStatus); 5] = [
    (b"delivered", DeliveryStatus::Delivered),
    (b"relayed", DeliveryStatus::Delivered),
    (b"deferred", DeliveryStatus::Deferred),
    (b"delayed", DeliveryStatus::Deferred),
    (b"failed", DeliveryStatus::Failed),
];

/// A `Recv:` line, from the fields after `Recv: `, read to `detail`.
pub(super) fn submission(at: Timestamp, fields: &[u8], detail: Detail) -> Parsed<'_> {
    let [queue_id, service, from, to, size, sender_host, user, ssl, subject, msg_id] = match detail
    {
        Detail::Whole => fields::scan(fields, &RECV_FIELDS),
        Detail::Detection => recv_as_written(fields)
            .unwrap_or_else(|| fields::scan_wanted::<_, RECV_DETECTED>(fields, &RECV_FIELDS)),
    };
    let Some(queue_id) = queue_id.filter(|id| !id.is_empty()) else {
        return Parsed::Malformed("Recv line without Queue-ID");
    };
    Parsed::Event(Event::Submission(Submission {
        at,
        queue_id,
        account: user.filter(|user| !user.is_empty()),
        client: sender_host.and_then(client_named),
        service: service.filter(|service| !service.is_empty()),
        // `From: <>` and `From: ` (DSN) both name the null sender.
        envelope_from: from.map(without_angles),
        recipient: to.map(without_angles).filter(|to| !to.is_empty()),
        // Kerio logs one `To:` per line, never a count.
        recipient_count: None,
        size: size.and_then(decimal),
        subject,
        message_id: msg_id.map(without_angles).filter(|id| !id.is_empty()),
        unqualified_sender: None,
        is_bounce: service.is_some_and(|service| service.eq_ignore_ascii_case(b"DSN")),
        tls: ssl.and_then(yes_or_no),
        notice_of: None,
        queue_pass: false,
    }))
}

/// The Queue-ID of a `Recv:` line, from the fields after `Recv: `.
pub(super) fn submission_queue_id(fields: &[u8]) -> Option<&[u8]> {
    let [queue_id, ..] = fields::scan(fields, &RECV_FIELDS);
    queue_id
}

/// A `Sent:` line, from the fields after `Sent: `. Read for the
/// detectors, a line in Kerio's layout is read as written; read whole
/// (`trace`), always by the general rule, so that the fuzzer can hold the
/// one to the other.
pub(super) fn delivery(at: Timestamp, fields: &[u8], detail: Detail) -> Parsed<'_> {
    let [queue_id, recipient, result, status_text, remote_host] = match detail {
        Detail::Whole => fields::scan(fields, &SENT_FIELDS),
        Detail::Detection => {
            sent_as_written(fields).unwrap_or_else(|| fields::scan(fields, &SENT_FIELDS))
        }
    };
    let Some(queue_id) = queue_id.filter(|id| !id.is_empty()) else {
        return Parsed::Malformed("Sent line without Queue-ID");
    };
    let Some(recipient) = recipient else {
        return Parsed::Malformed("Sent line without Recipient");
    };
    let Some(status) = result.and_then(delivery_status) else {
        return Parsed::Malformed("Sent line without a known Result");
    };
    let (dsn, detail) = split_status(status_text.unwrap_or_default());
    Parsed::Event(Event::Delivery(Delivery {
        at,
        queue_id,
        recipient: without_angles(recipient),
        status,
        dsn,
        detail,
        relay: remote_host.filter(|host| !host.is_empty()),
    }))
}

/// The detected [`RECV_FIELDS`] of a `Recv:` line as Kerio 8+ writes it
/// (see [`AsWritten`]), `User` only on submitted mail; `None` for any
/// other layout. The values of [`fields::scan_wanted`].
pub(super) fn recv_as_written(fields: &[u8]) -> Option<[Option<&[u8]>; RECV_FIELDS.len()]> {
    let mut line = AsWritten::new(fields, b"Queue-ID: ")?;
    let queue_id = line.plain(b", Service: ")?;
    let service = line.plain(b", From: ")?;
    let from = line.address(b", To: ")?;
    let to = line.address(b", Size: ")?;
    let size = line.plain(b", Sender-Host: ")?;
    let (sender_host, user) = match line.plain_then(b", User: ", b", SSL: ")? {
        (sender_host, true) => (sender_host, Some(line.plain(b", SSL: ")?)),
        (sender_host, false) => (sender_host, None),
    };
    let (ssl, _) = line.plain_then(b", Subject: ", b", Msg-Id: ")?;
    Some([
        Some(queue_id),
        Some(service),
        Some(from),
        Some(to),
        Some(size),
        Some(sender_host),
        user,
        Some(ssl),
        None,
        None,
    ])
}

/// The [`SENT_FIELDS`] of a `Sent:` line as Kerio writes it (see
/// [`AsWritten`]); `None` for any other layout. The values of
/// [`fields::scan`].
pub(super) fn sent_as_written(fields: &[u8]) -> Option<[Option<&[u8]>; SENT_FIELDS.len()]> {
    let mut line = AsWritten::new(fields, b"Queue-ID: ")?;
    let queue_id = line.plain(b", Recipient: ")?;
    let recipient = line.address(b", Result: ")?;
    let result = line.plain(b", Status: ")?;
    let status = line.free_text(b", Remote-Host: ", b", Msg-Id: ")?;
    let remote_host = line.last(b", Msg-Id: ")?;
    Some([
        Some(queue_id),
        Some(recipient),
        Some(result),
        Some(status),
        Some(remote_host),
    ])
}

fn delivery_status(result: &[u8]) -> Option<DeliveryStatus> {
    RESULTS
        .iter()
        .find(|(word, _)| is_word_in_any_case(result, word))
        .map(|&(_, status)| status)
}

/// Whether `text` is `word`, a word of lower-case ASCII letters, in any
/// case. A byte with its 0x20 bit set equals a lower-case letter exactly
/// when it is that letter or its capital: one OR a byte, where
/// `eq_ignore_ascii_case` folds both sides (every delivery line asks).
fn is_word_in_any_case(text: &[u8], word: &[u8]) -> bool {
    text.len() == word.len() && text.iter().zip(word).all(|(&t, &w)| t | 0x20 == w)
}

/// Splits a Status such as `5.1.1 550 <a@example.com>: rejected` into the
/// enhanced status code, when it leads (a word of its own), and the rest.
fn split_status(status: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let code = leading_status_code_len(status).and_then(|len| status.split_at_checked(len));
    match code {
        Some((code, rest)) if rest.is_empty() || rest.starts_with(b" ") => {
            (Some(code), rest.trim_ascii())
        }
        _ => (None, status),
    }
}

fn yes_or_no(value: &[u8]) -> Option<bool> {
    if value.eq_ignore_ascii_case(b"yes") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"no") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mailfuse_core::Client;

    use super::*;
    use crate::kerio::test_support::{parse, utc};

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("a valid test address")
    }

    fn submission(line: &[u8]) -> Submission<'_> {
        crate::expect::submission(parse(line))
    }

    fn delivery(line: &[u8]) -> Delivery<'_> {
        crate::expect::delivery(parse(line))
    }

    #[test]
    fn result_words_are_read_in_any_case_as_eq_ignore_ascii_case_reads_them() {
        for (word, _) in RESULTS {
            assert!(word.iter().all(u8::is_ascii_lowercase));
            let mut text = word.to_vec();
            for at in 0..text.len() {
                for byte in 0..=255u8 {
                    text[at] = byte;
                    assert_eq!(
                        is_word_in_any_case(&text, word),
                        text.eq_ignore_ascii_case(word),
                        "{text:?}"
                    );
                }
                text[at] = word[at];
            }
            assert!(!is_word_in_any_case(&word[1..], word));
        }
    }

    #[test]
    fn detection_leaves_the_sender_text_unread_and_reads_the_rest_alike() {
        use crate::LineParser;
        let lines: [&[u8]; 3] = [
            b"[02/Nov/2026 00:00:27] Recv: Queue-ID: 6ae7c48b-00100001, Service: Kerio Connect Client, From: <s@example.com>, To: <j@example.net>, Size: 123511, Sender-Host: 0.0.0.0, User: s@example.com, SSL: yes, Subject: Re: a, b, Msg-Id: <1@example.com>",
            // A subject posing as the login of inbound mail, then Msg-Id first.
            b"[02/Nov/2026 00:00:28] Recv: Queue-ID: 6ae7c48c-00100002, Service: SMTP, From: <x@evil.example>, To: <s@example.com>, Size: 9, Sender-Host: 192.0.2.9, SSL: no, Subject: hi, User: ceo@example.com, Msg-Id: <2@evil.example>",
            b"[02/Nov/2026 00:00:29] Recv: Queue-ID: 6ae7c48d-00100003, Service: SMTP, From: <x@evil.example>, To: <s@example.com>, Msg-Id: <3@evil.example>, User: ceo@example.com, Subject: x",
        ];
        let zone = crate::LocalZone::Fixed(0);
        for line in lines {
            let whole = submission(line);
            let mut parser =
                crate::kerio::KerioParser::new(zone.clone()).reading(Detail::Detection);
            let detected = crate::expect::submission(parser.parse(line));
            assert!(whole.subject.is_some() || whole.message_id.is_some());
            assert_eq!(
                detected,
                Submission {
                    subject: None,
                    message_id: None,
                    ..whole
                }
            );
            assert_ne!(detected.account, Some(&b"ceo@example.com"[..]));
        }
    }

    #[test]
    fn recv_6_7_user_before_sender_host() {
        let line = b"[30/Nov/2005 17:57:14] Recv: Queue-ID: 438dd9ea-00000000, Service: SMTP, From: <jwayne@example.com>, To: <jwayne@example.com>, Size: 1229, User: jwayne@example.com, Sender-Host: 195.39.55.2, SSL: yes";
        assert_eq!(
            submission(line),
            Submission {
                at: utc(2005, 11, 30, 17, 57, 14),
                queue_id: b"438dd9ea-00000000",
                account: Some(b"jwayne@example.com"),
                client: Some(Client::Ip(ip("195.39.55.2"))),
                service: Some(b"SMTP"),
                envelope_from: Some(b"jwayne@example.com"),
                recipient: Some(b"jwayne@example.com"),
                recipient_count: None,
                size: Some(1229),
                subject: None,
                message_id: None,
                unqualified_sender: None,
                is_bounce: false,
                tls: Some(true),
                ..Submission::default()
            }
        );
    }

    #[test]
    fn recv_8_sender_host_before_user_without_ssl() {
        // The hijacked `sales` account of the 2012 incident in seeds/.
        let line = b"[03/Aug/2012 14:03:27] Recv: Queue-ID: 501c1268-0001243c, Service: SMTP, From: <admin@example.org>, To: <c@example.net>, Size: 2275, Sender-Host: 203.0.113.213, User: sales@example.com";
        assert_eq!(
            submission(line),
            Submission {
                at: utc(2012, 8, 3, 14, 3, 27),
                queue_id: b"501c1268-0001243c",
                account: Some(b"sales@example.com"),
                client: Some(Client::Ip(ip("203.0.113.213"))),
                service: Some(b"SMTP"),
                envelope_from: Some(b"admin@example.org"),
                recipient: Some(b"c@example.net"),
                size: Some(2275),
                ..Submission::default()
            }
        );
    }

    #[test]
    fn recv_with_subject_and_message_id() {
        let line = b"[25/Jun/2014 10:39:19] Recv: Queue-ID: 53aaa6d7-000000f4, Service: Kerio Connect client, From: <user@example.com>, To: <user@example.com>, Size: 854, Sender-Host: 10.10.10.1, User: user@example.com, SSL: yes, Subject: test, Msg-Id: <3533420989-24989@example.com>";
        assert_eq!(
            submission(line),
            Submission {
                at: utc(2014, 6, 25, 10, 39, 19),
                queue_id: b"53aaa6d7-000000f4",
                account: Some(b"user@example.com"),
                client: Some(Client::Ip(ip("10.10.10.1"))),
                service: Some(b"Kerio Connect client"),
                envelope_from: Some(b"user@example.com"),
                recipient: Some(b"user@example.com"),
                size: Some(854),
                subject: Some(b"test"),
                message_id: Some(b"3533420989-24989@example.com"),
                tls: Some(true),
                ..Submission::default()
            }
        );
    }

    #[test]
    fn webmail_sender_host_zero_is_kept_for_the_detector() {
        let line = b"[11/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8b47-00000009, Service: Kerio Connect Client, From: <a@example.vn>, To: <b@example.vn>, Size: 985, Sender-Host: 0.0.0.0, User: a@example.vn, SSL: yes, Subject: Check log, Msg-Id: <x@example.vn>";
        let recv = submission(line);
        assert_eq!(recv.client, Some(Client::Ip(ip("0.0.0.0"))));
        assert_eq!(recv.account, Some(&b"a@example.vn"[..]));
        assert_eq!(recv.service, Some(&b"Kerio Connect Client"[..]));
        assert_eq!(recv.subject, Some(&b"Check log"[..]));
        assert_eq!(recv.message_id, Some(&b"x@example.vn"[..]));
    }

    #[test]
    fn unauthenticated_inbound_has_no_account_and_host_names_are_kept() {
        let line = b"[10/Jan/2024 09:00:00] Recv: Queue-ID: 659e5c10-00000001, Service: SMTP, From: <news@example.org>, To: <b@example.com>, Size: 40213, Sender-Host: mx.example.org, SSL: no";
        let recv = submission(line);
        assert_eq!(recv.account, None);
        assert_eq!(recv.client, Some(Client::Host(b"mx.example.org")));
        assert_eq!(recv.tls, Some(false));
    }

    #[test]
    fn dsn_bounce_has_the_null_sender() {
        let line = b"[30/Nov/2005 15:31:40] Recv: Queue-ID: 438db7cc-00000000, Service: DSN, From: , To: , Size: 1650, Report: failed";
        assert_eq!(
            submission(line),
            Submission {
                at: utc(2005, 11, 30, 15, 31, 40),
                queue_id: b"438db7cc-00000000",
                service: Some(b"DSN"),
                envelope_from: Some(b""),
                recipient: None,
                size: Some(1650),
                is_bounce: true,
                ..Submission::default()
            }
        );
        let angle = b"[30/Nov/2005 15:31:40] Recv: Queue-ID: 438db7cc-00000001, Service: dsn, From: <>, To: <a@example.com>, Size: 1650";
        let recv = submission(angle);
        assert_eq!(recv.envelope_from, Some(&b""[..]));
        assert!(recv.is_bounce);
    }

    #[test]
    fn subject_cannot_forge_user_or_sender_host() {
        // Unauthenticated inbound mail: no real User field to win over the forgery.
        let line = b"[10/Jan/2024 09:00:00] Recv: Queue-ID: 659e5c10-00000002, Service: SMTP, From: <x@example.net>, To: <ceo@example.com>, Size: 900, Sender-Host: 198.51.100.9, SSL: no, Subject: Re: invoice, due: now, User: ceo@example.com, Sender-Host: 10.0.0.1, Msg-Id: <m1@example.net>";
        let recv = submission(line);
        assert_eq!(recv.account, None);
        assert_eq!(recv.client, Some(Client::Ip(ip("198.51.100.9"))));
        assert_eq!(
            recv.subject,
            Some(&b"Re: invoice, due: now, User: ceo@example.com, Sender-Host: 10.0.0.1"[..])
        );
        assert_eq!(recv.message_id, Some(&b"m1@example.net"[..]));
    }

    #[test]
    fn message_id_before_subject_and_forgery_inside_it() {
        let line = b"[10/Jan/2024 09:00:00] Recv: Queue-ID: 659e5c10-00000003, Service: SMTP, From: <x@example.net>, To: <b@example.com>, Size: 900, Sender-Host: 198.51.100.9, Msg-Id: <a>, User: ceo@example.com, Subject: hello, world";
        let recv = submission(line);
        assert_eq!(recv.account, None);
        assert_eq!(recv.message_id, Some(&b"<a>, User: ceo@example.com"[..]));
        assert_eq!(recv.subject, Some(&b"hello, world"[..]));
    }

    #[test]
    fn quoted_sender_cannot_forge_fields_either() {
        let line = br#"[10/Jan/2024 09:00:00] Recv: Queue-ID: 659e5c10-00000004, Service: SMTP, From: <"a>, User: ceo@example.com, Sender-Host: 10.0.0.1, "@evil.example>, To: <b@example.com>, Size: 900, Sender-Host: 198.51.100.9, User: sales@example.com"#;
        let recv = submission(line);
        assert_eq!(recv.account, Some(&b"sales@example.com"[..]));
        assert_eq!(recv.client, Some(Client::Ip(ip("198.51.100.9"))));
        assert_eq!(
            recv.envelope_from,
            Some(&br#""a>, User: ceo@example.com, Sender-Host: 10.0.0.1, "@evil.example"#[..])
        );
    }

    #[test]
    fn unknown_fields_are_skipped_and_odd_values_ignored() {
        let line = b"[10/Jan/2024 09:00:00] Recv: Queue-ID: 659e5c10-00000005, X-Spam: 5.1, a, Size: big, SSL: maybe, To: b@example.com";
        let recv = submission(line);
        assert_eq!(recv.size, None);
        assert_eq!(recv.tls, None);
        assert_eq!(recv.recipient, Some(&b"b@example.com"[..]));
    }

    #[test]
    fn recv_without_queue_id_is_malformed() {
        assert_eq!(
            parse(b"[10/Jan/2024 09:00:00] Recv: Service: SMTP, From: <a@example.com>"),
            Parsed::Malformed("Recv line without Queue-ID")
        );
        assert_eq!(
            parse(b"[10/Jan/2024 09:00:00] Recv: Queue-ID: , Service: SMTP"),
            Parsed::Malformed("Recv line without Queue-ID")
        );
    }

    #[test]
    fn sent_delivered_with_relay() {
        let line = b"[11/Mar/2024 11:40:40] Sent: Queue-ID: 65ee8b47-00000009, Recipient: <b@example.vn>, Result: delivered, Status: 2.0.0 , Remote-Host: 127.0.0.1, Msg-Id: <x@example.vn>";
        assert_eq!(
            delivery(line),
            Delivery {
                at: utc(2024, 3, 11, 11, 40, 40),
                queue_id: b"65ee8b47-00000009",
                recipient: b"b@example.vn",
                status: DeliveryStatus::Delivered,
                dsn: Some(b"2.0.0"),
                detail: b"",
                relay: Some(b"127.0.0.1"),
            }
        );
    }

    #[test]
    fn sent_failed_status_keeps_colons_and_angles() {
        let line = b"[03/Aug/2012 14:05:21] Sent: Queue-ID: 501c1268-0001243c, Recipient: <c@example.net>, Result: failed, Status: 5.1.1 550 5.1.1 <c@example.net>: Recipient address rejected: example.net";
        assert_eq!(
            delivery(line),
            Delivery {
                at: utc(2012, 8, 3, 14, 5, 21),
                queue_id: b"501c1268-0001243c",
                recipient: b"c@example.net",
                status: DeliveryStatus::Failed,
                dsn: Some(b"5.1.1"),
                detail: b"550 5.1.1 <c@example.net>: Recipient address rejected: example.net",
                relay: None,
            }
        );
    }

    #[test]
    fn status_with_commas_ends_only_at_its_trailing_keys() {
        let line = b"[03/Aug/2012 14:05:21] Sent: Queue-ID: 501c1268-0001243c, Recipient: <d@example.net>, Result: deferred, Status: 4.4.1 421 <mx.example.net>: busy, Result: delivered, try: later, Remote-Host: mx.example.net, Msg-Id: <m@x>";
        let sent = delivery(line);
        assert_eq!(sent.status, DeliveryStatus::Deferred);
        assert_eq!(sent.dsn, Some(&b"4.4.1"[..]));
        assert_eq!(
            sent.detail,
            b"421 <mx.example.net>: busy, Result: delivered, try: later"
        );
        assert_eq!(sent.relay, Some(&b"mx.example.net"[..]));
    }

    #[test]
    fn results_and_status_codes() {
        for (result, expected) in [
            ("relayed", DeliveryStatus::Delivered),
            ("Delivered", DeliveryStatus::Delivered),
            ("delayed", DeliveryStatus::Deferred),
            ("FAILED", DeliveryStatus::Failed),
        ] {
            let line = format!("[10/Jan/2024 09:00:00] Sent: Queue-ID: q, Recipient: <r@example.com>, Result: {result}, Status: 550 no such user");
            let sent = delivery(line.as_bytes());
            assert_eq!(sent.status, expected, "{result}");
            // `550` is a reply code, not an enhanced status code.
            assert_eq!(sent.dsn, None);
            assert_eq!(sent.detail, b"550 no such user");
        }
        for not_a_code in [
            "2.6.2555 x",
            "3.0.0 x",
            "2.0 x",
            "2..0 x",
            "2.0.0.0 x",
            "x2.0.0",
            "2.0.0x",
            "2.0.01x y",
            "2.0.0,x",
        ] {
            let line = format!("[10/Jan/2024 09:00:00] Sent: Queue-ID: q, Recipient: <r@example.com>, Result: delivered, Status: {not_a_code}");
            let sent = delivery(line.as_bytes());
            assert_eq!((sent.dsn, sent.detail), (None, not_a_code.as_bytes()));
        }
        let line = b"[10/Jan/2024 09:00:00] Sent: Queue-ID: q, Recipient: <r@example.com>, Result: failed, Status: 5.7.26 DMARC";
        assert_eq!(delivery(line).dsn, Some(&b"5.7.26"[..]));
        let line = b"[10/Jan/2024 09:00:00] Sent: Queue-ID: q, Recipient: <r@example.com>, Result: delivered";
        assert_eq!(
            (delivery(line).dsn, delivery(line).detail),
            (None, &b""[..])
        );
    }

    #[test]
    fn sent_without_its_required_fields_is_malformed() {
        for (line, reason) in [
            (
                &b"[10/Jan/2024 09:00:00] Sent: Recipient: <r@example.com>, Result: delivered"[..],
                "Sent line without Queue-ID",
            ),
            (
                b"[10/Jan/2024 09:00:00] Sent: Queue-ID: q, Result: delivered",
                "Sent line without Recipient",
            ),
            (
                b"[10/Jan/2024 09:00:00] Sent: Queue-ID: q, Recipient: <r@example.com>, Result: bounced",
                "Sent line without a known Result",
            ),
            (
                b"[10/Jan/2024 09:00:00] Sent: Queue-ID: q, Recipient: <r@example.com>",
                "Sent line without a known Result",
            ),
        ] {
            assert_eq!(parse(line), Parsed::Malformed(reason));
        }
    }

    #[test]
    fn queue_id_for_offset_derivation() {
        assert_eq!(
            submission_queue_id(b"Queue-ID: 65ee8b47-00000009, Service: SMTP"),
            Some(&b"65ee8b47-00000009"[..])
        );
        assert_eq!(submission_queue_id(b"Service: SMTP"), None);
    }
}
