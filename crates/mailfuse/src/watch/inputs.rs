//! The logs `watch` follows: one follower per file, each line cut,
//! recognised, counted and merged by the rules `scan` uses (shared splitter,
//! `Recogniser`, zone choice, `LineOutcome`, `earliest`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mailfuse_core::Event;
use mailfuse_core::Timestamp;
use mailfuse_formats::{
    ChosenZone, Detail, Format, LineParser, LocalZone, ParseContext, Recogniser, Recognition,
};
use tracing::{error, info, warn};

use crate::engine::{earliest, LineOutcome, Overlap};
use crate::metrics::{LineCounters, WatchMetrics};
use crate::source::follow::{Checkpoint, Follower, Notice};
use crate::source::lines::{Piece, DEFAULT_MAX_LINE};
use crate::source::{self, InputPath};

/// Bytes read ahead per file while merging several files by time: memory
/// stays bounded however far behind watch is.
const READ_AHEAD: u64 = 256 * 1024;

/// The format label of lines read before their file showed its format.
const UNKNOWN_FORMAT: &str = "unknown";

/// One followed file, with the lines read but not yet handed out.
pub struct Input {
    pub path: PathBuf,
    follower: Follower,
    /// Decides the file's format from its first lines, as `scan` does.
    recogniser: Recogniser,
    /// Set once a line shows the format.
    parser: Option<Box<dyn LineParser>>,
    /// Lines counted under the file's format, once it shows (lines before
    /// are counted under `unknown`).
    counters: Option<LineCounters>,
    /// Lines read ahead, oldest first.
    ahead: VecDeque<Line>,
    /// The file may hold more than what was read ahead.
    more: bool,
    /// The time of the last dated line (an undated line takes it).
    last_at: Timestamp,
    /// Losses told by the follower and not yet alerted, in words.
    losses: Vec<String>,
}

/// A line read ahead.
struct Line {
    at: Timestamp,
    bytes: Vec<u8>,
    /// Read after the format showed: parsed; before: counted unknown, as
    /// `scan` counts it.
    known: bool,
}

/// What to do with each parsed line.
pub type OnEvent<'a> = dyn FnMut(&Event<'_>, &[u8]) + 'a;

