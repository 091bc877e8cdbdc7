//! Drives the pipeline: inputs → format parsers → events, in time order.
//!
//! Each input gets its own parser (formats are sniffed per file). When several
//! inputs are read together (Kerio's mail.log, security.log and audit.log side
//! by side), their lines are merged by timestamp so the detectors see one
//! history: a failed login in security.log comes before the spam it enabled in
//! mail.log.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use mailfuse_core::Event;
use mailfuse_formats::{Format, LocalZone, ParseContext, Parsed};
use serde::Serialize;

use crate::progress::Progress;
use crate::source::{self, Problems};
use std::sync::mpsc::Receiver;

use ahead::{Ahead, Block, ParsedLine};

mod ahead;

/// How to read the inputs.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The log's time zone, when the user gave it (`--timezone`).
    pub zone: Option<LocalZone>,
    /// Longest line kept; longer ones are skipped and counted.
    pub max_line: usize,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
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
    /// The files of a rotated set read as this input, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// What could not be read (the input, or some of its members), and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl InputReport {
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
    ahead: Receiver<Ahead>,
    block: Option<Block>,
    /// Index of the current line in `block`.
    index: usize,
    bytes_read: u64,
    /// Where the input's reader notes members it could not read.
    problems: Problems,
}

impl Cursor {
    fn new(report: InputReport, ahead: Receiver<Ahead>, problems: Problems) -> Self {
        let mut cursor = Cursor {
            report,
            ahead,
            block: None,
            index: 0,
            bytes_read: 0,
            problems,
        };
        cursor.next_block();
        cursor
    }

    /// The current line, unless the input is exhausted.
    fn current(&self) -> Option<&ParsedLine<'_>> {
        self.block.as_ref()?.lines.get().0.get(self.index)
    }

    /// Counts the current line and hands its event, if any, to `visit`.
    fn visit_current(&mut self, visit: &mut impl FnMut(&Event<'_>, &[u8])) {
        let Cursor {
            report,
            block,
            index,
            ..
        } = self;
        let Some(line) = block.as_ref().and_then(|b| b.lines.get().0.get(*index)) else {
            return;
        };
        match &line.parsed {
            Parsed::Event(event) => {
                report.events += 1;
                visit(event, line.line);
            }
            Parsed::Ignored => report.ignored += 1,
            Parsed::Unknown => report.unknown += 1,
            Parsed::Malformed(why) => *report.malformed.entry(why).or_default() += 1,
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
        self.block = None;
        self.index = 0;
        loop {
            match self.ahead.recv() {
                Ok(Ahead::Block(block)) => {
                    let lines = block.lines.get().0.len() as u64;
                    self.report.lines += lines + block.too_long;
                    self.report.too_long += block.too_long;
                    self.bytes_read = block.bytes_read;
                    if lines > 0 {
                        self.block = Some(block);
                        return;
                    }
                }
                Ok(Ahead::End { bytes_read, error }) => {
                    self.bytes_read = bytes_read;
                    if let Ok(mut problems) = self.problems.lock() {
                        self.report.errors.append(&mut problems);
                    }
                    self.report.errors.extend(error);
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
    let inputs = source::discover(paths)?;
    if inputs.is_empty() {
        bail!("no log files found in {}", display_paths(paths));
    }
    let mut opened = Vec::new();
    let mut reports = Vec::new();
    for input in &inputs {
        let mut report = InputReport {
            path: input.label(),
            members: input.rotated_members(),
            ..InputReport::default()
        };
        match source::open(input) {
            Ok(file) => match source::sniff(&file.sample) {
                Some(format) => {
                    report.format = Some(format.name());
                    opened.push((report, format, file));
                }
                None => {
                    report.bytes = file.size.unwrap_or(file.sample.len() as u64);
                    let unknown = "not a log format mailfuse knows; skipped".to_string();
                    report.errors.push(unknown);
                    reports.push(report);
                }
            },
            Err(e) => {
                report.errors.push(format!("cannot open: {e}"));
                reports.push(report);
            }
        }
    }
    if opened.is_empty() {
        let why: Vec<String> = reports
            .iter()
            .map(|r| format!("{}: {}", r.path, r.errors.join("; ")))
            .collect();
        bail!(
            "no readable mail log among the inputs:\n  {}",
            why.join("\n  ")
        );
    }
    let time_zone = choose_zone(options, &opened);
    let total_bytes = opened.iter().filter_map(|(_, _, f)| f.size).sum();
    let mut progress = Progress::new(options.progress, total_bytes);
    std::thread::scope(|scope| {
        let mut cursors: Vec<Cursor> = opened
            .into_iter()
            .map(|(report, format, file)| {
                let parser = format.parser(&ParseContext {
                    zone: time_zone.0.clone(),
                    year_reference: file.modified,
                });
                let ahead = ahead::spawn(scope, file.reader, parser, options.max_line);
                Cursor::new(report, ahead, file.problems)
            })
            .collect();
        let mut processed_lines = 0u64;
        // Take the input whose current line is earliest; ties go to the
        // input named first, so the order is reproducible.
        while let Some((_, earliest)) = cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((c.current()?.at, i)))
            .min()
        {
            let cursor = &mut cursors[earliest];
            cursor.visit_current(&mut visit);
            cursor.advance();
            processed_lines += 1;
            if processed_lines.is_multiple_of(65_536) {
                progress.set(cursors.iter().map(|c| c.bytes_read).sum());
            }
        }
        reports.extend(cursors.into_iter().map(|c| c.report));
    });
    progress.finish();
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ReadSummary {
        inputs: reports,
        time_zone: time_zone.1,
    })
}

/// The zone for local timestamps: the user's, else derived from Kerio
/// Queue-IDs in the inputs' first lines, else UTC (said in the report).
fn choose_zone(
    options: &ReadOptions,
    opened: &[(InputReport, Format, source::Opened)],
) -> (LocalZone, ZoneReport) {
    if let Some(zone) = &options.zone {
        let report = ZoneReport {
            zone: zone.describe(),
            source: "--timezone",
        };
        return (zone.clone(), report);
    }
    let derived = opened
        .iter()
        .filter(|(_, format, _)| *format == Format::Kerio)
        .find_map(|(_, _, file)| source::kerio_offset(&file.sample));
    match derived {
        Some(offset) => {
            let zone = LocalZone::Fixed(offset);
            let report = ZoneReport {
                zone: zone.describe(),
                source: "derived from Kerio Queue-IDs",
            };
            (zone, report)
        }
        None => (
            LocalZone::default(),
            ZoneReport {
                zone: "UTC".into(),
                source: "assumed: no Queue-ID to derive it from; pass --timezone if the server is not on UTC",
            },
        ),
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
