//! Where lines come from: finding the log files named on the command line,
//! grouping rotated sets, decompressing, and recognising each input's format
//! from its first lines.

mod decompress;
pub mod follow;
pub mod lines;
mod rotation;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use mailfuse_core::Timestamp;
use mailfuse_formats::{kerio, Format};

use decompress::{decompressed, Compression};

/// Bytes read from the start of an input to recognise its format.
const SAMPLE_BYTES: usize = 64 * 1024;

/// A named input: a file or a rotated set of files read as one log, or `-`
/// for standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputPath {
    /// The members, oldest first (one for a file that is not rotated).
    Files(Vec<PathBuf>),
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
}

/// Expands the command line's paths into inputs: a directory stands for the
/// files in it (not recursing), a pattern with `*`, `?` or `[` that names no
/// file is expanded as a glob; files of one rotated set become one input.
pub fn discover(paths: &[PathBuf]) -> io::Result<Vec<InputPath>> {
    let mut stdin = false;
    let mut files = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            stdin = true;
        } else if !path.exists() && is_pattern(path) {
            files.extend(expand_glob(path)?);
        } else {
            files.extend(files_at(path)?);
        }
    }
    let mut inputs: Vec<InputPath> = rotation::group(files)
        .into_iter()
        .map(InputPath::Files)
        .collect();
    if stdin {
        inputs.push(InputPath::Stdin);
    }
    Ok(inputs)
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

/// The file itself, or the files in a directory.
fn files_at(path: &Path) -> io::Result<Vec<PathBuf>> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if !std::fs::metadata(path).map_err(with_path)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    Ok(std::fs::read_dir(path)
        .map_err(with_path)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.is_file())
        .collect())
}

/// Problems met while reading an input's members, shared with the reader
/// (which lives on another thread) so the report can tell them.
pub type Problems = Arc<Mutex<Vec<String>>>;

/// An input opened for reading, with the sample its format was judged on.
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    /// The first bytes of the input, decompressed (also replayed by `reader`).
    pub sample: Vec<u8>,
    /// Total size on disk when known and uncompressed (for progress).
    pub size: Option<u64>,
    /// When the input was last written (now, for a stream): dates the
    /// timestamps that carry no year.
    pub modified: Option<Timestamp>,
    /// Members that could not be read to the end, and why.
    pub problems: Problems,
}

/// Opens an input and reads its first bytes for sniffing; the returned reader
/// still yields the whole input from the start, member after member,
/// decompressed.
pub fn open(input: &InputPath) -> io::Result<Opened> {
    let problems = Problems::default();
    let (mut members, size, modified) = match input {
        InputPath::Files(paths) => {
            let metadata: Vec<_> = paths.iter().map(std::fs::metadata).collect();
            let size = metadata
                .iter()
                .map(|m| m.as_ref().ok().map(|m| m.len()))
                .sum::<Option<u64>>();
            let modified = metadata
                .iter()
                .filter_map(|m| m.as_ref().ok()?.modified().ok())
                .max();
            let sources = paths.iter().cloned().map(Member::File).collect();
            (Members::new(sources, problems.clone()), size, modified)
        }
        InputPath::Stdin => {
            let sources = VecDeque::from([Member::Stdin]);
            (
                Members::new(sources, problems.clone()),
                None,
                Some(SystemTime::now()),
            )
        }
    };
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    (&mut members)
        .take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)?;
    if sample.is_empty() {
        if let Some(problem) = problems.lock().ok().and_then(|p| p.first().cloned()) {
            return Err(io::Error::other(problem));
        }
    }
    // Progress compares bytes read with the size on disk: only meaningful
    // when nothing is compressed.
    let size = size.filter(|_| !members.saw_compressed);
    let reader = Box::new(Cursor::new(sample.clone()).chain(members));
    Ok(Opened {
        reader,
        sample,
        size,
        modified: modified.and_then(timestamp_of),
        problems,
    })
}

/// One source of bytes in an input.
enum Member {
    File(PathBuf),
    Stdin,
}

