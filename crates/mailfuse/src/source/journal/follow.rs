//! Following the journal for `watch`: a child `journalctl --follow
//! --output=export`, read on a thread of its own that turns each record
//! into its line and hands them, a read's worth per batch, to the watch
//! loop over a bounded channel (journalctl waits while the loop is behind:
//! nothing is dropped).
//!
//! journalctl starts after the cursor watch saved (`--after-cursor`), so a
//! restart reads on from the record after the last one its state has
//! seen. When journalctl ends (it is missing, a directory cannot be read,
//! it was killed), that is logged as an error and counted, and it is
//! started again after the last record read, later and later while it
//! keeps failing; watch goes on. `--merge`: following, journalctl would
//! otherwise read only the latest boot's records.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::os::unix::ffi::OsStringExt;
use std::process::{Child, ChildStderr, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{error, info, warn};

use super::export::{ExportParser, Parsed};
use super::{cannot_start_journalctl, journalctl, Skipped, Source};
use crate::config::JournalConfig;

/// Batches waiting for the watch loop (each one read of journalctl's
/// output, at most [`READ_BYTES`] of records).
const QUEUE_BATCHES: usize = 64;

/// Bytes read from journalctl at a time.
const READ_BYTES: usize = 64 * 1024;

/// The first wait before journalctl is started again, doubled after each
/// failure up to [`RETRY_MAX`]; back to the first after a run of
/// [`RETRY_RESET`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
const RETRY_RESET: Duration = Duration::from_secs(60);

/// Longest line of journalctl's error output logged.
const STDERR_LINE: usize = 1024;

/// One record as the loop receives it.
#[derive(Debug)]
struct Entry {
    /// The host it names (`_HOSTNAME`), if any.
    host: Option<Range<usize>>,
    /// Its line, or why it has none.
    line: Result<Range<usize>, Skipped>,
    cursor: Range<usize>,
}

/// Records of one read of journalctl's output, in order.
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

/// A record handed to the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Followed<'a> {
    /// The host that logged it (`_HOSTNAME`), if it names one.
    pub host: Option<&'a [u8]>,
    /// Its syslog line, or why it has none.
    pub line: Result<&'a [u8], Skipped>,
    /// Its cursor: where journalctl starts again after it.
    pub cursor: &'a [u8],
}

