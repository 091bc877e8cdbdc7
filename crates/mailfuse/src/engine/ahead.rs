//! Reading and parsing one input ahead, on its own thread.
//!
//! Parsing is about a third of a scan and the detectors the rest; on two
//! cores they overlap. Each input's thread reads its members one after the
//! other, cuts them into lines with the shared splitter, recognises each
//! member's format with its own [`Recogniser`], copies the lines into a block
//! of at most [`BLOCK_BYTES`] and [`BLOCK_LINES`] lines, parses the block and
//! sends it, lines and events together (a [`Yoke`] keeps the events
//! borrowing the block's bytes), over a channel of [`BLOCKS_IN_FLIGHT`]:
//! memory stays bounded whatever the input's size or shape (10 million
//! empty lines fill blocks by count, not by bytes).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use mailfuse_core::Timestamp;
use mailfuse_formats::{
    Format, LineParser, LocalZone, ParseContext, Parsed, Recogniser, Recognition,
};
use yoke::{Yoke, Yokeable};

use crate::source::lines::{LineSplitter, Piece};
use crate::source::Member;

/// Bytes of lines gathered before a block is parsed and sent.
const BLOCK_BYTES: usize = 512 * 1024;
/// Lines gathered before a block is parsed and sent, however short.
const BLOCK_LINES: usize = 8 * 1024;
/// Blocks parsed ahead of the detectors, per input.
const BLOCKS_IN_FLIGHT: usize = 4;
/// Bytes read from a member at a time.
const READ_CHUNK: usize = 64 * 1024;
/// What the report says of a file whose format no line showed.
const NOT_A_LOG: &str = "not a log format mailfuse knows; skipped";

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
    /// The format the lines were read in; none for lines before their
    /// member's format showed (all unknown).
    pub format: Option<Format>,
    /// Lines over the length limit, skipped unread, in this block's stretch.
    pub too_long: u64,
    /// Bytes read from the input so far.
    pub bytes_read: u64,
}

/// What an input's thread sends.
pub enum Ahead {
    Block(Block),
    /// The input ended; `errors` names what could not be read, and why.
    End {
        bytes_read: u64,
        errors: Vec<String>,
    },
}

/// Starts reading `members` on a thread of `scope`; their blocks arrive in
/// order on the returned channel.
pub fn spawn<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    members: Vec<Member>,
    zone: LocalZone,
    year: Option<i32>,
    max_line: usize,
) -> Receiver<Ahead> {
    let (sender, receiver) = sync_channel(BLOCKS_IN_FLIGHT);
    scope.spawn(move || {
        let mut blocks = Blocks::new(sender);
        let mut errors = Vec::new();
        let mut not_logs = Vec::new();
        let mut recognised = false;
        for mut member in members {
            match read_member(&mut member, &zone, year, max_line, &mut blocks) {
                Ok(Recognition::Known(_)) => recognised = true,
                Ok(_) if blocks.member_lines == 0 => {}
                Ok(_) => not_logs.push(member.name()),
                Err(Stop::Problem(problem)) => errors.push(problem),
                Err(Stop::Gone) => return,
            }
        }
        if recognised {
            let skipped = not_logs.iter().map(|name| format!("{name}: {NOT_A_LOG}"));
            errors.extend(skipped);
        } else if !not_logs.is_empty() {
            // Nothing of the input was read: one word for all of it.
            errors.push(NOT_A_LOG.to_string());
        }
        // The receiver may be gone: nothing is waiting for the end then.
        let _ = blocks.sender.send(Ahead::End {
            bytes_read: blocks.bytes_read,
            errors,
        });
    });
    receiver
}

/// Why a member's reading stopped early.
enum Stop {
    /// It could not be opened or read to its end.
    Problem(String),
    /// Nobody receives the blocks any more.
    Gone,
}

/// Reads one member into `blocks`; tells what its format turned out to be.
/// A member judged not a log is left unread after the lines looked at.
fn read_member(
    member: &mut Member,
    zone: &LocalZone,
    year: Option<i32>,
    max_line: usize,
    blocks: &mut Blocks,
) -> Result<Recognition, Stop> {
    blocks.start_member();
    let mut reader = member
        .open()
        .map_err(|e| Stop::Problem(format!("{}: cannot open: {e}", member.name())))?;
    let context = ParseContext {
        zone: zone.clone(),
        year_reference: match year {
            Some(year) => year_end(year, zone),
            None => member.modified(),
        },
    };
    let mut recogniser = Recogniser::default();
    let mut splitter = LineSplitter::new(max_line);
    let mut buf = vec![0; READ_CHUNK];
    let mut problem = None;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                problem = Some(e);
                break;
            }
        };
        blocks.bytes_read += n as u64;
        let chunk = buf.get(..n).unwrap_or_default();
        splitter.feed(chunk, &mut |piece| {
            blocks.take(piece, &mut recogniser, &context)
        });
        if blocks.gone {
            return Err(Stop::Gone);
        }
        if recogniser.state() == Recognition::NotALog {
            break;
        }
    }
    splitter.finish(&mut |piece| blocks.take(piece, &mut recogniser, &context));
    // The next member has its own format and parser.
    if !blocks.flush() {
        return Err(Stop::Gone);
    }
    blocks.parser = None;
    match problem {
        Some(problem) => Err(Stop::Problem(problem)),
        None => Ok(recogniser.state()),
    }
}

