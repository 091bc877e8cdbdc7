//! Throughput of the Kerio parser on typical lines, and on 10 MB hostile ones.
//!
//! `cargo run --release -p mailfuse-formats --example kerio_throughput [FILTER]`
//! (FILTER: run only the lines whose body starts with it, e.g. `Recv`).
//! Typical lines report the best of several batches: on a shared machine the
//! minimum is the figure that reflects the code rather than its neighbours.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mailfuse_formats::kerio::KerioParser;
use mailfuse_formats::{LineParser, LocalZone, Parsed};

const TYPICAL: [&[u8]; 6] = [
    // kerio.md's 8+ Recv line: 232 bytes.
    b"[11/Mar/2024 11:40:39] Recv: Queue-ID: 65ee8b47-00000009, Service: Kerio Connect Client, From: <a@example.vn>, To: <b@example.vn>, Size: 985, Sender-Host: 0.0.0.0, User: a@example.vn, SSL: yes, Subject: Check log, Msg-Id: <x@example.vn>",
    // A 6.7-era Recv line: 183 bytes.
    b"[03/Aug/2012 14:03:27] Recv: Queue-ID: 501c1268-0001243c, Service: SMTP, From: <admin@example.org>, To: <c@example.net>, Size: 2275, Sender-Host: 203.0.113.213, User: sales@example.com",
    b"[11/Mar/2024 11:40:40] Sent: Queue-ID: 65ee8b47-00000009, Recipient: <b@example.vn>, Result: delivered, Status: 2.0.0 , Remote-Host: 127.0.0.1, Msg-Id: <x@example.vn>",
    b"[03/Aug/2012 14:05:21] Sent: Queue-ID: 501c1268-0001243c, Recipient: <c@example.net>, Result: failed, Status: 5.1.1 550 c@example.net is not a valid user",
    b"[17/May/2017 19:43:42] SMTP: User printer@example.com doesn't exist. Attempt from IP address 185.140.108.26.",
    b"[11/Mar/2024 11:40:41] IMAP: User john.doe@example.com authenticated from IP address 10.150.90.11",
];

const BATCHES: u32 = 20;
const LINES_PER_BATCH: u32 = 100_000;

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let selected = |line: &[u8]| {
        line.get(23..)
            .is_some_and(|body| body.starts_with(filter.as_bytes()))
    };
    let mut parser = KerioParser::new(LocalZone::parse("Europe/Prague").expect("a known zone"));
    for line in TYPICAL.into_iter().filter(|line| selected(line)) {
        assert!(matches!(parser.parse(line), Parsed::Event(_)));
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
            String::from_utf8_lossy(&line[23..50]),
        );
    }
    let hostile: [(&[u8], &[u8]); 5] = [
        (b"Recv: Queue-ID: 1, Subject: ", b"x, "),
        (b"Recv: Queue-ID: 1, From: <\"", b"a>, User: b, "),
        (
            b"Sent: Queue-ID: 1, Recipient: <r>, Result: failed, Status: ",
            b"5.1.1 <a>, b: c, ",
        ),
        (b"SMTP: User ", b"x. Attempt from IP address "),
        (b"Recv: ", b"Key: , "),
    ];
    for (opening, repeated) in hostile {
        let mut line = b"[10/Jan/2024 10:00:00] ".to_vec();
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
            String::from_utf8_lossy(&line[23..50]),
        );
    }
}
