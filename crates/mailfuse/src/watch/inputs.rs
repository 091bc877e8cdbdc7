//! The logs `watch` follows: one follower per file, each with the parser
//! of the format its first recognisable line shows.

use std::path::{Path, PathBuf};

use mailfuse_core::Event;
use mailfuse_core::Timestamp;
use mailfuse_formats::{kerio, Format, LineParser, LocalZone, ParseContext, Parsed};
use tracing::{info, warn};

use crate::source::follow::{Checkpoint, Follower};
use crate::source::lines::DEFAULT_MAX_LINE;

/// One followed file.
pub struct Input {
    pub path: PathBuf,
    follower: Follower,
    /// Set once a line shows the format.
    parser: Option<Box<dyn LineParser>>,
    /// Lines read before the format was known (skipped).
    pub unrecognised: u64,
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
            unrecognised: 0,
        })
    }

    /// Reads the lines written since the last poll and hands their events
    /// to `on_event`; returns how many lines were read.
    pub fn poll(&mut self, zone: &Option<LocalZone>, on_event: &mut OnEvent<'_>) -> u64 {
        let Input {
            path,
            follower,
            parser,
            unrecognised,
        } = self;
        let mut lines = 0;
        let result = follower.poll(&mut |line: &[u8]| {
            lines += 1;
            if parser.is_none() {
                *parser = recognise(path, line, zone);
            }
            match parser.as_mut().map(|p| p.parse(line)) {
                Some(Parsed::Event(event)) => on_event(&event, line),
                Some(_) => {}
                None => *unrecognised += 1,
            }
        });
        match result {
            Ok(report) => {
                for notice in report.notices {
                    info!(path = %path.display(), "{notice}");
                }
            }
            Err(e) => warn!(path = %path.display(), "cannot read: {e}"),
        }
        lines
    }

    /// Where reading stands: saved with the detector's state.
    pub fn checkpoint(&self) -> Checkpoint {
        self.follower.checkpoint()
    }
}

/// The parser for a file whose line this is, if the line shows the format.
fn recognise(path: &Path, line: &[u8], zone: &Option<LocalZone>) -> Option<Box<dyn LineParser>> {
    let format = Format::ALL.iter().copied().find(|f| f.recognizes(line))?;
    let zone = zone.clone().unwrap_or_else(|| {
        kerio::derive_offset(line).map_or_else(LocalZone::default, LocalZone::Fixed)
    });
    info!(path = %path.display(), format = format.name(), zone = %zone.describe(), "format recognised");
    Some(format.parser(&ParseContext {
        zone,
        // Live lines are from now: syslog's missing year is this year.
        year_reference: Some(now()),
    }))
}

/// The server's UTC offset derived from Kerio Queue-IDs in the first
/// 64 KiB of `files`, if any has one.
pub fn derive_zone(files: &[PathBuf]) -> Option<LocalZone> {
    files.iter().find_map(|path| {
        let mut sample = Vec::new();
        let file = std::fs::File::open(path).ok()?;
        std::io::Read::read_to_end(&mut std::io::Read::take(file, 64 * 1024), &mut sample).ok()?;
        sample
            .split(|&b| b == b'\n')
            .find_map(kerio::derive_offset)
            .map(LocalZone::Fixed)
    })
}

/// The wall clock, as a [`Timestamp`].
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
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
