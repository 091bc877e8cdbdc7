//! Following one live log file for `mailfuse watch`, across rotations, with
//! a checkpoint to resume after a restart without losing or repeating lines.
//!
//! The caller polls (every 250 ms); the follower never sleeps. It keeps the
//! open descriptor of the file it reads and compares it with what the path
//! names now:
//! - the path names another, non-empty file (rename+create rotation): the old
//!   file is read to its end first, then the new one from its start. While
//!   the new file is still empty the old one is followed on, as the writer
//!   may not have reopened yet (syslog before its HUP);
//! - the path is gone: the open file is still read (the writer may still
//!   write to it) until a file appears at the path again;
//! - the same file became shorter than what was read, or its first bytes
//!   changed (copytruncate, even when it regrew before the poll): the rest of
//!   the old content is read from the copy next to it (`name.1`,
//!   `name-20240101`...: the sibling starting with the bytes read and at
//!   least as long, compressed or not), then the file from its start.
//!
//! After a restart, the checkpointed file is looked for where rotation may
//! have put it (by inode, else by its first bytes, compressed ones
//! decompressed: logrotate's `compress`); once it is read to its end, every
//! member of the rotated set newer than it is read, oldest first
//! ([`super::rotation::rotated_members`]), then the file at the path: a
//! watch stopped across several rotations reads every line once. While a
//! rotated member is read, the checkpoint points into it (its inode, the
//! offset in its decompressed content), so a crash then resumes there and
//! goes on with the members newer than it.
//!
//! Known limits, shared with every tail-based tool:
//! - copytruncate: if the copy cannot be found (compressed at once, moved to
//!   another folder), the lines written between our last poll and the
//!   truncation are lost; lines written between logrotate's copy and its
//!   truncation are lost by logrotate itself;
//! - a file rotated in and out between two polls (two rotations within one
//!   interval) is never seen; members are told newer by their names only
//!   (a checkpointed file renamed outside its set has no newer members);
//! - a writer that keeps writing to the old file after the new one received
//!   data (several writers, one of them late to reopen) loses those lines;
//! - truncation that regrew past our offset is told by the first bytes only:
//!   new content starting with the very same bytes would be missed.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::decompress::{decompressed, Compression};
use super::lines::{LineSplitter, Piece};
use super::rotation::rotated_members;

/// Bytes at a file's start that identify it (see [`Checkpoint::fingerprint`]).
const HEAD_BYTES: usize = 256;
/// Bytes read from a file at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Where to resume after a restart: the file by device and inode, and the
/// offset just after the last line handed out (or skipped as over-long).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The followed path (not the name the file may have after rotation).
    pub path: PathBuf,
    pub dev: u64,
    /// 0 when no file was open yet: the checkpoint then points at nothing.
    pub ino: u64,
    /// In the file's content: decompressed, for a compressed rotated member.
    pub offset: u64,
    /// FNV-1a of the file's first `min(256, offset)` bytes: tells the file
    /// from a new one that reuses its inode number. Only bytes before
    /// `offset` are hashed: they were read and must not change.
    pub fingerprint: u64,
}

/// Something the caller should log; given once per event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Reading goes on at the checkpoint's offset in the same file.
    Resumed { offset: u64 },
    /// The file was rotated while we were stopped: the rest of the old file,
    /// found under a new name, is read first from the checkpoint's offset.
    ResumedFromRotated { file: PathBuf, offset: u64 },
    /// A rotated member newer than the checkpointed file, read whole before
    /// the file at the path.
    ReadingRotated { file: PathBuf },
    /// A compressed member broke off (truncated, corrupt): what followed the
    /// break is lost; reading goes on with the next file.
    BrokenOff { file: PathBuf, error: String },
    /// A rotated member that could not be opened: its lines are lost.
    Unreadable { file: PathBuf, error: String },
    /// The checkpointed data cannot be found: the lines after `offset` in it
    /// may be lost; the file at the path is read from its start.
    CheckpointLost { offset: u64, cause: LossCause },
    /// The path names a new file; the old one was read to its end.
    Rotated,
    /// The file shrank or was rewritten in place (copytruncate) and is read
    /// from its start again; the old content's rest was read from
    /// `recovered_from` when its copy was found.
    Truncated { recovered_from: Option<PathBuf> },
    /// The path no longer names a file; the open one is still read.
    Deleted,
    /// No file at the path; it is looked for at each poll.
    Waiting,
    /// A file appeared at the path after waiting.
    Appeared,
}

/// Why a checkpoint could not be resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossCause {
    /// Rotated away, and the old file is deleted or compressed.
    RotatedAway,
    /// The same file is now shorter than the offset.
    TruncatedWhileDown,
    /// The inode now holds other content (rewritten, or its number reused).
    Replaced,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Resumed { offset } => write!(f, "resumed at byte {offset}"),
            Notice::ResumedFromRotated { file, offset } => write!(
                f,
                "rotated while stopped: reading {} from byte {offset} first",
                file.display()
            ),
            Notice::ReadingRotated { file } => write!(
                f,
                "reading {}, rotated while stopped, before the file itself",
                file.display()
            ),
            Notice::BrokenOff { file, error } => write!(
                f,
                "{} breaks off ({error}): the lines after the break are lost; \
                 going on with the next file",
                file.display()
            ),
            Notice::Unreadable { file, error } => write!(
                f,
                "cannot read {}, rotated while stopped ({error}): its lines are lost; \
                 let mailfuse's user read the rotated logs",
                file.display()
            ),
            Notice::CheckpointLost { offset, cause } => {
                let why = match cause {
                    LossCause::RotatedAway => {
                        "rotated while stopped and the old file is gone (deleted, moved \
                         elsewhere, or compressed in a way mailfuse cannot read)"
                    }
                    LossCause::TruncatedWhileDown => "truncated while stopped",
                    LossCause::Replaced => "rewritten while stopped (or its inode reused)",
                };
                write!(
                    f,
                    "{why}: lines after byte {offset} of the old content may be lost; reading from the start"
                )
            }
            Notice::Rotated => write!(f, "rotated: old file read to its end, reading the new one"),
            Notice::Truncated {
                recovered_from: Some(copy),
            } => write!(
                f,
                "truncated: last lines read from {}, reading from the start again",
                copy.display()
            ),
            Notice::Truncated {
                recovered_from: None,
            } => write!(
                f,
                "truncated and no copy found: lines written since the last poll may be lost"
            ),
            Notice::Deleted => write!(f, "deleted or renamed: still reading the open file"),
            Notice::Waiting => write!(f, "waiting for the file to appear"),
            Notice::Appeared => write!(f, "the file appeared"),
        }
    }
}

