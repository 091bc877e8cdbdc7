//! Where lines come from: finding the log files named on the command line
//! (each file once), grouping rotated sets, decompressing, reading the
//! systemd journal (`journal/`), and the wall clock. How a file is read (its format, the zone of its times, its lines)
//! follows rules shared by `scan` and `watch`: see `lines.rs` and
//! `mailfuse_formats::recognise`.

mod decompress;
pub mod follow;
pub mod journal;
pub mod lines;
mod rotation;
pub mod syslog_net;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mailfuse_core::Timestamp;
use mailfuse_formats::{ChosenZone, LocalZone};

use decompress::{decompressed, Compression};
use journal::Journalctl;
use lines::{LineSplitter, Piece};

/// Bytes read from the start of each file to derive the zone: a Kerio
/// Queue-ID comes on the first `Recv:` line, but a Message-ID Postfix made
/// (bounce notices, cron's mail) may come thousands of lines in.
const HEAD_BYTES: usize = 1024 * 1024;

/// A named input: a file or a rotated set of files read as one log, a
/// journal directory, or `-` for standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputPath {
    /// The members, oldest first (one for a file that is not rotated).
    Files(Vec<PathBuf>),
    /// A directory of journal files, read by journalctl as one log.
    Journal(PathBuf),
    Stdin,
}

impl InputPath {
    /// How the input is named in reports: its newest member.
    pub fn label(&self) -> String {
        match self {
            InputPath::Files(members) => members
                .last()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            InputPath::Journal(dir) => dir.display().to_string(),
            InputPath::Stdin => "-".to_string(),
        }
    }

    /// The members of a rotated set, oldest first (empty for one file).
    pub fn rotated_members(&self) -> Vec<String> {
        match self {
            InputPath::Files(members) if members.len() > 1 => {
                members.iter().map(|p| p.display().to_string()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The members to read, oldest first.
    pub fn members(&self) -> Vec<Member> {
        match self {
            InputPath::Files(paths) => paths.iter().cloned().map(Member::File).collect(),
            InputPath::Journal(dir) => {
                vec![Member::Journal(journal::Source::Directory(dir.clone()))]
            }
            InputPath::Stdin => vec![Member::Stdin { head: Vec::new() }],
        }
    }

    /// Size on disk, when it measures what reading gives (for progress):
    /// none for standard input and compressed files.
    pub fn size(&self) -> Option<u64> {
        match self {
            InputPath::Files(paths) => paths
                .iter()
                .map(|p| {
                    let meta = std::fs::metadata(p).ok()?;
                    (!rotation::named_compressed(p)).then_some(meta.len())
                })
                .sum(),
            InputPath::Journal(_) | InputPath::Stdin => None,
        }
    }
}

/// The command line's paths, expanded.
#[derive(Debug, Default)]
pub struct Discovered {
    pub inputs: Vec<InputPath>,
    /// Directories that could not be listed (named, and why): reported and
    /// skipped like a file that cannot be opened.
    pub unreadable: Vec<(String, String)>,
}

/// Expands the command line's paths into inputs: a directory stands for the
/// files in it (not recursing) — a journal directory for its journal, read
/// as one input —, a pattern with `*`, `?` or `[` that names no file is
/// expanded as a glob; files of one rotated set become one input.
/// A file named twice (`f ./f`, a link to it in a named directory) is read
/// once: files are told apart by device and inode.
pub fn discover(paths: &[PathBuf]) -> io::Result<Discovered> {
    let mut stdin = false;
    let mut found = Discovered::default();
    let mut files = Vec::new();
    let mut journals = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            stdin = true;
        } else if path.is_dir() && journal::is_journal_directory(path) {
            if !journals.contains(path) {
                journals.push(path.clone());
            }
        } else if !path.exists() && is_pattern(path) {
            files.extend(expand_glob(path)?);
        } else {
            match files_at(path)? {
                Ok(at) => files.extend(at),
                Err(e) => found.unreadable.push((
                    path.display().to_string(),
                    format!("cannot read this directory: {e}; skipped"),
                )),
            }
        }
    }
    let mut seen = HashSet::new();
    files.retain(|file| match std::fs::metadata(file) {
        Ok(meta) => seen.insert((meta.dev(), meta.ino())),
        // Reported when it is opened.
        Err(_) => true,
    });
    let mut sets = rotation::group(files);
    // Stable: only files split by severity move, behind the others.
    sets.sort_by_key(|set| set.last().map_or(0, |newest| severity_rank(newest)));
    found.inputs = sets.into_iter().map(InputPath::Files).collect();
    found
        .inputs
        .extend(journals.into_iter().map(InputPath::Journal));
    if stdin {
        found.inputs.push(InputPath::Stdin);
    }
    Ok(found)
}

/// rsyslog's files split by severity, each holding the lines of the ones
/// after it (Debian: `mail.info` ⊇ `mail.warn` ⊇ `mail.err`, all within
/// `mail.log`).
const SEVERITY_SUFFIXES: [&str; 10] = [
    "debug", "info", "notice", "warn", "warning", "err", "error", "crit", "alert", "emerg",
];

/// Where a file goes in the merge's order of ties: other files first (0),
/// then those named for a severity, the widest first. Overlapping lines
/// are handed out by the input first in that order, so the report names
/// `mail.warn`'s lines duplicates of `mail.log`, not the other way round.
fn severity_rank(path: &Path) -> usize {
    let name = path.file_name().map(|n| n.to_string_lossy());
    let suffix = name.as_deref().and_then(|n| {
        let base = n.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        let base = ["gz", "zst", "bz2", "xz", "zstd"]
            .iter()
            .find_map(|ext| base.strip_suffix(ext)?.strip_suffix('.'))
            .unwrap_or(base);
        Some(base.rsplit_once('.')?.1.to_ascii_lowercase())
    });
    suffix
        .and_then(|s| SEVERITY_SUFFIXES.iter().position(|&k| k == s))
        .map_or(0, |i| i + 1)
}

fn is_pattern(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

fn expand_glob(pattern: &Path) -> io::Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    let invalid = |e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{text}: {e}"))
    };
    let matches: Vec<PathBuf> = glob::glob(&text)
        .map_err(|e| invalid(&e))?
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    if matches.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{text}: no file matches this pattern"),
        ));
    }
    Ok(matches)
}

