//! Tests of the whole parser: dispatch, time, recognition, and
//! robustness against hostile input. Postfix line kinds are tested in
//! `postfix_tests.rs`, the envelope and clock in their modules.

use mailfuse_core::{Event, Timestamp};

use super::*;
use crate::{Format, LocalZone};

const POSTFIX_SAMPLE: [&[u8]; 6] = [
    b"Nov 22 21:41:33 mail postfix/submission/smtpd[7094]: 2441AB4574: client=unknown[127.0.0.10], sasl_method=LOGIN, sasl_username=alice@example.test",
    b"Nov 22 21:41:33 mail postfix/cleanup[7101]: 2441AB4574: message-id=<20261122214127.007092@vm>",
    b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: from=<alice@example.test>, size=384, nrcpt=1 (queue active)",
    b"Nov 22 21:41:33 mail postfix/smtp[7102]: 2441AB4574: to=<partner@partner.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=1.3, delays=1.2/0.02/0.04/0, dsn=2.0.0, status=sent (250 OK)",
    b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed",
    b"Nov 22 21:42:12 mail postfix/submission/smtpd[7208]: disconnect from unknown[127.88.8.8] ehlo=1 auth=0/1 quit=1 commands=2/3",
];

fn utc(year: i32, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> Timestamp {
    Timestamp::from_civil(year, month, day, hour, min, sec).unwrap()
}

fn parser(zone: &str, year_reference: Option<Timestamp>) -> SyslogParser {
    SyslogParser::new(&ParseContext {
        zone: LocalZone::parse(zone).unwrap(),
        year_reference,
        ..ParseContext::default()
    })
}

#[test]
fn local_time_year_and_new_year() {
    let mut parser = parser("+02:00", Some(utc(2027, 1, 2, 0, 0, 0)));
    let december = b"Dec 31 23:59:59 mail postfix/qmgr[7072]: 2441AB4574: removed";
    let expected = utc(2026, 12, 31, 21, 59, 59);
    assert_eq!(parser.timestamp(december), Some(expected));
    let Parsed::Event(event) = parser.parse(december) else {
        panic!("not an event");
    };
    assert_eq!(event.at(), expected);
    let january = b"Jan  1 00:00:05 mail postfix/qmgr[7072]: 2441AB4575: removed";
    assert_eq!(parser.timestamp(january), Some(utc(2026, 12, 31, 22, 0, 5)));
}

#[test]
fn without_a_year_reference_rfc_3164_lines_are_malformed() {
    let mut parser = parser("UTC", None);
    for line in POSTFIX_SAMPLE {
        assert_eq!(parser.timestamp(line), None);
        assert_eq!(
            parser.parse(line),
            Parsed::Malformed("syslog timestamp without a year reference")
        );
    }
    // RFC 3339 lines carry their year.
    let line = b"2024-08-26T01:33:38.572449+03:00 mail postfix/qmgr[7072]: 2441AB4574: removed";
    assert_eq!(parser.timestamp(line), Some(utc(2024, 8, 25, 22, 33, 38)));
    assert!(matches!(
        parser.parse(line),
        Parsed::Event(Event::Removed(_))
    ));
}

#[test]
fn invalid_dates_are_malformed() {
    let mut parser = parser("UTC", Some(utc(2026, 12, 1, 0, 0, 0)));
    for line in [
        &b"Nov 31 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed"[..],
        b"Nov 3x 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed",
        b"2024-08-26T01:33:38+25:00 mail postfix/qmgr[7072]: 2441AB4574: removed",
    ] {
        assert_eq!(
            parser.parse(line),
            Parsed::Malformed("invalid syslog timestamp"),
            "{}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(parser.timestamp(line), None);
    }
}

#[test]
fn other_programs_are_unknown_whatever_their_time() {
    let mut parser = parser("UTC", None);
    for line in [
        &b"Nov 22 21:41:33 mail CRON[1234]: (root) CMD (run-parts /etc/cron.hourly)"[..],
        b"Nov 31 21:41:33 mail sshd[99]: Failed password for root from 192.0.2.1 port 22 ssh2",
        b"Nov 22 21:41:33 mail kernel: [ 1.0] x",
        b"not syslog at all",
    ] {
        assert_eq!(parser.parse(line), Parsed::Unknown);
    }
}

#[test]
fn dovecot_lines_go_to_the_dovecot_parser() {
    let reference = utc(2026, 12, 1, 0, 0, 0);
    for (line, message) in [
        (
            &b"Nov 22 10:01:02 mail dovecot: imap-login: Login: user=<alice@example.com>, method=PLAIN, rip=203.0.113.7, lip=10.0.0.2, mpid=1234, TLS, session=<abc>"[..],
            &b"imap-login: Login: user=<alice@example.com>, method=PLAIN, rip=203.0.113.7, lip=10.0.0.2, mpid=1234, TLS, session=<abc>"[..],
        ),
        (
            b"Nov 22 10:01:02 mail dovecot[880]: auth-worker(304): pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)",
            b"auth-worker(304): pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)",
        ),
        (
            b"Nov 22 10:01:02 imap-login: Info: Login: user=<alice@example.com>, method=PLAIN, rip=203.0.113.7, lip=10.0.0.2",
            b"imap-login: Info: Login: user=<alice@example.com>, method=PLAIN, rip=203.0.113.7, lip=10.0.0.2",
        ),
        (
            b"Nov 22 10:01:02 auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch",
            b"auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch",
        ),
    ] {
        let expected = dovecot::parse(
            utc(2026, 11, 22, 10, 1, 2),
            message,
            &mut dovecot::DovecotState::default(),
        );
        assert_eq!(
            parser("UTC", Some(reference)).parse(line),
            expected,
            "{}",
            String::from_utf8_lossy(line)
        );
        assert!(recognizes(line));
    }
}

#[test]
fn recognizes_postfix_and_dovecot_only() {
    for line in POSTFIX_SAMPLE {
        assert!(recognizes(line), "{}", String::from_utf8_lossy(line));
    }
    for line in [
        &b"2024-08-26T01:33:38.572449+00:00 machine postfix/smtpd[60203]: NOQUEUE: reject: x"[..],
        b"2024-08-26T01:33:38 machine postfix-out/smtp[60203]: x",
        b"Jun 13 16:30:54 platypus dovecot: imap-login: Disconnected (auth failed, 2 attempts): user=<bob>",
        b"Nov 22 10:01:02 pop3-login: Info: Disconnected",
        b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed\r",
    ] {
        assert!(recognizes(line), "{}", String::from_utf8_lossy(line));
    }
    for line in [
        &b"[22/Nov/2026 10:00:00] Recv: Queue-ID: 65ee8b47-00000009, Service: SMTP"[..],
        b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= alice@example.com H=(laptop) [203.0.113.7]:51234 P=esmtpsa",
        b"<22>1 2026-04-01T14:59:31+07:00 mail.example.com mail - - - Sent: Queue-ID: x",
        b"Nov 22 21:41:33 mail sshd[99]: Accepted publickey for root",
        b"Nov 31 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed",
        b"Foo 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed",
        b"2024-08-26T01:33:38+99:00 mail postfix/qmgr[7072]: 2441AB4574: removed",
        b"postfix/smtpd[1]: connect from x",
        b"hello world",
        b"",
    ] {
        // An impossible day (Nov 31) is still told apart by its digits only:
        // recognition does not know the year, so it checks the shape.
        let expected = line.starts_with(b"Nov 31");
        assert_eq!(recognizes(line), expected, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn postfix_logs_are_recognised_as_syslog() {
    let mut recogniser = crate::Recogniser::default();
    for line in POSTFIX_SAMPLE {
        recogniser.feed(line);
    }
    assert_eq!(
        recogniser.state(),
        crate::Recognition::Known(Format::Syslog)
    );
    let context = ParseContext {
        year_reference: Some(utc(2026, 12, 1, 0, 0, 0)),
        ..ParseContext::default()
    };
    let mut parser = Format::Syslog.parser(&context);
    let events = POSTFIX_SAMPLE
        .iter()
        .filter(|line| matches!(parser.parse(line), Parsed::Event(_)))
        .count();
    // Five lines of the message, and the broken-off AUTH (`auth=0/1`).
    assert_eq!(events, 6);
}

#[test]
fn hostile_lines_never_panic() {
    let mut parser = parser("Europe/Prague", Some(utc(2026, 12, 1, 0, 0, 0)));
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in POSTFIX_SAMPLE {
        for end in 0..=line.len() {
            lines.push(line[..end].to_vec());
        }
        let mut with_nul = line.to_vec();
        with_nul.insert(40, 0);
        lines.push(with_nul);
        let mut invalid = line.to_vec();
        invalid.extend_from_slice(b"\xff\xfe\xc3");
        lines.push(invalid);
    }
    let huge_value = [b'x'; 1 << 20];
    for opening in [
        &b"Nov 22 21:41:33 mail postfix/smtp[1]: 2441AB4574: to=<"[..],
        b"Nov 22 21:41:33 mail postfix/smtp[1]: 2441AB4574: to=<\"",
        b"Nov 22 21:41:33 mail postfix/smtp[1]: 2441AB4574: to=<a>, status=sent (",
        b"Nov 22 21:41:33 mail postfix/qmgr[1]: 2441AB4574: from=<",
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: 2441AB4574: client=",
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from ",
        b"Nov 22 21:41:33 mail postfix/smtpd[1]: warning: ",
        b"Nov 22 21:41:33 mail ",
        b"Nov 22 21:41:33 ",
        b"2024-08-26T01:33:38.",
    ] {
        let mut line = opening.to_vec();
        line.extend_from_slice(&huge_value);
        lines.push(line);
    }
    let mut repeated = b"Nov 22 21:41:33 mail postfix/smtp[1]: 2441AB4574: to=<a>".to_vec();
    while repeated.len() < 1 << 20 {
        repeated.extend_from_slice(b", orig_to=<\"\\\">");
    }
    lines.push(repeated);
    for line in &lines {
        parser.timestamp(line);
        parser.parse(line);
        recognizes(line);
    }
}

#[test]
fn huge_login_is_borrowed_whole() {
    let mut line = b"Nov 22 21:41:33 mail postfix/smtpd[1]: warning: unknown[192.0.2.4]: SASL LOGIN authentication failed: x, sasl_username=".to_vec();
    line.extend(std::iter::repeat_n(b'a', 1 << 20));
    let mut parser = parser("UTC", Some(utc(2026, 12, 1, 0, 0, 0)));
    let Parsed::Event(Event::AuthFailure(failure)) = parser.parse(&line) else {
        panic!("not an auth failure");
    };
    assert_eq!(failure.account.map(<[u8]>::len), Some(1 << 20));
}

#[test]
fn derives_the_offset_from_a_message_id_postfix_made() {
    let own = |stamp: &str, id: &str| {
        format!(
            "{stamp} mx postfix/cleanup[3120]: 7C2201C2F: message-id=<{id}.7C2201C2F@mx.example>"
        )
    };
    // UTC−05:00: logged 15:46, made 20:46 UTC.
    let line = own("Dec 14 15:46:28", "20141214204627");
    assert_eq!(derive_offset(line.as_bytes()), Some(-5 * 3600));
    // Across New Year: logged on New Year's Eve, UTC already in January.
    let line = own("Dec 31 20:30:01", "20150101013000");
    assert_eq!(derive_offset(line.as_bytes()), Some(-5 * 3600));
    // UTC+05:45 (Nepal), a zone of quarter hours.
    let line = own("Jun  3 08:15:02", "20240603023000");
    assert_eq!(derive_offset(line.as_bytes()), Some(5 * 3600 + 45 * 60));
    // RFC 3339 with no offset is local time too.
    let line = own("2024-06-03T04:30:00.123456", "20240603023000");
    assert_eq!(derive_offset(line.as_bytes()), Some(2 * 3600));
}

#[test]
fn derives_no_offset_from_a_message_id_postfix_did_not_make() {
    let cases: [&[u8]; 6] = [
        // A client's Message-ID: no queue id inside.
        b"Dec 14 21:46:28 mx postfix/cleanup[3120]: 7C2201C2F: message-id=<20141214204627.12345@client.example>",
        // Another queue's id inside.
        b"Dec 14 21:46:28 mx postfix/cleanup[3120]: 7C2201C2F: message-id=<20141214204627.8D3312D30@mx.example>",
        // The stamp carries its offset: nothing to derive.
        b"2014-12-14T21:46:28+01:00 mx postfix/cleanup[3120]: 7C2201C2F: message-id=<20141214204627.7C2201C2F@mx.example>",
        // Another program.
        b"Dec 14 21:46:28 mx postfix/qmgr[3120]: 7C2201C2F: message-id=<20141214204627.7C2201C2F@mx.example>",
        // Further apart than any zone.
        b"Dec 14 21:46:28 mx postfix/cleanup[3120]: 7C2201C2F: message-id=<20141212204627.7C2201C2F@mx.example>",
        // Not a date.
        b"Dec 14 21:46:28 mx postfix/cleanup[3120]: 7C2201C2F: message-id=<20141399204627.7C2201C2F@mx.example>",
    ];
    for line in cases {
        assert_eq!(
            derive_offset(line),
            None,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn roundcubes_syslog_lines_are_read_with_the_mail_log() {
    let line = b"Nov 22 21:40:02 mail roundcube: <n9q3yf0f> Successful login for j.novak@acme.example (ID: 3) from 198.51.100.7 in session n9q3yf0fr8xaaab4";
    assert!(recognizes(line));
    let mut parser = parser("UTC", Some(utc(2026, 12, 1, 0, 0, 0)));
    let Parsed::Event(Event::AuthSuccess(login)) = parser.parse(line) else {
        panic!("not a login");
    };
    assert_eq!(login.at, utc(2026, 11, 22, 21, 40, 2));
    assert_eq!(login.account, b"j.novak@acme.example");
    assert_eq!(login.client.ip(), Some("198.51.100.7".parse().unwrap()));
    assert_eq!(login.service, b"webmail");
}
