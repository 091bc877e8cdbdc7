//! Cutting a TCP syslog stream into messages (RFC 6587): each frame is
//! either octet-counted (`LEN SP MSG`, rsyslog's and syslog-ng's choice for
//! RFC 5424 and TLS) or ends at a newline (the traditional framing), and a
//! sender may change from one to the other at any frame. A frame starting
//! with a non-zero digit is read as counted; when its digits are not
//! followed by a space it was a line after all (a header-less
//! `2026-12-05T…` line), and what was read goes on as one.
//!
//! Memory is bounded whatever the sender does: a frame longer than the
//! limit is skipped and counted, never gathered (the rule of
//! [`LineSplitter`](crate::source::lines::LineSplitter) for files).

use memchr::memchr;

/// Digits of MSG-LEN read at most: more is not a length (a billion bytes).
const MAX_LEN_DIGITS: usize = 9;

/// What the framer found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One message, without its framing (nor a trailing `\r` or `\n`).
    Message(&'a [u8]),
    /// A message longer than the limit, skipped unread.
    TooLong,
    /// A counted frame the connection closed in the middle of.
    Truncated,
}

/// Where the framer stands in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the first byte of a frame.
    Start,
    /// Reading MSG-LEN's digits (kept in `partial`).
    Length,
    /// Gathering a counted frame: `left` bytes to go.
    Counted { left: usize },
    /// Skipping an over-long counted frame.
    SkipCounted { left: usize },
    /// Gathering a newline-ended frame.
    Line,
    /// Skipping an over-long newline-ended frame up to its newline.
    SkipLine,
}

/// Cuts one connection's bytes into frames.
pub struct Framer {
    state: State,
    partial: Vec<u8>,
    max: usize,
}