/// The file itself, or the files in a directory; the inner error is a
/// directory that exists but cannot be listed (the run goes on without it),
/// the outer one a path that names nothing (a bad argument).
fn files_at(path: &Path) -> io::Result<io::Result<Vec<PathBuf>>> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if !std::fs::metadata(path).map_err(with_path)?.is_dir() {
        return Ok(Ok(vec![path.to_path_buf()]));
    }
    Ok(std::fs::read_dir(path).map(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.is_file())
            .collect()
    }))
}

/// The zone for a run's local times (see [`mailfuse_formats::choose_zone`]):
/// looks for a Kerio Queue-ID or a Message-ID Postfix made in the first MiB
/// of each member, inputs in
/// the order given, lines cut by the same rule as when reading. Standard
/// input's first bytes are kept in its member, to be read again.
pub fn choose_zone(
    configured: Option<LocalZone>,
    inputs: &mut [Vec<Member>],
    max_line: usize,
) -> ChosenZone {
    // Lazy: nothing is read when the zone is configured, and reading stops
    // at the first Queue-ID.
    let lines = inputs
        .iter_mut()
        .flatten()
        .flat_map(|member| member.head(max_line));
    mailfuse_formats::choose_zone(configured, lines)
}

/// One file of an input, a journal directory, or standard input. Each
/// member is read on its own: its format is recognised, and its years
/// dated, apart from the other members' (a junk oldest member hides
/// nothing else).
pub enum Member {
    File(PathBuf),
    /// Journal files, exported by journalctl.
    Journal(journal::Source),
    /// Standard input, with its first bytes if they were read already (to
    /// choose the zone): they are given again when it is opened.
    Stdin {
        head: Vec<u8>,
    },
}

impl Member {
    pub fn name(&self) -> String {
        match self {
            Member::File(path) | Member::Journal(journal::Source::Directory(path)) => {
                path.display().to_string()
            }
            Member::Journal(journal::Source::File(path)) => path.display().to_string(),
            Member::Stdin { .. } => "standard input".to_string(),
        }
    }

    /// When the member was last written (now, for a stream and a journal,
    /// whose lines carry their year anyway): dates the timestamps that
    /// carry no year.
    pub fn modified(&self) -> Option<Timestamp> {
        match self {
            Member::File(path) => timestamp_of(std::fs::metadata(path).ok()?.modified().ok()?),
            Member::Journal(_) | Member::Stdin { .. } => Some(now()),
        }
    }

    /// Opens the member for reading, decompressed, a journal export or
    /// journal files as syslog lines (messages longer than `max_line`
    /// skipped).
    pub fn open(&mut self, max_line: usize) -> io::Result<MemberReader> {
        let name = self.name();
        let (raw, file): (Box<dyn Read + Send>, _) = match self {
            Member::File(path) if journal::is_journal_file(path) => {
                let source = journal::Source::File(path.clone());
                return MemberReader::journal(name, &source, max_line);
            }
            Member::Journal(source) => return MemberReader::journal(name, source, max_line),
            Member::File(path) => {
                let file = File::open(path)?;
                let again = file.try_clone().ok();
                (Box::new(file), again)
            }
            Member::Stdin { head } => (
                Box::new(Cursor::new(std::mem::take(head)).chain(io::stdin())),
                None,
            ),
        };
        let (compression, reader) = decompressed(raw)?;
        let (journal, reader) = journal::translated(reader, max_line)?;
        Ok(MemberReader {
            name,
            compression,
            reader,
            // The lines of an export are not its bytes.
            plain: file.filter(|_| compression == Compression::None && journal.is_none()),
            read: 0,
        })
    }

