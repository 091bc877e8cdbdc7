//! One way to count lines and to merge inputs by time, for every reader:
//! `scan`'s report and `watch`'s metrics count the same lines the same way,
//! and both hand lines to the detectors in the same order.

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
}

impl LineOutcome {
    pub const ALL: [LineOutcome; 5] = [
        LineOutcome::Event,
        LineOutcome::Ignored,
        LineOutcome::Unknown,
        LineOutcome::Malformed,
        LineOutcome::TooLong,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_line_goes_first_and_ties_to_the_input_named_first() {
        let at = |s| Some(Timestamp(s));
        assert_eq!(earliest([at(5), None, at(3), at(3)]), Some(2));
        assert_eq!(earliest([None, None]), None);
        assert_eq!(earliest([at(1), at(1)]), Some(0));
    }
}