impl Notice {
    /// Whether lines may have been lost: the admin must hear of it (an
    /// error, a metric, an alert), not find a gap later.
    pub fn is_loss(&self) -> bool {
        matches!(
            self,
            Notice::CheckpointLost { .. }
                | Notice::BrokenOff { .. }
                | Notice::Unreadable { .. }
                | Notice::Truncated {
                    recovered_from: None
                }
        )
    }
}

/// What one [`Follower::poll_some`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Lines handed out.
    pub lines: u64,
    /// Bytes read from files.
    pub bytes: u64,
    /// Lines longer than the limit, skipped.
    pub skipped: u64,
    pub notices: Vec<Notice>,
    /// [`Follower::poll_some`] stopped at its byte budget: more is there.
    pub more: bool,
}

/// Follows one path. Memory stays within `max_line` plus a 64 KiB read
/// buffer whatever the input.
pub struct Follower {
    path: PathBuf,
    /// The file being read; `None` while no file exists at the path.
    current: Option<Tracked>,
    /// Rotated members to read, oldest first, once `current` is read to its
    /// end and before the file at the path (after a restart).
    backlog: VecDeque<(PathBuf, Tracked)>,
    cutter: LineCutter,
    /// A `Waiting` notice was given and no file was opened since.
    waiting: bool,
}

impl Follower {
    /// Whether no file exists at its path (nor is one still open).
    pub fn is_missing(&self) -> bool {
        self.current.is_none()
    }

    /// Starts following `path`: at the checkpoint when one is given (see the
    /// module doc for rotations that happened meanwhile), else at the start
    /// of the file. A missing file is waited for, not an error.
    pub fn open(
        path: &Path,
        resume: Option<&Checkpoint>,
        max_line: usize,
    ) -> io::Result<(Follower, Vec<Notice>)> {
        let mut notices = Vec::new();
        let mut backlog = VecDeque::new();
        let at_path = Tracked::open(path)?;
        let current = match resume.filter(|cp| cp.ino != 0) {
            Some(cp) if cp.path != path => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "checkpoint of {} given for {}",
                        cp.path.display(),
                        path.display()
                    ),
                ))
            }
            Some(cp) => resume_at(path, cp, at_path, &mut backlog, &mut notices)?,
            None => at_path,
        };
        let waiting = current.is_none();
        if waiting {
            notices.push(Notice::Waiting);
        }
        let follower = Follower {
            path: path.to_path_buf(),
            current,
            backlog,
            cutter: LineCutter::new(max_line),
            waiting,
        };
        Ok((follower, notices))
    }

    /// Hands every complete line available now to `on_line`, in order,
    /// without its `\n` or `\r\n`. A last line without `\n` is held until
    /// completed, unless its file is left for a new one. After an error the
    /// lines already handed out stay counted in the checkpoint; the next
    /// poll goes on from there.
    #[cfg(test)]
    pub fn poll(&mut self, on_line: &mut dyn FnMut(&[u8])) -> io::Result<PollReport> {
        self.poll_some(u64::MAX, &mut |piece| {
            if let Piece::Line(line) = piece {
                on_line(line);
            }
        })
    }

    /// Hands the complete lines available now to `on_line`, in order and
    /// without their `\n` or `\r\n`, as the tests' `poll` does, but stops
    /// once about `budget` bytes were read (at a chunk's end: lines are never split), saying so in
    /// [`PollReport::more`]. Lets a caller merge several files in time
    /// order while catching up, in bounded memory. Over-long lines are
    /// handed out too, as [`Piece::TooLong`], in their place.
    pub fn poll_some(
        &mut self,
        budget: u64,
        on_line: &mut dyn FnMut(Piece<'_>),
    ) -> io::Result<PollReport> {
        let Follower {
            path,
            current,
            backlog,
            cutter,
            waiting,
        } = self;
        let mut report = PollReport::default();
        loop {
            let Some(file) = current.as_mut() else {
                let Some(opened) = Tracked::open(path)? else {
                    if !*waiting {
                        *waiting = true;
                        report.notices.push(Notice::Waiting);
                    }
                    return Ok(report);
                };
                *current = Some(opened);
                if std::mem::take(waiting) {
                    report.notices.push(Notice::Appeared);
                }
                continue;
            };
            if file.truncated()? {
                let recovered_from = read_copy(path, file, cutter, &mut report, on_line)?;
                cutter.finish_line(&mut report, on_line);
                file.restart();
                report.notices.push(Notice::Truncated { recovered_from });
            }
            if !cutter.read_up_to(file, budget, &mut report, on_line)? {
                report.more = true;
                return Ok(report);
            }
            if let Some((name, next)) = backlog.pop_front() {
                cutter.finish_line(&mut report, on_line);
                *current = Some(next);
                report.notices.push(Notice::ReadingRotated { file: name });
                continue;
            }
            match path_now(path, file)? {
                PathNow::Same | PathNow::NewButEmpty => return Ok(report),
                PathNow::Missing => {
                    if !*waiting {
                        *waiting = true;
                        report.notices.push(Notice::Deleted);
                        report.notices.push(Notice::Waiting);
                    }
                    return Ok(report);
                }
                PathNow::Replaced(next) => {
                    // The writer moved on: what it wrote to the old file
                    // since the read above is there now.
                    cutter.read_to_end(file, &mut report, on_line)?;
                    cutter.finish_line(&mut report, on_line);
                    *current = Some(next);
                    *waiting = false;
                    report.notices.push(Notice::Rotated);
                }
            }
        }
    }

    /// The position just after the last line handed out (or skipped), to
    /// persist together with what was done with the lines.
    pub fn checkpoint(&self) -> Checkpoint {
        match &self.current {
            Some(file) => file.checkpoint_at(&self.path, file.line_end),
            None => Checkpoint {
                path: self.path.clone(),
                dev: 0,
                ino: 0,
                offset: 0,
                fingerprint: fnv1a(&[]),
            },
        }
    }
}

