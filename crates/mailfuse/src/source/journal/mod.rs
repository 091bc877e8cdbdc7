//! The systemd journal as an input: where mail logs live on systems without
//! rsyslog (Debian 12's default, many RHEL, Fedora and Ubuntu servers).
//!
//! Journal records become the lines a syslog file would hold, `STAMP HOST
//! IDENT[PID]: MESSAGE` (the stamp RFC 3339 in UTC, to the microsecond,
//! from `__REALTIME_TIMESTAMP`), so the syslog format reads them as it reads
//! a file: one recognition, one parser, one way of counting.
//!
//! - `scan` reads an export (`journalctl -o export`, [`export`]) or JSON
//!   (`journalctl -o json`, [`json`]) from a file or standard input,
//!   recognised by its first line ([`translated`]), and journal files or
//!   directories through `journalctl --file`/`--directory -o export`
//!   ([`Journalctl`]): the journal's binary files are journalctl's to read.
//! - `watch` follows the journal through a child `journalctl --follow -o
//!   export` ([`follow`]) and saves the cursor of the last record it read
//!   with its state.

pub mod export;
pub mod follow;
mod json;

use std::fmt::Write as _;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use mailfuse_core::Timestamp;

use super::lines::{LineSplitter, Piece};

/// The first bytes of a journal file (`*.journal`, `*.journal~`).
pub const FILE_MAGIC: &[u8; 8] = b"LPKSHHRH";

/// Longest line of `journalctl -o json` read: an object holds every field
/// of its record, so it may be much longer than its message.
const MAX_JSON_LINE: usize = 4 << 20;

/// Longest first line looked at to tell an export or JSON from a log.
const MAX_FIRST_LINE: usize = 64 * 1024;

/// Bytes read at a time from the stream being translated.
const CHUNK: usize = 64 * 1024;

/// The fields of a record a log line is made of, each as it came (bytes),
/// `None` when the record does not have it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub cursor: Option<Vec<u8>>,
    /// Microseconds since 1970, in decimal.
    pub realtime: Option<Vec<u8>>,
    pub hostname: Option<Vec<u8>>,
    pub identifier: Option<Vec<u8>>,
    pub syslog_pid: Option<Vec<u8>>,
    pub pid: Option<Vec<u8>>,
    pub comm: Option<Vec<u8>>,
    pub message: Option<Vec<u8>>,
    /// The message was longer than the reader keeps: it was cut.
    pub too_long: bool,
}

/// The fields [`Record`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wanted {
    Cursor,
    Realtime,
    Hostname,
    Identifier,
    SyslogPid,
    Pid,
    Comm,
    Message,
}

impl Wanted {
    fn of(name: &[u8]) -> Option<Wanted> {
        Some(match name {
            b"__CURSOR" => Wanted::Cursor,
            b"__REALTIME_TIMESTAMP" => Wanted::Realtime,
            b"_HOSTNAME" => Wanted::Hostname,
            b"SYSLOG_IDENTIFIER" => Wanted::Identifier,
            b"SYSLOG_PID" => Wanted::SyslogPid,
            b"_PID" => Wanted::Pid,
            b"_COMM" => Wanted::Comm,
            b"MESSAGE" => Wanted::Message,
            _ => return None,
        })
    }
}

/// Why a record gives no line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// It broke the format, or has no valid `__REALTIME_TIMESTAMP`.
    Malformed,
    /// Its message is longer than a line may be.
    TooLong,
    /// It has no `MESSAGE` (a structured record, not a log line).
    NoMessage,
}

impl Record {
    /// The value of field `wanted`, made empty if the record had none.
    fn field(&mut self, wanted: Wanted) -> &mut Vec<u8> {
        let field = match wanted {
            Wanted::Cursor => &mut self.cursor,
            Wanted::Realtime => &mut self.realtime,
            Wanted::Hostname => &mut self.hostname,
            Wanted::Identifier => &mut self.identifier,
            Wanted::SyslogPid => &mut self.syslog_pid,
            Wanted::Pid => &mut self.pid,
            Wanted::Comm => &mut self.comm,
            Wanted::Message => &mut self.message,
        };
        field.get_or_insert_with(Vec::new)
    }

