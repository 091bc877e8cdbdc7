//! Postfix line kinds, read from whole syslog lines.

use std::net::IpAddr;

use mailfuse_core::{
    AuthFailure, AuthFailureKind, BlockKind, Client, Delivery, DeliveryStatus, Event, Removed,
    ServerBlock, Submission, Timestamp,
};

use crate::syslog::SyslogParser;
use crate::{LineParser, ParseContext, Parsed};

/// The lines below were logged in 2026 (file touched 2026-12-01) in UTC.
fn parse(line: &[u8]) -> Parsed<'_> {
    let context = ParseContext {
        year_reference: Some(utc(2026, 12, 1, 0, 0, 0)),
        ..ParseContext::default()
    };
    SyslogParser::new(&context).parse(line)
}

fn utc(year: i32, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> Timestamp {
    Timestamp::from_civil(year, month, day, hour, min, sec).unwrap()
}

fn ip(text: &str) -> Client<'static> {
    Client::Ip(text.parse::<IpAddr>().unwrap())
}

fn submission(line: &[u8]) -> Submission<'_> {
    crate::expect::submission(parse(line))
}

fn delivery(line: &[u8]) -> Delivery<'_> {
    crate::expect::delivery(parse(line))
}

fn block(line: &[u8]) -> ServerBlock<'_> {
    crate::expect::block(parse(line))
}

fn auth_failure(line: &[u8]) -> AuthFailure<'_> {
    crate::expect::auth_failure(parse(line))
}

#[test]
fn smtpd_client_with_sasl_login_on_submission() {
    let line = b"Nov 22 21:41:33 mail postfix/submission/smtpd[7094]: 2441AB4574: client=unknown[127.0.0.10], sasl_method=LOGIN, sasl_username=alice@example.test";
    assert_eq!(
        submission(line),
        Submission {
            at: utc(2026, 11, 22, 21, 41, 33),
            queue_id: b"2441AB4574",
            account: Some(b"alice@example.test"),
            client: Some(ip("127.0.0.10")),
            service: Some(b"submission"),
            ..Submission::default()
        }
    );
}

#[test]
fn smtpd_service_comes_from_the_syslog_name() {
    let service = |line| submission(line).service;
    assert_eq!(
        service(
            b"Nov 22 21:41:33 mail postfix/smtpd[1]: 2441AB4574: client=mx.example.net[192.0.2.1]"
        ),
        Some(&b"smtp"[..])
    );
    assert_eq!(
        service(b"Nov 22 21:41:33 mail postfix/smtps/smtpd[1]: 2441AB4574: client=a[192.0.2.1]"),
        Some(&b"smtps"[..])
    );
    assert_eq!(
        service(b"Nov 22 21:41:33 mail postfix-in/smtpd[1]: 2441AB4574: client=a[192.0.2.1]"),
        Some(&b"smtp"[..])
    );
}

#[test]
fn smtpd_client_without_login_ipv6_port_and_sasl_sender() {
    let plain = submission(
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: 3F1E4B2C0A: client=mail.example.net[2001:db8::1]",
    );
    assert_eq!(plain.client, Some(ip("2001:db8::1")));
    assert_eq!(plain.account, None);
    let with_port = submission(b"Nov 22 21:41:33 mail postfix/submission/smtpd[1]: 3F1E4B2C0A: client=unknown[203.0.113.7]:51234, sasl_method=PLAIN, sasl_username=bob, sasl_sender=ceo@example.com");
    assert_eq!(with_port.client, Some(ip("203.0.113.7")));
    assert_eq!(with_port.account, Some(&b"bob"[..]));
}

#[test]
fn long_queue_ids() {
    let line = b"Nov 22 21:41:33 mail postfix/smtpd[1]: 4Xyz1234abcdefghij: client=a[192.0.2.1]";
    assert_eq!(submission(line).queue_id, b"4Xyz1234abcdefghij");
    let real = b"Nov 22 21:41:33 mail postfix/qmgr[1]: 4WmvLQ0pTKz9sMg: removed";
    assert_eq!(
        parse(real),
        Parsed::Event(Event::Removed(Removed {
            at: utc(2026, 11, 22, 21, 41, 33),
            queue_id: b"4WmvLQ0pTKz9sMg"
        }))
    );
}

