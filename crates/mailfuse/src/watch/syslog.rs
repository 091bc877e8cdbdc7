//! Mail servers sending their logs to `watch` over syslog: each sending
//! host is read like one followed file (its own `Recogniser`, parser and
//! line counters, `scan`'s rules) and its lines reach the detector under
//! its own host id, so its queue ids are its own. Messages are handed out
//! as they come, not merged by time with the files or the other hosts.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::Result;
use mailfuse_core::Event;
use mailfuse_formats::Recognition;
use mailfuse_formats::{Format, LineParser, LocalZone, ParseContext, Parsed, Recogniser};
use tracing::{info, warn};

use super::inputs::count;
use crate::config::SyslogConfig;
use crate::engine::LineOutcome;
use crate::metrics::{LineCounters, WatchMetrics};
use crate::source;
use crate::source::syslog_net::header::{self, Form};
use crate::source::syslog_net::{self, Batch, ListenerCounters};

/// Sending hosts kept at most; messages of more are dropped and counted (a
/// host name is whatever a permitted sender writes).
const MAX_HOSTS: usize = 10_000;

/// Batches handed out per poll at most, so saves still come while senders
/// keep the channel full.
const BATCHES_PER_POLL: usize = 256;

/// What to do with each parsed line: its host's id, its event, the line.
pub type OnHostEvent<'a> = dyn FnMut(u32, &Event<'_>, &[u8]) + 'a;

/// The listeners' messages, read per sending host.
pub struct Remote {
    receiver: Receiver<Batch>,
    /// Each listener's counters, by index (to count dropped messages).
    listeners: Vec<ListenerCounters>,
    hosts: HashMap<Box<[u8]>, Host>,
    /// Host names by id, for incidents; 0 is this server (its own files).
    names: HashMap<u32, String>,
    /// A batch received while waiting, handed out at the next poll.
    held: Option<Batch>,
    /// Where RFC 5424 lines are put back in the file layout.
    scratch: Vec<u8>,
}

/// One sending host: read like one followed file.
struct Host {
    id: u32,
    name: String,
    recogniser: Recogniser,
    parser: Option<(Format, Box<dyn LineParser>)>,
    counters: Option<LineCounters>,
}

impl Remote {
    /// Starts the configured listeners; `local` names this server, whose
    /// own files watch may follow too.
    pub fn start(config: &SyslogConfig, metrics: &WatchMetrics, local: &str) -> Result<Remote> {
        let listeners = syslog_net::start(config, &metrics.syslog)?;
        Ok(Remote {
            receiver: listeners.receiver,
            listeners: listeners
                .names
                .iter()
                .map(|name| metrics.syslog.of(name))
                .collect(),
            hosts: HashMap::new(),
            names: HashMap::from([(0, local.to_string())]),
            held: None,
            scratch: Vec::new(),
        })
    }

    /// Waits up to `timeout` for messages: watch's pause between polls,
    /// cut short when a sender has something.
    pub fn wait(&mut self, timeout: Duration) {
        if self.held.is_some() {
            return;
        }
        match self.receiver.recv_timeout(timeout) {
            Ok(batch) => self.held = Some(batch),
            Err(RecvTimeoutError::Timeout) => {}
            // Every listener is gone (they end only with the process).
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
        }
    }

    /// Hands out the messages received so far.
    pub fn poll(
        &mut self,
        zone: &LocalZone,
        metrics: &WatchMetrics,
        on_event: &mut OnHostEvent<'_>,
    ) {
        let mut next = self.held.take();
        for _ in 0..BATCHES_PER_POLL {
            let Some(batch) = next.take().or_else(|| self.receiver.try_recv().ok()) else {
                break;
            };
            self.read(&batch, zone, metrics, on_event);
        }
    }

    /// The name of host `id` (0: this server), if it sent anything.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }

    fn read(
        &mut self,
        batch: &Batch,
        zone: &LocalZone,
        metrics: &WatchMetrics,
        on_event: &mut OnHostEvent<'_>,
    ) {
        let peer = batch.peer.map(|p| p.to_string()).unwrap_or_default();
        for message in batch.messages() {
            let header = header::parse(message);
            let name = header.host.unwrap_or(peer.as_bytes());
            if !self.hosts.contains_key(name) {
                if self.hosts.len() >= MAX_HOSTS {
                    if let Some(counters) = self.listeners.get(batch.listener) {
                        counters.dropped.inc();
                    }
                    continue;
                }
                let host = Host::new(name);
                info!(host = %host.name, "a new host sends syslog");
                self.names.insert(host.id, host.name.clone());
                self.hosts.insert(name.into(), host);
            }
            let Some(host) = self.hosts.get_mut(name) else {
                continue;
            };
            let kerio = match (&host.parser, header.form) {
                (Some((format, _)), _) => *format == Format::Kerio,
                (None, Form::Rfc5424 { whole, .. }) => Format::Kerio.recognizes(whole),
                (None, Form::File(_)) => false,
            };
            let line = header.form.line(kerio, &mut self.scratch);
            host.read(line, zone, metrics, on_event);
        }
    }
}

impl Host {
    fn new(name: &[u8]) -> Host {
        Host {
            id: host_id(name),
            name: String::from_utf8_lossy(name).into_owned(),
            recogniser: Recogniser::default(),
            parser: None,
            counters: None,
        }
    }

    /// Recognises, parses and counts `line`, handing out its event.
    fn read(
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
                    };
                    self.parser = Some((format, format.parser(&context)));
                    self.counters = Some(metrics.lines_of(format.name()));
                }
                Recognition::NotALog => {
                    warn!(host = %self.name, "not a log format mailfuse knows: its messages are skipped");
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
}

/// A host's id in the detector: FNV-1a of its name, never 0 (watch's own
/// files). Stable across restarts and versions, as saved messages are keyed
/// by it; two of 100 hosts collide with odds of about one in a million
/// (their queue ids would then share keys, as on one server).
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
}