impl Input {
    /// Starts following `path`, from `resume` if given.
    pub fn open(
        path: &Path,
        resume: Option<&Checkpoint>,
        metrics: &WatchMetrics,
    ) -> std::io::Result<Input> {
        let (follower, notices) = Follower::open(path, resume, DEFAULT_MAX_LINE)?;
        let mut losses = Vec::new();
        tell(path, notices, metrics, &mut losses);
        Ok(Input {
            losses,
            path: path.to_path_buf(),
            follower,
            recogniser: Recogniser::default(),
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
    /// lines shows one at least as late; a syslog line another file handed
    /// out already is counted a duplicate instead (`overlap`, scan's rule).
    pub fn merge(
        inputs: &mut [Input],
        overlap: &mut Overlap,
        zone: &LocalZone,
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
            let next = inputs.iter().map(|input| Some(input.ahead.front()?.at));
            let Some(i) = earliest(next) else {
                return;
            };
            // Only syslog files overlap; one alone needs no comparing.
            let syslog = inputs.iter().filter(|input| input.is_syslog()).count() > 1;
            let Some(input) = inputs.get_mut(i) else {
                return;
            };
            let repeats = syslog
                && input.is_syslog()
                && input.ahead.front().is_some_and(|line| {
                    line.known && overlap.duplicate_of(i, line.at, &line.bytes).is_some()
                });
            input.hand_out(repeats, metrics, on_event);
        }
    }

    /// Whether the file showed the syslog format (the files that overlap).
    fn is_syslog(&self) -> bool {
        self.recogniser.state() == Recognition::Known(Format::Syslog)
    }

    /// Reads the next piece of the file into `ahead`.
    fn read_ahead(&mut self, zone: &LocalZone, metrics: &WatchMetrics) {
        let Input {
            path,
            follower,
            recogniser,
            parser,
            counters,
            ahead,
            more,
            last_at,
            losses,
        } = self;
        let result = follower.poll_some(READ_AHEAD, &mut |piece| {
            if recogniser.state() == Recognition::NotALog {
                // Judged not a log: skipped uncounted, as `scan` skips it.
                return;
            }
            let line = match piece {
                Piece::TooLong => {
                    recogniser.feed_too_long();
                    count(counters, metrics, LineOutcome::TooLong, 1);
                    return;
                }
                Piece::Line(line) => line,
            };
            if parser.is_none() {
                match recogniser.feed(line) {
                    Recognition::Known(format) => {
                        info!(path = %path.display(), format = format.name(), "format recognised");
                        *parser = Some(format.parser(&ParseContext {
                            zone: zone.clone(),
                            // Live lines are from now: syslog's missing year is this year.
                            year_reference: Some(source::now()),
                            detail: Detail::Detection,
                        }));
                        *counters = Some(metrics.lines_of(format.name()));
                    }
                    Recognition::NotALog => {
                        warn!(path = %path.display(), "not a log format mailfuse knows: its lines are skipped");
                    }
                    Recognition::Undecided => {}
                }
            }
            if let Some(at) = parser.as_mut().and_then(|p| p.timestamp(line)) {
                *last_at = at;
            }
            ahead.push_back(Line {
                at: *last_at,
                bytes: line.to_vec(),
                known: parser.is_some(),
            });
        });
        match result {
            Ok(report) => {
                *more = report.more;
                tell(path, report.notices, metrics, losses);
            }
            Err(e) => {
                *more = false;
                warn!(path = %path.display(), "cannot read: {e}");
            }
        }
    }

    /// Parses the oldest line read ahead, counts it, and hands its event
    /// out; a `duplicate` is parsed too (the parser's state follows its
    /// file, as in `scan`) but only counted.
    fn hand_out(&mut self, duplicate: bool, metrics: &WatchMetrics, on_event: &mut OnEvent<'_>) {
        let Some(line) = self.ahead.pop_front() else {
            return;
        };
        let parsed = self
            .parser
            .as_mut()
            .filter(|_| line.known)
            .map(|p| p.parse(&line.bytes));
        let outcome = match &parsed {
            _ if duplicate => LineOutcome::Duplicate,
            Some(parsed) => LineOutcome::of(parsed),
            None => LineOutcome::Unknown,
        };
        if let (false, Some(mailfuse_formats::Parsed::Event(event))) = (duplicate, &parsed) {
            on_event(event, &line.bytes);
        }
        let counters = if line.known { &self.counters } else { &None };
        count(counters, metrics, outcome, 1);
    }

    /// The losses told since the last call, in words, for an alert.
    pub fn take_losses(&mut self) -> Vec<String> {
        std::mem::take(&mut self.losses)
    }

    /// Where reading stands: saved with the detector's state (everything
    /// read ahead has been handed out when it is saved).
    pub fn checkpoint(&self) -> Checkpoint {
        self.follower.checkpoint()
    }
}

/// Logs the follower's notices; one that says lines may be lost is an
/// error, counted, and kept in `losses` for an alert.
fn tell(path: &Path, notices: Vec<Notice>, metrics: &WatchMetrics, losses: &mut Vec<String>) {
    for notice in notices {
        if notice.is_loss() {
            error!(path = %path.display(), "{notice}");
            metrics.read_losses.inc();
            losses.push(format!("{}: {notice}", path.display()));
        } else {
            info!(path = %path.display(), "{notice}");
        }
    }
}

/// How often watch says again that followed files do not exist.
const MISSING_WARN_EVERY: Duration = Duration::from_secs(600);

/// Followed files that do not exist: a wrong path, or a system whose mail
/// logs go only to the journal. Said at start and every
/// [`MISSING_WARN_EVERY`] while any is missing, and counted in a metric,
/// rather than waited for in silence.
#[derive(Default)]
pub struct MissingFiles {
    last_warned: Option<Instant>,
}

impl MissingFiles {
    /// Looks at `inputs` again: sets the metric, and warns if it is time.
    pub fn check(&mut self, inputs: &[Input], metrics: &WatchMetrics) {
        let missing: Vec<&Path> = inputs
            .iter()
            .filter(|input| input.follower.is_missing())
            .map(|input| input.path.as_path())
            .collect();
        metrics
            .inputs_missing
            .set(i64::try_from(missing.len()).unwrap_or(i64::MAX));
        if missing.is_empty() {
            self.last_warned = None;
            return;
        }
        if self
            .last_warned
            .is_some_and(|at| at.elapsed() < MISSING_WARN_EVERY)
        {
            return;
        }
        self.last_warned = Some(Instant::now());
        for path in missing {
            warn!(
                path = %path.display(),
                "no such file: nothing is read from it until it appears; check watch.logs \
                 (where mail logs go only to the journal, follow it with [watch.journal]: \
                 docs/watch.md)"
            );
        }
    }
}

/// Counts `lines` under the file's format, or under `unknown` before its
/// format showed (resolved each time: such lines are few).
pub(super) fn count(
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

/// The zone for the followed files, by `scan`'s rule: the configured one,
/// else derived from a Kerio Queue-ID or a Message-ID Postfix made in their
/// first MiB, else UTC.
pub fn choose_zone(configured: Option<LocalZone>, files: &[PathBuf]) -> ChosenZone {
    let mut members: Vec<_> = files
        .iter()
        .map(|path| InputPath::Files(vec![path.clone()]).members())
        .collect();
    source::choose_zone(configured, &mut members, DEFAULT_MAX_LINE)
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
