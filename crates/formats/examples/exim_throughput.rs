//! Throughput of the Exim parser on typical lines, and on 10 MB hostile ones.
//!
//! `cargo run --release -p mailfuse-formats --example exim_throughput [FILTER]`
//! (FILTER: run only the lines whose text after the message id or time
//! starts with it, e.g. `<=`).

#[path = "support/throughput.rs"]
mod support;

use mailfuse_formats::exim::EximParser;
use mailfuse_formats::{LocalZone, ParseContext};

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

const HOSTILE: [(&[u8], &[u8]); 5] = [
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

fn main() -> Result<(), String> {
    let context = ParseContext {
        zone: LocalZone::parse("Europe/Prague")?,
        year_reference: None,
        ..ParseContext::default()
    };
    let mut parser = EximParser::new(&context);
    let mut bench = support::Bench::new(&mut parser, label);
    bench.typical(&TYPICAL);
    bench.timestamp(TYPICAL[0]);
    bench.hostile(b"2024-01-10 10:00:00 ", &HOSTILE);
    Ok(())
}
