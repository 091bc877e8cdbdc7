//! Reading and parsing one input ahead, on its own thread.
//!
//! Parsing is about a third of a scan and the detectors the rest; on two
//! cores they overlap. Each input's thread reads lines, copies them into a
//! block of about [`BLOCK_BYTES`], parses the block and sends it, lines and
//! events together (a [`Yoke`] keeps the events borrowing the block's bytes),
//! over a channel of [`BLOCKS_IN_FLIGHT`]: memory stays bounded however
//! large the input.

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use mailfuse_core::Timestamp;
use mailfuse_formats::{LineParser, Parsed};
use yoke::{Yoke, Yokeable};

use crate::source::lines::{Advance, LineReader};

/// Bytes of lines gathered before a block is parsed and sent.
const BLOCK_BYTES: usize = 512 * 1024;
/// Blocks parsed ahead of the detectors, per input.
const BLOCKS_IN_FLIGHT: usize = 4;

/// One line and what its parser made of it.
pub struct ParsedLine<'a> {
    /// The line's time, or that of the last dated line before it.
    pub at: Timestamp,
    pub line: &'a [u8],
    pub parsed: Parsed<'a>,
}

/// The parsed lines of one block, borrowing the block's bytes.
#[derive(Yokeable)]
pub struct ParsedLines<'a>(pub Vec<ParsedLine<'a>>);

/// A block of lines parsed ahead, with what reading it counted.
pub struct Block {
    pub lines: Yoke<ParsedLines<'static>, Vec<u8>>,
    /// Lines over the length limit, skipped unread, in this block's stretch.
    pub too_long: u64,
    /// Bytes read from the input so far.
    pub bytes_read: u64,
}

/// What an input's thread sends.
pub enum Ahead {
    Block(Block),
    /// The input ended, cleanly or with a read error.
    End {
        bytes_read: u64,
        error: Option<String>,
    },
}

/// Starts reading `input` with `parser` on a thread of `scope`; its blocks
/// arrive in order on the returned channel.
pub fn spawn<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    input: Box<dyn Read + Send>,
    parser: Box<dyn LineParser>,
    max_line: usize,
) -> Receiver<Ahead> {
    let (sender, receiver) = sync_channel(BLOCKS_IN_FLIGHT);
    scope.spawn(move || read_ahead(LineReader::new(input, max_line), parser, &sender));
    receiver
}

/// The thread's loop. It stops early, quietly, when the receiver is gone.
fn read_ahead(
    mut lines: LineReader<Box<dyn Read + Send>>,
    mut parser: Box<dyn LineParser>,
    sender: &SyncSender<Ahead>,
) {
    let mut text = Vec::with_capacity(BLOCK_BYTES);
    let mut ends = Vec::new();
    let mut too_long = 0;
    let mut at = Timestamp::default();
    let mut send_block = |text: &mut Vec<u8>,
                          ends: &mut Vec<usize>,
                          too_long: &mut u64,
                          bytes_read: u64,
                          at: &mut Timestamp| {
        let text = std::mem::replace(text, Vec::with_capacity(BLOCK_BYTES));
        let block = Block {
            lines: Yoke::attach_to_cart(text, |text| parse_block(text, ends, &mut *parser, at)),
            too_long: std::mem::take(too_long),
            bytes_read,
        };
        ends.clear();
        sender.send(Ahead::Block(block)).is_ok()
    };
    let error = loop {
        match lines.advance() {
            Ok(Advance::Line) => {
                text.extend_from_slice(lines.current());
                ends.push(text.len());
                if text.len() >= BLOCK_BYTES
                    && !send_block(
                        &mut text,
                        &mut ends,
                        &mut too_long,
                        lines.bytes_read(),
                        &mut at,
                    )
                {
                    return;
                }
            }
            Ok(Advance::TooLong(_)) => too_long += 1,
            Ok(Advance::End) => break None,
            Err(e) => break Some(e),
        }
    };
    let bytes_read = lines.bytes_read();
    if (!ends.is_empty() || too_long > 0)
        && !send_block(&mut text, &mut ends, &mut too_long, bytes_read, &mut at)
    {
        return;
    }
    let error = error.map(|e| format!("read error after {bytes_read} bytes: {e}"));
    // The receiver may be gone: nothing is waiting for the end then.
    let _ = sender.send(Ahead::End { bytes_read, error });
}

/// Parses the lines of `text` that end at `ends`.
fn parse_block<'a>(
    text: &'a [u8],
    ends: &[usize],
    parser: &mut dyn LineParser,
    at: &mut Timestamp,
) -> ParsedLines<'a> {
    let mut start = 0;
    let lines = ends
        .iter()
        .map(|&end| {
            let line = text.get(start..end).unwrap_or_default();
            start = end;
            let parsed = parser.parse(line);
            // An event carries its time: read the stamp again only for
            // the other lines.
            let stamp = match &parsed {
                Parsed::Event(event) => Some(event.at()),
                _ => parser.timestamp(line),
            };
            if let Some(stamp) = stamp {
                *at = stamp;
            }
            ParsedLine {
                at: *at,
                line,
                parsed,
            }
        })
        .collect();
    ParsedLines(lines)
}
