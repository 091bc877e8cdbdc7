//! The logs `watch` follows: one follower per file, each with the parser
//! of the format its first recognisable line shows.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use mailfuse_core::Event;
use mailfuse_core::Timestamp;
use mailfuse_formats::{kerio, Format, LineParser, LocalZone, ParseContext, Parsed};
use tracing::{info, warn};

use crate::metrics::{LineCounters, LineOutcome, WatchMetrics};
use crate::source::follow::{Checkpoint, Follower};
use crate::source::lines::DEFAULT_MAX_LINE;
use crate::source::{self, InputPath};

/// Bytes read ahead per file while merging several files by time: memory
/// stays bounded however far behind watch is.
const READ_AHEAD: u64 = 256 * 1024;

/// One followed file, with the lines read but not yet handed out.
pub struct Input {
    pub path: PathBuf,
    follower: Follower,
    /// Set once a line shows the format.
    parser: Option<Box<dyn LineParser>>,
    /// Lines counted under the file's format, once it shows (lines before
    /// are counted under `unknown`).
    counters: Option<LineCounters>,
    /// Lines read ahead, with their times, oldest first.
    ahead: VecDeque<(Timestamp, Vec<u8>)>,
    /// The file may hold more than what was read ahead.
    more: bool,
    /// The time of the last dated line (an undated line takes it).
    last_at: Timestamp,
}

/// What to do with each parsed line.
pub type OnEvent<'a> = dyn FnMut(&Event<'_>, &[u8]) + 'a;

impl Input {
    /// Starts following `path`, from `resume` if given.
    pub fn open(path: &Path, resume: Option<&Checkpoint>) -> std::io::Result<Input> {
        let (follower, notices) = Follower::open(path, resume, DEFAULT_MAX_LINE)?;
        for notice in notices {
            info!(path = %path.display(), "{notice}");
        }
        Ok(Input {
            path: path.to_path_buf(),
            follower,
            parser: None,
            counters: None,
            ahead: VecDeque::new(),
            more: true,
            last_at: Timestamp::default(),
        })
    }

    /// Hands out every new line of `inputs` in time order, merged across
    /// the files as `scan` merges them, each file read a bounded piece
    /// ahead. A line is handed out once every file that may still have
    /// lines shows one at least as late.
    pub fn merge(
        inputs: &mut [Input],
        zone: &Option<LocalZone>,
        metrics: &WatchMetrics,
        on_event: &mut OnEvent<'_>,
    ) {
        for input in inputs.iter_mut() {
            input.more = true;
        }
        loop {
            for input in inputs.iter_mut() {
                while input.ahead.is_empty() && input.more {
                    input.read_ahead(zone, metrics);
                }
            }
            let earliest = inputs
                .iter()
                .enumerate()
                .filter_map(|(i, input)| Some((input.ahead.front()?.0, i)))
                .min();
            let Some((_, i)) = earliest else { return };
            let Some(input) = inputs.get_mut(i) else {
                return;
            };
            input.hand_out(metrics, on_event);
        }
    }

    /// Reads the next piece of the file into `ahead`.
    fn read_ahead(&mut self, zone: &Option<LocalZone>, metrics: &WatchMetrics) {
        let Input {
            path,
            follower,
            parser,
            counters,
            ahead,
            more,
            last_at,
        } = self;
        let result = follower.poll_some(READ_AHEAD, &mut |line: &[u8]| {
            if parser.is_none() {
                if let Some((format, recognised)) = recognise(path, line, zone) {
                    *parser = Some(recognised);
                    *counters = Some(metrics.lines_of(format.name()));
                }
            }
            if let Some(at) = parser.as_mut().and_then(|p| p.timestamp(line)) {
                *last_at = at;
            }
            ahead.push_back((*last_at, line.to_vec()));
        });
        match result {
            Ok(report) => {
                if report.skipped > 0 {
                    count(counters, metrics, LineOutcome::TooLong, report.skipped);
                }
                *more = report.more;
                for notice in report.notices {
                    info!(path = %path.display(), "{notice}");
                }
            }
            Err(e) => {
                *more = false;
                warn!(path = %path.display(), "cannot read: {e}");
            }
        }
    }

    /// Parses the oldest line read ahead, counts it, and hands its event out.
    fn hand_out(&mut self, metrics: &WatchMetrics, on_event: &mut OnEvent<'_>) {
        let Some((_, line)) = self.ahead.pop_front() else {
            return;
        };
        let outcome = match self.parser.as_mut().map(|p| p.parse(&line)) {
            Some(Parsed::Event(event)) => {
                on_event(&event, &line);
                LineOutcome::Event
            }
            Some(Parsed::Ignored) => LineOutcome::Ignored,
            Some(Parsed::Malformed(_)) => LineOutcome::Malformed,
            Some(Parsed::Unknown) | None => LineOutcome::Unknown,
        };
        count(&self.counters, metrics, outcome, 1);
    }

    /// Where reading stands: saved with the detector's state (everything
    /// read ahead has been handed out when it is saved).
    pub fn checkpoint(&self) -> Checkpoint {
        self.follower.checkpoint()
    }
}

/// The format label of lines read before their file showed its format.
const UNKNOWN_FORMAT: &str = "unknown";

/// Counts `lines` under the file's format, or under `unknown` before its
/// format showed (resolved each time: such lines are few).
fn count(
    counters: &Option<LineCounters>,
    metrics: &WatchMetrics,
    outcome: LineOutcome,
    lines: u64,
) {
    match counters {
        Some(counters) => counters.add(outcome, lines),
        None => metrics.lines_of(UNKNOWN_FORMAT).add(outcome, lines),
    }
}

/// The format and parser for a file whose line this is, if the line shows
/// the format.
fn recognise(
    path: &Path,
    line: &[u8],
    zone: &Option<LocalZone>,
) -> Option<(Format, Box<dyn LineParser>)> {
    let format = Format::ALL.iter().copied().find(|f| f.recognizes(line))?;
    let zone = zone.clone().unwrap_or_else(|| {
        kerio::derive_offset(line).map_or_else(LocalZone::default, LocalZone::Fixed)
    });
    info!(path = %path.display(), format = format.name(), zone = %zone.describe(), "format recognised");
    let parser = format.parser(&ParseContext {
        zone,
        // Live lines are from now: syslog's missing year is this year.
        year_reference: Some(now()),
    });
    Some((format, parser))
}

/// The server's UTC offset derived from Kerio Queue-IDs in the first
/// 64 KiB of `files`, if any has one.
pub fn derive_zone(files: &[PathBuf]) -> Option<LocalZone> {
    files.iter().find_map(|path| {
        let opened = source::open(&InputPath::Files(vec![path.clone()])).ok()?;
        source::kerio_offset(&opened.sample).map(LocalZone::Fixed)
    })
}

/// The wall clock, as a [`Timestamp`].
pub fn now() -> Timestamp {
    source::timestamp_of(std::time::SystemTime::now()).unwrap_or_default()
}

/// The files to follow for the configured paths: a directory stands for
/// the log files in it that are not rotated copies (Kerio's `mail.log`,
/// `security.log`, `audit.log`).
pub fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut in_dir: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "log"))
                    .collect();
                in_dir.sort();
                files.extend(in_dir);
            }
            // A file, or one that does not exist yet: followed (and waited for).
            Err(_) => files.push(path.clone()),
        }
    }
    files
}