    fn clear(&mut self) {
        *self = Record::default();
    }

    /// The host that logged the record, if it names one a line can hold.
    pub fn host(&self) -> Option<&[u8]> {
        self.hostname
            .as_deref()
            .filter(|host| !host.is_empty() && !host.iter().any(|b| b.is_ascii_whitespace()))
    }

    /// Writes the record's syslog line into `line` (emptied first):
    /// `2026-11-05T01:13:00.123456+00:00 mx1 postfix/smtpd[7]: MESSAGE`,
    /// the host left out when the record names none, the identifier
    /// `SYSLOG_IDENTIFIER` or else `_COMM`, the pid `SYSLOG_PID` or else
    /// `_PID`; control characters in the text escaped as rsyslog writes
    /// them (`#012` for a newline), so a record is one line.
    pub fn line(&self, line: &mut Vec<u8>) -> Result<(), Skipped> {
        line.clear();
        let micros = self
            .realtime
            .as_deref()
            .and_then(parse_micros)
            .ok_or(Skipped::Malformed)?;
        let message = self.message.as_deref().ok_or(Skipped::NoMessage)?;
        if self.too_long {
            return Err(Skipped::TooLong);
        }
        write_stamp(line, micros).ok_or(Skipped::Malformed)?;
        if let Some(host) = self.host() {
            line.push(b' ');
            escaped(line, host);
        }
        let identifier = self.identifier.as_deref().or(self.comm.as_deref());
        if let Some(identifier) = identifier.filter(|i| !i.is_empty()) {
            line.push(b' ');
            escaped(line, identifier);
            let pid = self.syslog_pid.as_deref().or(self.pid.as_deref());
            if let Some(pid) = pid.filter(|p| !p.is_empty()) {
                line.push(b'[');
                escaped(line, pid);
                line.push(b']');
            }
            line.push(b':');
        }
        line.push(b' ');
        escaped(line, message);
        Ok(())
    }
}

/// Microseconds since 1970 in decimal (`__REALTIME_TIMESTAMP`).
fn parse_micros(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Writes `micros` as an RFC 3339 stamp in UTC, to the microsecond; `None`
/// past year 9999 (no syslog stamp holds it).
fn write_stamp(line: &mut Vec<u8>, micros: u64) -> Option<()> {
    let seconds = i64::try_from(micros / 1_000_000).ok()?;
    let (year, month, day, hour, minute, second) = Timestamp(seconds).to_civil();
    if year > 9999 {
        return None;
    }
    let mut text = String::with_capacity(32);
    write!(
        text,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:06}+00:00",
        micros % 1_000_000
    )
    .ok()?;
    line.extend_from_slice(text.as_bytes());
    Some(())
}

/// Appends `text` with its control characters written as rsyslog writes
/// them in files: `#` and three octal digits.
fn escaped(line: &mut Vec<u8>, text: &[u8]) {
    for &byte in text {
        if byte < 0x20 || byte == 0x7f {
            line.extend_from_slice(&[
                b'#',
                b'0' + (byte >> 6),
                b'0' + ((byte >> 3) & 7),
                b'0' + (byte & 7),
            ]);
        } else {
            line.push(byte);
        }
    }
}

/// What a stream holds, told by its first line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `journalctl -o export`.
    Export,
    /// `journalctl -o json`.
    Json,
}

impl Kind {
    fn of(first_line: &[u8]) -> Option<Kind> {
        if export::looks_like(first_line) {
            Some(Kind::Export)
        } else if json::looks_like(first_line) {
            Some(Kind::Json)
        } else {
            None
        }
    }
}

/// Something about a journal stream worth reporting (records skipped,
/// journalctl failing), carried as a read error at its end: the reader of
/// the stream reports it in these words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Note(pub String);

impl Note {
    fn error(text: String) -> io::Error {
        io::Error::other(Note(text))
    }

