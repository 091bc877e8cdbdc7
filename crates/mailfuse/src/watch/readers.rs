//! Lines of other mail servers, each read like one followed file: its own
//! `Recogniser`, parser and line counters, `scan`'s rules. Syslog senders
//! (`syslog.rs`) and other hosts' records in a followed journal
//! (`journal.rs`) share them, so a host is one host however its lines
//! come; its events reach the detector under its own host id, so its
//! queue ids are its own.

use std::collections::HashMap;

use mailfuse_core::Event;
use mailfuse_formats::{
    Detail, Format, LineParser, LocalZone, ParseContext, Parsed, Recogniser, Recognition,
};
use tracing::{info, warn};

use super::inputs::count;
use crate::engine::LineOutcome;
use crate::metrics::{LineCounters, WatchMetrics};
use crate::source;

/// Hosts kept at most; lines of more are dropped and counted by their
/// source (a host name is whatever a permitted sender writes).
const MAX_HOSTS: usize = 10_000;

/// What to do with each parsed line: its host's id, its event, the line.
pub type OnHostEvent<'a> = dyn FnMut(u32, &Event<'_>, &[u8]) + 'a;

/// Every other host's reader, by the name it goes by.
pub struct HostReaders {
    hosts: HashMap<Box<[u8]>, HostReader>,
    /// Host names by id, for incidents; 0 is this server.
    names: HashMap<u32, String>,
}

impl HostReaders {
    /// No host yet; `local` names this server (host 0).
    pub fn new(local: &str) -> HostReaders {
        HostReaders {
            hosts: HashMap::new(),
            names: HashMap::from([(0, local.to_string())]),
        }
    }

    /// The reader of host `name`, made at its first line; none past
    /// [`MAX_HOSTS`].
    pub fn reader(&mut self, name: &[u8]) -> Option<&mut HostReader> {
        if !self.hosts.contains_key(name) {
            if self.hosts.len() >= MAX_HOSTS {
                return None;
            }
            let host = HostReader::new(host_id(name), name);
            info!(host = %host.name, "a new host sends log lines");
            self.names.insert(host.id, host.name.clone());
            self.hosts.insert(name.into(), host);
        }
        self.hosts.get_mut(name)
    }

    /// The name of host `id` (0: this server), if it sent anything.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }
}

/// One host's lines, read like one followed file.
pub struct HostReader {
    id: u32,
    name: String,
    recogniser: Recogniser,
    parser: Option<(Format, Box<dyn LineParser>)>,
    counters: Option<LineCounters>,
}

impl HostReader {
    /// The reader of host `id`, called `name`.
    pub fn new(id: u32, name: &[u8]) -> HostReader {
        HostReader {
            id,
            name: String::from_utf8_lossy(name).into_owned(),
            recogniser: Recogniser::default(),
            parser: None,
            counters: None,
        }
    }

    /// The format its lines showed, once they did.
    pub fn format(&self) -> Option<Format> {
        self.parser.as_ref().map(|(format, _)| *format)
    }

    /// Recognises, parses and counts `line`, handing out its event.
    pub fn read(
        &mut self,
        line: &[u8],
        zone: &LocalZone,
        metrics: &WatchMetrics,
        on_event: &mut OnHostEvent<'_>,
    ) {
        if self.recogniser.state() == Recognition::NotALog {
            return;
        }
        if self.parser.is_none() {
            match self.recogniser.feed(line) {
                Recognition::Known(format) => {
                    info!(host = %self.name, format = format.name(), "format recognised");
                    let context = ParseContext {
                        zone: zone.clone(),
                        // Live lines are from now: syslog's missing year is this year.
                        year_reference: Some(source::now()),
                        detail: Detail::Detection,
                    };
                    self.parser = Some((format, format.parser(&context)));
                    self.counters = Some(metrics.lines_of(format.name()));
                }
                Recognition::NotALog => {
                    warn!(host = %self.name, "not a log format mailfuse knows: its lines are skipped");
                }
                Recognition::Undecided => {}
            }
        }
        let parsed = self.parser.as_mut().map(|(_, parser)| parser.parse(line));
        let outcome = parsed
            .as_ref()
            .map_or(LineOutcome::Unknown, LineOutcome::of);
        if let Some(Parsed::Event(event)) = &parsed {
            on_event(self.id, event, line);
        }
        count(&self.counters, metrics, outcome, 1);
    }

    /// Counts a line that could not be read (too long, malformed) under
    /// the host's format.
    pub fn count(&self, outcome: LineOutcome, metrics: &WatchMetrics) {
        count(&self.counters, metrics, outcome, 1);
    }
}

/// A host's id in the detector: FNV-1a of its name, never 0 (this
/// server). Stable across restarts and versions, as saved messages are
/// keyed by it; two of 100 hosts collide with odds of about one in a
/// million (their queue ids would then share keys, as on one server).
fn host_id(name: &[u8]) -> u32 {
    let hash = name.iter().fold(0x811c_9dc5_u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    hash.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_are_fnv_1a_and_never_zero() {
        assert_eq!(host_id(b""), 0x811c_9dc5);
        assert_eq!(host_id(b"a"), 0xe40c_292c);
        assert_ne!(host_id(b"mx1"), host_id(b"mx2"));
    }

    #[test]
    fn a_host_is_one_reader_named_for_incidents() {
        let mut readers = HostReaders::new("here");
        let id = readers.reader(b"mx1").map(|r| r.id);
        assert_eq!(id, Some(host_id(b"mx1")));
        assert_eq!(readers.reader(b"mx1").map(|r| r.id), id, "the same one");
        assert_eq!(readers.name(host_id(b"mx1")), Some("mx1"));
        assert_eq!(readers.name(0), Some("here"));
    }
}
