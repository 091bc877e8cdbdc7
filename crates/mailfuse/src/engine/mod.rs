//! Drives `scan` and `trace`: inputs → format parsers → events, in time
//! order.
//!
//! Each member of each input gets its own parser (formats are recognised per
//! file, by the rule of `mailfuse_formats::recognise`, as `watch` does). When
//! several inputs are read together (Kerio's mail.log, security.log and
//! audit.log side by side), their lines are merged by timestamp so the
//! detectors see one history: a failed login in security.log comes before
//! the spam it enabled in mail.log.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use mailfuse_core::{Event, Timestamp};
use mailfuse_formats::{ChosenZone, Detail, Format, LocalZone, Parsed, ZoneSource};
use serde::Serialize;

use crate::progress::Progress;
use crate::source::{self, InputPath};

use ahead::{Ahead, Block, Incoming, ParsedLine, Settings};
pub use count::{earliest, LineOutcome, Overlap};

mod ahead;
mod count;
mod split;

/// How to read the inputs.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The log's time zone, when the user gave it (`--timezone`).
    pub zone: Option<LocalZone>,
    /// Longest line kept; longer ones are skipped and counted.
    pub max_line: usize,
    /// The year of yearless syslog stamps (`--year`), instead of each
    /// file's modification time's.
    pub year: Option<i32>,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
    /// Plain files of at least this many bytes are parsed on every core;
    /// by default, big ones when there are cores to spare.
    pub split_above: Option<u64>,
    /// How much of each line is read: what the detectors look at, or all
    /// (`trace`).
    pub detail: Detail,
}

/// What happened to one input file.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InputReport {
    pub path: String,
    /// The format recognised, or none (the file was skipped).
    pub format: Option<&'static str>,
    pub bytes: u64,
    pub lines: u64,
    pub events: u64,
    /// Known lines with nothing for the detectors.
    pub ignored: u64,
    /// Lines the parser did not recognise.
    pub unknown: u64,
    /// Lines of a known kind that could not be read, by reason.
    pub malformed: BTreeMap<&'static str, u64>,
    /// Lines longer than the limit, skipped unread.
    pub too_long: u64,
    /// Lines another input already handed out (overlapping syslog files,
    /// see [`Overlap`]): read, not counted again.
    pub duplicate: u64,
    /// The inputs whose lines those were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub duplicate_of: Vec<String>,
    /// The files of a rotated set read as this input, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// What could not be read (the input, or some of its members), and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl InputReport {
    /// Counts `line` and hands its event, if any, to `visit`.
    fn take(&mut self, line: &ParsedLine<'_>, visit: &mut impl FnMut(&Event<'_>, &[u8])) {
        self.count(line.parsed());
        if let Parsed::Event(event) = line.parsed() {
            visit(event, line.line);
        }
    }

    /// Counts one line, as `watch`'s metrics count it.
    fn count(&mut self, parsed: &Parsed<'_>) {
        match LineOutcome::of(parsed) {
            LineOutcome::Event => self.events += 1,
            LineOutcome::Ignored => self.ignored += 1,
            LineOutcome::Unknown => self.unknown += 1,
            LineOutcome::Malformed | LineOutcome::TooLong | LineOutcome::Duplicate => {}
        }
        if let Parsed::Malformed(why) = parsed {
            *self.malformed.entry(why).or_default() += 1;
        }
    }

    /// The format's name for the reports: `empty` for an input without a
    /// line (a log just rotated), `unknown format` for one whose lines
    /// showed none.
    pub fn format_name(&self) -> &'static str {
        match (self.format, self.lines) {
            (Some(format), _) => format,
            (None, 0) => "empty",
            (None, _) => "unknown format",
        }
    }

    /// Lines that were skipped: unknown, malformed or too long.
    pub fn skipped(&self) -> u64 {
        self.unknown + self.malformed.values().sum::<u64>() + self.too_long
    }
}

/// The time zone used for local timestamps, and where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct ZoneReport {
    pub zone: String,
    pub source: &'static str,
}

/// One input being read: the block its thread parsed ahead, and where in it.
struct Cursor {
    report: InputReport,
    ahead: Incoming,
    block: Option<Block>,
    /// Index of the current line in `block`.
    index: usize,
    bytes_read: u64,
    /// The inputs (by index) whose lines this one repeated.
    duplicate_of: Vec<usize>,
}