    /// The note `error` carries, if it is one.
    pub fn of(error: &io::Error) -> Option<&Note> {
        error.get_ref()?.downcast_ref::<Note>()
    }
}

/// `reader`, translated into syslog lines if its first line shows an
/// export or journalctl's JSON; as it is otherwise. Messages longer than
/// `max_line` are skipped and counted.
pub fn translated(
    mut reader: Box<dyn Read + Send>,
    max_line: usize,
) -> io::Result<(Option<Kind>, Box<dyn Read + Send>)> {
    let head = first_line(&mut reader)?;
    if head.starts_with(FILE_MAGIC) {
        return Err(Note::error(
            "a journal file, which journalctl reads in place: name the file itself \
             (not compressed, not on standard input), or pipe `journalctl -o export`"
                .to_string(),
        ));
    }
    let kind = Kind::of(&head);
    let reader: Box<dyn Read + Send> = Box::new(Cursor::new(head).chain(reader));
    Ok(match kind {
        Some(kind) => (Some(kind), Box::new(Lines::new(kind, reader, max_line))),
        None => (None, reader),
    })
}

/// The bytes of `reader` up to its first newline (included), at most
/// [`MAX_FIRST_LINE`]: a pipe may give a line in several reads.
fn first_line(reader: &mut Box<dyn Read + Send>) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while head.len() < MAX_FIRST_LINE && !head.contains(&b'\n') {
        let want = buf.len().min(MAX_FIRST_LINE - head.len());
        match reader.read(buf.get_mut(..want).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(head)
}

/// How many records gave no line, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub malformed: u64,
    pub too_long: u64,
}

impl Tally {
    /// Counts `skipped` (records without a message are no log line: not
    /// counted).
    pub fn count(&mut self, skipped: Skipped) {
        match skipped {
            Skipped::Malformed => self.malformed += 1,
            Skipped::TooLong => self.too_long += 1,
            Skipped::NoMessage => {}
        }
    }

