//! Tests of the time part (zones, offsets, fractions, pids), message ids,
//! recognition, and robustness against hostile input. Line kinds are tested in
//! the submodule that reads them.

use mailfuse_core::{Client, Event};

use super::test_support::{event, parse, utc};
use super::*;
use crate::{Format, Recogniser, Recognition};

const ARRIVAL: &[u8] = b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= alice@example.com H=(laptop) [203.0.113.7]:51234 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_login:alice@example.com S=2275 id=abc@laptop T=\"Quarterly report\"";

fn parser_in(zone: &str) -> EximParser {
    EximParser::new(&ParseContext {
        zone: LocalZone::parse(zone).unwrap(),
        year_reference: None,
        ..ParseContext::default()
    })
}

#[test]
fn local_time_follows_the_zone_and_is_cached() {
    let mut parser = parser_in("Europe/Prague");
    let winter = b"2024-01-10 12:00:00 1rK9Xa-0001ab-Cd Completed";
    let summer = b"2024-07-10 12:00:00 1rK9Xa-0001ab-Cd Completed";
    for _ in 0..2 {
        assert_eq!(parser.timestamp(winter), Some(utc(2024, 1, 10, 11, 0, 0)));
        assert_eq!(parser.timestamp(winter), Some(utc(2024, 1, 10, 11, 0, 0)));
        assert_eq!(parser.timestamp(summer), Some(utc(2024, 7, 10, 10, 0, 0)));
    }
    let Parsed::Event(event) = parser.parse(summer) else {
        panic!("not an event");
    };
    assert_eq!(event.at(), utc(2024, 7, 10, 10, 0, 0));
}

#[test]
fn written_offsets_are_exact_whatever_the_zone() {
    let mut parser = parser_in("Europe/Prague");
    let line = b"2024-07-10 12:00:00 -0500 1rK9Xa-0001ab-Cd Completed";
    assert_eq!(parser.timestamp(line), Some(utc(2024, 7, 10, 17, 0, 0)));
    // Same wall clock, no offset: the cache must not answer with the one above.
    let local = b"2024-07-10 12:00:00 1rK9Xa-0001ab-Cd Completed";
    assert_eq!(parser.timestamp(local), Some(utc(2024, 7, 10, 10, 0, 0)));
    let plus = b"2024-07-10 12:00:00 +0100 1rK9Xa-0001ab-Cd Completed";
    assert_eq!(parser.timestamp(plus), Some(utc(2024, 7, 10, 11, 0, 0)));
}

