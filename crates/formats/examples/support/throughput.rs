//! The measuring loop the `*_throughput` examples share.
//!
//! Typical lines report the best of several batches: on a shared machine the
//! minimum is the figure that reflects the code rather than its neighbours.
//! Hostile lines are built to 10 MB and parsed once: the figure shows the
//! parser stays linear on them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mailfuse_formats::{LineParser, Parsed};

const BATCHES: u32 = 20;
const LINES_PER_BATCH: u32 = 100_000;
const HOSTILE_BYTES: usize = 10 << 20;

/// A parser to measure, and how to name and filter its lines.
pub struct Bench<'p> {
    pub parser: &'p mut dyn LineParser,
    /// The part of a line shown in the table and matched by the filter.
    pub label: fn(&[u8]) -> &[u8],
    /// Lines whose label starts with this are measured (the first
    /// command-line argument; empty for all).
    pub filter: String,
}

impl Bench<'_> {
    /// A bench whose filter is the first command-line argument.
    pub fn new(parser: &mut dyn LineParser, label: fn(&[u8]) -> &[u8]) -> Bench<'_> {
        Bench {
            parser,
            label,
            filter: std::env::args().nth(1).unwrap_or_default(),
        }
    }

    fn selected(&self, line: &[u8]) -> bool {
        (self.label)(line).starts_with(self.filter.as_bytes())
    }

    /// Prints ns/line and MB/s for each typical line, which must parse.
    pub fn typical(&mut self, lines: &[&[u8]]) {
        for &line in lines {
            if !self.selected(line) {
                continue;
            }
            assert!(
                !matches!(
                    self.parser.parse(line),
                    Parsed::Unknown | Parsed::Malformed(_)
                ),
                "a typical line must parse: {}",
                String::from_utf8_lossy(line)
            );
            let per_line = self.best_per_line(|parser| {
                black_box(parser.parse(black_box(line)));
            });
            println!(
                "{:>4} ns/line {:>5.0} MB/s  {:>3} bytes  {}",
                per_line.as_nanos(),
                line.len() as f64 / per_line.as_secs_f64() / 1e6,
                line.len(),
                shown((self.label)(line)),
            );
        }
    }

    /// Prints ns/line of `timestamp()` alone on `line`.
    pub fn timestamp(&mut self, line: &[u8]) {
        let per_line = self.best_per_line(|parser| {
            black_box(parser.timestamp(black_box(line)));
        });
        println!("{:>4} ns/line timestamp() alone", per_line.as_nanos());
    }

    /// Prints MB/s for lines of `prefix`, then `opening`, then `repeated`
    /// until the line is 10 MB.
    pub fn hostile(&mut self, prefix: &[u8], cases: &[(&[u8], &[u8])]) {
        for &(opening, repeated) in cases {
            let mut line = [prefix, opening].concat();
            if !self.selected(&line) {
                continue;
            }
            while line.len() < HOSTILE_BYTES {
                line.extend_from_slice(repeated);
            }
            let start = Instant::now();
            black_box(self.parser.parse(black_box(&line)));
            let elapsed = start.elapsed();
            println!(
                "10 MB line {:>6.0} MB/s  {}",
                line.len() as f64 / elapsed.as_secs_f64() / 1e6,
                shown((self.label)(&line)),
            );
        }
    }

    fn best_per_line(&mut self, mut once: impl FnMut(&mut dyn LineParser)) -> Duration {
        let best = (0..BATCHES)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..LINES_PER_BATCH {
                    once(&mut *self.parser);
                }
                start.elapsed()
            })
            .min()
            .unwrap_or(Duration::MAX);
        best / LINES_PER_BATCH
    }
}

/// At most 30 bytes of a label, for the table.
fn shown(label: &[u8]) -> String {
    String::from_utf8_lossy(label.get(..30).unwrap_or(label)).into_owned()
}
