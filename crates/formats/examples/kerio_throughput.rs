//! Throughput of the Kerio parser on typical lines, and on 10 MB hostile ones.
//!
//! `cargo run --release -p mailfuse-formats --example kerio_throughput [FILTER]`
//! (FILTER: run only the lines whose body starts with it, e.g. `Recv`).

#[path = "support/throughput.rs"]
mod support;

use mailfuse_formats::kerio::KerioParser;
use mailfuse_formats::LocalZone;

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

const HOSTILE: [(&[u8], &[u8]); 5] = [
    (b"Recv: Queue-ID: 1, Subject: ", b"x, "),
    (b"Recv: Queue-ID: 1, From: <\"", b"a>, User: b, "),
    (
        b"Sent: Queue-ID: 1, Recipient: <r>, Result: failed, Status: ",
        b"5.1.1 <a>, b: c, ",
    ),
    (b"SMTP: User ", b"x. Attempt from IP address "),
    (b"Recv: ", b"Key: , "),
];

/// A line's body, after `[DD/Mon/YYYY HH:MM:SS] `.
fn body(line: &[u8]) -> &[u8] {
    line.get(23..).unwrap_or_default()
}

fn main() -> Result<(), String> {
    let mut parser = KerioParser::new(LocalZone::parse("Europe/Prague")?);
    let mut bench = support::Bench::new(&mut parser, body);
    bench.typical(&TYPICAL);
    bench.timestamp(TYPICAL[0]);
    bench.hostile(b"[10/Jan/2024 10:00:00] ", &HOSTILE);
    Ok(())
}