/// Where to start when resuming `cp`; `at_path` is the file the path names.
/// When the checkpointed file was rotated, the members newer than it go to
/// `backlog`.
fn resume_at(
    path: &Path,
    cp: &Checkpoint,
    mut at_path: Option<Tracked>,
    backlog: &mut VecDeque<(PathBuf, Tracked)>,
    notices: &mut Vec<Notice>,
) -> io::Result<Option<Tracked>> {
    let mut cause = LossCause::RotatedAway;
    if let Some(file) = at_path
        .as_mut()
        .filter(|f| (f.dev, f.ino) == (cp.dev, cp.ino))
    {
        if file.seek_checked(cp.offset, cp.fingerprint)? {
            notices.push(Notice::Resumed { offset: cp.offset });
            return Ok(at_path);
        }
        cause = if file.file.metadata()?.len() < cp.offset {
            LossCause::TruncatedWhileDown
        } else {
            LossCause::Replaced
        };
    }
    let exclude = at_path.as_ref().map(|f| f.ino);
    if let Some((rotated_path, rotated)) = find_rotated(path, cp, exclude) {
        let read = [Some(&rotated), at_path.as_ref()];
        let newer = newer_members(path, &rotated_path, &read, notices);
        notices.push(Notice::ResumedFromRotated {
            file: rotated_path,
            offset: cp.offset,
        });
        backlog.extend(newer);
        return Ok(Some(rotated));
    }
    notices.push(Notice::CheckpointLost {
        offset: cp.offset,
        cause,
    });
    Ok(at_path)
}

/// The members of `path`'s rotated set newer than `found` (by name: see
/// [`rotated_members`]), opened now (later renames do not matter), oldest
/// first; files of `read` (the one found, the one at the path) are left out.
/// One that cannot be opened is told in `notices`.
fn newer_members(
    path: &Path,
    found: &Path,
    read: &[Option<&Tracked>],
    notices: &mut Vec<Notice>,
) -> Vec<(PathBuf, Tracked)> {
    let members = rotated_members(path);
    let found_name = found.file_name();
    let mut newer = Vec::new();
    for member in members
        .iter()
        .skip_while(|m| m.file_name() != found_name)
        .skip(1)
    {
        match Tracked::open_member(member) {
            Ok(Some(file)) if !read.iter().flatten().any(|r| r.same_file(&file)) => {
                newer.push((member.clone(), file));
            }
            Ok(_) => {}
            Err(e) => notices.push(Notice::Unreadable {
                file: member.clone(),
                error: e.to_string(),
            }),
        }
    }
    newer
}

/// After `file` was truncated in place, reads the rest of its old content
/// from a copy next to it, if one is found.
fn read_copy(
    path: &Path,
    file: &Tracked,
    cutter: &mut LineCutter,
    report: &mut PollReport,
    on_line: &mut dyn FnMut(Piece<'_>),
) -> io::Result<Option<PathBuf>> {
    let read_so_far = file.checkpoint_at(path, file.pos);
    let Some((copy_path, mut copy)) = find_rotated(path, &read_so_far, Some(file.ino)) else {
        return Ok(None);
    };
    cutter.read_to_end(&mut copy, report, on_line)?;
    Ok(Some(copy_path))
}

/// Looks in `path`'s folder for the data `want` points into, and opens it
/// at `want.offset`: the file with `want`'s inode (renamed by rotation), else
/// the longest file named like `path` (`name.1`, `name-20240101`,
/// `name.2.gz`) whose first bytes match (a copytruncate copy, or the file
/// compressed by rotation). Only files whose content is at least `offset`
/// long and whose fingerprint matches are taken (compressed ones are
/// decompressed to tell); the file named `path` and inode `exclude` are not
/// candidates.
fn find_rotated(
    path: &Path,
    want: &Checkpoint,
    exclude: Option<u64>,
) -> Option<(PathBuf, Tracked)> {
    let base = path.file_name()?.as_encoded_bytes();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut longest: Option<(PathBuf, Tracked, u64)> = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let Ok(meta) = entry.metadata() else { continue };
        if name.as_encoded_bytes() == base
            || !meta.is_file()
            || meta.dev() != want.dev
            || Some(meta.ino()) == exclude
        {
            continue;
        }
        let by_inode = meta.ino() == want.ino;
        let by_content = want.offset > 0 && name.as_encoded_bytes().starts_with(base);
        if !by_inode && !by_content {
            continue;
        }
        let candidate = entry.path();
        let Ok(Some(mut file)) = Tracked::open_member(&candidate) else {
            continue;
        };
        if !file.is(&meta)
            || !file
                .seek_checked(want.offset, want.fingerprint)
                .unwrap_or(false)
        {
            continue;
        }
        if by_inode {
            return Some((candidate, file));
        }
        if longest.as_ref().is_none_or(|(_, _, len)| meta.len() > *len) {
            longest = Some((candidate, file, meta.len()));
        }
    }
    longest.map(|(candidate, file, _)| (candidate, file))
}

/// What the followed path names, compared with the file being read.
enum PathNow {
    Same,
    Missing,
    /// Another file, still empty: the writer may not have switched yet.
    NewButEmpty,
    /// Another file with data, opened from its start.
    Replaced(Tracked),
}

fn path_now(path: &Path, file: &Tracked) -> io::Result<PathNow> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PathNow::Missing),
        Err(e) => return Err(e),
    };
    if file.is(&meta) {
        return Ok(PathNow::Same);
    }
    if meta.len() == 0 {
        return Ok(PathNow::NewButEmpty);
    }
    Ok(match Tracked::open(path)? {
        None => PathNow::Missing,
        Some(next) if (next.dev, next.ino) == (file.dev, file.ino) => PathNow::Same,
        Some(next) => PathNow::Replaced(next),
    })
}

/// An open file and how far it was read.
struct Tracked {
    file: File,
    dev: u64,
    ino: u64,
    /// Offset of the next byte to read (of the decompressed content, for a
    /// compressed member).
    pos: u64,
    /// Offset just after the last complete line: where a restart resumes.
    line_end: u64,
    /// The file's first `min(HEAD_BYTES, pos)` bytes.
    head: Vec<u8>,
    /// A compressed rotated member's content, read in order.
    unpacked: Option<Unpacked>,
}