    /// The complete lines of the member's first MiB, decompressed (none
    /// if it cannot be read).
    fn head(&mut self, max_line: usize) -> Vec<Vec<u8>> {
        let raw: Box<dyn Read + Send> = match self {
            Member::File(path) => match File::open(path) {
                Ok(file) => Box::new(file),
                Err(_) => return Vec::new(),
            },
            // Its lines carry their offset: no zone to derive.
            Member::Journal(_) => return Vec::new(),
            Member::Stdin { head } => {
                let mut stdin = io::stdin().take(HEAD_BYTES as u64);
                if stdin.read_to_end(head).is_err() {
                    return Vec::new();
                }
                Box::new(Cursor::new(head.clone()))
            }
        };
        let mut bytes = Vec::new();
        let Ok((_, reader)) = decompressed(raw) else {
            return Vec::new();
        };
        // A compressed head may break off: its lines are still good.
        let _ = reader.take(HEAD_BYTES as u64).read_to_end(&mut bytes);
        let mut lines = Vec::new();
        let mut splitter = LineSplitter::new(max_line);
        let mut keep = |piece: Piece<'_>| {
            if let Piece::Line(line) = piece {
                lines.push(line.to_vec());
            }
        };
        splitter.feed(&bytes, &mut keep);
        if bytes.len() < HEAD_BYTES {
            splitter.finish(&mut keep);
        }
        lines
    }
}

/// A member being read.
pub struct MemberReader {
    name: String,
    compression: Compression,
    reader: Box<dyn Read + Send>,
    /// The file again, when it is not compressed: it can be read anywhere.
    plain: Option<File>,
    /// Decompressed bytes read so far, for error messages.
    read: u64,
}

impl MemberReader {
    /// Journal files, exported by a child journalctl and read as lines.
    fn journal(name: String, source: &journal::Source, max_line: usize) -> io::Result<Self> {
        let export = Box::new(Journalctl::export(source)?);
        Ok(MemberReader {
            name,
            compression: Compression::None,
            reader: Box::new(journal::Lines::new(journal::Kind::Export, export, max_line)),
            plain: None,
            read: 0,
        })
    }

    /// Reads the next bytes (0 at the end). A read error ends the member:
    /// it comes back as the problem to report, in words that say what was
    /// lost (a truncated `.gz` from a full disk).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        loop {
            match self.reader.read(buf) {
                Ok(n) => {
                    self.read += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_problem(&self.name, self.compression, self.read, &e)),
            }
        }
    }

    /// The member's file, when it is not compressed (its bytes are the
    /// lines): for reading pieces of it apart, at their offsets.
    pub fn take_plain_file(&mut self) -> Option<File> {
        self.plain.take()
    }
}

/// Reads `buf.len()` bytes or up to the end of a plain `file` from
/// `offset`; how many were read, or the problem in the words of
/// [`MemberReader::read`] (`name` is the member's).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64, name: &str) -> Result<usize, String> {
    loop {
        match file.read_at(buf, offset) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_problem(name, Compression::None, offset, &e)),
        }
    }
}

/// Why the rest of member `name` was skipped, `read` bytes in.
fn read_problem(name: &str, compression: Compression, read: u64, e: &io::Error) -> String {
    if let Some(note) = journal::Note::of(e) {
        return format!("{name}: {note}");
    }
    let what = match (compression, e.kind()) {
        (Compression::None, _) => "read error".to_string(),
        (c, io::ErrorKind::UnexpectedEof) => format!("truncated {} data", c.name()),
        (c, _) => format!("corrupt {} data", c.name()),
    };
    format!("{name}: {what} after {read} bytes ({e}); the rest of this file was skipped")
}

/// A system time as a [`Timestamp`], if it is after 1970.
pub fn timestamp_of(time: SystemTime) -> Option<Timestamp> {
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Timestamp(i64::try_from(secs).ok()?))
}

/// The wall clock, as a [`Timestamp`]: for what is dated by when it
/// happens here (live lines without a year, saved state, blocks' expiry),
/// never for what a log says.
pub fn now() -> Timestamp {
    timestamp_of(SystemTime::now()).unwrap_or_default()
}
