//! Tests of the envelope (timestamps, zones, RFC 5424), offset derivation,
//! and robustness against hostile input. Line kinds are tested in the
//! submodule that reads them.

use std::net::IpAddr;

use mailfuse_core::{Client, Delivery, DeliveryStatus, Event, Submission};

use super::test_support::{parse, utc};
use super::*;

const RECV_2024: &[u8] = b"[11/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8b47-00000009, Service: Kerio Connect Client, From: <a@example.vn>, To: <b@example.vn>, Size: 985, Sender-Host: 0.0.0.0, User: a@example.vn, SSL: yes, Subject: Check log, Msg-Id: <x@example.vn>";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a valid test address")
}

#[test]
fn bracket_time_is_local_to_the_zone() {
    let mut parser = KerioParser::new(LocalZone::Fixed(7 * 3600));
    // kerio.md: 65ee8b47 = 2024-03-11 04:40:39 UTC, logged 11:40:39 at UTC+7.
    assert_eq!(parser.timestamp(RECV_2024), Some(Timestamp(0x65ee_8b47)));
    let Parsed::Event(event) = parser.parse(RECV_2024) else {
        panic!("not an event");
    };
    assert_eq!(event.at(), Timestamp(0x65ee_8b47));
}

#[test]
fn named_zone_conversion_is_cached_per_wall_clock() {
    let mut parser = KerioParser::new(LocalZone::parse("Europe/Prague").unwrap());
    let winter = b"[10/Jan/2024 12:00:00] Sent: x";
    let summer = b"[10/Jul/2024 12:00:00] Sent: x";
    for _ in 0..2 {
        assert_eq!(parser.timestamp(winter), Some(utc(2024, 1, 10, 11, 0, 0)));
        assert_eq!(parser.timestamp(winter), Some(utc(2024, 1, 10, 11, 0, 0)));
        assert_eq!(parser.timestamp(summer), Some(utc(2024, 7, 10, 10, 0, 0)));
    }
}

#[test]
fn wall_clocks_read_with_the_day_kept_as_read_whole() {
    // One parser over the list, twice: dates read, kept, changed, and
    // times refused after a date was kept.
    let wall_clocks: [&[u8; 20]; 14] = [
        b"11/Mar/2024 11:40:39",
        b"11/Mar/2024 11:40:40",
        b"11/Mar/2024 23:59:60",
        b"11/Mar/2024 24:00:00",
        b"11/Mar/2024 12:60:00",
        b"11/Mar/2024 12:00:61",
        b"11/Mar/2024 1a:00:00",
        b"11/Mar/2024 12-00:00",
        b"11/Mar/2024 12:00:00",
        b"29/Feb/2024 00:00:00",
        b"29/Feb/2023 00:00:00",
        b"31/Apr/2024 10:00:00",
        b"12/Mar/2024 00:00:00",
        b"11/Xyz/2024 10:00:00",
    ];
    let mut parser = KerioParser::new(LocalZone::Fixed(0));
    for wall_clock in wall_clocks.iter().chain(&wall_clocks) {
        assert_eq!(
            parser.read_wall_clock(wall_clock),
            parse_wall_clock(wall_clock),
            "{}",
            String::from_utf8_lossy(*wall_clock)
        );
    }
    assert_eq!(
        parser.read_wall_clock(b"11/Mar/2024 23:59:60"),
        Some(utc(2024, 3, 12, 0, 0, 0))
    );
}

#[test]
fn invalid_or_missing_timestamps() {
    assert_eq!(
        parse(b"[31/Feb/2024 10:00:00] Sent: x"),
        Parsed::Malformed("invalid timestamp")
    );
    assert_eq!(
        parse(b"[10/Foo/2024 10:00:00] Sent: x"),
        Parsed::Malformed("invalid timestamp")
    );
    assert_eq!(parse(b"[10/Jan/2024 10:00:0"), Parsed::Unknown);
    assert_eq!(parse(b"[10/Jan/2024 10:00:00]"), Parsed::Unknown);
    assert_eq!(parse(b""), Parsed::Unknown);
    assert_eq!(parse(b"10/Jan/2024 10:00:00 Sent: x"), Parsed::Unknown);
    let mut parser = KerioParser::new(LocalZone::default());
    assert_eq!(parser.timestamp(b"[31/Feb/2024 10:00:00] Sent: x"), None);
    assert_eq!(parser.timestamp(b"no timestamp"), None);
}

