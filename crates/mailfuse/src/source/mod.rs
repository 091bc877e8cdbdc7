//! Where lines come from: finding the log files named on the command line,
//! opening them, and recognising their format from their first lines.

pub mod lines;

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use mailfuse_core::Timestamp;
use mailfuse_formats::Format;

/// Bytes read from the start of a file to recognise its format.
const SAMPLE_BYTES: usize = 64 * 1024;

/// A named input: a file, or `-` for standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputPath {
    File(PathBuf),
    Stdin,
}

impl InputPath {
    /// How the input is named in reports.
    pub fn label(&self) -> String {
        match self {
            InputPath::File(p) => p.display().to_string(),
            InputPath::Stdin => "-".to_string(),
        }
    }
}

/// Expands the command line's paths: a directory stands for the files in it
/// (not recursing; sorted by name so runs are reproducible).
pub fn discover(paths: &[PathBuf]) -> io::Result<Vec<InputPath>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(InputPath::Stdin);
            continue;
        }
        let meta = std::fs::metadata(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            inputs.extend(files.into_iter().map(InputPath::File));
        } else {
            inputs.push(InputPath::File(path.clone()));
        }
    }
    Ok(inputs)
}

/// An input opened for reading, with the sample its format was judged on.
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    /// The first bytes of the input (also replayed by `reader`).
    pub sample: Vec<u8>,
    /// Total size when known (for progress).
    pub size: Option<u64>,
    /// When the input was last written (now, for a stream): dates the
    /// timestamps that carry no year.
    pub modified: Option<Timestamp>,
}

/// Opens an input and reads its first bytes for sniffing; the returned reader
/// still yields the whole input from the start.
pub fn open(input: &InputPath) -> io::Result<Opened> {
    let (mut raw, size, modified): (Box<dyn Read + Send>, _, _) = match input {
        InputPath::File(path) => {
            let file = File::open(path)?;
            let meta = file.metadata().ok();
            let size = meta.as_ref().map(|m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (Box::new(file), size, modified)
        }
        InputPath::Stdin => (Box::new(io::stdin()), None, Some(SystemTime::now())),
    };
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    (&mut raw)
        .take(SAMPLE_BYTES as u64)
        .read_to_end(&mut sample)?;
    let reader = Box::new(Cursor::new(sample.clone()).chain(raw));
    Ok(Opened {
        reader,
        sample,
        size,
        modified: modified.and_then(timestamp_of),
    })
}

/// A system time as a [`Timestamp`], if it is after 1970.
fn timestamp_of(time: SystemTime) -> Option<Timestamp> {
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

/// The format of an input, judged on its sample.
pub fn sniff(sample: &[u8]) -> Option<Format> {
    mailfuse_formats::sniff(sample_lines(sample).take(200))
}