/// The decompressed content of a compressed member.
struct Unpacked {
    stream: Box<dyn Read + Send>,
    name: PathBuf,
    /// The stream broke off: the member is read to its end.
    broken: bool,
}

impl Tracked {
    /// The regular file at `path`, at its start; `None` if there is none.
    fn open(path: &Path) -> io::Result<Option<Tracked>> {
        match Self::open_regular(path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }

    fn open_regular(path: &Path) -> io::Result<Tracked> {
        let ensure_regular = |meta: &Metadata| match meta.is_file() {
            true => Ok(()),
            false => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )),
        };
        // Checked before opening too: opening a FIFO would block the poll.
        ensure_regular(&fs::metadata(path)?)?;
        let file = File::open(path)?;
        let meta = file.metadata()?;
        ensure_regular(&meta)?;
        Ok(Tracked {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            pos: 0,
            line_end: 0,
            head: Vec::new(),
            unpacked: None,
        })
    }

    /// A rotated member at `path`, decompressed if its first bytes say it
    /// is compressed; `None` if there is none.
    fn open_member(path: &Path) -> io::Result<Option<Tracked>> {
        let Some(mut file) = Self::open(path)? else {
            return Ok(None);
        };
        let mut magic = [0; 6];
        let n = file.file.read_at(&mut magic, 0)?;
        if Compression::of(magic.get(..n).unwrap_or_default()) != Compression::None {
            let (_, stream) = decompressed(Box::new(file.file.try_clone()?))?;
            file.unpacked = Some(Unpacked {
                stream,
                name: path.to_path_buf(),
                broken: false,
            });
        }
        Ok(Some(file))
    }

    fn is(&self, meta: &Metadata) -> bool {
        (self.dev, self.ino) == (meta.dev(), meta.ino())
    }

    fn same_file(&self, other: &Tracked) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }

    /// Moves to `offset` if the file is that long and its first bytes hash
    /// to `fingerprint`; tells whether it did. A compressed member is
    /// decompressed up to `offset`: only once, from its start.
    fn seek_checked(&mut self, offset: u64, fingerprint: u64) -> io::Result<bool> {
        let mut head = vec![0; head_len(offset)];
        match &mut self.unpacked {
            None => {
                if self.file.metadata()?.len() < offset || !read_start(&self.file, &mut head)? {
                    return Ok(false);
                }
            }
            Some(unpacked) => {
                if self.pos != 0 || !read_full(&mut unpacked.stream, &mut head)? {
                    return Ok(false);
                }
            }
        }
        if fnv1a(&head) != fingerprint {
            return Ok(false);
        }
        if let Some(unpacked) = &mut self.unpacked {
            let rest = offset.saturating_sub(head.len() as u64);
            let skipped = io::copy(&mut (&mut unpacked.stream).take(rest), &mut io::sink())?;
            if skipped < rest {
                return Ok(false);
            }
        }
        self.pos = offset;
        self.line_end = offset;
        self.head = head;
        Ok(true)
    }

    /// The file is shorter than what was read, or starts with other bytes
    /// (never a compressed member: rotation leaves those alone).
    fn truncated(&self) -> io::Result<bool> {
        if self.unpacked.is_some() {
            return Ok(false);
        }
        if self.file.metadata()?.len() < self.pos {
            return Ok(true);
        }
        if self.head.is_empty() {
            return Ok(false);
        }
        let mut now = [0; HEAD_BYTES];
        let Some(now) = now.get_mut(..self.head.len()) else {
            return Ok(true);
        };
        Ok(!read_start(&self.file, now)? || *now != self.head[..])
    }

    /// Reads the next bytes at `pos`. A compressed member that breaks off
    /// ends there, told once in `notices`.
    fn read_next(&mut self, buf: &mut [u8], notices: &mut Vec<Notice>) -> io::Result<usize> {
        let Some(unpacked) = &mut self.unpacked else {
            return self.file.read_at(buf, self.pos);
        };
        if unpacked.broken {
            return Ok(0);
        }
        match unpacked.stream.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                unpacked.broken = true;
                notices.push(Notice::BrokenOff {
                    file: unpacked.name.clone(),
                    error: e.to_string(),
                });
                Ok(0)
            }
            read => read,
        }
    }

    fn restart(&mut self) {
        self.pos = 0;
        self.line_end = 0;
        self.head.clear();
    }

    /// A checkpoint at `offset`, which must not be past `pos`.
    fn checkpoint_at(&self, path: &Path, offset: u64) -> Checkpoint {
        let hashed = self.head.get(..head_len(offset)).unwrap_or(&self.head);
        Checkpoint {
            path: path.to_path_buf(),
            dev: self.dev,
            ino: self.ino,
            offset,
            fingerprint: fnv1a(hashed),
        }
    }

    /// Keeps the part of `chunk` (read at `pos`) that falls in the head.
    fn note_head(&mut self, chunk: &[u8]) {
        let room = HEAD_BYTES.saturating_sub(self.head.len());
        if room > 0 && usize::try_from(self.pos).is_ok_and(|pos| pos == self.head.len()) {
            self.head
                .extend_from_slice(chunk.get(..room).unwrap_or(chunk));
        }
    }
}

fn head_len(offset: u64) -> usize {
    usize::try_from(offset).map_or(HEAD_BYTES, |offset| offset.min(HEAD_BYTES))
}