impl Framer {
    /// A framer keeping messages of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Framer {
            state: State::Start,
            partial: Vec::new(),
            max,
        }
    }

    /// Cuts `chunk`, the next bytes of the stream, handing each frame ended
    /// in it to `on_frame` (without a copy when it lies within `chunk`).
    pub fn feed(&mut self, mut chunk: &[u8], on_frame: &mut dyn FnMut(Frame<'_>)) {
        while let Some(&first) = chunk.first() {
            match self.state {
                State::Start => match first {
                    b'1'..=b'9' => self.state = State::Length,
                    // Blank lines and the newline some senders add after a
                    // counted frame: nothing.
                    b'\n' | b'\r' | b'\0' => chunk = chunk.get(1..).unwrap_or_default(),
                    _ => self.state = State::Line,
                },
                State::Length => {
                    let digits = chunk
                        .iter()
                        .take(MAX_LEN_DIGITS + 1 - self.partial.len())
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    let (taken, rest) = chunk.split_at(digits);
                    self.partial.extend_from_slice(taken);
                    chunk = rest;
                    match chunk.first() {
                        None => {}
                        Some(b' ') if self.partial.len() <= MAX_LEN_DIGITS => {
                            chunk = chunk.get(1..).unwrap_or_default();
                            let len = length(&self.partial);
                            self.partial.clear();
                            self.state = if len > self.max {
                                on_frame(Frame::TooLong);
                                State::SkipCounted { left: len }
                            } else {
                                State::Counted { left: len }
                            };
                        }
                        // Not a length: the start of a line.
                        Some(_) => self.state = State::Line,
                    }
                }
                State::Counted { left } => {
                    let (body, rest) = chunk.split_at(left.min(chunk.len()));
                    chunk = rest;
                    if body.len() == left {
                        if self.partial.is_empty() {
                            on_frame(Frame::Message(without_newline(body)));
                        } else {
                            self.partial.extend_from_slice(body);
                            on_frame(Frame::Message(without_newline(&self.partial)));
                            self.partial.clear();
                        }
                        self.state = State::Start;
                    } else {
                        self.partial.extend_from_slice(body);
                        self.state = State::Counted {
                            left: left - body.len(),
                        };
                    }
                }
                State::SkipCounted { left } => {
                    let skipped = left.min(chunk.len());
                    chunk = chunk.get(skipped..).unwrap_or_default();
                    self.state = match left - skipped {
                        0 => State::Start,
                        left => State::SkipCounted { left },
                    };
                }
                State::Line => match memchr(b'\n', chunk) {
                    Some(newline) => {
                        let (body, rest) = chunk.split_at(newline);
                        chunk = rest.get(1..).unwrap_or_default();
                        self.end_line(body, on_frame);
                    }
                    None => {
                        if self.partial.len() + chunk.len() > self.max.saturating_add(1) {
                            self.partial = Vec::new();
                            self.state = State::SkipLine;
                        } else {
                            self.partial.extend_from_slice(chunk);
                        }
                        chunk = &[];
                    }
                },
                State::SkipLine => match memchr(b'\n', chunk) {
                    Some(newline) => {
                        chunk = chunk.get(newline + 1..).unwrap_or_default();
                        on_frame(Frame::TooLong);
                        self.state = State::Start;
                    }
                    None => chunk = &[],
                },
            }
        }
    }

    /// The connection closed: hands out a last line without its newline,
    /// or notes a counted frame cut short.
    pub fn finish(&mut self, on_frame: &mut dyn FnMut(Frame<'_>)) {
        match self.state {
            State::Start | State::SkipCounted { .. } => {}
            State::Counted { .. } => on_frame(Frame::Truncated),
            State::Length | State::Line => self.end_line(&[], on_frame),
            State::SkipLine => on_frame(Frame::TooLong),
        }
        self.partial.clear();
        self.state = State::Start;
    }

    /// Completes the newline-ended frame gathered so far with `tail`.
    fn end_line(&mut self, tail: &[u8], on_frame: &mut dyn FnMut(Frame<'_>)) {
        let line = if self.partial.is_empty() {
            tail
        } else {
            self.partial.extend_from_slice(tail);
            &self.partial
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            on_frame(Frame::TooLong);
        } else if !line.is_empty() {
            on_frame(Frame::Message(line));
        }
        self.partial.clear();
        self.state = State::Start;
    }

    /// Bytes held for an unfinished frame (to check the bound in tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.partial.capacity()
    }
}

/// A counted message without the newline some senders count into it.
fn without_newline(message: &[u8]) -> &[u8] {
    let message = message.strip_suffix(b"\n").unwrap_or(message);
    message.strip_suffix(b"\r").unwrap_or(message)
}

/// MSG-LEN's value (at most [`MAX_LEN_DIGITS`] ASCII digits).
fn length(digits: &[u8]) -> usize {
    digits
        .iter()
        .fold(0, |n, d| n * 10 + usize::from(d.wrapping_sub(b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames of `input` read in chunks of `chunk` bytes, the stream
    /// closed after: messages as text, `TooLong` as `"<long>"`, `Truncated`
    /// as `"<cut>"`.
    fn frames(input: &[u8], chunk: usize, max: usize) -> Vec<String> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        let mut keep = |frame: Frame<'_>| {
            out.push(match frame {
                Frame::Message(m) => String::from_utf8_lossy(m).into_owned(),
                Frame::TooLong => "<long>".into(),
                Frame::Truncated => "<cut>".into(),
            })
        };
        for part in input.chunks(chunk.max(1)) {
            framer.feed(part, &mut keep);
        }
        framer.finish(&mut keep);
        out
    }

    /// Every chunking gives what one read gives.
    fn same_in_any_chunks(input: &[u8], max: usize) -> Vec<String> {
        let whole = frames(input, input.len().max(1), max);
        for chunk in [1, 2, 3, 5, 7, 16, 64] {
            assert_eq!(frames(input, chunk, max), whole, "chunks of {chunk}");
        }
        whole
    }

    #[test]
    fn octet_counted_frames() {
        let input = b"11 <13>1 - h a13 <13>hello\nyou5 <1>x 6 <1>y\r\n";
        assert_eq!(
            same_in_any_chunks(input, 100),
            ["<13>1 - h a", "<13>hello\nyou", "<1>x ", "<1>y"]
        );
    }

    #[test]
    fn newline_frames_with_crlf_blank_lines_and_a_last_unended_one() {
        let input = b"<13>Dec  5 01:02:03 mx1 postfix/smtpd[1]: a\r\n\n\r\n<13>b\n<14>last";
        assert_eq!(
            same_in_any_chunks(input, 100),
            [
                "<13>Dec  5 01:02:03 mx1 postfix/smtpd[1]: a",
                "<13>b",
                "<14>last"
            ]
        );
    }

    #[test]
    fn framing_may_change_at_every_frame() {
        let input = b"4 <1>a<2>b\n4 <3>c\n<4>d\n";
        assert_eq!(
            same_in_any_chunks(input, 100),
            ["<1>a", "<2>b", "<3>c", "<4>d"]
        );
    }

    #[test]
    fn digits_not_followed_by_a_space_begin_a_line() {
        let input = b"2026-12-05T01:02:03Z mx1 postfix/smtpd[1]: a\n1234567890123 x\n";
        assert_eq!(
            same_in_any_chunks(input, 100),
            [
                "2026-12-05T01:02:03Z mx1 postfix/smtpd[1]: a",
                "1234567890123 x"
            ]
        );
    }

    #[test]
    fn over_long_frames_are_skipped_and_counted_in_bounded_memory() {
        let mut input = b"19 <1>0123456789abcdef".to_vec();
        input.extend_from_slice(b"7 <1>fits");
        input.extend(std::iter::repeat_n(b'x', 50));
        input.extend_from_slice(b"\n<1>after\n");
        assert_eq!(
            same_in_any_chunks(&input, 10),
            ["<long>", "<1>fits", "<long>", "<1>after"]
        );
        let mut framer = Framer::new(1024);
        let mut seen = Vec::new();
        framer.feed(b"999999999 ", &mut |f| seen.push(f == Frame::TooLong));
        for _ in 0..100 {
            framer.feed(&[b'x'; 10_000], &mut |_| seen.push(false));
            assert!(
                framer.held() <= MAX_LEN_DIGITS + 1,
                "only its length is held"
            );
        }
        let mut line = Framer::new(1024);
        for _ in 0..100 {
            line.feed(&[b'y'; 10_000], &mut |_| {});
            assert!(line.held() <= 1025);
        }
        assert_eq!(seen, [true]);
    }

    #[test]
    fn a_counted_frame_cut_short_is_noted() {
        assert_eq!(same_in_any_chunks(b"4 <1>a10 <1>", 100), ["<1>a", "<cut>"]);
    }

    #[test]
    fn garbage_never_panics_and_stays_bounded() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut garbage = Vec::new();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let byte = (state >> 24) as u8;
            garbage.push(match byte % 5 {
                0 => b' ',
                1 => b'\n',
                2 => b'0' + byte % 10,
                _ => byte,
            });
        }
        same_in_any_chunks(&garbage, 40);
        let mut framer = Framer::new(40);
        let mut longest = 0;
        for part in garbage.chunks(7) {
            framer.feed(part, &mut |frame| {
                if let Frame::Message(m) = frame {
                    longest = longest.max(m.len());
                }
            });
        }
        assert!(longest <= 40, "{longest}");
    }
}