impl Cursor {
    fn new(report: InputReport, ahead: Incoming) -> Self {
        let mut cursor = Cursor {
            report,
            ahead,
            block: None,
            index: 0,
            bytes_read: 0,
            duplicate_of: Vec::new(),
        };
        cursor.next_block();
        cursor
    }

    /// The current line, unless the input is exhausted.
    fn current(&self) -> Option<&ParsedLine<'_>> {
        self.block.as_ref()?.lines.get().0.get(self.index)
    }

    /// The current line, if it is a syslog line (the lines [`Overlap`]
    /// compares), with its time.
    fn current_syslog(&self) -> Option<(Timestamp, &[u8])> {
        let block = self
            .block
            .as_ref()
            .filter(|b| b.format() == Some(Format::Syslog))?;
        let line = block.lines.get().0.get(self.index)?;
        Some((line.at, line.line))
    }

    /// Counts the current line as a duplicate of input `of`'s.
    fn skip_duplicate(&mut self, of: usize) {
        self.report.duplicate += 1;
        if !self.duplicate_of.contains(&of) {
            self.duplicate_of.push(of);
        }
    }

    /// Counts the current line and hands its event, if any, to `visit`.
    fn visit_current(&mut self, visit: &mut impl FnMut(&Event<'_>, &[u8])) {
        let Cursor {
            report,
            block,
            index,
            ..
        } = self;
        if let Some(line) = block.as_ref().and_then(|b| b.lines.get().0.get(*index)) {
            report.take(line, visit);
        }
    }

    /// Counts every line left and hands each event to `visit`, block after
    /// block: an input read alone has nothing to merge with.
    fn visit_all(&mut self, visit: &mut impl FnMut(&Event<'_>, &[u8]), progress: &mut Progress) {
        while let Cursor {
            report,
            block: Some(block),
            index,
            ..
        } = self
        {
            for line in block.lines.get().0.get(*index..).unwrap_or_default() {
                report.take(line, visit);
            }
            progress.set(self.bytes_read);
            self.next_block();
        }
    }

    /// Moves to the next line.
    fn advance(&mut self) {
        self.index += 1;
        let block_done = self
            .block
            .as_ref()
            .is_some_and(|b| self.index >= b.lines.get().0.len());
        if block_done {
            self.next_block();
        }
    }

    /// Takes the next block with a line in it, counting what it says.
    fn next_block(&mut self) {
        if let Some(block) = self.block.take() {
            block.recycle();
        }
        self.index = 0;
        loop {
            match self.ahead.recv() {
                Ok(Ahead::Block(block)) => {
                    let lines = block.lines.get().0.len() as u64;
                    self.report.lines += lines + block.too_long;
                    self.report.too_long += block.too_long;
                    self.bytes_read = block.bytes_read;
                    if self.report.format.is_none() {
                        self.report.format = block.format().map(|f| f.name());
                    }
                    if lines > 0 {
                        self.block = Some(block);
                        return;
                    }
                }
                Ok(Ahead::End {
                    bytes_read,
                    mut errors,
                }) => {
                    self.bytes_read = bytes_read;
                    self.report.errors.append(&mut errors);
                    break;
                }
                Err(_) => {
                    let stopped = "the reading thread stopped unexpectedly".to_string();
                    self.report.errors.push(stopped);
                    break;
                }
            }
        }
        self.report.bytes = self.bytes_read;
    }
}

/// Everything a run read, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct ReadSummary {
    pub inputs: Vec<InputReport>,
    pub time_zone: ZoneReport,
}