    /// In words, if anything was skipped.
    fn words(&self, max_line: usize) -> Option<String> {
        let mut parts = Vec::new();
        if self.malformed > 0 {
            parts.push(format!(
                "{} malformed journal record(s) skipped",
                self.malformed
            ));
        }
        if self.too_long > 0 {
            parts.push(format!(
                "{} journal record(s) with a message too long to read skipped (over \
                 {max_line} bytes, or null: journalctl -o json without --all)",
                self.too_long
            ));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Reads the records of an export or JSON stream.
enum Decoder {
    Export(Box<export::ExportParser>),
    Json(LineSplitter),
}

/// Where translated lines go.
struct Sink {
    out: Vec<u8>,
    line: Vec<u8>,
    tally: Tally,
}

impl Sink {
    fn take(&mut self, record: Option<&Record>) {
        match record.map(|record| record.line(&mut self.line)) {
            Some(Ok(())) => {
                self.out.extend_from_slice(&self.line);
                self.out.push(b'\n');
            }
            Some(Err(skipped)) => self.tally.count(skipped),
            None => self.tally.count(Skipped::Malformed),
        }
    }
}

impl Decoder {
    fn feed(&mut self, chunk: &[u8], max_line: usize, sink: &mut Sink) {
        match self {
            Decoder::Export(parser) => parser.feed(chunk, &mut |parsed| sink.take(parsed.record())),
            Decoder::Json(splitter) => {
                splitter.feed(chunk, &mut |piece| json_piece(piece, max_line, sink));
            }
        }
    }

    fn finish(&mut self, max_line: usize, sink: &mut Sink) {
        match self {
            Decoder::Export(parser) => parser.finish(&mut |parsed| sink.take(parsed.record())),
            Decoder::Json(splitter) => {
                splitter.finish(&mut |piece| json_piece(piece, max_line, sink));
            }
        }
    }
}

fn json_piece(piece: Piece<'_>, max_line: usize, sink: &mut Sink) {
    match piece {
        Piece::Line(line) if line.trim_ascii().is_empty() => {}
        Piece::Line(line) => sink.take(json::record(line, max_line).as_ref()),
        Piece::TooLong => sink.tally.count(Skipped::TooLong),
    }
}

impl export::Parsed<'_> {
    fn record(&self) -> Option<&Record> {
        match self {
            export::Parsed::Record(record) => Some(record),
            export::Parsed::Malformed => None,
        }
    }
}

/// An export or JSON stream read as syslog lines. Records skipped are told
/// at its end, as a [`Note`].
pub struct Lines {
    inner: Box<dyn Read + Send>,
    decoder: Decoder,
    sink: Sink,
    /// Where the caller is in `sink.out`.
    at: usize,
    chunk: Vec<u8>,
    max_line: usize,
    ended: bool,
    told: bool,
}

impl Lines {
    pub fn new(kind: Kind, inner: Box<dyn Read + Send>, max_line: usize) -> Lines {
        Lines {
            inner,
            decoder: match kind {
                Kind::Export => Decoder::Export(Box::new(export::ExportParser::new(max_line))),
                Kind::Json => Decoder::Json(LineSplitter::new(MAX_JSON_LINE.max(max_line))),
            },
            sink: Sink {
                out: Vec::new(),
                line: Vec::new(),
                tally: Tally::default(),
            },
            at: 0,
            chunk: vec![0; CHUNK],
            max_line,
            ended: false,
            told: false,
        }
    }
}

impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let pending = self.sink.out.get(self.at..).unwrap_or_default();
            if !pending.is_empty() {
                let n = pending.len().min(buf.len());
                if let (Some(to), Some(from)) = (buf.get_mut(..n), pending.get(..n)) {
                    to.copy_from_slice(from);
                }
                self.at += n;
                return Ok(n);
            }
            self.sink.out.clear();
            self.at = 0;
            if self.ended {
                if !self.told {
                    self.told = true;
                    if let Some(words) = self.sink.tally.words(self.max_line) {
                        return Err(Note::error(words));
                    }
                }
                return Ok(0);
            }
            let n = match self.inner.read(&mut self.chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match self.chunk.get(..n) {
                Some(chunk) if n > 0 => self.decoder.feed(chunk, self.max_line, &mut self.sink),
                _ => {
                    self.decoder.finish(self.max_line, &mut self.sink);
                    self.ended = true;
                }
            }
        }
    }
}

/// Journal files to read: one file, or a directory of them (the journal's
/// own, `/var/log/journal`, with a directory per machine inside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Directory(PathBuf),
}

impl Source {
    /// journalctl's option naming it.
    pub fn option(&self) -> String {
        match self {
            Source::File(path) => format!("--file={}", path.display()),
            Source::Directory(path) => format!("--directory={}", path.display()),
        }
    }
}

/// Whether `dir` holds journal files, itself or in a directory per
/// machine (`/var/log/journal/<machine-id>/`).
pub fn is_journal_directory(dir: &Path) -> bool {
    let holds_files = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| is_journal_file_name(&entry.path()))
        })
    };
    if holds_files(dir) {
        return true;
    }
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.len() == 32
                && name.bytes().all(|b| b.is_ascii_hexdigit())
                && holds_files(&entry.path())
        })
    })
}

/// Whether `path` is named as journald names its files (`system.journal`,
/// `system@….journal~`).
fn is_journal_file_name(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy());
    name.is_some_and(|n| n.ends_with(".journal") || n.ends_with(".journal~"))
}

/// Whether the file at `path` starts like a journal file.
pub fn is_journal_file(path: &Path) -> bool {
    let mut magic = [0u8; FILE_MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| &magic == FILE_MAGIC)
}

/// The journalctl command every use starts from: the export format, no
/// pager, no informational lines.
pub fn journalctl() -> Command {
    let mut command = Command::new("journalctl");
    command.args(["--output=export", "--quiet", "--no-pager"]);
    command
}

/// What to do when journalctl could not be started.
pub fn cannot_start_journalctl(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => "journalctl is not installed: reading the journal needs \
             systemd's journalctl (apt-get install systemd), or export the journal where it \
             is (journalctl -o export > FILE) and scan that file"
            .to_string(),
        _ => format!("cannot run journalctl: {error}"),
    }
}