impl Member {
    fn name(&self) -> String {
        match self {
            Member::File(path) => path.display().to_string(),
            Member::Stdin => "standard input".to_string(),
        }
    }

    fn open(&self) -> io::Result<(Compression, Box<dyn Read + Send>)> {
        let raw: Box<dyn Read + Send> = match self {
            Member::File(path) => Box::new(File::open(path)?),
            Member::Stdin => Box::new(io::stdin()),
        };
        decompressed(raw)
    }
}

/// The members of an input read one after another, each decompressed. A
/// member that cannot be opened or breaks off (a truncated `.gz`) is noted in
/// `problems` and reading goes on with the next one; a member not ending in
/// a newline gets one, so its last line does not run into the next member.
struct Members {
    pending: VecDeque<Member>,
    current: Option<Current>,
    problems: Problems,
    /// The last byte given out was a newline (or nothing was given yet).
    at_line_start: bool,
    saw_compressed: bool,
}

struct Current {
    member: Member,
    compression: Compression,
    reader: Box<dyn Read + Send>,
    /// Decompressed bytes read so far, for error messages.
    read: u64,
}

impl Members {
    fn new(pending: VecDeque<Member>, problems: Problems) -> Self {
        Members {
            pending,
            current: None,
            problems,
            at_line_start: true,
            saw_compressed: false,
        }
    }

    fn note(&self, problem: String) {
        if let Ok(mut problems) = self.problems.lock() {
            problems.push(problem);
        }
    }
}

impl Read for Members {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(current) = &mut self.current else {
                let Some(member) = self.pending.pop_front() else {
                    return Ok(0);
                };
                match member.open() {
                    Ok((compression, reader)) => {
                        self.saw_compressed |= compression != Compression::None;
                        self.current = Some(Current {
                            member,
                            compression,
                            reader,
                            read: 0,
                        });
                    }
                    Err(e) => self.note(format!("{}: cannot open: {e}", member.name())),
                }
                continue;
            };
            match current.reader.read(buf) {
                Ok(0) => self.current = None,
                Ok(n) => {
                    current.read += n as u64;
                    self.at_line_start = buf.get(n - 1) == Some(&b'\n');
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let problem = member_problem(current, &e);
                    self.current = None;
                    self.note(problem);
                }
            }
            if !self.at_line_start {
                self.at_line_start = true;
                buf[0] = b'\n';
                return Ok(1);
            }
        }
    }
}

/// Why a member stopped early, in words that say what was lost.
fn member_problem(current: &Current, e: &io::Error) -> String {
    let what = match (current.compression, e.kind()) {
        (Compression::None, _) => "read error".to_string(),
        (c, io::ErrorKind::UnexpectedEof) => format!("truncated {} data", c.name()),
        (c, _) => format!("corrupt {} data", c.name()),
    };
    format!(
        "{}: {what} after {} bytes ({e}); the rest of this file was skipped",
        current.member.name(),
        current.read
    )
}

/// A system time as a [`Timestamp`], if it is after 1970.
pub fn timestamp_of(time: SystemTime) -> Option<Timestamp> {
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Timestamp(i64::try_from(secs).ok()?))
}

/// The complete lines of a sample (a cut-off last line is left out unless
/// the sample is the whole input).
pub fn sample_lines(sample: &[u8]) -> impl Iterator<Item = &[u8]> {
    let complete = if sample.len() < SAMPLE_BYTES {
        sample
    } else {
        match memchr::memrchr(b'\n', sample) {
            Some(end) => &sample[..end],
            None => &[][..],
        }
    };
    complete
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// The server's UTC offset, derived from the first Kerio Queue-ID in an
/// input's sample (see [`kerio::derive_offset`]).
pub fn kerio_offset(sample: &[u8]) -> Option<i32> {
    sample_lines(sample).find_map(kerio::derive_offset)
}

/// The format of an input, judged on its sample.
pub fn sniff(sample: &[u8]) -> Option<Format> {
    mailfuse_formats::sniff(sample_lines(sample).take(200))
}