impl Batch {
    fn push_bytes(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// The records, in the order journalctl gave them.
    pub fn records(&self) -> impl Iterator<Item = Followed<'_>> {
        let bytes = |range: &Range<usize>| self.bytes.get(range.clone()).unwrap_or_default();
        self.entries.iter().map(move |entry| Followed {
            host: entry.host.as_ref().map(bytes),
            line: entry.line.as_ref().map(bytes).map_err(|&skipped| skipped),
            cursor: bytes(&entry.cursor),
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// What following the journal counts.
#[derive(Clone, Debug, Default)]
pub struct JournalMetrics {
    records: Counter,
    skipped: Family<ReasonLabel, Counter>,
    exits: Counter,
    running: Gauge,
}

impl JournalMetrics {
    /// Adds these metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "journal_records",
            "Journal records read from journalctl",
            self.records.clone(),
        );
        registry.register(
            "journal_records_skipped",
            "Journal records that gave no log line, by reason: malformed (broken export, no valid time), too_long (a message past the line limit), no_message, too_many_hosts (a host past the 10,000 kept)",
            self.skipped.clone(),
        );
        registry.register(
            "journalctl_exits",
            "Times journalctl ended or could not be started (watch starts it again)",
            self.exits.clone(),
        );
        registry.register(
            "journalctl_running",
            "1 while journalctl follows the journal, else 0",
            self.running.clone(),
        );
    }

    /// Counts a record that gave no line.
    pub fn skipped(&self, skipped: Skipped) {
        let reason = match skipped {
            Skipped::Malformed => "malformed",
            Skipped::TooLong => "too_long",
            Skipped::NoMessage => "no_message",
        };
        self.skipped.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts a record dropped: its host is past the number of hosts kept.
    pub fn dropped_for_hosts(&self) {
        let reason = "too_many_hosts";
        self.skipped.get_or_create(&ReasonLabel { reason }).inc();
    }
}

/// The arguments of journalctl naming what to follow (after the common
/// ones, before the cursor).
fn selection(config: &JournalConfig) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--follow".into(), "--no-tail".into(), "--merge".into()];
    if let Some(directory) = &config.directory {
        args.push(Source::Directory(directory.clone()).option().into());
    }
    for file in &config.files {
        args.push(Source::File(file.clone()).option().into());
    }
    for unit in &config.units {
        args.push(format!("--unit={unit}").into());
    }
    for identifier in &config.identifiers {
        args.push(format!("--identifier={identifier}").into());
    }
    args
}

/// Starts following the journal `config` names, after `cursor` (the last
/// record watch's saved state has seen; from the journal's start without
/// one); its records come out of the returned channel. The thread runs
/// until the process ends.
pub fn start(
    config: &JournalConfig,
    cursor: Option<Vec<u8>>,
    metrics: &JournalMetrics,
    max_line: usize,
) -> Result<Receiver<Batch>> {
    let (sender, receiver) = sync_channel(QUEUE_BATCHES);
    let mut follower = Follower {
        selection: selection(config),
        cursor,
        sender,
        metrics: metrics.clone(),
        max_line,
    };
    std::thread::Builder::new()
        .name("journal".into())
        .spawn(move || follower.run())
        .context("cannot start the thread that follows the journal")?;
    Ok(receiver)
}

/// The thread's side.
struct Follower {
    selection: Vec<OsString>,
    /// The last record read: journalctl starts again after it.
    cursor: Option<Vec<u8>>,
    sender: SyncSender<Batch>,
    metrics: JournalMetrics,
    max_line: usize,
}

/// How one journalctl ended.
enum Ended {
    /// Watch is gone: nobody receives records.
    Gone,
    /// journalctl could not start, or stopped: why, in words.
    Stopped(String),
}

impl Follower {
    fn run(&mut self) {
        let mut wait = RETRY_FIRST;
        loop {
            let started = Instant::now();
            let why = match self.follow_once() {
                Ended::Gone => return,
                Ended::Stopped(why) => why,
            };
            self.metrics.running.set(0);
            self.metrics.exits.inc();
            if started.elapsed() >= RETRY_RESET {
                wait = RETRY_FIRST;
            }
            error!(
                "{why}: the journal is not followed; journalctl starts again in {} s, after the \
                 last record read (mailfuse_journalctl_running is 0 until then)",
                wait.as_secs()
            );
            std::thread::sleep(wait);
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    /// Runs one journalctl until it ends, handing its records on.
    fn follow_once(&mut self) -> Ended {
        let mut command = journalctl();
        command.args(&self.selection);
        if let Some(cursor) = &self.cursor {
            let mut arg = b"--after-cursor=".to_vec();
            arg.extend_from_slice(cursor);
            command.arg(OsString::from_vec(arg));
        }
        let spawned = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return Ended::Stopped(cannot_start_journalctl(&e)),
        };
        let stderr = child.stderr.take().map(log_stderr);
        let Some(mut stdout) = child.stdout.take() else {
            return stop(&mut child, stderr, "journalctl's output is not piped");
        };
        self.metrics.running.set(1);
        info!(
            after_cursor = self.cursor.is_some(),
            "following the journal: {:?}", command
        );
        let mut parser = ExportParser::new(self.max_line);
        let mut buf = vec![0u8; READ_BYTES];
        loop {
            let read = match stdout.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return stop(&mut child, stderr, &format!("reading journalctl: {e}")),
            };
            let mut batch = Batch::default();
            let mut line = Vec::new();
            let mut take = |parsed: Parsed<'_>| self.take(parsed, &mut line, &mut batch);
            match buf.get(..read) {
                Some(chunk) if read > 0 => parser.feed(chunk, &mut take),
                _ => parser.finish(&mut take),
            }
            if !batch.entries.is_empty() && self.sender.send(batch).is_err() {
                let _ = child.kill();
                let _ = child.wait();
                return Ended::Gone;
            }
            if read == 0 {
                return stop(&mut child, stderr, "journalctl stopped");
            }
        }
    }

    /// Puts one record in `batch`, and notes its cursor.
    fn take(&mut self, parsed: Parsed<'_>, line: &mut Vec<u8>, batch: &mut Batch) {
        self.metrics.records.inc();
        let Parsed::Record(record) = parsed else {
            // No cursor to go on from: the loop counts it all the same.
            self.metrics.skipped(Skipped::Malformed);
            let cursor = batch.push_bytes(self.cursor.as_deref().unwrap_or_default());
            batch.entries.push(Entry {
                host: None,
                line: Err(Skipped::Malformed),
                cursor,
            });
            return;
        };
        let made = record.line(line);
        if let Err(skipped) = made {
            self.metrics.skipped(skipped);
        }
        let host = record.host().map(|host| batch.push_bytes(host));
        let line = made.map(|()| batch.push_bytes(line));
        if let Some(cursor) = &record.cursor {
            self.cursor = Some(cursor.clone());
        }
        let cursor = batch.push_bytes(self.cursor.as_deref().unwrap_or_default());
        batch.entries.push(Entry { host, line, cursor });
    }
}

/// Waits for `child`'s end: why it stopped, with the last line it wrote
/// to its error output.
fn stop(child: &mut Child, stderr: Option<JoinHandle<String>>, what: &str) -> Ended {
    let _ = child.kill();
    let status = child.wait();
    let said = stderr
        .and_then(|thread| thread.join().ok())
        .unwrap_or_default();
    let status = match status {
        Ok(status) => status.to_string(),
        Err(e) => e.to_string(),
    };
    Ended::Stopped(match said.is_empty() {
        true => format!("{what} ({status})"),
        false => format!("{what} ({status}): {said}"),
    })
}

/// Logs each line journalctl writes to its error output as a warning, on
/// a thread of its own; the thread's result is the last one.
fn log_stderr(stderr: ChildStderr) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut last = String::new();
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return last,
                Ok(_) => {}
            }
            line.truncate(STDERR_LINE);
            let text = String::from_utf8_lossy(line.trim_ascii()).into_owned();
            if !text.is_empty() {
                warn!(journalctl = %text, "journalctl says");
                last = text;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_is_journalctls_options() {
        let config = JournalConfig {
            units: vec!["postfix@-.service".into()],
            identifiers: vec!["dovecot".into()],
            directory: Some("/var/log/journal/remote".into()),
            files: Vec::new(),
        };
        assert_eq!(
            selection(&config),
            [
                "--follow",
                "--no-tail",
                "--merge",
                "--directory=/var/log/journal/remote",
                "--unit=postfix@-.service",
                "--identifier=dovecot"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn a_batch_gives_its_records_back_with_their_cursors() {
        let mut follower = Follower {
            selection: Vec::new(),
            cursor: Some(b"c0".to_vec()),
            sender: sync_channel(1).0,
            metrics: JournalMetrics::default(),
            max_line: 100,
        };
        let mut parser = ExportParser::new(100);
        let mut batch = Batch::default();
        let mut line = Vec::new();
        let export = b"__CURSOR=c1\n__REALTIME_TIMESTAMP=1\n_HOSTNAME=mx1\nMESSAGE=a\n\n\
                       broken\n\n__CURSOR=c2\n__REALTIME_TIMESTAMP=2\n\n";
        parser.feed(export, &mut |parsed| {
            follower.take(parsed, &mut line, &mut batch)
        });
        let records: Vec<Followed<'_>> = batch.records().collect();
        assert_eq!(
            records,
            [
                Followed {
                    host: Some(&b"mx1"[..]),
                    line: Ok(&b"1970-01-01T00:00:00.000001+00:00 mx1 a"[..]),
                    cursor: b"c1"
                },
                Followed {
                    host: None,
                    line: Err(Skipped::Malformed),
                    cursor: b"c1"
                },
                Followed {
                    host: None,
                    line: Err(Skipped::NoMessage),
                    cursor: b"c2"
                },
            ]
        );
        assert_eq!(follower.cursor.as_deref(), Some(&b"c2"[..]));
        assert_eq!(follower.metrics.records.get(), 3);
    }
}
