//! The systemd journal, followed (`[watch.journal]`): records come from a
//! child journalctl (`source/journal/follow.rs`) as the lines a syslog
//! file would hold. This server's records (those naming this host, or
//! none) are read as one followed file under host 0, with its holds of
//! late mail; other hosts' (a directory systemd-journal-remote writes)
//! each by its host's reader, as syslog senders are.
//!
//! The cursor of the last record handed out is saved with the detector's
//! state, in one transaction: a restart, even after `kill -9`, starts
//! journalctl after it, so no record is lost or counted twice.

use std::time::Duration;

use anyhow::Result;
use mailfuse_formats::LocalZone;

use super::inbox::Inbox;
use super::readers::{HostReader, HostReaders, OnHostEvent};
use crate::config::JournalConfig;
use crate::engine::LineOutcome;
use crate::metrics::WatchMetrics;
use crate::source::journal::follow::{self, Batch};
use crate::source::journal::Skipped;
use crate::source::lines::DEFAULT_MAX_LINE;

/// The journal being followed.
pub struct Journal {
    inbox: Inbox<Batch>,
    /// The cursor of the last record handed out (the saved one until a
    /// record comes).
    cursor: Option<String>,
    /// This server's names: a record naming one of them, or none, is its
    /// own.
    local_names: Vec<Vec<u8>>,
    /// This server's records, read like one followed file (host 0).
    local: HostReader,
}

impl Journal {
    /// Starts following the journal after `cursor`, the one the saved
    /// state holds; `local_names` are this server's host names.
    pub fn start(
        config: &JournalConfig,
        cursor: Option<String>,
        local_names: &[&str],
        metrics: &WatchMetrics,
    ) -> Result<Journal> {
        let after = cursor.as_ref().map(|c| c.as_bytes().to_vec());
        let receiver = follow::start(config, after, &metrics.journal, DEFAULT_MAX_LINE)?;
        let local_name = local_names.first().copied().unwrap_or_default();
        Ok(Journal {
            inbox: Inbox::new(receiver),
            cursor,
            local_names: local_names.iter().map(|n| n.as_bytes().to_vec()).collect(),
            local: HostReader::new(0, local_name.as_bytes()),
        })
    }

    /// The cursor to save: of the last record handed out.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Waits up to `timeout` for records: watch's pause between polls, cut
    /// short when the journal has something.
    pub fn wait(&mut self, timeout: Duration) {
        self.inbox.wait(timeout);
    }

    /// Hands out the records read so far: this server's under host 0,
    /// other hosts' through `readers`.
    pub fn poll(
        &mut self,
        readers: &mut HostReaders,
        zone: &LocalZone,
        metrics: &WatchMetrics,
        on_event: &mut OnHostEvent<'_>,
    ) {
        for batch in self.inbox.take() {
            for record in batch.records() {
                let reader = match record.host {
                    Some(host) if !self.local_names.iter().any(|name| name == host) => {
                        readers.reader(host)
                    }
                    _ => Some(&mut self.local),
                };
                match (reader, record.line) {
                    (None, _) => metrics.journal.dropped_for_hosts(),
                    (Some(reader), Ok(line)) => reader.read(line, zone, metrics, on_event),
                    (Some(reader), Err(Skipped::Malformed)) => {
                        reader.count(LineOutcome::Malformed, metrics);
                    }
                    (Some(reader), Err(Skipped::TooLong)) => {
                        reader.count(LineOutcome::TooLong, metrics);
                    }
                    // Not a log line: nothing to count.
                    (Some(_), Err(Skipped::NoMessage)) => {}
                }
                if !record.cursor.is_empty() {
                    self.cursor = Some(String::from_utf8_lossy(record.cursor).into_owned());
                }
            }
        }
    }
}
