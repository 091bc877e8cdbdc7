//! Cutting bytes into lines: one rule for every reader (`scan`'s whole
//! files and standard input, `watch`'s followed files), whatever the size
//! of the reads that bring the bytes. [`LineSplitter`] hands out lines from
//! chunks as they come; [`LineBlocks`] reads blocks of whole lines that
//! the lines are then parsed in, without copying them.

use std::ops::Range;
use std::sync::{Arc, Mutex};

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
        if self.skipping || self.partial.len() + tail.len() > self.max_line.saturating_add(1) {
            on_piece(Piece::TooLong);
        } else if self.partial.is_empty() {
            on_piece(piece(tail, self.max_line));
        } else {
            self.partial.reserve_exact(tail.len());
            self.partial.extend_from_slice(tail);
            on_piece(piece(&self.partial, self.max_line));
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

/// What the bytes of a line before its `\n` are: the line less one `\r`,
/// or too long.
fn piece(raw: &[u8], max_line: usize) -> Piece<'_> {
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    if line.len() > max_line {
        Piece::TooLong
    } else {
        Piece::Line(line)
    }
}

/// Where a line lies in its [`Block`], or that it was too long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Span {
    /// The line's bytes in the block's text.
    Line(Range<usize>),
    /// A line longer than the limit, skipped unread.
    TooLong,
}

/// Whole lines read at once: the text, and the lines in it in order.
#[derive(Debug, Default)]
pub struct Block {
    pub text: Vec<u8>,
    pub spans: Vec<Span>,
    /// Where `text` starts in the stream.
    pub offset: u64,
}

impl Block {
    /// The line or too-long piece `span` stands for.
    pub fn piece(&self, span: &Span) -> Piece<'_> {
        match span {
            Span::Line(range) => Piece::Line(self.text.get(range.clone()).unwrap_or_default()),
            Span::TooLong => Piece::TooLong,
        }
    }
}

/// Things done with, kept for the next blocks: once a block's lines are
/// handed on, its buffer (and the engine's vector of its parsed lines) comes
/// back, so reading a big file takes (and zeroes) no new memory after its
/// first blocks, and the few buffers in turn stay in the caches. Shared by
/// the threads that read an input and the one that finishes with its blocks.
#[derive(Debug)]
pub struct Spares<T>(Arc<Mutex<Vec<T>>>);

/// The byte buffers of an input's blocks.
pub type Buffers = Spares<Vec<u8>>;

/// Things kept at most: enough for the blocks in flight of one input.
const SPARES_KEPT: usize = 32;

impl<T> Spares<T> {
    /// Keeps `spare` for a next block, if there is room.
    pub fn give_back(&self, spare: T) {
        if let Ok(mut kept) = self.0.lock() {
            if kept.len() < SPARES_KEPT {
                kept.push(spare);
            }
        }
    }

    /// The last thing given back, if one is kept.
    pub fn take(&self) -> Option<T> {
        self.0.lock().ok().and_then(|mut kept| kept.pop())
    }
}

// Not derived: those would ask `T` to be `Clone` and `Default`.
impl<T> Clone for Spares<T> {
    fn clone(&self) -> Self {
        Spares(Arc::clone(&self.0))
    }
}

impl<T> Default for Spares<T> {
    fn default() -> Self {
        Spares(Arc::default())
    }
}

impl Buffers {
    /// A buffer of `capacity` bytes, all of them initialised: a kept one
    /// holds old bytes, to be overwritten; a new one is zeroed by the
    /// allocator (fresh pages come zeroed: no pass over them).
    fn buffer(&self, capacity: usize) -> Vec<u8> {
        match self.take().filter(|b| b.capacity() >= capacity) {
            Some(mut kept) => {
                kept.resize(capacity, 0);
                kept
            }
            None => vec![0; capacity],
        }
    }
}

