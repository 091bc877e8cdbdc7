//! One way to count lines and to merge inputs by time, for every reader:
//! `scan`'s report and `watch`'s metrics count the same lines the same way,
//! and both hand lines to the detectors in the same order, each line once
//! when syslog files overlap ([`Overlap`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use mailfuse_core::Timestamp;
use mailfuse_formats::Parsed;

/// What became of a line read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineOutcome {
    /// It carried an event for the detectors.
    Event,
    /// A line of the format with nothing for the detectors.
    Ignored,
    /// Not understood (also: every line before its file's format showed).
    Unknown,
    /// Of a known kind, but unreadable.
    Malformed,
    /// Over the length limit, skipped unread.
    TooLong,
    /// Already handed out from another input (overlapping syslog files:
    /// Debian's `mail.log`, `mail.info`, `mail.warn`, `mail.err`).
    Duplicate,
}

impl LineOutcome {
    pub const ALL: [LineOutcome; 6] = [
        LineOutcome::Event,
        LineOutcome::Ignored,
        LineOutcome::Unknown,
        LineOutcome::Malformed,
        LineOutcome::TooLong,
        LineOutcome::Duplicate,
    ];

    /// What a parsed line counts as.
    pub fn of(parsed: &Parsed<'_>) -> LineOutcome {
        match parsed {
            Parsed::Event(_) => LineOutcome::Event,
            Parsed::Ignored => LineOutcome::Ignored,
            Parsed::Unknown => LineOutcome::Unknown,
            Parsed::Malformed(_) => LineOutcome::Malformed,
        }
    }

    /// The name in metrics and reports.
    pub fn name(self) -> &'static str {
        match self {
            LineOutcome::Event => "event",
            LineOutcome::Ignored => "ignored",
            LineOutcome::Unknown => "unknown",
            LineOutcome::Malformed => "malformed",
            LineOutcome::TooLong => "too_long",
            LineOutcome::Duplicate => "duplicate",
        }
    }
}

/// The input whose next line comes first, given each input's next line's
/// time (`None`: nothing to give now). Ties go to the input named first,
/// so the order is reproducible.
pub fn earliest(next: impl IntoIterator<Item = Option<Timestamp>>) -> Option<usize> {
    next.into_iter()
        .enumerate()
        .filter_map(|(i, at)| Some((at?, i)))
        .min()
        .map(|(_, i)| i)
}

/// Seconds behind the latest line handed out within which a line is still
/// compared: syslog files are in time order up to a few seconds (programs
/// stamp their own lines), and the copies of one line carry the same stamp.
const OVERLAP_SECONDS: i64 = 10;
/// Lines remembered at most (their hashes and counts, some tens of bytes
/// each): past it the oldest second is forgotten, so a burst costs no more.
const OVERLAP_LINES: usize = 256 * 1024;

/// Hands each line of overlapping syslog files out once, in the merge.
///
/// rsyslog writes one message to every file whose filter it passes
/// (Debian: `mail.*` to `mail.log`, `mail.info` to `mail.info`, `mail.warn`
/// to `mail.warn`, `mail.err` to `mail.err`), byte for byte, stamp
/// included. So a line of one input that another input already handed out
/// at the same second, with the same bytes, is the same message. The rule
/// counts, per second and line, how many times each input handed it out:
/// an input's line is a duplicate while another input handed it out more
/// often. The real number of a line is thus the most any one input holds:
/// a line repeated within one file is never dropped, and a file that holds
/// any subset of another's lines (not only a prefix) adds nothing.
/// Memory: the lines of the last [`OVERLAP_SECONDS`] seconds, at most
/// [`OVERLAP_LINES`]; lines older than that are handed out unchecked.
#[derive(Debug, Default)]
pub struct Overlap {
    /// Per second: per line hash, how often each input handed it out.
    seconds: BTreeMap<i64, HashMap<u64, Vec<(usize, u32)>>>,
    lines: usize,
    latest: i64,
}

impl Overlap {
    /// Takes the line `input` hands out next, stamped `at`: `None` to hand
    /// it out, or `Some(other)`, the input that already handed it out.
    pub fn duplicate_of(&mut self, input: usize, at: Timestamp, line: &[u8]) -> Option<usize> {
        if at.0 <= self.latest.saturating_sub(OVERLAP_SECONDS) {
            return None;
        }
        if at.0 > self.latest {
            self.latest = at.0;
            let keep = self.seconds.split_off(&(at.0 - OVERLAP_SECONDS + 1));
            let gone = std::mem::replace(&mut self.seconds, keep);
            self.lines -= gone.values().map(HashMap::len).sum::<usize>();
        }
        while self.lines >= OVERLAP_LINES {
            let Some((_, gone)) = self.seconds.pop_first() else {
                break;
            };
            self.lines -= gone.len();
        }
        let mut hasher = DefaultHasher::new();
        line.hash(&mut hasher);
        let second = self.seconds.entry(at.0).or_default();
        let counts = second.entry(hasher.finish()).or_insert_with(|| {
            self.lines += 1;
            Vec::new()
        });
        // How often this input handed the line out before this time.
        let before = match counts.iter_mut().find(|(i, _)| *i == input) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => {
                counts.push((input, 1));
                0
            }
        };
        counts
            .iter()
            .filter(|&&(i, n)| i != input && n > before)
            .max_by_key(|&&(i, n)| (n, std::cmp::Reverse(i)))
            .map(|&(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_lines_are_handed_out_once_and_repeats_within_a_file_are_kept() {
        let mut overlap = Overlap::default();
        let t = Timestamp(100);
        let fail = b"Dec 14 20:46:27 mail postfix/smtpd[1]: warning: unknown[192.0.2.7]: SASL LOGIN authentication failed";
        // mail.log (0) holds the failure twice, mail.warn (1) once.
        assert_eq!(overlap.duplicate_of(0, t, fail), None);
        assert_eq!(overlap.duplicate_of(0, t, fail), None);
        assert_eq!(overlap.duplicate_of(1, t, fail), Some(0));
        // Read the other way round: still two.
        let mut overlap = Overlap::default();
        assert_eq!(overlap.duplicate_of(1, t, fail), None);
        assert_eq!(overlap.duplicate_of(0, t, fail), Some(1));
        assert_eq!(overlap.duplicate_of(0, t, fail), None);
        // Another second, another line.
        assert_eq!(overlap.duplicate_of(1, Timestamp(101), fail), None);
        assert_eq!(overlap.duplicate_of(1, t, b"other"), None);
    }

    #[test]
    fn overlap_memory_is_bounded_by_the_window() {
        let mut overlap = Overlap::default();
        for s in 0..1000 {
            for n in 0..100u32 {
                overlap.duplicate_of(0, Timestamp(s), &n.to_le_bytes());
            }
        }
        assert!(overlap.lines <= 100 * OVERLAP_SECONDS as usize);
        assert!(overlap.seconds.len() <= OVERLAP_SECONDS as usize);
        // Too old to compare: handed out.
        assert_eq!(
            overlap.duplicate_of(1, Timestamp(5), &0u32.to_le_bytes()),
            None
        );
    }

    #[test]
    fn the_earliest_line_goes_first_and_ties_to_the_input_named_first() {
        let at = |s| Some(Timestamp(s));
        assert_eq!(earliest([at(5), None, at(3), at(3)]), Some(2));
        assert_eq!(earliest([None, None]), None);
        assert_eq!(earliest([at(1), at(1)]), Some(0));
    }
}
