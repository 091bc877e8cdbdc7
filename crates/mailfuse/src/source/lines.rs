//! Reading lines from a byte stream in bounded memory, without copying.

use std::io::{self, Read};

use memchr::memchr;

/// Longest line kept by default; longer ones are skipped and counted.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;
const CHUNK: usize = 256 * 1024;

/// What [`LineReader::advance`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advance {
    /// A line is available from [`LineReader::current`].
    Line,
    /// A line longer than the limit was skipped (its length in bytes).
    TooLong(u64),
    /// End of input.
    End,
}

/// Splits a reader into lines. Memory is one buffer of at most
/// `max_line + 256 KiB`, whatever the input: a 10 MB line is skipped as it
/// streams by, not gathered. A trailing `\r` is removed; a last line without
/// a newline is still returned.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The current line is `buf[line.0..line.1]`.
    line: (usize, usize),
    max_line: usize,
    /// Bytes of an over-long line discarded so far.
    skipping: Option<u64>,
    eof: bool,
    bytes_read: u64,
}

impl<R: Read> LineReader<R> {
    /// A reader that skips lines longer than `max_line` bytes.
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            buf: vec![0; CHUNK + max_line],
            start: 0,
            end: 0,
            line: (0, 0),
            max_line,
            skipping: None,
            eof: false,
            bytes_read: 0,
        }
    }

    /// Moves to the next line.
    pub fn advance(&mut self) -> io::Result<Advance> {
        loop {
            if let Some(pos) = memchr(b'\n', &self.buf[self.start..self.end]) {
                let (s, e) = (self.start, self.start + pos);
                self.start = e + 1;
                if let Some(skipped) = self.skipping.take() {
                    return Ok(Advance::TooLong(skipped + pos as u64));
                }
                return Ok(self.set_line(s, e));
            }
            if self.eof {
                if let Some(skipped) = self.skipping.take() {
                    let rest = (self.end - self.start) as u64;
                    self.start = self.end;
                    return Ok(Advance::TooLong(skipped + rest));
                }
                if self.start < self.end {
                    let (s, e) = (self.start, self.end);
                    self.start = self.end;
                    return Ok(self.set_line(s, e));
                }
                return Ok(Advance::End);
            }
            self.make_room();
            self.fill()?;
        }
    }

    /// The line found by the last [`advance`](Self::advance) that returned
    /// [`Advance::Line`].
    pub fn current(&self) -> &[u8] {
        &self.buf[self.line.0..self.line.1]
    }

    /// Bytes read from the input so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn set_line(&mut self, s: usize, mut e: usize) -> Advance {
        if e > s && self.buf[e - 1] == b'\r' {
            e -= 1;
        }
        self.line = (s, e);
        Advance::Line
    }

    /// Frees buffer space: drops a partial line that is already too long
    /// (entering skip mode), else moves the partial line to the front.
    fn make_room(&mut self) {
        let pending = self.end - self.start;
        if pending > self.max_line || self.skipping.is_some() {
            *self.skipping.get_or_insert(0) += pending as u64;
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.start = 0;
            self.end = pending;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max_line: usize) -> Vec<Result<Vec<u8>, u64>> {
        let mut reader = LineReader::new(input, max_line);
        let mut out = Vec::new();
        loop {
            match reader.advance().unwrap() {
                Advance::Line => out.push(Ok(reader.current().to_vec())),
                Advance::TooLong(n) => out.push(Err(n)),
                Advance::End => return out,
            }
        }
    }

    #[test]
    fn splits_lines_strips_cr_and_keeps_an_unterminated_last_line() {
        let lines = collect(b"a\r\nbb\n\nlast", 100);
        assert_eq!(
            lines,
            vec![
                Ok(b"a".to_vec()),
                Ok(b"bb".to_vec()),
                Ok(vec![]),
                Ok(b"last".to_vec())
            ]
        );
        assert!(collect(b"", 100).is_empty());
    }

    #[test]
    fn skips_a_huge_line_in_bounded_memory_and_goes_on() {
        let mut input = b"before\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
        input.extend(b"\nafter\n");
        let lines = collect(&input, 1024);
        assert_eq!(
            lines,
            vec![
                Ok(b"before".to_vec()),
                Err(10 * 1024 * 1024),
                Ok(b"after".to_vec())
            ]
        );
    }

    #[test]
    fn lines_spanning_chunk_boundaries_are_whole() {
        let line = vec![b'y'; 1000];
        let mut input = Vec::new();
        for _ in 0..2000 {
            input.extend(&line);
            input.push(b'\n');
        }
        let lines = collect(&input, 4096);
        assert_eq!(lines.len(), 2000);
        assert!(lines.iter().all(|l| l.as_ref().map(Vec::len) == Ok(1000)));
    }

    #[test]
    fn an_over_long_unterminated_tail_is_reported() {
        let input = vec![b'z'; 5000];
        assert_eq!(collect(&input, 1000), vec![Err(5000)]);
    }
}