/// Bytes of journalctl's error output kept for the message.
const STDERR_KEPT: u64 = 4096;

/// A child `journalctl -o export` of journal files, read as it writes;
/// its failure (a damaged file, no permission) comes at the end as a
/// [`Note`]. Killed if dropped before the end.
pub struct Journalctl {
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Journalctl {
    /// Starts exporting `source`'s records.
    pub fn export(source: &Source) -> io::Result<Journalctl> {
        let mut child = journalctl()
            .arg(source.option())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Note::error(cannot_start_journalctl(&e)))?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("journalctl's output is not piped"));
        };
        let stderr = std::thread::Builder::new()
            .name("journalctl stderr".into())
            .spawn(move || read_stderr(stderr))?;
        Ok(Journalctl {
            child,
            stdout,
            stderr: Some(stderr),
        })
    }

    /// Waits for journalctl's end: an error in its words if it failed.
    fn ended(&mut self) -> io::Result<()> {
        let status = self.child.wait()?;
        let stderr = self
            .stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&stderr);
        Err(Note::error(format!(
            "journalctl failed ({status}): {}",
            said.trim().replace('\n', "; ")
        )))
    }
}

/// The first [`STDERR_KEPT`] bytes a child writes to `stderr`; the rest is
/// read and dropped, so the child never waits on a full pipe.
pub fn read_stderr(stderr: impl Read) -> Vec<u8> {
    let mut stderr = stderr;
    let mut kept = Vec::new();
    let _ = (&mut stderr).take(STDERR_KEPT).read_to_end(&mut kept);
    let _ = io::copy(&mut stderr, &mut io::sink());
    kept
}

impl Read for Journalctl {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stdout.read(buf)? {
            0 if !buf.is_empty() => self.ended().map(|()| 0),
            n => Ok(n),
        }
    }
}

impl Drop for Journalctl {
    fn drop(&mut self) {
        // Gone already if it ended: kill and wait then do nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[(&str, &[u8])]) -> Record {
        let mut record = Record::default();
        for (name, value) in fields {
            let wanted = Wanted::of(name.as_bytes()).expect("a wanted field");
            record.field(wanted).extend_from_slice(value);
        }
        record
    }

    fn line_of(record: &Record) -> Result<String, Skipped> {
        let mut line = b"left over".to_vec();
        record
            .line(&mut line)
            .map(|()| String::from_utf8_lossy(&line).into_owned())
    }

    #[test]
    fn a_record_is_the_line_syslog_would_have_written() {
        let full = record(&[
            ("__REALTIME_TIMESTAMP", b"1796497567875319"),
            ("_HOSTNAME", b"mx1"),
            ("SYSLOG_IDENTIFIER", b"postfix/smtpd"),
            ("_PID", b"120"),
            ("SYSLOG_PID", b"121"),
            ("MESSAGE", b"connect from x[192.0.2.1]"),
        ]);
        assert_eq!(
            line_of(&full).unwrap(),
            "2026-12-05T19:06:07.875319+00:00 mx1 postfix/smtpd[121]: connect from x[192.0.2.1]"
        );
        let bare = record(&[
            ("__REALTIME_TIMESTAMP", b"5"),
            ("_COMM", b"dovecot"),
            ("_PID", b"9"),
            ("MESSAGE", b"two\nlines\r\x1b[31m"),
        ]);
        assert_eq!(
            line_of(&bare).unwrap(),
            "1970-01-01T00:00:00.000005+00:00 dovecot[9]: two#012lines#015#033[31m"
        );
        let anonymous = record(&[
            ("__REALTIME_TIMESTAMP", b"0"),
            ("_HOSTNAME", b"two words"),
            ("MESSAGE", b"x"),
        ]);
        assert_eq!(
            line_of(&anonymous).unwrap(),
            "1970-01-01T00:00:00.000000+00:00 x"
        );
    }

