//! Reading and parsing one input ahead, on threads of its own.
//!
//! Parsing is about half of a scan and the detectors the rest; on several
//! cores they overlap. Each input's thread reads its members one after the
//! other in [`lines::Block`]s of whole lines (at most [`BLOCK_BYTES`] and
//! [`BLOCK_LINES`] lines: 10 million empty lines fill blocks by count, not
//! by bytes), recognises the member's format with its own [`Recogniser`]
//! and parses each block in place, sending it, lines and events together
//! (a [`Yoke`] keeps the events borrowing the block's bytes), over a
//! channel of [`BLOCKS_IN_FLIGHT`]. Whoever takes the blocks ([`Incoming`])
//! settles them, in order: a line read on its own may still depend on the
//! lines before it ([`LineParser::settle`]), and a line without a time
//! takes that of the last dated line before it. When it has taken every
//! block sent, it would wait: the input's thread then sends the next block
//! unread, and the taker reads it while the input's thread reads the one
//! after, so the two share the reading when it is the slower of the two
//! (most of a Postfix log's time), and the input's thread reads alone while
//! the detectors are (most of a Kerio log's). A plain file is read by the input's
//! thread itself: a read from the page cache is a copy, cheaper than
//! handing the block to another thread, and the parser then finds the
//! bytes in its own core's cache. A member that takes work to read (a
//! compressed file, a journal) gets a reader thread of its own, which
//! reads [`READ_AHEAD`] blocks ahead. A big plain file is parsed on every
//! core once its format is known (see [`super::split`]). Memory stays
//! bounded whatever the input's size or shape.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailfuse_core::Timestamp;
use mailfuse_formats::{
    Carry, Detail, Format, LineParser, LocalZone, ParseContext, Parsed, Reading, Recogniser,
    Recognition,
};
use yoke::{Yoke, Yokeable};

use super::split;
use crate::source::lines::{self, Buffers, LineBlocks, Span, Spares};
use crate::source::{Member, MemberReader};

/// Bytes of lines read into a block. A block's memory goes round between
/// the two cores (the input's thread fills and parses it, the main thread
/// settles it and hands its lines to the detectors, then gives it back),
/// so the blocks in flight and their parsed lines (some 280 bytes a line)
/// had better stay in the cores' L2 caches beside the detectors' state:
/// four of 64 KiB (some 500 KB, parsed lines included) do; four of 256 KiB
/// (2 MB) went through the shared cache at every turn. On a 2-core Xeon
/// (2 MB of L2 a core), best of 5 alternately: the Kerio bench log in
/// 0.386 s against 0.434 s at 256 KiB (128 KiB: 0.406 s; 32 KiB: 0.389 s),
/// the Postfix one in 0.399 s against 0.433 s. Blocks are handed over
/// without waking a sleeping thread (see [`AWAKE_FOR_ROOM`]), so more of
/// them cost little; smaller blocks also take less memory at the peak of a
/// provider's scan.
pub(super) const BLOCK_BYTES: usize = 64 * 1024;
/// Lines in a block at most, however short: room for a block of 64-byte
/// lines (a block cut by its count leaves its read's tail to copy over).
pub(super) const BLOCK_LINES: usize = BLOCK_BYTES / 64;
/// Blocks parsed ahead of the detectors, per input.
const BLOCKS_IN_FLIGHT: usize = 4;
/// How long an input's thread ahead of the detectors waits awake for room
/// among its blocks in flight before it sleeps: the taker frees a place
/// within a block's time (a Kerio block's detectors take some 0.05 ms). A
/// sleeping sender costs the taker a system call to wake it and, in a VM,
/// an interrupt between cores: some 1,500 wake-ups a Kerio bench scan with
/// blocks of 256 KiB, and waiting awake scanned it 3-4 % faster. The thread
/// yields its core while it waits, to whatever else wants it.
const AWAKE_FOR_ROOM: Duration = Duration::from_millis(1);
/// Blocks read ahead of parsing, per member read on a thread of its own
/// (compressed, or a journal).
const READ_AHEAD: usize = 2;
/// What the report says of a file whose format no line showed.
const NOT_A_LOG: &str = "not a log format mailfuse knows; skipped";

