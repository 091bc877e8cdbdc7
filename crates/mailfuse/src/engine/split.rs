//! One big plain file parsed on every core.
//!
//! Once a file's format shows (see `ahead.rs`), the rest of it, from that
//! line on, is cut into ranges of [`RANGE_BYTES`]; range `i` goes to worker
//! `i mod n`, one worker per core but the detectors' (two at least). A
//! range holds the lines that start in it:
//! its first line starts after the first newline at or after its first byte
//! less one, its last line ends at the first newline at or after its end, so
//! every line is in one range. A worker reads its range in blocks (the
//! shared line rule, over-long lines skipped and counted) and parses them
//! with a parser of its own, which only [reads](mailfuse_formats::LineParser::read) each line.
//! The input's thread takes the blocks in file order, range after range,
//! and hands them on to be [settled](mailfuse_formats::LineParser::settle) like every block
//! (see `ahead.rs`): the same lines, events and counts as reading the file
//! in one piece. A worker is at most a range ([`RANGE_BLOCKS`] blocks)
//! ahead, so memory stays bounded by the number of cores. By default
//! only with two cores or more to spare ([`split_above`]).

use std::fs::File;
use std::num::NonZeroUsize;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use memchr::memchr;

use super::ahead::{self, Block, Out, Parsing, Settings, Spare, Stop, BLOCK_BYTES, BLOCK_LINES};
use crate::source::lines::LineBlocks;
use crate::source::read_at;

/// Plain files at least this big are parsed on every core, when there are
/// cores to spare (see [`split_above`]).
const SPLIT_ABOVE: u64 = 16 * 1024 * 1024;
/// Blocks of a range: enough that finding a range's first line (a read of
/// up to [`SEEK_CHUNK`]) costs little beside reading it.
const RANGE_BLOCKS: usize = 16;
/// Bytes of a range at most. A worker may parse a whole range ahead of its
/// turn (its channel holds [`RANGE_BLOCKS`]): the others' ranges are taken
/// meanwhile. A lower split size (the tests') makes ranges that small.
const RANGE_BYTES: u64 = (RANGE_BLOCKS * BLOCK_BYTES) as u64;
/// Workers for one file at most.
const MAX_WORKERS: usize = 8;
/// Bytes read at a time looking for a range's first line.
const SEEK_CHUNK: usize = 64 * 1024;

/// The rest of a plain file, to be read in ranges.
pub(super) struct Rest<'a> {
    pub file: &'a File,
    /// The member's name, for problems.
    pub name: &'a str,
    /// Where the line its format showed in starts.
    pub from: u64,
}

/// The size from which plain files are split by default: [`SPLIT_ABOVE`]
/// with two cores or more to spare, else none. The detectors take a core
/// of their own, and on two cores one thread already parses while they
/// run: more parsing threads would only take turns with them.
pub fn split_above() -> u64 {
    if spare_cores() >= 2 {
        SPLIT_ABOVE
    } else {
        u64::MAX
    }
}

/// Cores besides the one the detectors run on.
fn spare_cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get) - 1
}

/// What every worker needs to read its ranges.
struct Job<'a> {
    rest: &'a Rest<'a>,
    parsing: &'a Arc<Parsing>,
    max_line: usize,
    spare: Spare,
}

/// What a worker sends of a range.
enum FromRange {
    /// A block read apart, and the offset just past it.
    Block { block: Block, end: u64 },
    /// The range ended at this offset, or could not be read.
    End(Result<u64, String>),
}

/// Reads `rest` of a file in `format` on every core into `out`; `bytes`
/// follows the offset read up to.
pub(super) fn read(
    rest: &Rest<'_>,
    parsing: &Arc<Parsing>,
    settings: &Settings,
    out: &mut Out,
    bytes: &mut u64,
) -> Result<(), Stop> {
    let len = rest.file.metadata().map_or(0, |meta| meta.len());
    let range_bytes = RANGE_BYTES.min(settings.split_above).max(1);
    let starts: Vec<u64> = (rest.from..len.max(rest.from + 1))
        .step_by(usize::try_from(range_bytes).unwrap_or(usize::MAX))
        .collect();
    let workers = spare_cores().clamp(2, MAX_WORKERS).min(starts.len());
    let job = Job {
        rest,
        parsing,
        max_line: settings.max_line,
        spare: out.spare.clone(),
    };
    let job = &job;
    std::thread::scope(|scope| {
        let receivers: Vec<_> = (0..workers)
            .map(|worker| {
                let (sender, receiver) = sync_channel(RANGE_BLOCKS);
                let starts = &starts;
                scope.spawn(move || {
                    for i in (worker..starts.len()).step_by(workers) {
                        let start = starts.get(i).copied().unwrap_or(rest.from);
                        let end = starts.get(i + 1).copied().unwrap_or(u64::MAX);
                        let range = Range {
                            start,
                            end,
                            first: i == 0,
                        };
                        if range.read(job, &sender).is_err() {
                            // Nobody receives any more.
                            return;
                        }
                    }
                });
                receiver
            })
            .collect();
        for i in 0..starts.len() {
            let Some(receiver) = receivers.get(i % workers) else {
                break;
            };
            loop {
                let stopped = || format!("{}: a parsing thread stopped unexpectedly", rest.name);
                match receiver.recv().map_err(|_| Stop::Problem(stopped()))? {
                    FromRange::Block { block, end } => {
                        *bytes = end;
                        out.send(block, end)?;
                    }
                    FromRange::End(Ok(end)) => {
                        *bytes = (*bytes).max(end);
                        break;
                    }
                    FromRange::End(Err(problem)) => return Err(Stop::Problem(problem)),
                }
            }
        }
        Ok(())
    })
}