    #[test]
    fn records_that_are_no_line_say_why() {
        let no_time = record(&[("MESSAGE", b"x")]);
        assert_eq!(line_of(&no_time), Err(Skipped::Malformed));
        for bad in [&b""[..], b"12x", b"-5", b"99999999999999999999"] {
            let odd = record(&[("__REALTIME_TIMESTAMP", bad), ("MESSAGE", b"x")]);
            assert_eq!(line_of(&odd), Err(Skipped::Malformed));
        }
        let far = record(&[
            ("__REALTIME_TIMESTAMP", b"9999999999999999999"),
            ("MESSAGE", b"x"),
        ]);
        assert_eq!(line_of(&far), Err(Skipped::Malformed), "past year 9999");
        let no_message = record(&[("__REALTIME_TIMESTAMP", b"1")]);
        assert_eq!(line_of(&no_message), Err(Skipped::NoMessage));
        let mut long = record(&[("__REALTIME_TIMESTAMP", b"1"), ("MESSAGE", b"x")]);
        long.too_long = true;
        assert_eq!(line_of(&long), Err(Skipped::TooLong));
    }

    fn translate(input: &[u8], max_line: usize) -> (Option<Kind>, String, Option<String>) {
        let reader: Box<dyn Read + Send> = Box::new(Cursor::new(input.to_vec()));
        let (kind, mut reader) = translated(reader, max_line).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        let note = loop {
            match reader.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break Some(Note::of(&e).expect("a note").to_string()),
            }
        };
        (kind, String::from_utf8_lossy(&out).into_owned(), note)
    }

    #[test]
    fn exports_and_json_become_lines_and_logs_stay_as_they_are() {
        let export = b"__CURSOR=a\n__REALTIME_TIMESTAMP=1000000\nSYSLOG_IDENTIFIER=postfix/qmgr\nMESSAGE=one\n\n\
                       __CURSOR=b\n__REALTIME_TIMESTAMP=2000000\nSYSLOG_IDENTIFIER=postfix/qmgr\nMESSAGE=two\n\n";
        let lines = "1970-01-01T00:00:01.000000+00:00 postfix/qmgr: one\n\
                     1970-01-01T00:00:02.000000+00:00 postfix/qmgr: two\n";
        assert_eq!(
            translate(export, 100),
            (Some(Kind::Export), lines.to_string(), None)
        );
        let json = b"{\"__REALTIME_TIMESTAMP\":\"1000000\",\"SYSLOG_IDENTIFIER\":\"postfix/qmgr\",\"MESSAGE\":\"one\"}\n\
                     \n{\"MESSAGE\":[116,119,111],\"SYSLOG_IDENTIFIER\":\"postfix/qmgr\",\"__REALTIME_TIMESTAMP\":\"2000000\"}";
        assert_eq!(
            translate(json, 100),
            (Some(Kind::Json), lines.to_string(), None)
        );
        let log = "Nov  2 00:02:57 mail postfix/smtpd[1103]: connect from x[192.0.2.23]\n";
        assert_eq!(
            translate(log.as_bytes(), 100),
            (None, log.to_string(), None)
        );
        assert_eq!(translate(b"", 100), (None, String::new(), None));
    }

    #[test]
    fn skipped_records_are_told_at_the_end() {
        let export = b"MESSAGE=no time\n\n__REALTIME_TIMESTAMP=1\nMESSAGE=far too long\n\n\
                       __REALTIME_TIMESTAMP=1\nMESSAGE=ok\n\n__REALTIME_TIMESTAMP=1\nMESSAGE=cut";
        let (kind, lines, note) = translate(export, 8);
        assert_eq!(kind, Some(Kind::Export));
        assert_eq!(lines, "1970-01-01T00:00:00.000001+00:00 ok\n");
        assert_eq!(
            note.as_deref(),
            Some(
                "2 malformed journal record(s) skipped, 1 journal record(s) with a message \
                 too long to read skipped (over 8 bytes, or null: journalctl -o json without \
                 --all)"
            )
        );
    }
}