#[test]
fn fractions_offsets_and_pids_before_the_text() {
    for line in [
        &b"2024-03-21 19:26:06.123 1rK9Xa-0001ab-Cd Completed"[..],
        b"2024-03-21 19:26:06 [4321] 1rK9Xa-0001ab-Cd Completed",
        b"2024-03-21 19:26:06.123 +0000 [4321] 1rK9Xa-0001ab-Cd Completed",
        b"2024-03-21 20:26:06.5 +0100 1rK9Xa-0001ab-Cd Completed",
        b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd Completed\r",
    ] {
        assert_eq!(
            event(line),
            Event::Removed(mailfuse_core::Removed {
                at: utc(2024, 3, 21, 19, 26, 6),
                queue_id: b"1rK9Xa-0001ab-Cd",
            }),
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    let Event::AuthFailure(failure) = event(b"2024-03-21 19:26:06 [77] login authenticator failed for (x) [192.0.2.8]:5: 535 Incorrect authentication data (set_id=bob)") else {
        panic!("not a failed login");
    };
    assert_eq!(failure.client, Client::Ip("192.0.2.8".parse().unwrap()));
}

#[test]
fn invalid_or_missing_timestamps() {
    assert_eq!(
        parse(b"2024-02-30 10:00:00 1rK9Xa-0001ab-Cd Completed"),
        Parsed::Malformed("invalid timestamp")
    );
    assert_eq!(
        parse(b"2024-01-10 25:00:00 Start queue run: pid=1"),
        Parsed::Malformed("invalid timestamp")
    );
    for line in [
        &b""[..],
        b"2024-01-10 10:00:0",
        b"2024-01-10 10:00:00",
        b"2024-01-10T10:00:00 1rK9Xa-0001ab-Cd Completed",
        b"2024/01/10 10:00:00 1rK9Xa-0001ab-Cd Completed",
        b"[22/Nov/2026 10:00:00] Recv: Queue-ID: 1",
    ] {
        assert_eq!(
            parse(line),
            Parsed::Unknown,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    let mut parser = EximParser::new(&ParseContext::default());
    assert_eq!(parser.timestamp(b"2024-02-30 10:00:00 x"), None);
    assert_eq!(parser.timestamp(b"no timestamp"), None);
}

#[test]
fn message_ids_of_both_generations() {
    assert!(message_id(b"1rK9Xa-0001ab-Cd Completed").is_some());
    assert!(message_id(b"1rK9Xa-000000001ab-Cdef Completed").is_some());
    for body in [
        &b"1rK9Xa-0001ab-C Completed"[..],
        b"1rK9Xa-0001ab-Cd-x Completed",
        b"1rK9Xa-0001a!-Cd Completed",
        b"1rK9Xa-000000001ab-Cd Completed",
        b"SMTP connection from [192.0.2.1]",
    ] {
        assert!(
            message_id(body).is_none(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn recognizes_exim_lines_only() {
    for line in [
        ARRIVAL,
        b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd Completed",
        b"2024-03-21 19:26:08.250 +0100 [123] 1rK9Xa-000000001ab-Cdef => a@b.example R=x T=y",
        b"2013-01-04 17:03:46 login authenticator failed for (x) [24.106.174.74]: 535 Incorrect authentication data (set_id=brian)",
        b"2024-03-21 19:40:00 Start queue run: pid=1234",
        b"2024-03-21 19:40:00 H=(x) [192.0.2.1] F=<a@b> rejected RCPT <c@d>: relay not permitted",
    ] {
        assert!(recognizes(line), "{}", String::from_utf8_lossy(line));
    }
    for line in [
        &b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed"[..],
        b"2024-08-26T01:33:38.572449+00:00 machine postfix/smtpd[60203]: NOQUEUE: reject: RCPT from unknown[192.168.1.1]",
        b"2024-08-26 01:33:38 machine postfix/smtpd[60203]: connect from unknown[192.168.1.1]",
        b"[22/Nov/2026 10:00:00] Recv: Queue-ID: 65ee8b47-00000009, Service: SMTP",
        b"2024-02-30 19:26:08 1rK9Xa-0001ab-Cd Completed",
        b"2024-03-21 19:40:00 Something unheard of",
        b"",
    ] {
        assert!(!recognizes(line), "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn a_mainlog_is_recognised_as_exim() {
    let sample: [&[u8]; 6] = [
        b"2024-03-21 19:26:05 SMTP connection from (laptop) [203.0.113.7]:51234 I=[10.0.0.1]:587 (TCP/IP connection count = 1)",
        ARRIVAL,
        b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => bob@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5] C=\"250 2.0.0 OK\"",
        b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd Completed",
        b"2024-03-21 19:26:09 some line this parser has never seen",
        b"2024-03-21 19:27:00 dovecot_login authenticator failed for (User) [194.169.175.1]:21298 I=[22.33.44.55]:465 Ci=30416: 535 Incorrect authentication data (set_id=x@example.com)",
    ];
    let mut recogniser = Recogniser::default();
    for line in sample {
        recogniser.feed(line);
    }
    assert_eq!(recogniser.state(), Recognition::Known(Format::Exim));
}

#[test]
fn hostile_bytes_never_panic() {
    let mut parser = EximParser::new(&ParseContext::default());
    let mut lines: Vec<Vec<u8>> = vec![
        b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= \xff\xfe@\x00example.com H=(\xc3\x28) [203.0.113.7]:1 P=esmtpsa A=plain:\xff\x00 S=\xff T=\"\xff\x00\\".to_vec(),
        b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd ** \x00: \x00".to_vec(),
        b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd == \"".to_vec(),
        b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd => \\".to_vec(),
        b"2024-03-21 19:26:06 H=[".to_vec(),
        b"2024-03-21 19:26:06 H=(".to_vec(),
        b"2024-03-21 19:26:06 a authenticator failed for ".to_vec(),
        b"2024-03-21 19:26:06 a authenticator failed for :".to_vec(),
        b"2024-03-21 19:26:06.".to_vec(),
        b"2024-03-21 19:26:06 +".to_vec(),
        b"2024-03-21 19:26:06 [".to_vec(),
        b"2024-03-21 19:26:06 [1".to_vec(),
        b"2024-03-21 19:26:06 []".to_vec(),
        b"\x00\x00\x00\x00-\x00\x00-\x00\x00 \x00\x00:\x00\x00:\x00\x00 ".to_vec(),
    ];
    // Every prefix of a few real lines (truncation anywhere).
    for line in [
        ARRIVAL,
        &b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd ** nobody@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5]: SMTP error from remote mail server after RCPT TO:<nobody@partner.test>: 550 5.1.1 User unknown"[..],
        b"2024-03-21 19:26:06 dovecot_login authenticator failed for (User) [194.169.175.1]:21298 I=[22.33.44.55]:465 Ci=30416: 535 Incorrect authentication data (set_id=uaf589@example.com)",
        b"2024-03-21 19:40:00 H=(x) [192.0.2.1]:1 F=<a@b> rejected RCPT <c@d>: relay not permitted",
    ] {
        lines.extend((0..line.len()).map(|end| line[..end].to_vec()));
    }
    for line in &lines {
        let _ = parser.timestamp(line);
        let _ = parser.parse(line);
        let _ = recognizes(line);
    }
}

#[test]
fn huge_values_stay_linear_and_bounded() {
    let mut subject = b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= a@example.com H=(x) [192.0.2.1]:1 P=esmtp S=1 T=\"".to_vec();
    subject.extend(b"A=plain:ceo \\\" ".repeat(300_000));
    subject.push(b'"');
    let Event::Submission(s) = event(&subject) else {
        panic!("not an arrival");
    };
    assert_eq!(s.account, None);

    let mut codes = b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd ** x@y: ".to_vec();
    codes.extend(b"550 550 ".repeat(500_000));
    assert!(matches!(parse(&codes), Parsed::Event(Event::Delivery(_))));

    let mut unbalanced = b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= \"".to_vec();
    unbalanced.extend(b" A=plain:ceo P=esmtpa".repeat(400_000));
    let Event::Submission(s) = event(&unbalanced) else {
        panic!("not an arrival");
    };
    assert_eq!((s.account, s.service), (None, None));

    let mut helo = b"2024-03-21 19:40:00 H=(".to_vec();
    helo.extend(b"x [192.0.2.1] ".repeat(500_000));
    assert!(matches!(parse(&helo), Parsed::Ignored));
}