#[test]
fn words_are_no_queue_ids() {
    for line in [
        &b"Nov 22 21:41:33 mail postfix/smtpd[1]: something: removed"[..],
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: ABCDE: removed",
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: abcdefabcdef: removed",
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: 2441AB-4574: removed",
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: 2441AB4574:removed",
    ] {
        assert_eq!(
            parse(line),
            Parsed::Unknown,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn pickup_is_a_local_submission() {
    let line = b"Nov 22 21:41:33 mail postfix/pickup[7100]: 2441AB4574: uid=33 from=<www-data>";
    assert_eq!(
        submission(line),
        Submission {
            at: utc(2026, 11, 22, 21, 41, 33),
            queue_id: b"2441AB4574",
            client: Some(Client::Unknown),
            service: Some(b"pickup"),
            unqualified_sender: Some(b"www-data"),
            ..Submission::default()
        }
    );
    // A sender a program gave with a domain is no rewriting.
    let line =
        b"Nov 22 21:41:33 mail postfix/pickup[7100]: 2441AB4574: uid=33 from=<shop@example.net>";
    assert_eq!(submission(line).unqualified_sender, None);
}

#[test]
fn cleanup_message_id() {
    let line = b"Nov 22 21:41:33 mail postfix/cleanup[7101]: 2441AB4574: message-id=<20261122214127.007092@vm>";
    let parsed = submission(line);
    assert_eq!(parsed.message_id, Some(&b"20261122214127.007092@vm"[..]));
    assert_eq!(parsed.envelope_from, None);
    let empty = b"Nov 22 21:41:33 mail postfix/cleanup[7101]: 2441AB4574: message-id=";
    assert_eq!(submission(empty).message_id, None);
}

#[test]
fn qmgr_sender_size_and_recipient_count() {
    let line = b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: from=<alice@example.test>, size=384, nrcpt=1 (queue active)";
    assert_eq!(
        submission(line),
        Submission {
            at: utc(2026, 11, 22, 21, 41, 33),
            queue_id: b"2441AB4574",
            envelope_from: Some(b"alice@example.test"),
            size: Some(384),
            recipient_count: Some(1),
            queue_pass: true,
            ..Submission::default()
        }
    );
}

#[test]
fn qmgr_null_sender_is_a_bounce() {
    let line = b"Nov 22 21:41:34 mail postfix/qmgr[7072]: 5B2C1A4575: from=<>, size=2412, nrcpt=1 (queue active)";
    let parsed = submission(line);
    assert_eq!(parsed.envelope_from, Some(&b""[..]));
    assert!(parsed.is_bounce);
}

#[test]
fn qmgr_sender_cannot_fake_size_or_count() {
    let line = b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: from=<\"a>, size=1, nrcpt=999 (queue active)\"@evil.test>, size=384, nrcpt=2 (queue active)";
    let parsed = submission(line);
    assert_eq!(
        parsed.envelope_from,
        Some(&b"\"a>, size=1, nrcpt=999 (queue active)\"@evil.test"[..])
    );
    assert_eq!((parsed.size, parsed.recipient_count), (Some(384), Some(2)));
}

#[test]
fn qmgr_expired_and_other_lines() {
    let expired = b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: from=<a@example.test>, status=expired, returned to sender";
    assert_eq!(parse(expired), Parsed::Ignored);
    let odd = b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: from=<a@example.test>, something new";
    assert_eq!(parse(odd), Parsed::Unknown);
    let no_size = b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: from=<a@example.test>, nrcpt=1 (queue active)";
    assert_eq!(
        parse(no_size),
        Parsed::Malformed("postfix queue manager line without size")
    );
}

#[test]
fn removed() {
    let line = b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed";
    assert_eq!(
        parse(line),
        Parsed::Event(Event::Removed(Removed {
            at: utc(2026, 11, 22, 21, 41, 33),
            queue_id: b"2441AB4574"
        }))
    );
}

#[test]
fn smtp_sent() {
    let line = b"Nov 22 21:41:33 mail postfix/smtp[7102]: 2441AB4574: to=<partner@partner.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=1.3, delays=1.2/0.02/0.04/0, dsn=2.0.0, status=sent (250 OK)";
    assert_eq!(
        delivery(line),
        Delivery {
            at: utc(2026, 11, 22, 21, 41, 33),
            queue_id: b"2441AB4574",
            recipient: b"partner@partner.test",
            status: DeliveryStatus::Delivered,
            dsn: Some(b"2.0.0"),
            detail: b"250 OK",
            relay: Some(b"127.0.0.1[127.0.0.1]:2525"),
        }
    );
}

#[test]
fn smtp_bounced_with_parentheses_in_the_reply() {
    let line = b"Nov 22 21:42:01 mail postfix/smtp[7102]: 2441AB4574: to=<nobody@partner.test>, relay=mx.partner.test[198.51.100.5]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, status=bounced (host mx.partner.test[198.51.100.5] said: 550 5.1.1 <nobody@partner.test>: Recipient address rejected: User unknown (in reply to RCPT TO command))";
    let parsed = delivery(line);
    assert_eq!(parsed.status, DeliveryStatus::Failed);
    assert_eq!(parsed.dsn, Some(&b"5.1.1"[..]));
    assert_eq!(
        parsed.detail,
        &b"host mx.partner.test[198.51.100.5] said: 550 5.1.1 <nobody@partner.test>: Recipient address rejected: User unknown (in reply to RCPT TO command)"[..]
    );
}

#[test]
fn deferred_with_conn_use_and_remote_text_imitating_fields() {
    let line = b"Nov 22 21:42:01 mail postfix/smtp[7102]: 2441AB4574: to=<later@slow.test>, relay=mx.slow.test[198.51.100.9]:25, conn_use=2, delay=301, delays=0.1/0/300/0.9, dsn=4.7.1, status=deferred (host mx.slow.test[198.51.100.9] said: 451 4.7.1 try later, status=sent (ok), dsn=2.0.0 (in reply to end of DATA command))";
    let parsed = delivery(line);
    assert_eq!(parsed.status, DeliveryStatus::Deferred);
    assert_eq!(parsed.dsn, Some(&b"4.7.1"[..]));
    assert!(parsed
        .detail
        .ends_with(b"(in reply to end of DATA command)"));
}

#[test]
fn local_and_virtual_with_orig_to_and_lmtp() {
    let local = delivery(b"Nov 22 21:41:35 mail postfix/local[7110]: 2441AB4574: to=<alice@mail.example.test>, orig_to=<postmaster@example.test>, relay=local, delay=0.05, delays=0.03/0.01/0/0.01, dsn=2.0.0, status=sent (delivered to mailbox)");
    assert_eq!(local.recipient, b"alice@mail.example.test");
    assert_eq!(local.relay, Some(&b"local"[..]));
    assert_eq!(local.detail, b"delivered to mailbox");
    let lmtp = delivery(b"Nov 22 21:41:35 mail postfix/lmtp[7111]: 2441AB4574: to=<bob@example.test>, relay=mail.example.test[private/dovecot-lmtp], delay=0.1, delays=0.05/0.01/0.01/0.03, dsn=2.0.0, status=sent (250 2.0.0 <bob@example.test> kC3nM7yUQGf8HgAAp8jGZA Saved)");
    assert_eq!(
        lmtp.relay,
        Some(&b"mail.example.test[private/dovecot-lmtp]"[..])
    );
    assert_eq!(lmtp.status, DeliveryStatus::Delivered);
}

#[test]
fn error_agent_relay_none_and_other_statuses() {
    let line = b"Nov 22 21:41:35 mail postfix/error[7112]: 2441AB4574: to=<x@nowhere.test>, relay=none, delay=0.2, delays=0.1/0/0/0.1, dsn=5.0.0, status=bounced (Host or domain name not found. Name service error for name=nowhere.test type=MX: Host not found, try again)";
    let parsed = delivery(line);
    assert_eq!(parsed.relay, None);
    assert_eq!(parsed.status, DeliveryStatus::Failed);
    let status = |word: &str| {
        let line = format!("Nov 22 21:41:35 mail postfix/qmgr[1]: 2441AB4574: to=<x@y.test>, relay=none, delay=432000, delays=432000/0/0/0, dsn=4.4.1, status={word} (gone)");
        match parse(line.as_bytes()) {
            Parsed::Event(Event::Delivery(delivery)) => Some(delivery.status),
            _ => None,
        }
    };
    assert_eq!(status("expired"), Some(DeliveryStatus::Failed));
    assert_eq!(status("undeliverable"), None);
    assert_eq!(status("deliverable"), None);
    assert_eq!(status("SOFTBOUNCE"), None);
}

#[test]
fn quoted_recipient_cannot_pose_as_fields() {
    let line = b"Nov 22 21:42:01 mail postfix/smtp[7102]: 2441AB4574: to=<\"x>, relay=none, dsn=2.0.0, status=sent (\"@evil.test>, relay=mx.evil.test[192.0.2.66]:25, delay=1, delays=1/0/0/0, dsn=5.1.1, status=bounced (550 no)";
    let parsed = delivery(line);
    assert_eq!(
        parsed.recipient,
        &b"\"x>, relay=none, dsn=2.0.0, status=sent (\"@evil.test"[..]
    );
    assert_eq!(parsed.status, DeliveryStatus::Failed);
    assert_eq!(parsed.dsn, Some(&b"5.1.1"[..]));
}

#[test]
fn truncated_deliveries_are_malformed() {
    for (line, reason) in [
        (
            &b"Nov 22 21:42:01 mail postfix/smtp[1]: 2441AB4574: to=<x@y.test"[..],
            "postfix delivery with an unterminated recipient",
        ),
        (
            b"Nov 22 21:42:01 mail postfix/smtp[1]: 2441AB4574: to=<x@y.test>, relay=none, delay=1",
            "postfix delivery without a status",
        ),
        (
            b"Nov 22 21:42:01 mail postfix/smtp[1]: 2441AB4574: to=<x@y.test>, relay",
            "postfix delivery field without a value",
        ),
        (
            b"Nov 22 21:42:01 mail postfix/smtp[1]: 2441AB4574: to=<x@y.test>, orig_to=<\"a, status=sent",
            "postfix delivery with an unterminated address",
        ),
    ] {
        assert_eq!(parse(line), Parsed::Malformed(reason));
    }
}

#[test]
fn bounce_notification_names_the_notice_and_its_original() {
    let line = b"Nov 22 21:42:01 mail postfix/bounce[7120]: 2441AB4574: sender non-delivery notification: 5B2C1A4575";
    assert_eq!(
        submission(line),
        Submission {
            at: utc(2026, 11, 22, 21, 42, 1),
            queue_id: b"5B2C1A4575",
            notice_of: Some(b"2441AB4574"),
            is_bounce: true,
            ..Submission::default()
        }
    );
    let delay = b"Nov 22 21:42:01 mail postfix/bounce[7120]: 2441AB4574: sender delay notification: 6C3D2B4576";
    assert_eq!(submission(delay).notice_of, Some(&b"2441AB4574"[..]));
    let odd = b"Nov 22 21:42:01 mail postfix/bounce[7120]: 2441AB4574: sender non-delivery notification: soon";
    assert!(matches!(parse(odd), Parsed::Malformed(_)));
}

#[test]
fn address_verification_probes_are_no_deliveries() {
    for line in [
        &b"Nov 22 21:42:05 mail postfix/smtp[7130]: 7D4E3C4577: to=<someone@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=1.1, delays=0/0/0.6/0.5, dsn=2.1.5, status=deliverable (250 2.1.5 Ok)"[..],
        b"Nov 22 21:42:05 mail postfix/smtp[7130]: 7D4E3C4578: to=<nobody@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=1.1, delays=0/0/0.6/0.5, dsn=5.1.1, status=undeliverable (host mx.far.test[192.0.2.9] said: 550 5.1.1 User unknown (in reply to RCPT TO command))",
    ] {
        assert_eq!(parse(line), Parsed::Ignored);
    }
}

#[test]
fn noqueue_relay_attempt() {
    let line = b"Nov 22 21:43:10 mail postfix/smtpd[7130]: NOQUEUE: reject: RCPT from unknown[198.51.100.23]: 554 5.7.1 <victim@elsewhere.test>: Relay access denied; from=<spam@spam.test> to=<victim@elsewhere.test> proto=ESMTP helo=<ylmf-pc>";
    assert_eq!(
        block(line),
        ServerBlock {
            at: utc(2026, 11, 22, 21, 43, 10),
            client: ip("198.51.100.23"),
            kind: BlockKind::RelayAttempt,
            detail: b"554 5.7.1 <victim@elsewhere.test>: Relay access denied",
            refusals: 1,
        }
    );
}

#[test]
fn noqueue_unknown_recipient_dnsbl_helo_and_greylisting() {
    let kind = |line| block(line).kind;
    assert_eq!(
        kind(b"Nov 22 21:43:10 mail postfix/smtpd[7130]: NOQUEUE: reject: RCPT from mx.sender.test[192.0.2.5]: 550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@sender.test> to=<nobody@example.test> proto=ESMTP helo=<mx.sender.test>"),
        BlockKind::UnknownRecipient
    );
    assert_eq!(
        kind(b"Nov 22 21:43:10 mail postfix/smtpd[7130]: NOQUEUE: reject: RCPT from unknown[192.0.2.77]: 554 5.7.1 Service unavailable; Client host [192.0.2.77] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.77; from=<a@b.test> to=<c@example.test> proto=ESMTP helo=<x>"),
        BlockKind::Dnsbl
    );
    assert_eq!(
        kind(b"2024-08-26T01:33:38.572449+00:00 machine postfix/smtpd[60203]: NOQUEUE: reject: RCPT from unknown[192.168.1.1]: 504 5.5.2 <WIN-X>: Helo command rejected: need fully-qualified hostname; from=<a@b> to=<c@d> proto=ESMTP helo=<WIN-X>"),
        BlockKind::Other
    );
    assert_eq!(
        kind(b"Nov 22 21:43:10 mail postfix/smtpd[7130]: NOQUEUE: reject: RCPT from mx.sender.test[192.0.2.5]: 450 4.2.0 <bob@example.test>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.test.html; from=<a@sender.test> to=<bob@example.test> proto=ESMTP helo=<mx.sender.test>"),
        BlockKind::Other
    );
}

#[test]
fn reject_with_a_queue_id_and_milter_reject() {
    let queued = block(b"Nov 22 21:43:10 mail postfix/smtpd[7130]: 2441AB4574: reject: RCPT from unknown[192.0.2.8]:40022: 550 5.1.1 <gone@example.test>: Recipient address rejected: User unknown in local recipient table; from=<a@b.test> to=<gone@example.test> proto=ESMTP helo=<x>");
    assert_eq!(queued.client, ip("192.0.2.8"));
    assert_eq!(queued.kind, BlockKind::UnknownRecipient);
    let milter = block(b"Nov 22 21:43:10 mail postfix/cleanup[7131]: 2441AB4574: milter-reject: END-OF-MESSAGE from unknown[192.0.2.9]: 5.7.1 Spam message rejected; from=<a@b.test> to=<c@example.test> proto=ESMTP helo=<x>");
    assert_eq!(milter.kind, BlockKind::Other);
    assert_eq!(milter.detail, b"5.7.1 Spam message rejected");
}

#[test]
fn postscreen_dnsbl_refusal_is_a_block_and_its_other_lines_noise() {
    let line = b"Nov 22 21:43:10 mail postfix/postscreen[7000]: NOQUEUE: reject: RCPT from [192.0.2.66]:50123: 550 5.7.1 Service unavailable; client [192.0.2.66] blocked using zen.spamhaus.org; from=<a@b.test>, to=<c@example.test>, proto=ESMTP, helo=<x>";
    let parsed = block(line);
    assert_eq!(parsed.client, ip("192.0.2.66"));
    assert_eq!(parsed.kind, BlockKind::Dnsbl);
    for line in [
        &b"Nov 22 21:43:09 mail postfix/postscreen[7000]: CONNECT from [192.0.2.66]:50123 to [10.0.0.2]:25"[..],
        b"Nov 22 21:43:09 mail postfix/postscreen[7000]: DNSBL rank 3 for [192.0.2.66]:50123",
        b"Nov 22 21:43:09 mail postfix/postscreen[7000]: PASS NEW [192.0.2.67]:50124",
    ] {
        assert_eq!(parse(line), Parsed::Ignored);
    }
}

#[test]
fn header_checks_and_noqueue_actions_that_let_mail_through() {
    for line in [
        &b"Nov 22 21:43:10 mail postfix/cleanup[7131]: 2441AB4574: reject: header Subject: win from unknown[192.0.2.9]; from=<a@b.test> to=<c@example.test> proto=ESMTP helo=<x>: 5.7.1 No thanks"[..],
        b"Nov 22 21:43:10 mail postfix/cleanup[7131]: 2441AB4574: warning: header Subject: hi from unknown[192.0.2.9]; from=<a@b.test> to=<c@example.test> proto=ESMTP helo=<x>",
        b"Nov 22 21:43:10 mail postfix/smtpd[7130]: NOQUEUE: reject_warning: RCPT from unknown[192.0.2.9]: 554 5.7.1 <x@y>: Relay access denied; from=<> to=<x@y> proto=ESMTP helo=<x>",
        b"Nov 22 21:43:10 mail postfix/smtpd[7130]: NOQUEUE: discard: RCPT from unknown[192.0.2.9]: <x@y>: Recipient address triggers DISCARD action; from=<> to=<x@y> proto=ESMTP helo=<x>",
    ] {
        assert_eq!(parse(line), Parsed::Ignored, "{}", String::from_utf8_lossy(line));
    }
    assert_eq!(
        parse(b"Nov 22 21:43:10 mail postfix/smtpd[7130]: NOQUEUE: reject: RCPT"),
        Parsed::Malformed("postfix refusal without a client")
    );
    assert_eq!(
        parse(b"Nov 22 21:43:10 mail postfix/smtpd[7130]: NOQUEUE: something new"),
        Parsed::Unknown
    );
}

#[test]
fn sasl_failures() {
    let line = b"Sep  6 00:44:56 trianon postfix/submission/smtpd[11538]: warning: unknown[82.221.106.233]: SASL LOGIN authentication failed: UGFzc3dvcmQ6";
    assert_eq!(
        auth_failure(line),
        AuthFailure {
            at: utc(2026, 9, 6, 0, 44, 56),
            client: ip("82.221.106.233"),
            account: None,
            service: b"SMTP",
            kind: AuthFailureKind::BadPassword,
            attempts: 1,
        }
    );
    let named = auth_failure(b"Nov 22 21:46:48 mail postfix/submission/smtpd[7148]: warning: unknown[127.66.6.6]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=sales@example.test");
    assert_eq!(named.account, Some(&b"sales@example.test"[..]));
    assert_eq!(named.kind, AuthFailureKind::BadPassword);
    let plain = auth_failure(b"Nov 22 21:46:48 mail postfix/smtps/smtpd[7148]: warning: host.example.net[2001:db8::7]: SASL PLAIN authentication failed: ");
    assert_eq!(plain.client, ip("2001:db8::7"));
    let cram = auth_failure(b"Nov 22 21:46:48 mail postfix/smtpd[7148]: warning: unknown[192.0.2.4]: SASL CRAM-MD5 authentication failed: authentication failure, sasl_username=admin");
    assert_eq!(cram.account, Some(&b"admin"[..]));
}

#[test]
fn sasl_failure_without_the_auth_server_is_no_guess() {
    let failure = auth_failure(b"Feb  3 08:29:28 mail postfix/smtpd[21022]: warning: unknown[1.1.1.1]: SASL LOGIN authentication failed: Connection lost to authentication server");
    assert_eq!(failure.kind, AuthFailureKind::ServerFault);
}

#[test]
fn tried_login_runs_to_the_end_of_the_line() {
    let failure = auth_failure(b"Nov 22 21:46:48 mail postfix/smtpd[7148]: warning: unknown[192.0.2.4]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=x, sasl_username=ceo@example.test authentication server");
    assert_eq!(
        failure.account,
        Some(&b"x, sasl_username=ceo@example.test authentication server"[..])
    );
    assert_eq!(failure.kind, AuthFailureKind::BadPassword);
}

#[test]
fn sasl_sender_cannot_pose_as_the_login() {
    let line = b"Nov 22 21:41:33 mail postfix/submission/smtpd[1]: 2441AB4574: client=unknown[203.0.113.7], sasl_method=PLAIN, sasl_username=bob, sasl_sender=x, sasl_username=ceo@example.test";
    assert_eq!(submission(line).account, Some(&b"bob"[..]));
}

#[test]
fn noise_is_ignored() {
    for line in [
        &b"Nov 22 21:42:12 mail postfix/submission/smtpd[7208]: connect from unknown[127.88.8.8]"[..],
        b"Nov 22 21:42:12 mail postfix/submission/smtpd[7208]: disconnect from unknown[127.88.8.8] ehlo=1 auth=1 quit=1 commands=3",
        b"Nov 22 21:42:12 mail postfix/submission/smtpd[7208]: disconnect from unknown[127.88.8.8] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4",
        b"Nov 22 21:42:12 mail postfix/smtpd[7208]: lost connection after AUTH from unknown[192.0.2.4]",
        b"Nov 22 21:42:12 mail postfix/smtpd[7208]: warning: hostname host.example.net does not resolve to address 192.0.2.4: Name or service not known",
        b"Nov 22 21:42:12 mail postfix/smtpd[7208]: warning: unknown[192.0.2.4]: SASL LOGIN authentication aborted",
        b"Nov 22 21:42:12 mail postfix/anvil[7000]: statistics: max connection rate 1/60s for (smtp:192.0.2.4) at Nov 22 21:38:51",
        b"Nov 22 21:42:12 mail postfix/master[6999]: daemon started -- version 3.7.11, configuration /etc/postfix",
        b"Nov 22 21:42:12 mail postfix/smtpd[7208]: Anonymous TLS connection established from unknown[192.0.2.4]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
        b"Nov 22 21:42:12 mail postfix/smtp[7102]: 2441AB4574: host mx.slow.test[198.51.100.9] said: 451 4.7.1 later (in reply to RCPT TO command)",
        b"Nov 22 21:42:12 mail postfix/smtp[7102]: connect to mx.down.test[198.51.100.10]:25: Connection timed out",
    ] {
        assert_eq!(parse(line), Parsed::Ignored, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn unknown_postfix_lines() {
    for line in [
        &b"Nov 22 21:42:12 mail postfix/smtpd[7208]: something Postfix never said"[..],
        b"Nov 22 21:42:12 mail postfix/qmgr[7072]: 2441AB4574: brand new thing",
        b"Nov 22 21:42:12 mail postfix/smtpd[7208]: ",
    ] {
        assert_eq!(
            parse(line),
            Parsed::Unknown,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn client_lines_without_a_client() {
    assert_eq!(
        parse(b"Nov 22 21:41:33 mail postfix/smtpd[1]: 2441AB4574: client=unknown"),
        Parsed::Malformed("postfix client= without host[address]")
    );
    let host_only = submission(
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: 2441AB4574: client=relay.example.net[not-an-ip]",
    );
    assert_eq!(host_only.client, Some(Client::Host(b"relay.example.net")));
}

#[test]
fn delivery_delay_gives_the_time_in_the_queue() {
    use super::delivery_delay;
    let retry = b"Dec  1 08:00:01 mx postfix/smtp[2301]: 3A1B2C4D5E: to=<a@far.test>, relay=mx.far.test[192.0.2.9]:25, delay=126000, delays=125999/0.01/0.4/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok)";
    assert_eq!(delivery_delay(retry), Some(126_000.0));
    let forged = b"Dec  1 08:00:01 mx postfix/smtp[2301]: 3A1B2C4D5E: to=<\"x>, delay=9\"@far.test>, relay=none, delay=0.52, delays=0/0/0/0.52, dsn=2.0.0, status=sent (delay=99)";
    assert_eq!(delivery_delay(forged), Some(0.52));
    let qmgr = b"Dec  1 08:00:00 mx postfix/qmgr[2010]: 3A1B2C4D5E: from=<a@b.test>, size=1, nrcpt=1 (queue active)";
    assert_eq!(delivery_delay(qmgr), None);
    assert_eq!(delivery_delay(b": to=<a@b>, delay=-3, status=sent"), None);
    assert_eq!(delivery_delay(b": to=<a@b"), None);
}

/// A broken-off AUTH leaves no warning, only the disconnect's `auth=0/1`:
/// it counts; a failure a warning told of is not counted twice.
#[test]
fn disconnect_counts_failed_auth_commands_no_warning_reported() {
    let context = ParseContext {
        year_reference: Some(utc(2026, 12, 1, 0, 0, 0)),
        ..ParseContext::default()
    };
    let mut parser = SyslogParser::new(&context);
    let mut attempts = |line: &[u8]| match parser.parse(line) {
        Parsed::Event(Event::AuthFailure(f)) => {
            assert_eq!((f.client, f.service), (ip("192.0.2.4"), &b"SMTP"[..]));
            Some((f.attempts, f.kind))
        }
        Parsed::Ignored => None,
        other => panic!("{other:?}"),
    };
    let broken_off = b"Nov 22 21:42:12 mail postfix/smtpd[7208]: disconnect from unknown[192.0.2.4] ehlo=1 auth=0/1 quit=1 commands=2/3";
    assert_eq!(attempts(broken_off), Some((1, AuthFailureKind::Protocol)));
    let warning = b"Nov 22 21:42:13 mail postfix/smtpd[7208]: warning: unknown[192.0.2.4]: SASL LOGIN authentication failed: UGFzc3dvcmQ6";
    assert_eq!(attempts(warning), Some((1, AuthFailureKind::BadPassword)));
    // Three AUTH commands, one reported by the warning above.
    let disconnect = b"Nov 22 21:42:14 mail postfix/smtpd[7208]: disconnect from unknown[192.0.2.4] ehlo=1 auth=0/3 commands=1/4";
    assert_eq!(attempts(disconnect), Some((2, AuthFailureKind::Protocol)));
    assert_eq!(attempts(warning), Some((1, AuthFailureKind::BadPassword)));
    let one_failed = b"Nov 22 21:42:15 mail postfix/smtpd[7208]: disconnect from unknown[192.0.2.4] ehlo=1 auth=0/1 quit=1 commands=2/3";
    assert_eq!(attempts(one_failed), None);
    // One failed, then one accepted: the warning told of the failure.
    assert_eq!(attempts(warning), Some((1, AuthFailureKind::BadPassword)));
    let then_in = b"Nov 22 21:42:16 mail postfix/smtpd[7208]: disconnect from unknown[192.0.2.4] ehlo=1 auth=1/2 quit=1 commands=3/4";
    assert_eq!(attempts(then_in), None);
    for odd in [
        &b"Nov 22 21:42:17 mail postfix/smtpd[7208]: disconnect from unknown[192.0.2.4] ehlo=1 auth=x/1"[..],
        b"Nov 22 21:42:17 mail postfix/smtpd[7208]: disconnect from unknown[192.0.2.4] auth=0/99999999999999999999",
        b"Nov 22 21:42:17 mail postfix/smtpd[7208]: disconnect from 192.0.2.4 auth=0/1",
    ] {
        assert_eq!(attempts(odd), None, "{}", String::from_utf8_lossy(odd));
    }
}

#[test]
fn last_fields_are_split_at_the_last_marker() {
    use super::split_last_field;
    /// A text, and what is before and after its last marker.
    type Case<'a> = (&'a [u8], Option<(&'a [u8], &'a [u8])>);
    let cases: [Case<'_>; 7] = [
        (b"a>, size=12, nrcpt=3", Some((b"a>, size=12", b"3"))),
        (
            b"a, nrcpt=1>, size=12, nrcpt=3",
            Some((b"a, nrcpt=1>, size=12", b"3")),
        ),
        (b", nrcpt=", Some((b"", b""))),
        (b"nrcpt=3", None),
        (b"", None),
        (b"a, nrcpt=3x", Some((b"a", b"3x"))),
        (b"=, nrcpt==", Some((b"=", b"="))),
    ];
    for (text, expected) in cases {
        assert_eq!(
            split_last_field(text, b", nrcpt="),
            expected,
            "{}",
            String::from_utf8_lossy(text)
        );
    }
}

#[test]
fn sasl_usernames_are_found_where_a_substring_search_finds_them() {
    use super::{sasl_username, SASL_USERNAME};
    let cases: [&[u8]; 7] = [
        b"",
        b", sasl_username=",
        b": UGFzc3dvcmQ6, sasl_username=a@b",
        b"a,, sasl_username=x, sasl_username=y",
        b", sasl_username, sasl_username=z",
        b"no login here, none",
        b",",
    ];
    for text in cases {
        assert_eq!(
            sasl_username(text),
            memchr::memmem::find(text, SASL_USERNAME),
            "{}",
            String::from_utf8_lossy(text)
        );
    }
}
