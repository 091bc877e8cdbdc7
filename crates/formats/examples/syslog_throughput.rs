//! Throughput of the syslog parser on typical Postfix lines, and on 10 MB
//! hostile ones.
//!
//! `cargo run --release -p mailfuse-formats --example syslog_throughput [FILTER]`
//! (FILTER: run only the lines whose program starts with it, e.g. `postfix/qmgr`).

#[path = "support/throughput.rs"]
mod support;

use mailfuse_core::Timestamp;
use mailfuse_formats::syslog::SyslogParser;
use mailfuse_formats::{LocalZone, ParseContext};

/// Where the program starts in the lines below (after `Nov 22 21:41:33 mail `).
const PROGRAM_AT: usize = 21;

const TYPICAL: [&[u8]; 8] = [
    b"Nov 22 21:41:33 mail postfix/submission/smtpd[7094]: 2441AB4574: client=unknown[127.0.0.10], sasl_method=LOGIN, sasl_username=alice@example.test",
    b"Nov 22 21:41:33 mail postfix/cleanup[7101]: 2441AB4574: message-id=<20261122214127.007092@vm>",
    b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: from=<alice@example.test>, size=384, nrcpt=1 (queue active)",
    b"Nov 22 21:41:33 mail postfix/smtp[7102]: 2441AB4574: to=<partner@partner.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=1.3, delays=1.2/0.02/0.04/0, dsn=2.0.0, status=sent (250 OK)",
    b"Nov 22 21:41:33 mail postfix/qmgr[7072]: 2441AB4574: removed",
    b"Nov 22 21:46:48 mail postfix/submission/smtpd[7148]: warning: unknown[127.66.6.6]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=sales@example.test",
    b"Nov 22 21:46:48 mail postfix/smtpd[7130]: NOQUEUE: reject: RCPT from unknown[198.51.100.23]: 554 5.7.1 <victim@elsewhere.test>: Relay access denied; from=<spam@spam.test> to=<victim@elsewhere.test> proto=ESMTP helo=<ylmf-pc>",
    b"Nov 22 21:42:12 mail postfix/submission/smtpd[7208]: disconnect from unknown[127.88.8.8] ehlo=1 auth=0/1 quit=1 commands=2/3",
];

const HOSTILE: [(&[u8], &[u8]); 5] = [
    (
        b"postfix/smtp[1]: 2441AB4574: to=<",
        b"\"a>, status=sent\" ",
    ),
    (
        b"postfix/smtp[1]: 2441AB4574: to=<a>",
        b", orig_to=<b>, relay=none",
    ),
    (
        b"postfix/qmgr[1]: 2441AB4574: from=<",
        b">, size=1, nrcpt=1",
    ),
    (
        b"postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 <",
        b"Relay access denied>: ",
    ),
    (b"postfix/smtpd[1]: warning: ", b"unknown"),
];

/// The first 40 bytes of a line's program and message.
fn label(line: &[u8]) -> &[u8] {
    line.get(PROGRAM_AT..line.len().min(PROGRAM_AT + 40))
        .unwrap_or_default()
}

fn main() -> Result<(), String> {
    let context = ParseContext {
        zone: LocalZone::parse("Europe/Prague")?,
        year_reference: Timestamp::from_civil(2026, 12, 1, 0, 0, 0),
        ..ParseContext::default()
    };
    let mut parser = SyslogParser::new(&context);
    let mut bench = support::Bench::new(&mut parser, label);
    bench.typical(&TYPICAL);
    bench.timestamp(TYPICAL[0]);
    bench.hostile(b"Nov 22 21:41:33 mail ", &HOSTILE);
    Ok(())
}
