//! Cutting bytes into lines: one rule for every reader (`scan`'s whole
//! files and standard input, `watch`'s followed files), whatever the size
//! of the reads that bring the bytes.

use memchr::memchr_iter;

/// Longest line kept by default; longer ones are skipped and counted.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// What the splitter found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A line, without its `\n` and one `\r` before it.
    Line(&'a [u8]),
    /// A line longer than the limit, skipped unread.
    TooLong,
}

/// Cuts a stream of chunks into lines. The rule: a line is the bytes before
/// a `\n` (or before the end, see [`finish`](Self::finish)), less one
/// trailing `\r`; a line longer than `max_line` bytes is skipped and
/// counted, never gathered. A line inside one chunk is handed out without a
/// copy; only the unfinished line at a chunk's end is kept, at most
/// `max_line + 1` bytes (room for its `\r`).
pub struct LineSplitter {
    partial: Vec<u8>,
    /// The unfinished line is over-long and being skipped.
    skipping: bool,
    max_line: usize,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            skipping: false,
            max_line,
        }
    }

    /// Cuts `chunk` at its newlines, handing each line ended in it to
    /// `on_piece`; returns the offset in `chunk` just after its last
    /// newline, if it has one.
    pub fn feed(&mut self, chunk: &[u8], on_piece: &mut dyn FnMut(Piece<'_>)) -> Option<usize> {
        let mut start = 0;
        for newline in memchr_iter(b'\n', chunk) {
            self.end_line(chunk.get(start..newline).unwrap_or_default(), on_piece);
            start = newline + 1;
        }
        let rest = chunk.get(start..).unwrap_or_default();
        if !self.skipping {
            if self.partial.len() + rest.len() > self.max_line.saturating_add(1) {
                self.skipping = true;
                self.partial = Vec::new();
            } else {
                self.partial.reserve_exact(rest.len());
                self.partial.extend_from_slice(rest);
            }
        }
        (start > 0).then_some(start)
    }

    /// Hands out the unfinished line as it is, if there is one: the input
    /// ended without a last `\n`, or its file is being left.
    pub fn finish(&mut self, on_piece: &mut dyn FnMut(Piece<'_>)) {
        if self.skipping || !self.partial.is_empty() {
            self.end_line(&[], on_piece);
        }
    }

    /// Completes the unfinished line with `tail` and hands it out.
    fn end_line(&mut self, tail: &[u8], on_piece: &mut dyn FnMut(Piece<'_>)) {
        let too_long =
            self.skipping || self.partial.len() + tail.len() > self.max_line.saturating_add(1);
        let line = if too_long || self.partial.is_empty() {
            tail
        } else {
            self.partial.reserve_exact(tail.len());
            self.partial.extend_from_slice(tail);
            &self.partial
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if too_long || line.len() > self.max_line {
            on_piece(Piece::TooLong);
        } else {
            on_piece(Piece::Line(line));
        }
        self.skipping = false;
        self.partial.clear();
    }

    /// Bytes held for the unfinished line (to check the bound in tests).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.partial.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What splitting `input` in chunks of `chunk` bytes gives: lines, or
    /// `None` for a line skipped as too long.
    fn split(input: &[u8], chunk: usize, max_line: usize) -> Vec<Option<Vec<u8>>> {
        let mut splitter = LineSplitter::new(max_line);
        let mut out = Vec::new();
        let mut keep = |piece: Piece<'_>| out.push(piece.to_owned_line());
        for part in input.chunks(chunk.max(1)) {
            splitter.feed(part, &mut keep);
        }
        splitter.finish(&mut keep);
        out
    }

    #[test]
    fn splits_lines_strips_one_cr_and_keeps_an_unterminated_last_line() {
        let lines = split(b"a\r\nbb\n\nc\r\r\nlast", 100, 100);
        let want: Vec<Option<Vec<u8>>> = [&b"a"[..], b"bb", b"", b"c\r", b"last"]
            .iter()
            .map(|l| Some(l.to_vec()))
            .collect();
        assert_eq!(lines, want);
        assert!(split(b"", 100, 100).is_empty());
    }

    #[test]
    fn the_limit_is_one_rule_whatever_the_chunking() {
        let mut input = Vec::new();
        for len in [0, 1, 99, 100, 101, 150, 100_000, 100, 5] {
            input.extend(std::iter::repeat_n(b'x', len));
            input.extend(if len == 100 { &b"\r\n"[..] } else { b"\n" });
        }
        input.extend(std::iter::repeat_n(b'y', 101));
        let want = split(&input, input.len(), 100);
        let lengths: Vec<Option<usize>> = want.iter().map(|l| l.as_ref().map(Vec::len)).collect();
        assert_eq!(
            lengths,
            [
                Some(0),
                Some(1),
                Some(99),
                Some(100),
                None,
                None,
                None,
                Some(100),
                Some(5),
                None
            ]
        );
        for chunk in [1, 2, 3, 7, 64, 100, 101, 102, 4096, 65_536] {
            assert_eq!(split(&input, chunk, 100), want, "chunks of {chunk} bytes");
        }
        // A limit of 0 keeps only empty lines.
        assert_eq!(split(b"\nx\n", 1, 0), [Some(vec![]), None]);
    }

    #[test]
    fn a_huge_line_is_skipped_in_bounded_memory() {
        let mut splitter = LineSplitter::new(1024);
        let mut pieces = Vec::new();
        let mut keep = |piece: Piece<'_>| pieces.push(piece.to_owned_line());
        splitter.feed(b"before\n", &mut keep);
        for _ in 0..1000 {
            splitter.feed(&[b'x'; 10_000], &mut keep);
            assert!(splitter.held() <= 1025);
        }
        splitter.feed(b"\nafter", &mut keep);
        splitter.finish(&mut keep);
        assert_eq!(
            pieces,
            [Some(b"before".to_vec()), None, Some(b"after".to_vec())]
        );
    }

    impl Piece<'_> {
        fn to_owned_line(self) -> Option<Vec<u8>> {
            match self {
                Piece::Line(line) => Some(line.to_vec()),
                Piece::TooLong => None,
            }
        }
    }

    #[test]
    fn the_offset_after_the_last_newline_is_told() {
        let mut splitter = LineSplitter::new(100);
        assert_eq!(splitter.feed(b"ab\ncd\nef", &mut |_| {}), Some(6));
        assert_eq!(splitter.feed(b"gh", &mut |_| {}), None);
    }
}