/// One range of the file: the lines that start from `start` (the line
/// the format showed in, for the `first`) up to `end`.
struct Range {
    start: u64,
    end: u64,
    first: bool,
}

/// Nobody receives a worker's blocks any more.
struct Gone;

impl Range {
    /// Reads and parses the range's lines into `sender`.
    fn read(&self, job: &Job<'_>, sender: &SyncSender<FromRange>) -> Result<(), Gone> {
        let rest = job.rest;
        let send = |message| sender.send(message).map_err(|_| Gone);
        let start = match self.first {
            true => self.start,
            false => match line_after(rest, self.start.saturating_sub(1)) {
                Ok(Some(start)) => start,
                Ok(None) => return send(FromRange::End(Ok(self.start))),
                Err(problem) => return send(FromRange::End(Err(problem))),
            },
        };
        if start >= self.end {
            // A line that started before took the whole range.
            return send(FromRange::End(Ok(start)));
        }
        let mut reader = RangeReader {
            rest,
            pos: start,
            end: self.end,
            last: 0,
            done: false,
            problem: None,
        };
        let buffers = job.spare.buffers.clone();
        let mut blocks = LineBlocks::new(job.max_line, BLOCK_BYTES, BLOCK_LINES, buffers);
        let mut parser = job.parsing.parser();
        while let Some(raw) = blocks.next(|buf| reader.read(buf)) {
            let end = start + raw.offset + raw.text.len() as u64;
            let mut block = ahead::parse(raw, 0, Some(&mut parser), &job.spare);
            block.of_member(job.parsing);
            send(FromRange::Block { block, end })?;
        }
        send(FromRange::End(match reader.problem {
            Some(problem) => Err(problem),
            None => Ok(reader.pos),
        }))
    }
}

/// Where the first line after offset `from` starts: just past the first
/// newline at or after it; `None` if there is none before the end.
fn line_after(rest: &Rest<'_>, from: u64) -> Result<Option<u64>, String> {
    let mut buf = vec![0; SEEK_CHUNK];
    let mut pos = from;
    loop {
        let n = read_at(rest.file, &mut buf, pos, rest.name)?;
        let Some(read) = buf.get(..n).filter(|read| !read.is_empty()) else {
            return Ok(None);
        };
        if let Some(newline) = memchr(b'\n', read) {
            return Ok(Some(pos + newline as u64 + 1));
        }
        pos += n as u64;
    }
}

/// Reads a range's bytes: up to its end, then on to the end of the line
/// that crosses it.
struct RangeReader<'a> {
    rest: &'a Rest<'a>,
    pos: u64,
    end: u64,
    /// The last byte read.
    last: u8,
    done: bool,
    problem: Option<String>,
}

impl RangeReader<'_> {
    /// Fills `buf` as far as the range goes; 0 at its end (or on a
    /// problem, kept).
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let past_end = self.pos >= self.end;
        if self.done || (past_end && self.last == b'\n') {
            self.done = true;
            return 0;
        }
        let room = match past_end {
            true => buf.len(),
            false => buf
                .len()
                .min(usize::try_from(self.end - self.pos).unwrap_or(usize::MAX)),
        };
        let buf = buf.get_mut(..room).unwrap_or_default();
        let mut n = match read_at(self.rest.file, buf, self.pos, self.rest.name) {
            Ok(n) => n,
            Err(problem) => {
                self.problem = Some(problem);
                0
            }
        };
        if past_end {
            if let Some(newline) = memchr(b'\n', buf.get(..n).unwrap_or_default()) {
                n = newline + 1;
                self.done = true;
            }
        }
        match n.checked_sub(1).and_then(|last| buf.get(last)) {
            Some(&last) => self.last = last,
            None => self.done = true,
        }
        self.pos += n as u64;
        n
    }
}
