//! A big file parsed on every core (cut into ranges at line boundaries,
//! merged back in order) says exactly what it says read in one piece: the
//! same report, counts and incidents, for each format, with the lines whose
//! meaning depends on the lines before them (syslog's repeat notices, a
//! Postfix disconnect after its client's warnings, lines without a stamp),
//! over-long lines and a last line without its newline falling on range
//! boundaries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/run.rs"]
mod run;

use std::fmt::Write as _;
use std::path::Path;

use mailfuse_loggen::bench::{generate, BenchConfig, Format};
use run::mailfuse;

/// `split-above` values that force the split, in ranges that small: prime
/// sizes put boundaries everywhere, inside lines and over-long ones.
const SPLITS: [&str; 3] = ["4099", "65521", "1048573"];

/// Lines longer than this are skipped: the inserted long lines are.
const MAX_LINE: &str = "600";

/// `scan --format json` of `path`, read in one piece or split into ranges
/// of `split_above` bytes; the report and the exit status.
fn scan(path: &Path, split_above: &str) -> (String, Option<i32>) {
    let path = path.to_str().unwrap();
    let args = [
        "scan",
        "--format",
        "json",
        "--year",
        "2026",
        "--max-line-bytes",
        MAX_LINE,
        "--split-above",
        split_above,
        path,
    ];
    let output = mailfuse(&args);
    assert!(output.status.code().unwrap_or(2) < 2, "{output:?}");
    (
        String::from_utf8(output.stdout).unwrap(),
        output.status.code(),
    )
}

/// Scans `files` (name, text) written to a directory both ways and
/// compares; the report must hold `expected` (so the comparison is of
/// something).
fn same_both_ways(files: &[(&str, &[u8])], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
        assert!(text.len() > 2 << 20);
    }
    let whole = scan(dir.path(), &u64::MAX.to_string());
    for want in expected {
        assert!(whole.0.contains(want), "{want} not in {}", whole.0);
    }
    for split in SPLITS {
        assert_eq!(scan(dir.path(), split), whole, "split above {split} bytes");
    }
}

/// A benchmark log of `format`, about 4 MB: four days of a small
/// organisation, with its hijack.
fn bench_log(format: Format) -> Vec<u8> {
    let mut cfg = BenchConfig::new(4 << 20);
    cfg.staff = 40;
    cfg.format = format;
    let mut text = Vec::new();
    generate(&mut text, &cfg).unwrap();
    text
}

/// After every `every`th line of `text`, `extra(line)` (lines to insert,
/// each ending in a newline).
fn interleave(text: &[u8], every: usize, extra: impl Fn(&[u8]) -> String) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 2);
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        out.extend_from_slice(line);
        if i % every == every - 1 {
            out.extend_from_slice(extra(line).as_bytes());
        }
    }
    out
}

#[test]
fn a_kerio_log_reads_the_same_split() {
    let text = interleave(&bench_log(Format::Kerio), 97, |_| {
        format!("no stamp here\n{}\r\n", "x".repeat(700))
    });
    same_both_ways(
        &[("mail.log", &text)],
        &[
            "\"format\": \"kerio\"",
            "compromised_account",
            "\"too_long\": 166,",
        ],
    );
}

#[test]
fn a_postfix_and_dovecot_syslog_reads_the_same_split() {
    // A guessing client whose warnings, repeats and disconnects cross range
    // boundaries, between lines of other programs and junk.
    let text = interleave(&bench_log(Format::Postfix), 41, |line| {
        let stamp = String::from_utf8_lossy(line.get(..15).unwrap_or_default()).into_owned();
        let mut extra = String::new();
        let ip = format!("203.0.113.{}", line.len() % 7);
        let smtpd = "mail postfix/smtpd[4242]";
        writeln!(extra, "{stamp} {smtpd}: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=admin").unwrap();
        writeln!(extra, "{stamp} mail last message repeated 3 times").unwrap();
        writeln!(extra, "-- not a syslog line --").unwrap();
        writeln!(
            extra,
            "{stamp} mail CRON[7]: {}",
            "y".repeat(line.len() % 900)
        )
        .unwrap();
        writeln!(
            extra,
            "{stamp} {smtpd}: disconnect from unknown[{ip}] ehlo=1 auth=0/6 quit=1 commands=2/8"
        )
        .unwrap();
        extra
    });
    let mut text = text;
    // The last line has no newline.
    text.extend_from_slice(
        b"Nov 30 23:59:59 mail postfix/anvil[1]: statistics: max connection rate 1/60s",
    );
    // rsyslog's `mail.warn` holds copies of some lines (here of every other
    // one, and of the junk): they are compared by time, the junk's being
    // that of the line before.
    let warn: Vec<u8> = text
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
        .filter(|(i, line)| i % 2 == 0 || line.starts_with(b"--"))
        .flat_map(|(_, line)| line.iter().copied())
        .collect();
    same_both_ways(
        &[("mail.log", &text), ("mail.warn", &warn)],
        &[
            "\"format\": \"syslog\"",
            "compromised_account",
            "password_guessing",
            "\"duplicate\": 1",
        ],
    );
}

#[test]
fn an_exim_mainlog_reads_the_same_split() {
    let mut text = String::new();
    for i in 0..30_000u32 {
        let (minute, second) = (i / 60 % 60, i % 60);
        let at = format!(
            "2026-03-{:02} {:02}:{minute:02}:{second:02}",
            1 + i / 86_400,
            i / 3600 % 24
        );
        let id = format!("1rK{:03}a-{i:06}-Cd", i % 1000);
        let user = ["alice", "bob", "carol", "dave"][i as usize % 4];
        writeln!(text, "{at} {id} <= {user}@example.com H=(laptop) [203.0.113.{}]:51234 P=esmtpsa A=dovecot_login:{user}@example.com S=2275 id={i}@laptop", i % 5).unwrap();
        writeln!(text, "{at} {id} => friend{}@partner.test R=dnslookup T=remote_smtp H=mx.partner.test [198.51.100.5] C=\"250 OK\"", i % 50).unwrap();
        writeln!(text, "{at} {id} Completed").unwrap();
        writeln!(text, "{at} dovecot_login authenticator failed for (User) [194.169.175.{}]:21298 I=[22.33.44.55]:465: 535 Incorrect authentication data (set_id={user}@example.com)", i % 3).unwrap();
        if i % 113 == 0 {
            writeln!(text, "{at} {}", "z".repeat(900)).unwrap();
        }
    }
    same_both_ways(
        &[("mainlog", text.as_bytes())],
        &["\"format\": \"exim\"", "password_guessing"],
    );
}