/// Reads a stream in [`Block`]s of whole lines, cut by the rule of
/// [`LineSplitter`]: each block is read into a buffer of its own that its
/// lines are then parsed in place. Only the unfinished line at a read's
/// end is moved to the next block; an over-long line is skipped, never
/// gathered, so a block holds at most `block_bytes` (or `max_line + 2`,
/// when larger) bytes and `block_lines` lines.
pub struct LineBlocks {
    max_line: usize,
    capacity: usize,
    block_lines: usize,
    /// The start of the next block: the unfinished line, or the lines past
    /// a block's count.
    rest: Vec<u8>,
    /// The unfinished line is over-long and being skipped.
    skipping: bool,
    /// Bytes of the stream before `rest`.
    offset: u64,
    ended: bool,
    buffers: Buffers,
}

impl LineBlocks {
    /// Blocks of at most `block_bytes` and `block_lines` lines, in
    /// `buffers` (given back once done with).
    pub fn new(max_line: usize, block_bytes: usize, block_lines: usize, buffers: Buffers) -> Self {
        LineBlocks {
            max_line,
            // Room for the longest line kept, its `\r` and `\n`.
            capacity: block_bytes.max(max_line.saturating_add(2)),
            block_lines: block_lines.max(1),
            rest: Vec::new(),
            skipping: false,
            offset: 0,
            ended: false,
            buffers,
        }
    }

    /// The next block with at least one piece in it, or `None` at the end
    /// of the stream, reading with `read`: it fills the buffer it is given
    /// and tells how much it put in, 0 at the end (or on an error, which it
    /// keeps: the unfinished line is then handed out as it is).
    pub fn next(&mut self, mut read: impl FnMut(&mut [u8]) -> usize) -> Option<Block> {
        loop {
            if self.ended && self.rest.is_empty() && !self.skipping {
                return None;
            }
            let mut text = self.buffers.buffer(self.capacity);
            let mut len = self.rest.len();
            if let Some(start) = text.get_mut(..len) {
                start.copy_from_slice(&self.rest);
            }
            self.rest.clear();
            while !self.ended && len < text.len() {
                match read(text.get_mut(len..).unwrap_or_default()) {
                    0 => self.ended = true,
                    n => len += n,
                }
            }
            text.truncate(len);
            let block = self.cut(text);
            if !block.spans.is_empty() {
                return Some(block);
            }
        }
    }

    /// Cuts `text` (the rest of the last read, then new bytes) into lines,
    /// keeping the unfinished end, or the lines past the count, for later.
    fn cut(&mut self, mut text: Vec<u8>) -> Block {
        let offset = self.offset;
        let (mut spans, start, full) = match newline_searcher() {
            Some(searcher) => self.lines(&text, searcher.iter(&text)),
            None => self.lines(&text, memchr_iter(b'\n', &text)),
        };
        let tail = text.get(start..).unwrap_or_default();
        let mut end = start;
        if full || (self.ended && spans.len() == self.block_lines) {
            // More lines than a block holds: the next block starts here
            // (an over-long last line is skipped there).
            if !self.skipping {
                self.rest.extend_from_slice(tail);
            }
        } else if self.ended {
            if self.skipping || !tail.is_empty() {
                spans.push(self.span(&text, start..text.len()));
                end = text.len();
            }
        } else if self.skipping || tail.len() > self.max_line.saturating_add(1) {
            self.skipping = true;
        } else {
            self.rest.extend_from_slice(tail);
        }
        self.offset += (text.len() - self.rest.len()) as u64;
        text.truncate(end);
        Block {
            text,
            spans,
            offset,
        }
    }

    /// The spans of the whole lines of `text`, whose `newlines` are given,
    /// up to the block's count; where the text after them starts, and
    /// whether the count stopped them.
    fn lines(
        &mut self,
        text: &[u8],
        newlines: impl Iterator<Item = usize>,
    ) -> (Vec<Span>, usize, bool) {
        // Room for a full block from the start: growing the vector copied
        // it four times over (a tenth of the reader's instructions).
        let mut spans = Vec::with_capacity(self.block_lines.min(text.len() + 1));
        let mut start = 0;
        for newline in newlines {
            if spans.len() == self.block_lines {
                return (spans, start, true);
            }
            spans.push(self.span(text, start..newline));
            start = newline + 1;
        }
        (spans, start, false)
    }