/// One line and what its parser made of it.
pub struct ParsedLine<'a> {
    /// The line's time, or that of the last dated line before it.
    pub at: Timestamp,
    pub line: &'a [u8],
    /// What the parser read, written in place (see
    /// [`LineParser::read_into`]); its carry is what the line leaves to
    /// settle.
    reading: Reading<'a>,
}

impl<'a> ParsedLine<'a> {
    /// An unknown line, until read.
    fn unknown(at: Timestamp, line: &'a [u8]) -> Self {
        let reading = Reading {
            parsed: Parsed::Unknown,
            at: None,
            carry: Carry::default(),
        };
        ParsedLine { at, line, reading }
    }

    /// What the line means.
    pub fn parsed(&self) -> &Parsed<'a> {
        &self.reading.parsed
    }
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
    /// Where the block's memory goes back to once done with.
    spare: Spare,
    /// How its member's lines are parsed; none before its format showed.
    parsing: Option<Arc<Parsing>>,
    /// Its first lines that no dated line comes before in the block: they
    /// take the time of the last dated line before it, when settled.
    undated: usize,
}

impl Block {
    /// Marks the block's lines as read with `parsing`, to be settled so.
    pub(super) fn of_member(&mut self, parsing: &Arc<Parsing>) {
        self.parsing = Some(Arc::clone(parsing));
    }

    /// The format the lines were read in; none for lines before their
    /// member's format showed (all unknown).
    pub fn format(&self) -> Option<Format> {
        self.parsing.as_ref().map(|parsing| parsing.format)
    }

    /// Gives the block's buffer and vector of lines back for the next
    /// blocks of its input.
    pub fn recycle(mut self) {
        let lines = self
            .lines
            .with_mut_return(|lines| emptied(std::mem::take(&mut lines.0)));
        self.spare.lines.give_back(lines);
        self.spare.buffers.give_back(self.lines.into_backing_cart());
    }
}

/// The memory of an input's blocks done with, for its next blocks: the
/// byte buffers its reader reads into, the vectors its parser fills.
#[derive(Clone, Default)]
pub(super) struct Spare {
    pub(super) buffers: Buffers,
    /// Kept empty: no line outlives its block's bytes.
    lines: Spares<Vec<ParsedLine<'static>>>,
}