/// Fills `buf` from the start of `file`; false if the file is shorter.
fn read_start(file: &File, buf: &mut [u8]) -> io::Result<bool> {
    match file.read_exact_at(buf, 0) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Fills `buf` from `stream`; false if the stream ends first.
fn read_full(stream: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    match stream.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// 64-bit FNV-1a: stable across Rust versions, unlike `DefaultHasher`, so
/// persisted fingerprints stay comparable after an upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads files and cuts them into lines with the shared [`LineSplitter`],
/// keeping an unfinished line across reads (and across files, when the
/// follower leaves one mid-line).
struct LineCutter {
    buf: Vec<u8>,
    splitter: LineSplitter,
}

impl LineCutter {
    fn new(max_line: usize) -> Self {
        LineCutter {
            buf: vec![0; READ_CHUNK],
            splitter: LineSplitter::new(max_line),
        }
    }

    /// Hands out the complete lines from `file.pos` to its current end.
    fn read_to_end(
        &mut self,
        file: &mut Tracked,
        report: &mut PollReport,
        on_line: &mut dyn FnMut(Piece<'_>),
    ) -> io::Result<()> {
        self.read_up_to(file, u64::MAX, report, on_line).map(drop)
    }

    /// Reads until the end of the file (true) or until the poll has read
    /// `budget` bytes (false).
    fn read_up_to(
        &mut self,
        file: &mut Tracked,
        budget: u64,
        report: &mut PollReport,
        on_line: &mut dyn FnMut(Piece<'_>),
    ) -> io::Result<bool> {
        loop {
            if report.bytes >= budget {
                return Ok(false);
            }
            let n = match file.read_next(&mut self.buf, &mut report.notices) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = self.buf.get(..n).unwrap_or_default();
            file.note_head(chunk);
            let chunk_start = file.pos;
            file.pos += n as u64;
            report.bytes += n as u64;
            let mut hand_out = |piece: Piece<'_>| report.hand_out(piece, on_line);
            if let Some(end) = self.splitter.feed(chunk, &mut hand_out) {
                file.line_end = chunk_start + end as u64;
            }
        }
    }

    /// Hands out the unfinished line as it is (its file is being left).
    fn finish_line(&mut self, report: &mut PollReport, on_line: &mut dyn FnMut(Piece<'_>)) {
        self.splitter
            .finish(&mut |piece| report.hand_out(piece, on_line));
    }
}

impl PollReport {
    /// Counts a line (or an over-long one) and hands it out.
    fn hand_out(&mut self, piece: Piece<'_>, on_line: &mut dyn FnMut(Piece<'_>)) {
        match piece {
            Piece::Line(_) => self.lines += 1,
            Piece::TooLong => self.skipped += 1,
        }
        on_line(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MAX: usize = 1024;

    struct Log {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Log {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mail.log");
            Log { _dir: dir, path }
        }

        fn sibling(&self, name: &str) -> PathBuf {
            self.path.with_file_name(name)
        }

        fn append(&self, text: &str) {
            append_to(&self.path, text);
        }

        /// logrotate's default: rename, then create the new file.
        fn rotate_to(&self, name: &str) -> PathBuf {
            let rotated = self.sibling(name);
            fs::rename(&self.path, &rotated).unwrap();
            File::create(&self.path).unwrap();
            rotated
        }

        /// copytruncate's second step, or `> file`.
        fn truncate(&self) {
            File::options()
                .write(true)
                .open(&self.path)
                .unwrap()
                .set_len(0)
                .unwrap();
        }

        fn follow(&self, resume: Option<&Checkpoint>) -> (Follower, Vec<Notice>) {
            Follower::open(&self.path, resume, MAX).unwrap()
        }

        /// Writes `lines`, reads them, and stops: the checkpoint saved.
        fn read_then_stop(&self, range: std::ops::Range<usize>) -> Checkpoint {
            self.append(&text(range));
            let (mut follower, _) = self.follow(None);
            lines(&mut follower);
            follower.checkpoint()
        }

        /// Two rotations while stopped: `rest` lines to the file read, then
        /// `first` to the next, `second` to the one after, which stays.
        fn rotate_twice(&self, rest: &str, first: &str, second: &str) {
            self.append(rest);
            self.rotate_to("mail.log.1");
            self.append(first);
            fs::rename(self.sibling("mail.log.1"), self.sibling("mail.log.2")).unwrap();
            self.rotate_to("mail.log.1");
            self.append(second);
        }
    }

    fn append_to(path: &Path, text: &str) {
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn poll(follower: &mut Follower) -> (Vec<String>, PollReport) {
        let mut lines = Vec::new();
        let report = follower
            .poll(&mut |line| lines.push(String::from_utf8_lossy(line).into_owned()))
            .unwrap();
        assert_eq!(report.lines, lines.len() as u64);
        (lines, report)
    }

    fn lines(follower: &mut Follower) -> Vec<String> {
        poll(follower).0
    }

    fn line(n: usize) -> String {
        format!("Jan  5 10:00:{n:02} mx postfix/smtpd[101]: connect from unknown[192.0.2.{n}]")
    }

    fn text(range: std::ops::Range<usize>) -> String {
        range.map(|n| line(n) + "\n").collect()
    }

    fn expected(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(line).collect()
    }

    #[test]
    fn a_byte_budget_hands_the_file_out_in_pieces_in_order() {
        let log = Log::new();
        log.append(&text(0..60));
        let (mut follower, _) = log.follow(None);
        let mut seen = Vec::new();
        let mut polls = 0;
        loop {
            polls += 1;
            let report = follower
                .poll_some(1, &mut |piece| {
                    if let Piece::Line(l) = piece {
                        seen.push(String::from_utf8_lossy(l).into_owned())
                    }
                })
                .unwrap();
            if !report.more {
                break;
            }
            assert!(polls < 100, "a budget still makes progress");
        }
        assert_eq!(seen, expected(0..60));
        let (mut resumed, _) = log.follow(Some(&follower.checkpoint()));
        log.append(&text(60..61));
        assert_eq!(lines(&mut resumed), expected(60..61));
    }

    #[test]
    fn reads_appends_across_polls() {
        let log = Log::new();
        log.append(&text(0..3));
        let (mut follower, notices) = log.follow(None);
        assert!(notices.is_empty());
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(0..3));
        assert_eq!(report.bytes, text(0..3).len() as u64);
        assert!(lines(&mut follower).is_empty());
        log.append(&text(3..5));
        assert_eq!(lines(&mut follower), expected(3..5));
    }

    #[test]
    fn holds_a_partial_last_line_until_completed() {
        let log = Log::new();
        log.append("first\nsecond half");
        let (mut follower, _) = log.follow(None);
        assert_eq!(lines(&mut follower), ["first"]);
        assert_eq!(follower.checkpoint().offset, 6);
        log.append(" done\nthird");
        assert_eq!(lines(&mut follower), ["second half done"]);
        log.append("\n");
        assert_eq!(lines(&mut follower), ["third"]);
    }

    #[test]
    fn rename_rotation_keeps_lines_written_to_the_old_file_after_the_rename() {
        let log = Log::new();
        log.append(&text(0..2));
        let (mut follower, _) = log.follow(None);
        assert_eq!(lines(&mut follower), expected(0..2));
        let mut writer = fs::OpenOptions::new().append(true).open(&log.path).unwrap();
        log.rotate_to("mail.log.1");
        writer.write_all(text(2..4).as_bytes()).unwrap();
        log.append(&text(4..5));
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(0..5)[2..]);
        assert_eq!(report.notices, [Notice::Rotated]);
        log.append(&text(5..6));
        assert_eq!(lines(&mut follower), expected(5..6));
    }

    #[test]
    fn keeps_following_the_old_file_while_the_new_one_is_empty() {
        let log = Log::new();
        log.append(&text(0..1));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let rotated = log.rotate_to("mail.log-20240105");
        append_to(&rotated, &text(1..2));
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(1..2));
        assert!(report.notices.is_empty());
        append_to(&rotated, &text(2..3));
        log.append(&text(3..4));
        assert_eq!(lines(&mut follower), expected(2..4));
    }

    #[test]
    fn a_partial_line_is_handed_out_when_its_file_is_rotated_away() {
        let log = Log::new();
        log.append("a\ncut off");
        let (mut follower, _) = log.follow(None);
        assert_eq!(lines(&mut follower), ["a"]);
        log.rotate_to("mail.log.1");
        log.append("b\n");
        assert_eq!(lines(&mut follower), ["cut off", "b"]);
    }

    #[test]
    fn copytruncate_without_a_copy_starts_over_with_a_notice() {
        let log = Log::new();
        log.append(&text(0..3));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        log.truncate();
        log.append(&text(3..4));
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(3..4));
        assert_eq!(
            report.notices,
            [Notice::Truncated {
                recovered_from: None
            }]
        );
    }

    #[test]
    fn copytruncate_reads_the_lines_since_the_last_poll_from_the_copy() {
        let log = Log::new();
        log.append(&text(0..2));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        log.append(&text(2..4));
        log.append("unfinished ");
        let copy = log.sibling("mail.log.1");
        fs::copy(&log.path, &copy).unwrap();
        log.truncate();
        log.append(&text(4..5));
        let (got, report) = poll(&mut follower);
        let mut want = expected(2..4);
        want.push("unfinished ".into());
        want.extend(expected(4..5));
        assert_eq!(got, want);
        assert_eq!(
            report.notices,
            [Notice::Truncated {
                recovered_from: Some(copy)
            }]
        );
    }

    #[test]
    fn copytruncate_is_seen_even_when_the_file_regrew_past_our_offset() {
        let log = Log::new();
        log.append("short\n");
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        log.truncate();
        log.append(&text(0..2));
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(0..2));
        assert_eq!(report.notices.len(), 1);
    }

    #[test]
    fn delete_then_recreate() {
        let log = Log::new();
        log.append(&text(0..1));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let mut writer = fs::OpenOptions::new().append(true).open(&log.path).unwrap();
        fs::remove_file(&log.path).unwrap();
        writer.write_all(text(1..2).as_bytes()).unwrap();
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(1..2));
        assert_eq!(report.notices, [Notice::Deleted, Notice::Waiting]);
        writer.write_all(text(2..3).as_bytes()).unwrap();
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(2..3));
        assert!(report.notices.is_empty(), "notices are not repeated");
        log.append(&text(3..4));
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(3..4));
        assert_eq!(report.notices, [Notice::Rotated]);
    }

    #[test]
    fn waits_for_a_missing_file() {
        let log = Log::new();
        let (mut follower, notices) = log.follow(None);
        assert_eq!(notices, [Notice::Waiting]);
        assert_eq!(follower.checkpoint().ino, 0);
        assert_eq!(poll(&mut follower).1, PollReport::default());
        log.append(&text(0..2));
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(0..2));
        assert_eq!(report.notices, [Notice::Appeared]);
    }

    #[test]
    fn resumes_at_the_exact_line_after_a_crash() {
        let log = Log::new();
        log.append(&text(0..3));
        let (mut follower, _) = log.follow(None);
        assert_eq!(lines(&mut follower), expected(0..3));
        let saved = follower.checkpoint();
        log.append(&text(3..5));
        assert_eq!(lines(&mut follower), expected(3..5));
        drop(follower); // crashed before persisting the newer checkpoint
        log.append("partial");
        let (mut follower, notices) = log.follow(Some(&saved));
        assert_eq!(
            notices,
            [Notice::Resumed {
                offset: saved.offset
            }]
        );
        assert_eq!(lines(&mut follower), expected(3..5));
        let saved = follower.checkpoint();
        drop(follower);
        log.append(" line\n");
        let (mut follower, _) = log.follow(Some(&saved));
        assert_eq!(lines(&mut follower), ["partial line"]);
    }

    #[test]
    fn resumes_in_the_rotated_file_found_by_inode() {
        let log = Log::new();
        log.append(&text(0..2));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let saved = follower.checkpoint();
        drop(follower);
        log.append(&text(2..4));
        let rotated = log.rotate_to("mail.log.1");
        log.append(&text(4..5));
        let (mut follower, notices) = log.follow(Some(&saved));
        assert_eq!(
            notices,
            [Notice::ResumedFromRotated {
                file: rotated,
                offset: saved.offset
            }]
        );
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(2..5));
        assert_eq!(report.notices, [Notice::Rotated]);
    }

    /// logrotate's `compress`: `from` replaced by `to`, gzipped.
    fn gzip(from: &Path, to: &Path) {
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(to).unwrap(), flate2::Compression::fast());
        encoder.write_all(&fs::read(from).unwrap()).unwrap();
        encoder.finish().unwrap();
        fs::remove_file(from).unwrap();
    }

    /// Reads everything with a small budget, a piece per poll, and the
    /// checkpoint after each piece.
    fn pieces(follower: &mut Follower) -> Vec<(Vec<String>, Checkpoint)> {
        let mut got = Vec::new();
        loop {
            let mut piece = Vec::new();
            let report = follower
                .poll_some(1, &mut |p| {
                    if let Piece::Line(l) = p {
                        piece.push(String::from_utf8_lossy(l).into_owned())
                    }
                })
                .unwrap();
            got.push((piece, follower.checkpoint()));
            if !report.more {
                return got;
            }
        }
    }

    #[test]
    fn resume_reads_every_member_rotated_while_stopped_oldest_first() {
        let log = Log::new();
        let saved = log.read_then_stop(0..10);
        log.rotate_twice(&text(10..15), &text(15..25), &text(25..35));
        let (mut follower, notices) = log.follow(Some(&saved));
        assert_eq!(
            notices,
            [Notice::ResumedFromRotated {
                file: log.sibling("mail.log.2"),
                offset: saved.offset
            }]
        );
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(10..35));
        assert_eq!(
            report.notices,
            [
                Notice::ReadingRotated {
                    file: log.sibling("mail.log.1")
                },
                Notice::Rotated
            ]
        );
    }

    /// logrotate with `compress` and `delaycompress`, three rotations while
    /// stopped: the checkpointed file is now `mail.log.3.gz`, the next one
    /// `mail.log.2.gz`, then `mail.log.1`, then the file itself.
    fn rotate_three_times_with_delaycompress(log: &Log) {
        let shift = |from: &str, to: &str| {
            fs::rename(log.sibling(from), log.sibling(to)).unwrap();
        };
        log.append(&text(10..15));
        log.rotate_to("mail.log.1");
        log.append(&text(15..25));
        gzip(&log.sibling("mail.log.1"), &log.sibling("mail.log.2.gz"));
        log.rotate_to("mail.log.1");
        log.append(&text(25..35));
        shift("mail.log.2.gz", "mail.log.3.gz");
        gzip(&log.sibling("mail.log.1"), &log.sibling("mail.log.2.gz"));
        log.rotate_to("mail.log.1");
        log.append(&text(35..45));
    }

    #[test]
    fn resume_finds_the_checkpointed_file_compressed_and_reads_the_compressed_ones_after_it() {
        let log = Log::new();
        fs::write(log.sibling("mail.log.4.gz"), b"older, never read").unwrap();
        log.append(&text(0..10));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let saved = follower.checkpoint();
        drop(follower);
        rotate_three_times_with_delaycompress(&log);
        let (mut follower, notices) = log.follow(Some(&saved));
        assert_eq!(
            notices,
            [Notice::ResumedFromRotated {
                file: log.sibling("mail.log.3.gz"),
                offset: saved.offset
            }]
        );
        let (got, report) = poll(&mut follower);
        assert_eq!(got, expected(10..45));
        assert_eq!(report.notices.len(), 3, "{:?}", report.notices);
    }

    #[test]
    fn a_crash_while_reading_rotated_members_resumes_without_loss_or_repeat() {
        let log = Log::new();
        let saved = log.read_then_stop(0..10);
        rotate_three_times_with_delaycompress(&log);
        let (mut follower, _) = log.follow(Some(&saved));
        let pieces = pieces(&mut follower);
        assert!(pieces.len() > 4, "read in pieces: {}", pieces.len());
        let all: Vec<String> = pieces.iter().flat_map(|(l, _)| l.clone()).collect();
        assert_eq!(all, expected(10..45));
        // A crash after any piece, and the restart: the lines saved with
        // that checkpoint, then exactly the rest.
        for (crash, (_, checkpoint)) in pieces.iter().enumerate() {
            let before: Vec<String> = pieces[..=crash]
                .iter()
                .flat_map(|(l, _)| l.clone())
                .collect();
            let (mut resumed, notices) = log.follow(Some(checkpoint));
            assert!(!notices.iter().any(Notice::is_loss), "{notices:?}");
            let mut after = lines(&mut resumed);
            let mut whole = before;
            whole.append(&mut after);
            assert_eq!(whole, expected(10..45), "crash after piece {crash}");
        }
    }

    #[test]
    fn a_crash_in_a_rotated_member_compressed_while_down_resumes_in_it() {
        let log = Log::new();
        let saved = log.read_then_stop(0..10);
        log.rotate_twice(&text(10..12), &text(12..20), &text(20..30));
        let (mut follower, _) = log.follow(Some(&saved));
        let mut got = Vec::new();
        // Into `mail.log.1` (lines 12..20), then a crash.
        while got.len() < 5 {
            follower
                .poll_some(1, &mut |p| {
                    if let Piece::Line(l) = p {
                        got.push(String::from_utf8_lossy(l).into_owned())
                    }
                })
                .unwrap();
        }
        let crashed = follower.checkpoint();
        drop(follower);
        // One more rotation while down, with compress.
        gzip(&log.sibling("mail.log.2"), &log.sibling("mail.log.3.gz"));
        gzip(&log.sibling("mail.log.1"), &log.sibling("mail.log.2.gz"));
        log.rotate_to("mail.log.1");
        log.append(&text(30..33));
        let (mut follower, notices) = log.follow(Some(&crashed));
        assert_eq!(
            notices,
            [Notice::ResumedFromRotated {
                file: log.sibling("mail.log.2.gz"),
                offset: crashed.offset
            }]
        );
        got.extend(lines(&mut follower));
        assert_eq!(got, expected(10..33));
    }

    #[test]
    fn a_broken_compressed_member_is_told_and_reading_goes_on() {
        let log = Log::new();
        let saved = log.read_then_stop(0..10);
        log.rotate_to("mail.log.2");
        // The newer member was cut short while being written (disk full).
        let whole = log.sibling("whole.gz");
        fs::write(log.sibling("plain"), text(10..200)).unwrap();
        gzip(&log.sibling("plain"), &whole);
        let bytes = fs::read(&whole).unwrap();
        fs::write(log.sibling("mail.log.1.gz"), &bytes[..bytes.len() / 2]).unwrap();
        fs::remove_file(whole).unwrap();
        log.append(&text(200..201));
        let (mut follower, _) = log.follow(Some(&saved));
        let (got, report) = poll(&mut follower);
        assert!(got.len() > 1 && got.len() < 192, "{}", got.len());
        assert_eq!(got.last(), Some(&line(200)));
        let broken: Vec<&Notice> = report.notices.iter().filter(|n| n.is_loss()).collect();
        assert!(
            matches!(broken[..], [Notice::BrokenOff { file, .. }] if *file == log.sibling("mail.log.1.gz")),
            "{:?}",
            report.notices
        );
    }

    #[test]
    fn resume_tells_when_the_rotated_file_is_gone() {
        let log = Log::new();
        log.append(&text(0..2));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let saved = follower.checkpoint();
        drop(follower);
        let rotated = log.rotate_to("mail.log-20240105");
        fs::write(
            log.sibling("mail.log-20240105.gz"),
            b"\x1f\x8b\x08compressed",
        )
        .unwrap();
        fs::remove_file(rotated).unwrap();
        log.append(&text(2..3));
        let (mut follower, notices) = log.follow(Some(&saved));
        assert_eq!(
            notices,
            [Notice::CheckpointLost {
                offset: saved.offset,
                cause: LossCause::RotatedAway
            }]
        );
        assert_eq!(lines(&mut follower), expected(2..3));
    }

    #[test]
    fn resume_after_truncation_while_down() {
        let log = Log::new();
        log.append(&text(0..3));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let saved = follower.checkpoint();
        drop(follower);
        log.truncate();
        log.append("new\n");
        let (mut follower, notices) = log.follow(Some(&saved));
        assert_eq!(
            notices,
            [Notice::CheckpointLost {
                offset: saved.offset,
                cause: LossCause::TruncatedWhileDown
            }]
        );
        assert_eq!(lines(&mut follower), ["new"]);
    }

    #[test]
    fn resume_after_copytruncate_while_down_reads_the_copy() {
        let log = Log::new();
        log.append(&text(0..2));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let saved = follower.checkpoint();
        drop(follower);
        log.append(&text(2..3));
        fs::write(log.sibling("mail.log.2"), text(90..99)).unwrap();
        let copy = log.sibling("mail.log.1");
        fs::copy(&log.path, &copy).unwrap();
        log.truncate();
        log.append(&text(3..4));
        let (mut follower, notices) = log.follow(Some(&saved));
        assert_eq!(
            notices,
            [Notice::ResumedFromRotated {
                file: copy,
                offset: saved.offset
            }]
        );
        assert_eq!(lines(&mut follower), expected(2..4));
    }

    #[test]
    fn fingerprint_tells_a_rewritten_inode() {
        let log = Log::new();
        log.append(&text(0..2));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let saved = follower.checkpoint();
        drop(follower);
        fs::write(&log.path, text(10..15)).unwrap(); // same inode, other content
        let (mut follower, notices) = log.follow(Some(&saved));
        assert_eq!(
            notices,
            [Notice::CheckpointLost {
                offset: saved.offset,
                cause: LossCause::Replaced
            }]
        );
        assert_eq!(lines(&mut follower), expected(10..15));
        let forged = Checkpoint {
            fingerprint: saved.fingerprint ^ 1,
            ..follower.checkpoint()
        };
        let (_, notices) = log.follow(Some(&forged));
        assert!(matches!(notices[..], [Notice::CheckpointLost { .. }]));
    }

    #[test]
    fn crlf_is_stripped() {
        let log = Log::new();
        log.append("a\r\nb\rc\r\n\r\n");
        let (mut follower, _) = log.follow(None);
        assert_eq!(lines(&mut follower), ["a", "b\rc", ""]);
    }

    #[test]
    fn hostile_bytes_pass_through_unchanged() {
        let log = Log::new();
        fs::write(&log.path, b"nul\0inside\n\xff\xfe bad utf8\n").unwrap();
        let (mut follower, _) = log.follow(None);
        let mut got = Vec::new();
        follower.poll(&mut |line| got.push(line.to_vec())).unwrap();
        assert_eq!(
            got,
            [b"nul\0inside".to_vec(), b"\xff\xfe bad utf8".to_vec()]
        );
    }

    #[test]
    fn over_long_lines_are_skipped_in_bounded_memory() {
        let log = Log::new();
        let long = "x".repeat(10 * MAX);
        log.append(&format!("before\n{long}\n{}\r\n", "y".repeat(MAX)));
        let (mut follower, _) = log.follow(None);
        let (got, report) = poll(&mut follower);
        assert_eq!(got, ["before".to_string(), "y".repeat(MAX)]);
        assert_eq!(report.skipped, 1);
        // An over-long line arriving in pieces across polls.
        for _ in 0..20 {
            log.append(&long);
            let (got, report) = poll(&mut follower);
            assert!(got.is_empty() && report.skipped == 0);
            assert!(follower.cutter.splitter.held() <= MAX + 1);
        }
        log.append("\nafter\n");
        let (got, report) = poll(&mut follower);
        assert_eq!((got, report.skipped), (vec!["after".to_string()], 1));
    }

    #[test]
    fn many_rotations_in_a_row() {
        let log = Log::new();
        let (mut follower, _) = log.follow(None);
        let mut got = Vec::new();
        for round in 0..10 {
            log.append(&text(round * 10..round * 10 + 5));
            got.extend(lines(&mut follower));
            let mut writer = fs::OpenOptions::new().append(true).open(&log.path).unwrap();
            if round > 0 {
                fs::rename(log.sibling("mail.log.1"), log.sibling("mail.log.2")).unwrap();
            }
            log.rotate_to("mail.log.1");
            writer
                .write_all(text(round * 10 + 5..round * 10 + 8).as_bytes())
                .unwrap();
            log.append(&text(round * 10 + 8..round * 10 + 10));
            let (more, report) = poll(&mut follower);
            assert_eq!(report.notices, [Notice::Rotated]);
            got.extend(more);
        }
        assert_eq!(got, expected(0..100));
    }

    #[test]
    fn a_directory_or_fifo_at_the_path_is_an_error_not_a_hang() {
        let log = Log::new();
        fs::create_dir(&log.path).unwrap();
        assert!(Follower::open(&log.path, None, MAX).is_err());
        fs::remove_dir(&log.path).unwrap();
        let (mut follower, _) = log.follow(None);
        let fifo = std::process::Command::new("mkfifo").arg(&log.path).status();
        if fifo.is_ok_and(|status| status.success()) {
            assert!(follower.poll(&mut |_| {}).is_err());
        }
    }

    #[test]
    fn checkpoint_round_trips_through_json() {
        let log = Log::new();
        log.append(&text(0..1));
        let (mut follower, _) = log.follow(None);
        lines(&mut follower);
        let saved = follower.checkpoint();
        let json = serde_json::to_string(&saved).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), saved);
        let other = Log::new();
        assert!(Follower::open(&other.path, Some(&saved), MAX).is_err());
    }
}