    /// The span of the line in `text` at `range` (its `\n` left out).
    fn span(&mut self, text: &[u8], range: Range<usize>) -> Span {
        if std::mem::take(&mut self.skipping) {
            return Span::TooLong;
        }
        let raw = text.get(range.clone()).unwrap_or_default();
        match piece(raw, self.max_line) {
            Piece::Line(line) => Span::Line(range.start..range.start + line.len()),
            Piece::TooLong => Span::TooLong,
        }
    }
}

/// A search for `\n` built once per block: `memchr_iter` goes through
/// memchr's CPU dispatch (a function pointer and its checks) at every line;
/// the AVX2 searcher itself, where the CPU has it, goes straight to its loop.
#[cfg(target_arch = "x86_64")]
fn newline_searcher() -> Option<memchr::arch::x86_64::avx2::memchr::One> {
    memchr::arch::x86_64::avx2::memchr::One::new(b'\n')
}

/// No AVX2 elsewhere: `memchr_iter` picks the best search there.
#[cfg(not(target_arch = "x86_64"))]
fn newline_searcher() -> Option<memchr::arch::all::memchr::One> {
    None
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

    /// What reading `input` in [`LineBlocks`] gives (as [`split`] does),
    /// each read handing out at most `chunk` bytes, each block's buffer
    /// reused; checks each block's bounds and that its lines lie where its
    /// offset says.
    fn read_blocks(
        input: &[u8],
        chunk: usize,
        max_line: usize,
        bytes: usize,
        lines: usize,
    ) -> Vec<Option<Vec<u8>>> {
        let buffers = Buffers::default();
        let mut blocks = LineBlocks::new(max_line, bytes, lines, buffers.clone());
        let mut at = 0;
        let mut out = Vec::new();
        let mut read = |buf: &mut [u8]| {
            let n = buf.len().min(chunk).min(input.len() - at);
            buf[..n].copy_from_slice(&input[at..at + n]);
            at += n;
            n
        };
        while let Some(block) = blocks.next(&mut read) {
            assert!(block.text.len() <= bytes.max(max_line + 2));
            assert!(!block.spans.is_empty() && block.spans.len() <= lines.max(1));
            for span in &block.spans {
                if let Span::Line(range) = span {
                    let from = block.offset as usize;
                    assert_eq!(
                        &input[from + range.start..from + range.end],
                        &block.text[range.clone()]
                    );
                }
                out.push(block.piece(span).to_owned_line());
            }
            // Its old bytes must not show through in the next blocks.
            buffers.give_back(block.text);
        }
        out
    }

    #[test]
    fn blocks_cut_lines_by_the_splitters_rule_whatever_their_size() {
        let mut input = Vec::new();
        for len in [0, 1, 99, 100, 101, 150, 100_000, 100, 5, 0, 0, 3] {
            input.extend(std::iter::repeat_n(b'x', len));
            input.extend(if len == 100 { &b"\r\n"[..] } else { b"\n" });
        }
        for end in [&b""[..], b"y", &[b'y'; 101], b"\r"] {
            let mut input = input.clone();
            input.extend(end);
            let want = split(&input, input.len(), 100);
            for chunk in [1, 7, 100, 4096, 1 << 20] {
                for bytes in [0, 150, 1000, 1 << 20] {
                    for lines in [1, 2, 1000] {
                        let got = read_blocks(&input, chunk, 100, bytes, lines);
                        assert_eq!(
                            got, want,
                            "reads of {chunk}, blocks of {bytes} bytes, {lines} lines"
                        );
                    }
                }
            }
        }
        assert!(read_blocks(b"", 10, 100, 0, 1).is_empty());
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