/// `lines` emptied, for lines of another block: its allocation is kept (a
/// collect from a vector's own iterator into elements of the same layout
/// reuses it), and as it holds no line, it can borrow any bytes.
#[expect(
    clippy::unnecessary_filter_map,
    reason = "a filter would keep the element type, and with it the old bytes' lifetime"
)]
fn emptied<'a, 'b>(lines: Vec<ParsedLine<'a>>) -> Vec<ParsedLine<'b>> {
    lines.into_iter().filter_map(|_| None).collect()
}

/// What the taker of an input's blocks gets from [`Incoming::recv`].
pub enum Ahead {
    /// Lines parsed and settled.
    Block(Block),
    /// The input ended; `errors` names what could not be read, and why.
    End {
        bytes_read: u64,
        errors: Vec<String>,
    },
}

/// What an input's thread sends: [`Ahead`], with blocks left to settle,
/// or left to read too.
enum Sent {
    Read(Block),
    Unread(Unread),
    End {
        bytes_read: u64,
        errors: Vec<String>,
    },
}

/// A block of lines cut but not read, sent while the taker would wait.
struct Unread {
    lines: lines::Block,
    /// Its first line of the member's format (those before are sent apart).
    from: usize,
    parsing: Arc<Parsing>,
    bytes_read: u64,
    spare: Spare,
}

/// The format of a member's lines and what its parsers need, from the line
/// its format showed in on: what a taker of its blocks reads and settles
/// them with.
pub(super) struct Parsing {
    pub(super) format: Format,
    pub(super) context: ParseContext,
}

impl Parsing {
    pub(super) fn parser(&self) -> Box<dyn LineParser> {
        self.format.parser(&self.context)
    }
}

/// The taking end of an input's blocks: reads those sent unread and
/// settles them all, in order (see the module's comment).
pub struct Incoming {
    receiver: Receiver<Sent>,
    /// Blocks sent and not yet taken (see [`Out::taker_waits`]).
    queued: Arc<AtomicUsize>,
    /// The time of the last dated line taken.
    at: Timestamp,
    /// The parsers of the member being taken.
    parsers: Option<MemberParsers>,
}

/// The parsers of a member, on the taking end.
struct MemberParsers {
    /// The member's, told apart by its address.
    parsing: Arc<Parsing>,
    /// The one that settles its lines (lent out while it does).
    settler: Option<Box<dyn LineParser>>,
    /// The one that reads its lines sent unread, once one was.
    reader: Option<Box<dyn LineParser>>,
}

impl Incoming {
    /// The next block, parsed and settled, or the input's end.
    pub fn recv(&mut self) -> Result<Ahead, RecvError> {
        let mut block = match self.receiver.recv()? {
            Sent::End { bytes_read, errors } => return Ok(Ahead::End { bytes_read, errors }),
            Sent::Read(block) => block,
            Sent::Unread(unread) => self.read(unread),
        };
        self.queued.fetch_sub(1, Ordering::Release);
        let settler = match &block.parsing {
            Some(parsing) => self.parsers_of(parsing).settler.take(),
            None => None,
        };
        let (settler, last) = settle(&mut block, settler, self.at);
        if let Some(parsers) = self.parsers.as_mut() {
            parsers.settler = parsers.settler.take().or(settler);
        }
        self.at = last.unwrap_or(self.at);
        Ok(Ahead::Block(block))
    }

    /// Reads the lines of `unread` with the member's reading parser.
    fn read(&mut self, unread: Unread) -> Block {
        let reader = self
            .parsers_of(&unread.parsing)
            .reader
            .get_or_insert_with(|| unread.parsing.parser());
        let mut block = parse(unread.lines, unread.from, Some(reader), &unread.spare);
        block.of_member(&unread.parsing);
        block.bytes_read = unread.bytes_read;
        block
    }

    /// The parsers of the member parsed as `parsing`: new ones for a new
    /// member.
    fn parsers_of(&mut self, parsing: &Arc<Parsing>) -> &mut MemberParsers {
        let parsers = match self.parsers.take() {
            Some(parsers) if Arc::ptr_eq(&parsers.parsing, parsing) => parsers,
            _ => MemberParsers {
                parsing: Arc::clone(parsing),
                settler: Some(parsing.parser()),
                reader: None,
            },
        };
        self.parsers.insert(parsers)
    }
}

/// How an input is read.
#[derive(Clone, Debug)]
pub struct Settings {
    pub zone: LocalZone,
    /// The year of yearless syslog stamps, instead of each member's
    /// modification time's.
    pub year: Option<i32>,
    pub max_line: usize,
    /// Plain files of at least this many bytes are parsed on every core.
    pub split_above: u64,
    /// How much of each line is read.
    pub detail: Detail,
}

/// Starts reading `members` on a thread of `scope`; their blocks arrive in
/// order at the returned end.
pub fn spawn<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    members: Vec<Member>,
    settings: Settings,
) -> Incoming {
    let (sender, receiver) = sync_channel(BLOCKS_IN_FLIGHT);
    let queued = Arc::new(AtomicUsize::new(0));
    let incoming = Incoming {
        receiver,
        queued: Arc::clone(&queued),
        at: Timestamp::default(),
        parsers: None,
    };
    scope.spawn(move || {
        let mut out = Out {
            sender,
            queued,
            bytes_before: 0,
            spare: Spare::default(),
        };
        let mut errors = Vec::new();
        let mut not_logs = Vec::new();
        let mut recognised = false;
        for mut member in members {
            match read_member(&mut member, &settings, &mut out) {
                Ok((Recognition::Known(_), _)) => recognised = true,
                Ok((_, 0)) => {}
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
        let _ = out.sender.send(Sent::End {
            bytes_read: out.bytes_before,
            errors,
        });
    });
    incoming
}

/// Why a member's reading stopped early.
pub(super) enum Stop {
    /// It could not be opened or read to its end.
    Problem(String),
    /// Nobody receives the blocks any more.
    Gone,
}

/// Where an input's parsed blocks go, and what goes on from one to the next.
pub(super) struct Out {
    sender: SyncSender<Sent>,
    /// Blocks sent and not yet taken.
    queued: Arc<AtomicUsize>,
    /// Bytes of the input's members before the current one.
    pub(super) bytes_before: u64,
    /// The memory of the input's blocks.
    pub(super) spare: Spare,
}

impl Out {
    /// Sends `block`, read up to `member_bytes` into the current member,
    /// unless it is empty.
    pub(super) fn send(&mut self, mut block: Block, member_bytes: u64) -> Result<(), Stop> {
        if block.lines.get().0.is_empty() && block.too_long == 0 {
            return Ok(());
        }
        block.bytes_read = self.bytes_before + member_bytes;
        self.send_any(Sent::Read(block))
    }

    /// Sends the lines of `lines` from `from` on, read up to `member_bytes`
    /// into the current member, for the taker to read with `parsing`.
    fn send_unread(
        &mut self,
        lines: lines::Block,
        from: usize,
        parsing: &Arc<Parsing>,
        member_bytes: u64,
    ) -> Result<(), Stop> {
        if lines.spans.len() <= from {
            return Ok(());
        }
        self.send_any(Sent::Unread(Unread {
            lines,
            from,
            parsing: Arc::clone(parsing),
            bytes_read: self.bytes_before + member_bytes,
            spare: self.spare.clone(),
        }))
    }

    /// Sends `sent`, waiting for room awake first (see [`AWAKE_FOR_ROOM`]).
    fn send_any(&mut self, mut sent: Sent) -> Result<(), Stop> {
        self.queued.fetch_add(1, Ordering::Release);
        let started = Instant::now();
        loop {
            match self.sender.try_send(sent) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(Stop::Gone),
                Err(TrySendError::Full(back)) => sent = back,
            }
            if started.elapsed() > AWAKE_FOR_ROOM {
                return self.sender.send(sent).map_err(|_| Stop::Gone);
            }
            std::thread::yield_now();
        }
    }

    /// Whether the taker has taken every block sent: it waits, or soon will,
    /// and had better read the next block itself.
    fn taker_waits(&self) -> bool {
        self.queued.load(Ordering::Acquire) == 0
    }
}

/// Reads one member into `out`; tells what its format turned out to be and
/// how many lines were looked at. A member judged not a log is left unread
/// after the lines looked at.
fn read_member(
    member: &mut Member,
    settings: &Settings,
    out: &mut Out,
) -> Result<(Recognition, u64), Stop> {
    let name = member.name();
    let mut reader = member.open(settings.max_line).map_err(|e| {
        Stop::Problem(format!(
            "{name}: cannot open: {}",
            crate::hint::unreadable(&e)
        ))
    })?;
    let context = ParseContext {
        zone: settings.zone.clone(),
        year_reference: match settings.year {
            Some(year) => year_end(year, &settings.zone),
            None => member.modified(),
        },
        detail: settings.detail,
    };
    let plain_file = reader.take_plain_file();
    let read_here = plain_file.is_some();
    // Split, from the line its format showed in on: a plain file big
    // enough to be worth it.
    let split_file = plain_file.filter(|file| {
        file.metadata()
            .is_ok_and(|m| m.len() >= settings.split_above)
    });
    let split = split_file.is_some();
    let mut member = MemberRead {
        recogniser: Recogniser::default(),
        parser: None,
        lines: 0,
        bytes: 0,
    };
    let (max_line, buffers) = (settings.max_line, out.spare.buffers.clone());
    let (problem, split_at) = if read_here {
        read_blocks(reader, max_line, buffers, |blocks| {
            member.take(blocks, &context, split, out)
        })
    } else {
        std::thread::scope(|scope| {
            let (sender, receiver) = sync_channel(READ_AHEAD);
            let reading = scope.spawn(move || {
                read_blocks(reader, max_line, buffers, |blocks| {
                    for block in blocks {
                        if sender.send(block).is_err() {
                            break; // nobody receives
                        }
                    }
                })
                .0
            });
            let split_at = member.take(&receiver, &context, split, out);
            // Stops the reading thread, if it is still reading.
            drop(receiver);
            let problem = reading.join().unwrap_or_else(|_| {
                Some(format!("{name}: the reading thread stopped unexpectedly"))
            });
            (problem, split_at)
        })
    };
    let recognition = member.recogniser.state();
    let done = match (split_at, split_file, recognition) {
        (Ok(Some(from)), Some(file), Recognition::Known(format)) => {
            let rest = split::Rest {
                file: &file,
                name: &name,
                from,
            };
            let parsing = Arc::new(Parsing { format, context });
            split::read(&rest, &parsing, settings, out, &mut member.bytes)
        }
        (Ok(_), _, _) => problem.map_or(Ok(()), |problem| Err(Stop::Problem(problem))),
        (Err(stop), _, _) => Err(stop),
    };
    out.bytes_before += member.bytes;
    done.map(|()| (recognition, member.lines))
}

/// Hands `take` the blocks of whole lines of `reader`, up to its end or a
/// problem; that problem, if any, and what `take` returned.
fn read_blocks<R>(
    mut reader: MemberReader,
    max_line: usize,
    buffers: Buffers,
    take: impl FnOnce(&mut dyn Iterator<Item = lines::Block>) -> R,
) -> (Option<String>, R) {
    let mut blocks = LineBlocks::new(max_line, BLOCK_BYTES, BLOCK_LINES, buffers);
    let mut problem = None;
    let mut read = |buf: &mut [u8]| match reader.read(buf) {
        Ok(n) => n,
        Err(e) => {
            problem = Some(e);
            0
        }
    };
    let taken = take(&mut std::iter::from_fn(|| blocks.next(&mut read)));
    (problem, taken)
}

/// One member being parsed, block after block.
struct MemberRead {
    recogniser: Recogniser,
    /// The member's format and parser, once its format showed.
    parser: Option<(Arc<Parsing>, Box<dyn LineParser>)>,
    /// Lines (kept or too long) looked at.
    lines: u64,
    /// Bytes of the member read.
    bytes: u64,
}

/// How far into a block the recogniser looked.
enum Looked {
    /// Its format showed in the line at this index.
    Known(usize, Format),
    /// Every line, in vain.
    Undecided,
    /// The lines up to this index: the member is not a log.
    NotALog(usize),
}

impl MemberRead {
    /// Recognises and parses `blocks` into `out`. When
    /// `split` (the member can be read in pieces) and the format shows,
    /// stops there and tells the offset of the line it showed in.
    fn take(
        &mut self,
        blocks: impl IntoIterator<Item = lines::Block>,
        context: &ParseContext,
        split: bool,
        out: &mut Out,
    ) -> Result<Option<u64>, Stop> {
        for mut block in blocks {
            let end = block.offset + block.text.len() as u64;
            let mut from = 0;
            if self.parser.is_none() {
                let format = match self.recognise(&block) {
                    Looked::Known(at, format) => {
                        from = at;
                        format
                    }
                    Looked::Undecided => {
                        self.bytes = end;
                        self.send(block, 0, out)?;
                        continue;
                    }
                    Looked::NotALog(last) => {
                        // The rest of the member is not counted, nor read.
                        block.spans.truncate(last + 1);
                        self.bytes = end;
                        return self.send(block, 0, out).map(|()| None);
                    }
                };
                // The line the format showed in starts here.
                let start = match block.spans.get(from) {
                    Some(Span::Line(range)) => range.start,
                    _ => block.text.len(),
                };
                if from > 0 {
                    // The lines before it are unknown, in a block of their
                    // own (`format: None`).
                    let before = lines::Block {
                        text: block.text.get(..start).unwrap_or_default().to_vec(),
                        spans: block.spans.get(..from).unwrap_or_default().to_vec(),
                        offset: block.offset,
                    };
                    self.bytes = block.offset + start as u64;
                    self.send(before, 0, out)?;
                }
                if split {
                    // The rest is read in pieces, from that line on.
                    return Ok(Some(block.offset + start as u64));
                }
                let parsing = Arc::new(Parsing {
                    format,
                    context: context.clone(),
                });
                let parser = parsing.parser();
                self.parser = Some((parsing, parser));
            }
            self.bytes = end;
            self.send(block, from, out)?;
        }
        Ok(None)
    }

    /// Reads the lines of `block` from `from` on with the member's parser
    /// (unknown before the format showed) and sends them; or sends them
    /// unread, when the taker would otherwise wait.
    fn send(&mut self, block: lines::Block, from: usize, out: &mut Out) -> Result<(), Stop> {
        let (parsing, parser) = match self.parser.as_mut() {
            Some((parsing, _)) if out.taker_waits() => {
                return out.send_unread(block, from, parsing, self.bytes);
            }
            Some((parsing, parser)) => (Some(parsing), Some(parser)),
            None => (None, None),
        };
        let mut parsed = parse(block, from, parser, &out.spare);
        if let Some(parsing) = parsing {
            parsed.of_member(parsing);
        }
        out.send(parsed, self.bytes)
    }

    /// Feeds the recogniser the lines of `block` while it is undecided.
    fn recognise(&mut self, block: &lines::Block) -> Looked {
        for (i, span) in block.spans.iter().enumerate() {
            let state = match block.piece(span) {
                lines::Piece::TooLong => self.recogniser.feed_too_long(),
                lines::Piece::Line(line) => self.recogniser.feed(line),
            };
            self.lines += 1;
            match state {
                Recognition::Known(format) => return Looked::Known(i, format),
                Recognition::NotALog => return Looked::NotALog(i),
                Recognition::Undecided => {}
            }
        }
        Looked::Undecided
    }
}

/// The last second of `year` on the log's wall clock (`--year`): as a
/// year reference it dates every yearless stamp in `year`.
fn year_end(year: i32, zone: &LocalZone) -> Option<Timestamp> {
    Some(zone.to_utc(Timestamp::from_civil(year, 12, 31, 23, 59, 59)?))
}

/// Reads the lines of `block` from `from` on (all unknown without a
/// parser), each on its own: [`settle`] completes them. A line takes the
/// time of the last dated line before it in the block; the block's
/// `undated` counts those before its first dated line.
pub(super) fn parse(
    block: lines::Block,
    from: usize,
    mut parser: Option<&mut Box<dyn LineParser>>,
    spare: &Spare,
) -> Block {
    let mut too_long = 0;
    let mut undated = 0;
    let mut at = None;
    let lines::Block { text, spans, .. } = block;
    let spans = spans.get(from..).unwrap_or_default();
    // One too small is let go: growing it would copy its old bytes (and
    // double it).
    let kept = spare
        .lines
        .take()
        .filter(|kept| kept.capacity() >= spans.len());
    let lines = Yoke::attach_to_cart(text, |text| {
        let mut lines = match kept {
            Some(kept) => emptied(kept),
            None => Vec::with_capacity(spans.len()),
        };
        for span in spans {
            let Span::Line(range) = span else {
                too_long += 1;
                continue;
            };
            let line = text.get(range.clone()).unwrap_or_default();
            lines.push(ParsedLine::unknown(at.unwrap_or_default(), line));
            let (Some(parser), Some(parsed)) = (parser.as_deref_mut(), lines.last_mut()) else {
                undated += usize::from(at.is_none());
                continue;
            };
            // Read in its place in the vector: no copy of the reading.
            let reading = &mut parsed.reading;
            parser.read_into(line, reading);
            // An event carries its time.
            let stamp = match &reading.parsed {
                Parsed::Event(event) => Some(event.at()),
                _ => reading.at,
            };
            if stamp.is_some() {
                at = stamp;
            }
            undated += usize::from(at.is_none());
            parsed.at = at.unwrap_or_default();
        }
        ParsedLines(lines)
    });
    Block {
        lines,
        too_long,
        bytes_read: 0,
        spare: spare.clone(),
        parsing: None,
        undated,
    }
}

/// Settles the lines of `block`, in order after those of the blocks before,
/// with `parser` (see [`LineParser::settle`]; none for lines of no known
/// format); its undated first lines take the time `at` of the last dated
/// line before them. Tells the time of the block's last line.
/// Gives the parser back (taken by value: nothing borrowed may enter the
/// block's lines).
fn settle(
    block: &mut Block,
    mut parser: Option<Box<dyn LineParser>>,
    at: Timestamp,
) -> (Option<Box<dyn LineParser>>, Option<Timestamp>) {
    let undated = block.undated;
    block.lines.with_mut_return(move |lines| {
        for line in lines.0.iter_mut().take(undated) {
            line.at = at;
        }
        if let Some(parser) = parser.as_mut().filter(|parser| parser.settles()) {
            for line in &mut lines.0 {
                parser.settle(&mut line.reading.parsed, line.reading.carry);
            }
        }
        (parser, lines.0.last().map(|line| line.at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of `text`'s lines, as the reader cuts them.
    fn raw_block(text: &[u8], buffers: &Buffers) -> lines::Block {
        let mut blocks = LineBlocks::new(1024, 4096, 64, buffers.clone());
        let mut rest = text;
        let block = blocks.next(|buf: &mut [u8]| {
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            n
        });
        block.unwrap()
    }

    /// What a parsed block holds: each line's bytes and outcome.
    fn lines_of(block: &Block) -> Vec<(Vec<u8>, String)> {
        let lines = &block.lines.get().0;
        lines
            .iter()
            .map(|l| (l.line.to_vec(), format!("{:?}", l.parsed())))
            .collect()
    }

    /// Every line of `text` and what it means, with its time, taken from
    /// an [`Incoming`] sent blocks of at most `lines_a_block` lines, each
    /// read by the input's side or sent unread as `unread` says.
    fn taken(text: &[u8], lines_a_block: usize, unread: impl Fn(usize) -> bool) -> Vec<String> {
        let (sender, receiver) = sync_channel(1024);
        let queued = Arc::new(AtomicUsize::new(0));
        let mut incoming = Incoming {
            receiver,
            queued: Arc::clone(&queued),
            at: Timestamp::default(),
            parsers: None,
        };
        let mut out = Out {
            sender,
            queued,
            bytes_before: 0,
            spare: Spare::default(),
        };
        let context = ParseContext {
            zone: LocalZone::parse("UTC").unwrap(),
            year_reference: Timestamp::from_civil(2026, 12, 1, 0, 0, 0),
            detail: Detail::Whole,
        };
        let parsing = Arc::new(Parsing {
            format: Format::Syslog,
            context,
        });
        let mut parser = parsing.parser();
        let mut blocks = LineBlocks::new(1024, 1 << 20, lines_a_block, Buffers::default());
        let mut rest = text;
        let mut read = |buf: &mut [u8]| {
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            n
        };
        let mut i = 0;
        while let Some(block) = blocks.next(&mut read) {
            if unread(i) {
                out.send_unread(block, 0, &parsing, 0).ok().unwrap();
            } else {
                let mut parsed = parse(block, 0, Some(&mut parser), &out.spare);
                parsed.of_member(&parsing);
                out.send(parsed, 0).ok().unwrap();
            }
            i += 1;
        }
        drop(out);
        let mut got = Vec::new();
        while let Ok(Ahead::Block(block)) = incoming.recv() {
            for line in &block.lines.get().0 {
                let line_text = String::from_utf8_lossy(line.line);
                got.push(format!("{line_text} @{:?} {:?}", line.at, line.parsed()));
            }
            block.recycle();
        }
        assert_eq!(incoming.queued.load(Ordering::Relaxed), 0);
        got
    }

    #[test]
    fn blocks_read_by_either_side_settle_as_one_reading() {
        // Lines whose meaning or time depends on the lines before: repeat
        // notices, an undated line, a disconnect after a client's failure.
        let text = b"\
Nov 22 21:46:40 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<sales@example.test>, method=PLAIN, rip=203.0.113.66, lip=192.0.2.1, session=<u3NqWx4A>
Nov 22 21:47:20 mail last message repeated 5 times
not a syslog line
Nov 22 21:46:48 mail postfix/submission/smtpd[7148]: connect from unknown[127.66.6.6]
Nov 22 21:46:48 mail postfix/submission/smtpd[7148]: warning: unknown[127.66.6.6]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=sales@example.test
Nov 22 21:47:20 mail last message repeated 2 times
Nov 22 21:48:01 mail postfix/submission/smtpd[7148]: disconnect from unknown[127.66.6.6] ehlo=1 auth=0/3 quit=1 commands=2/4
Nov 22 21:48:02 mail postfix/qmgr[7]: 4F1A2B: removed
";
        let mut parser = Format::Syslog.parser(&ParseContext {
            zone: LocalZone::parse("UTC").unwrap(),
            year_reference: Timestamp::from_civil(2026, 12, 1, 0, 0, 0),
            detail: Detail::Whole,
        });
        let mut at = Timestamp::default();
        let expected: Vec<String> = text
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                let parsed = parser.parse(line);
                at = match &parsed {
                    Parsed::Event(event) => event.at(),
                    _ => parser.timestamp(line).unwrap_or(at),
                };
                format!("{} @{at:?} {parsed:?}", String::from_utf8_lossy(line))
            })
            .collect();
        assert!(expected.iter().any(|line| line.contains("attempts: 5")));
        for lines_a_block in [1, 2, 3, 8] {
            for mix in 0..16 {
                let unread = |i: usize| mix & (1 << (i % 4)) != 0;
                assert_eq!(
                    taken(text, lines_a_block, unread),
                    expected,
                    "{lines_a_block} lines a block, mix {mix:04b}"
                );
            }
        }
    }

    #[test]
    fn a_recycled_block_lends_its_memory_to_the_next_without_its_lines() {
        let spare = Spare::default();
        let context = ParseContext::default();
        let mut parser = Format::Syslog.parser(&context);
        let first = raw_block(b"one\ntwo\nthree\n", &spare.buffers);
        let block = parse(first, 0, Some(&mut parser), &spare);
        assert_eq!(lines_of(&block).len(), 3);
        let vector = block.lines.get().0.as_ptr() as usize;
        block.recycle();
        let kept = spare.lines.take().unwrap();
        assert!(kept.is_empty() && kept.capacity() >= 3);
        spare.lines.give_back(kept);

        let removed = b"2026-01-02T03:04:05+00:00 mail postfix/qmgr[7]: 4F1A2B: removed";
        let mut text = b"four\n".to_vec();
        text.extend_from_slice(removed);
        let second = raw_block(&text, &spare.buffers);
        let block = parse(second, 0, Some(&mut parser), &spare);
        // The same vector, holding only the new block's lines, which
        // borrow the new block's bytes, each read in its slot.
        assert_eq!(block.lines.get().0.as_ptr() as usize, vector);
        let got = lines_of(&block);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (b"four".to_vec(), format!("{:?}", Parsed::Unknown)));
        assert_eq!(got[1].0, removed);
        assert!(got[1].1.starts_with("Event(Removed"), "{}", got[1].1);
        let stamp = Timestamp::from_civil(2026, 1, 2, 3, 4, 5);
        assert_eq!(block.lines.get().0.get(1).map(|l| l.at), stamp);
        block.recycle();
    }
}