/// The last second of `year` on the log's wall clock (`--year`): as a
/// year reference it dates every yearless stamp in `year`.
fn year_end(year: i32, zone: &LocalZone) -> Option<Timestamp> {
    Some(zone.to_utc(Timestamp::from_civil(year, 12, 31, 23, 59, 59)?))
}

/// The block being gathered, and where it goes.
struct Blocks {
    sender: SyncSender<Ahead>,
    text: Vec<u8>,
    ends: Vec<usize>,
    too_long: u64,
    /// The parser of the current member, once its format showed.
    parser: Option<(Format, Box<dyn LineParser>)>,
    /// The time of the last dated line.
    at: Timestamp,
    bytes_read: u64,
    /// Lines (kept or too long) of the current member.
    member_lines: u64,
    gone: bool,
}

impl Blocks {
    fn new(sender: SyncSender<Ahead>) -> Self {
        Blocks {
            sender,
            text: Vec::with_capacity(BLOCK_BYTES),
            ends: Vec::new(),
            too_long: 0,
            parser: None,
            at: Timestamp::default(),
            bytes_read: 0,
            member_lines: 0,
            gone: false,
        }
    }

    fn start_member(&mut self) {
        self.member_lines = 0;
    }

    /// Takes the splitter's next piece: recognised, kept, counted.
    fn take(&mut self, piece: Piece<'_>, recogniser: &mut Recogniser, context: &ParseContext) {
        if self.gone || recogniser.state() == Recognition::NotALog {
            // Judged not a log: the rest of the member is not counted.
            return;
        }
        self.member_lines += 1;
        let line = match piece {
            Piece::TooLong => {
                recogniser.feed_too_long();
                self.too_long += 1;
                return;
            }
            Piece::Line(line) => line,
        };
        if self.parser.is_none() {
            if let Recognition::Known(format) = recogniser.feed(line) {
                // The lines before are parsed as unknown, this one and the
                // next ones by the format's parser.
                self.flush();
                self.parser = Some((format, format.parser(context)));
            }
        }
        self.text.extend_from_slice(line);
        self.ends.push(self.text.len());
        if self.text.len() >= BLOCK_BYTES || self.ends.len() >= BLOCK_LINES {
            self.flush();
        }
    }

    /// Parses and sends the block gathered so far, if any; false once the
    /// receiver is gone.
    fn flush(&mut self) -> bool {
        if self.gone {
            return false;
        }
        if self.ends.is_empty() && self.too_long == 0 {
            return true;
        }
        let text = std::mem::replace(&mut self.text, Vec::with_capacity(BLOCK_BYTES));
        let format = self.parser.as_ref().map(|(format, _)| *format);
        let Blocks {
            ends, parser, at, ..
        } = self;
        let parser = parser.as_mut().map(|(_, parser)| parser);
        let lines = Yoke::attach_to_cart(text, |text| parse_block(text, ends, parser, at));
        let block = Block {
            lines,
            format,
            too_long: std::mem::take(&mut self.too_long),
            bytes_read: self.bytes_read,
        };
        self.ends.clear();
        self.gone = self.sender.send(Ahead::Block(block)).is_err();
        !self.gone
    }
}

/// Parses the lines of `text` that end at `ends` (all unknown without a
/// parser).
fn parse_block<'a>(
    text: &'a [u8],
    ends: &[usize],
    mut parser: Option<&mut Box<dyn LineParser>>,
    at: &mut Timestamp,
) -> ParsedLines<'a> {
    let mut start = 0;
    let lines = ends
        .iter()
        .map(|&end| {
            let line = text.get(start..end).unwrap_or_default();
            start = end;
            let Some(parser) = parser.as_deref_mut() else {
                return ParsedLine {
                    at: *at,
                    line,
                    parsed: Parsed::Unknown,
                };
            };
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
