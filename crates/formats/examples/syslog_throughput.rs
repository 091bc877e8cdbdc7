//! Throughput of the syslog parser on typical Postfix lines, and on 10 MB
//! hostile ones.
//!
//! `cargo run --release -p mailfuse-formats --example syslog_throughput [FILTER]`
//! (FILTER: run only the lines whose program starts with it, e.g. `postfix/qmgr`).
//! Typical lines report the best of several batches: on a shared machine the
//! minimum is the figure that reflects the code rather than its neighbours.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mailfuse_core::Timestamp;
use mailfuse_formats::syslog::SyslogParser;
use mailfuse_formats::{LineParser, LocalZone, ParseContext, Parsed};

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

const BATCHES: u32 = 20;
const LINES_PER_BATCH: u32 = 100_000;

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let selected = |line: &[u8]| {
        line.get(PROGRAM_AT..)
            .is_some_and(|program| program.starts_with(filter.as_bytes()))
    };
    let context = ParseContext {
        zone: LocalZone::parse("Europe/Prague").expect("a known zone"),
        year_reference: Timestamp::from_civil(2026, 12, 1, 0, 0, 0),
    };
    let mut parser = SyslogParser::new(&context);
    for line in TYPICAL.into_iter().filter(|line| selected(line)) {
        assert!(matches!(
            parser.parse(line),
            Parsed::Event(_) | Parsed::Ignored
        ));
        let best = (0..BATCHES)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..LINES_PER_BATCH {
                    black_box(parser.parse(black_box(line)));
                }
                start.elapsed()
            })
            .min()
            .unwrap_or(Duration::MAX);
        let per_line = best / LINES_PER_BATCH;
        println!(
            "{:>4} ns/line {:>5.0} MB/s  {:>3} bytes  {}",
            per_line.as_nanos(),
            line.len() as f64 / per_line.as_secs_f64() / 1e6,
            line.len(),
            String::from_utf8_lossy(label(line)),
        );
    }
    let start = Instant::now();
    for _ in 0..LINES_PER_BATCH {
        black_box(parser.timestamp(black_box(TYPICAL[0])));
    }
    println!(
        "{:>4} ns/line timestamp() alone",
        (start.elapsed() / LINES_PER_BATCH).as_nanos()
    );
    let hostile: [(&[u8], &[u8]); 5] = [
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
    for (opening, repeated) in hostile {
        let mut line = b"Nov 22 21:41:33 mail ".to_vec();
        line.extend_from_slice(opening);
        if !selected(&line) {
            continue;
        }
        while line.len() < 10 << 20 {
            line.extend_from_slice(repeated);
        }
        let start = Instant::now();
        black_box(parser.parse(black_box(&line)));
        let elapsed = start.elapsed();
        println!(
            "10 MB line {:>6.0} MB/s  {}",
            line.len() as f64 / elapsed.as_secs_f64() / 1e6,
            String::from_utf8_lossy(label(&line)),
        );
    }
}

/// The first 40 bytes of a line's program and message.
fn label(line: &[u8]) -> &[u8] {
    line.get(PROGRAM_AT..line.len().min(PROGRAM_AT + 40))
        .unwrap_or_default()
}
