//! syslog's repeat notices: sysklogd's `last message repeated N times` and
//! rsyslog's `message repeated N times: [ …]` stand for lines not written.

use mailfuse_core::{AuthFailureKind, Client, Event, Timestamp};

use super::*;
use crate::LocalZone;

const DOVECOT_FAILURE: &[u8] = b"Nov 22 21:46:40 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<sales@example.test>, method=PLAIN, rip=203.0.113.66, lip=192.0.2.1, session=<u3NqWx4A>";
const POSTFIX_FAILURE: &[u8] = b"Nov 22 21:46:48 mail postfix/submission/smtpd[7148]: warning: unknown[127.66.6.6]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=sales@example.test";

fn parser() -> SyslogParser {
    SyslogParser::new(&ParseContext {
        zone: LocalZone::parse("UTC").unwrap(),
        year_reference: Timestamp::from_civil(2026, 12, 1, 0, 0, 0),
        ..ParseContext::default()
    })
}

/// Failed attempts the line reports, with the client's IP.
fn attempts(parsed: &Parsed<'_>) -> Option<(u32, String)> {
    match parsed {
        Parsed::Event(Event::AuthFailure(f)) => {
            Some((f.attempts, f.client.ip().map(|ip| ip.to_string())?))
        }
        _ => None,
    }
}

#[test]
fn sysklogd_notice_repeats_the_postfix_failure_before() {
    let mut parser = parser();
    let first = parser.parse(POSTFIX_FAILURE);
    assert_eq!(attempts(&first), Some((1, "127.66.6.6".into())));
    let repeat = parser.parse(b"Nov 22 21:47:20 mail last message repeated 5 times");
    assert_eq!(attempts(&repeat), Some((5, "127.66.6.6".into())));
    let Parsed::Event(Event::AuthFailure(f)) = repeat else {
        unreachable!()
    };
    assert_eq!(
        (f.service, f.kind, f.account),
        (&b"SMTP"[..], AuthFailureKind::BadPassword, None)
    );
    assert_eq!(
        f.at,
        Timestamp::from_civil(2026, 11, 22, 21, 47, 20).unwrap()
    );
    // A second notice for the next stretch repeats it again: 1 + 5 + 2.
    let again = parser.parse(b"Nov 22 21:48:20 mail last message repeated 2 times");
    assert_eq!(attempts(&again), Some((2, "127.66.6.6".into())));
}

#[test]
fn sysklogd_notice_repeats_a_dovecot_failure_and_other_shapes() {
    for notice in [
        &b"Nov 22 21:47:20 mail last message repeated 5 times"[..],
        b"Nov 22 21:47:20 last message repeated 5 times",
        b"Nov 22 21:47:20 mail --- last message repeated 5 times ---",
    ] {
        let mut parser = parser();
        let first = attempts(&parser.parse(DOVECOT_FAILURE)).unwrap();
        assert_eq!(first.0, 1);
        let repeat = attempts(&parser.parse(notice));
        assert_eq!(
            repeat,
            Some((first.0 * 5, "203.0.113.66".into())),
            "{notice:?}"
        );
    }
}

#[test]
fn a_notice_after_any_other_line_repeats_nothing() {
    let mut parser = parser();
    parser.parse(POSTFIX_FAILURE);
    parser.parse(b"Nov 22 21:46:49 mail postfix/qmgr[7072]: 2441AB4574: removed");
    assert_eq!(
        parser.parse(b"Nov 22 21:47:20 mail last message repeated 5 times"),
        Parsed::Ignored
    );
    parser.parse(POSTFIX_FAILURE);
    assert_eq!(
        parser.parse(b"Nov 22 21:47:00 mail CRON[12]: (root) CMD (true)"),
        Parsed::Unknown
    );
    assert_eq!(
        parser.parse(b"Nov 22 21:47:20 mail last message repeated 5 times"),
        Parsed::Ignored
    );
}

#[test]
fn rsyslog_repeated_message_counts_its_repeats() {
    let mut parser = parser();
    let line = b"Nov 22 21:47:20 mail postfix/submission/smtpd[7148]: message repeated 3 times: [ warning: unknown[127.66.6.6]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=sales@example.test]";
    let Parsed::Event(Event::AuthFailure(f)) = parser.parse(line) else {
        panic!("not a failure");
    };
    assert_eq!(f.attempts, 3);
    assert_eq!(f.account, Some(&b"sales@example.test"[..]));
    assert!(matches!(f.client, Client::Ip(_)));
}

#[test]
fn counts_are_capped_and_odd_notices_are_not_read() {
    let mut parser = parser();
    parser.parse(POSTFIX_FAILURE);
    let huge =
        parser.parse(b"Nov 22 21:47:20 mail last message repeated 99999999999999999999999 times");
    assert_eq!(attempts(&huge).map(|a| a.0), Some(envelope::MAX_REPEATS));
    for odd in [
        &b"Nov 22 21:47:20 mail last message repeated five times"[..],
        b"Nov 22 21:47:20 mail last message repeated  times",
        b"Nov 22 21:47:20 mail some words last message repeated 5 times",
        b"Nov 22 21:47:20 mail last message repeated 5",
    ] {
        assert_eq!(parser.parse(odd), Parsed::Unknown, "{odd:?}");
    }
}

#[test]
fn repeat_notices_repeat_a_refusal_too() {
    let relay = b"Nov 22 21:47:00 mail postfix/smtpd[7150]: NOQUEUE: reject: RCPT from unknown[203.0.113.80]: 454 4.7.1 <x@elsewhere.example>: Relay access denied; from=<a@b.example> to=<x@elsewhere.example> proto=ESMTP helo=<spam>";
    let refusals = |parsed: Parsed<'_>| match parsed {
        Parsed::Event(Event::ServerBlock(b)) => Some((b.refusals, b.kind, b.client.ip())),
        _ => None,
    };
    let client = "203.0.113.80".parse().ok();
    let mut parser = parser();
    let (_, kind, _) = refusals(parser.parse(relay)).unwrap();
    assert_eq!(
        refusals(parser.parse(b"Nov 22 21:47:30 mail last message repeated 4 times")),
        Some((4, kind, client))
    );
    let rsyslog = b"Nov 22 21:48:00 mail postfix/smtpd[7150]: message repeated 3 times: [ NOQUEUE: reject: RCPT from unknown[203.0.113.80]: 454 4.7.1 <x@elsewhere.example>: Relay access denied; from=<a@b.example> to=<x@elsewhere.example> proto=ESMTP helo=<spam>]";
    assert_eq!(refusals(parser.parse(rsyslog)), Some((3, kind, client)));
}
