//! Throughput of the Exim parser on typical lines, and on 10 MB hostile ones.
//!
//! `cargo run --release -p mailfuse-formats --example exim_throughput [FILTER]`
//! (FILTER: run only the lines whose text after the message id or time
//! starts with it, e.g. `<=`). Typical lines report the best of several
//! batches: on a shared machine the minimum is the figure that reflects the
//! code rather than its neighbours.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mailfuse_formats::exim::EximParser;
use mailfuse_formats::{LineParser, LocalZone, ParseContext, Parsed};

/// Where a typical line's text starts (after `YYYY-MM-DD HH:MM:SS `).
const TEXT_AT: usize = 20;

/// Where the flag starts in a line with a classic message id.
const FLAG_AT: usize = TEXT_AT + 17;

const TYPICAL: [&[u8]; 7] = [
    b"2024-03-21 19:26:06 1rK9Xa-0001ab-Cd <= alice@example.com H=(laptop) [203.0.113.7]:51234 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_login:alice@example.com S=2275 id=abc@laptop T=\"Quarterly report\"",
    b"2024-03-21 19:26:07 1rK9Xa-0001ab-Cd => bob@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 2.0.0 OK 1711045567 x\"",
    b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd ** nobody@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5]: SMTP error from remote mail server after RCPT TO:<nobody@partner.test>: 550 5.1.1 User unknown",
    b"2024-03-21 19:26:08 1rK9Xa-0001ab-Cd Completed",
    b"2024-03-21 19:26:09 dovecot_login authenticator failed for (User) [194.169.175.1]:21298 I=[22.33.44.55]:465 Ci=30416: 535 Incorrect authentication data (set_id=uaf589@example.com)",
    b"2024-03-21 19:26:09 H=(WIN-ABC) [185.220.101.4]:61000 F=<spam@evil.example> rejected RCPT <victim@elsewhere.example>: relay not permitted",
    b"2024-03-21 19:26:09 SMTP connection from (laptop) [203.0.113.7]:51234 I=[10.0.0.1]:587 (TCP/IP connection count = 1)",
];

const BATCHES: u32 = 20;
const LINES_PER_BATCH: u32 = 100_000;

/// The text a line is filtered and labelled by: after its message id, if any.
fn label(line: &[u8]) -> &[u8] {
    match line.get(TEXT_AT..) {
        Some(text) if text.first().is_some_and(u8::is_ascii_digit) => {
            line.get(FLAG_AT..).unwrap_or_default()
        }
        Some(text) => text,
        None => b"",
    }
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let selected = |line: &[u8]| label(line).starts_with(filter.as_bytes());
    let context = ParseContext {
        zone: LocalZone::parse("Europe/Prague").expect("a known zone"),
        year_reference: None,
    };
    let mut parser = EximParser::new(&context);
    for line in TYPICAL.into_iter().filter(|line| selected(line)) {
        assert!(!matches!(parser.parse(line), Parsed::Unknown));
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
        let shown = label(line);
        println!(
            "{:>4} ns/line {:>5.0} MB/s  {:>3} bytes  {}",
            per_line.as_nanos(),
            line.len() as f64 / per_line.as_secs_f64() / 1e6,
            line.len(),
            String::from_utf8_lossy(&shown[..shown.len().min(30)]),
        );
    }
    let hostile: [(&[u8], &[u8]); 5] = [
        (
            b"1rK9Xa-0001ab-Cd <= a@b H=(x) [192.0.2.1]:1 P=esmtp S=1 T=\"",
            b"A=plain:ceo \\\" ",
        ),
        (b"1rK9Xa-0001ab-Cd <= \"", b" A=plain:ceo P=esmtpa"),
        (b"1rK9Xa-0001ab-Cd ** x@y: ", b"550 550 "),
        (b"H=(", b"x [192.0.2.1] "),
        (
            b"a authenticator failed for (",
            b"x [192.0.2.1] I=[10.0.0.1]:25 ",
        ),
    ];
    for (opening, repeated) in hostile {
        let mut line = b"2024-01-10 10:00:00 ".to_vec();
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
        let shown = label(&line);
        println!(
            "10 MB line {:>6.0} MB/s  {}",
            line.len() as f64 / elapsed.as_secs_f64() / 1e6,
            String::from_utf8_lossy(&shown[..30]),
        );
    }
}