#[test]
fn unknown_bodies_are_unknown() {
    for line in [
        &b"[10/Jan/2024 10:00:00] Queue: something new"[..],
        b"[10/Jan/2024 10:00:00] SMTP: From: <a@example.com>, To: <b@example.com>, Size: 378",
        b"[10/Jan/2024 10:00:00] Failed to open store",
        b"[10/Jan/2024 10:00:00] IP address 192.0.2.7 is whitelisted",
        b"[10/Jan/2024 10:00:00] ",
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
fn crlf_line_ending_is_dropped() {
    let line = b"[30/Nov/2005 17:57:15] Sent: Queue-ID: 438dd9ea-00000000, Recipient: <w@example.com>, Result: delivered, Status: 2.0.0\r";
    let Parsed::Event(Event::Delivery(delivery)) = parse(line) else {
        panic!("not a delivery");
    };
    assert_eq!(delivery.dsn, Some(&b"2.0.0"[..]));
    assert_eq!(delivery.detail, b"");
    assert!(recognizes(line));
}

#[test]
fn rfc_5424_lines_carry_their_own_offset() {
    // The zone given to the parser must not apply to syslog lines.
    let mut parser = KerioParser::new(LocalZone::Fixed(-5 * 3600));
    let line = b"<22>1 2026-04-01T14:59:31+07:00 mail.example.com mail - - - Sent: Queue-ID: 69ccd0e3-00000001, Recipient: <b@example.com>, Result: delivered, Status: 2.0.0 , Remote-Host: 127.0.0.1, Msg-Id: <m@example.com>";
    let expected = Delivery {
        at: utc(2026, 4, 1, 7, 59, 31),
        queue_id: b"69ccd0e3-00000001",
        recipient: b"b@example.com",
        status: DeliveryStatus::Delivered,
        dsn: Some(b"2.0.0"),
        detail: b"",
        relay: Some(b"127.0.0.1"),
    };
    assert_eq!(parser.parse(line), Parsed::Event(Event::Delivery(expected)));
    assert_eq!(parser.timestamp(line), Some(utc(2026, 4, 1, 7, 59, 31)));
    assert!(recognizes(line));

    let security = b"<38>1 2026-04-01T14:59:31.123Z mail.example.com security 1234 - [meta seq=\"1\"] Failed SMTP login from 192.0.2.7 with SASL method LOGIN.";
    let Parsed::Event(event) = parser.parse(security) else {
        panic!("not an event");
    };
    assert_eq!(event.at(), utc(2026, 4, 1, 14, 59, 31));
    assert!(recognizes(security));
}

#[test]
fn rfc_5424_without_a_usable_time_or_kerio_body() {
    let nil_time = b"<22>1 - mail.example.com mail - - - Recv: Queue-ID: 1";
    assert_eq!(
        parse(nil_time),
        Parsed::Malformed("syslog header without a valid timestamp")
    );
    let other = b"<22>1 2026-04-01T14:59:31Z host sshd - - - Accepted password for root";
    assert_eq!(parse(other), Parsed::Unknown);
    assert!(!recognizes(other));
}

#[test]
fn recognizes_kerio_lines_only() {
    assert!(recognizes(RECV_2024));
    assert!(recognizes(b"[17/Nov/2023 11:31:07] anything at all"));
    assert!(!recognizes(b"[31/Feb/2024 10:00:00] Sent: x"));
    assert!(!recognizes(b"[10/Oct/2000:13:55:36 -0700] GET / HTTP/1.0"));
    assert!(!recognizes(
        b"Mar 11 11:40:39 mail postfix/smtpd[1]: connect"
    ));
    assert!(!recognizes(b""));
    assert!(!recognizes(b"<22>1 2026-04-01T14:59:31Z"));
}

#[test]
fn derives_the_offset_from_queue_ids() {
    assert_eq!(derive_offset(RECV_2024), Some(25_200));
    // Logged two seconds after queueing: still a whole offset.
    let late = b"[11/Mar/2024 11:40:41] Recv: Queue-ID: 65ee8b47-00000009, Service: SMTP";
    assert_eq!(derive_offset(late), Some(25_200));
    // UTC-5 (New York in March before the switch) and UTC-3:30 (St. John's).
    let west = b"[10/Mar/2024 23:40:39] Recv: Queue-ID: 65ee8b47-0000000a, Service: SMTP\r";
    assert_eq!(derive_offset(west), Some(-18_000));
    let newfoundland = b"[11/Mar/2024 01:10:39] Recv: Queue-ID: 65EE8B47-0000000b, Service: SMTP";
    assert_eq!(derive_offset(newfoundland), Some(-12_600));
    let utc_server = b"[11/Mar/2024 04:40:39] Recv: Queue-ID: 65ee8b47-0000000c";
    assert_eq!(derive_offset(utc_server), Some(0));
}

#[test]
fn derives_no_offset_from_other_lines() {
    for line in [
        // Sent lines are logged later than queueing: not a clock reading.
        &b"[11/Mar/2024 11:40:40] Sent: Queue-ID: 65ee8b47-00000009, Recipient: <b@example.vn>"[..],
        // More than 14 hours apart: a clock problem, not a zone.
        b"[12/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8b47-00000009",
        b"[11/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8b4-00000009",
        b"[11/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8bxy-00000009",
        b"[11/Mar/2024 11:40:39] Recv: Service: SMTP",
        b"[31/Feb/2024 11:40:39] Recv: Queue-ID: 65ee8b47-00000009",
        b"<22>1 2024-03-11T11:40:39+07:00 h mail - - - Recv: Queue-ID: 65ee8b47-00000009",
        b"",
    ] {
        assert_eq!(
            derive_offset(line),
            None,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn invalid_utf8_and_escapes_are_kept_as_bytes() {
    let line = b"[25/Jun/2014 10:39:19] Recv: Queue-ID: 53aaa6d7-000000f4, Service: SMTP, From: <\x1b[2Jx@example.com>, To: <u@example.com>, Size: 854, Sender-Host: 198.51.100.4, Subject: caf\xe9 \xff\x00\x1b]0;pwned\x07, Msg-Id: <\xfe@x>";
    let expected = Submission {
        at: utc(2014, 6, 25, 10, 39, 19),
        queue_id: b"53aaa6d7-000000f4",
        client: Some(Client::Ip(ip("198.51.100.4"))),
        service: Some(b"SMTP"),
        envelope_from: Some(b"\x1b[2Jx@example.com"),
        recipient: Some(b"u@example.com"),
        size: Some(854),
        subject: Some(b"caf\xe9 \xff\x00\x1b]0;pwned\x07"),
        message_id: Some(b"\xfe@x"),
        ..Submission::default()
    };
    assert_eq!(parse(line), Parsed::Event(Event::Submission(expected)));
}

#[test]
fn truncated_lines_never_panic_and_keep_what_they_have() {
    let line = RECV_2024;
    for end in 0..=line.len() {
        let _ = parse(&line[..end]);
        let _ = derive_offset(&line[..end]);
    }
    let cut = b"[11/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8b47-00000009, Service: Kerio Connect Client, From: <a@exa";
    let Parsed::Event(Event::Submission(submission)) = parse(cut) else {
        panic!("not a submission");
    };
    assert_eq!(submission.queue_id, b"65ee8b47-00000009");
    assert_eq!(submission.envelope_from, Some(&b"<a@exa"[..]));
    assert_eq!(submission.account, None);
}

/// A fixed-seed xorshift64 generator: reproducible garbage without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Real lines of every kind, to mutate.
const SEEDS: [&[u8]; 8] = [
    RECV_2024,
    b"[03/Aug/2012 14:05:21] Sent: Queue-ID: 501c1268-0001243c, Recipient: <c@example.net>, Result: failed, Status: 5.1.1 550 5.1.1 <c@example.net>: Recipient address rejected, Remote-Host: 192.0.2.1, Msg-Id: <m@x>",
    b"[17/May/2017 19:43:42] SMTP: User printer@example.com doesn't exist. Attempt from IP address 185.140.108.26.",
    b"[17/Nov/2023 11:31:08] SMTP: AntiHammering - IP address 192.0.2.7 will be blocked for 5 minutes, too many failed logins from this IP address.",
    b"[13/Apr/2004 17:35:49] Failed IMAP login from 192.0.2.9, user someone@example.com not found",
    b"[17/Jun/2011 17:00:45] Attempt to deliver to unknown recipient <a@example.com>, from <x@example.org>, IP address 203.0.113.178",
    b"[10/Jan/2024 09:00:00] HTTP/WebMail: User john.doe@example.local authenticated  from IP address 10.150.90.11; user-agent Mozilla/5.0",
    b"<22>1 2026-04-01T14:59:31.5+07:00 h mail - [a x=\"]\"] Recv: Queue-ID: 69ccd0e3-1, From: <\"a>, User: x\"@y>, Subject: s, Msg-Id: <m>",
];

/// Bytes that steer a parser's branches, and some it never expects.
const ALPHABET: &[u8] = b"[]/: ,<>\"\\.;-_@0123456789abcdefAZ\r\n\t\x00\x1b\x7f\x80\xc3\xe9\xff";

/// Everything the parser offers, called on `line`: it must not panic, and an
/// event's instant must be the one `timestamp` gives.
fn exercise(parser: &mut KerioParser, line: &[u8]) {
    let stamped = parser.timestamp(line);
    if let Parsed::Event(event) = parser.parse(line) {
        assert_eq!(
            Some(event.at()),
            stamped,
            "{}",
            String::from_utf8_lossy(line)
        );
    }
    let _ = recognizes(line);
    let _ = derive_offset(line);
}

#[test]
fn hostile_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut parser = KerioParser::new(LocalZone::parse("Europe/Prague").unwrap());
    let mut line = Vec::with_capacity(512);
    for round in 0..60_000 {
        line.clear();
        match round % 4 {
            // Pure noise, biased towards structural bytes.
            0 => {
                for _ in 0..rng.below(300) {
                    line.push(ALPHABET[rng.below(ALPHABET.len())]);
                }
            }
            // Any bytes at all.
            1 => {
                for _ in 0..rng.below(300) {
                    line.push(rng.next() as u8);
                }
            }
            // A real line with a few bytes replaced.
            2 => {
                line.extend_from_slice(SEEDS[rng.below(SEEDS.len())]);
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(line.len());
                    line[at] = ALPHABET[rng.below(ALPHABET.len())];
                }
            }
            // The head of one real line spliced onto the tail of another.
            _ => {
                let head = SEEDS[rng.below(SEEDS.len())];
                let tail = SEEDS[rng.below(SEEDS.len())];
                line.extend_from_slice(&head[..rng.below(head.len())]);
                line.extend_from_slice(&tail[rng.below(tail.len())..]);
            }
        }
        exercise(&mut parser, &line);
    }
}

/// `opening` after a timestamp, then `repeated` until the line holds 10 MB;
/// with the trimmed text after `opening`.
fn ten_megabyte_line(opening: &[u8], repeated: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut line = b"[10/Jan/2024 10:00:00] ".to_vec();
    line.extend_from_slice(opening);
    let tail_start = line.len();
    while line.len() < 10 << 20 {
        line.extend_from_slice(repeated);
    }
    let tail = line[tail_start..].trim_ascii().to_vec();
    (line, tail)
}

#[test]
fn ten_megabyte_lines_are_read_to_the_end() {
    let (line, subject) = ten_megabyte_line(b"Recv: Queue-ID: 1, Subject: ", b"x, User: y, ");
    let Parsed::Event(Event::Submission(recv)) = parse(&line) else {
        panic!("not a submission");
    };
    assert_eq!((recv.queue_id, recv.account), (&b"1"[..], None));
    assert_eq!(recv.subject, Some(&subject[..]));

    let (line, detail) = ten_megabyte_line(
        b"Sent: Queue-ID: 1, Recipient: <r>, Result: failed, Status: 5.1.1 ",
        b"<a>, b: c, ",
    );
    let Parsed::Event(Event::Delivery(sent)) = parse(&line) else {
        panic!("not a delivery");
    };
    assert_eq!((sent.dsn, sent.detail), (Some(&b"5.1.1"[..]), &detail[..]));

    let (keys, _) = ten_megabyte_line(b"Recv: ", b"Key: , ");
    assert_eq!(
        parse(&keys),
        Parsed::Malformed("Recv line without Queue-ID")
    );

    let (markers, _) =
        ten_megabyte_line(b"SMTP: User ", b"x doesn't exist. Attempt from IP address ");
    assert_eq!(
        parse(&markers),
        Parsed::Malformed("refused login without a client")
    );
}