/// Reads every input and hands each event, with its line, to `visit`, in
/// time order across inputs. Fails only when no input can be read at all.
pub fn read_all(
    paths: &[PathBuf],
    options: &ReadOptions,
    mut visit: impl FnMut(&Event<'_>, &[u8]),
) -> Result<ReadSummary> {
    raise_open_files_limit();
    let found = source::discover(paths)?;
    if found.inputs.is_empty() && found.unreadable.is_empty() {
        bail!("no log files found in {}", display_paths(paths));
    }
    let mut reports: Vec<InputReport> = found
        .unreadable
        .into_iter()
        .map(|(path, error)| InputReport {
            path,
            errors: vec![error],
            ..InputReport::default()
        })
        .collect();
    let mut members: Vec<_> = found.inputs.iter().map(InputPath::members).collect();
    let chosen = source::choose_zone(options.zone.clone(), &mut members, options.max_line);
    let total_bytes = found.inputs.iter().filter_map(InputPath::size).sum();
    let mut progress = Progress::new(options.progress, total_bytes);
    std::thread::scope(|scope| {
        let mut cursors: Vec<Cursor> = found
            .inputs
            .iter()
            .zip(members)
            .map(|(input, members)| {
                let report = InputReport {
                    path: input.label(),
                    members: input.rotated_members(),
                    ..InputReport::default()
                };
                let settings = Settings {
                    zone: chosen.zone.clone(),
                    year: options.year,
                    max_line: options.max_line,
                    split_above: options.split_above.unwrap_or_else(split::split_above),
                    detail: options.detail,
                };
                let ahead = ahead::spawn(scope, members, settings);
                Cursor::new(report, ahead)
            })
            .collect();
        if let [cursor] = cursors.as_mut_slice() {
            // One input: nothing to merge, its blocks are read through.
            cursor.visit_all(&mut visit, &mut progress);
        } else {
            merge(&mut cursors, &mut visit, &mut progress);
        }
        let paths: Vec<String> = cursors.iter().map(|c| c.report.path.clone()).collect();
        reports.extend(cursors.into_iter().map(|mut c| {
            let of = c.duplicate_of.iter().filter_map(|&i| paths.get(i).cloned());
            c.report.duplicate_of = of.collect();
            c.report
        }));
    });
    progress.finish();
    // Empty inputs (a log just rotated) are zero lines, not a failure; an
    // input with lines of no known format among them is.
    let empty = |r: &InputReport| r.lines == 0 && r.errors.is_empty();
    if reports.iter().all(|r| r.format.is_none()) && !reports.iter().all(empty) {
        let why: Vec<String> = reports
            .iter()
            .map(|r| match empty(r) {
                true => format!("{}: empty", r.path),
                // An error names its member, often the input itself.
                false => r
                    .errors
                    .iter()
                    .map(|e| match e.strip_prefix(r.path.as_str()) {
                        Some(rest) if rest.starts_with(':') => e.clone(),
                        _ => format!("{}: {e}", r.path),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect();
        bail!(
            "no readable mail log among the inputs:\n  {}",
            why.join("\n  ")
        );
    }
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ReadSummary {
        inputs: reports,
        time_zone: zone_report(&chosen),
    })
}

/// Hands the lines of several inputs to `visit` in time order (see
/// [`earliest`]), each line of overlapping syslog files once.
fn merge(
    cursors: &mut [Cursor],
    visit: &mut impl FnMut(&Event<'_>, &[u8]),
    progress: &mut Progress,
) {
    let mut processed_lines = 0u64;
    let mut overlap = Overlap::default();
    while let Some(i) = earliest(cursors.iter().map(|c| Some(c.current()?.at))) {
        // Only syslog files overlap; one alone needs no comparing.
        let syslog = Some(Format::Syslog.name());
        let repeats = if cursors.iter().filter(|c| c.report.format == syslog).count() > 1 {
            let current = cursors.get(i).and_then(Cursor::current_syslog);
            current.and_then(|(at, line)| overlap.duplicate_of(i, at, line))
        } else {
            None
        };
        let Some(cursor) = cursors.get_mut(i) else {
            break;
        };
        match repeats {
            Some(of) => cursor.skip_duplicate(of),
            None => cursor.visit_current(visit),
        }
        cursor.advance();
        processed_lines += 1;
        if processed_lines.is_multiple_of(65_536) {
            progress.set(cursors.iter().map(|c| c.bytes_read).sum());
        }
    }
}

/// Lets a scan of many files open them all (1,100 files under the usual
/// soft limit of 1,024): the soft limit is raised to the hard one. If that
/// fails, files over the limit are reported as unreadable, as before.
fn raise_open_files_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

/// The zone for the report, with where it came from in the words of the
/// command line.
fn zone_report(chosen: &ChosenZone) -> ZoneReport {
    let (zone, source) = match chosen.source {
        ZoneSource::Configured => (chosen.zone.describe(), "--timezone"),
        ZoneSource::KerioQueueId => (chosen.zone.describe(), "derived from Kerio Queue-IDs"),
        ZoneSource::PostfixMessageId => (
            chosen.zone.describe(),
            "derived from a Message-ID Postfix made in UTC",
        ),
        ZoneSource::Assumed => (
            "UTC".to_string(),
            "assumed: no Queue-ID or Postfix Message-ID to derive it from; pass --timezone if the server is not on UTC",
        ),
    };
    ZoneReport { zone, source }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
